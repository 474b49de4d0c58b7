//! The HTTP side of llmux: the axum application ([`app`]), its handlers, the SSE relay, and
//! the server loop ([`serve`]) with header-read timeouts, `TCP_NODELAY` and graceful shutdown.
//!
//! Invariant: only this crate knows HTTP statuses and headers. Handlers read the current
//! [`Snapshot`] once per request (lock-free `ArcSwap` load) and never hold a lock while waiting.

#![warn(missing_docs)]

mod api_error;
mod attempts;
mod body;
mod clock;
mod edge;
mod envelope;
mod governance;
mod isolation;
pub mod keys;
mod overload;
mod pipeline;
mod relay;
mod request_log;
mod response_store;
mod routes;
mod series;
mod server;
mod shared_health;
mod state;
mod translate;
mod upstream_call;
mod vendor_quota;

pub use edge::App;
pub use governance::Governance;
pub use routes::app;
pub use server::{ServerOptions, serve};
pub use state::{Gateway, Snapshot, SnapshotError};

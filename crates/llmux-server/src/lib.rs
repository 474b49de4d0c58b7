//! The HTTP side of llmux: the axum application ([`app`]), its handlers, the SSE relay, and
//! the server loop ([`serve`]) with header-read timeouts, `TCP_NODELAY` and graceful shutdown.
//!
//! Invariant: only this crate knows HTTP statuses and headers. Handlers read the current
//! [`Snapshot`] once per request (lock-free `ArcSwap` load) and never hold a lock while waiting.

#![warn(missing_docs)]

// The stages of a request, in order (ARCHITECTURE.md): the accept loop, the edge, the
// ingresses, the pipeline, the egress; the governance and the shared services beside them.
mod edge;
mod egress;
mod governance;
mod ingress;
pub mod keys;
mod pipeline;
mod routes;
mod server;

mod api_error;
mod body;
mod clock;
mod media;
mod request_log;
mod response_store;
mod series;
mod shared_health;
mod state;
mod trace;
mod traffic;
mod ui;

pub use edge::App;
pub use governance::Governance;
pub use routes::app;
pub use server::{ServerOptions, serve};
pub use state::{Gateway, Snapshot, SnapshotError};

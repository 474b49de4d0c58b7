//! Mock vendor server speaking the real wire formats of OpenAI Chat Completions (plus
//! `/v1/responses`, `/v1/models` and `/v1/embeddings`), Anthropic Messages and Gemini `generateContent` /
//! `streamGenerateContent`, with call recording and fault injection. Gemini's OpenAI-compatible
//! endpoint is served at `/v1beta/openai/chat/completions`, with its tool-call quirks (empty
//! ids, no stream `index`, `finish_reason: "stop"` after calls) as documented in REFERENCE §A14.
//!
//! The gateway's integration tests, its benchmark and its demo mode run against it, so it keeps
//! two invariants: every body, event order and frame separator matches the recorded vendor
//! fixtures, and the hot path stays cheap (responses are serialised from borrowed structs into one
//! buffer, written in one go unless pacing is asked for, on sockets with `TCP_NODELAY`).
//!
//! Answers are deterministic: the reply echoes the last user text (or acknowledges a tool
//! result), declared tools are called with `{"text": <last user text>}` (or as the prompt scripts
//! it: `mock:call <tool> <JSON object>`, `mock:text`), and token counts are word counts.
//!
//! Entry points: [`MockUpstream::start`] for in-process use (with [`MockUpstream::calls`] and
//! [`MockUpstream::add_fault`]), and [`run`] for `llmux mock-upstream --listen ADDR`. An
//! out-of-process mock is driven through `GET|DELETE /__mock/calls` and
//! `POST|DELETE /__mock/faults`.

#![warn(missing_docs)]

mod admin;
mod anthropic;
mod content;
mod gemini;
mod ids;
mod json;
mod openai;
mod plan;
mod prompt_cache;
mod respond;
mod sse;
mod state;
mod text;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::serve::ListenerExt as _;
use http::StatusCode;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use state::{Api, FaultRule, RecordedCall};

/// Largest request body the mock reads.
const BODY_LIMIT: usize = 64 * 1024 * 1024;

/// How the mock paces its answers.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Content pieces per streamed text answer (default 4). Tool-call arguments stream in at
    /// least 3 fragments.
    pub chunks: usize,
    /// Wait before sending response headers (default 0).
    pub latency: Duration,
    /// Wait between stream events (default 0).
    pub chunk_delay: Duration,
}

impl Default for MockOptions {
    fn default() -> Self {
        Self {
            chunks: 4,
            latency: Duration::ZERO,
            chunk_delay: Duration::ZERO,
        }
    }
}

/// A running mock server. Dropping the handle leaves the server running until the runtime ends;
/// call [`MockUpstream::shutdown`] to stop it earlier.
pub struct MockUpstream {
    addr: SocketAddr,
    shared: Arc<state::Shared>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

impl std::fmt::Debug for MockUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MockUpstream")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl MockUpstream {
    /// Binds `127.0.0.1:0` and serves the mock on a spawned task.
    pub async fn start(opts: MockOptions) -> std::io::Result<MockUpstream> {
        let listener = TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
        Self::from_listener(listener, opts).await
    }

    /// Serves the mock on `listener` on a spawned task.
    pub async fn from_listener(
        listener: TcpListener,
        opts: MockOptions,
    ) -> std::io::Result<MockUpstream> {
        let addr = listener.local_addr()?;
        let shared = Arc::new(state::Shared::new(opts));
        let (stop, stopped) = oneshot::channel::<()>();
        let signal = async move {
            // A dropped handle (no explicit shutdown) keeps the server running.
            if stopped.await.is_err() {
                std::future::pending::<()>().await;
            }
        };
        let task = llmux_telemetry::spawn_tracked(serve(listener, Arc::clone(&shared), signal));
        Ok(MockUpstream {
            addr,
            shared,
            stop,
            task,
        })
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://127.0.0.1:PORT` (no trailing slash, no `/v1`).
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every vendor API call so far, in arrival order (the most recent 100 000 are kept).
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.shared.calls()
    }

    /// Forgets the recorded calls.
    pub fn clear_calls(&self) {
        self.shared.clear_calls();
    }

    /// Adds a fault rule after the existing ones (the first matching live rule wins).
    pub fn add_fault(&self, rule: FaultRule) {
        self.shared.add_fault(rule);
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.shared.clear_faults();
    }

    /// Stops accepting connections, lets in-flight answers finish, and waits for the server.
    pub async fn shutdown(self) -> std::io::Result<()> {
        // The server may already have stopped on an error; its result is reported below.
        let _ = self.stop.send(());
        match self.task.await {
            Ok(result) => result,
            Err(err) => Err(std::io::Error::other(err)),
        }
    }
}

/// Runs the mock on `listener` until the process ends (for `llmux mock-upstream --listen ADDR`).
pub async fn run(listener: TcpListener, opts: MockOptions) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "llmux mock upstream listening");
    let shared = Arc::new(state::Shared::new(opts));
    serve(listener, shared, std::future::pending()).await
}

/// Serves the mock on `listener` until `signal` completes.
async fn serve(
    listener: TcpListener,
    shared: Arc<state::Shared>,
    signal: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = listener.tap_io(|tcp| {
        // Small SSE frames must leave at once; Nagle would hold them back.
        if let Err(err) = tcp.set_nodelay(true) {
            tracing::debug!(error = %err, "mock could not set TCP_NODELAY");
        }
    });
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(signal)
        .await
}

/// Every route of the mock.
fn router(shared: Arc<state::Shared>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(openai::chat))
        .route("/v1beta/openai/chat/completions", post(openai::chat))
        .route("/v1/responses", post(openai::responses))
        .route("/v1/embeddings", post(openai::embeddings))
        .route("/v1/models", get(openai::models))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1beta/models/{*target}", post(gemini::models))
        .route(
            "/__mock/calls",
            get(admin::calls).delete(admin::clear_calls),
        )
        .route(
            "/__mock/faults",
            post(admin::add_fault).delete(admin::clear_faults),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such mock route") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(shared)
}

//! The accept loop. Every client connection is hostile until proven otherwise, so each one is
//! bounded in time and number:
//! - at most `limits.max_connections` are open; one past it is closed at once (and logged, at
//!   most once a second);
//! - the protocol (HTTP/1.1 or h2c, told apart by the HTTP/2 preface) must be known within
//!   `timeouts.header_read_ms`, and HTTP/1.1 request heads must arrive within it too;
//! - a connection with no request open for `timeouts.client_idle_ms` is closed (HTTP/1.1
//!   keep-alive and HTTP/2 alike); HTTP/2 connections are also pinged, so a dead peer is noticed;
//! - on shutdown, in-flight requests and streams may finish within a drain deadline.
//!
//! `TCP_NODELAY` is set so small SSE frames leave at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};

/// The largest read buffer of a client connection, which also bounds a request head. hyper's
/// default (~400 KiB) lets the buffer double past 8 KiB on a connection's first request (the
/// HTTP/2 preface check leaves bytes in it), and every open stream keeps that buffer; bodies
/// are read through it chunk by chunk, so they are not limited by it.
const READ_BUF_MAX: usize = 8 * 1024;

/// What an HTTP/2 connection starts with.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// HTTP/2 keep-alive: a ping after this much silence, and the connection is closed when the
/// ping is not answered within [`H2_PING_TIMEOUT`].
const H2_PING_INTERVAL: Duration = Duration::from_secs(30);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Streams one HTTP/2 client may open at once (hyper's default is 200; a request is cheap to
/// refuse, and `max_in_flight` bounds the total anyway).
const H2_MAX_STREAMS: u32 = 128;

/// Server-side limits.
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    /// A client must make its protocol known and send its request headers within this time.
    pub header_read_timeout: Duration,
    /// A connection with no request open is closed after this time.
    pub client_idle_timeout: Duration,
    /// Open client connections at most.
    pub max_connections: usize,
    /// After shutdown is requested, in-flight requests get this long to finish.
    pub drain_timeout: Duration,
}

impl ServerOptions {
    /// The limits in `config` (`timeouts:` and `limits:`), with a 30 s drain.
    pub fn from_config(config: &llmux_config::Config) -> Self {
        Self {
            header_read_timeout: Duration::from_millis(config.timeouts.header_read_ms),
            client_idle_timeout: Duration::from_millis(config.timeouts.client_idle_ms),
            max_connections: config.limits.max_connections,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains.
pub async fn serve(
    listener: TcpListener,
    app: crate::edge::App,
    options: ServerOptions,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        .keep_alive(true)
        .max_buf_size(READ_BUF_MAX);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(H2_PING_INTERVAL)
        .keep_alive_timeout(H2_PING_TIMEOUT)
        .max_concurrent_streams(H2_MAX_STREAMS);
    // The protocol is decided here (with a deadline), so each builder serves one protocol and
    // never waits for a preface itself.
    let builders = Arc::new(Builders {
        http1: builder.clone().http1_only(),
        http2: builder.http2_only(),
    });
    let max_connections = options.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(max_connections));
    let (closing_tx, closing) = watch::channel(false);
    let mut refusals = Refusals::default();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(err) => {
                        // Typically EMFILE: back off briefly instead of spinning.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                    refusals.note(peer, max_connections);
                    drop(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let connection = Connection {
                    builders: Arc::clone(&builders),
                    app: app.clone(),
                    options,
                    closing: closing.clone(),
                };
                llmux_telemetry::spawn_tracked(async move {
                    connection.run(stream).await;
                    drop(slot);
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    let open = max_connections - slots.available_permits();
    tracing::info!(
        connections = open,
        "shutting down: draining in-flight requests"
    );
    let _ = closing_tx.send(true);
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    tokio::select! {
        _ = slots.acquire_many(all) => tracing::info!("drained"),
        () = tokio::time::sleep(options.drain_timeout) => tracing::warn!("drain deadline reached; closing remaining connections"),
    }
}

struct Builders {
    http1: auto::Builder<TokioExecutor>,
    http2: auto::Builder<TokioExecutor>,
}

/// Connections refused at the cap, logged at most once a second.
#[derive(Default)]
struct Refusals {
    since_log: u64,
    last_log: Option<Instant>,
}

impl Refusals {
    fn note(&mut self, peer: std::net::SocketAddr, max: usize) {
        self.since_log += 1;
        if self
            .last_log
            .is_none_or(|at| at.elapsed() >= Duration::from_secs(1))
        {
            tracing::warn!(%peer, max_connections = max, refused = self.since_log,
                "connection refused: limits.max_connections reached");
            self.since_log = 0;
            self.last_log = Some(Instant::now());
        }
    }
}

/// One client connection on its way through the server.
struct Connection {
    builders: Arc<Builders>,
    app: crate::edge::App,
    options: ServerOptions,
    closing: watch::Receiver<bool>,
}

impl Connection {
    async fn run(mut self, mut stream: TcpStream) {
        let mut preface = Preface::default();
        let detected =
            tokio::time::timeout(self.options.header_read_timeout, preface.read(&mut stream)).await;
        let is_h2 = match detected {
            Ok(Ok(Some(is_h2))) => is_h2,
            // Closed, failed or too slow before saying which protocol: nothing to answer.
            Ok(Ok(None) | Err(_)) | Err(_) => return,
        };
        let activity = Arc::new(Activity::new(stream.peer_addr().ok()));
        let service = TowerToHyperService::new(self.app.for_connection(Arc::clone(&activity)));
        let io = TokioIo::new(Prefixed { preface, stream });
        let builder = if is_h2 {
            &self.builders.http2
        } else {
            &self.builders.http1
        };
        let connection = builder.serve_connection(io, service);
        tokio::pin!(connection);
        let idle = self.options.client_idle_timeout;
        let mut shutting_down = false;
        loop {
            tokio::select! {
                _ = connection.as_mut() => return,
                () = activity.idle_for(idle), if !shutting_down => {
                    connection.as_mut().graceful_shutdown();
                    shutting_down = true;
                }
                changed = self.closing.changed(), if !shutting_down => {
                    if changed.is_err() || *self.closing.borrow() {
                        connection.as_mut().graceful_shutdown();
                        shutting_down = true;
                    }
                }
            }
        }
    }
}

/// Requests open on one connection, and a count of requests begun, so an idle connection can be
/// closed. Updated with two atomic operations per request and no clock read: the watchdog
/// checks once per idle period whether anything happened since its last look, so a connection
/// is closed after one to two idle periods without a request.
#[derive(Debug)]
pub struct Activity {
    /// The client's address.
    pub peer: Option<std::net::SocketAddr>,
    open: AtomicUsize,
    begun: AtomicU64,
}

/// One request open on a connection; dropping it (when its response body ends or is dropped)
/// marks the end of the request.
#[derive(Debug)]
pub struct ActiveRequest(Arc<Activity>);

impl Activity {
    fn new(peer: Option<std::net::SocketAddr>) -> Self {
        Self {
            peer,
            open: AtomicUsize::new(0),
            begun: AtomicU64::new(0),
        }
    }

    /// Marks a request as open until the returned guard is dropped.
    pub fn begin(self: &Arc<Self>) -> ActiveRequest {
        self.open.fetch_add(1, Ordering::AcqRel);
        self.begun.fetch_add(1, Ordering::Relaxed);
        ActiveRequest(Arc::clone(self))
    }

    /// Resolves once a whole idle period passed with no request open and none begun.
    async fn idle_for(&self, idle: Duration) {
        let mut idle_seen_at = None;
        loop {
            tokio::time::sleep(idle.max(Duration::from_millis(1))).await;
            let begun = self.begun.load(Ordering::Relaxed);
            if self.open.load(Ordering::Acquire) > 0 {
                idle_seen_at = None;
            } else if idle_seen_at == Some(begun) {
                return;
            } else {
                idle_seen_at = Some(begun);
            }
        }
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The first bytes of a connection, read to tell HTTP/2's preface from an HTTP/1.1 request,
/// and handed back to hyper before the rest of the stream.
#[derive(Default)]
struct Preface {
    bytes: [u8; 24],
    len: usize,
    consumed: usize,
}

impl Preface {
    /// Reads until the bytes are the HTTP/2 preface (`Some(true)`) or cannot become it
    /// (`Some(false)`); `None` when the client closed first.
    async fn read(&mut self, stream: &mut TcpStream) -> std::io::Result<Option<bool>> {
        loop {
            if self.bytes[..self.len] != H2_PREFACE[..self.len] {
                return Ok(Some(false));
            }
            if self.len == H2_PREFACE.len() {
                return Ok(Some(true));
            }
            let read = stream.read(&mut self.bytes[self.len..]).await?;
            if read == 0 {
                return Ok(None);
            }
            self.len += read;
        }
    }

    fn remaining(&self) -> &[u8] {
        &self.bytes[self.consumed..self.len]
    }
}

/// The connection's stream with the preface bytes put back in front.
struct Prefixed {
    preface: Preface,
    stream: TcpStream,
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let remaining = self.preface.remaining();
        if !remaining.is_empty() {
            let n = remaining.len().min(buf.remaining());
            buf.put_slice(&remaining[..n]);
            self.preface.consumed += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

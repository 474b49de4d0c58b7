//! The accept loop: hyper-util's auto (HTTP/1.1 + h2c) connection builder with a header-read
//! timeout against slow clients, `TCP_NODELAY` so small SSE frames leave at once, and graceful
//! shutdown that lets in-flight requests and streams finish within a drain deadline.

use std::future::Future;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// The largest read buffer of a client connection, which also bounds a request head. hyper's
/// default (~400 KiB) lets the buffer double past 8 KiB on a connection's first request (the
/// HTTP/2 preface check leaves bytes in it), and every open stream keeps that buffer; bodies
/// are read through it chunk by chunk, so they are not limited by it.
const READ_BUF_MAX: usize = 8 * 1024;

/// Server-side limits.
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    /// A client must send its request headers within this time.
    pub header_read_timeout: Duration,
    /// After shutdown is requested, in-flight requests get this long to finish.
    pub drain_timeout: Duration,
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
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, _peer) = match accepted {
                    Ok(conn) => conn,
                    Err(err) => {
                        // Typically EMFILE: back off briefly instead of spinning.
                        tracing::warn!(error = %err, "accept failed");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let service = TowerToHyperService::new(app.clone());
                let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service).into_owned();
                let connection = graceful.watch(connection);
                tokio::spawn(async move {
                    let _ = connection.await;
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!(
        connections = graceful.count(),
        "shutting down: draining in-flight requests"
    );
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("drained"),
        () = tokio::time::sleep(options.drain_timeout) => tracing::warn!("drain deadline reached; closing remaining connections"),
    }
}

//! The pooled HTTP client behind every vendor call: hyper-util's legacy `Client` over an
//! HTTPS-or-HTTP connector (rustls with the ring provider and the webpki roots), keep-alive pools
//! per host, `TCP_NODELAY`, a deadline on the whole connect (TCP and TLS), no redirects (nothing
//! here follows them) and no per-request URL parsing.
//!
//! HTTP/1.1 only (ALPN offers just `http/1.1`): with HTTP/2 the pool keeps one multiplexed
//! connection per host, and once a vendor's concurrent-stream limit is reached every further
//! request queues behind it — a gateway's whole traffic to a vendor would share one TCP
//! connection. A pool of HTTP/1.1 connections grows with the load instead.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

type BoxError = Box<dyn StdError + Send + Sync>;

/// The connector: TCP (+ TLS for `https`), bounded by the connect timeout.
pub(crate) type Connector = Bounded<HttpsConnector<HttpConnector>>;

/// A pooled client; cheap to clone (clones share the pool).
pub(crate) type Client = hyper_util::client::legacy::Client<Connector, Full<Bytes>>;

/// Idle pooled connections are closed after this long.
const POOL_IDLE: Duration = Duration::from_secs(90);
/// TCP keep-alive probes on upstream connections (what reqwest did by default).
const TCP_KEEPALIVE: Duration = Duration::from_secs(15);

/// The connect timeout fired (TCP connect plus TLS handshake took too long).
#[derive(Debug, thiserror::Error)]
#[error("connect timed out")]
pub(crate) struct ConnectTimeout;

/// Builds a client whose connects (TCP and TLS) take at most `connect`.
pub(crate) fn build(connect: Duration) -> Result<Client, BoxError> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect));
    http.set_keepalive(Some(TCP_KEEPALIVE));
    http.set_keepalive_interval(Some(TCP_KEEPALIVE));
    http.set_keepalive_retries(Some(3));
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls_config()?.as_ref().clone())
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let connector = Bounded {
        inner: https,
        timeout: connect,
    };
    let mut builder = hyper_util::client::legacy::Client::builder(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE)
        .pool_max_idle_per_host(1024);
    Ok(builder.build(connector))
}

/// One TLS configuration per process: loading the root store is the costly part (time and
/// memory), and every snapshot's clients can share it.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, BoxError> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    if let Some(config) = CONFIG.get() {
        return Ok(config.clone());
    }
    // A provider installed by the process wins; else ring (the only one in the tree, see deny.toml).
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(CONFIG.get_or_init(|| Arc::new(config)).clone())
}

/// Whether a send error is a timeout (ours on the whole connect, or the TCP connect's own).
pub(crate) fn is_timeout(err: &(dyn StdError + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(e) = source {
        if e.is::<ConnectTimeout>() {
            return true;
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        source = e.source();
    }
    false
}

/// A connector whose whole connect (TCP and TLS) is bounded by `timeout`.
#[derive(Debug, Clone)]
pub(crate) struct Bounded<C> {
    inner: C,
    timeout: Duration,
}

type Connecting<T> = Pin<Box<dyn Future<Output = Result<T, BoxError>> + Send>>;

impl<C> tower::Service<Uri> for Bounded<C>
where
    C: tower::Service<Uri>,
    C::Error: Into<BoxError>,
    C::Future: Send + 'static,
    C::Response: 'static,
{
    type Response = C::Response;
    type Error = BoxError;
    type Future = Connecting<C::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(result) => result.map_err(Into::into),
                Err(_) => Err(Box::new(ConnectTimeout) as BoxError),
            }
        })
    }
}

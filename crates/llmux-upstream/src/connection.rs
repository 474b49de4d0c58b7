//! One connection to a vendor: TCP (`TCP_NODELAY`, keep-alive probes) and, for `https`, rustls
//! (ring provider, webpki roots, ALPN `http/1.1` only), the whole connect under one deadline.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::client::SendError;

/// TCP keep-alive probes on upstream connections.
const TCP_KEEPALIVE: Duration = Duration::from_secs(15);

/// Where and how to connect: fixed per vendor host at config load.
#[derive(Clone)]
pub(crate) struct Target {
    /// Host name or IP literal (without IPv6 brackets), as DNS or the socket wants it.
    host: String,
    port: u16,
    tls: Option<(ServerName<'static>, TlsConnector)>,
    timeout: Duration,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Target {
    /// The host of `uri` (`http` or `https`), connected to within `timeout`.
    pub(crate) fn new(uri: &Uri, timeout: Duration) -> Result<Self, &'static str> {
        let tls = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("base_url must be http or https"),
        };
        let host = uri.host().ok_or("base_url has no host")?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_owned();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let tls = if tls {
            let name = ServerName::try_from(host.clone()).map_err(|_| "invalid TLS server name")?;
            let config = tls_config().map_err(|_| "cannot set up TLS")?;
            Some((name, TlsConnector::from(config)))
        } else {
            None
        };
        Ok(Self {
            host,
            port,
            tls,
            timeout,
        })
    }

    /// Opens a connection: TCP, then TLS when the target wants it, all within the deadline.
    pub(crate) async fn connect(&self) -> Result<Io, SendError> {
        let connecting = async {
            let tcp = TcpStream::connect((self.host.as_str(), self.port))
                .await
                .map_err(SendError::Connect)?;
            tcp.set_nodelay(true).map_err(SendError::Connect)?;
            let keepalive = socket2::TcpKeepalive::new()
                .with_time(TCP_KEEPALIVE)
                .with_interval(TCP_KEEPALIVE)
                .with_retries(3);
            socket2::SockRef::from(&tcp)
                .set_tcp_keepalive(&keepalive)
                .map_err(SendError::Connect)?;
            match &self.tls {
                None => Ok(Io::Plain(tcp)),
                Some((name, connector)) => {
                    let tls = connector
                        .connect(name.clone(), tcp)
                        .await
                        .map_err(SendError::Connect)?;
                    Ok(Io::Tls(Box::new(tls)))
                }
            }
        };
        tokio::time::timeout(self.timeout, connecting)
            .await
            .map_err(|_| SendError::ConnectTimeout)?
    }
}

/// One TLS configuration per process: loading the root store is the costly part (time and
/// memory), and every snapshot's pools can share it.
fn tls_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
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
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(CONFIG.get_or_init(|| Arc::new(config)).clone())
}

/// A plain or TLS connection.
pub(crate) enum Io {
    Plain(TcpStream),
    /// Boxed: a rustls connection is a few KiB and most targets are plain in tests.
    Tls(Box<TlsStream<TcpStream>>),
}

impl std::fmt::Debug for Io {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Plain(_) => "Io::Plain",
            Self::Tls(_) => "Io::Tls",
        })
    }
}

impl Io {
    /// Whether an idle pooled connection has been closed (or sent something unasked) by the
    /// vendor. Costs no system call unless the socket was reported readable.
    pub(crate) fn is_closed(&self) -> bool {
        let tcp = match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(tls) => tls.get_ref().0,
        };
        // Any byte counts as closed: an idle HTTP/1.1 connection has nothing to say, and a
        // TLS record read here would desynchronise the session anyway.
        !matches!(tcp.try_read(&mut [0u8; 1]), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Self::Plain(tcp) => tcp.is_write_vectored(),
            Self::Tls(tls) => tls.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Self::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}

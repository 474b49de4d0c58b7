//! One connection to a vendor: TCP (`TCP_NODELAY`, keep-alive probes), a CONNECT tunnel when a
//! proxy is configured, and, for `https`, rustls (ring provider; webpki and/or system roots plus
//! `tls.ca_file`; ALPN `http/1.1` only), the whole connect under one deadline.

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

use llmux_config::{Tls, TlsRoots};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use crate::Error;
use crate::client::SendError;
use crate::proxy::Proxy;

/// TCP keep-alive probes on upstream connections.
const TCP_KEEPALIVE: Duration = Duration::from_secs(15);

/// Where and how to connect: fixed per vendor host at config load.
#[derive(Clone)]
pub(crate) struct Target {
    /// Host name or IP literal (without IPv6 brackets), as DNS or the socket wants it.
    host: String,
    port: u16,
    tls: Option<(ServerName<'static>, TlsConnector)>,
    /// The HTTP proxy vendor traffic to this host goes through (a CONNECT tunnel), if any.
    proxy: Option<Arc<Proxy>>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("proxy", &self.proxy)
            .finish()
    }
}

impl Target {
    /// The host of `uri` (`http` or `https`); `tls` is the client configuration for `https`
    /// and `proxy` the tunnel to go through.
    pub(crate) fn new(
        uri: &Uri,
        tls: &Arc<rustls::ClientConfig>,
        proxy: Option<Arc<Proxy>>,
    ) -> Result<Self, &'static str> {
        let (host, port, is_tls) = host_port(uri)?;
        let tls = if is_tls {
            let name = ServerName::try_from(host.clone()).map_err(|_| "invalid TLS server name")?;
            Some((name, TlsConnector::from(Arc::clone(tls))))
        } else {
            None
        };
        Ok(Self {
            host,
            port,
            tls,
            proxy,
        })
    }

    /// Opens a connection: TCP (to the proxy, then a tunnel through it, when there is one),
    /// then TLS when the target wants it, all within `timeout`.
    pub(crate) async fn connect(&self, timeout: Duration) -> Result<Io, SendError> {
        let connecting = async {
            let tcp = match &self.proxy {
                None => tcp_connect(&self.host, self.port).await?,
                Some(proxy) => {
                    let mut tcp = tcp_connect(proxy.host(), proxy.port()).await?;
                    proxy
                        .tunnel(&mut tcp, &self.host, self.port)
                        .await
                        .map_err(SendError::Connect)?;
                    tcp
                }
            };
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
        tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| SendError::ConnectTimeout)?
    }
}

/// The host (IPv6 brackets removed), port and whether `uri` is `https`.
pub(crate) fn host_port(uri: &Uri) -> Result<(String, u16, bool), &'static str> {
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
        .to_ascii_lowercase();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    Ok((host, port, tls))
}

/// TCP with `TCP_NODELAY` and keep-alive probes.
async fn tcp_connect(host: &str, port: u16) -> Result<TcpStream, SendError> {
    let tcp = TcpStream::connect((host, port))
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
    Ok(tcp)
}

/// The TLS client configuration for `tls`: which roots, plus the CA file. The default (webpki
/// roots only) is built once per process: loading a root store is the costly part (time and
/// memory), and every snapshot's pools can share it.
pub(crate) fn tls_config(tls: &Tls) -> Result<Arc<rustls::ClientConfig>, Error> {
    static DEFAULT: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    let default = tls.ca_file.is_none() && tls.roots == TlsRoots::Webpki;
    if default && let Some(config) = DEFAULT.get() {
        return Ok(Arc::clone(config));
    }
    let mut roots = rustls::RootCertStore::empty();
    if matches!(tls.roots, TlsRoots::Webpki | TlsRoots::Both) {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    if matches!(tls.roots, TlsRoots::System | TlsRoots::Both) {
        let native = rustls_native_certs::load_native_certs();
        let (added, _ignored) = roots.add_parsable_certificates(native.certs);
        if added == 0 && tls.roots == TlsRoots::System && tls.ca_file.is_none() {
            return Err(build_error(format!(
                "tls.roots is 'system' but no system CA certificate could be loaded ({} errors)",
                native.errors.len()
            )));
        }
    }
    if let Some(path) = &tls.ca_file {
        let shown = path.display();
        let certs = CertificateDer::pem_file_iter(path)
            .map_err(|e| build_error(format!("cannot read tls.ca_file '{shown}': {e}")))?;
        let mut count = 0usize;
        for cert in certs {
            let cert =
                cert.map_err(|e| build_error(format!("cannot parse tls.ca_file '{shown}': {e}")))?;
            roots.add(cert).map_err(|e| {
                build_error(format!(
                    "tls.ca_file '{shown}' holds a certificate that is not a valid CA: {e}"
                ))
            })?;
            count += 1;
        }
        if count == 0 {
            return Err(build_error(format!(
                "tls.ca_file '{shown}' holds no PEM certificate"
            )));
        }
    }
    // A provider installed by the process wins; else ring (the only one in the tree, see deny.toml).
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Build(Box::new(e)))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let config = Arc::new(config);
    if default {
        return Ok(Arc::clone(DEFAULT.get_or_init(|| config)));
    }
    Ok(config)
}

fn build_error(message: String) -> Error {
    Error::Build(message.into())
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
    /// vendor: one non-blocking `MSG_PEEK` on the socket. It asks the kernel rather than the
    /// runtime's readiness flags, which may not have seen a close that already arrived; a
    /// request written to such a connection could not be safely re-sent.
    pub(crate) fn is_closed(&self) -> bool {
        let tcp = match self {
            Self::Plain(tcp) => tcp,
            Self::Tls(tls) => tls.get_ref().0,
        };
        // Any byte counts as closed: an idle HTTP/1.1 connection has nothing to say, and a
        // TLS record read here would desynchronise the session anyway.
        let mut byte = [std::mem::MaybeUninit::<u8>::uninit(); 1];
        !matches!(
            socket2::SockRef::from(tcp).peek(&mut byte),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock
        )
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

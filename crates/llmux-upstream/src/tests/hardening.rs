//! What a client or a vendor sends cannot make the client misuse a credential, re-send a
//! request, hold unbounded memory or open unbounded connections; proxies and private CAs.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use llmux_config::{Format, Images};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, Semaphore};

use super::{LENGTH_ANSWER, SECRET, one_answer, post, read_all};
use crate::images::{ImageBudget, ImageError, ImageFetcher};
use crate::*;

/// What the scripted vendor does with its n-th request (the last entry repeats).
#[derive(Clone)]
enum Reply {
    /// Answer and keep the connection.
    Answer(Vec<u8>),
    /// Answer, then close the connection.
    AnswerThenClose(Vec<u8>),
    /// Read the whole request, then close without answering.
    Close,
    /// Answer once the test releases a permit.
    Hold(Vec<u8>),
}

/// A scripted vendor that records what it saw.
struct Vendor {
    addr: SocketAddr,
    state: Arc<State>,
}

struct State {
    connections: AtomicUsize,
    closed: AtomicUsize,
    requests: Mutex<Vec<(String, Vec<u8>)>>,
    changed: Notify,
    release: Semaphore,
}

impl Default for State {
    fn default() -> Self {
        Self {
            connections: AtomicUsize::new(0),
            closed: AtomicUsize::new(0),
            requests: Mutex::default(),
            changed: Notify::new(),
            release: Semaphore::new(0),
        }
    }
}

impl State {
    fn bump(&self) {
        self.changed.notify_waiters();
    }
}

impl Vendor {
    async fn start(script: Vec<Reply>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let shared = Arc::clone(&state);
        let script = Arc::new(script);
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                shared.connections.fetch_add(1, Ordering::SeqCst);
                shared.bump();
                tokio::spawn(serve(socket, Arc::clone(&shared), Arc::clone(&script)));
            }
        });
        Self { addr, state }
    }

    fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    fn closed(&self) -> usize {
        self.state.closed.load(Ordering::SeqCst)
    }

    fn requests(&self) -> Vec<(String, Vec<u8>)> {
        self.state.requests.lock().unwrap().clone()
    }

    fn bodies(&self) -> Vec<Vec<u8>> {
        self.requests().into_iter().map(|(_, body)| body).collect()
    }

    fn release(&self, n: usize) {
        self.state.release.add_permits(n);
    }

    /// Waits (without sleeping) until `done` holds.
    async fn wait_until(&self, done: impl Fn(&Self) -> bool) {
        loop {
            let changed = self.state.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if done(self) {
                return;
            }
            changed.await;
        }
    }
}

/// Reads one request (head, then content-length bytes of body) off `socket`.
async fn read_request(socket: &mut TcpStream, pending: &mut Vec<u8>) -> Option<(String, Vec<u8>)> {
    let mut buf = [0u8; 8192];
    let (head_end, length) = loop {
        if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            break (end + 4, length);
        }
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    };
    while pending.len() < head_end + length {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&pending[..head_end]).into_owned();
    let body = pending[head_end..head_end + length].to_vec();
    pending.drain(..head_end + length);
    Some((head, body))
}

async fn serve(mut socket: TcpStream, state: Arc<State>, script: Arc<Vec<Reply>>) {
    let mut pending = Vec::new();
    while let Some(request) = read_request(&mut socket, &mut pending).await {
        let index = {
            let mut requests = state.requests.lock().unwrap();
            requests.push(request);
            requests.len() - 1
        };
        state.bump();
        let reply = script[index.min(script.len() - 1)].clone();
        let (answer, close) = match reply {
            Reply::Answer(answer) => (answer, false),
            Reply::AnswerThenClose(answer) => (answer, true),
            Reply::Close => (Vec::new(), true),
            Reply::Hold(answer) => {
                state.release.acquire().await.unwrap().forget();
                (answer, false)
            }
        };
        if socket.write_all(&answer).await.is_err() {
            break;
        }
        if close {
            break;
        }
    }
    drop(socket);
    state.closed.fetch_add(1, Ordering::SeqCst);
    state.bump();
}

fn endpoint_with(base_url: &str, connect_ms: u64, options: &UpstreamOptions) -> Endpoint {
    let yaml = format!(
        "credentials:\n  - {{ platform: openai, value: {SECRET}, base_url: \"{base_url}\" }}\nmodels:\n  - {{ vendor: openai, model: m }}\ntimeouts: {{ connect_ms: {connect_ms} }}\n"
    );
    let config = llmux_config::from_str(&yaml, Format::Yaml, &|_| None).unwrap();
    Endpoints::prepare_with(&config.credentials, options)
        .unwrap()
        .get(0)
        .unwrap()
        .clone()
}

fn plain(addr: SocketAddr) -> Endpoint {
    endpoint_with(
        &format!("http://{addr}/v1"),
        1000,
        &UpstreamOptions::default(),
    )
}

// --- Task 3: a written request is never re-sent -------------------------------------------

#[tokio::test]
async fn a_connection_the_vendor_closed_after_answering_is_not_reused_and_nothing_is_sent_twice() {
    let vendor = Vendor::start(vec![Reply::AnswerThenClose(LENGTH_ANSWER.into())]).await;
    let endpoint = plain(vendor.addr);
    for i in 0..3 {
        let body = format!("{{\"n\":{i}}}");
        let mut response = endpoint
            .post_json(&endpoint.chat_url, body.as_bytes(), false)
            .await
            .unwrap_or_else(|e| panic!("request {i}: {e}"));
        assert_eq!(read_all(&mut response).await.unwrap(), br#"{"a":1}"#);
        // The close has reached this host: the pooled connection must be seen as closed.
        vendor.wait_until(|v| v.closed() == i + 1).await;
    }
    assert_eq!(vendor.connections(), 3, "one fresh connection per request");
    assert_eq!(
        vendor.bodies(),
        vec![
            br#"{"n":0}"#.to_vec(),
            br#"{"n":1}"#.to_vec(),
            br#"{"n":2}"#.to_vec()
        ]
    );
}

#[tokio::test]
async fn a_request_the_vendor_read_and_dropped_is_an_error_not_a_second_post() {
    // On a pooled connection.
    let vendor = Vendor::start(vec![Reply::Answer(LENGTH_ANSWER.into()), Reply::Close]).await;
    let endpoint = plain(vendor.addr);
    let mut response = post(&endpoint, false).await;
    read_all(&mut response).await.unwrap();
    let err = endpoint
        .post_json(&endpoint.chat_url, b"{\"second\":1}", false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UpstreamUnreachable);
    assert_eq!(
        vendor.bodies(),
        vec![b"{}".to_vec(), b"{\"second\":1}".to_vec()]
    );
    assert_eq!(vendor.connections(), 1);

    // On a fresh connection.
    let vendor = Vendor::start(vec![Reply::Close]).await;
    let endpoint = plain(vendor.addr);
    let err = endpoint
        .post_json(&endpoint.chat_url, b"{\"once\":1}", false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UpstreamUnreachable);
    assert_eq!(vendor.bodies(), vec![b"{\"once\":1}".to_vec()]);
    assert_eq!(vendor.connections(), 1);
}

// --- Task 2: reads from the vendor are bounded ----------------------------------------------

#[tokio::test]
async fn an_endless_response_head_is_refused_without_reading_it_all() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        read_request(&mut socket, &mut Vec::new()).await.unwrap();
        socket.write_all(b"HTTP/1.1 200 OK\r\nx: ").await.unwrap();
        let block = vec![b'a'; 64 * 1024];
        let mut sent = 0;
        while sent < 10 * 1024 * 1024 {
            if socket.write_all(&block).await.is_err() {
                break;
            }
            sent += block.len();
        }
        sent
    });
    let endpoint = plain(addr);
    let err = endpoint
        .post_json(&endpoint.chat_url, b"{}", false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UpstreamProtocol);
    assert!(
        matches!(err, Error::Send(SendError::Head(HeadError::TooLarge))),
        "{err:?}"
    );
    drop(endpoint);
    let sent = server.await.unwrap();
    assert!(sent < 10 * 1024 * 1024, "the client stopped reading early");
}

#[tokio::test]
async fn an_overflowing_chunk_size_is_a_body_error() {
    let (addr, _server) = one_answer(
        "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc",
    )
    .await;
    let endpoint = plain(addr);
    let mut response = post(&endpoint, false).await;
    assert!(read_all(&mut response).await.is_err());
}

#[tokio::test]
async fn a_huge_content_length_is_a_protocol_error() {
    for length in ["99999999999999999999", "1099511627777"] {
        let answer: &'static str = Box::leak(
            format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\nabc").into_boxed_str(),
        );
        let (addr, _server) = one_answer(answer).await;
        let endpoint = plain(addr);
        let err = endpoint
            .post_json(&endpoint.chat_url, b"{}", false)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UpstreamProtocol, "{length}");
        assert!(
            matches!(err, Error::Send(SendError::Head(HeadError::ContentLength))),
            "{err:?}"
        );
    }
}

#[tokio::test]
async fn a_head_sent_byte_by_byte_arrives_whole() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        socket.set_nodelay(true).unwrap();
        read_request(&mut socket, &mut Vec::new()).await.unwrap();
        for byte in LENGTH_ANSWER.as_bytes() {
            socket.write_all(&[*byte]).await.unwrap();
            socket.flush().await.unwrap();
            tokio::task::yield_now().await;
        }
        // Keep the connection open until the client is done.
        let _ = socket.read(&mut [0u8; 1]).await;
    });
    let endpoint = plain(addr);
    let mut response = post(&endpoint, false).await;
    assert_eq!(response.status(), 200);
    assert_eq!(read_all(&mut response).await.unwrap(), br#"{"a":1}"#);
}

// --- Task 6: connections per host are capped ------------------------------------------------

fn capped(addr: SocketAddr, cap: usize, connect_ms: u64) -> Endpoint {
    let options = UpstreamOptions {
        connections_per_host: cap,
        ..UpstreamOptions::default()
    };
    endpoint_with(&format!("http://{addr}/v1"), connect_ms, &options)
}

#[tokio::test]
async fn requests_past_the_connection_cap_wait_for_a_connection() {
    let vendor = Vendor::start(vec![Reply::Hold(LENGTH_ANSWER.into())]).await;
    let endpoint = capped(vendor.addr, 2, 10_000);
    let requests: Vec<_> = (0..3)
        .map(|_| {
            let endpoint = endpoint.clone();
            tokio::spawn(async move {
                let mut response = post(&endpoint, false).await;
                read_all(&mut response).await.unwrap()
            })
        })
        .collect();
    vendor.wait_until(|v| v.requests().len() == 2).await;
    assert_eq!(vendor.connections(), 2);
    vendor.release(3);
    for request in requests {
        assert_eq!(request.await.unwrap(), br#"{"a":1}"#);
    }
    assert_eq!(vendor.requests().len(), 3);
    assert_eq!(
        vendor.connections(),
        2,
        "the third request reused a connection"
    );
}

#[tokio::test]
async fn a_request_that_finds_no_free_connection_within_the_connect_timeout_fails() {
    let vendor = Vendor::start(vec![Reply::Hold(LENGTH_ANSWER.into())]).await;
    let endpoint = capped(vendor.addr, 1, 100);
    let first = {
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            let mut response = post(&endpoint, false).await;
            read_all(&mut response).await.unwrap()
        })
    };
    vendor.wait_until(|v| v.requests().len() == 1).await;
    let err = endpoint
        .post_json(&endpoint.chat_url, b"{}", false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UpstreamTimeout);
    assert!(
        matches!(err, Error::Send(SendError::PoolFull(1))),
        "{err:?}"
    );
    vendor.release(1);
    assert_eq!(first.await.unwrap(), br#"{"a":1}"#);
    // The connection came back: the next request goes on it.
    vendor.release(1);
    let mut response = post(&endpoint, false).await;
    read_all(&mut response).await.unwrap();
    assert_eq!(vendor.connections(), 1);
}

// --- Task 4: proxies ---------------------------------------------------------------------

/// A CONNECT proxy that records each request head and tunnels to the authority asked for.
async fn connect_proxy() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&heads);
    tokio::spawn(async move {
        loop {
            let (mut client, _) = listener.accept().await.unwrap();
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                // Byte by byte, so nothing past the head is read here.
                let mut head = Vec::new();
                while !head.ends_with(b"\r\n\r\n") {
                    let mut byte = [0u8; 1];
                    if client.read_exact(&mut byte).await.is_err() {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8(head).unwrap();
                let authority = head
                    .strip_prefix("CONNECT ")
                    .and_then(|rest| rest.split(' ').next())
                    .unwrap()
                    .to_owned();
                seen.lock().unwrap().push(head);
                let mut upstream = TcpStream::connect(authority).await.unwrap();
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .unwrap();
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (addr, heads)
}

fn env_of(pairs: Vec<(&'static str, String)>) -> impl Fn(&str) -> Option<String> {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    }
}

fn options_from_env(env: &dyn Fn(&str) -> Option<String>) -> UpstreamOptions {
    let config = llmux_config::Config::default();
    UpstreamOptions::from_config(&config, env).unwrap()
}

#[tokio::test]
async fn vendors_are_reached_through_a_connect_proxy_unless_no_proxy_says_otherwise() {
    let (proxy, heads) = connect_proxy().await;
    let (vendor, server) = one_answer(LENGTH_ANSWER).await;
    let options = options_from_env(&env_of(vec![
        ("HTTP_PROXY", format!("http://user:pw@{proxy}")),
        ("NO_PROXY", "example.com, .internal".to_owned()),
    ]));
    let endpoint = endpoint_with(&format!("http://{vendor}/v1"), 1000, &options);
    let mut response = post(&endpoint, false).await;
    assert_eq!(read_all(&mut response).await.unwrap(), br#"{"a":1}"#);
    let request = server.await.unwrap();
    assert!(
        request.starts_with("POST /v1/chat/completions HTTP/1.1\r\n"),
        "{request}"
    );
    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 1);
    assert!(
        heads[0].starts_with(&format!("CONNECT {vendor} HTTP/1.1\r\n")),
        "{}",
        heads[0]
    );
    assert!(heads[0].contains(&format!("Host: {vendor}\r\n")));
    // base64("user:pw")
    assert!(heads[0].contains("Proxy-Authorization: Basic dXNlcjpwdw==\r\n"));

    // NO_PROXY names the vendor's address: the proxy sees nothing.
    let (proxy, heads) = connect_proxy().await;
    let (vendor, server) = one_answer(LENGTH_ANSWER).await;
    let options = options_from_env(&env_of(vec![
        ("http_proxy", format!("http://{proxy}")),
        ("no_proxy", "127.0.0.1".to_owned()),
    ]));
    let endpoint = endpoint_with(&format!("http://{vendor}/v1"), 1000, &options);
    let mut response = post(&endpoint, false).await;
    assert_eq!(read_all(&mut response).await.unwrap(), br#"{"a":1}"#);
    server.await.unwrap();
    assert!(heads.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_proxy_that_refuses_the_tunnel_is_a_connect_failure() {
    let (proxy, _server) =
        one_answer("HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\n\r\n").await;
    let options = options_from_env(&env_of(vec![("HTTP_PROXY", format!("http://{proxy}"))]));
    let endpoint = endpoint_with("http://vendor.invalid/v1", 1000, &options);
    let err = endpoint
        .post_json(&endpoint.chat_url, b"{}", false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UpstreamUnreachable);
    let Error::Send(SendError::Connect(io)) = &err else {
        panic!("{err:?}")
    };
    assert!(io.to_string().contains("status 407"), "{io}");
}

// --- Task 5: private CAs -------------------------------------------------------------------

/// A CA (its PEM) and a leaf for 127.0.0.1 signed by it (certificate and key, DER).
fn test_pki() -> (
    String,
    rustls::pki_types::CertificateDer<'static>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "llmux test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into());
    (ca.pem(), leaf.der().clone(), key)
}

/// Serves TLS with `cert`: answers each request with [`LENGTH_ANSWER`]; handshake failures
/// are counted and ignored.
async fn tls_vendor(
    cert: rustls::pki_types::CertificateDer<'static>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = tls.write_all(LENGTH_ANSWER.as_bytes()).await;
                let _ = tls.flush().await;
                let _ = tls.read(&mut buf).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_private_ca_file_is_trusted_and_nothing_else_is() {
    let (ca_pem, cert, key) = test_pki();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let vendor = tls_vendor(cert, key).await;
    let base = format!("https://{vendor}/v1");

    let trusted = UpstreamOptions {
        tls: llmux_config::Tls {
            ca_file: Some(ca_file.clone()),
            roots: llmux_config::TlsRoots::Webpki,
        },
        ..UpstreamOptions::default()
    };
    let endpoint = endpoint_with(&base, 2000, &trusted);
    let mut response = post(&endpoint, false).await;
    assert_eq!(read_all(&mut response).await.unwrap(), br#"{"a":1}"#);

    let endpoint = endpoint_with(&base, 2000, &UpstreamOptions::default());
    let err = endpoint
        .post_json(&endpoint.chat_url, b"{}", false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UpstreamUnreachable);
    assert!(matches!(err, Error::Send(SendError::Connect(_))), "{err:?}");

    // TLS to the vendor inside a proxy's tunnel.
    let (proxy, heads) = connect_proxy().await;
    let proxied = UpstreamOptions {
        tls: trusted.tls.clone(),
        ..options_from_env(&env_of(vec![("HTTPS_PROXY", format!("{proxy}"))]))
    };
    let endpoint = endpoint_with(&base, 2000, &proxied);
    let mut response = post(&endpoint, false).await;
    assert_eq!(read_all(&mut response).await.unwrap(), br#"{"a":1}"#);
    assert!(heads.lock().unwrap()[0].starts_with(&format!("CONNECT {vendor} HTTP/1.1")));
}

#[test]
fn an_unreadable_or_empty_ca_file_fails_at_prepare_time_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing-ca.pem");
    let empty = dir.path().join("empty-ca.pem");
    std::fs::write(&empty, "not a certificate\n").unwrap();
    for path in [missing, empty] {
        let options = UpstreamOptions {
            tls: llmux_config::Tls {
                ca_file: Some(path.clone()),
                roots: llmux_config::TlsRoots::Webpki,
            },
            ..UpstreamOptions::default()
        };
        let err = Endpoints::prepare_with(&[], &options).unwrap_err();
        assert!(matches!(err, Error::Build(_)));
        assert!(
            err.to_string().contains(&path.display().to_string()),
            "{err}"
        );
    }
}

// --- Task 7: image downloads ---------------------------------------------------------------

fn png(size: usize) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.resize(size, 0);
    png
}

fn image_answer(body: &[u8], chunked: bool) -> Vec<u8> {
    let mut out = if chunked {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n",
            body.len()
        )
        .into_bytes()
    } else {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes()
    };
    out.extend_from_slice(body);
    if chunked {
        out.extend_from_slice(b"\r\n0\r\n\r\n");
    }
    out
}

fn images(max_per_request: usize, max_total_bytes: usize) -> Images {
    Images {
        allow_addresses: vec!["127.0.0.1".parse().unwrap()],
        max_per_request,
        max_total_bytes,
        ..Images::default()
    }
}

#[tokio::test]
async fn one_request_fetches_a_bounded_number_of_images() {
    let server = Vendor::start(vec![Reply::Answer(image_answer(&png(100), false))]).await;
    let settings = images(2, 1 << 20);
    let fetcher = ImageFetcher::new(&settings).unwrap();
    let url = format!("http://{}/a.png", server.addr);
    let mut budget = ImageBudget::new(&settings);
    for _ in 0..2 {
        let image = fetcher.fetch_within(&url, &mut budget).await.unwrap();
        assert_eq!(image.media_type, "image/png");
    }
    let err = fetcher.fetch_within(&url, &mut budget).await.unwrap_err();
    assert_eq!(err, ImageError::TooMany(2));
    assert_eq!(err.to_string(), "a request may fetch at most 2 image URLs");
    assert_eq!(server.requests().len(), 2, "the third URL was not fetched");
    // Without a budget, `fetch` still works.
    fetcher.fetch(&url).await.unwrap();
}

#[tokio::test]
async fn one_request_downloads_a_bounded_number_of_bytes_counted_while_streaming() {
    for chunked in [false, true] {
        let server = Vendor::start(vec![Reply::Answer(image_answer(&png(1000), chunked))]).await;
        let settings = images(16, 1500);
        let fetcher = ImageFetcher::new(&settings).unwrap();
        let url = format!("http://{}/a.png", server.addr);
        let mut budget = ImageBudget::new(&settings);
        assert_eq!(
            fetcher
                .fetch_within(&url, &mut budget)
                .await
                .unwrap()
                .bytes
                .len(),
            1000
        );
        let err = fetcher.fetch_within(&url, &mut budget).await.unwrap_err();
        assert_eq!(err, ImageError::TotalTooLarge(1500), "chunked: {chunked}");
        assert!(budget.bytes_used() <= 1500);
    }
}

#[tokio::test]
async fn a_redirect_to_an_internal_address_is_refused() {
    let server = Vendor::start(vec![Reply::Answer(
        b"HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/latest/meta-data\r\ncontent-length: 0\r\n\r\n"
            .to_vec(),
    )])
    .await;
    let fetcher = ImageFetcher::new(&images(16, 1 << 20)).unwrap();
    let err = fetcher
        .fetch(&format!("http://{}/a.png", server.addr))
        .await
        .unwrap_err();
    assert!(matches!(err, ImageError::Refused(_)), "{err:?}");
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn through_the_image_proxy_the_target_is_still_checked() {
    // The "proxy" answers absolute-form requests itself.
    let proxy = Vendor::start(vec![Reply::Answer(image_answer(&png(100), false))]).await;
    let settings = Images {
        proxy: Some(format!("http://{}", proxy.addr)),
        ..images(16, 1 << 20)
    };
    let fetcher = ImageFetcher::new(&settings).unwrap();
    let image = fetcher.fetch("http://127.0.0.1:9/a.png").await.unwrap();
    assert_eq!(image.bytes.len(), 100);
    let requests = proxy.requests();
    assert!(
        requests[0]
            .0
            .starts_with("GET http://127.0.0.1:9/a.png HTTP/1.1"),
        "{}",
        requests[0].0
    );

    // A name that resolves to an internal address is refused before the proxy is asked.
    let settings = Images {
        proxy: Some(format!("http://{}", proxy.addr)),
        allow_addresses: Vec::new(),
        ..images(16, 1 << 20)
    };
    let fetcher = ImageFetcher::new(&settings).unwrap();
    let err = fetcher.fetch("http://localhost:9/a.png").await.unwrap_err();
    assert!(matches!(err, ImageError::Refused(_)), "{err:?}");
    assert_eq!(proxy.requests().len(), 1);
}

#![allow(
    clippy::disallowed_methods,
    reason = "tests spawn their own peers and load on the test runtime, which ends with the test: nothing to drain"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use llmux_config::Format;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

const SECRET: &str = "sk-test-abcdefghijklmnop";

fn endpoint(api: &str, base_url: &str, connect_ms: u64) -> Endpoint {
    let yaml = format!(
        "credentials:\n  - {{ platform: {api}, value: {SECRET}, base_url: \"{base_url}\" }}\nmodels:\n  - {{ vendor: {api}, model: m }}\ntimeouts: {{ connect_ms: {connect_ms} }}\n"
    );
    let config = llmux_config::from_str(&yaml, Format::Yaml, &|_| None).unwrap();
    let endpoints = Endpoints::prepare(&config.credentials).unwrap();
    endpoints.get(0).unwrap().clone()
}

/// Accepts one connection, returns the request head it read, and answers with `answer`.
async fn one_answer(answer: &'static str) -> (SocketAddr, tokio::task::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.unwrap();
            assert!(n > 0, "connection closed before the request head");
            head.extend_from_slice(&buf[..n]);
        }
        socket.write_all(answer.as_bytes()).await.unwrap();
        socket.shutdown().await.unwrap();
        String::from_utf8(head).unwrap()
    });
    (addr, task)
}

#[tokio::test]
async fn sends_only_our_headers_and_reads_the_body_in_chunks() {
    let (addr, server) = one_answer(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n",
    )
    .await;
    let endpoint = endpoint("openai", &format!("http://{addr}/v1"), 1000);
    let mut response = endpoint
        .post_json(&endpoint.chat_url, b"{}", true)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        body.extend_from_slice(&chunk);
    }
    assert_eq!(body, b"{\"a\":1}");
    let head = server.await.unwrap().to_ascii_lowercase();
    assert!(
        head.starts_with("post /v1/chat/completions http/1.1\r\n"),
        "{head}"
    );
    for expected in [
        format!("host: {addr}"),
        format!("authorization: bearer {}", SECRET.to_ascii_lowercase()),
        "content-type: application/json".to_owned(),
        "accept: text/event-stream".to_owned(),
        "content-length: 2".to_owned(),
        "user-agent: llmux/".to_owned(),
    ] {
        assert!(head.contains(&expected), "{expected} missing from {head}");
    }
}

#[tokio::test]
async fn forwarded_headers_replace_ours_and_never_carry_secrets_or_framing() {
    let (addr, server) = one_answer("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").await;
    let endpoint = endpoint("anthropic", &format!("http://{addr}/v1"), 1000);
    let header = |name: &'static str, value: &'static str| {
        (
            http::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        )
    };
    let extra = [
        header("anthropic-beta", "context-management-2025-06-27"),
        header("anthropic-version", "2099-01-01"),
        header("x-title", "my app"),
        // Whatever a caller passes, these never leave: llmux's key, framing, hop-by-hop.
        header("x-api-key", "sk-client-key"),
        header("authorization", "Bearer sk-client-key"),
        header("host", "evil.example"),
        header("content-length", "999"),
        header("transfer-encoding", "chunked"),
        header("cookie", "session=1"),
    ];
    let response = endpoint
        .post_json_with(&endpoint.messages_url, b"{}", false, &extra, None)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let head = server.await.unwrap();
    let lines: Vec<&str> = head.lines().collect();
    let count = |prefix: &str| lines.iter().filter(|l| l.starts_with(prefix)).count();
    for (line, times) in [
        ("anthropic-beta: context-management-2025-06-27", 1),
        ("anthropic-version: 2099-01-01", 1),
        ("anthropic-version:", 1),
        ("x-title: my app", 1),
        (&*format!("x-api-key: {SECRET}"), 1),
        ("x-api-key:", 1),
        (&*format!("host: {addr}"), 1),
        ("host:", 1),
        ("content-length: 2", 1),
        ("content-length:", 1),
        ("authorization:", 0),
        ("transfer-encoding:", 0),
        ("cookie:", 0),
    ] {
        assert_eq!(count(line), times, "{line:?} in {head}");
    }
    // The forwarded lines come last, and the head still ends with one empty line.
    assert!(head.contains("x-title: my app\r\n\r\n{}"), "{head:?}");
}

#[tokio::test]
async fn does_not_follow_redirects() {
    let (addr, _server) = one_answer(
        "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:9/elsewhere\r\ncontent-length: 0\r\n\r\n",
    )
    .await;
    let endpoint = endpoint("anthropic", &format!("http://{addr}/v1"), 1000);
    let response = endpoint
        .post_json(&endpoint.messages_url, b"{}", false)
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
}

#[tokio::test]
async fn a_refused_connection_is_unreachable_and_names_no_secret() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = listener.local_addr().unwrap();
    drop(listener);
    let endpoint = endpoint("openai", &format!("http://{dead}/v1"), 1000);
    let err = endpoint
        .post_json(&endpoint.chat_url, b"{}", false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UpstreamUnreachable);
    assert_eq!(
        err.to_string(),
        "upstream request failed: connection failed"
    );
    assert!(!format!("{err:?}").contains(SECRET));
}

#[tokio::test]
async fn a_tls_handshake_that_never_ends_is_a_connect_timeout() {
    // Accepts TCP but never speaks TLS: only the deadline on the whole connect ends it.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _held = tokio::spawn(async move {
        // Holds the connection open and silent until the test ends.
        let (_socket, _) = listener.accept().await.unwrap();
        std::future::pending::<()>().await;
    });
    let endpoint = endpoint("openai", &format!("https://{addr}/v1"), 50);
    let err = endpoint
        .post_json(&endpoint.chat_url, b"{}", false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UpstreamTimeout);
    assert_eq!(err.to_string(), "upstream request failed: timed out");
}

#[test]
fn the_auth_header_never_prints() {
    let endpoint = endpoint("gemini", "http://127.0.0.1:1/v1beta", 1000);
    assert!(!format!("{endpoint:?}").contains(SECRET));
}

#[test]
fn builds_uris_once_and_keeps_gemini_model_names_one_segment() {
    let endpoint = endpoint("gemini", "http://127.0.0.1:1/v1beta", 1000);
    assert_eq!(
        endpoint
            .gemini_url("models/gemini-2.5-flash", true)
            .unwrap(),
        "http://127.0.0.1:1/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        endpoint.gemini_url("gemini-2.5-pro", false).unwrap(),
        "http://127.0.0.1:1/v1beta/models/gemini-2.5-pro:generateContent"
    );
    assert_eq!(
        endpoint.gemini_url("modèle", false).unwrap(),
        "http://127.0.0.1:1/v1beta/models/mod%C3%A8le:generateContent"
    );
    assert_eq!(
        endpoint.count_tokens_url,
        "http://127.0.0.1:1/v1beta/messages/count_tokens"
    );
}

#[test]
fn a_gemini_model_that_is_not_one_path_segment_is_an_invalid_request() {
    let endpoint = endpoint("gemini", "http://127.0.0.1:1/v1beta", 1000);
    for (model, why) in [
        (
            "gemini-2.5-flash/../../../../admin",
            "is not a single path segment",
        ),
        ("models/../admin", "is not a single path segment"),
        ("a/b", "is not a single path segment"),
        ("a\\b", "is not a single path segment"),
        ("..", "is not a single path segment"),
        ("models/..", "is not a single path segment"),
        (".", "is not a single path segment"),
        ("%2e%2e", "contains '%'"),
        ("gemini%2F..", "contains '%'"),
        ("a?key=x", "contains '?' or '#'"),
        ("a#b", "contains '?' or '#'"),
        ("a b", "contains whitespace"),
        ("a\tb", "contains whitespace"),
        ("a\r\nhost: evil", "contains whitespace"),
        ("a\u{0}b", "control character"),
        ("", "is empty"),
        ("models/", "is empty"),
    ] {
        let err = endpoint.gemini_url(model, false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{model:?}");
        let message = err.to_string();
        assert!(message.contains(why), "{model:?}: {message}");
        assert!(message.starts_with("model name '"), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }
    let long = "x/".repeat(500);
    assert!(
        endpoint
            .gemini_url(&long, false)
            .unwrap_err()
            .to_string()
            .len()
            < 300
    );
}

/// A scripted vendor: answers every request on a connection with the next of `answers`
/// (cycling), optionally closing the connection after each answer, and counts connections.
struct Scripted {
    addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl Scripted {
    async fn start(answers: Vec<Vec<u8>>, close_after_each: bool) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&connections);
        let answers = Arc::new(answers);
        let next = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                counter.fetch_add(1, Ordering::SeqCst);
                let answers = Arc::clone(&answers);
                let next = Arc::clone(&next);
                tokio::spawn(async move {
                    let mut pending = Vec::new();
                    let mut buf = [0u8; 8192];
                    loop {
                        // One request: its head, then content-length bytes of body.
                        let (head_end, length) = loop {
                            if let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                                let head =
                                    String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
                                let length = head
                                    .lines()
                                    .find_map(|l| l.strip_prefix("content-length: "))
                                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                                break (end + 4, length);
                            }
                            match socket.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => pending.extend_from_slice(&buf[..n]),
                            }
                        };
                        while pending.len() < head_end + length {
                            match socket.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => pending.extend_from_slice(&buf[..n]),
                            }
                        }
                        pending.drain(..head_end + length);
                        let answer = &answers[next.fetch_add(1, Ordering::SeqCst) % answers.len()];
                        if socket.write_all(answer).await.is_err() {
                            return;
                        }
                        if close_after_each {
                            return;
                        }
                    }
                });
            }
        });
        Self { addr, connections }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// Sends `{}` to the endpoint's chat URL; the response head must arrive.
async fn post(endpoint: &Endpoint, stream: bool) -> Response {
    endpoint
        .post_json(&endpoint.chat_url, b"{}", stream)
        .await
        .unwrap()
}

async fn read_all(response: &mut Response) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

const LENGTH_ANSWER: &str =
    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 7\r\n\r\n{\"a\":1}";
const CHUNKED_STREAM: &str = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\nf\r\ndata: {\"n\":1}\n\n\r\n0e\r\ndata: [DONE]\n\n\r\n0\r\n\r\n";

#[tokio::test]
async fn keep_alive_connections_are_reused_for_length_and_chunked_bodies() {
    let vendor = Scripted::start(vec![LENGTH_ANSWER.into(), CHUNKED_STREAM.into()], false).await;
    let endpoint = endpoint("openai", &format!("http://{}/v1", vendor.addr), 1000);
    for i in 0..10 {
        let mut response = endpoint
            .post_json(&endpoint.chat_url, br#"{"model":"m"}"#, i % 2 == 1)
            .await
            .unwrap();
        let body = read_all(&mut response).await.unwrap();
        let expected: &[u8] = if i % 2 == 0 {
            br#"{"a":1}"#
        } else {
            b"data: {\"n\":1}\n\ndata: [DONE]\n\n"
        };
        assert_eq!(body, expected, "request {i}");
    }
    assert_eq!(
        vendor.connections(),
        1,
        "ten sequential requests share one connection"
    );
    assert_eq!(endpoint.pool.idle_count(), 1);
}

#[tokio::test]
async fn a_stream_dropped_at_its_last_event_still_frees_its_connection() {
    let vendor = Scripted::start(vec![CHUNKED_STREAM.into()], false).await;
    let endpoint = endpoint("openai", &format!("http://{}/v1", vendor.addr), 1000);
    for _ in 0..3 {
        let mut response = post(&endpoint, true).await;
        // Read until the [DONE] event, like the relay, then drop the body.
        let mut seen = Vec::new();
        while !seen.windows(6).any(|w| w == b"[DONE]") {
            seen.extend_from_slice(&response.chunk().await.unwrap().unwrap());
        }
        drop(response);
    }
    assert_eq!(vendor.connections(), 1);
}

#[tokio::test]
async fn a_body_dropped_midway_closes_its_connection() {
    // The stream never ends: dropping it must not put a connection with unread bytes back.
    let vendor = Scripted::start(
        vec![b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n".to_vec()],
        false,
    )
    .await;
    let endpoint = endpoint("openai", &format!("http://{}/v1", vendor.addr), 1000);
    for _ in 0..3 {
        let mut response = post(&endpoint, true).await;
        assert_eq!(&response.chunk().await.unwrap().unwrap()[..], b"hello");
    }
    assert_eq!(vendor.connections(), 3);
    assert_eq!(endpoint.pool.idle_count(), 0);
}

#[tokio::test]
async fn connection_close_and_until_close_bodies_are_not_reused() {
    let vendor = Scripted::start(
        vec![b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok".to_vec()],
        false,
    )
    .await;
    let endpoint = endpoint("openai", &format!("http://{}/v1", vendor.addr), 1000);
    for _ in 0..2 {
        let mut response = post(&endpoint, false).await;
        assert_eq!(read_all(&mut response).await.unwrap(), b"ok");
    }
    assert_eq!(vendor.connections(), 2);

    let (addr, _server) = one_answer("HTTP/1.1 200 OK\r\n\r\nuntil the end").await;
    let endpoint = endpoint_for(addr);
    let mut response = post(&endpoint, false).await;
    assert_eq!(read_all(&mut response).await.unwrap(), b"until the end");
    assert_eq!(endpoint.pool.idle_count(), 0);
}

fn endpoint_for(addr: SocketAddr) -> Endpoint {
    endpoint("openai", &format!("http://{addr}/v1"), 1000)
}

#[tokio::test]
async fn a_truncated_body_is_an_error_not_a_short_answer() {
    let (addr, _server) =
        one_answer("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this").await;
    let endpoint = endpoint_for(addr);
    let mut response = post(&endpoint, false).await;
    assert!(read_all(&mut response).await.is_err());

    let (addr, _server) =
        one_answer("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhel").await;
    let endpoint = endpoint_for(addr);
    let mut response = post(&endpoint, false).await;
    assert!(read_all(&mut response).await.is_err());
}

#[tokio::test]
async fn a_malformed_head_is_a_protocol_error() {
    let (addr, _server) = one_answer("SSH-2.0-OpenSSH_9.6\r\n\r\n").await;
    let endpoint = endpoint_for(addr);
    let err = endpoint
        .post_json(&endpoint.chat_url, b"{}", false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UpstreamProtocol);
    assert_eq!(err.to_string(), "upstream request failed: invalid response");
}

#[tokio::test]
async fn large_bodies_arrive_intact_in_both_framings() {
    let body: String = (0..20_000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let body = body.repeat(5); // 100 KB
    let mut chunked = String::from("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n");
    for piece in body.as_bytes().chunks(7_000) {
        chunked.push_str(&format!(
            "{:x}\r\n{}\r\n",
            piece.len(),
            std::str::from_utf8(piece).unwrap()
        ));
    }
    chunked.push_str("0\r\n\r\n");
    let length = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let vendor = Scripted::start(vec![length.into_bytes(), chunked.into_bytes()], false).await;
    let endpoint = endpoint_for(vendor.addr);
    let big_request = vec![b'x'; 300_000];
    for _ in 0..4 {
        let mut response = endpoint
            .post_json(&endpoint.chat_url, &big_request, false)
            .await
            .unwrap();
        assert_eq!(read_all(&mut response).await.unwrap(), body.as_bytes());
    }
    assert_eq!(vendor.connections(), 1);
}

mod hardening;

use std::net::SocketAddr;

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
        .post_json(&endpoint.chat_url, b"{}".to_vec(), true)
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
async fn does_not_follow_redirects() {
    let (addr, _server) = one_answer(
        "HTTP/1.1 302 Found\r\nlocation: http://127.0.0.1:9/elsewhere\r\ncontent-length: 0\r\n\r\n",
    )
    .await;
    let endpoint = endpoint("anthropic", &format!("http://{addr}/v1"), 1000);
    let response = endpoint
        .post_json(&endpoint.messages_url, b"{}".to_vec(), false)
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
        .post_json(&endpoint.chat_url, b"{}".to_vec(), false)
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
        let (socket, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(socket);
    });
    let endpoint = endpoint("openai", &format!("https://{addr}/v1"), 50);
    let err = endpoint
        .post_json(&endpoint.chat_url, b"{}".to_vec(), false)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::UpstreamTimeout);
    assert_eq!(err.to_string(), "upstream request failed: timed out");
}

#[test]
fn the_auth_header_is_sensitive_and_never_printed() {
    let endpoint = endpoint("gemini", "http://127.0.0.1:1/v1beta", 1000);
    for headers in [
        &endpoint.json_headers,
        &endpoint.stream_headers,
        &endpoint.probe_headers,
    ] {
        assert!(headers["x-goog-api-key"].is_sensitive());
    }
    assert!(!format!("{endpoint:?}").contains(SECRET));
}

#[test]
fn builds_uris_once_and_escapes_gemini_model_names() {
    let endpoint = endpoint("gemini", "http://127.0.0.1:1/v1beta", 1000);
    assert_eq!(
        endpoint
            .gemini_url("models/gemini-2.5-flash", true)
            .unwrap(),
        "http://127.0.0.1:1/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );
    assert_eq!(
        endpoint.gemini_url("a b/c?d", false).unwrap(),
        "http://127.0.0.1:1/v1beta/models/a%20b/c%3Fd:generateContent"
    );
    assert_eq!(
        endpoint.count_tokens_url,
        "http://127.0.0.1:1/v1beta/messages/count_tokens"
    );
}

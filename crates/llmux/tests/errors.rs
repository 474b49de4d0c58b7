//! Bad input and upstream failures: the right status, the OpenAI envelope, no secret, and the
//! gateway keeps serving. Each original-router bug from REFERENCE A17 has a regression here.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use std::time::Duration;

use common::*;
use llmux_mock::FaultRule;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[track_caller]
fn assert_envelope(body: &Value) {
    let error = &body["error"];
    assert!(error["message"].is_string(), "{body}");
    assert!(error["type"].is_string(), "{body}");
    assert!(
        error.get("param").is_some() && error.get("code").is_some(),
        "{body}"
    );
}

async fn expect_error(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    // Regression: the original router answered text/plain (A17 #8).
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_envelope(&body);
    body
}

#[tokio::test]
async fn bad_requests_get_400_or_404_in_the_openai_envelope_and_the_gateway_keeps_serving() {
    let mock = mock().await;
    let gateway = TestGateway::start(&basic_config(&mock)).await;
    let cases: &[(&str, &str)] = &[
        ("{\"model\":", "not valid JSON"),
        ("[1,2]", "JSON object"),
        ("{\"model\":\"fast\"}", "missing required field 'messages'"),
        (
            "{\"model\":\"fast\",\"messages\":[]}",
            "at least one message",
        ),
        ("{\"model\":\"fast\",\"messages\":{}}", "invalid 'messages'"),
        (
            "{\"model\":\"fast\",\"messages\":[{\"role\":\"user\",\"content\":7}]}",
            "messages[0].content",
        ),
        (
            "{\"model\":\"fast\",\"stream\":\"yes\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
            "stream",
        ),
    ];
    for (body, fragment) in cases {
        let response = gateway
            .post_raw("/v1/chat/completions", body.to_string())
            .await;
        let error = expect_error(response, 400).await;
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(fragment), "{body} → {message}");
    }
    let error = expect_error(gateway.get("/v1/nope").await, 404).await;
    assert_eq!(error["error"]["message"], "unknown route: GET /v1/nope");
    expect_error(gateway.get("/v1/chat/completions").await, 405).await;
    assert!(mock.calls().is_empty());
    assert_eq!(gateway.chat_status("fast", "still up").await, 200);
}

#[tokio::test]
async fn upstream_4xx_keeps_its_status_and_message_without_the_credential() {
    // Regression: the original router turned vendor 4xx into 502 and discarded the body (A17 #8).
    let mock = mock().await;
    let echoed = format!("Incorrect API key provided: {SECRET}. You can find your API key at ...");
    mock.add_fault(FaultRule {
        status: Some(401),
        body: Some(json!({"error": {"message": echoed, "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}}).to_string()),
        times: Some(1),
        ..Default::default()
    });
    let gateway = TestGateway::start(&basic_config(&mock)).await;

    let response = gateway
        .post("/v1/chat/completions", &chat("fast", "x"))
        .await;
    let text = response
        .headers()
        .iter()
        .map(|(k, v)| format!("{k}: {v:?}\n"))
        .collect::<String>();
    assert!(!text.contains("abcdefghijklmnop"), "no secret in headers");
    let body = expect_error(response, 401).await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("upstream openai returned 401: Incorrect API key provided"),
        "{message}"
    );
    assert!(
        !body.to_string().contains("abcdefghijklmnop"),
        "no secret in the body: {body}"
    );
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert_eq!(
        mock.calls().len(),
        1,
        "a 401 is returned at once, not retried"
    );
}

#[tokio::test]
async fn upstream_404_is_returned_and_does_not_count_against_the_vendor() {
    let mock = mock().await;
    mock.add_fault(FaultRule {
        status: Some(404),
        times: Some(1),
        ..Default::default()
    });
    let gateway = TestGateway::start(&basic_config(&mock)).await;
    expect_error(
        gateway
            .post("/v1/chat/completions", &chat("fast", "x"))
            .await,
        404,
    )
    .await;
    assert_eq!(gateway.chat_status("fast", "x").await, 200);
}

#[tokio::test]
async fn google_array_wrapped_errors_are_unwrapped() {
    let mock = mock().await;
    mock.add_fault(FaultRule {
        status: Some(400),
        body: Some(r#"[{"error":{"code":400,"message":"Invalid JSON payload received. Unknown name \"x\"","status":"INVALID_ARGUMENT"}}]"#.into()),
        ..Default::default()
    });
    let gateway = TestGateway::start(&basic_config(&mock)).await;
    let body = expect_error(
        gateway
            .post("/v1/chat/completions", &chat("fast", "x"))
            .await,
        400,
    )
    .await;
    assert_eq!(body["error"]["type"], "invalid_argument");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Invalid JSON payload")
    );
}

#[tokio::test]
async fn upstream_5xx_and_429_keep_their_status() {
    let mock = mock().await;
    mock.add_fault(FaultRule {
        status: Some(503),
        times: Some(1),
        ..Default::default()
    });
    mock.add_fault(FaultRule {
        status: Some(429),
        retry_after: Some("2".into()),
        times: Some(1),
        ..Default::default()
    });
    // One attempt: this test is about statuses, not retries.
    let gateway = TestGateway::start(&format!(
        "{}reliability: {{ max_attempts: 1 }}\n",
        basic_config(&mock)
    ))
    .await;
    expect_error(
        gateway
            .post("/v1/chat/completions", &chat("fast", "x"))
            .await,
        503,
    )
    .await;
    let limited = gateway
        .post("/v1/chat/completions", &chat("fast", "x"))
        .await;
    assert_eq!(
        limited.headers()["retry-after"],
        "2",
        "the vendor's Retry-After reaches the client"
    );
    let body = expect_error(limited, 429).await;
    // The vendor's own type and code reach the client unchanged.
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["type"], "requests");
}

#[tokio::test]
async fn unreachable_upstream_is_a_502() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = listener.local_addr().unwrap();
    drop(listener);
    let config = format!(
        "credentials:\n  - {{ platform: openai, value: {SECRET}, base_url: \"http://{dead}/v1\" }}\nmodels:\n  - {{ vendor: openai, model: gpt-4o-mini }}\n"
    );
    let gateway = TestGateway::start(&config).await;
    let body = expect_error(
        gateway
            .post("/v1/chat/completions", &chat("gpt-4o-mini", "x"))
            .await,
        502,
    )
    .await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unreachable")
    );
    assert!(!body.to_string().contains("abcdefghijklmnop"));
}

#[tokio::test]
async fn request_heads_up_to_8_kib_pass_and_larger_ones_are_a_431() {
    let mock = mock().await;
    let gateway = TestGateway::start(&basic_config(&mock)).await;
    let with_header = |bytes: usize| {
        gateway
            .client
            .post(format!("{}/v1/chat/completions", gateway.url))
            .header("x-client-context", "c".repeat(bytes))
            .json(&chat("fast", "x"))
            .send()
    };
    assert_eq!(with_header(6 * 1024).await.unwrap().status(), 200);
    assert_eq!(with_header(16 * 1024).await.unwrap().status(), 431);
    assert_eq!(
        mock.calls().len(),
        1,
        "the oversized request never went upstream"
    );
    assert_eq!(gateway.chat_status("fast", "after").await, 200);
}

#[tokio::test]
async fn a_body_over_the_limit_is_a_413() {
    // Regression: the original router read bodies without a limit (A17 #15).
    let mock = mock().await;
    let config = format!(
        "{}limits: {{ max_body_bytes: 1000 }}\n",
        basic_config(&mock)
    );
    let gateway = TestGateway::start(&config).await;
    let big = chat("fast", &"x".repeat(2000));
    let body = expect_error(gateway.post("/v1/chat/completions", &big).await, 413).await;
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1000 bytes")
    );
    assert!(mock.calls().is_empty());
    assert_eq!(gateway.chat_status("fast", "small").await, 200);
}

#[tokio::test]
async fn client_headers_and_cookies_are_never_forwarded() {
    // Regression: the original router copied every client header upstream (A17 #17).
    let mock = mock().await;
    let gateway = TestGateway::start(&basic_config(&mock)).await;
    gateway
        .client
        .post(format!("{}/v1/chat/completions", gateway.url))
        .header("cookie", "session=secret-cookie")
        .header("x-forwarded-for", "10.1.2.3")
        .header("authorization", "Bearer client-token")
        .header("x-custom", "leak")
        .json(&chat("fast", "x"))
        .send()
        .await
        .unwrap();
    let call = &mock.calls()[0];
    let names: Vec<&str> = call.headers.iter().map(|(k, _)| k.as_str()).collect();
    for forbidden in ["cookie", "x-forwarded-for", "x-custom"] {
        assert!(
            !names.contains(&forbidden),
            "{forbidden} forwarded: {names:?}"
        );
    }
    let auth: Vec<&str> = call
        .headers
        .iter()
        .filter(|(k, _)| k == "authorization")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(auth, vec![format!("Bearer {SECRET}").as_str()]);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    // Regression: the original router had no server timeouts (A17 #15): slow-loris.
    let mock = mock().await;
    let config = format!(
        "{}timeouts: {{ header_read_ms: 300 }}\n",
        basic_config(&mock)
    );
    let gateway = TestGateway::start(&config).await;
    let mut socket = tokio::net::TcpStream::connect(gateway.addr())
        .await
        .unwrap();
    socket
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the server closed the connection");
}

#[tokio::test]
async fn a_slow_body_is_cut_with_408() {
    let mock = mock().await;
    let config = format!("{}timeouts: {{ body_read_ms: 300 }}\n", basic_config(&mock));
    let gateway = TestGateway::start(&config).await;
    let mut socket = tokio::net::TcpStream::connect(gateway.addr())
        .await
        .unwrap();
    socket
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\"")
        .await
        .unwrap();
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), socket.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");
}

//! Fallback chains: a group that cannot serve hands the request to the next group of its chain
//! (`routing.fallbacks`), and errors of a class with its own chain go there
//! (`routing.context_fallbacks`, `routing.content_fallbacks`) — on every ingress, streams
//! included, within the request's attempt budget; the client keeps the model name it asked for.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use common::*;
use llmux_mock::{FaultRule, MockUpstream};
use serde_json::{Value, json};

fn chained(mock: &MockUpstream, routing: &str) -> String {
    format!(
        "credentials:
  - {{ platform: alpha, api: openai, value: sk-alpha-0123456789, base_url: \"{url}/v1\" }}
  - {{ platform: beta, api: openai, value: sk-beta-0123456789, base_url: \"{url}/v1\" }}
  - {{ platform: gamma, api: openai, value: sk-gamma-0123456789, base_url: \"{url}/v1\" }}
models:
  - {{ vendor: alpha, model: m-primary, name: primary }}
  - {{ vendor: beta, model: m-backup, name: backup }}
  - {{ vendor: gamma, model: m-long, name: long-context }}
routing:
{routing}
",
        url = mock.url()
    )
}

fn failing(mock: &MockUpstream, credential: &str, status: u16, body: Option<&str>) {
    mock.add_fault(FaultRule {
        credential: Some(credential.into()),
        status: Some(status),
        body: body.map(str::to_owned),
        ..FaultRule::default()
    });
}

#[tokio::test]
async fn a_group_that_cannot_serve_falls_back_on_every_ingress_and_stream() {
    let mock = mock().await;
    let gateway = TestGateway::start(&chained(
        &mock,
        "  fallbacks: { primary: [backup, long-context] }",
    ))
    .await;
    failing(&mock, "sk-alpha-0123456789", 503, None);

    let response = gateway
        .post("/v1/chat/completions", &chat("primary", "hello"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-llmux-fallback"], "backup");
    assert_eq!(response.headers()["x-llmux-model"], "m-backup");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["model"], "primary", "the client's name comes back");
    assert_eq!(body["choices"][0]["message"]["content"], "hello");

    // A stream falls back before its first byte.
    let mut stream = chat("primary", "streamed");
    stream["stream"] = json!(true);
    let response = gateway.post("/v1/chat/completions", &stream).await;
    assert_eq!(response.headers()["x-llmux-fallback"], "backup");
    let events = sse_data(response).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let text: String = events
        .iter()
        .filter(|e| *e != "[DONE]")
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|c| {
            c["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert_eq!(text, "streamed");

    // Anthropic's and Google's clients get the same.
    let response = gateway
        .post(
            "/v1/messages",
            &json!({"model": "primary", "max_tokens": 32, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-llmux-fallback"], "backup");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["model"], "primary");
    let response = gateway
        .post(
            "/v1beta/models/primary:generateContent",
            &json!({"contents": [{"parts": [{"text": "hi"}]}]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-llmux-fallback"], "backup");

    // When the whole chain fails, the client gets the last error.
    failing(&mock, "sk-beta-0123456789", 503, None);
    failing(&mock, "sk-gamma-0123456789", 503, None);
    let response = gateway
        .post("/v1/chat/completions", &chat("primary", "x"))
        .await;
    assert_eq!(response.status(), 503);
}

const CONTEXT_EXCEEDED: &str = r#"{"error":{"message":"This model's maximum context length is 8192 tokens. However, your messages resulted in 9001 tokens.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#;

#[tokio::test]
async fn a_context_window_error_goes_to_its_own_chain_and_other_errors_do_not() {
    let mock = mock().await;
    let gateway = TestGateway::start(&chained(
        &mock,
        "  fallbacks: { primary: [backup] }\n  context_fallbacks: { primary: [long-context] }",
    ))
    .await;
    failing(&mock, "sk-alpha-0123456789", 400, Some(CONTEXT_EXCEEDED));
    let response = gateway
        .post("/v1/chat/completions", &chat("primary", "long"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-llmux-fallback"], "long-context");
    let beta_calls = mock
        .calls()
        .iter()
        .filter(|c| c.credential == "sk-beta-0123456789")
        .count();
    assert_eq!(
        beta_calls, 0,
        "a context error does not use the group chain"
    );

    // A plain client error has no chain: it is the answer, and no other group is tried.
    mock.clear_faults();
    mock.clear_calls();
    failing(
        &mock,
        "sk-alpha-0123456789",
        400,
        Some(r#"{"error":{"message":"bad request","type":"invalid_request_error"}}"#),
    );
    let response = gateway
        .post("/v1/chat/completions", &chat("primary", "x"))
        .await;
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("x-llmux-fallback").is_none());
    assert_eq!(mock.calls().len(), 1);
}

#[tokio::test]
async fn fallbacks_share_the_request_s_attempt_budget() {
    let mock = mock().await;
    let gateway = TestGateway::start(&format!(
        "{}reliability: {{ max_attempts: 2, backoff_base_ms: 1 }}\n",
        chained(&mock, "  fallbacks: { primary: [backup, long-context] }")
    ))
    .await;
    for credential in ["sk-alpha-0123456789", "sk-beta-0123456789"] {
        failing(&mock, credential, 500, None);
    }
    let response = gateway
        .post("/v1/chat/completions", &chat("primary", "x"))
        .await;
    assert_eq!(response.status(), 500, "two attempts were the whole budget");
    let gamma = mock
        .calls()
        .iter()
        .filter(|c| c.credential == "sk-gamma-0123456789")
        .count();
    assert_eq!(gamma, 0, "no attempt was left for the third group");
}

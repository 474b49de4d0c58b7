//! Vendor quotas (`credentials[].limits`): llmux keeps each vendor key under its requests and
//! tokens per minute, fails over to a key with room, and answers 429 when none has any — the
//! vendor never sees a request over quota.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use common::*;
use llmux_mock::MockUpstream;
use serde_json::{Value, json};

fn limited_keys(mock: &MockUpstream, limits: &str) -> String {
    let url = mock.url();
    format!(
        "credentials:
  - {{ platform: openai, value: sk-one, base_url: \"{url}/v1\", limits: {limits} }}
  - {{ platform: openai, value: sk-two, base_url: \"{url}/v1\", limits: {limits} }}
models:
  - {{ vendor: openai, model: gpt-4o-mini, name: fast }}
"
    )
}

fn calls_on(mock: &MockUpstream, credential: &str) -> usize {
    mock.calls()
        .iter()
        .filter(|c| c.credential == credential)
        .count()
}

#[tokio::test]
async fn requests_per_minute_fill_every_key_then_429_without_reaching_the_vendor() {
    let mock = mock().await;
    let gateway = TestGateway::start(&limited_keys(&mock, "{ rpm: 3 }")).await;
    let mut statuses = Vec::new();
    for _ in 0..9 {
        let response = gateway
            .post("/v1/chat/completions", &chat("fast", "x"))
            .await;
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            let retry_after: u64 = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse()
                .unwrap();
            assert!((1..=20).contains(&retry_after), "{retry_after}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["type"], "rate_limit_error");
            assert_eq!(body["error"]["code"], "vendor_quota_exceeded");
        }
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 429, 429, 429]);
    // Both keys were used to their quota and no further.
    assert_eq!(calls_on(&mock, "sk-one"), 3);
    assert_eq!(calls_on(&mock, "sk-two"), 3);
}

#[tokio::test]
async fn token_reservations_are_corrected_with_the_real_usage() {
    let mock = mock().await;
    let gateway = TestGateway::start(&limited_keys(&mock, "{ tpm: 1000 }")).await;
    // Each request reserves ~400 tokens (max_tokens) but uses a few dozen: were reservations not
    // refunded, only 4 requests (2 per key) would fit in a minute.
    for i in 0..12 {
        let mut body = chat("fast", "hello");
        body["max_tokens"] = json!(400);
        // Settling runs just after the answer: a request may race it, so each one may be
        // retried briefly; without refunds the quota stays spent and this never succeeds.
        eventually(std::time::Duration::from_secs(5), || async {
            let status = gateway.post("/v1/chat/completions", &body).await.status();
            (status == 200)
                .then_some(())
                .ok_or_else(|| format!("request {i} kept failing: {status}"))
        })
        .await;
    }
}

#[tokio::test]
async fn a_token_quota_refuses_what_open_streams_have_reserved() {
    let mock = mock_with(llmux_mock::MockOptions {
        chunk_delay: std::time::Duration::from_millis(300),
        ..Default::default()
    })
    .await;
    let url = mock.url();
    let config = format!(
        "credentials:\n  - {{ platform: openai, value: sk-one, base_url: \"{url}/v1\", limits: {{ tpm: 1000 }} }}\n\
         models:\n  - {{ vendor: openai, model: gpt-4o-mini, name: fast }}\n"
    );
    let gateway = TestGateway::start(&config).await;
    let stream = |max_tokens: u64| {
        let mut body = chat("fast", "hello");
        body["max_tokens"] = json!(max_tokens);
        body["stream"] = json!(true);
        body
    };
    // Two open streams hold 2 × ~450 tokens of the 1000 per minute.
    let first = gateway.post("/v1/chat/completions", &stream(450)).await;
    let second = gateway.post("/v1/chat/completions", &stream(450)).await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let third = gateway.post("/v1/chat/completions", &stream(450)).await;
    assert_eq!(third.status(), 429);
    drop((first, second));
}

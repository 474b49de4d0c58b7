//! Fault injection against the mock: failover, breakers, cooldowns, timeouts, cancellation.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use llmux_mock::{FaultRule, MockOptions, MockUpstream};
use serde_json::{Value, json};

fn two_keys(mock: &MockUpstream, reliability: &str) -> String {
    format!(
        "credentials:\n{}models:\n  - {{ vendor: openai, model: gpt-4o-mini, name: fast }}\nreliability: {reliability}\n",
        credentials(mock, "openai", &["sk-good", "sk-flaky"])
    )
}

/// How many calls reached the `sk-flaky` credential (on `model`, when given).
fn flaky_calls(mock: &MockUpstream, model: Option<&str>) -> usize {
    mock.calls()
        .iter()
        .filter(|c| c.credential == "sk-flaky" && model.is_none_or(|m| c.model == m))
        .count()
}

/// The entry of `credential` (and `model`, when given) in `/health/vendors`' `list`.
fn health_entry(states: &Value, list: &str, credential: &str, model: Option<&str>) -> Value {
    states[list]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["credential"] == credential && model.is_none_or(|m| c["model"] == m))
        .unwrap()
        .clone()
}

async fn vendor_states(gateway: &TestGateway) -> HashMap<String, Value> {
    let body: Value = gateway.get("/health/vendors").await.json().await.unwrap();
    body["combinations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["credential"].as_str().unwrap().to_owned(), c.clone()))
        .collect()
}

#[tokio::test]
async fn thirty_percent_failures_on_one_credential_never_reach_the_client_and_its_breaker_cycles() {
    let mock = mock().await;
    for status in [500, 503, 429] {
        mock.add_fault(FaultRule {
            credential: Some("sk-flaky".into()),
            status: Some(status),
            probability: Some(0.1),
            ..Default::default()
        });
    }
    let config = two_keys(
        &mock,
        "{ max_attempts: 3, backoff_base_ms: 1, default_cooldown_ms: 1, breaker: { consecutive_failures: 3, failure_rate: 0.2, window: 10, min_requests: 5, open_ms: 200, max_open_ms: 400 } }",
    );
    let gateway = TestGateway::start(&config).await;

    for i in 0..200 {
        let response = gateway
            .post("/v1/chat/completions", &chat("fast", &format!("hi {i}")))
            .await;
        assert_eq!(
            response.status(),
            200,
            "request {i}: {}",
            response.text().await.unwrap()
        );
    }
    let metrics = gateway.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(r#"llmux_breaker_transitions_total{vendor="openai",credential="openai-2",scope="combination",to="open"}"#), "{metrics}");
    assert!(metrics.contains("llmux_retries_total"), "{metrics}");

    // Healthy again: the breaker probes after its open period and closes.
    mock.clear_faults();
    eventually(Duration::from_secs(10), || async {
        gateway
            .post("/v1/chat/completions", &chat("fast", "again"))
            .await;
        let states = vendor_states(&gateway).await;
        let flaky = &states["openai-2"];
        (flaky["state"] == "closed" && flaky["recent_requests"].as_u64().unwrap() > 0)
            .then_some(())
            .ok_or_else(|| format!("breaker never closed: {states:?}"))
    })
    .await;
}

#[tokio::test]
async fn a_credential_answering_401_is_taken_out_of_rotation() {
    let mock = mock().await;
    mock.add_fault(FaultRule {
        credential: Some("sk-flaky".into()),
        status: Some(401),
        ..Default::default()
    });
    let gateway = TestGateway::start(&two_keys(&mock, "{ breaker: { open_ms: 60000 } }")).await;
    let mut unauthorized = 0;
    for _ in 0..40 {
        match gateway.chat_status("fast", "x").await {
            200 => {}
            401 => unauthorized += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        unauthorized <= 1,
        "the revoked key answered {unauthorized} times"
    );
    let flaky_calls = flaky_calls(&mock, None);
    assert!(
        flaky_calls <= 1,
        "{flaky_calls} calls reached the revoked key"
    );
    assert_eq!(vendor_states(&gateway).await.len(), 2);
    let body: Value = gateway.get("/health/vendors").await.json().await.unwrap();
    let credential = health_entry(&body, "credentials", "openai-2", None);
    if flaky_calls == 1 {
        assert_eq!(credential["state"], "open");
        assert_eq!(credential["last_error"], "status_401");
    }
}

#[tokio::test]
async fn a_429_with_retry_after_cools_the_combination_down_for_that_long() {
    let mock = mock().await;
    mock.add_fault(FaultRule {
        credential: Some("sk-flaky".into()),
        status: Some(429),
        retry_after: Some("2".into()),
        times: Some(1),
        ..Default::default()
    });
    let gateway = TestGateway::start(&two_keys(&mock, "{ backoff_base_ms: 1 }")).await;
    // Find the flaky key: the first request that hits it is retried on the other one.
    let start = Instant::now();
    while flaky_calls(&mock, None) == 0 {
        assert_eq!(gateway.chat_status("fast", "x").await, 200);
    }
    let cooled_at = Instant::now();
    let calls_before = flaky_calls(&mock, None);
    // For the next ~1.5 s no request goes there.
    while cooled_at.elapsed() < Duration::from_millis(1500) {
        assert_eq!(gateway.chat_status("fast", "x").await, 200);
    }
    let during = flaky_calls(&mock, None) - calls_before;
    assert_eq!(during, 0, "traffic reached a cooling-down combination");
    let view = vendor_states(&gateway).await;
    assert!(view["openai-2"]["cooldown_remaining_ms"].as_u64().unwrap() > 0);
    // After the cooldown it gets traffic again.
    eventually(Duration::from_secs(5), || async {
        if flaky_calls(&mock, None) > calls_before {
            return Ok(());
        }
        gateway
            .post("/v1/chat/completions", &chat("fast", "x"))
            .await;
        Err("the combination never came back")
    })
    .await;
    assert!(start.elapsed() >= Duration::from_secs(2));
}

#[tokio::test]
async fn when_every_candidate_is_open_the_answer_is_a_clear_503() {
    let mock = mock().await;
    mock.add_fault(FaultRule {
        status: Some(500),
        ..Default::default()
    });
    let config = format!(
        "{}reliability: {{ max_attempts: 2, backoff_base_ms: 1, breaker: {{ consecutive_failures: 2, open_ms: 60000 }} }}\n",
        basic_config(&mock)
    );
    let gateway = TestGateway::start(&config).await;
    assert_eq!(gateway.chat_status("fast", "x").await, 500);
    let calls = mock.calls().len();
    let response = gateway
        .post("/v1/chat/completions", &chat("fast", "x"))
        .await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "no_healthy_combination");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("circuit open")
    );
    assert_eq!(mock.calls().len(), calls, "no vendor was hammered");
}

#[tokio::test]
async fn a_stream_that_fails_before_its_first_byte_fails_over_transparently() {
    let mock = mock_with(MockOptions {
        chunks: 4,
        ..MockOptions::default()
    })
    .await;
    mock.add_fault(FaultRule {
        credential: Some("sk-flaky".into()),
        cut_after_chunks: Some(0),
        ..Default::default()
    });
    let gateway = TestGateway::start(&two_keys(
        &mock,
        "{ backoff_base_ms: 1, breaker: { consecutive_failures: 100 } }",
    ))
    .await;
    for _ in 0..10 {
        let mut request = chat("fast", "stream me please");
        request["stream"] = json!(true);
        let response = gateway.post("/v1/chat/completions", &request).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-llmux-credential"], "openai-1");
        let events = sse_data(response).await;
        assert_eq!(events.last().unwrap(), "[DONE]");
        let text: String = events
            .iter()
            .filter(|e| *e != "[DONE]")
            .filter_map(|e| {
                serde_json::from_str::<Value>(e).unwrap()["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        assert_eq!(text, "stream me please");
    }
}

#[tokio::test]
async fn a_slow_first_byte_times_out_and_fails_over() {
    let mock = mock().await;
    mock.add_fault(FaultRule {
        credential: Some("sk-flaky".into()),
        delay_ms: Some(3000),
        ..Default::default()
    });
    let config = format!(
        "credentials:\n  - {{ platform: openai, value: sk-good, base_url: \"{url}/v1\" }}\n  - {{ platform: openai, value: sk-flaky, base_url: \"{url}/v1\", timeouts: {{ first_byte_ms: 150 }} }}\nmodels:\n  - {{ vendor: openai, model: gpt-4o-mini }}\nreliability: {{ backoff_base_ms: 1 }}\n",
        url = mock.url()
    );
    let gateway = TestGateway::start(&config).await;
    // Routing is random, so requests go on until one has met the slow credential (six fixed
    // requests all missed it one run in 64); none of them may wait for its 3 s answer.
    let mut timed_out = false;
    for _ in 0..40 {
        let started = Instant::now();
        assert_eq!(gateway.chat_status("gpt-4o-mini", "x").await, 200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a request waited for the slow credential"
        );
        let metrics = gateway.get("/metrics").await.text().await.unwrap();
        if metrics.contains("llmux_upstream_failures_connect_or_timeout_total") {
            timed_out = true;
            break;
        }
    }
    assert!(timed_out, "40 requests never tried the slow credential");
}

#[tokio::test]
async fn a_stalled_stream_ends_with_an_error_event_after_the_idle_timeout() {
    let mock = mock_with(MockOptions {
        chunks: 5,
        chunk_delay: Duration::from_millis(400),
        ..MockOptions::default()
    })
    .await;
    let config = format!("{}timeouts: {{ idle_ms: 100 }}\n", basic_config(&mock));
    let gateway = TestGateway::start(&config).await;
    let mut request = chat("fast", "a b c d e");
    request["stream"] = json!(true);
    let response = gateway.post("/v1/chat/completions", &request).await;
    let events = sse_data(response).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let error: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sent nothing for 100 ms"),
        "{error}"
    );
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_its_upstream_stream() {
    let mock = mock_with(MockOptions {
        chunks: 50,
        chunk_delay: Duration::from_millis(50),
        ..MockOptions::default()
    })
    .await;
    let gateway = TestGateway::start(&basic_config(&mock)).await;
    let mut request = chat("fast", "a long answer");
    request["stream"] = json!(true);
    let mut response = gateway.post("/v1/chat/completions", &request).await;
    assert!(response.chunk().await.unwrap().is_some());
    drop(response);
    eventually(Duration::from_secs(5), || async {
        let metrics = gateway.get("/metrics").await.text().await.unwrap();
        metrics
            .contains(r#"llmux_client_cancellations_total{route="chat"} 1"#)
            .then_some(())
            .ok_or_else(|| format!("cancellation not seen: {metrics}"))
    })
    .await;
}

#[tokio::test]
async fn breaker_and_cooldown_state_of_unchanged_combinations_survives_a_reload() {
    let mock = mock().await;
    mock.add_fault(FaultRule {
        credential: Some("sk-flaky".into()),
        status: Some(500),
        ..Default::default()
    });
    let config = two_keys(
        &mock,
        "{ backoff_base_ms: 1, breaker: { consecutive_failures: 2, open_ms: 60000 } }",
    );
    let gateway = TestGateway::start(&config).await;
    while vendor_states(&gateway).await["openai-2"]["state"] != "open" {
        assert_eq!(gateway.chat_status("fast", "x").await, 200);
    }
    // A reload that adds a model keeps the open breaker of the unchanged combination.
    let reloaded = config.replace(
        "models:\n",
        "models:\n  - { vendor: openai, model: gpt-4o, name: extra }\n",
    );
    gateway.reload(&reloaded);
    let states: Value = gateway.get("/health/vendors").await.json().await.unwrap();
    let flaky_fast = health_entry(&states, "combinations", "openai-2", Some("gpt-4o-mini"));
    assert_eq!(flaky_fast["state"], "open", "{states}");
    let flaky_new = health_entry(&states, "combinations", "openai-2", Some("gpt-4o"));
    assert_eq!(
        flaky_new["state"], "closed",
        "a new combination starts closed"
    );
    let calls = flaky_calls(&mock, Some("gpt-4o-mini"));
    for _ in 0..10 {
        assert_eq!(gateway.chat_status("fast", "x").await, 200);
    }
    let after = flaky_calls(&mock, Some("gpt-4o-mini"));
    assert_eq!(
        calls, after,
        "the open combination got no traffic after the reload"
    );
}

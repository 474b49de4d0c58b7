//! Fault injection: statuses with vendor envelopes, matching, limits, delays and cut streams.

use std::time::{Duration, Instant};

use llmux_mock::FaultRule;
use serde_json::{Value, json};

use crate::{client, events, read_body, start};

async fn openai_chat(url: &str, key: &str, model: &str, stream: bool) -> reqwest::Response {
    client()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": "one two three four"}]}))
        .send()
        .await
        .unwrap()
}

/// The status of a whole (not streamed) chat request with `key` for `model`.
async fn chat_status(url: &str, key: &str, model: &str) -> u16 {
    openai_chat(url, key, model, false).await.status().as_u16()
}

async fn anthropic(url: &str, stream: bool) -> reqwest::Response {
    client()
        .post(format!("{url}/v1/messages"))
        .header("x-api-key", "sk-ant")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude", "max_tokens": 50, "stream": stream, "messages": [{"role": "user", "content": "one two three four"}]}))
        .send()
        .await
        .unwrap()
}

async fn gemini(url: &str, method: &str) -> reqwest::Response {
    client()
        .post(format!("{url}/v1beta/models/gemini-2.5-flash:{method}"))
        .header("x-goog-api-key", "AIza")
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "one two three four"}]}]}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn openai_status_fault_uses_envelope_and_retry_after() {
    let mock = start().await;
    mock.add_fault(FaultRule {
        status: Some(429),
        retry_after: Some("7".into()),
        ..Default::default()
    });
    let response = openai_chat(&mock.url(), "k", "gpt-4o", false).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "7");
    let body: Value = response.json().await.unwrap();
    let error = body["error"].as_object().unwrap();
    let mut keys: Vec<&String> = error.keys().collect();
    keys.sort();
    assert_eq!(keys, ["code", "message", "param", "type"]);
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
}

#[tokio::test]
async fn anthropic_and_gemini_status_faults_use_their_envelopes() {
    let mock = start().await;
    mock.add_fault(FaultRule {
        status: Some(529),
        times: Some(1),
        ..Default::default()
    });
    let response = anthropic(&mock.url(), false).await;
    assert_eq!(response.status(), 529);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(
        body["error"],
        json!({"type": "overloaded_error", "message": "Overloaded"})
    );
    assert!(body["request_id"].as_str().unwrap().starts_with("req_"));

    mock.add_fault(FaultRule {
        status: Some(429),
        retry_after: Some("3".into()),
        times: Some(1),
        ..Default::default()
    });
    let response = gemini(&mock.url(), "generateContent").await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 429);
    assert_eq!(body["error"]["status"], "RESOURCE_EXHAUSTED");
    assert_eq!(
        body["error"]["details"],
        json!([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}])
    );

    mock.add_fault(FaultRule {
        status: Some(503),
        times: Some(1),
        ..Default::default()
    });
    let body: Value = gemini(&mock.url(), "generateContent")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["error"]["status"], "UNAVAILABLE");
}

#[tokio::test]
async fn raw_body_replaces_the_envelope() {
    let mock = start().await;
    mock.add_fault(FaultRule {
        status: Some(500),
        body: Some("upstream exploded".into()),
        ..Default::default()
    });
    let response = openai_chat(&mock.url(), "k", "m", false).await;
    assert_eq!(response.status(), 500);
    assert_eq!(response.text().await.unwrap(), "upstream exploded");
}

#[tokio::test]
async fn times_spends_the_rule() {
    let mock = start().await;
    mock.add_fault(FaultRule {
        status: Some(500),
        times: Some(2),
        ..Default::default()
    });
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(chat_status(&mock.url(), "k", "m").await);
    }
    assert_eq!(statuses, [500, 500, 200]);
    assert_eq!(mock.calls().len(), 3, "faulted calls are recorded too");
}

#[tokio::test]
async fn rules_match_model_and_credential_and_first_wins() {
    let mock = start().await;
    mock.add_fault(FaultRule {
        model: Some("bad-model".into()),
        status: Some(404),
        ..Default::default()
    });
    mock.add_fault(FaultRule {
        credential: Some("key-2".into()),
        status: Some(401),
        ..Default::default()
    });
    mock.add_fault(FaultRule {
        credential: Some("key-2".into()),
        status: Some(500),
        ..Default::default()
    });
    let url = mock.url();
    let status = |key, model| chat_status(&url, key, model);
    assert_eq!(status("key-1", "good").await, 200);
    assert_eq!(status("key-1", "bad-model").await, 404);
    assert_eq!(status("key-2", "good").await, 401);
    assert_eq!(status("key-2", "bad-model").await, 404);

    mock.clear_faults();
    assert_eq!(status("key-2", "bad-model").await, 200);
}

#[tokio::test]
async fn probability_zero_never_fires_and_one_always_does() {
    let mock = start().await;
    mock.add_fault(FaultRule {
        status: Some(500),
        probability: Some(0.0),
        ..Default::default()
    });
    assert_eq!(chat_status(&mock.url(), "k", "m").await, 200);
    mock.add_fault(FaultRule {
        status: Some(503),
        probability: Some(1.0),
        ..Default::default()
    });
    assert_eq!(chat_status(&mock.url(), "k", "m").await, 503);
}

#[tokio::test]
async fn delay_only_rule_delays_then_answers() {
    let mock = start().await;
    mock.add_fault(FaultRule {
        delay_ms: Some(120),
        ..Default::default()
    });
    let started = Instant::now();
    let response = openai_chat(&mock.url(), "k", "m", false).await;
    assert!(started.elapsed() >= Duration::from_millis(120));
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "one two three four"
    );
}

#[tokio::test]
async fn models_route_ignores_faults() {
    let mock = start().await;
    mock.add_fault(FaultRule {
        status: Some(500),
        ..Default::default()
    });
    let response = client()
        .get(format!("{}/v1/models", mock.url()))
        .bearer_auth("k")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn cut_after_chunks_drops_openai_stream_without_done() {
    let mock = start().await;
    mock.add_fault(FaultRule {
        cut_after_chunks: Some(2),
        ..Default::default()
    });
    let response = openai_chat(&mock.url(), "k", "m", true).await;
    assert_eq!(response.status(), 200);
    let (body, clean) = read_body(response).await;
    assert!(!clean, "the connection must drop, not end cleanly");
    let received = events(&body, "\n\n");
    assert_eq!(received.len(), 2);
    assert!(!body.contains("[DONE]"));
}

#[tokio::test]
async fn cut_after_chunks_drops_anthropic_and_gemini_streams() {
    let mock = start().await;
    mock.add_fault(FaultRule {
        cut_after_chunks: Some(100),
        ..Default::default()
    });
    // Larger than the stream: everything but the final event is sent.
    let (body, clean) = read_body(anthropic(&mock.url(), true).await).await;
    assert!(!clean);
    assert!(body.contains("event: message_delta") && !body.contains("message_stop"));

    let (body, clean) = read_body(gemini(&mock.url(), "streamGenerateContent?alt=sse").await).await;
    assert!(!clean);
    assert_eq!(events(&body, "\r\n\r\n").len(), 3);
    assert!(!body.contains("finishReason"));
}

#[tokio::test]
async fn cut_on_non_stream_sends_headers_then_drops() {
    let mock = start().await;
    mock.add_fault(FaultRule {
        cut_after_chunks: Some(0),
        ..Default::default()
    });
    let response = openai_chat(&mock.url(), "k", "m", false).await;
    assert_eq!(response.status(), 200);
    let (body, clean) = read_body(response).await;
    assert!(!clean);
    assert!(body.is_empty());
}

#[tokio::test]
async fn admin_routes_add_and_clear_faults() {
    let mock = start().await;
    let url = mock.url();
    let added = client()
        .post(format!("{url}/__mock/faults"))
        .json(&json!({"status": 503, "model": "m", "retry_after": "1"}))
        .send()
        .await
        .unwrap();
    assert!(added.status().is_success());
    let response = openai_chat(&url, "k", "m", false).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");

    let invalid = client()
        .post(format!("{url}/__mock/faults"))
        .body("{\"status\": \"x\"}")
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);

    let cleared = client()
        .delete(format!("{url}/__mock/faults"))
        .send()
        .await
        .unwrap();
    assert!(cleared.status().is_success());
    assert_eq!(chat_status(&url, "k", "m").await, 200);
}

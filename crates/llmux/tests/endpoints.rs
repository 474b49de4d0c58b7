//! `/v1/embeddings`, `/v1/models`, `/health`, `/metrics`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn embeddings_go_only_to_embedding_models_and_pass_encodings_through() {
    let mock = mock().await;
    let gateway = TestGateway::start(&basic_config(&mock)).await;

    let response = gateway
        .post(
            "/v1/embeddings",
            &json!({"model": "whatever", "input": ["a", "b"]}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-llmux-model"],
        "text-embedding-3-small"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["model"], "whatever");
    assert_eq!(body["data"].as_array().unwrap().len(), 2);
    assert!(body["data"][0]["embedding"].is_array());

    let b64: Value = gateway
        .answer(
            "/v1/embeddings",
            &json!({"input": "a", "encoding_format": "base64"}),
        )
        .await;
    assert!(b64["data"][0]["embedding"].is_string(), "{b64}");
    assert_eq!(mock.calls()[1].body["encoding_format"], "base64");

    // Chat requests never land on the embedding model, even from the pool.
    for _ in 0..10 {
        let r = gateway
            .post("/v1/chat/completions", &chat("any-model", "x"))
            .await;
        assert_eq!(r.headers()["x-llmux-model"], "gpt-4o-mini");
    }
    let missing = gateway.post("/v1/embeddings", &json!({"model": "x"})).await;
    assert_eq!(missing.status(), 400);
}

#[tokio::test]
async fn models_list_in_openai_shape_with_vendor_filter() {
    let mock = mock().await;
    let gateway = TestGateway::start(&basic_config(&mock)).await;
    let body: Value = gateway.get("/v1/models").await.json().await.unwrap();
    assert_eq!(body["object"], "list");
    let ids: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["fast", "text-embedding-3-small"]);
    assert_eq!(body["data"][0]["owned_by"], "openai");
    assert_eq!(body["data"][0]["object"], "model");
    assert!(body["data"][0]["created"].as_u64().unwrap() > 1_600_000_000);
    // Regression: the original router answered "data": null for an unknown vendor (A17 #13);
    // llmux answers as its chat endpoint does for the same filter: a 400 naming the vendor.
    let response = gateway.get("/v1/models?vendor=nobody").await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "unknown_vendor");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("nobody")
    );
}

#[tokio::test]
async fn health_and_metrics() {
    let mock = mock().await;
    let gateway = TestGateway::start(&basic_config(&mock)).await;
    let health = gateway.get("/health").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "OK");

    let timed = gateway
        .post("/v1/chat/completions", &chat("fast", "one two"))
        .await;
    let timing = timed.headers()["server-timing"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        timing.starts_with("llmux;dur=") && timing.contains(", upstream;dur="),
        "{timing}"
    );
    gateway
        .post("/v1/chat/completions", &chat("fast", ""))
        .await;
    let text = gateway.get("/metrics").await.text().await.unwrap();
    assert!(
        text.contains(
            r#"llmux_requests_total{route="chat",vendor="openai",model="fast",status="200"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"llmux_selections_total{vendor="openai",credential="openai-1",model="fast"} 2"#
        ),
        "{text}"
    );
    assert!(
        text.contains("llmux_upstream_duration_seconds_bucket"),
        "{text}"
    );
    assert!(
        text.contains(r#"llmux_tokens_total{vendor="openai",model="fast",direction="output"}"#),
        "{text}"
    );
    assert!(
        text.contains(r#"llmux_overhead_seconds_count{route="chat"} 2"#),
        "{text}"
    );
    assert!(!text.contains("abcdefghijklmnop"));
}

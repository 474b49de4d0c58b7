//! Selection through the real server: uniform spread, vendor filters, aliases, policies,
//! capability flags. The mock records which credential and model each request used.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]
#![allow(
    clippy::disallowed_methods,
    reason = "tests spawn their own peers and load on the test runtime, which ends with the test: nothing to drain"
)]

mod common;

use std::collections::HashMap;

use common::*;
use serde_json::{Value, json};

/// 2 openai credentials × 2 models + 3 gemini (OpenAI-compatible) credentials × 2 models = 10.
fn ten_combinations(mock: &llmux_mock::MockUpstream, policy: &str) -> String {
    format!(
        "credentials:\n{}{}models:\n  - {{ vendor: openai, model: gpt-4o, name: fast }}\n  - {{ vendor: openai, model: gpt-4o-mini, config: {{ support_image: false, support_tools: true, support_streaming: true }} }}\n  - {{ vendor: gemini, model: gemini-2.5-flash, name: fast }}\n  - {{ vendor: gemini, model: gemini-2.5-pro }}\nrouting: {{ unknown_model: {policy} }}\n",
        credentials(mock, "openai", &["sk-o1", "sk-o2"]),
        credentials(mock, "gemini", &["g-1", "g-2", "g-3"]),
    )
}

#[tokio::test]
async fn any_model_requests_spread_uniformly_over_every_combination() {
    let mock = mock().await;
    let gateway = TestGateway::start(&ten_combinations(&mock, "infer_then_pool")).await;
    let total = 1000;
    let mut tasks = Vec::new();
    for i in 0..total {
        let client = gateway.client.clone();
        let url = format!("{}/v1/chat/completions", gateway.url);
        tasks.push(tokio::spawn(async move {
            let response = client
                .post(url)
                .json(&chat("any-model", &format!("hi {i}")))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["model"], "any-model");
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut counts: HashMap<(String, String), usize> = HashMap::new();
    for call in mock.calls() {
        *counts.entry((call.credential, call.model)).or_default() += 1;
    }
    assert_eq!(counts.len(), 10, "every combination is hit: {counts:?}");
    let expected = total as f64 / 10.0;
    let chi2: f64 = counts
        .values()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum();
    // 9 degrees of freedom; 27.88 is the 99.9th percentile, so a fair router fails 1 run in 1000.
    assert!(chi2 < 27.88, "chi-square {chi2:.1} over {counts:?}");
    // Each vendor's share is credentials × models: openai 4/10, gemini 6/10.
    let openai: usize = counts
        .iter()
        .filter(|((k, _), _)| k.starts_with("sk-"))
        .map(|(_, c)| c)
        .sum();
    assert!((300..=500).contains(&openai), "openai got {openai}");
}

#[tokio::test]
async fn vendor_query_and_provider_field_keep_only_that_vendor() {
    let mock = mock().await;
    let gateway = TestGateway::start(&ten_combinations(&mock, "pool")).await;
    for _ in 0..20 {
        let response = gateway
            .post(
                "/v1/chat/completions?vendor=gemini",
                &chat("any-model", "x"),
            )
            .await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-llmux-vendor"], "gemini");
        let mut pinned = chat("any-model", "x");
        pinned["provider"] = json!("openai");
        let response = gateway.post("/v1/chat/completions", &pinned).await;
        assert_eq!(response.headers()["x-llmux-vendor"], "openai");
    }
    assert!(
        mock.calls()
            .iter()
            .all(|c| c.body.get("provider").is_none()),
        "provider is never forwarded"
    );
}

#[tokio::test]
async fn unknown_vendor_is_a_400_listing_known_vendors() {
    let mock = mock().await;
    let gateway = TestGateway::start(&ten_combinations(&mock, "pool")).await;
    // Case matters, as in the original router.
    let response = gateway
        .post("/v1/chat/completions?vendor=OpenAI", &chat("fast", "x"))
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["message"],
        "unknown vendor 'OpenAI'; known vendors: gemini, openai"
    );
    assert_eq!(body["error"]["code"], "unknown_vendor");
    assert!(mock.calls().is_empty());
}

#[tokio::test]
async fn alias_and_configured_model_names_select_their_combinations() {
    let mock = mock().await;
    let gateway = TestGateway::start(&ten_combinations(&mock, "pool")).await;
    for _ in 0..30 {
        let response = gateway
            .post("/v1/chat/completions", &chat("fast", "x"))
            .await;
        let upstream = response.headers()["x-llmux-model"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            upstream == "gpt-4o" || upstream == "gemini-2.5-flash",
            "{upstream}"
        );
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["model"], "fast");
        let response = gateway
            .post("/v1/chat/completions", &chat("gemini-2.5-pro", "x"))
            .await;
        assert_eq!(response.headers()["x-llmux-model"], "gemini-2.5-pro");
    }
}

#[tokio::test]
async fn infer_policy_passes_the_model_through_to_the_inferred_vendor() {
    let mock = mock().await;
    let gateway = TestGateway::start(&ten_combinations(&mock, "infer")).await;
    let response = gateway
        .post("/v1/chat/completions", &chat("gemini-3-pro-preview", "x"))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-llmux-vendor"], "gemini");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["model"], "gemini-3-pro-preview");
    assert_eq!(mock.calls()[0].model, "gemini-3-pro-preview");

    let response = gateway
        .post("/v1/chat/completions", &chat("llama3", "x"))
        .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_found");
    assert_eq!(body["error"]["param"], "model");
}

#[tokio::test]
async fn reject_policy_refuses_unconfigured_models() {
    let mock = mock().await;
    let gateway = TestGateway::start(&ten_combinations(&mock, "reject")).await;
    let response = gateway
        .post("/v1/chat/completions", &chat("gpt-5", "x"))
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(gateway.chat_status("fast", "x").await, 200);
}

#[tokio::test]
async fn capability_flags_keep_images_away_from_models_without_image_support() {
    let mock = mock().await;
    let gateway = TestGateway::start(&ten_combinations(&mock, "pool")).await;
    let image = json!({"model": "any-model", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}]}]});
    for _ in 0..40 {
        assert_eq!(
            gateway
                .post("/v1/chat/completions?vendor=openai", &image)
                .await
                .status(),
            200
        );
    }
    assert!(
        mock.calls().iter().all(|c| c.model == "gpt-4o"),
        "gpt-4o-mini has support_image: false"
    );

    let mut video = image.clone();
    video["messages"][0]["content"][1] =
        json!({"type": "video_url", "video_url": {"url": "https://x/v.mp4"}});
    video["model"] = json!("gpt-4o-mini");
    let response = gateway.post("/v1/chat/completions", &video).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_capability");
}

#[tokio::test]
async fn google_names_the_gemini_vendor_and_an_unknown_vendor_is_a_400_everywhere() {
    let mock = mock().await;
    let gateway = TestGateway::start(&format!(
        "credentials:
  - {{ platform: openai, value: sk-openai-0123456789, base_url: \"{url}/v1\" }}
  - {{ platform: gemini, value: AIzaGoogleAlias0123456789012345678, base_url: \"{url}/v1beta\" }}
models:
  - {{ vendor: openai, model: gpt-4o-mini, name: fast }}
  - {{ vendor: gemini, model: gemini-2.5-flash, name: fast }}
",
        url = mock.url()
    ))
    .await;
    for _ in 0..8 {
        let mut body = chat("fast", "hi");
        body["provider"] = json!("google");
        let response = gateway.post("/v1/chat/completions", &body).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-llmux-vendor"], "gemini");
    }
    let response = gateway
        .post("/v1/chat/completions?vendor=google", &chat("fast", "hi"))
        .await;
    assert_eq!(response.headers()["x-llmux-vendor"], "gemini");

    let models: Value = gateway
        .get("/v1/models?vendor=google")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        models["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["owned_by"] == "gemini"),
        "{models}"
    );
    let response = gateway.get("/v1/models?vendor=nosuch").await;
    assert_eq!(response.status(), 400, "as on the chat endpoint");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unknown_vendor", "{body}");
}

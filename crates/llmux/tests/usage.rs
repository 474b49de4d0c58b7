//! Prompt caching and usage across translation: a vendor's cached and reasoning token counts
//! reach the client of every ingress in that ingress's own usage shape, Anthropic
//! `cache_control` breakpoints sent on the Chat ingress reach Anthropic (the mock caches like
//! the real API: the first call writes, a repeat reads), and the request log and the key's
//! spend price cached and reasoning tokens at their own rates.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use std::time::Duration;

use common::*;
use llmux_mock::MockUpstream;
use serde_json::{Value, json};

/// An OpenAI-compatible vendor's answer with cached and reasoning tokens (fixtures/openai).
const OPENAI_WHOLE: &[u8] =
    include_bytes!("../../../fixtures/openai/chat_completion_cached_reasoning.json");
const OPENAI_STREAM: &[u8] =
    include_bytes!("../../../fixtures/openai/chat_stream_cached_reasoning.sse");

/// Prices that make each token kind's share of the cost distinguishable.
const PRICING: &str = "pricing:
  o4-mini: { input: 1.0, output: 4.0, cache_read: 0.25, reasoning: 8.0 }
  claude-sonnet-4-5: { input: 3.0, output: 15.0, cache_read: 0.3, cache_write: 3.75 }
";

fn config(vendor_url: &str, mock_url: &str, dir: &std::path::Path) -> String {
    format!(
        "credentials:
  - {{ platform: vllm, name: reasoner, value: sk-usage-0123456789, base_url: \"{vendor_url}/v1\" }}
  - {{ platform: anthropic, name: claude, value: sk-ant-usage-0123456789, base_url: \"{mock_url}/v1\" }}
models:
  - {{ vendor: vllm, model: o4-mini, name: thinker }}
  - {{ vendor: anthropic, model: claude-sonnet-4-5, name: claude }}
auth: {{ master_key: {MASTER}, database: \"sqlite://{keys}\" }}
log: {{ database: \"sqlite://{log}\" }}
{PRICING}",
        keys = dir.join("keys.db").display(),
        log = dir.join("log.db").display(),
    )
}

async fn post(gateway: &TestGateway, path: &str, key: &str, body: &Value) -> reqwest::Response {
    gateway
        .client
        .post(format!("{}{path}", gateway.url))
        .bearer_auth(key)
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

/// A gateway whose `thinker` is a vendor answering `answer` (as `content_type`), and a key on
/// it; the vendor and the mock live as long as the returned values.
async fn thinker_gateway(
    name: &str,
    content_type: &str,
    answer: &[u8],
) -> (TestGateway, String, ScriptedVendor, MockUpstream) {
    let vendor = ScriptedVendor::start(vec![http_answer(
        "200 OK",
        &[&format!("content-type: {content_type}")],
        answer,
    )])
    .await;
    let mock = mock().await;
    let gateway = TestGateway::start(&config(&vendor.url, &mock.url(), &temp_dir(name))).await;
    let (_, key) = create_key(&gateway, json!({"name": "usage"})).await;
    (gateway, key, vendor, mock)
}

/// The request log's record of `request_id`, once written (the writer batches).
async fn logged(gateway: &TestGateway, request_id: &str) -> Value {
    eventually(Duration::from_secs(10), || async {
        let (_, record) = gateway
            .admin(&format!("/admin/requests/{request_id}"))
            .await;
        if record["cost_usd"].is_number() {
            Ok(record)
        } else {
            Err(format!("never logged: {record}"))
        }
    })
    .await
}

fn request_id(response: &reqwest::Response) -> String {
    response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

/// The fixture's usage priced by `PRICING`'s o4-mini entry: 86 uncached input tokens at 1.0,
/// 1,920 cached at 0.25, 44 plain output at 4.0 and 256 reasoning at 8.0 (USD per million).
fn o4_mini_cost() -> f64 {
    (86.0 * 1.0 + 1920.0 * 0.25 + 44.0 * 4.0 + 256.0 * 8.0) / 1e6
}

#[tokio::test]
async fn every_ingress_reports_the_vendors_cached_and_reasoning_tokens_in_its_shape() {
    let (gateway, key, _vendor, _mock) =
        thinker_gateway("usage-ingress", "application/json", OPENAI_WHOLE).await;

    // Chat: the same-protocol byte path; the usage object is the vendor's own.
    let chat = post(
        &gateway,
        "/v1/chat/completions",
        &key,
        &chat("thinker", "hi"),
    )
    .await;
    assert_eq!(chat.status(), 200);
    let chat_id = request_id(&chat);
    let body: Value = chat.json().await.unwrap();
    assert_eq!(body["usage"]["prompt_tokens"], 2006);
    assert_eq!(
        body["usage"]["prompt_tokens_details"]["cached_tokens"],
        1920
    );
    assert_eq!(
        body["usage"]["completion_tokens_details"]["reasoning_tokens"],
        256
    );

    // Messages: input_tokens excludes cache reads; Anthropic has no reasoning count.
    let messages = post(
        &gateway,
        "/v1/messages",
        &key,
        &json!({"model": "thinker", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(messages.status(), 200);
    let body: Value = messages.json().await.unwrap();
    assert_eq!(body["usage"]["input_tokens"], 2006 - 1920, "{body}");
    assert_eq!(body["usage"]["cache_read_input_tokens"], 1920);
    assert_eq!(body["usage"]["output_tokens"], 300);

    // Responses.
    let responses = post(
        &gateway,
        "/v1/responses",
        &key,
        &json!({"model": "thinker", "input": "hi"}),
    )
    .await;
    assert_eq!(responses.status(), 200);
    let body: Value = responses.json().await.unwrap();
    assert_eq!(body["usage"]["input_tokens"], 2006, "{body}");
    assert_eq!(body["usage"]["input_tokens_details"]["cached_tokens"], 1920);
    assert_eq!(
        body["usage"]["output_tokens_details"]["reasoning_tokens"],
        256
    );

    // Gemini: candidatesTokenCount excludes the thoughts.
    let gemini = gateway
        .client
        .post(format!(
            "{}/v1beta/models/thinker:generateContent",
            gateway.url
        ))
        .header("x-goog-api-key", &key)
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(gemini.status(), 200);
    let body: Value = gemini.json().await.unwrap();
    let usage = &body["usageMetadata"];
    assert_eq!(usage["promptTokenCount"], 2006, "{body}");
    assert_eq!(usage["cachedContentTokenCount"], 1920);
    assert_eq!(usage["thoughtsTokenCount"], 256);
    assert_eq!(usage["candidatesTokenCount"], 300 - 256);

    // The byte path's record prices each kind at its own rate.
    let record = logged(&gateway, &chat_id).await;
    assert_eq!(record["cached_tokens"], 1920, "{record}");
    assert_eq!(record["reasoning_tokens"], 256, "{record}");
    let cost = record["cost_usd"].as_f64().unwrap();
    assert!(close(cost, o4_mini_cost()), "{cost} != {}", o4_mini_cost());
}

#[tokio::test]
async fn streamed_answers_carry_cached_and_reasoning_tokens() {
    let (gateway, key, _vendor, _mock) =
        thinker_gateway("usage-stream", "text/event-stream", OPENAI_STREAM).await;

    let chat = post(
        &gateway,
        "/v1/chat/completions",
        &key,
        &json!({"model": "thinker", "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    let chat_id = request_id(&chat);
    let usage = sse_data(chat)
        .await
        .iter()
        .rev()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|c| c["usage"].is_object())
        .expect("a usage chunk")["usage"]
        .clone();
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 1920);
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 256);

    let messages = post(
        &gateway,
        "/v1/messages",
        &key,
        &json!({"model": "thinker", "max_tokens": 100, "stream": true,
                "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    let delta = sse_data(messages)
        .await
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|e| e["type"] == "message_delta")
        .expect("message_delta");
    assert_eq!(delta["usage"]["cache_read_input_tokens"], 1920, "{delta}");
    assert_eq!(delta["usage"]["input_tokens"], 2006 - 1920);

    // The streamed byte path's usage is read without a JSON tree, and priced the same way.
    let record = logged(&gateway, &chat_id).await;
    assert_eq!(record["cached_tokens"], 1920, "{record}");
    let cost = record["cost_usd"].as_f64().unwrap();
    assert!(close(cost, o4_mini_cost()), "{cost} != {}", o4_mini_cost());
}

/// A system prompt long enough for Anthropic to cache (1,024 tokens at least).
fn long_system() -> String {
    "stable instructions ".repeat(600)
}

#[tokio::test]
async fn chat_cache_control_reaches_anthropic_and_cache_reads_are_priced_as_such() {
    let mock = mock().await;
    let dir = temp_dir("usage-cache-control");
    let gateway = TestGateway::start(&config(&mock.url(), &mock.url(), &dir)).await;
    let (key_id, key) = create_key(&gateway, json!({"name": "usage"})).await;
    let body = json!({
        "model": "claude",
        "messages": [
            {"role": "system", "content": [
                {"type": "text", "text": long_system(), "cache_control": {"type": "ephemeral"}}
            ]},
            {"role": "user", "content": "What now?"}
        ]
    });

    let first = post(&gateway, "/v1/chat/completions", &key, &body).await;
    assert_eq!(first.status(), 200);
    let first_id = request_id(&first);
    let first: Value = first.json().await.unwrap();
    assert_eq!(
        first["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64(),
        Some(0),
        "the first call writes the cache: {first}"
    );

    let second = post(&gateway, "/v1/chat/completions", &key, &body).await;
    assert_eq!(second.status(), 200);
    let second_id = request_id(&second);
    let second: Value = second.json().await.unwrap();
    let usage = &second["usage"];
    assert_eq!(
        usage["prompt_tokens_details"]["cached_tokens"], 1200,
        "a repeat reads it: {second}"
    );
    assert_eq!(usage["prompt_tokens"], first["usage"]["prompt_tokens"]);

    // The request sent to Anthropic carried the breakpoint on the system block.
    let sent = mock.calls();
    let upstream = &sent.last().expect("a call").body;
    assert_eq!(
        upstream["system"][0]["cache_control"],
        json!({"type": "ephemeral"}),
        "{upstream}"
    );

    // Cost: the write at 3.75, the read at 0.3 per million (PRICING), the rest at list price.
    let prompt = usage["prompt_tokens"].as_u64().unwrap() as f64;
    let output = usage["completion_tokens"].as_u64().unwrap() as f64;
    let write_cost = ((prompt - 1200.0) * 3.0 + 1200.0 * 3.75 + output * 15.0) / 1e6;
    let read_cost = ((prompt - 1200.0) * 3.0 + 1200.0 * 0.3 + output * 15.0) / 1e6;
    let first_record = logged(&gateway, &first_id).await;
    let second_record = logged(&gateway, &second_id).await;
    assert!(
        close(first_record["cost_usd"].as_f64().unwrap(), write_cost),
        "{first_record} vs {write_cost}"
    );
    assert!(
        close(second_record["cost_usd"].as_f64().unwrap(), read_cost),
        "{second_record} vs {read_cost}"
    );
    assert_eq!(second_record["cached_tokens"], 1200);

    // The key's spend is the sum of both.
    eventually(Duration::from_secs(10), || async {
        let usage = key_usage(&gateway, &key_id).await;
        let total = usage["spend_usd"]["total"].as_f64().unwrap_or(0.0);
        if close(total, write_cost + read_cost) {
            Ok(())
        } else {
            Err(format!(
                "spend {total} != {}: {usage}",
                write_cost + read_cost
            ))
        }
    })
    .await;
}

#[tokio::test]
async fn messages_clients_keep_their_cache_control_on_the_byte_path() {
    let mock = mock().await;
    let dir = temp_dir("usage-messages-cache");
    let gateway = TestGateway::start(&config(&mock.url(), &mock.url(), &dir)).await;
    let (_, key) = create_key(&gateway, json!({"name": "usage"})).await;
    let body = json!({
        "model": "claude",
        "max_tokens": 100,
        "system": [{"type": "text", "text": long_system(), "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "What now?"}]
    });
    let first: Value = post(&gateway, "/v1/messages", &key, &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        first["usage"]["cache_creation_input_tokens"], 1200,
        "{first}"
    );
    let second: Value = post(&gateway, "/v1/messages", &key, &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["usage"]["cache_read_input_tokens"], 1200, "{second}");
    assert_eq!(second["usage"]["cache_creation_input_tokens"], 0);
}

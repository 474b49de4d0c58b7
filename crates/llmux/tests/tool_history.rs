//! A follow-up turn that carries a tool round trip in its history but offers no tools (as the
//! Open Responses compliance suite's `function-call-roundtrip` does) works through every ingress
//! on every vendor. Anthropic refuses such a request, and so does the mock; llmux declares the
//! history's tools with `tool_choice: none` there, so the answer is text as everywhere else. The
//! OpenAI credential translates Responses too (`responses: translate`): the translation is what
//! is under test; the native byte path is `responses_native.rs`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use common::*;
use llmux_mock::{Api, MockUpstream};
use serde_json::{Value, json};

/// Every vendor, the OpenAI credential translating Responses through Chat Completions.
fn every_vendor(mock: &MockUpstream) -> String {
    common::every_vendor(mock, "").replacen("/v1\" }", "/v1\", responses: translate }", 1)
}

/// The path and body of "what's the weather?" → `get_weather(Paris)` → "sunny", without tools,
/// in `ingress`'s own format.
fn round_trip(ingress: &str, model: &str) -> (String, Value) {
    let arguments = r#"{"city":"Paris"}"#;
    match ingress {
        "chat" => (
            "/v1/chat/completions".into(),
            json!({"model": model, "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
                    "function": {"name": "get_weather", "arguments": arguments}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}
            ]}),
        ),
        "responses" => (
            "/v1/responses".into(),
            json!({"model": model, "input": [
                {"type": "message", "role": "user", "content": "Weather in Paris?"},
                {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": arguments},
                {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}
            ]}),
        ),
        "messages" => (
            "/v1/messages".into(),
            json!({"model": model, "max_tokens": 256, "messages": [
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                    "input": {"city": "Paris"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]}
            ]}),
        ),
        "gemini" => (
            format!("/v1beta/models/{model}:generateContent"),
            json!({"contents": [
                {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                    "response": {"result": "sunny"}}}]}
            ]}),
        ),
        _ => unreachable!("unknown ingress {ingress}"),
    }
}

#[tokio::test]
async fn tool_history_without_tools_is_answered_through_every_ingress_on_every_vendor() {
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock)).await;
    for ingress in ["chat", "responses", "messages", "gemini"] {
        for (via, api) in [
            ("via-openai", Api::OpenAiChat),
            ("via-anthropic", Api::Anthropic),
            ("via-gemini", Api::Gemini),
        ] {
            if ingress == "messages" && api == Api::Anthropic {
                // The byte path: the client's own Anthropic request, checked below.
                continue;
            }
            let (path, body) = round_trip(ingress, via);
            let response = gateway.post(&path, &body).await;
            let status = response.status();
            let answer = response.text().await.unwrap();
            assert_eq!(status, 200, "{ingress} → {via}: {answer}");
            assert!(
                answer.contains("Tool result received") && answer.contains("sunny"),
                "{ingress} → {via}: the vendor did not answer the tool result in text: {answer}"
            );
            let calls = mock.calls();
            mock.clear_calls();
            let [call] = calls.as_slice() else {
                panic!(
                    "{ingress} → {via}: expected one vendor call, got {}",
                    calls.len()
                );
            };
            assert_eq!(call.api, api, "{ingress} → {via}");
            if api == Api::Anthropic {
                // Declared for Anthropic's sake only: the model may not call them.
                assert_eq!(
                    call.body["tool_choice"],
                    json!({"type": "none"}),
                    "{ingress}"
                );
                assert_eq!(call.body["tools"][0]["name"], "get_weather", "{ingress}");
            }
        }
    }
}

#[tokio::test]
async fn anthropic_byte_path_keeps_the_clients_tool_history_request_as_sent() {
    // Messages → Anthropic forwards the body unchanged, so Anthropic's own rule applies, in
    // Anthropic's words.
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock)).await;
    let (path, body) = round_trip("messages", "via-anthropic");
    let response = gateway.post(&path, &body).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["type"], "error");
    let message = error["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.ends_with(
            "Requests which include `tool_use` or `tool_result` blocks must define tools."
        ),
        "{error}"
    );
    let calls = mock.calls();
    assert_eq!(calls.len(), 1);
    assert!(calls[0].body.get("tools").is_none());
}

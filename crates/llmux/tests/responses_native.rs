//! Open Responses on an OpenAI credential is a byte path (`responses: native`, the default for
//! `platform: openai`): the client's body reaches the vendor's `/responses` with only `model`
//! changed, the answer comes back with the client's model name and the fields the Open
//! Responses specification requires, and OpenAI's own reasoning, hosted tools and stored
//! conversations work as OpenAI's. `responses: translate` keeps the Chat Completions path.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;
// The one list of the fields the Open Responses schema requires, shared with the protocol
// crate's own tests: a self-contained test file (serde_json only), so including it by path
// needs no test-support crate and no test code in a library's public API.
#[path = "../../llmux-protocol/src/responses/tests/schema.rs"]
#[allow(dead_code, reason = "this test uses the resource list, not the checks")]
mod schema;

use common::*;
use llmux_mock::{Api, MockUpstream};
use serde_json::{Value, json};

fn config(mock: &MockUpstream) -> String {
    format!(
        "credentials:
  - {{ platform: openai, value: sk-openai-test-0123456789, base_url: \"{url}/v1\" }}
  - {{ name: chat-only, platform: openai, value: sk-openai-chat-0123456789, base_url: \"{url}/v1\", responses: translate }}
  - {{ platform: anthropic, value: sk-ant-test-0123456789, base_url: \"{url}/v1\" }}
models:
  - {{ vendor: openai, model: gpt-5, name: smart }}
  - {{ vendor: anthropic, model: claude-sonnet-4-5, name: via-anthropic }}
  - {{ vendor: anthropic, model: claude-haiku-4-5, name: mixed }}
  - {{ vendor: openai, model: gpt-5-mini, name: mixed }}
",
        url = mock.url()
    )
}

/// Only the native credential (the `chat-only` one would go through chat).
async fn native_gateway(mock: &MockUpstream) -> TestGateway {
    let yaml = format!(
        "credentials:
  - {{ platform: openai, value: sk-openai-test-0123456789, base_url: \"{url}/v1\" }}
  - {{ platform: anthropic, value: sk-ant-test-0123456789, base_url: \"{url}/v1\" }}
models:
  - {{ vendor: openai, model: gpt-5, name: smart }}
  - {{ vendor: anthropic, model: claude-sonnet-4-5, name: via-anthropic }}
  - {{ vendor: anthropic, model: claude-haiku-4-5, name: mixed }}
  - {{ vendor: openai, model: gpt-5-mini, name: mixed }}
",
        url = mock.url()
    );
    TestGateway::start(&yaml).await
}

fn assert_spec_resource(resource: &Value, model: &str) {
    for key in schema::RESOURCE_REQUIRED {
        assert!(resource.get(key).is_some(), "missing {key}: {resource}");
    }
    assert_eq!(resource["model"], model);
    assert_eq!(resource["object"], "response");
}

#[tokio::test]
async fn a_responses_request_reaches_openai_responses_with_only_model_changed() {
    let mock = mock().await;
    let gateway = native_gateway(&mock).await;
    // Odd spacing, fields llmux does not know and a hosted tool: all of it must arrive as sent.
    let sent = r#"{ "model" : "smart", "input":"hello native", "store":false,
 "include":["reasoning.encrypted_content"], "reasoning":{"summary":"auto"},
 "tools":[{"type":"web_search","external_web_access":false}], "prompt_cache_key":"k1" }"#;
    let response = gateway.post_raw("/v1/responses", sent.to_owned()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-llmux-model"], "gpt-5");
    // OpenAI runs its hosted tools: nothing was removed from the offer.
    assert!(response.headers().get("x-llmux-dropped-tools").is_none());
    let body: Value = response.json().await.unwrap();
    let calls: Vec<_> = mock
        .calls()
        .into_iter()
        .filter(|c| c.api == Api::OpenAiResponses)
        .collect();
    assert_eq!(calls.len(), 1, "{:?}", mock.calls());
    assert_eq!(calls[0].path, "/v1/responses");
    assert_eq!(
        calls[0].raw_body,
        sent.replacen(r#""model" : "smart""#, r#""model" : "gpt-5""#, 1),
        "only model changes"
    );
    assert_spec_resource(&body, "smart");
    assert!(body["completed_at"].is_u64());
    let reasoning = &body["output"][0];
    assert_eq!(reasoning["type"], "reasoning");
    assert!(
        reasoning["encrypted_content"]
            .as_str()
            .unwrap()
            .starts_with("gAAAAB")
    );
    assert_eq!(body["output"][1]["content"][0]["text"], "hello native");
}

#[tokio::test]
async fn a_native_stream_carries_the_client_model_and_the_spec_fields_and_ends_with_done() {
    let mock = mock().await;
    let gateway = native_gateway(&mock).await;
    let request = json!({"model": "smart", "input": "count to three", "stream": true,
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]});
    let events = named_events(gateway.post("/v1/responses", &request).await).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(&names[..2], ["response.created", "response.in_progress"]);
    assert_eq!(names[names.len() - 2], "response.completed");
    assert_eq!(names[names.len() - 1], "[DONE]");
    assert!(names.contains(&"response.function_call_arguments.delta"));
    for (i, (name, data)) in events[..events.len() - 1].iter().enumerate() {
        assert_eq!(data["type"], *name);
        assert_eq!(data["sequence_number"], i as u64);
        if let Some(resource) = data.get("response") {
            assert_spec_resource(resource, "smart");
        }
    }
    let completed = &events[events.len() - 2].1["response"];
    assert!(completed["completed_at"].is_u64());
    assert_eq!(completed["output"][0]["type"], "function_call");
    assert_eq!(events[0].1["response"]["completed_at"], Value::Null);
    assert!(
        mock.calls()
            .iter()
            .all(|c| c.api == Api::OpenAiResponses && c.model == "gpt-5")
    );
}

#[tokio::test]
async fn encrypted_reasoning_round_trips_into_the_next_turn_and_a_forged_one_is_refused() {
    let mock = mock().await;
    let gateway = native_gateway(&mock).await;
    let first: Value = gateway
        .answer(
            "/v1/responses",
            &json!({"model": "smart", "input": "think first", "store": false,
                    "include": ["reasoning.encrypted_content"], "reasoning": {"effort": "high"}}),
        )
        .await;
    let mut input = first["output"].as_array().unwrap().clone();
    let encrypted = input[0]["encrypted_content"].as_str().unwrap().to_owned();
    input.push(json!({"type": "message", "role": "user", "content": "and now?"}));
    let second = gateway
        .post(
            "/v1/responses",
            &json!({"model": "smart", "input": input, "store": false,
                    "include": ["reasoning.encrypted_content"]}),
        )
        .await;
    assert_eq!(second.status(), 200);
    let last = mock.calls().pop().unwrap();
    assert_eq!(
        last.body["input"][0]["encrypted_content"],
        encrypted.as_str()
    );
    let second: Value = second.json().await.unwrap();
    assert_eq!(second["output"][1]["content"][0]["text"], "and now?");

    // Reasoning OpenAI did not issue is OpenAI's 400, passed on.
    let forged = gateway
        .post(
            "/v1/responses",
            &json!({"model": "smart", "input": [
                {"type": "reasoning", "summary": [], "encrypted_content": "gAAAABforgedforgedforgedforgedforgedforged"},
                {"type": "message", "role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(forged.status(), 400);
    let error: Value = forged.json().await.unwrap();
    assert_eq!(
        error["error"]["code"], "invalid_encrypted_content",
        "{error}"
    );
}

#[tokio::test]
async fn openai_stored_responses_continue_at_openai_and_llmux_stored_ones_are_translated() {
    let mock = mock().await;
    let gateway = native_gateway(&mock).await;
    // Turn 1 at OpenAI, stored there (store defaults to true).
    let first: Value = gateway
        .answer(
            "/v1/responses",
            &json!({"model": "smart", "input": "remember Oslo"}),
        )
        .await;
    let id = first["id"].as_str().unwrap().to_owned();
    // Its continuation goes to OpenAI, even through a group that also holds Anthropic: only
    // OpenAI knows that conversation.
    for _ in 0..6 {
        let next = gateway
            .post(
                "/v1/responses",
                &json!({"model": "mixed", "previous_response_id": id, "input": "where?"}),
            )
            .await;
        assert_eq!(next.status(), 200);
        let call = mock.calls().pop().unwrap();
        assert_eq!(call.api, Api::OpenAiResponses);
        assert_eq!(call.body["previous_response_id"], id.as_str());
    }
    // An id llmux did not see answered for this caller: not found, like another owner's.
    let unknown = gateway
        .post(
            "/v1/responses",
            &json!({"model": "smart", "previous_response_id": "resp_nobody", "input": "x"}),
        )
        .await;
    assert_eq!(unknown.status(), 404);
    let error: Value = unknown.json().await.unwrap();
    assert_eq!(error["error"]["code"], "previous_response_not_found");

    // Turn 1 on Anthropic is llmux's: continued on the OpenAI credential through the neutral
    // model, with the whole conversation.
    let anthropic: Value = gateway
        .answer(
            "/v1/responses",
            &json!({"model": "via-anthropic", "input": "remember Lima"}),
        )
        .await;
    let next = gateway
        .post(
            "/v1/responses",
            &json!({"model": "smart", "previous_response_id": anthropic["id"], "input": "where?"}),
        )
        .await;
    assert_eq!(next.status(), 200);
    let call = mock.calls().pop().unwrap();
    assert_eq!(call.api, Api::OpenAiChat);
    assert!(call.raw_body.contains("remember Lima"), "{}", call.raw_body);
    // GET serves both: the one llmux stored, and the resource of OpenAI's as it was answered.
    let stored = gateway
        .get(&format!(
            "/v1/responses/{}",
            anthropic["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(stored.status(), 200);
    let native: Value = gateway
        .get(&format!("/v1/responses/{id}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(native["id"], id.as_str());
    assert_eq!(native["model"], "smart");
}

#[tokio::test]
async fn a_translate_credential_still_goes_through_chat_completions() {
    let mock = mock().await;
    let gateway = TestGateway::start(&config(&mock)).await;
    // Both OpenAI credentials serve `smart`; only the native one reaches `/responses`.
    for _ in 0..12 {
        let response = gateway
            .post(
                "/v1/responses",
                &json!({"model": "smart", "input": "which path?",
                        "tools": [{"type": "web_search"}]}),
            )
            .await;
        assert_eq!(response.status(), 200);
        let credential = response.headers()["x-llmux-credential"]
            .to_str()
            .unwrap()
            .to_owned();
        let dropped = response.headers().get("x-llmux-dropped-tools").cloned();
        let body: Value = response.json().await.unwrap();
        assert_spec_resource(&body, "smart");
        let call = mock.calls().pop().unwrap();
        if credential == "chat-only" {
            assert_eq!(call.api, Api::OpenAiChat);
            assert_eq!(call.path, "/v1/chat/completions");
            assert_eq!(dropped.unwrap(), "web_search");
        } else {
            assert_eq!(call.api, Api::OpenAiResponses);
            assert!(dropped.is_none());
        }
    }
    let apis: Vec<Api> = mock.calls().into_iter().map(|c| c.api).collect();
    assert!(apis.contains(&Api::OpenAiChat) && apis.contains(&Api::OpenAiResponses));
}

#[tokio::test]
async fn items_only_openai_reads_go_to_openai_as_they_are() {
    let mock = mock().await;
    let gateway = native_gateway(&mock).await;
    // Codex replays its `apply_patch` calls as custom tool items, which only OpenAI reads.
    let input = json!([
        {"type": "message", "role": "user", "content": "patch it"},
        {"type": "custom_tool_call", "call_id": "call_1", "name": "apply_patch", "input": "*** Begin Patch"},
        {"type": "custom_tool_call_output", "call_id": "call_1", "output": "done"},
        {"type": "message", "role": "user", "content": "thanks"}
    ]);
    for model in ["smart", "mixed"] {
        let response = gateway
            .post("/v1/responses", &json!({"model": model, "input": input}))
            .await;
        assert_eq!(response.status(), 200, "{model}");
        assert_eq!(mock.calls().pop().unwrap().api, Api::OpenAiResponses);
    }
    // Where no native credential serves the model, the translation's own refusal stands.
    let refused = gateway
        .post(
            "/v1/responses",
            &json!({"model": "via-anthropic", "input": input}),
        )
        .await;
    assert!(refused.status().is_client_error(), "{}", refused.status());
}

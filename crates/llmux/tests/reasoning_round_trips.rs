//! Reasoning tokens round-trip to the vendor that issued them and are dropped elsewhere: a
//! two-turn conversation through each ingress, turn 1 answered with signed reasoning, turn 2
//! sent back to the same vendor (kept; the mock verifies the signature as the real API does)
//! and to another (dropped; the mock, like the real API, would refuse a foreign token).
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

fn config(mock: &MockUpstream) -> String {
    format!(
        "{}models:
  - {{ vendor: openai, model: gpt-5, name: via-openai }}
  - {{ vendor: anthropic, model: claude-sonnet-4-5, name: via-anthropic }}
  - {{ vendor: gemini, model: gemini-3-flash-preview, name: via-gemini }}
",
        every_vendor_credentials(mock)
    )
}

fn last_call(mock: &MockUpstream) -> llmux_mock::RecordedCall {
    mock.calls().pop().unwrap()
}

/// Sends the next turn (`body` to `path`) to `model`, checks it is answered, and returns what
/// the vendor received.
async fn replay(
    gateway: &TestGateway,
    mock: &MockUpstream,
    model: &str,
    path: &str,
    body: &Value,
) -> llmux_mock::RecordedCall {
    let response = gateway.post(path, body).await;
    assert_eq!(
        response.status(),
        200,
        "{model}: {}",
        response.text().await.unwrap()
    );
    last_call(mock)
}

#[tokio::test]
async fn messages_thinking_goes_back_to_anthropic_and_is_dropped_elsewhere() {
    let mock = mock().await;
    let gateway = TestGateway::start(&config(&mock)).await;
    let thinking = json!({"type": "enabled", "budget_tokens": 2048});
    let first: Value = gateway
        .answer(
            "/v1/messages",
            &json!({"model": "via-anthropic", "max_tokens": 4096, "thinking": thinking,
                    "messages": [{"role": "user", "content": "plan a trip"}]}),
        )
        .await;
    let block = first["content"][0].clone();
    assert_eq!(block["type"], "thinking", "{first}");
    let signature = block["signature"].as_str().unwrap().to_owned();
    assert!(!signature.starts_with("llmux:"));
    let history = json!([
        {"role": "user", "content": "plan a trip"},
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": "and then?"}
    ]);
    for model in ["via-anthropic", "via-gemini", "via-openai"] {
        let sent = replay(
            &gateway,
            &mock,
            model,
            "/v1/messages",
            &json!({"model": model, "max_tokens": 4096, "thinking": thinking,
                        "messages": history}),
        )
        .await
        .raw_body;
        // Kept (and verified by the mock) on Anthropic, dropped on the others.
        assert_eq!(
            sent.contains(&signature),
            model == "via-anthropic",
            "{model}: {sent}"
        );
    }
    // The mock refuses a signature Anthropic did not issue, as the real API does; llmux passes
    // a client's own (Anthropic-shaped) signature through untouched, so the client sees it.
    let mut forged = history.clone();
    forged[1]["content"][0]["signature"] = json!("not-a-signature");
    let refused = gateway
        .post(
            "/v1/messages",
            &json!({"model": "via-anthropic", "max_tokens": 4096, "thinking": thinking,
                    "messages": forged}),
        )
        .await;
    assert_eq!(refused.status(), 400);
}

#[tokio::test]
async fn messages_reasoning_another_vendor_issued_is_dropped_on_the_anthropic_byte_path() {
    let mock = mock().await;
    let gateway = TestGateway::start(&config(&mock)).await;
    // A Gemini answer (with a thinking block llmux tagged as Gemini's) replayed to Anthropic.
    let history = json!([
        {"role": "user", "content": "plan a trip"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "llmux:gemini:c2lnbmF0dXJl"},
            {"type": "thinking", "thinking": "unsigned", "signature": ""},
            {"type": "text", "text": "Lisbon"}]},
        {"role": "user", "content": "and then?"}
    ]);
    let response = gateway
        .post(
            "/v1/messages",
            &json!({"model": "via-anthropic", "max_tokens": 1024, "messages": history}),
        )
        .await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let call = last_call(&mock);
    assert_eq!(call.api, Api::Anthropic);
    assert_eq!(
        call.body["messages"][1]["content"],
        json!([{"type": "text", "text": "Lisbon"}])
    );
}

#[tokio::test]
async fn responses_reasoning_round_trips_on_its_own_vendor_and_is_dropped_elsewhere() {
    let mock = mock().await;
    let gateway = TestGateway::start(&config(&mock)).await;
    // Turn 1 on Anthropic: a reasoning item carrying Anthropic's signature.
    let first: Value = gateway
        .answer(
            "/v1/responses",
            &json!({"model": "via-anthropic", "input": "plan a trip",
                    "reasoning": {"effort": "high"}}),
        )
        .await;
    let reasoning = first["output"][0].clone();
    assert_eq!(reasoning["type"], "reasoning", "{first}");
    let encrypted = reasoning["encrypted_content"].as_str().unwrap().to_owned();
    let signature = encrypted.strip_prefix("llmux:sig:").unwrap().to_owned();
    let mut input = first["output"].as_array().unwrap().clone();
    input.push(json!({"type": "message", "role": "user", "content": "and then?"}));
    for model in ["via-anthropic", "via-openai", "via-gemini"] {
        let call = replay(
            &gateway,
            &mock,
            model,
            "/v1/responses",
            &json!({"model": model, "input": input, "store": false,
                        "reasoning": {"effort": "high"}}),
        )
        .await;
        assert_eq!(
            call.raw_body.contains(&signature),
            model == "via-anthropic",
            "{model}: {}",
            call.raw_body
        );
        if model == "via-openai" {
            // The byte path: OpenAI's own endpoint, the foreign item removed.
            assert_eq!(call.api, Api::OpenAiResponses);
            assert_eq!(
                call.body["input"].as_array().unwrap().len(),
                input.len() - 1
            );
        }
    }

    // Turn 1 at OpenAI: its encrypted reasoning goes back to OpenAI only.
    let first: Value = gateway
        .answer(
            "/v1/responses",
            &json!({"model": "via-openai", "input": "plan a trip", "store": false,
                    "include": ["reasoning.encrypted_content"]}),
        )
        .await;
    let encrypted = first["output"][0]["encrypted_content"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut input = first["output"].as_array().unwrap().clone();
    input.push(json!({"type": "message", "role": "user", "content": "and then?"}));
    for model in ["via-openai", "via-anthropic", "via-gemini"] {
        let sent = replay(
            &gateway,
            &mock,
            model,
            "/v1/responses",
            &json!({"model": model, "input": input, "store": false}),
        )
        .await
        .raw_body;
        assert_eq!(
            sent.contains(&encrypted),
            model == "via-openai",
            "{model}: {sent}"
        );
    }
}

#[tokio::test]
async fn gemini_thought_signatures_round_trip_on_gemini_and_are_dropped_elsewhere() {
    let mock = mock().await;
    let gateway = TestGateway::start(&config(&mock)).await;
    let tools = json!([{"type": "function", "name": "get_weather",
        "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}]);
    let first: Value = gateway.answer("/v1/responses",
            &json!({"model": "via-gemini", "input": "weather in Oslo", "tools": tools, "store": false})).await;
    let call = first["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap()
        .clone();
    let call_id = call["call_id"].as_str().unwrap().to_owned();
    let (_, signature) = call_id.split_once("__ts__").unwrap();
    let input = json!([
        {"type": "message", "role": "user", "content": "weather in Oslo"},
        call,
        {"type": "function_call_output", "call_id": call_id, "output": "sunny"}
    ]);
    for model in ["via-gemini", "via-anthropic", "via-openai"] {
        // Gemini 3 refuses a function call without its signature: it came back.
        let sent = replay(
            &gateway,
            &mock,
            model,
            "/v1/responses",
            &json!({"model": model, "input": input, "tools": tools, "store": false}),
        )
        .await
        .raw_body;
        assert_eq!(
            sent.contains(signature),
            model == "via-gemini",
            "{model}: {sent}"
        );
    }
}

#[tokio::test]
async fn chat_and_gemini_ingresses_replay_reasoning_to_anthropic_without_refusals() {
    let mock = mock().await;
    let gateway = TestGateway::start(&config(&mock)).await;
    // Gemini API client, Anthropic model: the signed thought comes back in an envelope.
    let request = json!({
        "contents": [{"role": "user", "parts": [{"text": "plan a trip"}]}],
        "generationConfig": {"thinkingConfig": {"includeThoughts": true, "thinkingBudget": 2048}}
    });
    let first: Value = gateway
        .answer("/v1beta/models/via-anthropic:generateContent", &request)
        .await;
    let model_turn = first["candidates"][0]["content"].clone();
    assert_eq!(model_turn["parts"][0]["thought"], true, "{first}");
    let contents = json!([
        {"role": "user", "parts": [{"text": "plan a trip"}]},
        model_turn,
        {"role": "user", "parts": [{"text": "and then?"}]}
    ]);
    for model in ["via-anthropic", "via-gemini", "via-openai"] {
        let call = replay(&gateway, &mock, model, &format!("/v1beta/models/{model}:generateContent"),
                &json!({"contents": contents,
                        "generationConfig": {"thinkingConfig": {"includeThoughts": true, "thinkingBudget": 2048}}})).await;
        let kept = call
            .raw_body
            .contains("\"thinking\":\"Thinking about: plan a trip\"");
        assert_eq!(kept, model == "via-anthropic", "{model}: {}", call.raw_body);
        // Gemini gets the client's bytes, without the envelope llmux made for Anthropic.
        assert!(
            !call.raw_body.contains("bGxtdXgvcjEK"),
            "{model}: {}",
            call.raw_body
        );
    }
    // Chat client, Anthropic model: the reasoning text has no signature a chat client can hold,
    // so the next turn carries none and Anthropic is not asked to verify anything.
    let first: Value = gateway
        .answer(
            "/v1/chat/completions",
            &json!({"model": "via-anthropic", "reasoning_effort": "high",
                    "messages": [{"role": "user", "content": "plan a trip"}]}),
        )
        .await;
    let message = first["choices"][0]["message"].clone();
    let second = gateway
        .post(
            "/v1/chat/completions",
            &json!({"model": "via-anthropic", "reasoning_effort": "high", "messages": [
                {"role": "user", "content": "plan a trip"}, message,
                {"role": "user", "content": "and then?"}]}),
        )
        .await;
    assert_eq!(second.status(), 200, "{}", second.text().await.unwrap());
}

//! `/v1/responses` and `/v1/messages` on every vendor (OpenAI, Anthropic, Gemini combinations of
//! the mock): shapes, event sequences, tools, stored conversations, errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use common::*;
use llmux_mock::{FaultRule, MockOptions};
use serde_json::{Value, json};

const VIA: [&str; 3] = ["via-openai", "via-anthropic", "via-gemini"];

fn weather_tool_responses() -> Value {
    json!([{"type": "function", "name": "get_weather", "description": "weather",
            "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]}}])
}

#[tokio::test]
async fn responses_answers_on_every_vendor_with_the_required_resource_fields() {
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    for model in VIA {
        let response = gateway
            .post(
                "/v1/responses",
                &json!({"model": model, "input": "hello responses", "instructions": "be kind"}),
            )
            .await;
        assert_eq!(response.status(), 200, "{model}");
        let body: Value = response.json().await.unwrap();
        for field in [
            "id",
            "object",
            "created_at",
            "completed_at",
            "status",
            "model",
            "output",
            "usage",
            "tools",
            "text",
            "tool_choice",
            "parallel_tool_calls",
            "metadata",
            "error",
            "incomplete_details",
            "instructions",
        ] {
            assert!(
                body.get(field).is_some(),
                "{model}: missing {field}: {body}"
            );
        }
        assert_eq!(body["object"], "response");
        assert_eq!(body["status"], "completed");
        assert_eq!(body["model"], model);
        assert!(body["completed_at"].is_u64());
        let message = body["output"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["type"] == "message")
            .unwrap();
        assert_eq!(message["content"][0]["type"], "output_text");
        assert_eq!(message["content"][0]["text"], "hello responses");
        assert!(body["usage"]["input_tokens"].as_u64().unwrap() > 0);
    }
    // The instructions reached each vendor in its own place.
    let calls = mock.calls();
    // OpenAI gets the Responses body itself (the native path), instructions included.
    assert_eq!(calls[0].body["instructions"], "be kind");
    assert_eq!(calls[1].body["system"], "be kind");
    assert_eq!(
        calls[2].body["systemInstruction"]["parts"][0]["text"],
        "be kind"
    );
}

#[tokio::test]
async fn responses_stream_follows_the_spec_sequence_with_function_calls() {
    let mock = mock_with(MockOptions {
        chunks: 3,
        ..MockOptions::default()
    })
    .await;
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    for model in VIA {
        let request = json!({"model": model, "input": "weather in Lima", "tools": weather_tool_responses(), "stream": true});
        let events = named_events(gateway.post("/v1/responses", &request).await).await;
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            &names[..2],
            ["response.created", "response.in_progress"],
            "{model}: {names:?}"
        );
        assert!(names.contains(&"response.output_item.added"));
        assert!(names.contains(&"response.function_call_arguments.delta"));
        assert!(names.contains(&"response.function_call_arguments.done"));
        assert_eq!(
            names[names.len() - 2],
            "response.completed",
            "{model}: {names:?}"
        );
        assert_eq!(names[names.len() - 1], "[DONE]");
        for (i, (name, data)) in events[..events.len() - 1].iter().enumerate() {
            assert_eq!(data["type"], *name);
            assert_eq!(data["sequence_number"], i as u64, "{model}");
        }
        let done = events
            .iter()
            .find(|(n, _)| n == "response.function_call_arguments.done")
            .unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(done.1["arguments"].as_str().unwrap()).unwrap(),
            json!({"text": "weather in Lima"})
        );
        let completed = &events[events.len() - 2].1["response"];
        assert_eq!(completed["status"], "completed");
        assert_eq!(completed["model"], model);
        assert_eq!(
            completed["output"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|i| i["type"] == "function_call")
                .count(),
            1
        );
    }
}

#[tokio::test]
async fn previous_response_id_continues_a_conversation_on_another_vendor() {
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    let first: Value = gateway.answer("/v1/responses", &json!({"model": "via-gemini", "input": "weather in Quito", "tools": weather_tool_responses()})).await;
    let call = first["output"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call")
        .unwrap()
        .clone();
    let second = gateway
        .post(
            "/v1/responses",
            &json!({"model": "via-anthropic", "previous_response_id": first["id"], "tools": weather_tool_responses(),
                    "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "{\"temp\": 21}"}]}),
        )
        .await;
    assert_eq!(second.status(), 200, "{}", second.text().await.unwrap());
    let sent = &mock.calls()[1].body;
    assert_eq!(
        sent["messages"][0]["content"][0]["text"], "weather in Quito",
        "the first turn was replayed: {sent}"
    );
    assert_eq!(sent["messages"][1]["content"][0]["type"], "tool_use");
    assert_eq!(sent["messages"][2]["content"][0]["type"], "tool_result");

    let stored = gateway
        .get(&format!("/v1/responses/{}", first["id"].as_str().unwrap()))
        .await;
    assert_eq!(stored.status(), 200);
    assert_eq!(stored.json::<Value>().await.unwrap()["id"], first["id"]);
    let deleted = gateway
        .client
        .delete(format!(
            "{}/v1/responses/{}",
            gateway.url,
            first["id"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.json::<Value>().await.unwrap()["deleted"], true);
    assert_eq!(
        gateway
            .get(&format!("/v1/responses/{}", first["id"].as_str().unwrap()))
            .await
            .status(),
        404
    );
    let missing = gateway
        .post(
            "/v1/responses",
            &json!({"model": "via-openai", "previous_response_id": "resp_nope", "input": "x"}),
        )
        .await;
    // Missing and another owner's look the same (issue 14).
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn hosted_tools_are_dropped_and_named_or_refused_when_configured() {
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    let body = json!({"model": "via-anthropic", "input": "x",
        "tools": [{"type": "web_search", "external_web_access": false},
                  {"type": "function", "name": "f", "parameters": {"type": "object"}}]});
    let response = gateway.post("/v1/responses", &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-llmux-dropped-tools"], "web_search");
    let call = mock.calls().pop().unwrap();
    let offered: Vec<&str> = call.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(offered, ["f"], "only the function tool reached the vendor");

    let strict = TestGateway::start(&format!(
        "{}compat: {{ unsupported_tools: reject }}\n",
        every_vendor(&mock, "")
    ))
    .await;
    mock.clear_calls();
    let response = strict.post("/v1/responses", &body).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("web_search"),
        "{body}"
    );
    assert!(mock.calls().is_empty());
}

/// Anthropic's own hosted tool goes to Anthropic untouched (no `x-llmux-dropped-tools`), and
/// under `reject` a group that mixes vendors sends such a request only where the tool runs.
#[tokio::test]
async fn a_hosted_tool_the_vendor_runs_is_kept_and_reject_routes_only_to_such_vendors() {
    let mock = mock().await;
    let mixed = "  - { vendor: openai, model: gpt-4.1, name: mixed }
  - { vendor: anthropic, model: claude-haiku-4-5, name: mixed }
";
    let body = |model: &str| {
        json!({"model": model, "max_tokens": 64,
            "tools": [{"type": "web_search_20250305", "name": "web_search", "max_uses": 1},
                      {"name": "f", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": "hi"}]})
    };
    let offered = |call: &llmux_mock::RecordedCall| -> Vec<String> {
        call.body["tools"]
            .as_array()
            .map(|tools| tools.iter().map(|t| t["name"].to_string()).collect())
            .unwrap_or_default()
    };

    let gateway = TestGateway::start(&format!("{}{mixed}", every_vendor(&mock, ""))).await;
    let response = gateway.post("/v1/messages", &body("via-anthropic")).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-llmux-dropped-tools").is_none());
    let call = mock.calls().pop().unwrap();
    assert_eq!(offered(&call), ["\"web_search\"", "\"f\""]);
    let response = gateway.post("/v1/messages", &body("via-openai")).await;
    assert_eq!(response.status(), 200);
    let dropped = response.headers()["x-llmux-dropped-tools"]
        .to_str()
        .unwrap();
    assert!(dropped.contains("web_search"), "{dropped}");

    let strict = TestGateway::start(&format!(
        "{}{mixed}compat: {{ unsupported_tools: reject }}\n",
        every_vendor(&mock, "")
    ))
    .await;
    mock.clear_calls();
    for _ in 0..12 {
        let response = strict.post("/v1/messages", &body("mixed")).await;
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("x-llmux-dropped-tools").is_none());
    }
    let calls = mock.calls();
    mock.clear_calls();
    assert_eq!(calls.len(), 12);
    assert!(
        calls.iter().all(|c| c.model == "claude-haiku-4-5"),
        "under reject only Anthropic, which runs the tool, may serve: {:?}",
        calls.iter().map(|c| &c.model).collect::<Vec<_>>()
    );
    let refused = strict.post("/v1/messages", &body("via-openai")).await;
    assert_eq!(refused.status(), 400);
    let error: Value = refused.json().await.unwrap();
    assert_eq!(error["type"], "error", "Anthropic's envelope: {error}");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("web_search"),
        "{error}"
    );
    assert!(mock.calls().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn anthropic_beta_reaches_anthropic_on_the_byte_path_and_nothing_else_does() {
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    // A beta field the real API (and the mock) refuses without its beta header.
    let body = json!({"model": "via-anthropic", "max_tokens": 64,
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "messages": [{"role": "user", "content": "hi"}]});
    let response = gateway
        .client
        .post(format!("{}/v1/messages?beta=true", gateway.url))
        .header("anthropic-beta", "context-management-2025-06-27")
        .header("cookie", "session=secret")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    let call = mock.calls().pop().unwrap();
    let header = |name: &str| {
        call.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        header("anthropic-beta").as_deref(),
        Some("context-management-2025-06-27")
    );
    assert_eq!(
        header("cookie"),
        None,
        "no other client header is forwarded"
    );

    // The same request to another vendor is translated; the edit is applied by llmux.
    let mut other = body.clone();
    other["model"] = json!("via-openai");
    let response = gateway.post("/v1/messages", &other).await;
    assert_eq!(response.status(), 200);
}

fn messages_request(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 256, "stream": stream,
           "system": "be terse",
           "tools": [{"name": "get_weather", "description": "weather", "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}}}],
           "messages": [{"role": "user", "content": "weather in Bern"}]})
}

#[tokio::test]
async fn messages_answers_on_every_vendor_in_anthropic_shape() {
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    for model in VIA {
        let response = gateway
            .post("/v1/messages", &messages_request(model, false))
            .await;
        assert_eq!(response.status(), 200, "{model}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "message");
        assert_eq!(body["model"], model);
        assert_eq!(body["stop_reason"], "tool_use", "{model}: {body}");
        let tool_use = body["content"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["type"] == "tool_use")
            .unwrap();
        assert_eq!(tool_use["input"], json!({"text": "weather in Bern"}));
        assert!(body["usage"]["input_tokens"].as_u64().unwrap() > 0);
    }
    // Anthropic itself got the body as sent, only `model` changed.
    let anthropic_call = mock
        .calls()
        .into_iter()
        .find(|c| c.api == llmux_mock::Api::Anthropic)
        .unwrap();
    let mut expected = messages_request("claude-sonnet-4-5", false);
    expected["model"] = json!("claude-sonnet-4-5");
    assert_eq!(anthropic_call.body, expected);
}

#[tokio::test]
async fn messages_stream_is_anthropics_exact_sequence_on_every_vendor() {
    let mock = mock_with(MockOptions {
        chunks: 4,
        ..MockOptions::default()
    })
    .await;
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    for model in VIA {
        let events = named_events(
            gateway
                .post("/v1/messages", &messages_request(model, true))
                .await,
        )
        .await;
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names[0], "message_start", "{model}: {names:?}");
        assert_eq!(*names.last().unwrap(), "message_stop", "{model}: {names:?}");
        let start = &events[0].1["message"];
        assert_eq!(start["model"], model);
        assert!(
            start["usage"]["input_tokens"].as_u64().unwrap() > 0,
            "{model}: real input tokens, not zero"
        );
        // Blocks never overlap and each is stopped.
        let mut open: Option<u64> = None;
        let mut arguments = String::new();
        for (name, data) in &events {
            match name.as_str() {
                "content_block_start" => {
                    assert!(open.is_none(), "{model}: overlapping blocks");
                    open = data["index"].as_u64();
                }
                "content_block_delta" => {
                    assert_eq!(data["index"].as_u64(), open);
                    if data["delta"]["type"] == "input_json_delta" {
                        arguments.push_str(data["delta"]["partial_json"].as_str().unwrap());
                    }
                }
                "content_block_stop" => {
                    assert_eq!(data["index"].as_u64(), open);
                    open = None;
                }
                _ => {}
            }
        }
        assert!(open.is_none());
        assert_eq!(
            serde_json::from_str::<Value>(&arguments).unwrap(),
            json!({"text": "weather in Bern"}),
            "{model}"
        );
        let delta = events.iter().find(|(n, _)| n == "message_delta").unwrap();
        assert_eq!(delta.1["delta"]["stop_reason"], "tool_use", "{model}");
        assert!(delta.1["usage"]["output_tokens"].as_u64().unwrap() > 0);
    }
}

#[tokio::test]
async fn messages_errors_use_anthropics_envelope() {
    let mock = mock().await;
    mock.add_fault(FaultRule {
        status: Some(400),
        times: Some(1),
        ..Default::default()
    });
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    let missing = gateway
        .post(
            "/v1/messages",
            &json!({"model": "via-openai", "messages": [{"role": "user", "content": "x"}]}),
        )
        .await;
    assert_eq!(missing.status(), 400);
    let body: Value = missing.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_tokens")
    );

    let upstream = gateway
        .post("/v1/messages", &messages_request("via-openai", false))
        .await;
    assert_eq!(upstream.status(), 400);
    let body: Value = upstream.json().await.unwrap();
    assert_eq!(body["type"], "error");
}

#[tokio::test]
async fn count_tokens_answers_and_says_when_it_estimates() {
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    let response = gateway
        .post("/v1/messages/count_tokens", &json!({"model": "via-gemini", "messages": [{"role": "user", "content": "count these words please"}]}))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-llmux-token-count"], "estimated");
    let body: Value = response.json().await.unwrap();
    assert!(body["input_tokens"].as_u64().unwrap() > 0);
}

async fn shared_store_across_replicas(store: &str) {
    let mock = mock().await;
    let config = format!(
        "{}responses: {{ store: \"{store}\", capacity: 100 }}\n",
        every_vendor(&mock, "")
    );
    let a = TestGateway::start(&config).await;
    let b = TestGateway::start(&config).await;
    let first: Value = a
        .answer(
            "/v1/responses",
            &json!({"model": "via-anthropic", "input": "remember Oslo"}),
        )
        .await;
    let id = first["id"].as_str().unwrap().to_owned();
    // The write to the database happens in the background: the other replica sees it shortly.
    eventually(std::time::Duration::from_secs(5), || async {
        (b.get(&format!("/v1/responses/{id}")).await.status() == 200)
            .then_some(())
            .ok_or("replica b never saw the stored response")
    })
    .await;
    let second = b
        .post(
            "/v1/responses",
            &json!({"model": "via-gemini", "previous_response_id": id, "input": "and now?"}),
        )
        .await;
    assert_eq!(second.status(), 200);
    let sent = &mock.calls()[1].body;
    assert_eq!(
        sent["contents"][0]["parts"][0]["text"], "remember Oslo",
        "replica b replayed replica a's turn: {sent}"
    );
    let deleted = b
        .client
        .delete(format!("{}/v1/responses/{id}", b.url))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(b.get(&format!("/v1/responses/{id}")).await.status(), 404);
}

#[tokio::test]
async fn stored_responses_persist_in_sqlite_and_are_shared_by_replicas() {
    let path = temp_dir("responses").join("responses.db");
    shared_store_across_replicas(&format!("sqlite://{}", path.display())).await;
}

#[tokio::test]
async fn stored_responses_persist_in_postgres_and_are_shared_by_replicas() {
    let Ok(url) = std::env::var("LLMUX_TEST_PG_URL") else {
        eprintln!("skipped: LLMUX_TEST_PG_URL is not set");
        return;
    };
    shared_store_across_replicas(&url).await;
}

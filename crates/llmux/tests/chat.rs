//! `POST /v1/chat/completions` on the same-protocol path: bodies, streams, tools, usage.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use common::*;
use llmux_mock::{Api, MockOptions, MockUpstream};
use serde_json::{Value, json};

#[tokio::test]
async fn answers_with_the_requested_model_name_and_routing_headers() {
    let mock = mock().await;
    let gateway = TestGateway::start(&basic_config(&mock)).await;

    let response = gateway
        .post("/v1/chat/completions", &chat("fast", "hello there"))
        .await;

    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["x-llmux-vendor"], "openai");
    assert_eq!(headers["x-llmux-model"], "gpt-4o-mini");
    assert_eq!(headers["x-llmux-credential"], "openai-1");
    assert!(
        headers["x-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    assert_eq!(headers["content-type"], "application/json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["model"], "fast");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], "hello there");
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let calls = mock.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].model, "gpt-4o-mini");
    assert_eq!(calls[0].credential, SECRET);
}

#[tokio::test]
async fn keeps_the_clients_request_id() {
    let mock = mock().await;
    let gateway = TestGateway::start(&basic_config(&mock)).await;
    let response = gateway
        .client
        .post(format!("{}/v1/chat/completions", gateway.url))
        .header("x-request-id", "trace-123")
        .json(&chat("fast", "hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-123");
}

#[tokio::test]
async fn forwards_every_parameter_and_replaces_only_model() {
    // Regression: the original router rebuilt the body and dropped temperature, max_tokens,
    // stream_options, response_format, seed, … (REFERENCE A17 #9, #12).
    let mock = mock().await;
    let gateway = TestGateway::start(&basic_config(&mock)).await;
    let request = json!({
        "model": "fast", "temperature": 0.2, "top_p": 0.5, "max_tokens": 50, "seed": 7, "n": 1,
        "stop": ["zz"], "response_format": {"type": "json_object"}, "user": "u-1", "logprobs": false,
        "parallel_tool_calls": false, "metadata": {"k": "v"}, "provider": "openai",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": ""},
            {"type": "text", "text": "look"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "high"}}
        ]}]
    });

    let response = gateway.post("/v1/chat/completions", &request).await;

    assert_eq!(response.status(), 200);
    let mut expected = request.clone();
    expected["model"] = json!("gpt-4o-mini");
    expected.as_object_mut().unwrap().remove("provider");
    assert_eq!(mock.calls()[0].body, expected);
}

#[tokio::test]
async fn streams_chunks_with_the_requested_model_and_hides_usage_not_asked_for() {
    let mock = mock_with(MockOptions {
        chunks: 6,
        ..MockOptions::default()
    })
    .await;
    let gateway = TestGateway::start(&basic_config(&mock)).await;
    let mut request = chat("fast", "one two three four five six seven");
    request["stream"] = json!(true);

    let response = gateway.post("/v1/chat/completions", &request).await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/event-stream; charset=utf-8"
    );
    let events = sse_data(response).await;
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(chunks.len() >= 6);
    let mut text = String::new();
    for chunk in &chunks {
        assert_eq!(
            chunk["model"], "fast",
            "every chunk carries the requested name: {chunk}"
        );
        assert!(
            chunk["choices"].as_array().is_some_and(|c| !c.is_empty()),
            "no usage-only chunk: {chunk}"
        );
        text.push_str(
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or_default(),
        );
    }
    assert_eq!(text, "one two three four five six seven");
    // The gateway asked for usage itself, so it knows the tokens even though the client does not.
    assert_eq!(
        mock.calls()[0].body["stream_options"],
        json!({"include_usage": true})
    );
}

#[tokio::test]
async fn streams_the_usage_chunk_when_the_client_asks() {
    let mock = mock().await;
    let gateway = TestGateway::start(&basic_config(&mock)).await;
    let mut request = chat("fast", "count my tokens");
    request["stream"] = json!(true);
    request["stream_options"] = json!({"include_usage": true});

    let events = sse_data(gateway.post("/v1/chat/completions", &request).await).await;

    let usage_chunk: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["model"], "fast");
    assert!(usage_chunk["usage"]["completion_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn a_done_inside_content_does_not_end_the_stream() {
    // Regression: the original router ended the stream at any line containing "[DONE]" (A17 #10).
    let mock = mock_with(MockOptions {
        chunks: 3,
        ..MockOptions::default()
    })
    .await;
    let gateway = TestGateway::start(&basic_config(&mock)).await;
    let text = "print('[DONE]') and then keep going";
    let mut request = chat("fast", text);
    request["stream"] = json!(true);

    let events = sse_data(gateway.post("/v1/chat/completions", &request).await).await;

    let content: String = events
        .iter()
        .filter(|e| *e != "[DONE]")
        .map(|e| {
            serde_json::from_str::<Value>(e).unwrap()["choices"][0]["delta"]["content"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(content, text);
    assert_eq!(events.iter().filter(|e| *e == "[DONE]").count(), 1);
}

fn tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}},
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {"text": {"type": "string"}}}}}
    ])
}

#[tokio::test]
async fn streamed_parallel_tool_calls_reassemble_with_stable_ids() {
    // Regression: the original router put a new id on every fragment (A17 #11).
    let mock = mock_with(MockOptions {
        chunks: 5,
        ..MockOptions::default()
    })
    .await;
    let gateway = TestGateway::start(&basic_config(&mock)).await;
    let mut request = chat("fast", "weather and time in parallel please");
    request["stream"] = json!(true);
    request["tools"] = tools();
    request["tool_choice"] = json!("auto");

    let events = sse_data(gateway.post("/v1/chat/completions", &request).await).await;
    assert_two_whole_calls(&events, "weather and time in parallel please");
}

/// Clients accumulate fragments by `index`: every call has one, its first fragment carries a
/// unique id and continuations none, arguments reassemble into JSON, and the turn finishes with
/// `tool_calls`.
fn assert_two_whole_calls(events: &[String], text: &str) {
    let mut calls: Vec<(String, String, String)> = Vec::new(); // id, name, arguments
    let mut finish = None;
    for event in events.iter().filter(|e| *e != "[DONE]") {
        let chunk: Value = serde_json::from_str(event).unwrap();
        assert_eq!(chunk["model"], "fast");
        if let Some(reason) = chunk["choices"][0]["finish_reason"].as_str() {
            finish = Some(reason.to_owned());
        }
        for delta in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let index = delta["index"]
                .as_u64()
                .expect("every fragment has an index") as usize;
            if index == calls.len() {
                let id = delta["id"]
                    .as_str()
                    .expect("first delta of a call carries its id");
                assert!(!id.is_empty(), "{delta}");
                calls.push((
                    id.to_owned(),
                    delta["function"]["name"].as_str().unwrap().to_owned(),
                    String::new(),
                ));
            } else {
                assert!(
                    delta.get("id").is_none(),
                    "continuation deltas carry no id: {delta}"
                );
            }
            calls[index]
                .2
                .push_str(delta["function"]["arguments"].as_str().unwrap_or_default());
        }
    }
    assert_eq!(finish.as_deref(), Some("tool_calls"));
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].1, "get_weather");
    assert_eq!(calls[1].1, "get_time");
    assert_ne!(calls[0].0, calls[1].0);
    for (_, _, arguments) in &calls {
        let parsed: Value = serde_json::from_str(arguments).expect("arguments are valid JSON");
        assert_eq!(parsed["text"], text);
    }
}

/// Gemini through its OpenAI-compatible endpoint (the original router's layout): the same
/// protocol, so bytes pass through, except the tool calls Gemini sends malformed.
fn gemini_compat_config(mock: &MockUpstream) -> String {
    format!(
        "credentials:\n  - {{ platform: gemini, api: openai, value: AIzaCompat0123456789, base_url: \"{}/v1beta/openai\" }}\nmodels:\n  - {{ vendor: gemini, model: gemini-2.5-flash, name: fast }}\n",
        mock.url()
    )
}

#[tokio::test]
async fn gemini_compat_streamed_tool_calls_get_indexes_ids_and_finish_reason() {
    let mock = mock().await;
    let gateway = TestGateway::start(&gemini_compat_config(&mock)).await;
    let mut request = chat("fast", "weather and time in parallel please");
    request["stream"] = json!(true);
    request["tools"] = tools();

    let events = sse_data(gateway.post("/v1/chat/completions", &request).await).await;

    // What Gemini sent: no index, empty ids, "stop".
    assert!(
        mock.calls()[0]
            .path
            .starts_with("/v1beta/openai/chat/completions")
    );
    assert_two_whole_calls(&events, "weather and time in parallel please");
}

#[tokio::test]
async fn gemini_compat_whole_answer_tool_calls_get_ids_and_finish_reason() {
    let mock = mock().await;
    let gateway = TestGateway::start(&gemini_compat_config(&mock)).await;
    let mut request = chat("fast", "weather and time in parallel please");
    request["tools"] = tools();

    let body: Value = gateway.answer("/v1/chat/completions", &request).await;

    assert_eq!(body["model"], "fast");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    let calls = body["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap();
    assert_eq!(calls.len(), 2);
    let ids: Vec<&str> = calls.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert!(ids.iter().all(|id| id.starts_with("call_")), "{ids:?}");
    assert_ne!(ids[0], ids[1]);
}

#[tokio::test]
async fn non_streamed_tool_calls_pass_through() {
    let mock = mock().await;
    let gateway = TestGateway::start(&basic_config(&mock)).await;
    let mut request = chat("fast", "weather?");
    request["tools"] = tools();
    request["tool_choice"] = json!({"type": "function", "function": {"name": "get_time"}});

    let body: Value = gateway.answer("/v1/chat/completions", &request).await;

    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "get_time");
    assert!(call["id"].as_str().unwrap().starts_with("call_"));
    assert_eq!(mock.calls()[0].body["tool_choice"], request["tool_choice"]);
}

#[tokio::test]
async fn stream_cut_by_the_upstream_ends_with_an_error_event_and_done() {
    let mock = mock_with(MockOptions {
        chunks: 8,
        ..MockOptions::default()
    })
    .await;
    mock.add_fault(llmux_mock::FaultRule {
        cut_after_chunks: Some(2),
        ..Default::default()
    });
    let gateway = TestGateway::start(&basic_config(&mock)).await;
    let mut request = chat("fast", "a b c d e f g h");
    request["stream"] = json!(true);

    let events = sse_data(gateway.post("/v1/chat/completions", &request).await).await;

    assert_eq!(events.last().unwrap(), "[DONE]");
    let error: Value = serde_json::from_str(&events[events.len() - 2]).unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("mid-stream") || message.contains("ended before"),
        "{error}"
    );
    assert_eq!(
        mock.calls()
            .iter()
            .filter(|c| c.api == Api::OpenAiChat)
            .count(),
        1
    );
}

//! Anthropic Messages against `fixtures/anthropic/*`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::{assert_same_paths, client, collapse, events, fixture, fixture_json, key_paths, start};

/// Tool inputs are free-form.
const OPAQUE: &[&str] = &["content[].input", "content_block.input"];

/// The JSON answer of a Messages request.
async fn messages_json(url: &str, body: Value) -> Value {
    messages(url, body)
        .await
        .json()
        .await
        .expect("a JSON answer")
}

async fn messages(url: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{url}/v1/messages"))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .expect("request")
}

fn tools() -> Value {
    json!([
        {"name": "get_weather", "description": "weather", "input_schema": {"type": "object"}},
        {"name": "get_time", "description": "time", "input_schema": {"type": "object"}}
    ])
}

/// Key paths per event name, unioned over the events with that name.
fn paths_by_event(evs: &[crate::Event]) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for event in evs {
        let name = event.name.clone().expect("every Anthropic frame is named");
        out.entry(name)
            .or_default()
            .extend(key_paths(&event.json(), OPAQUE));
    }
    out
}

#[tokio::test]
async fn text_message_matches_fixture_shape() {
    let mock = start().await;
    let response = messages(
        &mock.url(),
        json!({"model": "claude-sonnet-4-5", "max_tokens": 1024, "system": "Be brief.",
               "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello "}, {"type": "text", "text": "there, Claude!"}]}]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("request-id"));
    let body: Value = response.json().await.unwrap();
    assert_same_paths(
        key_paths(&body, OPAQUE),
        key_paths(&fixture_json("anthropic/message_text.json"), OPAQUE),
        &[],
        &[],
    );
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert!(body["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "Hello there, Claude!"}])
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["usage"]["input_tokens"], 5);
    assert_eq!(body["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn tool_use_message_matches_fixture_shape() {
    let mock = start().await;
    let mut request = fixture_json("anthropic/message_tool_use.request.json");
    request["model"] = json!("claude-haiku-4-5");
    let body: Value = messages_json(&mock.url(), request).await;
    assert_same_paths(
        key_paths(&body, OPAQUE),
        key_paths(&fixture_json("anthropic/message_tool_use.json"), OPAQUE),
        // `caller` is a beta-endpoint extra. The recording also opens with a text block; the
        // mock answers with the tool call alone (text blocks are covered by the text fixture).
        &["content[].caller", "content[].text"],
        &[],
    );
    assert_eq!(body["stop_reason"], "tool_use");
    let block = &body["content"][0];
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["name"], "get_weather");
    let id = block["id"].as_str().unwrap();
    assert!(
        id.starts_with("toolu_")
            && id.len() == 30
            && id[6..].chars().all(|c| c.is_ascii_alphanumeric())
    );
    let text = request_text();
    assert_eq!(block["input"], json!({"text": text}));
}

fn request_text() -> String {
    fixture_json("anthropic/message_tool_use.request.json")["messages"][0]["content"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn parallel_named_and_none_tool_choices() {
    let mock = start().await;
    let ask = |choice: Value, text: &str| {
        let mut body = json!({"model": "claude", "max_tokens": 100, "tools": tools(),
                              "messages": [{"role": "user", "content": text}]});
        if !choice.is_null() {
            body["tool_choice"] = choice;
        }
        let url = mock.url();
        async move { messages(&url, body).await.json::<Value>().await.unwrap() }
    };
    let names = |body: &Value| -> Vec<String> {
        body["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["name"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        names(&ask(Value::Null, "do it in parallel").await),
        ["get_weather", "get_time"]
    );
    assert_eq!(
        names(&ask(json!({"type": "tool", "name": "get_time"}), "x").await),
        ["get_time"]
    );
    let none = ask(json!({"type": "none"}), "just talk").await;
    assert_eq!(
        none["content"],
        json!([{"type": "text", "text": "just talk"}])
    );
}

#[tokio::test]
async fn tool_result_is_acknowledged() {
    let mock = start().await;
    let body: Value = messages_json(&mock.url(),
        json!({"model": "claude", "max_tokens": 100, "tools": tools(), "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}]}]}
        ]})).await;
    assert_eq!(body["content"][0]["text"], "Tool result received: sunny");
    assert_eq!(body["stop_reason"], "end_turn");
}

#[tokio::test]
async fn max_tokens_truncates() {
    let mock = start().await;
    let body: Value = messages_json(&mock.url(),
        json!({"model": "claude", "max_tokens": 3, "messages": [{"role": "user", "content": "a b c d e"}]})).await;
    assert_eq!(body["content"][0]["text"], "a b c");
    assert_eq!(body["stop_reason"], "max_tokens");
    assert_eq!(body["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn text_stream_matches_fixture_and_reassembles() {
    let mock = start().await;
    let response = messages(
        &mock.url(),
        json!({"model": "claude-3-opus-latest", "max_tokens": 100, "stream": true,
               "messages": [{"role": "user", "content": "Hello there!"}]}),
    )
    .await;
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let body = response.text().await.unwrap();
    assert!(!body.contains('\r') && !body.contains("[DONE]"));
    assert!(body.contains("event: ping\ndata: {\"type\": \"ping\"}\n\n"));

    let mine = events(&body, "\n\n");
    let theirs = events(&fixture("anthropic/stream_text.sse"), "\n\n");
    let names =
        |evs: &[crate::Event]| collapse(evs.iter().map(|e| e.name.clone().unwrap()).collect());
    assert_eq!(names(&mine), names(&theirs));

    let (mine_paths, theirs_paths) = (paths_by_event(&mine), paths_by_event(&theirs));
    assert_eq!(
        mine_paths.keys().collect::<Vec<_>>(),
        theirs_paths.keys().collect::<Vec<_>>()
    );
    for (name, paths) in mine_paths {
        // message_start usage follows the newer recording (stream_tool_use.sse), which adds the
        // cache counters and service_tier to this older one.
        let extras: &[&str] = if name == "message_start" {
            &[
                "message.usage.cache_creation_input_tokens",
                "message.usage.cache_read_input_tokens",
                "message.usage.service_tier",
            ]
        } else {
            &[]
        };
        assert_same_paths(paths, theirs_paths[&name].clone(), &[], extras);
    }

    let data: Vec<Value> = mine.iter().map(crate::Event::json).collect();
    assert_eq!(data[0]["message"]["usage"]["output_tokens"], 1);
    assert_eq!(data[0]["message"]["usage"]["input_tokens"], 2);
    assert_eq!(data[0]["message"]["model"], "claude-3-opus-latest");
    let text: String = data
        .iter()
        .filter(|d| d["type"] == "content_block_delta")
        .map(|d| d["delta"]["text"].as_str().unwrap())
        .collect();
    assert_eq!(text, "Hello there!");
    let delta = data.iter().find(|d| d["type"] == "message_delta").unwrap();
    assert_eq!(
        delta["delta"],
        json!({"stop_reason": "end_turn", "stop_sequence": null})
    );
    assert_eq!(delta["usage"]["output_tokens"], 2);
}

#[tokio::test]
async fn tool_use_stream_matches_fixture_and_reassembles() {
    let mock = start().await;
    let body = messages(
        &mock.url(),
        json!({"model": "claude-sonnet-4", "max_tokens": 100, "stream": true, "tools": tools(),
               "messages": [{"role": "user", "content": "Weather in Paris, in parallel with the time"}]}),
    )
    .await
    .text()
    .await
    .unwrap();
    let mine = events(&body, "\n\n");
    let theirs = events(&fixture("anthropic/stream_tool_use.sse"), "\n\n");

    // The recording opens with a text block (index 0) before its tool_use block; the mock
    // answers with tool_use blocks only. Compare the recording without that text block, and
    // check the ping separately: it always follows the first content_block_start.
    let without_text: Vec<crate::Event> = theirs
        .iter()
        .filter(|e| {
            let d = e.json();
            !(e.name
                .as_deref()
                .is_some_and(|n| n.starts_with("content_block"))
                && d["index"] == 0)
        })
        .cloned()
        .collect();
    let pattern = |evs: &[crate::Event]| -> Vec<String> {
        collapse(
            evs.iter()
                .filter_map(|e| e.name.clone())
                .filter(|n| n != "ping")
                .collect(),
        )
    };
    let mine_pattern = pattern(&mine);
    let one_block = pattern(&without_text);
    // Two tool_use blocks in a row: the pattern of one block, with its block events repeated.
    let mut expected = one_block.clone();
    let block: Vec<String> = one_block[1..one_block.len() - 2].to_vec();
    expected.splice(1..1, block);
    assert_eq!(mine_pattern, expected);
    assert_eq!(mine[1].name.as_deref(), Some("content_block_start"));
    assert_eq!(mine[2].name.as_deref(), Some("ping"));
    assert_eq!(
        mine.iter()
            .filter(|e| e.name.as_deref() == Some("ping"))
            .count(),
        1
    );

    let (mine_paths, theirs_paths) = (paths_by_event(&mine), paths_by_event(&theirs));
    for (name, paths) in mine_paths {
        assert_same_paths(
            paths,
            theirs_paths[&name].clone(),
            // Beta-only `caller`; text-block fields belong to the recording's text block.
            &["content_block.caller", "content_block.text", "delta.text"],
            &[],
        );
    }

    let data: Vec<Value> = mine.iter().map(crate::Event::json).collect();
    for index in [0, 1] {
        let start = data
            .iter()
            .find(|d| d["type"] == "content_block_start" && d["index"] == index)
            .unwrap();
        assert_eq!(start["content_block"]["input"], json!({}));
        let fragments: Vec<&str> = data
            .iter()
            .filter(|d| d["type"] == "content_block_delta" && d["index"] == index)
            .map(|d| d["delta"]["partial_json"].as_str().unwrap())
            .collect();
        assert_eq!(fragments[0], "");
        assert!(fragments.len() >= 4);
        let input: Value = serde_json::from_str(&fragments.concat()).unwrap();
        assert_eq!(
            input,
            json!({"text": "Weather in Paris, in parallel with the time"})
        );
    }
    let delta = data.iter().find(|d| d["type"] == "message_delta").unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn validation_errors_use_anthropic_envelope() {
    let mock = start().await;
    let url = format!("{}/v1/messages", mock.url());
    let ok_body = json!({"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]});

    let check = |response: reqwest::Response, status: u16, kind: &'static str| async move {
        assert_eq!(response.status(), status);
        assert!(response.headers().contains_key("request-id"));
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], kind);
        assert!(body["error"]["message"].is_string());
        assert!(body["request_id"].as_str().unwrap().starts_with("req_"));
    };
    let no_key = client()
        .post(&url)
        .header("anthropic-version", "2023-06-01")
        .json(&ok_body)
        .send()
        .await
        .unwrap();
    check(no_key, 401, "authentication_error").await;
    let no_version = client()
        .post(&url)
        .header("x-api-key", "k")
        .json(&ok_body)
        .send()
        .await
        .unwrap();
    check(no_version, 400, "invalid_request_error").await;
    let no_max = messages(&mock.url(), json!({"model": "claude", "messages": []})).await;
    check(no_max, 400, "invalid_request_error").await;
    let no_messages = messages(&mock.url(), json!({"model": "claude", "max_tokens": 5})).await;
    check(no_messages, 400, "invalid_request_error").await;
}

/// Posts `body` with the given `anthropic-beta` header value (none when empty).
async fn messages_with_beta(url: &str, beta: &str, body: Value) -> reqwest::Response {
    let mut request = client()
        .post(format!("{url}/v1/messages?beta=true"))
        .header("x-api-key", "sk-ant-test")
        .header("anthropic-version", "2023-06-01");
    if !beta.is_empty() {
        request = request.header("anthropic-beta", beta);
    }
    request.json(&body).send().await.expect("request")
}

async fn check_refused(response: reqwest::Response, message: &str) {
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["message"], message);
}

#[tokio::test]
async fn unknown_fields_are_refused_like_the_real_api() {
    let mock = start().await;
    let body = json!({
        "model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
        "reasoning_effort": "high"
    });
    check_refused(
        messages(&mock.url(), body).await,
        "reasoning_effort: Extra inputs are not permitted",
    )
    .await;
}

#[tokio::test]
async fn beta_fields_need_their_beta_header() {
    let mock = start().await;
    let url = mock.url();
    let body = json!({
        "model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}],
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "output_config": {"effort": "high"},
        "thinking": {"type": "adaptive"}
    });
    check_refused(
        messages_with_beta(&url, "", body.clone()).await,
        "context_management: Extra inputs are not permitted",
    )
    .await;
    check_refused(
        messages_with_beta(&url, "context-management-2025-06-27", body.clone()).await,
        "output_config: Extra inputs are not permitted",
    )
    .await;
    // Claude Code's header: every beta it uses, comma-separated.
    let ok = messages_with_beta(
        &url,
        "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,effort-2025-11-24",
        body,
    )
    .await;
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn the_recorded_claude_code_request_passes_with_its_headers() {
    let mock = start().await;
    let body = fixture_json("clients/claude-code-2.1.x/messages_plain.request.json");
    let headers = fixture("clients/claude-code-2.1.x/messages_plain.headers.txt");
    let beta = headers
        .lines()
        .find_map(|l| l.strip_prefix("anthropic-beta: "))
        .expect("recorded beta header");
    let response = messages_with_beta(&mock.url(), beta, body.clone()).await;
    assert_eq!(response.status(), 200);
    check_refused(
        messages_with_beta(&mock.url(), "", body).await,
        "context_management: Extra inputs are not permitted",
    )
    .await;
}

#[tokio::test]
async fn tool_history_without_tools_is_refused_like_the_real_api() {
    let mock = start().await;
    let history = json!([
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "sunny"}]}
    ]);
    let refusal = "Requests which include `tool_use` or `tool_result` blocks must define tools.";
    for tools in [None, Some(json!([]))] {
        let mut body = json!({"model": "claude", "max_tokens": 100, "messages": history});
        if let Some(tools) = tools {
            body["tools"] = tools;
        }
        check_refused(messages(&mock.url(), body).await, refusal).await;
    }
    // With tools and tool_choice none (what llmux sends for such history), a text answer.
    let body = json!({"model": "claude", "max_tokens": 100, "messages": history,
                      "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
                      "tool_choice": {"type": "none"}});
    let answer: Value = messages_json(&mock.url(), body).await;
    assert_eq!(answer["content"][0]["text"], "Tool result received: sunny");
}

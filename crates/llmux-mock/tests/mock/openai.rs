//! OpenAI Chat Completions, models and embeddings against `fixtures/openai/*`.

use base64::Engine as _;
use serde_json::{Value, json};

use crate::{
    assert_same_paths, client, collapse, events, fixture, fixture_json, key_paths, start,
    union_paths,
};

/// Extras the mock adds to `usage` (the current API sends them; the 2024 recordings predate them).
const USAGE_EXTRAS: &[&str] = &["usage.prompt_tokens_details"];

/// The JSON answer of a chat request.
async fn chat_json(url: &str, body: Value) -> Value {
    chat(url, body).await.json().await.expect("a JSON answer")
}

async fn chat(url: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth("sk-test")
        .json(&body)
        .send()
        .await
        .expect("request")
}

/// The data chunks of an OpenAI stream `body`, checked against the recorded stream `name`: the
/// same sequence of event kinds (repeats collapsed) and the same key paths.
fn chunks_like_fixture(body: &str, name: &str) -> Vec<Value> {
    let json = |evs: &[crate::Event]| -> Vec<Value> {
        evs.iter()
            .filter(|e| e.data != "[DONE]")
            .map(crate::Event::json)
            .collect()
    };
    let mine = events(body, "\n\n");
    let theirs = events(&fixture(name), "\n\n");
    assert_eq!(
        collapse(mine.iter().map(kind).collect()),
        collapse(theirs.iter().map(kind).collect())
    );
    let (mine, theirs) = (json(&mine), json(&theirs));
    assert_same_paths(
        union_paths(&mine, &[]),
        union_paths(&theirs, &[]),
        &[],
        USAGE_EXTRAS,
    );
    mine
}

fn weather_tools() -> Value {
    json!([
        {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "get_stock_price", "parameters": {"type": "object"}}}
    ])
}

/// Classifies a chunk for order patterns.
fn kind(event: &crate::Event) -> &'static str {
    if event.data == "[DONE]" {
        return "done";
    }
    let chunk = event.json();
    let Some(choice) = chunk["choices"].get(0) else {
        return "usage";
    };
    let delta = &choice["delta"];
    if !choice["finish_reason"].is_null() {
        "finish"
    } else if delta.get("role").is_some() && delta.get("tool_calls").is_none() {
        "role"
    } else if delta["tool_calls"][0].get("id").is_some() {
        "call_start"
    } else if delta.get("tool_calls").is_some() {
        "arguments"
    } else {
        "content"
    }
}

#[tokio::test]
async fn text_completion_matches_fixture_shape() {
    let mock = start().await;
    let response = chat(
        &mock.url(),
        json!({"model": "gpt-4o", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "What is the weather in San Francisco?"}
        ]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");

    assert_same_paths(
        key_paths(&body, &[]),
        key_paths(&fixture_json("openai/chat_completion_text.json"), &[]),
        &[],
        USAGE_EXTRAS,
    );
    assert_eq!(body["model"], "gpt-4o");
    assert_eq!(body["object"], "chat.completion");
    assert!(
        body["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("chatcmpl-"))
    );
    let message = &body["choices"][0]["message"];
    assert_eq!(message["content"], "What is the weather in San Francisco?");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], 9);
    assert_eq!(body["usage"]["completion_tokens"], 7);
    assert_eq!(body["usage"]["total_tokens"], 16);
}

#[tokio::test]
async fn parallel_tool_calls_match_fixture_shape() {
    let mock = start().await;
    let body: Value = chat_json(
        &mock.url(),
        json!({"model": "gpt-4o", "tools": weather_tools(), "messages": [
            {"role": "user", "content": "Weather and stock, in parallel please"}
        ]}),
    )
    .await;

    assert_same_paths(
        key_paths(&body, &[]),
        key_paths(&fixture_json("openai/chat_completion_tool_calls.json"), &[]),
        &[],
        USAGE_EXTRAS,
    );
    let message = &body["choices"][0]["message"];
    assert!(message["content"].is_null());
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    let calls = message["tool_calls"].as_array().expect("tool_calls");
    let names: Vec<&str> = calls
        .iter()
        .map(|c| c["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["get_weather", "get_stock_price"]);
    for call in calls {
        let id = call["id"].as_str().unwrap();
        assert!(id.starts_with("call_") && id.len() == 29, "{id}");
        let args: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
        assert_eq!(
            args,
            json!({"text": "Weather and stock, in parallel please"})
        );
    }
    assert_ne!(calls[0]["id"], calls[1]["id"]);
}

#[tokio::test]
async fn named_tool_choice_and_none_are_honoured() {
    let mock = start().await;
    let named: Value = chat_json(
        &mock.url(),
        json!({"model": "gpt-4o", "tools": weather_tools(),
               "tool_choice": {"type": "function", "function": {"name": "get_stock_price"}},
               "messages": [{"role": "user", "content": "parallel"}]}),
    )
    .await;
    let calls = named["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0]["function"]["name"], "get_stock_price");

    let none: Value = chat_json(
        &mock.url(),
        json!({"model": "gpt-4o", "tools": weather_tools(), "tool_choice": "none",
               "messages": [{"role": "user", "content": "hello"}]}),
    )
    .await;
    assert_eq!(none["choices"][0]["message"]["content"], "hello");
    assert!(none["choices"][0]["message"].get("tool_calls").is_none());
}

#[tokio::test]
async fn tool_result_is_acknowledged_and_empty_text_falls_back() {
    let mock = start().await;
    let body: Value = chat_json(&mock.url(),
        json!({"model": "gpt-4o", "tools": weather_tools(), "messages": [
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21C"}
        ]})).await;
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Tool result received: sunny, 21C"
    );

    let body: Value = chat_json(&mock.url(),
        json!({"model": "gpt-4o", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]})).await;
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Hello from the llmux mock!"
    );
}

#[tokio::test]
async fn text_stream_matches_fixture_and_reassembles() {
    let mock = start().await;
    let text = "I'm unable to provide real-time weather updates.";
    let response = chat(
        &mock.url(),
        json!({"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true},
               "messages": [{"role": "user", "content": [{"type": "text", "text": "I'm unable to provide "}, {"type": "text", "text": "real-time weather updates."}]}]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let body = response.text().await.unwrap();
    assert!(!body.contains('\r'), "OpenAI frames are LF only");
    assert!(body.ends_with("data: [DONE]\n\n"));

    let mine_json = chunks_like_fixture(&body, "openai/chat_stream_text_include_usage.sse");
    let mine = events(&body, "\n\n");
    assert_eq!(mine.iter().filter(|e| kind(e) == "content").count(), 4);

    let first = &mine_json[0];
    assert_eq!(
        first["choices"][0]["delta"],
        json!({"role": "assistant", "content": "", "refusal": null})
    );
    for chunk in &mine_json {
        assert_eq!(chunk["id"], first["id"]);
        assert_eq!(chunk["created"], first["created"]);
        assert_eq!(chunk["system_fingerprint"], first["system_fingerprint"]);
        assert_eq!(chunk["model"], "gpt-4o");
    }
    // With include_usage, every chunk before the usage chunk carries "usage": null.
    let (usage_chunk, rest) = mine_json.split_last().unwrap();
    assert!(rest.iter().all(|c| c.get("usage") == Some(&Value::Null)));
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 7);
    let streamed: String = mine_json
        .iter()
        .filter_map(|c| c["choices"].get(0)?["delta"]["content"].as_str())
        .collect();
    assert_eq!(streamed, text);
}

#[tokio::test]
async fn stream_without_include_usage_has_no_usage() {
    let mock = start().await;
    let body = chat(
        &mock.url(),
        json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
    .text()
    .await
    .unwrap();
    let chunks = events(&body, "\n\n");
    let kinds: Vec<&str> = chunks.iter().map(kind).collect();
    assert_eq!(kinds, ["role", "content", "content", "finish", "done"]);
    assert!(
        chunks
            .iter()
            .filter(|e| e.data != "[DONE]")
            .all(|e| e.json().get("usage").is_none())
    );
}

#[tokio::test]
async fn tool_call_stream_matches_fixture_and_reassembles() {
    let mock = start().await;
    let body = chat(
        &mock.url(),
        json!({"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true},
               "tools": [weather_tools()[0]], "messages": [{"role": "user", "content": "Weather in New York City?"}]}),
    )
    .await
    .text()
    .await
    .unwrap();
    let chunks = chunks_like_fixture(&body, "openai/chat_stream_tool_call_include_usage.sse");
    let fragments: Vec<String> = chunks
        .iter()
        .filter_map(|c| {
            c["choices"].get(0)?["delta"]["tool_calls"][0]["function"]["arguments"]
                .as_str()
                .map(str::to_owned)
        })
        .collect();
    assert!(
        fragments.len() >= 4,
        "start plus at least 3 fragments: {fragments:?}"
    );
    assert_eq!(fragments[0], "");
    let args: Value = serde_json::from_str(&fragments.concat()).unwrap();
    assert_eq!(args, json!({"text": "Weather in New York City?"}));
    let finish = chunks
        .iter()
        .find(|c| c["choices"][0]["finish_reason"].is_string())
        .unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn parallel_tool_call_stream_matches_fixture() {
    let mock = start().await;
    let body = chat(
        &mock.url(),
        json!({"model": "gpt-4o", "stream": true, "stream_options": {"include_usage": true},
               "tools": weather_tools(), "messages": [{"role": "user", "content": "both in parallel"}]}),
    )
    .await
    .text()
    .await
    .unwrap();
    let chunks = chunks_like_fixture(&body, "openai/chat_stream_parallel_tool_calls.sse");
    // Reassemble per index, as a client does.
    let mut args = [String::new(), String::new()];
    let mut indexes = Vec::new();
    for chunk in &chunks {
        let Some(call) = chunk["choices"]
            .get(0)
            .and_then(|c| c["delta"]["tool_calls"].get(0))
        else {
            continue;
        };
        let index = call["index"].as_u64().unwrap() as usize;
        indexes.push(index);
        args[index].push_str(call["function"]["arguments"].as_str().unwrap());
    }
    assert!(indexes.is_sorted(), "calls stream in index order");
    for arg in args {
        assert_eq!(
            serde_json::from_str::<Value>(&arg).unwrap(),
            json!({"text": "both in parallel"})
        );
    }
}

#[tokio::test]
async fn max_tokens_truncates_with_length() {
    let mock = start().await;
    let body: Value = chat_json(&mock.url(),
        json!({"model": "gpt-4o", "max_completion_tokens": 2, "messages": [{"role": "user", "content": "one two three four"}]})).await;
    assert_eq!(body["choices"][0]["message"]["content"], "one two");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["usage"]["completion_tokens"], 2);
}

#[tokio::test]
async fn bad_auth_and_bad_json_get_openai_errors() {
    let mock = start().await;
    let url = format!("{}/v1/chat/completions", mock.url());
    let response = client()
        .post(&url)
        .json(&json!({"model": "m", "messages": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert!(body["error"].get("param").is_some());

    let response = client()
        .post(&url)
        .header("authorization", "Basic abc")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);

    let response = client()
        .post(&url)
        .bearer_auth("sk")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn models_list_has_openai_shape() {
    let mock = start().await;
    let body: Value = client()
        .get(format!("{}/v1/models", mock.url()))
        .bearer_auth("sk")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["object"], "list");
    let data = body["data"].as_array().unwrap();
    assert!(!data.is_empty());
    for model in data {
        assert_eq!(model["object"], "model");
        assert!(
            model["id"].is_string() && model["created"].is_u64() && model["owned_by"].is_string()
        );
    }
}

#[tokio::test]
async fn embeddings_are_deterministic_in_float_and_base64() {
    let mock = start().await;
    let embed = |body: Value| {
        let url = format!("{}/v1/embeddings", mock.url());
        async move {
            let response = client()
                .post(url)
                .bearer_auth("sk")
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let floats =
        embed(json!({"model": "text-embedding-3-small", "input": ["hello world", "bye"]})).await;
    assert_eq!(floats["object"], "list");
    assert_eq!(floats["model"], "text-embedding-3-small");
    assert_eq!(
        floats["usage"],
        json!({"prompt_tokens": 3, "total_tokens": 3})
    );
    let data = floats["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["index"], 1);
    assert_eq!(data[0]["object"], "embedding");
    let vector: Vec<f32> = serde_json::from_value(data[0]["embedding"].clone()).unwrap();
    assert_eq!(vector.len(), 8);
    assert_ne!(data[0]["embedding"], data[1]["embedding"]);

    let again = embed(json!({"model": "text-embedding-3-small", "input": "hello world"})).await;
    assert_eq!(again["data"][0]["embedding"], data[0]["embedding"]);

    let encoded =
        embed(json!({"model": "e", "input": "hello world", "encoding_format": "base64"})).await;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded["data"][0]["embedding"].as_str().unwrap())
        .unwrap();
    let decoded: Vec<f32> = bytes
        .chunks(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    assert_eq!(decoded, vector);
}

#[tokio::test]
async fn unknown_parameters_are_refused_like_the_real_api() {
    let mock = start().await;
    let body = json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "adaptive"}
    });
    let response = chat(&mock.url(), body).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {
            "message": "Unrecognized request argument supplied: thinking",
            "type": "invalid_request_error",
            "param": null,
            "code": null
        }})
    );
    let known = json!({
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "hi"}],
        "user": "u1", "reasoning_effort": "low", "max_completion_tokens": 50,
        "stream_options": null, "parallel_tool_calls": true
    });
    assert_eq!(chat(&mock.url(), known).await.status(), 200);
}

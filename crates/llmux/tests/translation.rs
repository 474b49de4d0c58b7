//! An OpenAI client answered by native Anthropic and Gemini combinations: what the mock vendor
//! received, and what the client got back.
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

use common::*;
use llmux_mock::{Api, FaultRule, MockOptions, MockUpstream};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde";

fn native(mock: &MockUpstream, extra: &str) -> String {
    format!(
        "credentials:
  - {{ platform: anthropic, value: sk-ant-test-key-0123456789, base_url: \"{url}/v1\" }}
  - {{ platform: gemini, value: AIzaTestKey0123456789012345678901234, base_url: \"{url}/v1beta\" }}
models:
  - {{ vendor: anthropic, model: claude-sonnet-4-5, name: claude }}
  - {{ vendor: gemini, model: gemini-2.5-flash, name: flash }}
  - {{ vendor: gemini, model: gemini-3-flash-preview, name: flash3 }}
{extra}",
        url = mock.url()
    )
}

fn tools() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "description": "weather",
        "parameters": {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object", "additionalProperties": false,
                       "properties": {"text": {"type": "string"}}, "required": ["text"]}}}])
}

#[tokio::test]
async fn anthropic_answers_an_openai_chat_with_system_hoisted_and_max_tokens() {
    let mock = mock().await;
    let gateway = TestGateway::start(&native(&mock, "limits: { default_max_tokens: 777 }\n")).await;
    let request = json!({"model": "claude", "temperature": 0.5, "stop": ["END"], "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "hello claude"}]});

    let response = gateway.post("/v1/chat/completions", &request).await;

    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-llmux-vendor"], "anthropic");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "claude");
    assert_eq!(body["choices"][0]["message"]["content"], "hello claude");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert!(body["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let call = &mock.calls()[0];
    assert_eq!(call.api, Api::Anthropic);
    assert_eq!(call.body["system"], "be brief");
    assert_eq!(call.body["max_tokens"], 777);
    assert_eq!(call.body["stop_sequences"], json!(["END"]));
    assert_eq!(
        call.body["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "hello claude"}]}])
    );
    let version = call
        .headers
        .iter()
        .find(|(k, _)| k == "anthropic-version")
        .map(|(_, v)| v.as_str());
    assert_eq!(version, Some("2023-06-01"));
}

#[tokio::test]
async fn anthropic_stream_becomes_openai_chunks_with_tool_arguments_reassembled() {
    let mock = mock_with(MockOptions {
        chunks: 4,
        ..MockOptions::default()
    })
    .await;
    let gateway = TestGateway::start(&native(&mock, "")).await;
    let request = json!({"model": "claude", "stream": true, "stream_options": {"include_usage": true},
        "tools": tools(), "messages": [{"role": "user", "content": "weather in Paris"}]});

    let events = sse_data(gateway.post("/v1/chat/completions", &request).await).await;

    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(chunks.iter().all(|c| c["model"] == "claude"), "{chunks:?}");
    let mut arguments = String::new();
    let mut id = None;
    for chunk in &chunks {
        for call in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(i) = call["id"].as_str() {
                id = Some(i.to_owned());
            }
            arguments.push_str(call["function"]["arguments"].as_str().unwrap_or_default());
        }
    }
    assert!(id.unwrap().starts_with("toolu_"));
    assert_eq!(
        serde_json::from_str::<Value>(&arguments).unwrap(),
        json!({"text": "weather in Paris"})
    );
    let finish = chunks
        .iter()
        .find_map(|c| c["choices"][0]["finish_reason"].as_str())
        .unwrap();
    assert_eq!(finish, "tool_calls");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    let sent = &mock.calls()[0].body;
    assert_eq!(sent["tools"][0]["name"], "get_weather");
    assert_eq!(
        sent["tools"][0]["input_schema"]["properties"]["text"]["type"],
        "string"
    );
}

#[tokio::test]
async fn gemini_answers_with_function_declarations_and_the_requested_name() {
    let mock = mock().await;
    let gateway = TestGateway::start(&native(&mock, "")).await;
    let request = json!({"model": "flash", "tools": tools(), "messages": [
        {"role": "developer", "content": "use tools"}, {"role": "user", "content": "weather in Rome"}]});

    let response = gateway.post("/v1/chat/completions", &request).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["model"], "flash");
    assert_eq!(body["choices"][0]["finish_reason"], "tool_calls");
    let call = &body["choices"][0]["message"]["tool_calls"][0];
    assert!(
        call["id"].as_str().unwrap().starts_with("call_"),
        "gemini-2.5 gives no id; llmux makes one: {call}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(call["function"]["arguments"].as_str().unwrap()).unwrap(),
        json!({"text": "weather in Rome"})
    );
    let sent = mock.calls()[0].clone();
    assert_eq!(sent.api, Api::Gemini);
    assert_eq!(sent.model, "gemini-2.5-flash");
    assert_eq!(sent.credential, "AIzaTestKey0123456789012345678901234");
    assert_eq!(
        sent.body["systemInstruction"]["parts"][0]["text"],
        "use tools"
    );
    let declaration = &sent.body["tools"][0]["functionDeclarations"][0];
    assert_eq!(declaration["name"], "get_weather");
    assert!(
        declaration["parameters"].get("$schema").is_none()
            && declaration["parameters"]
                .get("additionalProperties")
                .is_none()
    );
}

#[tokio::test]
async fn gemini_thought_signature_survives_a_multi_turn_tool_conversation() {
    // Without the signature on the next turn, Gemini 3 answers 400 "Function call is missing a
    // thought_signature" (the mock enforces this like the real API).
    let mock = mock().await;
    let gateway = TestGateway::start(&native(&mock, "")).await;
    let first = json!({"model": "flash3", "tools": tools(), "messages": [{"role": "user", "content": "weather in Oslo"}]});
    let body: Value = gateway.answer("/v1/chat/completions", &first).await;
    let message = body["choices"][0]["message"].clone();
    let call_id = message["tool_calls"][0]["id"].as_str().unwrap().to_owned();

    // A client that keeps only standard fields: role, content, tool_calls with id/type/function.
    let call = &message["tool_calls"][0];
    let plain_call = json!({"id": call["id"], "type": "function", "function": call["function"]});
    let second = json!({"model": "flash3", "tools": tools(), "messages": [
        {"role": "user", "content": "weather in Oslo"},
        {"role": "assistant", "content": null, "tool_calls": [plain_call]},
        {"role": "tool", "tool_call_id": call_id, "content": "{\"temp\": 3}"}]});
    let response = gateway.post("/v1/chat/completions", &second).await;

    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let sent = &mock.calls()[1].body;
    let model_turn = &sent["contents"][1];
    assert_eq!(model_turn["role"], "model");
    assert!(
        model_turn["parts"][0]["thoughtSignature"].is_string(),
        "{sent}"
    );
    let function_response = &sent["contents"][2]["parts"][0]["functionResponse"];
    assert_eq!(function_response["name"], "get_weather");
    assert_eq!(function_response["response"], json!({"temp": 3}));
}

#[tokio::test]
async fn gemini_stream_becomes_openai_chunks() {
    let mock = mock_with(MockOptions {
        chunks: 5,
        ..MockOptions::default()
    })
    .await;
    let gateway = TestGateway::start(&native(&mock, "")).await;
    let mut request = chat("flash", "one two three four five");
    request["stream"] = json!(true);

    let events = sse_data(gateway.post("/v1/chat/completions", &request).await).await;

    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "one two three four five");
    assert!(chunks.iter().all(|c| c["model"] == "flash"));
    assert!(
        chunks
            .iter()
            .all(|c| c["choices"].as_array().is_some_and(|a| !a.is_empty())),
        "no usage chunk unless asked"
    );
    assert!(
        mock.calls()[0]
            .path
            .contains(":streamGenerateContent?alt=sse")
    );
}

#[tokio::test]
async fn vendor_errors_get_the_right_status_and_type_without_the_key() {
    let mock = mock().await;
    mock.add_fault(FaultRule {
        model: Some("claude-sonnet-4-5".into()),
        status: Some(529),
        times: Some(1),
        ..Default::default()
    });
    mock.add_fault(FaultRule {
        model: Some("gemini-2.5-flash".into()),
        status: Some(400),
        body: Some(json!({"error": {"code": 400, "message": "API key AIzaTestKey0123456789012345678901234 not valid", "status": "INVALID_ARGUMENT"}}).to_string()),
        times: Some(1),
        ..Default::default()
    });
    mock.add_fault(FaultRule {
        model: Some("gemini-2.5-flash".into()),
        status: Some(429),
        times: Some(1),
        ..Default::default()
    });
    let gateway = TestGateway::start(&native(&mock, "reliability: { max_attempts: 1 }\n")).await;

    let overloaded = gateway
        .post("/v1/chat/completions", &chat("claude", "x"))
        .await;
    assert_eq!(overloaded.status(), 503);
    let body: Value = overloaded.json().await.unwrap();
    assert_eq!(body["error"]["type"], "overloaded_error");

    let invalid = gateway
        .post("/v1/chat/completions", &chat("flash", "x"))
        .await;
    assert_eq!(invalid.status(), 400);
    let text = invalid.text().await.unwrap();
    assert!(!text.contains("AIzaTestKey"), "{text}");

    // Gemini's RetryInfo (1s in the mock) becomes the client's Retry-After.
    let limited = gateway
        .post("/v1/chat/completions", &chat("flash", "x"))
        .await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["retry-after"], "1");
    assert_eq!(
        limited.json::<Value>().await.unwrap()["error"]["type"],
        "rate_limit_error"
    );
}

/// A one-route HTTP server on 127.0.0.1: `/img.png` serves a PNG, `/redirect` redirects to
/// `target`, anything else is an HTML page.
async fn image_server(redirect_target: Option<String>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let redirect = redirect_target.clone();
            tokio::spawn(async move {
                let mut buf = vec![0; 4096];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = request.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let response: Vec<u8> = match (path.as_str(), redirect) {
                    ("/redirect", Some(to)) => format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n").into_bytes(),
                    ("/img.png", _) => {
                        let mut r = format!("HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\n\r\n", PNG.len()).into_bytes();
                        r.extend_from_slice(PNG);
                        r
                    }
                    _ => b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 6\r\n\r\n<html>".to_vec(),
                };
                let _ = socket.write_all(&response).await;
            });
        }
    });
    format!("http://{addr}")
}

fn image_request(model: &str, url: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "describe"}, {"type": "image_url", "image_url": {"url": url}}]}]})
}

#[tokio::test]
async fn image_urls_are_fetched_into_inline_data_for_gemini() {
    let mock = mock().await;
    let images = image_server(None).await;
    let gateway =
        TestGateway::start(&native(&mock, "images: { allow_addresses: [127.0.0.1] }\n")).await;

    let response = gateway
        .post(
            "/v1/chat/completions",
            &image_request("flash", &format!("{images}/img.png")),
        )
        .await;

    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let part = &mock.calls()[0].body["contents"][0]["parts"][1]["inlineData"];
    assert_eq!(part["mimeType"], "image/png");
    use base64::Engine as _;
    assert_eq!(
        base64::engine::general_purpose::STANDARD
            .decode(part["data"].as_str().unwrap())
            .unwrap(),
        PNG
    );
}

#[tokio::test]
async fn image_urls_into_internal_addresses_are_refused() {
    let mock = mock().await;
    let images = image_server(None).await;
    let gateway = TestGateway::start(&native(&mock, "")).await;
    let port = images.rsplit(':').next().unwrap().to_owned();
    for url in [
        format!("{images}/img.png"),
        format!("http://localhost:{port}/img.png"),
        "http://10.0.0.1/img.png".to_owned(),
        "http://172.16.5.4/img.png".to_owned(),
        "http://192.168.0.10/img.png".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!("http://[::1]:{port}/img.png"),
        "http://[::ffff:127.0.0.1]/img.png".to_owned(),
        "http://[fd00::1]/img.png".to_owned(),
        "http://0.0.0.0/img.png".to_owned(),
    ] {
        let response = gateway
            .post("/v1/chat/completions", &image_request("flash", &url))
            .await;
        assert_eq!(response.status(), 400, "{url}");
        let body: Value = response.json().await.unwrap();
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("refused"),
            "{url}: {body}"
        );
    }
    assert!(mock.calls().is_empty(), "nothing reached the vendor");
}

#[tokio::test]
async fn a_redirect_into_an_internal_address_is_refused_on_the_hop() {
    let mock = mock().await;
    // 127.0.0.1 is allowed (the "public" first hop); the redirect goes to 127.0.0.2, which is not.
    let target = image_server(None).await.replace("127.0.0.1", "127.0.0.2");
    let first_hop = image_server(Some(format!("{target}/img.png"))).await;
    let gateway =
        TestGateway::start(&native(&mock, "images: { allow_addresses: [127.0.0.1] }\n")).await;

    let response = gateway
        .post(
            "/v1/chat/completions",
            &image_request("flash", &format!("{first_hop}/redirect")),
        )
        .await;

    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("127.0.0.2"),
        "{body}"
    );
}

#[tokio::test]
async fn non_images_and_oversized_images_are_refused() {
    let mock = mock().await;
    let images = image_server(None).await;
    let gateway = TestGateway::start(&native(
        &mock,
        "images: { allow_addresses: [127.0.0.1], max_bytes: 10 }\n",
    ))
    .await;
    let html = gateway
        .post(
            "/v1/chat/completions",
            &image_request("flash", &format!("{images}/page")),
        )
        .await;
    assert_eq!(html.status(), 400);
    let big = gateway
        .post(
            "/v1/chat/completions",
            &image_request("flash", &format!("{images}/img.png")),
        )
        .await;
    assert_eq!(big.status(), 400);
    assert!(big.text().await.unwrap().contains("larger than"));
}

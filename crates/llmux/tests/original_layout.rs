//! The two original designs as their users try them (issue 16): the original router's
//! `configs/credentials.json` + `configs/models.json` with `POST /v1/images/text`, images
//! downloaded for every vendor and a private image URL refused; and the Open Responses
//! gateway's quick start posted to `/v1/chat/completions`.
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
use llmux_mock::MockUpstream;
use serde_json::{Value, json};

const PNG_DATA_URL: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC";

/// The original router's layout: OpenAI and Gemini (through Google's OpenAI-compatible
/// endpoint), both on the mock, loaded by the same discovery `llmux serve` uses.
async fn original(mock: &MockUpstream) -> TestGateway {
    let dir = temp_dir("original-layout");
    std::fs::create_dir_all(dir.join("configs")).unwrap();
    std::fs::write(
        dir.join("configs/credentials.json"),
        json!([{"platform": "openai", "type": "api-key", "value": SECRET},
               {"platform": "gemini", "type": "api-key", "value": "AIzaSyTestTestTestTestTestTestTestTest12"}])
        .to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("configs/models.json"),
        json!({"vendors": {"openai": format!("{}/v1", mock.url()), "gemini": format!("{}/v1beta/openai", mock.url())},
               "models": [{"vendor": "gemini", "model": "gemini-2.5-flash", "config": {"support_image": true, "support_video": true, "support_tools": true, "support_streaming": true}},
                          {"vendor": "openai", "model": "gpt-4o", "config": {"support_image": true, "support_tools": true, "support_streaming": true}},
                          {"vendor": "openai", "model": "gpt-3.5-turbo", "config": {"support_image": false, "support_tools": true, "support_streaming": true}}]})
        .to_string(),
    )
    .unwrap();
    let source = llmux_config::discover(&dir);
    let config = llmux_config::load(&source, &|_| None).expect("the original layout loads");
    assert_eq!(config.images.fetch, llmux_config::FetchImages::All);
    start(config).await
}

/// The gateway in-process around an already loaded config.
async fn start(config: llmux_config::Config) -> TestGateway {
    let snapshot = llmux_server::Snapshot::compile(config).expect("snapshot");
    let gateway = llmux_server::Gateway::with_parts(snapshot, None, None).expect("gateway");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let options = llmux_server::ServerOptions {
        drain_timeout: std::time::Duration::from_secs(1),
        ..llmux_server::ServerOptions::from_config(&gateway.snapshot.load().config)
    };
    tokio::spawn(llmux_server::serve(
        listener,
        llmux_server::app(gateway.clone()),
        options,
        std::future::pending(),
    ));
    TestGateway {
        url: format!("http://{addr}"),
        client: reqwest::Client::new(),
        gateway,
    }
}

fn describe(url: &str) -> Value {
    json!({"type": "image_url", "image_url": {"url": url}})
}

#[tokio::test]
async fn images_text_describes_an_image_with_an_image_capable_model() {
    let mock = mock().await;
    let gateway = original(&mock).await;

    for _ in 0..12 {
        let response = gateway
            .post("/v1/images/text", &describe(PNG_DATA_URL))
            .await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["object"], "chat.completion");
        let model = body["model"].as_str().unwrap();
        assert!(
            model == "gemini-2.5-flash" || model == "gpt-4o",
            "the answering model, never gpt-3.5-turbo (no image support) or a literal: {model}"
        );
        assert!(
            !body["choices"][0]["message"]["content"]
                .as_str()
                .unwrap()
                .is_empty()
        );
    }
    let call = mock.calls().pop().unwrap();
    let messages = &call.body["messages"];
    assert!(
        messages[0]["content"]
            .as_str()
            .unwrap()
            .starts_with("Describe the image as detailed as possible."),
        "{messages}"
    );
    assert_eq!(messages[1]["content"][0]["image_url"]["url"], PNG_DATA_URL);
    assert!(mock.calls().iter().all(|c| c.model != "gpt-3.5-turbo"));
}

#[tokio::test]
async fn images_text_takes_a_vendor_filter_and_refuses_what_the_original_refuses() {
    let mock = mock().await;
    let gateway = original(&mock).await;

    let response = gateway
        .post("/v1/images/text?vendor=google", &describe(PNG_DATA_URL))
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["model"], "gemini-2.5-flash");
    assert!(
        mock.calls()
            .pop()
            .unwrap()
            .path
            .starts_with("/v1beta/openai/")
    );

    for (path, body, message) in [
        (
            "/v1/images/text",
            json!({"type": "text", "image_url": {"url": "https://x/a.png"}}),
            "invalid image_url object",
        ),
        (
            "/v1/images/text",
            json!({"type": "image_url", "image_url": {"url": ""}}),
            "invalid image_url object",
        ),
        (
            "/v1/images/text?vendor=nosuch",
            describe(PNG_DATA_URL),
            "nosuch",
        ),
    ] {
        let response = gateway.post(path, &body).await;
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains(message),
            "{error}"
        );
    }
    let bad_json = gateway.post_raw("/v1/images/text", "{not json").await;
    assert_eq!(bad_json.status(), 400);
    let error: Value = bad_json.json().await.unwrap();
    assert_eq!(error["error"]["message"], "invalid request format");
}

#[tokio::test]
async fn a_private_image_url_is_refused_in_the_original_layout() {
    let mock = mock().await;
    let gateway = original(&mock).await;
    for (path, body) in [
        (
            "/v1/images/text",
            describe("http://169.254.169.254/latest/meta-data/iam"),
        ),
        (
            "/v1/chat/completions",
            json!({"model": "gpt-4o", "messages": [{"role": "user", "content": [
                {"type": "text", "text": "what is this"},
                {"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/secret.png"}}]}]}),
        ),
    ] {
        let response = gateway.post(path, &body).await;
        assert_eq!(response.status(), 400, "{path}");
        let error: Value = response.json().await.unwrap();
        let message = error["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("refused") && message.contains("image part"),
            "{message}"
        );
    }
    assert!(mock.calls().is_empty(), "nothing reached a vendor");
}

/// The Open Responses gateway's quick start, verbatim but for the model.
fn quick_start(stream: bool) -> Value {
    json!({"model": "fast", "stream": stream, "input": [{"type": "message", "role": "user",
        "content": [{"type": "input_text", "text": "Hello there"}]}]})
}

#[tokio::test]
async fn the_open_responses_quick_start_on_the_chat_route_is_answered_as_a_response() {
    let mock = mock().await;
    let gateway = TestGateway::start(&basic_config(&mock)).await;

    let response = gateway
        .post("/v1/chat/completions", &quick_start(false))
        .await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "response", "{body}");
    assert_eq!(body["status"], "completed");
    assert_eq!(body["model"], "fast");
    assert_eq!(body["output"][0]["content"][0]["type"], "output_text");
    assert!(
        body["output"][0]["content"][0]["text"]
            .as_str()
            .unwrap()
            .contains("Hello there")
    );
    // A chat body still gets the chat shape.
    let chat_answer: Value = gateway
        .answer("/v1/chat/completions", &chat("fast", "hi"))
        .await;
    assert_eq!(chat_answer["object"], "chat.completion");
}

#[tokio::test]
async fn the_open_responses_quick_start_streams_responses_events() {
    let mock = mock().await;
    let gateway = TestGateway::start(&basic_config(&mock)).await;

    let response = gateway
        .post("/v1/chat/completions", &quick_start(true))
        .await;

    assert_eq!(response.status(), 200);
    let events: Vec<Value> = sse_data(response)
        .await
        .into_iter()
        .filter(|d| d != "[DONE]")
        .map(|d| serde_json::from_str(&d).unwrap())
        .collect();
    assert_eq!(events[0]["type"], "response.created");
    assert!(
        events
            .iter()
            .any(|e| e["type"] == "response.output_text.delta")
    );
    let last = events.last().unwrap();
    assert_eq!(last["type"], "response.completed");
    assert_eq!(last["response"]["status"], "completed");
    assert_eq!(last["response"]["model"], "fast");
}

#[tokio::test]
async fn a_body_with_neither_messages_nor_input_is_still_a_chat_error() {
    let mock = mock().await;
    let gateway = TestGateway::start(&basic_config(&mock)).await;

    let response = gateway
        .post("/v1/chat/completions", &json!({"model": "fast"}))
        .await;

    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("'messages'"),
        "{error}"
    );
}

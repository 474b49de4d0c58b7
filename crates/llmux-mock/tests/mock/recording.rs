//! Call recording: in process and over the admin API.

use llmux_mock::{Api, MockOptions, MockUpstream, RecordedCall};
use serde_json::{Value, json};

use crate::{client, start};

#[tokio::test]
async fn records_every_vendor_call_in_order() {
    let mock = start().await;
    let url = mock.url();
    assert!(url.starts_with("http://127.0.0.1:") && !url.ends_with('/'));
    assert_eq!(url, format!("http://{}", mock.addr()));

    client()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth("sk-openai")
        .header("X-Custom", "yes")
        .json(&json!({"model": "gpt-4o", "stream": true, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    client()
        .post(format!("{url}/v1/messages"))
        .header("x-api-key", "sk-ant")
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-sonnet-4", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    client()
        .post(format!(
            "{url}/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=AIza-q"
        ))
        .json(&json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    client()
        .post(format!("{url}/v1beta/models/gemini-3-pro:generateContent"))
        .header("x-goog-api-key", "AIza-h")
        .json(&json!({"contents": [{"parts": [{"text": "hi"}]}]}))
        .send()
        .await
        .unwrap();
    client()
        .post(format!("{url}/v1/embeddings"))
        .bearer_auth("sk-e")
        .json(&json!({"model": "emb", "input": "x"}))
        .send()
        .await
        .unwrap();
    client()
        .get(format!("{url}/v1/models"))
        .send()
        .await
        .unwrap();

    let calls = mock.calls();
    let summary: Vec<(Api, &str, &str, bool)> = calls
        .iter()
        .map(|c| {
            (
                c.api.clone(),
                c.credential.as_str(),
                c.model.as_str(),
                c.stream,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (Api::OpenAiChat, "sk-openai", "gpt-4o", true),
            (Api::Anthropic, "sk-ant", "claude-sonnet-4", false),
            (Api::Gemini, "AIza-q", "gemini-2.5-flash", true),
            (Api::Gemini, "AIza-h", "gemini-3-pro", false),
            (Api::OpenAiEmbeddings, "sk-e", "emb", false),
            (Api::OpenAiModels, "", "", false),
        ]
    );
    let chat = &calls[0];
    assert_eq!(chat.path, "/v1/chat/completions");
    assert!(
        chat.headers
            .contains(&("x-custom".to_owned(), "yes".to_owned()))
    );
    assert!(
        chat.headers
            .contains(&("authorization".to_owned(), "Bearer sk-openai".to_owned()))
    );
    assert_eq!(chat.body["messages"][0]["content"], "hi");
    assert_eq!(
        calls[2].path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key=AIza-q"
    );
    assert_eq!(calls[5].body, Value::Null);

    mock.clear_calls();
    assert!(mock.calls().is_empty());
}

#[tokio::test]
async fn admin_routes_list_and_clear_calls() {
    let mock = start().await;
    let url = mock.url();
    client()
        .post(format!("{url}/v1/chat/completions"))
        .bearer_auth("sk-1")
        .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();

    let calls: Vec<RecordedCall> = client()
        .get(format!("{url}/__mock/calls"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(calls.len(), 1, "admin routes are not recorded");
    assert_eq!(calls[0].api, Api::OpenAiChat);
    assert_eq!(calls[0].credential, "sk-1");
    let raw: Value = client()
        .get(format!("{url}/__mock/calls"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw[0]["api"], "open_ai_chat");

    let cleared = client()
        .delete(format!("{url}/__mock/calls"))
        .send()
        .await
        .unwrap();
    assert!(cleared.status().is_success());
    assert!(mock.calls().is_empty());
}

#[tokio::test]
async fn from_listener_serves_and_shutdown_stops() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mock = MockUpstream::from_listener(listener, MockOptions::default())
        .await
        .unwrap();
    assert_eq!(mock.addr(), addr);
    let response = client()
        .get(format!("{}/v1/models", mock.url()))
        .bearer_auth("k")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    drop(response);

    mock.shutdown().await.unwrap();
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    assert!(
        fresh
            .get(format!("http://{addr}/v1/models"))
            .send()
            .await
            .is_err()
    );
}

#[tokio::test]
async fn latency_and_chunk_delay_pace_answers() {
    let opts = MockOptions {
        chunks: 3,
        latency: std::time::Duration::from_millis(60),
        chunk_delay: std::time::Duration::from_millis(30),
    };
    let mock = crate::start_with(opts).await;
    let started = std::time::Instant::now();
    let response = client()
        .post(format!("{}/v1/chat/completions", mock.url()))
        .bearer_auth("k")
        .json(&json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "abc"}]}))
        .send()
        .await
        .unwrap();
    assert!(started.elapsed() >= std::time::Duration::from_millis(60));
    let (body, clean) = crate::read_body(response).await;
    assert!(clean);
    // 6 events (role, 3 pieces, finish, [DONE]) with 5 pauses between them.
    assert_eq!(crate::events(&body, "\n\n").len(), 6);
    assert!(started.elapsed() >= std::time::Duration::from_millis(60 + 5 * 30));
}

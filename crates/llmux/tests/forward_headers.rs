//! Client headers on the same-protocol paths: the defaults (`anthropic-beta`,
//! `anthropic-version`, `openai-beta`) and each credential's `forward_headers` reach the vendor;
//! the client's key, cookies and everything not listed never do, and translated paths forward
//! nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use common::*;
use llmux_mock::{MockUpstream, RecordedCall};
use serde_json::{Value, json};

fn config(mock: &MockUpstream) -> String {
    format!(
        "credentials:
  - {{ platform: anthropic, value: sk-ant-vendor-0123456789, base_url: \"{url}/v1\", forward_headers: [X-Title, user-agent, anthropic-beta] }}
  - {{ name: openai-listed, platform: openai, value: sk-openai-listed-0123456789, base_url: \"{url}/v1\", forward_headers: [http-referer] }}
  - {{ name: openai-plain, platform: openai, value: sk-openai-plain-0123456789, base_url: \"{url}/v1\" }}
  - {{ platform: gemini, value: AIzaVendorKey012345678901234567890123, base_url: \"{url}/v1beta\", forward_headers: [x-tenant] }}
models:
  - {{ vendor: anthropic, model: claude-sonnet-4-5, name: via-anthropic }}
  - {{ vendor: openai, model: gpt-4o-mini, name: via-openai }}
  - {{ vendor: gemini, model: gemini-2.5-flash, name: via-gemini }}
",
        url = mock.url()
    )
}

/// Every header a client might send: defaults, listed ones, and ones that must never leave.
const CLIENT_HEADERS: [(&str, &str); 10] = [
    ("anthropic-beta", "context-management-2025-06-27"),
    ("anthropic-version", "2023-01-01"),
    ("openai-beta", "assistants=v2"),
    ("x-title", "My Agent"),
    ("http-referer", "https://agent.example"),
    ("x-tenant", "tenant-7"),
    ("user-agent", "my-agent/1.0"),
    ("cookie", "session=secret-cookie"),
    ("x-api-key", "sk-client-key-0123456789"),
    ("x-goog-api-key", "AIzaClientKey0123456789"),
];

/// Posts `body` to `path` with [`CLIENT_HEADERS`] and returns the one call the vendor saw.
async fn vendor_view(
    gateway: &TestGateway,
    mock: &MockUpstream,
    path: &str,
    body: Value,
) -> RecordedCall {
    mock.clear_calls();
    let mut request = gateway.client.post(format!("{}{path}", gateway.url));
    for (name, value) in CLIENT_HEADERS {
        request = request.header(name, value);
    }
    let response = request.json(&body).send().await.unwrap();
    let status = response.status();
    assert_eq!(status, 200, "{path}: {}", response.text().await.unwrap());
    response.bytes().await.unwrap();
    let mut calls = mock.calls();
    assert_eq!(calls.len(), 1, "{path}");
    calls.remove(0)
}

/// Every value of `name` the vendor received.
fn values<'a>(call: &'a RecordedCall, name: &str) -> Vec<&'a str> {
    call.headers
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The headers that never reach a vendor, whatever a credential lists.
fn assert_nothing_secret(call: &RecordedCall, what: &str) {
    assert!(
        values(call, "cookie").is_empty(),
        "{what}: {:?}",
        call.headers
    );
    let text = format!("{:?}", call.headers);
    assert!(
        !text.contains("sk-client-key") && !text.contains("AIzaClientKey"),
        "{what}: the client's key reached the vendor: {text}"
    );
}

fn messages(model: &str) -> Value {
    json!({"model": model, "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn anthropic_byte_path_forwards_betas_version_and_the_credentials_list() {
    let mock = mock().await;
    let gateway = TestGateway::start(&config(&mock)).await;
    let call = vendor_view(&gateway, &mock, "/v1/messages", messages("via-anthropic")).await;
    // A default the credential also lists is still sent once.
    assert_eq!(
        values(&call, "anthropic-beta"),
        ["context-management-2025-06-27"]
    );
    // The client's version replaces llmux's: one header, not two.
    assert_eq!(values(&call, "anthropic-version"), ["2023-01-01"]);
    assert_eq!(
        values(&call, "x-title"),
        ["My Agent"],
        "listed for this credential"
    );
    assert_eq!(
        values(&call, "user-agent"),
        ["my-agent/1.0"],
        "listed: replaces llmux's"
    );
    assert!(
        values(&call, "http-referer").is_empty(),
        "listed for another credential only"
    );
    assert!(
        values(&call, "openai-beta").is_empty(),
        "not an Anthropic header"
    );
    assert_eq!(values(&call, "x-api-key"), ["sk-ant-vendor-0123456789"]);
    assert_nothing_secret(&call, "messages → anthropic");
}

#[tokio::test]
async fn openai_byte_path_forwards_only_what_the_chosen_credential_lists() {
    let mock = mock().await;
    let gateway = TestGateway::start(&config(&mock)).await;
    let mut seen = std::collections::BTreeMap::new();
    // Both OpenAI credentials serve via-openai; keep asking until each has been chosen.
    for _ in 0..64 {
        if seen.len() == 2 {
            break;
        }
        let call = vendor_view(
            &gateway,
            &mock,
            "/v1/chat/completions",
            chat("via-openai", "hi"),
        )
        .await;
        assert_eq!(values(&call, "openai-beta"), ["assistants=v2"]);
        assert!(values(&call, "x-title").is_empty() && values(&call, "anthropic-beta").is_empty());
        assert!(
            values(&call, "user-agent")
                .iter()
                .all(|ua| ua.starts_with("llmux/")),
            "not listed: llmux's own"
        );
        assert_nothing_secret(&call, "chat → openai");
        seen.insert(
            call.credential.clone(),
            values(&call, "http-referer").join(","),
        );
    }
    assert_eq!(
        seen.get("sk-openai-listed-0123456789").map(String::as_str),
        Some("https://agent.example")
    );
    assert_eq!(
        seen.get("sk-openai-plain-0123456789").map(String::as_str),
        Some("")
    );
}

#[tokio::test]
async fn gemini_byte_path_forwards_the_credentials_list() {
    let mock = mock().await;
    let gateway = TestGateway::start(&config(&mock)).await;
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    let call = vendor_view(
        &gateway,
        &mock,
        "/v1beta/models/via-gemini:generateContent",
        body,
    )
    .await;
    assert_eq!(values(&call, "x-tenant"), ["tenant-7"]);
    assert!(values(&call, "x-title").is_empty() && values(&call, "anthropic-beta").is_empty());
    assert_eq!(
        values(&call, "x-goog-api-key"),
        ["AIzaVendorKey012345678901234567890123"]
    );
    assert_nothing_secret(&call, "gemini → gemini");
}

#[tokio::test]
async fn translated_paths_forward_no_client_header() {
    let mock = mock().await;
    let gateway = TestGateway::start(&config(&mock)).await;
    let call = vendor_view(
        &gateway,
        &mock,
        "/v1/chat/completions",
        chat("via-anthropic", "hi"),
    )
    .await;
    for name in ["anthropic-beta", "x-title", "openai-beta", "cookie"] {
        assert!(values(&call, name).is_empty(), "{name}: {:?}", call.headers);
    }
    assert!(
        values(&call, "user-agent")
            .iter()
            .all(|ua| ua.starts_with("llmux/"))
    );
    assert_nothing_secret(&call, "chat → anthropic");
}

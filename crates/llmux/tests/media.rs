//! Media URLs and documents (issue 16): image, PDF and audio URLs downloaded through the
//! address guard and sent to each vendor in its native form; PDFs from every ingress
//! (`input_file`, chat `file`, Anthropic `document`) reaching every vendor; `images.fetch`
//! modes; per-part download headers only to listed hosts and never upstream.
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

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use common::*;
use llmux_mock::MockUpstream;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0\x90wS\xde";
const PDF: &[u8] = b"%PDF-1.4\n1 0 obj<</Type/Catalog>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n";
const MP3: &[u8] = b"ID3\x04\0\0\0\0\0\0\xff\xfb\x90\x64\0\0\0\0";
const WAV: &[u8] = b"RIFF\x24\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Every vendor natively, all on the mock: `gpt` (OpenAI), `claude` (Anthropic), `flash`
/// (Gemini's own API).
fn vendors(mock: &MockUpstream, images: &str) -> String {
    format!(
        "credentials:
  - {{ platform: openai, value: sk-test-openai-0123456789, base_url: \"{url}/v1\", responses: translate }}
  - {{ platform: anthropic, value: sk-ant-test-key-0123456789, base_url: \"{url}/v1\" }}
  - {{ platform: gemini, value: AIzaTestKey0123456789012345678901234, base_url: \"{url}/v1beta\" }}
models:
  - {{ vendor: openai, model: gpt-4o-mini, name: gpt }}
  - {{ vendor: anthropic, model: claude-sonnet-4-5, name: claude }}
  - {{ vendor: gemini, model: gemini-2.5-flash, name: flash }}
images: {{ {images} }}
",
        url = mock.url()
    )
}

/// A file server on 127.0.0.1 (allowed in these tests through `images.allow_addresses`):
/// `/img.png`, `/doc.pdf` (labelled octet-stream: sniffed), `/a.mp3`, `/a.wav`, anything else an
/// HTML page. Each request's head is recorded.
struct Files {
    url: String,
    heads: Arc<Mutex<Vec<String>>>,
}

async fn files() -> Files {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = vec![0; 8192];
                let n = socket.read(&mut buf).await.unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]).to_string();
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                seen.lock().unwrap().push(head);
                let (kind, body): (&str, &[u8]) = match path.as_str() {
                    "/img.png" => ("image/png", PNG),
                    "/doc.pdf" => ("application/octet-stream", PDF),
                    "/a.mp3" => ("audio/mpeg", MP3),
                    "/a.wav" => ("audio/wav", WAV),
                    _ => ("text/html", b"<html>"),
                };
                let mut response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                response.extend_from_slice(body);
                let _ = socket.write_all(&response).await;
            });
        }
    });
    Files { url, heads }
}

fn chat_with(model: &str, part: Value) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"}, part]}]})
}

/// The second content part of the user turn as the vendor received it, in its own format.
fn vendor_part(mock: &MockUpstream) -> Value {
    let call = mock.calls().pop().expect("the vendor was called");
    let body = call.body;
    if let Some(contents) = body.get("contents") {
        return contents[0]["parts"][1].clone();
    }
    body["messages"][0]["content"][1].clone()
}

/// The mock, the file server and a gateway with `images` settings in front of both.
async fn with_files(images: &str) -> (MockUpstream, Files, TestGateway) {
    let mock = mock().await;
    let files = files().await;
    let gateway = TestGateway::start(&vendors(&mock, images)).await;
    (mock, files, gateway)
}

async fn ok(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}

/// Sends `part` to `model` on the chat route, checks it is answered, and returns the part as
/// the vendor received it.
async fn answered(gateway: &TestGateway, mock: &MockUpstream, model: &str, part: Value) -> Value {
    ok(gateway
        .post("/v1/chat/completions", &chat_with(model, part))
        .await)
    .await;
    vendor_part(mock)
}

/// Sends `part` to `model` on the chat route and returns the 400's message.
async fn refusal(gateway: &TestGateway, model: &str, part: Value) -> String {
    let response = gateway
        .post("/v1/chat/completions", &chat_with(model, part))
        .await;
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert_eq!(status, 400, "{body}");
    body["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_pdf_url_reaches_each_vendor_as_its_native_document() {
    let (mock, files, gateway) = with_files("allow_addresses: [127.0.0.1]").await;
    let part = json!({"type": "file_url", "file_url": {"url": format!("{}/doc.pdf", files.url)}});
    let data_url = format!("data:application/pdf;base64,{}", b64(PDF));

    let openai = answered(&gateway, &mock, "gpt", part.clone()).await;
    assert_eq!(openai["type"], "file");
    assert_eq!(openai["file"]["file_data"], data_url.as_str());

    let anthropic = answered(&gateway, &mock, "claude", part.clone()).await;
    assert_eq!(anthropic["type"], "document");
    assert_eq!(anthropic["source"]["media_type"], "application/pdf");
    assert_eq!(anthropic["source"]["data"], b64(PDF).as_str());

    let gemini = answered(&gateway, &mock, "flash", part).await;
    assert_eq!(gemini["inlineData"]["mimeType"], "application/pdf");
    assert_eq!(gemini["inlineData"]["data"], b64(PDF).as_str());
}

#[tokio::test]
async fn a_file_url_holding_an_image_is_sent_as_an_image() {
    let (mock, files, gateway) = with_files("allow_addresses: [127.0.0.1]").await;
    let part = json!({"type": "file_url", "file_url": {"url": format!("{}/img.png", files.url)}});

    let openai = answered(&gateway, &mock, "gpt", part.clone()).await;
    assert_eq!(openai["type"], "image_url");
    assert_eq!(
        openai["image_url"]["url"],
        format!("data:image/png;base64,{}", b64(PNG)).as_str()
    );

    let anthropic = answered(&gateway, &mock, "claude", part).await;
    assert_eq!(anthropic["type"], "image");
    assert_eq!(anthropic["source"]["media_type"], "image/png");
}

#[tokio::test]
async fn a_file_url_of_another_type_is_a_400_naming_the_type() {
    let (mock, files, gateway) = with_files("allow_addresses: [127.0.0.1]").await;
    let part = json!({"type": "file_url", "file_url": {"url": format!("{}/page.html", files.url)}});

    let message = refusal(&gateway, "gpt", part).await;

    assert!(message.contains("'text/html'"), "{message}");
    assert!(message.contains("file part 1 of message 0"), "{message}");
    assert!(mock.calls().is_empty());
}

#[tokio::test]
async fn audio_urls_reach_openai_and_gemini_and_anthropic_gets_a_400() {
    let (mock, files, gateway) = with_files("allow_addresses: [127.0.0.1]").await;
    let mp3 = json!({"type": "audio_url", "audio_url": {"url": format!("{}/a.mp3", files.url)}});
    let wav = json!({"type": "audio_url", "audio_url": {"url": format!("{}/a.wav", files.url)}});

    let openai = answered(&gateway, &mock, "gpt", mp3.clone()).await;
    assert_eq!(openai["type"], "input_audio");
    assert_eq!(openai["input_audio"]["format"], "mp3");
    assert_eq!(openai["input_audio"]["data"], b64(MP3).as_str());

    let gemini = answered(&gateway, &mock, "flash", wav).await;
    assert_eq!(gemini["inlineData"]["mimeType"], "audio/wav");
    assert_eq!(gemini["inlineData"]["data"], b64(WAV).as_str());

    let calls = mock.calls().len();
    let message = refusal(&gateway, "claude", mp3).await;
    assert!(message.contains("audio part 1 of message 0"), "{message}");
    assert!(message.contains("Anthropic"), "{message}");
    assert_eq!(mock.calls().len(), calls, "nothing reached Anthropic");
}

#[tokio::test]
async fn a_pdf_reaches_every_vendor_from_every_ingress() {
    let mock = mock().await;
    let gateway = TestGateway::start(&vendors(&mock, "")).await;
    let data_url = format!("data:application/pdf;base64,{}", b64(PDF));
    for model in ["gpt", "claude", "flash"] {
        let requests = [
            (
                "/v1/responses",
                json!({"model": model, "input": [{"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "what is this"},
                    {"type": "input_file", "filename": "openresponses-fixture.pdf", "file_data": data_url}]}]}),
            ),
            (
                "/v1/chat/completions",
                chat_with(
                    model,
                    json!({"type": "file", "file": {"filename": "a.pdf", "file_data": data_url}}),
                ),
            ),
            (
                "/v1/messages",
                json!({"model": model, "max_tokens": 100, "messages": [{"role": "user", "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": b64(PDF)}}]}]}),
            ),
        ];
        for (path, request) in requests {
            let response = gateway.post(path, &request).await;
            let status = response.status();
            let text = response.text().await.unwrap();
            assert_eq!(status, 200, "{path} → {model}: {text}");
            let part = vendor_part(&mock);
            let (kind, media_type, data) = match model {
                "gpt" => ("file", "application/pdf", part["file"]["file_data"].clone()),
                "claude" => (
                    "document",
                    "application/pdf",
                    part["source"]["data"].clone(),
                ),
                _ => (
                    "inlineData",
                    "application/pdf",
                    part["inlineData"]["data"].clone(),
                ),
            };
            match model {
                "gpt" => {
                    assert_eq!(part["type"], kind, "{path}: {part}");
                    assert_eq!(data, data_url.as_str(), "{path}");
                }
                "claude" => {
                    assert_eq!(part["type"], kind, "{path}: {part}");
                    assert_eq!(part["source"]["media_type"], media_type, "{path}");
                    assert_eq!(data, b64(PDF).as_str(), "{path}");
                }
                _ => {
                    assert_eq!(part[kind]["mimeType"], media_type, "{path}: {part}");
                    assert_eq!(data, b64(PDF).as_str(), "{path}");
                }
            }
        }
    }
}

#[tokio::test]
async fn fetch_all_inlines_image_urls_for_openai_too_and_auto_leaves_them() {
    let mock = mock().await;
    let files = files().await;
    let image =
        json!({"type": "image_url", "image_url": {"url": format!("{}/img.png", files.url)}});

    let auto = TestGateway::start(&vendors(&mock, "allow_addresses: [127.0.0.1]")).await;
    assert_eq!(
        answered(&auto, &mock, "gpt", image.clone()).await["image_url"]["url"],
        format!("{}/img.png", files.url).as_str(),
        "auto: OpenAI reads the URL itself"
    );

    let all = TestGateway::start(&vendors(&mock, "fetch: all, allow_addresses: [127.0.0.1]")).await;
    assert_eq!(
        answered(&all, &mock, "gpt", image).await["image_url"]["url"],
        format!("data:image/png;base64,{}", b64(PNG)).as_str()
    );
}

#[tokio::test]
async fn download_headers_go_only_to_listed_hosts_and_never_to_the_vendor() {
    let mock = mock().await;
    let files = files().await;
    let image = json!({"type": "image_url", "image_url": {
        "url": format!("{}/img.png", files.url), "headers": {"X-Image-Token": "t0ken"}}});

    let listed = TestGateway::start(&vendors(
        &mock,
        "fetch: all, allow_addresses: [127.0.0.1], header_hosts: [127.0.0.1]",
    ))
    .await;
    answered(&listed, &mock, "gpt", image.clone()).await;
    assert!(
        files
            .heads
            .lock()
            .unwrap()
            .pop()
            .unwrap()
            .to_ascii_lowercase()
            .contains("x-image-token: t0ken"),
        "a listed host gets the header"
    );
    let vendor_body = mock.calls().pop().unwrap().body.to_string();
    assert!(!vendor_body.contains("t0ken"), "{vendor_body}");

    let unlisted =
        TestGateway::start(&vendors(&mock, "fetch: all, allow_addresses: [127.0.0.1]")).await;
    answered(&unlisted, &mock, "gpt", image).await;
    assert!(
        !files
            .heads
            .lock()
            .unwrap()
            .pop()
            .unwrap()
            .to_ascii_lowercase()
            .contains("x-image-token"),
        "an unlisted host gets no client header"
    );
    assert!(
        !mock
            .calls()
            .pop()
            .unwrap()
            .body
            .to_string()
            .contains("t0ken")
    );
}

#[tokio::test]
async fn fetch_false_still_means_off() {
    let mock = mock().await;
    let files = files().await;
    let gateway = TestGateway::start(&vendors(
        &mock,
        "fetch: false, allow_addresses: [127.0.0.1]",
    ))
    .await;
    let part = json!({"type": "file_url", "file_url": {"url": format!("{}/doc.pdf", files.url)}});

    let message = refusal(&gateway, "flash", part).await;

    assert!(message.contains("images.fetch is off"), "{message}");
    // Anthropic reads a document URL itself, so it still gets one.
    let pdf_url = format!("{}/doc.pdf", files.url);
    let part = json!({"type": "file_url", "file_url": {"url": pdf_url}});
    assert_eq!(
        answered(&gateway, &mock, "claude", part).await,
        json!({"type": "document", "source": {"type": "url", "url": pdf_url}})
    );
    assert!(
        files.heads.lock().unwrap().is_empty(),
        "nothing was downloaded"
    );
}

//! OpenTelemetry traces: the gateway binary exports one trace per request (a server span with
//! the GenAI attributes, a client span per attempt) to a real OTLP receiver in the test — an
//! OTLP/HTTP server decoding `ExportTraceServiceRequest` with `opentelemetry-proto`'s types, and
//! a gRPC `TraceService` served by tonic — and vendors (the mock) receive `traceparent`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods,
    reason = "tests fail by panicking and run their receivers on the test runtime"
)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use llmux_mock::{FaultRule, MockUpstream};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue};
use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};
use prost::Message as _;
use serde_json::json;

/// What a receiver got: each export's spans and headers.
#[derive(Clone, Default)]
struct Received {
    spans: Arc<Mutex<Vec<Span>>>,
    headers: Arc<Mutex<Vec<(String, String)>>>,
}

impl Received {
    fn keep(&self, request: ExportTraceServiceRequest, headers: &http::HeaderMap) {
        let spans = request
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans);
        self.spans.lock().unwrap().extend(spans);
        self.headers.lock().unwrap().extend(
            headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_owned())),
        );
    }

    /// Whether an export came with header `name: value`.
    fn got_header(&self, name: &str, value: &str) -> bool {
        self.headers
            .lock()
            .unwrap()
            .iter()
            .any(|(n, v)| n == name && v == value)
    }

    /// Waits (polling) until `count` spans of trace `trace_id` arrived, and returns them.
    async fn trace(&self, trace_id: &[u8], count: usize) -> Vec<Span> {
        eventually(Duration::from_secs(10), || async {
            let spans: Vec<Span> = self
                .spans
                .lock()
                .unwrap()
                .iter()
                .filter(|s| s.trace_id == trace_id)
                .cloned()
                .collect();
            if spans.len() >= count {
                Ok(spans)
            } else {
                Err(format!(
                    "{count} spans of the trace did not arrive; got {spans:?}"
                ))
            }
        })
        .await
    }

    /// Waits until some server span arrived and returns the newest one's trace id.
    async fn any_server_span(&self) -> Vec<u8> {
        eventually(Duration::from_secs(10), || async {
            self.spans
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|s| s.kind == SpanKind::Server as i32)
                .map(|span| span.trace_id.clone())
                .ok_or("no span arrived")
        })
        .await
    }
}

/// An OTLP/HTTP receiver: `POST /v1/traces` with a protobuf body.
async fn http_receiver() -> (String, Received) {
    let received = Received::default();
    let keep = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: http::HeaderMap, body: bytes::Bytes| {
            let keep = keep.clone();
            async move {
                assert_eq!(headers["content-type"], "application/x-protobuf");
                let request = ExportTraceServiceRequest::decode(body).expect("valid protobuf");
                keep.keep(request, &headers);
                ExportTraceServiceResponse::default().encode_to_vec()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, received)
}

/// An OTLP/gRPC receiver: tonic serving the collector's `TraceService`.
struct Grpc(Received);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let headers = request.metadata().clone().into_headers();
        self.0.keep(request.into_inner(), &headers);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

async fn grpc_receiver() -> (String, Received) {
    let received = Received::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let service = TraceServiceServer::new(Grpc(received.clone()));
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    (url, received)
}

/// One credential per vendor API on the mock, and a failover group (two OpenAI credentials).
fn config(mock: &MockUpstream, telemetry: &str) -> String {
    format!(
        "credentials:
  - {{ name: openai-a, platform: openai, value: sk-openai-a-0123456789, base_url: \"{url}/v1\" }}
  - {{ name: openai-b, platform: openai-b, api: openai, value: sk-openai-b-0123456789, base_url: \"{url}/v1\" }}
  - {{ platform: anthropic, value: sk-ant-vendor-0123456789, base_url: \"{url}/v1\" }}
  - {{ platform: gemini, value: AIzaVendorKey012345678901234567890123, base_url: \"{url}/v1beta\" }}
models:
  - {{ vendor: openai, model: gpt-4o-mini, name: via-openai }}
  - {{ vendor: anthropic, model: claude-sonnet-4-5, name: via-anthropic }}
  - {{ vendor: gemini, model: gemini-2.5-flash, name: via-gemini }}
  - {{ vendor: openai, model: gpt-4o, name: failover }}
  - {{ vendor: openai-b, model: gpt-4o, name: failover }}
{telemetry}",
        url = mock.url()
    )
}

fn telemetry(endpoint: &str, protocol: &str, extra: &str) -> String {
    format!(
        "telemetry:\n  otlp: {{ endpoint: \"{endpoint}\", protocol: {protocol}, headers: {{ x-collector-key: collector-secret-42 }} }}\n{extra}"
    )
}

/// The mock, an OTLP/HTTP receiver and a gateway named `name` exporting to it, with `extra`
/// lines under `telemetry:`.
async fn traced_over_http(name: &str, extra: &str) -> (MockUpstream, Received, Binary) {
    let mock = mock().await;
    let (endpoint, received) = http_receiver().await;
    let gateway = Binary::with_config(
        name,
        &config(&mock, &telemetry(&endpoint, "http/protobuf", extra)),
    );
    (mock, received, gateway)
}

fn attr<'s>(span: &'s Span, key: &str) -> Option<&'s Any> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn text(span: &Span, key: &str) -> String {
    match attr(span, key) {
        Some(Any::StringValue(s)) => s.clone(),
        other => panic!("{key} is not a string on {}: {other:?}", span.name),
    }
}

fn int(span: &Span, key: &str) -> i64 {
    match attr(span, key) {
        Some(Any::IntValue(n)) => *n,
        other => panic!("{key} is not an int on {}: {other:?}", span.name),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// The `traceparent` the vendor received on its last call, if any.
fn vendor_traceparent(mock: &MockUpstream) -> Option<String> {
    let calls = mock.calls();
    let call = calls.last().expect("the vendor was called");
    call.headers
        .iter()
        .find(|(n, _)| n == "traceparent")
        .map(|(_, v)| v.clone())
}

/// POSTs `body` to `path` on the binary, with the client's `traceparent` when given.
async fn post(
    gateway: &Binary,
    path: &str,
    body: &serde_json::Value,
    traceparent: Option<&str>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{}{path}", gateway.url))
        .json(body);
    if let Some(traceparent) = traceparent {
        request = request.header("traceparent", traceparent);
    }
    request.send().await.unwrap()
}

/// Sends `body` to `path` (with the client's `traceparent` for `trace`, when given), checks
/// the answer and reads it to its end.
async fn send(gateway: &Binary, path: &str, body: serde_json::Value, trace: Option<&str>) {
    let traceparent = trace.map(|trace| format!("00-{trace}-00f067aa0ba902b7-01"));
    let response = post(gateway, path, &body, traceparent.as_deref()).await;
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    response.bytes().await.unwrap();
}

/// The server span among `spans`.
fn server_span(spans: &[Span]) -> &Span {
    spans
        .iter()
        .find(|s| s.kind == SpanKind::Server as i32)
        .expect("a server span")
}

#[tokio::test]
async fn one_trace_per_request_with_genai_attributes_on_every_vendor() {
    let (mock, received, gateway) = traced_over_http("tracing-vendors", "").await;
    let cases = [
        (
            "/v1/chat/completions",
            json!({"model": "via-openai", "max_tokens": 40, "temperature": 0.25,
                   "messages": [{"role": "user", "content": "hello"}]}),
            "openai",
            "gpt-4o-mini",
        ),
        (
            "/v1/messages",
            json!({"model": "via-anthropic", "max_tokens": 41,
                   "messages": [{"role": "user", "content": "hello"}]}),
            "anthropic",
            "claude-sonnet-4-5",
        ),
        (
            "/v1beta/models/via-gemini:generateContent",
            json!({"contents": [{"role": "user", "parts": [{"text": "hello"}]}],
                   "generationConfig": {"maxOutputTokens": 42}}),
            "gcp.gemini",
            "gemini-2.5-flash",
        ),
        (
            // The parameters come from the decoded request here, not from a scan of the body.
            "/v1/responses",
            json!({"model": "via-anthropic", "max_output_tokens": 43, "temperature": 0.5,
                   "input": "hello"}),
            "anthropic",
            "claude-sonnet-4-5",
        ),
    ];
    for (i, (path, body, provider, upstream)) in cases.into_iter().enumerate() {
        let trace = format!("{:032x}", 0xabc0 + i);
        send(&gateway, path, body, Some(&trace)).await;
        let spans = received.trace(&unhex(&trace), 2).await;
        let server = server_span(&spans);
        let client = spans
            .iter()
            .find(|s| s.kind == SpanKind::Client as i32)
            .expect("a client span");
        assert_eq!(spans.len(), 2, "{path}: {spans:?}");
        // The client's span is the parent of ours; the attempt is our child.
        assert_eq!(hex(&server.parent_span_id), "00f067aa0ba902b7");
        assert_eq!(client.parent_span_id, server.span_id);
        let operation = text(server, "gen_ai.operation.name");
        let model = text(server, "gen_ai.request.model");
        assert_eq!(server.name, format!("{operation} {model}"));
        assert_eq!(text(server, "gen_ai.provider.name"), provider, "{path}");
        assert_eq!(
            int(server, "gen_ai.request.max_tokens"),
            40 + i as i64,
            "{path}"
        );
        if path == "/v1/responses" {
            assert_eq!(
                attr(server, "gen_ai.request.temperature"),
                Some(&Any::DoubleValue(0.5))
            );
        }
        assert!(int(server, "gen_ai.usage.input_tokens") > 0, "{path}");
        assert!(int(server, "gen_ai.usage.output_tokens") > 0, "{path}");
        assert!(!text(server, "gen_ai.response.id").is_empty(), "{path}");
        assert_eq!(text(server, "gen_ai.response.model"), upstream, "{path}");
        assert!(
            matches!(attr(server, "gen_ai.response.finish_reasons"), Some(Any::ArrayValue(a)) if !a.values.is_empty()),
            "{path}: {:?}",
            attr(server, "gen_ai.response.finish_reasons")
        );
        assert!(server.end_time_unix_nano >= server.start_time_unix_nano);
        assert!(client.start_time_unix_nano >= server.start_time_unix_nano);
        assert!(client.end_time_unix_nano <= server.end_time_unix_nano);
        assert_eq!(text(client, "http.request.method"), "POST");
        assert_eq!(int(client, "http.response.status_code"), 200);
        assert_eq!(text(client, "server.address"), "127.0.0.1");
        assert!(int(client, "server.port") > 0);
        let url = text(client, "url.full");
        assert!(url.starts_with(&mock.url()) && !url.contains('?'), "{url}");
        assert!(!url.contains("AIza"), "{url}");
        // The vendor got our attempt's span in the client's trace.
        let sent = vendor_traceparent(&mock).expect("traceparent sent to the vendor");
        assert_eq!(sent, format!("00-{trace}-{}-01", hex(&client.span_id)));
        // No content without capture_content.
        assert!(attr(server, "gen_ai.input.messages").is_none());
        assert!(attr(server, "gen_ai.output.messages").is_none());
    }
    let temperature = received.trace(&unhex(&format!("{:032x}", 0xabc0)), 2).await;
    let server = server_span(&temperature);
    assert_eq!(
        attr(server, "gen_ai.request.temperature"),
        Some(&Any::DoubleValue(0.25))
    );
    // The configured header reached the receiver; its value is in no log line.
    assert!(received.got_header("x-collector-key", "collector-secret-42"));
    assert!(!gateway.logs().contains("collector-secret-42"));
}

/// A streamed answer's span names its response id and finish reasons too: read from the
/// chunks on the OpenAI byte path, from the translated events elsewhere, and from the Anthropic
/// byte path's events.
#[tokio::test]
async fn streamed_answers_carry_their_response_id_and_finish_reasons() {
    let (_mock, received, gateway) = traced_over_http("tracing-streams", "").await;
    let chat_stream = |model: &str| json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hello"}]});
    let cases = [
        ("/v1/chat/completions", chat_stream("via-openai"), "stop"),
        ("/v1/chat/completions", chat_stream("via-anthropic"), "stop"),
        ("/v1/chat/completions", chat_stream("via-gemini"), "stop"),
        (
            "/v1/messages",
            json!({"model": "via-anthropic", "max_tokens": 50, "stream": true,
                   "messages": [{"role": "user", "content": "hello"}]}),
            "stop",
        ),
    ];
    for (i, (path, body, reason)) in cases.into_iter().enumerate() {
        let trace = format!("{:032x}", 0x5700 + i);
        send(&gateway, path, body, Some(&trace)).await;
        let spans = received.trace(&unhex(&trace), 2).await;
        let server = server_span(&spans);
        assert!(
            !text(server, "gen_ai.response.id").is_empty(),
            "{path} #{i}"
        );
        assert_eq!(
            attr(server, "gen_ai.response.finish_reasons"),
            Some(&Any::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(Any::StringValue(reason.to_owned()))
                }]
            })),
            "{path} #{i}"
        );
        assert!(int(server, "gen_ai.usage.output_tokens") > 0, "{path} #{i}");
    }
}

#[tokio::test]
async fn a_failover_is_one_client_span_per_attempt_over_grpc() {
    let mock = mock().await;
    let (endpoint, received) = grpc_receiver().await;
    // The first call fails, whichever combination the router tries first.
    mock.add_fault(FaultRule {
        model: Some("gpt-4o".to_owned()),
        status: Some(500),
        times: Some(1),
        ..FaultRule::default()
    });
    let gateway = Binary::with_config(
        "tracing-failover",
        &config(&mock, &telemetry(&endpoint, "grpc", "")),
    );
    send(
        &gateway,
        "/v1/chat/completions",
        chat("failover", "hello"),
        None,
    )
    .await;
    let trace = received.any_server_span().await;
    let spans = received.trace(&trace, 3).await;
    let mut clients: Vec<&Span> = spans
        .iter()
        .filter(|s| s.kind == SpanKind::Client as i32)
        .collect();
    clients.sort_by_key(|s| s.start_time_unix_nano);
    assert_eq!(clients.len(), 2, "{spans:?}");
    assert_eq!(int(clients[0], "http.response.status_code"), 500);
    assert!(attr(clients[0], "error.type").is_some());
    assert_eq!(
        clients[0].status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );
    assert_eq!(int(clients[1], "http.response.status_code"), 200);
    assert!(attr(clients[1], "error.type").is_none());
    assert_ne!(
        text(clients[0], "llmux.credential"),
        text(clients[1], "llmux.credential"),
        "the failover went to the other combination"
    );
    // Each attempt told its vendor its own span id.
    let calls = mock.calls();
    let sent: Vec<String> = calls
        .iter()
        .filter_map(|c| c.headers.iter().find(|(n, _)| n == "traceparent"))
        .map(|(_, v)| v.clone())
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    for (value, span) in sent.iter().zip(&clients) {
        assert_eq!(
            value,
            &format!("00-{}-{}-01", hex(&trace), hex(&span.span_id))
        );
    }
    assert!(received.got_header("x-collector-key", "collector-secret-42"));
}

#[tokio::test]
async fn content_is_captured_only_when_asked() {
    let (_mock, received, gateway) =
        traced_over_http("tracing-content", "  capture_content: true\n").await;
    let trace = "0af7651916cd43dd8448eb211c80319c";
    send(
        &gateway,
        "/v1/chat/completions",
        chat("via-openai", "the secret word is pineapple"),
        Some(trace),
    )
    .await;
    let spans = received.trace(&unhex(trace), 2).await;
    let server = server_span(&spans);
    assert!(text(server, "gen_ai.input.messages").contains("pineapple"));
    assert!(!text(server, "gen_ai.output.messages").is_empty());
}

#[tokio::test]
async fn without_tracing_vendors_get_only_the_clients_traceparent() {
    let mock = mock().await;
    let gateway = Binary::with_config("tracing-off", &config(&mock, ""));
    let response = post(
        &gateway,
        "/v1/chat/completions",
        &chat("via-openai", "hello"),
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(vendor_traceparent(&mock), None);
    let client = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let response = post(
        &gateway,
        "/v1/messages",
        &json!({"model": "via-anthropic", "max_tokens": 10,
                      "messages": [{"role": "user", "content": "hello"}]}),
        Some(client),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(vendor_traceparent(&mock).as_deref(), Some(client));
    // An invalid one is ignored, not passed on.
    let response = post(
        &gateway,
        "/v1/chat/completions",
        &chat("via-openai", "hello"),
        Some("00-zzzz-b7ad6b7169203331-01"),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(vendor_traceparent(&mock), None);
}

#[tokio::test]
async fn the_standard_environment_variables_configure_export() {
    let mock = mock().await;
    let (endpoint, received) = http_receiver().await;
    let dir = temp_dir("tracing-env");
    std::fs::write(dir.join("llmux.yaml"), config(&mock, "")).unwrap();
    let gateway = Binary::serve(
        &dir,
        &["--config", "llmux.yaml"],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-team=ml%20ops"),
            ("OTEL_SERVICE_NAME", "gateway-7"),
        ],
    );
    send(
        &gateway,
        "/v1/chat/completions",
        chat("via-openai", "hello"),
        None,
    )
    .await;
    // A fresh trace id (no client traceparent), propagated to the vendor.
    let trace = received.any_server_span().await;
    let sent = vendor_traceparent(&mock).expect("traceparent sent");
    assert!(sent.starts_with(&format!("00-{}-", hex(&trace))), "{sent}");
    assert!(received.got_header("x-team", "ml ops"));
}

/// With `sample_ratio: 0`, a request without a `traceparent` records nothing (vendors learn
/// it is not sampled), a client's sampled trace is still recorded, and a client's unsampled
/// one is not (its context reaches the vendor as it came).
#[tokio::test]
async fn sampling_follows_the_ratio_and_the_clients_decision() {
    let (mock, received, gateway) =
        traced_over_http("tracing-sampling", "  sample_ratio: 0\n").await;
    send(
        &gateway,
        "/v1/chat/completions",
        chat("via-openai", "hello"),
        None,
    )
    .await;
    let unsampled_root = vendor_traceparent(&mock).expect("traceparent sent");
    assert!(unsampled_root.ends_with("-00"), "{unsampled_root}");
    let client_unsampled = "00-1bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00";
    let response = post(
        &gateway,
        "/v1/chat/completions",
        &chat("via-openai", "hello"),
        Some(client_unsampled),
    )
    .await;
    assert_eq!(response.status(), 200);
    response.bytes().await.unwrap();
    assert_eq!(vendor_traceparent(&mock).as_deref(), Some(client_unsampled));
    // The sampled one is exported after the others were decided: once it arrived, an
    // export of theirs would have too.
    let sampled = "2bf92f3577b34da6a3ce929d0e0e4736";
    send(
        &gateway,
        "/v1/chat/completions",
        chat("via-openai", "hello"),
        Some(sampled),
    )
    .await;
    received.trace(&unhex(sampled), 2).await;
    let spans = received.spans.lock().unwrap().clone();
    assert!(
        spans.iter().all(|s| s.trace_id == unhex(sampled)),
        "only the sampled trace was exported: {spans:?}"
    );
}

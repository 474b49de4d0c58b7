//! Spans written straight as OTLP protobuf: a server span per request with the GenAI
//! semantic-convention attributes ([`server_span`]), a client span per attempt with the HTTP
//! client attributes ([`client_span`]), and the export request around a batch of them
//! ([`encode_request`]).
//!
//! Why not `opentelemetry-proto`'s message structs: building them took an owned `String` for
//! every attribute key and value, then prost encoded and dropped them, about 35,000
//! instructions per traced request (BENCHMARKS.md, *Tracing*). Here the keys are static, the
//! values are borrowed from the request as it ends, and prost's wire primitives write them into
//! one buffer per request; the exporter only concatenates those buffers. The tests decode the
//! bytes with the `opentelemetry-proto` types.

use prost::encoding::{WireType, encode_key, encode_varint};

use super::record::{AttemptTrace, RequestTrace};

/// W3C trace flags: sampled (spans are only exported for sampled requests' traces).
const SAMPLED: u32 = 1;

/// `Span.SpanKind` values.
const KIND_SERVER: u64 = 2;
const KIND_CLIENT: u64 = 3;
/// `Status.StatusCode.STATUS_CODE_ERROR`.
const STATUS_ERROR: u64 = 2;

/// `ScopeSpans.spans`: the field every span is written in, so that a request's spans are bytes
/// the export request takes as they are.
const SCOPE_SPANS_SPANS: u32 = 2;

/// Appends the export request for `requests` (each the spans one request wrote with
/// [`server_span`] and [`client_span`]), under a resource named `service_name`, to `out`.
pub fn encode_request(service_name: &str, requests: &[Vec<u8>], out: &mut Vec<u8>) {
    // ExportTraceServiceRequest.resource_spans = 1
    message(out, 1, |out| {
        // ResourceSpans.resource = 1
        message(out, 1, |out| {
            string_attribute(out, 1, "service.name", service_name);
            string_attribute(out, 1, "telemetry.sdk.name", "llmux");
            string_attribute(out, 1, "telemetry.sdk.language", "rust");
        });
        // ResourceSpans.scope_spans = 2
        message(out, 2, |out| {
            // ScopeSpans.scope = 1: InstrumentationScope { name = 1, version = 2 }
            message(out, 1, |out| {
                bytes(out, 1, b"llmux");
                bytes(out, 2, env!("CARGO_PKG_VERSION").as_bytes());
            });
            for spans in requests {
                out.extend_from_slice(spans);
            }
        });
    });
}

/// Appends the request's span to `out`: `{operation} {model}`, kind server. `Span` field
/// numbers: trace_id 1, span_id 2, parent_span_id 4, name 5, kind 6, start 7, end 8,
/// attributes 9, status 15, flags 16.
pub fn server_span(out: &mut Vec<u8>, trace: &RequestTrace<'_>) {
    message(out, SCOPE_SPANS_SPANS, |out| server_span_fields(out, trace));
}

fn server_span_fields(out: &mut Vec<u8>, trace: &RequestTrace<'_>) {
    bytes(out, 1, &trace.trace_id);
    bytes(out, 2, &trace.span_id);
    if let Some(parent) = &trace.parent_span_id {
        bytes(out, 4, parent);
    }
    match trace.fixed {
        Some(fixed) => out.extend_from_slice(fixed.name()),
        None => server_span_name(out, trace),
    }
    varint(out, 6, KIND_SERVER);
    times(out, trace.start_unix_nanos, trace.end_unix_nanos);

    match trace.fixed {
        Some(fixed) => out.extend_from_slice(fixed.attributes()),
        None => server_fixed_attributes(out, trace),
    }
    string_attribute(out, ATTRIBUTES, "llmux.request_id", trace.request_id);
    int_attribute(
        out,
        ATTRIBUTES,
        "http.response.status_code",
        u64::from(trace.status),
    );
    bool_attribute(out, "gen_ai.request.stream", trace.stream);
    if let Some(id) = trace.response_id {
        string_attribute(out, ATTRIBUTES, "gen_ai.response.id", id);
    }
    if let Some(max_tokens) = trace.max_tokens {
        int_attribute(out, ATTRIBUTES, "gen_ai.request.max_tokens", max_tokens);
    }
    if let Some(temperature) = trace.temperature {
        attribute(out, ATTRIBUTES, "gen_ai.request.temperature", |out| {
            // AnyValue.double_value = 4
            encode_key(4, WireType::SixtyFourBit, out);
            out.extend_from_slice(&temperature.to_le_bytes());
        });
    }
    if let Some(tokens) = trace.input_tokens {
        int_attribute(out, ATTRIBUTES, "gen_ai.usage.input_tokens", tokens);
    }
    if let Some(tokens) = trace.output_tokens {
        int_attribute(out, ATTRIBUTES, "gen_ai.usage.output_tokens", tokens);
    }
    if !trace.finish_reasons.is_empty() {
        attribute(out, ATTRIBUTES, "gen_ai.response.finish_reasons", |out| {
            // AnyValue.array_value = 5: ArrayValue { values = 1: AnyValue { string_value = 1 } }
            message(out, 5, |out| {
                for reason in trace.finish_reasons {
                    message(out, 1, |out| bytes(out, 1, reason.as_bytes()));
                }
            });
        });
    }
    if let Some(messages) = trace.input_messages {
        string_attribute(out, ATTRIBUTES, "gen_ai.input.messages", messages);
    }
    if let Some(messages) = trace.output_messages {
        string_attribute(out, ATTRIBUTES, "gen_ai.output.messages", messages);
    }
    if let Some(error) = trace.error_type {
        string_attribute(out, ATTRIBUTES, "error.type", error);
    }
    let failed = trace.status >= 400 || trace.error_type.is_some();
    status(out, failed, trace.error_type);
    flags(out);
}

/// `Span.name` (5): `{operation} {model}`.
fn server_span_name(out: &mut Vec<u8>, trace: &RequestTrace<'_>) {
    encode_key(5, WireType::LengthDelimited, out);
    if trace.request_model.is_empty() {
        length_delimited(out, trace.operation.as_bytes());
    } else {
        let len = trace.operation.len() + 1 + trace.request_model.len();
        encode_varint(len as u64, out);
        out.extend_from_slice(trace.operation.as_bytes());
        out.push(b' ');
        out.extend_from_slice(trace.request_model.as_bytes());
    }
}

/// The request span's attributes that follow from its route, requested model, provider and
/// response model.
fn server_fixed_attributes(out: &mut Vec<u8>, trace: &RequestTrace<'_>) {
    string_attribute(out, ATTRIBUTES, "gen_ai.operation.name", trace.operation);
    string_attribute(out, ATTRIBUTES, "gen_ai.request.model", trace.request_model);
    string_attribute(out, ATTRIBUTES, "llmux.route", trace.route);
    if let Some(provider) = trace.provider {
        string_attribute(out, ATTRIBUTES, "gen_ai.provider.name", provider);
    }
    if let Some(model) = trace.response_model {
        string_attribute(out, ATTRIBUTES, "gen_ai.response.model", model);
    }
}

/// A request span's name and the attributes fixed with it (operation, route, requested model,
/// provider, response model), encoded once for [`RequestTrace::fixed`]: a caller that keeps
/// them per routing slot, route and requested model writes each request's span without
/// encoding them again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpanFixed {
    bytes: Box<[u8]>,
    /// Where the name's field ends and the attributes begin.
    split: usize,
}

impl ServerSpanFixed {
    /// The parts of `trace` that do not change between requests with the same route, requested
    /// model, provider and response model.
    pub fn of(trace: &RequestTrace<'_>) -> Self {
        let mut out = Vec::with_capacity(256);
        server_span_name(&mut out, trace);
        let split = out.len();
        server_fixed_attributes(&mut out, trace);
        Self {
            bytes: out.into_boxed_slice(),
            split,
        }
    }

    fn name(&self) -> &[u8] {
        &self.bytes[..self.split]
    }

    fn attributes(&self) -> &[u8] {
        &self.bytes[self.split..]
    }
}

/// Appends one attempt's span to `out`: `POST`, kind client, child of the request's span.
pub fn client_span(out: &mut Vec<u8>, attempt: &AttemptTrace<'_>) {
    message(out, SCOPE_SPANS_SPANS, |out| {
        client_span_fields(out, attempt)
    });
}

fn client_span_fields(out: &mut Vec<u8>, attempt: &AttemptTrace<'_>) {
    bytes(out, 1, &attempt.trace_id);
    bytes(out, 2, &attempt.span_id);
    bytes(out, 4, &attempt.parent_span_id);
    bytes(out, 5, b"POST");
    varint(out, 6, KIND_CLIENT);
    times(out, attempt.start_unix_nanos, attempt.end_unix_nanos);

    match attempt.fixed {
        Some(fixed) => out.extend_from_slice(fixed),
        None => fixed_attributes(out, attempt),
    }
    if let Some(code) = attempt.status {
        int_attribute(
            out,
            ATTRIBUTES,
            "http.response.status_code",
            u64::from(code),
        );
    }
    if let Some(error) = attempt.error_type {
        string_attribute(out, ATTRIBUTES, "error.type", error);
    }
    status(out, attempt.error_type.is_some(), attempt.error_type);
    flags(out);
}

/// `Span.attributes`.
const ATTRIBUTES: u32 = 9;

/// The attributes of an attempt's span that are fixed for its routing slot and URL (method,
/// provider, model, vendor, credential, URL, server), encoded for [`AttemptTrace::fixed`]: a
/// caller that keeps them per slot writes each attempt's span without encoding them again.
pub fn client_span_attributes(attempt: &AttemptTrace<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    fixed_attributes(&mut out, attempt);
    out
}

fn fixed_attributes(out: &mut Vec<u8>, attempt: &AttemptTrace<'_>) {
    string_attribute(out, ATTRIBUTES, "http.request.method", "POST");
    string_attribute(out, ATTRIBUTES, "gen_ai.provider.name", attempt.provider);
    string_attribute(out, ATTRIBUTES, "gen_ai.request.model", attempt.model);
    string_attribute(out, ATTRIBUTES, "llmux.vendor", attempt.vendor);
    string_attribute(out, ATTRIBUTES, "llmux.credential", attempt.credential);
    if let Some(url) = attempt.url {
        let server = Server::of(url);
        string_attribute_parts(
            out,
            ATTRIBUTES,
            "url.full",
            &[server.scheme, "://", server.authority, url.path()],
        );
        string_attribute(out, ATTRIBUTES, "server.address", server.host);
        if let Some(port) = server.port {
            int_attribute(out, ATTRIBUTES, "server.port", u64::from(port));
        }
    }
}

/// What a span says of the server an attempt went to, read from its URL in one pass over the
/// authority (`Uri::host` and `Uri::port_u16` each parse it again: ~700 instructions per
/// attempt).
#[derive(Debug, PartialEq)]
struct Server<'u> {
    scheme: &'u str,
    /// The authority without user info (it may carry a secret): `url.full` has no more.
    authority: &'u str,
    /// `server.address`: the host, an IPv6 address without its brackets.
    host: &'u str,
    /// `server.port`: the URL's, or its scheme's default.
    port: Option<u16>,
}

impl<'u> Server<'u> {
    fn of(url: &'u http::Uri) -> Self {
        let scheme = url.scheme_str().unwrap_or("http");
        let whole = url.authority().map_or("", http::uri::Authority::as_str);
        let authority = match memchr::memrchr(b'@', whole.as_bytes()) {
            Some(at) => &whole[at + 1..],
            None => whole,
        };
        // `[::1]:8080`, `host:8080`, `host`: a port follows the last colon after any `]`.
        let host_end = authority.rfind(']').map_or(0, |i| i + 1);
        let (host, port) = match authority[host_end..].rfind(':') {
            Some(colon) => {
                let colon = host_end + colon;
                (&authority[..colon], authority[colon + 1..].parse().ok())
            }
            None => (authority, None),
        };
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        let port = port.or(match scheme {
            "https" => Some(443),
            "http" => Some(80),
            _ => None,
        });
        Self {
            scheme,
            authority,
            host,
            port,
        }
    }
}

/// `Span.start_time_unix_nano` (7) and `end_time_unix_nano` (8); the end never precedes the
/// start.
fn times(out: &mut Vec<u8>, start: u64, end: u64) {
    encode_key(7, WireType::SixtyFourBit, out);
    out.extend_from_slice(&start.to_le_bytes());
    encode_key(8, WireType::SixtyFourBit, out);
    out.extend_from_slice(&end.max(start).to_le_bytes());
}

/// `Span.status` (15): `Status { message = 2, code = 3 }`, only when the span failed (an
/// absent status is `UNSET`).
fn status(out: &mut Vec<u8>, failed: bool, message_text: Option<&str>) {
    if failed {
        message(out, 15, |out| {
            if let Some(text) = message_text {
                bytes(out, 2, text.as_bytes());
            }
            varint(out, 3, STATUS_ERROR);
        });
    }
}

/// `Span.flags` (16, fixed32).
fn flags(out: &mut Vec<u8>) {
    encode_key(16, WireType::ThirtyTwoBit, out);
    out.extend_from_slice(&SAMPLED.to_le_bytes());
}

/// A `KeyValue { key = 1, value = 2: AnyValue }` in field `tag`; `value` writes the
/// `AnyValue`'s one field.
fn attribute(out: &mut Vec<u8>, tag: u32, key: &str, value: impl FnOnce(&mut Vec<u8>)) {
    message(out, tag, |out| {
        bytes(out, 1, key.as_bytes());
        message(out, 2, value);
    });
}

fn string_attribute(out: &mut Vec<u8>, tag: u32, key: &str, value: &str) {
    // KeyValue { key = 1, value = 2: AnyValue { string_value = 1 } }: six bytes of tags and
    // lengths around the two texts.
    let inner = 2 + value.len();
    let whole = 2 + key.len() + 2 + inner;
    if whole < 0x80 && tag < 16 {
        // Every length fits one byte: written directly (about a third of the general path's
        // instructions; nearly every attribute is this short).
        out.reserve(2 + whole);
        out.extend_from_slice(&[(tag << 3) as u8 | 2, whole as u8, 0x0a, key.len() as u8]);
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&[0x12, inner as u8, 0x0a, value.len() as u8]);
        out.extend_from_slice(value.as_bytes());
        return;
    }
    attribute(out, tag, key, |out| bytes(out, 1, value.as_bytes()));
}

/// A string attribute whose value is the concatenation of `parts`.
fn string_attribute_parts(out: &mut Vec<u8>, tag: u32, key: &str, parts: &[&str]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    attribute(out, tag, key, |out| {
        encode_key(1, WireType::LengthDelimited, out);
        encode_varint(len as u64, out);
        for part in parts {
            out.extend_from_slice(part.as_bytes());
        }
    });
}

/// A `bool_value` (2) in `Span.attributes`, written directly (a short key: every length fits
/// one byte).
fn bool_attribute(out: &mut Vec<u8>, key: &'static str, value: bool) {
    debug_assert!(key.len() < 0x70);
    let whole = 2 + key.len() + 4;
    out.reserve(2 + whole);
    out.extend_from_slice(&[
        (ATTRIBUTES << 3) as u8 | 2,
        whole as u8,
        0x0a,
        key.len() as u8,
    ]);
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&[0x12, 2, 0x10, u8::from(value)]);
}

/// An `int_value` (3); counts past `i64::MAX` saturate.
fn int_attribute(out: &mut Vec<u8>, tag: u32, key: &str, value: u64) {
    let value = value.min(i64::MAX as u64);
    // KeyValue { key = 1, value = 2: AnyValue { int_value = 3 } }
    let mut number = [0u8; 10];
    let mut digits = 0;
    let mut rest = value;
    loop {
        number[digits] = (rest & 0x7f) as u8;
        rest >>= 7;
        digits += 1;
        if rest == 0 {
            break;
        }
        number[digits - 1] |= 0x80;
    }
    let inner = 1 + digits;
    let whole = 2 + key.len() + 2 + inner;
    if whole < 0x80 && tag < 16 {
        out.reserve(2 + whole);
        out.extend_from_slice(&[(tag << 3) as u8 | 2, whole as u8, 0x0a, key.len() as u8]);
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(&[0x12, inner as u8, 0x18]);
        out.extend_from_slice(&number[..digits]);
        return;
    }
    attribute(out, tag, key, |out| varint(out, 3, value));
}

fn varint(out: &mut Vec<u8>, tag: u32, value: u64) {
    encode_key(tag, WireType::Varint, out);
    encode_varint(value, out);
}

fn bytes(out: &mut Vec<u8>, tag: u32, value: &[u8]) {
    encode_key(tag, WireType::LengthDelimited, out);
    length_delimited(out, value);
}

fn length_delimited(out: &mut Vec<u8>, value: &[u8]) {
    encode_varint(value.len() as u64, out);
    out.extend_from_slice(value);
}

/// A nested message in field `tag`, written by `body` in place. Its length is not known until
/// it is written, so one byte is reserved for it (enough below 128 bytes, as most attributes
/// are) and the body is moved up when the length needs more.
fn message(out: &mut Vec<u8>, tag: u32, body: impl FnOnce(&mut Vec<u8>)) {
    encode_key(tag, WireType::LengthDelimited, out);
    let at = out.len();
    out.push(0);
    body(out);
    let len = out.len() - at - 1;
    if len < 0x80 {
        out[at] = len as u8;
    } else {
        // The length takes more than the one reserved byte: move the body up by the
        // difference (in place; a `splice` allocated and was ~200 instructions per span).
        let mut prefix = [0u8; 10];
        let mut digits = 0;
        let mut rest = len as u64;
        while rest >= 0x80 {
            prefix[digits] = rest as u8 | 0x80;
            rest >>= 7;
            digits += 1;
        }
        prefix[digits] = rest as u8;
        let extra = digits;
        out.resize(out.len() + extra, 0);
        out.copy_within(at + 1..at + 1 + len, at + 1 + extra);
        out[at..=at + extra].copy_from_slice(&prefix[..=digits]);
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, any_value::Value};
    use opentelemetry_proto::tonic::trace::v1::{Span, span::SpanKind, status::StatusCode};
    use prost::Message;

    use super::*;

    fn attribute<'s>(span: &'s Span, key: &str) -> Option<&'s Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    /// One request's span bytes, as the gateway writes them: its attempts as they end, then
    /// its own span.
    fn spans(trace: &RequestTrace<'_>, attempts: &[AttemptTrace<'_>]) -> Vec<u8> {
        let mut out = Vec::new();
        for attempt in attempts {
            client_span(&mut out, attempt);
        }
        server_span(&mut out, trace);
        out
    }

    /// The span `write` makes of `direct` and of `kept` (the same with kept parts), after
    /// checking that their bytes are the same.
    fn written_alike<T>(write: fn(&mut Vec<u8>, &T), direct: &T, kept: &T, case: &str) -> Span {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        write(&mut a, direct);
        write(&mut b, kept);
        assert_eq!(a, b, "{case}");
        decode(&[b]).resource_spans[0].scope_spans[0].spans[0].clone()
    }

    fn decode(requests: &[Vec<u8>]) -> ExportTraceServiceRequest {
        let mut out = Vec::new();
        encode_request("svc", requests, &mut out);
        ExportTraceServiceRequest::decode(out.as_slice()).expect("valid protobuf")
    }

    fn string(value: &str) -> Option<&Value> {
        // Leaked for the comparison's lifetime; tests only.
        Some(Box::leak(Box::new(Value::StringValue(value.to_owned()))))
    }

    /// The direct writes of short attributes are byte for byte what the general path writes,
    /// on both sides of the one-byte length limit.
    #[test]
    fn short_attributes_are_written_as_the_general_path_writes_them() {
        for key in ["k", "gen_ai.response.finish_reasons", &"k".repeat(130)] {
            for len in [0, 1, 60, 90, 91, 92, 93, 120, 127, 128, 300] {
                let value = "v".repeat(len);
                let mut fast = vec![9];
                string_attribute(&mut fast, 9, key, &value);
                let mut general = vec![9];
                super::attribute(&mut general, 9, key, |out| bytes(out, 1, value.as_bytes()));
                assert_eq!(fast, general, "{key} = {len} bytes");
            }
            for value in [0, 1, 127, 128, 16_383, 16_384, i64::MAX as u64, u64::MAX] {
                let mut fast = Vec::new();
                int_attribute(&mut fast, 9, key, value);
                let mut general = Vec::new();
                let saturated = value.min(i64::MAX as u64);
                super::attribute(&mut general, 9, key, |out| varint(out, 3, saturated));
                assert_eq!(fast, general, "{key} = {value}");
            }
        }
    }

    /// The one-pass reading of a URL agrees with `http`'s own `host` and `port_u16`.
    #[test]
    fn the_server_is_read_as_http_reads_it() {
        for url in [
            "http://127.0.0.1:9/v1/chat/completions",
            "https://api.openai.com/v1/chat/completions",
            "https://user:pw@api.example.com:8443/v1?key=sk-1",
            "http://[::1]:8080/v1",
            "https://[2001:db8::1]/v1",
            "http://user@host/v1",
            "http://host:/v1",
        ] {
            let uri: http::Uri = url.parse().unwrap();
            let server = Server::of(&uri);
            let expected_port = uri.port_u16().or(match uri.scheme_str() {
                Some("https") => Some(443),
                _ => Some(80),
            });
            let expected_host = uri.host().unwrap();
            let expected_host = expected_host
                .strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .unwrap_or(expected_host);
            assert_eq!(server.host, expected_host, "{url}");
            assert_eq!(server.port, expected_port, "{url}");
            assert!(!server.authority.contains('@'), "{url}");
        }
    }

    #[test]
    fn a_request_with_two_attempts_is_three_spans_of_one_trace() {
        let trace = RequestTrace {
            trace_id: [7; 16],
            span_id: [1; 8],
            operation: "chat",
            request_model: "gpt",
            status: 200,
            ..RequestTrace::default()
        };
        let attempt = AttemptTrace {
            trace_id: [7; 16],
            parent_span_id: [1; 8],
            ..AttemptTrace::default()
        };
        let attempts = [
            AttemptTrace {
                span_id: [2; 8],
                status: Some(500),
                error_type: Some("upstream_status"),
                ..attempt.clone()
            },
            AttemptTrace {
                span_id: [3; 8],
                status: Some(200),
                ..attempt
            },
        ];
        let request = decode(&[spans(&trace, &attempts)]);
        let resource = request.resource_spans[0]
            .resource
            .as_ref()
            .expect("resource");
        assert_eq!(resource.attributes[0].key, "service.name");
        let scope = &request.resource_spans[0].scope_spans[0];
        assert_eq!(scope.scope.as_ref().map(|s| s.name.as_str()), Some("llmux"));
        let spans = &scope.spans;
        assert_eq!(spans.len(), 3);
        let server = &spans[2];
        assert_eq!(server.name, "chat gpt");
        assert_eq!(server.kind, SpanKind::Server as i32);
        assert!(server.parent_span_id.is_empty());
        assert!(spans.iter().all(|s| s.trace_id == vec![7; 16]));
        assert!(spans.iter().all(|s| s.flags == SAMPLED));
        assert_eq!(spans[0].parent_span_id, vec![1; 8]);
        assert_eq!(spans[0].kind, SpanKind::Client as i32);
        assert_eq!(
            spans[0]
                .status
                .as_ref()
                .map(|s| (s.code, s.message.as_str())),
            Some((StatusCode::Error as i32, "upstream_status"))
        );
        assert_eq!(spans[1].status, None, "a span that did not fail is unset");
        assert_eq!(
            attribute(&spans[1], "http.response.status_code"),
            Some(&Value::IntValue(200))
        );
        assert_eq!(attribute(server, "gen_ai.response.id"), None);
        assert_eq!(
            attribute(server, "gen_ai.request.stream"),
            Some(&Value::BoolValue(false))
        );
    }

    #[test]
    fn every_attribute_decodes_to_its_value_even_past_one_length_byte() {
        let long = "x".repeat(300);
        let prompt = long.repeat(100);
        let reasons = ["stop", "length"];
        let trace = RequestTrace {
            trace_id: [9; 16],
            span_id: [4; 8],
            parent_span_id: Some([5; 8]),
            start_unix_nanos: 10,
            end_unix_nanos: 5,
            operation: "chat",
            route: "chat",
            request_id: "req-1",
            provider: Some("openai"),
            request_model: &long,
            response_model: Some("gpt-4o-2024"),
            max_tokens: Some(u64::MAX),
            temperature: Some(0.25),
            input_tokens: Some(12),
            output_tokens: Some(34),
            finish_reasons: &reasons,
            response_id: Some("chatcmpl-1"),
            stream: true,
            status: 502,
            error_type: Some("upstream"),
            input_messages: Some(&prompt),
            output_messages: None,
            fixed: None,
        };
        let long_path = format!("https://user:secret@vendor.example/{long}?key=sk-1");
        let url = http::Uri::from_static("http://127.0.0.1:9/v1/chat/completions");
        let long_url: http::Uri = long_path.parse().unwrap();
        let attempt = AttemptTrace {
            trace_id: [9; 16],
            parent_span_id: [4; 8],
            span_id: [6; 8],
            provider: "openai",
            vendor: "openai",
            credential: "main",
            model: "gpt-4o",
            url: Some(&url),
            ..AttemptTrace::default()
        };
        let second = AttemptTrace {
            url: Some(&long_url),
            ..attempt.clone()
        };
        let one = spans(&trace, &[attempt, second]);
        let request = decode(&[one.clone(), one]);
        let spans = &request.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans.len(), 6);
        let server = &spans[2];
        assert_eq!(server.name, format!("chat {long}"));
        assert_eq!(server.parent_span_id, vec![5; 8]);
        assert_eq!(
            (server.start_time_unix_nano, server.end_time_unix_nano),
            (10, 10)
        );
        assert_eq!(attribute(server, "gen_ai.request.model"), string(&long));
        assert_eq!(attribute(server, "gen_ai.input.messages"), string(&prompt));
        assert_eq!(attribute(server, "gen_ai.output.messages"), None);
        assert_eq!(
            attribute(server, "gen_ai.request.max_tokens"),
            Some(&Value::IntValue(i64::MAX))
        );
        assert_eq!(
            attribute(server, "gen_ai.request.temperature"),
            Some(&Value::DoubleValue(0.25))
        );
        assert_eq!(
            attribute(server, "gen_ai.usage.output_tokens"),
            Some(&Value::IntValue(34))
        );
        assert_eq!(
            attribute(server, "gen_ai.response.finish_reasons"),
            Some(&Value::ArrayValue(ArrayValue {
                values: ["stop", "length"]
                    .map(|r| AnyValue {
                        value: Some(Value::StringValue(r.to_owned()))
                    })
                    .to_vec()
            }))
        );
        assert_eq!(
            server.status.as_ref().map(|s| s.code),
            Some(StatusCode::Error as i32)
        );
        let client = &spans[0];
        assert_eq!(client.name, "POST");
        assert_eq!(client.parent_span_id, vec![4; 8]);
        assert_eq!(attribute(client, "server.port"), Some(&Value::IntValue(9)));
        assert_eq!(attribute(client, "server.address"), string("127.0.0.1"));
        assert_eq!(
            attribute(client, "url.full"),
            string("http://127.0.0.1:9/v1/chat/completions")
        );
        assert_eq!(attribute(client, "llmux.credential"), string("main"));
        // Past one length byte, without user info or query; the scheme's port.
        let long_client = &spans[1];
        assert_eq!(
            attribute(long_client, "url.full"),
            string(&format!("https://vendor.example/{long}"))
        );
        assert_eq!(
            attribute(long_client, "server.port"),
            Some(&Value::IntValue(443))
        );
        assert_eq!(spans[5], spans[2]);
    }

    /// A request span written with its kept name and fixed attributes is the span written from
    /// the fields, whatever the request's own facts.
    #[test]
    fn kept_server_span_parts_write_the_same_span() {
        let reasons = ["stop"];
        let base = RequestTrace {
            trace_id: [1; 16],
            span_id: [2; 8],
            start_unix_nanos: 3,
            end_unix_nanos: 4,
            operation: "chat",
            route: "chat",
            request_id: "req-1",
            provider: Some("openai"),
            request_model: "gpt-4o",
            response_model: Some("gpt-4o-2024-08-06"),
            ..RequestTrace::default()
        };
        let fixed = ServerSpanFixed::of(&base);
        let requests = [
            RequestTrace {
                status: 200,
                input_tokens: Some(12),
                output_tokens: Some(34),
                finish_reasons: &reasons,
                response_id: Some("chatcmpl-1"),
                max_tokens: Some(50),
                temperature: Some(0.5),
                ..base.clone()
            },
            RequestTrace {
                parent_span_id: Some([9; 8]),
                status: 529,
                stream: true,
                error_type: Some("overloaded"),
                ..base.clone()
            },
        ];
        for direct in requests {
            let kept = RequestTrace {
                fixed: Some(&fixed),
                ..direct.clone()
            };
            let span = written_alike(server_span, &direct, &kept, &direct.status.to_string());
            assert_eq!(span.name, "chat gpt-4o");
            assert_eq!(
                attribute(&span, "gen_ai.response.model"),
                string("gpt-4o-2024-08-06")
            );
        }
    }

    /// A span written with its fixed attributes kept from an earlier encoding is the same bytes
    /// as one written from the fields, whatever the attempt's own outcome.
    #[test]
    fn kept_fixed_attributes_write_the_same_span() {
        let url = http::Uri::from_static("https://user:pw@api.vendor.example/v1/chat/completions");
        let attempt = AttemptTrace {
            trace_id: [1; 16],
            parent_span_id: [2; 8],
            span_id: [3; 8],
            start_unix_nanos: 5,
            end_unix_nanos: 9,
            provider: "anthropic",
            vendor: "anthropic",
            credential: "team-a",
            model: "claude-haiku",
            url: Some(&url),
            ..AttemptTrace::default()
        };
        let fixed = client_span_attributes(&attempt);
        for (status, error_type) in [
            (Some(200), None),
            (Some(529), Some("overloaded")),
            (None, Some("timeout")),
        ] {
            let direct = AttemptTrace {
                status,
                error_type,
                ..attempt.clone()
            };
            let kept = AttemptTrace {
                fixed: Some(&fixed),
                ..direct.clone()
            };
            let case = format!("{status:?} {error_type:?}");
            let span = written_alike(client_span, &direct, &kept, &case);
            assert_eq!(
                attribute(&span, "url.full"),
                string("https://api.vendor.example/v1/chat/completions")
            );
        }
    }
}

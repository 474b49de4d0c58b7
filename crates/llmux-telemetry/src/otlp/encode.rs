//! [`RequestTrace`]s into one OTLP `ExportTraceServiceRequest`: a server span per request with
//! the GenAI semantic-convention attributes, and a client span per attempt with the HTTP client
//! attributes.

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    AnyValue, ArrayValue, InstrumentationScope, KeyValue, any_value::Value,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{
    ResourceSpans, ScopeSpans, Span, Status, span::SpanKind, status::StatusCode,
};

use super::record::{AttemptTrace, RequestTrace};

/// W3C trace flags: sampled (spans are only exported for sampled requests' traces).
const SAMPLED: u32 = 1;

/// The export request for `traces`, under a resource named `service_name`.
pub fn encode_request(service_name: &str, traces: &[RequestTrace]) -> ExportTraceServiceRequest {
    let spans = traces
        .iter()
        .flat_map(|trace| {
            std::iter::once(server_span(trace)).chain(
                trace
                    .attempts
                    .iter()
                    .map(move |attempt| client_span(trace, attempt)),
            )
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![
                    string("service.name", service_name),
                    string("telemetry.sdk.name", "llmux"),
                    string("telemetry.sdk.language", "rust"),
                ],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "llmux".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..InstrumentationScope::default()
                }),
                spans,
                schema_url: String::new(),
            }],
            schema_url: String::new(),
        }],
    }
}

/// The request's span: `{operation} {model}`, kind server.
fn server_span(trace: &RequestTrace) -> Span {
    let mut attributes = vec![
        string("gen_ai.operation.name", trace.operation),
        string("gen_ai.request.model", &trace.request_model),
        string("llmux.route", trace.route),
        string("llmux.request_id", &trace.request_id),
        int("http.response.status_code", i64::from(trace.status)),
        bool_value("gen_ai.request.stream", trace.stream),
    ];
    if let Some(provider) = trace.provider {
        attributes.push(string("gen_ai.provider.name", provider));
    }
    optional_string(
        &mut attributes,
        "gen_ai.response.model",
        trace.response_model.as_deref(),
    );
    optional_string(
        &mut attributes,
        "gen_ai.response.id",
        trace.response_id.as_deref(),
    );
    optional_int(
        &mut attributes,
        "gen_ai.request.max_tokens",
        trace.max_tokens,
    );
    if let Some(t) = trace.temperature {
        attributes.push(key_value(
            "gen_ai.request.temperature",
            Value::DoubleValue(t),
        ));
    }
    optional_int(
        &mut attributes,
        "gen_ai.usage.input_tokens",
        trace.input_tokens,
    );
    optional_int(
        &mut attributes,
        "gen_ai.usage.output_tokens",
        trace.output_tokens,
    );
    if !trace.finish_reasons.is_empty() {
        let values = trace
            .finish_reasons
            .iter()
            .map(|r| AnyValue {
                value: Some(Value::StringValue(r.clone())),
            })
            .collect();
        attributes.push(key_value(
            "gen_ai.response.finish_reasons",
            Value::ArrayValue(ArrayValue { values }),
        ));
    }
    optional_string(
        &mut attributes,
        "gen_ai.input.messages",
        trace.input_messages.as_deref(),
    );
    optional_string(
        &mut attributes,
        "gen_ai.output.messages",
        trace.output_messages.as_deref(),
    );
    optional_string(&mut attributes, "error.type", trace.error_type.as_deref());
    let name = if trace.request_model.is_empty() {
        trace.operation.to_owned()
    } else {
        format!("{} {}", trace.operation, trace.request_model)
    };
    Span {
        trace_id: trace.trace_id.to_vec(),
        span_id: trace.span_id.to_vec(),
        parent_span_id: trace.parent_span_id.map(|p| p.to_vec()).unwrap_or_default(),
        flags: SAMPLED,
        name,
        kind: SpanKind::Server as i32,
        start_time_unix_nano: trace.start_unix_nanos,
        end_time_unix_nano: trace.end_unix_nanos.max(trace.start_unix_nanos),
        attributes,
        status: Some(status(
            trace.status >= 400 || trace.error_type.is_some(),
            trace.error_type.as_deref(),
        )),
        ..Span::default()
    }
}

/// One attempt's span: `POST`, kind client, child of the request's span.
fn client_span(trace: &RequestTrace, attempt: &AttemptTrace) -> Span {
    let mut attributes = vec![
        string("http.request.method", "POST"),
        string("gen_ai.provider.name", attempt.provider),
        string("gen_ai.request.model", &attempt.model),
        string("llmux.vendor", &attempt.vendor),
        string("llmux.credential", &attempt.credential),
    ];
    optional_string(&mut attributes, "url.full", attempt.url.as_deref());
    optional_string(
        &mut attributes,
        "server.address",
        attempt.server_address.as_deref(),
    );
    optional_int(
        &mut attributes,
        "server.port",
        attempt.server_port.map(u64::from),
    );
    optional_int(
        &mut attributes,
        "http.response.status_code",
        attempt.status.map(u64::from),
    );
    optional_string(&mut attributes, "error.type", attempt.error_type.as_deref());
    Span {
        trace_id: trace.trace_id.to_vec(),
        span_id: attempt.span_id.to_vec(),
        parent_span_id: trace.span_id.to_vec(),
        flags: SAMPLED,
        name: "POST".to_owned(),
        kind: SpanKind::Client as i32,
        start_time_unix_nano: attempt.start_unix_nanos,
        end_time_unix_nano: attempt.end_unix_nanos.max(attempt.start_unix_nanos),
        attributes,
        status: Some(status(
            attempt.error_type.is_some(),
            attempt.error_type.as_deref(),
        )),
        ..Span::default()
    }
}

fn status(failed: bool, message: Option<&str>) -> Status {
    if failed {
        Status {
            code: StatusCode::Error as i32,
            message: message.unwrap_or_default().to_owned(),
        }
    } else {
        Status {
            code: StatusCode::Unset as i32,
            message: String::new(),
        }
    }
}

fn key_value(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..KeyValue::default()
    }
}

fn string(key: &str, value: &str) -> KeyValue {
    key_value(key, Value::StringValue(value.to_owned()))
}

fn int(key: &str, value: i64) -> KeyValue {
    key_value(key, Value::IntValue(value))
}

fn bool_value(key: &str, value: bool) -> KeyValue {
    key_value(key, Value::BoolValue(value))
}

fn optional_string(attributes: &mut Vec<KeyValue>, key: &str, value: Option<&str>) {
    if let Some(value) = value {
        attributes.push(string(key, value));
    }
}

fn optional_int(attributes: &mut Vec<KeyValue>, key: &str, value: Option<u64>) {
    if let Some(value) = value {
        attributes.push(int(key, i64::try_from(value).unwrap_or(i64::MAX)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attribute<'s>(span: &'s Span, key: &str) -> Option<&'s Value> {
        span.attributes
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
            .and_then(|v| v.value.as_ref())
    }

    #[test]
    fn a_request_with_two_attempts_is_three_spans_of_one_trace() {
        let trace = RequestTrace {
            trace_id: [7; 16],
            span_id: [1; 8],
            operation: "chat",
            request_model: "gpt".to_owned(),
            status: 200,
            attempts: vec![
                AttemptTrace {
                    span_id: [2; 8],
                    status: Some(500),
                    error_type: Some("upstream_status".to_owned()),
                    ..AttemptTrace::default()
                },
                AttemptTrace {
                    span_id: [3; 8],
                    status: Some(200),
                    ..AttemptTrace::default()
                },
            ],
            ..RequestTrace::default()
        };
        let request = encode_request("svc", &[trace]);
        let spans = &request.resource_spans[0].scope_spans[0].spans;
        assert_eq!(spans.len(), 3);
        assert_eq!(spans[0].name, "chat gpt");
        assert!(spans.iter().all(|s| s.trace_id == vec![7; 16]));
        assert_eq!(spans[1].parent_span_id, vec![1; 8]);
        assert_eq!(
            spans[1].status.as_ref().map(|s| s.code),
            Some(StatusCode::Error as i32)
        );
        assert_eq!(
            attribute(&spans[2], "http.response.status_code"),
            Some(&Value::IntValue(200))
        );
        assert_eq!(attribute(&spans[0], "gen_ai.response.id"), None);
    }
}

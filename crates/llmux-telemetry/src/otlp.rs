//! OpenTelemetry traces of requests, exported over OTLP (gRPC or HTTP/protobuf).
//!
//! Design (why no SDK spans): a request's facts are already gathered by the gateway as it runs
//! (the request log's draft). Building live SDK spans on the request path cost ~20,000
//! instructions per request in an earlier attempt, even with tracing off. Here each attempt
//! writes its client span as protobuf bytes when it ends ([`client_span`], from a borrowed
//! [`AttemptTrace`]), the request adds its server span when it ends ([`server_span`]), and
//! hands the bytes to a bounded channel ([`Tracer::record`]: a `try_send`, drops counted in
//! `llmux_trace_dropped_total`); a background task wraps batches of them in one export request
//! and posts it. Nothing is copied into owned strings for a trace. The SDK's tracer, context and batch processor would add a second queue and its
//! own runtime glue for spans that are complete before they are built, so llmux encodes the
//! collector's protobuf messages itself ([`encode`]) and sends them with reqwest ([`export`]).

mod encode;
mod export;
mod record;

pub use encode::{
    ServerSpanFixed, client_span, client_span_attributes, encode_request, server_span,
};
pub use export::{Exporter, Protocol, Tracer};
pub use record::{AttemptTrace, RequestTrace, SpanId, TraceId};

//! OpenTelemetry traces of requests, exported over OTLP (gRPC or HTTP/protobuf).
//!
//! Design (why no SDK spans): a request's facts are already gathered by the gateway as it runs
//! (the request log's draft). Building live SDK spans on the request path cost ~20,000
//! instructions per request in an earlier attempt, even with tracing off. Here a request hands
//! one plain [`RequestTrace`] to a bounded channel when it ends ([`Tracer::record`]: a
//! `try_send`, drops counted in `llmux_trace_dropped_total`); a background task encodes the
//! spans with explicit timestamps straight into `opentelemetry-proto`'s messages and posts them
//! in batches. The SDK's tracer, context and batch processor would add a second queue and its
//! own runtime glue for spans that are complete before they are built, so llmux encodes the
//! collector's protobuf messages itself ([`encode`]) and sends them with reqwest ([`export`]).

mod encode;
mod export;
mod record;

pub use encode::encode_request;
pub use export::{Exporter, Protocol, Tracer};
pub use record::{AttemptTrace, RequestTrace, SpanId, TraceId};

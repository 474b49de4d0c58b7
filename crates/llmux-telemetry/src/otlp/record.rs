//! What one request leaves for its trace, as views of data the request already holds: they are
//! encoded into span bytes where they are made ([`super::encode`]), so nothing is copied into
//! owned strings for a trace and dropped after it.

/// A W3C trace id (16 bytes, never all zero when valid).
pub type TraceId = [u8; 16];
/// A W3C span id (8 bytes, never all zero when valid).
pub type SpanId = [u8; 8];

/// One client request's server span.
#[derive(Debug, Clone, Default)]
pub struct RequestTrace<'a> {
    /// The trace (the client's, from `traceparent`, or a fresh one).
    pub trace_id: TraceId,
    /// The request's server span.
    pub span_id: SpanId,
    /// The client's span, when it sent a `traceparent`.
    pub parent_span_id: Option<SpanId>,
    /// Start and end, in nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// See `start_unix_nanos`.
    pub end_unix_nanos: u64,
    /// `gen_ai.operation.name`: `chat`, `embeddings`, `generate_content`, …
    pub operation: &'static str,
    /// The route label (`chat`, `messages`, …), for `llmux.route`.
    pub route: &'static str,
    /// The request id llmux answered with (`x-request-id`).
    pub request_id: &'a str,
    /// `gen_ai.provider.name` of the vendor that answered (or was last tried).
    pub provider: Option<&'static str>,
    /// The model (or public name) the client asked for.
    pub request_model: &'a str,
    /// The model that answered.
    pub response_model: Option<&'a str>,
    /// The request's output token limit, when it set one.
    pub max_tokens: Option<u64>,
    /// The request's temperature, when it set one.
    pub temperature: Option<f64>,
    /// Tokens the vendor reported.
    pub input_tokens: Option<u64>,
    /// See `input_tokens`.
    pub output_tokens: Option<u64>,
    /// Why the answer ended, per choice, in the vendor's words.
    pub finish_reasons: &'a [&'a str],
    /// The answer's id.
    pub response_id: Option<&'a str>,
    /// Whether the answer was streamed.
    pub stream: bool,
    /// The HTTP status sent to the client.
    pub status: u16,
    /// `error.type` when the request failed (llmux's error kind).
    pub error_type: Option<&'a str>,
    /// The prompt (`gen_ai.input.messages`), only with `telemetry.capture_content`, capped.
    pub input_messages: Option<&'a str>,
    /// The completion (`gen_ai.output.messages`), only with `telemetry.capture_content`, capped.
    pub output_messages: Option<&'a str>,
    /// The name and the attributes that follow from `operation`, `route`, `request_model`,
    /// `provider` and `response_model`, when a caller kept them encoded by
    /// [`super::ServerSpanFixed::of`] for the same values: written as they are, not again from
    /// the fields.
    pub fixed: Option<&'a super::ServerSpanFixed>,
}

/// One attempt on a vendor: a client span under the request's span.
#[derive(Debug, Clone, Default)]
pub struct AttemptTrace<'a> {
    /// The request's trace.
    pub trace_id: TraceId,
    /// The request's server span, this span's parent.
    pub parent_span_id: SpanId,
    /// The span id sent to the vendor in `traceparent`.
    pub span_id: SpanId,
    /// Start and end, in nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// See `start_unix_nanos`.
    pub end_unix_nanos: u64,
    /// `gen_ai.provider.name` of this vendor.
    pub provider: &'static str,
    /// The vendor (the credential's `platform`).
    pub vendor: &'a str,
    /// The credential's name (never its secret).
    pub credential: &'a str,
    /// The model asked of the vendor.
    pub model: &'a str,
    /// Where it was sent: `url.full` is written from it without query, fragment or user info
    /// (they may carry secrets), with `server.address` and `server.port`.
    pub url: Option<&'a http::Uri>,
    /// The attributes above (provider to URL), when a caller kept them encoded by
    /// [`super::client_span_attributes`] for the same values: written as they are, not again
    /// from the fields (they are fixed per routing slot and URL).
    pub fixed: Option<&'a [u8]>,
    /// The vendor's HTTP status, when one arrived.
    pub status: Option<u16>,
    /// `error.type` when the attempt failed.
    pub error_type: Option<&'a str>,
}

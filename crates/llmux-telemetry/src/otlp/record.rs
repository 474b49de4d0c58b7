//! What one request leaves for its trace: plain owned data, complete when it is handed over.

/// A W3C trace id (16 bytes, never all zero when valid).
pub type TraceId = [u8; 16];
/// A W3C span id (8 bytes, never all zero when valid).
pub type SpanId = [u8; 8];

/// One client request: the server span and its attempts' client spans.
#[derive(Debug, Clone, Default)]
pub struct RequestTrace {
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
    pub request_id: String,
    /// `gen_ai.provider.name` of the vendor that answered (or was last tried).
    pub provider: Option<&'static str>,
    /// The model (or public name) the client asked for.
    pub request_model: String,
    /// The model that answered.
    pub response_model: Option<String>,
    /// The request's output token limit, when it set one.
    pub max_tokens: Option<u64>,
    /// The request's temperature, when it set one.
    pub temperature: Option<f64>,
    /// Tokens the vendor reported.
    pub input_tokens: Option<u64>,
    /// See `input_tokens`.
    pub output_tokens: Option<u64>,
    /// Why the answer ended, per choice, in the vendor's words.
    pub finish_reasons: Vec<String>,
    /// The answer's id.
    pub response_id: Option<String>,
    /// Whether the answer was streamed.
    pub stream: bool,
    /// The HTTP status sent to the client.
    pub status: u16,
    /// `error.type` when the request failed (llmux's error kind).
    pub error_type: Option<String>,
    /// The prompt (`gen_ai.input.messages`), only with `telemetry.capture_content`, capped.
    pub input_messages: Option<String>,
    /// The completion (`gen_ai.output.messages`), only with `telemetry.capture_content`, capped.
    pub output_messages: Option<String>,
    /// Each attempt on a vendor, in order.
    pub attempts: Vec<AttemptTrace>,
}

/// One attempt on a vendor: a client span under the request's span.
#[derive(Debug, Clone, Default)]
pub struct AttemptTrace {
    /// The span id sent to the vendor in `traceparent`.
    pub span_id: SpanId,
    /// Start and end, in nanoseconds since the Unix epoch.
    pub start_unix_nanos: u64,
    /// See `start_unix_nanos`.
    pub end_unix_nanos: u64,
    /// `gen_ai.provider.name` of this vendor.
    pub provider: &'static str,
    /// The vendor (the credential's `platform`).
    pub vendor: String,
    /// The credential's name (never its secret).
    pub credential: String,
    /// The model asked of the vendor.
    pub model: String,
    /// `url.full` without query, fragment or user info (they may carry secrets).
    pub url: Option<String>,
    /// `server.address`.
    pub server_address: Option<String>,
    /// `server.port`.
    pub server_port: Option<u16>,
    /// The vendor's HTTP status, when one arrived.
    pub status: Option<u16>,
    /// `error.type` when the attempt failed.
    pub error_type: Option<String>,
}

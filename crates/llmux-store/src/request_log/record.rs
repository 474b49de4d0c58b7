//! The request-log record: one per client request, with its attempts.

use std::borrow::Cow;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The most bytes of a user agent that are stored; longer ones are cut at a character boundary.
pub const USER_AGENT_CAP: usize = 256;

/// One client request as the request log keeps it, and as `GET /admin/requests/{id}` returns it.
///
/// Times are Unix milliseconds and durations milliseconds. Bodies arrive already redacted and
/// capped by the caller; the store keeps them as they are. [`RequestLogStore::query`] leaves
/// them out (`None`, absent from the JSON); [`RequestLogStore::get`] returns them.
///
/// [`RequestLogStore::query`]: crate::RequestLogStore::query
/// [`RequestLogStore::get`]: crate::RequestLogStore::get
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// When the request arrived, in Unix milliseconds.
    pub time_ms: i64,
    /// The request id the gateway assigned (or accepted) and returned to the client.
    pub request_id: String,
    /// The public id of the virtual key that authenticated the request.
    pub key_id: Option<String>,
    /// The name of that key, as it was when the request ran.
    pub key_name: Option<String>,
    /// The ingress route label, such as `chat` or `messages`.
    pub ingress: Cow<'static, str>,
    /// The model name the client asked for.
    pub requested_model: String,
    /// The vendor of the last attempt; `None` when no attempt was made. Names are shared
    /// with the gateway's routing table (`Arc<str>`), not copied per request.
    pub vendor: Option<Arc<str>>,
    /// The credential name of the last attempt; `None` when no attempt was made.
    pub credential: Option<Arc<str>>,
    /// The vendor's model of the last attempt; `None` when no attempt was made.
    pub upstream_model: Option<Arc<str>>,
    /// The HTTP status returned to the client.
    pub status: u16,
    /// The error kind when the request failed (or a stream broke after its head was sent).
    pub error_kind: Option<Cow<'static, str>>,
    /// Every upstream call, in order.
    pub attempts: Vec<AttemptRecord>,
    /// Time to the first byte sent to the client; `None` when nothing was sent.
    pub ttfb_ms: Option<u32>,
    /// Time until the response (or stream) ended.
    pub total_ms: u32,
    /// Prompt tokens, when known.
    pub input_tokens: Option<u64>,
    /// Completion tokens, when known.
    pub output_tokens: Option<u64>,
    /// Prompt tokens served from the vendor's cache, when known.
    pub cached_tokens: Option<u64>,
    /// Reasoning tokens, when known.
    pub reasoning_tokens: Option<u64>,
    /// The request's cost in US dollars, when a price is known.
    pub cost_usd: Option<f64>,
    /// Whether `cost_usd` was estimated (from counted tokens) rather than computed from the
    /// usage the vendor reported.
    pub cost_estimated: bool,
    /// Whether the client asked for a stream.
    pub stream: bool,
    /// The client's address, as the gateway saw it.
    pub client_addr: String,
    /// The client's `User-Agent`, at most [`USER_AGENT_CAP`] bytes (the store cuts longer ones).
    pub user_agent: Option<String>,
    /// The request body, redacted and capped by the caller; `None` when not logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
    /// The response body, redacted and capped by the caller; `None` when not logged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
}

impl RequestRecord {
    /// The record of request `request_id` on `ingress`, arrived at `time_ms`, with nothing else
    /// known yet: each stage fills in its part as the request goes.
    pub fn new(time_ms: i64, request_id: String, ingress: Cow<'static, str>) -> Self {
        Self {
            time_ms,
            request_id,
            key_id: None,
            key_name: None,
            ingress,
            requested_model: String::new(),
            vendor: None,
            credential: None,
            upstream_model: None,
            status: 0,
            error_kind: None,
            attempts: Vec::new(),
            ttfb_ms: None,
            total_ms: 0,
            input_tokens: None,
            output_tokens: None,
            cached_tokens: None,
            reasoning_tokens: None,
            cost_usd: None,
            cost_estimated: false,
            stream: false,
            client_addr: String::new(),
            user_agent: None,
            request_body: None,
            response_body: None,
        }
    }
}

/// One upstream call made for a request: a combination (credential × model) and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptRecord {
    /// The credential's vendor (its platform); names are shared, as the record's are.
    pub vendor: Arc<str>,
    /// The credential name.
    pub credential: Arc<str>,
    /// The vendor's model name.
    pub model: Arc<str>,
    /// The vendor's HTTP status, or 0 when no response head arrived.
    pub status: u16,
    /// How long the attempt took.
    pub duration_ms: u32,
    /// Why the attempt failed, scrubbed of secrets; `None` when it succeeded. The gateway's
    /// labels are static (no allocation per attempt); read back, the text is owned.
    pub error: Option<Cow<'static, str>>,
}

/// `text` cut to at most `cap` bytes, at a character boundary.
pub(crate) fn capped(text: &str, cap: usize) -> &str {
    if text.len() <= cap {
        return text;
    }
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

//! Anthropic Messages (`POST /v1/messages`) ⇄ the [`neutral`](crate::neutral) model, in both
//! directions: egress (llmux talks to Anthropic) and ingress (a client talks Messages to llmux).
//!
//! - Requests: [`encode_request`] (neutral → Anthropic) and [`decode_request`] (client body →
//!   neutral).
//! - Responses: [`decode_response`], [`encode_response`].
//! - Errors: [`decode_error`] (Anthropic error response → [`VendorError`](crate::error::VendorError)),
//!   [`encode_error`] (Anthropic's envelope for a Messages client), [`error_type`].
//! - Streams: [`StreamDecoder`] (Anthropic SSE → neutral events) and [`StreamEncoder`] (neutral
//!   events → Anthropic's exact SSE sequence).
//!
//! Wire facts this module relies on (REFERENCE.md §D2, §D4): `max_tokens` is required; roles
//! alternate `user`/`assistant`; tool results travel as `tool_result` blocks at the start of a
//! user turn; thinking blocks carry a `signature` that must come back unchanged; input usage
//! is split into uncached, cache-write and cache-read counts, and the final output count comes
//! from `message_delta`, not `message_start`.
//!
//! Everything here is pure: no I/O, no clock, no randomness.

/// The API root of Anthropic's public service; its OpenAI-compatible API lives under the same
/// root.
pub const PUBLIC_BASE_URL: &str = "https://api.anthropic.com/v1";

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;

use crate::neutral::{FinishReason, TOKEN_TAG, Usage};
use crate::shared::{compact_json, stable_hash};

mod request;
mod response;
mod stream;

pub use request::{decode_request, encode_request};
pub use response::{decode_error, decode_response, encode_error, encode_response, error_type};
pub use stream::{StreamDecoder, StreamEncoder};

/// Any content block, as read from a request, a response or a `content_block_start` event.
/// Every field is optional so one pass reads every block type; each caller checks the fields
/// its block type needs.
#[derive(Deserialize)]
struct WireBlock<'a> {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default, borrow)]
    input: Option<&'a RawValue>,
    #[serde(default)]
    tool_use_id: Option<String>,
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default)]
    is_error: Option<bool>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default, borrow)]
    source: Option<&'a RawValue>,
    /// A `tool_reference` block's tool (tool search results).
    #[serde(default)]
    tool_name: Option<String>,
    /// A `document` block's title.
    #[serde(default)]
    title: Option<String>,
}

/// Just the `type` of a block or event, to name it in an error when the full read failed.
#[derive(Deserialize)]
struct WireType {
    #[serde(rename = "type")]
    kind: String,
}

/// Anthropic's usage object. Each count may be absent or null.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Normalized usage (REFERENCE.md §D4): input counts every input token, cached or not.
    fn to_neutral(self) -> Usage {
        Usage {
            input_tokens: self.input_tokens.unwrap_or(0)
                + self.cache_creation_input_tokens.unwrap_or(0)
                + self.cache_read_input_tokens.unwrap_or(0),
            output_tokens: self.output_tokens.unwrap_or(0),
            cached_input_tokens: self.cache_read_input_tokens,
            cache_creation_input_tokens: self.cache_creation_input_tokens,
            reasoning_tokens: None,
        }
    }
}

/// Anthropic's usage split of a neutral input count: (uncached, cache write, cache read).
/// The uncached part is what remains once both cache counts are taken out, so decoding the
/// three back with [`WireUsage::to_neutral`] gives the same total.
fn split_input(usage: &Usage) -> (u64, u64, u64) {
    let read = usage.cached_input_tokens.unwrap_or(0);
    let write = usage.cache_creation_input_tokens.unwrap_or(0);
    let uncached = usage
        .input_tokens
        .saturating_sub(read)
        .saturating_sub(write);
    (uncached, write, read)
}

/// An Anthropic `stop_reason` as a neutral finish reason (REFERENCE.md §D4). Unknown values
/// are a normal stop: a new reason should not break clients.
fn decode_stop_reason(reason: Option<&str>) -> FinishReason {
    match reason {
        Some("max_tokens" | "model_context_window_exceeded") => FinishReason::Length,
        Some("tool_use") => FinishReason::ToolCalls,
        Some("refusal") => FinishReason::ContentFilter,
        Some("pause_turn") => FinishReason::Paused,
        _ => FinishReason::Stop,
    }
}

/// A neutral finish reason as an Anthropic `stop_reason`. Anthropic has no "model error"
/// reason; such a turn simply ended.
fn encode_stop_reason(reason: &FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop | FinishReason::ModelError => "end_turn",
        FinishReason::Length => "max_tokens",
        FinishReason::ToolCalls => "tool_use",
        FinishReason::ContentFilter => "refusal",
        FinishReason::Paused => "pause_turn",
    }
}

/// A content block to write (request history or response content).
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockOut<'a> {
    Text {
        text: &'a str,
    },
    Image {
        source: ImageSourceOut<'a>,
    },
    Document {
        source: ImageSourceOut<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        title: Option<&'a str>,
    },
    ToolUse {
        id: std::borrow::Cow<'a, str>,
        name: &'a str,
        input: Input<'a>,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: &'a str,
        is_error: bool,
    },
    Thinking {
        thinking: &'a str,
        signature: std::borrow::Cow<'a, str>,
    },
    RedactedThinking {
        data: std::borrow::Cow<'a, str>,
    },
}

/// An image source to write.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ImageSourceOut<'a> {
    Base64 {
        media_type: std::borrow::Cow<'a, str>,
        data: std::borrow::Cow<'a, str>,
    },
    Url {
        url: &'a str,
    },
}

/// A `tool_use` input: the call's arguments copied verbatim when they are a JSON object,
/// otherwise `{}` (Anthropic requires an object, and a model can stream broken JSON).
struct Input<'a>(Option<&'a RawValue>);

impl<'a> Input<'a> {
    fn from_arguments(arguments: &'a str) -> Self {
        Self(
            serde_json::from_str::<&RawValue>(arguments)
                .ok()
                .filter(|raw| raw.get().starts_with('{')),
        )
    }
}

impl Serialize for Input<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(raw) => raw.serialize(serializer),
            None => serializer.serialize_map(Some(0))?.end(),
        }
    }
}

/// A serde_json error without its "at line L column C" suffix, which points into a sub-slice
/// of the body and would only confuse the reader.
fn error_reason(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.rfind(" at line ") {
        Some(pos) => text[..pos].to_owned(),
        None => text,
    }
}

/// An id with `prefix` and 24 hex digits derived from `seed`.
fn synthesize_id(prefix: &str, seed: u64) -> String {
    let call = crate::neutral::synthesize_call_id(seed);
    let hex = call.strip_prefix("call_").unwrap_or(&call);
    format!("{prefix}{hex}")
}

/// A client's body for the Anthropic byte path without the reasoning Anthropic would refuse:
/// thinking blocks with no signature or another vendor's (tagged `llmux:<origin>:`, see
/// [`crate::neutral::tag_token`]), and redacted thinking llmux tagged likewise — what a client
/// replays after turns another vendor answered. `None` (the usual case, found without parsing)
/// when there is nothing to drop; a body with some is re-assembled around the dropped blocks,
/// every other byte as sent.
pub fn strip_foreign_reasoning(body: &[u8]) -> Option<Vec<u8>> {
    let tagged = format!("\"{TOKEN_TAG}");
    let suspicious = memchr::memmem::find(body, tagged.as_bytes()).is_some()
        || memchr::memmem::find(body, b"\"signature\":\"\"").is_some();
    if !suspicious {
        return None;
    }
    #[derive(Deserialize)]
    struct Block<'a> {
        #[serde(rename = "type", borrow)]
        kind: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow)]
        signature: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow)]
        data: Option<std::borrow::Cow<'a, str>>,
    }
    use crate::json_scan::{ElementEdit, edit_array, edit_member_array};
    let foreign =
        |token: Option<&str>| token.is_none_or(|t| t.is_empty() || t.starts_with(TOKEN_TAG));
    let block = |raw: &[u8]| match serde_json::from_slice::<Block<'_>>(raw) {
        Ok(block) => match block.kind.as_deref() {
            Some("thinking") if foreign(block.signature.as_deref()) => ElementEdit::Drop,
            Some("redacted_thinking") if foreign(block.data.as_deref()) => ElementEdit::Drop,
            _ => ElementEdit::Keep,
        },
        Err(_) => ElementEdit::Keep,
    };
    let members = crate::json_scan::members(body).ok()?;
    let range = crate::json_scan::find(body, &members, "messages")?
        .value
        .clone();
    let messages = edit_array(&body[range.clone()], |message| {
        match edit_member_array(message, "content", block) {
            Some(edited) => ElementEdit::Replace(edited),
            None => ElementEdit::Keep,
        }
    })?;
    Some(crate::json_scan::splice(body, range, &messages))
}

#[cfg(test)]
mod tests;

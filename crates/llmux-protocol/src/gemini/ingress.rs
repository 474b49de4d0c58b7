//! The Gemini API as a client-facing API (ingress): a google-genai SDK or Gemini CLI speaks
//! `generateContent` to llmux, whatever vendor answers. The other half of this module's parent,
//! which speaks Gemini *to* a vendor (egress).
//!
//! - Requests: [`decode_request`] reads a `GenerateContentRequest` into a neutral request plus the
//!   Gemini-only fields the gateway decides about ([`Extras`]: `safetySettings`, `cachedContent`);
//!   [`decode_count_tokens`] reads a `:countTokens` body for estimation.
//! - Answers: [`encode_response`] builds a `GenerateContentResponse`; [`StreamEncoder`] turns
//!   neutral stream events into `streamGenerateContent` chunks, framed as SSE (`?alt=sse`) or as
//!   the streamed JSON array Google sends without it ([`Framing`], [`ChunkFramer`]).
//! - Errors: [`encode_error`] writes Google's `{"error":{"code","message","status"}}` envelope
//!   with the google.rpc status name of an HTTP status ([`rpc_status`]).
//! - [`encode_count_tokens`] answers `:countTokens`; [`rewrite_model_version`] swaps
//!   `modelVersion` in a Gemini answer or chunk on the Gemini → Gemini byte path, without a tree.
//!
//! Continuity data (REFERENCE.md §D3). Gemini clients send every part of a model turn back,
//! `thoughtSignature` included, but Gemini CLI drops `thought` parts from its history and the
//! Python SDK reads `thoughtSignature` as base64 bytes. Reasoning from another vendor that must
//! come back (Anthropic's signed and redacted thinking) therefore travels inside a base64
//! `thoughtSignature` envelope: on the thought part it belongs to, and, together with the call's
//! own signature, on the answer's first `functionCall` part, so a client that keeps only the
//! calls still returns it. [`decode_request`] unwraps either; a Gemini-issued signature is never
//! wrapped on its own and is passed through unchanged.
//!
//! Everything here is pure: no I/O, no clock, no randomness.

use serde::Serialize;
use serde_json::value::RawValue;

use crate::error::ErrorKind;
use crate::json_scan;
use crate::neutral;

mod carry;
pub mod embed;
mod request;
mod response;
mod stream;

pub use request::{decode_count_tokens, decode_request};
pub use response::encode_response;
pub use stream::{ChunkFramer, Framing, StreamEncoder};

/// What the gateway needs from a `generateContent` body besides the neutral request.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The neutral request; `model` and `stream` are what the caller passed (the URL carries
    /// them).
    pub request: neutral::Request,
    /// The Gemini-only fields the neutral model has no place for.
    pub extras: Extras,
}

/// Gemini-only request fields: passed to a Gemini vendor, dropped or refused for the others.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// `safetySettings`, verbatim (a JSON array): sent to Gemini, dropped for other vendors.
    pub safety_settings: Option<Box<RawValue>>,
    /// `cachedContent` (`cachedContents/…`): only Gemini can read it, so other vendors refuse
    /// the request.
    pub cached_content: Option<String>,
}

/// The google.rpc status name Google pairs with an HTTP status (`400` → `INVALID_ARGUMENT`).
///
/// 413 is `INVALID_ARGUMENT`, as Google answers an oversized payload; 408 is
/// `DEADLINE_EXCEEDED`; 502 and 529 (Anthropic's overload) are `UNAVAILABLE`, the retryable
/// status; other 4xx are `FAILED_PRECONDITION` and other 5xx `INTERNAL`.
pub fn rpc_status(status: u16) -> &'static str {
    match status {
        400 | 413 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        408 | 504 => "DEADLINE_EXCEEDED",
        409 => "ABORTED",
        416 => "OUT_OF_RANGE",
        429 => "RESOURCE_EXHAUSTED",
        499 => "CANCELLED",
        501 => "UNIMPLEMENTED",
        502 | 503 | 529 => "UNAVAILABLE",
        400..=499 => "FAILED_PRECONDITION",
        _ => "INTERNAL",
    }
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    code: u16,
    message: &'a str,
    status: &'static str,
}

/// Google's error envelope, `{"error":{"code":400,"message":"…","status":"INVALID_ARGUMENT"}}`,
/// for an HTTP `status` (see [`rpc_status`]).
pub fn encode_error(status: u16, message: &str) -> Vec<u8> {
    serde_json::to_vec(&ErrorEnvelope {
        error: ErrorBody {
            code: status,
            message,
            status: rpc_status(status),
        },
    })
    .unwrap_or_default()
}

/// The HTTP status a failure is reported with in a stream's error chunk (the gateway's own
/// mapping; Anthropic's 529 is reported as 503).
fn status_of(kind: ErrorKind) -> u16 {
    match kind {
        ErrorKind::InvalidRequest => 400,
        ErrorKind::NotFound => 404,
        ErrorKind::MethodNotAllowed => 405,
        ErrorKind::PayloadTooLarge => 413,
        ErrorKind::RequestTimeout => 408,
        ErrorKind::UpstreamStatus(529) => 503,
        ErrorKind::UpstreamStatus(status @ 400..=599) => status,
        ErrorKind::UpstreamStatus(_)
        | ErrorKind::UpstreamUnreachable
        | ErrorKind::UpstreamProtocol => 502,
        ErrorKind::UpstreamTimeout => 504,
        ErrorKind::NoCombination => 503,
        ErrorKind::Internal => 500,
    }
}

/// The `:countTokens` answer, `{"totalTokens":N}`.
pub fn encode_count_tokens(total: u64) -> Vec<u8> {
    format!("{{\"totalTokens\":{total}}}").into_bytes()
}

/// Replaces the value of the top-level `modelVersion` of a Gemini answer or stream chunk with
/// `client_model`, copying every other byte verbatim (no tree is built).
///
/// `None` when `body` is not a JSON object the scanner can walk or has no `modelVersion`
/// (an error object, for example): the caller forwards such a body unchanged.
pub fn rewrite_model_version(body: &[u8], client_model: &str) -> Option<Vec<u8>> {
    let members = json_scan::members(body).ok()?;
    let member = json_scan::find(body, &members, "modelVersion")?;
    let replacement = serde_json::to_vec(client_model).ok()?;
    Some(json_scan::splice(body, member.value.clone(), &replacement))
}

/// A Gemini client's body for the Gemini byte path without what llmux put in envelopes for
/// other vendors (see [`carry`]): thought parts whose `thoughtSignature` is an envelope are
/// dropped, and a call's envelope gives way to the call's own Gemini signature — Gemini would
/// refuse a signature it did not issue. `None` (the usual case, found without parsing) when the
/// body holds no envelope; otherwise the touched arrays are re-assembled, every other byte as
/// sent.
pub fn strip_foreign_reasoning(body: &[u8]) -> Option<Vec<u8>> {
    use json_scan::{Edit, ElementEdit, edit_member_array};
    memchr::memmem::find(body, carry::ENVELOPE_HEAD.as_bytes())?;
    #[derive(serde::Deserialize)]
    struct PartView<'a> {
        #[serde(default)]
        thought: Option<bool>,
        #[serde(rename = "thoughtSignature", alias = "thought_signature", borrow)]
        signature: Option<std::borrow::Cow<'a, str>>,
    }
    let part = |raw: &[u8]| {
        let Ok(view) = serde_json::from_slice::<PartView<'_>>(raw) else {
            return ElementEdit::Keep;
        };
        let Some(own) = view.signature.as_deref().and_then(carry::own_signature) else {
            return ElementEdit::Keep;
        };
        if view.thought == Some(true) {
            return ElementEdit::Drop;
        }
        let Ok(members) = json_scan::members(raw) else {
            return ElementEdit::Keep;
        };
        let key = if json_scan::find(raw, &members, "thoughtSignature").is_some() {
            "thoughtSignature"
        } else {
            "thought_signature"
        };
        let value = own.as_deref().map(crate::openai_chat::json_string);
        let edit = match &value {
            Some(value) => Edit::Set(key, value),
            None => Edit::Remove(key),
        };
        ElementEdit::Replace(json_scan::edit(raw, &members, &[edit]))
    };
    edit_member_array(body, "contents", |content| {
        match edit_member_array(content, "parts", part) {
            Some(edited) => ElementEdit::Replace(edited),
            None => ElementEdit::Keep,
        }
    })
}

#[cfg(test)]
mod tests;

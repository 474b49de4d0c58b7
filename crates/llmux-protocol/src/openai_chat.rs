//! OpenAI Chat Completions: what the gateway reads from a request, how it rewrites a request,
//! response or stream chunk on the same-protocol path, and how it reads usage and errors.
//!
//! Nothing here builds a JSON tree of the body: requests are validated by deserializing into
//! borrowed envelopes that ignore unknown fields, and rewrites splice top-level members.
//!
//! The cross-protocol path (⇄ the [`neutral`](crate::neutral) model) lives in one file per
//! shape, like the other codecs: `request` ([`decode_neutral_request`],
//! [`encode_neutral_request`]), `response` ([`decode_neutral_response`],
//! [`encode_neutral_response`]) and `stream` ([`ChunkDecoder`], [`ChunkEncoder`]). The
//! same-protocol path never goes there.
//!
//! Gemini's `thoughtSignature` has no field in OpenAI's format. llmux returns it twice on each
//! tool call: as `extra_content.google.thought_signature` (Google's own OpenAI-compatible
//! convention) and appended to the call id after [`SIGNATURE_SEPARATOR`], because every client
//! sends ids back even when it drops unknown fields. Either one brings it back on the next turn.

/// The API root of OpenAI's public service (with its version segment, no trailing slash).
pub const PUBLIC_BASE_URL: &str = "https://api.openai.com/v1";

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::json_scan::{self, Edit};
use crate::usage::Usage;
use crate::utf8;

pub mod repair;
mod request;
mod response;
mod stream;

pub use request::{decode_neutral_request, encode_neutral_request};
pub use response::{decode_neutral_response, encode_neutral_response};
pub use stream::{ChunkDecoder, ChunkEncoder};

/// Separates a tool-call id from the Gemini thought signature appended to it.
pub const SIGNATURE_SEPARATOR: &str = "__ts__";

/// Splits `call_x__ts__SIG` into the id and the signature.
pub fn split_signature(id: &str) -> (&str, Option<&str>) {
    match id.split_once(SIGNATURE_SEPARATOR) {
        Some((id, signature)) if !signature.is_empty() => (id, Some(signature)),
        _ => (id, None),
    }
}

/// `id` with `signature` appended after [`SIGNATURE_SEPARATOR`], the inverse of
/// [`split_signature`].
fn join_signature(id: &str, signature: Option<&str>) -> String {
    match signature {
        Some(signature) => format!("{id}{SIGNATURE_SEPARATOR}{signature}"),
        None => id.to_owned(),
    }
}

/// Which optional model capabilities a request needs (the seed's `support_*` flags).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    /// An `image_url` content part is present.
    pub image: bool,
    /// A `video_url` content part is present.
    pub video: bool,
    /// A non-empty `tools` array is present.
    pub tools: bool,
    /// `stream: true`.
    pub streaming: bool,
    /// A `file_url` or `audio_url` part (the original router's), which the gateway downloads.
    pub media: bool,
}

/// What routing and relaying need to know about a chat request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest<'a> {
    /// The requested model; `None` when absent, null or empty.
    pub model: Option<Cow<'a, str>>,
    /// The body's `provider` field, which pins a vendor like `?vendor=`.
    pub provider: Option<Cow<'a, str>>,
    /// Capabilities the request needs.
    pub needs: Needs,
    /// Whether the client itself asked for `stream_options.include_usage`.
    pub client_wants_usage: bool,
    /// `max_completion_tokens` or `max_tokens`, for token reservations.
    pub max_tokens: Option<u32>,
    /// `temperature`, when it is a number.
    pub temperature: Option<f64>,
    /// How many choices the answer holds: `n`, or 1 without it; `None` when `n` is not a
    /// whole number (the vendor judges it).
    pub choices: Option<u32>,
}

/// A request body the gateway refuses, with a message safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidRequest {
    /// What is wrong, naming the field.
    pub message: String,
    /// The offending parameter, when one is known.
    pub param: Option<String>,
}

impl InvalidRequest {
    fn new(message: impl Into<String>, param: Option<&str>) -> Self {
        Self {
            message: message.into(),
            param: param.map(str::to_owned),
        }
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    provider: Option<Cow<'a, str>>,
    #[serde(default)]
    messages: Option<Vec<Message>>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
    #[serde(default)]
    tools: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    /// Read for the trace only: any JSON is accepted here (the vendor judges it), and only a
    /// number is kept.
    #[serde(borrow, default)]
    temperature: Option<&'a serde_json::value::RawValue>,
    /// Read for the trace only, like `temperature`.
    #[serde(borrow, default)]
    n: Option<&'a serde_json::value::RawValue>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
struct Message {
    #[allow(
        dead_code,
        reason = "deserialized to check that every message has a string role"
    )]
    role: IgnoredString,
    #[serde(default)]
    content: Content,
}

/// Accepts any string without keeping it.
struct IgnoredString;

impl<'de> Deserialize<'de> for IgnoredString {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = IgnoredString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<IgnoredString, E> {
                Ok(IgnoredString)
            }
        }
        d.deserialize_str(V)
    }
}

/// Message content: a string, an array of typed parts, or absent/null (assistant tool calls).
/// Only the capability-relevant facts are kept.
#[derive(Default)]
struct Content {
    image: bool,
    video: bool,
    media: bool,
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Content;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, an array of content parts, or null")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Content, E> {
                Ok(Content::default())
            }
            fn visit_unit<E: de::Error>(self) -> Result<Content, E> {
                Ok(Content::default())
            }
            fn visit_none<E: de::Error>(self) -> Result<Content, E> {
                Ok(Content::default())
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Content, A::Error> {
                let mut content = Content::default();
                while let Some(part) = seq.next_element::<Part>()? {
                    match part.kind {
                        PartKind::Image => content.image = true,
                        PartKind::Video => content.video = true,
                        PartKind::Media => content.media = true,
                        PartKind::Other => {}
                    }
                }
                Ok(content)
            }
        }
        d.deserialize_any(V)
    }
}

struct Part {
    kind: PartKind,
}

enum PartKind {
    Image,
    Video,
    Media,
    Other,
}

impl<'de> Deserialize<'de> for Part {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Part;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a content part object with a string \"type\"")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Part, A::Error> {
                let mut kind = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "type" {
                        let value: Cow<'de, str> = map.next_value()?;
                        kind = Some(match value.as_ref() {
                            "image_url" | "input_image" => PartKind::Image,
                            "video_url" => PartKind::Video,
                            "file_url" | "audio_url" => PartKind::Media,
                            _ => PartKind::Other,
                        });
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                kind.map(|kind| Part { kind })
                    .ok_or_else(|| de::Error::missing_field("type"))
            }
        }
        d.deserialize_map(V)
    }
}

/// Reads and validates a chat request without building a tree. Unknown fields are ignored
/// here and forwarded unchanged by [`encode_upstream_request`].
pub fn decode_request(body: &[u8]) -> Result<ChatRequest<'_>, InvalidRequest> {
    require_object(body)?;
    let envelope: Envelope<'_> = match serde_json::from_slice(body) {
        Ok(envelope) => envelope,
        Err(_) => return Err(describe_error::<Envelope<'_>>(body)),
    };
    let messages = envelope.messages.ok_or_else(|| {
        InvalidRequest::new("missing required field 'messages'", Some("messages"))
    })?;
    if messages.is_empty() {
        return Err(InvalidRequest::new(
            "'messages' must contain at least one message",
            Some("messages"),
        ));
    }
    let needs = Needs {
        image: messages.iter().any(|m| m.content.image),
        video: messages.iter().any(|m| m.content.video),
        media: messages.iter().any(|m| m.content.media),
        tools: envelope.tools.is_some_and(|t| !t.is_empty()),
        streaming: envelope.stream == Some(true),
    };
    Ok(ChatRequest {
        model: envelope.model.filter(|m| !m.is_empty()),
        provider: envelope.provider.filter(|p| !p.is_empty()),
        needs,
        client_wants_usage: envelope
            .stream_options
            .and_then(|o| o.include_usage)
            .unwrap_or(false),
        max_tokens: envelope.max_completion_tokens.or(envelope.max_tokens),
        temperature: envelope
            .temperature
            .and_then(|raw| raw.get().parse::<f64>().ok())
            .filter(|t| t.is_finite()),
        choices: envelope.n.map_or(Some(1), |raw| raw.get().parse().ok()),
    })
}

/// Serde reads a JSON array as a struct by position; a request must be an object.
pub(crate) fn require_object(body: &[u8]) -> Result<(), InvalidRequest> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Ok(()),
        _ => Err(InvalidRequest::new(
            "request body is not valid JSON: expected a JSON object",
            None,
        )),
    }
}

/// Re-parses a body that failed, to name the path of the first problem.
pub(crate) fn describe_error<'de, T: Deserialize<'de>>(body: &'de [u8]) -> InvalidRequest {
    let mut de = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(&mut de) {
        Ok(_) => InvalidRequest::new("request body is not valid", None),
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            if inner.is_syntax() || inner.is_eof() || path == "." {
                InvalidRequest::new(format!("request body is not valid JSON: {inner}"), None)
            } else {
                InvalidRequest::new(format!("invalid '{path}': {inner}"), Some(&path))
            }
        }
    }
}

/// Builds the upstream body: `model` replaced, `provider` removed (no vendor accepts it) and,
/// for streams, `stream_options.include_usage` forced on so usage is always known. Every other
/// byte of the client's body is forwarded as received; when nothing changes, the body itself
/// (borrowed).
pub fn encode_upstream_request<'b>(
    body: &'b [u8],
    upstream_model: &str,
    request: &ChatRequest<'_>,
) -> Result<Cow<'b, [u8]>, json_scan::ScanError> {
    let members = json_scan::members(body)?;
    let model = json_string(upstream_model);
    let adds_stream_options = request.needs.streaming && !request.client_wants_usage;
    // Nothing to change (the public name is the vendor's, as models.json often has it): the
    // client's bytes go as they are, without a copy.
    if !adds_stream_options
        && json_scan::find(body, &members, "provider").is_none()
        && json_scan::find(body, &members, "model").is_some_and(|m| body[m.value.clone()] == model)
    {
        return Ok(Cow::Borrowed(body));
    }
    let mut edits = Vec::with_capacity(3);
    edits.push(Edit::Set("model", &model));
    edits.push(Edit::Remove("provider"));
    let stream_options;
    if adds_stream_options {
        stream_options = merged_stream_options(body, &members);
        edits.push(Edit::Set("stream_options", &stream_options));
    }
    Ok(Cow::Owned(json_scan::edit(body, &members, &edits)))
}

fn merged_stream_options(body: &[u8], members: &[json_scan::Member]) -> Vec<u8> {
    let existing = json_scan::find(body, members, "stream_options").and_then(|m| {
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&body[m.value.clone()])
            .ok()
    });
    let mut options = existing.unwrap_or_default();
    options.insert("include_usage".into(), serde_json::Value::Bool(true));
    serde_json::to_vec(&options).unwrap_or_else(|_| br#"{"include_usage":true}"#.to_vec())
}

/// Encodes `s` as a JSON string literal.
pub fn json_string(s: &str) -> Vec<u8> {
    // A model name rarely needs an escape: then the literal is the text in quotes, built
    // directly (serde's writer cost about twice as much, twice per request).
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        let mut out = Vec::with_capacity(s.len() + 2);
        out.push(b'"');
        out.extend_from_slice(s.as_bytes());
        out.push(b'"');
        return out;
    }
    serde_json::to_vec(s).unwrap_or_else(|_| b"\"\"".to_vec())
}

/// A same-protocol response body or stream chunk after the model rewrite.
#[derive(Debug, Clone, PartialEq)]
pub struct Rewritten {
    /// The bytes to send to the client.
    pub body: Vec<u8>,
    /// Usage, when the body carried a `usage` object.
    pub usage: Option<Usage>,
    /// True for a stream chunk whose only purpose is usage (`"choices": []` with `usage`).
    pub usage_only: bool,
    /// True when the body is an error object (`{"error": …}`), e.g. an error sent mid-stream.
    pub is_error: bool,
}

/// Replaces the top-level `model` with `client_model` (the name the client asked for) and
/// reads `usage` on the way. Bodies that are not JSON objects come back unchanged. Either way,
/// invalid UTF-8 from the vendor becomes U+FFFD ([`crate::utf8`]), so the client always gets
/// valid text.
pub fn rewrite_response(body: &[u8], client_model: &[u8]) -> Rewritten {
    rewrite_response_seeing(body, client_model, |_, _| {})
}

/// [`rewrite_response`], showing `see` the vendor's body and its top-level members first, so a
/// caller that reads more of the answer (a trace's response id and finish reasons) does not
/// scan it a second time.
pub fn rewrite_response_seeing(
    body: &[u8],
    client_model: &[u8],
    see: impl FnOnce(&[u8], &[json_scan::Member]),
) -> Rewritten {
    let Ok(members) = json_scan::members(body) else {
        return Rewritten {
            body: utf8::valid_or_replaced_vec(body.to_vec()),
            usage: None,
            usage_only: false,
            is_error: false,
        };
    };
    see(body, &members);
    // One pass over the keys (the first of each, as `json_scan::find` would take).
    let (mut model, mut usage, mut choices, mut error) = (None, None, None, None);
    for member in &members {
        let slot = match &body[member.key.clone()] {
            b"model" => &mut model,
            b"usage" => &mut usage,
            b"choices" => &mut choices,
            b"error" => &mut error,
            _ => continue,
        };
        slot.get_or_insert(member.value.clone());
    }
    let usage = usage
        .filter(|v| body[v.start] == b'{')
        .and_then(|v| Usage::read(&body[v]));
    let usage_only = usage.is_some()
        && choices.is_some_and(|v| {
            body[v]
                .iter()
                .all(|b| matches!(b, b'[' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
        });
    let is_error = error.is_some_and(|v| body[v.start] == b'{');
    let body = match model {
        Some(v) => json_scan::splice(body, v, client_model),
        None => body.to_vec(),
    };
    Rewritten {
        body: utf8::valid_or_replaced_vec(body),
        usage,
        usage_only,
        is_error,
    }
}

#[cfg(test)]
mod tests;

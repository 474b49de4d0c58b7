//! Non-streamed responses and error responses, in both directions.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{
    BlockOut, Input, WireBlock, WireUsage, compact_json, decode_stop_reason, encode_stop_reason,
    split_input, stable_hash, synthesize_id,
};
use crate::error::{ErrorKind, VendorError, decode_upstream_error};
use crate::neutral::{
    DecodeError, Part, Reasoning, ReasoningOrigin, Response, ToolCall, tag_token,
};

#[derive(Deserialize)]
struct WireResponse<'a> {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    model: Option<String>,
    #[serde(default, borrow)]
    content: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<WireError>,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Reads an Anthropic (non-streamed) message into the neutral model. Block types other than
/// text, tool use and thinking (server tool blocks, future types) are skipped.
pub fn decode_response(body: &[u8]) -> Result<Response, DecodeError> {
    let wire: WireResponse<'_> = serde_json::from_slice(body)
        .map_err(|err| DecodeError::new(format!("invalid anthropic message: {err}")))?;
    if wire.kind.as_deref() == Some("error") {
        let error = wire.error.unwrap_or(WireError {
            kind: None,
            message: None,
        });
        return Err(DecodeError::new(format!(
            "anthropic returned an error ({}): {}",
            error.kind.as_deref().unwrap_or("unknown"),
            error.message.as_deref().unwrap_or("no message")
        )));
    }
    let mut parts = Vec::new();
    for (i, raw) in wire.content.unwrap_or_default().into_iter().enumerate() {
        let block: WireBlock<'_> = serde_json::from_str(raw.get())
            .map_err(|err| DecodeError::new(format!("invalid anthropic content[{i}]: {err}")))?;
        let missing = |field: &str| {
            DecodeError::new(format!(
                "invalid anthropic content[{i}]: {} block without '{field}'",
                block.kind
            ))
        };
        match block.kind.as_str() {
            "text" => parts.push(Part::Text {
                text: block.text.clone().ok_or_else(|| missing("text"))?,
            }),
            "tool_use" => parts.push(Part::ToolCall(ToolCall {
                id: block.id.clone().ok_or_else(|| missing("id"))?,
                name: block.name.clone().ok_or_else(|| missing("name"))?,
                arguments: block
                    .input
                    .map_or_else(|| "{}".to_owned(), |raw| compact_json(raw.get())),
                signature: None,
            })),
            "thinking" => parts.push(Part::Reasoning(Reasoning {
                text: block.thinking.clone().ok_or_else(|| missing("thinking"))?,
                signature: block.signature.clone().filter(|s| !s.is_empty()),
                redacted: None,
                origin: Some(ReasoningOrigin::Anthropic),
            })),
            "redacted_thinking" => parts.push(Part::Reasoning(Reasoning {
                text: String::new(),
                signature: None,
                redacted: Some(block.data.clone().ok_or_else(|| missing("data"))?),
                origin: Some(ReasoningOrigin::Anthropic),
            })),
            _ => {}
        }
    }
    Ok(Response {
        id: wire.id.unwrap_or_default(),
        model: wire.model.unwrap_or_default(),
        parts,
        finish: decode_stop_reason(wire.stop_reason.as_deref()),
        usage: wire.usage.map(WireUsage::to_neutral),
    })
}

#[derive(Serialize)]
struct MessageOut<'a> {
    id: Cow<'a, str>,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: &'a [BlockOut<'a>],
    stop_reason: &'static str,
    stop_sequence: Option<&'a str>,
    usage: UsageOut,
}

#[derive(Serialize)]
struct UsageOut {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

/// Renders a neutral response as an Anthropic message for a `/v1/messages` client, with
/// `model` set to the name the client asked for. Usage is split back into Anthropic's three
/// input counts (so decoding gives the same totals); a response without usage reports zeros,
/// since Anthropic clients expect the object. An empty id becomes `msg_` + 24 hex digits
/// derived from the content.
pub fn encode_response(response: &Response, client_model: &str) -> Vec<u8> {
    let content: Vec<BlockOut<'_>> = response
        .parts
        .iter()
        .enumerate()
        .filter_map(|(i, part)| response_block(part, &response.id, i))
        .collect();
    let id = if response.id.is_empty() {
        let seed = serde_json::to_vec(&content).unwrap_or_default();
        Cow::Owned(synthesize_id("msg_", stable_hash(&seed)))
    } else {
        Cow::Borrowed(response.id.as_str())
    };
    let usage = response.usage.unwrap_or_default();
    let (input_tokens, cache_creation_input_tokens, cache_read_input_tokens) = split_input(&usage);
    let message = MessageOut {
        id,
        kind: "message",
        role: "assistant",
        model: client_model,
        content: &content,
        stop_reason: encode_stop_reason(&response.finish),
        stop_sequence: None,
        usage: UsageOut {
            input_tokens,
            cache_creation_input_tokens,
            cache_read_input_tokens,
            output_tokens: usage.output_tokens,
        },
    };
    serde_json::to_vec(&message).unwrap_or_default()
}

/// One output part as a response block. Empty text is dropped (Anthropic never sends it and
/// rejects it when the client sends it back); images and tool results are not model output.
fn response_block<'a>(part: &'a Part, response_id: &str, position: usize) -> Option<BlockOut<'a>> {
    match part {
        Part::Text { text } if !text.is_empty() => Some(BlockOut::Text { text }),
        Part::ToolCall(call) => Some(BlockOut::ToolUse {
            id: if call.id.is_empty() {
                let seed = stable_hash(response_id.as_bytes()) ^ position as u64;
                Cow::Owned(synthesize_id("toolu_", seed))
            } else {
                Cow::Borrowed(call.id.as_str())
            },
            name: &call.name,
            input: Input::from_arguments(&call.arguments),
        }),
        // Another vendor's tokens reach the client tagged with their origin (see
        // `neutral::tag_token`), so they come back to that vendor only.
        Part::Reasoning(Reasoning {
            redacted: Some(data),
            origin,
            ..
        }) => Some(BlockOut::RedactedThinking {
            data: Cow::Owned(tag_token(*origin, ReasoningOrigin::Anthropic, data)),
        }),
        // Reasoning without a signature still has the field: Anthropic clients expect it.
        Part::Reasoning(reasoning) => Some(BlockOut::Thinking {
            thinking: &reasoning.text,
            signature: match &reasoning.signature {
                Some(signature) => Cow::Owned(tag_token(
                    reasoning.origin,
                    ReasoningOrigin::Anthropic,
                    signature,
                )),
                None => Cow::Borrowed(""),
            },
        }),
        Part::Text { .. } | Part::Image(_) | Part::ToolResult(_) | Part::File(_) => None,
    }
}

/// Reads an Anthropic error response into what the client should see.
///
/// The body is `{"type":"error","error":{"type","message"},"request_id"}`; other shapes (a
/// proxy's HTML, plain text) fall back to the status. Anthropic's non-standard 529
/// (`overloaded_error`) becomes 503 for the client but keeps kind `UpstreamStatus(529)`, so the
/// attempt loop retries it. `Retry-After` is a header: the caller reads it.
pub fn decode_error(status: u16, body: &[u8]) -> VendorError {
    let upstream = decode_upstream_error(body);
    let error_type = upstream
        .kind
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| status_error_type(status).to_owned());
    let message = upstream
        .message
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| status_text(status));
    if status == 529 || error_type == "overloaded_error" {
        return VendorError {
            status: 503,
            kind: ErrorKind::UpstreamStatus(529),
            error_type: "overloaded_error".to_owned(),
            message,
            retry_after_secs: None,
        };
    }
    VendorError {
        status,
        kind: ErrorKind::UpstreamStatus(status),
        error_type,
        message,
        retry_after_secs: None,
    }
}

/// Anthropic's error `type` for a status, when the body does not say.
fn status_error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// A message for an error body that carried none.
fn status_text(status: u16) -> String {
    let reason = match status {
        400 => "bad request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not found",
        413 => "request too large",
        429 => "too many requests",
        500 => "internal server error",
        502 => "bad gateway",
        503 => "service unavailable",
        504 => "gateway timeout",
        529 => "overloaded",
        _ => "error",
    };
    format!("anthropic returned status {status} ({reason})")
}

/// Anthropic's error `type` for a failure, for the envelope sent to a `/v1/messages` client
/// (response body or stream `error` event).
pub fn error_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::UpstreamStatus(503 | 529) | ErrorKind::NoCombination => "overloaded_error",
        ErrorKind::UpstreamStatus(status) => status_error_type(status),
        ErrorKind::InvalidRequest | ErrorKind::MethodNotAllowed | ErrorKind::RequestTimeout => {
            "invalid_request_error"
        }
        ErrorKind::NotFound => "not_found_error",
        ErrorKind::PayloadTooLarge => "request_too_large",
        ErrorKind::UpstreamTimeout => "timeout_error",
        ErrorKind::UpstreamUnreachable | ErrorKind::UpstreamProtocol | ErrorKind::Internal => {
            "api_error"
        }
    }
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

/// Anthropic's error envelope, `{"type":"error","error":{"type":…,"message":…}}`, for a client
/// of `/v1/messages`.
pub fn encode_error(error_type: &str, message: &str) -> Vec<u8> {
    serde_json::to_vec(&ErrorEnvelope {
        kind: "error",
        error: ErrorBody {
            kind: error_type,
            message,
        },
    })
    .unwrap_or_default()
}

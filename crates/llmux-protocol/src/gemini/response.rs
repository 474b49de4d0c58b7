//! Answers: a `generateContent` response, or the chunks of `streamGenerateContent?alt=sse`,
//! → neutral.

use super::status::from_status;
use super::wire;
use crate::neutral::{
    self, DecodeError, FinishReason, Image, ImageSource, Part, Reasoning, ReasoningOrigin,
    StreamEvent, ToolCall, Usage,
};
use crate::sse;

/// Non-stream response → neutral.
///
/// Reads the first candidate (index 0). `id_seed` seeds the `call_` ids synthesized for calls
/// without an id (gemini-2.x): call `i` of the answer gets `synthesize_call_id(id_seed + i)`,
/// as in [`StreamDecoder`]. A prompt blocked before generation (`promptFeedback.blockReason`,
/// no candidates) is an empty answer that finished with [`FinishReason::ContentFilter`]. A JSON
/// array body (some proxies, or `streamGenerateContent` without `alt=sse`) is read as the
/// chunks of one answer, which for a one-element array is that element.
pub fn decode_response(body: &[u8], id_seed: u64) -> Result<neutral::Response, DecodeError> {
    let chunks: Vec<wire::Response> = if wire::is_array(body) {
        wire::parse(body, "response")?
    } else {
        vec![wire::parse(body, "response")?]
    };
    if chunks.is_empty() {
        return Err(DecodeError::new("gemini response is an empty array"));
    }
    let mut out = neutral::Response::default();
    let mut reason: Option<String> = None;
    let mut blocked = false;
    let mut calls = 0usize;
    let mut any_candidate = false;
    for mut chunk in chunks {
        if let Some(error) = &chunk.error
            && chunk.candidates.is_empty()
        {
            let status = error_code(error);
            let error = from_status(status, Some(error));
            return Err(DecodeError::new(format!(
                "gemini answered with an error: {}",
                error.message
            )));
        }
        if out.id.is_empty()
            && let Some(id) = chunk.response_id.take()
        {
            out.id = id;
        }
        if out.model.is_empty()
            && let Some(model) = chunk.model_version.take()
        {
            out.model = model;
        }
        if let Some(usage) = &chunk.usage_metadata {
            out.usage = Some(usage_of(usage));
        }
        let Some(candidate) = chunk.first_candidate() else {
            blocked |= chunk
                .prompt_feedback
                .as_ref()
                .is_some_and(|f| f.block_reason.is_some());
            continue;
        };
        any_candidate = true;
        if let Some(finish) = &candidate.finish_reason {
            reason = Some(finish.clone());
        }
        let parts = candidate
            .content
            .as_ref()
            .map_or(&[][..], |c| c.parts.as_slice());
        for part in parts {
            let decoded = if let Some(call) = &part.function_call {
                let id = call_id(call, id_seed, calls);
                calls += 1;
                Part::ToolCall(ToolCall {
                    id,
                    name: call.name.clone(),
                    arguments: arguments(call),
                    signature: part.thought_signature.clone(),
                })
            } else if part.thought == Some(true) {
                let text = part.text.clone().unwrap_or_default();
                if text.is_empty() && part.thought_signature.is_none() {
                    continue;
                }
                Part::Reasoning(Reasoning {
                    text,
                    signature: part.thought_signature.clone(),
                    redacted: None,
                    origin: Some(ReasoningOrigin::Gemini),
                })
            } else if let Some(blob) = &part.inline_data {
                Part::Image(Image {
                    source: ImageSource::Base64 {
                        media_type: blob.mime_type.clone(),
                        data: blob.data.clone(),
                    },
                    detail: None,
                })
            } else {
                match &part.text {
                    Some(text) if !text.is_empty() => Part::text(text.clone()),
                    _ => continue,
                }
            };
            push_merged(&mut out.parts, decoded);
        }
    }
    out.finish = if !any_candidate && blocked {
        FinishReason::ContentFilter
    } else if !any_candidate {
        return Err(DecodeError::new("gemini response has no candidates"));
    } else {
        finish_reason(reason.as_deref(), calls > 0)
    };
    Ok(out)
}

/// Appends a part, joining it to the previous one when both are text (Gemini splits text into
/// several parts, and chunks of an array body split it further).
fn push_merged(parts: &mut Vec<Part>, part: Part) {
    match (parts.last_mut(), part) {
        (Some(Part::Text { text }), Part::Text { text: more }) => text.push_str(&more),
        (
            Some(Part::Reasoning(previous)),
            Part::Reasoning(Reasoning {
                text, signature, ..
            }),
        ) if previous.signature.is_none() => {
            previous.text.push_str(&text);
            previous.signature = signature;
        }
        (_, part) => parts.push(part),
    }
}

/// The call's id, or a synthesized one for call number `index` of the answer.
fn call_id(call: &wire::FunctionCall, id_seed: u64, index: usize) -> String {
    match &call.id {
        Some(id) if !id.is_empty() => id.clone(),
        _ => neutral::synthesize_call_id(id_seed.wrapping_add(index as u64)),
    }
}

/// The arguments as compact JSON text in the vendor's key order (`{}` when absent).
fn arguments(call: &wire::FunctionCall) -> String {
    call.args
        .as_ref()
        .map_or_else(|| "{}".to_owned(), |a| wire::compact(a.get()))
}

/// Gemini's `finishReason` → neutral (REFERENCE.md §D4). A tool-call turn finishes with `STOP`,
/// so `has_calls` turns a natural stop into [`FinishReason::ToolCalls`].
fn finish_reason(reason: Option<&str>, has_calls: bool) -> FinishReason {
    match reason {
        Some("MAX_TOKENS") => FinishReason::Length,
        Some("SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII") => {
            FinishReason::ContentFilter
        }
        Some(image) if image.starts_with("IMAGE_") => FinishReason::ContentFilter,
        Some("MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" | "TOO_MANY_TOOL_CALLS") => {
            FinishReason::ModelError
        }
        // STOP, OTHER, LANGUAGE, unknown values and none at all.
        _ if has_calls => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

/// `usageMetadata` → neutral: thoughts count as output, tool-use prompts as input.
fn usage_of(usage: &wire::UsageMetadata) -> Usage {
    let thoughts = usage.thoughts_token_count;
    Usage {
        input_tokens: usage
            .prompt_token_count
            .unwrap_or(0)
            .saturating_add(usage.tool_use_prompt_token_count.unwrap_or(0)),
        output_tokens: usage
            .candidates_token_count
            .unwrap_or(0)
            .saturating_add(thoughts.unwrap_or(0)),
        cached_input_tokens: usage.cached_content_token_count,
        cache_creation_input_tokens: None,
        reasoning_tokens: thoughts,
    }
}

/// The HTTP status a google.rpc.Status carries in `code` (500 when absent or odd).
fn error_code(error: &serde_json::Value) -> u16 {
    error
        .get("code")
        .and_then(serde_json::Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..=599).contains(c))
        .unwrap_or(500)
}

/// Turns the `data:` payloads of `streamGenerateContent?alt=sse` into neutral events.
///
/// Each payload is a whole `GenerateContentResponse` holding only the new parts;
/// `usageMetadata` is cumulative and `finishReason` comes on the last chunk. There is no
/// `[DONE]` (one is ignored if a proxy adds it): the stream ends at EOF, which the caller sees.
///
/// `finishReason` is not the end of the stream: old models put `STOP` on every chunk. So a
/// [`StreamEvent::Finish`] is emitted when the finish reason first appears and again only when
/// the mapped reason changes (e.g. `stop` → `tool_calls` once a call arrives after an early
/// `STOP`); the last `Finish` wins, and current models send exactly one.
#[derive(Debug)]
pub struct StreamDecoder {
    id_seed: u64,
    started: bool,
    calls: usize,
    finish: Option<FinishReason>,
}

impl StreamDecoder {
    /// A decoder for one answer; `id_seed` seeds synthesized call ids as in [`decode_response`].
    pub fn new(id_seed: u64) -> Self {
        Self {
            id_seed,
            started: false,
            calls: 0,
            finish: None,
        }
    }

    /// The events one SSE event carries. Malformed JSON is an error, never a panic; the decoder
    /// stays usable afterwards.
    pub fn decode(&mut self, event: &sse::Event) -> Result<Vec<StreamEvent>, DecodeError> {
        let data = event.data.trim_ascii();
        if data.is_empty() || data == b"[DONE]" {
            return Ok(Vec::new());
        }
        let chunks: Vec<wire::Response> = if wire::is_array(data) {
            wire::parse(data, "stream chunk")?
        } else {
            vec![wire::parse(data, "stream chunk")?]
        };
        let mut events = Vec::new();
        for chunk in chunks {
            self.chunk(chunk, &mut events);
        }
        Ok(events)
    }

    fn chunk(&mut self, chunk: wire::Response, events: &mut Vec<StreamEvent>) {
        if let Some(error) = &chunk.error
            && chunk.candidates.is_empty()
        {
            let error = from_status(error_code(error), Some(error));
            events.push(StreamEvent::Error {
                kind: error.kind,
                message: error.message,
            });
            return;
        }
        if !self.started {
            self.started = true;
            events.push(StreamEvent::Start {
                id: chunk.response_id.clone().unwrap_or_default(),
                model: chunk.model_version.clone().unwrap_or_default(),
            });
        }
        let mut reason = None;
        if let Some(candidate) = chunk.first_candidate() {
            let parts = candidate
                .content
                .as_ref()
                .map_or(&[][..], |c| c.parts.as_slice());
            for part in parts {
                self.part(part, events);
            }
            reason = candidate
                .finish_reason
                .as_deref()
                .map(|r| finish_reason(Some(r), self.calls > 0));
        } else if chunk
            .prompt_feedback
            .as_ref()
            .is_some_and(|f| f.block_reason.is_some())
        {
            reason = Some(FinishReason::ContentFilter);
        }
        if let Some(usage) = &chunk.usage_metadata {
            events.push(StreamEvent::Usage(usage_of(usage)));
        }
        if let Some(reason) = reason
            && self.finish.as_ref() != Some(&reason)
        {
            self.finish = Some(reason.clone());
            events.push(StreamEvent::Finish { reason });
        }
    }

    fn part(&mut self, part: &wire::Part, events: &mut Vec<StreamEvent>) {
        if let Some(call) = &part.function_call {
            let index = self.calls;
            self.calls += 1;
            events.push(StreamEvent::ToolCallStart {
                index,
                id: call_id(call, self.id_seed, index),
                name: call.name.clone(),
                signature: part.thought_signature.clone(),
            });
            events.push(StreamEvent::ToolCallDelta {
                index,
                arguments: arguments(call),
            });
            return;
        }
        let text = part.text.as_deref().unwrap_or_default();
        if part.thought == Some(true) {
            if !text.is_empty() || part.thought_signature.is_some() {
                events.push(StreamEvent::ReasoningDelta {
                    text: text.to_owned(),
                    signature: part.thought_signature.clone(),
                    origin: Some(ReasoningOrigin::Gemini),
                });
            }
        } else if !text.is_empty() {
            events.push(StreamEvent::TextDelta {
                text: text.to_owned(),
            });
        }
    }
}

//! Answers: neutral → a `GenerateContentResponse`, with Google's field order.

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;

use super::carry;
use crate::neutral::{self, FinishReason, ImageSource, Part, Reasoning, ToolCall, Usage};

/// One `GenerateContentResponse` (a whole answer or a stream chunk).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ResponseOut<'a> {
    pub candidates: [CandidateOut<'a>; 1],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage_metadata: Option<UsageOut>,
    pub model_version: &'a str,
    pub response_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct CandidateOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<ContentOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finish_reason: Option<&'static str>,
    pub index: u32,
}

#[derive(Serialize)]
pub(super) struct ContentOut<'a> {
    pub parts: Vec<PartOut<'a>>,
    pub role: &'static str,
}

/// A part: one data field, then `thought` and `thoughtSignature`, as Google orders them.
#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PartOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inline_data: Option<BlobOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_data: Option<FileOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_call: Option<CallOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct BlobOut<'a> {
    pub mime_type: &'a str,
    pub data: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FileOut<'a> {
    pub file_uri: &'a str,
}

#[derive(Serialize)]
pub(super) struct CallOut<'a> {
    pub name: &'a str,
    pub args: Args<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<&'a str>,
}

/// A call's `args`: the arguments verbatim when they are a JSON object, otherwise `{}` (Gemini's
/// `args` is a Struct, and a vendor can stream broken JSON).
pub(super) struct Args<'a>(Option<&'a RawValue>);

impl<'a> Args<'a> {
    pub fn of(arguments: &'a str) -> Self {
        Self(
            serde_json::from_str::<&RawValue>(arguments)
                .ok()
                .filter(|raw| raw.get().starts_with('{')),
        )
    }
}

impl Serialize for Args<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(raw) => raw.serialize(serializer),
            None => serializer.serialize_map(Some(0))?.end(),
        }
    }
}

/// `usageMetadata`; zero counts Google leaves out are left out.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct UsageOut {
    pub prompt_token_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub candidates_token_count: Option<u64>,
    pub total_token_count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_content_token_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thoughts_token_count: Option<u64>,
}

/// Neutral usage → `usageMetadata` (REFERENCE.md §D4, reversed): output tokens minus reasoning
/// are the candidates' tokens, reasoning the thoughts'.
pub(super) fn usage_out(usage: &Usage) -> UsageOut {
    let thoughts = usage.reasoning_tokens.filter(|t| *t > 0);
    let candidates = usage.output_tokens.saturating_sub(thoughts.unwrap_or(0));
    UsageOut {
        prompt_token_count: usage.input_tokens,
        candidates_token_count: (candidates > 0).then_some(candidates),
        total_token_count: usage.input_tokens.saturating_add(usage.output_tokens),
        cached_content_token_count: usage.cached_input_tokens.filter(|c| *c > 0),
        thoughts_token_count: thoughts,
    }
}

/// A neutral finish reason as Gemini's `finishReason`. A tool-call turn finishes with `STOP`, as
/// Gemini's own do; a turn a vendor cut short (Anthropic `pause_turn`) is `OTHER`.
pub(super) fn finish_reason(reason: &FinishReason) -> &'static str {
    match reason {
        FinishReason::Stop | FinishReason::ToolCalls => "STOP",
        FinishReason::Length => "MAX_TOKENS",
        FinishReason::ContentFilter => "SAFETY",
        FinishReason::ModelError => "MALFORMED_FUNCTION_CALL",
        FinishReason::Paused => "OTHER",
    }
}

/// A text part.
pub(super) fn text_part(text: &str) -> PartOut<'_> {
    PartOut {
        text: Some(text),
        ..PartOut::default()
    }
}

/// A thought part; its signature (or redacted reasoning) rides in an envelope.
pub(super) fn thought_part<'a>(
    text: &'a str,
    signature: Option<&str>,
    redacted: Option<&str>,
    origin: Option<neutral::ReasoningOrigin>,
) -> PartOut<'a> {
    PartOut {
        text: Some(text),
        thought: Some(true),
        thought_signature: carry::thought_signature(signature, redacted, origin),
        ..PartOut::default()
    }
}

/// A `functionCall` part; `carried` is the reasoning to return through it (see the module docs).
pub(super) fn call_part<'a>(call: &'a ToolCall, carried: &[&Reasoning]) -> PartOut<'a> {
    PartOut {
        function_call: Some(CallOut {
            name: &call.name,
            args: Args::of(&call.arguments),
            id: Some(call.id.as_str()).filter(|id| !id.is_empty()),
        }),
        thought_signature: carry::call_signature(call.signature.as_deref(), carried),
        ..PartOut::default()
    }
}

/// neutral → a `GenerateContentResponse`: one candidate (`index` 0) holding the answer's parts
/// in order (text, thought parts with `thought: true`, images as `inlineData`/`fileData`,
/// `functionCall`s with their ids), `finishReason` (tool calls finish with `STOP`, as on
/// Gemini), `usageMetadata` when the vendor reported usage, `modelVersion` = `client_model` and
/// `responseId` = `response_id` (the vendor's id when that is empty).
///
/// The answer's first call carries the reasoning before it that its vendor needs back (see the
/// module docs). A content-filtered answer with no content has no `content`, like Gemini's.
pub fn encode_response(
    response: &neutral::Response,
    client_model: &str,
    response_id: &str,
) -> Vec<u8> {
    let mut parts = Vec::with_capacity(response.parts.len());
    let mut carried: Vec<&Reasoning> = Vec::new();
    let mut first_call = true;
    for part in &response.parts {
        match part {
            Part::Text { text } if text.is_empty() => {}
            Part::Text { text } => parts.push(text_part(text)),
            Part::Reasoning(reasoning) => {
                if first_call && carry::must_return(reasoning) {
                    carried.push(reasoning);
                }
                if reasoning.text.is_empty() && !carry::must_return(reasoning) {
                    continue;
                }
                parts.push(thought_part(
                    &reasoning.text,
                    reasoning.signature.as_deref(),
                    reasoning.redacted.as_deref(),
                    reasoning.origin,
                ));
            }
            Part::ToolCall(call) => {
                let carry: &[&Reasoning] = if first_call { &carried } else { &[] };
                parts.push(call_part(call, carry));
                first_call = false;
            }
            Part::Image(image) => parts.push(match &image.source {
                ImageSource::Base64 { media_type, data } => PartOut {
                    inline_data: Some(BlobOut {
                        mime_type: media_type,
                        data,
                    }),
                    ..PartOut::default()
                },
                ImageSource::Url(url) => PartOut {
                    file_data: Some(FileOut { file_uri: url }),
                    ..PartOut::default()
                },
            }),
            // A result or a file is the client's, never part of an answer.
            Part::ToolResult(_) | Part::File(_) => {}
        }
    }
    let content = (!parts.is_empty() || response.finish != FinishReason::ContentFilter).then_some(
        ContentOut {
            parts,
            role: "model",
        },
    );
    let body = ResponseOut {
        candidates: [CandidateOut {
            content,
            finish_reason: Some(finish_reason(&response.finish)),
            index: 0,
        }],
        usage_metadata: response.usage.as_ref().map(usage_out),
        model_version: client_model,
        response_id: if response_id.is_empty() {
            &response.id
        } else {
            response_id
        },
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

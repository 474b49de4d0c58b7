//! Chat Completions answers ⇄ the neutral model: [`decode_neutral_response`] reads a vendor's
//! `chat.completion` body, [`encode_neutral_response`] writes one for a client. The wire shapes
//! read here are shared with the stream decoder, which reads the same objects chunk by chunk.

use serde::Deserialize;
use serde_json::{Value, json};

use super::{join_signature, split_signature};
use crate::neutral::{self, DecodeError, FinishReason, Part, ToolCall, Usage};

pub(super) fn tool_call_json(call: &ToolCall, index: Option<usize>) -> Value {
    let mut value = json!({
        "id": join_signature(&call.id, call.signature.as_deref()),
        "type": "function",
        "function": {"name": call.name, "arguments": call.arguments},
    });
    if let Some(index) = index {
        value["index"] = json!(index);
    }
    if let Some(signature) = &call.signature {
        value["extra_content"] = json!({"google": {"thought_signature": signature}});
    }
    value
}

pub(super) fn usage_json(usage: &Usage) -> Value {
    let mut value = json!({
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total(),
    });
    if let Some(cached) = usage.cached_input_tokens {
        value["prompt_tokens_details"] = json!({"cached_tokens": cached});
    }
    if let Some(reasoning) = usage.reasoning_tokens {
        value["completion_tokens_details"] = json!({"reasoning_tokens": reasoning});
    }
    value
}

/// neutral → a `chat.completion` body with `model` = the client's name.
pub fn encode_neutral_response(
    response: &neutral::Response,
    client_model: &str,
    created: u64,
) -> Vec<u8> {
    let text: String = response
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Text { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    let reasoning: String = response
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Reasoning(r) => Some(r.text.as_str()),
            _ => None,
        })
        .collect();
    let calls: Vec<Value> = response
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall(call) => Some(tool_call_json(call, None)),
            _ => None,
        })
        .collect();
    let mut message = json!({
        "role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { Value::String(text) },
        "refusal": null,
    });
    if !calls.is_empty() {
        message["tool_calls"] = Value::Array(calls);
    }
    if !reasoning.is_empty() {
        message["reasoning_content"] = json!(reasoning);
    }
    let mut body = json!({
        "id": completion_id(&response.id),
        "object": "chat.completion",
        "created": created,
        "model": client_model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": response.finish.openai()}],
    });
    if let Some(usage) = &response.usage {
        body["usage"] = usage_json(usage);
    }
    serde_json::to_vec(&body).unwrap_or_default()
}

pub(super) fn completion_id(vendor_id: &str) -> String {
    if vendor_id.is_empty() {
        "chatcmpl-llmux".to_owned()
    } else if vendor_id.starts_with("chatcmpl-") {
        vendor_id.to_owned()
    } else {
        format!("chatcmpl-{vendor_id}")
    }
}

#[derive(Deserialize)]
pub(super) struct RawResponse {
    #[serde(default)]
    pub(super) id: String,
    #[serde(default)]
    pub(super) model: String,
    #[serde(default)]
    pub(super) choices: Vec<RawChoice>,
    #[serde(default)]
    pub(super) usage: Option<RawUsage>,
}

#[derive(Deserialize)]
pub(super) struct RawChoice {
    #[serde(default)]
    pub(super) message: Option<RawResponseMessage>,
    #[serde(default)]
    pub(super) delta: Option<RawResponseMessage>,
    #[serde(default)]
    pub(super) finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
pub(super) struct RawResponseMessage {
    #[serde(default)]
    pub(super) content: Option<String>,
    #[serde(default)]
    pub(super) reasoning_content: Option<String>,
    #[serde(default)]
    pub(super) refusal: Option<String>,
    #[serde(default)]
    pub(super) tool_calls: Option<Vec<RawResponseToolCall>>,
}

#[derive(Deserialize)]
pub(super) struct RawResponseToolCall {
    #[serde(default)]
    pub(super) index: Option<usize>,
    #[serde(default)]
    pub(super) id: Option<String>,
    #[serde(default)]
    pub(super) function: Option<RawResponseFunction>,
    #[serde(default)]
    pub(super) extra_content: Option<Value>,
}

#[derive(Deserialize)]
pub(super) struct RawResponseFunction {
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) arguments: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct RawUsage {
    #[serde(default)]
    pub(super) prompt_tokens: u64,
    #[serde(default)]
    pub(super) completion_tokens: u64,
    #[serde(default)]
    pub(super) prompt_tokens_details: Option<Value>,
    #[serde(default)]
    pub(super) completion_tokens_details: Option<Value>,
}

impl From<RawUsage> for Usage {
    fn from(raw: RawUsage) -> Self {
        Usage {
            input_tokens: raw.prompt_tokens,
            output_tokens: raw.completion_tokens,
            cached_input_tokens: raw
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.get("cached_tokens"))
                .and_then(Value::as_u64),
            cache_creation_input_tokens: None,
            reasoning_tokens: raw
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.get("reasoning_tokens"))
                .and_then(Value::as_u64),
        }
    }
}

pub(super) fn decode_finish(reason: Option<&str>, has_calls: bool) -> FinishReason {
    match reason {
        Some("length") => FinishReason::Length,
        Some("tool_calls" | "function_call") => FinishReason::ToolCalls,
        Some("content_filter") => FinishReason::ContentFilter,
        // Gemini's OpenAI endpoint can end a tool-call turn with "stop".
        _ if has_calls => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

/// A `chat.completion` body → neutral.
pub fn decode_neutral_response(
    body: &[u8],
    id_seed: u64,
) -> Result<neutral::Response, DecodeError> {
    let raw: RawResponse = serde_json::from_slice(body)?;
    let choice = raw.choices.into_iter().next();
    let finish_reason = choice.as_ref().and_then(|c| c.finish_reason.clone());
    let message = choice.and_then(|c| c.message).unwrap_or_default();
    let mut parts = Vec::new();
    if let Some(reasoning) = message.reasoning_content.filter(|r| !r.is_empty()) {
        parts.push(Part::Reasoning(neutral::Reasoning {
            text: reasoning,
            ..neutral::Reasoning::default()
        }));
    }
    if let Some(text) = message
        .content
        .or(message.refusal)
        .filter(|t| !t.is_empty())
    {
        parts.push(Part::text(text));
    }
    for (i, call) in message
        .tool_calls
        .unwrap_or_default()
        .into_iter()
        .enumerate()
    {
        let (id, signature) = call_identity(&call, id_seed, i);
        let function = call.function.unwrap_or(RawResponseFunction {
            name: None,
            arguments: None,
        });
        parts.push(Part::ToolCall(ToolCall {
            id,
            name: function.name.unwrap_or_default(),
            arguments: function.arguments.unwrap_or_default(),
            signature,
        }));
    }
    let has_calls = parts.iter().any(|p| matches!(p, Part::ToolCall(_)));
    Ok(neutral::Response {
        id: raw.id,
        model: raw.model,
        finish: decode_finish(finish_reason.as_deref(), has_calls),
        parts,
        usage: raw.usage.map(Usage::from),
    })
}

/// The call id (synthesized when empty, as Gemini's OpenAI endpoint sends) and its signature.
pub(super) fn call_identity(
    call: &RawResponseToolCall,
    id_seed: u64,
    index: usize,
) -> (String, Option<String>) {
    let raw_id = call.id.as_deref().unwrap_or_default();
    let (id, id_signature) = split_signature(raw_id);
    let signature = call
        .extra_content
        .as_ref()
        .and_then(|e| e.pointer("/google/thought_signature"))
        .and_then(Value::as_str)
        .or(id_signature)
        .map(str::to_owned);
    let id = if id.is_empty() {
        neutral::synthesize_call_id(id_seed.wrapping_add(index as u64))
    } else {
        id.to_owned()
    };
    (id, signature)
}

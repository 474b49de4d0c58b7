//! Neutral answers → `ResponseResource` JSON (§C4) and output items (§C5), shared by the
//! non-streamed body and the streamed snapshots so both describe an answer the same way.

use serde_json::{Map, Value, json};

use super::{Echo, Meta, REASONING_SIGNATURE_PREFIX};
use crate::neutral::{
    self, FinishReason, Message, Part, ReasoningOrigin, Role, ToolCall, Usage, tag_token,
};
use crate::openai_chat::SIGNATURE_SEPARATOR;

/// The error message of a response that failed because of the model's own output.
const MODEL_ERROR_MESSAGE: &str =
    "the model produced output that could not be used (for example a malformed tool call)";

/// One output item, read from the answer's parts.
pub(super) enum Item<'a> {
    Reasoning(&'a neutral::Reasoning),
    /// A run of consecutive text parts, joined.
    Message(String),
    Call(&'a ToolCall),
}

/// Groups parts into output items, in order: consecutive text parts make one message item;
/// each reasoning part and each tool call is its own item. Empty text and empty reasoning
/// produce nothing, as they would in a stream.
pub(super) fn items(parts: &[Part]) -> Vec<Item<'_>> {
    let mut items: Vec<Item<'_>> = Vec::with_capacity(parts.len());
    for part in parts {
        match part {
            Part::Text { text } if text.is_empty() => {}
            Part::Text { text } => match items.last_mut() {
                Some(Item::Message(run)) => run.push_str(text),
                _ => items.push(Item::Message(text.clone())),
            },
            Part::Reasoning(reasoning) => {
                if !reasoning.text.is_empty()
                    || reasoning.signature.is_some()
                    || reasoning.redacted.is_some()
                {
                    items.push(Item::Reasoning(reasoning));
                }
            }
            Part::ToolCall(call) => items.push(Item::Call(call)),
            // Models produce neither; nothing in an answer can be rendered for them.
            Part::Image(_) | Part::ToolResult(_) | Part::File(_) => {}
        }
    }
    items
}

/// A deterministic item id: the kind's prefix, a hash of the response id and the item's
/// position, so ids are unique within a response and equal in its stream and its snapshots.
pub(super) fn item_id(response_id: &str, prefix: &str, index: usize) -> String {
    let hash = crate::shared::stable_hash(response_id.as_bytes());
    format!("{prefix}_{hash:016x}{index:04x}")
}

/// The `call_id` a client sees: the call id, with the Gemini signature appended when there is
/// one (see [`crate::openai_chat::split_signature`]).
pub(super) fn call_id(call: &ToolCall) -> String {
    match &call.signature {
        Some(signature) => format!("{}{SIGNATURE_SEPARATOR}{signature}", call.id),
        None => call.id.clone(),
    }
}

/// Arguments as a client can parse them: a call without arguments has `{}`.
pub(super) fn arguments(arguments: &str) -> &str {
    if arguments.is_empty() {
        "{}"
    } else {
        arguments
    }
}

/// A reasoning part's `encrypted_content`, when it has something the vendor needs back:
/// OpenAI's own encrypted reasoning as issued; another vendor's redacted reasoning tagged with
/// its origin; a signature behind [`REASONING_SIGNATURE_PREFIX`], tagged unless Anthropic's
/// (see [`crate::neutral::tag_token`]).
pub(super) fn encrypted_content(
    signature: Option<&str>,
    redacted: Option<&str>,
    origin: Option<ReasoningOrigin>,
) -> Option<String> {
    match (redacted, signature) {
        (Some(redacted), _) => Some(tag_token(origin, ReasoningOrigin::OpenAi, redacted)),
        (None, Some(signature)) => Some(format!(
            "{REASONING_SIGNATURE_PREFIX}{}",
            tag_token(origin, ReasoningOrigin::Anthropic, signature)
        )),
        (None, None) => None,
    }
}

/// An `output_text` content part.
pub(super) fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

/// A `summary_text` content part.
pub(super) fn summary_text(text: &str) -> Value {
    json!({"type": "summary_text", "text": text})
}

/// A message item; `text` is `None` while it is in progress and has no content part yet.
pub(super) fn message_item(id: &str, status: &str, text: Option<&str>) -> Value {
    let content: Vec<Value> = text.map(output_text).into_iter().collect();
    json!({"type": "message", "id": id, "status": status, "role": "assistant", "content": content})
}

/// A reasoning item. The spec's `ReasoningBody` has no `status`, but every item must have one
/// (§C5) and extra keys are allowed, so it carries one too.
pub(super) fn reasoning_item(
    id: &str,
    status: &str,
    text: &str,
    encrypted_content: Option<String>,
) -> Value {
    let summary: Vec<Value> = if text.is_empty() {
        Vec::new()
    } else {
        vec![summary_text(text)]
    };
    let mut item = json!({"type": "reasoning", "id": id, "status": status, "summary": summary});
    if let Some(content) = encrypted_content {
        item["encrypted_content"] = Value::String(content);
    }
    item
}

/// A function call item; a call of a tool from a `namespace` tool gets the client's `name`
/// and `namespace` back.
pub(super) fn call_item(
    echo: &Echo,
    id: &str,
    status: &str,
    call: &ToolCall,
    arguments: &str,
) -> Value {
    let mut item = json!({
        "type": "function_call",
        "id": id,
        "call_id": call_id(call),
        "name": call.name,
        "arguments": arguments,
        "status": status,
    });
    if let Some(tool) = echo.namespaced(&call.name) {
        item["name"] = json!(tool.name);
        item["namespace"] = json!(tool.namespace);
    }
    item
}

/// Output items as JSON; the last one gets `last_status` (`incomplete` when the answer was cut
/// short), the others `completed`.
pub(super) fn items_json(
    echo: &Echo,
    items: &[Item<'_>],
    response_id: &str,
    last_status: &str,
) -> Vec<Value> {
    let last = items.len().saturating_sub(1);
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let status = if index == last {
                last_status
            } else {
                "completed"
            };
            match item {
                Item::Message(text) => {
                    message_item(&item_id(response_id, "msg", index), status, Some(text))
                }
                Item::Reasoning(reasoning) => reasoning_item(
                    &item_id(response_id, "rs", index),
                    status,
                    &reasoning.text,
                    encrypted_content(
                        reasoning.signature.as_deref(),
                        reasoning.redacted.as_deref(),
                        reasoning.origin,
                    ),
                ),
                Item::Call(call) => call_item(
                    echo,
                    &item_id(response_id, "fc", index),
                    status,
                    call,
                    arguments(&call.arguments),
                ),
            }
        })
        .collect()
}

/// How a finish reason ends a response (REFERENCE.md §D4).
pub(super) struct Ending {
    /// `completed`, `incomplete` or `failed`.
    pub status: &'static str,
    /// `incomplete_details.reason`.
    pub incomplete: Option<&'static str>,
    /// `error.code` and `error.message`.
    pub error: Option<(&'static str, &'static str)>,
}

impl Ending {
    /// `Paused` (Anthropic `pause_turn`) is incomplete with reason `pause_turn`: the spec's
    /// `IncompleteDetails.reason` is a free string, and `max_output_tokens` would send the
    /// client raising a limit that was not hit.
    pub(super) fn of(finish: &FinishReason) -> Self {
        let (status, incomplete, error) = match finish {
            FinishReason::Stop | FinishReason::ToolCalls => ("completed", None, None),
            FinishReason::Length => ("incomplete", Some("max_output_tokens"), None),
            FinishReason::ContentFilter => ("incomplete", Some("content_filter"), None),
            FinishReason::Paused => ("incomplete", Some("pause_turn"), None),
            FinishReason::ModelError => {
                ("failed", None, Some(("model_error", MODEL_ERROR_MESSAGE)))
            }
        };
        Self {
            status,
            incomplete,
            error,
        }
    }

    /// The status of the last output item: an answer cut short ends with an incomplete item.
    pub(super) fn last_item_status(&self) -> &'static str {
        if self.status == "incomplete" {
            "incomplete"
        } else {
            "completed"
        }
    }
}

/// Everything in a resource that is not echoed from the request.
pub(super) struct Outcome<'a> {
    pub status: &'a str,
    pub output: Vec<Value>,
    pub error: Option<(&'a str, &'a str)>,
    pub incomplete: Option<&'a str>,
    pub usage: Option<&'a Usage>,
    pub completed_at: Option<u64>,
}

/// A `ResponseResource` with every required key of §C4 present (null where there is no value
/// and the schema allows it; the spec's defaults otherwise).
pub(super) fn resource(echo: &Echo, meta: &Meta, outcome: Outcome<'_>) -> Value {
    let mut r = Map::new();
    let mut put = |key: &str, value: Value| {
        r.insert(key.to_owned(), value);
    };
    put("id", json!(meta.id));
    put("object", json!("response"));
    put("created_at", json!(meta.created_at));
    put("completed_at", json!(outcome.completed_at));
    put("status", json!(outcome.status));
    put(
        "incomplete_details",
        outcome
            .incomplete
            .map_or(Value::Null, |reason| json!({"reason": reason})),
    );
    put("model", json!(meta.model));
    put("previous_response_id", json!(echo.previous_response_id));
    put("instructions", json!(echo.instructions));
    put("output", Value::Array(outcome.output));
    put(
        "error",
        outcome.error.map_or(
            Value::Null,
            |(code, message)| json!({"code": code, "message": message}),
        ),
    );
    put("tools", Value::Array(echo.tools.clone()));
    put(
        "tool_choice",
        echo.tool_choice.clone().unwrap_or_else(|| json!("auto")),
    );
    put(
        "truncation",
        json!(echo.truncation.as_deref().unwrap_or("disabled")),
    );
    put(
        "parallel_tool_calls",
        json!(echo.parallel_tool_calls.unwrap_or(true)),
    );
    put(
        "text",
        echo.text
            .clone()
            .unwrap_or_else(|| json!({"format": {"type": "text"}})),
    );
    put("top_p", json!(echo.top_p.unwrap_or(1.0)));
    put(
        "presence_penalty",
        json!(echo.presence_penalty.unwrap_or(0.0)),
    );
    put(
        "frequency_penalty",
        json!(echo.frequency_penalty.unwrap_or(0.0)),
    );
    put("top_logprobs", json!(echo.top_logprobs.unwrap_or(0)));
    put("temperature", json!(echo.temperature.unwrap_or(1.0)));
    put("reasoning", echo.reasoning.clone().unwrap_or(Value::Null));
    put("user", json!(echo.user));
    put("usage", outcome.usage.map_or(Value::Null, usage_json));
    put("max_output_tokens", json!(echo.max_output_tokens));
    put("max_tool_calls", json!(echo.max_tool_calls));
    put("store", json!(echo.store.unwrap_or(true)));
    // llmux refuses background requests, and runs every request on the default tier.
    put("background", json!(false));
    put("service_tier", json!("default"));
    put("metadata", Value::Object(echo.metadata.clone()));
    put("safety_identifier", json!(echo.safety_identifier));
    put("prompt_cache_key", json!(echo.prompt_cache_key));
    Value::Object(r)
}

fn usage_json(usage: &Usage) -> Value {
    json!({
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_input_tokens.unwrap_or(0)},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens.unwrap_or(0)},
        "total_tokens": usage.total(),
    })
}

/// A complete `ResponseResource` for a finished answer: `completed`, `incomplete` with
/// `incomplete_details`, or `failed` with `error` (REFERENCE.md §D4). `completed_at` is
/// `meta.completed_at`, or `created_at` when the caller has none: only a response in progress
/// may have a null `completed_at`.
pub fn encode_response(response: &neutral::Response, echo: &Echo, meta: &Meta) -> Value {
    let ending = Ending::of(&response.finish);
    let output = items_json(
        echo,
        &items(&response.parts),
        &meta.id,
        ending.last_item_status(),
    );
    resource(
        echo,
        meta,
        Outcome {
            status: ending.status,
            output,
            error: ending.error,
            incomplete: ending.incomplete,
            usage: response.usage.as_ref(),
            completed_at: Some(meta.completed_at.unwrap_or(meta.created_at)),
        },
    )
}

/// A `ResponseResource` for a failure before any output: status `failed`, `error` `{code,
/// message}`, no output, no usage.
pub fn encode_failed(echo: &Echo, meta: &Meta, code: &str, message: &str) -> Value {
    resource(
        echo,
        meta,
        Outcome {
            status: "failed",
            output: Vec::new(),
            error: Some((code, message)),
            incomplete: None,
            usage: None,
            completed_at: Some(meta.completed_at.unwrap_or(meta.created_at)),
        },
    )
}

/// The answer as the conversation store keeps it: one assistant message whose parts are the
/// output items read back (reasoning with its signature or redacted data, text, tool calls with
/// their signatures), in output order, so a stored conversation replays to any vendor exactly
/// as a client resending the items would. Empty when the answer produced no item.
pub fn output_messages(response: &neutral::Response) -> Vec<Message> {
    let parts: Vec<Part> = items(&response.parts)
        .into_iter()
        .map(|item| match item {
            Item::Reasoning(reasoning) => Part::Reasoning(reasoning.clone()),
            Item::Message(text) => Part::Text { text },
            Item::Call(call) => Part::ToolCall(ToolCall {
                arguments: arguments(&call.arguments).to_owned(),
                ..call.clone()
            }),
        })
        .collect();
    if parts.is_empty() {
        Vec::new()
    } else {
        vec![Message {
            role: Role::Assistant,
            parts,
        }]
    }
}

//! OpenAI Chat Completions ⇄ the neutral model: the cross-protocol path. (The same-protocol
//! path in the parent module never comes here.)
//!
//! Gemini's `thoughtSignature` has no field in OpenAI's format. llmux returns it twice on each
//! tool call: as `extra_content.google.thought_signature` (Google's own OpenAI-compatible
//! convention) and appended to the call id after [`SIGNATURE_SEPARATOR`], because every client
//! sends ids back even when it drops unknown fields. Either one brings it back on the next turn.

use std::borrow::Cow;
use std::collections::HashMap;

use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{InvalidRequest, describe_error, require_object};
use crate::error::{ErrorKind, GatewayError};
use crate::neutral::{
    self, DecodeError, FinishReason, Image, ImageSource, Message, Part, ReasoningConfig,
    ResponseFormat, Role, StreamEvent, Tool, ToolCall, ToolChoice, ToolResult, Usage,
};
use crate::sse;

/// Separates a tool-call id from the Gemini thought signature appended to it.
pub const SIGNATURE_SEPARATOR: &str = "__ts__";

#[derive(Deserialize)]
struct RawRequest {
    #[serde(default)]
    model: Option<String>,
    messages: Option<Vec<RawMessage>>,
    #[serde(default)]
    tools: Option<Vec<RawTool>>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<u32>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    stop: Option<StringOrList>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default)]
    presence_penalty: Option<f64>,
    #[serde(default)]
    frequency_penalty: Option<f64>,
    #[serde(default)]
    response_format: Option<Value>,
    #[serde(default)]
    reasoning_effort: Option<String>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    logprobs: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrList {
    One(String),
    Many(Vec<String>),
}

#[derive(Deserialize)]
struct RawMessage {
    role: String,
    #[serde(default)]
    content: Option<RawContent>,
    #[serde(default)]
    tool_calls: Option<Vec<RawToolCall>>,
    #[serde(default)]
    tool_call_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawContent {
    Text(String),
    Parts(Vec<RawPart>),
}

#[derive(Deserialize)]
struct RawPart {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    image_url: Option<RawImageUrl>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawImageUrl {
    Object { url: String, detail: Option<String> },
    Url(String),
}

#[derive(Deserialize)]
struct RawToolCall {
    id: Option<String>,
    function: RawFunction,
    #[serde(default)]
    extra_content: Option<Value>,
}

#[derive(Deserialize)]
struct RawFunction {
    name: String,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct RawTool {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    function: Option<RawToolFunction>,
}

#[derive(Deserialize)]
struct RawToolFunction {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
}

fn invalid(message: impl Into<String>, param: &str) -> InvalidRequest {
    InvalidRequest {
        message: message.into(),
        param: Some(param.to_owned()),
    }
}

/// Splits `call_x__ts__SIG` into the id and the signature.
pub fn split_signature(id: &str) -> (&str, Option<&str>) {
    match id.split_once(SIGNATURE_SEPARATOR) {
        Some((id, signature)) if !signature.is_empty() => (id, Some(signature)),
        _ => (id, None),
    }
}

fn join_signature(id: &str, signature: Option<&str>) -> String {
    match signature {
        Some(signature) => format!("{id}{SIGNATURE_SEPARATOR}{signature}"),
        None => id.to_owned(),
    }
}

/// A Chat Completions request → neutral, for a vendor that speaks another protocol. Everything
/// the neutral model can carry is kept; what no other vendor can do (`n > 1`, `logprobs`, audio
/// and file parts) is refused with a 400 rather than silently dropped.
pub fn decode_neutral_request(body: &[u8]) -> Result<neutral::Request, InvalidRequest> {
    require_object(body)?;
    let raw: RawRequest =
        serde_json::from_slice(body).map_err(|_| describe_error::<RawRequest>(body))?;
    let raw_messages = raw
        .messages
        .ok_or_else(|| invalid("missing required field 'messages'", "messages"))?;
    if raw_messages.is_empty() {
        return Err(invalid(
            "'messages' must contain at least one message",
            "messages",
        ));
    }
    if raw.n.is_some_and(|n| n > 1) {
        return Err(invalid(
            "'n' greater than 1 is only supported by OpenAI-compatible vendors",
            "n",
        ));
    }
    if raw.logprobs == Some(true) {
        return Err(invalid(
            "'logprobs' is only supported by OpenAI-compatible vendors",
            "logprobs",
        ));
    }
    let mut request = neutral::Request {
        model: raw.model.unwrap_or_default(),
        stream: raw.stream.unwrap_or(false),
        user: raw.user,
        parallel_tool_calls: raw.parallel_tool_calls,
        ..neutral::Request::default()
    };
    for (i, message) in raw_messages.into_iter().enumerate() {
        decode_message(i, message, &mut request)?;
    }
    for (i, tool) in raw.tools.unwrap_or_default().into_iter().enumerate() {
        match (tool.kind.as_str(), tool.function) {
            ("function", Some(f)) => request.tools.push(Tool {
                name: f.name,
                description: f.description,
                parameters: f.parameters,
                strict: f.strict,
            }),
            (kind, _) => {
                return Err(invalid(
                    format!("tool type '{kind}' is not supported"),
                    &format!("tools[{i}]"),
                ));
            }
        }
    }
    request.tool_choice = raw.tool_choice.map(decode_tool_choice).transpose()?;
    request.sampling = neutral::Sampling {
        temperature: raw.temperature,
        top_p: raw.top_p,
        top_k: raw.top_k,
        max_tokens: raw.max_completion_tokens.or(raw.max_tokens),
        stop: match raw.stop {
            None => Vec::new(),
            Some(StringOrList::One(s)) => vec![s],
            Some(StringOrList::Many(v)) => v,
        },
        seed: raw.seed,
        presence_penalty: raw.presence_penalty,
        frequency_penalty: raw.frequency_penalty,
    };
    request.response_format = raw
        .response_format
        .map(decode_response_format)
        .transpose()?;
    request.reasoning = raw.reasoning_effort.map(|effort| ReasoningConfig {
        effort: Some(effort),
        budget_tokens: None,
    });
    Ok(request)
}

fn decode_message(
    index: usize,
    message: RawMessage,
    request: &mut neutral::Request,
) -> Result<(), InvalidRequest> {
    let param = format!("messages[{index}]");
    let text_of = |content: Option<RawContent>| -> Result<String, InvalidRequest> {
        Ok(match content {
            None => String::new(),
            Some(RawContent::Text(t)) => t,
            Some(RawContent::Parts(parts)) => parts
                .into_iter()
                .filter_map(|p| p.text)
                .collect::<Vec<_>>()
                .join(""),
        })
    };
    match message.role.as_str() {
        "system" | "developer" => {
            let text = text_of(message.content)?;
            if !text.is_empty() {
                request.system.push(text);
            }
        }
        "user" => {
            let parts = decode_parts(message.content, &param)?;
            request.messages.push(Message {
                role: Role::User,
                parts,
            });
        }
        "assistant" => {
            let mut parts = Vec::new();
            if let Some(reasoning) = message.reasoning_content.filter(|r| !r.is_empty()) {
                parts.push(Part::Reasoning(neutral::Reasoning {
                    text: reasoning,
                    signature: None,
                    redacted: None,
                }));
            }
            parts.extend(decode_parts(message.content, &param)?);
            for call in message.tool_calls.unwrap_or_default() {
                let id = call.id.unwrap_or_default();
                let (id, id_signature) = split_signature(&id);
                let extra_signature = call
                    .extra_content
                    .as_ref()
                    .and_then(|e| e.pointer("/google/thought_signature"))
                    .and_then(Value::as_str);
                parts.push(Part::ToolCall(ToolCall {
                    id: id.to_owned(),
                    name: call.function.name,
                    arguments: call.function.arguments.unwrap_or_default(),
                    signature: extra_signature.or(id_signature).map(str::to_owned),
                }));
            }
            request.messages.push(Message {
                role: Role::Assistant,
                parts,
            });
        }
        "tool" | "function" => {
            let call_id = message.tool_call_id.ok_or_else(|| {
                invalid(
                    "a tool message needs 'tool_call_id'",
                    &format!("{param}.tool_call_id"),
                )
            })?;
            let (call_id, _) = split_signature(&call_id);
            let content = text_of(message.content)?;
            request.messages.push(Message {
                role: Role::Tool,
                parts: vec![Part::ToolResult(ToolResult {
                    call_id: call_id.to_owned(),
                    name: message.name,
                    content,
                    is_error: false,
                })],
            });
        }
        other => {
            return Err(invalid(
                format!("unknown role '{other}'"),
                &format!("{param}.role"),
            ));
        }
    }
    Ok(())
}

fn decode_parts(content: Option<RawContent>, param: &str) -> Result<Vec<Part>, InvalidRequest> {
    let parts = match content {
        None => return Ok(Vec::new()),
        Some(RawContent::Text(text)) => {
            return Ok(if text.is_empty() {
                Vec::new()
            } else {
                vec![Part::text(text)]
            });
        }
        Some(RawContent::Parts(parts)) => parts,
    };
    let mut out = Vec::with_capacity(parts.len());
    for (i, part) in parts.into_iter().enumerate() {
        match part.kind.as_str() {
            "text" | "input_text" => {
                if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                    out.push(Part::text(text));
                }
            }
            "image_url" => {
                let (url, detail) = match part.image_url {
                    Some(RawImageUrl::Object { url, detail }) => (url, detail),
                    Some(RawImageUrl::Url(url)) => (url, None),
                    None => {
                        return Err(invalid(
                            "an image_url part needs 'image_url.url'",
                            &format!("{param}.content[{i}]"),
                        ));
                    }
                };
                out.push(Part::Image(Image {
                    source: ImageSource::from_url(&url),
                    detail,
                }));
            }
            other => {
                return Err(invalid(
                    format!("content part type '{other}' is not supported by this vendor"),
                    &format!("{param}.content[{i}]"),
                ));
            }
        }
    }
    Ok(out)
}

fn decode_tool_choice(value: Value) -> Result<ToolChoice, InvalidRequest> {
    match &value {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(ToolChoice::Auto),
            "none" => Ok(ToolChoice::None),
            "required" => Ok(ToolChoice::Required),
            _ => Err(invalid(
                "'tool_choice' must be 'none', 'auto', 'required' or a function object",
                "tool_choice",
            )),
        },
        _ => value
            .pointer("/function/name")
            .and_then(Value::as_str)
            .map(|name| ToolChoice::Named(name.to_owned()))
            .ok_or_else(|| invalid("'tool_choice' object needs 'function.name'", "tool_choice")),
    }
}

fn decode_response_format(value: Value) -> Result<ResponseFormat, InvalidRequest> {
    match value.get("type").and_then(Value::as_str) {
        Some("text") => Ok(ResponseFormat::Text),
        Some("json_object") => Ok(ResponseFormat::JsonObject),
        Some("json_schema") => {
            let spec = value.get("json_schema").cloned().unwrap_or(Value::Null);
            Ok(ResponseFormat::JsonSchema {
                name: spec
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("response")
                    .to_owned(),
                schema: spec
                    .get("schema")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object"})),
                strict: spec.get("strict").and_then(Value::as_bool),
            })
        }
        _ => Err(invalid(
            "'response_format.type' must be text, json_object or json_schema",
            "response_format",
        )),
    }
}

/// neutral → a Chat Completions request body (for the Responses and Messages ingress APIs
/// served by OpenAI-compatible vendors).
///
/// Serialized from borrowed structs, not a JSON tree: the body is the only copy of the
/// conversation this makes.
pub fn encode_neutral_request(request: &neutral::Request) -> Vec<u8> {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if !request.system.is_empty() {
        messages.push(OutMessage {
            role: "system",
            content: OutContent::Text(Cow::Owned(request.system.join("\n\n"))),
            tool_calls: Vec::new(),
            tool_call_id: None,
        });
    }
    for message in &request.messages {
        match message.role {
            Role::User => messages.push(OutMessage {
                role: "user",
                content: user_content(&message.parts),
                tool_calls: Vec::new(),
                tool_call_id: None,
            }),
            Role::Assistant => {
                let mut texts = message.parts.iter().filter_map(|p| match p {
                    Part::Text { text } => Some(text.as_str()),
                    _ => None,
                });
                // One text part (the usual case) is borrowed, several are joined.
                let text: Cow<'_, str> = match (texts.next(), texts.next()) {
                    (None, _) => Cow::Borrowed(""),
                    (Some(only), None) => Cow::Borrowed(only),
                    (Some(first), Some(second)) => {
                        let mut joined = format!("{first}{second}");
                        joined.extend(texts);
                        Cow::Owned(joined)
                    }
                };
                let tool_calls = message
                    .parts
                    .iter()
                    .filter_map(|p| match p {
                        Part::ToolCall(call) => Some(OutToolCall::new(call)),
                        _ => None,
                    })
                    .collect();
                messages.push(OutMessage {
                    role: "assistant",
                    content: if text.is_empty() {
                        OutContent::Null
                    } else {
                        OutContent::Text(text)
                    },
                    tool_calls,
                    tool_call_id: None,
                });
            }
            Role::Tool => {
                for part in &message.parts {
                    if let Part::ToolResult(result) = part {
                        messages.push(OutMessage {
                            role: "tool",
                            content: OutContent::Text(Cow::Borrowed(&result.content)),
                            tool_calls: Vec::new(),
                            tool_call_id: Some(&result.call_id),
                        });
                    }
                }
            }
        }
    }
    let s = &request.sampling;
    let body = OutRequest {
        model: &request.model,
        messages,
        temperature: s.temperature,
        top_p: s.top_p,
        max_completion_tokens: s.max_tokens,
        seed: s.seed,
        presence_penalty: s.presence_penalty,
        frequency_penalty: s.frequency_penalty,
        parallel_tool_calls: request.parallel_tool_calls,
        user: request.user.as_deref(),
        stop: &s.stop,
        tools: request
            .tools
            .iter()
            .map(|t| OutTool {
                kind: "function",
                function: OutFunction {
                    name: &t.name,
                    description: t.description.as_deref(),
                    parameters: t.parameters.as_ref(),
                    strict: t.strict,
                },
            })
            .collect(),
        tool_choice: request.tool_choice.as_ref().map(|choice| match choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Named(name) => json!({"type": "function", "function": {"name": name}}),
        }),
        response_format: request.response_format.as_ref().map(|format| match format {
            ResponseFormat::Text => OutFormat::Text,
            ResponseFormat::JsonObject => OutFormat::JsonObject,
            ResponseFormat::JsonSchema {
                name,
                schema,
                strict,
            } => OutFormat::JsonSchema {
                json_schema: OutSchema {
                    name,
                    schema,
                    strict: *strict,
                },
            },
        }),
        reasoning_effort: request.reasoning.as_ref().and_then(|r| r.effort.as_deref()),
        stream: request.stream.then_some(true),
        stream_options: request.stream.then_some(StreamOptions {
            include_usage: true,
        }),
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

#[derive(Serialize)]
struct OutRequest<'a> {
    model: &'a str,
    messages: Vec<OutMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<OutTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<OutFormat<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
}

#[derive(Serialize)]
struct OutMessage<'a> {
    role: &'static str,
    content: OutContent<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<OutToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum OutContent<'a> {
    Null,
    Text(Cow<'a, str>),
    Parts(Vec<OutPart<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutPart<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: OutImageUrl<'a> },
}

#[derive(Serialize)]
struct OutImageUrl<'a> {
    url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

#[derive(Serialize)]
struct OutToolCall<'a> {
    id: Cow<'a, str>,
    #[serde(rename = "type")]
    kind: &'static str,
    function: OutCallFunction<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    extra_content: Option<Value>,
}

impl<'a> OutToolCall<'a> {
    fn new(call: &'a ToolCall) -> Self {
        Self {
            id: match &call.signature {
                Some(signature) => Cow::Owned(join_signature(&call.id, Some(signature))),
                None => Cow::Borrowed(&call.id),
            },
            kind: "function",
            function: OutCallFunction {
                name: &call.name,
                arguments: &call.arguments,
            },
            extra_content: call
                .signature
                .as_ref()
                .map(|signature| json!({"google": {"thought_signature": signature}})),
        }
    }
}

#[derive(Serialize)]
struct OutCallFunction<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct OutTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: OutFunction<'a>,
}

#[derive(Serialize)]
struct OutFunction<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutFormat<'a> {
    Text,
    JsonObject,
    JsonSchema { json_schema: OutSchema<'a> },
}

#[derive(Serialize)]
struct OutSchema<'a> {
    name: &'a str,
    schema: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// A user turn's content: a string for one text part, parts otherwise.
fn user_content(parts: &[Part]) -> OutContent<'_> {
    if let [Part::Text { text }] = parts {
        return OutContent::Text(Cow::Borrowed(text));
    }
    OutContent::Parts(
        parts
            .iter()
            .filter_map(|p| match p {
                Part::Text { text } => Some(OutPart::Text { text }),
                Part::Image(image) => Some(OutPart::ImageUrl {
                    image_url: OutImageUrl {
                        url: image.source.to_url(),
                        detail: image.detail.as_deref(),
                    },
                }),
                _ => None,
            })
            .collect(),
    )
}

fn tool_call_json(call: &ToolCall, index: Option<usize>) -> Value {
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

fn usage_json(usage: &Usage) -> Value {
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

fn completion_id(vendor_id: &str) -> String {
    if vendor_id.is_empty() {
        "chatcmpl-llmux".to_owned()
    } else if vendor_id.starts_with("chatcmpl-") {
        vendor_id.to_owned()
    } else {
        format!("chatcmpl-{vendor_id}")
    }
}

/// Neutral stream events → Chat Completions chunks (`data: {...}` frames, then `[DONE]`).
#[derive(Debug)]
pub struct ChunkEncoder {
    id: String,
    created: u64,
    model: String,
    client_wants_usage: bool,
    role_sent: bool,
    finished: bool,
    done: bool,
    usage: Option<Usage>,
}

impl ChunkEncoder {
    /// An encoder for one answer. `client_wants_usage` is the client's
    /// `stream_options.include_usage`: the usage chunk is sent only then.
    pub fn new(created: u64, client_model: &str, client_wants_usage: bool) -> Self {
        Self {
            id: completion_id(""),
            created,
            model: client_model.to_owned(),
            client_wants_usage,
            role_sent: false,
            finished: false,
            done: false,
            usage: None,
        }
    }

    /// Usage seen so far.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Whether a finish reason has been sent.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn chunk(&self, out: &mut BytesMut, delta: Value, finish: Option<&str>) {
        let body = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        sse::encode_event(out, None, &serde_json::to_vec(&body).unwrap_or_default());
    }

    fn ensure_role(&mut self, out: &mut BytesMut) {
        if !self.role_sent {
            self.role_sent = true;
            self.chunk(out, json!({"role": "assistant", "content": ""}), None);
        }
    }

    /// Appends the chunks for one event.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut BytesMut) {
        if self.done {
            return;
        }
        match event {
            StreamEvent::Start { id, .. } => {
                if !id.is_empty() {
                    self.id = completion_id(id);
                }
                self.ensure_role(out);
            }
            StreamEvent::TextDelta { text } if !text.is_empty() => {
                self.ensure_role(out);
                self.chunk(out, json!({"content": text}), None);
            }
            StreamEvent::ReasoningDelta { text, .. } if !text.is_empty() => {
                self.ensure_role(out);
                self.chunk(out, json!({"reasoning_content": text}), None);
            }
            StreamEvent::ToolCallStart {
                index,
                id,
                name,
                signature,
            } => {
                self.ensure_role(out);
                let call = ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                    signature: signature.clone(),
                };
                self.chunk(
                    out,
                    json!({"tool_calls": [tool_call_json(&call, Some(*index))]}),
                    None,
                );
            }
            StreamEvent::ToolCallDelta { index, arguments } if !arguments.is_empty() => {
                self.chunk(
                    out,
                    json!({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]}),
                    None,
                );
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
            StreamEvent::Finish { reason } if !self.finished => {
                self.ensure_role(out);
                self.finished = true;
                self.chunk(out, json!({}), Some(reason.openai()));
            }
            StreamEvent::Error { kind, message } => {
                let error = GatewayError::new(*kind, message.clone());
                sse::encode_event(out, None, &error.to_openai_json());
                out.extend_from_slice(sse::DONE_FRAME);
                self.done = true;
            }
            _ => {}
        }
    }

    /// Ends the stream: the usage chunk (when asked for and known), then `[DONE]`.
    pub fn finish(&mut self, out: &mut BytesMut) {
        if self.done {
            return;
        }
        self.done = true;
        if self.client_wants_usage
            && let Some(usage) = &self.usage
        {
            let body = json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "choices": [], "usage": usage_json(usage),
            });
            sse::encode_event(out, None, &serde_json::to_vec(&body).unwrap_or_default());
        }
        out.extend_from_slice(sse::DONE_FRAME);
    }

    /// Ends the stream with an error event and `[DONE]` (upstream failed mid-stream).
    pub fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut BytesMut) {
        self.encode(
            &StreamEvent::Error {
                kind,
                message: message.to_owned(),
            },
            out,
        );
    }
}

#[derive(Deserialize)]
struct RawResponse {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    choices: Vec<RawChoice>,
    #[serde(default)]
    usage: Option<RawUsage>,
}

#[derive(Deserialize)]
struct RawChoice {
    #[serde(default)]
    message: Option<RawResponseMessage>,
    #[serde(default)]
    delta: Option<RawResponseMessage>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawResponseMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<RawResponseToolCall>>,
}

#[derive(Deserialize)]
struct RawResponseToolCall {
    #[serde(default)]
    index: Option<usize>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<RawResponseFunction>,
    #[serde(default)]
    extra_content: Option<Value>,
}

#[derive(Deserialize)]
struct RawResponseFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct RawUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<Value>,
    #[serde(default)]
    completion_tokens_details: Option<Value>,
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

fn decode_finish(reason: Option<&str>, has_calls: bool) -> FinishReason {
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
            signature: None,
            redacted: None,
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
fn call_identity(
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

/// Chat Completions stream chunks → neutral events (for the Responses and Messages ingress APIs
/// served by OpenAI-compatible vendors). Tolerates Gemini-compat quirks: missing or null
/// `index`, empty ids.
#[derive(Debug)]
pub struct ChunkDecoder {
    started: bool,
    id_seed: u64,
    /// Vendor tool index → our index, in order of first appearance.
    tools: HashMap<usize, usize>,
    finish: Option<FinishReason>,
}

impl ChunkDecoder {
    /// A decoder for one stream; `id_seed` seeds ids synthesized for calls without one.
    pub fn new(id_seed: u64) -> Self {
        Self {
            started: false,
            id_seed,
            tools: HashMap::new(),
            finish: None,
        }
    }

    /// Decodes one SSE event. `[DONE]` yields the pending finish.
    pub fn decode(&mut self, event: &sse::Event) -> Result<Vec<StreamEvent>, DecodeError> {
        let mut out = Vec::new();
        if event.is_done_marker() {
            return Ok(out);
        }
        let value: Value = serde_json::from_slice(&event.data)?;
        if let Some(error) = value.get("error") {
            out.push(StreamEvent::Error {
                kind: ErrorKind::UpstreamProtocol,
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("upstream stream error")
                    .to_owned(),
            });
            return Ok(out);
        }
        let raw: RawResponse = serde_json::from_value(value)?;
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: raw.id.clone(),
                model: raw.model.clone(),
            });
        }
        for choice in raw.choices.into_iter().take(1) {
            let delta = choice.delta.unwrap_or_default();
            if let Some(text) = delta.reasoning_content.filter(|t| !t.is_empty()) {
                out.push(StreamEvent::ReasoningDelta {
                    text,
                    signature: None,
                });
            }
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                out.push(StreamEvent::TextDelta { text });
            }
            for (position, call) in delta.tool_calls.unwrap_or_default().into_iter().enumerate() {
                let vendor_index = call.index.unwrap_or(position);
                let starts = call
                    .function
                    .as_ref()
                    .and_then(|f| f.name.as_ref())
                    .is_some_and(|n| !n.is_empty());
                let index = match self.tools.get(&vendor_index) {
                    Some(&index) if !starts || call.index.is_some() => index,
                    _ => {
                        let index = self.tools.len();
                        self.tools.insert(vendor_index, index);
                        let (id, signature) = call_identity(&call, self.id_seed, index);
                        let name = call
                            .function
                            .as_ref()
                            .and_then(|f| f.name.clone())
                            .unwrap_or_default();
                        out.push(StreamEvent::ToolCallStart {
                            index,
                            id,
                            name,
                            signature,
                        });
                        index
                    }
                };
                if let Some(arguments) = call
                    .function
                    .and_then(|f| f.arguments)
                    .filter(|a| !a.is_empty())
                {
                    out.push(StreamEvent::ToolCallDelta { index, arguments });
                }
            }
            if let Some(reason) = choice.finish_reason {
                let reason = decode_finish(Some(&reason), !self.tools.is_empty());
                self.finish = Some(reason.clone());
                out.push(StreamEvent::Finish { reason });
            }
        }
        if let Some(usage) = raw.usage {
            out.push(StreamEvent::Usage(usage.into()));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;

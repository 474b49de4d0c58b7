//! Chat Completions requests ⇄ the neutral model: [`decode_neutral_request`] reads a client's
//! body for a vendor that speaks another protocol, [`encode_neutral_request`] writes one for an
//! OpenAI-compatible vendor serving another ingress.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{InvalidRequest, describe_error, join_signature, require_object, split_signature};
use crate::neutral::{
    self, CacheMark, CacheSpot, FileKind, Image, ImageSource, Message, Part, ReasoningConfig,
    ResponseFormat, Role, Tool, ToolCall, ToolChoice, ToolResult,
};

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
    /// Anthropic prompt caching on the whole message (as LiteLLM and OpenRouter accept it):
    /// a breakpoint on its last part.
    #[serde(default)]
    cache_control: Option<RawCacheControl>,
}

/// Anthropic's `cache_control: {"type": "ephemeral", "ttl"?: "5m" | "1h"}`.
#[derive(Deserialize)]
struct RawCacheControl {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    ttl: Option<String>,
}

impl RawCacheControl {
    /// The breakpoint's ttl, or an error naming `param` for a shape Anthropic would refuse.
    fn ttl(self, param: &str) -> Result<Option<String>, InvalidRequest> {
        if self.kind != "ephemeral" {
            return Err(invalid(
                format!(
                    "cache_control type '{}' is not supported (ephemeral)",
                    self.kind
                ),
                &format!("{param}.cache_control"),
            ));
        }
        match self.ttl.as_deref() {
            None | Some("5m" | "1h") => Ok(self.ttl),
            Some(other) => Err(invalid(
                format!("cache_control ttl '{other}' is not supported (5m, 1h)"),
                &format!("{param}.cache_control.ttl"),
            )),
        }
    }
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
    /// `file` parts: `{file_data | file_id, filename}`.
    #[serde(default)]
    file: Option<RawFile>,
    /// The original router's `file_url` parts.
    #[serde(default)]
    file_url: Option<RawImageUrl>,
    /// The original router's `audio_url` parts.
    #[serde(default)]
    audio_url: Option<RawImageUrl>,
    #[serde(default)]
    input_audio: Option<RawInputAudio>,
    #[serde(default)]
    cache_control: Option<RawCacheControl>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawImageUrl {
    Object {
        url: String,
        #[serde(default)]
        detail: Option<String>,
        /// The original router's per-part download headers.
        #[serde(default)]
        headers: Option<std::collections::BTreeMap<String, String>>,
    },
    Url(String),
}

impl RawImageUrl {
    fn into_url(self) -> String {
        match self {
            Self::Object { url, .. } | Self::Url(url) => url,
        }
    }
}

#[derive(Deserialize)]
struct RawFile {
    #[serde(default)]
    file_data: Option<String>,
    #[serde(default)]
    file_id: Option<String>,
    #[serde(default)]
    filename: Option<String>,
}

#[derive(Deserialize)]
struct RawInputAudio {
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    format: Option<String>,
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
    /// Anthropic prompt caching on a tool, beside `function` (LiteLLM's place) or inside it.
    #[serde(default)]
    cache_control: Option<RawCacheControl>,
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
    #[serde(default)]
    cache_control: Option<RawCacheControl>,
}

fn invalid(message: impl Into<String>, param: &str) -> InvalidRequest {
    InvalidRequest {
        message: message.into(),
        param: Some(param.to_owned()),
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
            ("function", Some(mut f)) => {
                if let Some(cache) = tool.cache_control.or(f.cache_control.take()) {
                    request.cache_marks.push(CacheMark {
                        at: CacheSpot::Tool(request.tools.len()),
                        ttl: cache.ttl(&format!("tools[{i}]"))?,
                    });
                }
                request.tools.push(Tool {
                    name: f.name,
                    description: f.description,
                    parameters: f.parameters,
                    strict: f.strict,
                });
            }
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
    // Breakpoints on this message's parts (by part index), then one on the whole message.
    let mut marks: Vec<(usize, Option<String>)> = Vec::new();
    let message_mark = message.cache_control.map(|c| c.ttl(&param)).transpose()?;
    let text_of = |content: Option<RawContent>,
                   marks: &mut Vec<(usize, Option<String>)>|
     -> Result<String, InvalidRequest> {
        Ok(match content {
            None => String::new(),
            Some(RawContent::Text(t)) => t,
            Some(RawContent::Parts(parts)) => {
                let mut text = String::new();
                for (i, part) in parts.into_iter().enumerate() {
                    if let Some(cache) = part.cache_control {
                        marks.push((0, cache.ttl(&format!("{param}.content[{i}]"))?));
                    }
                    text.extend(part.text);
                }
                text
            }
        })
    };
    let message_at = request.messages.len();
    match message.role.as_str() {
        "system" | "developer" => {
            let text = text_of(message.content, &mut marks)?;
            if !text.is_empty() {
                // The instruction is one block: a mark on any of its parts marks it.
                if let Some((_, ttl)) = marks.pop().or(message_mark.map(|ttl| (0, ttl))) {
                    request.cache_marks.push(CacheMark {
                        at: CacheSpot::System(request.system.len()),
                        ttl,
                    });
                }
                request.system.push(text);
            }
            return Ok(());
        }
        "user" => {
            let parts = decode_parts(
                message.content,
                &param,
                &mut request.url_headers,
                &mut marks,
            )?;
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
                    ..neutral::Reasoning::default()
                }));
            }
            let first = parts.len();
            parts.extend(decode_parts(
                message.content,
                &param,
                &mut request.url_headers,
                &mut marks,
            )?);
            for (part, _) in &mut marks {
                *part += first;
            }
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
            let content = text_of(message.content, &mut marks)?;
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
    let parts = request
        .messages
        .get(message_at)
        .map_or(0, |m| m.parts.len());
    if let (Some(ttl), Some(last)) = (message_mark, parts.checked_sub(1)) {
        marks.push((last, ttl));
    }
    for (part, ttl) in marks {
        if part < parts {
            request.cache_marks.push(CacheMark {
                at: CacheSpot::Part {
                    message: message_at,
                    part,
                },
                ttl,
            });
        }
    }
    Ok(())
}

/// The parts of a message's content. A part's `cache_control` becomes a breakpoint in `marks`
/// (by index into the returned parts).
fn decode_parts(
    content: Option<RawContent>,
    param: &str,
    url_headers: &mut Vec<neutral::UrlHeaders>,
    marks: &mut Vec<(usize, Option<String>)>,
) -> Result<Vec<Part>, InvalidRequest> {
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
    for (i, mut part) in parts.into_iter().enumerate() {
        let cache = part.cache_control.take();
        let before = out.len();
        match part.kind.as_str() {
            "text" | "input_text" => {
                if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                    out.push(Part::text(text));
                }
            }
            "image_url" => {
                let (url, detail) = match part.image_url {
                    Some(RawImageUrl::Object {
                        url,
                        detail,
                        headers,
                    }) => {
                        if let Some(headers) = headers.filter(|h| !h.is_empty()) {
                            url_headers.push(neutral::UrlHeaders {
                                url: url.clone(),
                                headers: headers.into_iter().collect(),
                            });
                        }
                        (url, detail)
                    }
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
            "file" => out.push(decode_file(part.file, &format!("{param}.content[{i}]"))?),
            "file_url" | "audio_url" => {
                let audio = part.kind == "audio_url";
                let url = if audio { part.audio_url } else { part.file_url }
                    .map(RawImageUrl::into_url)
                    .filter(|u| !u.is_empty())
                    .ok_or_else(|| {
                        invalid(
                            format!("a {0} part needs '{0}.url'", part.kind),
                            &format!("{param}.content[{i}]"),
                        )
                    })?;
                out.push(Part::File(neutral::File {
                    source: ImageSource::from_url(&url),
                    filename: None,
                    kind: if audio {
                        FileKind::Audio
                    } else {
                        FileKind::Document
                    },
                }));
            }
            "input_audio" => {
                let here = format!("{param}.content[{i}]");
                let (Some(data), Some(format)) = part
                    .input_audio
                    .map_or((None, None), |audio| (audio.data, audio.format))
                else {
                    return Err(invalid(
                        "an input_audio part needs 'input_audio.data' and '.format'",
                        &here,
                    ));
                };
                let media_type = neutral::audio_media_type(&format).ok_or_else(|| {
                    invalid(
                        format!("input_audio format '{format}' is not supported (mp3, wav)"),
                        &here,
                    )
                })?;
                out.push(Part::File(neutral::File {
                    source: ImageSource::Base64 {
                        media_type: media_type.to_owned(),
                        data,
                    },
                    filename: None,
                    kind: FileKind::Audio,
                }));
            }
            other => {
                return Err(invalid(
                    format!("content part type '{other}' is not supported by this vendor"),
                    &format!("{param}.content[{i}]"),
                ));
            }
        }
        if let Some(cache) = cache
            && out.len() > before
        {
            marks.push((out.len() - 1, cache.ttl(&format!("{param}.content[{i}]"))?));
        }
    }
    Ok(out)
}

/// A chat `file` part: inline `file_data` (a `data:` URL, or bare base64 of a PDF); a
/// `file_id` names a file stored at one vendor, which no other vendor could read.
fn decode_file(file: Option<RawFile>, param: &str) -> Result<Part, InvalidRequest> {
    let file = file.ok_or_else(|| invalid("a file part needs 'file.file_data'", param))?;
    if file.file_data.is_none() && file.file_id.is_some() {
        return Err(invalid(
            "file parts with 'file_id' are not supported; send the file as 'file_data'",
            param,
        ));
    }
    let data = file
        .file_data
        .filter(|d| !d.is_empty())
        .ok_or_else(|| invalid("a file part needs 'file.file_data'", param))?;
    Ok(Part::File(neutral::File {
        source: crate::shared::inline_file(&data),
        filename: file.filename,
        kind: FileKind::Document,
    }))
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
    File { file: OutFile<'a> },
    InputAudio { input_audio: OutAudio<'a> },
}

#[derive(Serialize)]
struct OutFile<'a> {
    filename: &'a str,
    file_data: String,
}

#[derive(Serialize)]
struct OutAudio<'a> {
    data: &'a str,
    format: &'static str,
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
                Part::File(file) => file_part(file),
                _ => None,
            })
            .collect(),
    )
}

/// A document as OpenAI's `file` part, a sound as `input_audio`. The gateway checks before
/// encoding that every file is inline and of a type the vendor takes; anything else is left
/// out here rather than sent malformed.
fn file_part(file: &neutral::File) -> Option<OutPart<'_>> {
    let ImageSource::Base64 { media_type, data } = &file.source else {
        return None;
    };
    if let Some(format) = file.audio_format() {
        return Some(OutPart::InputAudio {
            input_audio: OutAudio { data, format },
        });
    }
    (media_type == neutral::PDF).then(|| OutPart::File {
        file: OutFile {
            filename: file.filename.as_deref().unwrap_or("document.pdf"),
            file_data: file.source.to_url(),
        },
    })
}

//! `CreateResponseBody` → [`Decoded`]: the neutral request plus what the gateway needs
//! around it.
//!
//! The body is read into a borrowed envelope; `input` items and `tools` stay raw until each is
//! read with its own path, so every error names the exact field (`input[2].content[0].type`).
//! What no vendor behind the neutral model can do is refused with a 400 rather than silently
//! dropped: files, item references, background mode. Hosted tools are the exception: an
//! offered tool is optional to the model, so they are removed from the offer and listed in
//! [`neutral::Request::dropped_tools`] for the gateway to report (or refuse, as configured).
//! Fields that only matter to OpenAI's own service (`include`, `store: false`,
//! `prompt_cache_key`, `client_metadata`, `reasoning.summary`, `text.verbosity`) are accepted
//! and have no effect on other vendors.

use std::collections::{HashMap, HashSet};

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::{Decoded, Echo, NamespacedTool, REASONING_SIGNATURE_PREFIX};
use crate::neutral::{
    self, Image, ImageSource, Message, Part, ReasoningConfig, ReasoningOrigin, ResponseFormat,
    Role, Tool, ToolCall, ToolChoice, ToolResult, untag_token,
};
use crate::openai_chat::{InvalidRequest, describe_error, require_object, split_signature};

#[derive(Deserialize)]
struct RawRequest<'a> {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    provider: Option<String>,
    #[serde(default, borrow)]
    input: Option<&'a RawValue>,
    #[serde(default)]
    previous_response_id: Option<String>,
    #[serde(default)]
    instructions: Option<String>,
    #[serde(default, borrow)]
    tools: Option<Vec<&'a RawValue>>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    #[serde(default)]
    text: Option<RawText>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    presence_penalty: Option<f64>,
    #[serde(default)]
    frequency_penalty: Option<f64>,
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    background: Option<bool>,
    #[serde(default)]
    max_output_tokens: Option<u32>,
    #[serde(default)]
    max_tool_calls: Option<u32>,
    #[serde(default)]
    reasoning: Option<RawReasoningConfig>,
    #[serde(default)]
    safety_identifier: Option<String>,
    #[serde(default)]
    prompt_cache_key: Option<String>,
    #[serde(default)]
    truncation: Option<String>,
    #[serde(default)]
    store: Option<bool>,
    #[serde(default)]
    top_logprobs: Option<u32>,
    #[serde(default)]
    user: Option<String>,
}

#[derive(Deserialize)]
struct RawText {
    #[serde(default)]
    format: Option<RawFormat>,
    #[serde(default)]
    verbosity: Option<String>,
}

#[derive(Deserialize)]
struct RawFormat {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    schema: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
}

#[derive(Deserialize)]
struct RawReasoningConfig {
    #[serde(default)]
    effort: Option<String>,
    #[serde(default)]
    summary: Option<String>,
}

/// Any input item; every field is optional so one pass reads every item type, and each item
/// type checks the fields it needs.
#[derive(Deserialize)]
struct RawItem<'a> {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default, borrow)]
    content: Option<&'a RawValue>,
    #[serde(default)]
    call_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
    #[serde(default, borrow)]
    output: Option<&'a RawValue>,
    #[serde(default)]
    summary: Option<Vec<RawSummary>>,
    #[serde(default)]
    encrypted_content: Option<String>,
    #[serde(default)]
    id: Option<String>,
    /// A `function_call`'s namespace, for a tool offered inside a `namespace` tool.
    #[serde(default)]
    namespace: Option<String>,
}

/// A reasoning summary part; its `type` (`summary_text`) is not checked.
#[derive(Deserialize)]
struct RawSummary {
    #[serde(default)]
    text: Option<String>,
}

/// Any content part (`input_text`, `input_image`, `output_text`, `refusal`, `summary_text`…).
#[derive(Deserialize)]
struct RawPart {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    image_url: Option<String>,
    #[serde(default)]
    file_id: Option<String>,
    #[serde(default)]
    detail: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    file_data: Option<String>,
    #[serde(default)]
    file_url: Option<String>,
    #[serde(default)]
    filename: Option<String>,
}

#[derive(Deserialize)]
struct RawFunctionTool {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
}

fn invalid(message: impl Into<String>, param: impl Into<String>) -> InvalidRequest {
    InvalidRequest {
        message: message.into(),
        param: Some(param.into()),
    }
}

/// A serde error's reason without serde_json's position, which would point into a fragment.
fn reason(err: &serde_json::Error) -> String {
    let text = err.to_string();
    match text.find(" at line ") {
        Some(at) => text[..at].to_owned(),
        None => text,
    }
}

/// Reads one raw fragment as `T`; an error names `path` plus the path inside the fragment.
fn parse<'a, T: Deserialize<'a>>(raw: &'a RawValue, path: &str) -> Result<T, InvalidRequest> {
    let mut de = serde_json::Deserializer::from_str(raw.get());
    serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let inner = err.path().to_string();
        let path = match inner.as_str() {
            "." => path.to_owned(),
            _ if inner.starts_with('[') => format!("{path}{inner}"),
            _ => format!("{path}.{inner}"),
        };
        invalid(format!("invalid '{path}': {}", reason(err.inner())), path)
    })
}

/// Reads a client's `POST /v1/responses` body. Errors name the field at fault and are safe to
/// show to the client. Unknown top-level fields are ignored.
pub fn decode_request(body: &[u8]) -> Result<Decoded, InvalidRequest> {
    require_object(body)?;
    let raw: RawRequest<'_> = match serde_json::from_slice(body) {
        Ok(raw) => raw,
        Err(_) => return Err(describe_error::<RawRequest<'_>>(body)),
    };
    if raw.background == Some(true) {
        return Err(invalid(
            "background mode is not supported by llmux",
            "background",
        ));
    }
    if let Some(truncation) = raw.truncation.as_deref()
        && !matches!(truncation, "auto" | "disabled")
    {
        return Err(invalid(
            format!("'truncation' must be 'auto' or 'disabled', not '{truncation}'"),
            "truncation",
        ));
    }
    let input = raw
        .input
        .ok_or_else(|| invalid("missing required field 'input'", "input"))?;

    let mut request = neutral::Request {
        model: raw.model.clone().unwrap_or_default(),
        stream: raw.stream.unwrap_or(false),
        user: raw.user.clone(),
        parallel_tool_calls: raw.parallel_tool_calls,
        ..neutral::Request::default()
    };
    if let Some(instructions) = raw.instructions.as_ref().filter(|i| !i.is_empty()) {
        request.system.push(instructions.clone());
    }
    let offer = decode_tools(raw.tools.unwrap_or_default())?;
    decode_input(input, &mut request, &offer.namespaced)?;
    request.tools = offer.tools;
    request.dropped_tools = offer.dropped;
    let echo_tools = offer.echo;
    let echo_tool_choice = match raw.tool_choice {
        None | Some(Value::Null) => None,
        Some(choice) => {
            let (choice, echo) = decode_tool_choice(&choice, &mut request.tools)?;
            request.tool_choice = Some(choice);
            Some(echo)
        }
    };
    request.sampling = neutral::Sampling {
        temperature: raw.temperature,
        top_p: raw.top_p,
        max_tokens: raw.max_output_tokens,
        presence_penalty: raw.presence_penalty,
        frequency_penalty: raw.frequency_penalty,
        ..neutral::Sampling::default()
    };
    let echo_text = match raw.text {
        None => None,
        Some(text) => {
            let format = match text.format {
                None => json!({"type": "text"}),
                Some(format) => {
                    let (format, echo) = decode_format(format)?;
                    request.response_format = Some(format);
                    echo
                }
            };
            let mut echo = json!({"format": format});
            if let Some(verbosity) = text.verbosity {
                echo["verbosity"] = json!(verbosity);
            }
            Some(echo)
        }
    };
    let echo_reasoning = raw.reasoning.map(|reasoning| {
        request.reasoning = reasoning.effort.clone().map(|effort| ReasoningConfig {
            effort: Some(effort),
            budget_tokens: None,
        });
        json!({"effort": reasoning.effort, "summary": reasoning.summary})
    });

    let echo = Echo {
        instructions: raw.instructions,
        tools: echo_tools,
        tool_choice: echo_tool_choice,
        temperature: raw.temperature,
        top_p: raw.top_p,
        presence_penalty: raw.presence_penalty,
        frequency_penalty: raw.frequency_penalty,
        top_logprobs: raw.top_logprobs,
        max_output_tokens: raw.max_output_tokens,
        max_tool_calls: raw.max_tool_calls,
        metadata: raw.metadata.unwrap_or_default(),
        text: echo_text,
        reasoning: echo_reasoning,
        parallel_tool_calls: raw.parallel_tool_calls,
        truncation: raw.truncation,
        previous_response_id: raw.previous_response_id.clone(),
        store: raw.store,
        user: raw.user,
        safety_identifier: raw.safety_identifier,
        prompt_cache_key: raw.prompt_cache_key,
        namespaced: offer.namespaced,
    };
    Ok(Decoded {
        request,
        model: raw.model.filter(|m| !m.is_empty()),
        provider: raw.provider.filter(|p| !p.is_empty()),
        previous_response_id: raw.previous_response_id.filter(|p| !p.is_empty()),
        store: raw.store.unwrap_or(true),
        echo,
    })
}

/// `input`: a string (one user message) or a list of items.
fn decode_input(
    input: &RawValue,
    request: &mut neutral::Request,
    namespaced: &[NamespacedTool],
) -> Result<(), InvalidRequest> {
    let text = input.get();
    if text.starts_with('"') {
        let text: String = parse(input, "input")?;
        request.messages.push(Message {
            role: Role::User,
            parts: non_empty_text(text).into_iter().collect(),
        });
        return Ok(());
    }
    if !text.starts_with('[') {
        return Err(invalid(
            "invalid 'input': expected a string or an array of input items",
            "input",
        ));
    }
    let items: Vec<&RawValue> = parse(input, "input")?;
    let mut turn = Turn {
        namespaced,
        ..Turn::default()
    };
    for (i, raw) in items.into_iter().enumerate() {
        let path = format!("input[{i}]");
        if !raw.get().starts_with('{') {
            return Err(invalid(
                format!("invalid '{path}': expected an input item object"),
                path,
            ));
        }
        let item: RawItem<'_> = parse(raw, &path)?;
        turn.item(item, &path, request)?;
    }
    turn.flush(request);
    Ok(())
}

/// Groups consecutive assistant-side items (reasoning, assistant messages, function calls)
/// into one assistant turn, and remembers call names for the tool results that follow.
#[derive(Default)]
struct Turn<'t> {
    assistant: Vec<Part>,
    names: HashMap<String, String>,
    /// The offer's namespaced tools, to read `function_call` items with a `namespace`.
    namespaced: &'t [NamespacedTool],
}

impl Turn<'_> {
    fn flush(&mut self, request: &mut neutral::Request) {
        if !self.assistant.is_empty() {
            request.messages.push(Message {
                role: Role::Assistant,
                parts: std::mem::take(&mut self.assistant),
            });
        }
    }

    fn item(
        &mut self,
        item: RawItem<'_>,
        path: &str,
        request: &mut neutral::Request,
    ) -> Result<(), InvalidRequest> {
        // `type` is optional on messages (`EasyInputMessage`) and on item references.
        let kind = match (item.kind.as_deref(), &item.role) {
            (Some(kind), _) => kind,
            (None, Some(_)) => "message",
            (None, None) if item.id.is_some() => "item_reference",
            (None, None) => {
                return Err(invalid(
                    format!("invalid '{path}': an input item needs a 'type'"),
                    format!("{path}.type"),
                ));
            }
        };
        match kind {
            "message" => self.message(item, path, request),
            "function_call" => {
                let call_id = required(item.call_id, path, "call_id")?;
                let mut name = required(item.name, path, "name")?;
                if let Some(namespace) = item.namespace.filter(|n| !n.is_empty()) {
                    name = self
                        .namespaced
                        .iter()
                        .find(|t| t.namespace == namespace && t.name == name)
                        .map_or_else(|| flat_name(&namespace, &name), |t| t.flat.clone());
                }
                let (id, signature) = split_signature(&call_id);
                self.names.insert(id.to_owned(), name.clone());
                self.assistant.push(Part::ToolCall(ToolCall {
                    id: id.to_owned(),
                    name,
                    arguments: required(item.arguments, path, "arguments")?,
                    signature: signature.map(str::to_owned),
                }));
                Ok(())
            }
            "function_call_output" => {
                let call_id = required(item.call_id, path, "call_id")?;
                let output = required(item.output, path, "output")?;
                let content = tool_output(output, &format!("{path}.output"))?;
                let (id, _) = split_signature(&call_id);
                self.flush(request);
                request.messages.push(Message {
                    role: Role::Tool,
                    parts: vec![Part::ToolResult(ToolResult {
                        call_id: id.to_owned(),
                        name: self.names.get(id).cloned(),
                        content,
                        is_error: false,
                    })],
                });
                Ok(())
            }
            "reasoning" => {
                let text = item
                    .summary
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|part| part.text)
                    .collect::<Vec<_>>()
                    .join("\n\n");
                // Whose token it is: see `encrypted_content` in `encode`.
                let (signature, redacted, origin) = match item.encrypted_content {
                    Some(content) => match content.strip_prefix(REASONING_SIGNATURE_PREFIX) {
                        Some(signature) => {
                            let (origin, signature) =
                                untag_token(signature, ReasoningOrigin::Anthropic);
                            (Some(signature.to_owned()), None, Some(origin))
                        }
                        None => {
                            let (origin, data) = untag_token(&content, ReasoningOrigin::OpenAi);
                            (None, Some(data.to_owned()), Some(origin))
                        }
                    },
                    None => (None, None, None),
                };
                if !text.is_empty() || signature.is_some() || redacted.is_some() {
                    self.assistant.push(Part::Reasoning(neutral::Reasoning {
                        text,
                        signature,
                        redacted,
                        origin,
                    }));
                }
                Ok(())
            }
            "item_reference" => Err(invalid(
                "item_reference input items are not supported by llmux; send the item itself or use 'previous_response_id'",
                path,
            )),
            other => Err(invalid(
                format!("input item type '{other}' is not supported by llmux"),
                format!("{path}.type"),
            )),
        }
    }

    fn message(
        &mut self,
        item: RawItem<'_>,
        path: &str,
        request: &mut neutral::Request,
    ) -> Result<(), InvalidRequest> {
        let role = required(item.role, path, "role")?;
        let content = required(item.content, path, "content")?;
        let content_path = format!("{path}.content");
        match role.as_str() {
            "system" | "developer" => {
                let parts = read_content(content, &content_path, Role::User)?;
                let text: String = parts
                    .iter()
                    .map(|part| match part {
                        Part::Text { text } => Ok(text.as_str()),
                        _ => Err(invalid(
                            format!("a {role} message may only contain text"),
                            content_path.clone(),
                        )),
                    })
                    .collect::<Result<_, _>>()?;
                if !text.is_empty() {
                    request.system.push(text);
                }
            }
            "user" => {
                let parts = read_content(content, &content_path, Role::User)?;
                self.flush(request);
                request.messages.push(Message {
                    role: Role::User,
                    parts,
                });
            }
            "assistant" => {
                let parts = read_content(content, &content_path, Role::Assistant)?;
                self.assistant.extend(parts);
            }
            other => {
                return Err(invalid(
                    format!("unknown role '{other}'"),
                    format!("{path}.role"),
                ));
            }
        }
        Ok(())
    }
}

fn required<T>(value: Option<T>, path: &str, field: &str) -> Result<T, InvalidRequest> {
    value.ok_or_else(|| {
        invalid(
            format!("invalid '{path}': missing required field '{field}'"),
            format!("{path}.{field}"),
        )
    })
}

fn non_empty_text(text: String) -> Option<Part> {
    (!text.is_empty()).then(|| Part::text(text))
}

/// Message content: a string or a list of parts. Users send text and images; assistants send
/// text and refusals (both kept as text).
fn read_content(raw: &RawValue, path: &str, role: Role) -> Result<Vec<Part>, InvalidRequest> {
    if raw.get().starts_with('"') {
        let text: String = parse(raw, path)?;
        return Ok(non_empty_text(text).into_iter().collect());
    }
    if !raw.get().starts_with('[') {
        return Err(invalid(
            format!("invalid '{path}': expected a string or an array of content parts"),
            path,
        ));
    }
    let parts: Vec<RawPart> = parse(raw, path)?;
    let mut out = Vec::with_capacity(parts.len());
    for (k, part) in parts.into_iter().enumerate() {
        let path = format!("{path}[{k}]");
        match (part.kind.as_str(), role) {
            ("input_text" | "output_text" | "text", _) => {
                out.extend(non_empty_text(required(part.text, &path, "text")?));
            }
            ("refusal", Role::Assistant) => {
                out.extend(non_empty_text(required(part.refusal, &path, "refusal")?));
            }
            ("input_image", Role::User) => {
                let Some(url) = part.image_url else {
                    let message = if part.file_id.is_some() {
                        "input_image by 'file_id' is not supported by llmux; send 'image_url'"
                    } else {
                        "an input_image part needs 'image_url'"
                    };
                    return Err(invalid(message, format!("{path}.image_url")));
                };
                out.push(Part::Image(Image {
                    source: ImageSource::from_url(&url),
                    detail: part.detail,
                }));
            }
            ("input_file", Role::User) => {
                let source = match (part.file_data, part.file_url) {
                    (Some(data), _) if !data.is_empty() => crate::shared::inline_file(&data),
                    (_, Some(url)) if !url.is_empty() => ImageSource::Url(url),
                    _ => {
                        let message = if part.file_id.is_some() {
                            "input_file by 'file_id' is not supported by llmux; send 'file_data' or 'file_url'"
                        } else {
                            "an input_file part needs 'file_data' or 'file_url'"
                        };
                        return Err(invalid(message, format!("{path}.file_data")));
                    }
                };
                out.push(Part::File(neutral::File {
                    source,
                    filename: part.filename,
                    kind: neutral::FileKind::Document,
                }));
            }
            (other, _) => {
                return Err(invalid(
                    format!("content part type '{other}' is not supported by llmux here"),
                    format!("{path}.type"),
                ));
            }
        }
    }
    Ok(out)
}

/// A `function_call_output`'s `output`: a string, or text parts joined.
fn tool_output(raw: &RawValue, path: &str) -> Result<String, InvalidRequest> {
    if raw.get().starts_with('"') {
        return parse(raw, path);
    }
    if !raw.get().starts_with('[') {
        return Err(invalid(
            format!("invalid '{path}': expected a string or an array of content parts"),
            path,
        ));
    }
    let parts: Vec<RawPart> = parse(raw, path)?;
    let mut text = String::new();
    for (k, part) in parts.into_iter().enumerate() {
        let path = format!("{path}[{k}]");
        match part.kind.as_str() {
            "input_text" | "output_text" | "text" => {
                text.push_str(&required(part.text, &path, "text")?);
            }
            other => {
                return Err(invalid(
                    format!(
                        "function_call_output content type '{other}' is not supported by llmux"
                    ),
                    format!("{path}.type"),
                ));
            }
        }
    }
    Ok(text)
}

/// The tools offered to vendors, as read from `tools`.
#[derive(Default)]
struct Offer {
    tools: Vec<Tool>,
    /// Their echo in the resource's `tools`.
    echo: Vec<Value>,
    /// Hosted tool types removed from the offer.
    dropped: Vec<String>,
    /// The functions of `namespace` tools, under their flat names.
    namespaced: Vec<NamespacedTool>,
}

/// The longest tool name every vendor accepts (OpenAI and Gemini: 64).
const MAX_TOOL_NAME: usize = 64;

/// `<namespace>__<name>`, Codex's own flattening, shortened to [`MAX_TOOL_NAME`] with a hash
/// of the full name when longer.
fn flat_name(namespace: &str, name: &str) -> String {
    let flat = format!("{namespace}__{name}");
    if flat.len() <= MAX_TOOL_NAME {
        return flat;
    }
    let hash = crate::shared::stable_hash(flat.as_bytes());
    let mut cut = MAX_TOOL_NAME - 9;
    while !flat.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{:08x}", &flat[..cut], hash & 0xffff_ffff)
}

/// Function tools → neutral tools; the functions inside `namespace` tools → neutral tools
/// under unique flat names (see [`NamespacedTool`]); every other tool type is hosted by
/// OpenAI (or, like `custom` freeform tools, needs item types the neutral model lacks) and is
/// dropped from the offer, its type recorded.
fn decode_tools(raw: Vec<&RawValue>) -> Result<Offer, InvalidRequest> {
    #[derive(Deserialize)]
    struct Header {
        #[serde(rename = "type")]
        kind: Option<String>,
    }
    #[derive(Deserialize)]
    struct RawNamespace<'a> {
        name: String,
        #[serde(default)]
        description: Option<String>,
        #[serde(default, borrow)]
        tools: Vec<&'a RawValue>,
    }
    let mut offer = Offer::default();
    // Namespaced functions are read after the plain ones, so a flat name never takes a name
    // the client chose; `pending` keeps their place in the offer.
    let mut pending: Vec<(usize, String, Option<String>, RawFunctionTool)> = Vec::new();
    for (i, raw) in raw.into_iter().enumerate() {
        let path = format!("tools[{i}]");
        if !raw.get().starts_with('{') {
            return Err(invalid(
                format!("invalid '{path}': expected a tool object"),
                path,
            ));
        }
        let header: Header = parse(raw, &path)?;
        match header.kind.as_deref() {
            Some("function") => {
                let tool: RawFunctionTool = parse(raw, &path)?;
                offer.tools.push(Tool {
                    name: tool.name,
                    description: tool.description,
                    parameters: tool.parameters,
                    strict: tool.strict,
                });
            }
            Some("namespace") => {
                let namespace: RawNamespace<'_> = parse(raw, &path)?;
                let mut description = namespace.description.filter(|d| !d.is_empty());
                for (j, inner) in namespace.tools.into_iter().enumerate() {
                    let path = format!("{path}.tools[{j}]");
                    let header: Header = parse(inner, &path)?;
                    match header.kind.as_deref() {
                        Some("function") | None => {
                            let tool: RawFunctionTool = parse(inner, &path)?;
                            // The namespace's description goes to its first function, once.
                            pending.push((
                                offer.tools.len(),
                                namespace.name.clone(),
                                description.take(),
                                tool,
                            ));
                        }
                        Some(other) => offer.dropped.push(other.to_owned()),
                    }
                }
            }
            Some(other) => offer.dropped.push(other.to_owned()),
            None => {
                return Err(invalid(
                    format!("invalid '{path}': a tool needs a 'type'"),
                    format!("{path}.type"),
                ));
            }
        }
    }
    let mut taken: HashSet<String> = offer.tools.iter().map(|t| t.name.clone()).collect();
    // Inserting from the back keeps the earlier positions valid.
    let mut flattened = Vec::with_capacity(pending.len());
    for (position, namespace, group, tool) in pending {
        let base = flat_name(&namespace, &tool.name);
        let mut flat = base.clone();
        let mut k = 2;
        while taken.contains(&flat) {
            flat = flat_name(&namespace, &format!("{}_{k}", tool.name));
            k += 1;
        }
        taken.insert(flat.clone());
        let description = match (group, tool.description) {
            (Some(group), Some(own)) => Some(format!("{group}\n\n{own}")),
            (group, own) => own.or(group),
        };
        offer.namespaced.push(NamespacedTool {
            flat: flat.clone(),
            namespace,
            name: tool.name,
        });
        flattened.push((
            position,
            Tool {
                name: flat,
                description,
                parameters: tool.parameters,
                strict: tool.strict,
            },
        ));
    }
    for (position, tool) in flattened.into_iter().rev() {
        offer.tools.insert(position, tool);
    }
    // The resource's `tools` may hold function tools only (§C4), so the echo lists the tools
    // as offered: namespaced functions under their flat names, hosted tools not at all.
    offer.echo = offer
        .tools
        .iter()
        .map(|tool| {
            json!({
                "type": "function",
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
                "strict": tool.strict,
            })
        })
        .collect();
    Ok(offer)
}

/// `tool_choice` → neutral, plus its echo. `allowed_tools` is a hard constraint (§C9): the
/// model is only shown the listed tools, so it cannot call the others.
fn decode_tool_choice(
    value: &Value,
    tools: &mut Vec<Tool>,
) -> Result<(ToolChoice, Value), InvalidRequest> {
    let mode = |mode: &str, param: &str| match mode {
        "auto" => Ok(ToolChoice::Auto),
        "none" => Ok(ToolChoice::None),
        "required" => Ok(ToolChoice::Required),
        other => Err(invalid(
            format!("'{param}' must be 'auto', 'none' or 'required', not '{other}'"),
            param,
        )),
    };
    match value {
        Value::String(s) => Ok((mode(s, "tool_choice")?, json!(s))),
        Value::Object(object) => match object.get("type").and_then(Value::as_str) {
            Some("function") => {
                let name = object
                    .get("name")
                    .or_else(|| value.pointer("/function/name"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        invalid("a function tool_choice needs 'name'", "tool_choice.name")
                    })?;
                Ok((
                    ToolChoice::Named(name.to_owned()),
                    json!({"type": "function", "name": name}),
                ))
            }
            Some("allowed_tools") => {
                let choice = match object.get("mode") {
                    None | Some(Value::Null) => ToolChoice::Auto,
                    Some(Value::String(m)) => mode(m, "tool_choice.mode")?,
                    Some(_) => {
                        return Err(invalid(
                            "'tool_choice.mode' must be a string",
                            "tool_choice.mode",
                        ));
                    }
                };
                let listed = object
                    .get("tools")
                    .and_then(Value::as_array)
                    .ok_or_else(|| {
                        invalid(
                            "an allowed_tools tool_choice needs a 'tools' array",
                            "tool_choice.tools",
                        )
                    })?;
                // Sets, not list scans: both lists may be long.
                let names: HashSet<&str> = tools.iter().map(|t| t.name.as_str()).collect();
                let mut allowed = Vec::with_capacity(listed.len());
                for (i, entry) in listed.iter().enumerate() {
                    let name = entry.get("name").and_then(Value::as_str).ok_or_else(|| {
                        invalid(
                            "an allowed tool needs 'name'",
                            format!("tool_choice.tools[{i}].name"),
                        )
                    })?;
                    if !names.contains(name) {
                        return Err(invalid(
                            format!("allowed tool '{name}' is not in 'tools'"),
                            format!("tool_choice.tools[{i}]"),
                        ));
                    }
                    allowed.push(name.to_owned());
                }
                drop(names);
                let kept: HashSet<&str> = allowed.iter().map(String::as_str).collect();
                tools.retain(|t| kept.contains(t.name.as_str()));
                let mode_echo = match choice {
                    ToolChoice::None => "none",
                    ToolChoice::Required => "required",
                    _ => "auto",
                };
                let echo_tools: Vec<Value> = allowed
                    .iter()
                    .map(|name| json!({"type": "function", "name": name}))
                    .collect();
                Ok((
                    choice,
                    json!({"type": "allowed_tools", "tools": echo_tools, "mode": mode_echo}),
                ))
            }
            Some(other) => Err(invalid(
                format!(
                    "tool_choice type '{other}' is not supported by llmux; only function tools are"
                ),
                "tool_choice",
            )),
            None => Err(invalid(
                "'tool_choice' object needs a 'type'",
                "tool_choice.type",
            )),
        },
        _ => Err(invalid(
            "'tool_choice' must be 'auto', 'none', 'required' or an object",
            "tool_choice",
        )),
    }
}

/// `text.format` → neutral, plus its echo in the resource's shape.
fn decode_format(format: RawFormat) -> Result<(ResponseFormat, Value), InvalidRequest> {
    match format.kind.as_str() {
        "text" => Ok((ResponseFormat::Text, json!({"type": "text"}))),
        "json_object" => Ok((ResponseFormat::JsonObject, json!({"type": "json_object"}))),
        "json_schema" => {
            let schema = format.schema.ok_or_else(|| {
                invalid(
                    "a json_schema text format needs 'schema'",
                    "text.format.schema",
                )
            })?;
            let name = format.name.unwrap_or_else(|| "response".to_owned());
            let echo = json!({
                "type": "json_schema",
                "name": name,
                "description": format.description,
                "schema": schema,
                "strict": format.strict.unwrap_or(false),
            });
            Ok((
                ResponseFormat::JsonSchema {
                    name,
                    schema,
                    strict: format.strict,
                },
                echo,
            ))
        }
        other => Err(invalid(
            format!("'text.format.type' must be text, json_object or json_schema, not '{other}'"),
            "text.format.type",
        )),
    }
}

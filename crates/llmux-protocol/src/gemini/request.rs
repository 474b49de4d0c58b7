//! Requests: neutral → `generateContent` body, and back.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;
use serde_json::value::RawValue;

use super::schema::{SchemaBudget, clean_schema_within};
use super::wire;
use crate::neutral::{
    self, DecodeError, Image, ImageSource, Message, Part, Reasoning, ReasoningConfig,
    ResponseFormat, Role, Tool, ToolCall, ToolChoice, ToolResult,
};

/// The name sent for a tool result whose call cannot be found in the conversation.
const UNKNOWN_FUNCTION: &str = "unknown_function";

/// Google's documented placeholder for a function call Gemini 3 did not produce (history from
/// another vendor): it passes the thought-signature check, which otherwise answers 400.
const FOREIGN_CALL_SIGNATURE: &str = "skip_thought_signature_validator";

/// neutral → Gemini generateContent request body.
///
/// Fails when an image is still a plain http(s) URL (the gateway fetches those into inline data
/// first). `model` and `stream` are not written: the URL carries them.
///
/// Call ids starting with `call_` are never sent (they were synthesized by a decoder or issued
/// by another vendor; Gemini matches such calls by order). For a model outside gemini-2.x, the
/// first call of a model turn that carries no signature and no Gemini-issued id gets Google's
/// placeholder signature, so a conversation started on another vendor can continue on Gemini 3;
/// a Gemini-issued call that lost its signature is sent as is, so the loss shows as Gemini's
/// error instead of being hidden.
pub fn encode_request(request: &neutral::Request) -> Result<Vec<u8>, DecodeError> {
    let foreign_placeholder =
        !request.model.starts_with("gemini-2") && !request.model.starts_with("models/gemini-2");
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut contents: Vec<wire::Content> = Vec::new();
    for message in &request.messages {
        let role = match message.role {
            Role::Assistant => "model",
            Role::User | Role::Tool => "user",
        };
        let mut parts = Vec::with_capacity(message.parts.len());
        for part in &message.parts {
            match part {
                Part::Text { text } if text.is_empty() => {}
                Part::Text { text } => parts.push(wire::Part {
                    text: Some(text.clone()),
                    ..wire::Part::default()
                }),
                Part::Image(image) => parts.push(image_part(image)?),
                Part::File(file) => parts.push(file_part(file)?),
                Part::ToolCall(call) => {
                    names.insert(&call.id, &call.name);
                    parts.push(call_part(call)?);
                }
                Part::ToolResult(result) => parts.push(result_part(result, &names)?),
                // Gemini needs only the signatures, which ride on the calls.
                Part::Reasoning(_) => {}
            }
        }
        if parts.is_empty() {
            continue;
        }
        match contents.last_mut() {
            Some(last) if last.role.as_deref() == Some(role) => last.parts.extend(parts),
            _ => contents.push(wire::Content {
                role: Some(role.to_owned()),
                parts,
            }),
        }
    }
    if foreign_placeholder {
        for content in contents
            .iter_mut()
            .filter(|c| c.role.as_deref() == Some("model"))
        {
            let first_call = content.parts.iter_mut().find(|p| p.function_call.is_some());
            if let Some(part) = first_call
                && part.thought_signature.is_none()
                && part.function_call.as_ref().is_some_and(|c| c.id.is_none())
            {
                part.thought_signature = Some(FOREIGN_CALL_SIGNATURE.to_owned());
            }
        }
    }

    let system = request
        .system
        .iter()
        .filter(|s| !s.is_empty())
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join("\n\n");
    let system_instruction = (!system.is_empty()).then(|| wire::Content {
        role: None,
        parts: vec![wire::Part {
            text: Some(system),
            ..wire::Part::default()
        }],
    });

    // One budget for every schema of the request: many small schemas cannot add up to a bomb.
    let mut budget = SchemaBudget::default();
    let declarations = request
        .tools
        .iter()
        .enumerate()
        .map(|(index, tool)| declaration(index, tool, &mut budget))
        .collect::<Result<Vec<_>, _>>()?;
    let tools = if declarations.is_empty() {
        Vec::new()
    } else {
        vec![wire::Tool {
            function_declarations: declarations,
        }]
    };

    let body = wire::Request {
        contents,
        system_instruction,
        tools,
        tool_config: request.tool_choice.as_ref().map(tool_config),
        generation_config: generation_config(request, &mut budget)?,
    };
    Ok(serde_json::to_vec(&body)?)
}

/// Whether a call id was issued by Gemini (and so must go back with the call and its result).
fn is_gemini_id(id: &str) -> bool {
    !id.is_empty() && !id.starts_with("call_")
}

fn image_part(image: &Image) -> Result<wire::Part, DecodeError> {
    let inline = |media_type: &str, data: &str| wire::Part {
        inline_data: Some(wire::Blob {
            mime_type: media_type.to_owned(),
            data: data.to_owned(),
        }),
        ..wire::Part::default()
    };
    match &image.source {
        ImageSource::Base64 { media_type, data } => Ok(inline(media_type, data)),
        ImageSource::Url(url) if url.starts_with("gs://") => Ok(wire::Part {
            file_data: Some(wire::FileData {
                mime_type: mime_from_extension(url).map(str::to_owned),
                file_uri: url.clone(),
            }),
            ..wire::Part::default()
        }),
        ImageSource::Url(url) => match ImageSource::from_url(url) {
            ImageSource::Base64 { media_type, data } => Ok(inline(&media_type, &data)),
            ImageSource::Url(_) => Err(DecodeError::new(
                "image URLs must be fetched before sending to Gemini",
            )),
        },
    }
}

/// A document or a sound as `inlineData` (Gemini reads PDFs and mp3/wav inline).
fn file_part(file: &neutral::File) -> Result<wire::Part, DecodeError> {
    match &file.source {
        ImageSource::Base64 { media_type, data } => Ok(wire::Part {
            inline_data: Some(wire::Blob {
                mime_type: media_type.clone(),
                data: data.clone(),
            }),
            ..wire::Part::default()
        }),
        ImageSource::Url(_) => Err(DecodeError::new(
            "file URLs must be fetched before sending to Gemini",
        )),
    }
}

/// The image MIME type a `gs://` object name suggests (Gemini infers it when absent).
fn mime_from_extension(url: &str) -> Option<&'static str> {
    let name = url.rsplit('/').next()?;
    let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match extension.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        _ => return None,
    })
}

/// The arguments as a raw JSON object; anything else (empty, invalid, not an object) is `{}`,
/// because Gemini's `args` is a Struct.
fn args_object(arguments: &str) -> Result<Box<RawValue>, DecodeError> {
    match serde_json::from_str::<Box<RawValue>>(arguments) {
        Ok(raw) if raw.get().starts_with('{') => Ok(raw),
        _ => Ok(RawValue::from_string("{}".to_owned())?),
    }
}

fn call_part(call: &ToolCall) -> Result<wire::Part, DecodeError> {
    Ok(wire::Part {
        function_call: Some(wire::FunctionCall {
            name: call.name.clone(),
            args: Some(args_object(&call.arguments)?),
            id: is_gemini_id(&call.id).then(|| call.id.clone()),
        }),
        thought_signature: call.signature.clone().filter(|s| !s.is_empty()),
        ..wire::Part::default()
    })
}

fn result_part(
    result: &ToolResult,
    names: &HashMap<&str, &str>,
) -> Result<wire::Part, DecodeError> {
    let name = match &result.name {
        Some(name) if !name.is_empty() => name.as_str(),
        _ => names
            .get(result.call_id.as_str())
            .copied()
            .unwrap_or(UNKNOWN_FUNCTION),
    };
    // Gemini wants an object: JSON objects go as they are, anything else is wrapped; errors go
    // under `error`, the key Google documents for failed calls.
    let object = serde_json::from_str::<Box<RawValue>>(&result.content)
        .ok()
        .filter(|raw| raw.get().starts_with('{'));
    let text = || serde_json::value::to_raw_value(&result.content);
    let response = match (result.is_error, object) {
        (false, Some(object)) => object,
        (false, None) => wrap("result", &text()?)?,
        (true, Some(object)) => wrap("error", &object)?,
        (true, None) => wrap("error", &text()?)?,
    };
    Ok(wire::Part {
        function_response: Some(wire::FunctionResponse {
            name: name.to_owned(),
            response: Some(response),
            id: is_gemini_id(&result.call_id).then(|| result.call_id.clone()),
        }),
        ..wire::Part::default()
    })
}

/// `{"<key>": value}`, keeping `value`'s text as it is.
fn wrap(key: &str, value: &RawValue) -> Result<Box<RawValue>, DecodeError> {
    let mut map = BTreeMap::new();
    map.insert(key, value);
    Ok(serde_json::value::to_raw_value(&map)?)
}

/// A tool → a function declaration; its schema is cleaned within `budget`, and an error names
/// the tool by its position (`tools[3].parameters.properties.a: …`).
fn declaration(
    index: usize,
    tool: &Tool,
    budget: &mut SchemaBudget,
) -> Result<wire::FunctionDeclaration, DecodeError> {
    let parameters = match &tool.parameters {
        Some(schema) => Some(
            clean_schema_within(schema, budget)
                .map_err(|e| DecodeError::new(e.at(&format!("tools[{index}].parameters"))))?,
        ),
        None => None,
    };
    let parameters = parameters.filter(|p| {
        // A function without arguments: Gemini refuses an object schema with no properties.
        !(p.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.eq_ignore_ascii_case("object"))
            && p.get("properties").is_none()
            && p.get("anyOf").is_none())
    });
    Ok(wire::FunctionDeclaration {
        name: tool.name.clone(),
        description: tool.description.clone().filter(|d| !d.is_empty()),
        parameters,
        parameters_json_schema: None,
    })
}

fn tool_config(choice: &ToolChoice) -> wire::ToolConfig {
    let (mode, allowed) = match choice {
        ToolChoice::Auto => ("AUTO", Vec::new()),
        ToolChoice::None => ("NONE", Vec::new()),
        ToolChoice::Required => ("ANY", Vec::new()),
        ToolChoice::Named(name) => ("ANY", vec![name.clone()]),
    };
    wire::ToolConfig {
        function_calling_config: Some(wire::FunctionCallingConfig {
            mode: Some(mode.to_owned()),
            allowed_function_names: allowed,
        }),
    }
}

/// The thinking budget an OpenAI-style effort stands for.
fn effort_budget(effort: &str) -> Option<u32> {
    match effort {
        "none" | "minimal" => Some(0),
        "low" => Some(1024),
        "medium" => Some(8192),
        "high" => Some(24576),
        _ => None,
    }
}

fn generation_config(
    request: &neutral::Request,
    budget: &mut SchemaBudget,
) -> Result<Option<wire::GenerationConfig>, DecodeError> {
    let sampling = &request.sampling;
    let (response_mime_type, response_schema) = match &request.response_format {
        Some(ResponseFormat::JsonObject) => (Some("application/json".to_owned()), None),
        Some(ResponseFormat::JsonSchema { schema, .. }) => (
            Some("application/json".to_owned()),
            Some(
                clean_schema_within(schema, budget)
                    .map_err(|e| DecodeError::new(e.at("response_format.schema")))?,
            ),
        ),
        Some(ResponseFormat::Text) | None => (None, None),
    };
    let budget = request.reasoning.as_ref().and_then(|r| {
        r.budget_tokens
            .or_else(|| r.effort.as_deref().and_then(effort_budget))
    });
    // Thoughts are asked for only when thinking is on: a zero budget turns it off.
    let thinking_config = budget.map(|budget| wire::ThinkingConfig {
        thinking_budget: Some(i64::from(budget)),
        include_thoughts: (budget > 0).then_some(true),
        thinking_level: None,
    });
    let config = wire::GenerationConfig {
        temperature: sampling.temperature,
        top_p: sampling.top_p,
        top_k: sampling.top_k,
        max_output_tokens: sampling.max_tokens,
        stop_sequences: sampling.stop.clone(),
        seed: sampling.seed,
        presence_penalty: sampling.presence_penalty,
        frequency_penalty: sampling.frequency_penalty,
        response_mime_type,
        response_schema,
        response_json_schema: None,
        thinking_config,
    };
    Ok((config != wire::GenerationConfig::default()).then_some(config))
}

/// Gemini request body → neutral (round-trip tests; the mock).
///
/// `model` is empty and `stream` false: the URL carries them. A user turn becomes
/// [`Role::Tool`] messages (one per `functionResponse`) and [`Role::User`] messages, in order.
/// Calls and responses without ids (gemini-2.x) get synthesized `call_` ids, matched by name
/// and order. Thought parts become [`Part::Reasoning`]; a `thoughtSignature` on a plain text
/// part is not kept (the neutral model has no place for it, and Gemini does not require it).
pub fn decode_request(body: &[u8]) -> Result<neutral::Request, DecodeError> {
    let wire: wire::Request = wire::parse(body, "request")?;
    let mut messages = Vec::new();
    // Calls of the latest model turn that came without an id, answered in order.
    let mut pending: Vec<(String, String)> = Vec::new();
    let mut synthesized = 0u64;
    let mut next_id = || {
        synthesized += 1;
        neutral::synthesize_call_id(synthesized)
    };
    for content in wire.contents {
        let model = content.role.as_deref() == Some("model");
        if model {
            pending.clear();
        }
        let mut current: Option<Message> = None;
        for part in content.parts {
            let (role, decoded) = if model {
                match model_part(part, &mut next_id, &mut pending)? {
                    Some(decoded) => (Role::Assistant, decoded),
                    None => continue,
                }
            } else {
                match user_part(part, &mut next_id, &mut pending)? {
                    Some(decoded) => decoded,
                    None => continue,
                }
            };
            match &mut current {
                Some(message) if message.role == role && role != Role::Tool => {
                    message.parts.push(decoded);
                }
                _ => {
                    messages.extend(current.take());
                    current = Some(Message {
                        role,
                        parts: vec![decoded],
                    });
                }
            }
        }
        messages.extend(current);
    }

    let system = wire
        .system_instruction
        .map(|s| s.parts.into_iter().filter_map(|p| p.text).collect())
        .unwrap_or_default();
    let tools = wire
        .tools
        .into_iter()
        .flat_map(|t| t.function_declarations)
        .map(|d| Tool {
            name: d.name,
            description: d.description,
            parameters: d.parameters_json_schema.or(d.parameters),
            strict: None,
        })
        .collect();
    let tool_choice = wire
        .tool_config
        .and_then(|c| c.function_calling_config)
        .and_then(|c| {
            let mode = c.mode?.to_ascii_uppercase();
            Some(match mode.as_str() {
                "NONE" => ToolChoice::None,
                "ANY" => match <[String; 1]>::try_from(c.allowed_function_names) {
                    Ok([name]) => ToolChoice::Named(name),
                    Err(_) => ToolChoice::Required,
                },
                "AUTO" | "VALIDATED" => ToolChoice::Auto,
                _ => return None,
            })
        });
    let config = wire.generation_config.unwrap_or_default();
    let schema = config.response_json_schema.or(config.response_schema);
    let response_format = match (config.response_mime_type.as_deref(), schema) {
        (_, Some(schema)) => Some(ResponseFormat::JsonSchema {
            name: "response".to_owned(),
            schema,
            strict: None,
        }),
        (Some("application/json"), None) => Some(ResponseFormat::JsonObject),
        (Some("text/plain"), None) => Some(ResponseFormat::Text),
        _ => None,
    };
    let reasoning = config.thinking_config.and_then(|t| {
        let budget_tokens = t.thinking_budget.and_then(|b| u32::try_from(b).ok());
        let effort = t.thinking_level.map(|l| l.to_ascii_lowercase());
        (budget_tokens.is_some() || effort.is_some()).then_some(ReasoningConfig {
            effort,
            budget_tokens,
        })
    });
    Ok(neutral::Request {
        model: String::new(),
        system,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls: None,
        sampling: neutral::Sampling {
            temperature: config.temperature,
            top_p: config.top_p,
            top_k: config.top_k,
            max_tokens: config.max_output_tokens,
            stop: config.stop_sequences,
            seed: config.seed,
            presence_penalty: config.presence_penalty,
            frequency_penalty: config.frequency_penalty,
        },
        response_format,
        reasoning,
        stream: false,
        user: None,
        ..neutral::Request::default()
    })
}

/// A part of a model turn: text, thought or call (others are skipped).
fn model_part(
    part: wire::Part,
    next_id: &mut impl FnMut() -> String,
    pending: &mut Vec<(String, String)>,
) -> Result<Option<Part>, DecodeError> {
    if let Some(call) = part.function_call {
        let id = match call.id.filter(|id| !id.is_empty()) {
            Some(id) => id,
            None => {
                let id = next_id();
                pending.push((call.name.clone(), id.clone()));
                id
            }
        };
        return Ok(Some(Part::ToolCall(ToolCall {
            id,
            name: call.name,
            arguments: call
                .args
                .map_or_else(|| "{}".to_owned(), |a| wire::compact(a.get())),
            signature: part.thought_signature,
        })));
    }
    if part.thought == Some(true) {
        let text = part.text.unwrap_or_default();
        if text.is_empty() && part.thought_signature.is_none() {
            return Ok(None);
        }
        return Ok(Some(Part::Reasoning(Reasoning {
            text,
            signature: part.thought_signature,
            redacted: None,
            origin: Some(neutral::ReasoningOrigin::Gemini),
        })));
    }
    common_part(part)
}

/// A part of a user turn: a `functionResponse` becomes a [`Role::Tool`] result.
fn user_part(
    part: wire::Part,
    next_id: &mut impl FnMut() -> String,
    pending: &mut Vec<(String, String)>,
) -> Result<Option<(Role, Part)>, DecodeError> {
    let Some(response) = part.function_response else {
        return Ok(common_part(part)?.map(|p| (Role::User, p)));
    };
    let call_id = match response.id.filter(|id| !id.is_empty()) {
        Some(id) => id,
        None => {
            let at = pending
                .iter()
                .position(|(name, _)| *name == response.name)
                .or_else(|| (!pending.is_empty()).then_some(0));
            match at {
                Some(at) => pending.remove(at).1,
                None => next_id(),
            }
        }
    };
    let (content, is_error) = match &response.response {
        Some(raw) => result_content(raw)?,
        None => (String::new(), false),
    };
    Ok(Some((
        Role::Tool,
        Part::ToolResult(ToolResult {
            call_id,
            name: Some(response.name).filter(|n| !n.is_empty()),
            content,
            is_error,
        }),
    )))
}

/// A `functionResponse.response` → (content, is_error): the encoder's `{"result": text}` and
/// `{"error": …}` wrappers are undone, other objects are kept as JSON text.
fn result_content(raw: &RawValue) -> Result<(String, bool), DecodeError> {
    if let Ok(map) = serde_json::from_str::<HashMap<String, Box<RawValue>>>(raw.get())
        && map.len() == 1
        && let Some((key, value)) = map.into_iter().next()
    {
        let text = value.get();
        match key.as_str() {
            "result" if text.starts_with('"') => return Ok((serde_json::from_str(text)?, false)),
            "error" if text.starts_with('"') => return Ok((serde_json::from_str(text)?, true)),
            "error" => return Ok((wire::compact(text), true)),
            _ => {}
        }
    }
    Ok((wire::compact(raw.get()), false))
}

/// Text, inline data and file parts, in either role.
fn common_part(part: wire::Part) -> Result<Option<Part>, DecodeError> {
    if let Some(blob) = part.inline_data {
        if !blob.mime_type.starts_with("image/") {
            let kind = if blob.mime_type.starts_with("audio/") {
                neutral::FileKind::Audio
            } else {
                neutral::FileKind::Document
            };
            return Ok(Some(Part::File(neutral::File {
                source: ImageSource::Base64 {
                    media_type: blob.mime_type,
                    data: blob.data,
                },
                filename: None,
                kind,
            })));
        }
        return Ok(Some(Part::Image(Image {
            source: ImageSource::Base64 {
                media_type: blob.mime_type,
                data: blob.data,
            },
            detail: None,
        })));
    }
    if let Some(file) = part.file_data {
        return Ok(Some(Part::Image(Image {
            source: ImageSource::Url(file.file_uri),
            detail: None,
        })));
    }
    Ok(part.text.map(|text| Part::Text { text }))
}

//! Client requests: a `generateContent` or `countTokens` body → neutral.

use std::collections::HashMap;

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::super::schema::MAX_SCHEMA_DEPTH;
use super::super::wire;
use super::{Decoded, Extras, carry};
use crate::json_scan;
use crate::neutral::{
    self, DecodeError, Image, ImageSource, Message, Part, Reasoning, ReasoningConfig,
    ResponseFormat, Role, Tool, ToolCall, ToolChoice, ToolResult,
};

/// The top-level members of a `GenerateContentRequest`, in both spellings Google's JSON parser
/// accepts (lowerCamel and the proto name).
const REQUEST_FIELDS: &[&str] = &[
    "contents",
    "model",
    "systemInstruction",
    "system_instruction",
    "tools",
    "toolConfig",
    "tool_config",
    "safetySettings",
    "safety_settings",
    "generationConfig",
    "generation_config",
    "cachedContent",
    "cached_content",
];

/// The top-level members of a `CountTokensRequest`.
const COUNT_FIELDS: &[&str] = &[
    "contents",
    "generateContentRequest",
    "generate_content_request",
];

/// Where Google keeps the files its Files API stores; only Gemini can read them.
const FILES_API: &str = "https://generativelanguage.googleapis.com/";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Body {
    #[serde(default)]
    contents: Option<Vec<wire::Content>>,
    #[serde(default, alias = "system_instruction")]
    system_instruction: Option<wire::Content>,
    /// Read entry by entry: every entry that is not `functionDeclarations` is a Gemini-only tool.
    #[serde(default)]
    tools: Option<Vec<Box<RawValue>>>,
    #[serde(default, alias = "tool_config")]
    tool_config: Option<wire::ToolConfig>,
    #[serde(default, alias = "safety_settings")]
    safety_settings: Option<Box<RawValue>>,
    #[serde(default, alias = "generation_config")]
    generation_config: Option<GenerationConfig>,
    #[serde(default, alias = "cached_content")]
    cached_content: Option<String>,
    /// `models/…` in a `countTokens` `generateContentRequest`; the URL decides.
    #[serde(default)]
    #[allow(dead_code, reason = "accepted and ignored: the URL names the model")]
    model: Option<IgnoredAny>,
}

/// `generationConfig`, with the fields the egress never writes.
#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig {
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default, alias = "top_p")]
    top_p: Option<f64>,
    /// An integer in the API; JavaScript clients may write `40.0`.
    #[serde(default, alias = "top_k")]
    top_k: Option<f64>,
    #[serde(default, alias = "max_output_tokens")]
    max_output_tokens: Option<u32>,
    #[serde(default, alias = "stop_sequences")]
    stop_sequences: Option<Vec<String>>,
    #[serde(default, alias = "candidate_count")]
    candidate_count: Option<i64>,
    #[serde(default)]
    seed: Option<i64>,
    #[serde(default, alias = "presence_penalty")]
    presence_penalty: Option<f64>,
    #[serde(default, alias = "frequency_penalty")]
    frequency_penalty: Option<f64>,
    #[serde(default, alias = "response_mime_type")]
    response_mime_type: Option<String>,
    #[serde(default, alias = "response_schema")]
    response_schema: Option<Value>,
    #[serde(default, alias = "response_json_schema", alias = "_responseJsonSchema")]
    response_json_schema: Option<Value>,
    #[serde(default, alias = "thinking_config")]
    thinking_config: Option<wire::ThinkingConfig>,
    #[serde(default, alias = "response_logprobs")]
    response_logprobs: Option<bool>,
    #[serde(default)]
    logprobs: Option<i64>,
    #[serde(default, alias = "response_modalities")]
    response_modalities: Option<Vec<String>>,
    #[serde(default, alias = "speech_config")]
    speech_config: Option<IgnoredAny>,
}

/// `GenerateContentRequest` body → neutral, for a vendor that is not Gemini.
///
/// `model` and `stream` come from the URL. Unknown top-level members are refused the way Google
/// refuses them (`Invalid JSON payload received. Unknown name "x": Cannot find field.`); unknown
/// members deeper down are ignored.
///
/// - `contents`: roles `user` (also when absent) and `model`; `text` parts, `thought` parts
///   (→ [`Part::Reasoning`], consecutive ones joined), `inlineData` images (→ base64),
///   `fileData` images (→ URL; other media types and Files API files are a 400),
///   `functionCall` (→ [`Role::Assistant`] tool calls; ids kept, or synthesized as `call_…`)
///   and `functionResponse` (→ one [`Role::Tool`] message each; a response without an id takes
///   the id of the first unanswered call of the latest model turn with the same name, else the
///   first unanswered one). `thoughtSignature`s come back as the vendor issued them (see the
///   module docs); one on a plain text part is not kept.
/// - `systemInstruction` text parts → `system`.
/// - `tools[].functionDeclarations`: `parametersJsonSchema` as is, or `parameters` (Gemini's
///   OpenAPI-style schema) turned into JSON Schema. Any other tool (`googleSearch`,
///   `codeExecution`…) is a 400: only Gemini has it.
/// - `toolConfig.functionCallingConfig`: `AUTO`/`VALIDATED` → auto, `NONE` → none, `ANY` →
///   required (named when exactly one function is allowed); `allowedFunctionNames` with `ANY`
///   or `VALIDATED` also narrows the declared tools to those names.
/// - `generationConfig`: sampling, `stopSequences`, `maxOutputTokens`, `seed`, penalties,
///   `responseMimeType` with `responseSchema`/`responseJsonSchema`, `thinkingConfig`
///   (`thinkingBudget` ≥ 0 → budget, `-1` → the vendor's default, `thinkingLevel` → effort).
///   `candidateCount` other than 1, log probabilities and non-text `responseModalities` are a 400.
pub fn decode_request(body: &[u8], model: &str, stream: bool) -> Result<Decoded, DecodeError> {
    check_members(body, REQUEST_FIELDS)?;
    let parsed: Body = wire::parse(body, "request")?;
    let contents = parsed.contents.as_deref().unwrap_or_default();
    if contents.is_empty() {
        return Err(DecodeError::new(
            "* GenerateContentRequest.contents: contents is not specified",
        ));
    }
    let mut decoded = decode_body(parsed)?;
    decoded.request.model = model.to_owned();
    decoded.request.stream = stream;
    Ok(decoded)
}

/// A `:countTokens` body → a neutral request to estimate: `{"contents":[…]}` or
/// `{"generateContentRequest":{…}}` (read like [`decode_request`]). `stream` is false.
pub fn decode_count_tokens(body: &[u8], model: &str) -> Result<neutral::Request, DecodeError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct CountBody {
        #[serde(default)]
        contents: Option<Vec<wire::Content>>,
        #[serde(default, alias = "generate_content_request")]
        generate_content_request: Option<Box<RawValue>>,
    }
    check_members(body, COUNT_FIELDS)?;
    let parsed: CountBody = wire::parse(body, "countTokens request")?;
    let mut request = match (parsed.contents, parsed.generate_content_request) {
        (Some(_), Some(_)) => {
            return Err(DecodeError::new(
                "contents and generateContentRequest cannot both be set",
            ));
        }
        (_, Some(inner)) => {
            check_members(inner.get().as_bytes(), REQUEST_FIELDS)?;
            decode_body(wire::parse(
                inner.get().as_bytes(),
                "generateContentRequest",
            )?)?
            .request
        }
        (contents, None) => {
            decode_body(Body {
                contents,
                system_instruction: None,
                tools: None,
                tool_config: None,
                safety_settings: None,
                generation_config: None,
                cached_content: None,
                model: None,
            })?
            .request
        }
    };
    request.model = model.to_owned();
    Ok(request)
}

/// Refuses a top-level member outside `known`, with Google's message.
fn check_members(body: &[u8], known: &[&str]) -> Result<(), DecodeError> {
    // A body the scanner cannot walk is reported by the parser, with a better message.
    let Ok(members) = json_scan::members(body) else {
        return Ok(());
    };
    for member in &members {
        let key = &body[member.key.clone()];
        if !known.iter().any(|k| k.as_bytes() == key) {
            return Err(DecodeError::new(format!(
                "Invalid JSON payload received. Unknown name \"{}\": Cannot find field.",
                String::from_utf8_lossy(key)
            )));
        }
    }
    Ok(())
}

fn decode_body(body: Body) -> Result<Decoded, DecodeError> {
    let messages = decode_contents(body.contents.unwrap_or_default())?;
    let system = match body.system_instruction {
        Some(content) => system_texts(content)?,
        None => Vec::new(),
    };
    let mut tools = Vec::new();
    for (index, raw) in body.tools.unwrap_or_default().iter().enumerate() {
        tools.extend(declarations(index, raw)?);
    }
    let tool_choice = match body
        .tool_config
        .and_then(|config| config.function_calling_config)
    {
        Some(config) => Some(tool_choice(config, &mut tools)?),
        None => None,
    };
    let config = body.generation_config.unwrap_or_default();
    let (sampling, response_format, reasoning) = generation(config)?;
    Ok(Decoded {
        request: neutral::Request {
            model: String::new(),
            system,
            messages,
            tools,
            tool_choice,
            parallel_tool_calls: None,
            sampling,
            response_format,
            reasoning,
            stream: false,
            user: None,
            ..neutral::Request::default()
        },
        extras: Extras {
            safety_settings: body.safety_settings.filter(|raw| raw.get() != "null"),
            cached_content: body.cached_content.filter(|c| !c.is_empty()),
        },
    })
}

/// Ids for calls and responses that came without one.
struct Ids {
    /// Calls of the latest model turn without an id, not yet answered: (name, id).
    pending: Vec<(String, String)>,
    synthesized: u64,
}

impl Ids {
    fn fresh(&mut self) -> String {
        self.synthesized += 1;
        neutral::synthesize_call_id(self.synthesized)
    }

    /// The id of the call a response without an id answers.
    fn answer(&mut self, name: &str) -> String {
        let at = self
            .pending
            .iter()
            .position(|(pending, _)| pending == name)
            .or_else(|| (!self.pending.is_empty()).then_some(0));
        match at {
            Some(at) => self.pending.remove(at).1,
            None => self.fresh(),
        }
    }
}

fn decode_contents(contents: Vec<wire::Content>) -> Result<Vec<Message>, DecodeError> {
    let mut messages: Vec<Message> = Vec::new();
    let mut ids = Ids {
        pending: Vec::new(),
        synthesized: 0,
    };
    for (c, content) in contents.into_iter().enumerate() {
        let model = match content.role.as_deref() {
            None | Some("" | "user" | "function") => false,
            Some("model") => true,
            Some(other) => {
                return Err(DecodeError::new(format!(
                    "contents[{c}].role: Please use a valid role: user, model. (got \"{other}\")"
                )));
            }
        };
        if model {
            ids.pending.clear();
            let mut message = Message {
                role: Role::Assistant,
                parts: Vec::new(),
            };
            for (p, part) in content.parts.into_iter().enumerate() {
                model_part(
                    part,
                    &format!("contents[{c}].parts[{p}]"),
                    &mut ids,
                    &mut message,
                )?;
            }
            if !message.parts.is_empty() {
                messages.push(message);
            }
        } else {
            let mut current: Option<Message> = None;
            for (p, part) in content.parts.into_iter().enumerate() {
                let Some((role, part)) =
                    user_part(part, &format!("contents[{c}].parts[{p}]"), &mut ids)?
                else {
                    continue;
                };
                match &mut current {
                    Some(message) if message.role == role && role == Role::User => {
                        message.parts.push(part);
                    }
                    _ => {
                        messages.extend(current.take());
                        current = Some(Message {
                            role,
                            parts: vec![part],
                        });
                    }
                }
            }
            messages.extend(current);
        }
    }
    Ok(messages)
}

/// One part of a model turn, appended to `message`.
fn model_part(
    part: wire::Part,
    at: &str,
    ids: &mut Ids,
    message: &mut Message,
) -> Result<(), DecodeError> {
    if part.function_response.is_some() {
        return Err(DecodeError::new(format!(
            "{at}: a functionResponse belongs in a user turn"
        )));
    }
    if let Some(call) = part.function_call {
        let (signature, carried) = match part.thought_signature.as_deref() {
            Some(signature) if !signature.is_empty() => carry::read_call(signature),
            _ => (None, Vec::new()),
        };
        // Reasoning that rode on the call comes back in front of the turn, unless the client
        // kept the thought parts themselves.
        if !carried.is_empty()
            && !message
                .parts
                .iter()
                .any(|p| matches!(p, Part::Reasoning(_)))
        {
            message
                .parts
                .splice(0..0, carried.into_iter().map(Part::Reasoning));
        }
        let id = match call.id.filter(|id| !id.is_empty()) {
            Some(id) => id,
            None => {
                let id = ids.fresh();
                ids.pending.push((call.name.clone(), id.clone()));
                id
            }
        };
        message.parts.push(Part::ToolCall(ToolCall {
            id,
            name: call.name,
            arguments: call
                .args
                .map_or_else(|| "{}".to_owned(), |args| wire::compact(args.get())),
            signature,
        }));
        return Ok(());
    }
    if part.thought == Some(true) {
        let text = part.text.unwrap_or_default();
        let (signature, redacted, origin) = match part.thought_signature.as_deref() {
            Some(signature) if !signature.is_empty() => carry::read_thought(signature),
            _ => (None, None, None),
        };
        if text.is_empty() && signature.is_none() && redacted.is_none() {
            return Ok(());
        }
        // A streamed thought arrives in pieces, the signature on the last one.
        if let Some(Part::Reasoning(previous)) = message.parts.last_mut()
            && previous.signature.is_none()
            && previous.redacted.is_none()
            && redacted.is_none()
        {
            previous.text.push_str(&text);
            previous.signature = signature;
            previous.origin = origin;
            return Ok(());
        }
        message.parts.push(Part::Reasoning(Reasoning {
            text,
            signature,
            redacted,
            origin,
        }));
        return Ok(());
    }
    let Some(decoded) = media_or_text(part, at)? else {
        return Ok(());
    };
    // Streamed answers come back as many small text parts: one text is what was meant.
    match (message.parts.last_mut(), decoded) {
        (Some(Part::Text { text }), Part::Text { text: more }) => text.push_str(&more),
        (_, decoded) => message.parts.push(decoded),
    }
    Ok(())
}

/// One part of a user turn: a `functionResponse` is a [`Role::Tool`] result.
fn user_part(
    part: wire::Part,
    at: &str,
    ids: &mut Ids,
) -> Result<Option<(Role, Part)>, DecodeError> {
    if part.function_call.is_some() {
        return Err(DecodeError::new(format!(
            "{at}: a functionCall belongs in a model turn"
        )));
    }
    if let Some(response) = part.function_response {
        let call_id = match response.id.filter(|id| !id.is_empty()) {
            Some(id) => id,
            None => ids.answer(&response.name),
        };
        let (content, is_error) = match &response.response {
            Some(raw) => result_content(raw),
            None => (String::new(), false),
        };
        return Ok(Some((
            Role::Tool,
            Part::ToolResult(ToolResult {
                call_id,
                name: Some(response.name).filter(|n| !n.is_empty()),
                content,
                is_error,
            }),
        )));
    }
    if part.thought == Some(true) {
        // Thoughts are the model's; a client has no reason to send one as its own.
        return Ok(None);
    }
    Ok(media_or_text(part, at)?.map(|part| (Role::User, part)))
}

/// A `functionResponse.response` → (content, is_error). `{"error": …}` alone is a failed call;
/// `{"output": "text"}` and `{"result": "text"}` alone (the SDKs' wrappers) give the text;
/// anything else is kept as compact JSON text.
fn result_content(raw: &RawValue) -> (String, bool) {
    if let Ok(map) = serde_json::from_str::<HashMap<String, Box<RawValue>>>(raw.get())
        && map.len() == 1
        && let Some((key, value)) = map.into_iter().next()
    {
        let text = value.get();
        let string = || serde_json::from_str::<String>(text).ok();
        match key.as_str() {
            "output" | "result" => {
                if let Some(text) = string() {
                    return (text, false);
                }
            }
            "error" => return (string().unwrap_or_else(|| wire::compact(text)), true),
            _ => {}
        }
    }
    (wire::compact(raw.get()), false)
}

/// Text, `inlineData` and `fileData`; `None` for an empty text or a part with no data.
fn media_or_text(part: wire::Part, at: &str) -> Result<Option<Part>, DecodeError> {
    if let Some(blob) = part.inline_data {
        let mime = blob.mime_type.to_ascii_lowercase();
        let kind = if mime == crate::neutral::PDF {
            Some(crate::neutral::FileKind::Document)
        } else if crate::neutral::audio_media_type(
            mime.trim_start_matches("audio/").trim_start_matches("x-"),
        )
        .is_some()
            || mime == "audio/mpeg"
        {
            Some(crate::neutral::FileKind::Audio)
        } else {
            None
        };
        if let Some(kind) = kind {
            return Ok(Some(Part::File(crate::neutral::File {
                source: ImageSource::Base64 {
                    media_type: mime,
                    data: blob.data,
                },
                filename: None,
                kind,
            })));
        }
        if !is_image(&blob.mime_type) {
            return Err(DecodeError::new(format!(
                "{at}.inlineData: mimeType \"{}\" cannot be sent to this model: only images \
                 (image/*), PDFs and mp3/wav audio can be translated for a vendor other than Gemini",
                blob.mime_type
            )));
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
        let mime = file
            .mime_type
            .clone()
            .filter(|m| !m.is_empty())
            .or_else(|| mime_from_extension(&file.file_uri).map(str::to_owned));
        if !mime.as_deref().is_some_and(is_image) {
            return Err(DecodeError::new(format!(
                "{at}.fileData: {} cannot be sent to this model: only images (image/*) can be \
                 translated for a vendor other than Gemini",
                match &mime {
                    Some(mime) => format!("mimeType \"{mime}\""),
                    None => "a file without an image mimeType".to_owned(),
                }
            )));
        }
        if file.file_uri.starts_with(FILES_API) {
            return Err(DecodeError::new(format!(
                "{at}.fileData: files uploaded with the Gemini Files API can only be read by \
                 Gemini models; send the image as inlineData or by a public URL"
            )));
        }
        return Ok(Some(Part::Image(Image {
            source: ImageSource::from_url(&file.file_uri),
            detail: None,
        })));
    }
    Ok(part.text.filter(|t| !t.is_empty()).map(Part::text))
}

fn is_image(mime: &str) -> bool {
    mime.get(..6)
        .is_some_and(|prefix| prefix.eq_ignore_ascii_case("image/"))
}

/// The image MIME type a file name suggests.
fn mime_from_extension(uri: &str) -> Option<&'static str> {
    let path = uri.split(['?', '#']).next()?;
    let extension = path.rsplit('/').next()?.rsplit_once('.')?.1;
    Some(match extension.to_ascii_lowercase().as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "heic" => "image/heic",
        "heif" => "image/heif",
        _ => return None,
    })
}

fn system_texts(content: wire::Content) -> Result<Vec<String>, DecodeError> {
    let mut system = Vec::new();
    for (p, part) in content.parts.into_iter().enumerate() {
        if part.inline_data.is_some()
            || part.file_data.is_some()
            || part.function_call.is_some()
            || part.function_response.is_some()
        {
            return Err(DecodeError::new(format!(
                "systemInstruction.parts[{p}]: only text parts are supported in a system instruction"
            )));
        }
        if let Some(text) = part.text.filter(|t| !t.is_empty()) {
            system.push(text);
        }
    }
    Ok(system)
}

/// The function declarations of `tools[index]`; any other kind of tool is Gemini's alone.
fn declarations(index: usize, raw: &RawValue) -> Result<Vec<Tool>, DecodeError> {
    #[derive(Deserialize)]
    struct Declarations {
        #[serde(
            default,
            rename = "functionDeclarations",
            alias = "function_declarations"
        )]
        function_declarations: Option<Vec<wire::FunctionDeclaration>>,
    }
    let bytes = raw.get().as_bytes();
    let members = json_scan::members(bytes)
        .map_err(|_| DecodeError::new(format!("tools[{index}] must be an object")))?;
    for member in &members {
        let key = &bytes[member.key.clone()];
        if key != b"functionDeclarations" && key != b"function_declarations" {
            return Err(DecodeError::new(format!(
                "tools[{index}].{} is only available on Gemini models",
                String::from_utf8_lossy(key)
            )));
        }
    }
    let parsed: Declarations = serde_json::from_str(raw.get()).map_err(|err| {
        DecodeError::new(format!("invalid gemini request at tools[{index}]: {err}"))
    })?;
    parsed
        .function_declarations
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(d, declaration)| {
            let at = format!("tools[{index}].functionDeclarations[{d}]");
            if declaration.name.is_empty() {
                return Err(DecodeError::new(format!("{at}.name: name is required")));
            }
            let parameters =
                match (declaration.parameters_json_schema, declaration.parameters) {
                    (Some(schema), _) => Some(schema),
                    (None, Some(schema)) => Some(json_schema(&schema, 0).map_err(|problem| {
                        DecodeError::new(format!("{at}.parameters: {problem}"))
                    })?),
                    (None, None) => None,
                };
            Ok(Tool {
                name: declaration.name,
                description: declaration.description.filter(|d| !d.is_empty()),
                parameters,
                strict: None,
            })
        })
        .collect()
}

fn tool_choice(
    config: wire::FunctionCallingConfig,
    tools: &mut Vec<Tool>,
) -> Result<ToolChoice, DecodeError> {
    let mode = config
        .mode
        .as_deref()
        .unwrap_or("AUTO")
        .to_ascii_uppercase();
    let allowed = config.allowed_function_names;
    let narrow = |tools: &mut Vec<Tool>| -> Result<(), DecodeError> {
        if allowed.is_empty() {
            return Ok(());
        }
        if let Some(unknown) = allowed
            .iter()
            .find(|name| !tools.iter().any(|tool| &tool.name == *name))
        {
            return Err(DecodeError::new(format!(
                "toolConfig.functionCallingConfig.allowedFunctionNames: \"{unknown}\" is not a declared function"
            )));
        }
        tools.retain(|tool| allowed.contains(&tool.name));
        Ok(())
    };
    match mode.as_str() {
        "AUTO" | "MODE_UNSPECIFIED" => {
            if !allowed.is_empty() {
                return Err(DecodeError::new(
                    "toolConfig.functionCallingConfig.allowedFunctionNames: only allowed with mode ANY or VALIDATED",
                ));
            }
            Ok(ToolChoice::Auto)
        }
        "VALIDATED" => {
            narrow(tools)?;
            Ok(ToolChoice::Auto)
        }
        "NONE" => Ok(ToolChoice::None),
        "ANY" => {
            narrow(tools)?;
            Ok(match allowed.as_slice() {
                [name] => ToolChoice::Named(name.clone()),
                _ => ToolChoice::Required,
            })
        }
        other => Err(DecodeError::new(format!(
            "Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), \"{other}\""
        ))),
    }
}

type Generation = (
    neutral::Sampling,
    Option<ResponseFormat>,
    Option<ReasoningConfig>,
);

fn generation(config: GenerationConfig) -> Result<Generation, DecodeError> {
    const AT: &str = "generationConfig";
    if let Some(count) = config.candidate_count
        && count != 0
        && count != 1
    {
        return Err(DecodeError::new(format!(
            "{AT}.candidateCount: only 1 candidate is supported (got {count})"
        )));
    }
    if config.response_logprobs == Some(true) || config.logprobs.is_some() {
        return Err(DecodeError::new(format!(
            "{AT}.responseLogprobs: log probabilities are only available on Gemini models"
        )));
    }
    if let Some(modality) = config
        .response_modalities
        .iter()
        .flatten()
        .find(|m| !m.eq_ignore_ascii_case("TEXT"))
    {
        return Err(DecodeError::new(format!(
            "{AT}.responseModalities: \"{modality}\" output is only available on Gemini models"
        )));
    }
    if config.speech_config.is_some() {
        return Err(DecodeError::new(format!(
            "{AT}.speechConfig: speech output is only available on Gemini models"
        )));
    }
    let top_k = match config.top_k {
        Some(k) if k.is_finite() && k >= 0.0 && k.fract() == 0.0 && k <= f64::from(u32::MAX) => {
            // Checked: a whole number in range.
            Some(k as u32)
        }
        Some(k) => {
            return Err(DecodeError::new(format!(
                "{AT}.topK: must be a non-negative integer (got {k})"
            )));
        }
        None => None,
    };
    let sampling = neutral::Sampling {
        temperature: config.temperature,
        top_p: config.top_p,
        top_k,
        max_tokens: config.max_output_tokens,
        stop: config.stop_sequences.unwrap_or_default(),
        seed: config.seed,
        presence_penalty: config.presence_penalty,
        frequency_penalty: config.frequency_penalty,
    };

    let schema = match (config.response_json_schema, config.response_schema) {
        (Some(schema), _) => Some(schema),
        (None, Some(schema)) => Some(
            json_schema(&schema, 0)
                .map_err(|problem| DecodeError::new(format!("{AT}.responseSchema: {problem}")))?,
        ),
        (None, None) => None,
    };
    let mime = config.response_mime_type.filter(|m| !m.is_empty());
    let response_format = match (mime.as_deref(), schema) {
        (Some("application/json"), Some(schema)) => Some(ResponseFormat::JsonSchema {
            name: "response".to_owned(),
            schema,
            strict: None,
        }),
        (Some("application/json"), None) => Some(ResponseFormat::JsonObject),
        (None | Some("text/plain"), Some(_)) => {
            return Err(DecodeError::new(format!(
                "{AT}.responseSchema: a response schema needs responseMimeType \"application/json\""
            )));
        }
        (Some("text/plain"), None) => Some(ResponseFormat::Text),
        (None, None) => None,
        (Some(other), _) => {
            return Err(DecodeError::new(format!(
                "{AT}.responseMimeType: \"{other}\" is not supported here: use \"text/plain\" or \"application/json\""
            )));
        }
    };

    // `includeThoughts` has no neutral counterpart: thoughts the vendor returns are always
    // passed on, because signed reasoning must come back whole on the next turn.
    let reasoning = config.thinking_config.and_then(|thinking| {
        // -1 asks for a dynamic budget: the vendor's default.
        let budget_tokens = thinking
            .thinking_budget
            .filter(|b| *b >= 0)
            .map(|b| u32::try_from(b).unwrap_or(u32::MAX));
        let effort = thinking
            .thinking_level
            .map(|level| level.to_ascii_lowercase())
            .filter(|level| !level.is_empty() && level != "thinking_level_unspecified");
        (budget_tokens.is_some() || effort.is_some()).then_some(ReasoningConfig {
            effort,
            budget_tokens,
        })
    });
    Ok((sampling, response_format, reasoning))
}

/// Gemini's OpenAPI-style `Schema` → JSON Schema: `type` in lower case (`OBJECT` → `object`),
/// `nullable: true` → a `"null"` type (or `anyOf` member), and the Gemini-only keywords
/// (`propertyOrdering`, `format: "enum"`, `example`) dropped. Nesting is limited to
/// [`MAX_SCHEMA_DEPTH`].
fn json_schema(schema: &Value, depth: usize) -> Result<Value, String> {
    if depth > MAX_SCHEMA_DEPTH {
        return Err(format!(
            "schema nested deeper than {MAX_SCHEMA_DEPTH} levels"
        ));
    }
    let Value::Object(map) = schema else {
        return Ok(schema.clone());
    };
    let mut out = Map::new();
    for (key, value) in map {
        match key.as_str() {
            "type" => match value.as_str() {
                Some(kind) => {
                    let kind = kind.to_ascii_lowercase();
                    if !kind.is_empty() && kind != "type_unspecified" {
                        out.insert(key.clone(), Value::String(kind));
                    }
                }
                None => {
                    out.insert(key.clone(), value.clone());
                }
            },
            "nullable" | "propertyOrdering" | "example" => {}
            "format" if value.as_str() == Some("enum") => {}
            "properties" => {
                let Value::Object(properties) = value else {
                    out.insert(key.clone(), value.clone());
                    continue;
                };
                let mut converted = Map::new();
                for (name, property) in properties {
                    converted.insert(name.clone(), json_schema(property, depth + 1)?);
                }
                out.insert(key.clone(), Value::Object(converted));
            }
            "items" => {
                out.insert(key.clone(), json_schema(value, depth + 1)?);
            }
            "anyOf" => {
                let Value::Array(branches) = value else {
                    out.insert(key.clone(), value.clone());
                    continue;
                };
                let branches = branches
                    .iter()
                    .map(|branch| json_schema(branch, depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                out.insert(key.clone(), Value::Array(branches));
            }
            _ => {
                out.insert(key.clone(), value.clone());
            }
        }
    }
    if map.get("nullable") == Some(&Value::Bool(true)) {
        let null = Value::String("null".to_owned());
        if let Some(Value::String(kind)) = out.get("type").cloned() {
            out.insert(
                "type".to_owned(),
                Value::Array(vec![Value::String(kind), null]),
            );
        } else if let Some(Value::Array(branches)) = out.get_mut("anyOf") {
            branches.push(Value::Object(Map::from_iter([("type".to_owned(), null)])));
        }
        if let Some(Value::Array(values)) = out.get_mut("enum")
            && !values.contains(&Value::Null)
        {
            values.push(Value::Null);
        }
    }
    Ok(Value::Object(out))
}

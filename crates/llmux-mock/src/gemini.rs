//! Gemini: `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent`.
//!
//! Shapes follow `fixtures/gemini/*`. SSE frames end in `\r\n\r\n`, as Google sends them.
//! Skipped on purpose: `thoughtsTokenCount` (the mock does not think).
//! Enforced as Gemini 3 does: for models outside gemini-2.x, the first `functionCall` part of
//! every `model` turn in the history must carry its `thoughtSignature` (400 otherwise).

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::json::{array_at, str_at, unknown_key};
use crate::plan::{self, Choice, Facts, Reply};
use crate::respond::{self, EVENT_STREAM, JSON};
use crate::sse::Events;
use crate::state::{Api, Incoming, Shared};
use crate::text;

// ---------------------------------------------------------------------------------------------
// Wire types (field order is the vendor's).

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateResponse<'a> {
    candidates: [Candidate<'a>; 1],
    usage_metadata: UsageMetadata,
    model_version: &'a str,
    response_id: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    content: Content<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_reason: Option<&'static str>,
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    finish_message: Option<&'static str>,
}

#[derive(Serialize)]
struct Content<'a> {
    parts: Vec<Part<'a>>,
    role: &'static str,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Part<'a> {
    Text {
        text: &'a str,
    },
    #[serde(rename_all = "camelCase")]
    Call {
        function_call: FunctionCall<'a>,
        #[serde(skip_serializing_if = "Option::is_none")]
        thought_signature: Option<&'a str>,
    },
}

#[derive(Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    args: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
}

#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct UsageMetadata {
    prompt_token_count: u64,
    candidates_token_count: u64,
    total_token_count: u64,
    prompt_tokens_details: [ModalityCount; 1],
}

#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "camelCase")]
struct ModalityCount {
    modality: &'static str,
    token_count: u64,
}

impl UsageMetadata {
    fn new(prompt: u64, candidates: u64) -> Self {
        Self {
            prompt_token_count: prompt,
            candidates_token_count: candidates,
            total_token_count: prompt + candidates,
            prompt_tokens_details: [ModalityCount {
                modality: "TEXT",
                token_count: prompt,
            }],
        }
    }
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: Status<'a>,
}

#[derive(Serialize)]
struct Status<'a> {
    code: u16,
    message: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<[RetryInfo; 1]>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RetryInfo {
    #[serde(rename = "@type")]
    kind: &'static str,
    retry_delay: String,
}

/// SSE frame terminator: Google ends frames with CRLF pairs.
const CRLF2: &[u8] = b"\r\n\r\n";

// ---------------------------------------------------------------------------------------------
// Errors.

/// A google.rpc.Status error response.
fn error(status: StatusCode, rpc_status: &str, message: &str, retry: Option<String>) -> Response {
    let envelope = ErrorEnvelope {
        error: Status {
            code: status.as_u16(),
            message,
            status: rpc_status,
            details: retry.map(|retry_delay| {
                [RetryInfo {
                    kind: "type.googleapis.com/google.rpc.RetryInfo",
                    retry_delay,
                }]
            }),
        },
    };
    respond::json(status, &envelope, Default::default())
}

/// The error Gemini sends for `status`, used for status faults. A 429 carries `RetryInfo`
/// whose delay follows the fault's `Retry-After` seconds (1s when absent).
fn status_error(status: StatusCode, model: &str, retry_after: Option<&str>) -> Response {
    match status.as_u16() {
        400 => error(
            status,
            "INVALID_ARGUMENT",
            "Request contains an invalid argument.",
            None,
        ),
        401 => error(
            status,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
            None,
        ),
        403 => error(
            status,
            "PERMISSION_DENIED",
            "The caller does not have permission",
            None,
        ),
        404 => {
            let message = format!(
                "models/{model} is not found for API version v1beta, or is not supported for \
                 generateContent. Call ListModels to see the list of available models and their \
                 supported methods."
            );
            error(status, "NOT_FOUND", &message, None)
        }
        429 => {
            let seconds = retry_after
                .and_then(|r| r.trim().parse::<u64>().ok())
                .unwrap_or(1);
            error(
                status,
                "RESOURCE_EXHAUSTED",
                "Resource has been exhausted (e.g. check quota).",
                Some(format!("{seconds}s")),
            )
        }
        503 => error(
            status,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
            None,
        ),
        504 => error(
            status,
            "DEADLINE_EXCEEDED",
            "The request timed out. Please try again.",
            None,
        ),
        code if code >= 500 => error(
            status,
            "INTERNAL",
            "An internal error has occurred. Please retry or report in \
             https://developers.generativeai.google/guide/troubleshooting",
            None,
        ),
        _ => error(
            status,
            "FAILED_PRECONDITION",
            "Request failed (injected by llmux mock).",
            None,
        ),
    }
}

/// What Gemini 3 answers when a model turn's function calls come back without the
/// `thoughtSignature` it issued.
const MISSING_SIGNATURE: &str = "Function call is missing a thought_signature in functionCall \
     parts. This is required for tools to work correctly, and missing thought_signature may lead \
     to degraded model performance.";

/// The top-level fields of a `GenerateContentRequest` (proto JSON takes both spellings).
const KNOWN_FIELDS: &[&str] = &[
    "contents",
    "systemInstruction",
    "system_instruction",
    "tools",
    "toolConfig",
    "tool_config",
    "generationConfig",
    "generation_config",
    "safetySettings",
    "safety_settings",
    "cachedContent",
    "cached_content",
    "labels",
    "model",
];

/// The fields of `generationConfig`.
const GENERATION_FIELDS: &[&str] = &[
    "stopSequences",
    "stop_sequences",
    "responseMimeType",
    "response_mime_type",
    "responseSchema",
    "response_schema",
    "responseJsonSchema",
    "response_json_schema",
    "_responseJsonSchema",
    "responseModalities",
    "response_modalities",
    "candidateCount",
    "candidate_count",
    "maxOutputTokens",
    "max_output_tokens",
    "temperature",
    "topP",
    "top_p",
    "topK",
    "top_k",
    "seed",
    "presencePenalty",
    "presence_penalty",
    "frequencyPenalty",
    "frequency_penalty",
    "responseLogprobs",
    "response_logprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "enable_enhanced_civic_answers",
    "speechConfig",
    "speech_config",
    "thinkingConfig",
    "thinking_config",
    "imageConfig",
    "image_config",
    "mediaResolution",
    "media_resolution",
];

/// The fields of `thinkingConfig`.
const THINKING_FIELDS: &[&str] = &[
    "includeThoughts",
    "include_thoughts",
    "thinkingBudget",
    "thinking_budget",
    "thinkingLevel",
    "thinking_level",
];

/// The message the real API gives for an unknown field (top level, `generationConfig` or its
/// `thinkingConfig`), in proto JSON's words.
fn unknown_field(request: &Value) -> Option<String> {
    let message = |name: &str, at: Option<&str>| {
        let at = at.map_or_else(String::new, |at| format!(" at '{at}'"));
        Some(format!(
            "Invalid JSON payload received. Unknown name \"{name}\"{at}: Cannot find field."
        ))
    };
    if let Some(name) = unknown_key(request, KNOWN_FIELDS) {
        return message(name, None);
    }
    let generation = field(request, "generationConfig", "generation_config")?;
    if let Some(name) = unknown_key(generation, GENERATION_FIELDS) {
        return message(name, Some("generation_config"));
    }
    let thinking = field(generation, "thinkingConfig", "thinking_config")?;
    unknown_key(thinking, THINKING_FIELDS)
        .and_then(|name| message(name, Some("generation_config.thinking_config")))
}

fn invalid(message: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "INVALID_ARGUMENT", message, None)
}

// ---------------------------------------------------------------------------------------------
// Requests.

/// `value[camel]`, or `value[snake]` (the REST API accepts both spellings).
fn field<'a>(value: &'a Value, camel: &str, snake: &str) -> Option<&'a Value> {
    value.get(camel).or_else(|| value.get(snake))
}

/// The text parts of `parts` joined with "".
fn parts_text(parts: &[Value]) -> String {
    parts
        .iter()
        .filter_map(|p| p.get("text").and_then(Value::as_str))
        .collect()
}

/// What the request asks for, read loosely.
fn facts(request: &Value) -> Facts<'_> {
    let contents = array_at(request, "contents");
    let last_user = contents.iter().rev().find(|c| {
        let role = str_at(c, "role");
        role.is_empty() || role == "user"
    });
    let parts = last_user.map_or(&[][..], |c| array_at(c, "parts"));
    let user_text = parts_text(parts);
    let responses: Vec<String> = parts
        .iter()
        .filter_map(|p| field(p, "functionResponse", "function_response"))
        .map(|r| r.get("response").map_or_else(String::new, Value::to_string))
        .collect();
    let tool_result = (user_text.is_empty() && !responses.is_empty()).then(|| responses.join(" "));

    let declared = array_at(request, "tools")
        .iter()
        .filter_map(|t| field(t, "functionDeclarations", "function_declarations"))
        .filter_map(Value::as_array)
        .flatten()
        .map(|d| str_at(d, "name"));
    let config = field(request, "toolConfig", "tool_config")
        .and_then(|c| field(c, "functionCallingConfig", "function_calling_config"));
    let mode = config.map_or("", |c| str_at(c, "mode"));
    let allowed: Vec<&str> = config
        .and_then(|c| field(c, "allowedFunctionNames", "allowed_function_names"))
        .and_then(Value::as_array)
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // allowedFunctionNames narrows the choice; one allowed name is a named choice.
    let tools = declared
        .filter(|name| allowed.is_empty() || allowed.contains(name))
        .collect();
    let choice = if mode.eq_ignore_ascii_case("none") {
        Choice::None
    } else {
        Choice::Auto
    };
    Facts {
        user_text,
        tool_result,
        tools,
        choice,
    }
}

/// Whether a `model` turn with function calls lacks a `thoughtSignature` on its first
/// `functionCall` part: Gemini 3 requires one there (later parallel calls carry none).
fn missing_thought_signature(request: &Value) -> bool {
    array_at(request, "contents")
        .iter()
        .filter(|content| str_at(content, "role") == "model")
        .filter_map(|content| {
            array_at(content, "parts")
                .iter()
                .find(|part| field(part, "functionCall", "function_call").is_some())
        })
        .any(|part| {
            field(part, "thoughtSignature", "thought_signature")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        })
}

/// Prompt tokens: words of the system instruction and of every text part.
fn prompt_tokens(request: &Value) -> u64 {
    let system = field(request, "systemInstruction", "system_instruction")
        .map_or(0, |s| text::words(&parts_text(array_at(s, "parts"))));
    let contents: usize = array_at(request, "contents")
        .iter()
        .map(|c| text::words(&parts_text(array_at(c, "parts"))))
        .sum();
    text::tokens(system + contents)
}

/// The value of query parameter `name`.
fn query_param<'a>(uri: &'a Uri, name: &str) -> Option<&'a str> {
    uri.query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// `POST /v1beta/models/{model}:{method}`.
pub(crate) async fn models(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = uri.path().strip_prefix("/v1beta/models/").unwrap_or("");
    let (model, method) = target
        .split_once(':')
        .or_else(|| target.split_once("%3A"))
        .unwrap_or((target, ""));
    let stream = method == "streamGenerateContent";
    let credential = respond::header_str(&headers, "x-goog-api-key")
        .or_else(|| query_param(&uri, "key"))
        .filter(|k| !k.is_empty());
    let incoming = Incoming {
        api: Api::Gemini,
        credential: credential.unwrap_or(""),
        model,
        stream,
        path: respond::path_and_query(&uri),
        headers: &headers,
        body: &body,
    };
    let fault = shared.admit(incoming, true).await;
    let retry_after = fault.as_ref().and_then(|f| f.retry_after.as_deref());
    if let Some(response) =
        respond::fault_status(fault.as_ref(), |s| status_error(s, model, retry_after))
    {
        return response;
    }
    if credential.is_none() {
        return error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). \
             Please use API Key or other form of API consumer identity to call this API.",
            None,
        );
    }
    if !stream && method != "generateContent" {
        let message = format!("Method not found: {method}");
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", &message, None);
    }
    let Some(request) = respond::parse(&body).filter(Value::is_object) else {
        return invalid("Invalid JSON payload received.");
    };
    if let Some(message) = unknown_field(&request) {
        return invalid(&message);
    }
    if array_at(&request, "contents").is_empty() {
        return invalid("* GenerateContentRequest.contents: contents is not specified\n");
    }
    if let Some(message) = crate::content::gemini_refusal(&request) {
        return invalid(&message);
    }
    // Gemini 3 (the models that issue call ids) refuses history whose calls lost their signature.
    if !model.starts_with("gemini-2") && missing_thought_signature(&request) {
        return invalid(MISSING_SIGNATURE);
    }

    let mut reply = plan::decide(&facts(&request));
    let mut finish_reason = "STOP";
    if let Reply::Text(text) = &mut reply {
        let max = field(&request, "generationConfig", "generation_config")
            .and_then(|g| field(g, "maxOutputTokens", "max_output_tokens"))
            .and_then(Value::as_u64);
        if let Some(cut) = max.and_then(|max| text::truncate_words(text, max as usize)) {
            *text = cut.to_owned();
            finish_reason = "MAX_TOKENS";
        }
    }
    // gemini-2.x sends function calls without ids; later models give each call an id.
    let with_ids = !model.starts_with("gemini-2");
    let (call_ids, signature) = match &reply {
        Reply::Tools(calls) => (
            calls
                .iter()
                .map(|_| with_ids.then(|| shared.ids.gemini_call()))
                .collect(),
            shared.ids.thought_signature(),
        ),
        Reply::Text(_) => (Vec::new(), String::new()),
    };
    let answer = Answer {
        model,
        response_id: shared.ids.gemini_response(),
        prompt_tokens: prompt_tokens(&request),
        reply: &reply,
        call_ids,
        signature,
        finish_reason,
    };
    let pacing = respond::pacing(shared.opts.chunk_delay, fault.as_ref());
    let response = if stream {
        let sse = query_param(&uri, "alt") == Some("sse");
        match answer.stream(shared.opts.chunks, sse) {
            Ok(events) => {
                let content_type = if sse { EVENT_STREAM } else { JSON };
                respond::with_body(StatusCode::OK, content_type, events.into_body(pacing))
            }
            Err(err) => respond::internal(&err),
        }
    } else {
        match answer.whole() {
            Ok(whole) => respond::json(StatusCode::OK, &whole, pacing),
            Err(err) => respond::internal(&err),
        }
    };
    respond::finish(response, fault.as_ref())
}

/// Everything needed to render one answer, streamed or not.
struct Answer<'a> {
    model: &'a str,
    response_id: String,
    prompt_tokens: u64,
    reply: &'a Reply,
    call_ids: Vec<Option<String>>,
    signature: String,
    finish_reason: &'static str,
}

impl Answer<'_> {
    fn response<'s>(
        &'s self,
        parts: Vec<Part<'s>>,
        candidates_tokens: u64,
        finish: Option<&'static str>,
        finish_message: Option<&'static str>,
    ) -> GenerateResponse<'s> {
        GenerateResponse {
            candidates: [Candidate {
                content: Content {
                    parts,
                    role: "model",
                },
                finish_reason: finish,
                index: 0,
                finish_message,
            }],
            usage_metadata: UsageMetadata::new(self.prompt_tokens, candidates_tokens),
            model_version: self.model,
            response_id: &self.response_id,
        }
    }

    /// One functionCall part per call; the thought signature rides on the first only.
    fn call_parts(&self) -> serde_json::Result<Vec<Part<'_>>> {
        let Reply::Tools(calls) = self.reply else {
            return Ok(Vec::new());
        };
        calls
            .iter()
            .zip(&self.call_ids)
            .enumerate()
            .map(|(i, (call, id))| {
                Ok(Part::Call {
                    function_call: FunctionCall {
                        name: &call.name,
                        args: serde_json::from_str(&call.arguments)?,
                        id: id.as_deref(),
                    },
                    thought_signature: (i == 0).then_some(self.signature.as_str()),
                })
            })
            .collect()
    }

    /// The non-stream response.
    fn whole(&self) -> serde_json::Result<GenerateResponse<'_>> {
        let output = self.reply.output_tokens();
        Ok(match self.reply {
            Reply::Text(text) => self.response(
                vec![Part::Text { text }],
                output,
                Some(self.finish_reason),
                None,
            ),
            Reply::Tools(_) => self.response(
                self.call_parts()?,
                output,
                Some(self.finish_reason),
                Some("Model generated function call(s)."),
            ),
        })
    }

    /// The streamed responses: `data:` frames for `alt=sse`, else one JSON array.
    fn stream(&self, chunks: usize, sse: bool) -> serde_json::Result<Events> {
        let mut events = Events::default();
        let mut first = true;
        let mut emit = |response: &GenerateResponse<'_>| {
            if sse {
                events.data(response, CRLF2)
            } else {
                let prefix: &[u8] = if std::mem::take(&mut first) {
                    b"["
                } else {
                    b",\r\n"
                };
                events.framed(prefix, response, b"")
            }
        };
        match self.reply {
            Reply::Text(text) => {
                let pieces = text::pieces(text, chunks);
                let last = pieces.len().saturating_sub(1);
                let mut sent = 0;
                for (i, piece) in pieces.into_iter().enumerate() {
                    sent += piece.len();
                    let so_far = text::tokens(text::words(text.get(..sent).unwrap_or(text)));
                    let finish = (i == last).then_some(self.finish_reason);
                    emit(&self.response(vec![Part::Text { text: piece }], so_far, finish, None))?;
                }
            }
            Reply::Tools(calls) => {
                let mut words = 0;
                for (part, call) in self.call_parts()?.into_iter().zip(calls) {
                    words += text::words(&call.arguments);
                    emit(&self.response(vec![part], text::tokens(words), None, None))?;
                }
                // As recorded: the stream ends with an empty text part carrying finishReason.
                let output = self.reply.output_tokens();
                let end = vec![Part::Text { text: "" }];
                emit(&self.response(end, output, Some(self.finish_reason), None))?;
            }
        }
        if !sse {
            events.raw(b"]");
        }
        Ok(events)
    }
}

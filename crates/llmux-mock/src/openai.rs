//! OpenAI: `POST /v1/chat/completions`, `POST /v1/embeddings`, `GET /v1/models`.
//!
//! Shapes follow the recorded fixtures (`fixtures/openai/*`), with the current API's extras
//! `usage.prompt_tokens_details` and, when `include_usage` is on, `"usage": null` on every chunk
//! before the usage chunk.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::json::{array_at, content_text, str_at};
use crate::plan::{self, Choice, Facts, Reply};
use crate::respond::{self, EVENT_STREAM};
use crate::sse::Events;
use crate::state::{Api, Incoming, Shared};
use crate::text;

// ---------------------------------------------------------------------------------------------
// Wire types (field order is the vendor's).

#[derive(Serialize)]
struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [CompletionChoice<'a>; 1],
    usage: Usage,
    system_fingerprint: &'a str,
}

#[derive(Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: Message<'a>,
    logprobs: (),
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct Message<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<Vec<ToolCall<'a>>>,
    refusal: (),
}

#[derive(Serialize)]
struct ToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: Function<'a>,
}

#[derive(Serialize)]
struct Function<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize, Clone, Copy)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
    prompt_tokens_details: PromptDetails,
    completion_tokens_details: CompletionDetails,
}

#[derive(Serialize, Clone, Copy)]
struct PromptDetails {
    cached_tokens: u64,
}

#[derive(Serialize, Clone, Copy)]
struct CompletionDetails {
    reasoning_tokens: u64,
}

impl Usage {
    fn new(prompt: u64, completion: u64) -> Self {
        Self {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt + completion,
            prompt_tokens_details: PromptDetails { cached_tokens: 0 },
            completion_tokens_details: CompletionDetails {
                reasoning_tokens: 0,
            },
        }
    }
}

#[derive(Serialize)]
struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'a str,
    choices: &'a [ChunkChoice<'a>],
    #[serde(skip_serializing_if = "UsageSlot::is_omitted")]
    usage: UsageSlot,
}

/// `usage` on a chunk: absent without `include_usage`, else `null` until the usage chunk.
#[derive(Clone, Copy)]
enum UsageSlot {
    Omitted,
    Null,
    Final(Usage),
}

impl UsageSlot {
    fn is_omitted(&self) -> bool {
        matches!(self, UsageSlot::Omitted)
    }
}

impl Serialize for UsageSlot {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            UsageSlot::Final(usage) => usage.serialize(serializer),
            UsageSlot::Omitted | UsageSlot::Null => serializer.serialize_none(),
        }
    }
}

#[derive(Serialize)]
struct ChunkChoice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: (),
    finish_reason: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Delta<'a> {
    Start {
        role: &'static str,
        content: Option<&'a str>,
        #[serde(skip_serializing_if = "Option::is_none")]
        tool_calls: Option<[ToolCallDelta<'a>; 1]>,
        refusal: (),
    },
    /// The role-only opening of a multi-call answer.
    Role {
        role: &'static str,
        content: Option<&'a str>,
    },
    Content {
        content: &'a str,
    },
    Tool {
        tool_calls: [ToolCallDelta<'a>; 1],
    },
    Empty {},
}

#[derive(Serialize)]
struct ToolCallDelta<'a> {
    index: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionDelta<'a>,
}

#[derive(Serialize)]
struct FunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// An OpenAI error response.
fn error(
    status: StatusCode,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let envelope = ErrorEnvelope {
        error: ErrorBody {
            message,
            kind,
            param,
            code,
        },
    };
    respond::json(status, &envelope, Default::default())
}

/// The error OpenAI sends for `status`, used for status faults.
fn status_error(status: StatusCode, model: &str) -> Response {
    match status.as_u16() {
        400 => error(
            status,
            "Invalid request (injected by llmux mock).",
            "invalid_request_error",
            None,
            None,
        ),
        401 => error(
            status,
            "Incorrect API key provided.",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ),
        403 => error(
            status,
            "Country, region, or territory not supported",
            "request_forbidden",
            None,
            Some("unsupported_country_region_territory"),
        ),
        404 => {
            let message =
                format!("The model `{model}` does not exist or you do not have access to it.");
            error(
                status,
                &message,
                "invalid_request_error",
                None,
                Some("model_not_found"),
            )
        }
        429 => error(
            status,
            "Rate limit reached for requests. Please try again later.",
            "requests",
            None,
            Some("rate_limit_exceeded"),
        ),
        503 => error(
            status,
            "The engine is currently overloaded, please try again later",
            "server_error",
            None,
            None,
        ),
        code if code >= 500 => error(
            status,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
            None,
        ),
        _ => error(
            status,
            "Request failed (injected by llmux mock).",
            "invalid_request_error",
            None,
            None,
        ),
    }
}

fn missing_key() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "You didn't provide an API key. You need to provide your API key in an Authorization \
         header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        "invalid_request_error",
        None,
        Some("invalid_api_key"),
    )
}

fn bad_json() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't \
         using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was \
         sent was not valid JSON.)",
        "invalid_request_error",
        None,
        None,
    )
}

fn missing_param(name: &str) -> Response {
    let message = format!("Missing required parameter: '{name}'.");
    error(
        StatusCode::BAD_REQUEST,
        &message,
        "invalid_request_error",
        Some(name),
        Some("missing_required_parameter"),
    )
}

// ---------------------------------------------------------------------------------------------
// Chat completions.

/// What the chat request asks for, read loosely.
fn facts(request: &Value) -> Facts<'_> {
    let messages = array_at(request, "messages");
    let user_text = messages
        .iter()
        .rev()
        .find(|m| str_at(m, "role") == "user")
        .map(|m| content_text(m.get("content")))
        .unwrap_or_default();
    let tool_result = messages
        .last()
        .filter(|m| str_at(m, "role") == "tool")
        .map(|m| content_text(m.get("content")));
    let tools = array_at(request, "tools")
        .iter()
        .map(|t| match t.get("function") {
            Some(function) => str_at(function, "name"),
            None => str_at(t, "name"),
        })
        .collect();
    let choice = match request.get("tool_choice") {
        Some(Value::String(mode)) if mode == "none" => Choice::None,
        Some(choice @ Value::Object(_)) => match choice.get("function") {
            Some(function) => Choice::Named(str_at(function, "name")),
            None => Choice::Auto,
        },
        _ => Choice::Auto,
    };
    Facts {
        user_text,
        tool_result,
        tools,
        choice,
    }
}

/// Prompt tokens: words of every message's text.
fn prompt_tokens(request: &Value) -> u64 {
    let words = array_at(request, "messages")
        .iter()
        .map(|m| text::words(&content_text(m.get("content"))))
        .sum();
    text::tokens(words)
}

/// `POST /v1/chat/completions`.
pub(crate) async fn chat(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let credential = respond::bearer(&headers);
    let request = respond::parse(&body);
    let model = request.as_ref().map_or("", |r| str_at(r, "model"));
    let stream = request
        .as_ref()
        .and_then(|r| r.get("stream"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let incoming = Incoming {
        api: Api::OpenAiChat,
        credential: credential.unwrap_or(""),
        model,
        stream,
        path: respond::path_and_query(&uri),
        headers: &headers,
        body: &body,
    };
    let fault = shared.admit(incoming, true).await;
    if let Some(response) = respond::fault_status(fault.as_ref(), |s| status_error(s, model)) {
        return response;
    }
    if credential.is_none() {
        return missing_key();
    }
    let Some(request) = request.as_ref().filter(|r| r.is_object()) else {
        return bad_json();
    };
    if model.is_empty() {
        return missing_param("model");
    }
    if request.get("messages").and_then(Value::as_array).is_none() {
        return missing_param("messages");
    }

    let mut reply = plan::decide(&facts(request));
    let mut finish_reason = "stop";
    if let Reply::Text(text) = &mut reply {
        let limit = ["max_completion_tokens", "max_tokens"]
            .iter()
            .find_map(|k| request.get(*k).and_then(Value::as_u64));
        if let Some(cut) = limit.and_then(|max| text::truncate_words(text, max as usize)) {
            *text = cut.to_owned();
            finish_reason = "length";
        }
    } else {
        finish_reason = "tool_calls";
    }
    let answer = Answer {
        id: shared.ids.chat_completion(),
        created: respond::unix_now(),
        model,
        fingerprint: shared.ids.fingerprint(),
        usage: Usage::new(prompt_tokens(request), reply.output_tokens()),
        call_ids: match &reply {
            Reply::Tools(calls) => calls.iter().map(|_| shared.ids.openai_call()).collect(),
            Reply::Text(_) => Vec::new(),
        },
        reply: &reply,
        finish_reason,
    };
    let pacing = respond::pacing(shared.opts.chunk_delay, fault.as_ref());
    let response = if stream {
        let include_usage = request
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        match answer.stream(shared.opts.chunks, include_usage) {
            Ok(events) => {
                respond::with_body(StatusCode::OK, EVENT_STREAM, events.into_body(pacing))
            }
            Err(err) => respond::internal(&err),
        }
    } else {
        respond::json(StatusCode::OK, &answer.completion(), pacing)
    };
    respond::finish(response, fault.as_ref())
}

/// Everything needed to render one chat answer, streamed or not.
struct Answer<'a> {
    id: String,
    created: u64,
    model: &'a str,
    fingerprint: String,
    usage: Usage,
    reply: &'a Reply,
    call_ids: Vec<String>,
    finish_reason: &'static str,
}

impl Answer<'_> {
    fn completion(&self) -> Completion<'_> {
        let (content, tool_calls) = match self.reply {
            Reply::Text(text) => (Some(text.as_str()), None),
            Reply::Tools(calls) => {
                let calls = calls
                    .iter()
                    .zip(&self.call_ids)
                    .map(|(call, id)| ToolCall {
                        id,
                        kind: "function",
                        function: Function {
                            name: &call.name,
                            arguments: &call.arguments,
                        },
                    })
                    .collect();
                (None, Some(calls))
            }
        };
        Completion {
            id: &self.id,
            object: "chat.completion",
            created: self.created,
            model: self.model,
            choices: [CompletionChoice {
                index: 0,
                message: Message {
                    role: "assistant",
                    content,
                    tool_calls,
                    refusal: (),
                },
                logprobs: (),
                finish_reason: self.finish_reason,
            }],
            usage: self.usage,
            system_fingerprint: &self.fingerprint,
        }
    }

    fn stream(&self, chunks: usize, include_usage: bool) -> serde_json::Result<Events> {
        let slot = if include_usage {
            UsageSlot::Null
        } else {
            UsageSlot::Omitted
        };
        let mut events = Events::default();
        let mut push = |delta: Delta<'_>, finish_reason: Option<&'static str>| {
            let choice = [ChunkChoice {
                index: 0,
                delta,
                logprobs: (),
                finish_reason,
            }];
            events.data(&self.chunk(&choice, slot), b"\n\n")
        };
        match self.reply {
            Reply::Text(text) => {
                push(
                    Delta::Start {
                        role: "assistant",
                        content: Some(""),
                        tool_calls: None,
                        refusal: (),
                    },
                    None,
                )?;
                for piece in text::pieces(text, chunks) {
                    push(Delta::Content { content: piece }, None)?;
                }
            }
            Reply::Tools(calls) => {
                // As recorded: a single call starts inside the role chunk, while parallel calls
                // follow a role-only chunk and each start in their own chunk.
                let single = calls.len() == 1;
                if !single {
                    let role = Delta::Role {
                        role: "assistant",
                        content: None,
                    };
                    push(role, None)?;
                }
                for (index, (call, id)) in calls.iter().zip(&self.call_ids).enumerate() {
                    let start = ToolCallDelta {
                        index,
                        id: Some(id),
                        kind: Some("function"),
                        function: FunctionDelta {
                            name: Some(&call.name),
                            arguments: "",
                        },
                    };
                    let delta = if single {
                        Delta::Start {
                            role: "assistant",
                            content: None,
                            tool_calls: Some([start]),
                            refusal: (),
                        }
                    } else {
                        Delta::Tool {
                            tool_calls: [start],
                        }
                    };
                    push(delta, None)?;
                    for fragment in text::pieces(&call.arguments, chunks.max(3)) {
                        let delta = ToolCallDelta {
                            index,
                            id: None,
                            kind: None,
                            function: FunctionDelta {
                                name: None,
                                arguments: fragment,
                            },
                        };
                        push(
                            Delta::Tool {
                                tool_calls: [delta],
                            },
                            None,
                        )?;
                    }
                }
            }
        }
        push(Delta::Empty {}, Some(self.finish_reason))?;
        if include_usage {
            events.data(&self.chunk(&[], UsageSlot::Final(self.usage)), b"\n\n")?;
        }
        events.raw(b"data: [DONE]\n\n");
        Ok(events)
    }

    fn chunk<'c>(&'c self, choices: &'c [ChunkChoice<'c>], usage: UsageSlot) -> Chunk<'c> {
        Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model,
            system_fingerprint: &self.fingerprint,
            choices,
            usage,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Models and embeddings.

#[derive(Serialize)]
struct ModelList {
    object: &'static str,
    data: [ModelEntry; 5],
}

#[derive(Serialize)]
struct ModelEntry {
    id: &'static str,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
}

const fn model(id: &'static str, created: u64, owned_by: &'static str) -> ModelEntry {
    ModelEntry {
        id,
        object: "model",
        created,
        owned_by,
    }
}

/// The mock's model list.
const MODELS: ModelList = ModelList {
    object: "list",
    data: [
        model("gpt-4o", 1_715_367_049, "system"),
        model("gpt-4o-mini", 1_721_172_741, "system"),
        model("gpt-4.1", 1_744_316_542, "system"),
        model("o3-mini", 1_737_146_383, "system"),
        model("text-embedding-3-small", 1_705_948_997, "system"),
    ],
};

/// `GET /v1/models`. Faults do not apply here.
pub(crate) async fn models(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let credential = respond::bearer(&headers);
    let incoming = Incoming {
        api: Api::OpenAiModels,
        credential: credential.unwrap_or(""),
        model: "",
        stream: false,
        path: respond::path_and_query(&uri),
        headers: &headers,
        body: &Bytes::new(),
    };
    shared.admit(incoming, false).await;
    if credential.is_none() {
        return missing_key();
    }
    respond::json(StatusCode::OK, &MODELS, Default::default())
}

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<EmbeddingEntry>,
    model: &'a str,
    usage: EmbeddingUsage,
}

#[derive(Serialize)]
struct EmbeddingEntry {
    object: &'static str,
    index: usize,
    embedding: Embedding,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Embedding {
    Floats(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// The inputs of an embeddings request as texts (token arrays become their JSON text).
fn embedding_inputs(input: &Value) -> Option<Vec<String>> {
    match input {
        Value::String(text) => Some(vec![text.clone()]),
        Value::Array(items) if items.iter().all(Value::is_number) && !items.is_empty() => {
            Some(vec![input.to_string()])
        }
        Value::Array(items) if !items.is_empty() => Some(
            items
                .iter()
                .map(|item| match item {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .collect(),
        ),
        _ => None,
    }
}

/// A deterministic unit vector of `dims` floats derived from `text` (FNV-1a seed, SplitMix64
/// stream).
fn embed(text: &str, dims: usize) -> Vec<f32> {
    let mut state = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let mut vector: Vec<f32> = (0..dims)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            // Top 24 bits to a float in [-1, 1).
            ((z >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect();
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

/// `POST /v1/embeddings`: 8-dimensional vectors (or `dimensions`, up to 4096).
pub(crate) async fn embeddings(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    use base64::Engine as _;

    let credential = respond::bearer(&headers);
    let request = respond::parse(&body);
    let model = request.as_ref().map_or("", |r| str_at(r, "model"));
    let incoming = Incoming {
        api: Api::OpenAiEmbeddings,
        credential: credential.unwrap_or(""),
        model,
        stream: false,
        path: respond::path_and_query(&uri),
        headers: &headers,
        body: &body,
    };
    let fault = shared.admit(incoming, true).await;
    if let Some(response) = respond::fault_status(fault.as_ref(), |s| status_error(s, model)) {
        return response;
    }
    if credential.is_none() {
        return missing_key();
    }
    let Some(request) = request.as_ref().filter(|r| r.is_object()) else {
        return bad_json();
    };
    if model.is_empty() {
        return missing_param("model");
    }
    let Some(inputs) = request.get("input").and_then(embedding_inputs) else {
        return missing_param("input");
    };
    let dims = request
        .get("dimensions")
        .and_then(Value::as_u64)
        .map_or(8, |d| d.clamp(1, 4096) as usize);
    let base64 = str_at(request, "encoding_format") == "base64";
    let words: usize = inputs.iter().map(|t| text::words(t)).sum();
    let data = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let vector = embed(input, dims);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Embedding::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Embedding::Floats(vector)
            };
            EmbeddingEntry {
                object: "embedding",
                index,
                embedding,
            }
        })
        .collect();
    let tokens = text::tokens(words);
    let list = EmbeddingList {
        object: "list",
        data,
        model,
        usage: EmbeddingUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    };
    let pacing = respond::pacing(std::time::Duration::ZERO, fault.as_ref());
    respond::finish(respond::json(StatusCode::OK, &list, pacing), fault.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embed("hello", 8);
        assert_eq!(a, embed("hello", 8));
        assert_ne!(a, embed("hullo", 8));
        let norm: f32 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }
}

//! `POST /v1/chat/completions`.
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

use super::{bad_json, missing_key, missing_param, status_error, unrecognized_argument};
use crate::json::{array_at, content_text, str_at, unknown_key};
use crate::plan::{self, Choice, Facts, Reply};
use crate::respond::{self, EVENT_STREAM};
use crate::sse::Events;
use crate::state::{Api, Fault, Incoming, Shared};
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
    /// Gemini's OpenAI endpoint: a whole call per chunk, no `index`, an empty `id`.
    GeminiTool {
        role: &'static str,
        tool_calls: [GeminiToolCall<'a>; 1],
    },
    Empty {},
}

#[derive(Serialize)]
struct GeminiToolCall<'a> {
    function: FunctionDelta<'a>,
    id: &'static str,
    #[serde(rename = "type")]
    kind: &'static str,
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
/// The parameters Chat Completions accepts; any other is refused, as the real API does.
const KNOWN_PARAMETERS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "n",
    "stop",
    "max_tokens",
    "max_completion_tokens",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "user",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "response_format",
    "seed",
    "service_tier",
    "store",
    "metadata",
    "reasoning_effort",
    "modalities",
    "audio",
    "prediction",
    "web_search_options",
    "verbosity",
    "prompt_cache_key",
    "safety_identifier",
    "function_call",
    "functions",
];

/// A request that passed the first steps every OpenAI endpoint takes (see [`admit`]).
pub(super) struct Admitted<'r> {
    /// The body, a JSON object.
    pub request: &'r Value,
    pub model: &'r str,
    pub stream: bool,
    /// The scripted fault still to apply to the answer (pacing, a cut), if any.
    pub fault: Option<Fault>,
}

/// The first steps of every OpenAI endpoint (chat, responses, embeddings), in OpenAI's order:
/// record the call (a `stream` request only where the endpoint `streams`), answer a scripted
/// fault's status, then refuse a missing key and a body that is not a JSON object.
pub(super) async fn admit<'r>(
    shared: &Shared,
    api: Api,
    streams: bool,
    (uri, headers, body): (&Uri, &HeaderMap, &Bytes),
    request: Option<&'r Value>,
) -> Result<Admitted<'r>, Response> {
    let credential = respond::bearer(headers);
    let model = request.map_or("", |r| str_at(r, "model"));
    let stream = streams
        && request
            .and_then(|r| r.get("stream"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
    let incoming = Incoming {
        api,
        credential: credential.unwrap_or(""),
        model,
        stream,
        path: respond::path_and_query(uri),
        headers,
        body,
    };
    let fault = shared.admit(incoming, true).await;
    if let Some(response) = respond::fault_status(fault.as_ref(), |s| status_error(s, model)) {
        return Err(response);
    }
    if credential.is_none() {
        return Err(missing_key());
    }
    let Some(request) = request.filter(|r| r.is_object()) else {
        return Err(bad_json());
    };
    Ok(Admitted {
        request,
        model,
        stream,
        fault,
    })
}

pub(crate) async fn chat(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = respond::parse(&body);
    // Gemini's OpenAI-compatible endpoint (`/v1beta/openai/...`) has its own tool-call quirks.
    let gemini_compat = uri.path().starts_with("/v1beta/openai/");
    let admitted = admit(
        &shared,
        Api::OpenAiChat,
        true,
        (&uri, &headers, &body),
        parsed.as_ref(),
    )
    .await;
    let Admitted {
        request,
        model,
        stream,
        fault,
    } = match admitted {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    // Gemini's compatible endpoint has its own extensions (`extra_body`); only OpenAI's own
    // parameters are checked.
    if !gemini_compat && let Some(name) = unknown_key(request, KNOWN_PARAMETERS) {
        return unrecognized_argument(name);
    }
    if model.is_empty() {
        return missing_param("model");
    }
    if request.get("messages").and_then(Value::as_array).is_none() {
        return missing_param("messages");
    }
    if let Some(message) = crate::content::openai_refusal(request) {
        return super::invalid_content(&message);
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
        // Gemini's OpenAI endpoint ends tool-call turns with "stop".
        finish_reason = if gemini_compat { "stop" } else { "tool_calls" };
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
        gemini_compat,
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
    /// Render tool calls as Gemini's OpenAI endpoint does (empty ids, no stream index).
    gemini_compat: bool,
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
                        id: if self.gemini_compat { "" } else { id },
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
            Reply::Tools(calls) if self.gemini_compat => {
                // Each call whole in one chunk; the last one carries the finish reason.
                for (position, call) in calls.iter().enumerate() {
                    let delta = Delta::GeminiTool {
                        role: "assistant",
                        tool_calls: [GeminiToolCall {
                            function: FunctionDelta {
                                name: Some(&call.name),
                                arguments: &call.arguments,
                            },
                            id: "",
                            kind: "function",
                        }],
                    };
                    let last = position + 1 == calls.len();
                    push(delta, last.then_some(self.finish_reason))?;
                }
                if include_usage {
                    events.data(&self.chunk(&[], UsageSlot::Final(self.usage)), b"\n\n")?;
                }
                events.raw(b"data: [DONE]\n\n");
                return Ok(events);
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

//! Anthropic Messages: `POST /v1/messages`.
//!
//! Shapes follow `fixtures/anthropic/*`. Skipped on purpose: the beta-only `caller` field on
//! `tool_use` blocks.
//!
//! Like the real API, the request body may hold only known top-level fields, and the beta-only
//! ones ([`BETA_FIELDS`]) only with their `anthropic-beta` value: anything else is a 400
//! `"<field>: Extra inputs are not permitted"`. `tool_use`/`tool_result` blocks without tools are
//! a 400 as well.
//!
//! With `thinking` enabled (or adaptive) the answer opens with a `thinking` block signed by
//! this server; a `thinking` block in the history whose signature this server did not issue
//! over that text, or a `redacted_thinking` block it did not issue, is a 400, as the real API
//! refuses reasoning it cannot verify.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use crate::json::{array_at, content_text, str_at, unknown_key};
use crate::plan::{self, Choice, Facts, Reply};
use crate::respond::{self, EVENT_STREAM};
use crate::sse::Events;
use crate::state::{Api, Incoming, Shared};
use crate::text;

// ---------------------------------------------------------------------------------------------
// Wire types (field order is the vendor's).

#[derive(Serialize)]
struct Message<'a> {
    model: &'a str,
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    content: Vec<Block<'a>>,
    stop_reason: &'static str,
    stop_sequence: (),
    usage: Usage,
}

#[derive(Serialize)]
struct Usage {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    cache_creation: CacheCreation,
    output_tokens: u64,
    service_tier: &'static str,
    inference_geo: &'static str,
}

#[derive(Serialize)]
struct CacheCreation {
    ephemeral_5m_input_tokens: u64,
    ephemeral_1h_input_tokens: u64,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
    Text {
        text: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a RawValue,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event<'a> {
    MessageStart {
        message: StartMessage<'a>,
    },
    ContentBlockStart {
        index: usize,
        content_block: Block<'a>,
    },
    ContentBlockDelta {
        index: usize,
        delta: BlockDelta<'a>,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: StopDelta,
        usage: DeltaUsage,
    },
    MessageStop,
    /// Written as the exact bytes of [`PING`].
    Ping,
}

impl Event<'_> {
    fn name(&self) -> &'static str {
        match self {
            Event::MessageStart { .. } => "message_start",
            Event::ContentBlockStart { .. } => "content_block_start",
            Event::ContentBlockDelta { .. } => "content_block_delta",
            Event::ContentBlockStop { .. } => "content_block_stop",
            Event::MessageDelta { .. } => "message_delta",
            Event::MessageStop => "message_stop",
            Event::Ping => "ping",
        }
    }
}

#[derive(Serialize)]
struct StartMessage<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: [(); 0],
    stop_reason: (),
    stop_sequence: (),
    usage: StartUsage,
}

#[derive(Serialize)]
struct StartUsage {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
    service_tier: &'static str,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(
    clippy::enum_variant_names,
    reason = "the variants are named after the wire's delta types"
)]
enum BlockDelta<'a> {
    ThinkingDelta { thinking: &'a str },
    SignatureDelta { signature: &'a str },
    TextDelta { text: &'a str },
    InputJsonDelta { partial_json: &'a str },
}

#[derive(Serialize)]
struct StopDelta {
    stop_reason: &'static str,
    stop_sequence: (),
}

#[derive(Serialize)]
struct DeltaUsage {
    output_tokens: u64,
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorBody<'a>,
    request_id: &'a str,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    message: &'a str,
}

/// The `ping` event, byte for byte as Anthropic sends it (note the space).
const PING: &[u8] = b"event: ping\ndata: {\"type\": \"ping\"}\n\n";

/// Appends `event` to `events`.
/// The generally available top-level fields of a Messages request.
const KNOWN_FIELDS: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "system",
    "metadata",
    "stop_sequences",
    "stream",
    "temperature",
    "top_p",
    "top_k",
    "tools",
    "tool_choice",
    "thinking",
    "service_tier",
    "container",
    "mcp_servers",
];

/// Top-level fields the API accepts only with an `anthropic-beta` value.
const BETA_FIELDS: &[(&str, &str)] = &[
    ("context_management", "context-management-2025-06-27"),
    ("output_config", "effort-2025-11-24"),
];

/// The field the real API would refuse: unknown, or beta-only without its beta header value.
fn refused_field<'a>(request: &'a Value, headers: &HeaderMap) -> Option<&'a str> {
    let betas: Vec<&str> = headers
        .get_all("anthropic-beta")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut known: Vec<&str> = KNOWN_FIELDS.to_vec();
    known.extend(
        BETA_FIELDS
            .iter()
            .filter(|(_, beta)| betas.contains(beta))
            .map(|(field, _)| *field),
    );
    unknown_key(request, &known)
}

fn push(events: &mut Events, event: &Event<'_>) -> serde_json::Result<()> {
    if let Event::Ping = event {
        events.raw(PING);
        return Ok(());
    }
    events.named(event.name(), event)
}

// ---------------------------------------------------------------------------------------------
// Errors.

/// An Anthropic error response, with its `request-id` header.
fn error(shared: &Shared, status: StatusCode, kind: &str, message: &str) -> Response {
    let request_id = shared.ids.request();
    let envelope = ErrorEnvelope {
        kind: "error",
        error: ErrorBody { kind, message },
        request_id: &request_id,
    };
    let mut response = respond::json(status, &envelope, Default::default());
    respond::set_header(&mut response, "request-id", &request_id);
    response
}

/// The error Anthropic sends for `status`, used for status faults.
fn status_error(shared: &Shared, status: StatusCode) -> Response {
    let (kind, message) = match status.as_u16() {
        400 => (
            "invalid_request_error",
            "Invalid request (injected by llmux mock)",
        ),
        401 => ("authentication_error", "invalid x-api-key"),
        402 => ("billing_error", "Your credit balance is too low"),
        403 => (
            "permission_error",
            "Your API key does not have permission to use the specified resource.",
        ),
        404 => (
            "not_found_error",
            "The requested resource could not be found.",
        ),
        413 => (
            "request_too_large",
            "Request exceeds the maximum allowed size.",
        ),
        429 => (
            "rate_limit_error",
            "This request would exceed the rate limit for your organization. Please try again later.",
        ),
        504 => ("timeout_error", "Request timed out"),
        529 => ("overloaded_error", "Overloaded"),
        code if code >= 500 => ("api_error", "Internal server error"),
        _ => (
            "invalid_request_error",
            "Request failed (injected by llmux mock)",
        ),
    };
    error(shared, status, kind, message)
}

fn invalid(shared: &Shared, message: &str) -> Response {
    error(
        shared,
        StatusCode::BAD_REQUEST,
        "invalid_request_error",
        message,
    )
}

// ---------------------------------------------------------------------------------------------
// Messages.

/// The text of a `tool_result` block's `content` (a string or text blocks).
fn tool_result_text(block: &Value) -> String {
    content_text(block.get("content"))
}

/// What the messages request asks for, read loosely.
fn facts(request: &Value) -> Facts<'_> {
    let messages = array_at(request, "messages");
    let last_user = messages.iter().rev().find(|m| str_at(m, "role") == "user");
    let user_text = last_user
        .map(|m| content_text(m.get("content")))
        .unwrap_or_default();
    // A user turn of only tool_result blocks answers a tool call; it is not user text.
    let tool_result = last_user.and_then(|m| {
        let blocks = m.get("content")?.as_array()?;
        let only_results =
            !blocks.is_empty() && blocks.iter().all(|b| str_at(b, "type") == "tool_result");
        only_results.then(|| {
            blocks
                .iter()
                .map(tool_result_text)
                .collect::<Vec<_>>()
                .join(" ")
        })
    });
    let tools = array_at(request, "tools")
        .iter()
        .map(|t| str_at(t, "name"))
        .collect();
    let choice = match request.get("tool_choice").map(|c| (str_at(c, "type"), c)) {
        Some(("none", _)) => Choice::None,
        Some(("tool", c)) => Choice::Named(str_at(c, "name")),
        _ => Choice::Auto,
    };
    Facts {
        user_text,
        tool_result,
        tools,
        choice,
    }
}

/// Whether a message holds a `tool_use` or `tool_result` block, which the real API accepts only
/// when the request defines tools.
fn has_tool_blocks(request: &Value) -> bool {
    array_at(request, "messages")
        .iter()
        .flat_map(|message| array_at(message, "content"))
        .any(|block| matches!(str_at(block, "type"), "tool_use" | "tool_result"))
}

/// Input tokens: words of the system prompt, message text and tool results.
fn input_tokens(request: &Value) -> u64 {
    let mut words = text::words(&content_text(request.get("system")));
    for message in array_at(request, "messages") {
        words += text::words(&content_text(message.get("content")));
        for block in array_at(message, "content") {
            if str_at(block, "type") == "tool_result" {
                words += text::words(&tool_result_text(block));
            }
        }
    }
    text::tokens(words)
}

/// `POST /v1/messages`.
pub(crate) async fn messages(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let credential = respond::header_str(&headers, "x-api-key").filter(|k| !k.is_empty());
    let request = respond::parse(&body);
    let model = request.as_ref().map_or("", |r| str_at(r, "model"));
    let stream = request
        .as_ref()
        .and_then(|r| r.get("stream"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let incoming = Incoming {
        api: Api::Anthropic,
        credential: credential.unwrap_or(""),
        model,
        stream,
        path: respond::path_and_query(&uri),
        headers: &headers,
        body: &body,
    };
    let fault = shared.admit(incoming, true).await;
    if let Some(response) = respond::fault_status(fault.as_ref(), |s| status_error(&shared, s)) {
        return response;
    }
    if credential.is_none() {
        return error(
            &shared,
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "x-api-key header is required",
        );
    }
    if !headers.contains_key("anthropic-version") {
        return invalid(&shared, "anthropic-version: header is required");
    }
    let Some(request) = request.as_ref().filter(|r| r.is_object()) else {
        return invalid(
            &shared,
            "There was an issue with your request body: invalid JSON",
        );
    };
    if let Some(field) = refused_field(request, &headers) {
        return invalid(&shared, &format!("{field}: Extra inputs are not permitted"));
    }
    if model.is_empty() {
        return invalid(&shared, "model: Field required");
    }
    let Some(max_tokens) = request.get("max_tokens").and_then(Value::as_u64) else {
        return invalid(&shared, "max_tokens: Field required");
    };
    if request.get("messages").and_then(Value::as_array).is_none() {
        return invalid(&shared, "messages: Field required");
    }
    if let Some(message) = crate::content::anthropic_refusal(request) {
        return invalid(&shared, &message);
    }
    if let Some(message) = unverified_reasoning(&shared, request) {
        return invalid(&shared, &message);
    }
    if array_at(request, "tools").is_empty() && has_tool_blocks(request) {
        return invalid(
            &shared,
            "Requests which include `tool_use` or `tool_result` blocks must define tools.",
        );
    }

    let mut reply = plan::decide(&facts(request));
    let mut stop_reason = "end_turn";
    match &mut reply {
        Reply::Text(text) => {
            if let Some(cut) = text::truncate_words(text, max_tokens as usize) {
                *text = cut.to_owned();
                stop_reason = "max_tokens";
            }
        }
        Reply::Tools(_) => stop_reason = "tool_use",
    }
    let tool_ids: Vec<String> = match &reply {
        Reply::Tools(calls) => calls
            .iter()
            .map(|_| shared.ids.anthropic_tool_use())
            .collect(),
        Reply::Text(_) => Vec::new(),
    };
    let cache = match shared.prompt_cache.split(request, input_tokens(request)) {
        Ok(cache) => cache,
        Err(message) => return invalid(&shared, &message),
    };
    let thinking = thinks(request).then(|| {
        let facts = facts(request);
        let text = format!("Thinking about: {}", facts.user_text);
        let signature = shared.ids.sign("thinking", &text);
        (text, signature)
    });
    let answer = Answer {
        thinking,
        id: shared.ids.anthropic_message(),
        model,
        cache,
        output_tokens: reply.output_tokens(),
        reply: &reply,
        tool_ids,
        stop_reason,
    };
    let pacing = respond::pacing(shared.opts.chunk_delay, fault.as_ref());
    let built = if stream {
        answer.stream(shared.opts.chunks).map(|events| {
            respond::with_body(StatusCode::OK, EVENT_STREAM, events.into_body(pacing))
        })
    } else {
        answer
            .message()
            .map(|message| respond::json(StatusCode::OK, &message, pacing))
    };
    let mut response = built.unwrap_or_else(|err| respond::internal(&err));
    respond::set_header(&mut response, "request-id", &shared.ids.request());
    respond::finish(response, fault.as_ref())
}

/// Whether the request turns thinking on.
fn thinks(request: &Value) -> bool {
    request
        .get("thinking")
        .is_some_and(|t| matches!(str_at(t, "type"), "enabled" | "adaptive"))
}

/// The error for the first reasoning block of the history this server cannot verify.
fn unverified_reasoning(shared: &Shared, request: &Value) -> Option<String> {
    for (i, message) in array_at(request, "messages").iter().enumerate() {
        for (j, block) in array_at(message, "content").iter().enumerate() {
            match str_at(block, "type") {
                "thinking" => {
                    let signed = shared.ids.verify_signature(
                        "thinking",
                        str_at(block, "thinking"),
                        str_at(block, "signature"),
                    );
                    if !signed {
                        return Some(format!(
                            "messages.{i}.content.{j}: Invalid `signature` in `thinking` block"
                        ));
                    }
                }
                "redacted_thinking"
                    if !shared
                        .ids
                        .verify_token("redacted", "", str_at(block, "data")) =>
                {
                    return Some(format!(
                        "messages.{i}.content.{j}: Invalid `data` in `redacted_thinking` block"
                    ));
                }
                _ => {}
            }
        }
    }
    None
}

/// Everything needed to render one answer, streamed or not.
struct Answer<'a> {
    /// The thinking block's text and signature, when thinking is on.
    thinking: Option<(String, String)>,
    id: String,
    model: &'a str,
    /// Input tokens, split by the prompt cache.
    cache: crate::prompt_cache::Split,
    output_tokens: u64,
    reply: &'a Reply,
    tool_ids: Vec<String>,
    stop_reason: &'static str,
}

impl Answer<'_> {
    /// The content blocks, tool inputs borrowed from the arguments text.
    fn blocks(&self) -> serde_json::Result<Vec<Block<'_>>> {
        let mut blocks: Vec<Block<'_>> = self
            .thinking
            .iter()
            .map(|(thinking, signature)| Block::Thinking {
                thinking,
                signature,
            })
            .collect();
        match self.reply {
            Reply::Text(text) => blocks.push(Block::Text { text }),
            Reply::Tools(calls) => {
                for (call, id) in calls.iter().zip(&self.tool_ids) {
                    blocks.push(Block::ToolUse {
                        id,
                        name: &call.name,
                        input: serde_json::from_str(&call.arguments)?,
                    });
                }
            }
        }
        Ok(blocks)
    }

    fn message(&self) -> serde_json::Result<Message<'_>> {
        Ok(Message {
            model: self.model,
            id: &self.id,
            kind: "message",
            role: "assistant",
            content: self.blocks()?,
            stop_reason: self.stop_reason,
            stop_sequence: (),
            usage: Usage {
                input_tokens: self.cache.input,
                cache_creation_input_tokens: self.cache.write,
                cache_read_input_tokens: self.cache.read,
                cache_creation: CacheCreation {
                    ephemeral_5m_input_tokens: self.cache.write,
                    ephemeral_1h_input_tokens: 0,
                },
                output_tokens: self.output_tokens,
                service_tier: "standard",
                inference_geo: "not_available",
            },
        })
    }

    fn stream(&self, chunks: usize) -> serde_json::Result<Events> {
        let mut events = Events::default();
        let mut emit = |event: Event<'_>| push(&mut events, &event);
        let mut ping = true;
        emit(Event::MessageStart {
            message: StartMessage {
                id: &self.id,
                kind: "message",
                role: "assistant",
                model: self.model,
                content: [],
                stop_reason: (),
                stop_sequence: (),
                usage: StartUsage {
                    input_tokens: self.cache.input,
                    cache_creation_input_tokens: self.cache.write,
                    cache_read_input_tokens: self.cache.read,
                    output_tokens: 1,
                    service_tier: "standard",
                },
            },
        })?;
        for (index, block) in self.blocks()?.into_iter().enumerate() {
            let fragments = match block {
                Block::Thinking {
                    thinking,
                    signature,
                } => {
                    let mut deltas: Vec<_> = text::pieces(thinking, chunks)
                        .into_iter()
                        .map(|thinking| BlockDelta::ThinkingDelta { thinking })
                        .collect();
                    deltas.push(BlockDelta::SignatureDelta { signature });
                    (
                        Block::Thinking {
                            thinking: "",
                            signature: "",
                        },
                        deltas,
                    )
                }
                Block::Text { text } => (
                    Block::Text { text: "" },
                    text::pieces(text, chunks)
                        .into_iter()
                        .map(|text| BlockDelta::TextDelta { text })
                        .collect::<Vec<_>>(),
                ),
                Block::ToolUse { id, name, input } => {
                    // The recorded streams open every tool input with an empty fragment.
                    let mut deltas = vec![BlockDelta::InputJsonDelta { partial_json: "" }];
                    deltas.extend(
                        text::pieces(input.get(), chunks.max(3))
                            .into_iter()
                            .map(|partial_json| BlockDelta::InputJsonDelta { partial_json }),
                    );
                    let empty: &RawValue = serde_json::from_str("{}")?;
                    (
                        Block::ToolUse {
                            id,
                            name,
                            input: empty,
                        },
                        deltas,
                    )
                }
            };
            let (start, deltas) = fragments;
            emit(Event::ContentBlockStart {
                index,
                content_block: start,
            })?;
            if std::mem::take(&mut ping) {
                emit(Event::Ping)?;
            }
            for delta in deltas {
                emit(Event::ContentBlockDelta { index, delta })?;
            }
            emit(Event::ContentBlockStop { index })?;
        }
        emit(Event::MessageDelta {
            delta: StopDelta {
                stop_reason: self.stop_reason,
                stop_sequence: (),
            },
            usage: DeltaUsage {
                output_tokens: self.output_tokens,
            },
        })?;
        emit(Event::MessageStop)?;
        Ok(events)
    }
}

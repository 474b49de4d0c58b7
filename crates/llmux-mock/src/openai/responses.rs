//! `POST /v1/responses`: OpenAI's Responses API, as the real one behaves where llmux relies on
//! it.
//!
//! - Unknown top-level parameters are refused (`Unknown parameter: 'x'.`, code
//!   `unknown_parameter`), as are unknown input item types.
//! - `store` (default true) keeps the response so a later `previous_response_id` continues it;
//!   an id the server never stored (or stored elsewhere) is a 400
//!   `previous_response_not_found`.
//! - With `reasoning` or `include: ["reasoning.encrypted_content"]` the output starts with a
//!   `reasoning` item; with the include it carries `encrypted_content`, which only this server
//!   can verify: a reasoning input item whose `encrypted_content` it did not issue is a 400
//!   `invalid_encrypted_content`.
//! - Hosted tools (`web_search`, `file_search`, …) and `namespace` tools are accepted; the mock
//!   calls function tools only (a namespaced one with its `namespace`).
//! - The resource has the fields of the recorded fixture (`fixtures/openresponses/`), and, like
//!   it, no `completed_at`, `presence_penalty` or `frequency_penalty`. Streams are named
//!   events with `sequence_number`s from 0 and no `[DONE]`.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri};
use serde_json::{Value, json};

use super::chat::{Admitted, admit};
use super::{error, missing_param};
use crate::json::{array_at, str_at, unknown_key};
use crate::plan::{self, Choice, Facts, Reply};
use crate::respond::{self, EVENT_STREAM};
use crate::sse::Events;
use crate::state::{Api, Shared};
use crate::text;

/// Stored responses kept at most; the oldest go first.
const MAX_STORED: usize = 10_000;

/// Marks encrypted reasoning this server issued.
const ENCRYPTED_PREFIX: &str = "gAAAAB";

/// The parameters the Responses API accepts.
const KNOWN_PARAMETERS: &[&str] = &[
    "model",
    "input",
    "instructions",
    "previous_response_id",
    "conversation",
    "include",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_output_tokens",
    "max_tool_calls",
    "metadata",
    "reasoning",
    "store",
    "stream",
    "stream_options",
    "temperature",
    "top_p",
    "top_logprobs",
    "text",
    "truncation",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "prompt_cache_retention",
    "prompt",
    "service_tier",
    "background",
    "client_metadata",
];

/// Input item types the Responses API reads.
const ITEM_TYPES: &[&str] = &[
    "message",
    "function_call",
    "function_call_output",
    "reasoning",
    "item_reference",
    "custom_tool_call",
    "custom_tool_call_output",
    "web_search_call",
    "file_search_call",
    "computer_call",
    "computer_call_output",
    "code_interpreter_call",
    "image_generation_call",
    "local_shell_call",
    "local_shell_call_output",
    "mcp_call",
    "mcp_list_tools",
    "mcp_approval_request",
    "mcp_approval_response",
    "compaction",
];

/// Conversations by response id, and the ids oldest first (for eviction).
type Stored = (HashMap<String, Vec<Value>>, VecDeque<String>);

/// Conversations of stored responses, by id.
#[derive(Default)]
pub(crate) struct Store {
    inner: Mutex<Stored>,
}

impl Store {
    fn get(&self, id: &str) -> Option<Vec<Value>> {
        let inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner.0.get(id).cloned()
    }

    fn put(&self, id: String, items: Vec<Value>) {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if inner.1.len() >= MAX_STORED
            && let Some(old) = inner.1.pop_front()
        {
            inner.0.remove(&old);
        }
        inner.1.push_back(id.clone());
        inner.0.insert(id, items);
    }
}

fn invalid(message: &str, param: Option<&str>, code: Option<&str>) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
        param,
        code,
    )
}

/// The input as items (a string is one user message).
fn input_items(request: &Value) -> Vec<Value> {
    match request.get("input") {
        Some(Value::String(text)) => {
            vec![json!({"type": "message", "role": "user", "content": text})]
        }
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

/// The text of a message's `content`: the string, or its text parts joined.
fn message_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter(|p| matches!(str_at(p, "type"), "input_text" | "output_text" | "text"))
            .map(|p| str_at(p, "text"))
            .collect(),
        _ => String::new(),
    }
}

/// What the conversation asks for.
fn facts<'a>(conversation: &[Value], request: &'a Value) -> (Facts<'a>, Vec<(&'a str, &'a str)>) {
    let user_text = conversation
        .iter()
        .rev()
        .find(|i| str_at(i, "role") == "user")
        .map(|i| message_text(i.get("content")))
        .unwrap_or_default();
    let tool_result = conversation
        .last()
        .filter(|i| str_at(i, "type") == "function_call_output")
        .map(|i| match i.get("output") {
            Some(Value::String(text)) => text.clone(),
            other => message_text(other),
        });
    let mut tools = Vec::new();
    let mut namespaced = Vec::new();
    for tool in array_at(request, "tools") {
        match str_at(tool, "type") {
            "function" => tools.push(str_at(tool, "name")),
            "namespace" => {
                for inner in array_at(tool, "tools") {
                    if str_at(inner, "type") == "function" {
                        tools.push(str_at(inner, "name"));
                        namespaced.push((str_at(inner, "name"), str_at(tool, "name")));
                    }
                }
            }
            _ => {}
        }
    }
    let choice = match request.get("tool_choice") {
        Some(Value::String(mode)) if mode == "none" => Choice::None,
        Some(choice @ Value::Object(_)) if str_at(choice, "type") == "function" => {
            Choice::Named(str_at(choice, "name"))
        }
        _ => Choice::Auto,
    };
    let facts = Facts {
        user_text,
        tool_result,
        tools,
        choice,
    };
    (facts, namespaced)
}

/// `POST /v1/responses`.
pub(crate) async fn responses(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = respond::parse(&body);
    let admitted = admit(
        &shared,
        Api::OpenAiResponses,
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
    if let Some(name) = unknown_key(request, KNOWN_PARAMETERS) {
        let message = format!("Unknown parameter: '{name}'.");
        return invalid(&message, Some(name), Some("unknown_parameter"));
    }
    if model.is_empty() {
        return missing_param("model");
    }
    let mut conversation = Vec::new();
    if let Some(previous) = request.get("previous_response_id").and_then(Value::as_str) {
        match shared.responses.get(previous) {
            Some(items) => conversation = items,
            None => {
                let message = format!("Previous response with id '{previous}' not found.");
                return invalid(
                    &message,
                    Some("previous_response_id"),
                    Some("previous_response_not_found"),
                );
            }
        }
    }
    let input = input_items(request);
    for (i, item) in input.iter().enumerate() {
        // A message may leave out `type`.
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message");
        if !ITEM_TYPES.contains(&kind) {
            let message = format!(
                "Invalid value: '{kind}'. Supported values are: 'message', 'function_call', 'function_call_output', 'reasoning', …."
            );
            return invalid(
                &message,
                Some(&format!("input[{i}].type")),
                Some("invalid_value"),
            );
        }
        if kind == "reasoning"
            && let Some(content) = item.get("encrypted_content").and_then(Value::as_str)
            && !shared
                .ids
                .verify_token("reasoning", ENCRYPTED_PREFIX, content)
        {
            let message = format!(
                "The encrypted content for item input[{i}] could not be verified. Reason: Encrypted content organization_id did not match the target organization."
            );
            return invalid(
                &message,
                Some(&format!("input[{i}].encrypted_content")),
                Some("invalid_encrypted_content"),
            );
        }
    }
    conversation.extend(input.iter().cloned());
    let (facts, namespaced) = facts(&conversation, request);
    let reply = plan::decide(&facts);
    let include_encrypted = array_at(request, "include")
        .iter()
        .any(|i| i.as_str() == Some("reasoning.encrypted_content"));
    let reasons = include_encrypted || request.get("reasoning").is_some_and(|r| !r.is_null());
    let mut output = Vec::new();
    if reasons {
        let mut item =
            json!({"id": shared.ids.token("item", "rs_"), "type": "reasoning", "summary": []});
        if include_encrypted {
            item["encrypted_content"] = json!(shared.ids.token("reasoning", ENCRYPTED_PREFIX));
        }
        output.push(item);
    }
    match &reply {
        Reply::Text(text) => output.push(json!({
            "id": shared.ids.token("item", "msg_"),
            "type": "message",
            "status": "completed",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}],
            "role": "assistant",
        })),
        Reply::Tools(calls) => {
            for call in calls {
                let mut item = json!({
                    "id": shared.ids.token("item", "fc_"),
                    "type": "function_call",
                    "status": "completed",
                    "arguments": call.arguments,
                    "call_id": shared.ids.openai_call(),
                    "name": call.name,
                });
                if let Some((_, namespace)) = namespaced.iter().find(|(n, _)| *n == call.name) {
                    item["namespace"] = json!(namespace);
                }
                output.push(item);
            }
        }
    }
    let input_tokens = text::tokens(
        conversation
            .iter()
            .map(|i| text::words(&message_text(i.get("content"))))
            .sum(),
    );
    let output_tokens = reply.output_tokens();
    let id = shared.ids.token("response", "resp_");
    let store = request
        .get("store")
        .and_then(Value::as_bool)
        .unwrap_or(true);
    if store {
        let mut items = conversation;
        items.extend(output.iter().cloned());
        shared.responses.put(id.clone(), items);
    }
    let resource = |status: &str, output: Vec<Value>, usage: Value| {
        let echo = |key: &str, default: Value| request.get(key).cloned().unwrap_or(default);
        json!({
            "id": id,
            "object": "response",
            "created_at": respond::unix_now(),
            "status": status,
            "background": false,
            "error": null,
            "incomplete_details": null,
            "instructions": echo("instructions", Value::Null),
            "max_output_tokens": echo("max_output_tokens", Value::Null),
            "max_tool_calls": echo("max_tool_calls", Value::Null),
            "model": model,
            "output": output,
            "parallel_tool_calls": echo("parallel_tool_calls", json!(true)),
            "previous_response_id": echo("previous_response_id", Value::Null),
            "prompt_cache_key": echo("prompt_cache_key", Value::Null),
            "reasoning": {"effort": null, "summary": null},
            "safety_identifier": echo("safety_identifier", Value::Null),
            "service_tier": "default",
            "store": store,
            "temperature": echo("temperature", json!(1.0)),
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": echo("tool_choice", json!("auto")),
            "tools": echoed_tools(request),
            "top_logprobs": 0,
            "top_p": echo("top_p", json!(1.0)),
            "truncation": "disabled",
            "usage": usage,
            "user": echo("user", Value::Null),
            "metadata": echo("metadata", json!({})),
        })
    };
    let usage = json!({
        "input_tokens": input_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens,
    });
    let pacing = respond::pacing(shared.opts.chunk_delay, fault.as_ref());
    let response = if stream {
        let created = resource("in_progress", Vec::new(), Value::Null);
        let done = resource("completed", output.clone(), usage);
        match stream_events(created, &output, done, shared.opts.chunks) {
            Ok(events) => {
                respond::with_body(StatusCode::OK, EVENT_STREAM, events.into_body(pacing))
            }
            Err(err) => respond::internal(&err),
        }
    } else {
        respond::json(
            StatusCode::OK,
            &resource("completed", output, usage),
            pacing,
        )
    };
    respond::finish(response, fault.as_ref())
}

/// The event sequence of a streamed answer.
fn stream_events(
    created: Value,
    output: &[Value],
    done: Value,
    chunks: usize,
) -> serde_json::Result<Events> {
    let mut events = Events::default();
    let mut sequence = 0u64;
    let mut emit = |events: &mut Events, kind: &str, mut body: Value| {
        body["type"] = json!(kind);
        body["sequence_number"] = json!(sequence);
        sequence += 1;
        events.named(kind, &body)
    };
    emit(
        &mut events,
        "response.created",
        json!({"response": created.clone()}),
    )?;
    emit(
        &mut events,
        "response.in_progress",
        json!({"response": created}),
    )?;
    for (index, item) in output.iter().enumerate() {
        let id = item["id"].clone();
        let mut added = item.clone();
        added["status"] = json!("in_progress");
        match str_at(item, "type") {
            "message" => {
                added["content"] = json!([]);
                emit(
                    &mut events,
                    "response.output_item.added",
                    json!({"output_index": index, "item": added}),
                )?;
                let text = item["content"][0]["text"].as_str().unwrap_or_default();
                let part =
                    json!({"type": "output_text", "annotations": [], "logprobs": [], "text": ""});
                emit(
                    &mut events,
                    "response.content_part.added",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "part": part}),
                )?;
                for piece in text::pieces(text, chunks) {
                    emit(
                        &mut events,
                        "response.output_text.delta",
                        json!({"item_id": id, "output_index": index, "content_index": 0, "delta": piece, "logprobs": []}),
                    )?;
                }
                emit(
                    &mut events,
                    "response.output_text.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "text": text, "logprobs": []}),
                )?;
                emit(
                    &mut events,
                    "response.content_part.done",
                    json!({"item_id": id, "output_index": index, "content_index": 0, "part": item["content"][0]}),
                )?;
            }
            "function_call" => {
                added["arguments"] = json!("");
                emit(
                    &mut events,
                    "response.output_item.added",
                    json!({"output_index": index, "item": added}),
                )?;
                let arguments = item["arguments"].as_str().unwrap_or_default();
                for piece in text::pieces(arguments, chunks.max(3)) {
                    emit(
                        &mut events,
                        "response.function_call_arguments.delta",
                        json!({"item_id": id, "output_index": index, "delta": piece}),
                    )?;
                }
                emit(
                    &mut events,
                    "response.function_call_arguments.done",
                    json!({"item_id": id, "output_index": index, "arguments": arguments}),
                )?;
            }
            _ => {
                emit(
                    &mut events,
                    "response.output_item.added",
                    json!({"output_index": index, "item": added}),
                )?;
            }
        }
        emit(
            &mut events,
            "response.output_item.done",
            json!({"output_index": index, "item": item}),
        )?;
    }
    emit(&mut events, "response.completed", json!({"response": done}))?;
    Ok(events)
}

/// The request's tools as OpenAI echoes them in the response: a function tool always carries
/// `strict` (true unless the request said otherwise, the Responses API's default) and
/// `description` (null when absent).
fn echoed_tools(request: &Value) -> Value {
    let mut tools = request.get("tools").cloned().unwrap_or_else(|| json!([]));
    if let Some(tools) = tools.as_array_mut() {
        for tool in tools.iter_mut().filter(|t| t["type"] == "function") {
            if let Some(tool) = tool.as_object_mut() {
                tool.entry("strict").or_insert(json!(true));
                tool.entry("description").or_insert(Value::Null);
            }
        }
    }
    tools
}

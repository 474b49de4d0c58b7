//! Neutral stream events → the Open Responses SSE event sequence (§C7).
//!
//! Every event is one `event: <type>\ndata: <json>\n\n` frame whose JSON `type` is the event
//! name and whose `sequence_number` counts from 0 across the stream. Items never interleave:
//! the open item is closed (its `*.done` events, then `response.output_item.done`) before the
//! next one is added, so text after a tool call opens a new message item.

use bytes::BytesMut;
use serde::Serialize;
use serde_json::Value;

use super::encode::{
    Ending, Outcome, arguments, call_item, encrypted_content, item_id, items, items_json,
    message_item, output_text, reasoning_item, resource, summary_text,
};
use super::{Echo, Meta, encode_response};
use crate::error::ErrorKind;
use crate::neutral::{self, FinishReason, Part, StreamEvent, ToolCall, Usage};
use crate::sse;

/// The item being streamed.
#[derive(Debug)]
enum Open {
    Message {
        index: usize,
        id: String,
        text: String,
    },
    Reasoning {
        index: usize,
        id: String,
        text: String,
        signature: Option<String>,
        /// Whether `response.reasoning_summary_part.added` was sent (on the first text).
        summary_open: bool,
    },
    Call {
        index: usize,
        id: String,
        /// The neutral tool-call index, which `ToolCallDelta` events refer to.
        tool: usize,
        call: ToolCall,
    },
}

/// Neutral stream events → Open Responses SSE events.
///
/// The first call emits `response.created` and `response.in_progress`. A neutral `Finish`
/// closes the open item but the terminal event waits for [`finish`]: some vendors report usage
/// after the finish reason. Content after `Finish` is ignored. Argument deltas for a tool call
/// that is not the open item are dropped: every vendor we decode sends a call's arguments right
/// after its start, and the spec forbids deltas for an item that is done.
///
/// The terminal event (`response.completed`, `response.incomplete` or `response.failed`) is
/// followed by `data: [DONE]` (§C2), so the caller writes nothing after it.
///
/// [`finish`]: StreamEncoder::finish
#[derive(Debug)]
pub struct StreamEncoder {
    echo: Echo,
    meta: Meta,
    sequence: u64,
    started: bool,
    /// A terminal event was sent: nothing more is written.
    done: bool,
    vendor_id: String,
    vendor_model: String,
    open: Option<Open>,
    /// Closed items, as neutral parts (one part per item).
    parts: Vec<Part>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    /// Who issued the reasoning signatures of this stream (one vendor answers it).
    reasoning_origin: Option<neutral::ReasoningOrigin>,
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    #[serde(rename = "type")]
    kind: &'a str,
    sequence_number: u64,
    #[serde(flatten)]
    body: T,
}

#[derive(Serialize)]
struct ResponseBody<'a> {
    response: &'a Value,
}

#[derive(Serialize)]
struct ItemBody<'a> {
    output_index: usize,
    item: &'a Value,
}

#[derive(Serialize)]
struct ContentPartBody<'a> {
    item_id: &'a str,
    output_index: usize,
    content_index: usize,
    part: &'a Value,
}

#[derive(Serialize)]
struct TextDeltaBody<'a> {
    item_id: &'a str,
    output_index: usize,
    content_index: usize,
    delta: &'a str,
    logprobs: [(); 0],
}

#[derive(Serialize)]
struct TextDoneBody<'a> {
    item_id: &'a str,
    output_index: usize,
    content_index: usize,
    text: &'a str,
    logprobs: [(); 0],
}

#[derive(Serialize)]
struct SummaryPartBody<'a> {
    item_id: &'a str,
    output_index: usize,
    summary_index: usize,
    part: &'a Value,
}

#[derive(Serialize)]
struct SummaryDeltaBody<'a> {
    item_id: &'a str,
    output_index: usize,
    summary_index: usize,
    delta: &'a str,
}

#[derive(Serialize)]
struct SummaryDoneBody<'a> {
    item_id: &'a str,
    output_index: usize,
    summary_index: usize,
    text: &'a str,
}

#[derive(Serialize)]
struct ArgumentsDeltaBody<'a> {
    item_id: &'a str,
    output_index: usize,
    delta: &'a str,
}

#[derive(Serialize)]
struct ArgumentsDoneBody<'a> {
    item_id: &'a str,
    output_index: usize,
    arguments: &'a str,
}

/// The `error` event carries its payload twice: flat (`code`, `message`, `param`, as OpenAI
/// sends it and its SDKs read it) and under `error` (as the Open Responses schema requires).
#[derive(Serialize)]
struct ErrorBody<'a> {
    code: &'a str,
    message: &'a str,
    param: Option<&'a str>,
    error: ErrorPayload<'a>,
}

#[derive(Serialize)]
struct ErrorPayload<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    code: &'a str,
    message: &'a str,
    param: Option<&'a str>,
}

/// Appends one event frame and advances the sequence number.
fn emit<T: Serialize>(sequence: &mut u64, out: &mut BytesMut, kind: &str, body: T) {
    let event = Envelope {
        kind,
        sequence_number: *sequence,
        body,
    };
    *sequence += 1;
    // Serializing these types cannot fail; compact JSON has no raw newline, so the frame has
    // exactly one `data:` line.
    let data = serde_json::to_vec(&event).unwrap_or_default();
    sse::encode_event(out, Some(kind), &data);
}

/// The resource `error.code` for an error reported inside the stream, after the spec's error
/// types (§C8).
fn error_code(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::UpstreamStatus(429) => "too_many_requests",
        ErrorKind::NotFound | ErrorKind::UpstreamStatus(404) => "not_found",
        ErrorKind::InvalidRequest
        | ErrorKind::MethodNotAllowed
        | ErrorKind::PayloadTooLarge
        | ErrorKind::RequestTimeout
        | ErrorKind::UpstreamStatus(400..=499) => "invalid_request",
        _ => "server_error",
    }
}

impl StreamEncoder {
    /// An encoder for one response: `echo` from the request, `meta` with the response id, its
    /// creation time and the client's model name.
    pub fn new(echo: Echo, meta: Meta) -> Self {
        Self {
            echo,
            meta,
            sequence: 0,
            started: false,
            done: false,
            vendor_id: String::new(),
            vendor_model: String::new(),
            open: None,
            parts: Vec::new(),
            finish: None,
            usage: None,
            reasoning_origin: None,
        }
    }

    /// Appends the events for one neutral event. An `Error` event ends the stream as
    /// [`fail`](Self::fail) does (with a code from its [`ErrorKind`]); nothing is written after
    /// the stream ended.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut BytesMut) {
        if self.done {
            return;
        }
        self.start(out);
        match event {
            StreamEvent::Start { id, model } => {
                if self.vendor_id.is_empty() {
                    self.vendor_id.clone_from(id);
                    self.vendor_model.clone_from(model);
                }
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
            StreamEvent::Error { kind, message } => {
                self.fail_with(kind.openai_type(), error_code(*kind), message, out);
            }
            _ if self.finish.is_some() => {}
            StreamEvent::TextDelta { text } => self.text(text, out),
            StreamEvent::ReasoningDelta {
                text,
                signature,
                origin,
            } => {
                if origin.is_some() {
                    self.reasoning_origin = *origin;
                }
                self.reasoning(text, signature.as_deref(), out);
            }
            StreamEvent::ToolCallStart {
                index,
                id,
                name,
                signature,
            } => {
                self.close(out, "completed");
                let output_index = self.parts.len();
                let item = item_id(&self.meta.id, "fc", output_index);
                let call = ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                    signature: signature.clone(),
                };
                let added = call_item(&self.echo, &item, "in_progress", &call, "");
                emit(
                    &mut self.sequence,
                    out,
                    "response.output_item.added",
                    ItemBody {
                        output_index,
                        item: &added,
                    },
                );
                self.open = Some(Open::Call {
                    index: output_index,
                    id: item,
                    tool: *index,
                    call,
                });
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                if let Some(Open::Call {
                    index: output_index,
                    id,
                    tool,
                    call,
                }) = &mut self.open
                    && *tool == *index
                    && !arguments.is_empty()
                {
                    call.arguments.push_str(arguments);
                    emit(
                        &mut self.sequence,
                        out,
                        "response.function_call_arguments.delta",
                        ArgumentsDeltaBody {
                            item_id: id,
                            output_index: *output_index,
                            delta: arguments,
                        },
                    );
                }
            }
            StreamEvent::Finish { reason } => {
                self.close(out, Ending::of(reason).last_item_status());
                self.finish = Some(reason.clone());
            }
        }
    }

    /// Closes the open item and emits the terminal event with the full resource:
    /// `response.completed`, `response.incomplete` (Length, ContentFilter, Paused) or
    /// `response.failed` (ModelError), then `data: [DONE]`. Returns the answer the events
    /// described, for the conversation store. Does nothing and returns `None` after a previous
    /// call or after [`fail`](Self::fail).
    pub fn finish(&mut self, out: &mut BytesMut, completed_at: u64) -> Option<neutral::Response> {
        if self.done {
            return None;
        }
        self.start(out);
        self.close(out, "completed");
        self.done = true;
        let has_calls = self.parts.iter().any(|p| matches!(p, Part::ToolCall(_)));
        let finish = self.finish.clone().unwrap_or(if has_calls {
            FinishReason::ToolCalls
        } else {
            FinishReason::Stop
        });
        let response = neutral::Response {
            id: self.vendor_id.clone(),
            model: self.vendor_model.clone(),
            parts: std::mem::take(&mut self.parts),
            finish,
            usage: self.usage,
        };
        let meta = Meta {
            completed_at: Some(completed_at),
            ..self.meta.clone()
        };
        let snapshot = encode_response(&response, &self.echo, &meta);
        let kind = match Ending::of(&response.finish).status {
            "incomplete" => "response.incomplete",
            "failed" => "response.failed",
            _ => "response.completed",
        };
        emit(
            &mut self.sequence,
            out,
            kind,
            ResponseBody {
                response: &snapshot,
            },
        );
        out.extend_from_slice(sse::DONE_FRAME);
        Some(response)
    }

    /// An upstream failure mid-stream: closes the open item (as `incomplete`), emits an `error`
    /// event, then `response.failed` with the output so far and `error {code, message}`, then
    /// `data: [DONE]`. The resource's `completed_at` is `meta.completed_at`, else `created_at`.
    /// Does nothing after a previous call or after [`finish`](Self::finish).
    pub fn fail(&mut self, code: &str, message: &str, out: &mut BytesMut) {
        self.fail_with("server_error", code, message, out);
    }

    fn fail_with(&mut self, kind: &str, code: &str, message: &str, out: &mut BytesMut) {
        if self.done {
            return;
        }
        self.start(out);
        let interrupted = self.open.is_some();
        self.close(out, "incomplete");
        self.done = true;
        emit(
            &mut self.sequence,
            out,
            "error",
            ErrorBody {
                code,
                message,
                param: None,
                error: ErrorPayload {
                    kind,
                    code,
                    message,
                    param: None,
                },
            },
        );
        let last_status = match (&self.finish, interrupted) {
            (_, true) => "incomplete",
            (Some(finish), false) => Ending::of(finish).last_item_status(),
            (None, false) => "completed",
        };
        let output = items_json(&self.echo, &items(&self.parts), &self.meta.id, last_status);
        let snapshot = resource(
            &self.echo,
            &self.meta,
            Outcome {
                status: "failed",
                output,
                error: Some((code, message)),
                incomplete: None,
                usage: self.usage.as_ref(),
                completed_at: Some(self.meta.completed_at.unwrap_or(self.meta.created_at)),
            },
        );
        emit(
            &mut self.sequence,
            out,
            "response.failed",
            ResponseBody {
                response: &snapshot,
            },
        );
        out.extend_from_slice(sse::DONE_FRAME);
    }

    /// `response.created` then `response.in_progress`, once.
    fn start(&mut self, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        let snapshot = resource(
            &self.echo,
            &self.meta,
            Outcome {
                status: "in_progress",
                output: Vec::new(),
                error: None,
                incomplete: None,
                usage: None,
                completed_at: None,
            },
        );
        for kind in ["response.created", "response.in_progress"] {
            emit(
                &mut self.sequence,
                out,
                kind,
                ResponseBody {
                    response: &snapshot,
                },
            );
        }
    }

    fn text(&mut self, delta: &str, out: &mut BytesMut) {
        if delta.is_empty() {
            return;
        }
        if !matches!(self.open, Some(Open::Message { .. })) {
            self.close(out, "completed");
            let index = self.parts.len();
            let id = item_id(&self.meta.id, "msg", index);
            let item = message_item(&id, "in_progress", None);
            emit(
                &mut self.sequence,
                out,
                "response.output_item.added",
                ItemBody {
                    output_index: index,
                    item: &item,
                },
            );
            emit(
                &mut self.sequence,
                out,
                "response.content_part.added",
                ContentPartBody {
                    item_id: &id,
                    output_index: index,
                    content_index: 0,
                    part: &output_text(""),
                },
            );
            self.open = Some(Open::Message {
                index,
                id,
                text: String::new(),
            });
        }
        if let Some(Open::Message { index, id, text }) = &mut self.open {
            text.push_str(delta);
            emit(
                &mut self.sequence,
                out,
                "response.output_text.delta",
                TextDeltaBody {
                    item_id: id,
                    output_index: *index,
                    content_index: 0,
                    delta,
                    logprobs: [],
                },
            );
        }
    }

    /// Reasoning text goes to the open reasoning item until it is signed: a signature completes
    /// a reasoning block, so more reasoning text opens a new item (as in Anthropic's stream).
    fn reasoning(&mut self, delta: &str, signature: Option<&str>, out: &mut BytesMut) {
        let signature = signature.filter(|s| !s.is_empty());
        if delta.is_empty() && signature.is_none() {
            return;
        }
        let continues = matches!(
            &self.open,
            Some(Open::Reasoning {
                signature: None,
                ..
            })
        );
        if !continues {
            self.close(out, "completed");
            let index = self.parts.len();
            let id = item_id(&self.meta.id, "rs", index);
            let item = reasoning_item(&id, "in_progress", "", None);
            emit(
                &mut self.sequence,
                out,
                "response.output_item.added",
                ItemBody {
                    output_index: index,
                    item: &item,
                },
            );
            self.open = Some(Open::Reasoning {
                index,
                id,
                text: String::new(),
                signature: None,
                summary_open: false,
            });
        }
        if let Some(Open::Reasoning {
            index,
            id,
            text,
            signature: sig,
            summary_open,
        }) = &mut self.open
        {
            if !delta.is_empty() {
                if !*summary_open {
                    *summary_open = true;
                    emit(
                        &mut self.sequence,
                        out,
                        "response.reasoning_summary_part.added",
                        SummaryPartBody {
                            item_id: id,
                            output_index: *index,
                            summary_index: 0,
                            part: &summary_text(""),
                        },
                    );
                }
                text.push_str(delta);
                emit(
                    &mut self.sequence,
                    out,
                    "response.reasoning_summary_text.delta",
                    SummaryDeltaBody {
                        item_id: id,
                        output_index: *index,
                        summary_index: 0,
                        delta,
                    },
                );
            }
            if let Some(signature) = signature {
                *sig = Some(signature.to_owned());
            }
        }
    }

    /// Closes the open item with `status`: its `*.done` events, then
    /// `response.output_item.done` with the full item; the item becomes a neutral part.
    fn close(&mut self, out: &mut BytesMut, status: &str) {
        let Some(open) = self.open.take() else {
            return;
        };
        let origin = self.reasoning_origin;
        let sequence = &mut self.sequence;
        match open {
            Open::Message { index, id, text } => {
                emit(
                    sequence,
                    out,
                    "response.output_text.done",
                    TextDoneBody {
                        item_id: &id,
                        output_index: index,
                        content_index: 0,
                        text: &text,
                        logprobs: [],
                    },
                );
                emit(
                    sequence,
                    out,
                    "response.content_part.done",
                    ContentPartBody {
                        item_id: &id,
                        output_index: index,
                        content_index: 0,
                        part: &output_text(&text),
                    },
                );
                let item = message_item(&id, status, Some(&text));
                emit(
                    sequence,
                    out,
                    "response.output_item.done",
                    ItemBody {
                        output_index: index,
                        item: &item,
                    },
                );
                self.parts.push(Part::Text { text });
            }
            Open::Reasoning {
                index,
                id,
                text,
                signature,
                summary_open,
            } => {
                if summary_open {
                    emit(
                        sequence,
                        out,
                        "response.reasoning_summary_text.done",
                        SummaryDoneBody {
                            item_id: &id,
                            output_index: index,
                            summary_index: 0,
                            text: &text,
                        },
                    );
                    emit(
                        sequence,
                        out,
                        "response.reasoning_summary_part.done",
                        SummaryPartBody {
                            item_id: &id,
                            output_index: index,
                            summary_index: 0,
                            part: &summary_text(&text),
                        },
                    );
                }
                let item = reasoning_item(
                    &id,
                    status,
                    &text,
                    encrypted_content(signature.as_deref(), None, origin),
                );
                emit(
                    sequence,
                    out,
                    "response.output_item.done",
                    ItemBody {
                        output_index: index,
                        item: &item,
                    },
                );
                let origin = origin.filter(|_| signature.is_some());
                self.parts.push(Part::Reasoning(neutral::Reasoning {
                    text,
                    signature,
                    redacted: None,
                    origin,
                }));
            }
            Open::Call {
                index, id, call, ..
            } => {
                let call = ToolCall {
                    arguments: arguments(&call.arguments).to_owned(),
                    ..call
                };
                emit(
                    sequence,
                    out,
                    "response.function_call_arguments.done",
                    ArgumentsDoneBody {
                        item_id: &id,
                        output_index: index,
                        arguments: &call.arguments,
                    },
                );
                let item = call_item(&self.echo, &id, status, &call, &call.arguments);
                emit(
                    sequence,
                    out,
                    "response.output_item.done",
                    ItemBody {
                        output_index: index,
                        item: &item,
                    },
                );
                self.parts.push(Part::ToolCall(call));
            }
        }
    }
}

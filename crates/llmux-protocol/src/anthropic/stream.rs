//! Streams: Anthropic SSE events → neutral events ([`StreamDecoder`]) and neutral events →
//! Anthropic's exact event sequence ([`StreamEncoder`]).

use std::collections::HashMap;

use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{
    WireBlock, WireType, WireUsage, decode_stop_reason, encode_error, encode_stop_reason,
    error_type, split_input, stable_hash, synthesize_id,
};
use crate::error::ErrorKind;
use crate::neutral::{DecodeError, FinishReason, ReasoningOrigin, StreamEvent, Usage, tag_token};
use crate::sse::{self, Event};

#[derive(Deserialize)]
struct MessageStartEvent {
    message: StartMessage,
}

#[derive(Deserialize)]
struct StartMessage {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct BlockStartEvent<'a> {
    index: usize,
    #[serde(borrow)]
    content_block: &'a RawValue,
}

#[derive(Deserialize)]
struct BlockDeltaEvent {
    index: usize,
    delta: WireDelta,
}

#[derive(Deserialize)]
struct WireDelta {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    partial_json: Option<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    signature: Option<String>,
}

#[derive(Deserialize)]
struct MessageDeltaEvent {
    #[serde(default)]
    delta: Option<MessageDelta>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct MessageDelta {
    #[serde(default)]
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct ErrorEvent {
    error: ErrorEventBody,
}

#[derive(Deserialize)]
struct ErrorEventBody {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Anthropic SSE events → neutral stream events, for one answer.
///
/// Tool calls are numbered 0, 1, … in order of their `content_block_start`; argument deltas
/// find their call through the block `index`. `redacted_thinking` blocks have no neutral
/// stream event and are skipped, like server-tool blocks and unknown events.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    /// Usage from `message_start`: the input counts, which `message_delta` may omit.
    start_usage: WireUsage,
    /// Content block index → tool-call index.
    tools: HashMap<usize, usize>,
}

fn invalid(name: &str, err: &serde_json::Error) -> DecodeError {
    DecodeError::new(format!("invalid anthropic {name} event: {err}"))
}

impl StreamDecoder {
    /// Decodes one SSE event. The event name comes from the `event:` line, or from the
    /// payload's `type` when a proxy dropped the names.
    pub fn decode(&mut self, event: &Event) -> Result<Vec<StreamEvent>, DecodeError> {
        let header;
        let name = match event.name.as_deref() {
            Some(name) => name,
            None => {
                header = serde_json::from_slice::<WireType>(&event.data)
                    .map_err(|err| invalid("unnamed", &err))?;
                header.kind.as_str()
            }
        };
        let data = &event.data[..];
        match name {
            "message_start" => {
                let start: MessageStartEvent =
                    serde_json::from_slice(data).map_err(|err| invalid(name, &err))?;
                let mut out = vec![StreamEvent::Start {
                    id: start.message.id,
                    model: start.message.model,
                }];
                if let Some(usage) = start.message.usage {
                    self.start_usage = usage;
                    // Output here is a placeholder; the real count comes with message_delta.
                    out.push(StreamEvent::Usage(Usage {
                        output_tokens: 0,
                        ..usage.to_neutral()
                    }));
                }
                Ok(out)
            }
            "content_block_start" => {
                let start: BlockStartEvent<'_> =
                    serde_json::from_slice(data).map_err(|err| invalid(name, &err))?;
                let block: WireBlock<'_> = serde_json::from_str(start.content_block.get())
                    .map_err(|err| invalid(name, &err))?;
                Ok(self.block_start(start.index, block))
            }
            "content_block_delta" => {
                let delta: BlockDeltaEvent =
                    serde_json::from_slice(data).map_err(|err| invalid(name, &err))?;
                Ok(self.block_delta(delta.index, delta.delta))
            }
            "message_delta" => {
                let delta: MessageDeltaEvent =
                    serde_json::from_slice(data).map_err(|err| invalid(name, &err))?;
                let mut out = Vec::with_capacity(2);
                let start = self.start_usage;
                let usage = match delta.usage {
                    // message_delta usage is cumulative; newer API versions repeat the input
                    // counts there, older ones only give output_tokens.
                    Some(usage) => WireUsage {
                        input_tokens: usage.input_tokens.or(start.input_tokens),
                        output_tokens: usage.output_tokens,
                        cache_creation_input_tokens: usage
                            .cache_creation_input_tokens
                            .or(start.cache_creation_input_tokens),
                        cache_read_input_tokens: usage
                            .cache_read_input_tokens
                            .or(start.cache_read_input_tokens),
                    },
                    None => WireUsage {
                        output_tokens: Some(0),
                        ..start
                    },
                };
                out.push(StreamEvent::Usage(usage.to_neutral()));
                out.push(StreamEvent::Finish {
                    reason: decode_stop_reason(delta.delta.and_then(|d| d.stop_reason).as_deref()),
                });
                Ok(out)
            }
            "error" => {
                let error: ErrorEvent =
                    serde_json::from_slice(data).map_err(|err| invalid(name, &err))?;
                let status = match error.error.kind.as_deref() {
                    Some("overloaded_error") => 529,
                    Some("rate_limit_error") => 429,
                    _ => 500,
                };
                Ok(vec![StreamEvent::Error {
                    kind: ErrorKind::UpstreamStatus(status),
                    message: error
                        .error
                        .message
                        .unwrap_or_else(|| "anthropic stream error".to_owned()),
                }])
            }
            // content_block_stop, message_stop, ping and events added later carry nothing
            // the neutral stream needs.
            _ => Ok(Vec::new()),
        }
    }

    fn block_start(&mut self, index: usize, block: WireBlock<'_>) -> Vec<StreamEvent> {
        match block.kind.as_str() {
            "text" => block
                .text
                .filter(|t| !t.is_empty())
                .map(|text| StreamEvent::TextDelta { text })
                .into_iter()
                .collect(),
            "tool_use" => {
                let tool = self.tools.len();
                self.tools.insert(index, tool);
                vec![StreamEvent::ToolCallStart {
                    index: tool,
                    id: block.id.unwrap_or_default(),
                    name: block.name.unwrap_or_default(),
                    signature: None,
                }]
            }
            "thinking" => {
                let text = block.thinking.unwrap_or_default();
                let signature = block.signature.filter(|s| !s.is_empty());
                if text.is_empty() && signature.is_none() {
                    Vec::new()
                } else {
                    vec![StreamEvent::ReasoningDelta {
                        text,
                        signature,
                        origin: Some(ReasoningOrigin::Anthropic),
                    }]
                }
            }
            _ => Vec::new(),
        }
    }

    fn block_delta(&mut self, index: usize, delta: WireDelta) -> Vec<StreamEvent> {
        let event =
            match delta.kind.as_str() {
                "text_delta" => delta
                    .text
                    .filter(|t| !t.is_empty())
                    .map(|text| StreamEvent::TextDelta { text }),
                "input_json_delta" => match (self.tools.get(&index), delta.partial_json) {
                    (Some(&tool), Some(arguments)) if !arguments.is_empty() => {
                        Some(StreamEvent::ToolCallDelta {
                            index: tool,
                            arguments,
                        })
                    }
                    _ => None,
                },
                "thinking_delta" => delta.thinking.filter(|t| !t.is_empty()).map(|text| {
                    StreamEvent::ReasoningDelta {
                        text,
                        signature: None,
                        origin: Some(ReasoningOrigin::Anthropic),
                    }
                }),
                "signature_delta" => delta.signature.filter(|s| !s.is_empty()).map(|signature| {
                    StreamEvent::ReasoningDelta {
                        text: String::new(),
                        signature: Some(signature),
                        origin: Some(ReasoningOrigin::Anthropic),
                    }
                }),
                _ => None,
            };
        event.into_iter().collect()
    }
}

/// The kind of the content block currently open in the encoded stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenBlock {
    Text,
    /// A thinking block; once signed it is complete and more thinking opens a new block.
    Thinking {
        signed: bool,
    },
    /// A `tool_use` block for this neutral tool-call index.
    Tool(usize),
}

/// Neutral stream events → Anthropic's SSE sequence, for a `/v1/messages` client:
/// `message_start`, `ping`, then content blocks (each `content_block_start`, its deltas and one
/// `content_block_stop`; blocks never overlap and are numbered from 0), then `message_delta`
/// and `message_stop`.
///
/// A neutral `Finish` closes the open block but `message_delta` waits for [`finish`]: some
/// vendors (OpenAI) report usage *after* the finish reason, and `message_delta` carries the
/// final output count. Argument deltas for a tool call whose block is no longer open are
/// dropped: every vendor we decode sends a call's arguments right after its start.
///
/// [`finish`]: StreamEncoder::finish
#[derive(Debug)]
pub struct StreamEncoder {
    id: String,
    model: String,
    input_tokens: u64,
    started: bool,
    /// Content is over (a `Finish` came): only usage is still taken.
    finished: Option<FinishReason>,
    /// Nothing more is written (`message_stop` or an `error` event was sent).
    done: bool,
    next_index: usize,
    open: Option<(usize, OpenBlock)>,
    usage: Option<Usage>,
    /// Readable reasoning is not written (the request's `thinking.display: "omitted"`).
    omit_reasoning: bool,
}

#[derive(Serialize)]
struct MessageStartOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: StartMessageOut<'a>,
}

#[derive(Serialize)]
struct StartMessageOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: [(); 0],
    stop_reason: Option<&'static str>,
    stop_sequence: Option<&'static str>,
    usage: StartUsageOut,
}

#[derive(Serialize)]
struct StartUsageOut {
    input_tokens: u64,
    cache_creation_input_tokens: u64,
    cache_read_input_tokens: u64,
    output_tokens: u64,
}

#[derive(Serialize)]
struct BlockStartOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    content_block: ContentBlockOut<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentBlockOut<'a> {
    Text {
        text: &'static str,
    },
    Thinking {
        thinking: &'static str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: EmptyObject,
    },
}

/// Serializes as `{}`.
#[derive(Serialize)]
struct EmptyObject {}

#[derive(Serialize)]
struct BlockDeltaOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
    delta: DeltaOut<'a>,
}

#[derive(Serialize)]
#[serde(tag = "type")]
enum DeltaOut<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
}

#[derive(Serialize)]
struct BlockStopOut {
    #[serde(rename = "type")]
    kind: &'static str,
    index: usize,
}

#[derive(Serialize)]
struct MessageDeltaOut {
    #[serde(rename = "type")]
    kind: &'static str,
    delta: MessageDeltaBody,
    usage: DeltaUsageOut,
}

#[derive(Serialize)]
struct MessageDeltaBody {
    stop_reason: &'static str,
    stop_sequence: Option<&'static str>,
}

#[derive(Serialize)]
struct DeltaUsageOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_creation_input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_read_input_tokens: Option<u64>,
    output_tokens: u64,
}

#[derive(Serialize)]
struct TypeOnly {
    #[serde(rename = "type")]
    kind: &'static str,
}

fn emit<T: Serialize>(out: &mut BytesMut, name: &str, data: &T) {
    let data = serde_json::to_vec(data).unwrap_or_default();
    sse::encode_event(out, Some(name), &data);
}

impl StreamEncoder {
    /// An encoder for one answer: `id` is the message id, `client_model` the name the client
    /// asked for, `input_tokens` the input count `message_start` reports.
    pub fn new(id: String, client_model: String, input_tokens: u64) -> Self {
        Self {
            id,
            model: client_model,
            input_tokens,
            started: false,
            finished: None,
            done: false,
            next_index: 0,
            open: None,
            usage: None,
            omit_reasoning: false,
        }
    }

    /// With `omit` (a request with [`omit_reasoning`](crate::neutral::Request::omit_reasoning)),
    /// thinking blocks carry no text, as Anthropic's `display: "omitted"` does: only a
    /// signature opens one.
    #[must_use]
    pub fn omit_reasoning(mut self, omit: bool) -> Self {
        self.omit_reasoning = omit;
        self
    }

    /// Appends the SSE frames for one neutral event.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut BytesMut) {
        if self.done {
            return;
        }
        if let StreamEvent::Usage(usage) = event {
            self.usage = Some(*usage);
            return;
        }
        if let StreamEvent::Error { kind, message } = event {
            self.fail(*kind, message, out);
            return;
        }
        if self.finished.is_some() {
            return;
        }
        match event {
            StreamEvent::Start { id, .. } => {
                if self.id.is_empty() {
                    self.id.clone_from(id);
                }
                self.start(out);
            }
            StreamEvent::TextDelta { text } => {
                if text.is_empty() {
                    return;
                }
                let index = self.open_block(OpenBlock::Text, out);
                self.delta(out, index, DeltaOut::Text { text });
            }
            StreamEvent::ReasoningDelta {
                text,
                signature,
                origin,
            } => {
                let text = if self.omit_reasoning { "" } else { text };
                let signature = signature
                    .as_deref()
                    .filter(|s| !s.is_empty())
                    .map(|s| tag_token(*origin, ReasoningOrigin::Anthropic, s));
                let signature = signature.as_deref();
                if text.is_empty() && signature.is_none() {
                    return;
                }
                let index = self.open_block(OpenBlock::Thinking { signed: false }, out);
                if !text.is_empty() {
                    self.delta(out, index, DeltaOut::Thinking { thinking: text });
                }
                if let Some(signature) = signature {
                    self.delta(out, index, DeltaOut::Signature { signature });
                    self.open = Some((index, OpenBlock::Thinking { signed: true }));
                }
            }
            StreamEvent::ToolCallStart {
                index, id, name, ..
            } => {
                self.start(out);
                self.close_block(out);
                let block = self.next_index;
                self.next_index += 1;
                let id = if id.is_empty() {
                    synthesize_id("toolu_", stable_hash(self.id.as_bytes()) ^ (*index as u64))
                } else {
                    id.clone()
                };
                emit(
                    out,
                    "content_block_start",
                    &BlockStartOut {
                        kind: "content_block_start",
                        index: block,
                        content_block: ContentBlockOut::ToolUse {
                            id: &id,
                            name,
                            input: EmptyObject {},
                        },
                    },
                );
                self.open = Some((block, OpenBlock::Tool(*index)));
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                if arguments.is_empty() {
                    return;
                }
                if let Some((block, OpenBlock::Tool(tool))) = self.open
                    && tool == *index
                {
                    self.delta(
                        out,
                        block,
                        DeltaOut::InputJson {
                            partial_json: arguments,
                        },
                    );
                }
            }
            StreamEvent::Finish { reason } => {
                self.start(out);
                self.close_block(out);
                self.finished = Some(reason.clone());
            }
            StreamEvent::Usage(_) | StreamEvent::Error { .. } => {}
        }
    }

    /// Ends the stream: closes any open block, then `message_delta` (stop reason from the
    /// `Finish` event, `end_turn` when none came; output tokens from the last usage) and
    /// `message_stop`. Does nothing after an error or a previous call.
    pub fn finish(&mut self, out: &mut BytesMut) {
        if self.done {
            return;
        }
        self.start(out);
        self.close_block(out);
        self.done = true;
        let reason = self.finished.take().unwrap_or_default();
        let usage = match &self.usage {
            Some(usage) => {
                let (input, write, read) = split_input(usage);
                DeltaUsageOut {
                    input_tokens: Some(input),
                    cache_creation_input_tokens: Some(write),
                    cache_read_input_tokens: Some(read),
                    output_tokens: usage.output_tokens,
                }
            }
            None => DeltaUsageOut {
                input_tokens: None,
                cache_creation_input_tokens: None,
                cache_read_input_tokens: None,
                output_tokens: 0,
            },
        };
        emit(
            out,
            "message_delta",
            &MessageDeltaOut {
                kind: "message_delta",
                delta: MessageDeltaBody {
                    stop_reason: encode_stop_reason(&reason),
                    stop_sequence: None,
                },
                usage,
            },
        );
        emit(
            out,
            "message_stop",
            &TypeOnly {
                kind: "message_stop",
            },
        );
    }

    /// Ends the stream with Anthropic's `error` event (after closing the open block), the same
    /// as encoding [`StreamEvent::Error`]. Like Anthropic, no `message_stop` follows; an error
    /// before anything was sent is the only event, as in Anthropic's own overloaded streams.
    /// Does nothing once the stream has ended.
    pub fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut BytesMut) {
        if self.done {
            return;
        }
        self.close_block(out);
        self.done = true;
        sse::encode_event(out, Some("error"), &encode_error(error_type(kind), message));
    }

    /// `message_start` and `ping`, once.
    fn start(&mut self, out: &mut BytesMut) {
        if self.started {
            return;
        }
        self.started = true;
        emit(
            out,
            "message_start",
            &MessageStartOut {
                kind: "message_start",
                message: StartMessageOut {
                    id: &self.id,
                    kind: "message",
                    role: "assistant",
                    model: &self.model,
                    content: [],
                    stop_reason: None,
                    stop_sequence: None,
                    usage: StartUsageOut {
                        input_tokens: self.input_tokens,
                        cache_creation_input_tokens: 0,
                        cache_read_input_tokens: 0,
                        // Anthropic's own placeholder; the real count is in message_delta.
                        output_tokens: 1,
                    },
                },
            },
        );
        // Anthropic writes the space; some clients compare frames byte for byte.
        sse::encode_event(out, Some("ping"), br#"{"type": "ping"}"#);
    }

    /// Makes `wanted` the open block (opening a new one unless one of that kind is open and
    /// still accepts content) and returns its index.
    fn open_block(&mut self, wanted: OpenBlock, out: &mut BytesMut) -> usize {
        self.start(out);
        if let Some((index, open)) = self.open
            && open == wanted
        {
            return index;
        }
        self.close_block(out);
        let index = self.next_index;
        self.next_index += 1;
        let content_block = match wanted {
            OpenBlock::Thinking { .. } => ContentBlockOut::Thinking { thinking: "" },
            OpenBlock::Text | OpenBlock::Tool(_) => ContentBlockOut::Text { text: "" },
        };
        emit(
            out,
            "content_block_start",
            &BlockStartOut {
                kind: "content_block_start",
                index,
                content_block,
            },
        );
        self.open = Some((index, wanted));
        index
    }

    fn close_block(&mut self, out: &mut BytesMut) {
        if let Some((index, _)) = self.open.take() {
            emit(
                out,
                "content_block_stop",
                &BlockStopOut {
                    kind: "content_block_stop",
                    index,
                },
            );
        }
    }

    fn delta(&self, out: &mut BytesMut, index: usize, delta: DeltaOut<'_>) {
        emit(
            out,
            "content_block_delta",
            &BlockDeltaOut {
                kind: "content_block_delta",
                index,
                delta,
            },
        );
    }
}

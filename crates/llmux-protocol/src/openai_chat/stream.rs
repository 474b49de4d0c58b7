//! Chat Completions streams ⇄ neutral stream events: [`ChunkEncoder`] writes the chunks a
//! client reads, [`ChunkDecoder`] reads a vendor's chunks.

use std::collections::HashMap;

use bytes::BytesMut;
use serde_json::{Value, json};

use super::response::{
    RawResponse, call_identity, completion_id, decode_finish, tool_call_json, usage_json,
};
use crate::error::{ErrorKind, GatewayError};
use crate::neutral::{DecodeError, FinishReason, StreamEvent, ToolCall, Usage};
use crate::sse;

/// Neutral stream events → Chat Completions chunks (`data: {...}` frames, then `[DONE]`).
#[derive(Debug)]
pub struct ChunkEncoder {
    id: String,
    created: u64,
    model: String,
    client_wants_usage: bool,
    role_sent: bool,
    finished: bool,
    done: bool,
    usage: Option<Usage>,
}

impl ChunkEncoder {
    /// An encoder for one answer. `client_wants_usage` is the client's
    /// `stream_options.include_usage`: the usage chunk is sent only then.
    pub fn new(created: u64, client_model: &str, client_wants_usage: bool) -> Self {
        Self {
            id: completion_id(""),
            created,
            model: client_model.to_owned(),
            client_wants_usage,
            role_sent: false,
            finished: false,
            done: false,
            usage: None,
        }
    }

    /// Usage seen so far.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Whether a finish reason has been sent.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn chunk(&self, out: &mut BytesMut, delta: Value, finish: Option<&str>) {
        let body = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        sse::encode_event(out, None, &serde_json::to_vec(&body).unwrap_or_default());
    }

    fn ensure_role(&mut self, out: &mut BytesMut) {
        if !self.role_sent {
            self.role_sent = true;
            self.chunk(out, json!({"role": "assistant", "content": ""}), None);
        }
    }

    /// Appends the chunks for one event.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut BytesMut) {
        if self.done {
            return;
        }
        match event {
            StreamEvent::Start { id, .. } => {
                if !id.is_empty() {
                    self.id = completion_id(id);
                }
                self.ensure_role(out);
            }
            StreamEvent::TextDelta { text } if !text.is_empty() => {
                self.ensure_role(out);
                self.chunk(out, json!({"content": text}), None);
            }
            StreamEvent::ReasoningDelta { text, .. } if !text.is_empty() => {
                self.ensure_role(out);
                self.chunk(out, json!({"reasoning_content": text}), None);
            }
            StreamEvent::ToolCallStart {
                index,
                id,
                name,
                signature,
            } => {
                self.ensure_role(out);
                let call = ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                    signature: signature.clone(),
                };
                self.chunk(
                    out,
                    json!({"tool_calls": [tool_call_json(&call, Some(*index))]}),
                    None,
                );
            }
            StreamEvent::ToolCallDelta { index, arguments } if !arguments.is_empty() => {
                self.chunk(
                    out,
                    json!({"tool_calls": [{"index": index, "function": {"arguments": arguments}}]}),
                    None,
                );
            }
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
            StreamEvent::Finish { reason } if !self.finished => {
                self.ensure_role(out);
                self.finished = true;
                self.chunk(out, json!({}), Some(reason.openai()));
            }
            StreamEvent::Error { kind, message } => {
                let error = GatewayError::new(*kind, message.clone());
                sse::encode_event(out, None, &error.to_openai_json());
                out.extend_from_slice(sse::DONE_FRAME);
                self.done = true;
            }
            _ => {}
        }
    }

    /// Ends the stream: the usage chunk (when asked for and known), then `[DONE]`.
    pub fn finish(&mut self, out: &mut BytesMut) {
        if self.done {
            return;
        }
        self.done = true;
        if self.client_wants_usage
            && let Some(usage) = &self.usage
        {
            let body = json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created,
                "model": self.model, "choices": [], "usage": usage_json(usage),
            });
            sse::encode_event(out, None, &serde_json::to_vec(&body).unwrap_or_default());
        }
        out.extend_from_slice(sse::DONE_FRAME);
    }

    /// Ends the stream with an error event and `[DONE]` (upstream failed mid-stream).
    pub fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut BytesMut) {
        self.encode(
            &StreamEvent::Error {
                kind,
                message: message.to_owned(),
            },
            out,
        );
    }
}

/// Chat Completions stream chunks → neutral events (for the Responses and Messages ingress APIs
/// served by OpenAI-compatible vendors). Tolerates Gemini-compat quirks: missing or null
/// `index`, empty ids.
#[derive(Debug)]
pub struct ChunkDecoder {
    started: bool,
    id_seed: u64,
    /// Vendor tool index → our index, in order of first appearance.
    tools: HashMap<usize, usize>,
    finish: Option<FinishReason>,
}

impl ChunkDecoder {
    /// A decoder for one stream; `id_seed` seeds ids synthesized for calls without one.
    pub fn new(id_seed: u64) -> Self {
        Self {
            started: false,
            id_seed,
            tools: HashMap::new(),
            finish: None,
        }
    }

    /// Decodes one SSE event. `[DONE]` yields the pending finish.
    pub fn decode(&mut self, event: &sse::Event) -> Result<Vec<StreamEvent>, DecodeError> {
        let mut out = Vec::new();
        if event.is_done_marker() {
            return Ok(out);
        }
        let value: Value = serde_json::from_slice(&event.data)?;
        if let Some(error) = value.get("error") {
            out.push(StreamEvent::Error {
                kind: ErrorKind::UpstreamProtocol,
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("upstream stream error")
                    .to_owned(),
            });
            return Ok(out);
        }
        let raw: RawResponse = serde_json::from_value(value)?;
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: raw.id.clone(),
                model: raw.model.clone(),
            });
        }
        for choice in raw.choices.into_iter().take(1) {
            let delta = choice.delta.unwrap_or_default();
            if let Some(text) = delta.reasoning_content.filter(|t| !t.is_empty()) {
                out.push(StreamEvent::ReasoningDelta {
                    text,
                    signature: None,
                    origin: None,
                });
            }
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                out.push(StreamEvent::TextDelta { text });
            }
            for (position, call) in delta.tool_calls.unwrap_or_default().into_iter().enumerate() {
                let vendor_index = call.index.unwrap_or(position);
                let starts = call
                    .function
                    .as_ref()
                    .and_then(|f| f.name.as_ref())
                    .is_some_and(|n| !n.is_empty());
                let index = match self.tools.get(&vendor_index) {
                    Some(&index) if !starts || call.index.is_some() => index,
                    _ => {
                        let index = self.tools.len();
                        self.tools.insert(vendor_index, index);
                        let (id, signature) = call_identity(&call, self.id_seed, index);
                        let name = call
                            .function
                            .as_ref()
                            .and_then(|f| f.name.clone())
                            .unwrap_or_default();
                        out.push(StreamEvent::ToolCallStart {
                            index,
                            id,
                            name,
                            signature,
                        });
                        index
                    }
                };
                if let Some(arguments) = call
                    .function
                    .and_then(|f| f.arguments)
                    .filter(|a| !a.is_empty())
                {
                    out.push(StreamEvent::ToolCallDelta { index, arguments });
                }
            }
            if let Some(reason) = choice.finish_reason {
                let reason = decode_finish(Some(&reason), !self.tools.is_empty());
                self.finish = Some(reason.clone());
                out.push(StreamEvent::Finish { reason });
            }
        }
        if let Some(usage) = raw.usage {
            out.push(StreamEvent::Usage(usage.into()));
        }
        Ok(out)
    }
}

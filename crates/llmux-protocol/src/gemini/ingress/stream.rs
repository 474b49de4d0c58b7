//! Streams: neutral events → `streamGenerateContent` chunks, framed as SSE or as a JSON array.

use bytes::BytesMut;

use super::response::{
    CandidateOut, ContentOut, PartOut, ResponseOut, call_part, finish_reason, text_part,
    thought_part, usage_out,
};
use super::{encode_error, status_of};
use crate::error::ErrorKind;
use crate::neutral::{FinishReason, Reasoning, StreamEvent, ToolCall, Usage};

/// How `streamGenerateContent` chunks are put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// `?alt=sse`: each chunk is `data: {…}\r\n\r\n`, as Google frames it.
    Sse,
    /// Without `alt=sse`: one JSON array, written as it grows (`[{…}`, `\n,\r\n{…}`, …, `]`).
    JsonArray,
}

/// Frames whole chunk objects; the same-protocol path uses it too, to re-frame the chunks of a
/// Gemini SSE stream as a JSON array.
#[derive(Debug)]
pub struct ChunkFramer {
    framing: Framing,
    started: bool,
    ended: bool,
}

impl ChunkFramer {
    /// A framer for one stream.
    pub fn new(framing: Framing) -> Self {
        Self {
            framing,
            started: false,
            ended: false,
        }
    }

    /// The framing.
    pub fn framing(&self) -> Framing {
        self.framing
    }

    /// Whether a chunk has been written.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Appends one chunk (a whole JSON object). Ignored after [`end`](Self::end).
    pub fn push(&mut self, chunk: &[u8], out: &mut BytesMut) {
        if self.ended {
            return;
        }
        match self.framing {
            Framing::Sse => {
                out.reserve(chunk.len() + 10);
                // A payload with line breaks (a pretty-printed vendor chunk) takes one `data:`
                // line per line.
                for line in chunk.split(|&b| b == b'\n') {
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"\r\n");
            }
            Framing::JsonArray => {
                out.reserve(chunk.len() + 4);
                out.extend_from_slice(if self.started { b"\n,\r\n" } else { b"[" });
                out.extend_from_slice(chunk);
            }
        }
        self.started = true;
    }

    /// Ends the stream: closes the JSON array (`[]` when nothing was written). Once only.
    pub fn end(&mut self, out: &mut BytesMut) {
        if self.ended {
            return;
        }
        self.ended = true;
        if self.framing == Framing::JsonArray {
            out.extend_from_slice(if self.started { b"]" } else { b"[]" });
        }
    }
}

/// A tool call whose arguments are still arriving.
#[derive(Debug)]
struct Pending {
    index: usize,
    call: ToolCall,
}

/// Neutral stream events → Gemini stream chunks, each a whole `GenerateContentResponse` with
/// only the new parts, `modelVersion` = the client's model and the response id.
///
/// - Text and thought deltas are written as they come, one chunk each.
/// - A tool call is written once, whole, when its arguments are complete (at the next text,
///   thought, finish or end of stream): Gemini never streams partial `args`. Each call is its own
///   chunk, as on Gemini; the answer's first call carries the signed reasoning before it (see the
///   module docs).
/// - The finish reason and usage wait for [`finish`](Self::finish) (some vendors report usage
///   after the finish reason), which writes the last chunk: `{"text":""}`, `finishReason`,
///   `usageMetadata`, as Gemini's own last chunk.
/// - An error ([`StreamEvent::Error`] or [`fail`](Self::fail)) ends the stream with Google's
///   error envelope as the last chunk; calls still incomplete are dropped.
#[derive(Debug)]
pub struct StreamEncoder {
    framer: ChunkFramer,
    model: String,
    response_id: String,
    pending: Vec<Pending>,
    /// Signed reasoning seen before the first call, to carry on it.
    carried: Vec<Reasoning>,
    /// Text of the reasoning run not yet signed.
    thinking: String,
    call_written: bool,
    usage: Option<Usage>,
    finish: Option<FinishReason>,
    done: bool,
}

impl StreamEncoder {
    /// An encoder for one answer: `client_model` goes in every chunk's `modelVersion`,
    /// `response_id` in `responseId` (the vendor's id from [`StreamEvent::Start`] when empty).
    pub fn new(
        framing: Framing,
        client_model: impl Into<String>,
        response_id: impl Into<String>,
    ) -> Self {
        Self {
            framer: ChunkFramer::new(framing),
            model: client_model.into(),
            response_id: response_id.into(),
            pending: Vec::new(),
            carried: Vec::new(),
            thinking: String::new(),
            call_written: false,
            usage: None,
            finish: None,
            done: false,
        }
    }

    /// The last usage the vendor reported.
    pub fn usage(&self) -> Option<Usage> {
        self.usage
    }

    /// Whether the stream has ended (finished or failed).
    pub fn is_done(&self) -> bool {
        self.done
    }

    /// Appends the chunks one neutral event makes (often none: calls and the finish wait).
    pub fn encode(&mut self, event: &StreamEvent, out: &mut BytesMut) {
        if self.done {
            return;
        }
        match event {
            StreamEvent::Usage(usage) => self.usage = Some(*usage),
            StreamEvent::Error { kind, message } => self.fail(*kind, message, out),
            // Content after the finish reason is not part of the answer.
            _ if self.finish.is_some() => {}
            StreamEvent::Start { id, .. } => {
                if self.response_id.is_empty() {
                    self.response_id.clone_from(id);
                }
            }
            StreamEvent::TextDelta { text } => {
                if text.is_empty() {
                    return;
                }
                self.flush_calls(out);
                self.chunk(vec![text_part(text)], out);
            }
            StreamEvent::ReasoningDelta {
                text,
                signature,
                origin,
            } => {
                let signature = signature.as_deref().filter(|s| !s.is_empty());
                if text.is_empty() && signature.is_none() {
                    return;
                }
                self.flush_calls(out);
                if !self.call_written {
                    self.thinking.push_str(text);
                    if let Some(signature) = signature {
                        self.carried.push(Reasoning {
                            text: std::mem::take(&mut self.thinking),
                            signature: Some(signature.to_owned()),
                            redacted: None,
                            origin: *origin,
                        });
                    }
                }
                self.chunk(vec![thought_part(text, signature, None, *origin)], out);
            }
            StreamEvent::ToolCallStart {
                index,
                id,
                name,
                signature,
            } => {
                self.pending.push(Pending {
                    index: *index,
                    call: ToolCall {
                        id: id.clone(),
                        name: name.clone(),
                        arguments: String::new(),
                        signature: signature.clone(),
                    },
                });
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                if let Some(pending) = self.pending.iter_mut().find(|p| p.index == *index) {
                    pending.call.arguments.push_str(arguments);
                }
            }
            StreamEvent::Finish { reason } => {
                self.flush_calls(out);
                self.finish = Some(reason.clone());
            }
        }
    }

    /// Ends the stream normally: the calls still pending, then the last chunk with the finish
    /// reason (`STOP` when none came) and the usage. Does nothing once the stream has ended.
    pub fn finish(&mut self, out: &mut BytesMut) {
        if self.done {
            return;
        }
        self.flush_calls(out);
        self.done = true;
        let reason = self.finish.take().unwrap_or_default();
        let usage = self.usage.as_ref().map(usage_out);
        let chunk = ResponseOut {
            candidates: [CandidateOut {
                content: Some(ContentOut {
                    parts: vec![text_part("")],
                    role: "model",
                }),
                finish_reason: Some(finish_reason(&reason)),
                index: 0,
            }],
            usage_metadata: usage,
            model_version: &self.model,
            response_id: &self.response_id,
        };
        let bytes = serde_json::to_vec(&chunk).unwrap_or_default();
        self.framer.push(&bytes, out);
        self.framer.end(out);
    }

    /// Ends the stream with Google's error envelope as the last chunk (the same as encoding
    /// [`StreamEvent::Error`]). Does nothing once the stream has ended.
    pub fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut BytesMut) {
        if self.done {
            return;
        }
        self.done = true;
        self.pending.clear();
        self.framer
            .push(&encode_error(status_of(kind), message), out);
        self.framer.end(out);
    }

    /// Writes every pending call, one chunk each.
    fn flush_calls(&mut self, out: &mut BytesMut) {
        if self.pending.is_empty() {
            return;
        }
        for pending in std::mem::take(&mut self.pending) {
            let carried: Vec<&Reasoning> = if self.call_written {
                Vec::new()
            } else {
                self.carried.iter().collect()
            };
            let part = call_part(&pending.call, &carried);
            write_chunk(
                &mut self.framer,
                &self.model,
                &self.response_id,
                vec![part],
                out,
            );
            self.call_written = true;
        }
        self.carried.clear();
        self.thinking.clear();
    }

    fn chunk(&mut self, parts: Vec<PartOut<'_>>, out: &mut BytesMut) {
        write_chunk(&mut self.framer, &self.model, &self.response_id, parts, out);
    }
}

/// Writes one chunk holding `parts`.
fn write_chunk(
    framer: &mut ChunkFramer,
    model: &str,
    response_id: &str,
    parts: Vec<PartOut<'_>>,
    out: &mut BytesMut,
) {
    let chunk = ResponseOut {
        candidates: [CandidateOut {
            content: Some(ContentOut {
                parts,
                role: "model",
            }),
            finish_reason: None,
            index: 0,
        }],
        usage_metadata: None,
        model_version: model,
        response_id,
    };
    let bytes = serde_json::to_vec(&chunk).unwrap_or_default();
    framer.push(&bytes, out);
}

//! Open Responses (`POST /v1/responses`, REFERENCE.md §C) ⇄ the [`neutral`]
//! model, on the ingress side: a client speaks Open Responses to llmux, whatever vendor answers.
//!
//! - Requests: [`decode_request`] reads a `CreateResponseBody` into a neutral request plus what
//!   the gateway needs around it ([`Decoded`]): the model, a pinned vendor, the
//!   `previous_response_id` to load, whether to store the answer, and the request fields the
//!   response resource echoes ([`Echo`]).
//! - Responses: [`encode_response`] builds a complete `ResponseResource`, [`encode_failed`] one
//!   for a failure before any output, and [`output_messages`] turns an answer into the assistant
//!   turn the conversation store keeps.
//! - Streams: [`StreamEncoder`] turns neutral stream events into the spec's SSE event sequence
//!   (§C7), `data: [DONE]` included.
//!
//! Tools: function tools are offered as they are; the functions inside a `namespace` tool are
//! offered flat ([`NamespacedTool`]) and their calls mapped back; every other tool type
//! (`web_search`, `file_search`, `code_interpreter`, `custom`…) runs at OpenAI or needs its
//! own item types, so it is removed from the offer and its type listed in
//! [`neutral::Request::dropped_tools`].
//!
//! Conventions, shared with the other codecs:
//! - Gemini thought signatures on tool calls ride on the `function_call` item's `call_id` as
//!   `<id>__ts__<signature>` ([`SIGNATURE_SEPARATOR`](crate::openai_chat::SIGNATURE_SEPARATOR)),
//!   because every client sends call ids back.
//! - A reasoning item's `encrypted_content` carries what the vendor needs back: redacted
//!   reasoning as is, or the signature over readable reasoning behind
//!   [`REASONING_SIGNATURE_PREFIX`]. Clients treat the field as opaque and return it unchanged.
//! - The answer's parts map to output items in order: a run of text parts is one `message`
//!   item, each reasoning part one `reasoning` item, each tool call one `function_call` item.
//!   Item ids are derived from the response id and the item's position, so the streamed and
//!   the final resource agree.
//!
//! Everything here is pure: no I/O, no clock, no randomness.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::neutral;

mod decode;
mod encode;
pub mod passthrough;
mod stream;

pub use decode::decode_request;
pub use encode::{encode_failed, encode_response, output_messages};
pub use stream::StreamEncoder;

/// Marks a reasoning item's `encrypted_content` that holds a signature over the readable
/// reasoning (Anthropic `thinking.signature`, Gemini `thoughtSignature`) rather than redacted
/// reasoning. No vendor's redacted data starts with it (they are base64).
pub const REASONING_SIGNATURE_PREFIX: &str = "llmux:sig:";

/// What the gateway needs from a `POST /v1/responses` body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decoded {
    /// The neutral request: `instructions` then system/developer messages in `system`, the input
    /// items as messages, function tools, tool choice, sampling (`max_output_tokens` becomes
    /// `max_tokens`), `text.format` as the response format, reasoning effort, `stream`, `user`.
    /// Its `model` is the body's `model` (empty when absent); the gateway replaces it with the
    /// upstream name.
    pub request: neutral::Request,
    /// The requested model; `None` when absent, null or empty.
    pub model: Option<String>,
    /// The body's `provider` field, which pins a vendor; `None` when absent or empty.
    pub provider: Option<String>,
    /// The response whose input and output come before this request's input.
    pub previous_response_id: Option<String>,
    /// Whether the answer may be stored for a later `previous_response_id` (default true).
    pub store: bool,
    /// Request fields echoed in the response resource.
    pub echo: Echo,
}

/// The request fields a `ResponseResource` echoes, normalized to the resource's shapes
/// (§C4). `None` fields render as the spec's defaults, so `Echo::default()` is a valid echo
/// for a request that could not be read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Echo {
    /// `instructions`.
    pub instructions: Option<String>,
    /// Function tools as `{type, name, description, parameters, strict}` (nulls where absent).
    pub tools: Vec<Value>,
    /// `tool_choice`; `None` renders as `"auto"`.
    pub tool_choice: Option<Value>,
    /// `temperature`; `None` renders as 1.
    pub temperature: Option<f64>,
    /// `top_p`; `None` renders as 1.
    pub top_p: Option<f64>,
    /// `presence_penalty`; `None` renders as 0.
    pub presence_penalty: Option<f64>,
    /// `frequency_penalty`; `None` renders as 0.
    pub frequency_penalty: Option<f64>,
    /// `top_logprobs`; `None` renders as 0.
    pub top_logprobs: Option<u32>,
    /// `max_output_tokens`.
    pub max_output_tokens: Option<u32>,
    /// `max_tool_calls`.
    pub max_tool_calls: Option<u32>,
    /// `metadata` (an empty object when absent).
    pub metadata: Map<String, Value>,
    /// `text` as `{format, verbosity?}`; `None` renders as `{"format":{"type":"text"}}`.
    pub text: Option<Value>,
    /// `reasoning` as `{effort, summary}`; `None` renders as null.
    pub reasoning: Option<Value>,
    /// `parallel_tool_calls`; `None` renders as true.
    pub parallel_tool_calls: Option<bool>,
    /// `truncation` (`auto` or `disabled`); `None` renders as `"disabled"`.
    pub truncation: Option<String>,
    /// `previous_response_id`.
    pub previous_response_id: Option<String>,
    /// `store`; `None` renders as true.
    pub store: Option<bool>,
    /// `user`.
    pub user: Option<String>,
    /// `safety_identifier`.
    pub safety_identifier: Option<String>,
    /// `prompt_cache_key`.
    pub prompt_cache_key: Option<String>,
    /// The function tools offered inside `namespace` tools, under the flat names vendors saw;
    /// the encoders give their calls back the client's `name` and `namespace`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaced: Vec<NamespacedTool>,
}

impl Echo {
    /// The client's `(namespace, name)` for a flat tool name vendors saw, when it came from a
    /// `namespace` tool.
    pub fn namespaced(&self, flat: &str) -> Option<&NamespacedTool> {
        self.namespaced.iter().find(|tool| tool.flat == flat)
    }
}

/// A function tool the client offered inside a `namespace` tool
/// (`{"type":"namespace","name":"multi_agent_v1","tools":[{"type":"function","name":"spawn_agent",…}]}`).
///
/// Vendors behind the neutral model have no namespaces, so it is offered as the flat function
/// `<namespace>__<name>` (the flattening Codex itself uses). A flat name that another offered
/// tool already has gets `_2`, `_3`… appended, and one longer than 64 characters (the vendors'
/// limit) is cut to 55 and ends with `_` and 8 hex digits of its hash; the table here, not the
/// name, is what maps a call back, so any collision-free name works. A call comes back to the
/// client as `{"type":"function_call","name":"spawn_agent","namespace":"multi_agent_v1",…}`,
/// the shape OpenAI's Responses API uses for calls of namespaced tools, and a `function_call`
/// input item with a `namespace` is read back to the flat name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespacedTool {
    /// The name vendors see.
    pub flat: String,
    /// The client's namespace (`multi_agent_v1`).
    pub namespace: String,
    /// The client's tool name inside it (`spawn_agent`).
    pub name: String,
}

/// Identity and timing of one response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// The response id, `resp_…`.
    pub id: String,
    /// When the response was created, in Unix seconds.
    pub created_at: u64,
    /// When it finished, in Unix seconds; a finished resource without it uses `created_at`.
    pub completed_at: Option<u64>,
    /// The model name the client asked for (never the upstream's name).
    pub model: String,
}

#[cfg(test)]
mod tests;

//! Gemini native API (`generateContent`, `streamGenerateContent?alt=sse`) ⇄ the neutral model
//! (REFERENCE.md §D3, §D4).
//!
//! - [`encode_request`]: neutral → request body. `model` and `stream` are not in the body: the
//!   URL carries them.
//! - [`decode_request`]: request body → neutral (round-trip tests, the mock).
//! - [`decode_response`] and [`StreamDecoder`]: answers → neutral.
//! - [`decode_error`]: a google.rpc.Status error → what the client sees.
//! - [`ingress`]: the other direction, for Gemini *clients* (google-genai SDKs, Gemini CLI):
//!   their requests → neutral, neutral answers and streams → Gemini's wire format.
//! - [`clean_schema`]: JSON Schema → the subset Gemini's `parameters` / `responseSchema` accept,
//!   within a [`SchemaBudget`]; a recursive `$ref`, too deep or too large a schema is a
//!   [`SchemaError`] (the encoder's error names the path, e.g.
//!   `tools[0].parameters.properties.a: $ref "#" is a cycle`).
//!
//! Gemini-specific rules every function here keeps:
//! - A call's `thoughtSignature` is a *sibling* of `functionCall` on the same part; it arrives in
//!   [`ToolCall::signature`](crate::neutral::ToolCall::signature) and must go back on the same
//!   call, or Gemini 3 answers 400.
//! - gemini-2.x issues no call ids: the decoders synthesize `call_<24 hex>` ones, and the encoder
//!   never sends an id starting with `call_` back (Gemini matches such calls and responses by
//!   order and name).
//! - A tool-call turn finishes with `STOP`: the decoders infer `tool_calls` from the parts.

/// The API root of Google's public Gemini API (native `generateContent`).
pub const PUBLIC_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";

/// The API root of Gemini's OpenAI-compatible endpoint.
pub const OPENAI_COMPATIBLE_BASE_URL: &str =
    "https://generativelanguage.googleapis.com/v1beta/openai";

pub mod ingress;
mod request;
mod response;
mod schema;
mod status;
mod wire;

pub use request::{decode_request, encode_request};
pub use response::{StreamDecoder, decode_response};
pub use schema::{
    DEFAULT_SCHEMA_BYTES, DEFAULT_SCHEMA_NODES, MAX_SCHEMA_DEPTH, SchemaBudget, SchemaError,
    SchemaProblem, clean_schema, clean_schema_within,
};
pub use status::decode_error;

#[cfg(test)]
mod tests;

//! Pure wire formats for llmux: no I/O, no configuration.
//!
//! - [`sse`]: incremental Server-Sent Events decoder and encoder.
//! - [`json_scan`]: top-level JSON member scanner used to rewrite `model` without a tree.
//! - [`openai_chat`]: Chat Completions request inspection and same-protocol rewrites.
//! - [`embeddings`]: Embeddings request inspection and rewrite.
//! - [`error`]: what failed ([`error::ErrorKind`]) and the OpenAI error envelope.
//! - [`usage`]: token usage as reported by vendors.
//! - [`utf8`]: vendor bytes → valid UTF-8 (invalid sequences become U+FFFD).
//! - [`neutral`]: the cross-protocol model (request, response, stream events).
//!
//! Invariant: this crate depends on no other llmux crate and on no async runtime or HTTP crate.

#![warn(missing_docs)]

pub mod anthropic;
pub mod embeddings;
pub mod error;
pub mod gemini;
pub mod json_scan;
pub mod neutral;
pub mod openai_chat;
pub mod responses;
mod shared;
pub mod sse;
pub mod usage;
pub mod utf8;

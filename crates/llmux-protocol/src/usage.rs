//! Token usage as vendors report it, normalized to one shape.

use serde::Deserialize;

/// Token counts for one request. Fields a vendor did not report stay `None`: the gateway never
/// invents usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    /// Prompt (input) tokens.
    #[serde(default, alias = "input_tokens")]
    pub prompt_tokens: Option<u64>,
    /// Completion (output) tokens.
    #[serde(default, alias = "output_tokens")]
    pub completion_tokens: Option<u64>,
    /// Total tokens, as reported.
    #[serde(default)]
    pub total_tokens: Option<u64>,
}

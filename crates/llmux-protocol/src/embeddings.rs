//! OpenAI Embeddings requests: what routing needs, and the upstream body.

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::json_scan::{self, Edit};
use crate::openai_chat::{InvalidRequest, describe_error, json_string, require_object};

/// What routing needs from an embeddings request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddingsRequest<'a> {
    /// The requested model; `None` when absent or empty.
    pub model: Option<Cow<'a, str>>,
    /// The body's `provider` field.
    pub provider: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(borrow, default)]
    model: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    provider: Option<Cow<'a, str>>,
    #[serde(default)]
    input: Option<IgnoredAny>,
}

/// Reads and validates an embeddings request (`input` is required; everything else passes).
pub fn decode_request(body: &[u8]) -> Result<EmbeddingsRequest<'_>, InvalidRequest> {
    require_object(body)?;
    let envelope: Envelope<'_> =
        serde_json::from_slice(body).map_err(|_| describe_error::<Envelope<'_>>(body))?;
    if envelope.input.is_none() {
        return Err(InvalidRequest {
            message: "missing required field 'input'".into(),
            param: Some("input".into()),
        });
    }
    Ok(EmbeddingsRequest {
        model: envelope.model.filter(|m| !m.is_empty()),
        provider: envelope.provider.filter(|p| !p.is_empty()),
    })
}

/// The upstream body: `model` replaced, `provider` removed, everything else as received.
pub fn encode_upstream_request(
    body: &[u8],
    upstream_model: &str,
) -> Result<Vec<u8>, json_scan::ScanError> {
    let members = json_scan::members(body)?;
    let model = json_string(upstream_model);
    Ok(json_scan::edit(
        body,
        &members,
        &[Edit::Set("model", &model), Edit::Remove("provider")],
    ))
}

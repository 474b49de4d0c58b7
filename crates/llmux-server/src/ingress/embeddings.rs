//! `POST /v1/embeddings` to OpenAI-compatible upstreams, through the pipeline; float and
//! base64 encodings pass through untouched because only `model` is rewritten.

use std::time::Instant;

use bytes::Bytes;
use llmux_config::Api;
use llmux_protocol::embeddings;
use llmux_protocol::error::ErrorKind;
use llmux_protocol::openai_chat::json_string;
use llmux_router::{Endpoint, Needs, Target};

use crate::api_error::ApiError;
use crate::egress::answer as proxy;
use crate::pipeline::attempts::Failure;
use crate::pipeline::{Answer, Call, Crossing, Facts, Ingress, Profile, Received};

/// The embeddings ingress: OpenAI-compatible vendors only.
pub struct Embeddings;

/// A decoded embeddings request.
pub struct EmbeddingsCall {
    bytes: Bytes,
    model: Option<String>,
    provider: Option<String>,
}

impl Ingress for Embeddings {
    const PROFILE: Profile = Profile::new("embeddings", Api::OpenAi, Endpoint::Embeddings);
    type Request = EmbeddingsCall;

    async fn decode(received: Received<'_>) -> Result<EmbeddingsCall, ApiError> {
        let bytes = received.bytes;
        let request = embeddings::decode_request(&bytes)?;
        let model = request.model.map(std::borrow::Cow::into_owned);
        let provider = request.provider.map(std::borrow::Cow::into_owned);
        Ok(EmbeddingsCall {
            bytes,
            model,
            provider,
        })
    }

    fn facts(call: &EmbeddingsCall) -> Facts<'_> {
        Facts::new(
            call.model.as_deref(),
            Needs::default(),
            call.bytes.len() as u64 / 4,
        )
        .with_provider(call.provider.as_deref())
    }

    async fn passthrough<'a>(
        request: &'a EmbeddingsCall,
        call: &'a Call<'a>,
        target: Target<'a>,
    ) -> Result<Answer, Failure> {
        let upstream_body =
            embeddings::encode_upstream_request(&request.bytes, target.upstream_model)
                .map_err(|_| ApiError::not_an_object())?;
        let client_model = json_string(request.model.as_deref().unwrap_or(target.public_name));
        let started = Instant::now();
        let response =
            crate::egress::send::embeddings(call.snapshot, &target, &upstream_body, call.trace)
                .await?;
        let body = proxy::read_json(call, &target, response, &client_model, started).await?;
        Ok(Answer::Json(body))
    }
}

/// No vendor of another API serves OpenAI embeddings.
impl Crossing for Embeddings {
    async fn translated<'a>(
        _request: &'a EmbeddingsCall,
        _call: &'a Call<'a>,
        target: Target<'a>,
    ) -> Result<Answer, Failure> {
        Err(Failure::from(ApiError::new(
            ErrorKind::InvalidRequest,
            format!(
                "embeddings need an OpenAI-compatible vendor; credential '{}' speaks the {} API",
                target.credential.name, target.credential.api
            ),
        )))
    }
}

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
use crate::edge::envelope::Envelope;
use crate::egress::answer as proxy;
use crate::pipeline::attempts::Failure;
use crate::pipeline::{Answer, Call, Facts, Ingress};
use crate::state::Gateway;

/// The embeddings ingress: OpenAI-compatible vendors only.
pub struct Embeddings;

/// A decoded embeddings request.
pub struct EmbeddingsCall {
    bytes: Bytes,
    model: Option<String>,
    provider: Option<String>,
}

impl Ingress for Embeddings {
    const ROUTE: &'static str = "embeddings";
    const ENVELOPE: Envelope = Envelope::OpenAi;
    const ENDPOINT: Endpoint = Endpoint::Embeddings;
    const PASSTHROUGH: Option<Api> = Some(Api::OpenAi);
    type Request = EmbeddingsCall;

    async fn decode(
        _gateway: &Gateway,
        _head: &http::request::Parts,
        bytes: Bytes,
    ) -> Result<EmbeddingsCall, ApiError> {
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
        Facts {
            model: call.model.as_deref(),
            provider: call.provider.as_deref(),
            needs: Needs::default(),
            reserve_tokens: call.bytes.len() as u64 / 4,
            dropped_tools: &[],
        }
    }

    async fn passthrough<'a>(
        request: &'a EmbeddingsCall,
        call: &'a Call<'a>,
        target: Target<'a>,
    ) -> Result<Answer, Failure> {
        let (gateway, snapshot) = (call.gateway, call.snapshot);
        let upstream_body =
            embeddings::encode_upstream_request(&request.bytes, target.upstream_model).map_err(
                |_| {
                    ApiError::new(
                        ErrorKind::InvalidRequest,
                        "request body must be a JSON object",
                    )
                },
            )?;
        let client_model = json_string(request.model.as_deref().unwrap_or(target.public_name));
        let endpoint = snapshot
            .endpoints
            .get(target.credential_index)
            .ok_or_else(|| ApiError::new(ErrorKind::Internal, "credential endpoint missing"))?;
        let started = Instant::now();
        let response = crate::egress::send::send(
            snapshot,
            &target,
            &endpoint.embeddings_url,
            upstream_body,
            false,
            call.trace,
        )
        .await?;
        let body = proxy::read_json(
            gateway,
            snapshot,
            &target,
            response,
            &client_model,
            started,
            call.settle,
        )
        .await?;
        Ok(Answer::Json(body))
    }

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

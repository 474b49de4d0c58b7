//! `POST /v1/embeddings` to OpenAI-compatible upstreams, inside the attempt loop; float and
//! base64 encodings pass through untouched because only `model` is rewritten.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use llmux_config::Api;
use llmux_protocol::embeddings;
use llmux_protocol::error::ErrorKind;
use llmux_protocol::openai_chat::json_string;
use llmux_router::{Endpoint, Needs};

use super::proxy::{self, VendorParam};
use crate::api_error::ApiError;
use crate::attempts::{self, Failure};
use crate::body;
use crate::governance::{self, Caller};
use crate::state::Gateway;

pub async fn handle(
    State(gateway): State<Arc<Gateway>>,
    axum::Extension(caller): axum::Extension<Caller>,
    Query(params): Query<VendorParam>,
    body: Body,
) -> Response {
    match serve(gateway, caller, params, body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn serve(
    gateway: Arc<Gateway>,
    caller: Caller,
    params: VendorParam,
    body: Body,
) -> Result<Response, ApiError> {
    let snapshot = gateway.snapshot.load_full();
    let bytes = body::read(
        body,
        snapshot.config.limits.max_body_bytes,
        proxy::body_deadline(&snapshot),
    )
    .await?;
    let request = embeddings::decode_request(&bytes)?;
    let vendor = params
        .vendor
        .as_deref()
        .filter(|v| !v.is_empty())
        .or(request.provider.as_deref());
    let query = llmux_router::Query {
        endpoint: Endpoint::Embeddings,
        model: request.model.as_deref(),
        vendor,
        needs: Needs::default(),
    };
    let candidates = snapshot.table.candidates(&query)?;
    let settle = governance::admit(
        &gateway,
        &caller,
        request.model.as_deref(),
        vendor,
        bytes.len() as u64 / 4,
        &snapshot.config.pricing,
    )
    .await?;
    let allowed = governance::allowed_vendors(&caller).to_vec();
    let admitted = attempts::Admitted {
        allowed_vendors: &allowed,
        reserve_tokens: bytes.len() as u64 / 4,
        settle: &settle,
    };
    let result = attempts::run(&gateway, &snapshot, candidates, &admitted, |target| {
        let settle = settle.clone();
        let gateway = gateway.clone();
        let snapshot = &snapshot;
        let bytes = &bytes;
        let request = &request;
        async move {
            if target.credential.api != Api::OpenAi {
                return Err(Failure::from(ApiError::new(
                    ErrorKind::InvalidRequest,
                    format!(
                        "embeddings need an OpenAI-compatible vendor; credential '{}' speaks the {} API",
                        target.credential.name, target.credential.api
                    ),
                )));
            }
            let upstream_body = embeddings::encode_upstream_request(bytes, target.upstream_model)
                .map_err(|_| ApiError::new(ErrorKind::InvalidRequest, "request body must be a JSON object"))?;
            let client_model = json_string(request.model.as_deref().unwrap_or(target.public_name));
            let endpoint = snapshot
                .endpoints
                .get(target.credential_index)
                .ok_or_else(|| ApiError::new(ErrorKind::Internal, "credential endpoint missing"))?;
            let started = Instant::now();
            let response = proxy::send(snapshot, &target, &endpoint.embeddings_url, upstream_body, false).await?;
            Ok(proxy::read_json(&gateway, snapshot, &target, response, &client_model, started, &settle).await?)
        }
    })
    .await;
    Ok(match result {
        Ok(mut committed) => {
            let body = proxy::json_response(std::mem::take(&mut committed.value));
            proxy::finish_timed(body, &snapshot, &committed.target, committed.upstream_time)
        }
        Err(exhausted) => {
            settle.abandon();
            proxy::exhausted(&snapshot, exhausted)
        }
    })
}

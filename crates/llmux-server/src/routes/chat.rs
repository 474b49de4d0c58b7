//! `POST /v1/chat/completions`. To an OpenAI-compatible vendor this is the same-protocol fast
//! path: the body is forwarded as received except `model` (and `provider`, `stream_options`).
//! To Anthropic or Gemini it goes through the neutral model.

use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use llmux_config::Api;
use llmux_protocol::error::ErrorKind;
use llmux_protocol::openai_chat::{self, json_string};
use llmux_router::{Endpoint, Needs, Target};

use super::proxy::{self, VendorParam};
use crate::api_error::ApiError;
use crate::body;
use crate::edge::RequestId;
use crate::relay::{StreamContext, relay};
use crate::state::{Gateway, Snapshot};
use crate::translate::{self, StreamLabels};

pub async fn handle(
    State(gateway): State<Arc<Gateway>>,
    Extension(request_id): Extension<RequestId>,
    Query(params): Query<VendorParam>,
    body: Body,
) -> Response {
    match serve(gateway, request_id, params, body).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn serve(gateway: Arc<Gateway>, request_id: RequestId, params: VendorParam, body: Body) -> Result<Response, ApiError> {
    let snapshot = gateway.snapshot.load_full();
    let limits = &snapshot.config.limits;
    let bytes = body::read(body, limits.max_body_bytes, proxy::body_deadline(&snapshot)).await?;
    let request = openai_chat::decode_request(&bytes)?;
    let vendor = params.vendor.as_deref().filter(|v| !v.is_empty()).or(request.provider.as_deref());
    let query = llmux_router::Query {
        endpoint: Endpoint::Chat,
        model: request.model.as_deref(),
        vendor,
        needs: Needs {
            image: request.needs.image,
            video: request.needs.video,
            tools: request.needs.tools,
            streaming: request.needs.streaming,
        },
    };
    let candidates = snapshot.table.candidates(&query)?;
    let target = proxy::choose(&gateway, &candidates)?;
    if target.credential.api != Api::OpenAi {
        return translated(&gateway, &snapshot, &target, &bytes, &request).await;
    }
    let upstream_body = openai_chat::encode_upstream_request(&bytes, target.upstream_model, &request)
        .map_err(|_| ApiError::new(ErrorKind::InvalidRequest, "request body must be a JSON object"))?;
    let client_model = json_string(request.model.as_deref().unwrap_or(target.public_name));
    let endpoint = snapshot
        .endpoints
        .get(target.credential_index)
        .ok_or_else(|| ApiError::new(ErrorKind::Internal, "credential endpoint missing"))?;
    let started = Instant::now();
    let stream = request.needs.streaming;
    let result = proxy::send(&gateway, &snapshot, &target, &endpoint.chat_url, upstream_body, stream).await;
    let response = match result {
        Err(err) => return Ok(proxy::finish(err.into_response(), &target)),
        Ok(response) => response,
    };
    if !stream {
        let answer = proxy::answer_json(&gateway, &snapshot, &target, response, &client_model, started).await;
        return Ok(proxy::finish(answer.unwrap_or_else(IntoResponse::into_response), &target));
    }
    let context = StreamContext {
        gateway: gateway.clone(),
        vendor: target.credential.vendor.clone(),
        model: target.public_name.to_owned(),
        started,
        request_id: request_id.0.to_str().unwrap_or("-").to_owned(),
    };
    let events = relay(response, client_model, request.client_wants_usage, proxy::idle(&snapshot), context);
    Ok(proxy::finish(sse_response(Body::from_stream(events)), &target))
}

/// An OpenAI client served by a vendor with another protocol (Anthropic, Gemini native):
/// OpenAI → neutral → vendor, and the answer back the same way.
async fn translated(
    gateway: &Arc<Gateway>,
    snapshot: &Snapshot,
    target: &Target<'_>,
    bytes: &[u8],
    request: &openai_chat::ChatRequest<'_>,
) -> Result<Response, ApiError> {
    let mut neutral = openai_chat::decode_neutral_request(bytes)?;
    let client_model = request.model.as_deref().unwrap_or(target.public_name).to_owned();
    let started = Instant::now();
    let response = match translate::send(gateway, snapshot, target, &mut neutral).await {
        Ok(response) => response,
        Err(err) => return Ok(proxy::finish(err.into_response(), target)),
    };
    let created = unix_now();
    if !neutral.stream {
        let answer = match translate::read_response(gateway, snapshot, target, response, started).await {
            Ok(answer) => answer,
            Err(err) => return Ok(proxy::finish(err.into_response(), target)),
        };
        let body = openai_chat::encode_neutral_response(&answer, &client_model, created);
        let mut out = (StatusCode::OK, body).into_response();
        out.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return Ok(proxy::finish(out, target));
    }
    let encoder = openai_chat::ChunkEncoder::new(created, &client_model, request.client_wants_usage);
    let labels = StreamLabels {
        gateway: gateway.clone(),
        vendor: target.credential.vendor.clone(),
        model: target.public_name.to_owned(),
        started,
    };
    let events = translate::relay(response, target.credential.api, encoder, proxy::idle(snapshot), labels);
    Ok(proxy::finish(sse_response(Body::from_stream(events)), target))
}

/// A 200 `text/event-stream` response around `body`.
pub fn sse_response(body: Body) -> Response {
    let mut out = (StatusCode::OK, body).into_response();
    let headers = out.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    out
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

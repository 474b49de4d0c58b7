//! `POST /v1/chat/completions` on the same-protocol path: OpenAI in, OpenAI-compatible out,
//! the body forwarded as received except `model` (and `provider`, `stream_options`).

use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use llmux_protocol::error::ErrorKind;
use llmux_protocol::openai_chat::{self, json_string};
use llmux_router::{Endpoint, Needs};

use super::proxy::{self, VendorParam};
use crate::api_error::ApiError;
use crate::body;
use crate::edge::RequestId;
use crate::relay::{StreamContext, relay};
use crate::state::Gateway;

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

async fn serve(
    gateway: Arc<Gateway>,
    request_id: RequestId,
    params: VendorParam,
    body: Body,
) -> Result<Response, ApiError> {
    let snapshot = gateway.snapshot.load_full();
    let limits = &snapshot.config.limits;
    let bytes = body::read(body, limits.max_body_bytes, proxy::body_deadline(&snapshot)).await?;
    let request = openai_chat::decode_request(&bytes)?;
    let vendor = params
        .vendor
        .as_deref()
        .filter(|v| !v.is_empty())
        .or(request.provider.as_deref());
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
    let upstream_body =
        openai_chat::encode_upstream_request(&bytes, target.upstream_model, &request).map_err(
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
    let stream = request.needs.streaming;
    let result = proxy::send(
        &gateway,
        &snapshot,
        &target,
        &endpoint.chat_url,
        upstream_body,
        stream,
    )
    .await;
    let response = match result {
        Err(err) => return Ok(proxy::finish(err.into_response(), &target)),
        Ok(response) => response,
    };
    if !stream {
        let answer = proxy::answer_json(
            &gateway,
            &snapshot,
            &target,
            response,
            &client_model,
            started,
        )
        .await;
        return Ok(proxy::finish(
            answer.unwrap_or_else(IntoResponse::into_response),
            &target,
        ));
    }
    let context = StreamContext {
        gateway: gateway.clone(),
        vendor: target.credential.vendor.clone(),
        model: target.public_name.to_owned(),
        started,
        request_id: request_id.0.to_str().unwrap_or("-").to_owned(),
    };
    let events = relay(
        response,
        client_model,
        request.client_wants_usage,
        proxy::idle(&snapshot),
        context,
    );
    let mut out = (StatusCode::OK, Body::from_stream(events)).into_response();
    let headers = out.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    Ok(proxy::finish(out, &target))
}

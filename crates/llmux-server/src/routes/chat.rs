//! `POST /v1/chat/completions`. To an OpenAI-compatible vendor this is the same-protocol fast
//! path: the body is forwarded as received except `model` (and `provider`, `stream_options`).
//! To Anthropic or Gemini it goes through the neutral model. Both run inside the attempt loop,
//! after the caller's limits admit the request.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use llmux_config::Api;
use llmux_protocol::error::ErrorKind;
use llmux_protocol::openai_chat::{self, json_string};
use llmux_router::{Endpoint, Needs, Target};

use super::proxy::{self, VendorParam};
use crate::api_error::ApiError;
use crate::attempts::{self, Failure};
use crate::body;
use crate::edge::RequestId;
use crate::governance::{self, Caller, Settle};
use crate::relay::{Relay, StreamContext};
use crate::state::{Gateway, Snapshot};
use crate::translate::{self, NeutralAnswer};

/// Called by the edge with the request's id and caller (see `edge::dispatch`).
pub async fn handle(
    gateway: Arc<Gateway>,
    request_id: RequestId,
    caller: Caller,
    request: Request,
) -> Response {
    let params = match VendorParam::of(request.uri()) {
        Ok(params) => params,
        Err(rejection) => return rejection.into_response(),
    };
    match serve(gateway, request_id, caller, params, request.into_body()).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

/// What one successful attempt produced.
enum Answer {
    Json(Vec<u8>),
    Stream(Body),
}

/// Output tokens reserved when a request sets no `max_tokens`.
pub const DEFAULT_OUTPUT_RESERVATION: u64 = 1024;

async fn serve(
    gateway: Arc<Gateway>,
    request_id: RequestId,
    caller: Caller,
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
    let reserve = bytes.len() as u64 / 4
        + request
            .max_tokens
            .map_or(DEFAULT_OUTPUT_RESERVATION, u64::from);
    let settle = governance::admit(
        &gateway,
        &caller,
        request.model.as_deref(),
        vendor,
        reserve,
        &snapshot.config.pricing,
    )
    .await?;
    // Decoded once, only if some attempt goes to a vendor with another protocol.
    let mut neutral: Option<llmux_protocol::neutral::Request> = None;
    let request_id = request_id.0.to_str().unwrap_or("-").to_owned();
    let allowed = governance::allowed_vendors(&caller).to_vec();
    let admitted = attempts::Admitted {
        allowed_vendors: &allowed,
        reserve_tokens: reserve,
        settle: &settle,
    };
    let result = attempts::run(&gateway, &snapshot, candidates, &admitted, |target| {
        let neutral = if target.credential.api == Api::OpenAi {
            None
        } else {
            Some(match neutral.clone() {
                Some(n) => Ok(n),
                None => openai_chat::decode_neutral_request(&bytes).inspect(|n| {
                    neutral = Some(n.clone());
                }),
            })
        };
        let gateway = gateway.clone();
        let snapshot = &snapshot;
        let request = &request;
        let bytes = &bytes;
        let request_id = request_id.clone();
        let settle = settle.clone();
        async move {
            match neutral {
                None => {
                    same_protocol(
                        &gateway, snapshot, target, bytes, request, request_id, settle,
                    )
                    .await
                }
                Some(decoded) => {
                    let decoded = decoded.map_err(ApiError::from)?;
                    translated(
                        &gateway, snapshot, target, decoded, request, request_id, settle,
                    )
                    .await
                }
            }
        }
    })
    .await;
    let committed = match result {
        Ok(committed) => committed,
        Err(exhausted) => {
            settle.abandon();
            return Ok(proxy::exhausted(&snapshot, exhausted));
        }
    };
    let response = match committed.value {
        Answer::Json(body) => proxy::json_response(body),
        Answer::Stream(body) => sse_response(body),
    };
    Ok(proxy::finish_timed(
        response,
        &snapshot,
        &committed.target,
        committed.upstream_time,
    ))
}

/// OpenAI client, OpenAI-compatible vendor: bytes in, bytes out, `model` swapped.
async fn same_protocol(
    gateway: &Arc<Gateway>,
    snapshot: &Snapshot,
    target: Target<'_>,
    bytes: &[u8],
    request: &openai_chat::ChatRequest<'_>,
    request_id: String,
    settle: Settle,
) -> Result<Answer, Failure> {
    let upstream_body = openai_chat::encode_upstream_request(bytes, target.upstream_model, request)
        .map_err(|_| {
            ApiError::new(
                ErrorKind::InvalidRequest,
                "request body must be a JSON object",
            )
        })?;
    let client_model = json_string(request.model.as_deref().unwrap_or(target.public_name));
    let endpoint = snapshot
        .endpoints
        .get(target.credential_index)
        .ok_or_else(|| ApiError::new(ErrorKind::Internal, "credential endpoint missing"))?;
    let started = Instant::now();
    let stream = request.needs.streaming;
    let response =
        proxy::send(snapshot, &target, &endpoint.chat_url, upstream_body, stream).await?;
    if !stream {
        let body = proxy::read_json(
            gateway,
            snapshot,
            &target,
            response,
            &client_model,
            started,
            &settle,
        )
        .await?;
        return Ok(Answer::Json(body));
    }
    let context = StreamContext {
        gateway: gateway.clone(),
        series: crate::series::of(snapshot, &target),
        route: "chat",
        started,
        request_id,
        health: attempts::TargetHealth::of(snapshot, &target),
        settle,
        upstream_model: target.upstream_model.to_owned(),
    };
    let relay = Relay::new(
        response,
        client_model,
        request.client_wants_usage,
        proxy::idle(snapshot, &target),
        context,
        proxy::needs_tool_call_repair(&target),
    );
    let (first, relay) = relay.prime().await?;
    Ok(Answer::Stream(Body::from_stream(relay.into_stream(first))))
}

/// An OpenAI client served by a vendor with another protocol (Anthropic, Gemini native):
/// OpenAI → neutral → vendor, and the answer back the same way.
async fn translated(
    gateway: &Arc<Gateway>,
    snapshot: &Snapshot,
    target: Target<'_>,
    neutral: llmux_protocol::neutral::Request,
    request: &openai_chat::ChatRequest<'_>,
    request_id: String,
    settle: Settle,
) -> Result<Answer, Failure> {
    let client_model = request
        .model
        .as_deref()
        .unwrap_or(target.public_name)
        .to_owned();
    let created = unix_now();
    let encoder =
        openai_chat::ChunkEncoder::new(created, &client_model, request.client_wants_usage);
    match translate::attempt(
        gateway, snapshot, &target, neutral, encoder, "chat", request_id, settle,
    )
    .await?
    {
        NeutralAnswer::Whole(answer) => Ok(Answer::Json(openai_chat::encode_neutral_response(
            &answer,
            &client_model,
            created,
        ))),
        NeutralAnswer::Stream(first, relay) => Ok(Answer::Stream(Body::from_stream(
            (*relay).into_stream(first),
        ))),
    }
}

/// A 200 `text/event-stream` response around `body`.
pub fn sse_response(body: Body) -> Response {
    let mut out = (StatusCode::OK, body).into_response();
    let headers = out.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    out
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

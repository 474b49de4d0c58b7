//! `POST /v1/responses` (Open Responses), `GET` and `DELETE /v1/responses/{id}`.
//!
//! Every vendor serves it through the neutral model. With `store` (the default) the response and
//! its whole conversation are kept, so `previous_response_id` works on any vendor — the two turns
//! may even land on different vendors.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use llmux_protocol::error::ErrorKind;
use llmux_protocol::neutral::{self, Message};
use llmux_protocol::responses::{self, Echo, Meta};
use llmux_router::Endpoint;
use serde_json::json;

use super::chat::{sse_response, unix_now};
use super::proxy::{self, VendorParam};
use crate::api_error::ApiError;
use crate::attempts;
use crate::body;
use crate::edge::RequestId;
use crate::governance::{self, Caller};
use crate::response_store::Stored;
use crate::state::Gateway;
use crate::translate::{self, ClientEncoder, NeutralAnswer};

/// `POST /v1/responses`, called by the edge with the request's id and caller (see
/// `edge::dispatch`).
pub async fn create(
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

pub async fn get(State(gateway): State<Arc<Gateway>>, Path(id): Path<String>) -> Response {
    match gateway.responses.get(&id).await {
        Some(stored) => Json(stored.resource.clone()).into_response(),
        None => not_found(&id).into_response(),
    }
}

pub async fn delete(State(gateway): State<Arc<Gateway>>, Path(id): Path<String>) -> Response {
    if gateway.responses.delete(&id).await {
        Json(json!({"id": id, "object": "response", "deleted": true})).into_response()
    } else {
        not_found(&id).into_response()
    }
}

fn not_found(id: &str) -> ApiError {
    let mut error = ApiError::new(ErrorKind::NotFound, format!("response '{id}' not found"));
    error.0.code = Some("response_not_found".into());
    error
}

fn new_response_id() -> String {
    format!("resp_{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

async fn serve(
    gateway: Arc<Gateway>,
    request_id: RequestId,
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
    let decoded = responses::decode_request(&bytes)?;
    let mut request = decoded.request;
    if let Some(previous) = &decoded.previous_response_id {
        let stored = gateway.responses.get(previous).await.ok_or_else(|| {
            let mut error = ApiError::new(
                ErrorKind::InvalidRequest,
                format!("previous response '{previous}' not found"),
            );
            error.0.code = Some("previous_response_not_found".into());
            error.0.param = Some("previous_response_id".into());
            error
        })?;
        let mut conversation = stored.conversation.clone();
        conversation.append(&mut request.messages);
        request.messages = conversation;
    }
    let vendor = params
        .vendor
        .as_deref()
        .filter(|v| !v.is_empty())
        .or(decoded.provider.as_deref());
    let query = llmux_router::Query {
        endpoint: Endpoint::Chat,
        model: decoded.model.as_deref(),
        vendor,
        needs: translate::needs(&request),
    };
    let candidates = snapshot.table.candidates(&query)?;
    let id = new_response_id();
    let echo = decoded.echo;
    let store = decoded.store;
    let request_id = request_id.0.to_str().unwrap_or("-").to_owned();
    let created_at = unix_now();
    let reserve = request.estimate_input_tokens()
        + request
            .sampling
            .max_tokens
            .map_or(super::chat::DEFAULT_OUTPUT_RESERVATION, u64::from);
    let settle = governance::admit(
        &gateway,
        &caller,
        decoded.model.as_deref(),
        vendor,
        reserve,
        &snapshot.config.pricing,
    )
    .await?;
    let allowed = governance::allowed_vendors(&caller).to_vec();
    let admitted = attempts::Admitted {
        allowed_vendors: &allowed,
        reserve_tokens: reserve,
        settle: &settle,
    };
    let result = attempts::run(&gateway, &snapshot, candidates, &admitted, |target| {
        let settle = settle.clone();
        let meta = Meta {
            id: id.clone(),
            created_at,
            completed_at: None,
            model: decoded
                .model
                .clone()
                .unwrap_or_else(|| target.public_name.to_owned()),
        };
        let encoder = ResponsesClient {
            encoder: responses::StreamEncoder::new(echo.clone(), meta.clone()),
            echo: echo.clone(),
            meta,
            conversation: store.then(|| request.messages.clone()),
            gateway: gateway.clone(),
        };
        let gateway = gateway.clone();
        let snapshot = &snapshot;
        let request = request.clone();
        let request_id = request_id.clone();
        async move {
            translate::attempt(
                &gateway,
                snapshot,
                &target,
                request,
                encoder,
                "responses",
                request_id,
                settle,
            )
            .await
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
        NeutralAnswer::Whole(answer) => {
            let meta = Meta {
                id: id.clone(),
                created_at,
                completed_at: Some(unix_now()),
                model: decoded
                    .model
                    .clone()
                    .unwrap_or_else(|| committed.target.public_name.to_owned()),
            };
            let resource = responses::encode_response(&answer, &echo, &meta);
            if store {
                let mut conversation = request.messages;
                conversation.extend(responses::output_messages(&answer));
                gateway.responses.put(
                    id,
                    Stored {
                        resource: resource.clone(),
                        conversation,
                    },
                );
            }
            Json(resource).into_response()
        }
        NeutralAnswer::Stream(first, relay) => {
            sse_response(Body::from_stream((*relay).into_stream(first)))
        }
    };
    Ok(proxy::finish_timed(
        response,
        &snapshot,
        &committed.target,
        committed.upstream_time,
    ))
}

/// The Open Responses event stream, storing the finished response when asked to.
struct ResponsesClient {
    encoder: responses::StreamEncoder,
    echo: Echo,
    meta: Meta,
    /// The conversation before this answer, when the response is to be stored.
    conversation: Option<Vec<Message>>,
    gateway: Arc<Gateway>,
}

impl ClientEncoder for ResponsesClient {
    fn encode(&mut self, event: &neutral::StreamEvent, out: &mut BytesMut) {
        self.encoder.encode(event, out);
    }

    fn finish(&mut self, out: &mut BytesMut) {
        let completed_at = unix_now();
        let Some(answer) = self.encoder.finish(out, completed_at) else {
            return;
        };
        if let Some(mut conversation) = self.conversation.take() {
            let mut meta = self.meta.clone();
            meta.completed_at = Some(completed_at);
            let resource = responses::encode_response(&answer, &self.echo, &meta);
            conversation.extend(responses::output_messages(&answer));
            self.gateway.responses.put(
                meta.id.clone(),
                Stored {
                    resource,
                    conversation,
                },
            );
        }
    }

    fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut BytesMut) {
        let code = match kind {
            ErrorKind::UpstreamStatus(429) => "rate_limit_exceeded",
            ErrorKind::UpstreamTimeout => "timeout",
            _ => "server_error",
        };
        self.encoder.fail(code, message, out);
    }
}

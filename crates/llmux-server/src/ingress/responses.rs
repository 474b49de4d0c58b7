//! `POST /v1/responses` (Open Responses), `GET` and `DELETE /v1/responses/{id}`.
//!
//! Every vendor serves it through the neutral model. With `store` (the default) the response and
//! its whole conversation are kept, so `previous_response_id` works on any vendor — the two turns
//! may even land on different vendors.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use llmux_config::Api;
use llmux_protocol::error::ErrorKind;
use llmux_protocol::neutral::{self, Message};
use llmux_protocol::responses::{self, Echo, Meta};
use llmux_router::{Endpoint, Target};
use serde_json::json;

use crate::api_error::ApiError;
use crate::edge::envelope::Envelope;
use crate::pipeline::attempts::Failure;
use crate::pipeline::translate::{self, ClientEncoder};
use crate::pipeline::{
    self, Answer, Call, DEFAULT_OUTPUT_RESERVATION, Facts, Ingress, Translate, unix_now,
};
use crate::response_store::Stored;
use crate::state::Gateway;

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

/// `resp_` and 32 hex digits from the operating system's CSPRNG: a response id is all a caller
/// needs to read or continue a stored conversation, so it must not be guessable.
fn new_response_id() -> String {
    let mut random = [0u8; 16];
    if getrandom::fill(&mut random).is_err() {
        // No OS randomness (never seen on a supported platform): fall back rather than fail.
        random =
            (u128::from(fastrand::u64(..)) << 64 | u128::from(fastrand::u64(..))).to_le_bytes();
    }
    format!("resp_{:032x}", u128::from_le_bytes(random))
}

/// The Open Responses ingress (every vendor through the neutral model).
pub struct Responses;

/// A decoded Open Responses request, with a stored conversation already prepended.
pub struct ResponsesCall {
    request: neutral::Request,
    model: Option<String>,
    provider: Option<String>,
    echo: Echo,
    store: bool,
    id: String,
    created_at: u64,
}

impl ResponsesCall {
    fn meta(&self, public_name: &str, completed_at: Option<u64>) -> Meta {
        Meta {
            id: self.id.clone(),
            created_at: self.created_at,
            completed_at,
            model: self.model.clone().unwrap_or_else(|| public_name.to_owned()),
        }
    }
}

impl Ingress for Responses {
    const ROUTE: &'static str = "responses";
    const ENVELOPE: Envelope = Envelope::OpenAi;
    const ENDPOINT: Endpoint = Endpoint::Chat;
    const PASSTHROUGH: Option<Api> = None;
    type Request = ResponsesCall;

    async fn decode(
        gateway: &Gateway,
        _head: &http::request::Parts,
        bytes: Bytes,
    ) -> Result<ResponsesCall, ApiError> {
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
        Ok(ResponsesCall {
            request,
            model: decoded.model,
            provider: decoded.provider,
            echo: decoded.echo,
            store: decoded.store,
            id: new_response_id(),
            created_at: unix_now(),
        })
    }

    fn facts(call: &ResponsesCall) -> Facts<'_> {
        Facts {
            model: call.model.as_deref(),
            provider: call.provider.as_deref(),
            needs: translate::needs(&call.request),
            reserve_tokens: call.request.estimate_input_tokens()
                + call
                    .request
                    .sampling
                    .max_tokens
                    .map_or(DEFAULT_OUTPUT_RESERVATION, u64::from),
            dropped_tools: &call.request.dropped_tools,
        }
    }

    async fn passthrough<'a>(
        request: &'a ResponsesCall,
        call: &'a Call<'a>,
        target: Target<'a>,
    ) -> Result<Answer, Failure> {
        // No vendor API is reached by bytes (PASSTHROUGH is None): translation serves all.
        pipeline::translated::<Self>(request, call, target).await
    }

    async fn translated<'a>(
        request: &'a ResponsesCall,
        call: &'a Call<'a>,
        target: Target<'a>,
    ) -> Result<Answer, Failure> {
        pipeline::translated::<Self>(request, call, target).await
    }

    fn cache() -> Option<crate::pipeline::cache::Hooks<Self>> {
        Some(crate::pipeline::cache::Hooks::translated())
    }
}

impl Translate for Responses {
    type Encoder = ResponsesClient;

    fn neutral(request: &ResponsesCall) -> Result<neutral::Request, ApiError> {
        Ok(request.request.clone())
    }

    fn encoder(request: &ResponsesCall, call: &Call<'_>, public_name: &str) -> ResponsesClient {
        let meta = request.meta(public_name, None);
        ResponsesClient {
            encoder: responses::StreamEncoder::new(request.echo.clone(), meta.clone()),
            echo: request.echo.clone(),
            meta,
            conversation: request.store.then(|| request.request.messages.clone()),
            gateway: Arc::clone(call.gateway),
        }
    }

    fn encode_whole(
        request: &ResponsesCall,
        answer: &neutral::Response,
        call: &Call<'_>,
        public_name: &str,
    ) -> Vec<u8> {
        let meta = request.meta(public_name, Some(unix_now()));
        let resource = responses::encode_response(answer, &request.echo, &meta);
        let body = serde_json::to_vec(&resource).unwrap_or_default();
        if request.store {
            let mut conversation = request.request.messages.clone();
            conversation.extend(responses::output_messages(answer));
            call.gateway.responses.put(
                request.id.clone(),
                Stored {
                    resource,
                    conversation,
                },
            );
        }
        body
    }
}

/// The Open Responses event stream, storing the finished response when asked to.
pub struct ResponsesClient {
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

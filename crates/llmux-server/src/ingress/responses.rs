//! `POST /v1/responses` (Open Responses), `GET` and `DELETE /v1/responses/{id}`.
//!
//! A credential with `responses: native` (OpenAI's own, by default) gets the client's body at
//! its `/responses` with only `model` changed ([`native`]): reasoning items, encrypted
//! reasoning, hosted tools, `store` and `previous_response_id` are OpenAI's. Every other vendor
//! serves it through the neutral model; there, with `store` (the default), llmux keeps the
//! response and its whole conversation, so `previous_response_id` works on any vendor — the two
//! turns may even land on different vendors.
//!
//! Which conversation a `previous_response_id` names decides the path: one llmux stored is
//! expanded and translated (whatever the credential); one llmux does not hold belongs to
//! OpenAI, so the request is pinned to the native credentials' vendor and sent as it is. A
//! body whose items only OpenAI reads (`custom_tool_call`, `item_reference`…) likewise goes
//! only to native credentials.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, FromRequestParts, Path, State};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use llmux_config::{Api, ResponsesMode};
use llmux_protocol::error::ErrorKind;
use llmux_protocol::neutral::{self, Message};
use llmux_protocol::openai_chat::InvalidRequest;
use llmux_protocol::responses::{self, Decoded, Echo, Meta};
use llmux_router::{Endpoint, Target};
use serde_json::json;

use crate::api_error::ApiError;
use crate::egress::send::ClientHeaders;
use crate::governance::Caller;
use crate::pipeline::attempts::Failure;
use crate::pipeline::translate::{self, ClientEncoder};
use crate::pipeline::{self, Answer, Call, Facts, Ingress, Profile, Received, Translate, unix_now};
use crate::response_store::Continuation;
use crate::state::Gateway;
use crate::trace::facts::RequestFacts;

/// Who asks for a stored response ([`Caller::owner`] of the caller the edge authenticated).
pub struct Owner(String);

impl<S: Send + Sync> FromRequestParts<S> for Owner {
    type Rejection = <Extension<Caller> as FromRequestParts<S>>::Rejection;

    async fn from_request_parts(
        parts: &mut http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let Extension(caller) = Extension::<Caller>::from_request_parts(parts, state).await?;
        Ok(Self(caller.owner(&parts.headers, &parts.uri)))
    }
}

/// `GET /v1/responses/{id}`: only its owner sees it; anyone else gets a 404.
pub async fn get(
    State(gateway): State<Arc<Gateway>>,
    Owner(owner): Owner,
    Path(id): Path<String>,
) -> Response {
    match gateway.responses.resource(&id, &owner).await {
        Some(resource) => {
            ([(http::header::CONTENT_TYPE, "application/json")], resource).into_response()
        }
        None => not_found(&id).into_response(),
    }
}

/// `DELETE /v1/responses/{id}`: only its owner may; anyone else gets a 404.
pub async fn delete(
    State(gateway): State<Arc<Gateway>>,
    Owner(owner): Owner,
    Path(id): Path<String>,
) -> Response {
    if gateway.responses.delete(&id, &owner).await {
        Json(json!({"id": id, "object": "response", "deleted": true})).into_response()
    } else {
        not_found(&id).into_response()
    }
}

fn previous_not_found(previous: &str) -> ApiError {
    let mut error = ApiError::new(
        ErrorKind::NotFound,
        format!("previous response '{previous}' not found"),
    );
    error.0.code = Some("previous_response_not_found".into());
    error.0.param = Some("previous_response_id".into());
    error
}

/// A [`Decoded`] for a body only a native credential can take: what routing needs, from the
/// light envelope.
fn decoded_from_envelope(envelope: responses::passthrough::Envelope) -> Decoded {
    let mut request = neutral::Request {
        stream: envelope.stream == Some(true),
        ..neutral::Request::default()
    };
    request.sampling.max_tokens = envelope.max_output_tokens;
    Decoded {
        request,
        model: envelope.model.filter(|m| !m.is_empty()),
        provider: envelope.provider.filter(|p| !p.is_empty()),
        previous_response_id: envelope.previous_response_id,
        store: envelope.store != Some(false),
        echo: Echo::default(),
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

mod native;

/// The Open Responses ingress: OpenAI's own `/responses` by bytes, every other vendor through
/// the neutral model.
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
    /// Who owns the stored response (and may continue it).
    owner: String,
    /// The stored response this one continues.
    previous: Option<String>,
    /// Where this turn's own messages start in `request.messages` (after the stored ones).
    turn_start: usize,
    /// The body as received, for the native path.
    bytes: Bytes,
    /// `OpenAI-Beta` and the credentials' `forward_headers`, for the native path.
    client_headers: ClientHeaders,
    /// Why the body cannot go through the neutral model (items only OpenAI reads): it goes to
    /// native credentials only.
    untranslatable: Option<InvalidRequest>,
    /// `previous_response_id` names a response OpenAI stores (answered natively for this
    /// owner): only a native credential can continue it.
    remote_previous: bool,
}

impl ResponsesCall {
    /// The messages this turn adds (its own input, without the stored conversation).
    fn turn(&self) -> Vec<Message> {
        self.request.messages[self.turn_start.min(self.request.messages.len())..].to_vec()
    }

    /// Whether an attempt on `target` goes to the vendor's own `/responses` by bytes.
    fn goes_native(&self, target: &Target<'_>) -> bool {
        target.credential.responses == ResponsesMode::Native
            && target.credential.api == Api::OpenAi
            && (self.previous.is_none() || self.remote_previous)
    }

    /// Why this request cannot be served through the neutral model, if it cannot.
    fn untranslatable(&self) -> Option<ApiError> {
        if let Some(error) = &self.untranslatable {
            return Some(error.clone().into());
        }
        let previous = self.previous.as_deref().filter(|_| self.remote_previous)?;
        Some(previous_not_found(previous))
    }

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
    const PROFILE: Profile = Profile::new("responses", Api::OpenAi, Endpoint::Chat);
    type Request = ResponsesCall;

    async fn decode(received: Received<'_>) -> Result<ResponsesCall, ApiError> {
        let Received {
            gateway,
            head,
            bytes,
        } = received;
        // Read from the snapshot before any await (its guard stays on this thread).
        let (native_vendor, client_headers) = {
            let snapshot = gateway.snapshot.load();
            // The vendor of the native credentials, where OpenAI's own conversations continue.
            let native_vendor = snapshot
                .config
                .credentials
                .iter()
                .find(|c| c.responses == ResponsesMode::Native && c.api == Api::OpenAi)
                .map(|c| c.vendor.clone());
            let client_headers = ClientHeaders::capture(
                &head.headers,
                &[ClientHeaders::OPENAI_BETA],
                &snapshot.forward_headers,
            );
            (native_vendor, client_headers)
        };
        let (decoded, untranslatable) = match responses::decode_request(&bytes) {
            Ok(decoded) => (decoded, None),
            Err(error) => {
                // Items only OpenAI reads: the body can still go to OpenAI as it is.
                let envelope = native_vendor
                    .as_ref()
                    .and_then(|_| responses::passthrough::decode_envelope(&bytes));
                match envelope {
                    Some(envelope) => (decoded_from_envelope(envelope), Some(error)),
                    None => return Err(error.into()),
                }
            }
        };
        let mut request = decoded.request;
        // The edge puts the caller here; without it, nothing stored can be continued.
        let owner = head.extensions.get::<Caller>().map_or_else(
            || format!("request:{}", new_response_id()),
            |caller| caller.owner(&head.headers, &head.uri),
        );
        let mut turn_start = 0;
        let mut remote_previous = false;
        if let Some(previous) = &decoded.previous_response_id {
            // Another owner's response is "not found", exactly like a missing one.
            match gateway.responses.continuation(previous, &owner).await {
                Continuation::Here(_) if untranslatable.is_some() => {
                    return Err(
                        untranslatable.map_or_else(|| previous_not_found(previous), ApiError::from)
                    );
                }
                Continuation::Here(mut conversation) => {
                    turn_start = conversation.len();
                    conversation.append(&mut request.messages);
                    request.messages = conversation;
                }
                // OpenAI's own, answered through llmux for this owner: continued there.
                Continuation::AtVendor if native_vendor.is_some() => remote_previous = true,
                Continuation::AtVendor | Continuation::Missing => {
                    return Err(previous_not_found(previous));
                }
            }
        }
        let mut provider = decoded.provider;
        if (remote_previous || untranslatable.is_some()) && provider.is_none() {
            provider = native_vendor;
        }
        Ok(ResponsesCall {
            request,
            model: decoded.model,
            provider,
            echo: decoded.echo,
            store: decoded.store,
            id: new_response_id(),
            created_at: unix_now(),
            owner,
            previous: decoded.previous_response_id,
            turn_start,
            bytes,
            client_headers,
            untranslatable,
            remote_previous,
        })
    }

    fn facts(call: &ResponsesCall) -> Facts<'_> {
        let request = &call.request;
        let reserve =
            pipeline::reservation(request.estimate_input_tokens(), request.sampling.max_tokens);
        Facts::new(call.model.as_deref(), translate::needs(request), reserve)
            .with_provider(call.provider.as_deref())
            .with_dropped_tools(&request.dropped_tools)
    }

    const SAMPLING_FROM_DECODE: bool = true;

    fn sampling(call: &ResponsesCall) -> RequestFacts {
        RequestFacts {
            max_tokens: call.request.sampling.max_tokens.map(u64::from),
            temperature: call.request.sampling.temperature,
            choices: None,
        }
    }

    async fn passthrough<'a>(
        request: &'a ResponsesCall,
        call: &'a Call<'a>,
        target: Target<'a>,
    ) -> Result<Answer, Failure> {
        if request.goes_native(&target) {
            native::attempt(request, call, &target).await
        } else {
            Box::pin(pipeline::translated::<Self>(request, call, target)).await
        }
    }

    fn cache() -> Option<crate::pipeline::cache::Hooks<Self>> {
        Some(crate::pipeline::cache::Hooks::translated())
    }

    fn dropped_tools<'r>(
        request: &'r ResponsesCall,
        target: &Target<'_>,
        translated: bool,
    ) -> &'r [String] {
        // OpenAI runs its hosted tools itself: nothing was removed from a native request.
        if !translated && request.goes_native(target) {
            &[]
        } else {
            &request.request.dropped_tools
        }
    }
}

impl Translate for Responses {
    type Encoder = ResponsesClient;

    fn neutral(request: &ResponsesCall) -> Result<neutral::Request, ApiError> {
        // Also what the response cache keys on: a request only OpenAI can serve is never cached.
        match request.untranslatable() {
            Some(error) => Err(error),
            None => Ok(request.request.clone()),
        }
    }

    fn encoder(request: &ResponsesCall, call: &Call<'_>, public_name: &str) -> ResponsesClient {
        let meta = request.meta(public_name, None);
        ResponsesClient {
            encoder: responses::StreamEncoder::new(request.echo.clone(), meta.clone()),
            echo: request.echo.clone(),
            meta,
            turn: request.store.then(|| request.turn()),
            owner: request.owner.clone(),
            previous: request.previous.clone(),
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
            let mut turn = request.turn();
            turn.extend(responses::output_messages(answer));
            call.gateway.responses.put(
                request.id.clone(),
                request.owner.clone(),
                request.previous.clone(),
                &resource,
                turn,
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
    /// This turn's own messages before the answer, when the response is to be stored.
    turn: Option<Vec<Message>>,
    owner: String,
    previous: Option<String>,
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
        if let Some(mut turn) = self.turn.take() {
            let mut meta = self.meta.clone();
            meta.completed_at = Some(completed_at);
            let resource = responses::encode_response(&answer, &self.echo, &meta);
            turn.extend(responses::output_messages(&answer));
            self.gateway.responses.put(
                meta.id.clone(),
                std::mem::take(&mut self.owner),
                self.previous.take(),
                &resource,
                turn,
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

//! `POST /v1/messages` (Anthropic Messages) and `POST /v1/messages/count_tokens`, with errors in
//! Anthropic's envelope. To an Anthropic combination the body is forwarded as received except
//! `model` (the same-protocol fast path, streams included); to any other vendor it goes through
//! the neutral model and comes back as Anthropic's exact event sequence.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http::{HeaderValue, StatusCode, header};
use llmux_config::Api;
use llmux_protocol::error::ErrorKind;
use llmux_protocol::json_scan::{self, Edit};
use llmux_protocol::neutral;
use llmux_protocol::openai_chat::json_string;
use llmux_protocol::{anthropic, sse};
use llmux_router::{Endpoint, Needs, Target};
use serde_json::{Value, json};

use crate::api_error::{ApiError, error_response, status_of};
use crate::body;
use crate::egress::answer::{self as proxy, VendorParam};
use crate::egress::send::ClientHeaders;
use crate::egress::send::read_body;
use crate::pipeline::attempts::Failure;
use crate::pipeline::translate::{self, ClientEncoder, NeutralOnce, Translation};
use crate::pipeline::{self, Answer, Call, Facts, Ingress, Profile, Received, Translate};
use crate::state::{Gateway, Snapshot};

/// Renders an error in Anthropic's envelope.
pub fn anthropic_error(error: ApiError) -> Response {
    let kind = error.0.kind;
    let error_type = error
        .0
        .type_override
        .clone()
        .filter(|t| t.ends_with("_error"))
        .unwrap_or_else(|| anthropic::error_type(kind).to_owned());
    let body = anthropic::encode_error(&error_type, &error.0.message);
    error_response(&error.0, status_of(kind), body, "application/json")
}

/// The Anthropic Messages ingress.
pub struct Messages;

/// A decoded Messages request: the body for the byte path, the neutral form for translation
/// (taken by the first translated attempt; a retry decodes the body again, so a large request
/// is never held twice).
pub struct MessagesCall {
    bytes: Bytes,
    /// `anthropic-beta`, `anthropic-version` and the credentials' `forward_headers` from the
    /// client, for the byte path to Anthropic.
    client_headers: ClientHeaders,
    request: neutral::Request,
    unused: NeutralOnce,
    needs: Needs,
    input_estimate: u64,
}

impl Ingress for Messages {
    const PROFILE: Profile = Profile::new("messages", Api::Anthropic, Endpoint::Chat);
    type Request = MessagesCall;

    async fn decode(received: Received<'_>) -> Result<MessagesCall, ApiError> {
        const DEFAULTS: [http::HeaderName; 2] = [
            http::HeaderName::from_static("anthropic-beta"),
            http::HeaderName::from_static("anthropic-version"),
        ];
        let client_headers = received.client_headers(&DEFAULTS);
        let mut request = anthropic::decode_request(&received.bytes)?;
        let input_estimate = request.estimate_input_tokens();
        let needs = translate::needs(&request);
        // What routing and the encoders read stays here; the messages wait in `unused`.
        let messages = std::mem::take(&mut request.messages);
        let tools = std::mem::take(&mut request.tools);
        let mut full = request.clone();
        full.messages = messages;
        full.tools = tools;
        Ok(MessagesCall {
            bytes: received.bytes,
            client_headers,
            request,
            unused: NeutralOnce::new(full),
            needs,
            input_estimate,
        })
    }

    fn facts(call: &MessagesCall) -> Facts<'_> {
        let request = &call.request;
        let model = Some(request.model.as_str()).filter(|m| !m.is_empty());
        let reserve = pipeline::reservation(call.input_estimate, request.sampling.max_tokens);
        Facts::new(model, call.needs, reserve).with_dropped_tools(&request.dropped_tools)
    }

    async fn passthrough<'a>(
        request: &'a MessagesCall,
        call: &'a Call<'a>,
        target: Target<'a>,
    ) -> Result<Answer, Failure> {
        same_protocol(call, &target, request).await
    }

    fn cache() -> Option<crate::pipeline::cache::Hooks<Self>> {
        Some(crate::pipeline::cache::Hooks::translated())
    }
}

impl Translate for Messages {
    type Encoder = anthropic::StreamEncoder;

    fn neutral(request: &MessagesCall) -> Result<neutral::Request, ApiError> {
        request
            .unused
            .take_or(|| Ok(anthropic::decode_request(&request.bytes)?))
    }

    fn encoder(
        request: &MessagesCall,
        _call: &Call<'_>,
        _public_name: &str,
    ) -> anthropic::StreamEncoder {
        let message_id = format!("msg_{:016x}{:08x}", fastrand::u64(..), fastrand::u32(..));
        anthropic::StreamEncoder::new(
            message_id,
            request.request.model.clone(),
            request.input_estimate,
        )
        .omit_reasoning(request.request.omit_reasoning)
    }

    fn encode_whole(
        request: &MessagesCall,
        answer: &neutral::Response,
        _call: &Call<'_>,
        _public_name: &str,
    ) -> Vec<u8> {
        if request.request.omit_reasoning {
            // `thinking.display: "omitted"`: no reasoning text for the client.
            let mut answer = answer.clone();
            answer.omit_reasoning_text();
            return anthropic::encode_response(&answer, &request.request.model);
        }
        anthropic::encode_response(answer, &request.request.model)
    }
}

/// Anthropic client, Anthropic vendor: the body as received except `model`; the answer with
/// `model` set back to the client's name (top level, or inside `message_start` for streams).
async fn same_protocol(
    call: &Call<'_>,
    target: &Target<'_>,
    request: &MessagesCall,
) -> Result<Answer, Failure> {
    let (gateway, snapshot, settle) = (call.gateway, call.snapshot, call.settle);
    let (bytes, stream) = (&request.bytes[..], request.request.stream);
    // Reasoning another vendor issued (replayed after turns it answered) would be refused.
    let stripped = anthropic::strip_foreign_reasoning(bytes);
    let bytes = stripped.as_deref().unwrap_or(bytes);
    let client_model = request.request.model.as_str();
    let members = json_scan::members(bytes).map_err(|_| ApiError::not_an_object())?;
    let upstream_model = json_string(target.upstream_model);
    let upstream_body = json_scan::edit(bytes, &members, &[Edit::Set("model", &upstream_model)]);
    let endpoint = snapshot.endpoint(target)?;
    let started = Instant::now();
    let mut response = call
        .send(
            target,
            &endpoint.messages_url,
            &upstream_body,
            stream,
            &request.client_headers,
        )
        .await?;
    let client_model = json_string(client_model);
    if !stream {
        let body = proxy::read_whole(snapshot, target, &mut response).await?;
        let usage = anthropic::decode_response(&body).ok().and_then(|r| r.usage);
        settle.done(target.upstream_model, usage);
        crate::series::of(snapshot, target).add_neutral_usage(&gateway.metrics, usage);
        return Ok(Answer::Json(call.rewrite_answer(&body, &client_model).body));
    }
    let strategy = Translation::new(Api::Anthropic, AnthropicPassthrough { client_model });
    let body = crate::pipeline::relay::open(call, target, started, response, strategy).await?;
    Ok(Answer::Stream(body))
}

/// Anthropic events forwarded as received, `model` rewritten in `message_start`.
struct AnthropicPassthrough {
    client_model: Vec<u8>,
}

impl ClientEncoder for AnthropicPassthrough {
    fn encode(&mut self, _event: &neutral::StreamEvent, _out: &mut BytesMut) {}

    fn finish(&mut self, _out: &mut BytesMut) {
        // message_stop was already forwarded.
    }

    fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut BytesMut) {
        sse::encode_event(
            out,
            Some("error"),
            &anthropic::encode_error(anthropic::error_type(kind), message),
        );
    }

    fn passthrough(&mut self, event: &sse::Event, out: &mut BytesMut) -> bool {
        match event.name.as_deref() {
            // Errors go through `fail`, so one stays the last event whatever ends the stream.
            Some("error") => false,
            // Vendor bytes reach the client as valid UTF-8 (U+FFFD for anything else), so a
            // broken vendor cannot make the client's JSON parser fail.
            Some("message_start") => {
                let data = rewrite_nested_model(&event.data, &self.client_model)
                    .unwrap_or_else(|| event.data.to_vec());
                let data = llmux_protocol::utf8::valid_or_replaced_vec(data);
                sse::encode_event(out, Some("message_start"), &data);
                true
            }
            name => {
                let data = llmux_protocol::utf8::valid_or_replaced(event.data.clone());
                sse::encode_event(out, name, &data);
                true
            }
        }
    }
}

/// `{"type":"message_start","message":{…,"model":X,…}}` with X replaced, without a tree.
fn rewrite_nested_model(data: &[u8], model: &[u8]) -> Option<Vec<u8>> {
    let outer = json_scan::members(data).ok()?;
    let message = json_scan::find(data, &outer, "message")?.value.clone();
    let inner_json = &data[message.clone()];
    let inner = json_scan::members(inner_json).ok()?;
    let model_range = json_scan::find(inner_json, &inner, "model")?.value.clone();
    let absolute = message.start + model_range.start..message.start + model_range.end;
    Some(json_scan::splice(data, absolute, model))
}

/// `POST /v1/messages/count_tokens`: Anthropic's own count when the model is served by an
/// Anthropic credential, else an estimate (about 4 characters per token), flagged by the
/// `x-llmux-token-count: estimated` header.
pub async fn count_tokens(
    State(gateway): State<Arc<Gateway>>,
    axum::extract::Extension(caller): axum::extract::Extension<crate::governance::Caller>,
    Query(params): Query<VendorParam>,
    body: Body,
) -> Response {
    match count(gateway, caller, params, body).await {
        Ok(response) => response,
        Err(err) => anthropic_error(err),
    }
}

async fn count(
    gateway: Arc<Gateway>,
    caller: crate::governance::Caller,
    params: VendorParam,
    body: Body,
) -> Result<Response, ApiError> {
    let snapshot = gateway.snapshot.load_full();
    let bytes = body::read_request(body, &snapshot).await?;
    // count_tokens takes a Messages body without max_tokens.
    let mut value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            ErrorKind::InvalidRequest,
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    if let Some(object) = value.as_object_mut() {
        object.entry("max_tokens").or_insert(json!(1));
        object.remove("stream");
    }
    let patched = serde_json::to_vec(&value).unwrap_or_default();
    let request = anthropic::decode_request(&patched)?;
    let vendor = params.vendor.as_deref().filter(|v| !v.is_empty());
    let query = llmux_router::Query {
        endpoint: Endpoint::Chat,
        model: Some(request.model.as_str()).filter(|m| !m.is_empty()),
        vendor,
        needs: Needs::default(),
    };
    let candidates = snapshot.table.candidates(&query)?;
    // The same key checks as a request (allowed models and vendors, budgets, rate limits):
    // counting may call a vendor. Nothing is charged; the permit is released when dropped.
    let _permit = crate::governance::admit(
        &gateway,
        &caller,
        query.model,
        vendor,
        0,
        &snapshot.config.pricing,
    )
    .await?;
    let allowed = crate::governance::allowed_vendors(&caller);
    let anthropic_target = (0..candidates.len())
        .filter_map(|i| candidates.get(i))
        .filter(|t| allowed.is_empty() || allowed.contains(&t.credential.vendor))
        .find(|t| t.credential.api == Api::Anthropic);
    if let Some(target) = anthropic_target
        && let Some(counted) = vendor_count(&snapshot, &target, &bytes).await
    {
        return Ok(crate::edge::into_response(proxy::finish(
            counted, &snapshot, &target,
        )));
    }
    let mut response = proxy::json_response(
        serde_json::to_vec(&json!({"input_tokens": request.estimate_input_tokens()}))
            .unwrap_or_default(),
    );
    response
        .headers_mut()
        .insert("x-llmux-token-count", HeaderValue::from_static("estimated"));
    Ok(response)
}

/// Anthropic's `/v1/messages/count_tokens`; `None` when it cannot answer (then we estimate).
async fn vendor_count(snapshot: &Snapshot, target: &Target<'_>, bytes: &[u8]) -> Option<Response> {
    let endpoint = snapshot.endpoints.get(target.credential_index)?;
    let members = json_scan::members(bytes).ok()?;
    let model = json_string(target.upstream_model);
    let body = json_scan::edit(bytes, &members, &[Edit::Set("model", &model)]);
    let mut response = endpoint
        .post_json(&endpoint.count_tokens_url, &body, false)
        .await
        .ok()?;
    if !response.status().is_success() {
        return None;
    }
    let body = read_body(&mut response, 1024 * 1024, proxy::idle(snapshot, target))
        .await
        .ok()?;
    let mut out = (StatusCode::OK, body).into_response();
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    out.headers_mut()
        .insert("x-llmux-token-count", HeaderValue::from_static("vendor"));
    Some(out)
}

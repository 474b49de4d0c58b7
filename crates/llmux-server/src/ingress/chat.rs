//! `POST /v1/chat/completions`. To an OpenAI-compatible vendor this is the same-protocol fast
//! path: the body is forwarded as received except `model` (and `provider`, `stream_options`).
//! To Anthropic or Gemini it goes through the neutral model. Both run inside the attempt loop,
//! after the caller's limits admit the request.

use std::time::Instant;

use bytes::Bytes;
use llmux_config::Api;
use llmux_protocol::error::ErrorKind;
use llmux_protocol::neutral;
use llmux_protocol::openai_chat::{self, json_string};
use llmux_router::{Endpoint, Needs, Target};

use crate::api_error::ApiError;
use crate::edge::envelope::Envelope;
use crate::egress::answer as proxy;
use crate::egress::send::ClientHeaders;
use crate::pipeline::attempts::Failure;
use crate::pipeline::relay::Rewrite;
use crate::pipeline::{
    self, Answer, Call, DEFAULT_OUTPUT_RESERVATION, Facts, Ingress, Translate, unix_now,
};
use crate::state::Gateway;

/// The Chat Completions ingress.
pub struct Chat;

/// A decoded chat request: the envelope for the byte path; the neutral form is decoded by each
/// attempt that needs it, so a large request is held once, not once per copy.
pub struct ChatCall {
    bytes: Bytes,
    /// `OpenAI-Beta` and the credentials' `forward_headers` from the client, for the byte path
    /// to OpenAI-compatible vendors.
    client_headers: ClientHeaders,
    request: openai_chat::ChatRequest<'static>,
}

impl Ingress for Chat {
    const ROUTE: &'static str = "chat";
    const ENVELOPE: Envelope = Envelope::OpenAi;
    const ENDPOINT: Endpoint = Endpoint::Chat;
    const PASSTHROUGH: Option<Api> = Some(Api::OpenAi);
    type Request = ChatCall;

    async fn decode(
        gateway: &Gateway,
        head: &http::request::Parts,
        bytes: Bytes,
    ) -> Result<ChatCall, ApiError> {
        const BETA: http::HeaderName = http::HeaderName::from_static("openai-beta");
        let request = owned(openai_chat::decode_request(&bytes)?);
        let client_headers = ClientHeaders::capture(
            &head.headers,
            &[BETA],
            &gateway.snapshot.load().forward_headers,
        );
        Ok(ChatCall {
            bytes,
            client_headers,
            request,
        })
    }

    fn facts(call: &ChatCall) -> Facts<'_> {
        let request = &call.request;
        Facts {
            model: request.model.as_deref(),
            provider: request.provider.as_deref(),
            needs: Needs {
                image: request.needs.image,
                video: request.needs.video,
                tools: request.needs.tools,
                streaming: request.needs.streaming,
            },
            reserve_tokens: call.bytes.len() as u64 / 4
                + request
                    .max_tokens
                    .map_or(DEFAULT_OUTPUT_RESERVATION, u64::from),
            dropped_tools: &[],
        }
    }

    async fn passthrough<'a>(
        request: &'a ChatCall,
        call: &'a Call<'a>,
        target: Target<'a>,
    ) -> Result<Answer, Failure> {
        same_protocol(call, target, request).await
    }

    async fn translated<'a>(
        request: &'a ChatCall,
        call: &'a Call<'a>,
        target: Target<'a>,
    ) -> Result<Answer, Failure> {
        pipeline::translated::<Self>(request, call, target).await
    }

    fn cache() -> Option<crate::pipeline::cache::Hooks<Self>> {
        Some(crate::pipeline::cache::Hooks::translated())
    }
}

/// The envelope without borrows (the body it was read from lives beside it in [`ChatCall`]).
fn owned(request: openai_chat::ChatRequest<'_>) -> openai_chat::ChatRequest<'static> {
    let owned = |s: std::borrow::Cow<'_, str>| std::borrow::Cow::Owned(s.into_owned());
    openai_chat::ChatRequest {
        model: request.model.map(owned),
        provider: request.provider.map(owned),
        needs: request.needs,
        client_wants_usage: request.client_wants_usage,
        max_tokens: request.max_tokens,
    }
}

impl Translate for Chat {
    type Encoder = openai_chat::ChunkEncoder;

    fn neutral(request: &ChatCall) -> Result<neutral::Request, ApiError> {
        Ok(openai_chat::decode_neutral_request(&request.bytes)?)
    }

    fn encoder(request: &ChatCall, _call: &Call<'_>, public_name: &str) -> Self::Encoder {
        openai_chat::ChunkEncoder::new(
            unix_now(),
            request.request.model.as_deref().unwrap_or(public_name),
            request.request.client_wants_usage,
        )
    }

    fn encode_whole(
        request: &ChatCall,
        answer: &neutral::Response,
        _call: &Call<'_>,
        public_name: &str,
    ) -> Vec<u8> {
        let client_model = request.request.model.as_deref().unwrap_or(public_name);
        openai_chat::encode_neutral_response(answer, client_model, unix_now())
    }
}

/// OpenAI client, OpenAI-compatible vendor: bytes in, bytes out, `model` swapped.
async fn same_protocol(
    call: &Call<'_>,
    target: Target<'_>,
    chat: &ChatCall,
) -> Result<Answer, Failure> {
    let (bytes, request) = (&chat.bytes[..], &chat.request);
    let (gateway, snapshot) = (call.gateway, call.snapshot);
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
    let response = crate::egress::send::send_with(
        snapshot,
        &target,
        &endpoint.chat_url,
        upstream_body,
        stream,
        &chat.client_headers.for_credential(target.credential),
    )
    .await?;
    if !stream {
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
        return Ok(Answer::Json(body));
    }
    let strategy = Rewrite::new(
        client_model,
        request.client_wants_usage,
        proxy::needs_tool_call_repair(&target),
    );
    let body =
        crate::pipeline::relay::open(call, &target, Chat::ROUTE, started, response, strategy)
            .await?;
    Ok(Answer::Stream(body))
}

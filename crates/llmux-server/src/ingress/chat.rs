//! `POST /v1/chat/completions`. To an OpenAI-compatible vendor this is the same-protocol fast
//! path: the body is forwarded as received except `model` (and `provider`, `stream_options`).
//! To Anthropic or Gemini it goes through the neutral model. Both run inside the attempt loop,
//! after the caller's limits admit the request.
//!
//! The Open Responses gateway's quick start posts an Open Responses body (`input`, no
//! `messages`) here: such a body is served exactly as `POST /v1/responses` would serve it, in
//! the Responses shape, streaming included. The check runs only when a body fails as a chat
//! request, so chat requests pay nothing for it.

use std::time::Instant;

use bytes::{Bytes, BytesMut};
use llmux_config::Api;
use llmux_protocol::error::ErrorKind;
use llmux_protocol::neutral;
use llmux_protocol::openai_chat::{self, json_string};
use llmux_router::{Endpoint, Needs, Target};

use crate::api_error::ApiError;
use crate::egress::answer as proxy;
use crate::egress::send::ClientHeaders;
use crate::ingress::responses::{Responses, ResponsesCall, ResponsesClient};
use crate::pipeline::attempts::Failure;
use crate::pipeline::relay::Rewrite;
use crate::pipeline::translate::ClientEncoder;
use crate::pipeline::{self, Answer, Call, Facts, Ingress, Profile, Received, Translate, unix_now};
use crate::trace::facts::RequestFacts;

/// The Chat Completions ingress.
pub struct Chat;

/// A request on the chat route: a chat request, or an Open Responses body (the quick start).
pub enum ChatCall {
    /// A Chat Completions request.
    Chat(ChatBody),
    /// An Open Responses request, served as `/v1/responses` serves it.
    Responses(Box<ResponsesCall>),
}

/// A decoded chat request: the envelope for the byte path; the neutral form is decoded by each
/// attempt that needs it, so a large request is held once, not once per copy.
pub struct ChatBody {
    bytes: Bytes,
    /// `OpenAI-Beta` and the credentials' `forward_headers` from the client, for the byte path
    /// to OpenAI-compatible vendors.
    client_headers: ClientHeaders,
    request: openai_chat::ChatRequest<'static>,
}

impl Ingress for Chat {
    const PROFILE: Profile = Profile::new("chat", Api::OpenAi, Endpoint::Chat);
    type Request = ChatCall;

    async fn decode(received: Received<'_>) -> Result<ChatCall, ApiError> {
        let request = match openai_chat::decode_request(&received.bytes) {
            Ok(request) => owned(request),
            Err(_) if is_responses_body(&received.bytes) => {
                let call = Responses::decode(received).await?;
                return Ok(ChatCall::Responses(Box::new(call)));
            }
            Err(error) => return Err(error.into()),
        };
        let client_headers = received.client_headers(&[ClientHeaders::OPENAI_BETA]);
        Ok(ChatCall::Chat(ChatBody {
            bytes: received.bytes,
            client_headers,
            request,
        }))
    }

    fn facts(call: &ChatCall) -> Facts<'_> {
        let call = match call {
            ChatCall::Chat(body) => body,
            ChatCall::Responses(call) => return Responses::facts(call),
        };
        let request = &call.request;
        let needs = Needs {
            image: request.needs.image,
            video: request.needs.video,
            tools: request.needs.tools,
            streaming: request.needs.streaming,
        };
        let reserve = pipeline::reservation(call.bytes.len() as u64 / 4, request.max_tokens);
        Facts::new(request.model.as_deref(), needs, reserve)
            .with_provider(request.provider.as_deref())
    }

    const SAMPLING_FROM_DECODE: bool = true;

    fn sampling(call: &ChatCall) -> RequestFacts {
        match call {
            ChatCall::Chat(body) => RequestFacts {
                max_tokens: body.request.max_tokens.map(u64::from),
                temperature: body.request.temperature,
                choices: body.request.choices,
            },
            ChatCall::Responses(call) => Responses::sampling(call),
        }
    }

    async fn passthrough<'a>(
        request: &'a ChatCall,
        call: &'a Call<'a>,
        target: Target<'a>,
    ) -> Result<Answer, Failure> {
        match request {
            ChatCall::Chat(body) if !takes_neutral_path(body, call) => {
                same_protocol(call, target, body).await
            }
            _ => Box::pin(pipeline::translated::<Self>(request, call, target)).await,
        }
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
        temperature: request.temperature,
        choices: request.choices,
    }
}

/// Whether `body` has no `messages` but an `input`: an Open Responses body.
fn is_responses_body(body: &[u8]) -> bool {
    let Ok(members) = llmux_protocol::json_scan::members(body) else {
        return false;
    };
    let find = |key| llmux_protocol::json_scan::find(body, &members, key).is_some();
    find("input") && !find("messages")
}

/// Whether a chat request for an OpenAI-compatible vendor must go through the neutral model:
/// it has media URLs the gateway downloads (or download headers to strip). Only requests with
/// media parts are decoded to find out.
fn takes_neutral_path(body: &ChatBody, call: &Call<'_>) -> bool {
    let needs = &body.request.needs;
    if !(needs.image || needs.media) {
        return false;
    }
    openai_chat::decode_neutral_request(&body.bytes).is_ok_and(|request| {
        crate::media::needs_neutral_path(&request, call.snapshot.config.images.fetch)
    })
}

/// The stream encoder of the chat route: chat chunks, or Open Responses events.
pub enum ChatEncoder {
    /// Chat Completions chunks.
    Chunks(openai_chat::ChunkEncoder),
    /// Open Responses events (the quick start).
    Responses(Box<ResponsesClient>),
}

impl ClientEncoder for ChatEncoder {
    fn encode(&mut self, event: &neutral::StreamEvent, out: &mut BytesMut) {
        match self {
            Self::Chunks(e) => ClientEncoder::encode(e, event, out),
            Self::Responses(e) => e.encode(event, out),
        }
    }
    fn finish(&mut self, out: &mut BytesMut) {
        match self {
            Self::Chunks(e) => ClientEncoder::finish(e, out),
            Self::Responses(e) => e.finish(out),
        }
    }
    fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut BytesMut) {
        match self {
            Self::Chunks(e) => ClientEncoder::fail(e, kind, message, out),
            Self::Responses(e) => e.fail(kind, message, out),
        }
    }
}

impl Translate for Chat {
    type Encoder = ChatEncoder;

    fn neutral(request: &ChatCall) -> Result<neutral::Request, ApiError> {
        match request {
            ChatCall::Chat(body) => Ok(openai_chat::decode_neutral_request(&body.bytes)?),
            ChatCall::Responses(call) => Responses::neutral(call),
        }
    }

    fn encoder(request: &ChatCall, call: &Call<'_>, public_name: &str) -> Self::Encoder {
        let request = match request {
            ChatCall::Chat(body) => body,
            ChatCall::Responses(responses) => {
                return ChatEncoder::Responses(Box::new(Responses::encoder(
                    responses,
                    call,
                    public_name,
                )));
            }
        };
        ChatEncoder::Chunks(openai_chat::ChunkEncoder::new(
            unix_now(),
            request.request.model.as_deref().unwrap_or(public_name),
            request.request.client_wants_usage,
        ))
    }

    fn encode_whole(
        request: &ChatCall,
        answer: &neutral::Response,
        call: &Call<'_>,
        public_name: &str,
    ) -> Vec<u8> {
        let request = match request {
            ChatCall::Chat(body) => body,
            ChatCall::Responses(responses) => {
                return Responses::encode_whole(responses, answer, call, public_name);
            }
        };
        let client_model = request.request.model.as_deref().unwrap_or(public_name);
        openai_chat::encode_neutral_response(answer, client_model, unix_now())
    }
}

/// OpenAI client, OpenAI-compatible vendor: bytes in, bytes out, `model` swapped.
async fn same_protocol(
    call: &Call<'_>,
    target: Target<'_>,
    chat: &ChatBody,
) -> Result<Answer, Failure> {
    let (bytes, request) = (&chat.bytes[..], &chat.request);
    let snapshot = call.snapshot;
    let upstream_body = openai_chat::encode_upstream_request(bytes, target.upstream_model, request)
        .map_err(|_| ApiError::not_an_object())?;
    let client_model = json_string(request.model.as_deref().unwrap_or(target.public_name));
    let endpoint = snapshot.endpoint(&target)?;
    let started = Instant::now();
    let stream = request.needs.streaming;
    let response = call
        .send(
            &target,
            &endpoint.chat_url,
            &upstream_body,
            stream,
            &chat.client_headers,
        )
        .await?;
    if !stream {
        let body = proxy::read_json(call, &target, response, &client_model, started).await?;
        return Ok(Answer::Json(body));
    }
    let strategy = Rewrite::new(
        client_model,
        request.client_wants_usage,
        proxy::needs_tool_call_repair(&target),
    );
    let body = crate::pipeline::relay::open(call, &target, started, response, strategy).await?;
    Ok(Answer::Stream(body))
}

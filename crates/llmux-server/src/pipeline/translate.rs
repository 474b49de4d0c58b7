//! The cross-protocol path: a neutral request sent to a vendor in its own wire format, and its
//! answer (whole or streamed) decoded back into neutral form for the client's encoder.

use std::time::Instant;

use bytes::BytesMut;
use llmux_config::Api;
use llmux_protocol::error::ErrorKind;
use llmux_protocol::neutral::{self, DecodeError, Part, StreamEvent};
use llmux_protocol::usage::Usage;
use llmux_protocol::{anthropic, gemini, openai_chat, sse};
use llmux_router::Target;

use crate::api_error::ApiError;
use crate::pipeline::attempts::Failure;
use crate::pipeline::relay::{Step, Strategy};
use crate::state::{Gateway, Snapshot};
use crate::trace::facts::AnswerFacts;

/// A request's neutral form, decoded with it and kept for the first translated attempt; a later
/// attempt decodes the body again, so a large request is never held twice.
pub struct NeutralOnce(std::sync::Mutex<Option<neutral::Request>>);

impl NeutralOnce {
    /// Keeps `request` for the first attempt.
    pub fn new(request: neutral::Request) -> Self {
        Self(std::sync::Mutex::new(Some(request)))
    }

    /// The kept request the first time; `decode`'s after.
    pub fn take_or(
        &self,
        decode: impl FnOnce() -> Result<neutral::Request, ApiError>,
    ) -> Result<neutral::Request, ApiError> {
        let first = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        first.map_or_else(decode, Ok)
    }
}

/// Encodes `request` for the target's API, sends it, and turns vendor errors into client errors.
pub async fn send(
    gateway: &Gateway,
    snapshot: &Snapshot,
    target: &Target<'_>,
    request: &mut neutral::Request,
    trace: Option<&crate::trace::Context>,
) -> Result<llmux_upstream::Response, ApiError> {
    let endpoint = snapshot.endpoint(target)?;
    request.model = target.upstream_model.to_owned();
    crate::media::prepare(gateway, snapshot, target, request).await?;
    let (url, body) = match endpoint.api {
        Api::OpenAi => (
            endpoint.chat_url.clone(),
            openai_chat::encode_neutral_request(request),
        ),
        Api::Anthropic => (
            endpoint.messages_url.clone(),
            anthropic::encode_request(request, snapshot.config.limits.default_max_tokens),
        ),
        Api::Gemini => {
            let url = endpoint
                .gemini_url(&request.model, request.stream)
                .map_err(|e| ApiError::new(e.kind(), e.to_string()))?;
            let body = gemini::encode_request(request)
                .map_err(|e| ApiError::new(ErrorKind::InvalidRequest, e.0))?;
            (url, body)
        }
    };
    crate::egress::send::send(snapshot, target, &url, &body, request.stream, trace).await
}

/// Reads and decodes a whole (non-streamed) vendor answer.
pub async fn read_response(
    gateway: &Gateway,
    snapshot: &Snapshot,
    target: &Target<'_>,
    mut response: llmux_upstream::Response,
    started: Instant,
) -> Result<neutral::Response, ApiError> {
    let body = crate::egress::answer::read_whole(snapshot, target, &mut response).await?;
    let seed = id_seed();
    let decoded = match target.credential.api {
        Api::OpenAi => openai_chat::decode_neutral_response(&body, seed),
        Api::Anthropic => anthropic::decode_response(&body),
        Api::Gemini => gemini::decode_response(&body, seed),
    }
    .map_err(|e| {
        ApiError::new(
            ErrorKind::UpstreamProtocol,
            format!("upstream answer could not be read: {e}"),
        )
    })?;
    let series = crate::series::of(snapshot, target);
    series.observe_upstream(&gateway.metrics, started.elapsed().as_secs_f64());
    series.add_neutral_usage(&gateway.metrics, decoded.usage);
    Ok(decoded)
}

/// A fresh seed for ids synthesized in one answer.
pub fn id_seed() -> u64 {
    fastrand::u64(..)
}

/// Decodes one vendor's stream events into neutral events.
pub enum VendorStream {
    /// OpenAI-compatible chunks.
    OpenAi(openai_chat::ChunkDecoder),
    /// Anthropic Messages events.
    Anthropic(anthropic::StreamDecoder),
    /// Gemini `streamGenerateContent?alt=sse`.
    Gemini(gemini::StreamDecoder),
}

impl VendorStream {
    pub fn for_api(api: Api) -> Self {
        match api {
            Api::OpenAi => Self::OpenAi(openai_chat::ChunkDecoder::new(id_seed())),
            Api::Anthropic => Self::Anthropic(anthropic::StreamDecoder::default()),
            Api::Gemini => Self::Gemini(gemini::StreamDecoder::new(id_seed())),
        }
    }

    fn decode(&mut self, event: &sse::Event) -> Result<Vec<StreamEvent>, DecodeError> {
        match self {
            Self::OpenAi(d) => d.decode(event),
            Self::Anthropic(d) => d.decode(event),
            Self::Gemini(d) => d.decode(event),
        }
    }
}

/// Encodes neutral events into the client's protocol.
pub trait ClientEncoder: Send + 'static {
    /// Appends the bytes for one event.
    fn encode(&mut self, event: &StreamEvent, out: &mut BytesMut);
    /// Ends a stream that finished normally.
    fn finish(&mut self, out: &mut BytesMut);
    /// Ends a stream with an error.
    fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut BytesMut);
    /// Same-protocol relays write the vendor's event themselves (returning true); the neutral
    /// events decoded from it are then used only for bookkeeping (usage, finish, errors).
    fn passthrough(&mut self, _event: &sse::Event, _out: &mut BytesMut) -> bool {
        false
    }
}

/// The protocol crate's stream encoders, which share the shape `encode`/`finish`/`fail`, as
/// client encoders (one impl each, written once).
macro_rules! client_encoder {
    ($($encoder:ty),+) => {$(
        impl ClientEncoder for $encoder {
            fn encode(&mut self, event: &StreamEvent, out: &mut BytesMut) {
                <$encoder>::encode(self, event, out);
            }
            fn finish(&mut self, out: &mut BytesMut) {
                <$encoder>::finish(self, out);
            }
            fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut BytesMut) {
                <$encoder>::fail(self, kind, message, out);
            }
        }
    )+};
}

client_encoder!(
    openai_chat::ChunkEncoder,
    anthropic::StreamEncoder,
    gemini::ingress::StreamEncoder
);

/// The translation strategy: each vendor event decoded into neutral events and encoded in the
/// client's protocol (or, for a same-protocol passthrough encoder, forwarded as received and
/// decoded only for bookkeeping). The stream ends well-formed: finish, or an error event.
pub struct Translation<E> {
    vendor: VendorStream,
    encoder: E,
    saw_finish: bool,
    usage: Option<neutral::Usage>,
    /// The response cache's copy of the events, on a cache miss.
    recorder: Option<crate::pipeline::cache::Recorder>,
}

impl<E: ClientEncoder> Translation<E> {
    /// Decodes `api`'s stream events and encodes them with `encoder`.
    pub fn new(api: Api, encoder: E) -> Self {
        Self {
            vendor: VendorStream::for_api(api),
            encoder,
            saw_finish: false,
            usage: None,
            recorder: None,
        }
    }

    /// Also records the neutral events into the response cache's `fill`.
    pub fn recording(mut self, fill: Option<&crate::pipeline::cache::Fill>) -> Self {
        self.recorder = fill.cloned().map(crate::pipeline::cache::Recorder::new);
        self
    }
}

impl<E: ClientEncoder> Strategy for Translation<E> {
    fn event(
        &mut self,
        event: &sse::Event,
        out: &mut BytesMut,
        _sent_content: bool,
        mut facts: Option<&mut AnswerFacts>,
    ) -> Step {
        let raw = self.encoder.passthrough(event, out);
        let events = match self.vendor.decode(event) {
            Ok(events) => events,
            Err(err) => {
                return Step::Fail(
                    ErrorKind::UpstreamProtocol,
                    format!("upstream stream could not be read: {err}"),
                );
            }
        };
        if let Some(recorder) = &mut self.recorder
            && !recorder.record(&events)
        {
            self.recorder = None;
        }
        let mut step = Step::Skip;
        for event in &events {
            match event {
                StreamEvent::Usage(usage) => self.usage = Some(*usage),
                StreamEvent::Finish { reason } => {
                    self.saw_finish = true;
                    if let Some(facts) = facts.as_deref_mut() {
                        facts.add_finish_reason(reason.openai());
                    }
                }
                StreamEvent::Start { id, model } => {
                    if let Some(facts) = facts.as_deref_mut() {
                        facts.start(id, model);
                    }
                    step = Step::Content;
                }
                StreamEvent::Error { kind, message } => {
                    let message = llmux_telemetry::mask::mask_secrets(message).into_owned();
                    return Step::Fail(*kind, format!("upstream stream error: {message}"));
                }
                StreamEvent::TextDelta { .. }
                | StreamEvent::ReasoningDelta { .. }
                | StreamEvent::ToolCallStart { .. }
                | StreamEvent::ToolCallDelta { .. } => step = Step::Content,
            }
            if !raw {
                self.encoder.encode(event, out);
            }
        }
        step
    }

    fn vendor_ended(&mut self, out: &mut BytesMut) -> Result<(), &'static str> {
        if self.saw_finish {
            self.encoder.finish(out);
            if let Some(recorder) = self.recorder.take() {
                recorder.finished();
            }
            Ok(())
        } else {
            Err("upstream stream ended before the answer finished")
        }
    }

    fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut BytesMut) {
        self.encoder.fail(kind, message, out);
    }

    fn usage(&self) -> Option<Usage> {
        self.usage.map(Usage::from)
    }
}

/// The capabilities a neutral request needs from a model (routing's capability filter).
pub fn needs(request: &neutral::Request) -> llmux_router::Needs {
    llmux_router::Needs {
        image: request
            .messages
            .iter()
            .flat_map(|m| &m.parts)
            .any(|p| matches!(p, Part::Image(_))),
        video: false,
        tools: !request.tools.is_empty(),
        streaming: request.stream,
    }
}

/// What one cross-protocol attempt produced: a whole answer, or a primed stream.
pub enum NeutralAnswer {
    /// The vendor's complete answer.
    Whole(neutral::Response),
    /// The client's stream, primed.
    Stream(axum::body::Body),
}

/// One attempt of a neutral request on `target`: send, then read the whole answer or prime the
/// stream (so a failure before content can still fail over).
pub async fn attempt<E: ClientEncoder>(
    call: &crate::pipeline::Call<'_>,
    target: &Target<'_>,
    mut request: neutral::Request,
    encoder: E,
) -> Result<NeutralAnswer, Failure> {
    let (gateway, snapshot) = (call.gateway, call.snapshot);
    let started = Instant::now();
    let response = send(gateway, snapshot, target, &mut request, call.trace).await?;
    if !request.stream {
        let answer = read_response(gateway, snapshot, target, response, started).await?;
        call.settle.done(target.upstream_model, answer.usage);
        return Ok(NeutralAnswer::Whole(answer));
    }
    let strategy = Translation::new(target.credential.api, encoder).recording(call.fill);
    let body = crate::pipeline::relay::open(call, target, started, response, strategy).await?;
    Ok(NeutralAnswer::Stream(body))
}

//! The cross-protocol path: a neutral request sent to a vendor in its own wire format, and its
//! answer (whole or streamed) decoded back into neutral form for the client's encoder.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use llmux_config::Api;
use llmux_protocol::error::{ErrorKind, GatewayError, VendorError};
use llmux_protocol::neutral::{self, DecodeError, ImageSource, Part, StreamEvent};
use llmux_protocol::{anthropic, gemini, openai_chat, sse};
use llmux_router::Target;
use llmux_telemetry::mask::scrub;

use crate::api_error::ApiError;
use crate::attempts::Failure;
use crate::relay::StreamContext;
use crate::state::{Gateway, Snapshot};
use crate::upstream_call::{read_body, retry_after, send_failure};

/// Downloads `http(s)` image URLs into inline data when the target needs it, within the
/// request's image budget (`images.max_per_request`, `images.max_total_bytes`).
async fn inline_images(
    gateway: &Gateway,
    snapshot: &Snapshot,
    request: &mut neutral::Request,
) -> Result<(), ApiError> {
    let settings = &snapshot.config.images;
    // Too many URLs is refused before anything is downloaded.
    let urls = request
        .messages
        .iter()
        .flat_map(|m| &m.parts)
        .filter(|part| {
            matches!(part, Part::Image(image) if matches!(&image.source,
                ImageSource::Url(url) if url.starts_with("http://") || url.starts_with("https://")))
        })
        .count();
    if urls > settings.max_per_request {
        return Err(ApiError::new(
            ErrorKind::InvalidRequest,
            format!(
                "at most {} image URLs can be fetched per request (images.max_per_request); this one has {urls}",
                settings.max_per_request
            ),
        ));
    }
    let mut budget = llmux_upstream::images::ImageBudget::new(settings);
    for message in &mut request.messages {
        for part in &mut message.parts {
            let Part::Image(image) = part else { continue };
            let ImageSource::Url(url) = &image.source else {
                continue;
            };
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                continue;
            }
            let image_data = gateway
                .images
                .fetch_within(url, &mut budget)
                .await
                .map_err(|e| ApiError::new(ErrorKind::InvalidRequest, e.to_string()))?;
            image.source = ImageSource::Base64 {
                media_type: image_data.media_type,
                data: base64_encode(&image_data.bytes),
            };
        }
    }
    Ok(())
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Encodes `request` for the target's API, sends it, and turns vendor errors into client errors.
pub async fn send(
    gateway: &Gateway,
    snapshot: &Snapshot,
    target: &Target<'_>,
    request: &mut neutral::Request,
) -> Result<llmux_upstream::Response, ApiError> {
    let endpoint = snapshot
        .endpoints
        .get(target.credential_index)
        .ok_or_else(|| ApiError::new(ErrorKind::Internal, "credential endpoint missing"))?;
    request.model = target.upstream_model.to_owned();
    if target.credential.fetch_images {
        inline_images(gateway, snapshot, request).await?;
    }
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
    send_raw(snapshot, target, endpoint, &url, body, request.stream).await
}

/// Sends an already-encoded body in `endpoint`'s protocol; a non-2xx answer is decoded with that
/// vendor's error codec into the client's error (with any Retry-After, for cooldowns).
pub async fn send_raw(
    snapshot: &Snapshot,
    target: &Target<'_>,
    endpoint: &llmux_upstream::Endpoint,
    url: &http::Uri,
    body: Vec<u8>,
    stream: bool,
) -> Result<llmux_upstream::Response, ApiError> {
    let vendor = target.credential.vendor.as_str();
    let mut response = endpoint
        .post_json(url, body, stream)
        .await
        .map_err(|e| send_failure(&e, vendor))?;
    if response.status().is_success() {
        return Ok(response);
    }
    let status = response.status().as_u16();
    let header_retry = retry_after(response.headers());
    let idle = Duration::from_millis(endpoint.timeouts.idle_ms);
    let body = read_body(&mut response, 64 * 1024, idle)
        .await
        .unwrap_or_default();
    let mut error = match endpoint.api {
        Api::Anthropic => anthropic::decode_error(status, &body),
        Api::Gemini => gemini::decode_error(status, &body),
        Api::OpenAi => {
            let parsed = llmux_protocol::error::decode_upstream_error(&body);
            VendorError {
                status,
                kind: ErrorKind::UpstreamStatus(status),
                error_type: parsed
                    .kind
                    .unwrap_or_else(|| ErrorKind::UpstreamStatus(status).openai_type().to_owned()),
                message: parsed.message.unwrap_or_default(),
                retry_after_secs: None,
            }
        }
    };
    error.retry_after_secs = error.retry_after_secs.or(header_retry);
    Err(vendor_failure(error, snapshot, vendor))
}

fn vendor_failure(error: VendorError, snapshot: &Snapshot, vendor: &str) -> ApiError {
    let secrets = snapshot.secret_refs();
    let message = if error.message.is_empty() {
        format!("upstream {vendor} returned {}", error.status)
    } else {
        format!(
            "upstream {vendor} returned {}: {}",
            error.status,
            scrub(&error.message, &secrets)
        )
    };
    tracing::warn!(vendor, status = error.status, message = %message, "upstream error");
    let mut gateway_error = GatewayError::new(ErrorKind::UpstreamStatus(error.status), message);
    gateway_error.type_override = Some(error.error_type);
    gateway_error.retry_after_secs = error.retry_after_secs;
    ApiError(Box::new(gateway_error))
}

/// Reads and decodes a whole (non-streamed) vendor answer.
pub async fn read_response(
    gateway: &Gateway,
    snapshot: &Snapshot,
    target: &Target<'_>,
    mut response: llmux_upstream::Response,
    started: Instant,
) -> Result<neutral::Response, ApiError> {
    let body = read_body(
        &mut response,
        snapshot.config.limits.max_upstream_body_bytes,
        crate::routes::idle(snapshot, target),
    )
    .await?;
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

impl ClientEncoder for openai_chat::ChunkEncoder {
    fn encode(&mut self, event: &StreamEvent, out: &mut BytesMut) {
        openai_chat::ChunkEncoder::encode(self, event, out);
    }
    fn finish(&mut self, out: &mut BytesMut) {
        openai_chat::ChunkEncoder::finish(self, out);
    }
    fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut BytesMut) {
        openai_chat::ChunkEncoder::fail(self, kind, message, out);
    }
}

/// A vendor stream in another protocol, converted event by event into the client's protocol;
/// it always ends well-formed (finish, or an error event). Primed like [`crate::relay::Relay`].
pub struct Translated<E> {
    upstream: llmux_upstream::Body,
    sse: sse::Decoder,
    vendor: VendorStream,
    encoder: E,
    idle: Duration,
    saw_finish: bool,
    sent_content: bool,
    done: bool,
    failure: Option<GatewayError>,
    usage: Option<neutral::Usage>,
    context: StreamContext,
}

impl<E: ClientEncoder> Translated<E> {
    /// A relay over `response`, a stream in `api`'s format.
    pub fn new(
        response: llmux_upstream::Response,
        api: Api,
        encoder: E,
        idle: Duration,
        context: StreamContext,
    ) -> Self {
        Self {
            upstream: response.into_body(),
            sse: crate::relay::event_decoder(&context.gateway),
            vendor: VendorStream::for_api(api),
            encoder,
            idle,
            saw_finish: false,
            sent_content: false,
            done: false,
            failure: None,
            usage: None,
            context,
        }
    }

    /// Reads until there is content to send; an upstream that fails first is a [`Failure`].
    pub async fn prime(mut self) -> Result<(Bytes, Self), Failure> {
        let first = self.next_output().await.unwrap_or_default();
        if !self.sent_content
            && let Some(error) = self.failure.take()
        {
            return Err(Failure::from(ApiError(Box::new(error))));
        }
        Ok((first, self))
    }

    /// The client's byte stream: `first` then the rest as it arrives.
    pub fn into_stream(
        self,
        first: Bytes,
    ) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static {
        let rest = futures_util::stream::unfold(self, |mut state| async move {
            let bytes = state.next_output().await?;
            Some((Ok(bytes), state))
        });
        futures_util::stream::once(async move { Ok(first) }).chain(rest)
    }

    async fn next_output(&mut self) -> Option<Bytes> {
        let mut out = BytesMut::new();
        while !self.done {
            match tokio::time::timeout(self.idle, self.upstream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    self.sse.push(&chunk);
                    self.drain(&mut out);
                    if let Some(error) = self.sse.error()
                        && !self.done
                    {
                        self.fail(&mut out, error.kind(), &format!("upstream stream: {error}"));
                    }
                }
                Ok(None) => {
                    self.sse.finish();
                    self.drain(&mut out);
                    if !self.done {
                        if self.saw_finish {
                            self.encoder.finish(&mut out);
                            self.end(None);
                        } else {
                            self.fail(
                                &mut out,
                                ErrorKind::UpstreamProtocol,
                                "upstream stream ended before the answer finished",
                            );
                        }
                    }
                }
                Ok(Some(Err(_))) => self.fail(
                    &mut out,
                    ErrorKind::UpstreamUnreachable,
                    "upstream connection failed mid-stream",
                ),
                Err(_) => {
                    let message = format!("upstream sent nothing for {} ms", self.idle.as_millis());
                    self.fail(&mut out, ErrorKind::UpstreamTimeout, &message);
                }
            }
            // The first event commits the stream (as on the same-protocol path): errors a vendor
            // sends instead of a stream (Anthropic's overloaded_error arrives first) still fail
            // over, and nothing waits for content to reach the client.
            if !out.is_empty() {
                return Some(out.freeze());
            }
        }
        (!out.is_empty()).then(|| out.freeze())
    }

    fn drain(&mut self, out: &mut BytesMut) {
        while !self.done
            && let Some(event) = self.sse.next_event()
        {
            let raw = self.encoder.passthrough(&event, out);
            match self.vendor.decode(&event) {
                Ok(events) => {
                    for event in &events {
                        match event {
                            StreamEvent::Usage(usage) => self.usage = Some(*usage),
                            StreamEvent::Finish { .. } => self.saw_finish = true,
                            StreamEvent::Error { kind, message } => {
                                let message =
                                    llmux_telemetry::mask::mask_secrets(message).into_owned();
                                self.fail(out, *kind, &format!("upstream stream error: {message}"));
                                return;
                            }
                            StreamEvent::TextDelta { .. }
                            | StreamEvent::ReasoningDelta { .. }
                            | StreamEvent::ToolCallStart { .. }
                            | StreamEvent::ToolCallDelta { .. } => self.sent_content = true,
                            StreamEvent::Start { .. } => self.sent_content = true,
                        }
                        if !raw {
                            self.encoder.encode(event, out);
                        }
                    }
                }
                Err(err) => {
                    let message = format!("upstream stream could not be read: {err}");
                    self.fail(out, ErrorKind::UpstreamProtocol, &message);
                }
            }
        }
    }

    fn fail(&mut self, out: &mut BytesMut, kind: ErrorKind, message: &str) {
        tracing::warn!(
            vendor = self.context.series.vendor(),
            message,
            "stream ended with an error"
        );
        self.encoder.fail(kind, message, out);
        self.failure = Some(GatewayError::new(kind, message));
        self.end(Some(kind));
    }

    fn end(&mut self, failure: Option<ErrorKind>) {
        if self.done {
            return;
        }
        self.done = true;
        let answered = self.sent_content || failure.is_none();
        let failure = failure.filter(|_| self.sent_content);
        self.context
            .record_end_neutral(self.usage, failure, answered);
    }
}

impl<E> Drop for Translated<E> {
    fn drop(&mut self) {
        if !self.done {
            self.context.record_cancel();
        }
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
pub enum NeutralAnswer<E> {
    /// The vendor's complete answer.
    Whole(neutral::Response),
    /// The first bytes for the client and the relay for the rest.
    Stream(Bytes, Box<Translated<E>>),
}

/// One attempt of a neutral request on `target`: send, then read the whole answer or prime the
/// stream (so a failure before content can still fail over).
#[allow(
    clippy::too_many_arguments,
    reason = "one attempt needs the request, its target, the client's encoder and the request's bookkeeping"
)]
pub async fn attempt<E: ClientEncoder>(
    gateway: &Arc<Gateway>,
    snapshot: &Snapshot,
    target: &Target<'_>,
    mut request: neutral::Request,
    encoder: E,
    route: &'static str,
    request_id: String,
    settle: crate::governance::Settle,
) -> Result<NeutralAnswer<E>, Failure> {
    let started = Instant::now();
    let response = send(gateway, snapshot, target, &mut request).await?;
    if !request.stream {
        let answer = read_response(gateway, snapshot, target, response, started).await?;
        settle.done(
            target.upstream_model,
            answer.usage.map(|u| (u.input_tokens, u.output_tokens)),
        );
        return Ok(NeutralAnswer::Whole(answer));
    }
    let context = StreamContext {
        gateway: gateway.clone(),
        series: crate::series::of(snapshot, target),
        route,
        started,
        request_id,
        health: crate::attempts::TargetHealth::of(snapshot, target),
        settle,
        upstream_model: target.upstream_model.to_owned(),
    };
    let relay = Translated::new(
        response,
        target.credential.api,
        encoder,
        crate::routes::idle(snapshot, target),
        context,
    );
    let (first, relay) = relay.prime().await?;
    Ok(NeutralAnswer::Stream(first, Box::new(relay)))
}

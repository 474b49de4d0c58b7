//! The same-protocol SSE relay: upstream OpenAI chunks out to the client as they arrive, with
//! `model` rewritten in every chunk, the usage-only chunk dropped when the client did not ask for
//! it (but counted), and a well-formed ending whatever the upstream does.
//!
//! A relay is *primed* before the response is committed to the client: it reads until it has
//! something to send. If the upstream fails before that (no byte, or only an error event), the
//! attempt loop can still fail over to another combination.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use llmux_protocol::error::{ErrorKind, GatewayError};
use llmux_protocol::openai_chat::repair::{self, ToolCallRepair};
use llmux_protocol::openai_chat::{rewrite_response, rewrite_response_seeing};
use llmux_protocol::sse::{self, DONE_FRAME};
use llmux_protocol::usage::Usage;
use llmux_telemetry::metrics::RouteLabels;

use crate::api_error::ApiError;
use crate::pipeline::attempts::{Failure, TargetHealth, failure_label};
use crate::series::Series;
use crate::state::Gateway;
use crate::trace::facts::AnswerFacts;

/// Labels, timing and health for what is recorded when a stream ends.
pub struct StreamContext {
    pub gateway: Arc<Gateway>,
    /// The target's metric series (and its vendor and model names).
    pub series: Arc<Series>,
    pub route: &'static str,
    pub started: Instant,
    pub request_id: String,
    pub health: Option<TargetHealth>,
    /// The caller's permit, settled with the stream's usage when it ends.
    pub settle: crate::governance::Settle,
    /// The model sent upstream (prices are per upstream model).
    pub upstream_model: String,
}

impl StreamContext {
    /// Records the end of a stream. `answered` is false when it failed before any content (the
    /// attempt loop then tries elsewhere, and the permit stays open for that attempt).
    /// `streamed` counts the content events sent: the output llmux charges when the vendor's
    /// usage never came.
    pub fn record_end(
        &self,
        usage: Option<Usage>,
        failure: Option<ErrorKind>,
        answered: bool,
        streamed: u64,
    ) {
        if answered {
            let tokens = usage.map(|u| u.to_neutral());
            self.settle
                .done_or_estimate(&self.upstream_model, tokens, streamed);
        }
        let metrics = &self.gateway.metrics;
        self.series
            .observe_upstream(metrics, self.started.elapsed().as_secs_f64());
        self.series.add_usage(metrics, usage);
        if let (Some(kind), Some(health)) = (failure, &self.health) {
            health.record_stream_failure(failure_label(kind));
        }
    }

    /// The client left mid-stream: the vendor was reached, so what was sent and `streamed`
    /// (content events) is charged as an estimate (or the usage, if it had arrived).
    pub fn record_cancel(&self, usage: Option<Usage>, streamed: u64) {
        self.gateway
            .metrics
            .client_cancellations
            .get_or_create(&RouteLabels { route: self.route })
            .inc();
        tracing::info!(request_id = %self.request_id, vendor = self.series.vendor(), "client closed the stream; upstream request cancelled");
        if let Some(health) = &self.health {
            health.release();
        }
        let tokens = usage.map(|u| u.to_neutral());
        self.settle
            .done_or_estimate(&self.upstream_model, tokens, streamed);
    }
}

/// A vendor stream relayed to the client through `strategy`, primed first (so a vendor that
/// fails before any content can still be failed over by the attempt loop), as the response
/// body. The one way every ingress and both strategies turn a vendor stream into an answer.
pub async fn open<S: Strategy>(
    call: &crate::pipeline::Call<'_>,
    target: &llmux_router::Target<'_>,
    started: Instant,
    response: llmux_upstream::Response,
    strategy: S,
) -> Result<axum::body::Body, Failure> {
    let context = StreamContext {
        gateway: Arc::clone(call.gateway),
        series: crate::series::of(call.snapshot, target),
        route: call.route,
        started,
        request_id: call.request_id.to_owned(),
        health: TargetHealth::of(call.snapshot, target),
        settle: call.settle.clone(),
        upstream_model: target.upstream_model.to_owned(),
    };
    let idle = crate::egress::answer::idle(call.snapshot, target);
    let recording = call.trace.is_some_and(|trace| trace.recording);
    let (first, relay) = Relay::new(response, strategy, idle, context)
        .noting_facts(recording)
        .prime()
        .await?;
    Ok(axum::body::Body::from_stream(relay.into_stream(first)))
}

/// An SSE decoder that refuses lines and events past `limits.max_upstream_event_bytes`.
pub fn event_decoder(gateway: &Gateway) -> sse::Decoder {
    let max = gateway
        .snapshot
        .load()
        .config
        .limits
        .max_upstream_event_bytes;
    sse::Decoder::with_limits(max, max)
}

/// What one vendor event meant, as a [`Strategy`] reports it.
pub enum Step {
    /// Nothing for the client (e.g. a usage chunk the client did not ask for).
    Skip,
    /// Bytes for the client were written.
    Content,
    /// The answer is complete; its last bytes were written.
    End,
    /// The vendor reported an error (or sent something unreadable).
    Fail(ErrorKind, String),
}

/// How vendor events become client output: the same-protocol byte rewrite ([`Rewrite`]) or
/// translation through the neutral model (`translate::Translate`).
pub trait Strategy: Send + 'static {
    /// Handles one vendor event, writing what the client gets to `out`. With `facts` (the
    /// request's trace is recorded), it also notes the answer's id and finish reasons there,
    /// from what it parsed anyway.
    fn event(
        &mut self,
        event: &sse::Event,
        out: &mut BytesMut,
        sent_content: bool,
        facts: Option<&mut AnswerFacts>,
    ) -> Step;
    /// The vendor's stream ended without an end event: `Ok` when the answer is complete anyway
    /// (its ending written to `out`), else why it is not.
    fn vendor_ended(&mut self, out: &mut BytesMut) -> Result<(), &'static str>;
    /// Writes the client's error ending.
    fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut BytesMut);
    /// The usage the vendor reported so far.
    fn usage(&self) -> Option<Usage>;
}

/// One relay for every stream: vendor bytes in, client bytes out as they arrive, through a
/// [`Strategy`]. It is *primed* before the response is committed: it reads until it has
/// something to send, so a vendor that fails before that can still be failed over. It always
/// ends the client's stream well-formed, records the outcome once, and, when dropped early
/// (the client left), cancels the upstream request and refunds the reservation.
pub struct Relay<S> {
    upstream: llmux_upstream::Body,
    decoder: sse::Decoder,
    strategy: S,
    idle: Duration,
    sent_content: bool,
    /// Content events sent to the client (llmux's own output count).
    streamed: u64,
    finished: bool,
    failure: Option<GatewayError>,
    /// The answer's facts for the request's trace, when it is recorded (boxed: the relay is
    /// part of every request's future, which the edge moves into its box).
    facts: Option<Box<AnswerFacts>>,
    context: StreamContext,
}

impl<S: Strategy> Relay<S> {
    /// A relay over an upstream SSE response.
    pub fn new(
        response: llmux_upstream::Response,
        strategy: S,
        idle: Duration,
        context: StreamContext,
    ) -> Self {
        Self {
            upstream: response.into_body(),
            decoder: event_decoder(&context.gateway),
            strategy,
            idle,
            sent_content: false,
            streamed: 0,
            finished: false,
            failure: None,
            facts: None,
            context,
        }
    }

    /// Gathers the answer's facts for the request's recorded trace.
    #[must_use]
    pub fn noting_facts(mut self, recording: bool) -> Self {
        self.facts = recording.then(Box::default);
        self
    }

    /// Reads until there is something to send. Fails (so the caller may retry elsewhere) when
    /// the upstream ends or errors before any content.
    pub async fn prime(mut self) -> Result<(Bytes, Self), Failure> {
        let first = self.next_output().await.unwrap_or_default();
        if !self.sent_content
            && let Some(error) = self.failure.take()
        {
            return Err(Failure::from(ApiError(Box::new(error))));
        }
        Ok((first, self))
    }

    /// The client's byte stream: `first` (from [`Relay::prime`]) then the rest as it arrives.
    pub fn into_stream(
        self,
        first: Bytes,
    ) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static {
        let rest = futures_util::stream::unfold(self, |mut relay| async move {
            let bytes = relay.next_output().await?;
            Some((Ok(bytes), relay))
        });
        futures_util::stream::once(async move { Ok(first) }).chain(rest)
    }

    /// The next bytes for the client, or `None` once the stream has ended.
    async fn next_output(&mut self) -> Option<Bytes> {
        let mut out = BytesMut::new();
        while !self.finished {
            match tokio::time::timeout(self.idle, self.upstream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    // The client's bytes are about the vendor's (a rewritten model name, or a
                    // translated event a little larger): reserved once, not grown per event, so
                    // the allocator does not move the buffer several times a chunk.
                    out.reserve(chunk.len() + chunk.len() / 2 + 64);
                    self.decoder.push(&chunk);
                    self.drain(&mut out);
                    if let Some(error) = self.decoder.error()
                        && !self.finished
                    {
                        // A line or event past `limits.max_upstream_event_bytes`: the vendor is
                        // broken or hostile, and the stream ends here rather than grow.
                        self.fail(&mut out, error.kind(), &format!("upstream stream: {error}"));
                    }
                }
                Ok(None) => {
                    self.decoder.finish();
                    self.drain(&mut out);
                    if !self.finished {
                        match self.strategy.vendor_ended(&mut out) {
                            Ok(()) => self.end(None),
                            Err(why) => self.fail(&mut out, ErrorKind::UpstreamProtocol, why),
                        }
                    }
                }
                Ok(Some(Err(_))) => {
                    self.fail(
                        &mut out,
                        ErrorKind::UpstreamUnreachable,
                        "upstream connection failed mid-stream",
                    );
                }
                Err(_) => {
                    let message = format!("upstream sent nothing for {} ms", self.idle.as_millis());
                    self.fail(&mut out, ErrorKind::UpstreamTimeout, &message);
                }
            }
            if !out.is_empty() {
                return Some(out.freeze());
            }
        }
        (!out.is_empty()).then(|| out.freeze())
    }

    fn drain(&mut self, out: &mut BytesMut) {
        while !self.finished
            && let Some(event) = self.decoder.next_event()
        {
            let before = out.len();
            match self
                .strategy
                .event(&event, out, self.sent_content, self.facts.as_deref_mut())
            {
                Step::Fail(kind, message) => {
                    // A vendor error event is never forwarded as it came (it may quote a
                    // credential): the client gets the scrubbed error ending instead.
                    out.truncate(before);
                    self.fail(out, kind, &message);
                }
                Step::Skip => {}
                Step::Content => {
                    self.sent_content = true;
                    self.streamed += 1;
                }
                Step::End => self.end(None),
            }
        }
    }

    fn fail(&mut self, out: &mut BytesMut, kind: ErrorKind, message: &str) {
        // Scrubbed like a non-stream vendor error: every credential value and key-shaped string.
        let snapshot = self.context.gateway.snapshot.load();
        let scrubbed = llmux_telemetry::mask::scrub(message, &snapshot.secret_refs());
        let message = scrubbed.as_str();
        tracing::warn!(request_id = %self.context.request_id, vendor = self.context.series.vendor(), message, "stream ended with an error");
        self.strategy.fail(kind, message, out);
        self.failure = Some(GatewayError::new(kind, message));
        self.end(Some(kind));
    }

    fn end(&mut self, failure: Option<ErrorKind>) {
        if self.finished {
            return;
        }
        self.finished = true;
        if let Some(facts) = self.facts.take() {
            self.context.settle.note_answer(*facts);
        }
        // A failure before any content is reported by the attempt loop instead.
        let answered = self.sent_content || failure.is_none();
        let failure = failure.filter(|_| self.sent_content);
        self.context
            .record_end(self.strategy.usage(), failure, answered, self.streamed);
    }
}

impl<S> Drop for Relay<S> {
    fn drop(&mut self) {
        if !self.finished {
            if let Some(facts) = self.facts.take() {
                self.context.settle.note_answer(*facts);
            }
            // Vendors report usage last: a stream cut short has none yet.
            self.context.record_cancel(None, self.streamed);
        }
    }
}

/// The same-protocol strategy for OpenAI-compatible streams: each chunk forwarded with `model`
/// rewritten, the usage-only chunk dropped when the client did not ask for it (but counted),
/// malformed tool calls repaired, and `[DONE]` as the end.
pub struct Rewrite {
    client_model: Vec<u8>,
    client_wants_usage: bool,
    usage: Option<Usage>,
    /// Tool-call repair for vendors that send malformed calls: from the start for vendors known
    /// to, else from the first chunk that shows the symptoms.
    repair: Option<ToolCallRepair>,
}

impl Rewrite {
    /// The strategy for one stream answered as `client_model`.
    pub fn new(client_model: Vec<u8>, client_wants_usage: bool, repair_tool_calls: bool) -> Self {
        Self {
            client_model,
            client_wants_usage,
            usage: None,
            repair: repair_tool_calls.then(|| ToolCallRepair::new(fastrand::u64(..))),
        }
    }

    /// The chunk with its tool calls repaired, when it needed it.
    fn repair(&mut self, chunk: &[u8]) -> Option<Vec<u8>> {
        if self.repair.is_none() && repair::shows_symptoms(chunk) {
            self.repair = Some(ToolCallRepair::new(fastrand::u64(..)));
        }
        let repair = self.repair.as_mut()?;
        if repair.concerns(chunk) {
            repair.chunk(chunk)
        } else {
            None
        }
    }
}

impl Strategy for Rewrite {
    fn event(
        &mut self,
        event: &sse::Event,
        out: &mut BytesMut,
        _sent_content: bool,
        facts: Option<&mut AnswerFacts>,
    ) -> Step {
        if event.is_done_marker() {
            out.extend_from_slice(DONE_FRAME);
            return Step::End;
        }
        let repaired = self.repair(&event.data);
        let data = repaired.as_deref().unwrap_or(&event.data);
        let rewritten = match facts {
            Some(facts) => rewrite_response_seeing(data, &self.client_model, |data, members| {
                facts.note_members(data, members);
            }),
            None => rewrite_response(data, &self.client_model),
        };
        if rewritten.usage.is_some() {
            self.usage = rewritten.usage;
        }
        if rewritten.is_error {
            // Before any content the attempt loop may retry elsewhere; after it, the stream
            // ends with this error, scrubbed by the relay (never the vendor's raw event).
            let message = llmux_protocol::error::decode_upstream_error(&event.data)
                .message
                .unwrap_or_else(|| "upstream stream error".into());
            let message = llmux_telemetry::mask::mask_secrets(&message).into_owned();
            return Step::Fail(
                ErrorKind::UpstreamStatus(502),
                format!("upstream stream error: {message}"),
            );
        }
        if rewritten.usage_only && !self.client_wants_usage {
            return Step::Skip;
        }
        sse::encode_event(out, event.name.as_deref(), &rewritten.body);
        Step::Content
    }

    fn vendor_ended(&mut self, _out: &mut BytesMut) -> Result<(), &'static str> {
        Err("upstream stream ended before [DONE]")
    }

    fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut BytesMut) {
        let error = GatewayError::new(kind, message);
        sse::encode_event(out, None, &error.to_openai_json());
        out.extend_from_slice(DONE_FRAME);
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}

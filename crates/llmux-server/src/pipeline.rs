//! One request pipeline for every ingress: read → decode → route → admit → attempts → answer.
//!
//! An ingress (chat, responses, messages, embeddings) is a type implementing [`Ingress`]: it
//! decodes its body into the routing facts the pipeline needs, and knows how to run one attempt
//! on a target — the same-protocol byte path when the target speaks the ingress's own API
//! ([`Profile::passthrough`]), the neutral model otherwise ([`Translate`] provides the pieces and
//! [`translated`] runs them). [`serve`] runs the stages in the same order for all of them, so a
//! cross-cutting feature (a log record, a trace, a policy, a cache) is written once, here.
//!
//! Invariants: the snapshot is loaded once per request; the caller's reservation is settled
//! exactly once (by the attempt that answers, by the relay when a stream ends, or abandoned
//! here when no attempt could answer); errors are rendered in the ingress's envelope.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use llmux_config::Api;
use llmux_protocol::error::ErrorKind;
use llmux_protocol::neutral;
use llmux_router::{Endpoint, Needs, Target};

pub(crate) mod attempts;
pub(crate) mod cache;
pub(crate) mod relay;
pub(crate) mod translate;

use crate::api_error::ApiError;
use crate::body;
use crate::edge::envelope::Envelope;
use crate::edge::{Observed, Outcome, RequestId, Served};
use crate::egress::answer::{self, VendorParam};
use crate::egress::send::ClientHeaders;
use crate::governance::{self, Caller, Settle};
use crate::state::{Gateway, Snapshot};
use attempts::Failure;
use translate::{ClientEncoder, NeutralAnswer};

/// Why the routing policy chose the combination that answered.
const POLICY: http::HeaderName = http::HeaderName::from_static("x-llmux-policy");

/// What routing and admission need to know about a decoded request.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    /// The model (or public name) the client asked for.
    pub model: Option<&'a str>,
    /// A vendor named in the body (`provider`), used when `?vendor=` is absent.
    pub provider: Option<&'a str>,
    /// Capabilities the request needs from a model.
    pub needs: Needs,
    /// Tokens to reserve against the caller's limits (input estimate + output allowance).
    pub reserve_tokens: u64,
    /// Hosted tools the client offered that no vendor behind llmux runs (removed from the
    /// offer; named in `x-llmux-dropped-tools`, or refused with `compat.unsupported_tools`).
    pub dropped_tools: &'a [String],
}

impl<'a> Facts<'a> {
    /// The facts of a request for `model` that names no vendor and offered no hosted tools.
    pub const fn new(model: Option<&'a str>, needs: Needs, reserve_tokens: u64) -> Self {
        Self {
            model,
            provider: None,
            needs,
            reserve_tokens,
            dropped_tools: &[],
        }
    }

    /// With the vendor named in the body.
    pub const fn with_provider(self, provider: Option<&'a str>) -> Self {
        Self { provider, ..self }
    }

    /// With the hosted tools removed from the offer.
    pub const fn with_dropped_tools(self, dropped_tools: &'a [String]) -> Self {
        Self {
            dropped_tools,
            ..self
        }
    }
}

/// Tokens to reserve for a request: its `input` estimate and its `max_tokens` (or
/// [`DEFAULT_OUTPUT_RESERVATION`] when it sets none).
pub fn reservation(input: u64, max_tokens: Option<u32>) -> u64 {
    input + max_tokens.map_or(DEFAULT_OUTPUT_RESERVATION, u64::from)
}

/// The fallback group that answered, when the requested one could not.
const FALLBACK: http::HeaderName = http::HeaderName::from_static("x-llmux-fallback");

/// Names the hosted tools removed from the offer.
const DROPPED_TOOLS: http::HeaderName = http::HeaderName::from_static("x-llmux-dropped-tools");

/// What every attempt of one request shares.
pub struct Call<'a> {
    pub gateway: &'a Arc<Gateway>,
    pub snapshot: &'a Snapshot,
    /// The request id, for log lines of streams that outlive the handler.
    pub request_id: &'a str,
    /// The ingress's route label ([`Profile::route`]), for the metrics of its streams.
    pub route: &'static str,
    /// Settles the caller's reservation when the answer ends.
    pub settle: &'a Settle,
    /// Where the answer goes when the response cache missed (`None`: not cached).
    pub fill: Option<&'a cache::Fill>,
    /// The trace context vendors get in `traceparent` (`None`: tracing off and none from the
    /// client).
    pub trace: Option<&'a crate::trace::Context>,
}

impl Call<'_> {
    /// A byte path's whole answer with `model` set back to the client's name
    /// ([`rewrite_response`](llmux_protocol::openai_chat::rewrite_response)); a recorded trace
    /// notes the answer's id and finish reasons from the same scan.
    pub fn rewrite_answer(
        &self,
        body: &[u8],
        client_model: &[u8],
    ) -> llmux_protocol::openai_chat::Rewritten {
        use llmux_protocol::openai_chat::{rewrite_response, rewrite_response_seeing};
        match self.trace.filter(|trace| trace.recording) {
            Some(trace) => rewrite_response_seeing(body, client_model, |body, members| {
                trace.note_answer(crate::trace::facts::AnswerFacts::of_answer(
                    body,
                    members,
                    trace.one_choice(),
                ));
            }),
            None => rewrite_response(body, client_model),
        }
    }

    /// Sends a byte path's `body` to `url` on `target`'s credential, with the client headers
    /// that credential forwards and the request's trace context.
    pub async fn send(
        &self,
        target: &Target<'_>,
        url: &http::Uri,
        body: &[u8],
        stream: bool,
        client_headers: &ClientHeaders,
    ) -> Result<llmux_upstream::Response, ApiError> {
        let extra = client_headers.for_credential(target.credential);
        crate::egress::send::send_with(self.snapshot, target, url, body, stream, &extra, self.trace)
            .await
    }
}

/// What one successful attempt produced.
pub enum Answer {
    /// A whole JSON answer, ready for the client.
    Json(Vec<u8>),
    /// A primed `text/event-stream` body.
    Stream(Body),
}

impl Answer {
    fn into_response(self) -> Response {
        match self {
            Self::Json(body) => answer::json_response(body),
            Self::Stream(body) => sse_response(body),
        }
    }
}

/// What the pipeline knows of an ingress before it reads a body: one constant per ingress.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    /// The bounded label of this route in metrics and logs.
    pub route: &'static str,
    /// The API this ingress's clients speak: its error envelope is theirs.
    pub api: Api,
    /// The kind of model this API needs.
    pub endpoint: Endpoint,
    /// The vendor API that receives the client's bytes with only `model` changed (`api`);
    /// `None` when every vendor is reached through the neutral model.
    pub passthrough: Option<Api>,
}

impl Profile {
    /// An ingress of `api` for models of `endpoint`, whose vendors of the same API get the
    /// client's bytes.
    pub const fn new(route: &'static str, api: Api, endpoint: Endpoint) -> Self {
        Self {
            route,
            api,
            endpoint,
            passthrough: Some(api),
        }
    }

    /// The same ingress with every vendor reached through the neutral model.
    pub const fn neutral_only(self) -> Self {
        Self {
            passthrough: None,
            ..self
        }
    }

    /// The error format this API's clients read.
    pub const fn envelope(self) -> Envelope {
        Envelope::of(self.api)
    }
}

/// A request as the pipeline read it: what [`Ingress::decode`] decodes.
pub struct Received<'a> {
    /// The gateway: its stores, and the current snapshot (to read before any await).
    pub gateway: &'a Gateway,
    /// The request line and headers, with the extensions the edge set (the caller).
    pub head: &'a http::request::Parts,
    /// The whole body.
    pub bytes: Bytes,
}

impl Received<'_> {
    /// The client headers a byte path may forward: `defaults`, and the names some credential
    /// lists in `forward_headers` (see [`ClientHeaders`]).
    pub fn client_headers(&self, defaults: &[http::HeaderName]) -> ClientHeaders {
        let snapshot = self.gateway.snapshot.load();
        ClientHeaders::capture(&self.head.headers, defaults, &snapshot.forward_headers)
    }
}

/// A client-facing API served through the pipeline (implemented by a unit type per API).
pub trait Ingress: Send + Sync + 'static {
    /// The route label, client API and kind of model of this ingress.
    const PROFILE: Profile;

    /// A decoded request (holding the body when the byte path needs it).
    type Request: Send + Sync + 'static;

    /// Whether [`sampling`](Self::sampling) reads the trace's request parameters from the
    /// decoded request; otherwise the trace scans the body for them (a second pass over it,
    /// about 3,000 instructions for 1 KB).
    const SAMPLING_FROM_DECODE: bool = false;

    /// The request's output limit and temperature, when [`SAMPLING_FROM_DECODE`](Self::SAMPLING_FROM_DECODE).
    fn sampling(_request: &Self::Request) -> crate::trace::facts::RequestFacts {
        crate::trace::facts::RequestFacts::default()
    }

    /// Decodes the body (and anything it refers to, such as a stored conversation).
    fn decode(
        received: Received<'_>,
    ) -> impl Future<Output = Result<Self::Request, ApiError>> + Send;

    /// The routing facts of a decoded request.
    fn facts(request: &Self::Request) -> Facts<'_>;

    /// One attempt on a target that speaks [`Profile::passthrough`].
    fn passthrough<'a>(
        request: &'a Self::Request,
        call: &'a Call<'a>,
        target: Target<'a>,
    ) -> impl Future<Output = Result<Answer, Failure>> + Send + 'a;

    /// How this API's answers go through the response cache; `None` (the default): never
    /// cached. Ingresses with a neutral form return [`cache::Hooks::translated`].
    fn cache() -> Option<cache::Hooks<Self>>
    where
        Self: Sized,
    {
        None
    }

    /// The hosted tools removed from the offer on the attempt that answered on `target`
    /// (`translated`: it went through the neutral model): [`Facts::dropped_tools`] when
    /// translated; nothing on a byte path, which sends the client's body as it came.
    fn dropped_tools<'r>(
        request: &'r Self::Request,
        _target: &Target<'_>,
        translated: bool,
    ) -> &'r [String] {
        if translated {
            Self::facts(request).dropped_tools
        } else {
            &[]
        }
    }
}

/// How an ingress reaches a vendor of another API. An ingress with a neutral form has it from
/// [`Translate`] (the neutral model, [`translated`]); the others implement it themselves.
pub trait Crossing: Ingress {
    /// One attempt on a target with another protocol.
    fn translated<'a>(
        request: &'a Self::Request,
        call: &'a Call<'a>,
        target: Target<'a>,
    ) -> impl Future<Output = Result<Answer, Failure>> + Send + 'a;
}

impl<I: Translate> Crossing for I {
    fn translated<'a>(
        request: &'a I::Request,
        call: &'a Call<'a>,
        target: Target<'a>,
    ) -> impl Future<Output = Result<Answer, Failure>> + Send + 'a {
        translated::<I>(request, call, target)
    }
}

/// The pieces an ingress provides for the cross-protocol path.
pub trait Translate: Ingress {
    /// Encodes neutral stream events in this API's stream format.
    type Encoder: ClientEncoder;

    /// The request in the neutral model (each attempt gets its own copy: it may be changed on
    /// the way, e.g. image URLs inlined).
    fn neutral(request: &Self::Request) -> Result<neutral::Request, ApiError>;

    /// The stream encoder for one answer; `public_name` is the group that answers (the client's
    /// model name, when the request has none of its own).
    fn encoder(request: &Self::Request, call: &Call<'_>, public_name: &str) -> Self::Encoder;

    /// A whole neutral answer in this API's format.
    fn encode_whole(
        request: &Self::Request,
        answer: &neutral::Response,
        call: &Call<'_>,
        public_name: &str,
    ) -> Vec<u8>;

    /// Why `request` cannot reach `target` through the neutral model, if it cannot (checked
    /// before each cross-protocol attempt); by default it always can.
    fn refusal(_request: &Self::Request, _target: &Target<'_>) -> Option<ApiError> {
        None
    }
}

/// Boxes the future `make` builds, building it in its box. `Box::pin(future)` builds the
/// future on the stack first and then copies all of it: a handler's future is 8–9 KiB (its
/// largest state), of which only the arguments are set before the first poll, and the copy
/// cost about 1,200 instructions per request (callgrind). Allocating first lets the compiler
/// write the arguments straight into the box.
#[inline(always)]
pub(crate) fn boxed_in_place<F: Future>(make: impl FnOnce() -> F) -> Pin<Box<F>> {
    Box::into_pin(Box::write(Box::new_uninit(), make()))
}

/// Serves one request of ingress `I`: called by the edge with the request's id and caller.
///
/// Inlined so that the edge's [`boxed_in_place`] builds this (several KiB) future directly in
/// its box: returned from an out-of-line call, it was built on the stack and copied, ~10,000
/// instructions per request.
#[inline(always)]
pub async fn serve<I: Crossing>(
    gateway: Arc<Gateway>,
    request_id: RequestId,
    caller: Caller,
    observed: Option<Observed>,
    request: Request,
) -> Served {
    let params = match VendorParam::of(request.uri()) {
        Ok(params) => params,
        Err(rejection) => return (rejection.into_response(), None),
    };
    let (head, body) = request.into_parts();
    match run::<I>(gateway, request_id, caller, observed, params, &head, body).await {
        Ok(served) => served,
        Err(error) => (I::PROFILE.envelope().render(error), None),
    }
}

async fn run<I: Crossing>(
    gateway: Arc<Gateway>,
    request_id: RequestId,
    caller: Caller,
    observed: Option<Observed>,
    params: VendorParam,
    head: &http::request::Parts,
    body: Body,
) -> Result<Served, ApiError> {
    let snapshot = gateway.snapshot.load_full();
    let bytes = body::read_request(body, &snapshot).await?;
    let observed = observed.as_ref();
    let draft = observed.and_then(|observed| observed.draft.clone());
    if let Some(draft) = &draft {
        draft.keep_body(&bytes);
        // The trace's request parameters, from a scan of the body unless the decode reads them.
        if let Some(trace) = &draft.trace
            && !I::SAMPLING_FROM_DECODE
        {
            trace.request(&bytes);
        }
    }
    let sent_bytes = bytes.len();
    let received = Received {
        gateway: &gateway,
        head,
        bytes,
    };
    let request = I::decode(received).await?;
    let facts = I::facts(&request);
    if I::SAMPLING_FROM_DECODE
        && let Some(trace) = draft.as_ref().and_then(|draft| draft.trace.as_ref())
    {
        trace.request_facts(I::sampling(&request));
    }
    if let Some(draft) = &draft {
        draft.with(|record| {
            record.requested_model = facts.model.unwrap_or_default().to_owned();
            record.stream = facts.needs.streaming;
        });
    }
    let vendor = params
        .vendor
        .as_deref()
        .filter(|v| !v.is_empty())
        .or(facts.provider)
        .map(|v| {
            // `google` names the Gemini vendor, unless a credential's platform is `google`.
            if snapshot.table.vendors().iter().any(|known| known == v) {
                v
            } else {
                llmux_router::vendor_alias(v)
            }
        });
    let query = llmux_router::Query {
        endpoint: I::PROFILE.endpoint,
        model: facts.model,
        vendor,
        needs: facts.needs,
    };
    let mut candidates = snapshot.table.candidates(&query)?;
    let settle = governance::admit(
        &gateway,
        &caller,
        facts.model,
        vendor,
        facts.reserve_tokens,
        &snapshot.config.pricing,
    )
    .await?;
    if let Some(draft) = &draft {
        settle.log_to(Arc::clone(draft));
    }
    // The input llmux charges if the vendor's usage never arrives.
    settle.sent(sent_bytes);
    let (cache, hit) =
        match cache::lookup::<I>(&gateway, &snapshot, head, &request, facts.model, &caller).await {
            cache::Lookup::Hit(cached) => (cache::Lookup::Off, Some(cached)),
            other => (other, None),
        };
    let call = Call {
        gateway: &gateway,
        snapshot: &snapshot,
        request_id: request_id.0.to_str().unwrap_or("-"),
        route: I::PROFILE.route,
        settle: &settle,
        fill: cache.fill(),
        trace: observed.and_then(|observed| observed.trace.as_deref()),
    };
    if let Some(cached) = hit {
        let draft = draft.as_deref();
        return Ok((
            cache::answer_hit::<I>(&request, &call, &facts, cached, draft),
            None,
        ));
    }
    let cache_header = cache.header();
    let request = &request;
    let call_ref = &call;
    let draft_ref = draft.as_deref();
    let deadline =
        attempts::clock_now() + std::time::Duration::from_millis(snapshot.config.timeouts.total_ms);
    let mut attempts_left = snapshot.config.reliability.max_attempts;
    // The groups this request went through: the one it named, then its fallbacks. Kept only
    // when fallback chains are configured; without them nothing here costs a lookup or an
    // allocation.
    let mut path: Vec<&str> = Vec::new();
    let routing = &snapshot.config.routing;
    let any_fallbacks = !(routing.fallbacks.is_empty()
        && routing.context_fallbacks.is_empty()
        && routing.content_fallbacks.is_empty());
    loop {
        let group = path.last().copied().or(facts.model);
        if path.is_empty()
            && let Some(model) = facts.model
            && any_fallbacks
        {
            path.push(model);
        }
        let unfit = match unfit_for_tools::<I>(request, &candidates, &snapshot.config.compat) {
            Ok(unfit) => unfit,
            Err(error) => {
                settle.abandon();
                return Err(error);
            }
        };
        let admitted = attempts::Admitted {
            allowed_vendors: governance::allowed_vendors(&caller),
            unfit: &unfit,
            max_attempts: attempts_left,
            deadline,
            retry_tried: !any_fallbacks || snapshot.table.next_fallback(&path, None).is_none(),
            policy: snapshot.table.policy_for(group),
            tokens: llmux_router::Tokens {
                input: facts.reserve_tokens,
                output: 0,
            },
            reserve_tokens: facts.reserve_tokens,
            settle: &settle,
        };
        let result = attempts::run(&gateway, &snapshot, candidates, &admitted, |target| {
            logged(draft_ref, &snapshot, target, move || {
                attempt::<I>(request, call_ref, target)
            })
        })
        .await;
        let exhausted = match result {
            Ok(committed) => {
                let fallback = (path.len() > 1).then(|| path.last().copied()).flatten();
                let translated = call.fill.is_some()
                    || I::PROFILE.passthrough != Some(committed.target.credential.api);
                let dropped = I::dropped_tools(request, &committed.target, translated);
                let (mut response, outcome) =
                    respond(committed, &snapshot, dropped, fallback, draft.as_deref());
                if let Some(value) = cache_header {
                    response.headers_mut().insert(cache::HEADER, value);
                }
                return Ok((response, Some(outcome)));
            }
            Err(exhausted) => exhausted,
        };
        // A group that could not serve (every combination failed, open or cooling down)
        // falls back to the next group of its chain; an error of a class with its own chain
        // (context window, content filter) goes there; any other error is the answer.
        attempts_left = attempts_left.saturating_sub(exhausted.attempts);
        let kind = exhausted.error.0.kind;
        let class = if kind.is_retryable() || kind == ErrorKind::NoCombination {
            None
        } else {
            Some(exhausted.error.0.class())
        };
        let next = match class {
            Some(llmux_router::ErrorClass::Other) => None,
            _ if !any_fallbacks => None,
            class => snapshot.table.next_fallback(&path, class),
        };
        let next_candidates = next
            .filter(|_| attempts_left > 0 && attempts::clock_now() < deadline)
            .and_then(|next| {
                let query = llmux_router::Query {
                    model: Some(next),
                    ..query
                };
                Some((next, snapshot.table.candidates(&query).ok()?))
            });
        let Some((next, next_candidates)) = next_candidates else {
            settle.abandon();
            let response = I::PROFILE.envelope().render(exhausted.error);
            return Ok(match &exhausted.target {
                Some(target) => answer::finish(response, &snapshot, target),
                None => (response, None),
            });
        };
        tracing::info!(
            request_id = call.request_id,
            from = group.unwrap_or("-"),
            to = next,
            class = class.map_or("exhausted", llmux_router::ErrorClass::as_str),
            "falling back to the next group"
        );
        path.push(next);
        candidates = next_candidates;
    }
}

/// The candidates `request` may not use under `compat.unsupported_tools: reject`: those that
/// would remove one of its hosted tools from the offer. Nothing is excluded in the default
/// `drop` mode (and nothing is allocated); when every candidate would drop a tool, the request
/// is refused, naming it.
fn unfit_for_tools<I: Ingress>(
    request: &I::Request,
    candidates: &llmux_router::Candidates<'_>,
    compat: &llmux_config::Compat,
) -> Result<Vec<usize>, ApiError> {
    let offered = I::facts(request).dropped_tools;
    if compat.unsupported_tools != llmux_config::UnsupportedTools::Reject || offered.is_empty() {
        return Ok(Vec::new());
    }
    let unfit: Vec<usize> = (0..candidates.len())
        .filter(|&position| {
            candidates.get(position).is_some_and(|target| {
                let translated = I::PROFILE.passthrough != Some(target.credential.api);
                !I::dropped_tools(request, &target, translated).is_empty()
            })
        })
        .collect();
    if unfit.len() < candidates.len() {
        return Ok(unfit);
    }
    let mut error = ApiError::new(
        ErrorKind::InvalidRequest,
        format!(
            "hosted tool '{}' is not supported by the vendors serving this model \
             (compat.unsupported_tools: reject)",
            offered[0]
        ),
    );
    error.0.param = Some("tools".into());
    Err(error)
}

/// The response for a committed attempt: routing headers, the outcome for the edge, the time
/// to first byte in the request log, dropped tools, the policy's reason and the fallback used.
fn respond(
    committed: attempts::Committed<'_, Answer>,
    snapshot: &Snapshot,
    dropped_tools: &[String],
    fallback: Option<&str>,
    draft: Option<&crate::request_log::Draft>,
) -> (Response, Outcome) {
    if let Some(draft) = draft {
        let ttfb = u32::try_from(committed.upstream_time.as_millis()).unwrap_or(u32::MAX);
        draft.with(|record| record.ttfb_ms = Some(ttfb));
    }
    let (mut response, outcome) = answer::finish_timed(
        committed.value.into_response(),
        snapshot,
        &committed.target,
        committed.upstream_time,
    );
    let headers = response.headers_mut();
    if !dropped_tools.is_empty()
        && let Ok(value) = http::HeaderValue::from_str(&dropped_tools.join(","))
    {
        headers.insert(DROPPED_TOOLS, value);
    }
    // The default policy's reason is always `even`: the header is left out for it (a header
    // costs ~400 instructions per request on the hot path).
    if committed.reason != "even" {
        headers.insert(POLICY, http::HeaderValue::from_static(committed.reason));
    }
    if let Some(group) = fallback
        && let Ok(value) = http::HeaderValue::from_str(group)
    {
        headers.insert(FALLBACK, value);
    }
    (response, outcome)
}

/// The attempt `start` makes, recorded in the request log (when on) with its target, status
/// and duration; an attempt dropped before it finished (the deadline, a client that left) is
/// recorded with status 0.
///
/// It takes a maker, not the attempt's future: a future passed by value (2.7 KiB for chat) is
/// copied into this one's state and again where it is awaited, ~600 instructions per attempt.
async fn logged<F>(
    draft: Option<&crate::request_log::Draft>,
    snapshot: &Snapshot,
    target: Target<'_>,
    start: impl FnOnce() -> F,
) -> Result<Answer, Failure>
where
    F: Future<Output = Result<Answer, Failure>>,
{
    let Some(draft) = draft else {
        return start().await;
    };
    /// The attempt while it runs; it ends once, when the attempt returns or is dropped.
    struct Record<'d, 't> {
        draft: &'d crate::request_log::Draft,
        /// The attempt's slot: the log's entry shares its series' names.
        snapshot: &'t Snapshot,
        target: Target<'t>,
        started: std::time::Instant,
        /// The attempt's span (id, start) when its trace is recorded.
        span: Option<(llmux_telemetry::otlp::SpanId, u64)>,
        ended: bool,
    }
    impl Record<'_, '_> {
        /// Ends the attempt with `status` (llmux's), the vendor's status when one arrived, the
        /// failure's label and the whole JSON answer, when there was one: its span and, when
        /// the log is on, its entry (with the names its series shares).
        fn end(
            &mut self,
            status: u16,
            vendor_status: Option<u16>,
            error: Option<std::borrow::Cow<'static, str>>,
            answer: Option<&[u8]>,
        ) {
            if std::mem::replace(&mut self.ended, true) {
                return;
            }
            let target = &self.target;
            let logs = self.draft.logs();
            if !logs && self.span.is_none() {
                return;
            }
            let series = crate::series::of(self.snapshot, target);
            if let (Some(trace), Some(span)) = (&self.draft.trace, self.span) {
                trace.end_attempt(
                    span,
                    target.credential.api,
                    &target.credential.vendor,
                    &target.credential.name,
                    target.upstream_model,
                    &series,
                    vendor_status,
                    error.as_deref(),
                    answer,
                );
            }
            if logs {
                let duration_ms =
                    u32::try_from(self.started.elapsed().as_millis()).unwrap_or(u32::MAX);
                let [vendor, credential, model] = series.names(target.upstream_model);
                self.draft.attempt(llmux_store::AttemptRecord {
                    vendor,
                    credential,
                    model,
                    status,
                    duration_ms,
                    error,
                });
            }
        }
    }
    impl Drop for Record<'_, '_> {
        fn drop(&mut self) {
            self.end(0, None, Some(std::borrow::Cow::Borrowed("cancelled")), None);
        }
    }
    let mut record = Record {
        draft,
        snapshot,
        target,
        started: std::time::Instant::now(),
        span: draft
            .trace
            .as_deref()
            .map(crate::trace::Draft::begin_attempt),
        ended: false,
    };
    let outcome = start().await;
    let (status, vendor_status, error) = match &outcome {
        Ok(_) => (200, Some(200), None),
        Err(failure) => {
            let kind = failure.error.0.kind;
            let vendor_status = match kind {
                ErrorKind::UpstreamStatus(status) => Some(status),
                _ => None,
            };
            (
                crate::api_error::status_of(kind).as_u16(),
                vendor_status,
                Some(std::borrow::Cow::Borrowed(
                    crate::pipeline::attempts::failure_label(kind),
                )),
            )
        }
    };
    let answer = match &outcome {
        Ok(Answer::Json(body)) => Some(&body[..]),
        _ => None,
    };
    record.end(status, vendor_status, error, answer);
    outcome
}

/// One attempt: the byte path when the target speaks the ingress's API, else translation.
async fn attempt<'a, I: Crossing>(
    request: &'a I::Request,
    call: &'a Call<'a>,
    target: Target<'a>,
) -> Result<Answer, Failure> {
    // The translated path's future (vendor encoding, image downloads, a neutral relay) is
    // several kilobytes: boxed, it is allocated only when used, instead of making every
    // request's future (moved into its box at the edge) that much larger to copy.
    // A cache miss takes the neutral path even to a vendor of the ingress's own protocol, so
    // the answer can be kept in its neutral form.
    if I::PROFILE.passthrough == Some(target.credential.api) && call.fill.is_none() {
        I::passthrough(request, call, target).await
    } else {
        boxed_in_place(|| I::translated(request, call, target)).await
    }
}

/// One cross-protocol attempt: the neutral request to the target's API, and the answer (or each
/// stream event) back in the ingress's format.
pub async fn translated<'a, I: Translate>(
    request: &'a I::Request,
    call: &'a Call<'a>,
    target: Target<'a>,
) -> Result<Answer, Failure> {
    if let Some(refusal) = I::refusal(request, &target) {
        return Err(Failure::from(refusal));
    }
    let neutral = I::neutral(request)?;
    let encoder = I::encoder(request, call, target.public_name);
    match translate::attempt(call, &target, neutral, encoder).await? {
        NeutralAnswer::Whole(answer) => {
            if let Some(fill) = call.fill {
                fill.keep(cache::Cached::Whole {
                    response: answer.clone(),
                });
            }
            Ok(Answer::Json(I::encode_whole(
                request,
                &answer,
                call,
                target.public_name,
            )))
        }
        NeutralAnswer::Stream(body) => Ok(Answer::Stream(body)),
    }
}

/// A 200 `text/event-stream` response around `body`.
pub fn sse_response(body: Body) -> Response {
    use http::{HeaderName, HeaderValue, header};
    /// Asks a buffering reverse proxy (nginx) in front of llmux to pass events on at once.
    const X_ACCEL_BUFFERING: HeaderName = HeaderName::from_static("x-accel-buffering");
    let mut out = Response::new(body);
    let headers = out.headers_mut();
    // Room for the stream's own headers, the routing headers and the edge's (eight on a plain
    // stream): an empty map holds six and grew on the way, ~1,600 instructions before the
    // stream's first byte.
    headers.reserve(STREAM_HEADERS);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(X_ACCEL_BUFFERING, HeaderValue::from_static("no"));
    out
}

/// The headers a stream's answer is sized for.
const STREAM_HEADERS: usize = 12;

/// Seconds since the Unix epoch (the `created` of answers).
pub use crate::clock::unix_secs as unix_now;

/// Output tokens reserved when a request sets no `max_tokens`.
pub const DEFAULT_OUTPUT_RESERVATION: u64 = 1024;

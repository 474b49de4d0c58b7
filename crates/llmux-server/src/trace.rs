//! A request's W3C trace context and, when tracing is on, what its trace needs beyond the
//! request log's record (attempt spans, request parameters, answer facts, captured content).
//!
//! Cost model: with tracing off and no client `traceparent` nothing here exists (the edge's one
//! header lookup finds nothing). With a client `traceparent` and tracing off, its value is passed
//! on to vendors as it came (llmux records no span the vendor's could hang from). With tracing
//! on, ids are made at the request's start, each attempt notes its span id and URL and writes
//! its span's bytes when it ends, and at the end the request's span is added and the bytes go
//! to the exporter's queue as one buffer ([`llmux_telemetry::otlp`]).

use std::sync::{Arc, Mutex, PoisonError};

use http::{HeaderName, HeaderValue};
use llmux_config::Api;
use llmux_telemetry::otlp::{
    AttemptTrace, RequestTrace, SpanId, TraceId, Tracer, client_span, client_span_attributes,
    server_span,
};

pub(crate) mod facts;

/// The W3C trace-context header.
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");

/// Tracing as configured: the exporter's handle, which traces are recorded and the content
/// policy.
#[derive(Debug, Clone)]
pub struct Tracing {
    /// Where traces go.
    pub tracer: Tracer,
    /// Which requests' traces are recorded.
    pub sampler: Sampler,
    /// Longest prompt/completion kept on a span, when `telemetry.capture_content` is on.
    pub capture_content: Option<usize>,
}

/// Which traces are recorded: OpenTelemetry's samplers (`OTEL_TRACES_SAMPLER`), decided once
/// per request at its start. An unrecorded request has no draft and no spans, only its trace
/// context: vendors still get a `traceparent` saying it was not sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sampler {
    /// A client's `traceparent` decides for its trace (its sampled flag), as the W3C and
    /// OpenTelemetry's default `parentbased_always_on` have it.
    pub parent_based: bool,
    /// The share of the other traces recorded, decided by the trace id (so every service that
    /// samples by ratio keeps or drops the same traces).
    pub ratio: llmux_config::SampleRatio,
}

impl Default for Sampler {
    fn default() -> Self {
        Self {
            parent_based: true,
            ratio: llmux_config::SampleRatio::ALL,
        }
    }
}

impl Sampler {
    /// `telemetry.sample_ratio` when set (parent-based); else `OTEL_TRACES_SAMPLER` and
    /// `OTEL_TRACES_SAMPLER_ARG` read through `env`; else record every trace a client did
    /// not mark unsampled. A sampler llmux does not know is an error, not a silent default.
    pub fn configured(
        telemetry: &llmux_config::Telemetry,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, String> {
        if let Some(ratio) = telemetry.sample_ratio {
            return Ok(Self {
                parent_based: true,
                ratio,
            });
        }
        let Some(name) = env("OTEL_TRACES_SAMPLER").filter(|n| !n.trim().is_empty()) else {
            return Ok(Self::default());
        };
        let argument = || match env("OTEL_TRACES_SAMPLER_ARG").filter(|a| !a.trim().is_empty()) {
            None => Ok(llmux_config::SampleRatio::ALL),
            Some(text) => llmux_config::SampleRatio::parse(&text).ok_or_else(|| {
                format!("OTEL_TRACES_SAMPLER_ARG '{text}' is not a number from 0 to 1")
            }),
        };
        let (parent_based, ratio) = match name.trim() {
            "always_on" => (false, llmux_config::SampleRatio::ALL),
            "always_off" => (false, llmux_config::SampleRatio::NONE),
            "traceidratio" => (false, argument()?),
            "parentbased_always_on" => (true, llmux_config::SampleRatio::ALL),
            "parentbased_always_off" => (true, llmux_config::SampleRatio::NONE),
            "parentbased_traceidratio" => (true, argument()?),
            other => {
                return Err(format!(
                    "OTEL_TRACES_SAMPLER '{other}' is not one of always_on, always_off, \
                     traceidratio, parentbased_always_on, parentbased_always_off, \
                     parentbased_traceidratio"
                ));
            }
        };
        Ok(Self {
            parent_based,
            ratio,
        })
    }

    /// Whether trace `trace_id` is recorded; `client_flags` are the trace flags of the
    /// client's `traceparent`, when it sent one.
    pub fn samples(&self, trace_id: &TraceId, client_flags: Option<u8>) -> bool {
        if let (true, Some(flags)) = (self.parent_based, client_flags) {
            return flags & 1 == 1;
        }
        // OpenTelemetry's TraceIdRatioBased: the id's last 56 bits (random in W3C trace ids,
        // level 2) below the ratio's share of 2^56.
        let per_million = u128::from(self.ratio.per_million());
        let threshold = (per_million << 56) / 1_000_000;
        let mut low = [0u8; 8];
        low[1..].copy_from_slice(&trace_id[9..16]);
        u128::from(u64::from_be_bytes(low)) < threshold
    }
}

/// One request's trace context.
#[derive(Debug)]
pub struct Context {
    /// The trace: the client's, or a fresh one.
    pub trace_id: TraceId,
    /// The request's server span when recording; the client's span otherwise.
    pub span_id: SpanId,
    /// The client's span, when it sent a valid `traceparent`.
    pub parent: Option<SpanId>,
    /// The client's trace flags (sampled = 1), or sampled.
    pub flags: u8,
    /// Whether llmux records spans for this request (tracing is on).
    pub recording: bool,
    /// Whether the request asked for one choice at most (noted with its parameters), so that
    /// an answer's finish reason is looked for at the end of its choices first.
    one_choice: std::sync::atomic::AtomicBool,
    /// The attempt running now (attempts of one request run one after another).
    attempt: Mutex<Attempt>,
}

/// What the running attempt noted for its span.
#[derive(Debug, Default)]
struct Attempt {
    span_id: SpanId,
    /// Where it was sent.
    url: Option<http::Uri>,
    /// Its whole answer's facts, when the path that read the answer noted them.
    answer: Option<facts::AnswerFacts>,
}

impl Context {
    /// The context of a request that sent `header` (its `traceparent`), when there is one to
    /// keep: tracing is on (`sampler`), or the client sent a valid header. An invalid header is
    /// ignored. The request is recorded when `sampler` samples it.
    pub fn at_request(
        header: Option<&HeaderValue>,
        sampler: Option<&Sampler>,
    ) -> Option<Arc<Self>> {
        let client = header.and_then(|v| parse(v.as_bytes()));
        let Some(sampler) = sampler else {
            // Tracing off: the client's context is passed on as it came.
            let (trace_id, parent, flags) = client?;
            return Some(Arc::new(Self::new(
                trace_id,
                parent,
                Some(parent),
                flags,
                false,
            )));
        };
        Some(Arc::new(match client {
            Some((trace_id, parent, flags)) => {
                if sampler.samples(&trace_id, Some(flags)) {
                    Self::new(trace_id, random_span_id(), Some(parent), flags | 1, true)
                } else {
                    // Not recorded: the client's context goes on unchanged.
                    Self::new(trace_id, parent, Some(parent), flags, false)
                }
            }
            None => {
                let trace_id = random_trace_id();
                let recording = sampler.samples(&trace_id, None);
                // Unrecorded, vendors still learn that this trace is not sampled.
                Self::new(
                    trace_id,
                    random_span_id(),
                    None,
                    u8::from(recording),
                    recording,
                )
            }
        }))
    }

    fn new(
        trace_id: TraceId,
        span_id: SpanId,
        parent: Option<SpanId>,
        flags: u8,
        recording: bool,
    ) -> Self {
        Self {
            trace_id,
            span_id,
            parent,
            flags,
            recording,
            one_choice: std::sync::atomic::AtomicBool::new(false),
            attempt: Mutex::default(),
        }
    }

    /// Whether the request asked for one choice at most (false until its parameters are noted).
    pub(crate) fn one_choice(&self) -> bool {
        self.one_choice.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A new span id for the attempt about to start; vendors get it in `traceparent`.
    pub fn begin_attempt(&self) -> SpanId {
        let span_id = random_span_id();
        *self.attempt() = Attempt {
            span_id,
            ..Attempt::default()
        };
        span_id
    }

    /// The `traceparent` for a vendor request, noting `url` as the attempt's when recording.
    pub fn outgoing(&self, url: &http::Uri) -> Traceparent {
        let span = if self.recording {
            let mut attempt = self.attempt();
            attempt.url = Some(url.clone());
            attempt.span_id
        } else {
            self.span_id
        };
        // `00-{trace id}-{span id}-{flags}`, written into a fixed buffer (no `String` grown
        // char by char), which the vendor request's head copies.
        let mut text = *b"00-00000000000000000000000000000000-0000000000000000-00";
        hex_into(&mut text[3..35], &self.trace_id);
        hex_into(&mut text[36..52], &span);
        hex_into(&mut text[53..55], &[self.flags]);
        Traceparent(text)
    }

    /// Notes the facts of the current attempt's whole answer, read by the path that scanned
    /// the answer anyway (the byte path's model rewrite), so the span does not scan it again.
    pub(crate) fn note_answer(&self, answer: facts::AnswerFacts) {
        self.attempt().answer = Some(answer);
    }

    /// The URL the current attempt sent to and the answer facts it noted, once.
    fn take_noted(&self) -> (Option<http::Uri>, Option<facts::AnswerFacts>) {
        let mut attempt = self.attempt();
        (attempt.url.take(), attempt.answer.take())
    }

    fn attempt(&self) -> std::sync::MutexGuard<'_, Attempt> {
        self.attempt.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A `traceparent` header value: `00-`, the trace id, the span id and the flags in lowercase hex.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traceparent([u8; 55]);

impl Traceparent {
    /// The value's bytes (visible ASCII, valid in a header).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The value as text.
    #[cfg(test)]
    pub fn as_str(&self) -> &str {
        // Only hex digits and dashes are ever written into it.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

/// What a recorded trace gathers while its request runs, besides the request log's record.
pub struct Draft {
    /// Where the trace goes (shared: a clone of the exporter's handle per request took and
    /// dropped six reference counts).
    pub tracing: Arc<Tracing>,
    /// The request's ids.
    pub context: Arc<Context>,
    /// `gen_ai.operation.name` and the route label.
    pub operation: &'static str,
    route: &'static str,
    start_unix_nanos: u64,
    facts: Mutex<Facts>,
}

/// Facts gathered on the way (filled by the pipeline).
#[derive(Default)]
struct Facts {
    /// The spans written so far (each attempt's, as it ended), as OTLP protobuf.
    spans: Vec<u8>,
    request: facts::RequestFacts,
    answer: facts::AnswerFacts,
    provider: Option<&'static str>,
    output: Option<String>,
}

impl Draft {
    /// A trace for a request on `route` that started now.
    pub fn start(tracing: Arc<Tracing>, context: Arc<Context>, route: &'static str) -> Self {
        Self {
            tracing,
            context,
            operation: operation(route),
            route,
            start_unix_nanos: unix_nanos(),
            facts: Mutex::default(),
        }
    }

    fn with(&self, change: impl FnOnce(&mut Facts)) {
        change(&mut self.facts.lock().unwrap_or_else(PoisonError::into_inner));
    }

    /// The request's parameters, read from its body.
    pub fn request(&self, body: &[u8]) {
        self.request_facts(facts::RequestFacts::scan(body));
    }

    /// The request's parameters, as the ingress's decode read them.
    pub fn request_facts(&self, request: facts::RequestFacts) {
        self.context
            .one_choice
            .store(request.one_choice(), std::sync::atomic::Ordering::Relaxed);
        self.with(|f| f.request = request);
    }

    /// An attempt starts: its span id (for `traceparent`) and start time.
    pub fn begin_attempt(&self) -> (SpanId, u64) {
        (self.context.begin_attempt(), unix_nanos())
    }

    /// An attempt through `series` ended with `status` (the vendor's HTTP status, when one
    /// arrived) or `error`; `answer` is its whole JSON answer, when it had one.
    #[allow(clippy::too_many_arguments)]
    pub fn end_attempt(
        &self,
        (span_id, start_unix_nanos): (SpanId, u64),
        api: Api,
        vendor: &str,
        credential: &str,
        model: &str,
        series: &crate::series::Series,
        status: Option<u16>,
        error: Option<&str>,
        answer: Option<&[u8]>,
    ) {
        let (url, noted) = self.context.take_noted();
        let mut attempt = AttemptTrace {
            trace_id: self.context.trace_id,
            parent_span_id: self.context.span_id,
            span_id,
            start_unix_nanos,
            end_unix_nanos: unix_nanos(),
            provider: provider(api),
            vendor,
            credential,
            model,
            url: url.as_ref(),
            status,
            error_type: error,
            fixed: None,
        };
        // The attributes fixed for the slot and URL are encoded once per slot.
        attempt.fixed = url.as_ref().and_then(|url| {
            series.client_span_attributes(url, || client_span_attributes(&attempt))
        });
        let answer_facts = noted.or_else(|| answer.map(facts::AnswerFacts::scan));
        let output = answer
            .zip(self.tracing.capture_content)
            .map(|(body, max)| capped(body, max));
        self.with(|f| {
            // One buffer holds the request's spans, taken at its first attempt.
            if f.spans.capacity() == 0 {
                f.spans = self.tracing.tracer.buffer();
            }
            client_span(&mut f.spans, &attempt);
            f.provider = Some(provider(api));
            if let Some(answer) = answer_facts {
                f.answer = answer;
            }
            if output.is_some() {
                f.output = output;
            }
        });
    }

    /// The facts of the streamed answer, gathered by its relay.
    pub(crate) fn note_stream_answer(&self, answer: facts::AnswerFacts) {
        self.with(|f| f.answer = answer);
    }

    /// Builds the trace from the finished `record` (and the request `body`, for content
    /// capture; `series`, the slot that answered, keeps the span's fixed parts) and hands it to
    /// the exporter.
    pub fn finish(
        &self,
        record: &llmux_store::RequestRecord,
        body: Option<&bytes::Bytes>,
        series: Option<&crate::series::Series>,
    ) {
        let mut facts =
            std::mem::take(&mut *self.facts.lock().unwrap_or_else(PoisonError::into_inner));
        let input_messages = self
            .tracing
            .capture_content
            .zip(body)
            .map(|(max, body)| capped(body, max));
        let mut reasons = [""; facts::MAX_REASONS];
        let reasons_len = facts.answer.finish_reasons().len();
        for (slot, reason) in reasons.iter_mut().zip(facts.answer.finish_reasons()) {
            *slot = reason;
        }
        let mut trace = RequestTrace {
            trace_id: self.context.trace_id,
            span_id: self.context.span_id,
            parent_span_id: self.context.parent,
            start_unix_nanos: self.start_unix_nanos,
            end_unix_nanos: unix_nanos(),
            operation: self.operation,
            route: self.route,
            request_id: &record.request_id,
            provider: facts.provider,
            request_model: &record.requested_model,
            // The answer names the client's model (llmux rewrites it); the vendor's model is
            // the upstream one, when the request got that far.
            response_model: record.upstream_model.as_deref().or(facts.answer.model()),
            max_tokens: facts.request.max_tokens,
            temperature: facts.request.temperature,
            input_tokens: record.input_tokens,
            output_tokens: record.output_tokens,
            finish_reasons: &reasons[..reasons_len],
            response_id: facts.answer.id(),
            stream: record.stream,
            status: record.status,
            error_type: record.error_kind.as_deref(),
            input_messages: input_messages.as_deref(),
            output_messages: facts.output.as_deref(),
            fixed: None,
        };
        trace.fixed = series.and_then(|series| series.server_span_fixed(&trace));
        let mut spans = std::mem::take(&mut facts.spans);
        if spans.capacity() == 0 {
            spans = self.tracing.tracer.buffer();
        }
        server_span(&mut spans, &trace);
        self.tracing.tracer.record(spans);
    }
}

/// `gen_ai.operation.name` of a route.
fn operation(route: &str) -> &'static str {
    match route {
        "embeddings" => "embeddings",
        "gemini" => "generate_content",
        "images_text" => "generate_content",
        _ => "chat",
    }
}

/// `gen_ai.provider.name` of a vendor API.
fn provider(api: Api) -> &'static str {
    match api {
        Api::OpenAi => "openai",
        Api::Anthropic => "anthropic",
        Api::Gemini => "gcp.gemini",
    }
}

/// Content as text, cut to `max` bytes at a character boundary, key-shaped strings masked.
fn capped(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(max.saturating_add(4))]);
    let masked = llmux_telemetry::mask::mask_secrets(&text);
    let mut end = masked.len().min(max);
    while !masked.is_char_boundary(end) {
        end -= 1;
    }
    masked[..end].to_owned()
}

fn unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn random_trace_id() -> TraceId {
    fastrand::u128(1..).to_be_bytes()
}

fn random_span_id() -> SpanId {
    fastrand::u64(1..).to_be_bytes()
}

/// Lower-case hex of `bytes` into `out`, two digits per byte, from a table of every byte's two
/// digits (half the instructions of computing each digit; every vendor request writes 25).
fn hex_into(out: &mut [u8], bytes: &[u8]) {
    const PAIRS: [[u8; 2]; 256] = {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut pairs = [[0; 2]; 256];
        let mut i = 0;
        while i < 256 {
            pairs[i] = [DIGITS[i >> 4], DIGITS[i & 0xf]];
            i += 1;
        }
        pairs
    };
    for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
        pair.copy_from_slice(&PAIRS[usize::from(*b)]);
    }
}

/// A valid `traceparent` (version `00`, or a later version read as `00`): trace id, parent
/// span id and flags. All-zero ids, upper-case hex and version `ff` are invalid.
pub fn parse(value: &[u8]) -> Option<(TraceId, SpanId, u8)> {
    if value.len() < 55 || (value.len() > 55 && value[0..2] == *b"00") {
        return None;
    }
    if value.len() > 55 && value[55] != b'-' {
        return None;
    }
    let [v0, v1, b'-'] = value[0..3] else {
        return None;
    };
    let version = unhex_byte(v0, v1)?;
    if version == 0xff || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let mut trace = [0u8; 16];
    for (i, out) in trace.iter_mut().enumerate() {
        *out = unhex_byte(value[3 + 2 * i], value[4 + 2 * i])?;
    }
    let mut span = [0u8; 8];
    for (i, out) in span.iter_mut().enumerate() {
        *out = unhex_byte(value[36 + 2 * i], value[37 + 2 * i])?;
    }
    let flags = unhex_byte(value[53], value[54])?;
    if trace == [0; 16] || span == [0; 8] {
        return None;
    }
    Some((trace, span, flags))
}

fn unhex_byte(high: u8, low: u8) -> Option<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(digit(high)? << 4 | digit(low)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_read_and_invalid_ones_are_ignored() {
        let (trace, span, flags) = parse(VALID.as_bytes()).unwrap();
        assert_eq!(trace[0], 0x4b);
        assert_eq!(span[7], 0xb7);
        assert_eq!(flags, 1);
        for bad in [
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "",
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad}");
        }
        // A later version may carry more fields.
        assert!(parse(b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x").is_some());
    }

    #[test]
    fn without_tracing_the_clients_traceparent_is_passed_on_as_it_came() {
        let header = HeaderValue::from_static(VALID);
        let context = Context::at_request(Some(&header), None).unwrap();
        let uri = http::Uri::from_static("http://vendor/v1/chat/completions");
        assert_eq!(context.outgoing(&uri).as_str(), VALID);
        assert!(Context::at_request(None, None).is_none());
    }

    #[test]
    fn with_tracing_each_attempt_has_its_own_span_in_the_clients_trace() {
        let header = HeaderValue::from_static(VALID);
        let context = Context::at_request(Some(&header), Some(&Sampler::default())).unwrap();
        let uri = http::Uri::from_static("http://vendor/v1/chat/completions");
        let first = context.begin_attempt();
        let sent = context.outgoing(&uri);
        let sent = sent.as_str();
        assert!(sent.starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"));
        assert!(sent.ends_with("-01"));
        let (_, span, _) = parse(sent.as_bytes()).unwrap();
        assert_eq!(span, first);
        assert_ne!(context.begin_attempt(), first);
    }

    fn sampler(parent_based: bool, ratio: f64) -> Sampler {
        Sampler {
            parent_based,
            ratio: llmux_config::SampleRatio::new(ratio).unwrap(),
        }
    }

    /// The share of random trace ids a ratio sampler keeps is the ratio, within five standard
    /// deviations; 0 keeps none and 1 keeps all.
    #[test]
    fn a_ratio_keeps_its_share_of_traces() {
        const N: u32 = 20_000;
        for ratio in [0.0, 0.01, 0.25, 0.5, 0.9, 1.0] {
            let sampler = sampler(false, ratio);
            let kept = (0..N)
                .filter(|_| sampler.samples(&random_trace_id(), None))
                .count();
            let share = kept as f64 / f64::from(N);
            let sigma = (ratio * (1.0 - ratio) / f64::from(N)).sqrt();
            assert!(
                (share - ratio).abs() <= 5.0 * sigma,
                "ratio {ratio}: kept {share}"
            );
        }
        // The decision is the trace id's: the same id, the same answer.
        let sampler = sampler(false, 0.5);
        let id = random_trace_id();
        assert!((0..100).all(|_| sampler.samples(&id, None) == sampler.samples(&id, None)));
    }

    /// The trace flags vendors get in `traceparent`.
    fn flags_sent(context: &Context) -> String {
        let uri = http::Uri::from_static("http://vendor/v1/chat/completions");
        context.outgoing(&uri).as_str()[53..].to_owned()
    }

    #[test]
    fn a_clients_sampled_flag_decides_for_its_trace_when_parent_based() {
        let unsampled =
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00");
        let sampled = HeaderValue::from_static(VALID);
        let uri = http::Uri::from_static("http://vendor/v1/chat/completions");
        let none = sampler(true, 0.0);
        let all = sampler(true, 1.0);
        let context = Context::at_request(Some(&unsampled), Some(&all)).unwrap();
        assert!(!context.recording);
        assert_eq!(
            context.outgoing(&uri).as_bytes(),
            unsampled.as_bytes(),
            "passed on as it came"
        );
        assert!(
            Context::at_request(Some(&sampled), Some(&none))
                .unwrap()
                .recording
        );
        // Without a parent, the ratio decides, and vendors learn the decision.
        let context = Context::at_request(None, Some(&none)).unwrap();
        assert!(!context.recording);
        assert_eq!(flags_sent(&context), "00");
        assert!(Context::at_request(None, Some(&all)).unwrap().recording);
        // Not parent-based: the ratio overrides the client's flag.
        let context = Context::at_request(Some(&unsampled), Some(&sampler(false, 1.0))).unwrap();
        assert!(context.recording);
        assert_eq!(flags_sent(&context), "01");
    }

    #[test]
    fn the_sampler_comes_from_the_file_then_the_standard_variables() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| (*v).to_owned())
            }
        };
        let plain = llmux_config::Telemetry::default();
        assert_eq!(
            Sampler::configured(&plain, vars(&[])),
            Ok(Sampler::default())
        );
        assert_eq!(
            Sampler::configured(
                &plain,
                vars(&[
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "0.125")
                ])
            ),
            Ok(sampler(false, 0.125))
        );
        assert_eq!(
            Sampler::configured(
                &plain,
                vars(&[("OTEL_TRACES_SAMPLER", "parentbased_always_off")])
            ),
            Ok(sampler(true, 0.0))
        );
        assert!(
            Sampler::configured(&plain, vars(&[("OTEL_TRACES_SAMPLER", "jaeger_remote")]))
                .unwrap_err()
                .contains("jaeger_remote")
        );
        assert!(
            Sampler::configured(
                &plain,
                vars(&[
                    ("OTEL_TRACES_SAMPLER", "traceidratio"),
                    ("OTEL_TRACES_SAMPLER_ARG", "2")
                ])
            )
            .is_err()
        );
        let file = llmux_config::Telemetry {
            sample_ratio: llmux_config::SampleRatio::new(0.5),
            ..llmux_config::Telemetry::default()
        };
        assert_eq!(
            Sampler::configured(&file, vars(&[("OTEL_TRACES_SAMPLER", "always_off")])),
            Ok(sampler(true, 0.5)),
            "the file wins"
        );
    }
}

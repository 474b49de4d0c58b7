//! The response cache stage (`cache:`): an exact cache of complete answers, shared by every
//! generation ingress.
//!
//! - **Key**: the request in the neutral model (messages, tools, sampling, response format…)
//!   with `model` set to the group the client named and the fields that do not change the answer
//!   cleared (`stream`, `user`), serialized and hashed (SHA-256), under the caller's scope
//!   (`cache.scope: key` — one virtual key's answers — or `global`). The same question asked
//!   through any ingress has the same key, so a cached answer serves every ingress.
//! - **Value**: the neutral answer: a whole [`neutral::Response`], or a stream's event sequence.
//!   A hit is encoded by the asking ingress (whole, or replayed as a stream with the same
//!   framing as a live one), with a fresh response id.
//! - **Filling**: on a miss, the request takes the translated path even to a vendor of its own
//!   protocol, so the answer passes through the neutral model and can be kept: a whole answer
//!   when it is read, a stream's events when the vendor ends it with a finish. Errors, cut
//!   streams and answers that stopped for a content filter or a model error are not kept.
//!   Storing happens in a background task; the client never waits for it.
//! - **Per request**: `Cache-Control: no-cache` skips the lookup but stores the answer;
//!   `no-store` skips both. The response carries `x-llmux-cache: hit|miss|bypass`.
//!
//! Invariant: with `cache.mode: off` (the default) and no group override, nothing here runs
//! beyond one config read: no decoding, no hashing.

use std::sync::Arc;

use bytes::BytesMut;
use llmux_config::{CacheMode, CacheScope};
use llmux_protocol::neutral::{self, FinishReason, Part, StreamEvent};
use llmux_store::AnswerCache;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::translate::ClientEncoder;
use super::{Answer, Call, Ingress, Translate};
use crate::governance::Caller;
use crate::state::{Gateway, Snapshot};

/// The response header naming the cache's decision.
pub const HEADER: http::HeaderName = http::HeaderName::from_static("x-llmux-cache");

/// Events recorded from one stream at most; a longer stream is not cached.
const MAX_RECORDED_EVENTS: usize = 100_000;

/// Text recorded from one stream at most (answer, reasoning and tool-call arguments), so a
/// vendor streaming without end cannot grow a recorder without bound; a longer stream is not
/// cached.
const MAX_RECORDED_BYTES: usize = 8 << 20;

/// A cached answer, as stored (JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Cached {
    /// A whole answer.
    Whole {
        /// The answer.
        response: neutral::Response,
    },
    /// A stream's events, in order, ending with its finish.
    Stream {
        /// The events.
        events: Vec<StreamEvent>,
    },
}

/// What the cache decided for one request.
pub enum Lookup {
    /// Caching is off for this request's group or ingress.
    Off,
    /// `Cache-Control: no-store`: no lookup, nothing stored.
    Bypass,
    /// Not found (or `no-cache`): the answer is to be stored.
    Miss(Fill),
    /// Found.
    Hit(Cached),
}

impl Lookup {
    /// The header value for the answer, when the cache was consulted.
    pub fn header(&self) -> Option<http::HeaderValue> {
        let value = match self {
            Self::Off => return None,
            Self::Bypass => "bypass",
            Self::Miss(_) => "miss",
            Self::Hit(_) => "hit",
        };
        Some(http::HeaderValue::from_static(value))
    }

    fn label(&self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Bypass => "bypass",
            Self::Miss(_) => "miss",
            Self::Hit(_) => "hit",
        }
    }

    /// The fill of a miss.
    pub fn fill(&self) -> Option<&Fill> {
        match self {
            Self::Miss(fill) => Some(fill),
            _ => None,
        }
    }
}

/// Where a miss's answer goes once it is complete.
#[derive(Clone)]
pub struct Fill {
    store: Arc<dyn AnswerCache>,
    key: Arc<str>,
    ttl_ms: u64,
}

impl Fill {
    /// Stores `answer` in the background if it is complete and not an error.
    pub fn keep(&self, answer: Cached) {
        if !answer.is_cacheable() {
            return;
        }
        let Ok(bytes) = serde_json::to_vec(&answer) else {
            return;
        };
        let (store, key, ttl_ms) = (Arc::clone(&self.store), Arc::clone(&self.key), self.ttl_ms);
        llmux_telemetry::spawn_tracked(async move {
            let now = crate::clock::unix_millis();
            if let Err(err) = store.put(&key, bytes.into(), ttl_ms, now).await {
                tracing::warn!(error = %err, "could not store an answer in the response cache");
            }
        });
    }
}

/// Records a stream's neutral events for the cache (the translation relay feeds it).
pub struct Recorder {
    fill: Fill,
    events: Vec<StreamEvent>,
    bytes: usize,
}

impl Recorder {
    /// A recorder storing into `fill`.
    pub fn new(fill: Fill) -> Self {
        Self {
            fill,
            events: Vec::new(),
            bytes: 0,
        }
    }

    /// Records `events`; false once the stream is too long to cache (stop recording).
    pub fn record(&mut self, events: &[StreamEvent]) -> bool {
        self.bytes += events.iter().map(text_len).sum::<usize>();
        if self.events.len() + events.len() > MAX_RECORDED_EVENTS || self.bytes > MAX_RECORDED_BYTES
        {
            self.events = Vec::new();
            return false;
        }
        self.events.extend_from_slice(events);
        true
    }

    /// The stream finished normally: keep it.
    pub fn finished(self) {
        self.fill.keep(Cached::Stream {
            events: self.events,
        });
    }
}

/// The text an event carries (what a long stream accumulates).
fn text_len(event: &StreamEvent) -> usize {
    match event {
        StreamEvent::Start { id, model } => id.len() + model.len(),
        StreamEvent::TextDelta { text } => text.len(),
        StreamEvent::ReasoningDelta {
            text, signature, ..
        } => text.len() + signature.as_ref().map_or(0, String::len),
        StreamEvent::ToolCallStart {
            id,
            name,
            signature,
            ..
        } => id.len() + name.len() + signature.as_ref().map_or(0, String::len),
        StreamEvent::ToolCallDelta { arguments, .. } => arguments.len(),
        StreamEvent::Error { message, .. } => message.len(),
        StreamEvent::Usage(_) | StreamEvent::Finish { .. } => 0,
    }
}

/// How an ingress's answers go through the cache; ingresses whose answers are cached return
/// [`Hooks::translated`] from [`Ingress::cache`].
pub struct Hooks<I: Ingress> {
    /// The request as the cache sees it (`None`: this request is never cached).
    pub view: fn(&I::Request) -> Option<neutral::Request>,
    /// A cached answer in the ingress's format.
    pub replay: for<'a> fn(&I::Request, &Call<'a>, &str, Cached, bool) -> Answer,
}

impl<I: Translate> Hooks<I> {
    /// The hooks of an ingress with a neutral form: its neutral request is the key, and its
    /// encoders replay the answer.
    pub fn translated() -> Self {
        Self {
            view: |request| I::neutral(request).ok(),
            replay: replay::<I>,
        }
    }
}

/// The response to a hit: the cached answer in the ingress's format (replayed as a stream when
/// the client streams), with `x-llmux-cache: hit`. No vendor is called and nothing is charged;
/// the request log shows the vendor `cache`.
pub fn answer_hit<I: Ingress>(
    request: &I::Request,
    call: &Call<'_>,
    facts: &super::Facts<'_>,
    cached: Cached,
    draft: Option<&crate::request_log::Draft>,
) -> axum::response::Response {
    let group = facts.model.unwrap_or_default();
    call.settle
        .done(group, Some(llmux_protocol::neutral::Usage::default()));
    let Some(hooks) = I::cache() else {
        // A hit is only ever found through the ingress's hooks.
        return I::PROFILE
            .envelope()
            .render(crate::api_error::ApiError::new(
                llmux_protocol::error::ErrorKind::Internal,
                "cached answer for an ingress without a cache",
            ));
    };
    if let Some(draft) = draft {
        draft.with(|record| {
            record.vendor = Some("cache".into());
            record.ttfb_ms = Some(0);
        });
    }
    let answer = (hooks.replay)(request, call, group, cached, facts.needs.streaming);
    let mut response = answer.into_response();
    response
        .headers_mut()
        .insert(HEADER, http::HeaderValue::from_static("hit"));
    response
}

/// Consults the cache for a request of ingress `I` to the group `group`.
pub async fn lookup<I: Ingress>(
    gateway: &Gateway,
    snapshot: &Snapshot,
    head: &http::request::Parts,
    request: &I::Request,
    group: Option<&str>,
    caller: &Caller,
) -> Lookup {
    let config = &snapshot.config;
    let Some(group) = group else {
        return Lookup::Off;
    };
    if config.cache_mode_for(group) == CacheMode::Off {
        return Lookup::Off;
    }
    let Some(hooks) = I::cache() else {
        return Lookup::Off;
    };
    let lookup = decide(gateway, snapshot, head, request, group, caller, &hooks).await;
    gateway
        .metrics
        .cache
        .get_or_create(&llmux_telemetry::metrics::CacheLabels {
            route: I::PROFILE.route,
            result: lookup.label(),
        })
        .inc();
    lookup
}

async fn decide<I: Ingress>(
    gateway: &Gateway,
    snapshot: &Snapshot,
    head: &http::request::Parts,
    request: &I::Request,
    group: &str,
    caller: &Caller,
    hooks: &Hooks<I>,
) -> Lookup {
    let (no_store, no_cache) = cache_control(&head.headers);
    // A hosted tool the neutral form cannot hold would be missing from the key, and a cache
    // miss takes the neutral path even to a vendor that runs the tool: such a request passes
    // the cache by.
    if no_store || !I::facts(request).dropped_tools.is_empty() {
        return Lookup::Bypass;
    }
    let Some(view) = (hooks.view)(request) else {
        return Lookup::Off;
    };
    let config = &snapshot.config.cache;
    let Some(store) = gateway.answer_cache(snapshot) else {
        return Lookup::Off;
    };
    let key = key(&view, group, config.scope, caller);
    if !no_cache {
        match store.get(&key, crate::clock::unix_millis()).await {
            Ok(Some(bytes)) => match serde_json::from_slice::<Cached>(&bytes) {
                Ok(cached) => return Lookup::Hit(cached),
                Err(err) => tracing::warn!(error = %err, "unreadable response cache entry"),
            },
            Ok(None) => {}
            // A cache that cannot be read is a miss: the vendor answers.
            Err(err) => tracing::warn!(error = %err, "response cache unavailable"),
        }
    }
    Lookup::Miss(Fill {
        store,
        key: key.into(),
        ttl_ms: config.ttl_seconds.saturating_mul(1000),
    })
}

/// `no-store` and `no-cache` in the request's `Cache-Control` headers.
fn cache_control(headers: &http::HeaderMap) -> (bool, bool) {
    let (mut no_store, mut no_cache) = (false, false);
    for value in headers.get_all(http::header::CACHE_CONTROL) {
        let Ok(value) = value.to_str() else { continue };
        for directive in value.split(',') {
            let directive = directive.trim();
            no_store |= directive.eq_ignore_ascii_case("no-store");
            no_cache |= directive.eq_ignore_ascii_case("no-cache");
        }
    }
    (no_store, no_cache)
}

/// The cache key of `request` to `group` for `caller`: a SHA-256 over the scope and the
/// normalized request, in hex.
fn key(request: &neutral::Request, group: &str, scope: CacheScope, caller: &Caller) -> String {
    let mut normalized = request.clone();
    normalized.model = group.to_owned();
    normalized.stream = false;
    normalized.user = None;
    let mut hasher = Sha256::new();
    match (scope, caller) {
        (CacheScope::Key, Caller::Key(record)) => {
            hasher.update(b"key\0");
            hasher.update(record.id.as_bytes());
        }
        (CacheScope::Key, Caller::Master) => hasher.update(b"master"),
        // Without authentication there is one caller; `global` shares across keys.
        (CacheScope::Key, Caller::Open) | (CacheScope::Global, _) => hasher.update(b"global"),
    }
    hasher.update(b"\0");
    // Serializing a neutral request cannot fail (no maps with non-string keys); an empty body
    // would only make every such request share one key, so fall back to not hashing it twice.
    hasher.update(serde_json::to_vec(&normalized).unwrap_or_default());
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(64);
    for byte in digest {
        use std::fmt::Write as _;
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// A cached answer in ingress `I`'s format: whole, or replayed as a stream.
fn replay<I: Translate>(
    request: &I::Request,
    call: &Call<'_>,
    public_name: &str,
    cached: Cached,
    stream: bool,
) -> Answer {
    let id = fresh_id();
    if stream {
        let mut encoder = I::encoder(request, call, public_name);
        let mut out = BytesMut::new();
        for event in cached.into_events(id) {
            encoder.encode(&event, &mut out);
        }
        encoder.finish(&mut out);
        Answer::Stream(axum::body::Body::from(out.freeze()))
    } else {
        let response = cached.into_response(id);
        Answer::Json(I::encode_whole(request, &response, call, public_name))
    }
}

/// A new response id for a replayed answer (the cached one belongs to the first answer).
fn fresh_id() -> String {
    format!("cache-{:016x}{:08x}", fastrand::u64(..), fastrand::u32(..))
}

impl Cached {
    /// Errors and incomplete answers are never kept.
    fn is_cacheable(&self) -> bool {
        let complete = |reason: &FinishReason| {
            matches!(
                reason,
                FinishReason::Stop | FinishReason::Length | FinishReason::ToolCalls
            )
        };
        match self {
            Self::Whole { response } => complete(&response.finish),
            Self::Stream { events } => {
                !events
                    .iter()
                    .any(|e| matches!(e, StreamEvent::Error { .. }))
                    && events.iter().rev().find_map(|e| match e {
                        StreamEvent::Finish { reason } => Some(complete(reason)),
                        _ => None,
                    }) == Some(true)
            }
        }
    }

    /// The answer as stream events, starting with `id`.
    fn into_events(self, id: String) -> Vec<StreamEvent> {
        match self {
            Self::Stream { mut events } => {
                let mut started = false;
                for event in &mut events {
                    if let StreamEvent::Start { id: old, .. } = event {
                        *old = id.clone();
                        started = true;
                    }
                }
                if !started {
                    events.insert(
                        0,
                        StreamEvent::Start {
                            id,
                            model: String::new(),
                        },
                    );
                }
                events
            }
            Self::Whole { response } => events_of(response, id),
        }
    }

    /// The answer as a whole response with `id`.
    fn into_response(self, id: String) -> neutral::Response {
        match self {
            Self::Whole { mut response } => {
                response.id = id;
                response
            }
            Self::Stream { events } => {
                let mut response = response_of(events);
                response.id = id;
                response
            }
        }
    }
}

/// The events a vendor would have streamed for `response`.
fn events_of(response: neutral::Response, id: String) -> Vec<StreamEvent> {
    let mut events = vec![StreamEvent::Start {
        id,
        model: response.model,
    }];
    let mut calls = 0;
    for part in response.parts {
        match part {
            Part::Text { text } => events.push(StreamEvent::TextDelta { text }),
            Part::Reasoning(reasoning) => events.push(StreamEvent::ReasoningDelta {
                text: reasoning.text,
                signature: reasoning.signature,
                origin: reasoning.origin,
            }),
            Part::ToolCall(call) => {
                events.push(StreamEvent::ToolCallStart {
                    index: calls,
                    id: call.id,
                    name: call.name,
                    signature: call.signature,
                });
                events.push(StreamEvent::ToolCallDelta {
                    index: calls,
                    arguments: call.arguments,
                });
                calls += 1;
            }
            // Answers hold no images, files or tool results.
            Part::Image(_) | Part::ToolResult(_) | Part::File(_) => {}
        }
    }
    if let Some(usage) = response.usage {
        events.push(StreamEvent::Usage(usage));
    }
    events.push(StreamEvent::Finish {
        reason: response.finish,
    });
    events
}

/// The whole answer a stream's events add up to.
fn response_of(events: Vec<StreamEvent>) -> neutral::Response {
    let mut response = neutral::Response::default();
    // Tool calls by their stream index, in order of appearance.
    let mut calls: Vec<(usize, usize)> = Vec::new();
    for event in events {
        match event {
            StreamEvent::Start { model, .. } => response.model = model,
            StreamEvent::TextDelta { text } => match response.parts.last_mut() {
                Some(Part::Text { text: last }) => last.push_str(&text),
                _ => response.parts.push(Part::Text { text }),
            },
            StreamEvent::ReasoningDelta {
                text,
                signature,
                origin,
            } => match response.parts.last_mut() {
                Some(Part::Reasoning(last)) if last.signature.is_none() => {
                    last.text.push_str(&text);
                    last.signature = signature;
                    last.origin = last.origin.or(origin);
                }
                _ => response.parts.push(Part::Reasoning(neutral::Reasoning {
                    text,
                    signature,
                    redacted: None,
                    origin,
                })),
            },
            StreamEvent::ToolCallStart {
                index,
                id,
                name,
                signature,
            } => {
                calls.push((index, response.parts.len()));
                response.parts.push(Part::ToolCall(neutral::ToolCall {
                    id,
                    name,
                    arguments: String::new(),
                    signature,
                }));
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                let at = calls.iter().find(|(i, _)| *i == index).map(|(_, at)| *at);
                if let Some(Part::ToolCall(call)) = at.and_then(|at| response.parts.get_mut(at)) {
                    call.arguments.push_str(&arguments);
                }
            }
            StreamEvent::Usage(usage) => response.usage = Some(usage),
            StreamEvent::Finish { reason } => response.finish = reason,
            StreamEvent::Error { .. } => {}
        }
    }
    response
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

    use neutral::Usage;

    use super::*;

    fn streamed() -> Vec<StreamEvent> {
        vec![
            StreamEvent::Start {
                id: "vendor-id".into(),
                model: "m".into(),
            },
            StreamEvent::TextDelta { text: "Hel".into() },
            StreamEvent::TextDelta { text: "lo".into() },
            StreamEvent::ToolCallStart {
                index: 0,
                id: "call_1".into(),
                name: "f".into(),
                signature: None,
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "{\"a\":".into(),
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "1}".into(),
            },
            StreamEvent::Usage(Usage {
                input_tokens: 3,
                output_tokens: 2,
                ..Usage::default()
            }),
            StreamEvent::Finish {
                reason: FinishReason::ToolCalls,
            },
        ]
    }

    #[test]
    fn a_stream_adds_up_to_its_whole_answer_and_back() {
        let whole = Cached::Stream { events: streamed() }.into_response("fresh".into());
        assert_eq!(whole.id, "fresh");
        assert_eq!(
            whole.parts,
            vec![
                Part::text("Hello"),
                Part::ToolCall(neutral::ToolCall {
                    id: "call_1".into(),
                    name: "f".into(),
                    arguments: "{\"a\":1}".into(),
                    signature: None,
                }),
            ]
        );
        assert_eq!(whole.finish, FinishReason::ToolCalls);
        assert_eq!(whole.usage.unwrap().output_tokens, 2);
        let events = Cached::Whole {
            response: whole.clone(),
        }
        .into_events("again".into());
        assert!(matches!(&events[0], StreamEvent::Start { id, .. } if id == "again"));
        assert_eq!(response_of(events).parts, whole.parts);
    }

    #[test]
    fn a_stream_longer_than_the_budget_stops_recording() {
        let store: Arc<dyn AnswerCache> = Arc::new(llmux_store::MemoryAnswerCache::new(1 << 20));
        let fill = Fill {
            store,
            key: "k".into(),
            ttl_ms: 1000,
        };
        let mut recorder = Recorder::new(fill);
        let chunk = StreamEvent::TextDelta {
            text: "x".repeat(1 << 20),
        };
        for _ in 0..8 {
            assert!(recorder.record(std::slice::from_ref(&chunk)));
        }
        assert!(
            !recorder.record(&[chunk]),
            "the ninth MiB is over the budget"
        );
        assert!(recorder.events.is_empty(), "what was recorded is released");
    }

    #[test]
    fn a_replayed_stream_gets_a_fresh_id() {
        let events = Cached::Stream { events: streamed() }.into_events("fresh".into());
        assert!(matches!(&events[0], StreamEvent::Start { id, .. } if id == "fresh"));
        assert_eq!(events.len(), streamed().len());
    }

    #[test]
    fn errors_and_incomplete_answers_are_not_cacheable() {
        assert!(Cached::Stream { events: streamed() }.is_cacheable());
        let mut cut = streamed();
        cut.pop();
        assert!(!Cached::Stream { events: cut }.is_cacheable());
        let mut failed = streamed();
        failed.insert(
            2,
            StreamEvent::Error {
                kind: llmux_protocol::error::ErrorKind::UpstreamProtocol,
                message: "x".into(),
            },
        );
        assert!(!Cached::Stream { events: failed }.is_cacheable());
        let filtered = neutral::Response {
            finish: FinishReason::ContentFilter,
            ..neutral::Response::default()
        };
        assert!(!Cached::Whole { response: filtered }.is_cacheable());
    }

    #[test]
    fn the_key_ignores_stream_and_user_and_follows_scope() {
        let mut request = neutral::Request {
            messages: vec![neutral::Message {
                role: neutral::Role::User,
                parts: vec![Part::text("hi")],
            }],
            ..neutral::Request::default()
        };
        let base = key(&request, "g", CacheScope::Global, &Caller::Open);
        request.stream = true;
        request.user = Some("u".into());
        request.model = "whatever-upstream".into();
        assert_eq!(key(&request, "g", CacheScope::Global, &Caller::Open), base);
        assert_ne!(
            key(&request, "other", CacheScope::Global, &Caller::Open),
            base
        );
        assert_ne!(key(&request, "g", CacheScope::Key, &Caller::Master), base);
        request.sampling.temperature = Some(0.5);
        assert_ne!(key(&request, "g", CacheScope::Global, &Caller::Open), base);
    }

    #[test]
    fn cache_control_directives_are_read_case_insensitively() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(cache_control(&headers), (false, false));
        headers.insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("max-age=0, No-Cache"),
        );
        assert_eq!(cache_control(&headers), (false, true));
        headers.append(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        assert_eq!(cache_control(&headers), (true, true));
    }
}

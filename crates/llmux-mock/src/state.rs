//! Shared server state: the call recording and the fault rules.
//!
//! The hot path takes two short, uncontended `std::sync::Mutex` locks per call (one to record, one
//! to look for a fault). Recording keeps the raw body bytes and header map; turning them into
//! [`RecordedCall`]s (parsing JSON, copying headers) only happens when someone asks for them.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use serde::{Deserialize, Serialize};

use crate::MockOptions;
use crate::ids::Ids;

/// The most calls kept in memory. Older calls are dropped first, so a long benchmark run cannot
/// grow the mock without bound; tests never come near this.
const MAX_RECORDED_CALLS: usize = 100_000;

/// Which vendor API a recorded call went to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Api {
    /// `POST /v1/chat/completions`.
    OpenAiChat,
    /// `POST /v1/responses`.
    OpenAiResponses,
    /// `POST /v1/embeddings`.
    OpenAiEmbeddings,
    /// `GET /v1/models`.
    OpenAiModels,
    /// `POST /v1/messages`.
    Anthropic,
    /// `POST /v1beta/models/{model}:generateContent` or `:streamGenerateContent`.
    Gemini,
}

/// One vendor API call as the mock received it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecordedCall {
    /// The vendor API that was called.
    pub api: Api,
    /// The key the caller sent (`Authorization: Bearer` for OpenAI, `x-api-key` for Anthropic,
    /// `x-goog-api-key` or `?key=` for Gemini); empty when none was sent.
    pub credential: String,
    /// The body's `model` (OpenAI, Anthropic) or the `{model}` path segment (Gemini).
    pub model: String,
    /// Whether a streamed answer was asked for.
    pub stream: bool,
    /// Path and query as received.
    pub path: String,
    /// Every request header, with lowercase names, in arrival order.
    pub headers: Vec<(String, String)>,
    /// The parsed request body; `Null` when there was none or it was not JSON.
    pub body: serde_json::Value,
    /// The body as received (invalid UTF-8 replaced), for tests of byte paths.
    #[serde(default)]
    pub raw_body: String,
}

/// A fault to inject into matching vendor calls (OpenAI chat and embeddings, Anthropic, Gemini).
///
/// The first live rule whose `credential` and `model` match (and whose `probability` draw
/// succeeds) applies. A rule with only `delay_ms` delays and then answers normally.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct FaultRule {
    /// Match only calls with this credential (`None` matches any).
    pub credential: Option<String>,
    /// Match only calls for this model (`None` matches any).
    pub model: Option<String>,
    /// Answer with this status and the vendor's own error envelope for it, unless `body` is set.
    pub status: Option<u16>,
    /// Raw body to send with `status`.
    pub body: Option<String>,
    /// `Retry-After` header value to send.
    pub retry_after: Option<String>,
    /// Sleep this long before answering (before the response headers).
    pub delay_ms: Option<u64>,
    /// Send this many events, then drop the connection without the terminator or final event.
    /// The final event is never sent, even when this is larger than the stream. A non-stream
    /// answer counts as one event, so it sends headers and then drops the connection.
    pub cut_after_chunks: Option<usize>,
    /// Apply to at most this many matching calls, then the rule is spent (`None` = forever).
    pub times: Option<u32>,
    /// Apply with this probability in `[0, 1]` (`None` = always).
    pub probability: Option<f64>,
}

/// What a matching rule asks the vendor handler to do, after its delay has been served.
#[derive(Debug, Clone, Default)]
pub(crate) struct Fault {
    pub status: Option<u16>,
    pub body: Option<String>,
    pub retry_after: Option<String>,
    pub cut_after_chunks: Option<usize>,
}

/// A call as stored on the hot path: cheap to capture, converted on demand.
struct RawCall {
    api: Api,
    credential: String,
    model: String,
    stream: bool,
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

impl RawCall {
    fn to_recorded(&self) -> RecordedCall {
        let headers = self
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect();
        let body = serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null);
        RecordedCall {
            api: self.api.clone(),
            credential: self.credential.clone(),
            model: self.model.clone(),
            stream: self.stream,
            path: self.path.clone(),
            headers,
            body,
            raw_body: String::from_utf8_lossy(&self.body).into_owned(),
        }
    }
}

/// Facts about an incoming vendor call, gathered by its handler.
pub(crate) struct Incoming<'a> {
    pub api: Api,
    pub credential: &'a str,
    pub model: &'a str,
    pub stream: bool,
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a Bytes,
}

/// State shared by every connection of one mock server.
pub(crate) struct Shared {
    pub opts: MockOptions,
    pub ids: Ids,
    /// Responses stored by `POST /v1/responses` (for `previous_response_id`).
    pub responses: crate::openai::responses::Store,
    calls: Mutex<VecDeque<RawCall>>,
    faults: Mutex<Vec<FaultRule>>,
    /// Anthropic's prompt cache: the prefixes written so far.
    pub prompt_cache: crate::prompt_cache::PromptCache,
}

/// Locks `m`, ignoring poisoning: every critical section here leaves the data consistent.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub fn new(opts: MockOptions) -> Self {
        Self {
            opts,
            ids: Ids::default(),
            responses: Default::default(),
            calls: Mutex::new(VecDeque::new()),
            faults: Mutex::new(Vec::new()),
            prompt_cache: crate::prompt_cache::PromptCache::default(),
        }
    }

    /// Records `call`, serves the configured latency and any fault delay, and returns the fault
    /// to apply, if one matched.
    ///
    /// Faults only apply to calls whose `apply_faults` is true (not `/v1/models`).
    pub async fn admit(&self, call: Incoming<'_>, apply_faults: bool) -> Option<Fault> {
        let fault = if apply_faults {
            self.take_fault(call.credential, call.model)
        } else {
            None
        };
        self.record(call);
        let delay = fault.as_ref().map_or(Duration::ZERO, |(_, d)| *d);
        let wait = self.opts.latency + delay;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        fault.map(|(f, _)| f)
    }

    fn record(&self, call: Incoming<'_>) {
        let raw = RawCall {
            api: call.api,
            credential: call.credential.to_owned(),
            model: call.model.to_owned(),
            stream: call.stream,
            path: call.path.to_owned(),
            headers: call.headers.clone(),
            body: call.body.clone(),
        };
        let mut calls = lock(&self.calls);
        if calls.len() >= MAX_RECORDED_CALLS {
            calls.pop_front();
        }
        calls.push_back(raw);
    }

    /// Every recorded call, oldest first.
    pub fn calls(&self) -> Vec<RecordedCall> {
        lock(&self.calls).iter().map(RawCall::to_recorded).collect()
    }

    pub fn clear_calls(&self) {
        lock(&self.calls).clear();
    }

    pub fn add_fault(&self, rule: FaultRule) {
        lock(&self.faults).push(rule);
    }

    pub fn clear_faults(&self) {
        lock(&self.faults).clear();
    }

    /// Finds the first live rule matching the call, spends one use of it, and returns what it
    /// asks for plus its delay.
    fn take_fault(&self, credential: &str, model: &str) -> Option<(Fault, Duration)> {
        let mut rules = lock(&self.faults);
        let index = rules.iter().position(|rule| {
            rule.times != Some(0)
                && rule.credential.as_deref().is_none_or(|c| c == credential)
                && rule.model.as_deref().is_none_or(|m| m == model)
                && rule.probability.is_none_or(|p| fastrand::f64() < p)
        })?;
        let rule = rules.get_mut(index)?;
        if let Some(times) = rule.times.as_mut() {
            *times -= 1;
        }
        let delay = Duration::from_millis(rule.delay_ms.unwrap_or(0));
        let fault = Fault {
            status: rule.status,
            body: rule.body.clone(),
            retry_after: rule.retry_after.clone(),
            cut_after_chunks: rule.cut_after_chunks,
        };
        if rule.times == Some(0) {
            rules.remove(index);
        }
        Some((fault, delay))
    }
}

//! Client governance: who is calling (master key, virtual keys), what they may use, and how
//! much (RPM, TPM, parallel requests, USD budgets per day/month/total).
//!
//! Flow per request: the edge's `authenticate` step turns the presented key into a [`Caller`];
//! the handler calls [`Governance::admit`] once it knows the model, which checks the key's
//! restrictions, budgets and limits and reserves tokens (`max_tokens`, or an estimate); the
//! returned [`Settle`] is completed with the vendor's real usage when the answer ends — whole
//! answers in the handler, streams when the stream ends — which refunds or charges the token
//! difference, records usage and spend, and frees the parallel slot.
//!
//! Counters live in a [`Limiter`] (memory, or Redis shared by replicas); keys and usage in a
//! [`KeyStore`] (SQLite or PostgreSQL). When Redis is unreachable, `auth.redis_failure` decides:
//! serve without limits (logged) or refuse with 503.

pub(crate) mod quota;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use llmux_config::{Pricing, RedisFailure};
use llmux_protocol::error::{ErrorKind, GatewayError, RateLimit};
use llmux_protocol::neutral::Usage;
use llmux_store::{KeyRecord, KeyStore, Limiter, StoreError};
use subtle::ConstantTimeEq;

use crate::api_error::ApiError;
use crate::routes::Access;

/// How long an authenticated key is trusted without asking the store again. Revocations on this
/// replica clear it at once; other replicas see them within this time (and at once through the
/// shared revocation flag when Redis is configured).
const KEY_CACHE_TTL: Duration = Duration::from_secs(1);

/// How often an open gateway with `auth:` asks the key store whether a key was created.
const KEYS_RECHECK: Duration = Duration::from_millis(500);

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Caller {
    /// No authentication enforced: the gateway is open.
    Open,
    /// The master key.
    Master,
    /// A virtual key.
    Key(Arc<KeyRecord>),
}

impl Caller {
    /// Who owns what this caller stores (stored responses): the virtual key, the master key, or
    /// on an open gateway the key the client presented (SDKs always send one) — a hash of it,
    /// never the key — else one anonymous owner. Computed only where something is stored or
    /// read, never on every request.
    pub fn owner(&self, headers: &http::HeaderMap, uri: &http::Uri) -> String {
        use sha2::Digest;
        match self {
            Self::Key(key) => format!("key:{}", key.id),
            Self::Master => "master".to_owned(),
            Self::Open => match presented_key(headers, uri)
                .map(str::trim)
                .filter(|k| !k.is_empty())
            {
                Some(key) => {
                    let digest = sha2::Sha256::digest(key.as_bytes());
                    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
                    format!("client:{hex}")
                }
                None => "anonymous".to_owned(),
            },
        }
    }
}

/// The `auth:` settings a reload may change.
#[derive(Debug)]
struct Settings {
    master_key: Option<String>,
    redis_failure: RedisFailure,
    protect_metrics: bool,
}

/// Governance state shared by every request.
pub struct Governance {
    settings: arc_swap::ArcSwap<Settings>,
    pub(crate) keys: Arc<dyn KeyStore>,
    limiter: Arc<dyn Limiter>,
    any_keys: AtomicBool,
    /// When (unix ms) the key store was last asked whether a key exists, while none did.
    keys_checked_ms: AtomicU64,
    cache: Mutex<HashMap<String, (Arc<KeyRecord>, Instant)>>,
}

impl std::fmt::Debug for Governance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let settings = self.settings.load();
        f.debug_struct("Governance")
            .field("master_key", &settings.master_key.as_ref().map(|_| "***"))
            .field("redis_failure", &settings.redis_failure)
            .finish_non_exhaustive()
    }
}

fn now_unix() -> i64 {
    i64::try_from(crate::clock::unix_secs()).unwrap_or(i64::MAX)
}

use crate::clock::unix_millis as now_ms;

fn unauthenticated(message: &str) -> ApiError {
    let mut error =
        ApiError::from_error(GatewayError::new(ErrorKind::UpstreamStatus(401), message));
    error.0.type_override = Some("authentication_error".into());
    error.0.code = Some("invalid_api_key".into());
    error
}

fn forbidden(message: String) -> ApiError {
    let mut error =
        ApiError::from_error(GatewayError::new(ErrorKind::UpstreamStatus(403), message));
    error.0.type_override = Some("permission_error".into());
    error.0.code = Some("forbidden".into());
    error
}

fn limited(
    message: String,
    code: &str,
    retry_after: Duration,
    limit: Option<RateLimit>,
) -> ApiError {
    let mut error =
        ApiError::from_error(GatewayError::new(ErrorKind::UpstreamStatus(429), message));
    error.0.type_override = Some("rate_limit_error".into());
    error.0.code = Some(code.into());
    error.0.retry_after_secs = Some(retry_after.as_secs_f64().ceil().max(1.0) as u64);
    error.0.rate_limit = limit.map(Box::new);
    error
}

impl Governance {
    /// Governance over `keys` and `limiter`.
    pub async fn new(
        master_key: Option<String>,
        keys: Arc<dyn KeyStore>,
        limiter: Arc<dyn Limiter>,
        redis_failure: RedisFailure,
        protect_metrics: bool,
    ) -> Result<Self, StoreError> {
        let any_keys = keys.any_keys().await?;
        Ok(Self {
            settings: arc_swap::ArcSwap::from_pointee(Settings {
                master_key,
                redis_failure,
                protect_metrics,
            }),
            keys,
            limiter,
            any_keys: AtomicBool::new(any_keys),
            keys_checked_ms: AtomicU64::new(now_ms()),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Whether requests must authenticate: a master key is set or a virtual key exists.
    pub fn enforced(&self) -> bool {
        self.settings.load().master_key.is_some() || self.any_keys.load(Ordering::Relaxed)
    }

    /// Whether `/metrics` needs the master key (`auth.protect_metrics`).
    pub(crate) fn protect_metrics(&self) -> bool {
        self.settings.load().protect_metrics
    }

    /// Applies a reloaded `auth:` (its database cannot change live): a rotated master key
    /// works, and the old one stops working, from the next request on.
    pub(crate) fn apply(&self, auth: &llmux_config::Auth) {
        self.settings.store(Arc::new(Settings {
            master_key: auth.master_key.as_ref().map(|k| k.expose().to_owned()),
            redis_failure: auth.redis_failure,
            protect_metrics: auth.protect_metrics,
        }));
    }

    /// While the gateway is open, asks the key store (at most every [`KEYS_RECHECK`]) whether a
    /// key now exists — created by `llmux keys create` or by another replica — so that
    /// authentication is enforced everywhere within a second of the first key.
    async fn notice_new_keys(&self) {
        if self.enforced() {
            return;
        }
        let now = now_ms();
        let last = self.keys_checked_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < KEYS_RECHECK.as_millis() as u64
            || self
                .keys_checked_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        match self.keys.any_keys().await {
            Ok(true) => {
                tracing::info!("a virtual key exists: authentication is now enforced");
                self.note_key_created();
            }
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(error = %err, "could not ask the key store whether a key exists")
            }
        }
    }

    /// A key was created: authentication is enforced from now on.
    pub(crate) fn note_key_created(&self) {
        self.any_keys.store(true, Ordering::Relaxed);
    }

    /// A key changed: forget its cached record so the change applies at once.
    pub(crate) fn note_revoked_cache_only(&self, id: &str) {
        self.cache_lock().retain(|_, (record, _)| record.id != id);
    }

    /// A key was revoked here: forget it now and tell the other replicas.
    pub(crate) async fn note_revoked(&self, id: &str) {
        self.cache_lock().retain(|_, (record, _)| record.id != id);
        if let Err(err) = self.limiter.mark_revoked(id).await {
            tracing::warn!(error = %err, "could not share a key revocation");
        }
    }

    /// The counters behind limits and budgets (memory, or Redis shared by replicas).
    pub(crate) fn limiter(&self) -> &Arc<dyn Limiter> {
        &self.limiter
    }

    fn cache_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Arc<KeyRecord>, Instant)>> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether `presented` is the master key.
    pub fn is_master(&self, presented: &str) -> bool {
        self.settings
            .load()
            .master_key
            .as_deref()
            .is_some_and(|m| bool::from(m.as_bytes().ct_eq(presented.as_bytes())))
    }

    /// The caller for a presented key (`None` when the request carried none).
    pub async fn authenticate(&self, presented: Option<&str>) -> Result<Caller, ApiError> {
        if !self.enforced() {
            return Ok(Caller::Open);
        }
        let Some(presented) = presented.map(str::trim).filter(|p| !p.is_empty()) else {
            return Err(unauthenticated(
                "missing API key: send 'Authorization: Bearer <key>'",
            ));
        };
        if self.is_master(presented) {
            return Ok(Caller::Master);
        }
        let cached = self
            .cache_lock()
            .get(presented)
            .filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(record, _)| record.clone());
        let record = match cached {
            Some(record) => record,
            None => {
                let record = self
                    .keys
                    .authenticate(presented)
                    .await
                    .map_err(|e| {
                        ApiError::new(
                            ErrorKind::NoCombination,
                            format!("key store unavailable: {}", e.kind_label()),
                        )
                    })?
                    .ok_or_else(|| unauthenticated("invalid API key"))?;
                let record = Arc::new(record);
                self.cache_lock()
                    .insert(presented.to_owned(), (record.clone(), Instant::now()));
                record
            }
        };
        if !record.is_usable(now_unix()) {
            return Err(unauthenticated("API key is revoked or expired"));
        }
        match self.limiter.is_revoked(&record.id).await {
            Ok(true) => return Err(unauthenticated("API key is revoked or expired")),
            Ok(false) => {}
            Err(err) => self.on_limiter_error(&err)?,
        }
        Ok(Caller::Key(record))
    }

    fn on_limiter_error(&self, err: &StoreError) -> Result<(), ApiError> {
        match self.settings.load().redis_failure {
            RedisFailure::Open => {
                tracing::warn!(error = %err, "shared state unavailable: serving without limits (auth.redis_failure: open)");
                Ok(())
            }
            RedisFailure::Closed => Err(ApiError::new(
                ErrorKind::NoCombination,
                "shared state (Redis) is unavailable and auth.redis_failure is closed; try again shortly",
            )),
        }
    }

    /// Checks `caller` may send this request now, and reserves what it may use.
    pub async fn admit(
        self: &Arc<Self>,
        caller: &Caller,
        model: Option<&str>,
        vendor: Option<&str>,
        reserve_tokens: u64,
        pricing: Pricing,
        max_cost_usd: Option<f64>,
    ) -> Result<Settle, ApiError> {
        let Caller::Key(key) = caller else {
            return Ok(Settle::default());
        };
        let name = key.name.as_deref().unwrap_or(&key.id);
        if !key.allowed_models.is_empty() {
            let model = model.unwrap_or_default();
            if !key.allowed_models.iter().any(|m| m == model) {
                return Err(forbidden(format!(
                    "key '{name}' may not use model '{model}'"
                )));
            }
        }
        if let Some(vendor) = vendor
            && !key.allowed_vendors.is_empty()
            && !key.allowed_vendors.iter().any(|v| v == vendor)
        {
            return Err(forbidden(format!(
                "key '{name}' may not use vendor '{vendor}'"
            )));
        }
        let max_cost_micros = max_cost_usd.map_or(0, |usd| (usd * 1e6).ceil() as u64);
        let reserved_micros = self.reserve_budget(key, max_cost_micros).await?;
        // From here on, a refusal must give the budget reservation back.
        let refund = |governance: &Arc<Self>| {
            if reserved_micros > 0 {
                let governance = Arc::clone(governance);
                let id = key.id.clone();
                llmux_telemetry::spawn_tracked(async move {
                    let _ = governance
                        .limiter
                        .add_spend(&id, -(reserved_micros as i64), now_unix())
                        .await;
                });
            }
        };
        let now = now_ms();
        if let Some(rpm) = key.rpm {
            self.check_limit(
                &format!("rpm:{}", key.id),
                rpm,
                1,
                now,
                "requests per minute",
            )
            .await
            .inspect_err(|_| refund(self))?;
        }
        let mut reserved = 0;
        if let Some(tpm) = key.tpm {
            // A request larger than a whole minute's allowance is charged the allowance.
            let cost = reserve_tokens.clamp(1, u64::from(tpm)) as u32;
            self.check_limit(
                &format!("tpm:{}", key.id),
                tpm,
                cost,
                now,
                "tokens per minute",
            )
            .await
            .inspect_err(|_| refund(self))?;
            reserved = u64::from(cost);
        }
        let mut parallel = false;
        if let Some(max) = key.max_parallel {
            match self.limiter.acquire(&format!("par:{}", key.id), max).await {
                Ok(true) => parallel = true,
                Ok(false) => {
                    refund(self);
                    return Err(limited(
                        format!("key '{name}' already has {max} requests in flight"),
                        "parallel_limit_exceeded",
                        Duration::from_secs(1),
                        None,
                    ));
                }
                Err(err) => self.on_limiter_error(&err).inspect_err(|_| refund(self))?,
            }
        }
        Ok(Settle::holding(Permit {
            governance: self.clone(),
            key: key.clone(),
            reserved,
            reserved_micros,
            parallel,
            pricing,
        }))
    }

    async fn check_limit(
        &self,
        bucket: &str,
        limit: u32,
        cost: u32,
        now: u64,
        what: &str,
    ) -> Result<(), ApiError> {
        match self.limiter.check(bucket, limit, cost, now).await {
            Ok(decision) if decision.allowed => Ok(()),
            Ok(decision) => Err(limited(
                format!("rate limit of {limit} {what} reached"),
                "rate_limit_exceeded",
                decision.retry_after.unwrap_or(decision.reset_after),
                Some(RateLimit {
                    limit: u64::from(decision.limit),
                    remaining: u64::from(decision.remaining),
                    reset_secs: decision.reset_after.as_secs_f64().ceil() as u64,
                }),
            )),
            Err(err) => self.on_limiter_error(&err),
        }
    }

    /// Reserves `micros` (the request's maximum cost) against the key's budgets, atomically
    /// in the limiter: refused when a budget is already spent, so concurrent requests overshoot
    /// it by one request at most. What was reserved (0 without budgets).
    async fn reserve_budget(&self, key: &KeyRecord, micros: u64) -> Result<u64, ApiError> {
        let budgets = [
            key.budget_daily_usd,
            key.budget_monthly_usd,
            key.budget_total_usd,
        ];
        if budgets.iter().all(Option::is_none) {
            return Ok(0);
        }
        let now = now_unix();
        let to_micros = |usd: Option<f64>| usd.map(|usd| (usd * 1e6).round().max(0.0) as u64);
        let reserved = self
            .limiter
            .reserve_spend(&key.id, micros, budgets.map(to_micros), now)
            .await;
        match reserved {
            Ok(true) => return Ok(micros),
            Ok(false) => {}
            Err(err) => return self.on_limiter_error(&err).map(|()| 0),
        }
        let spend = self.limiter.spend(&key.id, now).await.unwrap_or_default();
        let secs_to_next_day = 86_400 - (now.rem_euclid(86_400)) as u64;
        let exceeded = [
            (key.budget_daily_usd, spend.day, "daily", secs_to_next_day),
            (
                key.budget_monthly_usd,
                spend.month,
                "monthly",
                secs_to_next_day,
            ),
            (key.budget_total_usd, spend.total, "total", 86_400),
        ]
        .into_iter()
        .find_map(|(budget, spent, period, wait)| {
            budget
                .filter(|budget| spent >= *budget)
                .map(|budget| (budget, spent, period, wait))
        });
        let (budget, spent, period, wait) = exceeded.unwrap_or((0.0, spend.total, "total", 86_400));
        Err(limited(
            format!("{period} budget of ${budget:.2} is spent (${spent:.4})"),
            "budget_exceeded",
            Duration::from_secs(wait),
            None,
        ))
    }
}

trait KindLabel {
    fn kind_label(&self) -> &'static str;
}

impl KindLabel for StoreError {
    fn kind_label(&self) -> &'static str {
        match self.kind() {
            llmux_store::ErrorKind::Unavailable => "unavailable",
            _ => "error",
        }
    }
}

/// What a request reserved; settled once with the real usage.
pub struct Permit {
    governance: Arc<Governance>,
    key: Arc<KeyRecord>,
    reserved: u64,
    /// Micro-dollars reserved against the key's budgets; settled against the real cost.
    reserved_micros: u64,
    parallel: bool,
    pricing: Pricing,
}

/// Completes a request's permit, and the vendor quota its attempt took, exactly once, from
/// whichever path learns the usage (handler or stream end). Cloneable; a no-op for open and master
/// callers on credentials without quotas.
#[derive(Clone, Default)]
pub struct Settle(Arc<Mutex<Pending>>);

#[derive(Default)]
struct Pending {
    permit: Option<Permit>,
    quota: Option<crate::governance::quota::QuotaCharge>,
    /// The request log's record, told the real usage.
    log: Option<Arc<crate::request_log::Draft>>,
    /// Bytes of the request sent to the vendor: the input count when the vendor's usage never
    /// arrives.
    sent_bytes: u64,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.permit.is_none() && self.quota.is_none()
    }

    /// Settles both parts with `usage` (`Some(zero)`: refund everything), in the background.
    fn settle(self, model: String, usage: Option<Usage>) {
        if self.is_empty() {
            return;
        }
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        handle.spawn(async move {
            if let Some(quota) = self.quota {
                quota.settle(usage).await;
            }
            if let Some(permit) = self.permit {
                permit.settle(&model, usage).await;
            }
        });
    }
}

impl Settle {
    fn holding(permit: Permit) -> Self {
        Self(Arc::new(Mutex::new(Pending {
            permit: Some(permit),
            ..Pending::default()
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn take(&self) -> Pending {
        std::mem::take(&mut *self.lock())
    }

    /// The attempt that answers took this much of its credential's token quota; settled with
    /// the real usage like the key's reservation. Replaces (refunds) an earlier attempt's charge.
    pub(crate) fn charge_quota(&self, charge: crate::governance::quota::QuotaCharge) {
        let previous = self.lock().quota.replace(charge);
        if let Some(previous) = previous {
            Pending {
                quota: Some(previous),
                ..Pending::default()
            }
            .settle(String::new(), Some(Usage::default()));
        }
    }

    /// Tells the request log's record the real usage when the answer is complete.
    pub(crate) fn log_to(&self, draft: Arc<crate::request_log::Draft>) {
        self.lock().log = Some(draft);
    }

    /// Gives the request's recorded trace the facts of a streamed answer (its id and finish
    /// reasons), which arrive after the attempt's span ended.
    pub(crate) fn note_answer(&self, facts: crate::trace::facts::AnswerFacts) {
        let log = self.lock().log.clone();
        if let Some(trace) = log.as_ref().and_then(|log| log.trace.as_ref()) {
            trace.note_stream_answer(facts);
        }
    }

    /// A failed attempt did not use its tokens: refund its quota charge now.
    pub(crate) fn refund_quota(&self) {
        let quota = self.lock().quota.take();
        Pending {
            quota,
            ..Pending::default()
        }
        .settle(String::new(), Some(Usage::default()));
    }

    /// The request's body is `bytes` long: what llmux counts as its input if the vendor's usage
    /// never arrives.
    pub(crate) fn sent(&self, bytes: usize) {
        self.lock().sent_bytes = bytes as u64;
    }

    /// The answer is complete: charge the real usage of `upstream_model` (its cached and
    /// reasoning tokens at their own prices). Without usage, llmux's own count is charged
    /// instead (see [`Settle::done_or_estimate`]).
    pub fn done(&self, upstream_model: &str, usage: Option<Usage>) {
        self.done_or_estimate(upstream_model, usage, 0);
    }

    /// The vendor answered: charge its usage, or — when it never reported one (missing, the
    /// stream was cut, the client left) — llmux's own count: the request's bytes and
    /// `output_estimate` tokens (content events streamed, or the answer's bytes), at about four
    /// bytes per token, marked as estimated in the request log.
    pub fn done_or_estimate(
        &self,
        upstream_model: &str,
        usage: Option<Usage>,
        output_estimate: u64,
    ) {
        let mut pending = self.take();
        let (usage, estimated) = match usage {
            Some(usage) => (usage, false),
            None => (
                Usage {
                    input_tokens: pending.sent_bytes / 4,
                    output_tokens: output_estimate,
                    ..Usage::default()
                },
                true,
            ),
        };
        if let Some(log) = pending.log.take() {
            log.usage(upstream_model, usage);
            if estimated {
                log.with(|record| record.cost_estimated = true);
            }
        }
        if !pending.is_empty() {
            pending.settle(upstream_model.to_owned(), Some(usage));
        }
    }

    /// The request ended without an answer (error, cancellation): free the parallel slot and
    /// refund the token reservations.
    pub fn abandon(&self) {
        self.take().settle(String::new(), Some(Usage::default()));
    }
}

impl Permit {
    async fn settle(self, model: &str, usage: Option<Usage>) {
        let governance = &self.governance;
        let id = &self.key.id;
        let now = now_unix();
        if let (Some(tpm), Some(usage)) = (self.key.tpm, usage) {
            let delta = usage.total() as i64 - self.reserved as i64;
            if delta != 0
                && let Err(err) = governance
                    .limiter
                    .adjust(&format!("tpm:{id}"), tpm, delta, now_ms())
                    .await
            {
                tracing::warn!(error = %err, "could not reconcile a token reservation");
            }
        }
        let mut cost_micros = 0;
        if !model.is_empty() {
            let usage = usage.unwrap_or_default();
            let cost = self.pricing.cost(model, &usage).unwrap_or(0.0);
            if let Err(err) = governance
                .keys
                .record_usage(id, now, usage.input_tokens, usage.output_tokens, cost)
                .await
            {
                tracing::warn!(error = %err, "could not record key usage");
            }
            cost_micros = (cost * 1_000_000.0).round() as u64;
        }
        // The spend counters already hold the reservation: add only the difference.
        let delta = cost_micros as i64 - self.reserved_micros as i64;
        if delta != 0
            && let Err(err) = governance.limiter.add_spend(id, delta, now).await
        {
            tracing::warn!(error = %err, "could not record key spend");
        }
        if self.parallel
            && let Err(err) = governance.limiter.release(&format!("par:{id}")).await
        {
            tracing::warn!(error = %err, "could not release a parallel slot");
        }
    }
}

impl Drop for Settle {
    fn drop(&mut self) {
        // The last handle going away without done/abandon (a dropped stream): free the slot.
        if Arc::strong_count(&self.0) == 1 {
            self.take().settle(String::new(), Some(Usage::default()));
        }
    }
}

/// The key a request presents: `Authorization: Bearer …`, or `x-api-key` (Anthropic clients).
/// The key a client presents: `Authorization: Bearer` (OpenAI), `x-api-key` (Anthropic),
/// `x-goog-api-key` or `?key=` (Google). Whatever the form, it is never forwarded upstream.
fn presented_key<'a>(headers: &'a http::HeaderMap, uri: &'a http::Uri) -> Option<&'a str> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()))
        .or_else(|| headers.get("x-goog-api-key").and_then(|v| v.to_str().ok()))
        .or_else(|| {
            uri.query()?
                .split('&')
                .find_map(|pair| pair.strip_prefix("key="))
                .filter(|k| !k.is_empty())
        })
}

/// Authenticates every request before its handler, by its route's [`Access`]: API routes need
/// a valid key once authentication is enforced; `/admin` always needs the master key;
/// `/metrics` needs it when `auth.protect_metrics` is on; `/health` stays open. Returns who is
/// calling, or the refusal to send instead (in the route's `envelope`).
pub async fn authenticate(
    gateway: &crate::state::Gateway,
    access: Access,
    envelope: crate::edge::envelope::Envelope,
    headers: &http::HeaderMap,
    uri: &http::Uri,
) -> Result<Caller, axum::response::Response> {
    let Some(governance) = gateway.governance.as_ref() else {
        return Ok(Caller::Open);
    };
    let presented = presented_key(headers, uri);
    governance.notice_new_keys().await;
    let render = |error: ApiError| envelope.render(error);
    let master = presented.is_some_and(|p| governance.is_master(p));
    let caller = match access {
        Access::Master => {
            if !master {
                return Err(render(unauthenticated(
                    "admin routes need the master key (auth.master_key)",
                )));
            }
            Caller::Master
        }
        Access::Metrics => {
            if governance.protect_metrics() && governance.enforced() && !master {
                return Err(render(unauthenticated(
                    "/metrics needs the master key (auth.protect_metrics)",
                )));
            }
            if master { Caller::Master } else { Caller::Open }
        }
        Access::Operator => {
            if governance.enforced() && !master {
                return Err(render(unauthenticated(
                    "/health/vendors needs the master key once authentication is on",
                )));
            }
            if master { Caller::Master } else { Caller::Open }
        }
        Access::Key => governance.authenticate(presented).await.map_err(render)?,
        Access::Open if master => Caller::Master,
        Access::Open => Caller::Open,
    };
    Ok(caller)
}

/// [`Governance::admit`] when governance is configured; an empty [`Settle`] otherwise.
pub async fn admit(
    gateway: &crate::state::Gateway,
    caller: &Caller,
    model: Option<&str>,
    vendor: Option<&str>,
    reserve_tokens: u64,
    pricing: &Pricing,
) -> Result<Settle, ApiError> {
    match &gateway.governance {
        Some(governance) => {
            let max_cost = max_cost(&gateway.snapshot.load().config, model, reserve_tokens);
            governance
                .admit(
                    caller,
                    model,
                    vendor,
                    reserve_tokens,
                    pricing.clone(),
                    max_cost,
                )
                .await
        }
        None => Ok(Settle::default()),
    }
}

/// The most a request for `model` reserving `tokens` can cost: every token at the highest
/// rate (output, reasoning or cache write) of the dearest upstream model the name may reach (itself, or the
/// models of the group it names). `None` when no price is known: the budget is then only
/// checked, not reserved.
fn max_cost(config: &llmux_config::Config, model: Option<&str>, tokens: u64) -> Option<f64> {
    let model = model?;
    let pricing = &config.pricing;
    let grouped = config
        .models
        .iter()
        .filter(|m| m.name.as_deref() == Some(model) || m.model == model)
        .filter_map(|m| pricing.price(&m.model));
    grouped
        .chain(pricing.price(model))
        .map(|price| tokens as f64 * price.highest_per_million() / 1_000_000.0)
        .max_by(f64::total_cmp)
}

/// The vendors a caller may reach (empty: all).
pub fn allowed_vendors(caller: &Caller) -> &[String] {
    match caller {
        Caller::Key(key) => &key.allowed_vendors,
        Caller::Open | Caller::Master => &[],
    }
}

impl Governance {
    /// Opens the key store named by `auth.database` and the limiter (Redis when `redis` is
    /// set, memory otherwise).
    pub async fn from_config(
        auth: &llmux_config::Auth,
        redis: Option<&llmux_config::Secret>,
    ) -> Result<Self, StoreError> {
        let keys = llmux_store::open(auth.database.expose()).await?;
        let limiter: Arc<dyn Limiter> = match redis {
            Some(url) => Arc::new(llmux_store::RedisLimiter::connect(url.expose()).await?),
            None => Arc::new(memory_limiter_with_spend(keys.as_ref()).await?),
        };
        Self::new(
            auth.master_key.as_ref().map(|k| k.expose().to_owned()),
            keys,
            limiter,
            auth.redis_failure,
            auth.protect_metrics,
        )
        .await
    }
}

/// A memory limiter that starts from what every key has spent so far (the key store's usage),
/// so a restart without Redis does not reset budgets.
async fn memory_limiter_with_spend(
    keys: &dyn KeyStore,
) -> Result<llmux_store::MemoryLimiter, StoreError> {
    let limiter = llmux_store::MemoryLimiter::default();
    let now = now_unix();
    // Every key, budgeted or not: a budget may be added to a key while the gateway runs.
    for key in keys.list().await? {
        limiter.seed_spend(&key.id, keys.spend(&key.id, now).await?, now);
    }
    Ok(limiter)
}

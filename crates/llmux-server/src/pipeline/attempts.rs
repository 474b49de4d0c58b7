//! The attempt loop: choose a healthy combination, try it, and on a retryable failure back off
//! (full jitter) and fail over to a different combination, within an attempt budget and a
//! deadline. Breakers, cooldowns and statistics are updated from every outcome.
//!
//! What counts where: statuses a model can cause (5xx, 429, 408/409/529) count against the
//! combination; connect errors and timeouts also against the credential (the host is down for
//! all its models); 401/403 open the credential at once (a revoked key fails for every model).
//! Client mistakes (400, 404, 422) count against nothing.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use llmux_protocol::error::ErrorKind;
use llmux_reliability::{Admission, Health, Transition, backoff};
use llmux_router::{Candidates, Target};
use llmux_telemetry::metrics::{BreakerLabels, VendorLabels};

use crate::api_error::ApiError;
use crate::governance::Settle;
use crate::governance::quota as vendor_quota;
use crate::shared_health;
use crate::state::{Gateway, Snapshot};

/// The attempt loop's clock: tokio's, so that its deadline agrees with the `sleep` and
/// `timeout` it awaits (the same clock as `Instant::now()` unless a test paused time).
pub(crate) fn clock_now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// The health entries of one target.
#[derive(Debug, Clone)]
pub struct TargetHealth {
    pub combination: Option<Arc<Health>>,
    pub credential: Arc<Health>,
}

impl TargetHealth {
    /// The entries of `target` in `snapshot`.
    pub fn of(snapshot: &Snapshot, target: &Target<'_>) -> Option<Self> {
        Some(Self {
            combination: match target.combination {
                Some(i) => Some(snapshot.health.combinations.get(i)?.clone()),
                // A passed-through model has its own entry per credential: its 429s and
                // failures must not take the whole credential out of rotation.
                None => snapshot.health.passed_through(
                    target.credential_index,
                    target.credential,
                    target.upstream_model,
                ),
            },
            credential: snapshot
                .health
                .credentials
                .get(target.credential_index)?
                .clone(),
        })
    }

    fn is_available(&self, now: Instant) -> bool {
        self.credential.is_available(now)
            && self
                .combination
                .as_ref()
                .is_none_or(|c| c.is_available(now))
    }

    /// A failure after the answer started (mid-stream): counts against the combination.
    pub fn record_stream_failure(&self, kind: &'static str) {
        let now = clock_now();
        match &self.combination {
            Some(c) => c.record_failure(now, kind),
            None => self.credential.record_failure(now, kind),
        };
    }

    /// The client left while this attempt was the breaker's probe: no verdict.
    pub fn release(&self) {
        if let Some(c) = &self.combination {
            c.release_probe();
        }
        self.credential.release_probe();
    }
}

/// How an attempt failed.
#[derive(Debug)]
pub struct Failure {
    pub error: ApiError,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Self { error }
    }
}

/// A successful attempt: the value, where it went, and the time spent waiting on upstreams
/// (every attempt, up to the response head or first stream content).
pub struct Committed<'s, T> {
    pub value: T,
    pub target: Target<'s>,
    pub upstream_time: Duration,
    /// Why the routing policy chose this target (`x-llmux-policy`).
    pub reason: &'static str,
}

/// A request that no attempt could serve: the last error and the last target tried.
pub struct Exhausted<'s> {
    pub error: ApiError,
    pub target: Option<Target<'s>>,
    /// Attempts spent (a fallback group gets what is left of the budget).
    pub attempts: u32,
}

/// What every attempt of one request shares: where the caller may go, and what it reserved.
pub struct Admitted<'a> {
    /// Vendors the caller's key may reach (empty: all).
    pub allowed_vendors: &'a [String],
    /// Positions of candidates this request cannot use (a hosted tool they would drop under
    /// `compat.unsupported_tools: reject`).
    pub unfit: &'a [usize],
    /// Attempts this run may make (`reliability.max_attempts`, less what earlier groups of a
    /// fallback chain spent).
    pub max_attempts: u32,
    /// When the whole request must be done (`timeouts.total_ms` after it started).
    pub deadline: Instant,
    /// Whether a combination that failed may be tried again; not when the group has a fallback
    /// (the next group serves once every combination here failed).
    pub retry_tried: bool,
    /// The group's routing policy.
    pub policy: llmux_router::RoutingPolicy,
    /// The request's estimated tokens (the `cost` policy reads them).
    pub tokens: llmux_router::Tokens,
    /// Tokens reserved for the request (input estimate + output), for vendor TPM quotas.
    pub reserve_tokens: u64,
    /// Settles the caller's and the vendor quota's reservations when the answer ends.
    pub settle: &'a Settle,
}

/// Runs `attempt` on up to `max_attempts` healthy candidates.
pub async fn run<'s, T, F, Fut>(
    gateway: &Gateway,
    snapshot: &'s Snapshot,
    candidates: Candidates<'s>,
    admitted: &Admitted<'_>,
    mut attempt: F,
) -> Result<Committed<'s, T>, Exhausted<'s>>
where
    F: FnMut(Target<'s>) -> Fut,
    Fut: Future<Output = Result<T, Failure>>,
{
    let reliability = &snapshot.config.reliability;
    let deadline = admitted.deadline;
    let mut tried: Vec<usize> = Vec::with_capacity(admitted.max_attempts as usize);
    // Candidates whose credential is over its vendor quota: skipped for this whole request.
    let mut over_quota: Vec<usize> = Vec::new();
    let mut quota_wait: Option<Duration> = None;
    let mut last: Option<(ApiError, Target<'s>)> = None;
    let mut upstream_time = Duration::ZERO;
    let mut attempt_number = 0;
    while attempt_number < admitted.max_attempts {
        let now = clock_now();
        let Some((position, target, health, reason)) =
            pick(snapshot, &candidates, &tried, &over_quota, admitted, now)
        else {
            break;
        };
        let Some(probe) = admit(gateway, &health, &target, now) else {
            // Lost a race for the half-open probe: try another candidate without sleeping.
            attempt_number += 1;
            tried.push(position);
            continue;
        };
        attempt_number += 1;
        let quota = vendor_quota::take(
            gateway,
            target.credential,
            &health.credential,
            admitted.reserve_tokens,
            admitted.settle,
        )
        .await;
        if let vendor_quota::Taken::Over(wait) = quota {
            // Not an attempt (nothing was sent): another credential may have room. Dropping
            // `probe` frees a half-open probe slot this request took.
            drop(probe);
            attempt_number -= 1;
            over_quota.push(position);
            quota_wait = Some(quota_wait.map_or(wait, |w| w.min(wait)));
            continue;
        }
        if attempt_number > 1 {
            let delay = backoff(
                attempt_number - 2,
                Duration::from_millis(reliability.backoff_base_ms),
                Duration::from_millis(reliability.backoff_max_ms),
                fastrand::f64(),
            );
            let remaining = deadline.saturating_duration_since(clock_now());
            tokio::time::sleep(delay.min(remaining)).await;
            if clock_now() >= deadline {
                // The deadline came during the backoff: nothing more is sent, and the target
                // that never had a chance is not charged with a timeout. Dropping `probe`
                // frees a half-open probe slot this request took.
                admitted.settle.refund_quota();
                drop(probe);
                break;
            }
            gateway
                .metrics
                .retries
                .get_or_create(&vendor_labels(&target))
                .inc();
            if !tried.contains(&position) {
                gateway
                    .metrics
                    .failovers
                    .get_or_create(&vendor_labels(&target))
                    .inc();
            }
        }
        tried.push(position);
        count_selection(gateway, snapshot, &target);
        let stats = snapshot.stats.of(&target).cloned();
        let busy = stats.as_ref().map(llmux_router::Stats::enter);
        let attempt_started = clock_now();
        let remaining = deadline.saturating_duration_since(attempt_started);
        // Built in a box of its own: a by-value attempt future (2.7 KiB for chat) was copied
        // into the timeout and again into this future's state, ~600 instructions per attempt.
        let in_flight = crate::pipeline::boxed_in_place(|| attempt(target));
        let outcome = match tokio::time::timeout(remaining, in_flight).await {
            Ok(outcome) => outcome,
            Err(_) => Err(Failure::from(ApiError::new(
                ErrorKind::UpstreamTimeout,
                format!(
                    "request did not complete within {} ms",
                    snapshot.config.timeouts.total_ms
                ),
            ))),
        };
        let attempt_time = clock_now().saturating_duration_since(attempt_started);
        upstream_time += attempt_time;
        // The outcome below is the probe's verdict (recorded on the breaker); only a request
        // dropped before this point, e.g. by a client that went away, releases the probe.
        probe.settled();
        drop(busy);
        match outcome {
            Ok(value) => {
                record_success(gateway, &health, &target, attempt_time);
                if let Some(stats) = &stats {
                    // Whole answers and primed streams both return at their first content.
                    stats.record_ttfb(attempt_time);
                }
                return Ok(Committed {
                    value,
                    target,
                    upstream_time,
                    reason,
                });
            }
            Err(failure) => {
                admitted.settle.refund_quota();
                let kind = failure.error.0.kind;
                record_failure(gateway, snapshot, &health, &target, &failure.error);
                if !kind.is_retryable() {
                    return Err(Exhausted {
                        error: failure.error,
                        target: Some(target),
                        attempts: attempt_number,
                    });
                }
                tracing::warn!(vendor = %target.credential.vendor, credential = %target.credential.name,
                    model = target.upstream_model, attempt = attempt_number, error = %failure.error.0, "attempt failed");
                last = Some((failure.error, target));
            }
        }
        if clock_now() >= deadline {
            break;
        }
    }
    match last {
        Some((error, target)) => Err(Exhausted {
            error,
            target: Some(target),
            attempts: attempt_number,
        }),
        None => Err(Exhausted {
            error: match quota_wait {
                Some(wait) => over_vendor_quota(wait),
                None => no_healthy(snapshot, &candidates),
            },
            target: None,
            attempts: attempt_number,
        }),
    }
}

/// Every candidate's credential is at its vendor quota: a 429, like the vendor would send.
fn over_vendor_quota(wait: Duration) -> ApiError {
    let mut error = ApiError::new(
        ErrorKind::UpstreamStatus(429),
        "every vendor key for this model is at its configured quota (credentials[].limits); retry later",
    );
    error.0.type_override = Some("rate_limit_error".into());
    error.0.code = Some("vendor_quota_exceeded".into());
    error.0.retry_after_secs = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
    error
}

/// The routing policy's choice among the available candidates (llmux-router decides; this
/// only says which candidates are available: healthy, allowed for the caller, and not over
/// their vendor quota); `None` when every candidate is open, cooling down or excluded.
fn pick<'s>(
    snapshot: &'s Snapshot,
    candidates: &Candidates<'s>,
    tried: &[usize],
    excluded: &[usize],
    admitted: &Admitted<'_>,
    now: Instant,
) -> Option<(usize, Target<'s>, TargetHealth, &'static str)> {
    let allowed = admitted.allowed_vendors;
    let available = |position: usize| {
        if excluded.contains(&position)
            || admitted.unfit.contains(&position)
            || (!admitted.retry_tried && tried.contains(&position))
        {
            return false;
        }
        let Some(target) = candidates.get(position) else {
            return false;
        };
        if !allowed.is_empty() && !allowed.contains(&target.credential.vendor) {
            return false;
        }
        TargetHealth::of(snapshot, &target).is_some_and(|h| h.is_available(now))
    };
    let how = llmux_router::Choose {
        policy: admitted.policy,
        tried,
        stats: &snapshot.stats,
        tokens: admitted.tokens,
    };
    let choice = llmux_router::choose(candidates, &how, available, &mut llmux_router::ThreadRng)?;
    let target = candidates.get(choice.position)?;
    let health = TargetHealth::of(snapshot, &target)?;
    Some((choice.position, target, health, choice.reason))
}

/// The half-open probe slots one attempt holds. Dropped before [`ProbeSlots::settled`] (the
/// request was cancelled, or the attempt gave up before sending), it releases them, so a
/// probe whose client disconnected can never keep a combination out of rotation. A guard
/// value rather than a call on every exit path: a dropped future runs no code of its own.
struct ProbeSlots {
    credential: Option<Arc<Health>>,
    combination: Option<Arc<Health>>,
}

impl ProbeSlots {
    /// The attempt reached its verdict, which the breaker records; nothing to release.
    fn settled(mut self) {
        self.credential = None;
        self.combination = None;
    }
}

impl Drop for ProbeSlots {
    fn drop(&mut self) {
        for entry in [self.credential.take(), self.combination.take()]
            .into_iter()
            .flatten()
        {
            entry.release_probe();
        }
    }
}

/// Admits an attempt on `health`'s entries; `None` when either refuses (another request holds
/// the half-open probe).
fn admit(
    gateway: &Gateway,
    health: &TargetHealth,
    target: &Target<'_>,
    now: Instant,
) -> Option<ProbeSlots> {
    let (credential, transition) = health.credential.admit(now);
    note_transition(gateway, target, "credential", transition);
    if credential == Admission::Rejected {
        return None;
    }
    let mut slots = ProbeSlots {
        credential: (credential == Admission::Probe).then(|| Arc::clone(&health.credential)),
        combination: None,
    };
    if let Some(combination) = &health.combination {
        let (admission, transition) = combination.admit(now);
        note_transition(gateway, target, "combination", transition);
        if admission == Admission::Rejected {
            // Dropping `slots` frees the credential's probe, if this request took it.
            return None;
        }
        slots.combination = (admission == Admission::Probe).then(|| Arc::clone(combination));
    }
    Some(slots)
}

fn record_success(
    gateway: &Gateway,
    health: &TargetHealth,
    target: &Target<'_>,
    latency: Duration,
) {
    let transition = health.credential.record_success(latency);
    note_transition(gateway, target, "credential", transition);
    if let Some(combination) = &health.combination {
        let transition = combination.record_success(latency);
        note_transition(gateway, target, "combination", transition);
    }
}

fn record_failure(
    gateway: &Gateway,
    snapshot: &Snapshot,
    health: &TargetHealth,
    target: &Target<'_>,
    error: &ApiError,
) {
    let now = clock_now();
    let kind = error.0.kind;
    let label = failure_label(kind);
    match kind {
        ErrorKind::UpstreamStatus(401 | 403) => {
            // The key itself is refused: take the credential out of rotation at once.
            let mut transition = None;
            for _ in 0..snapshot.config.reliability.breaker_consecutive_failures {
                transition = health.credential.record_failure(now, label).or(transition);
            }
            note_transition(gateway, target, "credential", transition);
            shared_health::opened(gateway, &health.credential, transition);
        }
        ErrorKind::UpstreamUnreachable | ErrorKind::UpstreamTimeout => {
            gateway
                .metrics
                .timeouts
                .get_or_create(&vendor_labels(target))
                .inc();
            let transition = health.credential.record_failure(now, label);
            note_transition(gateway, target, "credential", transition);
            shared_health::opened(gateway, &health.credential, transition);
            record_on_combination(gateway, health, target, now, label);
        }
        kind if kind.is_retryable() => record_on_combination(gateway, health, target, now, label),
        _ => {
            // The client's request was at fault; the vendor is fine. Free a probe slot.
            health.release();
        }
    }
    // A rate limit always cools the combination down (for Retry-After, or a default); overload
    // only when the vendor says for how long. The vendor's number is hostile input: it is cut
    // to `max_cooldown_ms`, so no header can take a combination out for good or overflow the
    // clock.
    let reliability = &snapshot.config.reliability;
    let cooldown = match (kind, error.0.retry_after_secs) {
        (ErrorKind::UpstreamStatus(429), None) => {
            Some(Duration::from_millis(reliability.default_cooldown_ms))
        }
        (ErrorKind::UpstreamStatus(429 | 503 | 529), Some(secs)) => Some(Duration::from_secs(secs)),
        _ => None,
    }
    .map(|d| d.min(Duration::from_millis(reliability.max_cooldown_ms)));
    if let Some(until) = cooldown.and_then(|d| now.checked_add(d)) {
        let entry = health.combination.as_ref().unwrap_or(&health.credential);
        entry.cool_down(until);
        shared_health::cooled(gateway, entry, until);
        gateway
            .metrics
            .cooldowns
            .get_or_create(&vendor_labels(target))
            .inc();
    }
}

fn record_on_combination(
    gateway: &Gateway,
    health: &TargetHealth,
    target: &Target<'_>,
    now: Instant,
    label: &'static str,
) {
    match &health.combination {
        Some(combination) => {
            let transition = combination.record_failure(now, label);
            note_transition(gateway, target, "combination", transition);
            shared_health::opened(gateway, combination, transition);
        }
        None => {
            let transition = health.credential.record_failure(now, label);
            note_transition(gateway, target, "credential", transition);
            shared_health::opened(gateway, &health.credential, transition);
        }
    }
}

/// A bounded label for the kind of failure.
pub fn failure_label(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::UpstreamStatus(400) => "status_400",
        ErrorKind::UpstreamStatus(401) => "status_401",
        ErrorKind::UpstreamStatus(403) => "status_403",
        ErrorKind::UpstreamStatus(404) => "status_404",
        ErrorKind::UpstreamStatus(408) => "status_408",
        ErrorKind::UpstreamStatus(409) => "status_409",
        ErrorKind::UpstreamStatus(429) => "status_429",
        ErrorKind::UpstreamStatus(500) => "status_500",
        ErrorKind::UpstreamStatus(502) => "status_502",
        ErrorKind::UpstreamStatus(503) => "status_503",
        ErrorKind::UpstreamStatus(504) => "status_504",
        ErrorKind::UpstreamStatus(529) => "status_529",
        ErrorKind::UpstreamStatus(_) => "status_other",
        ErrorKind::UpstreamUnreachable => "unreachable",
        ErrorKind::UpstreamTimeout => "timeout",
        ErrorKind::UpstreamProtocol => "protocol",
        _ => "other",
    }
}

fn note_transition(
    gateway: &Gateway,
    target: &Target<'_>,
    scope: &'static str,
    transition: Option<Transition>,
) {
    let Some(transition) = transition else { return };
    let to = match transition {
        Transition::Opened => "open",
        Transition::HalfOpened => "half_open",
        Transition::Closed => "closed",
    };
    tracing::warn!(scope, vendor = %target.credential.vendor, credential = %target.credential.name,
        model = target.public_name, to, "circuit breaker transition");
    gateway
        .metrics
        .breaker_transitions
        .get_or_create(&BreakerLabels {
            vendor: target.credential.vendor.clone(),
            credential: target.credential.name.clone(),
            scope,
            to,
        })
        .inc();
}

fn vendor_labels(target: &Target<'_>) -> VendorLabels {
    VendorLabels {
        vendor: target.credential.vendor.clone(),
    }
}

fn count_selection(gateway: &Gateway, snapshot: &Snapshot, target: &Target<'_>) {
    crate::series::of(snapshot, target).count_selection(&gateway.metrics);
}

/// Every candidate is open or cooling down: a 503 rather than hammering vendors.
fn no_healthy(snapshot: &Snapshot, candidates: &Candidates<'_>) -> ApiError {
    let now = clock_now();
    let soonest = (0..candidates.len())
        .filter_map(|i| candidates.get(i))
        .filter_map(|t| TargetHealth::of(snapshot, &t))
        .filter_map(|h| {
            let c = h.credential.view(now).cooldown_remaining;
            let m = h.combination.and_then(|m| m.view(now).cooldown_remaining);
            c.max(m)
        })
        .min();
    let mut error = ApiError::new(
        ErrorKind::NoCombination,
        format!(
            "no healthy combination: all {} candidate(s) are failing (circuit open) or cooling down after rate limits",
            candidates.len()
        ),
    );
    error.0.code = Some("no_healthy_combination".into());
    error.0.retry_after_secs = soonest.map(|d| d.as_secs().max(1));
    error
}

#[cfg(test)]
mod tests;

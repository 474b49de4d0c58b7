//! One breaker-and-statistics entry, for a combination or a credential.
//!
//! Closed → Open after `consecutive_failures` failures in a row, or when the failure rate over
//! the last `window` outcomes exceeds `failure_rate` (with at least `min_requests` outcomes).
//! Open → HalfOpen once the open period has passed; HalfOpen admits one probe at a time; a
//! successful probe closes the breaker, a failed one re-opens it for twice as long (capped).
//! Independently, a cooldown (from a 429's Retry-After) keeps the entry out of rotation until a
//! given instant without counting as a failure.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Breaker thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BreakerConfig {
    /// Failures in a row that open the breaker.
    pub consecutive_failures: u32,
    /// Failure rate over the window that opens the breaker.
    pub failure_rate: f64,
    /// Outcomes remembered for the failure rate (at most 64).
    pub window: u32,
    /// Outcomes needed before the failure rate counts.
    pub min_requests: u32,
    /// First open period.
    pub open_for: Duration,
    /// Longest open period after repeated failed probes.
    pub max_open_for: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            consecutive_failures: 5,
            failure_rate: 0.5,
            window: 20,
            min_requests: 10,
            open_for: Duration::from_secs(30),
            max_open_for: Duration::from_secs(300),
        }
    }
}

/// The breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Traffic flows.
    Closed,
    /// No traffic until the open period ends.
    Open,
    /// One probe at a time decides.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// Whether a request may use this entry now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Yes.
    Allowed,
    /// Yes, as the half-open probe; report its outcome.
    Probe,
    /// No: open, probing, or cooling down until this instant.
    Rejected,
}

/// A state change worth a metric and a log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The breaker opened.
    Opened,
    /// A probe was admitted.
    HalfOpened,
    /// The breaker closed again.
    Closed,
}

/// What `/health/vendors` shows for one entry.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthView {
    /// Breaker state.
    pub state: BreakerState,
    /// Cooldown end, when cooling down.
    pub cooldown_remaining: Option<Duration>,
    /// Failure rate over the recent window (0 when empty).
    pub error_rate: f64,
    /// Outcomes in the window.
    pub recent_requests: u32,
    /// The kind of the last failure, if any.
    pub last_error: Option<&'static str>,
    /// Median latency of recent successes.
    pub p50_latency: Option<Duration>,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    consecutive_failures: u32,
    /// Bit i set = failure, for the last `len` outcomes (newest in bit 0).
    outcomes: u64,
    len: u32,
    open_until: Option<Instant>,
    open_for: Duration,
    probe_in_flight: bool,
    cooldown_until: Option<Instant>,
    last_error: Option<&'static str>,
    latencies: [u32; 16],
    latency_count: usize,
}

/// A breaker with cooldown and recent statistics. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Health {
    config: BreakerConfig,
    inner: Mutex<Inner>,
    /// The name under which this entry's decisions are shared with other replicas.
    shared_id: Option<String>,
}

impl Health {
    /// A closed breaker.
    pub fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            inner: Mutex::new(Inner {
                state: BreakerState::Closed,
                consecutive_failures: 0,
                outcomes: 0,
                len: 0,
                open_until: None,
                open_for: config.open_for,
                probe_in_flight: false,
                cooldown_until: None,
                last_error: None,
                latencies: [0; 16],
                latency_count: 0,
            }),
            shared_id: None,
        }
    }

    /// The same entry, shared with other replicas under `id`.
    pub fn shared_as(mut self, id: String) -> Self {
        self.shared_id = Some(id);
        self
    }

    /// The name under which this entry is shared, if any.
    pub fn shared_id(&self) -> Option<&str> {
        self.shared_id.as_deref()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means a panic elsewhere; the counters are still usable.
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a request may go here at `now`, without reserving anything (for selection).
    pub fn is_available(&self, now: Instant) -> bool {
        let inner = self.lock();
        if inner.cooldown_until.is_some_and(|until| now < until) {
            return false;
        }
        match inner.state {
            BreakerState::Closed => true,
            BreakerState::Open => inner.open_until.is_none_or(|until| now >= until),
            BreakerState::HalfOpen => !inner.probe_in_flight,
        }
    }

    /// Admits a request at `now`; an open breaker whose period ended admits one probe.
    pub fn admit(&self, now: Instant) -> (Admission, Option<Transition>) {
        let mut inner = self.lock();
        if inner.cooldown_until.is_some_and(|until| now < until) {
            return (Admission::Rejected, None);
        }
        match inner.state {
            BreakerState::Closed => (Admission::Allowed, None),
            BreakerState::Open if inner.open_until.is_none_or(|until| now >= until) => {
                inner.state = BreakerState::HalfOpen;
                inner.probe_in_flight = true;
                (Admission::Probe, Some(Transition::HalfOpened))
            }
            BreakerState::HalfOpen if !inner.probe_in_flight => {
                inner.probe_in_flight = true;
                (Admission::Probe, None)
            }
            BreakerState::Open | BreakerState::HalfOpen => (Admission::Rejected, None),
        }
    }

    /// Records a success and its latency.
    pub fn record_success(&self, latency: Duration) -> Option<Transition> {
        let mut inner = self.lock();
        inner.consecutive_failures = 0;
        push_outcome(&mut inner, false, self.config.window);
        let slot = inner.latency_count % inner.latencies.len();
        inner.latencies[slot] = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        inner.latency_count += 1;
        inner.probe_in_flight = false;
        if inner.state == BreakerState::Closed {
            return None;
        }
        inner.state = BreakerState::Closed;
        inner.open_until = None;
        inner.open_for = self.config.open_for;
        Some(Transition::Closed)
    }

    /// Records a failure of kind `kind` (a static label such as `status_503`, `timeout`).
    pub fn record_failure(&self, now: Instant, kind: &'static str) -> Option<Transition> {
        let mut inner = self.lock();
        inner.consecutive_failures += 1;
        inner.last_error = Some(kind);
        push_outcome(&mut inner, true, self.config.window);
        let was_probe = inner.state == BreakerState::HalfOpen;
        inner.probe_in_flight = false;
        if was_probe {
            // A failed probe: open again, for longer.
            let doubled = inner
                .open_for
                .saturating_mul(2)
                .min(self.config.max_open_for);
            inner.open_for = doubled;
            inner.state = BreakerState::Open;
            inner.open_until = Some(now + doubled);
            return Some(Transition::Opened);
        }
        let failures = inner.outcomes.count_ones();
        let rate_trips = inner.len >= self.config.min_requests
            && f64::from(failures) / f64::from(inner.len.max(1)) > self.config.failure_rate;
        if inner.state == BreakerState::Closed
            && (inner.consecutive_failures >= self.config.consecutive_failures || rate_trips)
        {
            inner.state = BreakerState::Open;
            inner.open_until = Some(now + inner.open_for);
            return Some(Transition::Opened);
        }
        None
    }

    /// Releases a probe that ended without a verdict (the client went away).
    pub fn release_probe(&self) {
        self.lock().probe_in_flight = false;
    }

    /// Keeps this entry out of rotation until `until` (Retry-After). Never shortens a cooldown.
    pub fn cool_down(&self, until: Instant) {
        let mut inner = self.lock();
        if inner.cooldown_until.is_none_or(|current| current < until) {
            inner.cooldown_until = Some(until);
        }
    }

    /// Opens the breaker until `until` because another replica opened it (shared state), unless
    /// it is already open at least that long. Reports `Opened` when it was not open before.
    /// Failures are not counted: the other replica counted them.
    pub fn open_until(&self, now: Instant, until: Instant) -> Option<Transition> {
        let mut inner = self.lock();
        if until <= now
            || (inner.state == BreakerState::Open && inner.open_until.is_some_and(|u| u >= until))
        {
            return None;
        }
        let was_open = inner.state == BreakerState::Open;
        inner.state = BreakerState::Open;
        inner.open_until = Some(until);
        inner.probe_in_flight = false;
        (!was_open).then_some(Transition::Opened)
    }

    /// When an open breaker lets its next probe through (`None` unless open).
    pub fn opened_until(&self) -> Option<Instant> {
        let inner = self.lock();
        (inner.state == BreakerState::Open)
            .then_some(inner.open_until)
            .flatten()
    }

    /// The entry as `/health/vendors` shows it.
    pub fn view(&self, now: Instant) -> HealthView {
        let inner = self.lock();
        let mut latencies: Vec<u32> =
            inner.latencies[..inner.latency_count.min(inner.latencies.len())].to_vec();
        latencies.sort_unstable();
        let state = match inner.state {
            BreakerState::Open if inner.open_until.is_some_and(|until| now >= until) => {
                BreakerState::HalfOpen
            }
            state => state,
        };
        HealthView {
            state,
            cooldown_remaining: inner
                .cooldown_until
                .and_then(|until| until.checked_duration_since(now))
                .filter(|d| !d.is_zero()),
            error_rate: if inner.len == 0 {
                0.0
            } else {
                f64::from(inner.outcomes.count_ones()) / f64::from(inner.len)
            },
            recent_requests: inner.len,
            last_error: inner.last_error,
            p50_latency: latencies
                .get(latencies.len() / 2)
                .map(|&us| Duration::from_micros(u64::from(us))),
        }
    }
}

fn push_outcome(inner: &mut Inner, failure: bool, window: u32) {
    let window = window.clamp(1, 64);
    inner.outcomes = (inner.outcomes << 1) | u64::from(failure);
    if window < 64 {
        inner.outcomes &= (1u64 << window) - 1;
    }
    inner.len = (inner.len + 1).min(window);
}

#[cfg(test)]
mod tests;

//! The attempt loop against a scripted upstream, on tokio's paused clock: backoff sleeps and
//! the request deadline advance without real waiting.
//!
//! Each test builds a gateway from YAML with one model served by several `openai` credentials
//! (`a`, `b`, `c`), so every candidate is one combination named after its credential. The
//! upstream answers each attempt from a script and records the order of the targets it was
//! asked for.
//!
//! The loop reads tokio's clock (`clock_now`), so paused time moves its deadline and the
//! breakers' open periods along with the sleeps and timeouts it awaits.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use llmux_protocol::error::ErrorKind;
use llmux_reliability::{BreakerState, Health, HealthView};
use llmux_router::{Endpoint, Needs, Query, RoutingPolicy, Target, Tokens};
use llmux_telemetry::metrics::VendorLabels;

use super::{Admitted, Failure, run};
use crate::api_error::ApiError;
use crate::governance::Settle;
use crate::state::{Gateway, Snapshot};

const MODEL: &str = "gpt-4o-mini";

/// What the upstream does with one attempt.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// Answers with the credential's name.
    Answer,
    /// Fails with this status at once.
    Status(u16),
    /// Fails with this status and a `Retry-After` of this many seconds.
    RetryAfter(u16, u64),
    /// Fails as unreachable (connect error).
    Unreachable,
    /// Fails with this status after this long.
    SlowStatus(u16, Duration),
    /// Never answers.
    Hang,
}

/// A scripted upstream: each credential answers from its own queue of steps, or, when it has
/// none, from the shared queue `*`; an empty queue answers. Records every target asked for.
#[derive(Default)]
struct Upstream {
    script: Mutex<HashMap<String, VecDeque<Step>>>,
    calls: Mutex<Vec<String>>,
}

impl Upstream {
    fn new(script: &[(&str, &[Step])]) -> Self {
        Self {
            script: Mutex::new(
                script
                    .iter()
                    .map(|(name, steps)| ((*name).to_owned(), steps.iter().copied().collect()))
                    .collect(),
            ),
            calls: Mutex::default(),
        }
    }

    /// The attempt closure's body: records the target, then plays its next step.
    fn attempt(&self, target: Target<'_>) -> impl Future<Output = Result<String, Failure>> {
        let name = target.credential.name.clone();
        self.calls.lock().unwrap().push(name.clone());
        let step = {
            let mut script = self.script.lock().unwrap();
            let own = script.get_mut(&name).and_then(VecDeque::pop_front);
            own.or_else(|| script.get_mut("*").and_then(VecDeque::pop_front))
                .unwrap_or(Step::Answer)
        };
        async move {
            match step {
                Step::Answer => Ok(name),
                Step::Status(status) => Err(status_error(status, None)),
                Step::RetryAfter(status, secs) => Err(status_error(status, Some(secs))),
                Step::Unreachable => Err(Failure::from(ApiError::new(
                    ErrorKind::UpstreamUnreachable,
                    "scripted connect error",
                ))),
                Step::SlowStatus(status, after) => {
                    tokio::time::sleep(after).await;
                    Err(status_error(status, None))
                }
                Step::Hang => std::future::pending().await,
            }
        }
    }

    /// The targets asked for so far, in order; clears the record.
    fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

fn status_error(status: u16, retry_after_secs: Option<u64>) -> Failure {
    let mut error = ApiError::new(ErrorKind::UpstreamStatus(status), "scripted failure");
    error.0.retry_after_secs = retry_after_secs;
    Failure::from(error)
}

/// A gateway serving `MODEL` on one `openai` credential per name in `credentials` (each with
/// its extra YAML fields, e.g. `limits: { rpm: 1 }`), plus the `extra` top-level YAML.
fn gateway(credentials: &[(&str, &str)], extra: &str) -> Arc<Gateway> {
    let mut yaml = String::from("credentials:\n");
    for (name, fields) in credentials {
        let fields = if fields.is_empty() {
            String::new()
        } else {
            format!(", {fields}")
        };
        yaml.push_str(&format!(
            "  - {{ platform: openai, name: {name}, value: sk-test-{name}-0123456789{fields} }}\n"
        ));
    }
    yaml.push_str(&format!(
        "models:\n  - {{ vendor: openai, model: {MODEL} }}\n"
    ));
    yaml.push_str(extra);
    let config = llmux_config::from_str(&yaml, llmux_config::Format::Yaml, &|_| None)
        .unwrap_or_else(|e| panic!("config {yaml}: {e:?}"));
    Gateway::new(Snapshot::compile(config).unwrap()).unwrap()
}

fn plain(names: &[&'static str]) -> Vec<(&'static str, &'static str)> {
    names.iter().map(|name| (*name, "")).collect()
}

/// One request through `attempts::run` with the `even` policy: the answering credential's name,
/// or the error the client would get (and the target it names, if any).
async fn send(
    gateway: &Gateway,
    upstream: &Upstream,
) -> Result<String, (ApiError, Option<String>)> {
    let snapshot = gateway.snapshot.load_full();
    let query = Query {
        endpoint: Endpoint::Chat,
        model: Some(MODEL),
        vendor: None,
        needs: Needs::default(),
    };
    let candidates = snapshot.table.candidates(&query).unwrap();
    let settle = Settle::default();
    let admitted = Admitted {
        unfit: &[],
        allowed_vendors: &[],
        max_attempts: snapshot.config.reliability.max_attempts,
        deadline: super::clock_now() + Duration::from_millis(snapshot.config.timeouts.total_ms),
        retry_tried: true,
        policy: RoutingPolicy::Even,
        tokens: Tokens::default(),
        reserve_tokens: 0,
        settle: &settle,
    };
    match run(gateway, &snapshot, candidates, &admitted, |target| {
        upstream.attempt(target)
    })
    .await
    {
        Ok(committed) => {
            assert_eq!(
                committed.value, committed.target.credential.name,
                "the committed target is the one that answered"
            );
            Ok(committed.value)
        }
        Err(exhausted) => Err((
            exhausted.error,
            exhausted.target.map(|t| t.credential.name.clone()),
        )),
    }
}

/// The combination (`MODEL` on credential `name`) health entry.
fn combination(gateway: &Gateway, name: &str) -> Arc<Health> {
    let snapshot = gateway.snapshot.load_full();
    let index = snapshot
        .table
        .combinations()
        .iter()
        .position(|c| snapshot.table.credentials()[c.credential].name == name)
        .unwrap_or_else(|| panic!("no combination on credential {name}"));
    Arc::clone(&snapshot.health.combinations[index])
}

/// The credential `name`'s health entry.
fn credential(gateway: &Gateway, name: &str) -> Arc<Health> {
    let snapshot = gateway.snapshot.load_full();
    let index = snapshot
        .table
        .credentials()
        .iter()
        .position(|c| c.name == name)
        .unwrap_or_else(|| panic!("no credential {name}"));
    Arc::clone(&snapshot.health.credentials[index])
}

fn view(entry: &Health) -> HealthView {
    entry.view(Instant::now())
}

/// The entry as seen on tokio's clock (which runs ahead of std's clock once paused time
/// was advanced).
fn view_paused(entry: &Health) -> HealthView {
    entry.view(tokio::time::Instant::now().into_std())
}

/// Opens `entry` as another replica would have, for a period that is already over: the next
/// request is the half-open probe. (Set on the entry directly because attempts.rs measures the
/// open period on std's clock, which paused time does not move.)
fn open_and_over(entry: &Health) {
    let now = Instant::now();
    let ago = |secs| now.checked_sub(Duration::from_secs(secs)).unwrap();
    entry.open_until(ago(20), ago(10));
}

fn openai() -> VendorLabels {
    VendorLabels {
        vendor: "openai".into(),
    }
}

fn retries(gateway: &Gateway) -> u64 {
    gateway.metrics.retries.get_or_create(&openai()).get()
}

fn failovers(gateway: &Gateway) -> u64 {
    gateway.metrics.failovers.get_or_create(&openai()).get()
}

fn status_of(error: &ApiError) -> ErrorKind {
    error.0.kind
}

// --- retry and failover -------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_500_fails_over_to_another_combination_and_counts_the_retry() {
    let gateway = gateway(&plain(&["a", "b"]), "");
    // Whichever target comes first fails; the next one answers.
    let upstream = Upstream::new(&[("*", &[Step::Status(500)])]);

    let answer = send(&gateway, &upstream)
        .await
        .expect("the second target answers");

    let calls = upstream.take_calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_ne!(calls[0], calls[1], "the retry went to another combination");
    assert_eq!(answer, calls[1]);
    assert_eq!(retries(&gateway), 1);
    assert_eq!(failovers(&gateway), 1);
    let failed = view(&combination(&gateway, &calls[0]));
    assert_eq!(failed.state, BreakerState::Closed);
    assert_eq!(failed.recent_requests, 1);
    assert_eq!(failed.last_error, Some("status_500"));
    let answered = view(&combination(&gateway, &calls[1]));
    assert_eq!((answered.recent_requests, answered.error_rate), (1, 0.0));
}

#[tokio::test(start_paused = true)]
async fn every_candidate_is_tried_before_any_is_tried_again() {
    for _ in 0..16 {
        let gateway = gateway(
            &plain(&["a", "b", "c"]),
            "reliability: { max_attempts: 6 }\n",
        );
        // Each fails once, then answers.
        let upstream = Upstream::new(&[
            ("a", &[Step::Status(502)]),
            ("b", &[Step::Status(502)]),
            ("c", &[Step::Status(502)]),
        ]);

        let answer = send(&gateway, &upstream).await.expect("a repeat answers");

        let calls = upstream.take_calls();
        assert_eq!(calls.len(), 4, "{calls:?}");
        let mut first_three = calls[..3].to_vec();
        first_three.sort();
        assert_eq!(
            first_three,
            ["a", "b", "c"],
            "no repeat before all were tried: {calls:?}"
        );
        assert_eq!(answer, calls[3]);
        assert_eq!(retries(&gateway), 3);
        assert_eq!(
            failovers(&gateway),
            2,
            "the fourth attempt is a retry, not a failover"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn max_attempts_caps_the_attempts_with_candidates_left() {
    let gateway = gateway(
        &plain(&["a", "b", "c"]),
        "reliability: { max_attempts: 2 }\n",
    );
    let upstream = Upstream::new(&[("*", &[Step::Status(503); 3])]);

    let (error, target) = send(&gateway, &upstream)
        .await
        .expect_err("both attempts fail");

    let calls = upstream.take_calls();
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert_ne!(calls[0], calls[1]);
    assert_eq!(status_of(&error), ErrorKind::UpstreamStatus(503));
    assert_eq!(
        target.as_deref(),
        Some(calls[1].as_str()),
        "the last target tried"
    );
    assert_eq!(retries(&gateway), 1);
}

// --- what counts where --------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_400_stops_at_once_and_counts_against_nothing() {
    let gateway = gateway(
        &plain(&["a", "b"]),
        "reliability: { breaker: { consecutive_failures: 2 } }\n",
    );
    let upstream = Upstream::new(&[("*", &[Step::Status(400); 3])]);

    for _ in 0..3 {
        let (error, target) = send(&gateway, &upstream).await.expect_err("a client error");
        let calls = upstream.take_calls();
        assert_eq!(calls.len(), 1, "no retry after a 400: {calls:?}");
        assert_eq!(status_of(&error), ErrorKind::UpstreamStatus(400));
        assert_eq!(target, Some(calls[0].clone()));
    }

    assert_eq!(retries(&gateway), 0);
    for name in ["a", "b"] {
        for entry in [combination(&gateway, name), credential(&gateway, name)] {
            let seen = view(&entry);
            assert_eq!(seen.state, BreakerState::Closed, "{name}");
            assert_eq!(seen.recent_requests, 0, "{name}: a 400 is not an outcome");
            assert_eq!(seen.last_error, None, "{name}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_vendor_counts_against_the_credential_and_the_combination() {
    let gateway = gateway(&plain(&["a"]), "reliability: { max_attempts: 1 }\n");
    let upstream = Upstream::new(&[("a", &[Step::Unreachable])]);

    let (error, _) = send(&gateway, &upstream).await.expect_err("unreachable");

    assert_eq!(status_of(&error), ErrorKind::UpstreamUnreachable);
    for entry in [combination(&gateway, "a"), credential(&gateway, "a")] {
        let seen = view(&entry);
        assert_eq!(seen.recent_requests, 1);
        assert_eq!(seen.last_error, Some("unreachable"));
    }
    assert_eq!(gateway.metrics.timeouts.get_or_create(&openai()).get(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_401_opens_the_credential_at_once_and_later_requests_skip_it() {
    let gateway = gateway(&plain(&["a", "b"]), "");
    let upstream = Upstream::new(&[("a", &[Step::Status(401)])]);

    // Until `a` is asked once (the order is random), requests may land on `b`.
    for _ in 0..64 {
        let _ = send(&gateway, &upstream).await;
        if upstream.take_calls().contains(&"a".to_owned()) {
            break;
        }
    }
    assert_eq!(view(&credential(&gateway, "a")).state, BreakerState::Open);

    for _ in 0..16 {
        assert_eq!(send(&gateway, &upstream).await.ok().as_deref(), Some("b"));
        assert_eq!(upstream.take_calls(), ["b"]);
    }
}

// --- breaker feedback ---------------------------------------------------------------------

const TWO_STRIKES: &str = "reliability: { breaker: { consecutive_failures: 2, open_ms: 30000 } }\n";

/// Sends requests until credential `a`'s combination (which always fails with a 500) is open;
/// the others answer.
async fn open_a(gateway: &Gateway, upstream: &Upstream) {
    for _ in 0..64 {
        if view(&combination(gateway, "a")).state == BreakerState::Open {
            upstream.take_calls();
            return;
        }
        send(gateway, upstream)
            .await
            .expect("another target answers");
    }
    panic!("two failures in a row never opened a's combination");
}

#[tokio::test(start_paused = true)]
async fn two_failures_in_a_row_open_the_combination_and_requests_skip_it() {
    let gateway = gateway(&plain(&["a", "b"]), TWO_STRIKES);
    let upstream = Upstream::new(&[("a", &[Step::Status(500); 64])]);

    open_a(&gateway, &upstream).await;

    let a = view(&combination(&gateway, "a"));
    assert_eq!((a.state, a.recent_requests), (BreakerState::Open, 2));
    assert_eq!(
        view(&credential(&gateway, "a")).state,
        BreakerState::Closed,
        "a 500 is the model's, not the key's"
    );
    for _ in 0..16 {
        assert_eq!(send(&gateway, &upstream).await.ok().as_deref(), Some("b"));
        assert_eq!(
            upstream.take_calls(),
            ["b"],
            "the open combination is skipped"
        );
    }
    assert_eq!(
        retries(&gateway),
        2,
        "one retry after each of a's two failures"
    );
}

#[tokio::test(start_paused = true)]
async fn after_the_open_period_one_probe_is_admitted_and_its_success_closes_the_breaker() {
    let gateway = gateway(&plain(&["a", "b"]), TWO_STRIKES);
    let upstream = Upstream::new(&[("a", &[Step::Status(500), Step::Status(500), Step::Hang])]);
    open_a(&gateway, &upstream).await;
    // Only `a` may serve from here on: `b` cools down for an hour.
    credential(&gateway, "b")
        .cool_down(tokio::time::Instant::now().into_std() + Duration::from_secs(3600));

    tokio::time::advance(Duration::from_millis(30_001)).await;
    assert_eq!(
        view_paused(&combination(&gateway, "a")).state,
        BreakerState::HalfOpen
    );

    // The probe hangs (its request stays in flight) ...
    let mut probe = std::pin::pin!(send(&gateway, &upstream));
    assert!(
        tokio::time::timeout(Duration::from_millis(1), &mut probe)
            .await
            .is_err()
    );
    assert_eq!(upstream.take_calls(), ["a"], "the probe went to a");
    // ... and while it is in flight no second request gets through.
    let (error, target) = send(&gateway, &upstream)
        .await
        .expect_err("no second probe");
    assert_eq!(status_of(&error), ErrorKind::NoCombination);
    assert_eq!(target, None);
    assert!(upstream.take_calls().is_empty());

    // The probe's verdict: `total_ms` ends it as a timeout, which re-opens the breaker.
    let (error, _) = probe.await.expect_err("the probe timed out");
    assert_eq!(status_of(&error), ErrorKind::UpstreamTimeout);
    assert_eq!(
        view_paused(&combination(&gateway, "a")).state,
        BreakerState::Open
    );

    // After the doubled open period, the next probe answers and closes the breaker.
    tokio::time::advance(Duration::from_millis(60_001)).await;
    assert_eq!(send(&gateway, &upstream).await.ok().as_deref(), Some("a"));
    assert_eq!(
        view_paused(&combination(&gateway, "a")).state,
        BreakerState::Closed
    );
}

#[tokio::test(start_paused = true)]
async fn a_dropped_probe_releases_its_slot_for_the_next_request() {
    let gateway = gateway(&plain(&["a"]), "");
    // Another replica opened the combination, and its open period is over.
    let a = combination(&gateway, "a");
    open_and_over(&a);
    assert_eq!(view(&a).state, BreakerState::HalfOpen);
    let upstream = Upstream::new(&[("a", &[Step::Hang])]);

    // The probe hangs and its client goes away: the request future is dropped.
    let gone = tokio::time::timeout(Duration::from_millis(50), send(&gateway, &upstream)).await;
    assert!(gone.is_err(), "the probe was still pending");
    assert_eq!(upstream.take_calls(), ["a"]);

    // Not stuck: the next request is admitted as the probe, and its answer closes the breaker.
    assert_eq!(send(&gateway, &upstream).await.ok().as_deref(), Some("a"));
    assert_eq!(upstream.take_calls(), ["a"]);
    assert_eq!(view(&a).state, BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_probe_that_gets_a_400_frees_the_slot_without_a_verdict() {
    let gateway = gateway(&plain(&["a"]), "");
    let a = combination(&gateway, "a");
    open_and_over(&a);
    let upstream = Upstream::new(&[("a", &[Step::Status(400)])]);

    let (error, _) = send(&gateway, &upstream).await.expect_err("a client error");
    assert_eq!(status_of(&error), ErrorKind::UpstreamStatus(400));
    assert_eq!(
        view(&a).state,
        BreakerState::HalfOpen,
        "no verdict from a 400"
    );

    assert_eq!(send(&gateway, &upstream).await.ok().as_deref(), Some("a"));
    assert_eq!(view(&a).state, BreakerState::Closed);
}

// --- the deadline -------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_hanging_attempt_ends_at_the_deadline_as_a_timeout() {
    let gateway = gateway(
        &plain(&["a"]),
        "timeouts: { total_ms: 1000 }\nreliability: { max_attempts: 1 }\n",
    );
    let upstream = Upstream::new(&[("a", &[Step::Hang])]);
    let started = tokio::time::Instant::now();

    let (error, target) = send(&gateway, &upstream).await.expect_err("the deadline");

    let elapsed = started.elapsed();
    assert!(
        (Duration::from_millis(999)..=Duration::from_millis(1001)).contains(&elapsed),
        "{elapsed:?}"
    );
    assert_eq!(status_of(&error), ErrorKind::UpstreamTimeout);
    assert_eq!(target.as_deref(), Some("a"));
    assert_eq!(upstream.take_calls(), ["a"]);
    for entry in [combination(&gateway, "a"), credential(&gateway, "a")] {
        assert_eq!(view(&entry).last_error, Some("timeout"));
    }
}

#[tokio::test(start_paused = true)]
async fn nothing_is_attempted_after_the_deadline() {
    let gateway = gateway(&plain(&["a", "b"]), "timeouts: { total_ms: 1000 }\n");
    let upstream = Upstream::new(&[("*", &[Step::Hang; 3])]);
    let started = tokio::time::Instant::now();

    let (error, _) = send(&gateway, &upstream).await.expect_err("the deadline");

    assert_eq!(started.elapsed(), Duration::from_millis(1000));
    assert_eq!(status_of(&error), ErrorKind::UpstreamTimeout);
    assert_eq!(
        upstream.take_calls().len(),
        1,
        "no attempt after the deadline"
    );
}

#[tokio::test(start_paused = true)]
async fn a_backoff_that_reaches_the_deadline_does_not_charge_the_next_target() {
    // The first attempt fails after 900 ms; any backoff over the 100 ms left (almost certain
    // with a 10 s ceiling) reaches the deadline before a second attempt could run.
    fastrand::seed(19);
    let gateway = gateway(
        &plain(&["a", "b"]),
        "timeouts: { total_ms: 1000 }\nreliability: { backoff_base_ms: 10000, backoff_max_ms: 10000 }\n",
    );
    let upstream = Upstream::new(&[("*", &[Step::SlowStatus(500, Duration::from_millis(900)); 2])]);
    let started = tokio::time::Instant::now();

    let result = send(&gateway, &upstream).await;

    assert!(started.elapsed() <= Duration::from_millis(1000));
    let calls = upstream.take_calls();
    assert!(result.is_err());
    assert_eq!(calls.len(), 1, "no attempt without time left: {calls:?}");
    let other = if calls[0] == "a" { "b" } else { "a" };
    for entry in [combination(&gateway, other), credential(&gateway, other)] {
        assert_eq!(
            view_paused(&entry).recent_requests,
            0,
            "{other} was never tried"
        );
    }
}

// --- Retry-After and cooldowns ------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_huge_retry_after_cools_down_no_longer_than_max_cooldown() {
    for status in [429, 503, 529] {
        let gateway = gateway(
            &plain(&["a"]),
            "reliability: { max_cooldown_ms: 60000, max_attempts: 3 }\n",
        );
        let upstream = Upstream::new(&[("a", &[Step::RetryAfter(status, u64::MAX)])]);

        let (error, target) = send(&gateway, &upstream).await.expect_err("rate limited");

        assert_eq!(status_of(&error), ErrorKind::UpstreamStatus(status));
        assert_eq!(target.as_deref(), Some("a"));
        assert_eq!(
            upstream.take_calls(),
            ["a"],
            "a cooling combination is not retried"
        );
        let cooldown = view(&combination(&gateway, "a"))
            .cooldown_remaining
            .expect("cooling down");
        assert!(
            cooldown <= Duration::from_secs(60) && cooldown > Duration::from_secs(59),
            "{status}: {cooldown:?}"
        );
        assert_eq!(
            view(&credential(&gateway, "a")).cooldown_remaining,
            None,
            "the combination cools down, not the key"
        );
        assert_eq!(gateway.metrics.cooldowns.get_or_create(&openai()).get(), 1);

        // While it cools down, requests are refused without reaching the vendor.
        let (error, _) = send(&gateway, &upstream).await.expect_err("cooling down");
        assert_eq!(status_of(&error), ErrorKind::NoCombination);
        assert!(upstream.take_calls().is_empty());
        assert!(matches!(error.0.retry_after_secs, Some(59 | 60)));
    }
}

#[tokio::test(start_paused = true)]
async fn a_429_without_retry_after_cools_down_for_the_default_and_fails_over() {
    let gateway = gateway(
        &plain(&["a", "b"]),
        "reliability: { default_cooldown_ms: 5000 }\n",
    );
    let upstream = Upstream::new(&[("*", &[Step::Status(429)])]);

    let answer = send(&gateway, &upstream)
        .await
        .expect("the other one answers");

    let calls = upstream.take_calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(answer, calls[1]);
    let cooldown = view(&combination(&gateway, &calls[0]))
        .cooldown_remaining
        .expect("cooling down");
    assert!(cooldown <= Duration::from_secs(5) && cooldown > Duration::from_secs(4));
    assert_eq!(
        view(&combination(&gateway, &calls[1])).cooldown_remaining,
        None
    );
}

// --- vendor quotas ------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_credential_over_its_quota_is_skipped_without_using_an_attempt() {
    // One attempt only: if skipping `a` used it, requests that pick `a` first would fail.
    let gateway = gateway(
        &[("a", "limits: { rpm: 1 }"), ("b", "")],
        "reliability: { max_attempts: 1 }\n",
    );
    let upstream = Upstream::new(&[]);
    // Until `a` answered once (using its one request this minute), requests may land on `b`.
    for _ in 0..64 {
        send(&gateway, &upstream).await.expect("an answer");
        if upstream.take_calls() == ["a"] {
            break;
        }
    }

    for _ in 0..16 {
        assert_eq!(send(&gateway, &upstream).await.ok().as_deref(), Some("b"));
        assert_eq!(
            upstream.take_calls(),
            ["b"],
            "a is never sent over its quota"
        );
    }
    assert_eq!(retries(&gateway), 0, "a skip is not a retry");
    assert_eq!(view(&combination(&gateway, "a")).recent_requests, 1);
}

#[tokio::test(start_paused = true)]
async fn every_credential_over_its_quota_is_a_429_naming_the_quota() {
    let gateway = gateway(
        &[("a", "limits: { rpm: 1 }"), ("b", "limits: { rpm: 1 }")],
        "",
    );
    let upstream = Upstream::new(&[]);

    let first = send(&gateway, &upstream).await.expect("room");
    let second = send(&gateway, &upstream).await.expect("room on the other");
    assert_ne!(first, second);
    assert_eq!(upstream.take_calls().len(), 2, "one call each");

    let (error, target) = send(&gateway, &upstream).await.expect_err("no room");
    assert!(upstream.take_calls().is_empty(), "nothing was sent");
    assert_eq!(target, None);
    assert_eq!(status_of(&error), ErrorKind::UpstreamStatus(429));
    assert_eq!(error.0.code.as_deref(), Some("vendor_quota_exceeded"));
    assert!(
        error
            .0
            .retry_after_secs
            .is_some_and(|s| (1..=60).contains(&s))
    );
    assert_eq!(retries(&gateway), 0);
}

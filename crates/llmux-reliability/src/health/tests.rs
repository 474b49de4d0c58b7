use super::*;

fn config() -> BreakerConfig {
    BreakerConfig {
        consecutive_failures: 3,
        failure_rate: 0.5,
        window: 10,
        min_requests: 6,
        open_for: Duration::from_secs(10),
        max_open_for: Duration::from_secs(40),
    }
}

const MS: Duration = Duration::from_millis(1);

#[test]
fn opens_after_consecutive_failures_then_probes_and_closes() {
    let health = Health::new(config());
    let t0 = Instant::now();
    assert_eq!(health.record_failure(t0, "status_500"), None);
    assert_eq!(health.record_failure(t0, "status_500"), None);
    assert_eq!(
        health.record_failure(t0, "status_503"),
        Some(Transition::Opened)
    );
    assert!(!health.is_available(t0 + Duration::from_secs(9)));
    assert_eq!(
        health.admit(t0 + Duration::from_secs(9)).0,
        Admission::Rejected
    );

    let later = t0 + Duration::from_secs(10);
    assert!(health.is_available(later));
    assert_eq!(
        health.admit(later),
        (Admission::Probe, Some(Transition::HalfOpened))
    );
    // Only one probe at a time.
    assert_eq!(health.admit(later).0, Admission::Rejected);
    assert!(!health.is_available(later));
    assert_eq!(health.record_success(MS), Some(Transition::Closed));
    assert_eq!(health.admit(later).0, Admission::Allowed);
    assert_eq!(health.view(later).state, BreakerState::Closed);
}

#[test]
fn a_failed_probe_reopens_for_twice_as_long_capped() {
    let health = Health::new(config());
    let mut now = Instant::now();
    for _ in 0..3 {
        health.record_failure(now, "timeout");
    }
    let mut expected = Duration::from_secs(10);
    for _ in 0..4 {
        now += expected;
        assert_eq!(health.admit(now).0, Admission::Probe);
        assert_eq!(
            health.record_failure(now, "timeout"),
            Some(Transition::Opened)
        );
        expected = (expected * 2).min(Duration::from_secs(40));
        assert!(!health.is_available(now + expected - MS));
        assert!(health.is_available(now + expected));
    }
}

#[test]
fn opens_on_failure_rate_even_without_a_streak() {
    let health = Health::new(config());
    let now = Instant::now();
    // fail, ok, fail, ok, fail, fail(no streak of 3) → 4 of 6 failed = 67% > 50%.
    for (i, fail) in [true, false, true, false, true, true]
        .into_iter()
        .enumerate()
    {
        let t = if fail {
            health.record_failure(now, "status_500")
        } else {
            health.record_success(MS)
        };
        if i < 5 {
            assert_eq!(t, None, "step {i}");
        } else {
            assert_eq!(t, Some(Transition::Opened));
        }
    }
}

#[test]
fn successes_keep_the_rate_below_the_threshold() {
    let health = Health::new(config());
    let now = Instant::now();
    for i in 0..100 {
        if i % 3 == 0 {
            assert_eq!(health.record_failure(now, "status_500"), None);
        } else {
            health.record_success(MS);
        }
    }
    assert_eq!(health.view(now).state, BreakerState::Closed);
    let rate = health.view(now).error_rate;
    assert!((0.2..0.45).contains(&rate), "{rate}");
}

#[test]
fn cooldown_takes_the_entry_out_until_it_ends_without_opening_the_breaker() {
    let health = Health::new(config());
    let now = Instant::now();
    health.cool_down(now + Duration::from_secs(2));
    health.cool_down(now + Duration::from_secs(1)); // never shortened
    assert!(!health.is_available(now + Duration::from_millis(1999)));
    assert_eq!(health.admit(now).0, Admission::Rejected);
    assert!(health.is_available(now + Duration::from_secs(2)));
    let view = health.view(now);
    assert_eq!(view.state, BreakerState::Closed);
    assert_eq!(view.cooldown_remaining, Some(Duration::from_secs(2)));
}

#[test]
fn view_reports_median_latency_and_last_error() {
    let health = Health::new(config());
    let now = Instant::now();
    for ms in [5, 1, 9, 3, 7] {
        health.record_success(Duration::from_millis(ms));
    }
    health.record_failure(now, "status_429");
    let view = health.view(now);
    assert_eq!(view.p50_latency, Some(Duration::from_millis(5)));
    assert_eq!(view.last_error, Some("status_429"));
    assert_eq!(view.recent_requests, 6);
}

#[test]
fn opened_elsewhere_blocks_until_then_admits_one_probe() {
    let health = Health::new(config());
    let now = Instant::now();
    let until = now + Duration::from_secs(5);
    assert_eq!(health.open_until(now, until), Some(Transition::Opened));
    // Applying the same or a shorter opening again changes nothing.
    assert_eq!(health.open_until(now, until), None);
    assert_eq!(health.open_until(now, now + Duration::from_secs(1)), None);
    assert_eq!(health.opened_until(), Some(until));
    assert!(!health.is_available(now + Duration::from_millis(4999)));
    assert_eq!(
        health.view(now).recent_requests,
        0,
        "nothing was counted here"
    );
    // Once it ends this replica probes once, and a good probe closes the breaker.
    assert_eq!(health.admit(until).0, Admission::Probe);
    assert_eq!(health.admit(until).0, Admission::Rejected);
    assert_eq!(health.record_success(MS), Some(Transition::Closed));
    assert_eq!(health.opened_until(), None);
}

#[test]
fn an_opening_that_already_ended_is_ignored() {
    let health = Health::new(config());
    let now = Instant::now();
    assert_eq!(health.open_until(now, now), None);
    assert!(health.is_available(now));
}

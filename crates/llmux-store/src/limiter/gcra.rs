//! The generic cell rate algorithm, as pure functions over a stored "theoretical arrival
//! time" (TAT). `lua/check.lua` and `lua/adjust.lua` are line-by-line translations; a shared
//! test checks that both backends decide alike.
//!
//! Times are integer microseconds so that Lua's doubles hold them exactly (below 2^53, good
//! until the year 2255) and both sides round identically. The emission interval
//! `T = 60 s / limit` is truncated to whole microseconds, and is at least 1 µs (limits above
//! 60 million per minute behave as 60 million).

use std::time::Duration;

use super::Decision;

/// The emission interval for `limit` units per minute, in microseconds. `limit` is not zero.
fn interval_us(limit: u32) -> u64 {
    (60_000_000 / u64::from(limit)).max(1)
}

/// What [`check`] decided, and the TAT to store (`None`: leave the stored value alone).
pub(super) struct Checked {
    pub(super) decision: Decision,
    pub(super) store: Option<u64>,
}

/// Decides whether `cost` units pass given the stored TAT (`None` when there is none).
pub(super) fn check(stored: Option<u64>, limit: u32, cost: u32, now_ms: u64) -> Checked {
    if limit == 0 {
        return Checked {
            decision: decision(false, 0, 0, 0, None),
            store: None,
        };
    }
    let now = now_ms.saturating_mul(1_000);
    let t = interval_us(limit);
    let tau = u64::from(limit - 1).saturating_mul(t);
    let tat = stored.unwrap_or(now).max(now);
    let new_tat = tat.saturating_add(u64::from(cost).saturating_mul(t));
    // The last of the `cost` units conforms when its own arrival time, minus the tolerance,
    // is not in the future.
    let allow_at = new_tat.saturating_sub(t).saturating_sub(tau);
    if allow_at <= now {
        Checked {
            decision: decision(
                true,
                limit,
                remaining(now, tau, t, new_tat),
                new_tat - now,
                None,
            ),
            store: (new_tat > now).then_some(new_tat),
        }
    } else {
        let retry = (cost <= limit).then(|| allow_at - now);
        Checked {
            decision: decision(false, limit, remaining(now, tau, t, tat), tat - now, retry),
            store: None,
        }
    }
}

/// What [`adjust`] does to the stored TAT.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Adjusted {
    Keep,
    Store(u64),
    Remove,
}

/// Moves the stored TAT by `delta` units: later for a charge, earlier for a refund, never
/// before `now` (an empty bucket cannot hold credit).
pub(super) fn adjust(stored: Option<u64>, limit: u32, delta: i64, now_ms: u64) -> Adjusted {
    if limit == 0 || delta == 0 {
        return Adjusted::Keep;
    }
    let now = now_ms.saturating_mul(1_000);
    let shift = delta.unsigned_abs().saturating_mul(interval_us(limit));
    let new_tat = if delta > 0 {
        stored.unwrap_or(now).max(now).saturating_add(shift)
    } else {
        match stored {
            Some(stored) => stored.saturating_sub(shift),
            None => return Adjusted::Keep,
        }
    };
    if new_tat <= now {
        Adjusted::Remove
    } else {
        Adjusted::Store(new_tat)
    }
}

/// Units that could pass at `now` given TAT `tat`.
fn remaining(now: u64, tau: u64, t: u64, tat: u64) -> u64 {
    now.saturating_add(tau)
        .saturating_add(t)
        .saturating_sub(tat)
        / t
}

/// Builds a [`Decision`] from the raw numbers both backends compute.
pub(super) fn decision(
    allowed: bool,
    limit: u32,
    remaining: u64,
    reset_after_us: u64,
    retry_after_us: Option<u64>,
) -> Decision {
    Decision {
        allowed,
        limit,
        remaining: u32::try_from(remaining).unwrap_or(u32::MAX).min(limit),
        reset_after: Duration::from_micros(reset_after_us),
        retry_after: retry_after_us.map(Duration::from_micros),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `check` against a single stored TAT, as a backend would.
    struct Bucket(Option<u64>);

    impl Bucket {
        fn check(&mut self, limit: u32, cost: u32, now_ms: u64) -> Decision {
            let checked = check(self.0, limit, cost, now_ms);
            if let Some(tat) = checked.store {
                self.0 = Some(tat);
            }
            checked.decision
        }
    }

    #[test]
    fn burst_of_limit_then_refusal_with_retry_after_one_interval() {
        let mut bucket = Bucket(None);
        for i in 0..60 {
            let d = bucket.check(60, 1, 1_000);
            assert!(d.allowed, "request {i}");
            assert_eq!(d.remaining, 59 - i);
        }
        let refused = bucket.check(60, 1, 1_000);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        assert_eq!(refused.retry_after, Some(Duration::from_secs(1)));
        assert_eq!(refused.reset_after, Duration::from_secs(60));
        assert!(!bucket.check(60, 1, 1_999).allowed);
        assert!(bucket.check(60, 1, 2_000).allowed);
    }

    #[test]
    fn fresh_bucket_reports_full_remaining() {
        let d = Bucket(None).check(10, 1, 0);
        assert_eq!(d.remaining, 9);
        assert_eq!(d.reset_after, Duration::from_secs(6));
        assert_eq!(d.retry_after, None);
    }

    #[test]
    fn cost_above_limit_never_passes() {
        let d = Bucket(None).check(100, 101, 0);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, None);
        assert!(Bucket(None).check(100, 100, 0).allowed);
    }

    #[test]
    fn zero_limit_refuses_everything() {
        let d = Bucket(None).check(0, 1, 0);
        assert!(!d.allowed);
        assert_eq!((d.limit, d.remaining, d.retry_after), (0, 0, None));
    }

    #[test]
    fn refund_never_goes_below_an_empty_bucket() {
        assert_eq!(adjust(None, 60, -5, 0), Adjusted::Keep);
        assert_eq!(adjust(Some(3_000_000), 60, -5, 0), Adjusted::Remove);
        assert_eq!(
            adjust(Some(3_000_000), 60, -1, 0),
            Adjusted::Store(2_000_000)
        );
        assert_eq!(adjust(None, 60, 2, 1), Adjusted::Store(2_001_000));
    }
}

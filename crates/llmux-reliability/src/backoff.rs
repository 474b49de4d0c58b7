//! Exponential backoff with full jitter (the AWS architecture blog's "full jitter"): the delay
//! before retry `n` is uniform in `[0, min(max, base · 2^n)]`, which spreads retries of many
//! clients instead of synchronizing them.

use std::time::Duration;

/// The delay before retry number `retry` (0 for the first retry). `unit` is a uniform random
/// number in `[0, 1)`, injected so tests are deterministic.
pub fn backoff(retry: u32, base: Duration, max: Duration, unit: f64) -> Duration {
    let ceiling = base
        .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
        .min(max);
    ceiling.mul_f64(unit.clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_up_to_the_cap_and_jitters_below_it() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        assert_eq!(backoff(0, base, max, 1.0), Duration::from_millis(100));
        assert_eq!(backoff(1, base, max, 1.0), Duration::from_millis(200));
        assert_eq!(backoff(3, base, max, 1.0), Duration::from_millis(800));
        assert_eq!(backoff(10, base, max, 1.0), max);
        assert_eq!(backoff(40, base, max, 1.0), max);
        assert_eq!(backoff(2, base, max, 0.5), Duration::from_millis(200));
        assert_eq!(backoff(2, base, max, 0.0), Duration::ZERO);
    }
}

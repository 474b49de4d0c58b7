//! [`MemoryLimiter`]: the limiter for a single gateway process.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::gcra::{self, Adjusted};
use super::{Decision, Limiter, Periods, TOTAL_PERIOD, micros_to_usd};
use crate::{BoxFuture, Spend, StoreError};

/// Checks between sweeps of rate buckets that have drained (their TAT has passed).
const SWEEP_EVERY: u32 = 4_096;

/// Counters in this process's memory. Each operation runs when its future is first polled.
/// Each map has its own mutex, held for a few instructions and never across an `await`.
#[derive(Debug, Default)]
pub struct MemoryLimiter {
    buckets: Mutex<Buckets>,
    slots: Mutex<HashMap<String, u32>>,
    revoked: Mutex<HashSet<String>>,
    spend: Mutex<HashMap<String, HashMap<String, u64>>>,
    /// Makes a reservation's check and add one step.
    reserve: Mutex<()>,
}

#[derive(Debug, Default)]
struct Buckets {
    tats: HashMap<String, u64>,
    checks_since_sweep: u32,
}

/// A poisoned mutex only means another thread panicked mid-update of plain counters; the
/// counters are still usable, so carry on rather than fail every request.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl MemoryLimiter {
    fn check_now(&self, key: &str, limit: u32, cost: u32, now_ms: u64) -> Decision {
        let mut buckets = lock(&self.buckets);
        let checked = gcra::check(buckets.tats.get(key).copied(), limit, cost, now_ms);
        if let Some(tat) = checked.store {
            buckets.tats.insert(key.to_owned(), tat);
        }
        buckets.checks_since_sweep += 1;
        if buckets.checks_since_sweep >= SWEEP_EVERY {
            let now = now_ms.saturating_mul(1_000);
            buckets.tats.retain(|_, tat| *tat > now);
            buckets.checks_since_sweep = 0;
        }
        checked.decision
    }

    fn adjust_now(&self, key: &str, limit: u32, delta: i64, now_ms: u64) {
        let mut buckets = lock(&self.buckets);
        match gcra::adjust(buckets.tats.get(key).copied(), limit, delta, now_ms) {
            Adjusted::Keep => {}
            Adjusted::Store(tat) => {
                buckets.tats.insert(key.to_owned(), tat);
            }
            Adjusted::Remove => {
                buckets.tats.remove(key);
            }
        }
    }

    fn acquire_now(&self, key: &str, max: u32) -> bool {
        let mut slots = lock(&self.slots);
        let used = slots.entry(key.to_owned()).or_insert(0);
        if *used >= max {
            return false;
        }
        *used += 1;
        true
    }

    fn release_now(&self, key: &str) {
        let mut slots = lock(&self.slots);
        if let Some(used) = slots.get_mut(key) {
            *used = used.saturating_sub(1);
            if *used == 0 {
                slots.remove(key);
            }
        }
    }

    /// Sets a key's spend for the periods of `now_unix` (at start, from the key store's usage,
    /// so a restart does not forget what was spent).
    pub fn seed_spend(&self, key_id: &str, spend: Spend, now_unix: i64) {
        let periods = Periods::at(now_unix);
        let micros = |usd: f64| (usd * 1e6).round().max(0.0) as u64;
        let mut all = lock(&self.spend);
        let counters = all.entry(key_id.to_owned()).or_default();
        counters.insert(periods.day, micros(spend.day));
        counters.insert(periods.month, micros(spend.month));
        counters.insert(TOTAL_PERIOD.to_owned(), micros(spend.total));
    }

    fn reserve_spend_now(
        &self,
        key_id: &str,
        micros: u64,
        budgets: [Option<u64>; 3],
        now_unix: i64,
    ) -> bool {
        let periods = Periods::at(now_unix);
        {
            let spend = lock(&self.spend);
            let counters = spend.get(key_id);
            let read = |period: &str| counters.and_then(|c| c.get(period)).copied().unwrap_or(0);
            let reached = [&periods.day, &periods.month, TOTAL_PERIOD]
                .iter()
                .zip(budgets)
                .any(|(period, budget)| budget.is_some_and(|b| read(period) >= b));
            if reached {
                return false;
            }
        }
        // The check and the add are one step: the caller holds `self.reserve`.
        self.add_spend_now(key_id, i64::try_from(micros).unwrap_or(i64::MAX), now_unix);
        true
    }

    fn add_spend_now(&self, key_id: &str, micros: i64, now_unix: i64) {
        let periods = Periods::at(now_unix);
        // Older periods are never read again: keep the last two days and months only.
        let stale_day = format!("d:{}", crate::calendar::day(now_unix - 2 * 86_400));
        let stale_month = format!("m:{}", crate::calendar::month(now_unix - 62 * 86_400));
        let mut spend = lock(&self.spend);
        let counters = spend.entry(key_id.to_owned()).or_default();
        for period in [periods.day, periods.month, TOTAL_PERIOD.to_owned()] {
            let counter = counters.entry(period).or_insert(0);
            *counter = counter.saturating_add_signed(micros);
        }
        counters.retain(|period, _| {
            if period.starts_with("d:") {
                period.as_str() > stale_day.as_str()
            } else if period.starts_with("m:") {
                period.as_str() > stale_month.as_str()
            } else {
                true
            }
        });
    }

    fn spend_now(&self, key_id: &str, now_unix: i64) -> Spend {
        let periods = Periods::at(now_unix);
        let spend = lock(&self.spend);
        let read = |period: &str| {
            spend
                .get(key_id)
                .and_then(|counters| counters.get(period))
                .copied()
                .map_or(0.0, micros_to_usd)
        };
        Spend {
            day: read(&periods.day),
            month: read(&periods.month),
            total: read(TOTAL_PERIOD),
        }
    }
}

impl Limiter for MemoryLimiter {
    fn check<'a>(
        &'a self,
        key: &'a str,
        limit_per_minute: u32,
        cost: u32,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Decision, StoreError>> {
        Box::pin(async move { Ok(self.check_now(key, limit_per_minute, cost, now_ms)) })
    }

    fn adjust<'a>(
        &'a self,
        key: &'a str,
        limit_per_minute: u32,
        delta: i64,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.adjust_now(key, limit_per_minute, delta, now_ms);
            Ok(())
        })
    }

    fn acquire<'a>(&'a self, key: &'a str, max: u32) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { Ok(self.acquire_now(key, max)) })
    }

    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.release_now(key);
            Ok(())
        })
    }

    fn mark_revoked<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            lock(&self.revoked).insert(key_id.to_owned());
            Ok(())
        })
    }

    fn is_revoked<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move { Ok(lock(&self.revoked).contains(key_id)) })
    }

    fn add_spend<'a>(
        &'a self,
        key_id: &'a str,
        micros: i64,
        now_unix: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            self.add_spend_now(key_id, micros, now_unix);
            Ok(())
        })
    }

    fn reserve_spend<'a>(
        &'a self,
        key_id: &'a str,
        micros: u64,
        budgets: [Option<u64>; 3],
        now_unix: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let _atomic = lock(&self.reserve);
            Ok(self.reserve_spend_now(key_id, micros, budgets, now_unix))
        })
    }

    fn spend<'a>(
        &'a self,
        key_id: &'a str,
        now_unix: i64,
    ) -> BoxFuture<'a, Result<Spend, StoreError>> {
        Box::pin(async move { Ok(self.spend_now(key_id, now_unix)) })
    }
}

//! Live statistics per combination, read by the `latency` and `least_busy` policies: a decaying
//! average of time to first byte and the requests in flight. Lock-free: each entry is two
//! atomics, and no update ever takes a lock or touches another entry.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::{RoutingTable, Target};

/// The statistics of one combination (or, for models passed through, one credential).
///
/// Updates race benignly: the average is updated by compare-and-swap, so concurrent samples are
/// all folded in (in some order), and readers may see a value one sample old. The policies only
/// compare two values at a time, so that is good enough and needs no lock.
#[derive(Debug, Default)]
pub struct Stats {
    /// Exponentially weighted moving average of TTFB in microseconds; 0 means no sample yet.
    ttfb_us: AtomicU64,
    /// Requests holding an [`InFlightGuard`] on this entry.
    in_flight: AtomicU32,
}

impl Stats {
    /// The weight of a new sample in the average: each sample moves it a fifth of the way, so
    /// after ten samples the old value counts for about a tenth.
    pub const ALPHA: f64 = 0.2;

    /// Folds one time-to-first-byte sample into the decaying average (the first sample sets it).
    pub fn record_ttfb(&self, ttfb: Duration) {
        let sample = u64::try_from(ttfb.as_micros()).unwrap_or(u64::MAX).max(1);
        // `fetch_update` retries on a concurrent update, so no sample is lost. The closure
        // always returns `Some`, so the result is always `Ok`.
        let _ = self
            .ttfb_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 {
                    sample
                } else {
                    let next = old as f64 + (sample as f64 - old as f64) * Self::ALPHA;
                    // Float to int saturates; 0 is reserved for "no sample".
                    (next.round() as u64).max(1)
                })
            });
    }

    /// The decaying average of time to first byte, in microseconds; `None` before any sample.
    pub fn ttfb_us(&self) -> Option<u64> {
        match self.ttfb_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(us),
        }
    }

    /// The decaying average of time to first byte; `None` before any sample.
    pub fn ttfb(&self) -> Option<Duration> {
        self.ttfb_us().map(Duration::from_micros)
    }

    /// Requests in flight on this entry now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// Counts one request in flight until the returned guard is dropped (whatever the exit
    /// path: answer, error, cancellation or a panic).
    pub fn enter(self: &Arc<Self>) -> InFlightGuard {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(Arc::clone(self))
    }
}

/// One request in flight on a [`Stats`] entry; dropping it ends the request's count.
#[derive(Debug)]
#[must_use = "the request counts as in flight only while the guard lives"]
pub struct InFlightGuard(Arc<Stats>);

impl InFlightGuard {
    /// The entry this guard counts on (e.g. to record the TTFB when the first byte arrives).
    pub fn stats(&self) -> &Stats {
        &self.0
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A [`Stats`] entry for every combination of a [`RoutingTable`] (same indexes), and one for
/// every credential, used for models passed through to an inferred vendor. Immutable once built
/// and meant to be shared (`Arc<StatsTable>` beside the table); the entries are `Arc`s so an
/// [`InFlightGuard`] may outlive a reload.
#[derive(Debug, Default)]
pub struct StatsTable {
    combinations: Vec<Arc<Stats>>,
    credentials: Vec<Arc<Stats>>,
}

impl StatsTable {
    /// Fresh (empty) statistics for every combination and credential of `table`.
    pub fn new(table: &RoutingTable) -> Self {
        Self {
            combinations: fresh(table.combinations().len()),
            credentials: fresh(table.credentials().len()),
        }
    }

    /// Statistics for `table` that keep `previous`'s entries for the combinations and
    /// credentials that are still there after a reload: the same credential name, vendor and
    /// model. New ones start empty.
    pub fn carried(table: &RoutingTable, previous_table: &RoutingTable, previous: &Self) -> Self {
        let credential_key = |t: &RoutingTable, i: usize| {
            t.credentials()
                .get(i)
                .map(|c| (c.name.clone(), c.vendor.clone()))
        };
        let mut old_credentials = HashMap::new();
        for (i, stats) in previous.credentials.iter().enumerate() {
            if let Some(key) = credential_key(previous_table, i) {
                old_credentials.insert(key, stats);
            }
        }
        let mut old_combinations = HashMap::new();
        for (c, stats) in previous_table
            .combinations()
            .iter()
            .zip(&previous.combinations)
        {
            if let Some(key) = credential_key(previous_table, c.credential) {
                old_combinations.insert((key, c.model.model.clone()), stats);
            }
        }
        let credentials = (0..table.credentials().len())
            .map(|i| {
                credential_key(table, i)
                    .and_then(|key| old_credentials.get(&key))
                    .map_or_else(Arc::default, |s| Arc::clone(s))
            })
            .collect();
        let combinations = table
            .combinations()
            .iter()
            .map(|c| {
                credential_key(table, c.credential)
                    .and_then(|key| old_combinations.get(&(key, c.model.model.clone())))
                    .map_or_else(Arc::default, |s| Arc::clone(s))
            })
            .collect();
        Self {
            combinations,
            credentials,
        }
    }

    /// The entry of combination `index` ([`Target::combination`]).
    pub fn combination(&self, index: usize) -> Option<&Arc<Stats>> {
        self.combinations.get(index)
    }

    /// The entry of credential `index`, used for models passed through.
    pub fn credential(&self, index: usize) -> Option<&Arc<Stats>> {
        self.credentials.get(index)
    }

    /// The entry a target's statistics go to: its combination's, or for a model passed through,
    /// its credential's.
    pub fn of(&self, target: &Target<'_>) -> Option<&Arc<Stats>> {
        match target.combination {
            Some(index) => self.combination(index),
            None => self.credential(target.credential_index),
        }
    }
}

fn fresh(len: usize) -> Vec<Arc<Stats>> {
    (0..len).map(|_| Arc::default()).collect()
}

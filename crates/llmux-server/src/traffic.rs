//! Live traffic for the dashboard: the last hour of requests in 60 one-minute buckets, kept in
//! memory and served by `GET /admin/traffic`.
//!
//! Each finished request adds one [`Sample`]. The ring is split into shards, one picked per
//! thread, each with its own small mutex, so requests on different threads never wait on each
//! other and there is no global lock; a read merges the shards. Latency and time to first byte
//! go into log-scale histograms (four buckets per doubling, so a percentile is within ~19 %).
//! Breakdowns by vendor, model and key keep at most [`MAX_NAMES`] names per dimension and
//! minute; the rest are counted as `other`, so a client inventing model names cannot grow it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

/// A breakdown by name. foldhash, not SipHash: three lookups per logged request cost ~900
/// instructions with SipHash; a map holds at most [`MAX_NAMES`] names, so a client choosing
/// colliding names gains little, and the seed is random per process.
type ByName = std::collections::HashMap<Box<str>, Totals, foldhash::fast::RandomState>;

/// Minutes kept.
pub const MINUTES: usize = 60;
/// Names kept per dimension (vendor, model, key) and minute in one shard.
pub const MAX_NAMES: usize = 64;
/// Histogram buckets: bucket `i` holds durations up to `2^(i/4)` ms (the last one: longer).
const BUCKETS: usize = 76;

/// One finished request.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// When it ended, in Unix milliseconds.
    pub now_ms: u64,
    /// Whether it failed: an error status, or a stream that broke after its head.
    pub failed: bool,
    /// Vendor of the last attempt.
    pub vendor: Option<&'a str>,
    /// The model the client asked for.
    pub model: &'a str,
    /// The virtual key's name (or id).
    pub key: Option<&'a str>,
    /// Total duration.
    pub latency_ms: u32,
    /// Time to first byte, when something was sent.
    pub ttfb_ms: Option<u32>,
    /// Tokens reported by the vendor.
    pub input_tokens: u64,
    /// Tokens reported by the vendor.
    pub output_tokens: u64,
    /// Cost in US dollars, when a price is known.
    pub cost_usd: f64,
}

/// The ring. Cheap to share behind an `Arc`.
#[derive(Debug)]
pub struct Traffic {
    shards: Box<[Mutex<Shard>]>,
}

impl Default for Traffic {
    fn default() -> Self {
        let n = std::thread::available_parallelism()
            .map_or(4, std::num::NonZero::get)
            .clamp(1, 16);
        Self {
            shards: (0..n).map(|_| Mutex::new(Shard::default())).collect(),
        }
    }
}

#[derive(Debug, Default)]
struct Shard {
    /// Indexed by `minute % MINUTES`; allocated on first use.
    minutes: Vec<Option<Box<Minute>>>,
}

#[derive(Debug, Clone)]
struct Minute {
    /// Minutes since the Unix epoch.
    minute: u64,
    total: Totals,
    latency: Histogram,
    ttfb: Histogram,
    by: [ByName; 3],
}

impl Minute {
    fn new(minute: u64) -> Self {
        Self {
            minute,
            total: Totals::default(),
            latency: Histogram::default(),
            ttfb: Histogram::default(),
            by: Default::default(),
        }
    }
}

/// Counts of one minute (or one name in it).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Totals {
    /// Requests finished.
    pub requests: u64,
    /// Of them, failed (a status ≥ 400, or a stream that broke).
    pub errors: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// US dollars.
    pub cost_usd: f64,
    /// Sum of latencies, for the mean.
    pub latency_ms_sum: u64,
}

impl Totals {
    fn add(&mut self, other: &Totals) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cost_usd += other.cost_usd;
        self.latency_ms_sum += other.latency_ms_sum;
    }
}

#[derive(Debug, Clone)]
struct Histogram([u32; BUCKETS]);

impl Default for Histogram {
    fn default() -> Self {
        Self([0; BUCKETS])
    }
}

impl Histogram {
    fn bucket(ms: u32) -> usize {
        if ms <= 1 {
            return 0;
        }
        // ceil(4 · log2(ms)): the first bucket whose upper bound holds `ms`.
        let index = (f64::from(ms).log2() * 4.0).ceil();
        (index as usize).min(BUCKETS - 1)
    }

    fn upper_ms(index: usize) -> f64 {
        2f64.powf(index as f64 / 4.0)
    }

    fn observe(&mut self, ms: u32) {
        let bucket = &mut self.0[Self::bucket(ms)];
        *bucket = bucket.saturating_add(1);
    }

    fn add(&mut self, other: &Histogram) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a = a.saturating_add(*b);
        }
    }

    /// The `q` quantile (0..=1) as the upper bound of its bucket; `None` when empty.
    fn quantile(&self, q: f64) -> Option<f64> {
        let count: u64 = self.0.iter().map(|&c| u64::from(c)).sum();
        if count == 0 {
            return None;
        }
        let rank = ((q * count as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, &c) in self.0.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return Some((Self::upper_ms(i) * 10.0).round() / 10.0);
            }
        }
        None
    }
}

/// The shard this thread writes to, picked once per thread.
fn shard_index(shards: usize) -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed);
    }
    INDEX.with(|i| *i) % shards
}

impl Traffic {
    /// Adds one finished request.
    pub fn record(&self, sample: &Sample<'_>) {
        let minute = sample.now_ms / 60_000;
        let mut shard = self.shards[shard_index(self.shards.len())]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.minutes.is_empty() {
            shard.minutes.resize_with(MINUTES, || None);
        }
        let slot = &mut shard.minutes[(minute % MINUTES as u64) as usize];
        let bucket = match slot {
            Some(bucket) if bucket.minute == minute => bucket,
            _ => slot.insert(Box::new(Minute::new(minute))),
        };
        let totals = Totals {
            requests: 1,
            errors: u64::from(sample.failed),
            input_tokens: sample.input_tokens,
            output_tokens: sample.output_tokens,
            cost_usd: sample.cost_usd,
            latency_ms_sum: u64::from(sample.latency_ms),
        };
        bucket.total.add(&totals);
        bucket.latency.observe(sample.latency_ms);
        if let Some(ttfb) = sample.ttfb_ms {
            bucket.ttfb.observe(ttfb);
        }
        let names = [
            sample.vendor.unwrap_or("none"),
            if sample.model.is_empty() {
                "none"
            } else {
                sample.model
            },
            sample.key.unwrap_or("none"),
        ];
        for (map, name) in bucket.by.iter_mut().zip(names) {
            let name = if map.len() < MAX_NAMES || map.contains_key(name) {
                name
            } else {
                "other"
            };
            match map.get_mut(name) {
                Some(entry) => entry.add(&totals),
                None => {
                    map.insert(name.into(), totals);
                }
            }
        }
    }

    /// The last hour as of `now_ms`: one entry per minute, oldest first, and the hour's totals
    /// by vendor, model and key.
    pub fn report(&self, now_ms: u64) -> Report {
        let current = now_ms / 60_000;
        let first = current.saturating_sub(MINUTES as u64 - 1);
        let mut merged: Vec<Minute> = (first..=current).map(Minute::new).collect();
        for shard in &self.shards {
            let shard = shard.lock().unwrap_or_else(PoisonError::into_inner);
            for bucket in shard.minutes.iter().flatten() {
                if bucket.minute < first || bucket.minute > current {
                    continue;
                }
                let into = &mut merged[(bucket.minute - first) as usize];
                into.total.add(&bucket.total);
                into.latency.add(&bucket.latency);
                into.ttfb.add(&bucket.ttfb);
                for (into, from) in into.by.iter_mut().zip(bucket.by.iter()) {
                    for (name, totals) in from {
                        into.entry(name.clone()).or_default().add(totals);
                    }
                }
            }
        }
        let mut hour = Minute::new(first);
        for minute in &merged {
            hour.total.add(&minute.total);
            hour.latency.add(&minute.latency);
            hour.ttfb.add(&minute.ttfb);
            for (into, from) in hour.by.iter_mut().zip(minute.by.iter()) {
                for (name, totals) in from {
                    into.entry(name.clone()).or_default().add(totals);
                }
            }
        }
        let [vendor, model, key] = hour.by.clone().map(ranked);
        Report {
            now_ms,
            minutes: merged.iter().map(MinuteReport::of).collect(),
            hour: MinuteReport::of(&hour),
            by: Breakdown { vendor, model, key },
        }
    }
}

fn ranked(map: ByName) -> Vec<Named> {
    let mut names: Vec<Named> = map
        .into_iter()
        .map(|(name, totals)| Named {
            name: name.into(),
            totals,
        })
        .collect();
    names.sort_by(|a, b| {
        b.totals
            .requests
            .cmp(&a.totals.requests)
            .then_with(|| a.name.cmp(&b.name))
    });
    names
}

/// `GET /admin/traffic`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// When the report was made (Unix milliseconds).
    pub now_ms: u64,
    /// The last 60 minutes, oldest first; the last one is the current, partial minute.
    pub minutes: Vec<MinuteReport>,
    /// The whole hour.
    pub hour: MinuteReport,
    /// The hour by vendor, model and key, busiest first.
    pub by: Breakdown,
}

/// One minute (or the hour).
#[derive(Debug, Serialize)]
pub struct MinuteReport {
    /// Start of the period (Unix milliseconds).
    pub start_ms: u64,
    /// Counts.
    #[serde(flatten)]
    pub totals: Totals,
    /// Median latency (ms), `null` without requests.
    pub latency_p50_ms: Option<f64>,
    /// 95th percentile latency.
    pub latency_p95_ms: Option<f64>,
    /// Median time to first byte.
    pub ttfb_p50_ms: Option<f64>,
    /// 95th percentile time to first byte.
    pub ttfb_p95_ms: Option<f64>,
}

impl MinuteReport {
    fn of(minute: &Minute) -> Self {
        Self {
            start_ms: minute.minute * 60_000,
            totals: minute.total,
            latency_p50_ms: minute.latency.quantile(0.5),
            latency_p95_ms: minute.latency.quantile(0.95),
            ttfb_p50_ms: minute.ttfb.quantile(0.5),
            ttfb_p95_ms: minute.ttfb.quantile(0.95),
        }
    }
}

/// The hour by dimension.
#[derive(Debug, Serialize)]
pub struct Breakdown {
    /// By the vendor of the last attempt (`none`: no attempt).
    pub vendor: Vec<Named>,
    /// By requested model.
    pub model: Vec<Named>,
    /// By virtual key name (`none`: master key or open gateway).
    pub key: Vec<Named>,
}

/// Counts for one name.
#[derive(Debug, Serialize)]
pub struct Named {
    /// The vendor, model or key name (or `other`).
    pub name: String,
    /// Counts.
    #[serde(flatten)]
    pub totals: Totals,
}

#[cfg(test)]
mod tests;

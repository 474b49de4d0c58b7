//! The [`Limiter`] trait: rate limits, concurrency slots, revocation flags and budget spend,
//! in memory ([`MemoryLimiter`]) or in Redis ([`RedisLimiter`]).

mod gcra;
mod memory;
mod redis;
#[cfg(test)]
mod tests;

use std::time::Duration;

pub use memory::MemoryLimiter;
pub use redis::RedisLimiter;

use crate::{BoxFuture, Spend, StoreError};

/// The answer to [`Limiter::check`], with what a server needs for rate-limit headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the units may pass. When they may, they have been counted.
    pub allowed: bool,
    /// The limit checked against, per minute.
    pub limit: u32,
    /// Units that could still pass at this instant.
    pub remaining: u32,
    /// Time until the bucket is full again (nothing counted any more).
    pub reset_after: Duration,
    /// When refused: how long until the same request would pass. `None` when allowed, and
    /// when it can never pass (its cost exceeds the whole per-minute limit, or the limit is 0).
    pub retry_after: Option<Duration>,
}

/// Counters that several requests (and, with Redis, several replicas) update concurrently.
/// Each operation is atomic in the backend.
///
/// Time is passed in (`now_ms`, `now_unix`) rather than read, so tests control it.
pub trait Limiter: Send + Sync + std::fmt::Debug {
    /// GCRA: may `cost` units pass for `key` under `limit_per_minute`? Requests cost 1;
    /// tokens cost what the request reserves.
    ///
    /// At most `limit_per_minute` units pass in one instant, and a steady
    /// `limit_per_minute` per minute after that: the emission interval is
    /// `T = 60 s / limit` and the burst tolerance `(limit − 1)·T`.
    fn check<'a>(
        &'a self,
        key: &'a str,
        limit_per_minute: u32,
        cost: u32,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Decision, StoreError>>;

    /// Corrects a bucket after the fact by `delta` units: `actual − reserved`, so a positive
    /// delta charges more and a negative one refunds (never below an empty bucket).
    fn adjust<'a>(
        &'a self,
        key: &'a str,
        limit_per_minute: u32,
        delta: i64,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Takes one of `max` concurrency slots for `key`; `false` when all are in use.
    fn acquire<'a>(&'a self, key: &'a str, max: u32) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Frees a slot taken by [`Limiter::acquire`].
    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Publishes that a key is revoked, so every replica refuses it without asking the store.
    fn mark_revoked<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Whether [`Limiter::mark_revoked`] was called for the key, here or on another replica.
    fn is_revoked<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Adds `micros` micro-dollars to the key's spend for the day and month of `now_unix`
    /// (`d:YYYY-MM-DD`, `m:YYYY-MM`) and its total. Negative amounts refund (an unused
    /// reservation); no counter goes below zero.
    fn add_spend<'a>(
        &'a self,
        key_id: &'a str,
        micros: i64,
        now_unix: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Reserves `micros` against the key's budgets, atomically: `false` (nothing added) when a
    /// period's spend has already reached its budget (`budgets`: day, month, total, in
    /// micro-dollars), else adds `micros` to every period like [`Limiter::add_spend`]. So
    /// concurrent requests overshoot a budget by at most one request's reservation.
    fn reserve_spend<'a>(
        &'a self,
        key_id: &'a str,
        micros: u64,
        budgets: [Option<u64>; 3],
        now_unix: i64,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// The key's spend, in USD, for the day and month of `now_unix` and in total.
    fn spend<'a>(
        &'a self,
        key_id: &'a str,
        now_unix: i64,
    ) -> BoxFuture<'a, Result<Spend, StoreError>>;
}

/// The spend periods a micro-dollar amount is added to.
struct Periods {
    day: String,
    month: String,
}

impl Periods {
    fn at(now_unix: i64) -> Self {
        Self {
            day: format!("d:{}", crate::calendar::day(now_unix)),
            month: format!("m:{}", crate::calendar::month(now_unix)),
        }
    }
}

const TOTAL_PERIOD: &str = "total";

fn micros_to_usd(micros: u64) -> f64 {
    micros as f64 / 1e6
}

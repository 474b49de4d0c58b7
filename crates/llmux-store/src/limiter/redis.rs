//! [`RedisLimiter`]: counters shared by every replica through Redis.
//!
//! Every operation is one `EVALSHA` of a Lua script (loaded on first use), which Redis runs
//! atomically: there is no read-modify-write between replicas. Time comes from the caller, not
//! from Redis's `TIME`, so tests control it and both backends decide alike.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use ::redis::Script;
use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::gcra;
use super::{Decision, Limiter, Periods, TOTAL_PERIOD, micros_to_usd};
use crate::{BoxFuture, Spend, StoreError, redact_url};

const DEFAULT_PREFIX: &str = "llmux:";
/// A slot counter left by a crashed replica disappears after this long without an acquire.
const DEFAULT_SLOT_TTL: Duration = Duration::from_secs(600);
/// How long a "not revoked" answer is reused before asking Redis again.
const DEFAULT_REVOCATION_TTL: Duration = Duration::from_secs(1);
const DAY_SPEND_TTL_SECS: u64 = 3 * 86_400;
const MONTH_SPEND_TTL_SECS: u64 = 40 * 86_400;
/// Bounds the "not revoked" cache; past it the cache starts over.
const MAX_CACHED_KEYS: usize = 100_000;

struct Scripts {
    check: Script,
    adjust: Script,
    acquire: Script,
    release: Script,
    mark_revoked: Script,
    is_revoked: Script,
    add_spend: Script,
    reserve_spend: Script,
    spend: Script,
}

impl Scripts {
    fn load() -> Self {
        Self {
            check: Script::new(include_str!("lua/check.lua")),
            adjust: Script::new(include_str!("lua/adjust.lua")),
            acquire: Script::new(include_str!("lua/acquire.lua")),
            release: Script::new(include_str!("lua/release.lua")),
            mark_revoked: Script::new(include_str!("lua/mark_revoked.lua")),
            is_revoked: Script::new(include_str!("lua/is_revoked.lua")),
            add_spend: Script::new(include_str!("lua/add_spend.lua")),
            reserve_spend: Script::new(include_str!("lua/reserve_spend.lua")),
            spend: Script::new(include_str!("lua/spend.lua")),
        }
    }
}

/// Revocations seen by this replica. A revocation is final, so "revoked" is cached forever;
/// "not revoked" only for the revocation TTL.
#[derive(Default)]
struct RevocationCache {
    revoked: HashSet<String>,
    not_revoked: HashMap<String, Instant>,
}

/// Counters in Redis, shared by replicas. Connections go through a
/// [`ConnectionManager`], which reconnects by itself; while Redis is down, operations fail
/// with [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable).
pub struct RedisLimiter {
    conn: ConnectionManager,
    scripts: Scripts,
    prefix: String,
    slot_ttl: Duration,
    revocation_ttl: Duration,
    revocations: Mutex<RevocationCache>,
}

impl std::fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("prefix", &self.prefix)
            .field("slot_ttl", &self.slot_ttl)
            .field("revocation_ttl", &self.revocation_ttl)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl RedisLimiter {
    /// Connects to `url` (`redis://[user:password@]host[:port][/db]`). Fails with
    /// [`ErrorKind::Unavailable`](crate::ErrorKind::Unavailable) when Redis does not answer.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let client = ::redis::Client::open(url).map_err(|source| StoreError::InvalidUrl {
            url: redact_url(url),
            source: Box::new(source),
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(1)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(StoreError::redis("connect"))?;
        Ok(Self {
            conn,
            scripts: Scripts::load(),
            prefix: DEFAULT_PREFIX.to_owned(),
            slot_ttl: DEFAULT_SLOT_TTL,
            revocation_ttl: DEFAULT_REVOCATION_TTL,
            revocations: Mutex::default(),
        })
    }

    /// Puts every Redis key under `prefix` (default `llmux:`), so that several gateways or
    /// test runs can share one Redis.
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long a concurrency counter survives without an acquire (default 10 minutes): the
    /// bound on how long a crashed replica's slots stay taken. Keep it above the longest
    /// request.
    pub fn with_slot_ttl(mut self, ttl: Duration) -> Self {
        self.slot_ttl = ttl;
        self
    }

    /// How long a "not revoked" answer is reused before asking Redis again (default 1 s);
    /// zero asks every time. "Revoked" answers are final and always cached.
    pub fn with_revocation_ttl(mut self, ttl: Duration) -> Self {
        self.revocation_ttl = ttl;
        self
    }

    fn key(&self, kind: &str, name: &str) -> String {
        format!("{}{kind}:{name}", self.prefix)
    }

    /// The day, month and total spend counters of a key. The braces make them one Redis
    /// Cluster hash slot, as a multi-key script requires.
    fn spend_keys(&self, key_id: &str, now_unix: i64) -> [String; 3] {
        let periods = Periods::at(now_unix);
        let base = format!("{}spend:{{{key_id}}}", self.prefix);
        [
            format!("{base}:{}", periods.day),
            format!("{base}:{}", periods.month),
            format!("{base}:{TOTAL_PERIOD}"),
        ]
    }

    fn cached_revocation(&self, key_id: &str) -> Option<bool> {
        let cache = lock(&self.revocations);
        if cache.revoked.contains(key_id) {
            return Some(true);
        }
        cache
            .not_revoked
            .get(key_id)
            .filter(|checked| checked.elapsed() < self.revocation_ttl)
            .map(|_| false)
    }

    fn cache_revocation(&self, key_id: &str, revoked: bool) {
        let mut cache = lock(&self.revocations);
        if revoked {
            cache.not_revoked.remove(key_id);
            cache.revoked.insert(key_id.to_owned());
        } else if !self.revocation_ttl.is_zero() {
            if cache.not_revoked.len() >= MAX_CACHED_KEYS {
                cache.not_revoked.clear();
            }
            cache.not_revoked.insert(key_id.to_owned(), Instant::now());
        }
    }
}

impl Limiter for RedisLimiter {
    fn check<'a>(
        &'a self,
        key: &'a str,
        limit_per_minute: u32,
        cost: u32,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Decision, StoreError>> {
        Box::pin(async move {
            let (allowed, remaining, reset_us, retry_us): (i64, i64, i64, i64) = self
                .scripts
                .check
                .key(self.key("rate", key))
                .arg(limit_per_minute)
                .arg(cost)
                .arg(now_ms)
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(StoreError::redis("check"))?;
            Ok(gcra::decision(
                allowed == 1,
                limit_per_minute,
                u64::try_from(remaining).unwrap_or(0),
                u64::try_from(reset_us).unwrap_or(0),
                u64::try_from(retry_us).ok(),
            ))
        })
    }

    fn adjust<'a>(
        &'a self,
        key: &'a str,
        limit_per_minute: u32,
        delta: i64,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let _: i64 = self
                .scripts
                .adjust
                .key(self.key("rate", key))
                .arg(limit_per_minute)
                .arg(delta)
                .arg(now_ms)
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(StoreError::redis("adjust"))?;
            Ok(())
        })
    }

    fn acquire<'a>(&'a self, key: &'a str, max: u32) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            let acquired: i64 = self
                .scripts
                .acquire
                .key(self.key("slots", key))
                .arg(max)
                .arg(self.slot_ttl.as_secs().max(1))
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(StoreError::redis("acquire"))?;
            Ok(acquired == 1)
        })
    }

    fn release<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let _: i64 = self
                .scripts
                .release
                .key(self.key("slots", key))
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(StoreError::redis("release"))?;
            Ok(())
        })
    }

    fn mark_revoked<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let _: i64 = self
                .scripts
                .mark_revoked
                .key(self.key("revoked", key_id))
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(StoreError::redis("mark_revoked"))?;
            self.cache_revocation(key_id, true);
            Ok(())
        })
    }

    fn is_revoked<'a>(&'a self, key_id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(async move {
            if let Some(revoked) = self.cached_revocation(key_id) {
                return Ok(revoked);
            }
            let revoked: i64 = self
                .scripts
                .is_revoked
                .key(self.key("revoked", key_id))
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(StoreError::redis("is_revoked"))?;
            let revoked = revoked == 1;
            self.cache_revocation(key_id, revoked);
            Ok(revoked)
        })
    }

    fn add_spend<'a>(
        &'a self,
        key_id: &'a str,
        micros: i64,
        now_unix: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let _: i64 = self
                .scripts
                .add_spend
                .key(&self.spend_keys(key_id, now_unix))
                .arg(micros)
                .arg(DAY_SPEND_TTL_SECS)
                .arg(MONTH_SPEND_TTL_SECS)
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(StoreError::redis("add_spend"))?;
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
            // Redis counters are signed 64-bit.
            let signed = |n: u64| {
                i64::try_from(n).map_err(|_| StoreError::OutOfRange {
                    what: "spend reservation",
                })
            };
            let mut script = self
                .scripts
                .reserve_spend
                .key(&self.spend_keys(key_id, now_unix));
            script
                .arg(signed(micros)?)
                .arg(DAY_SPEND_TTL_SECS)
                .arg(MONTH_SPEND_TTL_SECS);
            for budget in budgets {
                script.arg(budget.map_or(Ok(-1), signed)?);
            }
            let reserved: i64 = script
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(StoreError::redis("reserve_spend"))?;
            Ok(reserved == 1)
        })
    }

    fn spend<'a>(
        &'a self,
        key_id: &'a str,
        now_unix: i64,
    ) -> BoxFuture<'a, Result<Spend, StoreError>> {
        Box::pin(async move {
            let (day, month, total): (u64, u64, u64) = self
                .scripts
                .spend
                .key(&self.spend_keys(key_id, now_unix))
                .invoke_async(&mut self.conn.clone())
                .await
                .map_err(StoreError::redis("spend"))?;
            Ok(Spend {
                day: micros_to_usd(day),
                month: micros_to_usd(month),
                total: micros_to_usd(total),
            })
        })
    }
}

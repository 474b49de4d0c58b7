//! One suite, run against every [`Limiter`] backend: [`MemoryLimiter`] always, and
//! [`RedisLimiter`] when `LLMUX_TEST_REDIS_URL` is set (each test under a key prefix of its
//! own, deleted at the end). A second Redis instance with the same prefix plays another
//! replica.
#![allow(
    clippy::disallowed_methods,
    reason = "tests spawn their own peers and load on the test runtime, which ends with the test: nothing to drain"
)]

use std::io::Write as _;
use std::sync::{Arc, Once};
use std::time::Duration;

use super::{Decision, Limiter, MemoryLimiter, RedisLimiter};
use crate::{ErrorKind, Spend, StoreError};

const REDIS_ENV: &str = "LLMUX_TEST_REDIS_URL";

/// 2026-11-01T00:00:00Z, in milliseconds and seconds.
const NOW_MS: u64 = 1_793_491_200_000;
const NOW_UNIX: i64 = 1_793_491_200;

struct Harness {
    limiter: Arc<dyn Limiter>,
    /// Another replica sharing the limiter's state (for memory, the limiter itself).
    replica: Arc<dyn Limiter>,
    redis: Option<(String, String)>,
}

impl Harness {
    fn memory() -> Self {
        let limiter: Arc<dyn Limiter> = Arc::new(MemoryLimiter::default());
        Self {
            replica: Arc::clone(&limiter),
            limiter,
            redis: None,
        }
    }

    async fn redis() -> Option<Self> {
        static SKIP: Once = Once::new();
        let Some(url) = redis_url() else {
            SKIP.call_once(|| {
                let _ = writeln!(
                    std::io::stderr(),
                    "skipping Redis limiter tests: {REDIS_ENV} is unset"
                );
            });
            return None;
        };
        let prefix = format!("llmux-test:{}:", crate::key::generate().unwrap().id);
        let connect = || async {
            RedisLimiter::connect(&url)
                .await
                .unwrap()
                .with_prefix(prefix.clone())
        };
        Some(Self {
            limiter: Arc::new(connect().await),
            replica: Arc::new(connect().await),
            redis: Some((url.clone(), prefix.clone())),
        })
    }

    async fn cleanup(self) {
        let Some((url, prefix)) = self.redis else {
            return;
        };
        let client = ::redis::Client::open(url).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = ::redis::cmd("KEYS")
            .arg(format!("{prefix}*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: i64 = ::redis::cmd("DEL")
                .arg(keys)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    }
}

fn redis_url() -> Option<String> {
    std::env::var(REDIS_ENV).ok()
}

async fn check(limiter: &dyn Limiter, key: &str, limit: u32, cost: u32, now_ms: u64) -> Decision {
    limiter.check(key, limit, cost, now_ms).await.unwrap()
}

// ---- the suite ----

async fn sixty_rpm_allows_sixty_at_once_then_one_per_second(h: &Harness) {
    let limiter = &*h.limiter;
    for i in 0..60 {
        let d = check(limiter, "rpm:a", 60, 1, NOW_MS).await;
        assert!(d.allowed, "request {i}");
        assert_eq!((d.limit, d.remaining), (60, 59 - i));
        assert_eq!(d.retry_after, None);
    }
    let refused = check(limiter, "rpm:a", 60, 1, NOW_MS).await;
    assert!(!refused.allowed);
    assert_eq!(refused.remaining, 0);
    assert_eq!(refused.retry_after, Some(Duration::from_secs(1)));
    assert_eq!(refused.reset_after, Duration::from_secs(60));

    assert!(!check(limiter, "rpm:a", 60, 1, NOW_MS + 999).await.allowed);
    assert!(check(limiter, "rpm:a", 60, 1, NOW_MS + 1_000).await.allowed);
    assert!(!check(limiter, "rpm:a", 60, 1, NOW_MS + 1_000).await.allowed);
    // Other keys have buckets of their own.
    assert!(check(limiter, "rpm:b", 60, 1, NOW_MS).await.allowed);
    // A minute later the bucket is full again.
    let later = check(limiter, "rpm:a", 60, 1, NOW_MS + 61_000).await;
    assert_eq!((later.allowed, later.remaining), (true, 59));
}

async fn token_costs_draw_down_the_bucket(h: &Harness) {
    let limiter = &*h.limiter;
    let d = check(limiter, "tpm:a", 1_000, 600, NOW_MS).await;
    assert!(d.allowed);
    assert_eq!(d.remaining, 400);
    assert_eq!(d.reset_after, Duration::from_secs(36));

    let refused = check(limiter, "tpm:a", 1_000, 500, NOW_MS).await;
    assert!(!refused.allowed);
    assert_eq!(refused.remaining, 400);
    assert_eq!(refused.retry_after, Some(Duration::from_secs(6)));

    assert!(check(limiter, "tpm:a", 1_000, 400, NOW_MS).await.allowed);
    assert!(
        check(limiter, "tpm:a", 1_000, 500, NOW_MS + 30_000)
            .await
            .allowed
    );

    // More than a whole minute's worth never passes, and says so.
    let never = check(limiter, "tpm:b", 1_000, 1_001, NOW_MS).await;
    assert_eq!((never.allowed, never.retry_after), (false, None));
}

async fn adjust_refunds_and_charges_after_the_fact(h: &Harness) {
    let limiter = &*h.limiter;
    assert!(check(limiter, "tpm:a", 1_000, 1_000, NOW_MS).await.allowed);
    assert!(!check(limiter, "tpm:a", 1_000, 1, NOW_MS).await.allowed);

    // The request used 400 of the 1000 it reserved: refund 600.
    limiter.adjust("tpm:a", 1_000, -600, NOW_MS).await.unwrap();
    let d = check(limiter, "tpm:a", 1_000, 600, NOW_MS).await;
    assert!(d.allowed);
    assert_eq!(d.remaining, 0);

    // A refund never leaves credit beyond a full bucket.
    limiter
        .adjust("tpm:a", 1_000, -5_000, NOW_MS)
        .await
        .unwrap();
    assert!(!check(limiter, "tpm:a", 1_000, 1_001, NOW_MS).await.allowed);
    assert_eq!(
        check(limiter, "tpm:a", 1_000, 1, NOW_MS).await.remaining,
        999
    );

    // Used more than reserved: charge the difference.
    limiter.adjust("tpm:b", 1_000, 900, NOW_MS).await.unwrap();
    assert_eq!(
        check(limiter, "tpm:b", 1_000, 100, NOW_MS).await.remaining,
        0
    );
    assert!(!check(limiter, "tpm:b", 1_000, 1, NOW_MS).await.allowed);

    // Refunding a key with nothing counted changes nothing.
    limiter.adjust("tpm:c", 1_000, -10, NOW_MS).await.unwrap();
    assert_eq!(
        check(limiter, "tpm:c", 1_000, 1, NOW_MS).await.remaining,
        999
    );
}

async fn acquire_and_release_respect_max_parallel(h: &Harness) {
    let limiter = &*h.limiter;
    assert!(limiter.acquire("par:a", 2).await.unwrap());
    assert!(limiter.acquire("par:a", 2).await.unwrap());
    assert!(!limiter.acquire("par:a", 2).await.unwrap());
    assert!(limiter.acquire("par:b", 2).await.unwrap());
    limiter.release("par:a").await.unwrap();
    assert!(h.replica.acquire("par:a", 2).await.unwrap());
    assert!(!h.replica.acquire("par:a", 2).await.unwrap());
    for _ in 0..3 {
        // Releasing more than was acquired does not create extra slots.
        limiter.release("par:a").await.unwrap();
    }
    assert!(limiter.acquire("par:a", 1).await.unwrap());
    assert!(!limiter.acquire("par:a", 1).await.unwrap());
    limiter.release("par:never-acquired").await.unwrap();
}

async fn concurrent_checks_never_exceed_the_limit(h: &Harness) {
    let tasks: Vec<_> = (0..20)
        .map(|task| {
            let limiter = if task % 2 == 0 {
                &h.limiter
            } else {
                &h.replica
            };
            let limiter = Arc::clone(limiter);
            tokio::spawn(async move {
                let mut allowed = 0;
                for _ in 0..10 {
                    if check(&*limiter, "rpm:hot", 60, 1, NOW_MS).await.allowed {
                        allowed += 1;
                    }
                }
                allowed
            })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        allowed += task.await.unwrap();
    }
    assert_eq!(allowed, 60);
}

async fn concurrent_acquires_never_exceed_max_parallel(h: &Harness) {
    let tasks: Vec<_> = (0..20)
        .map(|task| {
            let limiter = if task % 2 == 0 {
                &h.limiter
            } else {
                &h.replica
            };
            let limiter = Arc::clone(limiter);
            tokio::spawn(async move { limiter.acquire("par:hot", 5).await.unwrap() })
        })
        .collect();
    let mut acquired = 0;
    for task in tasks {
        acquired += usize::from(task.await.unwrap());
    }
    assert_eq!(acquired, 5);
}

async fn spend_counters_add_up_concurrently(h: &Harness) {
    let tasks: Vec<_> = (0..20)
        .map(|task| {
            let limiter = if task % 2 == 0 {
                &h.limiter
            } else {
                &h.replica
            };
            let limiter = Arc::clone(limiter);
            tokio::spawn(async move {
                for _ in 0..5 {
                    limiter
                        .add_spend("key1", 1_500, NOW_UNIX + 60)
                        .await
                        .unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    // The day before is another day and another month.
    h.limiter
        .add_spend("key1", 250_000, NOW_UNIX - 60)
        .await
        .unwrap();
    h.limiter
        .add_spend("key2", 9_000_000, NOW_UNIX)
        .await
        .unwrap();

    let today = h.replica.spend("key1", NOW_UNIX + 3_600).await.unwrap();
    assert_eq!(
        today,
        Spend {
            day: 0.15,
            month: 0.15,
            total: 0.4
        }
    );
    let yesterday = h.limiter.spend("key1", NOW_UNIX - 1).await.unwrap();
    assert_eq!(
        yesterday,
        Spend {
            day: 0.25,
            month: 0.25,
            total: 0.4
        }
    );
    let tomorrow = h.limiter.spend("key1", NOW_UNIX + 86_400).await.unwrap();
    assert_eq!(
        tomorrow,
        Spend {
            day: 0.0,
            month: 0.15,
            total: 0.4
        }
    );
    let unknown = h.limiter.spend("nobody", NOW_UNIX).await.unwrap();
    assert_eq!(unknown, Spend::default());
}

async fn concurrent_reservations_overshoot_a_budget_by_one_at_most(h: &Harness) {
    // A total budget of two reservations: of fifty concurrent ones, at most three pass.
    let tasks: Vec<_> = (0..50)
        .map(|task| {
            let limiter = if task % 2 == 0 {
                &h.limiter
            } else {
                &h.replica
            };
            let limiter = Arc::clone(limiter);
            tokio::spawn(async move {
                limiter
                    .reserve_spend("budgeted", 1_000, [None, None, Some(2_000)], NOW_UNIX)
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut reserved = 0;
    for task in tasks {
        reserved += usize::from(task.await.unwrap());
    }
    assert!((2..=3).contains(&reserved), "{reserved} reserved");
    // Refunds never go below zero, and free the budget again.
    h.limiter
        .add_spend("budgeted", -1_000_000, NOW_UNIX)
        .await
        .unwrap();
    assert_eq!(
        h.replica.spend("budgeted", NOW_UNIX).await.unwrap(),
        Spend::default()
    );
    assert!(
        h.replica
            .reserve_spend("budgeted", 1_000, [Some(1), None, None], NOW_UNIX)
            .await
            .unwrap()
    );
    assert!(
        !h.limiter
            .reserve_spend("budgeted", 1_000, [Some(1), None, None], NOW_UNIX)
            .await
            .unwrap()
    );
}

async fn revocation_is_visible_from_another_replica(h: &Harness) {
    assert!(!h.limiter.is_revoked("key1").await.unwrap());
    h.limiter.mark_revoked("key1").await.unwrap();
    assert!(h.limiter.is_revoked("key1").await.unwrap());
    assert!(h.replica.is_revoked("key1").await.unwrap());
    assert!(!h.replica.is_revoked("key2").await.unwrap());
}

/// Runs each case against every backend: `limiter::tests::memory::<case>` and
/// `limiter::tests::redis::<case>`.
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let harness = super::Harness::memory();
                    super::$case(&harness).await;
                    harness.cleanup().await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(harness) = super::Harness::redis().await else {
                        return;
                    };
                    super::$case(&harness).await;
                    harness.cleanup().await;
                }
            )*
        }
    };
}

suite!(
    sixty_rpm_allows_sixty_at_once_then_one_per_second,
    token_costs_draw_down_the_bucket,
    adjust_refunds_and_charges_after_the_fact,
    acquire_and_release_respect_max_parallel,
    concurrent_checks_never_exceed_the_limit,
    concurrent_acquires_never_exceed_max_parallel,
    spend_counters_add_up_concurrently,
    concurrent_reservations_overshoot_a_budget_by_one_at_most,
    revocation_is_visible_from_another_replica,
);

// ---- Redis only ----

/// The Lua scripts and the Rust functions are translations of each other: run one long,
/// varied sequence through both and require identical answers.
#[tokio::test]
async fn redis_decides_exactly_like_memory() {
    let Some(harness) = Harness::redis().await else {
        return;
    };
    let memory = MemoryLimiter::default();
    let redis = &*harness.limiter;
    let limits = [1, 7, 60, 1_000, 123_457, 100_000_000];
    let mut rng = fastrand::Rng::with_seed(7);
    let mut now = NOW_MS;
    for step in 0..600 {
        let key = ["a", "b", "c"][rng.usize(..3)];
        let limit = limits[rng.usize(..limits.len())];
        now += rng.u64(..2_500);
        if rng.u8(..5) == 0 {
            let delta = rng.i64(-2_000..2_000);
            memory.adjust(key, limit, delta, now).await.unwrap();
            redis.adjust(key, limit, delta, now).await.unwrap();
        } else {
            let cost = match rng.u8(..3) {
                0 => 1,
                1 => rng.u32(0..=limit.min(5_000)),
                _ => rng.u32(0..=limit.saturating_add(2).min(200_000)),
            };
            let expected = memory.check(key, limit, cost, now).await.unwrap();
            let actual = redis.check(key, limit, cost, now).await.unwrap();
            assert_eq!(
                actual, expected,
                "step {step}: {key} limit {limit} cost {cost}"
            );
        }
    }
    harness.cleanup().await;
}

#[tokio::test]
async fn redis_revocation_cache_can_be_turned_off() {
    let Some(harness) = Harness::redis().await else {
        return;
    };
    let (url, prefix) = harness.redis.clone().unwrap();
    let uncached = RedisLimiter::connect(&url)
        .await
        .unwrap()
        .with_prefix(prefix)
        .with_revocation_ttl(Duration::ZERO);
    assert!(!uncached.is_revoked("key1").await.unwrap());
    harness.limiter.mark_revoked("key1").await.unwrap();
    assert!(uncached.is_revoked("key1").await.unwrap());
    harness.cleanup().await;
}

#[tokio::test]
async fn unreachable_redis_is_unavailable() {
    // Port 1 on loopback: refused at once, nothing leaves the machine.
    let err = RedisLimiter::connect("redis://:hunter2@127.0.0.1:1")
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    let chain = crate::key_store::tests::error_chain(&err);
    assert!(!chain.contains("hunter2"), "{chain}");
}

#[tokio::test]
async fn invalid_redis_url_is_reported_without_its_password() {
    let err = RedisLimiter::connect("redis://:hunter2@127.0.0.1:notaport")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::InvalidUrl { .. }), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Other);
    let chain = crate::key_store::tests::error_chain(&err);
    assert!(!chain.contains("hunter2"), "{chain}");
}

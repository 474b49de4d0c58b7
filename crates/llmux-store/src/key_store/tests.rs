//! One suite, run against every [`KeyStore`] backend: SQLite in a temporary file always, and
//! PostgreSQL when `LLMUX_TEST_PG_URL` is set (each test in a schema of its own, dropped at the
//! end).
#![allow(
    clippy::disallowed_methods,
    reason = "tests spawn their own peers and load on the test runtime, which ends with the test: nothing to drain"
)]

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Once};

use sha2::{Digest, Sha256};
use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::{ErrorKind, KeyRecord, KeyStore, KeyUpdate, NewKey, Spend, StoreError, parse_key};

const PG_ENV: &str = "LLMUX_TEST_PG_URL";

/// 2026-10-31T23:00:00Z and 2026-11-01T01:00:00Z: two days, two months.
const OCT_31_23H: i64 = 1_793_487_600;
const NOV_01_01H: i64 = 1_793_494_800;

enum Backend {
    Sqlite {
        _dir: tempfile::TempDir,
        path: PathBuf,
    },
    Postgres {
        admin: PgPool,
        schema: String,
    },
}

struct Harness {
    store: Arc<dyn KeyStore>,
    backend: Backend,
}

/// Says once per process why a backend is skipped, past the test harness's output capture.
fn note_skip(once: &'static Once, message: &str) {
    once.call_once(|| {
        let _ = writeln!(std::io::stderr(), "{message}");
    });
}

impl Harness {
    async fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.db");
        let store = crate::open(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        Self {
            store,
            backend: Backend::Sqlite { _dir: dir, path },
        }
    }

    async fn postgres() -> Option<Self> {
        static SKIP: Once = Once::new();
        let Ok(base) = std::env::var(PG_ENV) else {
            note_skip(
                &SKIP,
                &format!("skipping PostgreSQL key store tests: {PG_ENV} is unset"),
            );
            return None;
        };
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&base)
            .await
            .unwrap();
        let schema = format!("llmux_test_{}", crate::key::generate().unwrap().id);
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .unwrap();
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        let store = crate::open(&url).await.unwrap();
        Some(Self {
            store,
            backend: Backend::Postgres { admin, schema },
        })
    }

    /// Everything the backend keeps for a key, as bytes: the database files for SQLite (so
    /// the check covers free pages and the WAL too), the row as JSON for PostgreSQL.
    async fn stored_bytes(&self, id: &str) -> Vec<u8> {
        match &self.backend {
            Backend::Sqlite { path, .. } => {
                let mut bytes = Vec::new();
                for suffix in ["", "-wal", "-shm"] {
                    let file = PathBuf::from(format!("{}{suffix}", path.display()));
                    if let Ok(content) = std::fs::read(file) {
                        bytes.extend(content);
                    }
                }
                bytes
            }
            Backend::Postgres { admin, schema } => {
                let sql =
                    format!("SELECT row_to_json(k)::text FROM {schema}.llmux_keys k WHERE id = $1");
                let (row,): (String,) = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_one(admin)
                    .await
                    .unwrap();
                row.into_bytes()
            }
        }
    }

    /// The stored hash of a key's secret, read directly from the table.
    async fn stored_hash(&self, id: &str) -> Vec<u8> {
        match &self.backend {
            Backend::Sqlite { path, .. } => {
                let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .unwrap();
                let (hash,): (Vec<u8>,) =
                    sqlx::query_as("SELECT secret_hash FROM llmux_keys WHERE id = $1")
                        .bind(id)
                        .fetch_one(&pool)
                        .await
                        .unwrap();
                pool.close().await;
                hash
            }
            Backend::Postgres { admin, schema } => {
                let sql = format!("SELECT secret_hash FROM {schema}.llmux_keys WHERE id = $1");
                let (hash,): (Vec<u8>,) = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(id)
                    .fetch_one(admin)
                    .await
                    .unwrap();
                hash
            }
        }
    }

    async fn cleanup(self) {
        drop(self.store);
        if let Backend::Postgres { admin, schema } = self.backend {
            sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .execute(&admin)
                .await
                .unwrap();
            admin.close().await;
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn limited_key() -> NewKey {
    NewKey {
        name: Some("ci".into()),
        expires_at: Some(2_000_000_000),
        allowed_models: vec!["gpt-4o".into(), "claude-sonnet".into()],
        allowed_vendors: vec!["openai".into()],
        rpm: Some(60),
        tpm: Some(100_000),
        max_parallel: Some(4),
        budget_daily_usd: Some(1.5),
        budget_monthly_usd: Some(20.0),
        budget_total_usd: Some(100.0),
    }
}

async fn create(h: &Harness, key: NewKey) -> (KeyRecord, String) {
    h.store.create(key).await.unwrap()
}

// ---- the suite ----

async fn create_shows_plaintext_once_and_stores_only_the_hash(h: &Harness) {
    let (record, plaintext) = create(h, limited_key()).await;
    let (id, secret) = parse_key(&plaintext).unwrap();
    assert_eq!(id, record.id);
    assert_eq!(record.name.as_deref(), Some("ci"));
    assert_eq!(record.allowed_models, ["gpt-4o", "claude-sonnet"]);
    assert_eq!(record.rpm, Some(60));
    assert_eq!(record.budget_daily_usd, Some(1.5));
    assert_eq!(record.revoked_at, None);
    assert!(!format!("{record:?}").contains(secret));

    let hash = Sha256::digest(secret.as_bytes());
    assert_eq!(h.stored_hash(&record.id).await, hash.as_slice());
    let stored = h.stored_bytes(&record.id).await;
    assert!(
        !contains(&stored, secret.as_bytes()),
        "the secret is stored"
    );
    assert!(
        !contains(&stored, plaintext.as_bytes()),
        "the plaintext is stored"
    );
    if let Backend::Postgres { .. } = h.backend {
        assert!(
            contains(&stored, hex(&hash).as_bytes()),
            "the hash is missing"
        );
    }

    // Reading the key back never yields the plaintext again.
    let listed = h.store.list().await.unwrap();
    assert_eq!(listed, std::slice::from_ref(&record));
    assert_eq!(h.store.get(&record.id).await.unwrap(), Some(record));
}

async fn authenticate_accepts_only_the_right_secret(h: &Harness) {
    let (record, plaintext) = create(h, NewKey::default()).await;
    let (other, _) = create(h, NewKey::default()).await;
    let (id, secret) = parse_key(&plaintext).unwrap();

    let found = h.store.authenticate(&plaintext).await.unwrap();
    assert_eq!(found, Some(record.clone()));

    let wrong_secret = format!("llmux-{id}-{}", "0".repeat(64));
    assert_eq!(h.store.authenticate(&wrong_secret).await.unwrap(), None);
    let other_id = format!("llmux-{}-{secret}", other.id);
    assert_eq!(h.store.authenticate(&other_id).await.unwrap(), None);
    let unknown_id = format!("llmux-zzzzzzzzzzzz-{secret}");
    assert_eq!(h.store.authenticate(&unknown_id).await.unwrap(), None);
    for malformed in [
        String::new(),
        "llmux-".into(),
        format!("llmux-{id}"),
        format!("llmux-{id}-{}", &secret[1..]),
        format!("{plaintext}x"),
        format!("sk-{id}-{secret}"),
        format!("sk-proj-{secret}"),
    ] {
        assert_eq!(
            h.store.authenticate(&malformed).await.unwrap(),
            None,
            "{malformed}"
        );
    }
}

/// The hex string that differs from `secret` in every character.
fn far_from(secret: &str) -> String {
    secret
        .chars()
        .map(|c| {
            let digit = c.to_digit(16).unwrap();
            char::from_digit(15 - digit, 16).unwrap()
        })
        .collect()
}

/// Timing side of bypass attempts: a guess that shares all but the last character of the secret,
/// one that shares nothing, and one for an id that does not exist are all refused after the
/// same work (a lookup, a SHA-256, a constant-time compare), so their times agree within noise.
/// Interleaved rounds in a random order and lower quartiles keep the comparison fair on a busy
/// machine; the bound is wide (2×) because it is there to catch a path that skips or adds work,
/// not nanoseconds.
async fn refusals_take_the_same_time_however_close_the_guess(h: &Harness) {
    let (_, plaintext) = create(h, NewKey::default()).await;
    let (id, secret) = parse_key(&plaintext).unwrap();
    let mut near = secret.to_owned();
    let last = near.pop().unwrap();
    near.push(if last == '0' { '1' } else { '0' });
    let guesses = [
        format!("llmux-{id}-{near}"),
        // Well-formed (hex) but different in every character. A malformed key is refused before
        // any lookup, which tells nothing: the format is public.
        format!("llmux-{id}-{}", far_from(secret)),
        format!("llmux-zzzzzzzzzzzz-{near}"),
    ];
    let mut times: [Vec<std::time::Duration>; 3] = Default::default();
    let mut order = [0, 1, 2];
    for round in 0..300 {
        // A fresh order each round: a guess always asked first measured 2× the others once
        // in a CI-like run (the same work, waiting on a busy machine).
        fastrand::shuffle(&mut order);
        for &i in &order {
            let started = std::time::Instant::now();
            let found = h.store.authenticate(&guesses[i]).await.unwrap();
            let elapsed = started.elapsed();
            assert_eq!(found, None);
            if round >= 30 {
                times[i].push(elapsed);
            }
        }
    }
    // Lower quartiles: the time of the work itself, least touched by other tests' load.
    let quartiles: Vec<f64> = times
        .iter_mut()
        .map(|t| {
            t.sort_unstable();
            t[t.len() / 4].as_secs_f64()
        })
        .collect();
    let (min, max) = quartiles
        .iter()
        .fold((f64::MAX, 0f64), |(lo, hi), m| (lo.min(*m), hi.max(*m)));
    assert!(
        max <= 2.0 * min,
        "refusal times differ by guess (near secret, far secret, unknown id): {quartiles:?}"
    );
}

async fn expired_key_is_returned_but_unusable(h: &Harness) {
    let key = NewKey {
        expires_at: Some(1_000),
        ..NewKey::default()
    };
    let (_, plaintext) = create(h, key).await;
    let record = h.store.authenticate(&plaintext).await.unwrap().unwrap();
    assert_eq!(record.expires_at, Some(1_000));
    assert!(record.is_usable(999));
    assert!(!record.is_usable(1_000));
}

async fn revoked_key_authenticates_with_revoked_at_set(h: &Harness) {
    let (record, plaintext) = create(h, NewKey::default()).await;
    assert!(h.store.revoke(&record.id).await.unwrap());
    let revoked = h.store.authenticate(&plaintext).await.unwrap().unwrap();
    let revoked_at = revoked.revoked_at.unwrap();
    assert!(revoked_at >= record.created_at);
    assert!(!revoked.is_usable(revoked_at));

    // Revoking again keeps the first time; an unknown id is reported.
    assert!(h.store.revoke(&record.id).await.unwrap());
    let again = h.store.get(&record.id).await.unwrap().unwrap();
    assert_eq!(again.revoked_at, Some(revoked_at));
    assert!(!h.store.revoke("zzzzzzzzzzzz").await.unwrap());
}

async fn update_sets_and_clears_fields(h: &Harness) {
    let (record, _) = create(h, limited_key()).await;
    let update = KeyUpdate {
        name: Some(Some("renamed".into())),
        expires_at: Some(None),
        allowed_models: Some(vec![]),
        rpm: Some(Some(120)),
        tpm: Some(None),
        budget_monthly_usd: Some(Some(42.5)),
        budget_total_usd: Some(None),
        ..KeyUpdate::default()
    };
    let updated = h.store.update(&record.id, update).await.unwrap().unwrap();
    let expected = KeyRecord {
        name: Some("renamed".into()),
        expires_at: None,
        allowed_models: vec![],
        rpm: Some(120),
        tpm: None,
        budget_monthly_usd: Some(42.5),
        budget_total_usd: None,
        ..record.clone()
    };
    assert_eq!(updated, expected);
    assert_eq!(
        h.store.get(&record.id).await.unwrap(),
        Some(expected.clone())
    );

    // An empty update changes nothing; an unknown id yields None.
    let same = h
        .store
        .update(&record.id, KeyUpdate::default())
        .await
        .unwrap();
    assert_eq!(same, Some(expected));
    let missing = h.store.update("zzzzzzzzzzzz", KeyUpdate::default()).await;
    assert_eq!(missing.unwrap(), None);
}

async fn concurrent_record_usage_sums_exactly(h: &Harness) {
    let (record, _) = create(h, NewKey::default()).await;
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let store = Arc::clone(&h.store);
            let id = record.id.clone();
            tokio::spawn(async move {
                store
                    .record_usage(&id, NOV_01_01H, 10, 20, 0.001)
                    .await
                    .unwrap();
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let usage = h.store.usage(&record.id).await.unwrap();
    assert_eq!(usage.len(), 1);
    let row = &usage[0];
    assert_eq!(row.day, "2026-11-01");
    assert_eq!(
        (row.requests, row.input_tokens, row.output_tokens),
        (50, 500, 1_000)
    );
    assert_eq!(row.cost_usd, 0.05);
}

async fn usage_is_kept_per_day_in_order(h: &Harness) {
    let (record, _) = create(h, NewKey::default()).await;
    let (other, _) = create(h, NewKey::default()).await;
    let store = &h.store;
    store
        .record_usage(&record.id, NOV_01_01H, 5, 6, 0.5)
        .await
        .unwrap();
    store
        .record_usage(&record.id, OCT_31_23H, 1, 2, 0.25)
        .await
        .unwrap();
    store
        .record_usage(&record.id, OCT_31_23H + 600, 3, 4, 0.25)
        .await
        .unwrap();
    store
        .record_usage(&other.id, OCT_31_23H, 100, 100, 9.0)
        .await
        .unwrap();

    let usage = store.usage(&record.id).await.unwrap();
    let days: Vec<_> = usage.iter().map(|row| row.day.as_str()).collect();
    assert_eq!(days, ["2026-10-31", "2026-11-01"]);
    assert_eq!(
        (
            usage[0].requests,
            usage[0].input_tokens,
            usage[0].output_tokens
        ),
        (2, 4, 6)
    );
    assert_eq!(usage[0].cost_usd, 0.5);
    assert_eq!((usage[1].requests, usage[1].cost_usd), (1, 0.5));
    assert!(store.usage("zzzzzzzzzzzz").await.unwrap().is_empty());
}

async fn spend_splits_day_month_and_total_across_a_month_boundary(h: &Harness) {
    let (record, _) = create(h, NewKey::default()).await;
    let (other, _) = create(h, NewKey::default()).await;
    let store = &h.store;
    store
        .record_usage(&record.id, OCT_31_23H - 86_400, 1, 1, 0.5)
        .await
        .unwrap();
    store
        .record_usage(&record.id, OCT_31_23H, 1, 1, 1.25)
        .await
        .unwrap();
    store
        .record_usage(&record.id, NOV_01_01H, 1, 1, 2.5)
        .await
        .unwrap();
    store
        .record_usage(&other.id, NOV_01_01H, 1, 1, 7.0)
        .await
        .unwrap();

    let in_november = store.spend(&record.id, NOV_01_01H + 3_600).await.unwrap();
    assert_eq!(
        in_november,
        Spend {
            day: 2.5,
            month: 2.5,
            total: 4.25
        }
    );
    let in_october = store.spend(&record.id, OCT_31_23H + 1_800).await.unwrap();
    assert_eq!(
        in_october,
        Spend {
            day: 1.25,
            month: 1.75,
            total: 4.25
        }
    );
    let next_day = store.spend(&record.id, NOV_01_01H + 86_400).await.unwrap();
    assert_eq!(
        next_day,
        Spend {
            day: 0.0,
            month: 2.5,
            total: 4.25
        }
    );
    let unknown = store.spend("zzzzzzzzzzzz", NOV_01_01H).await.unwrap();
    assert_eq!(unknown, Spend::default());
}

async fn any_keys_turns_true_with_the_first_key(h: &Harness) {
    assert!(!h.store.any_keys().await.unwrap());
    assert!(h.store.list().await.unwrap().is_empty());
    let (first, _) = create(h, NewKey::default()).await;
    assert!(h.store.any_keys().await.unwrap());
    let (second, _) = create(h, NewKey::default()).await;
    let ids: Vec<_> = h
        .store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.id)
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&first.id) && ids.contains(&second.id));
    assert_eq!(h.store.get("zzzzzzzzzzzz").await.unwrap(), None);
}

/// Runs each case against every backend: `key_store::tests::sqlite::<case>` and
/// `key_store::tests::postgres::<case>`.
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let harness = super::Harness::sqlite().await;
                    super::$case(&harness).await;
                    harness.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(harness) = super::Harness::postgres().await else {
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
    create_shows_plaintext_once_and_stores_only_the_hash,
    authenticate_accepts_only_the_right_secret,
    refusals_take_the_same_time_however_close_the_guess,
    expired_key_is_returned_but_unusable,
    revoked_key_authenticates_with_revoked_at_set,
    update_sets_and_clears_fields,
    concurrent_record_usage_sums_exactly,
    usage_is_kept_per_day_in_order,
    spend_splits_day_month_and_total_across_a_month_boundary,
    any_keys_turns_true_with_the_first_key,
);

// ---- opening ----

#[tokio::test]
async fn in_memory_sqlite_keeps_data_across_calls() {
    let store = crate::open("sqlite::memory:").await.unwrap();
    let (record, plaintext) = store.create(NewKey::default()).await.unwrap();
    for _ in 0..3 {
        let found = store.authenticate(&plaintext).await.unwrap();
        assert_eq!(found.as_ref(), Some(&record));
    }
}

#[tokio::test]
async fn reopening_a_sqlite_file_keeps_keys_and_skips_applied_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());
    let (_, plaintext) = crate::open(&url)
        .await
        .unwrap()
        .create(NewKey::default())
        .await
        .unwrap();
    let reopened = crate::open(&url).await.unwrap();
    assert!(reopened.authenticate(&plaintext).await.unwrap().is_some());
}

#[tokio::test]
async fn unsupported_url_is_rejected_without_its_password() {
    let err = crate::open("mysql://root:hunter2@db/llmux")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::UnsupportedUrl { .. }));
    assert_eq!(err.kind(), ErrorKind::Other);
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
}

#[tokio::test]
async fn invalid_postgres_url_is_reported_without_its_password() {
    let err = crate::open("postgres://admin:hunter2@db:notaport/llmux")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::InvalidUrl { .. }), "{err:?}");
    assert!(
        !error_chain(&err).contains("hunter2"),
        "{}",
        error_chain(&err)
    );
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable() {
    // Port 1 on loopback: refused at once, nothing leaves the machine.
    let err = crate::open("postgres://admin:hunter2@127.0.0.1:1/llmux")
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err:?}");
    assert!(
        !error_chain(&err).contains("hunter2"),
        "{}",
        error_chain(&err)
    );
}

/// Display and Debug of an error and all its sources, as a log line might show them.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = format!("{err} {err:?}");
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(" | {cause} {cause:?}"));
        source = cause.source();
    }
    text
}

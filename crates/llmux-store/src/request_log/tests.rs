//! One suite, run against every [`RequestLogStore`] backend: SQLite in a temporary file always,
//! and PostgreSQL when `LLMUX_TEST_PG_URL` is set (each test in a schema of its own, dropped at
//! the end, so tests run in parallel).
#![allow(
    clippy::disallowed_methods,
    reason = "tests spawn their own writers and inserters on the test runtime, which ends with the test: nothing to drain"
)]

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::io::Write as _;
use std::str::FromStr as _;
use std::sync::{Arc, Once};
use std::time::Duration;

use sqlx::AssertSqlSafe;
use sqlx::postgres::{PgPool, PgPoolOptions};

use crate::{
    AttemptRecord, ErrorKind, Page, RequestFilter, RequestLog, RequestLogOptions, RequestLogStore,
    RequestRecord, StatusFilter, StoreError, USER_AGENT_CAP,
};

const PG_ENV: &str = "LLMUX_TEST_PG_URL";

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;
/// 2026-11-01T12:00:00Z.
const NOW_MS: i64 = 1_793_534_400_000;

enum Backend {
    Sqlite { _dir: tempfile::TempDir },
    Postgres { admin: PgPool, schema: String },
}

struct Harness {
    store: Arc<dyn RequestLogStore>,
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
        let url = format!("sqlite://{}", dir.path().join("log.db").display());
        let store = crate::open_request_log(&url).await.unwrap();
        Self {
            store,
            backend: Backend::Sqlite { _dir: dir },
        }
    }

    async fn postgres() -> Option<Self> {
        static SKIP: Once = Once::new();
        let Ok(base) = std::env::var(PG_ENV) else {
            note_skip(
                &SKIP,
                &format!("skipping PostgreSQL request log tests: {PG_ENV} is unset"),
            );
            return None;
        };
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&base)
            .await
            .unwrap();
        let schema = format!("llmux_test_log_{}", crate::key::generate().unwrap().id);
        sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&admin)
            .await
            .unwrap();
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-c%20search_path%3D{schema}");
        let store = crate::open_request_log(&url).await.unwrap();
        Some(Self {
            store,
            backend: Backend::Postgres { admin, schema },
        })
    }

    /// The day partitions that exist, as `YYYYMMDD` (PostgreSQL only).
    async fn partitions(&self) -> Option<BTreeSet<String>> {
        let Backend::Postgres { admin, schema } = &self.backend else {
            return None;
        };
        let names: Vec<(String,)> = sqlx::query_as(
            "SELECT tablename::text FROM pg_tables \
             WHERE schemaname = $1 AND tablename LIKE 'llmux_request_log_%'",
        )
        .bind(schema)
        .fetch_all(admin)
        .await
        .unwrap();
        Some(
            names
                .into_iter()
                .map(|(name,)| name["llmux_request_log_".len()..].to_owned())
                .collect(),
        )
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

/// A minimal successful record.
fn record(time_ms: i64, request_id: &str) -> RequestRecord {
    RequestRecord {
        requested_model: "fast".into(),
        vendor: Some("openai".into()),
        credential: Some("openai-1".into()),
        upstream_model: Some("gpt-4o-mini".into()),
        status: 200,
        attempts: vec![AttemptRecord {
            vendor: "openai".into(),
            credential: "openai-1".into(),
            model: "gpt-4o-mini".into(),
            status: 200,
            duration_ms: 120,
            error: None,
        }],
        ttfb_ms: Some(80),
        total_ms: 150,
        input_tokens: Some(10),
        output_tokens: Some(20),
        cost_usd: Some(0.000_25),
        client_addr: "127.0.0.1:50000".into(),
        user_agent: Some("test/1".into()),
        ..RequestRecord::new(time_ms, request_id.to_owned(), Cow::Borrowed("chat"))
    }
}

/// Every record `filter` selects, page by page, as request ids.
async fn all_ids(store: &dyn RequestLogStore, filter: RequestFilter) -> Vec<String> {
    let mut filter = RequestFilter {
        limit: Some(500),
        ..filter
    };
    let mut ids = Vec::new();
    loop {
        let page = store.query(&filter).await.unwrap();
        ids.extend(page.records.into_iter().map(|r| r.request_id));
        match page.next_cursor {
            Some(cursor) => filter.cursor = Some(cursor),
            None => return ids,
        }
    }
}

fn ids(page: &Page) -> Vec<&str> {
    page.records.iter().map(|r| r.request_id.as_str()).collect()
}

// ---- cases ----

async fn get_returns_the_record_with_attempts_and_bodies(h: &Harness) {
    let mut full = record(NOW_MS, "req-full");
    full.key_id = Some("abcdefabcdef".into());
    full.key_name = Some("ci".into());
    full.ingress = Cow::Owned("messages".into());
    full.status = 200;
    full.error_kind = Some(Cow::Borrowed("upstream_error"));
    full.attempts.insert(
        0,
        AttemptRecord {
            vendor: "anthropic".into(),
            credential: "anthropic-1".into(),
            model: "claude-haiku".into(),
            status: 529,
            duration_ms: 40,
            error: Some("overloaded".into()),
        },
    );
    full.cached_tokens = Some(3);
    full.reasoning_tokens = Some(u64::from(u32::MAX) + 7);
    full.cost_estimated = true;
    full.stream = true;
    full.user_agent = Some("é".repeat(200)); // 400 bytes, two per character
    full.request_body = Some(r#"{"model":"fast","messages":[]}"#.into());
    full.response_body = Some("{\"id\":\"x\"}".into());
    let mut no_attempt = record(NOW_MS - 1, "req-refused");
    no_attempt.vendor = None;
    no_attempt.credential = None;
    no_attempt.upstream_model = None;
    no_attempt.attempts.clear();
    no_attempt.status = 429;
    no_attempt.error_kind = Some(Cow::Borrowed("rate_limited"));
    no_attempt.ttfb_ms = None;
    no_attempt.input_tokens = None;
    no_attempt.output_tokens = None;
    no_attempt.cost_usd = None;
    no_attempt.user_agent = None;
    h.store
        .write(vec![full.clone(), no_attempt.clone()])
        .await
        .unwrap();

    let got = h.store.get("req-full").await.unwrap().unwrap();
    let agent = got.user_agent.clone().unwrap();
    assert_eq!(agent.len(), USER_AGENT_CAP);
    assert_eq!(agent, "é".repeat(USER_AGENT_CAP / 2));
    let expected = RequestRecord {
        user_agent: Some(agent),
        ..full.clone()
    };
    assert_eq!(got, expected);
    assert_eq!(got.attempts.len(), 2);
    assert_eq!(got.attempts[0].error.as_deref(), Some("overloaded"));
    assert_eq!(
        h.store.get("req-refused").await.unwrap(),
        Some(no_attempt.clone())
    );
    assert_eq!(h.store.get("req-missing").await.unwrap(), None);

    // Pages leave the bodies out, and so does their JSON.
    let page = h.store.query(&RequestFilter::default()).await.unwrap();
    assert_eq!(ids(&page), ["req-full", "req-refused"]);
    assert_eq!(page.records[0].request_body, None);
    assert_eq!(page.records[0].attempts, expected.attempts);
    let json = serde_json::to_value(&page).unwrap();
    assert!(json["records"][0].get("request_body").is_none(), "{json}");
    assert_eq!(json["records"][0]["attempts"][0]["status"], 529);
    assert_eq!(
        json["records"][1]["upstream_model"],
        serde_json::Value::Null
    );
    assert_eq!(json["next_cursor"], serde_json::Value::Null);
}

async fn writing_a_record_twice_keeps_one(h: &Harness) {
    let one = record(NOW_MS, "req-1");
    h.store.write(vec![one.clone()]).await.unwrap();
    h.store
        .write(vec![one.clone(), record(NOW_MS, "req-2")])
        .await
        .unwrap();
    h.store.write(Vec::new()).await.unwrap();
    let ids = all_ids(&*h.store, RequestFilter::default()).await;
    assert_eq!(ids, ["req-2", "req-1"]);
}

async fn filters_select_by_time_key_model_vendor_and_status(h: &Harness) {
    let mut records = Vec::new();
    let mut add = |id: &str, at: i64, edit: &dyn Fn(&mut RequestRecord)| {
        let mut r = record(NOW_MS + at, id);
        edit(&mut r);
        records.push(r);
    };
    add("a", 0, &|_| {});
    add("b", 1, &|r| r.key_id = Some("key-b".into()));
    add("c", 2, &|r| r.requested_model = "gpt-4o-mini".into());
    add("d", 3, &|r| {
        r.vendor = Some("anthropic".into());
        r.upstream_model = Some("claude".into());
        r.requested_model = "smart".into();
    });
    add("e", 4, &|r| r.status = 429);
    add("f", 5, &|r| r.status = 503);
    add("g", 6, &|r| {
        // A stream that broke after its 200 head.
        r.error_kind = Some(Cow::Borrowed("stream_broken"));
    });
    add("h", 7, &|r| {
        r.status = 401;
        r.vendor = None;
        r.credential = None;
        r.upstream_model = None;
        r.attempts.clear();
    });
    h.store.write(records.clone()).await.unwrap();

    let check = |filter: RequestFilter, expected: &'static [&'static str]| {
        let store = Arc::clone(&h.store);
        async move {
            let got = all_ids(&*store, filter.clone()).await;
            assert_eq!(got, expected, "{filter:?}");
        }
    };
    let all = RequestFilter::default();
    check(all.clone(), &["h", "g", "f", "e", "d", "c", "b", "a"]).await;
    check(
        RequestFilter {
            from: Some(NOW_MS + 2),
            to: Some(NOW_MS + 5),
            ..all.clone()
        },
        &["e", "d", "c"],
    )
    .await;
    check(
        RequestFilter {
            key: Some("key-b".into()),
            ..all.clone()
        },
        &["b"],
    )
    .await;
    // The requested model, or the upstream one.
    check(
        RequestFilter {
            model: Some("gpt-4o-mini".into()),
            ..all.clone()
        },
        &["g", "f", "e", "c", "b", "a"],
    )
    .await;
    check(
        RequestFilter {
            model: Some("smart".into()),
            ..all.clone()
        },
        &["d"],
    )
    .await;
    check(
        RequestFilter {
            vendor: Some("anthropic".into()),
            ..all.clone()
        },
        &["d"],
    )
    .await;
    for (status, expected) in [
        (StatusFilter::Exact(429), &["e"][..]),
        (StatusFilter::Class(4), &["h", "e"][..]),
        (StatusFilter::Class(5), &["f"][..]),
        (StatusFilter::Class(2), &["g", "d", "c", "b", "a"][..]),
        (StatusFilter::Error, &["h", "g", "f", "e"][..]),
    ] {
        let filter = RequestFilter {
            status: Some(status),
            ..all.clone()
        };
        let got = all_ids(&*h.store, filter).await;
        assert_eq!(got, expected, "{status}");
    }
    check(
        RequestFilter {
            vendor: Some("openai".into()),
            status: Some(StatusFilter::Error),
            from: Some(NOW_MS + 5),
            ..all.clone()
        },
        &["g", "f"],
    )
    .await;
    check(
        RequestFilter {
            key: Some("nobody".into()),
            ..all
        },
        &[],
    )
    .await;
}

async fn pages_have_no_duplicates_or_gaps_under_concurrent_inserts(h: &Harness) {
    // 150 records over 30 distinct times: ties are broken by request id.
    let originals: Vec<RequestRecord> = (0..150)
        .map(|i| record(NOW_MS - HOUR_MS + (i / 5) * 1_000, &format!("orig-{i:03}")))
        .collect();
    h.store.write(originals.clone()).await.unwrap();
    let mut expected: Vec<(i64, String)> = originals
        .iter()
        .map(|r| (r.time_ms, r.request_id.clone()))
        .collect();
    expected.sort();
    expected.reverse();
    let expected: Vec<String> = expected.into_iter().map(|(_, id)| id).collect();

    let mut filter = RequestFilter {
        limit: Some(50),
        ..RequestFilter::default()
    };
    let first = h.store.query(&filter).await.unwrap();
    assert_eq!(first.records.len(), 50);
    let last = first.records.last().unwrap().clone();

    // While the client pages: newer records stream in, and records at the cursor's own time
    // that sort before it (a larger request id) arrive too. Neither may show on later pages.
    let inserter = {
        let store = Arc::clone(&h.store);
        let at = last.time_ms;
        tokio::spawn(async move {
            for batch in 0..20 {
                let newer: Vec<RequestRecord> = (0..10)
                    .map(|i| record(NOW_MS + batch * 100 + i, &format!("new-{batch}-{i}")))
                    .collect();
                store.write(newer.clone()).await.unwrap();
                store
                    .write(vec![record(at, &format!("{}~{batch}", last.request_id))])
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    let mut seen: Vec<String> = first.records.into_iter().map(|r| r.request_id).collect();
    filter.cursor = first.next_cursor;
    let mut pages = 1;
    while filter.cursor.is_some() {
        let page = h.store.query(&filter).await.unwrap();
        pages += 1;
        seen.extend(page.records.into_iter().map(|r| r.request_id));
        filter.cursor = page.next_cursor;
        // One more insert between pages, whatever the spawned task is doing.
        h.store
            .write(vec![record(
                NOW_MS + 10_000 + pages,
                &format!("between-{pages}"),
            )])
            .await
            .unwrap();
    }
    inserter.await.unwrap();
    assert_eq!(pages, 3);
    assert_eq!(seen, expected);

    // An unknown cursor is refused, not treated as the first page.
    let err = h
        .store
        .query(&RequestFilter {
            cursor: Some("not a cursor".into()),
            ..RequestFilter::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidCursor), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Other);
}

async fn retention_drops_whole_old_days(h: &Harness) {
    let day_start = NOW_MS - 12 * HOUR_MS; // 2026-11-01T00:00Z
    let records = [
        record(NOW_MS - 10 * DAY_MS, "ten-days"),
        record(day_start - 7 * DAY_MS - 1, "eight-days-end"),
        record(NOW_MS - 7 * DAY_MS - HOUR_MS, "seven-days-1h"),
        record(day_start - 7 * DAY_MS, "seven-days-start"),
        record(NOW_MS - DAY_MS, "yesterday"),
        record(NOW_MS, "now"),
    ];
    h.store.write(records.to_vec()).await.unwrap();
    if let Some(partitions) = h.partitions().await {
        // Every day written, and the day after the newest.
        for day in [
            "20261022", "20261024", "20261025", "20261031", "20261101", "20261102",
        ] {
            assert!(partitions.contains(day), "{day} in {partitions:?}");
        }
    }

    h.store.retain(7, NOW_MS).await.unwrap();
    let ids = all_ids(&*h.store, RequestFilter::default()).await;
    assert_eq!(
        ids,
        ["now", "yesterday", "seven-days-1h", "seven-days-start"]
    );
    if let Some(partitions) = h.partitions().await {
        assert!(
            partitions.iter().all(|day| day.as_str() >= "20261025"),
            "{partitions:?}"
        );
        assert!(partitions.contains("20261025"), "{partitions:?}");
    }

    // Idempotent, and a dropped day can be written again (its partition comes back).
    h.store.retain(7, NOW_MS).await.unwrap();
    h.store
        .write(vec![record(NOW_MS - 10 * DAY_MS, "late")])
        .await
        .unwrap();
    assert!(h.store.get("late").await.unwrap().is_some());
    h.store.retain(1, NOW_MS).await.unwrap();
    let ids = all_ids(&*h.store, RequestFilter::default()).await;
    assert_eq!(ids, ["now", "yesterday"]);
}

async fn writer_stores_a_thousand_records(h: &Harness) {
    let (log, task) = RequestLog::start(
        Arc::clone(&h.store),
        RequestLogOptions {
            retention_days: None,
            ..RequestLogOptions::default()
        },
    );
    for i in 0..1_000 {
        assert!(log.record(record(NOW_MS + i, &format!("w-{i:04}"))));
    }
    let writer = tokio::spawn(task);
    assert!(log.flush(Duration::from_secs(30)).await);
    assert_eq!(log.dropped(), 0);
    let ids = all_ids(&**log.store(), RequestFilter::default()).await;
    assert_eq!(ids.len(), 1_000);
    assert_eq!(ids[0], "w-0999");
    assert!(log.shutdown(Duration::from_secs(30)).await);
    writer.await.unwrap();
}

/// Runs each case against every backend: `request_log::tests::sqlite::<case>` and
/// `request_log::tests::postgres::<case>`.
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
    get_returns_the_record_with_attempts_and_bodies,
    writing_a_record_twice_keeps_one,
    filters_select_by_time_key_model_vendor_and_status,
    pages_have_no_duplicates_or_gaps_under_concurrent_inserts,
    retention_drops_whole_old_days,
    writer_stores_a_thousand_records,
);

// ---- opening ----

#[tokio::test]
async fn in_memory_sqlite_log_keeps_records() {
    let store = crate::open_request_log("sqlite::memory:").await.unwrap();
    store.write(vec![record(NOW_MS, "m-1")]).await.unwrap();
    assert!(store.get("m-1").await.unwrap().is_some());
}

/// In memory, the writer's connection and the readers' share one database through SQLite's
/// shared cache, whose table locks the busy timeout does not cover: pages read while batches
/// are written must neither fail nor wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory_sqlite_log_serves_pages_while_batches_are_written() {
    let store = crate::open_request_log("sqlite::memory:").await.unwrap();
    let writer = {
        let store = std::sync::Arc::clone(&store);
        tokio::spawn(async move {
            for batch in 0..50_i64 {
                let records = (0..200)
                    .map(|i| record(NOW_MS + batch * 1_000 + i, &format!("w-{batch}-{i}")))
                    .collect();
                store.write(records).await.unwrap();
            }
        })
    };
    let mut pages = 0;
    while !writer.is_finished() {
        store.query(&RequestFilter::default()).await.unwrap();
        pages += 1;
    }
    writer.await.unwrap();
    assert!(pages > 0);
    assert!(store.get("w-49-199").await.unwrap().is_some());
}

#[tokio::test]
async fn reopening_a_sqlite_log_keeps_records_and_skips_applied_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("log.db").display());
    crate::open_request_log(&url)
        .await
        .unwrap()
        .write(vec![record(NOW_MS, "r-1")])
        .await
        .unwrap();
    let reopened = crate::open_request_log(&url).await.unwrap();
    assert!(reopened.get("r-1").await.unwrap().is_some());
}

/// A log an older gateway wrote (a row per record, version 1 with its six filter indexes)
/// is moved into batches when it opens: every record, its attempts and bodies are kept, the
/// old table goes, and the move does not run again.
#[tokio::test]
async fn an_older_sqlite_log_is_moved_into_batches_with_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("v1.db").display());
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
        .unwrap()
        .create_if_missing(true);
    let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
    super::sqlite::migrator_up_to(1).run(&pool).await.unwrap();
    let tables = |pool: sqlx::SqlitePool| async move {
        sqlx::query_scalar::<_, String>(
            "SELECT name FROM sqlite_master WHERE type = 'table' \
             AND name LIKE 'llmux_request_log%' ORDER BY name",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    assert!(
        tables(pool.clone())
            .await
            .contains(&"llmux_request_log".to_owned())
    );
    // 2,500 rows (three chunks of the move) over two days, one with bodies and a gateway id.
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 2499) \
         INSERT INTO llmux_request_log (time_ms, request_id, ingress, requested_model, status, \
         attempts, total_ms, cost_estimated, stream, client_addr, vendor) \
         SELECT $1 - i * 60000, printf('old-%04d', i), 'chat', 'm', 200, \
         '[{\"vendor\":\"openai\",\"credential\":\"o\",\"model\":\"g\",\"status\":200,\"duration_ms\":9,\"error\":null}]', \
         5, 0, 0, '10.0.0.1', 'openai' FROM n",
    )
    .bind(NOW_MS)
    .execute(&pool)
    .await
    .unwrap();
    let own_id = "req_019a3d6b1c00abcdef012345";
    sqlx::query(
        "INSERT INTO llmux_request_log (time_ms, request_id, ingress, requested_model, status, \
         attempts, total_ms, cost_estimated, stream, client_addr, request_body) \
         VALUES ($1, $2, 'messages', 'm', 401, '[]', 1, 0, 1, '', '{\"a\":1}')",
    )
    .bind(0x019a_3d6b_1c00_i64)
    .bind(own_id)
    .execute(&pool)
    .await
    .unwrap();

    let log = crate::open_request_log(&url).await.unwrap();
    let left = tables(pool.clone()).await;
    assert!(!left.contains(&"llmux_request_log".to_owned()), "{left:?}");
    let ids = all_ids(&*log, RequestFilter::default()).await;
    assert_eq!(ids.len(), 2_501);
    assert_eq!(ids[0], "old-0000");
    assert_eq!(ids[2_499], "old-2499");
    assert_eq!(ids[2_500], own_id);
    let old = log.get("old-1234").await.unwrap().unwrap();
    assert_eq!(old.time_ms, NOW_MS - 1234 * 60_000);
    assert_eq!(old.attempts[0].duration_ms, 9);
    assert_eq!(old.client_addr, "10.0.0.1");
    let own = log.get(own_id).await.unwrap().unwrap();
    assert_eq!(own.request_body.as_deref(), Some("{\"a\":1}"));
    assert!(own.stream);
    let filter = RequestFilter {
        vendor: Some("openai".into()),
        status: Some(StatusFilter::Class(2)),
        limit: Some(10),
        ..RequestFilter::default()
    };
    assert_eq!(log.query(&filter).await.unwrap().records.len(), 10);
    drop(log);
    // Reopened: nothing to move, nothing lost.
    let log = crate::open_request_log(&url).await.unwrap();
    assert_eq!(all_ids(&*log, RequestFilter::default()).await.len(), 2_501);
}

/// Records under the gateway's own ids are found by the time the id carries, client-chosen
/// ids through their index; a gateway-shaped id whose time is not the record's is indexed too.
#[tokio::test]
async fn records_are_found_by_gateway_ids_and_client_ids() {
    let store = crate::open_request_log("sqlite::memory:").await.unwrap();
    let own = format!("req_{:012x}0123456789ab", NOW_MS);
    let forged = format!("req_{:012x}0123456789ab", NOW_MS - DAY_MS);
    let mut batch = vec![
        record(NOW_MS, &own),
        record(NOW_MS, "client-id"),
        record(NOW_MS, &forged),
    ];
    // Later batches, so the first is not the only one near the id's time.
    for i in 0..300 {
        batch.push(record(
            NOW_MS + i,
            &format!("req_{:012x}{i:012x}", NOW_MS + i),
        ));
    }
    store.write(batch).await.unwrap();
    for id in [own.as_str(), "client-id", forged.as_str()] {
        let got = store.get(id).await.unwrap();
        assert_eq!(got.map(|r| r.request_id), Some(id.to_owned()));
    }
    let missing = format!("req_{:012x}ffffffffffff", NOW_MS);
    assert_eq!(store.get(&missing).await.unwrap(), None);
    assert_eq!(store.get("nobody").await.unwrap(), None);
}

#[tokio::test]
async fn the_log_shares_a_sqlite_file_with_the_key_store() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("llmux.db").display());
    let keys = crate::open(&url).await.unwrap();
    let log = crate::open_request_log(&url).await.unwrap();
    keys.create(crate::NewKey::default()).await.unwrap();
    log.write(vec![record(NOW_MS, "s-1")]).await.unwrap();
    // Both reopen: each checks only its own migration history.
    assert!(crate::open(&url).await.unwrap().any_keys().await.unwrap());
    let log = crate::open_request_log(&url).await.unwrap();
    assert!(log.get("s-1").await.unwrap().is_some());
}

#[tokio::test]
async fn unsupported_log_url_is_rejected_without_its_password() {
    let err = crate::open_request_log("mysql://root:hunter2@db/llmux")
        .await
        .err()
        .unwrap();
    assert!(matches!(err, StoreError::UnsupportedUrl { .. }));
    assert!(!format!("{err} {err:?}").contains("hunter2"), "{err:?}");
}

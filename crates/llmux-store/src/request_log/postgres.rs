//! The PostgreSQL request log, shared by every replica: one table partitioned by UTC day
//! (declarative range partitioning on `time_ms`), so retention drops whole partitions.
//!
//! Partitions are created by the writer before it inserts: for every day a batch touches and
//! the day after the newest, each with `CREATE TABLE IF NOT EXISTS … PARTITION OF`, under a
//! transaction-scoped advisory lock so that replicas creating the same day do not race. Days
//! known to exist are remembered, so this costs nothing after the first batch of a day.
//! There is no default partition: rows in it would block creating their day's partition.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, SqlSafeStr};

use super::sql::{self, InsertRow, bind_params, bind_row, select_columns};
use crate::{
    BoxFuture, Page, RequestFilter, RequestLogStore, RequestRecord, StoreError, redact_url,
};

/// Version 1 of the schema. Applied migrations are checksummed: change the schema by adding a
/// version, never by editing one.
///
/// Attempts are a `JSONB` column (not a child table): a record is written and read whole,
/// and an operator can still query inside it. `request_id` compares bytewise (`COLLATE "C"`)
/// so that keyset pages do not depend on the database's locale. Indexes on the parent are
/// created on every partition.
const SCHEMA_V1: &str = r#"
CREATE TABLE llmux_request_log (
    time_ms BIGINT NOT NULL,
    request_id TEXT COLLATE "C" NOT NULL,
    key_id TEXT,
    key_name TEXT,
    ingress TEXT NOT NULL,
    requested_model TEXT NOT NULL,
    vendor TEXT,
    credential TEXT,
    upstream_model TEXT,
    status BIGINT NOT NULL,
    error_kind TEXT,
    attempts JSONB NOT NULL,
    ttfb_ms BIGINT,
    total_ms BIGINT NOT NULL,
    input_tokens BIGINT,
    output_tokens BIGINT,
    cached_tokens BIGINT,
    reasoning_tokens BIGINT,
    cost_usd DOUBLE PRECISION,
    cost_estimated BOOLEAN NOT NULL,
    stream BOOLEAN NOT NULL,
    client_addr TEXT NOT NULL,
    user_agent TEXT,
    request_body TEXT,
    response_body TEXT,
    PRIMARY KEY (time_ms, request_id)
) PARTITION BY RANGE (time_ms);
CREATE INDEX llmux_request_log_request_id ON llmux_request_log (request_id);
CREATE INDEX llmux_request_log_key ON llmux_request_log (key_id, time_ms, request_id);
CREATE INDEX llmux_request_log_requested_model
    ON llmux_request_log (requested_model, time_ms, request_id);
CREATE INDEX llmux_request_log_upstream_model
    ON llmux_request_log (upstream_model, time_ms, request_id);
CREATE INDEX llmux_request_log_vendor ON llmux_request_log (vendor, time_ms, request_id);
CREATE INDEX llmux_request_log_status ON llmux_request_log (status, time_ms, request_id);
"#;

const PAGE_COLUMNS: &str = select_columns!("attempts::text AS attempts");

const GET: &str = concat!(
    "SELECT ",
    select_columns!("attempts::text AS attempts", bodies),
    " FROM llmux_request_log WHERE request_id = $1 ORDER BY time_ms DESC LIMIT 1"
);

/// The partitions of the log in the current schema, by name.
const PARTITIONS: &str = "SELECT c.relname::text FROM pg_inherits i \
     JOIN pg_class c ON c.oid = i.inhrelid \
     WHERE i.inhparent = 'llmux_request_log'::regclass";

/// Serializes partition creation and removal between replicas (and between tests sharing a
/// database): the ASCII of `llmuxlog`.
const PARTITION_LOCK: i64 = 0x6c6c_6d75_786c_6f67;

/// The request log in PostgreSQL.
pub(super) struct PostgresLog {
    pool: PgPool,
    /// Day numbers whose partition this process created or saw.
    partitions: Mutex<BTreeSet<i64>>,
}

impl PostgresLog {
    /// Connects to the database `url` names and migrates it. sqlx takes an advisory lock
    /// while migrating, so replicas starting together do not race.
    pub(super) async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|source| StoreError::InvalidUrl {
            url: redact_url(url),
            source: Box::new(source),
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(StoreError::database("open the request log"))?;
        migrator().run(&pool).await.map_err(StoreError::Migration)?;
        Ok(Self {
            pool,
            partitions: Mutex::new(BTreeSet::new()),
        })
    }

    fn known(&self) -> std::sync::MutexGuard<'_, BTreeSet<i64>> {
        // The set is only a cache: a panic elsewhere cannot leave it wrong in a harmful way.
        self.partitions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Creates the partitions of `days` that this process has not seen yet.
    async fn ensure_partitions(&self, days: BTreeSet<i64>) -> Result<(), StoreError> {
        let missing: Vec<i64> = {
            let known = self.known();
            days.into_iter()
                .filter(|day| !known.contains(day))
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let err = || StoreError::database("create request log partitions");
        let mut tx = self.pool.begin().await.map_err(err())?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(PARTITION_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(err())?;
        for &day in &missing {
            // Only digits enter the statement: the day's suffix and its bounds.
            let statement = format!(
                "CREATE TABLE IF NOT EXISTS {table}_{suffix} PARTITION OF {table} \
                 FOR VALUES FROM ({start}) TO ({end})",
                table = sql::TABLE,
                suffix = sql::day_suffix(day),
                start = day * sql::DAY_MS,
                end = (day + 1) * sql::DAY_MS,
            );
            sqlx::query(AssertSqlSafe(statement))
                .execute(&mut *tx)
                .await
                .map_err(err())?;
        }
        tx.commit().await.map_err(err())?;
        self.known().extend(missing);
        Ok(())
    }

    async fn insert(&self, records: &[RequestRecord]) -> Result<(), StoreError> {
        let err = || StoreError::database("write the request log");
        let rows: Vec<InsertRow<'_>> = records.iter().map(InsertRow::new).collect();
        let mut tx = self.pool.begin().await.map_err(err())?;
        for chunk in rows.chunks(sql::ROWS_PER_STATEMENT) {
            let statement = sql::insert_sql(chunk.len(), '$', "::jsonb");
            let mut query = sqlx::query(AssertSqlSafe(statement));
            for row in chunk {
                query = bind_row!(query, row);
            }
            query.execute(&mut *tx).await.map_err(err())?;
        }
        tx.commit().await.map_err(err())
    }
}

fn migrator() -> Migrator {
    let mut migrator = Migrator::with_migrations(vec![Migration::new(
        1,
        "request log partitioned by day".into(),
        MigrationType::Simple,
        SCHEMA_V1.into_sql_str(),
        false,
    )]);
    migrator.dangerous_set_table_name(sql::MIGRATIONS_TABLE);
    migrator
}

impl RequestLogStore for PostgresLog {
    fn write(&self, records: Vec<RequestRecord>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let Some(newest) = records.iter().map(|r| sql::day_of(r.time_ms)).max() else {
                return Ok(());
            };
            // Every day in the batch, and the next one ahead of time.
            let mut days: BTreeSet<i64> = records.iter().map(|r| sql::day_of(r.time_ms)).collect();
            days.insert(newest + 1);
            self.ensure_partitions(days).await?;
            let result = self.insert(&records).await;
            if result.is_err() {
                // Perhaps a partition was dropped behind our back: check again next time.
                self.known().clear();
            }
            result
        })
    }

    fn query<'a>(&'a self, filter: &'a RequestFilter) -> BoxFuture<'a, Result<Page, StoreError>> {
        Box::pin(async move {
            let page = sql::page_query(PAGE_COLUMNS, filter)?;
            let query = bind_params!(sqlx::query(AssertSqlSafe(page.sql)), &page.params);
            let rows = query
                .fetch_all(&self.pool)
                .await
                .map_err(StoreError::database("query the request log"))?;
            let records = rows
                .iter()
                .map(|row| sql::decode(row, false))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(sql::page(records, page.size))
        })
    }

    fn get<'a>(
        &'a self,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RequestRecord>, StoreError>> {
        Box::pin(async move {
            let row = sqlx::query(GET)
                .bind(request_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::database("read the request log"))?;
            row.map(|row| sql::decode(&row, true)).transpose()
        })
    }

    fn retain(&self, days: u32, now_ms: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let err = || StoreError::database("apply request log retention");
            let first_kept = sql::day_suffix(sql::first_kept_day(days, now_ms));
            let prefix = format!("{}_", sql::TABLE);
            let mut tx = self.pool.begin().await.map_err(err())?;
            sqlx::query("SELECT pg_advisory_xact_lock($1)")
                .bind(PARTITION_LOCK)
                .execute(&mut *tx)
                .await
                .map_err(err())?;
            let names: Vec<(String,)> = sqlx::query_as(PARTITIONS)
                .fetch_all(&mut *tx)
                .await
                .map_err(err())?;
            let mut dropped = Vec::new();
            for (name,) in names {
                // Only partitions named like ours, and older than the first kept day.
                let Some(suffix) = name.strip_prefix(&prefix) else {
                    continue;
                };
                let ours = suffix.len() == 8 && suffix.bytes().all(|b| b.is_ascii_digit());
                if !ours || suffix >= first_kept.as_str() {
                    continue;
                }
                sqlx::query(AssertSqlSafe(format!("DROP TABLE IF EXISTS {name}")))
                    .execute(&mut *tx)
                    .await
                    .map_err(err())?;
                dropped.push(name);
            }
            tx.commit().await.map_err(err())?;
            if !dropped.is_empty() {
                tracing::info!(partitions = ?dropped, "request log retention dropped old days");
                self.known().clear();
            }
            Ok(())
        })
    }
}

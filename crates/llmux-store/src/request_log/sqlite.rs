//! The SQLite request log: the embedded default, one file per gateway.
//!
//! One table, not one per day: retention deletes every row before the first kept day in one
//! `DELETE` that walks the primary key's time prefix. Whole days still go at once, while
//! queries, indexes and the schema stay those of one table (no `UNION` over a day table per
//! day in range, no schema changes at run time). The gateway is the only writer and freed
//! pages are reused by later inserts, so the file stops growing at about `retention_days` of
//! traffic. Deployments busy enough for a day's `DELETE` to matter use PostgreSQL, where a
//! day is a partition and goes with `DROP TABLE`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, SqlSafeStr};

use super::sql::{self, bind_params, select_columns};
use super::sqlite_writer::SqliteWriter;
use crate::{
    BoxFuture, Page, RequestFilter, RequestLogStore, RequestRecord, StoreError, redact_url,
};

/// Version 1 of the schema. Applied migrations are checksummed: change the schema by adding a
/// version, never by editing one.
///
/// The primary key leads with the time, so it serves newest-first pages and retention.
const SCHEMA_V1: &str = "
CREATE TABLE llmux_request_log (
    time_ms INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    key_id TEXT,
    key_name TEXT,
    ingress TEXT NOT NULL,
    requested_model TEXT NOT NULL,
    vendor TEXT,
    credential TEXT,
    upstream_model TEXT,
    status INTEGER NOT NULL,
    error_kind TEXT,
    attempts TEXT NOT NULL,
    ttfb_ms INTEGER,
    total_ms INTEGER NOT NULL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    cached_tokens INTEGER,
    reasoning_tokens INTEGER,
    cost_usd REAL,
    cost_estimated BOOLEAN NOT NULL,
    stream BOOLEAN NOT NULL,
    client_addr TEXT NOT NULL,
    user_agent TEXT,
    request_body TEXT,
    response_body TEXT,
    PRIMARY KEY (time_ms, request_id)
);
CREATE INDEX llmux_request_log_request_id ON llmux_request_log (request_id);
CREATE INDEX llmux_request_log_key ON llmux_request_log (key_id, time_ms, request_id);
CREATE INDEX llmux_request_log_requested_model
    ON llmux_request_log (requested_model, time_ms, request_id);
CREATE INDEX llmux_request_log_upstream_model
    ON llmux_request_log (upstream_model, time_ms, request_id);
CREATE INDEX llmux_request_log_vendor ON llmux_request_log (vendor, time_ms, request_id);
CREATE INDEX llmux_request_log_status ON llmux_request_log (status, time_ms, request_id);
";

/// Version 2: the filter indexes go. Each cost a B-tree insert per record (six of eight, with
/// the table and its primary key), which made logging double the gateway's instructions per
/// request. A filtered page now walks the primary key newest-first over the time range and
/// stops at the page's size: recent pages stay instant, and only a filter matching nothing
/// over a long range reads that range. The request id keeps its index: `GET` by id has no time.
const SCHEMA_V2: &str = "
DROP INDEX llmux_request_log_key;
DROP INDEX llmux_request_log_requested_model;
DROP INDEX llmux_request_log_upstream_model;
DROP INDEX llmux_request_log_vendor;
DROP INDEX llmux_request_log_status;
";

const PAGE_COLUMNS: &str = select_columns!("attempts");

const GET: &str = concat!(
    "SELECT ",
    select_columns!("attempts", bodies),
    " FROM llmux_request_log WHERE request_id = $1 ORDER BY time_ms DESC LIMIT 1"
);

pub(super) const DELETE_BEFORE: &str = "DELETE FROM llmux_request_log WHERE time_ms < ?1";

/// The request log in SQLite: sqlx's pool reads (and migrates), one rusqlite connection
/// writes ([`SqliteWriter`]).
pub(super) struct SqliteLog {
    pool: SqlitePool,
    writer: SqliteWriter,
}

impl SqliteLog {
    /// Opens (creating when missing) the database `url` names and migrates it.
    pub(super) async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|source| StoreError::InvalidUrl {
                url: redact_url(url),
                source: Box::new(source),
            })?
            .create_if_missing(true)
            // A page query waits for the writer's transaction instead of failing.
            .busy_timeout(Duration::from_secs(5))
            // A small page cache per connection (512 KiB; SQLite's default is 2 MiB): the log
            // appends and pages through recent rows, and the gateway's RSS budget is tight.
            .pragma("cache_size", "-512");
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let filename = options.get_filename().to_owned();
        let pool = if in_memory {
            // An in-memory database lives as long as one of its connections: keep exactly one.
            // The writer's connection shares it through SQLite's shared cache, where readers
            // take table locks that the busy timeout does not cover: reading uncommitted rows
            // takes none, so a page query never fails on a batch being written (it may show
            // that batch's rows a moment early).
            let pool = SqlitePoolOptions::new()
                .min_connections(1)
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options.pragma("read_uncommitted", "true"))
                .await
                .map_err(StoreError::database("open the request log"))?;
            migrator().run(&pool).await.map_err(StoreError::Migration)?;
            pool
        } else {
            // WAL: readers (the admin API) never block the writer thread, nor it them.
            let options = options
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal);
            // Migrated on a connection of its own, closed after: a pooled connection is a
            // thread and a page cache (about 1 MB of the gateway's RSS), so the readers' pool
            // opens one only when the admin API reads the log, and closes it a minute later.
            let mut connection = options
                .connect()
                .await
                .map_err(StoreError::database("open the request log"))?;
            migrator()
                .run(&mut connection)
                .await
                .map_err(StoreError::Migration)?;
            connection
                .close()
                .await
                .map_err(StoreError::database("open the request log"))?;
            SqlitePoolOptions::new()
                .max_connections(4)
                .idle_timeout(Duration::from_secs(60))
                .connect_lazy_with(options)
        };
        let writer = SqliteWriter::open(&filename, in_memory)?;
        Ok(Self { pool, writer })
    }
}

fn migrator() -> Migrator {
    migrator_up_to(i64::MAX)
}

/// The migrations up to `version` (a test builds a database as an older gateway left it).
pub(super) fn migrator_up_to(version: i64) -> Migrator {
    let migrations = vec![
        Migration::new(
            1,
            "request log".into(),
            MigrationType::Simple,
            SCHEMA_V1.into_sql_str(),
            false,
        ),
        Migration::new(
            2,
            "request log without filter indexes".into(),
            MigrationType::Simple,
            SCHEMA_V2.into_sql_str(),
            false,
        ),
    ];
    let mut migrator = Migrator::with_migrations(
        migrations
            .into_iter()
            .filter(|migration| migration.version <= version)
            .collect(),
    );
    migrator.dangerous_set_table_name(sql::MIGRATIONS_TABLE);
    migrator
}

impl RequestLogStore for SqliteLog {
    fn write(&self, records: Vec<RequestRecord>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.writer.write(records))
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
            let first_kept_ms = sql::first_kept_day(days, now_ms) * sql::DAY_MS;
            self.writer.delete_before(first_kept_ms).await
        })
    }
}

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
use sqlx::{ConnectOptions, Connection, SqlSafeStr};

use futures_util::TryStreamExt as _;
use sqlx::Row as _;
use sqlx::sqlite::{SqliteConnection, SqliteRow};

use super::batches::PageScan;
use super::packed::{self, PackedRecord};
use super::sql::{self, select_columns};
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

/// Version 3: a row per written batch and day, its records packed ([`packed`]): a row per
/// record was SQLite's work of about 22,000 instructions per logged request, where the
/// gateway's own work per request is about 56,000 (BENCHMARKS.md, *Request log, fifth pass*).
/// Beside the batches: the bodies `log.bodies` keeps, and the request ids a client chose (the
/// gateway's own ids carry their time, by which `GET` finds their batch). Rows of the
/// version-2 table are moved into batches when the log opens ([`move_rows_into_batches`]).
const SCHEMA_V3: &str = "
CREATE TABLE llmux_request_log_batches (
    id INTEGER PRIMARY KEY,
    first_ms INTEGER NOT NULL,
    last_ms INTEGER NOT NULL,
    records BLOB NOT NULL
);
CREATE INDEX llmux_request_log_batches_times
    ON llmux_request_log_batches (last_ms, first_ms);
CREATE TABLE llmux_request_log_ids (
    request_id TEXT NOT NULL,
    batch INTEGER NOT NULL,
    PRIMARY KEY (request_id, batch)
) WITHOUT ROWID;
CREATE TABLE llmux_request_log_bodies (
    batch INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    request_body TEXT,
    response_body TEXT,
    PRIMARY KEY (batch, time_ms, request_id)
);
";

/// The batches whose records' times overlap `?1..=?2`, newest last record first.
const BATCHES_IN: &str = "SELECT id, last_ms, records FROM llmux_request_log_batches \
    WHERE last_ms >= ?1 AND first_ms <= ?2 ORDER BY last_ms DESC";

/// The batches holding a record whose id a client chose.
const BATCHES_OF_ID: &str = "SELECT b.id, b.last_ms, b.records FROM llmux_request_log_ids i \
    JOIN llmux_request_log_batches b ON b.id = i.batch WHERE i.request_id = ?1";

const BODIES: &str = "SELECT request_body, response_body FROM llmux_request_log_bodies \
    WHERE batch = ?1 AND time_ms = ?2 AND request_id = ?3";

/// Retention, in order: whatever refers to the old batches, then the batches.
pub(super) const DELETE_BEFORE: [&str; 3] = [
    "DELETE FROM llmux_request_log_ids WHERE batch IN \
     (SELECT id FROM llmux_request_log_batches WHERE last_ms < ?1)",
    "DELETE FROM llmux_request_log_bodies WHERE batch IN \
     (SELECT id FROM llmux_request_log_batches WHERE last_ms < ?1)",
    "DELETE FROM llmux_request_log_batches WHERE last_ms < ?1",
];

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
        let (pool, writer) = if in_memory {
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
            // A new in-memory database has no rows of an older version to move.
            let writer = SqliteWriter::open(&filename, in_memory)?;
            return Ok(Self { pool, writer });
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
            let writer = SqliteWriter::open(&filename, in_memory)?;
            move_rows_into_batches(&mut connection, &writer).await?;
            connection
                .close()
                .await
                .map_err(StoreError::database("open the request log"))?;
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .idle_timeout(Duration::from_secs(60))
                .connect_lazy_with(options);
            (pool, writer)
        };
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
        Migration::new(
            3,
            "request log in batches".into(),
            MigrationType::Simple,
            SCHEMA_V3.into_sql_str(),
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
        Box::pin(
            self.writer
                .write(records.into_iter().map(PackedRecord::new).collect()),
        )
    }

    fn write_packed(&self, records: Vec<PackedRecord>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.writer.write(records))
    }

    fn query<'a>(&'a self, filter: &'a RequestFilter) -> BoxFuture<'a, Result<Page, StoreError>> {
        Box::pin(async move {
            let mut scan = PageScan::new(filter)?;
            let (from, to) = scan.times();
            let mut rows = sqlx::query(BATCHES_IN)
                .bind(from)
                .bind(to)
                .fetch(&self.pool);
            while let Some(row) = rows
                .try_next()
                .await
                .map_err(StoreError::database("query the request log"))?
            {
                let batch = Batch::of(&row)?;
                if scan.complete_before(batch.last_ms) {
                    break;
                }
                scan.add(batch.records);
            }
            Ok(scan.finish())
        })
    }

    fn get<'a>(
        &'a self,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RequestRecord>, StoreError>> {
        Box::pin(async move {
            let err = StoreError::database("read the request log");
            let mut rows = sqlx::query(BATCHES_OF_ID)
                .bind(request_id)
                .fetch_all(&self.pool)
                .await
                .map_err(err)?;
            if let Some(time) = packed::id_time(request_id) {
                let by_time = sqlx::query(BATCHES_IN)
                    .bind(time.saturating_sub(packed::ID_TIME_SLACK_MS))
                    .bind(time.saturating_add(packed::ID_TIME_SLACK_MS))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(StoreError::database("read the request log"))?;
                rows.extend(by_time);
            }
            // The newest record with the id, and its batch.
            let mut found: Option<(i64, RequestRecord)> = None;
            for row in &rows {
                let batch = Batch::of(row)?;
                for record in batch.records {
                    if record.request_id == request_id
                        && found
                            .as_ref()
                            .is_none_or(|(_, f)| record.time_ms > f.time_ms)
                    {
                        found = Some((batch.id, record));
                    }
                }
            }
            let Some((batch, mut record)) = found else {
                return Ok(None);
            };
            if let Some(row) = sqlx::query(BODIES)
                .bind(batch)
                .bind(record.time_ms)
                .bind(request_id)
                .fetch_optional(&self.pool)
                .await
                .map_err(StoreError::database("read the request log"))?
            {
                let err = StoreError::database("read the request log");
                record.request_body = row.try_get("request_body").map_err(err)?;
                let err = StoreError::database("read the request log");
                record.response_body = row.try_get("response_body").map_err(err)?;
            }
            Ok(Some(record))
        })
    }

    fn retain(&self, days: u32, now_ms: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            let first_kept_ms = sql::first_kept_day(days, now_ms) * sql::DAY_MS;
            self.writer.delete_before(first_kept_ms).await
        })
    }
}

/// A batch row as read: its id, its newest record's time and its records.
struct Batch {
    id: i64,
    last_ms: i64,
    records: Vec<RequestRecord>,
}

impl Batch {
    fn of(row: &SqliteRow) -> Result<Self, StoreError> {
        let err = StoreError::database("read the request log");
        let id: i64 = row.try_get("id").map_err(err)?;
        let err = StoreError::database("read the request log");
        let last_ms: i64 = row.try_get("last_ms").map_err(err)?;
        let err = StoreError::database("read the request log");
        let blob: &[u8] = row.try_get("records").map_err(err)?;
        let records = packed::unpack(blob).map_err(|damage| StoreError::InvalidLogRow {
            request_id: format!("(batch {id})"),
            reason: damage.0.to_owned(),
        })?;
        Ok(Self {
            id,
            last_ms,
            records,
        })
    }
}

/// Moves the rows of the version-2 table, if any, into batches (a thousand at a time, each
/// chunk deleted once its batch is written, so that an interrupted move resumes where it
/// stopped), then drops the table. Runs once, when a log written by an older gateway opens.
async fn move_rows_into_batches(
    connection: &mut SqliteConnection,
    writer: &SqliteWriter,
) -> Result<(), StoreError> {
    const CHUNK: i64 = 1_000;
    const ROWS: &str = concat!(
        "SELECT ",
        select_columns!("attempts", bodies),
        " FROM llmux_request_log ORDER BY time_ms, request_id LIMIT $1"
    );
    const DELETE: &str = "DELETE FROM llmux_request_log WHERE (time_ms, request_id) <= ($1, $2)";
    let exists: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'llmux_request_log'",
    )
    .fetch_one(&mut *connection)
    .await
    .map_err(StoreError::database("open the request log"))?;
    if exists == 0 {
        return Ok(());
    }
    loop {
        let rows = sqlx::query(ROWS)
            .bind(CHUNK)
            .fetch_all(&mut *connection)
            .await
            .map_err(StoreError::database("move the request log into batches"))?;
        let records = rows
            .iter()
            .map(|row| sql::decode(row, true))
            .collect::<Result<Vec<_>, _>>()?;
        let Some(last) = records.last() else {
            break;
        };
        let (time_ms, request_id) = (last.time_ms, last.request_id.clone());
        writer
            .write(records.into_iter().map(PackedRecord::new).collect())
            .await?;
        sqlx::query(DELETE)
            .bind(time_ms)
            .bind(request_id)
            .execute(&mut *connection)
            .await
            .map_err(StoreError::database("move the request log into batches"))?;
    }
    sqlx::query("DROP TABLE llmux_request_log")
        .execute(&mut *connection)
        .await
        .map_err(StoreError::database("move the request log into batches"))?;
    Ok(())
}

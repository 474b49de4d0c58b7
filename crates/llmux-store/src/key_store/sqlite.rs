//! The SQLite store: the embedded default, one file (or memory) per gateway.

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::SqliteSynchronous;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use super::sql::{self, impl_key_store};
use crate::{StoreError, redact_url};

/// Version 1 of the schema. Applied migrations are checksummed: change the schema by adding a
/// version, never by editing one.
const SCHEMA_V1: &str = "
CREATE TABLE llmux_keys (
    id TEXT PRIMARY KEY NOT NULL,
    secret_hash BLOB NOT NULL,
    name TEXT,
    created_at INTEGER NOT NULL,
    expires_at INTEGER,
    revoked_at INTEGER,
    allowed_models TEXT NOT NULL,
    allowed_vendors TEXT NOT NULL,
    rpm INTEGER,
    tpm INTEGER,
    max_parallel INTEGER,
    budget_daily_usd REAL,
    budget_monthly_usd REAL,
    budget_total_usd REAL
);
CREATE TABLE llmux_usage (
    key_id TEXT NOT NULL,
    day TEXT NOT NULL,
    requests INTEGER NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cost_nanos INTEGER NOT NULL,
    PRIMARY KEY (key_id, day)
);
";

/// Virtual keys in SQLite.
pub(super) struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating when missing) the database `url` names and migrates it.
    pub(super) async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|source| StoreError::InvalidUrl {
                url: redact_url(url),
                source: Box::new(source),
            })?
            .create_if_missing(true)
            // Concurrent writers wait for each other instead of failing with "database is
            // locked"; every write is one statement, so waiting cannot deadlock.
            .busy_timeout(Duration::from_secs(5));
        let in_memory = url.contains(":memory:") || url.contains("mode=memory");
        let pool = if in_memory {
            // An in-memory database lives as long as one of its connections: keep exactly one,
            // forever. One connection also avoids shared-cache table locks, which the busy
            // timeout does not cover.
            SqlitePoolOptions::new()
                .min_connections(1)
                .max_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
        } else {
            SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(
                    options
                        .journal_mode(SqliteJournalMode::Wal)
                        .synchronous(SqliteSynchronous::Normal),
                )
                .await
        }
        .map_err(StoreError::database("open"))?;
        migrator().run(&pool).await.map_err(StoreError::Migration)?;
        Ok(Self { pool })
    }
}

fn migrator() -> Migrator {
    let mut migrator = Migrator::with_migrations(vec![Migration::new(
        1,
        "keys and usage".into(),
        MigrationType::Simple,
        SCHEMA_V1.into_sql_str(),
        false,
    )]);
    migrator.dangerous_set_table_name(sql::MIGRATIONS_TABLE);
    migrator
}

impl_key_store!(SqliteStore);

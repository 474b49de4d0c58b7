//! The PostgreSQL store: shared by every replica of a gateway.

use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::sql::{self, impl_key_store};
use crate::{StoreError, redact_url};

/// Version 1 of the schema. Applied migrations are checksummed: change the schema by adding a
/// version, never by editing one.
const SCHEMA_V1: &str = "
CREATE TABLE llmux_keys (
    id TEXT PRIMARY KEY NOT NULL,
    secret_hash BYTEA NOT NULL,
    name TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT,
    allowed_models TEXT NOT NULL,
    allowed_vendors TEXT NOT NULL,
    rpm BIGINT,
    tpm BIGINT,
    max_parallel BIGINT,
    budget_daily_usd DOUBLE PRECISION,
    budget_monthly_usd DOUBLE PRECISION,
    budget_total_usd DOUBLE PRECISION
);
CREATE TABLE llmux_usage (
    key_id TEXT NOT NULL,
    day TEXT NOT NULL,
    requests BIGINT NOT NULL,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_nanos BIGINT NOT NULL,
    PRIMARY KEY (key_id, day)
);
";

/// Virtual keys in PostgreSQL.
pub(super) struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database `url` names and migrates it. sqlx takes an advisory lock
    /// while migrating, so replicas starting together do not race.
    pub(super) async fn open(url: &str) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url).map_err(|source| StoreError::InvalidUrl {
            url: redact_url(url),
            source: Box::new(source),
        })?;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options)
            .await
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

impl_key_store!(PostgresStore);

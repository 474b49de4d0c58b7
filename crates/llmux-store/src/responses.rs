//! Stored Open Responses (`previous_response_id`, `GET`/`DELETE /v1/responses/{id}`) in SQLite
//! or PostgreSQL, so replicas share them and they survive restarts. The gateway keeps a bounded
//! memory cache in front (writes go to both), so a follow-up turn on the same replica never
//! waits for or races the database.
//!
//! A row holds one *turn*: the messages that turn added (its new input and its output) and the
//! id of the response it continued (`parent`). A conversation is the chain of turns, so a long
//! conversation is stored once, not once per turn. Every row names its `owner` (the key that
//! created it); reads and deletes are by id *and* owner. A deleted response keeps its turn for
//! the responses that continued it (as the old full copies did) but is never shown again; rows
//! older than the retention are purged.

use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::{BoxFuture, StoreError, redact_url};

/// One table and its retention index, created when missing; the same statements work on both
/// backends. (The first version's `llmux_responses` had no owner and is no longer read: rows
/// nobody can prove they own are not served.)
const CREATE: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS llmux_stored_responses (
    id TEXT PRIMARY KEY NOT NULL,
    owner TEXT NOT NULL,
    parent TEXT,
    resource TEXT,
    turn TEXT NOT NULL,
    created_at BIGINT NOT NULL
)",
    "CREATE INDEX IF NOT EXISTS llmux_stored_responses_created ON llmux_stored_responses (created_at)",
];
const PUT: &str =
    "INSERT INTO llmux_stored_responses (id, owner, parent, resource, turn, created_at)
    VALUES ($1, $2, $3, $4, $5, $6)
    ON CONFLICT (id) DO UPDATE SET resource = excluded.resource, turn = excluded.turn
    WHERE llmux_stored_responses.owner = excluded.owner";
const GET: &str = "SELECT owner, parent, resource, turn, created_at FROM llmux_stored_responses
    WHERE id = $1 AND owner = $2 AND created_at >= $3";
const HIDE: &str = "UPDATE llmux_stored_responses SET resource = NULL
    WHERE id = $1 AND owner = $2 AND resource IS NOT NULL";
const PURGE: &str = "DELETE FROM llmux_stored_responses WHERE created_at < $1";

/// One stored turn, as the database holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRow {
    /// The response id.
    pub id: String,
    /// Who may read, continue or delete it (a key id, or a client identity).
    pub owner: String,
    /// The response this turn continued (`previous_response_id`).
    pub parent: Option<String>,
    /// The resource JSON as served; `None` once deleted (the turn stays for its successors).
    pub resource: Option<String>,
    /// The messages this turn added, as JSON.
    pub turn: String,
    /// Unix seconds.
    pub created_at: i64,
}

/// Persistent stored responses.
pub trait ResponseStore: Send + Sync {
    /// Stores (or, for the same owner, replaces) a turn.
    fn put<'a>(&'a self, row: &'a StoredRow) -> BoxFuture<'a, Result<(), StoreError>>;
    /// The turn `id` when `owner` owns it and it was created at or after `not_before` (unix
    /// seconds: older rows are past retention even before the purge removes them).
    fn get<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        not_before: i64,
    ) -> BoxFuture<'a, Result<Option<StoredRow>, StoreError>>;
    /// Deletes the response `id` of `owner` from view; whether it was visible.
    fn delete<'a>(&'a self, id: &'a str, owner: &'a str)
    -> BoxFuture<'a, Result<bool, StoreError>>;
    /// Removes every turn created before `before` (unix seconds); how many.
    fn purge(&self, before: i64) -> BoxFuture<'_, Result<u64, StoreError>>;
}

type Row = (String, Option<String>, Option<String>, String, i64);

macro_rules! impl_response_store {
    ($pool:ty) => {
        impl ResponseStore for $pool {
            fn put<'a>(&'a self, row: &'a StoredRow) -> BoxFuture<'a, Result<(), StoreError>> {
                Box::pin(async move {
                    sqlx::query(PUT)
                        .bind(&row.id)
                        .bind(&row.owner)
                        .bind(&row.parent)
                        .bind(&row.resource)
                        .bind(&row.turn)
                        .bind(row.created_at)
                        .execute(self)
                        .await
                        .map(|_| ())
                        .map_err(StoreError::database("store a response"))
                })
            }

            fn get<'a>(
                &'a self,
                id: &'a str,
                owner: &'a str,
                not_before: i64,
            ) -> BoxFuture<'a, Result<Option<StoredRow>, StoreError>> {
                Box::pin(async move {
                    let row = sqlx::query_as::<_, Row>(GET)
                        .bind(id)
                        .bind(owner)
                        .bind(not_before)
                        .fetch_optional(self)
                        .await
                        .map_err(StoreError::database("read a response"))?;
                    Ok(
                        row.map(|(owner, parent, resource, turn, created_at)| StoredRow {
                            id: id.to_owned(),
                            owner,
                            parent,
                            resource,
                            turn,
                            created_at,
                        }),
                    )
                })
            }

            fn delete<'a>(
                &'a self,
                id: &'a str,
                owner: &'a str,
            ) -> BoxFuture<'a, Result<bool, StoreError>> {
                Box::pin(async move {
                    sqlx::query(HIDE)
                        .bind(id)
                        .bind(owner)
                        .execute(self)
                        .await
                        .map(|done| done.rows_affected() > 0)
                        .map_err(StoreError::database("delete a response"))
                })
            }

            fn purge(&self, before: i64) -> BoxFuture<'_, Result<u64, StoreError>> {
                Box::pin(async move {
                    sqlx::query(PURGE)
                        .bind(before)
                        .execute(self)
                        .await
                        .map(|done| done.rows_affected())
                        .map_err(StoreError::database("purge old responses"))
                })
            }
        }
    };
}

impl_response_store!(SqlitePool);
impl_response_store!(PgPool);

/// Opens the response store `url` names (`sqlite://…`, `sqlite::memory:`, `postgres://…`) and
/// creates its table when missing.
pub async fn open_responses(url: &str) -> Result<Arc<dyn ResponseStore>, StoreError> {
    let invalid = |source: sqlx::Error| StoreError::InvalidUrl {
        url: redact_url(url),
        source: Box::new(source),
    };
    if url.starts_with("sqlite:") {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(invalid)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(5));
        let max = if url.contains(":memory:") { 1 } else { 4 };
        let pool = SqlitePoolOptions::new()
            .max_connections(max)
            .connect_with(options)
            .await
            .map_err(StoreError::database("open the response store"))?;
        for statement in CREATE {
            sqlx::query(statement)
                .execute(&pool)
                .await
                .map_err(StoreError::database("create the response table"))?;
        }
        Ok(Arc::new(pool))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let options = PgConnectOptions::from_str(url).map_err(invalid)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(StoreError::database("open the response store"))?;
        for statement in CREATE {
            sqlx::query(statement)
                .execute(&pool)
                .await
                .map_err(StoreError::database("create the response table"))?;
        }
        Ok(Arc::new(pool))
    } else {
        Err(StoreError::UnsupportedUrl {
            url: redact_url(url),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, owner: &str, created_at: i64) -> StoredRow {
        StoredRow {
            id: id.to_owned(),
            owner: owner.to_owned(),
            parent: Some("resp_parent".to_owned()),
            resource: Some("{\"a\":1}".to_owned()),
            turn: "[]".to_owned(),
            created_at,
        }
    }

    async fn round_trip(store: Arc<dyn ResponseStore>) {
        let id = format!("resp_test_{}", fastrand::u64(..));
        assert_eq!(store.get(&id, "alice", 0).await.unwrap(), None);
        store.put(&row(&id, "alice", 100)).await.unwrap();
        // Another owner can neither read, overwrite nor delete it.
        assert_eq!(store.get(&id, "bob", 0).await.unwrap(), None);
        store.put(&row(&id, "bob", 100)).await.unwrap();
        assert!(!store.delete(&id, "bob").await.unwrap());
        let found = store.get(&id, "alice", 0).await.unwrap().unwrap();
        assert_eq!(found, row(&id, "alice", 100));
        // Past retention it is gone even before the purge.
        assert_eq!(store.get(&id, "alice", 101).await.unwrap(), None);
        // A delete hides the resource but keeps the turn for successors.
        assert!(store.delete(&id, "alice").await.unwrap());
        assert!(!store.delete(&id, "alice").await.unwrap());
        let hidden = store.get(&id, "alice", 0).await.unwrap().unwrap();
        assert_eq!(hidden.resource, None);
        assert!(store.purge(101).await.unwrap() >= 1);
        assert_eq!(store.get(&id, "alice", 0).await.unwrap(), None);
    }

    #[tokio::test]
    async fn sqlite_round_trip() {
        round_trip(open_responses("sqlite::memory:").await.unwrap()).await;
    }

    #[tokio::test]
    async fn postgres_round_trip() {
        let Ok(url) = std::env::var("LLMUX_TEST_PG_URL") else {
            eprintln!("skipped: LLMUX_TEST_PG_URL is not set");
            return;
        };
        round_trip(open_responses(&url).await.unwrap()).await;
    }
}

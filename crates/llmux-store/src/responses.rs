//! Stored Open Responses (`previous_response_id`, `GET`/`DELETE /v1/responses/{id}`) in SQLite
//! or PostgreSQL, so replicas share them and they survive restarts. The gateway keeps a bounded
//! memory cache in front (writes go to both), so a follow-up turn on the same replica never
//! waits for or races the database.

use std::str::FromStr;
use std::sync::Arc;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

use crate::{BoxFuture, StoreError, redact_url};

/// One table, created when missing; the same statements work on both backends.
const CREATE: &str = "CREATE TABLE IF NOT EXISTS llmux_responses (
    id TEXT PRIMARY KEY NOT NULL,
    resource TEXT NOT NULL,
    conversation TEXT NOT NULL,
    created_at BIGINT NOT NULL
)";
const PUT: &str = "INSERT INTO llmux_responses (id, resource, conversation, created_at) VALUES ($1, $2, $3, $4)
    ON CONFLICT (id) DO UPDATE SET resource = excluded.resource, conversation = excluded.conversation";
const GET: &str = "SELECT resource, conversation FROM llmux_responses WHERE id = $1";
const DELETE: &str = "DELETE FROM llmux_responses WHERE id = $1";

/// Persistent stored responses: the resource JSON and the conversation JSON, by id.
pub trait ResponseStore: Send + Sync {
    /// Stores (or replaces) a response.
    fn put<'a>(
        &'a self,
        id: &'a str,
        resource: &'a str,
        conversation: &'a str,
        created_at: i64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
    /// A stored response: (resource JSON, conversation JSON).
    fn get<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<(String, String)>, StoreError>>;
    /// Deletes a response; whether it existed.
    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;
}

macro_rules! impl_response_store {
    ($pool:ty) => {
        impl ResponseStore for $pool {
            fn put<'a>(
                &'a self,
                id: &'a str,
                resource: &'a str,
                conversation: &'a str,
                created_at: i64,
            ) -> BoxFuture<'a, Result<(), StoreError>> {
                Box::pin(async move {
                    sqlx::query(PUT)
                        .bind(id)
                        .bind(resource)
                        .bind(conversation)
                        .bind(created_at)
                        .execute(self)
                        .await
                        .map(|_| ())
                        .map_err(StoreError::database("store a response"))
                })
            }

            fn get<'a>(
                &'a self,
                id: &'a str,
            ) -> BoxFuture<'a, Result<Option<(String, String)>, StoreError>> {
                Box::pin(async move {
                    sqlx::query_as::<_, (String, String)>(GET)
                        .bind(id)
                        .fetch_optional(self)
                        .await
                        .map_err(StoreError::database("read a response"))
                })
            }

            fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
                Box::pin(async move {
                    sqlx::query(DELETE)
                        .bind(id)
                        .execute(self)
                        .await
                        .map(|done| done.rows_affected() > 0)
                        .map_err(StoreError::database("delete a response"))
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
        sqlx::query(CREATE)
            .execute(&pool)
            .await
            .map_err(StoreError::database("create the response table"))?;
        Ok(Arc::new(pool))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let options = PgConnectOptions::from_str(url).map_err(invalid)?;
        let pool = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(StoreError::database("open the response store"))?;
        sqlx::query(CREATE)
            .execute(&pool)
            .await
            .map_err(StoreError::database("create the response table"))?;
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

    async fn round_trip(store: Arc<dyn ResponseStore>) {
        let id = format!("resp_test_{}", fastrand::u64(..));
        assert_eq!(store.get(&id).await.unwrap(), None);
        store.put(&id, "{\"a\":1}", "[]", 1).await.unwrap();
        store.put(&id, "{\"a\":2}", "[1]", 1).await.unwrap();
        assert_eq!(
            store.get(&id).await.unwrap(),
            Some(("{\"a\":2}".to_owned(), "[1]".to_owned()))
        );
        assert!(store.delete(&id).await.unwrap());
        assert!(!store.delete(&id).await.unwrap());
        assert_eq!(store.get(&id).await.unwrap(), None);
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

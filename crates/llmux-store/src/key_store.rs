//! The [`KeyStore`] trait and [`open`], which picks a SQL backend from a URL.

mod postgres;
mod sql;
mod sqlite;
#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;

use crate::{BoxFuture, KeyRecord, KeyUpdate, NewKey, Spend, StoreError, UsageRow, redact_url};

/// Virtual keys and their usage, kept in a SQL database.
///
/// Every method is one statement (or one short transaction) in the database, so several
/// gateway replicas may share one PostgreSQL store.
pub trait KeyStore: Send + Sync {
    /// Creates a key and returns its record and its plaintext
    /// (`llmux-<public id>-<secret>`). The plaintext is never stored and cannot be shown again.
    fn create(&self, key: NewKey) -> BoxFuture<'_, Result<(KeyRecord, String), StoreError>>;

    /// All keys, revoked ones included, oldest first.
    fn list(&self) -> BoxFuture<'_, Result<Vec<KeyRecord>, StoreError>>;

    /// The key with this public id.
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<KeyRecord>, StoreError>>;

    /// Looks up a presented plaintext by its public id and compares SHA-256 of its secret in
    /// constant time. `None` for a malformed key, an unknown id or a wrong secret.
    ///
    /// A revoked or expired key is still returned: check [`KeyRecord::is_usable`].
    fn authenticate<'a>(
        &'a self,
        presented: &'a str,
    ) -> BoxFuture<'a, Result<Option<KeyRecord>, StoreError>>;

    /// Marks the key revoked now. `false` when there is no such key; revoking twice keeps the
    /// first time.
    fn revoke<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, StoreError>>;

    /// Applies `update` atomically and returns the new record, or `None` for an unknown id.
    fn update<'a>(
        &'a self,
        id: &'a str,
        update: KeyUpdate,
    ) -> BoxFuture<'a, Result<Option<KeyRecord>, StoreError>>;

    /// Adds one request with its tokens and cost to the key's row for the UTC day of
    /// `at_unix`, atomically (an upsert that adds in the database).
    fn record_usage<'a>(
        &'a self,
        id: &'a str,
        at_unix: i64,
        input_tokens: u64,
        output_tokens: u64,
        cost_usd: f64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// The key's usage per UTC day, oldest first.
    fn usage<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Vec<UsageRow>, StoreError>>;

    /// The key's spend on the day and in the month of `now_unix`, and in total.
    fn spend<'a>(&'a self, id: &'a str, now_unix: i64) -> BoxFuture<'a, Result<Spend, StoreError>>;

    /// Whether any key exists (revoked ones included); the server uses this to decide whether
    /// virtual keys are in force.
    fn any_keys(&self) -> BoxFuture<'_, Result<bool, StoreError>>;
}

/// Opens the store a URL names and brings its schema up to date.
///
/// - `sqlite://path.db` (created when missing, WAL journal) or `sqlite::memory:`;
/// - `postgres://…` or `postgresql://…`.
pub async fn open(url: &str) -> Result<Arc<dyn KeyStore>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PostgresStore::open(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl {
            url: redact_url(url),
        })
    }
}

//! The request log: one [`RequestRecord`] per client request, written off the request path in
//! batches ([`RequestLog`]) to SQLite or day-partitioned PostgreSQL ([`RequestLogStore`],
//! [`open_request_log`]), kept for a number of whole days and read back newest first in
//! keyset pages ([`RequestFilter`], [`Page`]).

mod batches;
mod packed;
mod postgres;
mod query;
mod record;
mod sql;
mod sqlite;
mod sqlite_writer;
#[cfg(test)]
mod tests;
mod writer;

use std::sync::Arc;

pub use query::{
    DEFAULT_LIMIT, MAX_LIMIT, Page, ParseStatusFilterError, RequestFilter, StatusFilter,
};
pub use record::{AttemptRecord, RequestRecord, USER_AGENT_CAP};
pub use writer::{RequestLog, RequestLogOptions, RequestLogTask};

use crate::{BoxFuture, StoreError, redact_url};

/// Where request records are kept: SQLite or PostgreSQL, behind one object-safe trait.
///
/// Only the [`RequestLog`] writer task calls [`write`](Self::write) and
/// [`retain`](Self::retain); the admin API calls [`query`](Self::query) and
/// [`get`](Self::get) at any time.
pub trait RequestLogStore: Send + Sync {
    /// Writes `records` in one transaction: all of them or, on an error, none. A record whose
    /// time and request id are already stored is skipped. The user agent is cut to
    /// [`USER_AGENT_CAP`] bytes. The records are handed over (SQLite writes them on a blocking
    /// thread).
    fn write(&self, records: Vec<RequestRecord>) -> BoxFuture<'_, Result<(), StoreError>>;

    /// One page of the records `filter` selects, newest first, without bodies. An unknown
    /// cursor is [`StoreError::InvalidCursor`].
    fn query<'a>(&'a self, filter: &'a RequestFilter) -> BoxFuture<'a, Result<Page, StoreError>>;

    /// The record with this request id, with its attempts and bodies; the newest if the id was
    /// logged more than once.
    fn get<'a>(
        &'a self,
        request_id: &'a str,
    ) -> BoxFuture<'a, Result<Option<RequestRecord>, StoreError>>;

    /// Drops every whole UTC day that ended more than `days` days before `now_ms` (so the
    /// last `days` × 24 hours are always kept): PostgreSQL drops the days' partitions, SQLite
    /// deletes the days' rows in one statement.
    fn retain(&self, days: u32, now_ms: i64) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// Opens the request log a URL names and brings its schema up to date.
///
/// - `sqlite://path.db` (created when missing, WAL journal) or `sqlite::memory:`;
/// - `postgres://…` or `postgresql://…` (the table partitioned by day).
///
/// The log keeps its own migration history (`llmux_request_log_migrations`), so it may share
/// a database with the key store.
pub async fn open_request_log(url: &str) -> Result<Arc<dyn RequestLogStore>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteLog::open(url).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(postgres::PostgresLog::open(url).await?))
    } else {
        Err(StoreError::UnsupportedUrl {
            url: redact_url(url),
        })
    }
}

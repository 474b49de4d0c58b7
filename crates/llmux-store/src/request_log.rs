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

pub use packed::PackedRecord;
pub use query::{
    DEFAULT_LIMIT, MAX_LIMIT, Page, ParseStatusFilterError, RequestFilter, StatusFilter,
};
pub use record::{AttemptRecord, RequestRecord, USER_AGENT_CAP};
pub use writer::{RequestLog, RequestLogOptions, RequestLogTask};

use crate::{BoxFuture, StoreError, redact_url};

/// Where request records are kept: SQLite or PostgreSQL, behind one object-safe trait.
///
/// Only the [`RequestLog`] writer task calls [`write_packed`](Self::write_packed) and
/// [`retain`](Self::retain) (tests call [`write`](Self::write)); the admin API calls [`query`](Self::query) and
/// [`get`](Self::get) at any time.
pub trait RequestLogStore: Send + Sync {
    /// Writes `records` in one transaction: all of them or, on an error, none. A record whose
    /// time and request id are already stored is shown once (PostgreSQL skips it; SQLite keeps
    /// both copies in their batches and reads one back). The user agent is cut to
    /// [`USER_AGENT_CAP`] bytes. The records are handed over (SQLite writes them on a thread
    /// of its own).
    fn write(&self, records: Vec<RequestRecord>) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Writes records the [`RequestLog`] packed on the request path, as [`write`](Self::write)
    /// does. A backend that stores rows per field unpacks them (the default); SQLite stores
    /// the packed bytes as they are.
    fn write_packed(&self, records: Vec<PackedRecord>) -> BoxFuture<'_, Result<(), StoreError>> {
        let records = records
            .iter()
            .map(|record| {
                record.unpack().map_err(|damage| StoreError::InvalidLogRow {
                    request_id: String::new(),
                    reason: damage.0.to_owned(),
                })
            })
            .collect::<Result<Vec<_>, _>>();
        match records {
            Ok(records) => self.write(records),
            Err(err) => Box::pin(std::future::ready(Err(err))),
        }
    }

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

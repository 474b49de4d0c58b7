//! The SQLite request log's write side: one `rusqlite` connection owned by a thread of its own,
//! one row per batch and day ([`packed`]), plus a row per kept body and per request id a
//! client chose, in one transaction.
//!
//! Why not sqlx, which the log reads with: sqlx runs each statement on its connection's worker
//! thread and copies every bound value into an `Arc` on the way, which SQLite then copies
//! again (BENCHMARKS.md, *Request log cost*). Here values are bound borrowed and statements
//! come from the connection's cache. Both libraries link the same `libsqlite3-sys`.
//!
//! Why a thread of its own: the connection stays with one thread, and a batch never occupies
//! an async worker. It runs at the
//! normal CPU priority: at nice 19 requests on a saturated core did better (p99 +2.3 ms instead
//! of +5.0 ms at c=64 on one core), but the writer fell behind until the queue was full (RSS
//! +11 MiB), and from then on new records were dropped (BENCHMARKS.md, *Log and tracing, third
//! pass*).

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, params};
use tokio::sync::oneshot;

use super::packed::PackedRecord;
use super::{packed, sql};
use crate::StoreError;

/// Work for the writer thread, and where its outcome goes.
enum Job {
    /// A batch of records, in one transaction.
    Insert(Vec<PackedRecord>, Done),
    /// Retention: every row before this time (Unix ms) goes.
    DeleteBefore(i64, Done),
}

type Done = oneshot::Sender<Result<(), StoreError>>;

/// The handle of the writer thread; the thread ends when the handle is dropped.
pub(super) struct SqliteWriter {
    jobs: mpsc::Sender<Job>,
}

impl SqliteWriter {
    /// Opens the database sqlx opened and migrated: the file at `filename`, or, `in_memory`,
    /// the shared-cache in-memory database of that name (sqlx names each `sqlite::memory:`
    /// database `file:sqlx-in-memory-N` and opens it with a shared cache, so a second
    /// connection to the name sees the same tables). Then starts the writer thread.
    pub(super) fn open(filename: &Path, in_memory: bool) -> Result<Self, StoreError> {
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if in_memory {
            flags |= OpenFlags::SQLITE_OPEN_MEMORY | OpenFlags::SQLITE_OPEN_SHARED_CACHE;
        }
        let err = StoreError::sqlite("open the request log for writing");
        let mut connection = Connection::open_with_flags(filename, flags).map_err(err)?;
        // As the pool's connections: wait for a reader's lock, a small page cache. The file's
        // WAL journal mode was set by sqlx and persists; `synchronous` is per connection.
        connection
            .busy_timeout(Duration::from_secs(5))
            .and_then(|()| connection.pragma_update(None, "cache_size", -512))
            .and_then(|()| connection.pragma_update(None, "synchronous", "NORMAL"))
            .map_err(StoreError::sqlite("open the request log for writing"))?;
        let (jobs, receiver) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("llmux-log-writer".into())
            .spawn(move || {
                // The batch's blob, kept between batches.
                let mut blob = Vec::new();
                for job in receiver {
                    let _ = match job {
                        Job::Insert(records, done) => {
                            done.send(insert(&mut connection, &records, &mut blob))
                        }
                        Job::DeleteBefore(time_ms, done) => {
                            done.send(delete_before(&mut connection, time_ms))
                        }
                    };
                }
            })
            .map_err(|_| StoreError::TaskFailed {
                op: "start the request log writer",
            })?;
        Ok(Self { jobs })
    }

    /// Writes `records` in one transaction, on the writer thread.
    pub(super) async fn write(&self, records: Vec<PackedRecord>) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        self.run("write the request log", |done| Job::Insert(records, done))
            .await
    }

    /// Deletes every row before `time_ms` (retention), on the writer thread: the one
    /// connection that writes, so the readers' pool stays closed when nobody reads.
    pub(super) async fn delete_before(&self, time_ms: i64) -> Result<(), StoreError> {
        self.run("apply request log retention", |done| {
            Job::DeleteBefore(time_ms, done)
        })
        .await
    }

    async fn run(&self, op: &'static str, job: impl FnOnce(Done) -> Job) -> Result<(), StoreError> {
        let (done, outcome) = oneshot::channel();
        let failed = |_| StoreError::TaskFailed { op };
        self.jobs
            .send(job(done))
            .map_err(|_| StoreError::TaskFailed { op })?;
        outcome.await.map_err(failed)?
    }
}

/// Deletes the batches (each of one day) whose newest record is older than `time_ms`, with
/// their bodies and ids, in one transaction.
fn delete_before(connection: &mut Connection, time_ms: i64) -> Result<(), StoreError> {
    let err = || StoreError::sqlite("apply request log retention");
    let tx = connection.transaction().map_err(err())?;
    for statement in super::sqlite::DELETE_BEFORE {
        tx.prepare_cached(statement)
            .and_then(|mut statement| statement.execute(params![time_ms]))
            .map_err(err())?;
    }
    tx.commit().map_err(err())
}

fn insert(
    connection: &mut Connection,
    records: &[PackedRecord],
    blob: &mut Vec<u8>,
) -> Result<(), StoreError> {
    let err = || StoreError::sqlite("write the request log");
    let tx = connection.transaction().map_err(err())?;
    // A row holds one UTC day, so that retention drops whole days: a batch written around
    // midnight (or one of late records) is split by day.
    let mut days: Vec<i64> = records.iter().map(|r| sql::day_of(r.time_ms())).collect();
    days.sort_unstable();
    days.dedup();
    for day in days {
        let group: Vec<&PackedRecord> = records
            .iter()
            .filter(|r| sql::day_of(r.time_ms()) == day)
            .collect();
        let (first_ms, last_ms) = group.iter().fold((i64::MAX, i64::MIN), |(first, last), r| {
            (first.min(r.time_ms()), last.max(r.time_ms()))
        });
        blob.clear();
        packed::blob(&group, blob);
        tx.prepare_cached(INSERT_BATCH)
            .and_then(|mut statement| statement.execute(params![first_ms, last_ms, &blob[..]]))
            .map_err(err())?;
        let batch = tx.last_insert_rowid();
        for record in group {
            if let Some(request_id) = record.indexed_id() {
                tx.prepare_cached(INSERT_ID)
                    .and_then(|mut statement| statement.execute(params![request_id, batch]))
                    .map_err(err())?;
            }
            if let Some((request_id, request_body, response_body)) = record.bodies() {
                tx.prepare_cached(INSERT_BODIES)
                    .and_then(|mut statement| {
                        statement.execute(params![
                            batch,
                            record.time_ms(),
                            request_id,
                            request_body,
                            response_body,
                        ])
                    })
                    .map_err(err())?;
            }
        }
    }
    tx.commit().map_err(err())
}

const INSERT_BATCH: &str =
    "INSERT INTO llmux_request_log_batches (first_ms, last_ms, records) VALUES (?1, ?2, ?3)";
const INSERT_ID: &str =
    "INSERT OR IGNORE INTO llmux_request_log_ids (request_id, batch) VALUES (?1, ?2)";
const INSERT_BODIES: &str = "INSERT OR IGNORE INTO llmux_request_log_bodies \
    (batch, time_ms, request_id, request_body, response_body) VALUES (?1, ?2, ?3, ?4, ?5)";

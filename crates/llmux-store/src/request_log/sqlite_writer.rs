//! The SQLite request log's write side: one `rusqlite` connection owned by a thread of its own,
//! one prepared single-row `INSERT` run per record inside the batch's transaction.
//!
//! Why not sqlx, which the log reads with: sqlx runs each statement on its connection's worker
//! thread and copies every bound text into an `Arc<String>` on the way, which SQLite then copies
//! again. With 25 columns that glue cost about 36,000 instructions per logged request, three
//! times SQLite's own insert (BENCHMARKS.md, *Request log cost*). Here the row's text is bound
//! borrowed and the statement comes from the connection's cache. Both libraries link the same
//! `libsqlite3-sys`.
//!
//! Why a thread of its own: the connection stays with one thread, and a batch (several
//! milliseconds of SQLite work at 500 rows) never occupies an async worker. It runs at the
//! normal CPU priority: at nice 19 requests on a saturated core did better (p99 +2.3 ms instead
//! of +5.0 ms at c=64 on one core), but the writer fell behind until the queue was full (RSS
//! +11 MiB), and from then on new records were dropped (BENCHMARKS.md, *Log and tracing, third
//! pass*).

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, params};
use tokio::sync::oneshot;

use super::sql::{self, InsertRow};
use crate::{RequestRecord, StoreError};

/// Work for the writer thread, and where its outcome goes.
enum Job {
    /// A batch of records, in one transaction.
    Insert(Vec<RequestRecord>, Done),
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
                for job in receiver {
                    let _ = match job {
                        Job::Insert(records, done) => done.send(insert(&mut connection, &records)),
                        Job::DeleteBefore(time_ms, done) => {
                            done.send(delete_before(&connection, time_ms))
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
    pub(super) async fn write(&self, records: Vec<RequestRecord>) -> Result<(), StoreError> {
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

fn delete_before(connection: &Connection, time_ms: i64) -> Result<(), StoreError> {
    connection
        .prepare_cached(super::sqlite::DELETE_BEFORE)
        .and_then(|mut statement| statement.execute(params![time_ms]))
        .map(drop)
        .map_err(StoreError::sqlite("apply request log retention"))
}

fn insert(connection: &mut Connection, records: &[RequestRecord]) -> Result<(), StoreError> {
    let err = || StoreError::sqlite("write the request log");
    let tx = connection.transaction().map_err(err())?;
    {
        let mut statement = tx
            .prepare_cached(insert_one())
            .map_err(StoreError::sqlite("write the request log"))?;
        for record in records {
            let row = InsertRow::new(record);
            statement
                .execute(params![
                    row.time_ms,
                    row.request_id,
                    row.key_id,
                    row.key_name,
                    row.ingress,
                    row.requested_model,
                    row.vendor,
                    row.credential,
                    row.upstream_model,
                    row.status,
                    row.error_kind,
                    row.attempts,
                    row.ttfb_ms,
                    row.total_ms,
                    row.input_tokens,
                    row.output_tokens,
                    row.cached_tokens,
                    row.reasoning_tokens,
                    row.cost_usd,
                    row.cost_estimated,
                    row.stream,
                    row.client_addr,
                    row.user_agent,
                    row.request_body,
                    row.response_body,
                ])
                .map_err(StoreError::sqlite("write the request log"))?;
        }
    }
    tx.commit().map_err(err())
}

/// The one-row `INSERT` (plain `?` placeholders, in [`sql`]'s column order).
fn insert_one() -> &'static str {
    static STATEMENT: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| sql::insert_sql(1, '?', ""));
    &STATEMENT
}

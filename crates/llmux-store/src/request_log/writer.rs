//! The writer: records go from requests into a bounded channel with `try_send` (a request never
//! waits), and one background task writes them in batches, one transaction per batch.
//!
//! Whatever cannot be written is counted, never retried: a full channel, a closed log, a batch
//! the database refused, records still queued when a shutdown's deadline passes. The count is
//! [`RequestLog::dropped`], exported as `llmux_log_dropped_total`.

#[cfg(test)]
mod tests;

use std::error::Error as _;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::{Instant, sleep_until, timeout_at};

use super::packed::PackedRecord;
use crate::{BoxFuture, RequestLogStore, RequestRecord, StoreError};

/// How the writer batches records and how long the log keeps them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLogOptions {
    /// Records the channel holds before new ones are dropped (default 10,000).
    pub capacity: usize,
    /// The most records in one batch, that is one transaction (default 125: halving this and
    /// the trace export's batch, from 500 and 512 and again from 250 and 256, each took about
    /// 1 MiB off the RSS under load at the same instructions per request; BENCHMARKS.md).
    pub batch_size: usize,
    /// How long the first record of a batch waits for more before the batch is written
    /// (default 200 ms).
    pub flush_interval: Duration,
    /// Days to keep, enforced by dropping whole days; `None` keeps everything (default 7).
    pub retention_days: Option<u32>,
    /// How often the writer applies retention: once at start, then at most this often
    /// (default one hour).
    pub retention_interval: Duration,
}

impl Default for RequestLogOptions {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            batch_size: 125,
            flush_interval: Duration::from_millis(200),
            retention_days: Some(7),
            retention_interval: Duration::from_secs(3_600),
        }
    }
}

/// What a handle asks of the writer, on a channel of its own so that a full record channel
/// cannot hold it up.
enum Control {
    /// Write everything queued so far, then answer whether every batch was written.
    Flush(oneshot::Sender<bool>),
    /// Stop taking records, write what is queued until `deadline`, answer, and end.
    Shutdown {
        deadline: Instant,
        done: oneshot::Sender<bool>,
    },
}

/// The request path's side of the request log: cheap to clone, never blocks.
#[derive(Clone)]
pub struct RequestLog {
    records: mpsc::Sender<PackedRecord>,
    /// Woken when a batch's worth of records is queued: the writer does not wake per record.
    full: Arc<Notify>,
    batch_size: usize,
    control: mpsc::Sender<Control>,
    dropped: Arc<AtomicU64>,
    store: Arc<dyn RequestLogStore>,
}

impl fmt::Debug for RequestLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestLog")
            .field(
                "queued",
                &(self.records.max_capacity() - self.records.capacity()),
            )
            .field("dropped", &self.dropped())
            .finish_non_exhaustive()
    }
}

/// The writer task of a [`RequestLog`]: a future the caller spawns (and tracks, so that
/// shutdown can wait for it). It ends after [`RequestLog::shutdown`] or once every handle is
/// gone and the queue is written.
#[must_use = "the request log writes nothing until its task is spawned"]
pub struct RequestLogTask(BoxFuture<'static, ()>);

impl fmt::Debug for RequestLogTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RequestLogTask")
    }
}

impl Future for RequestLogTask {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

impl RequestLog {
    /// Creates the channel and the writer for `store`. Spawn the returned task; records are
    /// queued (up to [`RequestLogOptions::capacity`]) until it runs.
    pub fn start(
        store: Arc<dyn RequestLogStore>,
        options: RequestLogOptions,
    ) -> (Self, RequestLogTask) {
        let (records, receiver) = mpsc::channel(options.capacity.max(1));
        let (control, control_receiver) = mpsc::channel(16);
        let dropped = Arc::new(AtomicU64::new(0));
        let full = Arc::new(Notify::new());
        let batch_size = options.batch_size.max(1);
        let writer = Writer {
            records: receiver,
            full: Arc::clone(&full),
            control: control_receiver,
            store: Arc::clone(&store),
            dropped: Arc::clone(&dropped),
            batch: Vec::with_capacity(options.batch_size.max(1)),
            options,
        };
        let log = Self {
            records,
            full,
            batch_size,
            control,
            dropped,
            store,
        };
        (log, RequestLogTask(Box::pin(writer.run())))
    }

    /// Packs a record and queues it without waiting. `false` when it was dropped (the channel
    /// is full or the log shut down); the drop is counted in [`dropped`](Self::dropped).
    pub fn record(&self, record: RequestRecord) -> bool {
        match self.records.try_send(PackedRecord::new(record)) {
            Ok(()) => {
                if self.records.max_capacity() - self.records.capacity() >= self.batch_size {
                    self.full.notify_one();
                }
                true
            }
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Records lost so far: dropped on a full channel or after shutdown, in batches the
    /// database refused, or left when a shutdown's deadline passed.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The store behind the log, for queries.
    pub fn store(&self) -> &Arc<dyn RequestLogStore> {
        &self.store
    }

    /// Waits until every record queued before this call has been written (or dropped by a
    /// failed batch). `true` when all of them were written within `within`.
    pub async fn flush(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let (done, answer) = oneshot::channel();
        match timeout_at(deadline, self.control.send(Control::Flush(done))).await {
            Ok(Ok(())) => matches!(timeout_at(deadline, answer).await, Ok(Ok(true))),
            _ => false,
        }
    }

    /// Stops taking records (later ones are dropped and counted) and has the writer write
    /// what is queued, then end. Records still queued after `within` are dropped and counted.
    /// `true` when everything queued was written in time.
    ///
    /// A batch the writer was already writing when the call arrived finishes first, without
    /// the deadline; should the database hang, this returns `false` shortly after `within`
    /// and the caller may abort the task.
    pub async fn shutdown(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        let (done, answer) = oneshot::channel();
        let sent = timeout_at(
            deadline,
            self.control.send(Control::Shutdown { deadline, done }),
        );
        match sent.await {
            // The writer bounds its own work by the deadline; the margin covers its answer.
            Ok(Ok(())) => matches!(
                timeout_at(deadline + Duration::from_millis(100), answer).await,
                Ok(Ok(true))
            ),
            _ => false,
        }
    }
}

struct Writer {
    records: mpsc::Receiver<PackedRecord>,
    full: Arc<Notify>,
    control: mpsc::Receiver<Control>,
    store: Arc<dyn RequestLogStore>,
    dropped: Arc<AtomicU64>,
    batch: Vec<PackedRecord>,
    options: RequestLogOptions,
}

/// What woke the idle writer.
enum Wake {
    Records,
    Closed,
    Control(Control),
    Retention,
}

impl Writer {
    async fn run(mut self) {
        let batch_size = self.options.batch_size.max(1);
        // Retention runs first thing, then at most once per interval.
        let mut next_retention = Instant::now();
        loop {
            let retention = self.options.retention_days.is_some();
            let wake = tokio::select! {
                biased;
                Some(control) = self.control.recv() => Wake::Control(control),
                received = self.records.recv_many(&mut self.batch, batch_size) => {
                    if received == 0 { Wake::Closed } else { Wake::Records }
                }
                () = sleep_until(next_retention), if retention => Wake::Retention,
            };
            let mut control = None;
            let mut closed = false;
            let mut written = true;
            match wake {
                Wake::Control(c) => control = Some(c),
                Wake::Closed => closed = true,
                Wake::Retention => {}
                Wake::Records => {
                    // Wait up to the flush interval for the batch to fill: for the timer or
                    // for a sender's word that a batch is queued, not on the channel, which
                    // would wake this task for every record (about 2,500 instructions each).
                    // One timer for the whole wait.
                    let flush_at = sleep_until(Instant::now() + self.options.flush_interval);
                    tokio::pin!(flush_at);
                    loop {
                        if self.take_queued(batch_size) {
                            closed = true;
                        }
                        if closed || self.batch.len() >= batch_size {
                            break;
                        }
                        tokio::select! {
                            biased;
                            Some(c) = self.control.recv() => {
                                control = Some(c);
                                break;
                            }
                            () = self.full.notified() => {}
                            () = &mut flush_at => {
                                closed = self.take_queued(batch_size);
                                break;
                            }
                        }
                    }
                    // A flush or shutdown that interrupted the wait writes this batch
                    // itself, under its own deadline.
                    if control.is_none() {
                        written = self.write_batch(None).await;
                    }
                }
            }
            match control {
                Some(Control::Flush(done)) => {
                    written &= self.drain(None).await;
                    let _ = done.send(written);
                }
                Some(Control::Shutdown { deadline, done }) => {
                    self.records.close();
                    written &= self.drain(Some(deadline)).await;
                    let _ = done.send(written);
                    return;
                }
                None => {}
            }
            if closed {
                self.drain(None).await;
                return;
            }
            if let Some(days) = self.options.retention_days
                && Instant::now() >= next_retention
            {
                if let Err(err) = self.store.retain(days, now_ms()).await {
                    tracing::warn!(error = %Chain(&err), "request log retention failed");
                }
                next_retention = Instant::now() + self.options.retention_interval;
            }
        }
    }

    /// Moves queued records into the batch until it holds `batch_size`; `true` when the
    /// channel is closed and empty.
    fn take_queued(&mut self, batch_size: usize) -> bool {
        while self.batch.len() < batch_size {
            match self.records.try_recv() {
                Ok(record) => self.batch.push(record),
                Err(mpsc::error::TryRecvError::Empty) => return false,
                Err(mpsc::error::TryRecvError::Disconnected) => return true,
            }
        }
        false
    }

    /// Writes everything queued now (all of it, after a shutdown closed the channel), batch
    /// by batch. With a deadline, what is left when it passes is dropped and counted.
    /// Whether every record was written.
    async fn drain(&mut self, deadline: Option<Instant>) -> bool {
        let batch_size = self.options.batch_size.max(1);
        let mut written = true;
        loop {
            while self.batch.len() < batch_size {
                match self.records.try_recv() {
                    Ok(record) => self.batch.push(record),
                    Err(_) => break,
                }
            }
            if self.batch.is_empty() {
                return written;
            }
            if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
                let mut left = self.batch.len() as u64;
                self.batch.clear();
                while self.records.try_recv().is_ok() {
                    left += 1;
                }
                self.dropped.fetch_add(left, Ordering::Relaxed);
                tracing::warn!(records = left, "request log shutdown deadline passed");
                return false;
            }
            written &= self.write_batch(deadline).await;
        }
    }

    /// Writes the current batch in one transaction and empties it. A failed batch is logged,
    /// counted as dropped and forgotten: the writer never stops over a database error.
    async fn write_batch(&mut self, deadline: Option<Instant>) -> bool {
        if self.batch.is_empty() {
            return true;
        }
        let count = self.batch.len();
        let batch = std::mem::replace(&mut self.batch, Vec::with_capacity(count));
        let write = self.store.write_packed(batch);
        let result = match deadline {
            Some(deadline) => {
                timeout_at(deadline, write)
                    .await
                    .unwrap_or(Err(StoreError::TimedOut {
                        op: "write the request log",
                    }))
            }
            None => write.await,
        };
        match result {
            Ok(()) => true,
            Err(err) => {
                self.dropped.fetch_add(count as u64, Ordering::Relaxed);
                tracing::warn!(
                    error = %Chain(&err),
                    records = count,
                    "request log batch dropped"
                );
                false
            }
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
        })
}

/// An error and its sources on one line: the database's own reason is in the sources.
struct Chain<'a>(&'a StoreError);

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

//! The writer against a scripted store, in paused time: batching, drops, errors, retention and
//! shutdown. No test sleeps in real time; each waits for a condition or lets paused time run.
#![allow(
    clippy::disallowed_methods,
    reason = "tests spawn the writer on the test runtime, which ends with the test: nothing to drain"
)]

use std::borrow::Cow;
use std::sync::Mutex;
use std::sync::atomic::AtomicUsize;

use tokio::sync::{Notify, Semaphore};

use super::*;
use crate::{Page, RequestFilter};

/// A store that remembers its batches and can fail or block writes on request.
#[derive(Default)]
struct Script {
    /// Sizes of the batches written, in order.
    batches: Mutex<Vec<usize>>,
    /// Request ids written, in order.
    ids: Mutex<Vec<String>>,
    retains: AtomicUsize,
    /// Writes to refuse before accepting again.
    fail: AtomicUsize,
    /// When set, each write waits for a permit.
    gate: Option<Semaphore>,
    /// Woken when a write starts and when one ends.
    changed: Notify,
    /// Writes started.
    started: AtomicUsize,
}

impl Script {
    fn blocking() -> Self {
        Self {
            gate: Some(Semaphore::new(0)),
            ..Self::default()
        }
    }

    fn batches(&self) -> Vec<usize> {
        self.batches.lock().unwrap().clone()
    }

    fn written(&self) -> usize {
        self.batches().iter().sum()
    }

    /// Waits until `done` holds, re-checking whenever a write starts or ends.
    async fn until(&self, done: impl Fn(&Self) -> bool) {
        loop {
            let changed = self.changed.notified();
            if done(self) {
                return;
            }
            changed.await;
        }
    }
}

impl RequestLogStore for Script {
    fn write(&self, records: Vec<RequestRecord>) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            self.started.fetch_add(1, Ordering::SeqCst);
            self.changed.notify_waiters();
            if let Some(gate) = &self.gate {
                gate.acquire().await.unwrap().forget();
            }
            let fail = self
                .fail
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            let result = if fail {
                Err(StoreError::OutOfRange { what: "scripted" })
            } else {
                self.batches.lock().unwrap().push(records.len());
                self.ids
                    .lock()
                    .unwrap()
                    .extend(records.iter().map(|r| r.request_id.clone()));
                Ok(())
            };
            self.changed.notify_waiters();
            result
        })
    }

    fn query<'a>(&'a self, _: &'a RequestFilter) -> BoxFuture<'a, Result<Page, StoreError>> {
        Box::pin(async { Ok(Page::default()) })
    }

    fn get<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<Option<RequestRecord>, StoreError>> {
        Box::pin(async { Ok(None) })
    }

    fn retain(&self, _: u32, _: i64) -> BoxFuture<'_, Result<(), StoreError>> {
        self.retains.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }
}

fn record(n: usize) -> RequestRecord {
    RequestRecord {
        requested_model: "fast".into(),
        status: 200,
        total_ms: 1,
        client_addr: "127.0.0.1:1".into(),
        ..RequestRecord::new(
            1_793_534_400_000,
            format!("req-{n:05}"),
            Cow::Borrowed("chat"),
        )
    }
}

fn start(script: &Arc<Script>, options: RequestLogOptions) -> RequestLog {
    let store: Arc<dyn RequestLogStore> = Arc::clone(script) as _;
    let (log, task) = RequestLog::start(store, options);
    tokio::spawn(task);
    log
}

fn no_retention() -> RequestLogOptions {
    RequestLogOptions {
        retention_days: None,
        ..RequestLogOptions::default()
    }
}

fn batches_of_500() -> RequestLogOptions {
    RequestLogOptions {
        batch_size: 500,
        ..no_retention()
    }
}

#[tokio::test(start_paused = true)]
async fn a_thousand_records_are_written_in_two_transactions() {
    let script = Arc::new(Script::default());
    let log = start(&script, batches_of_500());
    for n in 0..1_000 {
        assert!(log.record(record(n)));
    }
    assert!(log.flush(Duration::from_secs(5)).await);
    assert_eq!(script.batches(), [500, 500]);
    let ids = script.ids.lock().unwrap().clone();
    assert_eq!(
        ids,
        (0..1_000).map(|n| record(n).request_id).collect::<Vec<_>>()
    );
    assert_eq!(log.dropped(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_partial_batch_is_written_after_the_flush_interval() {
    let script = Arc::new(Script::default());
    let log = start(&script, no_retention());
    let begun = Instant::now();
    for n in 0..3 {
        log.record(record(n));
    }
    script.until(|s| s.written() == 3).await;
    assert_eq!(script.batches(), [3]);
    // Paused time: the writer waited for the batch to fill, then gave up.
    assert!(begun.elapsed() >= Duration::from_millis(200));
    assert!(begun.elapsed() < Duration::from_millis(400));
}

/// Records that trickle in one at a time fill a batch, written as soon as it is full (the
/// senders say so; the writer does not wait on the channel) and long before the flush interval.
#[tokio::test(start_paused = true)]
async fn a_batch_filled_record_by_record_is_written_when_full() {
    let script = Arc::new(Script::default());
    let log = start(
        &script,
        RequestLogOptions {
            batch_size: 10,
            flush_interval: Duration::from_secs(3_600),
            ..no_retention()
        },
    );
    let begun = Instant::now();
    for n in 0..25 {
        assert!(log.record(record(n)));
        // Let the writer run between records, as it would between requests.
        tokio::task::yield_now().await;
    }
    script.until(|s| s.written() == 20).await;
    assert_eq!(script.batches(), [10, 10]);
    assert!(
        begun.elapsed() < Duration::from_secs(1),
        "{:?}",
        begun.elapsed()
    );
    // The rest waits for the interval.
    script.until(|s| s.written() == 25).await;
    assert_eq!(script.batches(), [10, 10, 5]);
    assert!(begun.elapsed() >= Duration::from_secs(3_600));
}

#[tokio::test(start_paused = true)]
async fn a_full_channel_drops_and_counts_while_the_store_blocks() {
    let script = Arc::new(Script::blocking());
    let log = start(
        &script,
        RequestLogOptions {
            capacity: 10,
            batch_size: 1,
            ..no_retention()
        },
    );
    // The writer takes the first record and blocks in the store ...
    assert!(log.record(record(0)));
    script
        .until(|s| s.started.load(Ordering::SeqCst) == 1)
        .await;
    // ... so the channel fills: ten more fit, the rest are dropped, and nobody waits.
    let accepted = (1..=25).filter(|&n| log.record(record(n))).count();
    assert_eq!(accepted, 10);
    assert_eq!(log.dropped(), 15);

    script.gate.as_ref().unwrap().add_permits(1_000);
    assert!(log.flush(Duration::from_secs(5)).await);
    assert_eq!(script.written(), 11);
    assert_eq!(log.dropped(), 15);
}

#[tokio::test(start_paused = true)]
async fn a_database_error_drops_one_batch_and_the_writer_carries_on() {
    let script = Arc::new(Script::default());
    script.fail.store(1, Ordering::SeqCst);
    let log = start(&script, no_retention());
    for n in 0..5 {
        log.record(record(n));
    }
    assert!(!log.flush(Duration::from_secs(5)).await);
    assert_eq!(log.dropped(), 5);
    assert_eq!(script.written(), 0);

    for n in 5..12 {
        log.record(record(n));
    }
    assert!(log.flush(Duration::from_secs(5)).await);
    assert_eq!(script.written(), 7);
    assert_eq!(log.dropped(), 5);
}

#[tokio::test(start_paused = true)]
async fn retention_runs_at_start_then_at_most_once_an_hour() {
    let script = Arc::new(Script::default());
    let log = start(&script, RequestLogOptions::default());
    // Steady traffic for three and a half hours of paused time.
    for n in 0..210 {
        log.record(record(n));
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    assert!(log.flush(Duration::from_secs(5)).await);
    // At 0, 1 h, 2 h and 3 h.
    assert_eq!(script.retains.load(Ordering::SeqCst), 4);
    assert_eq!(script.written(), 210);
}

#[tokio::test(start_paused = true)]
async fn shutdown_writes_what_is_queued_then_refuses_records() {
    let script = Arc::new(Script::default());
    let store: Arc<dyn RequestLogStore> = Arc::clone(&script) as _;
    let (log, task) = RequestLog::start(store, batches_of_500());
    let writer = tokio::spawn(task);
    for n in 0..1_200 {
        log.record(record(n));
    }
    assert!(log.shutdown(Duration::from_secs(5)).await);
    writer.await.unwrap();
    assert_eq!(script.written(), 1_200);
    assert_eq!(script.batches(), [500, 500, 200]);
    assert!(!log.record(record(9_999)));
    assert_eq!(log.dropped(), 1);
    assert!(!log.flush(Duration::from_secs(1)).await);
}

#[tokio::test(start_paused = true)]
async fn shutdown_drops_what_it_cannot_write_by_the_deadline() {
    let script = Arc::new(Script::blocking());
    let store: Arc<dyn RequestLogStore> = Arc::clone(&script) as _;
    let (log, task) = RequestLog::start(
        store,
        RequestLogOptions {
            batch_size: 4,
            ..no_retention()
        },
    );
    let writer = tokio::spawn(task);
    for n in 0..10 {
        log.record(record(n));
    }
    // The store never answers: the first batch times out, the rest are not tried.
    assert!(!log.shutdown(Duration::from_secs(2)).await);
    writer.await.unwrap();
    assert_eq!(log.dropped(), 10);
    assert_eq!(script.started.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn the_writer_ends_after_the_last_handle_with_everything_written() {
    let script = Arc::new(Script::default());
    let store: Arc<dyn RequestLogStore> = Arc::clone(&script) as _;
    let (log, task) = RequestLog::start(store, no_retention());
    let clone = log.clone();
    for n in 0..3 {
        clone.record(record(n));
    }
    drop(clone);
    drop(log);
    task.await;
    assert_eq!(script.written(), 3);
}

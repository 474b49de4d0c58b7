//! Tracked background tasks: every task the process spawns goes through [`spawn_tracked`], so
//! shutdown can wait for them with [`drain_tracked`] instead of cutting them off mid-write.
//!
//! `clippy.toml` disallows bare `tokio::spawn` everywhere else; this module holds the one
//! sanctioned spawn.

use std::future::Future;
use std::sync::LazyLock;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

/// The process-wide tracker. One for the whole process, not one per component: shutdown drains
/// everything at once, whoever spawned it.
static TRACKER: LazyLock<TaskTracker> = LazyLock::new(TaskTracker::new);

/// Spawns `future` on the current tokio runtime, tracked so that [`drain_tracked`] waits for it.
///
/// Same contract as `tokio::spawn`: it panics when called outside a runtime. A task that never
/// ends on its own (a watcher, an accept loop) must be stopped (aborted or signalled) before
/// draining, or the drain waits for its whole deadline.
pub fn spawn_tracked<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    TRACKER.spawn(future)
}

/// Stops counting new tasks as part of the drain, then waits up to `deadline` for every tracked
/// task to end. Returns whether all of them did; tasks still running afterwards are left to the
/// runtime's shutdown.
///
/// Tasks spawned after this call are still tracked (and waited for, when they start before the
/// last tracked task ends).
pub async fn drain_tracked(deadline: Duration) -> bool {
    TRACKER.close();
    tokio::time::timeout(deadline, TRACKER.wait()).await.is_ok()
}

/// How many tracked tasks are still running.
pub fn tracked_len() -> usize {
    TRACKER.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test: the tracker is process-wide and closing it is for the whole test binary.
    #[tokio::test(start_paused = true)]
    async fn drain_waits_for_tracked_tasks_up_to_the_deadline() {
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let quick = spawn_tracked(async move {
            let _ = released.await;
            7
        });
        let stuck = spawn_tracked(std::future::pending::<()>());
        assert_eq!(tracked_len(), 2);

        // The stuck task keeps the drain from finishing: it gives up at the deadline.
        let before = tokio::time::Instant::now();
        assert!(!drain_tracked(Duration::from_secs(5)).await);
        assert_eq!(before.elapsed(), Duration::from_secs(5));

        release.send(()).unwrap();
        assert_eq!(quick.await.unwrap(), 7);
        stuck.abort();
        assert!(stuck.await.unwrap_err().is_cancelled());
        assert!(drain_tracked(Duration::from_secs(5)).await);
        assert_eq!(tracked_len(), 0);
    }
}

//! Breaker openings and cooldowns shared between replicas (with `redis:` configured).
//!
//! A replica that opens a breaker or starts a cooldown announces it on the [`HealthBoard`] with
//! the instant it ends (fire and forget: the request never waits on Redis). Every replica reads
//! the board every `interval` and applies what it finds to its own entries: a remote opening
//! opens the local breaker until the same instant (then each replica probes once), a remote
//! cooldown cools the local entry down. Only decisions travel; each replica counts failures on
//! its own. Entries are named by [`shared_id`], a digest that is equal on every replica with the
//! same credential and model, and reveals neither.
//!
//! When the board is unreachable each replica keeps deciding alone, logs one warning, and picks
//! up the shared state again when the board returns.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use llmux_config::Credential;
use llmux_reliability::{Health, Transition};
use llmux_store::{HealthBoard, Mark, MarkKind};
use sha2::{Digest, Sha256};

use crate::state::Gateway;

/// Announces local decisions and applies remote ones.
pub struct SharedHealth {
    board: Arc<dyn HealthBoard>,
    interval: Duration,
    reachable: AtomicBool,
}

impl std::fmt::Debug for SharedHealth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedHealth")
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// The name under which a credential (`model: None`) or a combination is shared: the first 16
/// bytes of a SHA-256 over its identity, so replicas agree without the secret leaving memory.
pub fn shared_id(credential: &Credential, model: Option<&str>) -> String {
    let mut digest = Sha256::new();
    for part in [
        credential.name.as_str(),
        credential.vendor.as_str(),
        credential.base_url.as_str(),
        credential.secret.expose(),
        model.unwrap_or("\u{0}credential"),
    ] {
        digest.update(part.as_bytes());
        digest.update([0]);
    }
    digest.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

use crate::clock::unix_millis as now_unix_ms;

impl SharedHealth {
    /// Sharing through `board`, read every `interval`.
    pub fn new(board: Arc<dyn HealthBoard>, interval: Duration) -> Self {
        Self {
            board,
            interval,
            reachable: AtomicBool::new(true),
        }
    }

    /// Announces that `entry` is out of rotation until `until`, in the background.
    fn announce(&self, entry: &Health, kind: MarkKind, until: Instant) {
        let Some(id) = entry.shared_id() else { return };
        let now_ms = now_unix_ms();
        let mark = Mark {
            id: id.to_owned(),
            kind,
            until_ms: now_ms + until.saturating_duration_since(Instant::now()).as_millis() as u64,
        };
        let board = Arc::clone(&self.board);
        llmux_telemetry::spawn_tracked(async move {
            if let Err(err) = board.publish(&mark, now_ms).await {
                tracing::debug!(error = %err, "could not share a breaker or cooldown decision");
            }
        });
    }

    /// Reads the board once and applies every mark to the current snapshot's entries; returns
    /// how many marks matched an entry here.
    pub async fn sync_once(&self, gateway: &Gateway) -> Result<usize, llmux_store::StoreError> {
        let now_ms = now_unix_ms();
        let marks = self.board.active(now_ms).await?;
        let snapshot = gateway.snapshot.load();
        let now = Instant::now();
        let mut applied = 0;
        for mark in marks {
            let Some(entry) = snapshot.health.by_shared_id(&mark.id) else {
                continue;
            };
            applied += 1;
            let until = now + Duration::from_millis(mark.until_ms.saturating_sub(now_ms));
            match mark.kind {
                MarkKind::Open => {
                    if entry.open_until(now, until) == Some(Transition::Opened) {
                        tracing::info!(id = mark.id, "circuit breaker opened by another replica");
                    }
                }
                MarkKind::Cooldown => entry.cool_down(until),
            }
        }
        Ok(applied)
    }

    /// Syncs every `interval` until the gateway is dropped.
    pub(crate) async fn run(self: Arc<Self>, gateway: Weak<Gateway>) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let Some(gateway) = gateway.upgrade() else {
                return;
            };
            match self.sync_once(&gateway).await {
                Ok(_) => {
                    if !self.reachable.swap(true, Ordering::Relaxed) {
                        tracing::info!("shared breaker state is reachable again");
                    }
                }
                Err(err) => {
                    if self.reachable.swap(false, Ordering::Relaxed) {
                        tracing::warn!(error = %err, "shared breaker state unreachable: this replica decides alone until it returns");
                    }
                }
            }
        }
    }
}

/// Announces a breaker that just opened here.
pub(crate) fn opened(gateway: &Gateway, entry: &Health, transition: Option<Transition>) {
    if transition != Some(Transition::Opened) {
        return;
    }
    if let (Some(shared), Some(until)) = (gateway.shared_health.get(), entry.opened_until()) {
        shared.announce(entry, MarkKind::Open, until);
    }
}

/// Announces a cooldown that just started here.
pub(crate) fn cooled(gateway: &Gateway, entry: &Health, until: Instant) {
    if let Some(shared) = gateway.shared_health.get() {
        shared.announce(entry, MarkKind::Cooldown, until);
    }
}

//! Vendor quotas (`credentials[].limits`): llmux keeps each vendor key under the requests and
//! tokens per minute its vendor allows, so the vendor never has to refuse it. With `redis:` the
//! counters are shared, so the quota holds across every replica.
//!
//! Each attempt takes one request and its token reservation (input estimate + `max_tokens`)
//! from its credential's buckets before it is sent; a credential over quota is skipped for this
//! request and another one tried, and when every candidate is over quota the client gets a 429
//! with the time until the soonest one has room. The answering attempt's token charge is
//! corrected with the real usage when the answer ends (through [`Settle`]); a failed attempt's
//! tokens are refunded at once (its requests stay counted: the vendor counted them too).
//!
//! When the counters are unreachable (Redis down), requests go through: the vendor's own 429 and
//! the cooldown it starts still protect the key.

use std::sync::Arc;
use std::time::Duration;

use llmux_config::Credential;
use llmux_reliability::Health;
use llmux_store::Limiter;

use crate::governance::Settle;
use crate::state::Gateway;

/// Tokens one attempt reserved from its credential's TPM bucket, until the usage is known.
pub(crate) struct QuotaCharge {
    limiter: Arc<dyn Limiter>,
    bucket: String,
    tpm: u32,
    reserved: u64,
}

impl QuotaCharge {
    /// Corrects the reservation with the real usage (zero refunds it; unknown usage keeps it).
    pub(crate) async fn settle(self, usage: Option<llmux_protocol::neutral::Usage>) {
        let Some(usage) = usage else { return };
        let delta = usage.total() as i64 - self.reserved as i64;
        if delta != 0
            && let Err(err) = self
                .limiter
                .adjust(&self.bucket, self.tpm, delta, now_ms())
                .await
        {
            tracing::warn!(error = %err, "could not reconcile a vendor quota reservation");
        }
    }
}

/// What taking quota for an attempt decided.
pub(crate) enum Taken {
    /// Go ahead (the token charge, if any, is held by the request's [`Settle`]).
    Go,
    /// Over quota: room again after this long.
    Over(Duration),
}

use crate::clock::unix_millis as now_ms;

/// Takes one request and `reserve` tokens of `credential`'s quota for an attempt.
pub(crate) async fn take(
    gateway: &Gateway,
    credential: &Credential,
    health: &Health,
    reserve: u64,
    settle: &Settle,
) -> Taken {
    let limits = credential.limits;
    if !limits.any() {
        return Taken::Go;
    }
    let limiter = gateway.quota_limiter();
    // The shared id names the key without revealing it, and is equal on every replica.
    let id = health.shared_id().unwrap_or(&credential.name);
    let now = now_ms();
    let requests = format!("vendor:{id}:rpm");
    if let Some(rpm) = limits.rpm {
        match limiter.check(&requests, rpm, 1, now).await {
            Ok(decision) if !decision.allowed => return Taken::Over(wait(decision.retry_after)),
            Ok(_) => {}
            Err(err) => {
                unreachable_counters(&err);
                return Taken::Go;
            }
        }
    }
    if let Some(tpm) = limits.tpm {
        let cost = u32::try_from(reserve).unwrap_or(u32::MAX).min(tpm).max(1);
        let bucket = format!("vendor:{id}:tpm");
        match limiter.check(&bucket, tpm, cost, now).await {
            Ok(decision) if !decision.allowed => {
                if let Some(rpm) = limits.rpm {
                    // The request was counted above but will not be sent: give it back.
                    let _ = limiter.adjust(&requests, rpm, -1, now).await;
                }
                return Taken::Over(wait(decision.retry_after));
            }
            Ok(_) => settle.charge_quota(QuotaCharge {
                limiter: Arc::clone(limiter),
                bucket,
                tpm,
                reserved: u64::from(cost),
            }),
            Err(err) => unreachable_counters(&err),
        }
    }
    Taken::Go
}

/// A refusal always names a wait; one that could never pass (a reservation above the whole
/// quota is capped, so this is only a guard) waits a full minute.
fn wait(retry_after: Option<Duration>) -> Duration {
    retry_after.unwrap_or(Duration::from_secs(60))
}

fn unreachable_counters(err: &llmux_store::StoreError) {
    tracing::warn!(error = %err, "vendor quota counters unreachable: sending without the quota check");
}

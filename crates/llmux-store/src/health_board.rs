//! The [`HealthBoard`]: circuit-breaker openings and rate-limit cooldowns that one replica
//! announces and every other replica applies, so a vendor key that one replica found revoked or
//! rate-limited is left alone by all of them.
//!
//! Only decisions are shared, never the counting that led to them: each replica counts failures
//! itself (a shared counter would cost a Redis round trip per request) and announces the breaker
//! it opens or the cooldown it starts, with the instant it ends. A mark names a combination or
//! credential by an opaque id (a digest the server computes; never a secret).

mod memory;
mod redis;
#[cfg(test)]
mod tests;

pub use memory::MemoryHealthBoard;
pub use redis::RedisHealthBoard;

use crate::{BoxFuture, StoreError};

/// What a mark keeps out of rotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MarkKind {
    /// A circuit breaker opened (failures, or a refused key): no traffic until `until`, then
    /// each replica probes once.
    Open,
    /// A cooldown after a rate limit (Retry-After): no traffic until `until`.
    Cooldown,
}

impl MarkKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Cooldown => "cooldown",
        }
    }

    fn parse(field: &str) -> Option<(Self, &str)> {
        if let Some(id) = field.strip_prefix("open:") {
            Some((Self::Open, id))
        } else {
            field
                .strip_prefix("cooldown:")
                .map(|id| (Self::Cooldown, id))
        }
    }
}

/// One announced decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    /// The combination or credential it applies to (opaque, chosen by the server).
    pub id: String,
    /// Breaker opening or cooldown.
    pub kind: MarkKind,
    /// When it ends, Unix milliseconds.
    pub until_ms: u64,
}

/// Where replicas announce and read marks. Time is passed in, as for every store trait.
pub trait HealthBoard: Send + Sync {
    /// Announces `mark`; an existing mark for the same id and kind is only ever extended.
    fn publish<'a>(&'a self, mark: &'a Mark, now_ms: u64) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Every mark still in force at `now_ms` (ended ones are dropped).
    fn active(&self, now_ms: u64) -> BoxFuture<'_, Result<Vec<Mark>, StoreError>>;
}

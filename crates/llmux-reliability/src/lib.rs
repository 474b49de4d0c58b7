//! Reliability primitives for llmux: [`backoff`] delays with full jitter, and [`Health`] — a
//! circuit breaker with cooldowns and recent statistics for one combination or credential.
//!
//! Invariant: no I/O and no clock reads. Every method that depends on time takes `now`, so tests
//! drive time explicitly and never sleep. State is guarded per entry (a small mutex held for a
//! few instructions), never globally.

#![warn(missing_docs)]

mod backoff;
mod health;

pub use backoff::backoff;
pub use health::{Admission, BreakerConfig, BreakerState, Health, HealthView, Transition};

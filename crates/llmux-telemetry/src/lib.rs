//! Observability for llmux: log setup ([`logging`]), the per-request log line ([`access_log`]),
//! secret masking ([`mask`]), the
//! Prometheus registry ([`metrics`]), OpenTelemetry trace export ([`otlp`]) and the process's tracked background tasks ([`tasks`]:
//! [`spawn_tracked`], drained at shutdown by [`drain_tracked`]).
//!
//! Invariant: metric labels are bounded (route, vendor, credential *name*, public model name,
//! status) and no secret ever reaches a label, a log field or a masked string.

#![warn(missing_docs)]

pub mod access_log;
pub mod calendar;
pub mod logging;
pub mod mask;
pub mod metrics;
pub mod otlp;
pub mod tasks;

pub use tasks::{drain_tracked, spawn_tracked};

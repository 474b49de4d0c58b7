//! Observability for llmux: log setup ([`logging`]), secret masking ([`mask`]) and the
//! Prometheus registry ([`metrics`]).
//!
//! Invariant: metric labels are bounded (route, vendor, credential *name*, public model name,
//! status) and no secret ever reaches a label, a log field or a masked string.

pub mod logging;
pub mod mask;
pub mod metrics;

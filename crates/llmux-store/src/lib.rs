//! Storage and counters for client governance in llmux: virtual keys, usage, rate limits,
//! concurrency slots and budgets.
//!
//! Two traits, each with an embedded default and a shared backend for several replicas:
//!
//! - [`KeyStore`] keeps virtual keys and per-day usage. [`open`] picks the backend from a URL:
//!   SQLite (`sqlite://path.db`, `sqlite::memory:`) by default, PostgreSQL
//!   (`postgres://…`) when replicas share state. One test suite runs against both.
//! - [`Limiter`] holds the fast-moving counters: GCRA rate limits, concurrency slots,
//!   revocation flags and budget spend. [`MemoryLimiter`] serves one process;
//!   [`RedisLimiter`] shares them between replicas, each operation one atomic Lua script.
//!
//! - [`RequestLogStore`] keeps one [`RequestRecord`] per client request, in SQLite or in
//!   PostgreSQL partitioned by day ([`open_request_log`]), for whole days of retention.
//!   [`RequestLog`] is the request path's side: `try_send` into a bounded channel (drops are
//!   counted, a request never waits), drained by one task in batched transactions.
//!
//! - [`AnswerCache`] keeps complete answers for the response cache: in memory bounded by bytes
//!   ([`MemoryAnswerCache`]) or in Redis shared by replicas ([`RedisAnswerCache`]).
//!
//! - [`HealthBoard`] carries circuit-breaker openings and cooldowns from the replica that
//!   decided them to every other one ([`RedisHealthBoard`]; [`MemoryHealthBoard`] in one process).
//!
//! Invariants: a key's secret is shown once, at [`KeyStore::create`], and only its SHA-256 is
//! stored; no record, `Debug` output or error message holds a secret, a hash or a password.
//! Counters are updated atomically in the backend (upserts, Lua scripts), never by
//! read-modify-write in the caller. Time is always passed in, so tests never sleep.

#![warn(missing_docs)]

mod answer_cache;
mod calendar;
mod error;
mod health_board;
mod key;
mod key_store;
mod lazy_redis;
mod limiter;
mod request_log;
mod responses;

use std::future::Future;
use std::pin::Pin;

pub use answer_cache::{AnswerCache, MemoryAnswerCache, RedisAnswerCache};
pub use error::{ErrorKind, StoreError, redact_url};
pub use health_board::{HealthBoard, Mark, MarkKind, MemoryHealthBoard, RedisHealthBoard};
pub use key::{KeyRecord, KeyUpdate, NewKey, Spend, UsageRow, parse_key};
pub use key_store::{KeyStore, open};
pub use limiter::{Decision, Limiter, MemoryLimiter, RedisLimiter};
pub use request_log::{
    AttemptRecord, DEFAULT_LIMIT, MAX_LIMIT, Page, ParseStatusFilterError, RequestFilter,
    RequestLog, RequestLogOptions, RequestLogStore, RequestLogTask, RequestRecord, StatusFilter,
    USER_AGENT_CAP, open_request_log,
};
pub use responses::{ResponseStore, StoredRow, open_responses};

/// The future every trait method returns: boxed so the traits stay object-safe
/// (`Arc<dyn KeyStore>`, `Arc<dyn Limiter>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

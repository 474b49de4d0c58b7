//! The [`AnswerCache`]: complete model answers kept for a while under an opaque key, so the
//! same request can be answered again without a vendor call (the gateway's response cache).
//!
//! The cache stores bytes and knows nothing of their meaning: the server computes the key (a
//! digest of the normalized request and its scope) and the value (the serialized answer).
//! [`MemoryAnswerCache`] serves one process and is bounded by bytes; [`RedisAnswerCache`] is
//! shared by every replica. Both expire entries after the TTL given at `put`. Time is passed in.

mod memory;
mod redis;

pub use memory::MemoryAnswerCache;
pub use redis::RedisAnswerCache;

use std::sync::Arc;

use crate::{BoxFuture, StoreError};

/// Where cached answers live.
pub trait AnswerCache: Send + Sync + std::fmt::Debug {
    /// The value stored under `key`, if it has not expired at `now_ms` (Unix milliseconds).
    fn get<'a>(
        &'a self,
        key: &'a str,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Option<Arc<[u8]>>, StoreError>>;

    /// Stores `value` under `key` until `now_ms + ttl_ms`, replacing what was there.
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Arc<[u8]>,
        ttl_ms: u64,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>>;
}

//! [`RedisAnswerCache`]: answers in Redis, shared by every replica; Redis expires them.

use ::redis::AsyncCommands;
use std::sync::Arc;

use super::AnswerCache;
use crate::lazy_redis::LazyRedis;
use crate::{BoxFuture, StoreError};

const DEFAULT_PREFIX: &str = "llmux:cache:";

/// Answers as Redis strings under `llmux:cache:<key>` (or [`RedisAnswerCache::with_prefix`]),
/// each with its TTL (`SET … PX`). Bounded by Redis's own `maxmemory` policy. Connects on first
/// use, so a gateway starts while Redis is down (the request then goes to the vendor).
pub struct RedisAnswerCache {
    redis: LazyRedis,
    prefix: String,
}

impl std::fmt::Debug for RedisAnswerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAnswerCache")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl RedisAnswerCache {
    /// A cache at `url` (`redis://[user:password@]host[:port][/db]`).
    pub fn new(url: &str) -> Result<Self, StoreError> {
        Ok(Self {
            redis: LazyRedis::new(url)?,
            prefix: DEFAULT_PREFIX.to_owned(),
        })
    }

    /// Keeps answers under `<prefix>cache:`, like the limiter's keys.
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = format!("{prefix}cache:");
        self
    }
}

impl AnswerCache for RedisAnswerCache {
    fn get<'a>(
        &'a self,
        key: &'a str,
        _now_ms: u64,
    ) -> BoxFuture<'a, Result<Option<Arc<[u8]>>, StoreError>> {
        Box::pin(async move {
            let value: Option<Vec<u8>> = self
                .redis
                .conn()
                .await?
                .get(format!("{}{key}", self.prefix))
                .await
                .map_err(StoreError::redis("read cached answer"))?;
            Ok(value.map(Arc::from))
        })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Arc<[u8]>,
        ttl_ms: u64,
        _now_ms: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let options = ::redis::SetOptions::default()
                .with_expiration(::redis::SetExpiry::PX(ttl_ms.max(1)));
            let () = self
                .redis
                .conn()
                .await?
                .set_options(format!("{}{key}", self.prefix), &value[..], options)
                .await
                .map_err(StoreError::redis("store cached answer"))?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

    use super::*;

    /// Runs against `LLMUX_TEST_REDIS_URL` (scripts/services); skipped without it.
    fn redis_url() -> Option<String> {
        let url = std::env::var("LLMUX_TEST_REDIS_URL").ok();
        if url.is_none() {
            eprintln!("skipped: LLMUX_TEST_REDIS_URL is not set (run scripts/services)");
        }
        url
    }

    #[tokio::test]
    async fn answers_are_shared_and_expire() {
        let Some(url) = redis_url() else { return };
        let prefix = format!("llmux-test-{}:", fastrand::u64(..));
        let writer = RedisAnswerCache::new(&url).unwrap().with_prefix(&prefix);
        let reader = RedisAnswerCache::new(&url).unwrap().with_prefix(&prefix);
        writer
            .put("k", Arc::from(&b"answer"[..]), 60_000, 0)
            .await
            .unwrap();
        assert_eq!(&*reader.get("k", 0).await.unwrap().unwrap(), b"answer");
        assert!(reader.get("missing", 0).await.unwrap().is_none());
        writer
            .put("short", Arc::from(&b"x"[..]), 1, 0)
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while reader.get("short", 0).await.unwrap().is_some() {
            assert!(std::time::Instant::now() < deadline, "never expired");
            tokio::task::yield_now().await;
        }
    }
}

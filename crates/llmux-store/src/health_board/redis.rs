//! [`RedisHealthBoard`]: marks in one Redis hash, shared by every replica.
//!
//! Each operation is one Lua script (atomic in Redis): publishing raises a field's end time and
//! never lowers it; reading returns the live fields and deletes ended ones. The connection is
//! made on first use and remade by the connection manager, so a gateway starts, and keeps
//! serving on its own breakers, while Redis is down.

use ::redis::Script;

use super::{HealthBoard, Mark, MarkKind};
use crate::lazy_redis::LazyRedis;
use crate::{BoxFuture, StoreError};

const DEFAULT_KEY: &str = "llmux:health";

/// Marks in a Redis hash (`llmux:health` unless [`RedisHealthBoard::with_prefix`]).
pub struct RedisHealthBoard {
    redis: LazyRedis,
    key: String,
    publish: Script,
    active: Script,
}

impl std::fmt::Debug for RedisHealthBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisHealthBoard")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl RedisHealthBoard {
    /// A board at `url` (`redis://[user:password@]host[:port][/db]`); connects on first use.
    pub fn new(url: &str) -> Result<Self, StoreError> {
        Ok(Self {
            redis: LazyRedis::new(url)?,
            key: DEFAULT_KEY.to_owned(),
            publish: Script::new(include_str!("lua/publish.lua")),
            active: Script::new(include_str!("lua/active.lua")),
        })
    }

    /// Keeps the board under `prefix` (`<prefix>health`), like the limiter's keys.
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.key = format!("{prefix}health");
        self
    }
}

impl HealthBoard for RedisHealthBoard {
    fn publish<'a>(&'a self, mark: &'a Mark, now_ms: u64) -> BoxFuture<'a, Result<(), StoreError>> {
        Box::pin(async move {
            let field = format!("{}:{}", mark.kind.as_str(), mark.id);
            let _: i64 = self
                .publish
                .key(&self.key)
                .arg(field)
                .arg(mark.until_ms)
                .arg(now_ms)
                .invoke_async(&mut self.redis.conn().await?)
                .await
                .map_err(StoreError::redis("publish health mark"))?;
            Ok(())
        })
    }

    fn active(&self, now_ms: u64) -> BoxFuture<'_, Result<Vec<Mark>, StoreError>> {
        Box::pin(async move {
            let flat: Vec<String> = self
                .active
                .key(&self.key)
                .arg(now_ms)
                .invoke_async(&mut self.redis.conn().await?)
                .await
                .map_err(StoreError::redis("read health marks"))?;
            Ok(flat
                .chunks_exact(2)
                .filter_map(|pair| {
                    let (kind, id) = MarkKind::parse(&pair[0])?;
                    Some(Mark {
                        id: id.to_owned(),
                        kind,
                        until_ms: pair[1].parse().ok()?,
                    })
                })
                .collect())
        })
    }
}

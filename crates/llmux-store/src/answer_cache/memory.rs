//! [`MemoryAnswerCache`]: answers in this process, bounded by bytes.

use std::sync::Arc;

use quick_cache::Weighter;
use quick_cache::sync::Cache;

use super::AnswerCache;
use crate::{BoxFuture, StoreError};

/// An entry: when it expires (Unix milliseconds) and the answer.
type Entry = (u64, Arc<[u8]>);

/// Weighs an entry by its bytes (key and value), so the bound is on memory, not entry count.
#[derive(Clone)]
struct Bytes;

impl Weighter<String, Entry> for Bytes {
    fn weight(&self, key: &String, value: &Entry) -> u64 {
        // Never zero: a zero weight would never be evicted.
        (key.len() + value.1.len()).max(1) as u64
    }
}

/// Answers held in memory up to `max_bytes` (keys and values together; the least useful are
/// evicted first: quick_cache's CLOCK-Pro policy, which keeps often-read entries). Sharded
/// internally: no global lock on the request path.
pub struct MemoryAnswerCache {
    entries: Cache<String, Entry, Bytes>,
    max_bytes: u64,
}

impl std::fmt::Debug for MemoryAnswerCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryAnswerCache")
            .field("max_bytes", &self.max_bytes)
            .field("bytes", &self.entries.weight())
            .finish()
    }
}

impl MemoryAnswerCache {
    /// An empty cache holding at most `max_bytes` of keys and answers.
    pub fn new(max_bytes: u64) -> Self {
        // The item estimate only sizes the table up front: assume answers of ~4 KiB.
        let estimated_items = usize::try_from(max_bytes / 4096)
            .unwrap_or(usize::MAX)
            .clamp(16, 1 << 20);
        Self {
            entries: Cache::with_weighter(estimated_items, max_bytes.max(1), Bytes),
            max_bytes,
        }
    }

    /// Bytes held now (keys and values).
    pub fn bytes(&self) -> u64 {
        self.entries.weight()
    }

    fn get_now(&self, key: &str, now_ms: u64) -> Option<Arc<[u8]>> {
        let (expires_ms, value) = self.entries.get(key)?;
        if now_ms < expires_ms {
            Some(value)
        } else {
            self.entries.remove(key);
            None
        }
    }
}

impl AnswerCache for MemoryAnswerCache {
    fn get<'a>(
        &'a self,
        key: &'a str,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<Option<Arc<[u8]>>, StoreError>> {
        let found = self.get_now(key, now_ms);
        Box::pin(async move { Ok(found) })
    }

    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Arc<[u8]>,
        ttl_ms: u64,
        now_ms: u64,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        // An answer larger than the whole cache is not kept (it would evict everything).
        if (key.len() + value.len()) as u64 <= self.max_bytes {
            self.entries
                .insert(key.to_owned(), (now_ms.saturating_add(ttl_ms), value));
        }
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

    use super::*;

    fn value(n: usize) -> Arc<[u8]> {
        vec![b'x'; n].into()
    }

    #[tokio::test]
    async fn an_entry_is_served_until_its_ttl_ends() {
        let cache = MemoryAnswerCache::new(1 << 20);
        cache.put("k", value(10), 1000, 5_000).await.unwrap();
        assert_eq!(cache.get("k", 5_999).await.unwrap().unwrap().len(), 10);
        assert!(cache.get("k", 6_000).await.unwrap().is_none());
        assert!(cache.get("other", 5_000).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn the_bound_is_on_bytes_not_entries() {
        let cache = MemoryAnswerCache::new(100_000);
        for i in 0..1000 {
            cache
                .put(&format!("key-{i}"), value(1000), 60_000, 0)
                .await
                .unwrap();
        }
        assert!(
            cache.bytes() <= 100_000,
            "held {} bytes over a 100,000 byte bound",
            cache.bytes()
        );
        let kept = (0..1000)
            .filter(|i| cache.entries.peek(&format!("key-{i}")).is_some())
            .count();
        assert!((50..=100).contains(&kept), "kept {kept} 1 KB answers");
        // One answer larger than the bound is refused instead of evicting everything.
        cache.put("huge", value(200_000), 60_000, 0).await.unwrap();
        assert!(cache.get("huge", 0).await.unwrap().is_none());
    }
}

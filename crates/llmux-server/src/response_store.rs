//! Stored responses for `previous_response_id`, `GET` and `DELETE /v1/responses/{id}`.
//!
//! A stored response keeps its resource (as served) and the whole conversation up to and
//! including its output, in neutral form, so a follow-up turn can be sent to *any* vendor — the
//! two turns may land on different vendors. A bounded memory cache (oldest evicted past
//! `capacity`) always answers first; with `responses.store` configured, every response is also
//! written to SQLite/PostgreSQL (in the background, so the answer never waits for it) and a
//! cache miss is read from there — other replicas and restarts see the same responses.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use llmux_protocol::neutral::Message;
use serde_json::Value;

/// One stored response.
#[derive(Debug)]
pub struct Stored {
    /// The `ResponseResource` as returned to the client.
    pub resource: Value,
    /// Every message up to and including this response's output.
    pub conversation: Vec<Message>,
}

/// A bounded in-memory store, optionally backed by a database.
pub struct ResponseStore {
    capacity: usize,
    inner: Mutex<Inner>,
    backend: Option<Arc<dyn llmux_store::ResponseStore>>,
}

impl std::fmt::Debug for ResponseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseStore")
            .field("capacity", &self.capacity)
            .field("backend", &self.backend.is_some())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Arc<Stored>>,
    order: VecDeque<String>,
}

impl ResponseStore {
    /// A store keeping at most `capacity` responses in memory, persisting to `backend`.
    pub fn with_backend(
        capacity: usize,
        backend: Option<Arc<dyn llmux_store::ResponseStore>>,
    ) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
            backend,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores (or replaces) `id`: in memory now, in the database in the background.
    pub fn put(&self, id: String, stored: Stored) {
        if let Some(backend) = self.backend.clone() {
            let resource = stored.resource.to_string();
            let conversation =
                serde_json::to_string(&stored.conversation).unwrap_or_else(|_| "[]".into());
            let created_at = stored
                .resource
                .get("created_at")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            let key = id.clone();
            llmux_telemetry::spawn_tracked(async move {
                if let Err(err) = backend
                    .put(&key, &resource, &conversation, created_at)
                    .await
                {
                    tracing::warn!(error = %err, "could not persist a stored response");
                }
            });
        }
        self.put_cached(id, stored);
    }

    fn put_cached(&self, id: String, stored: Stored) {
        let mut inner = self.lock();
        if inner.entries.insert(id.clone(), Arc::new(stored)).is_none() {
            inner.order.push_back(id);
        }
        while inner.entries.len() > self.capacity {
            match inner.order.pop_front() {
                Some(oldest) => {
                    inner.entries.remove(&oldest);
                }
                None => break,
            }
        }
    }

    /// The stored response `id`: from memory, else from the database.
    pub async fn get(&self, id: &str) -> Option<Arc<Stored>> {
        if let Some(found) = self.lock().entries.get(id).cloned() {
            return Some(found);
        }
        let backend = self.backend.as_ref()?;
        let (resource, conversation) = match backend.get(id).await {
            Ok(row) => row?,
            Err(err) => {
                tracing::warn!(error = %err, "could not read a stored response");
                return None;
            }
        };
        let stored = Stored {
            resource: serde_json::from_str(&resource).ok()?,
            conversation: serde_json::from_str(&conversation).ok()?,
        };
        self.put_cached(id.to_owned(), stored);
        self.lock().entries.get(id).cloned()
    }

    /// Deletes `id` everywhere; whether it existed.
    pub async fn delete(&self, id: &str) -> bool {
        let existed = {
            let mut inner = self.lock();
            let existed = inner.entries.remove(id).is_some();
            if existed {
                inner.order.retain(|k| k != id);
            }
            existed
        };
        match &self.backend {
            Some(backend) => match backend.delete(id).await {
                Ok(deleted) => existed || deleted,
                Err(err) => {
                    tracing::warn!(error = %err, "could not delete a stored response");
                    existed
                }
            },
            None => existed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(n: u64) -> Stored {
        Stored {
            resource: serde_json::json!({ "n": n }),
            conversation: Vec::new(),
        }
    }

    #[tokio::test]
    async fn evicts_the_oldest_past_capacity() {
        let store = ResponseStore::with_backend(2, None);
        store.put("a".into(), stored(1));
        store.put("b".into(), stored(2));
        store.put("c".into(), stored(3));
        assert!(store.get("a").await.is_none());
        assert_eq!(store.get("c").await.unwrap().resource["n"], 3);
        assert!(store.delete("b").await);
        assert!(!store.delete("b").await);
        store.put("d".into(), stored(4));
        assert!(store.get("c").await.is_some() && store.get("d").await.is_some());
    }
}

//! Stored responses for `previous_response_id`, `GET` and `DELETE /v1/responses/{id}`.
//!
//! A stored response keeps its resource (as served) and the whole conversation up to and
//! including its output, in neutral form, so a follow-up turn can be sent to *any* vendor — the
//! two turns may land on different vendors. In memory, bounded: the oldest entries are evicted
//! past `capacity`. (A SQLite/PostgreSQL backend belongs behind the same methods; see the issue
//! note.)

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

/// A bounded in-memory store.
#[derive(Debug)]
pub struct ResponseStore {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, Arc<Stored>>,
    order: VecDeque<String>,
}

impl ResponseStore {
    /// A store keeping at most `capacity` responses.
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Stores (or replaces) `id`, evicting the oldest entries past capacity.
    pub fn put(&self, id: String, stored: Stored) {
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

    /// The stored response `id`.
    pub fn get(&self, id: &str) -> Option<Arc<Stored>> {
        self.lock().entries.get(id).cloned()
    }

    /// Deletes `id`; whether it existed.
    pub fn delete(&self, id: &str) -> bool {
        let mut inner = self.lock();
        let existed = inner.entries.remove(id).is_some();
        if existed {
            inner.order.retain(|k| k != id);
        }
        existed
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

    #[test]
    fn evicts_the_oldest_past_capacity() {
        let store = ResponseStore::new(2);
        store.put("a".into(), stored(1));
        store.put("b".into(), stored(2));
        store.put("c".into(), stored(3));
        assert!(store.get("a").is_none());
        assert_eq!(store.get("c").unwrap().resource["n"], 3);
        assert!(store.delete("b"));
        assert!(!store.delete("b"));
        store.put("d".into(), stored(4));
        assert!(store.get("c").is_some() && store.get("d").is_some());
    }
}

//! Stored responses for `previous_response_id`, `GET` and `DELETE /v1/responses/{id}`.
//!
//! A stored response belongs to its owner (the key that created it, or the client identity on
//! an open gateway: see `Caller::owner`); every read, continuation and delete names the owner,
//! and a response of another owner is simply not found.
//!
//! Each response keeps only its *turn* — the messages it added (new input and output) — and the
//! id of the response it continued; a conversation is rebuilt by walking that chain, so the
//! common prefix of a long conversation is held once, not once per turn. Turns are kept in
//! neutral form, so a follow-up may land on any vendor.
//!
//! A memory cache bounded by bytes (and by count) answers first, least recently used evicted;
//! with `responses.store` configured every response is also written to SQLite/PostgreSQL (in the
//! background, so the answer never waits) and a miss is read from there — other replicas and
//! restarts see the same responses. Responses older than `responses.ttl_days` are gone from
//! both (the database is purged at most hourly, from the write path).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use llmux_protocol::neutral::Message;
use llmux_store::StoredRow;

/// Turns followed at most when rebuilding one conversation: a bound on the work (and database
/// reads) a single `previous_response_id` can cause.
const MAX_TURNS: usize = 4096;

/// Fixed cost charged per cached entry on top of its payload (map entries, ids, the `Arc`).
const ENTRY_OVERHEAD: usize = 256;

/// How often the database is purged of responses past retention.
const PURGE_EVERY_SECS: i64 = 3600;

/// The `parent` of a response the vendor stores itself ([`ResponseStore::put_at_vendor`]);
/// no response id contains a control character.
const AT_VENDOR: &str = "\u{1}at-vendor";

/// Where a conversation to continue is.
#[derive(Debug)]
pub enum Continuation {
    /// Stored here: its messages, oldest first.
    Here(Vec<Message>),
    /// Stored by the vendor (OpenAI's own responses, answered on the native path).
    AtVendor,
    /// Not found for this owner (missing, expired, deleted or another owner's).
    Missing,
}

/// One stored turn.
#[derive(Debug)]
pub struct Stored {
    /// Who may read, continue or delete it.
    pub owner: String,
    /// The response this one continued.
    pub parent: Option<String>,
    /// The `ResponseResource` as served (JSON); `None` once deleted.
    pub resource: Option<Bytes>,
    /// The messages this turn added: its new input, then its output.
    pub turn: Vec<Message>,
    /// Unix seconds.
    pub created_at: i64,
    /// What this entry counts against the memory bound.
    bytes: usize,
}

/// Limits of the memory cache and retention.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    /// At most this many responses in memory.
    pub capacity: usize,
    /// At most this many bytes of responses in memory.
    pub max_bytes: usize,
    /// Responses older than this many seconds are gone (`None`: kept).
    pub ttl_secs: Option<i64>,
}

impl Bounds {
    /// The bounds `responses:` configures.
    pub fn of(config: &llmux_config::ResponsesStore) -> Self {
        Self {
            capacity: config.capacity.max(1),
            max_bytes: config.max_bytes,
            ttl_secs: config
                .ttl_days
                .map(|days| i64::from(days).saturating_mul(86_400)),
        }
    }
}

/// A bounded in-memory store, optionally backed by a database.
pub struct ResponseStore {
    bounds: Bounds,
    inner: Mutex<Inner>,
    backend: Option<Arc<dyn llmux_store::ResponseStore>>,
    last_purge: AtomicI64,
}

impl std::fmt::Debug for ResponseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseStore")
            .field("bounds", &self.bounds)
            .field("backend", &self.backend.is_some())
            .finish_non_exhaustive()
    }
}

/// The cache: entries by id, and their last use in order (least recent first).
#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, (Arc<Stored>, u64)>,
    order: BTreeMap<u64, String>,
    next_use: u64,
    bytes: usize,
}

impl Inner {
    fn touch(&mut self, id: &str) -> Option<Arc<Stored>> {
        let next = self.next_use;
        let (stored, used) = self.entries.get_mut(id)?;
        let previous = std::mem::replace(used, next);
        let stored = Arc::clone(stored);
        self.next_use += 1;
        if let Some(key) = self.order.remove(&previous) {
            self.order.insert(next, key);
        }
        Some(stored)
    }

    fn remove(&mut self, id: &str) -> Option<Arc<Stored>> {
        let (stored, used) = self.entries.remove(id)?;
        self.order.remove(&used);
        self.bytes -= stored.bytes;
        Some(stored)
    }

    fn insert(&mut self, id: String, stored: Arc<Stored>, bounds: &Bounds) {
        self.remove(&id);
        if stored.bytes > bounds.max_bytes {
            // Larger than the whole cache: only the database (if any) keeps it.
            return;
        }
        self.bytes += stored.bytes;
        self.order.insert(self.next_use, id.clone());
        self.entries.insert(id, (stored, self.next_use));
        self.next_use += 1;
        while self.bytes > bounds.max_bytes || self.entries.len() > bounds.capacity {
            let Some((_, oldest)) = self.order.pop_first() else {
                break;
            };
            if let Some((stored, _)) = self.entries.remove(&oldest) {
                self.bytes -= stored.bytes;
            }
        }
    }
}

/// Counts serialized bytes without keeping them.
struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn now_unix() -> i64 {
    i64::try_from(crate::clock::unix_secs()).unwrap_or(i64::MAX)
}

impl ResponseStore {
    /// A store within `bounds` in memory, persisting to `backend`.
    pub fn with_backend(
        bounds: Bounds,
        backend: Option<Arc<dyn llmux_store::ResponseStore>>,
    ) -> Self {
        Self {
            bounds,
            inner: Mutex::new(Inner::default()),
            backend,
            last_purge: AtomicI64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Bytes the memory cache holds now.
    pub fn cached_bytes(&self) -> usize {
        self.lock().bytes
    }

    fn not_before(&self) -> i64 {
        self.bounds
            .ttl_secs
            .map_or(i64::MIN, |ttl| now_unix().saturating_sub(ttl))
    }

    /// Stores `id` for `owner`: in memory now, in the database in the background.
    pub fn put(
        &self,
        id: String,
        owner: String,
        parent: Option<String>,
        resource: &serde_json::Value,
        turn: Vec<Message>,
    ) {
        let resource = Bytes::from(serde_json::to_vec(resource).unwrap_or_default());
        self.put_bytes(id, owner, parent, resource, turn);
    }

    /// Records response `id` that the vendor stores itself (OpenAI, on the native path), so
    /// only `owner` can read, continue or delete it through llmux. No conversation is kept:
    /// its continuation goes to the vendor.
    pub fn put_at_vendor(&self, id: String, owner: String, resource: Bytes) {
        self.put_bytes(id, owner, Some(AT_VENDOR.to_owned()), resource, Vec::new());
    }

    /// Where the conversation of response `id` of `owner` is: here (its messages), at the
    /// vendor that stores it, or nowhere this owner can see.
    pub async fn continuation(&self, id: &str, owner: &str) -> Continuation {
        let Some(last) = self.turn(id, owner).await else {
            return Continuation::Missing;
        };
        if last.parent.as_deref() == Some(AT_VENDOR) {
            return match last.resource {
                Some(_) => Continuation::AtVendor,
                None => Continuation::Missing,
            };
        }
        match self.conversation(id, owner).await {
            Some(messages) => Continuation::Here(messages),
            None => Continuation::Missing,
        }
    }

    fn put_bytes(
        &self,
        id: String,
        owner: String,
        parent: Option<String>,
        resource: Bytes,
        turn: Vec<Message>,
    ) {
        let created_at = now_unix();
        let turn_bytes = if let Some(backend) = self.backend.clone() {
            let turn_json = serde_json::to_string(&turn).unwrap_or_else(|_| "[]".into());
            let len = turn_json.len();
            let row = StoredRow {
                id: id.clone(),
                owner: owner.clone(),
                parent: parent.clone(),
                resource: Some(String::from_utf8_lossy(&resource).into_owned()),
                turn: turn_json,
                created_at,
            };
            llmux_telemetry::spawn_tracked(async move {
                if let Err(err) = backend.put(&row).await {
                    tracing::warn!(error = %err, "could not persist a stored response");
                }
            });
            self.purge_when_due(created_at);
            len
        } else {
            let mut counter = Counter(0);
            let _ = serde_json::to_writer(&mut counter, &turn);
            counter.0
        };
        let bytes = resource.len()
            + turn_bytes
            + id.len()
            + owner.len()
            + parent.as_ref().map_or(0, String::len)
            + ENTRY_OVERHEAD;
        let stored = Stored {
            owner,
            parent,
            resource: Some(resource),
            turn,
            created_at,
            bytes,
        };
        self.lock().insert(id, Arc::new(stored), &self.bounds);
    }

    /// Removes responses past retention from the database, at most once per
    /// [`PURGE_EVERY_SECS`], in the background.
    fn purge_when_due(&self, now: i64) {
        let (Some(ttl), Some(backend)) = (self.bounds.ttl_secs, self.backend.clone()) else {
            return;
        };
        let last = self.last_purge.load(Ordering::Relaxed);
        if now - last < PURGE_EVERY_SECS
            || self
                .last_purge
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        llmux_telemetry::spawn_tracked(async move {
            match backend.purge(now.saturating_sub(ttl)).await {
                Ok(0) => {}
                Ok(purged) => {
                    tracing::info!(purged, "stored responses past responses.ttl_days removed")
                }
                Err(err) => tracing::warn!(error = %err, "could not purge old stored responses"),
            }
        });
    }

    /// The turn `id` of `owner`: from memory, else from the database. Includes deleted turns
    /// (their resource is `None`): they still belong to the conversations that continued them.
    async fn turn(&self, id: &str, owner: &str) -> Option<Arc<Stored>> {
        let not_before = self.not_before();
        let cached = self.lock().touch(id);
        if let Some(found) = cached {
            return (found.owner == owner && found.created_at >= not_before).then_some(found);
        }
        let backend = self.backend.as_ref()?;
        let row = match backend.get(id, owner, not_before).await {
            Ok(row) => row?,
            Err(err) => {
                tracing::warn!(error = %err, "could not read a stored response");
                return None;
            }
        };
        let turn: Vec<Message> = serde_json::from_str(&row.turn).ok()?;
        let resource = row.resource.map(Bytes::from);
        let bytes = resource.as_ref().map_or(0, Bytes::len)
            + row.turn.len()
            + id.len()
            + row.owner.len()
            + ENTRY_OVERHEAD;
        let stored = Arc::new(Stored {
            owner: row.owner,
            parent: row.parent,
            resource,
            turn,
            created_at: row.created_at,
            bytes,
        });
        self.lock()
            .insert(id.to_owned(), Arc::clone(&stored), &self.bounds);
        Some(stored)
    }

    /// The resource JSON of response `id`, when `owner` owns it and it was not deleted.
    pub async fn resource(&self, id: &str, owner: &str) -> Option<Bytes> {
        self.turn(id, owner).await?.resource.clone()
    }

    /// The whole conversation up to and including response `id` (every earlier turn, oldest
    /// first), when `owner` owns it, it was not deleted and every earlier turn is still kept.
    pub async fn conversation(&self, id: &str, owner: &str) -> Option<Vec<Message>> {
        let last = self.turn(id, owner).await?;
        last.resource.as_ref()?;
        let mut chain = vec![Arc::clone(&last)];
        let mut parent = last.parent.clone();
        while let Some(id) = parent {
            if chain.len() >= MAX_TURNS {
                tracing::warn!(turns = MAX_TURNS, "a conversation is too long to continue");
                return None;
            }
            let turn = self.turn(&id, owner).await?;
            parent = turn.parent.clone();
            chain.push(turn);
        }
        let total = chain.iter().map(|t| t.turn.len()).sum();
        let mut messages = Vec::with_capacity(total);
        for turn in chain.iter().rev() {
            messages.extend(turn.turn.iter().cloned());
        }
        Some(messages)
    }

    /// Deletes response `id` of `owner` from view everywhere; whether it was visible.
    pub async fn delete(&self, id: &str, owner: &str) -> bool {
        let visible = self.resource(id, owner).await.is_some();
        if visible {
            let mut inner = self.lock();
            if let Some(stored) = inner.remove(id) {
                // Kept without its resource: later turns of the conversation still need it.
                let hidden = Stored {
                    owner: stored.owner.clone(),
                    parent: stored.parent.clone(),
                    resource: None,
                    turn: stored.turn.clone(),
                    created_at: stored.created_at,
                    bytes: stored.bytes - stored.resource.as_ref().map_or(0, Bytes::len),
                };
                inner.insert(id.to_owned(), Arc::new(hidden), &self.bounds);
            }
        }
        match &self.backend {
            Some(backend) => match backend.delete(id, owner).await {
                Ok(deleted) => visible || deleted,
                Err(err) => {
                    tracing::warn!(error = %err, "could not delete a stored response");
                    visible
                }
            },
            None => visible,
        }
    }
}

#[cfg(test)]
mod tests;

//! Load shedding: at most `limits.max_in_flight` requests are served at once. Past it a
//! request is refused at once with a 503 and `Retry-After` instead of queueing, so latency and
//! memory stay bounded however hard clients push; the requests already admitted keep their
//! share of the machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Requests in flight and the limit (the limit follows reloads).
#[derive(Debug)]
pub struct Load {
    in_flight: AtomicUsize,
    limit: AtomicUsize,
}

/// One admitted request; dropping it (when the response body ends or is abandoned) frees its
/// place.
#[derive(Debug)]
pub struct InFlight(Arc<Load>);

impl Load {
    /// No request in flight, at most `limit`.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            in_flight: AtomicUsize::new(0),
            limit: AtomicUsize::new(limit),
        })
    }

    /// Changes the limit (a reload); requests already admitted keep their place.
    pub fn set_limit(&self, limit: usize) {
        self.limit.store(limit, Ordering::Relaxed);
    }

    /// Requests being served now.
    #[cfg(test)]
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// A place for one more request, or `None` when the limit is reached.
    pub fn try_enter(self: &Arc<Self>) -> Option<InFlight> {
        let limit = self.limit.load(Ordering::Relaxed);
        // One atomic add on the hot path; undone when over the limit.
        let before = self.in_flight.fetch_add(1, Ordering::AcqRel);
        if before >= limit {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        Some(InFlight(Arc::clone(self)))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_up_to_the_limit_and_frees_places_on_drop() {
        let load = Load::new(2);
        let a = load.try_enter().unwrap();
        let b = load.try_enter().unwrap();
        assert!(load.try_enter().is_none(), "a third request is shed");
        assert_eq!(load.in_flight(), 2, "a refused request holds no place");
        drop(a);
        let c = load.try_enter().unwrap();
        load.set_limit(1);
        assert!(load.try_enter().is_none());
        drop((b, c));
        assert_eq!(load.in_flight(), 0);
        assert!(load.try_enter().is_some());
    }
}

//! The routing table: every (credential, model) combination of a validated config, indexed so
//! that choosing one is O(1) whatever the table's size.
//!
//! Invariant: the table is immutable once compiled and shared by reference; choosing takes no
//! lock. Randomness is injected ([`Pick`]) so tests can seed it. No I/O.
//!
//! Entry points: [`RoutingTable::compile`], [`RoutingTable::candidates`], [`Candidates::pick`].

mod infer;
mod table;

pub use infer::infer_vendor;
pub use table::{
    Candidates, Combination, Endpoint, Needs, Query, RouteError, RoutingTable, Target,
};

/// A source of uniform random indexes.
pub trait Pick {
    /// A uniformly random index in `0..len` (`len > 0`).
    fn index(&mut self, len: usize) -> usize;
}

impl Pick for fastrand::Rng {
    fn index(&mut self, len: usize) -> usize {
        self.usize(..len)
    }
}

/// Thread-local randomness: no lock, no shared state between requests.
#[derive(Debug, Default, Clone, Copy)]
pub struct ThreadRng;

impl Pick for ThreadRng {
    fn index(&mut self, len: usize) -> usize {
        fastrand::usize(..len)
    }
}

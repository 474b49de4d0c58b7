//! The routing table: every (credential, model) combination of a validated config, indexed so
//! that finding the candidates of a request is O(1) whatever the table's size; the routing
//! policies that choose among them; and the fallback chains between groups.
//!
//! Invariant: the table is immutable once compiled and shared by reference; choosing takes no
//! lock (live statistics are atomics, one entry per combination). Randomness is injected
//! ([`Pick`]) so tests can seed it. No I/O, no async runtime.
//!
//! Entry points: [`RoutingTable::compile`], [`RoutingTable::candidates`],
//! [`RoutingTable::policy_for`], [`choose`] (with a [`StatsTable`] built by [`StatsTable::new`]),
//! [`RoutingTable::fallbacks`] and [`RoutingTable::next_fallback`], and [`Candidates::pick`] for
//! a plain uniform choice.

#![warn(missing_docs)]

mod fallback;
mod infer;
mod policy;
mod stats;
mod table;

pub use infer::infer_vendor;

/// The vendor a `?vendor=` or `provider` value names: `google` is another name for `gemini`
/// (the Open Responses gateway's provider names are `openai`, `anthropic` and `google`).
pub fn vendor_alias(vendor: &str) -> &str {
    if vendor.eq_ignore_ascii_case("google") {
        "gemini"
    } else {
        vendor
    }
}
pub use llmux_config::RoutingPolicy;
pub use llmux_protocol::error::ErrorClass;
pub use policy::{Choice, Choose, Tokens, choose};
pub use stats::{InFlightGuard, Stats, StatsTable};
pub use table::{
    Candidates, Combination, Endpoint, Needs, Query, RouteError, RoutingTable, Target,
};

/// A source of uniform random indexes.
pub trait Pick {
    /// A uniformly random index in `0..len` (`len > 0`).
    fn index(&mut self, len: usize) -> usize;

    /// A uniformly random number in `[0, 1)`, for weighted choices. The default draws it from
    /// [`Pick::index`] with 2^24 steps, finer than any configured weight ratio needs.
    fn unit(&mut self) -> f64 {
        const STEPS: usize = 1 << 24;
        self.index(STEPS) as f64 / STEPS as f64
    }
}

impl Pick for fastrand::Rng {
    fn index(&mut self, len: usize) -> usize {
        self.usize(..len)
    }

    fn unit(&mut self) -> f64 {
        self.f64()
    }
}

/// Thread-local randomness: no lock, no shared state between requests.
#[derive(Debug, Default, Clone, Copy)]
pub struct ThreadRng;

impl Pick for ThreadRng {
    fn index(&mut self, len: usize) -> usize {
        fastrand::usize(..len)
    }

    fn unit(&mut self) -> f64 {
        fastrand::f64()
    }
}

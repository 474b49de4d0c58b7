//! Routing policies: which available candidate serves the next attempt of a request.
//!
//! [`choose`] is pure: the caller says which candidates may take a request now (breakers,
//! cooldowns, vendor quotas, allowed vendors), which were already tried, and supplies the live
//! statistics and the randomness. Every policy chooses among available candidates not tried
//! yet and, only when none is left, among the tried ones (retrying a combination when there is
//! no other). `even`, `latency` and `least_busy` are O(1) when most candidates are available
//! (a few random probes); `weighted`, `cost` and `priority` scan the candidates once.

use std::cmp::Ordering;

use llmux_config::RoutingPolicy;

use crate::{Candidates, Pick, StatsTable};

/// Random probes for an available candidate before scanning the list (as the attempt loop
/// always did).
const RANDOM_PICKS: usize = 8;

/// Under `latency`, one choice in this many is uniform among the available candidates, so a
/// slow combination keeps a floor of traffic (2% of it with two candidates) and its recovery is
/// noticed. Without it, a combination that was slow once would starve: its average only
/// changes when it serves.
const LATENCY_EXPLORE_ONE_IN: usize = 25;

/// Tokens a request is expected to use, for the `cost` policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    /// Estimated input tokens.
    pub input: u64,
    /// Expected output tokens (`max_tokens`, or a default).
    pub output: u64,
}

/// What [`choose`] needs besides the candidates, their availability and randomness.
#[derive(Debug, Clone, Copy)]
pub struct Choose<'a> {
    /// The group's policy ([`RoutingTable::policy_for`](crate::RoutingTable::policy_for)).
    pub policy: RoutingPolicy,
    /// Positions (in the candidate list) already tried for this request.
    pub tried: &'a [usize],
    /// Live statistics, aligned with the routing table the candidates come from.
    pub stats: &'a StatsTable,
    /// The request's estimated tokens (only `cost` reads them).
    pub tokens: Tokens,
}

/// The candidate chosen for an attempt, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    /// Its position in the candidate list ([`Candidates::get`]).
    pub position: usize,
    /// A short reason for logs and the `x-llmux-policy` header: `even`, `weighted`,
    /// `latency:p2c`, `latency:explore`, `least_busy`, `cost`, or `priority:tier0` …
    /// `priority:tier9` and `priority:tier10+`.
    pub reason: &'static str,
}

/// Chooses the candidate for the next attempt under `how.policy`, or `None` when no candidate
/// is available. `available(position)` says whether a candidate may take the request now; it
/// is called at most a few times per candidate.
///
/// - `even`: uniform (the original router's guarantee; the attempt loop's former `pick`).
/// - `weighted`: probability proportional to `models[].weight`.
/// - `latency`: the faster of two random candidates by decaying average TTFB (one without
///   samples counts as fastest, so it is explored); one choice in 25 is uniform instead.
/// - `least_busy`: the one with fewer requests in flight of two random candidates, ties random.
/// - `cost`: the cheapest for `how.tokens` by the pricing table (unknown prices rank last;
///   with no token estimate, input + output price per million), ties uniform.
/// - `priority`: uniform among the lowest `models[].tier` that has a candidate.
pub fn choose(
    candidates: &Candidates<'_>,
    how: &Choose<'_>,
    available: impl Fn(usize) -> bool,
    rng: &mut impl Pick,
) -> Option<Choice> {
    let len = candidates.len();
    if len == 0 {
        return None;
    }
    let untried = |p: usize| !how.tried.contains(&p) && available(p);
    let choice = |position, reason| Choice { position, reason };
    match how.policy {
        RoutingPolicy::Even => even(len, &untried, &available, rng).map(|p| choice(p, "even")),
        RoutingPolicy::Weighted => best(len, how.tried, &available, rng, |p| {
            Key::Weight(candidates.model(p).map_or(1.0, |m| m.weight.get()))
        })
        .map(|p| choice(p, "weighted")),
        RoutingPolicy::Latency => {
            let (first, second) = two(len, &untried, &available, rng)?;
            let Some(second) = second else {
                return Some(choice(first, "latency:p2c"));
            };
            // `first` is uniform among the pool, so exploring is simply keeping it.
            if rng.index(LATENCY_EXPLORE_ONE_IN) == 0 {
                return Some(choice(first, "latency:explore"));
            }
            // No sample yet counts as fastest (0), so a new combination gets tried.
            let ttfb = |p| {
                candidates
                    .stats(how.stats, p)
                    .and_then(|s| s.ttfb_us())
                    .unwrap_or(0)
            };
            let position = lower(first, ttfb(first), second, ttfb(second), rng);
            Some(choice(position, "latency:p2c"))
        }
        RoutingPolicy::LeastBusy => {
            let (first, second) = two(len, &untried, &available, rng)?;
            let Some(second) = second else {
                return Some(choice(first, "least_busy"));
            };
            let busy = |p| candidates.stats(how.stats, p).map_or(0, |s| s.in_flight());
            let position = lower(first, busy(first), second, busy(second), rng);
            Some(choice(position, "least_busy"))
        }
        RoutingPolicy::Cost => {
            let tokens = if how.tokens == Tokens::default() {
                // Nothing estimated: compare list prices.
                Tokens {
                    input: 1,
                    output: 1,
                }
            } else {
                how.tokens
            };
            best(len, how.tried, &available, rng, |p| {
                Key::Cost(candidates.price(p).map_or(f64::INFINITY, |price| {
                    tokens.input as f64 * price.input_per_million
                        + tokens.output as f64 * price.output_per_million
                }))
            })
            .map(|p| choice(p, "cost"))
        }
        RoutingPolicy::Priority => {
            let tier = |p| candidates.model(p).map_or(0, |m| m.tier);
            best(len, how.tried, &available, rng, |p| Key::Tier(tier(p)))
                .map(|p| choice(p, priority_reason(tier(p))))
        }
    }
}

/// The attempt loop's original choice, kept exactly: random probes for an available untried
/// candidate, then a scan from a random offset for one, then for any available one.
fn even(
    len: usize,
    untried: &dyn Fn(usize) -> bool,
    available: &dyn Fn(usize) -> bool,
    rng: &mut impl Pick,
) -> Option<usize> {
    for _ in 0..RANDOM_PICKS.min(len * 2) {
        let position = rng.index(len);
        if untried(position) {
            return Some(position);
        }
    }
    let offset = rng.index(len);
    for usable in [untried, available] {
        if let Some(position) = (0..len)
            .map(|step| (offset + step) % len)
            .find(|&p| usable(p))
        {
            return Some(position);
        }
    }
    None
}

/// A random position that satisfies `ok`: a few random probes, then a scan from a random
/// offset. Uniform whenever a probe succeeds, which is the common case.
fn sample(len: usize, ok: &dyn Fn(usize) -> bool, rng: &mut impl Pick) -> Option<usize> {
    for _ in 0..RANDOM_PICKS.min(len * 2) {
        let position = rng.index(len);
        if ok(position) {
            return Some(position);
        }
    }
    let offset = rng.index(len);
    (0..len).map(|step| (offset + step) % len).find(|&p| ok(p))
}

/// Two distinct random candidates of the pool (untried available ones, else any available);
/// the second is `None` when the pool has only one.
fn two(
    len: usize,
    untried: &dyn Fn(usize) -> bool,
    available: &dyn Fn(usize) -> bool,
    rng: &mut impl Pick,
) -> Option<(usize, Option<usize>)> {
    let (first, pool): (usize, &dyn Fn(usize) -> bool) = match sample(len, untried, rng) {
        Some(first) => (first, untried),
        None => (sample(len, available, rng)?, available),
    };
    let second = sample(len, &|p| p != first && pool(p), rng);
    Some((first, second))
}

/// Of two candidates, the one with the lower value; a tie is a coin toss.
fn lower<T: Ord>(a: usize, a_value: T, b: usize, b_value: T, rng: &mut impl Pick) -> usize {
    match a_value.cmp(&b_value) {
        Ordering::Less => a,
        Ordering::Greater => b,
        Ordering::Equal => [a, b][rng.index(2)],
    }
}

/// What [`best`] ranks candidates by.
#[derive(Debug, Clone, Copy)]
enum Key {
    /// Drawn with probability proportional to the weight.
    Weight(f64),
    /// Lowest wins; equal costs tie.
    Cost(f64),
    /// Lowest wins.
    Tier(u32),
}

/// One pass over the candidates, for the untried pool and the available pool at once (each
/// candidate's availability is asked once): the weighted draw, or the lowest key with ties
/// drawn uniformly (reservoir sampling). The untried pool wins when it is not empty.
fn best(
    len: usize,
    tried: &[usize],
    available: &dyn Fn(usize) -> bool,
    rng: &mut impl Pick,
    key: impl Fn(usize) -> Key,
) -> Option<usize> {
    let mut fresh = Reservoir::default();
    let mut any = Reservoir::default();
    for position in 0..len {
        if !available(position) {
            continue;
        }
        let key = key(position);
        any.offer(position, key, rng);
        if !tried.contains(&position) {
            fresh.offer(position, key, rng);
        }
    }
    fresh.chosen.or(any.chosen)
}

/// The state of one [`best`] pass.
#[derive(Debug, Default)]
struct Reservoir {
    chosen: Option<usize>,
    key: Option<Key>,
    /// Total weight so far (weights), or how many candidates tie for the best key.
    mass: f64,
}

impl Reservoir {
    fn offer(&mut self, position: usize, key: Key, rng: &mut impl Pick) {
        match (key, self.key) {
            // Weighted reservoir sampling (Chao): keep the newcomer with probability w / total.
            (Key::Weight(weight), _) => {
                self.mass += weight;
                if rng.unit() * self.mass < weight {
                    self.chosen = Some(position);
                }
                self.key = Some(key);
            }
            (_, None) => self.restart(position, key),
            (key, Some(best)) => match compare(key, best) {
                Ordering::Less => self.restart(position, key),
                Ordering::Equal => {
                    // The k-th tie replaces the choice with probability 1/k: uniform over ties.
                    self.mass += 1.0;
                    if rng.unit() * self.mass < 1.0 {
                        self.chosen = Some(position);
                    }
                }
                Ordering::Greater => {}
            },
        }
    }

    fn restart(&mut self, position: usize, key: Key) {
        self.chosen = Some(position);
        self.key = Some(key);
        self.mass = 1.0;
    }
}

fn compare(a: Key, b: Key) -> Ordering {
    match (a, b) {
        (Key::Tier(a), Key::Tier(b)) => a.cmp(&b),
        (Key::Cost(a), Key::Cost(b)) => {
            // The same price computed twice is equal; a relative tolerance absorbs rounding
            // between prices that are meant to be equal. Unknown prices (infinite) tie.
            let close = a.is_finite() && b.is_finite() && (a - b).abs() <= 1e-9 * a.max(b);
            if a == b || close {
                Ordering::Equal
            } else if a < b {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        _ => Ordering::Equal,
    }
}

/// A static reason per tier, for the `x-llmux-policy` header.
fn priority_reason(tier: u32) -> &'static str {
    const REASONS: [&str; 10] = [
        "priority:tier0",
        "priority:tier1",
        "priority:tier2",
        "priority:tier3",
        "priority:tier4",
        "priority:tier5",
        "priority:tier6",
        "priority:tier7",
        "priority:tier8",
        "priority:tier9",
    ];
    usize::try_from(tier)
        .ok()
        .and_then(|t| REASONS.get(t))
        .copied()
        .unwrap_or("priority:tier10+")
}

#[cfg(test)]
mod tests;

//! Statistical tests of every policy with a seeded RNG, and the guarantees all policies share:
//! never an unavailable candidate, untried candidates first.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use llmux_config::{Format, RoutingPolicy, from_str};

use super::*;
use crate::{Endpoint, Needs, Query, RoutingTable, Stats};

const DRAWS: usize = 10_000;

const ALL: [RoutingPolicy; 6] = [
    RoutingPolicy::Even,
    RoutingPolicy::Weighted,
    RoutingPolicy::Latency,
    RoutingPolicy::LeastBusy,
    RoutingPolicy::Cost,
    RoutingPolicy::Priority,
];

fn table(yaml: &str) -> RoutingTable {
    let config = from_str(yaml, Format::Yaml, &|_| None).expect("test config is valid");
    RoutingTable::compile(&config)
}

fn query(model: &str) -> Query<'_> {
    Query {
        endpoint: Endpoint::Chat,
        model: Some(model),
        vendor: None,
        needs: Needs::default(),
    }
}

/// Group `g`: gpt-4o (weight 3, tier 1), gpt-4o-mini (weight 1, tier 0) on one openai key,
/// gemini-2.0-flash (weight 1, tier 2) on two gemini keys: four combinations.
const GROUP: &str = r#"
credentials:
  - { platform: openai, value: sk-a }
  - { platform: gemini, value: g-a }
  - { platform: gemini, value: g-b }
models:
  - { vendor: openai, model: gpt-4o, name: g, weight: 3, tier: 1 }
  - { vendor: openai, model: gpt-4o-mini, name: g, tier: 0 }
  - { vendor: gemini, model: gemini-2.0-flash, name: g, tier: 2 }
  - { vendor: gemini, model: my-finetune, name: unpriced }
  - { vendor: openai, model: gpt-4.1, name: pair }
  - { vendor: gemini, model: gemini-2.5-pro, name: pair }
"#;

/// Counts choices by upstream model and credential over `draws`.
fn tally(
    candidates: &Candidates<'_>,
    how: &Choose<'_>,
    available: impl Fn(usize) -> bool,
    seed: u64,
) -> HashMap<String, usize> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut counts = HashMap::new();
    for _ in 0..DRAWS {
        let choice = choose(candidates, how, &available, &mut rng).expect("a candidate");
        let target = candidates.get(choice.position).unwrap();
        *counts
            .entry(format!(
                "{}/{}",
                target.credential.name, target.upstream_model
            ))
            .or_default() += 1;
    }
    counts
}

fn share(counts: &HashMap<String, usize>, key: &str) -> f64 {
    counts.get(key).copied().unwrap_or(0) as f64 / DRAWS as f64
}

fn how<'a>(policy: RoutingPolicy, stats: &'a StatsTable) -> Choose<'a> {
    Choose {
        policy,
        tried: &[],
        stats,
        tokens: Tokens::default(),
    }
}

fn position(candidates: &Candidates<'_>, label: &str) -> usize {
    (0..candidates.len())
        .find(|&i| {
            let t = candidates.get(i).unwrap();
            format!("{}/{}", t.credential.name, t.upstream_model) == label
        })
        .unwrap_or_else(|| panic!("no candidate {label}"))
}

/// The attempt loop's `pick` before policies existed, copied verbatim apart from the health
/// checks (folded into `available`): `even` must make the same choices from the same RNG.
fn former_pick(
    len: usize,
    tried: &[usize],
    available: &dyn Fn(usize) -> bool,
    rng: &mut fastrand::Rng,
) -> Option<usize> {
    let usable = |position: usize, allow_tried: bool| {
        if !allow_tried && tried.contains(&position) {
            return None;
        }
        available(position).then_some(position)
    };
    for _ in 0..RANDOM_PICKS.min(len * 2) {
        if let Some(found) = usable(rng.usize(..len), false) {
            return Some(found);
        }
    }
    let offset = rng.usize(..len);
    for allow_tried in [false, true] {
        for step in 0..len {
            if let Some(found) = usable((offset + step) % len, allow_tried) {
                return Some(found);
            }
        }
    }
    None
}

#[test]
fn even_makes_exactly_the_former_choices() {
    let table = table(GROUP);
    let candidates = table.candidates(&query("g")).unwrap();
    let stats = StatsTable::new(&table);
    let len = candidates.len();
    let mut masks = fastrand::Rng::with_seed(11);
    for seed in 0..2_000 {
        let available: Vec<bool> = (0..len).map(|_| masks.bool()).collect();
        let tried: Vec<usize> = (0..len).filter(|_| masks.u8(..4) == 0).collect();
        let is_available = |p: usize| available[p];
        let mut ours = fastrand::Rng::with_seed(seed);
        let mut theirs = fastrand::Rng::with_seed(seed);
        let mut how = how(RoutingPolicy::Even, &stats);
        how.tried = &tried;
        assert_eq!(
            choose(&candidates, &how, is_available, &mut ours).map(|c| c.position),
            former_pick(len, &tried, &is_available, &mut theirs),
            "seed {seed}, available {available:?}, tried {tried:?}"
        );
    }
}

#[test]
fn even_is_uniform() {
    let table = table(GROUP);
    let candidates = table.candidates(&query("g")).unwrap();
    let stats = StatsTable::new(&table);
    let counts = tally(&candidates, &how(RoutingPolicy::Even, &stats), |_| true, 1);
    assert_eq!(counts.len(), 4);
    for (label, &count) in &counts {
        let share = count as f64 / DRAWS as f64;
        assert!((share - 0.25).abs() < 0.02, "{label}: {share}");
    }
}

#[test]
fn weighted_follows_the_weights() {
    let table = table(GROUP);
    let candidates = table.candidates(&query("g")).unwrap();
    let stats = StatsTable::new(&table);
    // Weights 3 : 1 : 1 : 1 (gemini-2.0-flash has two combinations of weight 1).
    let counts = tally(
        &candidates,
        &how(RoutingPolicy::Weighted, &stats),
        |_| true,
        2,
    );
    assert!(
        (share(&counts, "openai-1/gpt-4o") - 0.5).abs() < 0.02,
        "{counts:?}"
    );
    for other in [
        "openai-1/gpt-4o-mini",
        "gemini-1/gemini-2.0-flash",
        "gemini-2/gemini-2.0-flash",
    ] {
        assert!(
            (share(&counts, other) - 1.0 / 6.0).abs() < 0.02,
            "{counts:?}"
        );
    }
    // 3 : 1 between the two openai combinations when the gemini ones are unavailable.
    let openai = |p: usize| candidates.get(p).unwrap().credential.vendor == "openai";
    let counts = tally(
        &candidates,
        &how(RoutingPolicy::Weighted, &stats),
        openai,
        3,
    );
    assert!(
        (share(&counts, "openai-1/gpt-4o") - 0.75).abs() < 0.02,
        "{counts:?}"
    );
    assert!(
        (share(&counts, "openai-1/gpt-4o-mini") - 0.25).abs() < 0.02,
        "{counts:?}"
    );
}

#[test]
fn latency_sends_most_traffic_to_the_faster_and_keeps_a_floor_for_the_slower() {
    let table = table(GROUP);
    let candidates = table.candidates(&query("pair")).unwrap();
    let stats = StatsTable::new(&table);
    let fast = position(&candidates, "openai-1/gpt-4.1");
    let slow = position(&candidates, "gemini-1/gemini-2.5-pro");
    for _ in 0..10 {
        candidates
            .stats(&stats, fast)
            .unwrap()
            .record_ttfb(Duration::from_millis(40));
        candidates
            .stats(&stats, slow)
            .unwrap()
            .record_ttfb(Duration::from_millis(200));
    }
    // Three candidates: the slow one has two combinations.
    assert_eq!(candidates.len(), 3);
    let other = position(&candidates, "gemini-2/gemini-2.5-pro");
    candidates
        .stats(&stats, other)
        .unwrap()
        .record_ttfb(Duration::from_millis(200));
    let counts = tally(
        &candidates,
        &how(RoutingPolicy::Latency, &stats),
        |_| true,
        4,
    );
    // p2c picks the fast one whenever it is drawn (2 of 3 pairs).
    assert!(share(&counts, "openai-1/gpt-4.1") >= 0.6, "{counts:?}");

    // The 5x rule on two combinations.
    let two = |p: usize| p != other;
    let counts = tally(&candidates, &how(RoutingPolicy::Latency, &stats), two, 5);
    let fast_share = share(&counts, "openai-1/gpt-4.1");
    let slow_share = share(&counts, "gemini-1/gemini-2.5-pro");
    assert!(fast_share >= 0.8, "{counts:?}");
    assert!(slow_share >= 0.01, "{counts:?}");
}

#[test]
fn latency_explores_a_combination_without_samples() {
    let table = table(GROUP);
    let candidates = table.candidates(&query("pair")).unwrap();
    let stats = StatsTable::new(&table);
    let measured = position(&candidates, "openai-1/gpt-4.1");
    candidates
        .stats(&stats, measured)
        .unwrap()
        .record_ttfb(Duration::from_millis(5));
    let only_two = |p: usize| p != position(&candidates, "gemini-2/gemini-2.5-pro");
    let counts = tally(
        &candidates,
        &how(RoutingPolicy::Latency, &stats),
        only_two,
        6,
    );
    assert!(
        share(&counts, "gemini-1/gemini-2.5-pro") >= 0.9,
        "{counts:?}"
    );
    let mut rng = fastrand::Rng::with_seed(6);
    let reasons: std::collections::BTreeSet<&str> = (0..1000)
        .map(|_| {
            choose(
                &candidates,
                &how(RoutingPolicy::Latency, &stats),
                only_two,
                &mut rng,
            )
            .unwrap()
            .reason
        })
        .collect();
    assert_eq!(
        reasons.into_iter().collect::<Vec<_>>(),
        ["latency:explore", "latency:p2c"]
    );
}

#[test]
fn least_busy_prefers_idle_combinations() {
    let table = table(GROUP);
    let candidates = table.candidates(&query("pair")).unwrap();
    let stats = StatsTable::new(&table);
    let busy = position(&candidates, "openai-1/gpt-4.1");
    let busier = position(&candidates, "gemini-2/gemini-2.5-pro");
    let entry = |p| {
        Arc::clone(
            stats
                .combination(candidates.get(p).unwrap().combination.unwrap())
                .unwrap(),
        )
    };
    let guards: Vec<_> = (0..3)
        .map(|_| entry(busy).enter())
        .chain((0..5).map(|_| entry(busier).enter()))
        .collect();
    assert_eq!(entry(busy).in_flight(), 3);
    let counts = tally(
        &candidates,
        &how(RoutingPolicy::LeastBusy, &stats),
        |_| true,
        7,
    );
    // The idle one wins every pair it is in (2 of 3); the busier one never wins.
    assert!(
        share(&counts, "gemini-1/gemini-2.5-pro") >= 0.6,
        "{counts:?}"
    );
    assert_eq!(share(&counts, "gemini-2/gemini-2.5-pro"), 0.0, "{counts:?}");
    drop(guards);
    assert_eq!(entry(busy).in_flight(), 0);
    assert_eq!(entry(busier).in_flight(), 0);
    // All idle: ties are random, so the spread is even.
    let counts = tally(
        &candidates,
        &how(RoutingPolicy::LeastBusy, &stats),
        |_| true,
        8,
    );
    for &count in counts.values() {
        assert!(
            (count as f64 / DRAWS as f64 - 1.0 / 3.0).abs() < 0.03,
            "{counts:?}"
        );
    }
}

#[test]
fn cost_picks_the_cheapest_and_shares_ties_evenly() {
    let table = table(GROUP);
    let candidates = table.candidates(&query("g")).unwrap();
    let stats = StatsTable::new(&table);
    let mut cost = how(RoutingPolicy::Cost, &stats);
    cost.tokens = Tokens {
        input: 1_000,
        output: 500,
    };
    // gemini-2.0-flash (0.10/0.40) is cheaper than gpt-4o-mini (0.15/0.60) and gpt-4o, and
    // two gemini keys serve it: a tie, shared evenly.
    let counts = tally(&candidates, &cost, |_| true, 9);
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!((share(&counts, "gemini-1/gemini-2.0-flash") - 0.5).abs() < 0.02);
    assert!((share(&counts, "gemini-2/gemini-2.0-flash") - 0.5).abs() < 0.02);
    // Without the gemini keys, the next cheapest.
    let openai = |p: usize| candidates.get(p).unwrap().credential.vendor == "openai";
    let counts = tally(&candidates, &cost, openai, 10);
    assert_eq!(share(&counts, "openai-1/gpt-4o-mini"), 1.0, "{counts:?}");
    let mut rng = fastrand::Rng::with_seed(1);
    assert_eq!(
        choose(&candidates, &cost, |_| true, &mut rng)
            .unwrap()
            .reason,
        "cost"
    );
}

#[test]
fn cost_weighs_input_and_output_prices_by_the_estimate() {
    let table = table(
        r#"
credentials:
  - { platform: openai, value: sk-a }
models:
  - { vendor: openai, model: reader, name: g }
  - { vendor: openai, model: writer, name: g }
  - { vendor: openai, model: mystery, name: g }
pricing:
  reader: { input: 0.1, output: 10.0 }
  writer: { input: 5.0, output: 0.5 }
"#,
    );
    let candidates = table.candidates(&query("g")).unwrap();
    let stats = StatsTable::new(&table);
    let mut rng = fastrand::Rng::with_seed(3);
    let mut cost = how(RoutingPolicy::Cost, &stats);
    let mut cheapest = |tokens: Tokens| {
        cost.tokens = tokens;
        let p = choose(&candidates, &cost, |_| true, &mut rng)
            .unwrap()
            .position;
        candidates.get(p).unwrap().upstream_model
    };
    assert_eq!(
        cheapest(Tokens {
            input: 10_000,
            output: 10
        }),
        "reader"
    );
    assert_eq!(
        cheapest(Tokens {
            input: 10,
            output: 10_000
        }),
        "writer"
    );
    // No estimate: list prices (in + out) compare, 5.5 < 10.1.
    assert_eq!(cheapest(Tokens::default()), "writer");
    // A model without a price ranks after every priced one, but still serves alone.
    let only_mystery = |p: usize| candidates.get(p).unwrap().upstream_model == "mystery";
    let p = choose(&candidates, &cost, only_mystery, &mut rng)
        .unwrap()
        .position;
    assert_eq!(candidates.get(p).unwrap().upstream_model, "mystery");
}

#[test]
fn priority_serves_the_lowest_available_tier() {
    let table = table(GROUP);
    let candidates = table.candidates(&query("g")).unwrap();
    let stats = StatsTable::new(&table);
    let priority = how(RoutingPolicy::Priority, &stats);
    let counts = tally(&candidates, &priority, |_| true, 12);
    assert_eq!(share(&counts, "openai-1/gpt-4o-mini"), 1.0, "{counts:?}");
    let tier0 = position(&candidates, "openai-1/gpt-4o-mini");
    let counts = tally(&candidates, &priority, |p| p != tier0, 13);
    assert_eq!(share(&counts, "openai-1/gpt-4o"), 1.0, "{counts:?}");
    // Tiers 0 and 1 out: even across tier 2's two combinations.
    let tier1 = position(&candidates, "openai-1/gpt-4o");
    let counts = tally(&candidates, &priority, |p| p != tier0 && p != tier1, 14);
    assert!((share(&counts, "gemini-1/gemini-2.0-flash") - 0.5).abs() < 0.02);
    let mut rng = fastrand::Rng::with_seed(1);
    let reason = |available: &dyn Fn(usize) -> bool, rng: &mut fastrand::Rng| {
        choose(&candidates, &priority, available, rng)
            .unwrap()
            .reason
    };
    assert_eq!(reason(&|_| true, &mut rng), "priority:tier0");
    assert_eq!(reason(&|p| p != tier0, &mut rng), "priority:tier1");
    assert_eq!(
        reason(&|p| p != tier0 && p != tier1, &mut rng),
        "priority:tier2"
    );
    // A tried tier-0 combination gives way to the next tier before it is retried.
    let tried = [tier0];
    let mut retry = priority;
    retry.tried = &tried;
    let p = choose(&candidates, &retry, |_| true, &mut rng)
        .unwrap()
        .position;
    assert_eq!(p, tier1);
    assert_eq!(priority_reason(10), "priority:tier10+");
    assert_eq!(priority_reason(u32::MAX), "priority:tier10+");
}

#[test]
fn no_policy_ever_chooses_an_unavailable_candidate() {
    let table = table(GROUP);
    let candidates = table.candidates(&query("g")).unwrap();
    let stats = StatsTable::new(&table);
    let len = candidates.len();
    let mut rng = fastrand::Rng::with_seed(21);
    for policy in ALL {
        for _ in 0..2_000 {
            let available: Vec<bool> = (0..len).map(|_| rng.u8(..3) == 0).collect();
            let tried: Vec<usize> = (0..len).filter(|_| rng.bool()).collect();
            let mut how = how(policy, &stats);
            how.tried = &tried;
            match choose(&candidates, &how, |p| available[p], &mut rng) {
                Some(choice) => assert!(available[choice.position], "{policy}: {choice:?}"),
                None => assert!(available.iter().all(|a| !a), "{policy}: {available:?}"),
            }
        }
        assert_eq!(
            choose(&candidates, &how(policy, &stats), |_| false, &mut rng),
            None
        );
    }
}

#[test]
fn every_policy_prefers_untried_candidates_then_retries_tried_ones() {
    let table = table(GROUP);
    let candidates = table.candidates(&query("g")).unwrap();
    let stats = StatsTable::new(&table);
    let len = candidates.len();
    let mut rng = fastrand::Rng::with_seed(22);
    for policy in ALL {
        for last in 0..len {
            let tried: Vec<usize> = (0..len).filter(|&p| p != last).collect();
            let mut how = how(policy, &stats);
            how.tried = &tried;
            for _ in 0..50 {
                let choice = choose(&candidates, &how, |_| true, &mut rng).unwrap();
                assert_eq!(choice.position, last, "{policy}");
            }
            // `last` unavailable: a tried one is retried rather than nothing.
            let choice = choose(&candidates, &how, |p| p != last, &mut rng).unwrap();
            assert_ne!(choice.position, last, "{policy}");
        }
    }
}

#[test]
fn policies_work_on_models_passed_through() {
    let table = table(
        r#"
credentials:
  - { platform: openai, value: sk-a }
  - { platform: openai, value: sk-b }
models:
  - { vendor: openai, model: gpt-4o }
routing: { unknown_model: infer }
"#,
    );
    let candidates = table.candidates(&query("gpt-5-nano")).unwrap();
    assert!(matches!(candidates, Candidates::PassThrough { .. }));
    let stats = StatsTable::new(&table);
    let busy = Arc::clone(stats.credential(0).unwrap());
    let _guard = busy.enter();
    let target = candidates.get(0).unwrap();
    assert!(Arc::ptr_eq(stats.of(&target).unwrap(), &busy));
    let counts = tally(
        &candidates,
        &how(RoutingPolicy::LeastBusy, &stats),
        |_| true,
        23,
    );
    assert_eq!(share(&counts, "openai-2/gpt-5-nano"), 1.0, "{counts:?}");
    for policy in ALL {
        let counts = tally(&candidates, &how(policy, &stats), |p| p == 0, 24);
        assert_eq!(share(&counts, "openai-1/gpt-5-nano"), 1.0, "{policy}");
    }
}

#[test]
fn ttfb_is_a_decaying_average() {
    let stats = Stats::default();
    assert_eq!(stats.ttfb_us(), None);
    stats.record_ttfb(Duration::from_millis(100));
    assert_eq!(stats.ttfb(), Some(Duration::from_millis(100)));
    stats.record_ttfb(Duration::from_millis(200));
    // 100 + (200 - 100) * 0.2
    assert_eq!(stats.ttfb_us(), Some(120_000));
    for _ in 0..40 {
        stats.record_ttfb(Duration::from_millis(10));
    }
    let settled = stats.ttfb_us().unwrap();
    assert!((10_000..10_100).contains(&settled), "{settled}");
    // A zero sample still counts as a sample; a huge one saturates.
    let fresh = Stats::default();
    fresh.record_ttfb(Duration::ZERO);
    assert_eq!(fresh.ttfb_us(), Some(1));
    fresh.record_ttfb(Duration::MAX);
    assert!(fresh.ttfb_us().unwrap() > 1);
}

#[test]
fn concurrent_updates_are_all_counted() {
    let stats = Arc::new(Stats::default());
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let stats = Arc::clone(&stats);
            scope.spawn(move || {
                for _ in 0..1_000 {
                    let guard = stats.enter();
                    guard.stats().record_ttfb(Duration::from_millis(50));
                }
            });
        }
    });
    assert_eq!(stats.in_flight(), 0);
    assert_eq!(stats.ttfb(), Some(Duration::from_millis(50)));
}

#[test]
fn stats_are_carried_across_a_reload_by_identity() {
    let before = table(GROUP);
    let stats = StatsTable::new(&before);
    let old = Arc::clone(stats.combination(0).unwrap());
    old.record_ttfb(Duration::from_millis(7));
    // The same config with a model added at the front: indexes move, identities stay.
    let after = table(&GROUP.replace(
        "models:\n",
        "models:\n  - { vendor: openai, model: o3, name: g }\n",
    ));
    let carried = StatsTable::carried(&after, &before, &stats);
    let moved = after
        .combinations()
        .iter()
        .position(|c| {
            c.credential == before.combinations()[0].credential
                && c.model.model == before.combinations()[0].model.model
        })
        .unwrap();
    assert_ne!(moved, 0);
    assert!(Arc::ptr_eq(carried.combination(moved).unwrap(), &old));
    assert_eq!(carried.combination(0).unwrap().ttfb_us(), None);
    assert!(Arc::ptr_eq(
        carried.credential(0).unwrap(),
        stats.credential(0).unwrap()
    ));
}

#[test]
fn policy_for_reads_the_group_overrides() {
    let table = table(&format!(
        "{GROUP}routing: {{policy: cost, groups: {{pair: {{policy: latency}}}}}}\n"
    ));
    assert_eq!(table.policy_for(Some("pair")), RoutingPolicy::Latency);
    assert_eq!(table.policy_for(Some("g")), RoutingPolicy::Cost);
    assert_eq!(table.policy_for(None), RoutingPolicy::Cost);
}

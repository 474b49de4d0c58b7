//! `pricing:`: cache and reasoning rates, their defaults, validation, and the cost formula.

use llmux_protocol::neutral::Usage;

use super::{MINIMAL, yaml_errors, yaml_ok};
use crate::Price;

fn priced(entries: &str) -> crate::Pricing {
    yaml_ok(&format!("{MINIMAL}pricing:\n{entries}")).pricing
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

#[test]
fn cost_prices_each_kind_of_token_at_its_own_rate() {
    let price = Price {
        input_per_million: 2.0,
        output_per_million: 8.0,
        cache_read_per_million: 0.5,
        cache_write_per_million: 2.5,
        reasoning_per_million: 16.0,
    };
    let usage = Usage {
        input_tokens: 1_000,
        output_tokens: 300,
        cached_input_tokens: Some(600),
        cache_creation_input_tokens: Some(100),
        reasoning_tokens: Some(200),
    };
    // 300 uncached × 2 + 600 reads × 0.5 + 100 writes × 2.5 + 100 plain output × 8 + 200 × 16.
    let want = (300.0 * 2.0 + 600.0 * 0.5 + 100.0 * 2.5 + 100.0 * 8.0 + 200.0 * 16.0) / 1e6;
    assert!(close(price.cost(&usage), want), "{}", price.cost(&usage));
}

#[test]
fn without_details_cost_is_input_and_output_at_list_price() {
    let price = Price::flat(2.0, 8.0);
    let usage = Usage {
        input_tokens: 1_000,
        output_tokens: 300,
        ..Usage::default()
    };
    assert!(close(price.cost(&usage), (2_000.0 + 2_400.0) / 1e6));
}

#[test]
fn inconsistent_counts_never_go_negative() {
    // A vendor reporting more cached than input tokens: the uncached part is zero, not negative.
    let usage = Usage {
        input_tokens: 10,
        output_tokens: 5,
        cached_input_tokens: Some(50),
        cache_creation_input_tokens: None,
        reasoning_tokens: Some(9),
    };
    assert!(Price::flat(1.0, 1.0).cost(&usage) >= 0.0);
}

#[test]
fn explicit_rates_are_kept() {
    let pricing = priced(
        "  my-model: { input: 1, output: 2, cache_read: 0.1, cache_write: 1.5, reasoning: 3 }\n",
    );
    let price = pricing.price("my-model").expect("priced");
    assert_eq!(price.cache_read_per_million, 0.1);
    assert_eq!(price.cache_write_per_million, 1.5);
    assert_eq!(price.reasoning_per_million, 3.0);
}

#[test]
fn left_out_rates_default_to_input_and_output() {
    let price = priced("  my-model: { input: 1, output: 2 }\n")
        .price("my-model")
        .expect("priced");
    assert_eq!(price, Price::flat(1.0, 2.0));
}

#[test]
fn left_out_cache_rates_follow_the_vendors_published_multipliers() {
    // Anthropic: reads 0.1×, writes 1.25× the input price, for any Claude model.
    let claude = priced(
        "  claude-sonnet-4-5: { input: 4, output: 20 }\n  claude-3-7-sonnet: { input: 2, output: 10 }\n",
    );
    let price = claude.price("claude-sonnet-4-5-20250929").expect("priced");
    assert!(close(price.cache_read_per_million, 0.4));
    assert!(close(price.cache_write_per_million, 5.0));
    assert!(close(price.reasoning_per_million, 20.0));
    let price = claude.price("claude-3-7-sonnet").expect("priced");
    assert!(close(price.cache_read_per_million, 0.2));
    // OpenAI's gpt-4.1 family: cached input at a quarter of the input price.
    let price = priced("  gpt-4.1-2025-04-14: { input: 4, output: 16 }\n")
        .price("gpt-4.1-2025-04-14")
        .expect("priced");
    assert!(close(price.cache_read_per_million, 1.0));
    assert!(close(price.cache_write_per_million, 4.0));
}

#[test]
fn shipped_prices_hold_the_published_cache_rates() {
    let shipped = crate::Pricing::shipped();
    let sonnet = shipped.price("claude-sonnet-4-20250514").expect("shipped");
    assert!(close(sonnet.cache_read_per_million, 0.30));
    assert!(close(sonnet.cache_write_per_million, 3.75));
    let gpt = shipped.price("gpt-4o-2024-08-06").expect("shipped");
    assert!(close(gpt.cache_read_per_million, 1.25));
}

#[test]
fn negative_or_infinite_rates_are_refused_each_with_its_path() {
    let errors = yaml_errors(&format!(
        "{MINIMAL}pricing:\n  m: {{ input: 1, output: 2, cache_read: -1, reasoning: .inf }}\n"
    ));
    assert!(
        errors.contains(&"pricing.m.cache_read: prices must be finite and not negative".to_owned()),
        "{errors:?}"
    );
    assert!(
        errors.contains(&"pricing.m.reasoning: prices must be finite and not negative".to_owned()),
        "{errors:?}"
    );
}

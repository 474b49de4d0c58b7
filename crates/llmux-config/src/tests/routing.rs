//! `routing.policy`, `routing.groups`, the fallback chains, and `models[].weight`/`tier`.

use std::collections::BTreeMap;

use super::{check_error, yaml_errors, yaml_ok};
use crate::{RoutingPolicy, Weight};

/// Three chat groups (`fast`, `smart`, `gpt-4o-mini` by its id) and one embedding model.
fn with_routing(routing: &str) -> String {
    format!(
        "
credentials:
  - {{platform: openai, value: sk-1234567890}}
  - {{platform: anthropic, value: sk-ant-1234567890}}
models:
  - {{vendor: openai, model: gpt-4o, name: fast, weight: 3, tier: 1}}
  - {{vendor: anthropic, model: claude-sonnet-4-5, name: smart}}
  - {{vendor: openai, model: gpt-4o-mini, weight: 0.5}}
  - {{vendor: openai, model: text-embedding-3-small, kind: embedding}}
{routing}
"
    )
}

fn chain(pairs: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.iter().map(|s| (*s).to_owned()).collect()))
        .collect()
}

#[test]
fn defaults_are_even_weight_one_tier_zero_and_no_chains() {
    let config = yaml_ok(super::MINIMAL);
    let routing = &config.routing;
    assert_eq!(routing.policy, RoutingPolicy::Even);
    assert!(routing.groups.is_empty());
    assert!(routing.fallbacks.is_empty());
    assert!(routing.context_fallbacks.is_empty());
    assert!(routing.content_fallbacks.is_empty());
    assert_eq!(config.models[0].weight, Weight::ONE);
    assert_eq!(config.models[0].tier, 0);
    assert_eq!(routing.policy_for("gpt-4o-mini"), RoutingPolicy::Even);
}

#[test]
fn every_policy_name_parses() {
    for (text, policy) in [
        ("even", RoutingPolicy::Even),
        ("weighted", RoutingPolicy::Weighted),
        ("latency", RoutingPolicy::Latency),
        ("least_busy", RoutingPolicy::LeastBusy),
        ("cost", RoutingPolicy::Cost),
        ("priority", RoutingPolicy::Priority),
    ] {
        let config = yaml_ok(&with_routing(&format!("routing: {{policy: {text}}}")));
        assert_eq!(config.routing.policy, policy);
        assert_eq!(policy.as_str(), text);
        assert_eq!(policy.to_string(), text);
    }
}

#[test]
fn unknown_policy_is_a_parse_error_listing_the_choices() {
    let errors = yaml_errors(&with_routing("routing: {policy: fastest}"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].contains("unknown variant `fastest`")
            && errors[0].contains("least_busy")
            && errors[0].starts_with("line "),
        "{errors:?}"
    );
}

#[test]
fn groups_override_the_default_policy_per_public_name() {
    let config = yaml_ok(&with_routing(
        "routing:
  policy: cost
  groups:
    fast: {policy: latency}
    gpt-4o-mini: {policy: priority}
    smart: {}",
    ));
    let routing = &config.routing;
    assert_eq!(routing.policy_for("fast"), RoutingPolicy::Latency);
    assert_eq!(routing.policy_for("gpt-4o-mini"), RoutingPolicy::Priority);
    // An entry without a policy keeps the default.
    assert_eq!(routing.policy_for("smart"), RoutingPolicy::Cost);
    assert_eq!(routing.policy_for("anything-else"), RoutingPolicy::Cost);
}

#[test]
fn group_names_must_exist() {
    check_error(
        &with_routing("routing: {groups: {fats: {policy: latency}}}"),
        "routing.groups.fats: unknown model name 'fats' (no models[] entry has it as name or model)",
    );
}

#[test]
fn group_entries_reject_unknown_fields() {
    let errors = yaml_errors(&with_routing("routing: {groups: {fast: {polcy: latency}}}"));
    assert!(errors[0].contains("unknown field `polcy`"), "{errors:?}");
}

#[test]
fn weight_and_tier_are_read_per_model() {
    let config = yaml_ok(&with_routing(""));
    let weights: Vec<f64> = config.models.iter().map(|m| m.weight.get()).collect();
    assert_eq!(weights, [3.0, 1.0, 0.5, 1.0]);
    let tiers: Vec<u32> = config.models.iter().map(|m| m.tier).collect();
    assert_eq!(tiers, [1, 0, 0, 0]);
}

#[test]
fn weight_must_be_positive() {
    for (value, shown) in [("0", "0"), ("-2", "-2"), (".nan", "NaN"), (".inf", "inf")] {
        let text = format!("{}    weight: {value}\n", super::MINIMAL);
        check_error(
            &text,
            &format!("models[0].weight: must be a number greater than 0, not {shown}"),
        );
    }
}

#[test]
fn tier_must_be_a_non_negative_integer() {
    check_error(
        &format!("{}    tier: -1\n", super::MINIMAL),
        "models[0].tier: must be an integer from 0 to 4294967295, not -1",
    );
    let errors = yaml_errors(&format!("{}    tier: 1.5\n", super::MINIMAL));
    assert!(errors[0].starts_with("line 7:"), "{errors:?}");
}

#[test]
fn fallback_chains_are_read_in_order() {
    let config = yaml_ok(&with_routing(
        "routing:
  fallbacks: {fast: [smart, gpt-4o-mini], smart: [fast]}
  context_fallbacks: {gpt-4o-mini: [smart]}
  content_fallbacks: {fast: [smart]}",
    ));
    let routing = &config.routing;
    assert_eq!(
        routing.fallbacks,
        chain(&[("fast", &["smart", "gpt-4o-mini"]), ("smart", &["fast"])])
    );
    assert_eq!(
        routing.context_fallbacks,
        chain(&[("gpt-4o-mini", &["smart"])])
    );
    assert_eq!(routing.content_fallbacks, chain(&[("fast", &["smart"])]));
}

#[test]
fn fallback_names_must_exist_in_every_chain_kind() {
    for field in ["fallbacks", "context_fallbacks", "content_fallbacks"] {
        let errors = yaml_errors(&with_routing(&format!(
            "routing: {{{field}: {{fast: [smart, gpt-5]}}, }}"
        )));
        assert_eq!(
            errors,
            [format!(
                "routing.{field}.fast[1]: unknown model name 'gpt-5' (no models[] entry has it as name or model)"
            )]
        );
        check_error(
            &with_routing(&format!("routing: {{{field}: {{slow: [smart]}}}}")),
            &format!(
                "routing.{field}.slow: unknown model name 'slow' (no models[] entry has it as name or model)"
            ),
        );
    }
}

#[test]
fn a_chain_must_not_contain_itself_or_repeat_a_name() {
    check_error(
        &with_routing("routing: {fallbacks: {fast: [smart, fast]}}"),
        "routing.fallbacks.fast[1]: 'fast' falls back to itself",
    );
    check_error(
        &with_routing("routing: {context_fallbacks: {fast: [smart, smart]}}"),
        "routing.context_fallbacks.fast[1]: 'smart' appears twice in the chain",
    );
}

#[test]
fn a_chain_stays_within_one_model_kind() {
    check_error(
        &with_routing("routing: {fallbacks: {fast: [text-embedding-3-small]}}"),
        "routing.fallbacks.fast[0]: 'text-embedding-3-small' is an embedding model but 'fast' is a chat model",
    );
}

#[test]
fn cycles_across_chains_are_allowed() {
    let config = yaml_ok(&with_routing(
        "routing: {fallbacks: {fast: [smart], smart: [gpt-4o-mini], gpt-4o-mini: [fast]}}",
    ));
    assert_eq!(config.routing.fallbacks.len(), 3);
}

#[test]
fn every_routing_problem_is_reported_at_once() {
    let errors = yaml_errors(&with_routing(
        "routing:
  groups: {nope: {policy: cost}}
  fallbacks: {fast: [fast]}
  content_fallbacks: {smart: [missing]}",
    ));
    assert_eq!(errors.len(), 3, "{errors:#?}");
}

#[test]
fn routing_reads_from_json_and_toml_too() {
    let json = r#"{
  "credentials": [{"platform": "openai", "value": "sk-1234567890"}],
  "models": [
    {"vendor": "openai", "model": "gpt-4o", "weight": 2, "tier": 3},
    {"vendor": "openai", "model": "gpt-4o-mini"}
  ],
  "routing": {"policy": "weighted", "fallbacks": {"gpt-4o": ["gpt-4o-mini"]}}
}"#;
    let config = crate::from_str(json, crate::Format::Json, &|_| None).unwrap();
    assert_eq!(config.routing.policy, RoutingPolicy::Weighted);
    assert_eq!(config.models[0].weight.get(), 2.0);
    assert_eq!(config.models[0].tier, 3);
    let toml = r#"
[[credentials]]
platform = "openai"
value = "sk-1234567890"
[[models]]
vendor = "openai"
model = "gpt-4o"
weight = 2
tier = 3
[[models]]
vendor = "openai"
model = "gpt-4o-mini"
[routing]
policy = "least_busy"
[routing.groups.gpt-4o]
policy = "latency"
[routing.fallbacks]
gpt-4o = ["gpt-4o-mini"]
"#;
    let config = crate::from_str(toml, crate::Format::Toml, &|_| None).unwrap();
    assert_eq!(config.routing.policy, RoutingPolicy::LeastBusy);
    assert_eq!(config.routing.policy_for("gpt-4o"), RoutingPolicy::Latency);
    assert_eq!(config.models[0].weight.get(), 2.0);
    assert_eq!(
        config.routing.fallbacks,
        chain(&[("gpt-4o", &["gpt-4o-mini"])])
    );
}

#[test]
fn weight_rejects_non_positive_and_non_finite_values() {
    assert_eq!(Weight::new(2.5).map(Weight::get), Some(2.5));
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(Weight::new(bad), None, "{bad}");
    }
    assert_eq!(Weight::default(), Weight::ONE);
}

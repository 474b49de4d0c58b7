use std::collections::HashMap;

use llmux_config::{Format, from_str};

use super::*;

fn table(yaml: &str) -> RoutingTable {
    let config = from_str(yaml, Format::Yaml, &|_| None).expect("test config is valid");
    RoutingTable::compile(&config)
}

/// 2 openai credentials × 2 models + 3 gemini credentials × 2 models = 10 combinations, the
/// original router's acceptance case, plus one embedding model.
const TEN: &str = r#"
credentials:
  - { platform: openai, value: sk-a }
  - { platform: openai, value: sk-b }
  - { platform: gemini, value: g-a, api: openai }
  - { platform: gemini, value: g-b, api: openai }
  - { platform: gemini, value: g-c, api: openai }
models:
  - { vendor: openai, model: gpt-4o, name: fast }
  - { vendor: openai, model: gpt-4o-mini, config: { support_image: false, support_tools: true, support_streaming: true } }
  - { vendor: gemini, model: gemini-2.5-flash, name: fast }
  - { vendor: gemini, model: gemini-2.5-pro }
  - { vendor: openai, model: text-embedding-3-small, kind: embedding }
routing: { unknown_model: pool }
"#;

fn chat<'a>(model: Option<&'a str>, vendor: Option<&'a str>) -> Query<'a> {
    Query {
        endpoint: Endpoint::Chat,
        model,
        vendor,
        needs: Needs::default(),
    }
}

fn labels(candidates: &Candidates<'_>) -> Vec<String> {
    (0..candidates.len())
        .map(|i| {
            let t = candidates.get(i).unwrap();
            format!("{}/{}", t.credential.name, t.upstream_model)
        })
        .collect()
}

#[test]
fn pool_spreads_uniformly_over_every_combination() {
    let table = table(TEN);
    let candidates = table.candidates(&chat(None, None)).unwrap();
    assert_eq!(candidates.len(), 10, "{:?}", labels(&candidates));
    let mut rng = fastrand::Rng::with_seed(7);
    let draws = 10_000;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..draws {
        let t = candidates.pick(&mut rng).unwrap();
        *counts
            .entry(format!("{}/{}", t.credential.name, t.upstream_model))
            .or_default() += 1;
    }
    assert_eq!(counts.len(), 10);
    // Chi-square with 9 degrees of freedom: the 99.9% critical value is 27.88.
    let expected = draws as f64 / 10.0;
    let chi2: f64 = counts
        .values()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum();
    assert!(chi2 < 27.88, "chi2 = {chi2}, counts = {counts:?}");
    for count in counts.values() {
        assert!((*count as f64 / draws as f64 - 0.1).abs() < 0.03);
    }
}

#[test]
fn alias_and_model_names_select_their_combinations() {
    let table = table(TEN);
    let fast = table.candidates(&chat(Some("fast"), None)).unwrap();
    assert_eq!(fast.len(), 2 + 3);
    let mini = table.candidates(&chat(Some("gpt-4o-mini"), None)).unwrap();
    assert_eq!(
        labels(&mini),
        vec!["openai-1/gpt-4o-mini", "openai-2/gpt-4o-mini"]
    );
    assert_eq!(mini.get(0).unwrap().public_name, "gpt-4o-mini");
    assert_eq!(fast.get(0).unwrap().public_name, "fast");
}

#[test]
fn vendor_filter_keeps_only_that_vendor_and_unknown_vendor_lists_known_ones() {
    let table = table(TEN);
    let gemini = table.candidates(&chat(None, Some("gemini"))).unwrap();
    assert_eq!(gemini.len(), 6);
    assert!(labels(&gemini).iter().all(|l| l.starts_with("gemini-")));
    let fast_openai = table
        .candidates(&chat(Some("fast"), Some("openai")))
        .unwrap();
    assert_eq!(
        labels(&fast_openai),
        vec!["openai-1/gpt-4o", "openai-2/gpt-4o"]
    );
    let err = table.candidates(&chat(None, Some("OpenAI"))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown vendor 'OpenAI'; known vendors: gemini, openai"
    );
}

#[test]
fn capability_flags_filter_candidates() {
    let table = table(TEN);
    let mut query = chat(None, Some("openai"));
    query.needs.image = true;
    let with_image = table.candidates(&query).unwrap();
    assert_eq!(
        labels(&with_image),
        vec!["openai-1/gpt-4o", "openai-2/gpt-4o"]
    );
    query.needs.video = true;
    query.model = Some("gpt-4o-mini");
    let err = table.candidates(&query).unwrap_err();
    assert!(matches!(err, RouteError::NoCapableModel { .. }), "{err}");
}

#[test]
fn embeddings_and_chat_pools_never_mix() {
    let table = table(TEN);
    let chat_pool = table.candidates(&chat(None, None)).unwrap();
    assert!(labels(&chat_pool).iter().all(|l| !l.contains("embedding")));
    let embeddings = table
        .candidates(&Query {
            endpoint: Endpoint::Embeddings,
            model: Some("unknown"),
            vendor: None,
            needs: Needs::default(),
        })
        .unwrap();
    assert_eq!(
        labels(&embeddings),
        vec![
            "openai-1/text-embedding-3-small",
            "openai-2/text-embedding-3-small"
        ]
    );
    // Naming a configured model goes to that model's combinations.
    let named = table
        .candidates(&Query {
            endpoint: Endpoint::Embeddings,
            model: Some("gpt-4o"),
            vendor: None,
            needs: Needs::default(),
        })
        .unwrap();
    assert_eq!(named.len(), 2);
}

fn with_policy(policy: &str) -> RoutingTable {
    table(&TEN.replace("unknown_model: pool", &format!("unknown_model: {policy}")))
}

#[test]
fn unknown_model_policies() {
    // infer: known prefix goes to that vendor, unchanged; unknown prefix is refused.
    let infer = with_policy("infer");
    let c = infer.candidates(&chat(Some("gpt-5-nano"), None)).unwrap();
    assert_eq!(
        labels(&c),
        vec!["openai-1/gpt-5-nano", "openai-2/gpt-5-nano"]
    );
    assert!(matches!(
        infer.candidates(&chat(Some("llama3"), None)),
        Err(RouteError::ModelNotFound { .. })
    ));
    // A vendor without credentials cannot be inferred to.
    assert!(
        infer
            .candidates(&chat(Some("claude-sonnet-4-5"), None))
            .is_err()
    );
    // An explicit vendor says where an unknown model belongs.
    let c = infer
        .candidates(&chat(Some("llama3"), Some("gemini")))
        .unwrap();
    assert_eq!(c.len(), 3);

    // infer_then_pool: infer when that vendor has credentials, else the pool.
    let itp = with_policy("infer_then_pool");
    assert_eq!(
        itp.candidates(&chat(Some("gemini-3-pro"), None))
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        itp.candidates(&chat(Some("claude-opus-4"), None))
            .unwrap()
            .len(),
        10
    );
    assert_eq!(
        itp.candidates(&chat(Some("any-model"), None))
            .unwrap()
            .len(),
        10
    );
    assert_eq!(itp.candidates(&chat(None, None)).unwrap().len(), 10);

    // pool: the model never matters.
    assert_eq!(
        with_policy("pool")
            .candidates(&chat(Some("gpt-5"), None))
            .unwrap()
            .len(),
        10
    );

    // reject: only configured models.
    let reject = with_policy("reject");
    let err = reject.candidates(&chat(Some("gpt-5"), None)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("model 'gpt-5' is not configured"),
        "{err}"
    );
    assert_eq!(
        reject.candidates(&chat(Some("fast"), None)).unwrap().len(),
        5
    );
}

#[test]
fn large_tables_share_capability_lists() {
    let mut yaml = String::from("credentials:\n");
    for i in 0..100 {
        yaml.push_str(&format!("  - {{ platform: openai, value: sk-{i} }}\n"));
    }
    yaml.push_str("models:\n");
    for i in 0..100 {
        yaml.push_str(&format!("  - {{ vendor: openai, model: m-{i} }}\n"));
    }
    let table = table(&yaml);
    assert_eq!(table.combinations().len(), 10_000);
    let all = table.candidates(&chat(None, None)).unwrap();
    let mut q = chat(None, None);
    q.needs = Needs {
        image: true,
        video: true,
        tools: true,
        streaming: true,
    };
    let capable = table.candidates(&q).unwrap();
    match (all, capable) {
        (Candidates::Configured(_, a), Candidates::Configured(_, b)) => assert!(std::ptr::eq(a, b)),
        _ => unreachable!(),
    }
}

//! Demo mode: vendor keys from the environment, or the built-in mock.

use super::{env, messages};
use crate::{
    Api, Capabilities, Config, ModelKind, Source, UnknownModelPolicy, demo_has_keys, load,
    mock_demo,
};

fn demo(pairs: &[(&str, &str)]) -> Config {
    load(&Source::Demo, &env(pairs)).unwrap()
}

/// (name, vendor, api, base_url, secret) per credential.
fn credentials(config: &Config) -> Vec<(String, String, Api, String, String)> {
    config
        .credentials
        .iter()
        .map(|c| {
            (
                c.name.clone(),
                c.vendor.clone(),
                c.api,
                c.base_url.to_string(),
                c.secret.expose().to_owned(),
            )
        })
        .collect()
}

fn models(config: &Config) -> Vec<(&str, &str, ModelKind)> {
    config
        .models
        .iter()
        .map(|m| (m.vendor.as_str(), m.model.as_str(), m.kind))
        .collect()
}

fn row(
    name: &str,
    vendor: &str,
    base_url: &str,
    secret: &str,
) -> (String, String, Api, String, String) {
    (
        name.to_owned(),
        vendor.to_owned(),
        // Demo mode reaches every vendor through its own API.
        match vendor {
            "gemini" => Api::Gemini,
            "anthropic" => Api::Anthropic,
            _ => Api::OpenAi,
        },
        base_url.to_owned(),
        secret.to_owned(),
    )
}

const OPENAI: &str = "https://api.openai.com/v1";
const GEMINI: &str = "https://generativelanguage.googleapis.com/v1beta";
const ANTHROPIC: &str = "https://api.anthropic.com/v1";

#[test]
fn openai_key() {
    let config = demo(&[("OPENAI_API_KEY", "sk-demo-openai")]);
    assert_eq!(
        credentials(&config),
        [row("openai-1", "openai", OPENAI, "sk-demo-openai")]
    );
    assert_eq!(
        models(&config),
        [
            ("openai", "gpt-4o-mini", ModelKind::Chat),
            ("openai", "text-embedding-3-small", ModelKind::Embedding)
        ]
    );
    assert_eq!(config.source, "demo mode (OPENAI_API_KEY)");
    assert_eq!(
        config.routing.unknown_model,
        UnknownModelPolicy::InferThenPool
    );
    assert_eq!(config.listen, None);
    assert!(
        config
            .models
            .iter()
            .all(|m| m.name.is_none() && m.capabilities == Capabilities::default())
    );
}

#[test]
fn gemini_key() {
    let config = demo(&[("GEMINI_API_KEY", "AIza-demo")]);
    assert_eq!(
        credentials(&config),
        [row("gemini-1", "gemini", GEMINI, "AIza-demo")]
    );
    assert_eq!(
        models(&config),
        [("gemini", "gemini-2.5-flash", ModelKind::Chat)]
    );
}

#[test]
fn google_key_is_an_alias_and_gemini_wins() {
    let google = demo(&[("GOOGLE_API_KEY", "AIza-google")]);
    assert_eq!(
        credentials(&google),
        [row("gemini-1", "gemini", GEMINI, "AIza-google")]
    );
    assert_eq!(google.source, "demo mode (GOOGLE_API_KEY)");

    let both = demo(&[
        ("GOOGLE_API_KEY", "AIza-google"),
        ("GEMINI_API_KEY", "AIza-gemini"),
    ]);
    assert_eq!(
        credentials(&both),
        [row("gemini-1", "gemini", GEMINI, "AIza-gemini")]
    );
}

#[test]
fn anthropic_key() {
    let config = demo(&[("ANTHROPIC_API_KEY", "sk-ant-demo")]);
    assert_eq!(
        credentials(&config),
        [row("anthropic-1", "anthropic", ANTHROPIC, "sk-ant-demo")]
    );
    assert_eq!(
        models(&config),
        [("anthropic", "claude-sonnet-4-5", ModelKind::Chat)]
    );
}

#[test]
fn numbered_keys_are_extra_credentials() {
    let config = demo(&[
        ("OPENAI_API_KEY", "sk-main"),
        ("OPENAI_API_KEY_1", "sk-one"),
        ("OPENAI_API_KEY_20", "sk-twenty"),
        ("OPENAI_API_KEY_21", "sk-ignored"),
        ("GEMINI_API_KEY_3", "AIza-three"),
        ("ANTHROPIC_API_KEY", "sk-ant"),
    ]);
    assert_eq!(
        credentials(&config),
        [
            row("openai-1", "openai", OPENAI, "sk-main"),
            row("openai-2", "openai", OPENAI, "sk-one"),
            row("openai-3", "openai", OPENAI, "sk-twenty"),
            row("gemini-1", "gemini", GEMINI, "AIza-three"),
            row("anthropic-1", "anthropic", ANTHROPIC, "sk-ant"),
        ]
    );
    assert_eq!(
        config.source,
        "demo mode (OPENAI_API_KEY, OPENAI_API_KEY_1, OPENAI_API_KEY_20, GEMINI_API_KEY_3, ANTHROPIC_API_KEY)"
    );
    let vendors: Vec<_> = config.models.iter().map(|m| m.vendor.as_str()).collect();
    assert_eq!(vendors, ["openai", "openai", "gemini", "anthropic"]);
}

#[test]
fn no_key_is_an_error_and_empty_values_do_not_count() {
    for pairs in [
        &[][..],
        &[("OPENAI_API_KEY", ""), ("GEMINI_API_KEY_2", "  ")][..],
    ] {
        assert!(!demo_has_keys(&env(pairs)));
        let errors = load(&Source::Demo, &env(pairs)).unwrap_err();
        assert_eq!(messages(&errors), ["no vendor key in the environment"]);
    }
    assert!(demo_has_keys(&env(&[("GEMINI_API_KEY_20", "AIza")])));
    assert!(demo_has_keys(&env(&[("ANTHROPIC_API_KEY", "sk-ant")])));
}

#[test]
fn mock_demo_serves_the_mock_vendor() {
    let base = url::Url::parse("http://127.0.0.1:4545/v1").unwrap();
    let config = mock_demo(&base);
    assert_eq!(
        credentials(&config),
        [row(
            "mock-1",
            "mock",
            "http://127.0.0.1:4545/v1",
            "mock-key"
        )]
    );
    assert_eq!(
        models(&config),
        [
            ("mock", "mock-model", ModelKind::Chat),
            ("mock", "mock-embedding", ModelKind::Embedding)
        ]
    );
    assert!(config.models.iter().all(|m| m.name.is_none()));
    assert_eq!(
        config.routing.unknown_model,
        UnknownModelPolicy::InferThenPool
    );
    assert!(config.source.starts_with("demo mode"));
}

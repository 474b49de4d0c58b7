//! YAML, JSON and TOML: the same configuration, the same result; defaults; parse errors.

use std::net::SocketAddr;

use super::{MINIMAL, check_error, env, fixture, yaml_errors, yaml_ok};
use crate::{
    Api, Capabilities, Config, Format, Limits, ModelKind, Source, Timeouts, UnknownModelPolicy,
    load,
};

const ENV: &[(&str, &str)] = &[
    ("OPENAI_API_KEY", "sk-openai-fixture-key"),
    ("GEMINI_API_KEY", "AIza-gemini-fixture-key"),
];

fn load_fixture(name: &str) -> Config {
    let source = Source::File(fixture(name));
    match load(&source, &env(ENV)) {
        Ok(config) => config,
        Err(errors) => panic!("{name}: {errors:?}"),
    }
}

#[test]
fn yaml_json_and_toml_load_identically() {
    let mut yaml = load_fixture("llmux.yaml");
    let mut json = load_fixture("llmux.json");
    let mut toml = load_fixture("llmux.toml");
    assert!(yaml.source.ends_with("llmux.yaml"));
    assert!(json.source.ends_with("llmux.json"));
    assert!(toml.source.ends_with("llmux.toml"));
    yaml.source.clear();
    json.source.clear();
    toml.source.clear();
    assert_eq!(yaml, json);
    assert_eq!(yaml, toml);
}

#[test]
fn fixture_values() {
    let config = load_fixture("llmux.yaml");
    assert_eq!(
        config.listen,
        Some("127.0.0.1:9000".parse::<SocketAddr>().unwrap())
    );

    let credentials: Vec<_> = config
        .credentials
        .iter()
        .map(|c| {
            (
                c.name.as_str(),
                c.vendor.as_str(),
                c.kind.as_str(),
                c.api,
                c.base_url.as_str(),
                c.secret.expose(),
            )
        })
        .collect();
    assert_eq!(
        credentials,
        [
            (
                "openai-1",
                "openai",
                "api-key",
                Api::OpenAi,
                "https://api.openai.com/v1",
                "sk-openai-fixture-key"
            ),
            (
                "openai-backup",
                "openai",
                "api-key",
                Api::OpenAi,
                "https://api.openai.com/v1",
                "sk-second-default"
            ),
            (
                "gemini-1",
                "gemini",
                "api-key",
                Api::Gemini,
                "https://generativelanguage.googleapis.com/v1beta",
                "AIza-gemini-fixture-key"
            ),
            (
                "ollama-1",
                "ollama",
                "api-key",
                Api::OpenAi,
                "http://127.0.0.1:11434/v1",
                "unused"
            ),
        ]
    );

    let models: Vec<_> = config
        .models
        .iter()
        .map(|m| (m.vendor.as_str(), m.model.as_str(), m.public_name(), m.kind))
        .collect();
    assert_eq!(
        models,
        [
            ("openai", "gpt-4o-mini", "fast", ModelKind::Chat),
            (
                "openai",
                "text-embedding-3-small",
                "text-embedding-3-small",
                ModelKind::Embedding
            ),
            ("gemini", "gemini-2.5-flash", "fast", ModelKind::Chat),
            ("ollama", "llama3.2", "llama3.2", ModelKind::Chat),
        ]
    );
    assert_eq!(config.models[0].capabilities, Capabilities::default());
    assert_eq!(
        config.models[2].capabilities,
        Capabilities {
            image: true,
            video: false,
            tools: false,
            streaming: true
        }
    );
    assert_eq!(config.routing.unknown_model, UnknownModelPolicy::Pool);
    assert_eq!(config.limits.max_body_bytes, 1_048_576);
    assert_eq!(
        config.timeouts,
        Timeouts {
            connect_ms: 1000,
            first_byte_ms: 2000,
            idle_ms: 3000,
            header_read_ms: 4000,
            body_read_ms: 5000,
            total_ms: 600_000,
            client_idle_ms: 60_000
        }
    );
}

#[test]
fn defaults_apply_when_fields_are_absent() {
    let config = yaml_ok(MINIMAL);
    assert_eq!(config.listen, None);
    assert_eq!(
        config.routing.unknown_model,
        UnknownModelPolicy::InferThenPool
    );
    assert_eq!(config.limits.max_body_bytes, 10 * 1024 * 1024);
    assert_eq!(config.limits, Limits::default());
    assert_eq!(
        config.timeouts,
        Timeouts {
            connect_ms: 5000,
            first_byte_ms: 120_000,
            idle_ms: 120_000,
            header_read_ms: 10_000,
            body_read_ms: 30_000,
            total_ms: 600_000,
            client_idle_ms: 60_000
        }
    );
    assert_eq!(config.credentials[0].kind, "api-key");
    assert_eq!(config.models[0].kind, ModelKind::Chat);
    assert_eq!(config.models[0].name, None);
    assert_eq!(config.source, "inline YAML");
}

#[test]
fn api_and_base_url_default_by_vendor() {
    let config = yaml_ok(
        "
credentials:
  - { platform: openai, value: sk-1234567890 }
  - { platform: anthropic, value: sk-ant-1234567890 }
  - { platform: gemini, value: AIza1234567890 }
  - { platform: gemini, value: AIza1234567890, api: openai }
  - { platform: anthropic, value: sk-ant-1234567890, api: openai }
  - { platform: local, value: x, base_url: 'http://localhost:8000/v1' }
models:
  - { vendor: openai, model: a }
  - { vendor: anthropic, model: b }
  - { vendor: gemini, model: c }
  - { vendor: local, model: d }
",
    );
    let got: Vec<_> = config
        .credentials
        .iter()
        .map(|c| (c.name.as_str(), c.api, c.base_url.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("openai-1", Api::OpenAi, "https://api.openai.com/v1"),
            (
                "anthropic-1",
                Api::Anthropic,
                "https://api.anthropic.com/v1"
            ),
            (
                "gemini-1",
                Api::Gemini,
                "https://generativelanguage.googleapis.com/v1beta"
            ),
            (
                "gemini-2",
                Api::OpenAi,
                "https://generativelanguage.googleapis.com/v1beta/openai"
            ),
            ("anthropic-2", Api::OpenAi, "https://api.anthropic.com/v1"),
            ("local-1", Api::OpenAi, "http://localhost:8000/v1"),
        ]
    );
}

#[test]
fn listen_accepts_a_bare_port_and_ipv6() {
    let port = yaml_ok(&format!("listen: 8090\n{MINIMAL}"));
    assert_eq!(port.listen, Some(SocketAddr::from(([0, 0, 0, 0], 8090))));
    let v6 = yaml_ok(&format!("listen: '[::1]:8082'\n{MINIMAL}"));
    assert_eq!(v6.listen, Some("[::1]:8082".parse().unwrap()));
}

#[test]
fn numeric_yaml_value_reads_as_text() {
    let config = yaml_ok(
        "credentials:\n  - platform: openai\n    value: 12345678\nmodels:\n  - {vendor: openai, model: m}\n",
    );
    assert_eq!(config.credentials[0].secret.expose(), "12345678");
}

#[test]
fn unknown_top_level_key_is_an_error() {
    let errors = yaml_errors(&format!("{MINIMAL}colour: blue\n"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].starts_with("line 7: unknown field `colour`"),
        "{errors:?}"
    );
}

#[test]
fn unknown_nested_key_is_an_error_in_every_format() {
    check_error(
        "credentials:\n  - platform: openai\n    value: sk-1234567890\n    region: eu\nmodels: []\n",
        "line 4: unknown field `region`, expected one of platform, type, value, name, base_url, api, fetch_images, timeouts, limits, forward_headers, responses",
    );
    let json = crate::from_str(
        r#"{"credentials": [], "models": [{"vendor": "x", "model": "y",
            "capabilities": {}}]}"#,
        Format::Json,
        &env(&[]),
    )
    .unwrap_err();
    assert!(
        json[0]
            .to_string()
            .starts_with("line 2: unknown field `capabilities`"),
        "{json:?}"
    );
    let toml = crate::from_str(
        "[timeouts]\nconnect_ms = 1\nread_ms = 2\n",
        Format::Toml,
        &env(&[]),
    )
    .unwrap_err();
    assert!(
        toml[0]
            .to_string()
            .starts_with("line 3: unknown field `read_ms`"),
        "{toml:?}"
    );
}

#[test]
fn bad_enum_values_are_errors() {
    let errors = yaml_errors(&format!("{MINIMAL}routing:\n  unknown_model: guess\n"));
    assert!(errors[0].starts_with("line 8: "), "{errors:?}");
    assert!(errors[0].contains("guess"), "{errors:?}");
}

#[test]
fn empty_file_reports_what_is_missing() {
    assert_eq!(
        yaml_errors("# nothing here\n"),
        [
            "credentials: no credential configured",
            "models: no model configured"
        ]
    );
}

#[test]
fn format_follows_the_extension() {
    use std::path::Path;
    assert_eq!(Format::from_path(Path::new("llmux.yaml")), Format::Yaml);
    assert_eq!(Format::from_path(Path::new("llmux.yml")), Format::Yaml);
    assert_eq!(Format::from_path(Path::new("a/llmux.JSON")), Format::Json);
    assert_eq!(Format::from_path(Path::new("llmux.toml")), Format::Toml);
    assert_eq!(Format::from_path(Path::new("llmux.conf")), Format::Yaml);
}

#[test]
fn missing_file_is_an_error_naming_it() {
    let errors = load(&Source::File(fixture("nope.yaml")), &env(&[])).unwrap_err();
    assert_eq!(errors.len(), 1);
    assert!(errors[0].path.ends_with("nope.yaml"), "{errors:?}");
    assert!(
        errors[0].message.starts_with("cannot read file: "),
        "{errors:?}"
    );
}

#[test]
fn parse_errors_from_a_file_name_it() {
    let dir = super::discover::TempDir::new("parse-error");
    let path = dir.write("llmux.yaml", "credentials: [\n");
    let errors = load(&Source::File(path), &env(&[])).unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].path.ends_with("llmux.yaml"), "{errors:?}");
}

#[test]
fn reliability_and_per_credential_timeouts() {
    let config = yaml_ok(
        "credentials:\n  - { platform: openai, value: k, timeouts: { first_byte_ms: 7, total_ms: 9 } }\n  - { platform: openai, value: k2 }\nmodels:\n  - { vendor: openai, model: m }\ntimeouts: { idle_ms: 11 }\nreliability: { max_attempts: 4, breaker: { consecutive_failures: 2, open_ms: 100, max_open_ms: 400 } }\n",
    );
    assert_eq!(config.credentials[0].timeouts.first_byte_ms, 7);
    assert_eq!(config.credentials[0].timeouts.total_ms, 9);
    assert_eq!(
        config.credentials[0].timeouts.idle_ms, 11,
        "unset fields inherit the global value"
    );
    assert_eq!(config.credentials[1].timeouts, config.timeouts);
    assert_eq!(config.reliability.max_attempts, 4);
    assert_eq!(config.reliability.breaker_consecutive_failures, 2);
    assert_eq!(config.reliability.breaker_open_ms, 100);
    assert_eq!(config.reliability.backoff_base_ms, 25);
}

#[test]
fn vendor_quotas_and_the_share_interval() {
    let config = yaml_ok(
        "credentials:\n  - { platform: openai, value: k, limits: { rpm: 50, tpm: 40000 } }\n  - { platform: openai, value: k2, limits: { tpm: 10 } }\n  - { platform: openai, value: k3 }\nmodels:\n  - { vendor: openai, model: m }\nreliability: { share_interval_ms: 100 }\n",
    );
    let limits: Vec<_> = config
        .credentials
        .iter()
        .map(|c| (c.limits.rpm, c.limits.tpm))
        .collect();
    assert_eq!(
        limits,
        [(Some(50), Some(40_000)), (None, Some(10)), (None, None)]
    );
    assert!(!config.credentials[2].limits.any());
    assert_eq!(config.reliability.share_interval_ms, 100);
    assert_eq!(
        crate::Reliability::default().share_interval_ms,
        250,
        "the documented default"
    );

    let errors = crate::from_str(
        "credentials:\n  - { platform: openai, value: k, limits: { rpm: 0, burst: 3 } }\nmodels: []\n",
        Format::Yaml,
        &env(&[]),
    )
    .unwrap_err();
    assert!(
        errors[0].to_string().contains("unknown field `burst`"),
        "{errors:?}"
    );
    let errors = crate::from_str(
        "credentials:\n  - { platform: openai, value: k, limits: { rpm: 0 } }\nmodels:\n  - { vendor: openai, model: m }\n",
        Format::Yaml,
        &env(&[]),
    )
    .unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.to_string().contains("credentials[0].limits.rpm")),
        "{errors:?}"
    );
}

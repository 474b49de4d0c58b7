//! Every validation rule, with its exact message, and all problems reported at once.

use super::{MINIMAL, check_error, yaml_errors, yaml_errors_with, yaml_ok};

#[test]
fn at_least_one_credential() {
    check_error(
        "credentials: []\nmodels:\n  - {vendor: openai, model: m}\n",
        "credentials: no credential configured",
    );
}

#[test]
fn at_least_one_model() {
    check_error(
        "credentials:\n  - {platform: openai, value: sk-1234567890}\nmodels: []\n",
        "models: no model configured",
    );
}

#[test]
fn model_vendor_needs_a_credential() {
    check_error(
        "
credentials:
  - {platform: openai, value: sk-1234567890}
  - {platform: gemini, value: AIza1234567890}
models:
  - {vendor: openai, model: gpt-4o}
  - {vendor: anthropic, model: claude-sonnet-4-5}
",
        "models[1]: no credential for vendor 'anthropic' (vendors with credentials: gemini, openai)",
    );
}

#[test]
fn credential_names_are_unique() {
    check_error(
        "
credentials:
  - {platform: openai, value: sk-1234567890}
  - {platform: openai, value: sk-0987654321, name: openai-1}
models:
  - {vendor: openai, model: gpt-4o}
",
        "credentials[1].name: duplicate credential name 'openai-1' (also credentials[0])",
    );
}

#[test]
fn default_names_count_per_platform() {
    let config = yaml_ok(
        "
credentials:
  - {platform: openai, value: sk-1}
  - {platform: gemini, value: g-1}
  - {platform: openai, value: sk-2, name: spare}
  - {platform: openai, value: sk-3}
models:
  - {vendor: openai, model: gpt-4o}
  - {vendor: gemini, model: gemini-2.5-flash}
",
    );
    let names: Vec<_> = config.credentials.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["openai-1", "gemini-1", "spare", "openai-3"]);
}

#[test]
fn vendor_model_pairs_are_unique() {
    check_error(
        "
credentials:
  - {platform: openai, value: sk-1234567890}
models:
  - {vendor: openai, model: gpt-4o}
  - {vendor: openai, model: gpt-4o, name: smart}
",
        "models[1]: duplicate model 'openai/gpt-4o' (also models[0])",
    );
}

#[test]
fn same_model_id_at_two_vendors_is_fine() {
    let config = yaml_ok(
        "
credentials:
  - {platform: openai, value: sk-1234567890}
  - {platform: azure, value: az-1234567890, base_url: 'https://example.openai.azure.com/openai/v1'}
models:
  - {vendor: openai, model: gpt-4o, name: smart}
  - {vendor: azure, model: gpt-4o, name: smart}
",
    );
    assert_eq!(config.models.len(), 2);
}

#[test]
fn a_name_cannot_be_both_chat_and_embedding() {
    check_error(
        "
credentials:
  - {platform: openai, value: sk-1234567890}
models:
  - {vendor: openai, model: gpt-4o, name: fast}
  - {vendor: openai, model: text-embedding-3-small, name: fast, kind: embedding}
",
        "models[1]: name 'fast' is used by both chat and embedding models (models[0] is chat, this one is embedding)",
    );
    check_error(
        "
credentials:
  - {platform: openai, value: sk-1234567890}
models:
  - {vendor: openai, model: text-embedding-3-small, kind: embedding}
  - {vendor: openai, model: gpt-4o, name: text-embedding-3-small}
",
        "models[1]: name 'text-embedding-3-small' is used by both chat and embedding models (models[0] is embedding, this one is chat)",
    );
}

#[test]
fn base_url_must_be_http_or_https() {
    check_error(
        "
credentials:
  - {platform: openai, value: sk-1234567890, base_url: 'ftp://example.com/v1'}
models:
  - {vendor: openai, model: gpt-4o}
",
        "credentials[0].base_url: scheme 'ftp' is not http or https",
    );
}

#[test]
fn base_url_must_parse() {
    check_error(
        "
credentials:
  - {platform: openai, value: sk-1234567890, base_url: 'api.example.com/v1'}
models:
  - {vendor: openai, model: gpt-4o}
",
        "credentials[0].base_url: invalid URL (relative URL without a base)",
    );
}

#[test]
fn base_url_must_not_have_a_query() {
    check_error(
        "
credentials:
  - {platform: openai, value: sk-1234567890, base_url: 'https://example.com/v1?api-version=1'}
models:
  - {vendor: openai, model: gpt-4o}
",
        "credentials[0].base_url: must not have a query or fragment (llmux appends the operation path to it)",
    );
}

#[test]
fn base_url_errors_do_not_echo_the_url() {
    let errors = yaml_errors(
        "
credentials:
  - {platform: openai, value: sk-1234567890, base_url: 'ftp://user:hunter2@example.com'}
models:
  - {vendor: openai, model: gpt-4o}
",
    );
    assert!(errors.iter().all(|e| !e.contains("hunter2")), "{errors:?}");
}

#[test]
fn unknown_vendor_needs_a_base_url() {
    check_error(
        "
credentials:
  - {platform: openai, value: sk-1234567890}
  - {platform: gemini, value: AIza1234567890}
  - {platform: ollama, value: none}
models:
  - {vendor: ollama, model: llama3.2}
",
        "credentials[2]: vendor 'ollama' has no default base_url; set base_url",
    );
    check_error(
        "
credentials:
  - {platform: gemini, value: AIza1234567890, api: anthropic}
models:
  - {vendor: gemini, model: gemini-2.5-flash}
",
        "credentials[0]: vendor 'gemini' has no default base_url for api 'anthropic'; set base_url",
    );
}

#[test]
fn credential_value_must_not_be_empty() {
    check_error(
        "
credentials:
  - {platform: openai, value: ''}
models:
  - {vendor: openai, model: gpt-4o}
",
        "credentials[0].value: empty credential value",
    );
    // An empty default leaves a YAML null, which is an empty value too.
    let errors = yaml_errors_with(
        "credentials:\n  - platform: openai\n    value: ${KEY:-}\nmodels:\n  - {vendor: openai, model: m}\n",
        &[],
    );
    assert_eq!(errors, ["credentials[0].value: empty credential value"]);
}

#[test]
fn listen_must_parse() {
    check_error(
        &format!("listen: localhost:8082\n{MINIMAL}"),
        "listen: 'localhost:8082' is not an IP address and port (for example 0.0.0.0:8082 or [::1]:8082)",
    );
}

#[test]
fn limits_and_timeouts_must_be_positive() {
    let errors = yaml_errors(&format!(
        "{MINIMAL}limits: {{max_body_bytes: 0}}\ntimeouts: {{idle_ms: 0}}\n"
    ));
    assert_eq!(
        errors,
        [
            "limits.max_body_bytes: must be greater than 0",
            "timeouts.idle_ms: must be greater than 0"
        ]
    );
}

#[test]
fn empty_fields_are_errors() {
    let errors = yaml_errors(
        "
credentials:
  - {platform: '', value: sk-1234567890}
  - {platform: openai, value: sk-1234567890, name: ''}
models:
  - {vendor: openai, model: ''}
  - {vendor: openai, model: gpt-4o, name: ''}
  - {vendor: '', model: gpt-4o}
",
    );
    assert_eq!(
        errors,
        [
            "credentials[0].platform: empty platform",
            "credentials[1].name: empty name",
            "models[0].model: empty model",
            "models[1].name: empty name",
            "models[2].vendor: empty vendor",
        ]
    );
}

#[test]
fn all_problems_are_reported_at_once() {
    let errors = yaml_errors(
        "
listen: nowhere
credentials:
  - {platform: openai, value: ''}
  - {platform: openai, value: sk-1234567890, name: openai-1, base_url: 'gopher://x'}
  - {platform: ollama, value: x}
models:
  - {vendor: openai, model: gpt-4o}
  - {vendor: openai, model: gpt-4o}
  - {vendor: mistral, model: mistral-large}
",
    );
    assert_eq!(
        errors,
        [
            "listen: 'nowhere' is not an IP address and port (for example 0.0.0.0:8082 or [::1]:8082)",
            "credentials[0].value: empty credential value",
            "credentials[1].name: duplicate credential name 'openai-1' (also credentials[0])",
            "credentials[1].base_url: scheme 'gopher' is not http or https",
            "credentials[2]: vendor 'ollama' has no default base_url; set base_url",
            "models[1]: duplicate model 'openai/gpt-4o' (also models[0])",
            "models[2]: no credential for vendor 'mistral' (vendors with credentials: ollama, openai)",
        ]
    );
}

#[test]
fn hardening_limits_parse_and_zero_is_refused() {
    let config = yaml_ok(&format!(
        "{MINIMAL}limits: {{ max_connections: 50, max_in_flight: 7, max_upstream_body_bytes: 1000, max_upstream_event_bytes: 900, upstream_connections_per_host: 3 }}\ntimeouts: {{ client_idle_ms: 1234 }}\nreliability: {{ max_cooldown_ms: 5000 }}\ntls: {{ ca_file: /etc/ca.pem, roots: both }}\nimages: {{ max_per_request: 2, max_bytes: 10, max_total_bytes: 20, proxy: http://proxy:3128 }}\n"
    ));
    assert_eq!(config.limits.max_connections, 50);
    assert_eq!(config.limits.max_in_flight, 7);
    assert_eq!(config.limits.max_upstream_body_bytes, 1000);
    assert_eq!(config.limits.max_upstream_event_bytes, 900);
    assert_eq!(config.limits.upstream_connections_per_host, 3);
    assert_eq!(config.timeouts.client_idle_ms, 1234);
    assert_eq!(config.reliability.max_cooldown_ms, 5000);
    assert_eq!(
        config.tls.ca_file.as_deref(),
        Some(std::path::Path::new("/etc/ca.pem"))
    );
    assert_eq!(config.tls.roots, crate::TlsRoots::Both);
    assert_eq!(config.images.max_per_request, 2);
    assert_eq!(config.images.max_total_bytes, 20);
    assert_eq!(config.images.proxy.as_deref(), Some("http://proxy:3128"));

    let defaults = yaml_ok(MINIMAL);
    assert!(
        defaults.limits.max_in_flight >= 1024,
        "sized for the machine"
    );
    assert_eq!(defaults.reliability.max_cooldown_ms, 600_000);
    assert_eq!(defaults.tls.roots, crate::TlsRoots::Webpki);

    let errors = yaml_errors(&format!(
        "{MINIMAL}limits: {{ max_connections: 0, max_in_flight: 0 }}\nreliability: {{ max_cooldown_ms: 0 }}\nimages: {{ proxy: 'socks5://x', max_bytes: 100, max_total_bytes: 10 }}\n"
    ));
    for field in [
        "limits.max_connections",
        "limits.max_in_flight",
        "reliability.max_cooldown_ms",
        "images.proxy",
        "images.max_total_bytes",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(field)),
            "{field} in {errors:?}"
        );
    }
}

#[test]
fn images_fetch_takes_a_mode_or_the_older_boolean() {
    use crate::FetchImages;
    let fetch = |value: &str| {
        yaml_ok(&format!("{MINIMAL}images: {{ fetch: {value} }}\n"))
            .images
            .fetch
    };
    assert_eq!(yaml_ok(MINIMAL).images.fetch, FetchImages::Auto);
    assert_eq!(fetch("auto"), FetchImages::Auto);
    assert_eq!(fetch("all"), FetchImages::All);
    assert_eq!(fetch("off"), FetchImages::Off);
    assert_eq!(fetch("true"), FetchImages::Auto);
    assert_eq!(fetch("false"), FetchImages::Off);
    let hosts = yaml_ok(&format!(
        "{MINIMAL}images: {{ header_hosts: [Images.Example.com, ' '] }}\n"
    ));
    assert_eq!(
        hosts.images.header_hosts,
        vec!["images.example.com".to_owned()]
    );
    let errors = yaml_errors(&format!("{MINIMAL}images: {{ fetch: sometimes }}\n"));
    assert!(
        errors
            .iter()
            .any(|e| e.contains("images.fetch") && e.contains("'sometimes'")),
        "{errors:?}"
    );
}

#[test]
fn the_trace_sample_ratio_is_a_share() {
    check_error(
        &format!("{MINIMAL}telemetry:\n  sample_ratio: 1.5\n"),
        "telemetry.sample_ratio: 1.5 is not a number from 0 to 1",
    );
    let config = yaml_ok(&format!("{MINIMAL}telemetry:\n  sample_ratio: 0.25\n"));
    assert_eq!(
        config
            .telemetry
            .sample_ratio
            .map(crate::SampleRatio::per_million),
        Some(250_000)
    );
    assert_eq!(yaml_ok(MINIMAL).telemetry.sample_ratio, None);
}

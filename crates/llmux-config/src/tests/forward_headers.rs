//! `credentials[].forward_headers`: names normalised, refused names reported with why.

use super::{yaml_ok, yaml_with};

#[test]
fn forward_headers_are_lowercased_and_deduplicated() {
    let config = yaml_ok(
        "credentials:
  - { platform: openrouter, value: k, base_url: 'https://openrouter.ai/api/v1', forward_headers: [HTTP-Referer, X-Title, x-title, ' user-agent '] }
  - { platform: openai, value: k2 }
models:
  - { vendor: openrouter, model: m }
",
    );
    assert_eq!(
        config.credentials[0].forward_headers,
        ["http-referer", "x-title", "user-agent"]
    );
    assert!(config.credentials[1].forward_headers.is_empty());
}

#[test]
fn secrets_cookies_hop_by_hop_and_framing_headers_are_refused() {
    let refused = [
        ("Authorization", "carries a credential"),
        ("x-api-key", "carries a credential"),
        ("X-Goog-Api-Key", "carries a credential"),
        ("proxy-authorization", "carries a credential"),
        ("cookie", "cookies are never forwarded"),
        ("set-cookie", "cookies are never forwarded"),
        ("connection", "hop-by-hop"),
        ("transfer-encoding", "hop-by-hop"),
        ("upgrade", "hop-by-hop"),
        ("te", "hop-by-hop"),
        ("host", "set by llmux"),
        ("content-length", "set by llmux"),
        ("accept-encoding", "set by llmux"),
        ("bad header", "is not an HTTP header name"),
        ("", "is not an HTTP header name"),
    ];
    for (name, why) in refused {
        let text = format!(
            "credentials:\n  - {{ platform: openai, value: k, forward_headers: [x-ok, '{name}'] }}\nmodels:\n  - {{ vendor: openai, model: m }}\n"
        );
        let errors = yaml_with(&text, &[]).unwrap_err();
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            shown.len() == 1
                && shown[0].contains("credentials[0].forward_headers[1]")
                && shown[0].contains(why),
            "{name}: {shown:?}"
        );
    }
}

#[test]
fn every_refused_name_is_reported_at_once() {
    let errors = yaml_with(
        "credentials:\n  - { platform: openai, value: k, forward_headers: [authorization, cookie] }\nmodels:\n  - { vendor: openai, model: m }\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(errors.len(), 2, "{errors:?}");
}

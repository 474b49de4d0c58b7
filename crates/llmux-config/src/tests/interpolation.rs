//! `${VAR}`, `${VAR:-default}` and `$${`.

use super::{yaml_errors_with, yaml_with};
use crate::Format;

fn value_of(text: &str, pairs: &[(&str, &str)]) -> String {
    let config = yaml_with(text, pairs).unwrap();
    config.credentials[0].secret.expose().to_owned()
}

fn one_credential(value: &str) -> String {
    format!(
        "credentials:\n  - platform: openai\n    value: \"{value}\"\nmodels:\n  - vendor: openai\n    model: gpt-4o\n"
    )
}

#[test]
fn set_variable_is_substituted() {
    let text = one_credential("${OPENAI_API_KEY}");
    assert_eq!(
        value_of(&text, &[("OPENAI_API_KEY", "sk-from-env-1234")]),
        "sk-from-env-1234"
    );
}

#[test]
fn default_is_used_when_unset_or_empty() {
    let text = one_credential("${OPENAI_API_KEY:-sk-default-value}");
    assert_eq!(value_of(&text, &[]), "sk-default-value");
    assert_eq!(
        value_of(&text, &[("OPENAI_API_KEY", "")]),
        "sk-default-value"
    );
    assert_eq!(
        value_of(&text, &[("OPENAI_API_KEY", "sk-set-wins")]),
        "sk-set-wins"
    );
}

#[test]
fn substitution_works_inside_other_text() {
    let text = one_credential("pre-${A}-mid-${B:-b}-post");
    assert_eq!(value_of(&text, &[("A", "a")]), "pre-a-mid-b-post");
}

#[test]
fn missing_variable_names_the_variable_and_line() {
    let errors = yaml_errors_with(&one_credential("${OPENAI_API_KEY}"), &[]);
    assert_eq!(
        errors,
        [
            "line 3: environment variable OPENAI_API_KEY is not set (use ${OPENAI_API_KEY:-default} for a default)"
        ]
    );
}

#[test]
fn every_missing_variable_is_reported() {
    let text = "\
listen: ${LISTEN}
credentials:
  - platform: openai
    value: ${KEY_ONE}${KEY_TWO}
  - platform: ${PLATFORM:-openai}
    value: ${KEY_THREE}
models: []
";
    let errors = yaml_errors_with(text, &[]);
    let expected: Vec<String> = [(1, "LISTEN"), (4, "KEY_ONE"), (4, "KEY_TWO"), (6, "KEY_THREE")]
        .iter()
        .map(|(line, var)| {
            format!("line {line}: environment variable {var} is not set (use ${{{var}:-default}} for a default)")
        })
        .collect();
    assert_eq!(errors, expected);
}

#[test]
fn double_dollar_escapes_a_literal() {
    let text = one_credential("$${NOT_A_VAR}-$$-$x");
    assert_eq!(value_of(&text, &[]), "${NOT_A_VAR}-$$-$x");
}

#[test]
fn comment_lines_are_not_interpolated() {
    let text = format!("# value: ${{OLD_KEY}}\n{}", one_credential("plain-key-123"));
    assert_eq!(value_of(&text, &[]), "plain-key-123");
}

#[test]
fn json_and_toml_are_interpolated_too() {
    let pairs = [("KEY", "sk-interpolated-123")];
    let json = crate::from_str(
        r#"{"credentials":[{"platform":"openai","value":"${KEY}"}],"models":[{"vendor":"openai","model":"m"}]}"#,
        Format::Json,
        &super::env(&pairs),
    )
    .unwrap();
    assert_eq!(json.credentials[0].secret.expose(), "sk-interpolated-123");
    let toml = crate::from_str(
        "[[credentials]]\nplatform = \"openai\"\nvalue = \"${KEY}\"\n[[models]]\nvendor = \"openai\"\nmodel = \"m\"\n",
        Format::Toml,
        &super::env(&pairs),
    )
    .unwrap();
    assert_eq!(toml.credentials[0].secret.expose(), "sk-interpolated-123");
}

#[test]
fn malformed_references_are_errors() {
    let errors = yaml_errors_with(
        "listen: ${PORT\ncredentials: []\nmodels: ${}\nx: ${A-b}\n",
        &[],
    );
    assert_eq!(
        errors,
        [
            "line 1: unterminated ${ (close it with })",
            "line 3: invalid variable reference ${} (use ${NAME} or ${NAME:-default})",
            "line 4: invalid variable reference ${A-b} (use ${NAME} or ${NAME:-default})",
        ]
    );
}

#[test]
fn parse_errors_do_not_quote_interpolated_secrets() {
    let secret = "sk-live-very-secret-0123456789";
    // The key lands where the parser quotes it back ("unknown variant ...").
    let text = "credentials: []\nmodels:\n  - vendor: openai\n    model: m\n    kind: ${KEY}\n";
    let errors = yaml_errors_with(text, &[("KEY", secret)]);
    assert_eq!(errors.len(), 1);
    assert!(!errors[0].contains(secret), "{errors:?}");
    assert!(errors[0].starts_with("line 5: "), "{errors:?}");

    let json = crate::from_str(
        r#"{"models": [{"vendor": "openai", "model": "m", "kind": "${KEY}"}]}"#,
        Format::Json,
        &super::env(&[("KEY", secret)]),
    )
    .unwrap_err();
    assert!(!json[0].to_string().contains(secret), "{json:?}");
    assert!(json[0].to_string().contains("***"), "{json:?}");

    let toml = crate::from_str(
        "[[models]]\nvendor = \"openai\"\nmodel = \"m\"\nkind = \"${KEY}\"\n",
        Format::Toml,
        &super::env(&[("KEY", secret)]),
    )
    .unwrap_err();
    assert!(!toml[0].to_string().contains(secret), "{toml:?}");
}

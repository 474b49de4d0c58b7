//! A credential value never shows up in Debug, Display, errors or the table.

use super::{messages, yaml_with};
use crate::Secret;

const KEY: &str = "sk-proj-SECRET-abcdefghijklmnop";

#[test]
fn secret_debug_and_display_are_redacted() {
    let secret = Secret::new(KEY.to_owned());
    assert_eq!(format!("{secret:?}"), "***");
    assert_eq!(format!("{secret}"), "***");
    assert_eq!(secret.expose(), KEY);
    let copy = secret.clone();
    assert_eq!(copy.expose(), KEY);
}

#[test]
fn config_debug_and_table_never_contain_the_key() {
    let config = yaml_with(
        "credentials:\n  - {platform: openai, value: '${KEY}'}\nmodels:\n  - {vendor: openai, model: gpt-4o}\n",
        &[("KEY", KEY)],
    )
    .unwrap();
    assert_eq!(config.credentials[0].secret.expose(), KEY);
    let debug = format!("{config:?}");
    assert!(!debug.contains(KEY), "{debug}");
    assert!(debug.contains("***"), "{debug}");
    assert!(!format!("{config:#?}").contains(KEY));
    assert!(!config.combination_table().contains(KEY));
}

#[test]
fn validation_errors_never_contain_the_key() {
    let errors = yaml_with(
        &format!(
            "
listen: nowhere
credentials:
  - {{platform: openai, value: {KEY}, base_url: 'ftp://x'}}
  - {{platform: openai, value: {KEY}, name: openai-1}}
  - {{platform: nowhere, value: {KEY}}}
models:
  - {{vendor: openai, model: gpt-4o}}
  - {{vendor: openai, model: gpt-4o}}
  - {{vendor: anthropic, model: claude}}
"
        ),
        &[],
    )
    .unwrap_err();
    assert!(errors.len() >= 5, "{errors:?}");
    for error in messages(&errors) {
        assert!(!error.contains(KEY), "{error}");
    }
    assert!(!format!("{errors:?}").contains(KEY));
}

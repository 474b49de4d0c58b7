//! `credentials[].responses`: native for OpenAI itself, translate elsewhere, native only where
//! the credential speaks OpenAI's API.

use super::{yaml_errors, yaml_ok};
use crate::ResponsesMode;

#[test]
fn native_for_openai_and_translate_for_every_other_credential_by_default() {
    let config = yaml_ok(
        "credentials:
  - { platform: openai, value: k }
  - { platform: ollama, value: k, base_url: 'http://127.0.0.1:11434/v1' }
  - { platform: gemini, value: k, api: openai, base_url: 'https://generativelanguage.googleapis.com/v1beta/openai' }
  - { platform: anthropic, value: k }
  - { platform: openrouter, value: k, base_url: 'https://openrouter.ai/api/v1', responses: native }
  - { name: openai-chat-only, platform: openai, value: k, responses: translate }
models:
  - { vendor: openai, model: m }
",
    );
    let modes: Vec<_> = config.credentials.iter().map(|c| c.responses).collect();
    assert_eq!(
        modes,
        [
            ResponsesMode::Native,
            ResponsesMode::Translate,
            ResponsesMode::Translate,
            ResponsesMode::Translate,
            ResponsesMode::Native,
            ResponsesMode::Translate,
        ]
    );
}

#[test]
fn native_needs_the_openai_api_and_unknown_modes_are_refused() {
    let errors = yaml_errors(
        "credentials:\n  - { platform: anthropic, value: k, responses: native }\nmodels:\n  - { vendor: anthropic, model: m }\n",
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("credentials[0].responses") && e.contains("api: openai")),
        "{errors:?}"
    );
    let errors = yaml_errors(
        "credentials:\n  - { platform: openai, value: k, responses: sometimes }\nmodels:\n  - { vendor: openai, model: m }\n",
    );
    assert!(errors.iter().any(|e| e.contains("sometimes")), "{errors:?}");
}

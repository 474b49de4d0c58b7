//! Encrypted credentials: sealed `llmux:v1:` values in every format, and the original router's
//! encrypted `credentials.json`, opened on load with clear errors.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead as _, KeyInit as _, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use llmux_auth::{Keyring, SecretKey};

use super::discover::TempDir;
use super::{env, messages};
use crate::{Config, ConfigError, Format, Source, from_str, load};

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const OTHER_KEY: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f";
const SECRET: &str = "sk-proj-SECRET-abcdefghijklmnop";
const SECRET_2: &str = "AIzaSy-SECOND-SECRET-0123456789";

fn seal(key: &str, plaintext: &str) -> String {
    Keyring::new(SecretKey::parse(key).unwrap(), Vec::new())
        .seal(plaintext)
        .unwrap()
}

fn key_id(key: &str) -> String {
    SecretKey::parse(key).unwrap().id().to_string()
}

/// Three credentials, the third one sealed (so errors name `credentials[2]`).
fn yaml(sealed: &str) -> String {
    format!(
        "credentials:
  - platform: openai
    value: plain-key-0001
  - platform: gemini
    value: ${{GEMINI_API_KEY:-gemini-plain}}
  - platform: openai
    name: sealed
    value: {sealed}
models:
  - vendor: openai
    model: gpt-4o-mini
"
    )
}

fn secret_of(config: &Config, name: &str) -> String {
    config
        .credentials
        .iter()
        .find(|c| c.name == name)
        .unwrap()
        .secret
        .expose()
        .to_owned()
}

#[track_caller]
fn errors(result: Result<Config, Vec<ConfigError>>) -> Vec<String> {
    match result {
        Ok(config) => panic!("expected errors, got {config:?}"),
        Err(errors) => messages(&errors),
    }
}

#[track_caller]
fn assert_no_secret(messages: &[String]) {
    for message in messages {
        for secret in [SECRET, SECRET_2, KEY, OTHER_KEY] {
            assert!(!message.contains(secret), "{message}");
        }
    }
}

#[test]
fn sealed_values_load_as_the_plaintext_in_yaml_json_and_toml() {
    let sealed = seal(KEY, SECRET);
    let keyed = env(&[("LLMUX_SECRET_KEY", KEY)]);

    let config = from_str(&yaml(&sealed), Format::Yaml, &keyed).unwrap();
    assert_eq!(secret_of(&config, "sealed"), SECRET);
    assert_eq!(secret_of(&config, "openai-1"), "plain-key-0001");
    assert_eq!(secret_of(&config, "gemini-1"), "gemini-plain");

    let json = format!(
        r#"{{"credentials": [{{"platform": "openai", "value": "{sealed}"}}],
            "models": [{{"vendor": "openai", "model": "gpt-4o"}}]}}"#
    );
    let config = from_str(&json, Format::Json, &keyed).unwrap();
    assert_eq!(secret_of(&config, "openai-1"), SECRET);

    let toml = format!(
        "[[credentials]]\nplatform = \"openai\"\nvalue = \"{sealed}\"  # sealed\n\n[[models]]\nvendor = \"openai\"\nmodel = \"gpt-4o\"\n"
    );
    let config = from_str(&toml, Format::Toml, &keyed).unwrap();
    assert_eq!(secret_of(&config, "openai-1"), SECRET);
}

#[test]
fn a_sealed_value_can_come_from_an_environment_variable() {
    // Interpolation runs first, so `${VAR}` holding a sealed value works too.
    let sealed = seal(KEY, SECRET);
    let config = from_str(
        &yaml("${SEALED_KEY}"),
        Format::Yaml,
        &env(&[("LLMUX_SECRET_KEY", KEY), ("SEALED_KEY", &sealed)]),
    )
    .unwrap();
    assert_eq!(secret_of(&config, "sealed"), SECRET);
}

#[test]
fn sealed_values_in_the_seed_layout_load() {
    let dir = TempDir::new("sealed-seed");
    let credentials = dir.write(
        "configs/credentials.json",
        &format!(
            r#"[{{"platform":"openai","type":"api-key","value":"{}"}},{{"platform":"gemini","type":"api-key","value":"{}"}}]"#,
            seal(KEY, SECRET),
            seal(OTHER_KEY, SECRET_2)
        ),
    );
    let models = dir.write(
        "configs/models.json",
        r#"[{"vendor":"openai","model":"gpt-4o"},{"vendor":"gemini","model":"gemini-2.5-flash"}]"#,
    );
    let source = Source::Seed {
        credentials,
        models,
    };
    // The second value was sealed under a key that is now a previous one.
    let config = load(
        &source,
        &env(&[
            ("LLMUX_SECRET_KEY", KEY),
            ("LLMUX_SECRET_KEY_PREVIOUS", OTHER_KEY),
        ]),
    )
    .unwrap();
    assert_eq!(secret_of(&config, "openai-1"), SECRET);
    assert_eq!(secret_of(&config, "gemini-1"), SECRET_2);

    let messages = errors(load(&source, &env(&[("LLMUX_SECRET_KEY", KEY)])));
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].starts_with(&format!(
            "credentials[1].value: cannot be decrypted with the configured LLMUX_SECRET_KEY (key id {} sealed it",
            key_id(OTHER_KEY)
        )),
        "{messages:?}"
    );
}

#[test]
fn a_sealed_value_without_the_key_is_a_clear_error() {
    let sealed = seal(KEY, SECRET);
    let messages = errors(from_str(&yaml(&sealed), Format::Yaml, &env(&[])));
    assert_eq!(
        messages,
        ["credentials[2].value: is encrypted but LLMUX_SECRET_KEY is not set"]
    );
    let messages = errors(from_str(
        &yaml(&sealed),
        Format::Yaml,
        &env(&[("LLMUX_SECRET_KEY", "")]),
    ));
    assert_eq!(
        messages,
        ["credentials[2].value: is encrypted but LLMUX_SECRET_KEY is not set"]
    );
}

#[test]
fn a_sealed_value_with_the_wrong_key_is_a_clear_error() {
    let sealed = seal(KEY, SECRET);
    let messages = errors(from_str(
        &yaml(&sealed),
        Format::Yaml,
        &env(&[("LLMUX_SECRET_KEY", OTHER_KEY)]),
    ));
    assert_eq!(
        messages,
        [format!(
            "credentials[2].value: cannot be decrypted with the configured LLMUX_SECRET_KEY (key id {} sealed it, but the configured keys are {}; put the key it was sealed with in LLMUX_SECRET_KEY or LLMUX_SECRET_KEY_PREVIOUS)",
            key_id(KEY),
            key_id(OTHER_KEY)
        )]
    );
    assert_no_secret(&messages);
}

#[test]
fn a_tampered_sealed_value_is_a_clear_error() {
    let sealed = seal(KEY, SECRET);
    // A character inside the ciphertext: every one of its 6 bits is data, so the value still
    // decodes and only authentication can fail. (The last character may carry padding bits, and
    // changing it made the value malformed instead, depending on the random nonce.)
    let at = sealed.len() - 5;
    let original = sealed.as_bytes()[at];
    let tampered = format!(
        "{}{}{}",
        &sealed[..at],
        if original == b'A' { 'B' } else { 'A' },
        &sealed[at + 1..]
    );
    let messages = errors(from_str(
        &yaml(&tampered),
        Format::Yaml,
        &env(&[("LLMUX_SECRET_KEY", KEY)]),
    ));
    assert_eq!(
        messages,
        [format!(
            "credentials[2].value: cannot be decrypted with the configured LLMUX_SECRET_KEY (key id {}: authentication failed, so the value was altered or truncated)",
            key_id(KEY)
        )]
    );
}

#[test]
fn a_malformed_key_is_reported_once_without_its_value() {
    let sealed = seal(KEY, SECRET);
    let text = yaml(&sealed).replace("    value: plain-key-0001", &format!("    value: {sealed}"));
    let messages = errors(from_str(
        &text,
        Format::Yaml,
        &env(&[("LLMUX_SECRET_KEY", "my-password")]),
    ));
    assert_eq!(
        messages,
        [
            "LLMUX_SECRET_KEY: must be 32 bytes written as 64 hex characters or as base64, but it is 11 characters long and neither (generate a key with `openssl rand -hex 32`)"
        ]
    );
}

#[test]
fn decryption_errors_come_with_every_other_problem() {
    let sealed = seal(KEY, SECRET);
    let text = format!("{}  - vendor: nowhere\n    model: x\n", yaml(&sealed));
    let messages = errors(from_str(&text, Format::Yaml, &env(&[])));
    assert_eq!(messages.len(), 2, "{messages:?}");
    assert_eq!(
        messages[0],
        "credentials[2].value: is encrypted but LLMUX_SECRET_KEY is not set"
    );
    assert!(messages[1].starts_with("models[1]: no credential for vendor 'nowhere'"));
}

#[test]
fn values_that_only_mention_llmux_are_plain() {
    let config = from_str(&yaml("sk-llmux:v1:not-sealed"), Format::Yaml, &env(&[])).unwrap();
    assert_eq!(secret_of(&config, "sealed"), "sk-llmux:v1:not-sealed");
}

// ---- the original router's encrypted credentials.json ----

const LEGACY_KEY: &str = "0123456789abcdef0123456789abcdef";
const LEGACY_JSON: &str = r#"[{"platform":"openai","type":"api-key","value":"sk-proj-SECRET-abcdefghijklmnop"},{"platform":"gemini","type":"api-key","value":"AIzaSy-SECOND-SECRET-0123456789"}]"#;

/// `base64(nonce ‖ AES-256-GCM(plaintext) ‖ tag)`, no AAD, as the original router writes it.
fn legacy_encrypt(key: &[u8], plaintext: &str) -> String {
    let nonce = [7u8; 12];
    let cipher = Aes256Gcm::new_from_slice(key).unwrap();
    let sealed = cipher
        .encrypt(&Nonce::<Aes256Gcm>::from(nonce), plaintext.as_bytes())
        .unwrap();
    STANDARD.encode([nonce.as_slice(), &sealed].concat())
}

fn legacy_seed(dir: &TempDir, credentials: &str) -> Source {
    let credentials = dir.write("configs/credentials.json", credentials);
    let models = dir.write(
        "configs/models.json",
        r#"{"vendors": {"openai": "https://api.openai.com/v1", "gemini": "https://generativelanguage.googleapis.com/v1beta/openai"},
            "models": [{"vendor": "openai", "model": "gpt-4o"}, {"vendor": "gemini", "model": "gemini-2.5-flash"}]}"#,
    );
    Source::Seed {
        credentials,
        models,
    }
}

#[test]
fn the_original_routers_encrypted_credentials_json_loads() {
    let dir = TempDir::new("legacy-ok");
    let file = format!("{}\n", legacy_encrypt(LEGACY_KEY.as_bytes(), LEGACY_JSON));
    let source = legacy_seed(&dir, &file);
    let config = load(&source, &env(&[("CONFIG_ENCRYPTION_KEY", LEGACY_KEY)])).unwrap();
    assert_eq!(secret_of(&config, "openai-1"), SECRET);
    assert_eq!(secret_of(&config, "gemini-1"), SECRET_2);
}

#[test]
fn the_encrypted_credentials_json_without_its_key_is_a_clear_error() {
    let dir = TempDir::new("legacy-missing");
    let source = legacy_seed(&dir, &legacy_encrypt(LEGACY_KEY.as_bytes(), LEGACY_JSON));
    let name = credentials_name(&source);
    let messages = errors(load(&source, &env(&[])));
    assert_eq!(
        messages,
        [format!(
            "{name}: is encrypted (the original router's format) but CONFIG_ENCRYPTION_KEY is not set"
        )]
    );
}

#[test]
fn the_encrypted_credentials_json_with_a_key_of_the_wrong_length_is_a_clear_error() {
    let dir = TempDir::new("legacy-length");
    let source = legacy_seed(&dir, &legacy_encrypt(LEGACY_KEY.as_bytes(), LEGACY_JSON));
    let name = credentials_name(&source);
    // The original router's built-in default, which is 36 bytes.
    let messages = errors(load(
        &source,
        &env(&[(
            "CONFIG_ENCRYPTION_KEY",
            "default-key-change-in-production-32b",
        )]),
    ));
    assert_eq!(
        messages,
        [format!(
            "{name}: is encrypted (the original router's format) but CONFIG_ENCRYPTION_KEY is 36 bytes long; it must be exactly 32 bytes"
        )]
    );
}

#[test]
fn the_encrypted_credentials_json_with_the_wrong_key_is_a_clear_error() {
    let dir = TempDir::new("legacy-wrong");
    let source = legacy_seed(&dir, &legacy_encrypt(LEGACY_KEY.as_bytes(), LEGACY_JSON));
    let name = credentials_name(&source);
    let messages = errors(load(
        &source,
        &env(&[("CONFIG_ENCRYPTION_KEY", "ffffffffffffffffffffffffffffffff")]),
    ));
    assert_eq!(
        messages,
        [format!(
            "{name}: cannot be decrypted with CONFIG_ENCRYPTION_KEY (wrong key, or the file was altered)"
        )]
    );
    assert_no_secret(&messages);
}

#[test]
fn decrypted_content_that_is_not_a_credentials_list_is_reported_without_quoting_it() {
    let dir = TempDir::new("legacy-content");
    let source = legacy_seed(
        &dir,
        &legacy_encrypt(LEGACY_KEY.as_bytes(), &format!("\"{SECRET}\"")),
    );
    let name = credentials_name(&source);
    let messages = errors(load(
        &source,
        &env(&[("CONFIG_ENCRYPTION_KEY", LEGACY_KEY)]),
    ));
    assert_eq!(
        messages,
        [format!(
            "{name}: decrypted with CONFIG_ENCRYPTION_KEY, but line 1 of the content is not a valid credentials list"
        )]
    );
    assert_no_secret(&messages);
}

fn credentials_name(source: &Source) -> String {
    let Source::Seed { credentials, .. } = source else {
        panic!("seed source expected");
    };
    credentials.display().to_string()
}

//! Rewriting files: what changes, what survives, and what is refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use std::collections::HashMap;
use std::path::Path;

use serde_json::Value;

use super::{
    ActionError, Layout, RewriteError, decrypt, encrypt, escape_literal, has_reference, rotate,
    unescape_literal,
};
use crate::{KeyError, SecretKey, looks_sealed};

const KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const NEW_KEY: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f";

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

fn keyed() -> impl Fn(&str) -> Option<String> {
    env(&[("LLMUX_SECRET_KEY", KEY)])
}

/// The credential values of `text` as a generic parser reads them.
fn values(text: &str, layout: Layout) -> Vec<Value> {
    let tree = super::parse_tree(text, layout).unwrap();
    let list = match layout {
        Layout::Seed => tree.0.clone(),
        _ => tree.0["credentials"].clone(),
    };
    list.as_array()
        .unwrap()
        .iter()
        .map(|c| c.get("value").cloned().unwrap_or(Value::Null))
        .collect()
}

/// Encrypts, checks every other line is untouched, decrypts, and checks the values come back.
#[track_caller]
fn round_trip(text: &str, layout: Layout) -> String {
    let before = values(text, layout);
    let encrypted = encrypt(text, layout, &keyed()).unwrap();
    let after = values(&encrypted.text, layout);
    assert_eq!(before.len(), after.len());
    for (old, new) in before.iter().zip(&after) {
        let old_text = match old {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let plain = !old_text.trim().is_empty()
            && !looks_sealed(old_text.trim())
            && !has_reference(&old_text);
        if plain {
            let new = new.as_str().unwrap();
            assert!(looks_sealed(new), "{new}");
            // A short plaintext (the number `42`) can occur by chance inside the random base64
            // of a nonce or ciphertext; a longer one cannot.
            if old_text.trim().len() >= 8 {
                assert!(
                    !encrypted.text.contains(old_text.trim()),
                    "{}",
                    *encrypted.text
                );
            }
        } else {
            assert_eq!(old, new);
        }
    }
    let decrypted = decrypt(&encrypted.text, layout, &keyed()).unwrap();
    assert_eq!(values(&decrypted.text, layout), {
        // Numbers and booleans come back as strings, as the loader reads them anyway.
        before
            .iter()
            .map(|v| match v {
                Value::Number(n) => Value::String(n.to_string()),
                Value::Bool(b) => Value::String(b.to_string()),
                other => other.clone(),
            })
            .collect::<Vec<_>>()
    });
    encrypted.text.to_string()
}

const YAML: &str = "\
# llmux config: comments survive
listen: 0.0.0.0:8082
credentials:
  - platform: openai          # main account
    value: sk-plain-0001      # the key
    name: openai-1
  - platform: anthropic
    value: \"sk-ant-quoted-0002\"
  - platform: gemini
    value: 'AIza-single''quote'
  - platform: openai
    value: ${OPENAI_API_KEY}
    name: from-env
  -
    platform: ollama
    value: unused
  - platform: openai
    name: numeric
    value: 12345
auth:
  value: not-a-credential
models:
  - vendor: openai
    model: gpt-4o-mini
    # value: commented-out
";

#[test]
fn yaml_values_are_sealed_in_place_and_everything_else_survives() {
    let encrypted = round_trip(YAML, Layout::Yaml);
    let before: Vec<&str> = YAML.lines().collect();
    let after: Vec<&str> = encrypted.lines().collect();
    assert_eq!(before.len(), after.len());
    for (old, new) in before.iter().zip(&after) {
        if old.starts_with("    value:") && !old.contains("${") {
            assert!(
                new.contains("value: ") && new.contains("llmux:v1:"),
                "{new}"
            );
        } else {
            assert_eq!(old, new);
        }
    }
    // Quoting style and trailing comments are kept.
    assert!(encrypted.contains("    value: llmux:v1:"));
    assert!(encrypted.contains("      # the key\n"));
    assert!(encrypted.contains("    value: \"llmux:v1:"));
    assert!(encrypted.contains("    value: 'llmux:v1:"));
    assert!(encrypted.contains("    value: ${OPENAI_API_KEY}\n"));
    assert!(encrypted.contains("  value: not-a-credential\n"));
    assert!(encrypted.contains("    # value: commented-out\n"));
}

#[test]
fn encrypt_counts_and_leaves_sealed_values_alone() {
    let first = encrypt(YAML, Layout::Yaml, &keyed()).unwrap();
    assert_eq!(first.changed, 5);
    assert_eq!(first.references, 1);
    assert_eq!(first.key_id, Some(SecretKey::parse(KEY).unwrap().id()));
    let second = encrypt(&first.text, Layout::Yaml, &keyed()).unwrap();
    assert_eq!(second.changed, 0);
    assert_eq!(second.sealed, 5);
    assert_eq!(*second.text, *first.text);
}

#[test]
fn json_config_and_seed_round_trip_with_layout_kept() {
    let json = r#"{
  "credentials": [
    {"platform": "openai", "value": "sk-json-0001", "name": "a"},
    {"platform": "gemini", "value": "${GEMINI_API_KEY}"},
    {"platform": "anthropic", "value": "sk-ant-\"escaped\"\\0003"},
    {"platform": "openai", "value": 42, "name": "num"}
  ],
  "models": [{"vendor": "openai", "model": "gpt-4o", "value": "not-a-credential"}]
}
"#;
    let encrypted = round_trip(json, Layout::Json);
    assert!(encrypted.contains(r#""value": "not-a-credential""#));
    assert!(encrypted.contains(r#""value": "${GEMINI_API_KEY}""#));
    assert!(encrypted.starts_with(
        "{\n  \"credentials\": [\n    {\"platform\": \"openai\", \"value\": \"llmux:v1:"
    ));

    let seed = r#"[{"platform":"openai","type":"api-key","value":"sk-proj-seed"},
 {"platform":"gemini","type":"api-key","value":"AIzaSeed"}]"#;
    let encrypted = round_trip(seed, Layout::Seed);
    assert!(encrypted.starts_with(r#"[{"platform":"openai","type":"api-key","value":"llmux:v1:"#));
}

#[test]
fn toml_values_are_sealed_in_place() {
    let toml = r#"# top comment
listen = "0.0.0.0:8082"

[[credentials]]
platform = "openai"
value = "sk-toml-0001"   # trailing comment
name = "a"

[[credentials]]
platform = "gemini"
value = 'AIza-literal'

[[ credentials ]]
platform = "anthropic"
value = "${ANTHROPIC_API_KEY}"

[[credentials]]
platform = "openai"
name = "n"
value = 777

[credentials.timeouts]
connect_ms = 1000

[[models]]
vendor = "openai"
model = "gpt-4o"
"#;
    let encrypted = round_trip(toml, Layout::Toml);
    assert!(encrypted.contains("value = \"llmux:v1:"));
    assert!(encrypted.contains("   # trailing comment\n"));
    assert!(encrypted.contains("value = 'llmux:v1:"));
    assert!(encrypted.contains("value = \"${ANTHROPIC_API_KEY}\"\n"));
    assert!(encrypted.starts_with("# top comment\nlisten = \"0.0.0.0:8082\"\n"));
}

#[test]
fn decrypted_values_that_need_quoting_are_quoted() {
    // Plaintexts that would not read back as themselves in a plain or literal scalar.
    let tricky = [
        "true",
        "123",
        "has space",
        "quote'inside",
        "dq\"inside",
        "new\nline",
        "tab\there",
        "del\u{7f}",
        "# not a comment",
        "ünï",
    ];
    for layout in [Layout::Yaml, Layout::Toml, Layout::Json] {
        for plaintext in tricky {
            let sealed = crate::Keyring::from_env(&keyed())
                .unwrap()
                .seal(plaintext)
                .unwrap();
            let text = match layout {
                Layout::Yaml => format!("credentials:\n  - platform: x\n    value: {sealed}\n"),
                Layout::Toml => {
                    format!("[[credentials]]\nplatform = \"x\"\nvalue = '{sealed}'\n")
                }
                _ => format!(r#"{{"credentials": [{{"platform": "x", "value": "{sealed}"}}]}}"#),
            };
            let decrypted = decrypt(&text, layout, &keyed()).unwrap();
            assert_eq!(
                values(&decrypted.text, layout),
                vec![Value::String(plaintext.to_owned())],
                "{layout:?} {plaintext:?}: {}",
                *decrypted.text
            );
            // And it encrypts back from there.
            let again = encrypt(&decrypted.text, layout, &keyed()).unwrap();
            assert_eq!(again.changed, 1);
        }
    }
}

#[test]
fn dollar_braces_survive_a_round_trip_as_the_loader_reads_them() {
    let cases = [
        ("a$${b}", "a${b}"),
        ("$$${X}", "$${X}"),
        ("plain$", "plain$"),
        ("$$", "$$"),
    ];
    for (in_file, loaded) in cases {
        assert!(!has_reference(in_file), "{in_file}");
        assert_eq!(unescape_literal(in_file).as_str(), loaded);
        let escaped = escape_literal(loaded);
        assert!(!has_reference(&escaped), "{}", *escaped);
        assert_eq!(unescape_literal(&escaped).as_str(), loaded);
    }
    for reference in ["${A}", "x${A:-d}y", "$${A}${B}"] {
        assert!(has_reference(reference), "{reference}");
    }

    let text = "credentials:\n  - platform: x\n    value: 'a$${b}'\n";
    let encrypted = encrypt(text, Layout::Yaml, &keyed()).unwrap();
    assert_eq!(encrypted.changed, 1);
    let ring = crate::Keyring::from_env(&keyed()).unwrap();
    let sealed = values(&encrypted.text, Layout::Yaml)[0]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(ring.open(&sealed).unwrap().as_str(), "a${b}");
    let decrypted = decrypt(&encrypted.text, Layout::Yaml, &keyed()).unwrap();
    assert_eq!(
        values(&decrypted.text, Layout::Yaml),
        vec![Value::from("a$${b}")]
    );
}

#[test]
fn rotate_reseals_old_values_under_the_current_key_only() {
    let old = encrypt(YAML, Layout::Yaml, &keyed()).unwrap();
    let rotated_env = env(&[
        ("LLMUX_SECRET_KEY", NEW_KEY),
        ("LLMUX_SECRET_KEY_PREVIOUS", KEY),
    ]);
    let rotated = rotate(&old.text, Layout::Yaml, &rotated_env).unwrap();
    assert_eq!(rotated.changed, 5);
    let new_id = SecretKey::parse(NEW_KEY).unwrap().id().to_string();
    for value in values(&rotated.text, Layout::Yaml) {
        let value = value.as_str().unwrap();
        if looks_sealed(value) {
            assert_eq!(crate::sealed_key_id(value).unwrap().to_string(), new_id);
        }
    }
    // Comments and the other lines survive a rotation too.
    assert_eq!(
        old.text
            .lines()
            .filter(|l| !l.contains("llmux:v1:"))
            .collect::<Vec<_>>(),
        rotated
            .text
            .lines()
            .filter(|l| !l.contains("llmux:v1:"))
            .collect::<Vec<_>>()
    );
    // The new key alone opens everything.
    let decrypted = decrypt(
        &rotated.text,
        Layout::Yaml,
        &env(&[("LLMUX_SECRET_KEY", NEW_KEY)]),
    )
    .unwrap();
    assert_eq!(
        *decrypted.text,
        *decrypt(&old.text, Layout::Yaml, &keyed()).unwrap().text
    );
    // Rotating again has nothing to do.
    let again = rotate(&rotated.text, Layout::Yaml, &rotated_env).unwrap();
    assert_eq!((again.changed, again.sealed), (0, 5));
}

#[test]
fn keys_are_needed_only_when_there_is_work() {
    let plain_only = "credentials:\n  - platform: x\n    value: ${K}\n";
    assert_eq!(
        encrypt(plain_only, Layout::Yaml, &env(&[]))
            .unwrap()
            .changed,
        0
    );
    assert_eq!(decrypt(YAML, Layout::Yaml, &env(&[])).unwrap().changed, 0);
    assert_eq!(
        encrypt(YAML, Layout::Yaml, &env(&[])).unwrap_err(),
        ActionError::Key(KeyError::Missing)
    );
    let sealed = encrypt(YAML, Layout::Yaml, &keyed()).unwrap();
    assert_eq!(
        decrypt(&sealed.text, Layout::Yaml, &env(&[])).unwrap_err(),
        ActionError::Key(KeyError::Missing)
    );
}

#[test]
fn a_wrong_key_names_the_value_and_never_its_content() {
    let sealed = encrypt(YAML, Layout::Yaml, &keyed()).unwrap();
    let error = decrypt(
        &sealed.text,
        Layout::Yaml,
        &env(&[("LLMUX_SECRET_KEY", NEW_KEY)]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with(
            "credentials[0].value: cannot be decrypted with the configured LLMUX_SECRET_KEY (key id "
        ),
        "{error}"
    );
    assert!(!error.contains("sk-plain") && !error.contains(KEY) && !error.contains(NEW_KEY));
}

#[test]
fn shapes_the_line_scanner_cannot_place_are_refused_with_the_value_named() {
    let cases: [(&str, Layout, usize, &str); 8] = [
        (
            "credentials: [{platform: x, value: sk-flow}]\n",
            Layout::Yaml,
            0,
            "is not written as `value: …` on a line of its own",
        ),
        (
            "credentials:\n  - {platform: x, value: sk-flow}\n",
            Layout::Yaml,
            0,
            "is not written as",
        ),
        (
            "credentials:\n  - platform: x\n    value: ok-1\n  - platform: y\n    value: |\n      sk-block\n",
            Layout::Yaml,
            1,
            "uses a block scalar (| or >)",
        ),
        (
            "k: &k sk-anchored\ncredentials:\n  - platform: x\n    value: *k\n",
            Layout::Yaml,
            0,
            "uses an anchor, alias or tag",
        ),
        (
            "credentials:\n  - platform: x\n    value: sk-first\n      continued\n",
            Layout::Yaml,
            0,
            "is read differently line by line than by the YAML parser",
        ),
        (
            "credentials:\n  - platform: x\n    value: \"sk-two\n      lines\"\n",
            Layout::Yaml,
            0,
            "uses a quoted string that continues on the next line",
        ),
        (
            "credentials = [{ platform = \"x\", value = \"sk-inline\" }]\n",
            Layout::Toml,
            0,
            "is not written as `value = \"…\"` on a line of its own",
        ),
        (
            "[[credentials]]\nplatform = \"x\"\nvalue = \"\"\"sk-multi\"\"\"\n",
            Layout::Toml,
            0,
            "uses a multi-line string",
        ),
    ];
    for (text, layout, index, reason) in cases {
        let error = encrypt(text, layout, &keyed()).unwrap_err();
        let ActionError::Rewrite(RewriteError::Unsafe { index: at, .. }) = &error else {
            panic!("{text}: {error:?}");
        };
        assert_eq!(*at, index, "{text}");
        let message = error.to_string();
        assert!(
            message.starts_with(&format!(
                "credentials[{index}].value cannot be rewritten safely: it {reason}"
            )),
            "{text}: {message}"
        );
        assert!(!message.contains("sk-"), "{message}");
    }
}

#[test]
fn unparsable_files_are_refused_without_quoting_them() {
    let error = encrypt(
        "credentials:\n  - platform: x\n    value: sk-secret\n  bad: [\n",
        Layout::Yaml,
        &keyed(),
    )
    .unwrap_err();
    assert!(matches!(
        error,
        ActionError::Rewrite(RewriteError::Parse { format: "YAML", .. })
    ));
    assert!(!error.to_string().contains("sk-secret"));
    let error = encrypt("{\"credentials\": [", Layout::Json, &keyed()).unwrap_err();
    assert_eq!(error.to_string(), "not valid JSON (line 1)");
}

#[test]
fn empty_and_null_values_and_empty_files_are_left_alone() {
    for (text, layout) in [
        ("", Layout::Yaml),
        ("# only a comment\n", Layout::Yaml),
        ("credentials:\n  - platform: x\n    value:\n", Layout::Yaml),
        (
            "credentials:\n  - platform: x\n    value: ''\n",
            Layout::Yaml,
        ),
        ("[]", Layout::Seed),
        ("[{\"platform\": \"x\", \"value\": null}]", Layout::Seed),
        ("", Layout::Toml),
    ] {
        let outcome = encrypt(text, layout, &env(&[])).unwrap();
        assert_eq!((outcome.changed, outcome.text.as_str()), (0, text));
    }
}

#[test]
fn layout_follows_the_extension_and_the_seed_list() {
    assert_eq!(Layout::detect(Path::new("c.json"), " [ ]"), Layout::Seed);
    assert_eq!(Layout::detect(Path::new("c.JSON"), "{}"), Layout::Json);
    assert_eq!(Layout::detect(Path::new("llmux.toml"), ""), Layout::Toml);
    assert_eq!(Layout::detect(Path::new("llmux.yml"), ""), Layout::Yaml);
    assert_eq!(Layout::detect(Path::new("llmux"), "[]"), Layout::Yaml);
}

#[test]
fn crlf_line_endings_survive() {
    let text = "credentials:\r\n  - platform: x\r\n    value: sk-crlf  # c\r\nmodels: []\r\n";
    let encrypted = round_trip(text, Layout::Yaml);
    assert!(encrypted.contains("  # c\r\nmodels: []\r\n"), "{encrypted}");
    assert_eq!(encrypted.matches("\r\n").count(), 4);
}

#[test]
fn yaml_lists_at_column_zero_and_value_as_the_first_key_are_placed() {
    let text = "---\ncredentials:\n- value: sk-first-key\n  platform: openai\n-   platform: gemini\n    value:   sk-second-key   # c\nmodels: []\n";
    let encrypted = round_trip(text, Layout::Yaml);
    assert!(
        encrypted.starts_with("---\ncredentials:\n- value: llmux:v1:"),
        "{encrypted}"
    );
    assert!(
        encrypted.contains("\n    value:   llmux:v1:"),
        "{encrypted}"
    );
    assert!(encrypted.ends_with("   # c\nmodels: []\n"), "{encrypted}");
}

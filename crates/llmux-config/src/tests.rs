//! Tests of the public API, by topic. Fixtures live in `tests/fixtures/`.

mod demo;
mod discover;
mod encrypted;
mod formats;
mod forward_headers;
mod interpolation;
mod pricing;
mod responses_mode;
mod routing;
mod secrets;
mod seed;
mod table;
mod validation;

use std::collections::HashMap;
use std::path::PathBuf;

use crate::{Config, ConfigError, Format};

/// An environment made of `pairs`; everything else is unset.
fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Loads YAML text with `pairs` as the environment.
fn yaml_with(text: &str, pairs: &[(&str, &str)]) -> Result<Config, Vec<ConfigError>> {
    crate::from_str(text, Format::Yaml, &env(pairs))
}

/// Loads YAML text with an empty environment, expecting success.
#[track_caller]
fn yaml_ok(text: &str) -> Config {
    match yaml_with(text, &[]) {
        Ok(config) => config,
        Err(errors) => panic!(
            "expected a valid config, got {}",
            messages(&errors).join("\n")
        ),
    }
}

/// Loads YAML text with an empty environment, expecting failure; returns the rendered errors.
#[track_caller]
fn yaml_errors(text: &str) -> Vec<String> {
    yaml_errors_with(text, &[])
}

#[track_caller]
fn yaml_errors_with(text: &str, pairs: &[(&str, &str)]) -> Vec<String> {
    match yaml_with(text, pairs) {
        Ok(config) => panic!("expected errors, got {config:?}"),
        Err(errors) => messages(&errors),
    }
}

fn messages(errors: &[ConfigError]) -> Vec<String> {
    errors.iter().map(ToString::to_string).collect()
}

/// Asserts that `text` fails with an error rendered exactly as `expected` (among others).
#[track_caller]
fn check_error(text: &str, expected: &str) {
    let errors = yaml_errors(text);
    assert!(
        errors.iter().any(|e| e == expected),
        "expected error {expected:?}, got {errors:#?}"
    );
}

/// One openai credential and one model, for tests that vary something else.
const MINIMAL: &str = "\
credentials:
  - platform: openai
    value: sk-test-minimal-0001
models:
  - vendor: openai
    model: gpt-4o-mini
";

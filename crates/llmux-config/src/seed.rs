//! The original router's layout: `configs/credentials.json` + `configs/models.json`, loaded
//! unchanged (REFERENCE §A1).
//!
//! `models.json` comes in two shapes: a plain list `[{vendor, model}]`, or
//! `{"vendors": {name: base_url}, "models": [{vendor, model, config}]}`. The original router
//! spoke the OpenAI API to every vendor, so here every credential defaults to [`crate::Api::OpenAi`].

use crate::encrypted;
use crate::parse::{Format, parse};
use crate::raw::{RawConfig, RawCredential, RawModel, RawSeedModels};
use crate::validate::{Flavour, validate};
use crate::{Config, ConfigError};

/// Parses and validates the two seed files, each given as (name for errors, contents).
pub(crate) fn from_texts(
    credentials: (&str, &str),
    models: (&str, &str),
    env: &dyn Fn(&str) -> Option<String>,
    source: String,
) -> Result<Config, Vec<ConfigError>> {
    let (credentials_name, credentials_text) = credentials;
    let (models_name, models_text) = models;
    let mut errors = Vec::new();

    let credentials = parse_credentials(credentials_text, env)
        .map_err(|e| errors.extend(e.into_iter().map(|e| e.in_file(credentials_name))))
        .ok();
    let models = parse_models(models_text, env)
        .map_err(|e| errors.extend(e.into_iter().map(|e| e.in_file(models_name))))
        .ok();

    let (Some(mut credentials), Some(models)) = (credentials, models) else {
        return Err(errors);
    };
    let open_errors = encrypted::open_values(&mut credentials, env);
    let raw = RawConfig {
        credentials,
        models: models.models,
        ..RawConfig::default()
    };
    let flavour = Flavour::Seed {
        vendors: models.vendors,
    };
    encrypted::with_open_errors(open_errors, validate(raw, &flavour, source))
}

/// `credentials.json` as plain JSON, or in the original router's encrypted format: base64 of
/// the AES-256-GCM encrypted JSON, opened with `CONFIG_ENCRYPTION_KEY`.
fn parse_credentials(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<RawCredential>, Vec<ConfigError>> {
    if !llmux_auth::legacy::looks_legacy(text) {
        return parse(text, Format::Json, env);
    }
    let plaintext = encrypted::open_legacy_file(text, env).map_err(|e| vec![e])?;
    parse(&plaintext, Format::Json, env)
        .map_err(|errors| errors.into_iter().map(encrypted::scrub_decrypted).collect())
}

/// Either shape of `models.json`; the plain list becomes an object without `vendors`.
fn parse_models(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<RawSeedModels, Vec<ConfigError>> {
    // Choose the shape by the first character rather than with an untagged enum, so errors
    // name the real problem instead of "did not match any variant".
    if text.trim_start().starts_with('{') {
        parse(text, Format::Json, env)
    } else {
        let models: Vec<RawModel> = parse(text, Format::Json, env)?;
        Ok(RawSeedModels {
            models,
            ..RawSeedModels::default()
        })
    }
}

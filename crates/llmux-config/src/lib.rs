//! Raw config files to a validated [`Config`]: YAML/JSON/TOML, `${VAR}` interpolation, the
//! original router's seed layout, and demo mode.
//!
//! The invariant this crate keeps: a [`Config`] is always valid (every model has a credential of
//! its vendor, URLs are http(s) API roots, names are unique), and no error message, `Debug` or
//! `Display` output contains a credential value. It is pure apart from [`load`] reading files:
//! no async, no network.
//!
//! Entry points:
//! - [`discover`] picks the [`Source`] for a directory (config file, seed layout, or demo mode);
//! - [`load`] reads and validates a source, returning every problem at once;
//! - [`from_str`] does the same for text already in memory;
//! - [`mock_demo`] and [`demo_has_keys`] support demo mode without vendor keys;
//! - [`Config::combination_table`] renders what `llmux check` prints.
#![warn(missing_docs)]

mod config;
mod demo;
mod encrypted;
mod error;
mod forward;
mod interpolate;
mod parse;
mod raw;
mod secret;
mod seed;
mod validate;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

pub use config::{
    Api, Auth, Cache, CacheMode, CacheScope, CacheStore, Capabilities, Compat, Config, Credential,
    CredentialLimits, FetchImages, Group, Images, Limits, LogBodies, Model, ModelKind, Otlp,
    OtlpProtocol, Price, Pricing, RedisFailure, Reliability, RequestLogConfig, ResponsesMode,
    ResponsesStore, Routing, RoutingPolicy, SampleRatio, Telemetry, Timeouts, Tls, TlsRoots,
    UnknownModelPolicy, UnsupportedTools, Weight,
};
pub use error::ConfigError;
pub use forward::refused_forward_header;
pub use parse::Format;
pub use secret::Secret;

/// Where a configuration comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// One `llmux.yaml|.yml|.json|.toml` file; the format follows the extension (YAML otherwise).
    File(PathBuf),
    /// The original router's two files.
    Seed {
        /// `configs/credentials.json`.
        credentials: PathBuf,
        /// `configs/models.json`.
        models: PathBuf,
    },
    /// Vendor keys from the environment.
    Demo,
}

/// The config file names [`discover`] tries, in order.
pub const CONFIG_FILE_NAMES: [&str; 4] = ["llmux.yaml", "llmux.yml", "llmux.json", "llmux.toml"];

/// Finds the configuration in `dir`: the first of `llmux.yaml`, `.yml`, `.json`, `.toml` that
/// exists, else `configs/credentials.json` + `configs/models.json` when both exist, else demo mode.
pub fn discover(dir: &Path) -> Source {
    if let Some(file) = CONFIG_FILE_NAMES
        .iter()
        .map(|name| dir.join(name))
        .find(|path| path.is_file())
    {
        return Source::File(file);
    }
    let credentials = dir.join("configs").join("credentials.json");
    let models = dir.join("configs").join("models.json");
    if credentials.is_file() && models.is_file() {
        return Source::Seed {
            credentials,
            models,
        };
    }
    Source::Demo
}

/// Loads and validates the configuration from `source`, reading variables through `env`
/// (injected so tests need not touch the process environment). Returns every problem at once.
///
/// For [`Source::Demo`] without any vendor key this fails with the single error
/// `no vendor key in the environment`; the caller then starts the mock and uses [`mock_demo`].
pub fn load(
    source: &Source,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    match source {
        Source::File(path) => {
            let name = display_path(path);
            let text = read(path).map_err(|e| vec![e])?;
            parse_config(&text, Format::from_path(path), env, name.clone())
                .map_err(|errors| errors.into_iter().map(|e| e.in_file(&name)).collect())
        }
        Source::Seed {
            credentials,
            models,
        } => {
            let credentials_name = display_path(credentials);
            let models_name = display_path(models);
            let credentials_text = read(credentials);
            let models_text = read(models);
            let (credentials_text, models_text) = match (credentials_text, models_text) {
                (Ok(c), Ok(m)) => (c, m),
                (c, m) => return Err(c.err().into_iter().chain(m.err()).collect()),
            };
            let source = format!("{credentials_name} + {models_name}");
            seed::from_texts(
                (&credentials_name, &credentials_text),
                (&models_name, &models_text),
                env,
                source,
            )
        }
        Source::Demo => demo::from_env(env),
    }
}

/// Parses and validates configuration text in `format`, as [`load`] does for a file.
pub fn from_str(
    text: &str,
    format: Format,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, Vec<ConfigError>> {
    let source = match format {
        Format::Yaml => "inline YAML",
        Format::Json => "inline JSON",
        Format::Toml => "inline TOML",
    };
    parse_config(text, format, env, source.to_owned())
}

/// Demo mode around the built-in mock vendor, for when no vendor key is set: credential
/// `mock-1` (vendor `mock`, OpenAI API, at `base_url`, secret `mock-key`) and the models
/// `mock-model` (chat) and `mock-embedding` (embedding).
pub fn mock_demo(base_url: &url::Url) -> Config {
    demo::mock(base_url)
}

/// True when demo mode finds at least one vendor key in `env`, so the caller knows whether it
/// must start the built-in mock instead.
pub fn demo_has_keys(env: &dyn Fn(&str) -> Option<String>) -> bool {
    demo::has_keys(env)
}

fn parse_config(
    text: &str,
    format: Format,
    env: &dyn Fn(&str) -> Option<String>,
    source: String,
) -> Result<Config, Vec<ConfigError>> {
    let mut raw = parse::parse::<raw::RawConfig>(text, format, env)?;
    let open_errors = encrypted::open_values(&mut raw.credentials, env);
    encrypted::with_open_errors(
        open_errors,
        validate::validate(raw, &validate::Flavour::Native, source),
    )
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(display_path(path), format!("cannot read file: {e}")))
}

/// The path as the user would write it: `llmux.yaml` rather than `./llmux.yaml`.
fn display_path(path: &Path) -> String {
    path.strip_prefix(".").unwrap_or(path).display().to_string()
}

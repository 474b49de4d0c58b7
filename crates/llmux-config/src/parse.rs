//! Interpolated text → raw structs, in YAML, JSON or TOML, with parser errors turned into
//! [`ConfigError`]s that name a line and never quote a secret.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::ConfigError;
use crate::interpolate::{Interpolated, interpolate};

/// A configuration file format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// YAML (`.yaml`, `.yml`, and any other extension).
    Yaml,
    /// JSON (`.json`).
    Json,
    /// TOML (`.toml`).
    Toml,
}

impl Format {
    /// The format for a file name: JSON and TOML by extension, YAML otherwise.
    pub fn from_path(path: &Path) -> Self {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("json") => Self::Json,
            Some("toml") => Self::Toml,
            _ => Self::Yaml,
        }
    }

    /// Whether a line starting with `#` is a comment in this format.
    fn has_hash_comments(self) -> bool {
        matches!(self, Self::Yaml | Self::Toml)
    }
}

/// Interpolates `text` and deserializes it as `T`.
pub(crate) fn parse<T: DeserializeOwned + Default>(
    text: &str,
    format: Format,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<T, Vec<ConfigError>> {
    let interpolated = interpolate(text, format.has_hash_comments(), env)?;
    deserialize(&interpolated, format).map_err(|e| vec![e])
}

fn deserialize<T: DeserializeOwned + Default>(
    input: &Interpolated,
    format: Format,
) -> Result<T, ConfigError> {
    let text = input.text.as_str();
    // An empty file is an empty configuration; validation then says what is missing.
    if is_blank(text, format) {
        return Ok(T::default());
    }
    let (line, message) = match format {
        Format::Yaml => {
            let options = serde_saphyr::options! { with_snippet: false };
            match serde_saphyr::from_str_with_options(text, options) {
                Ok(value) => return Ok(value),
                Err(error) => {
                    let location = error.location();
                    let message = error.to_string();
                    // Like serde_json's, the message ends with the position; we lead with the
                    // line instead, in the same shape as interpolation errors.
                    let message = location
                        .and_then(|l| {
                            message.strip_suffix(&format!(
                                " at line {}, column {}",
                                l.line(),
                                l.column()
                            ))
                        })
                        .map_or(message.clone(), str::to_owned);
                    (location.map(|l| l.line()), message)
                }
            }
        }
        Format::Json => match serde_json::from_str(text) {
            Ok(value) => return Ok(value),
            Err(error) => {
                let message = error.to_string();
                let suffix = format!(" at line {} column {}", error.line(), error.column());
                let message = message
                    .strip_suffix(&suffix)
                    .map_or(message.clone(), str::to_owned);
                let line = (error.line() > 0).then_some(error.line() as u64);
                (line, message)
            }
        },
        Format::Toml => match toml::from_str(text) {
            Ok(value) => return Ok(value),
            Err(error) => {
                let line = error
                    .span()
                    .and_then(|span| text.get(..span.start))
                    .map(|before| before.matches('\n').count() as u64 + 1);
                (line, error.message().to_owned())
            }
        },
    };
    let message = input.scrub(message.trim());
    Err(match line {
        Some(line) => ConfigError::new("", format!("line {line}: {message}")),
        None => ConfigError::new("", message),
    })
}

/// True when the text holds nothing but whitespace and comments.
fn is_blank(text: &str, format: Format) -> bool {
    text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || (format.has_hash_comments() && line.starts_with('#'))
    })
}

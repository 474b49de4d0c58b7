//! Encrypted credentials (`llmux-auth`), opened on load so the rest of the crate only ever sees
//! plain values:
//! - a `value` that reads `llmux:v1:…` after `${VAR}` interpolation is opened with the keys in
//!   `LLMUX_SECRET_KEY` / `LLMUX_SECRET_KEY_PREVIOUS`;
//! - a seed `credentials.json` in the original router's encrypted format is opened with
//!   `CONFIG_ENCRYPTION_KEY`.
//!
//! A value or file that cannot be opened is an error naming it and the key id, never a silent
//! fallback, and never the value or the key.

use llmux_auth::legacy::{LEGACY_KEY_VAR, open_legacy};
use llmux_auth::{KeyError, Keyring, looks_sealed};
use zeroize::Zeroizing;

use crate::ConfigError;
use crate::raw::RawCredential;

/// Replaces every sealed credential value with its plaintext, reading the keys through `env`
/// only if there is a sealed value. Returns the problems; values that fail stay sealed.
pub(crate) fn open_values(
    credentials: &mut [RawCredential],
    env: &dyn Fn(&str) -> Option<String>,
) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut keys: Option<Result<Keyring, KeyError>> = None;
    let mut reported_bad_key = false;
    for (index, credential) in credentials.iter_mut().enumerate() {
        let value = credential.value.0.trim();
        if !looks_sealed(value) {
            continue;
        }
        let path = format!("credentials[{index}].value");
        match keys.get_or_insert_with(|| Keyring::from_env(env)) {
            Ok(ring) => match ring.open(value) {
                Ok(plaintext) => {
                    zeroize::Zeroize::zeroize(&mut credential.value.0);
                    credential.value.0.push_str(&plaintext);
                }
                Err(error) => errors.push(ConfigError::new(path, error.to_string())),
            },
            Err(KeyError::Missing) => errors.push(ConfigError::new(
                path,
                "is encrypted but LLMUX_SECRET_KEY is not set",
            )),
            // A malformed key is one problem, however many values need it.
            Err(KeyError::Invalid { var, reason }) => {
                if !std::mem::replace(&mut reported_bad_key, true) {
                    errors.push(ConfigError::new(var.clone(), reason.to_string()));
                }
            }
        }
    }
    errors
}

/// The plaintext of a seed credentials file in the original router's encrypted format.
pub(crate) fn open_legacy_file(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Zeroizing<String>, ConfigError> {
    open_legacy(text, env).map_err(|error| ConfigError::new("", error.to_string()))
}

/// Parse errors of decrypted content may quote it, so only their line survives.
pub(crate) fn scrub_decrypted(error: ConfigError) -> ConfigError {
    let line = error
        .message
        .strip_prefix("line ")
        .and_then(|rest| rest.split(':').next())
        .filter(|n| n.bytes().all(|b| b.is_ascii_digit()));
    let message = match line {
        Some(line) => format!(
            "decrypted with {LEGACY_KEY_VAR}, but line {line} of the content is not a valid credentials list"
        ),
        None => format!(
            "decrypted with {LEGACY_KEY_VAR}, but the content is not a valid credentials list"
        ),
    };
    ConfigError::new(error.path, message)
}

/// Validation's result with the problems found while opening values in front.
pub(crate) fn with_open_errors<T>(
    open_errors: Vec<ConfigError>,
    result: Result<T, Vec<ConfigError>>,
) -> Result<T, Vec<ConfigError>> {
    match (open_errors.is_empty(), result) {
        (true, result) => result,
        (false, Ok(_)) => Err(open_errors),
        (false, Err(more)) => Err(open_errors.into_iter().chain(more).collect()),
    }
}

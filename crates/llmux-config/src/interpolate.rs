//! `${VAR}` / `${VAR:-default}` interpolation on the raw file text, before parsing.
//!
//! Working on text, line by line, lets every error name its line, and keeps the raw structs free
//! of interpolation logic. `$${` is a literal `${`. Full-line comments (`#` first, in YAML and
//! TOML) are left alone, so a commented-out `# value: ${OLD_KEY}` does not demand `OLD_KEY`.

use zeroize::Zeroizing;

use crate::ConfigError;

/// The interpolated text, plus the environment values that went into it.
pub(crate) struct Interpolated {
    /// The text to parse; zeroized on drop because it may hold credential values.
    pub text: Zeroizing<String>,
    /// Values taken from the environment, so parser messages that quote the text can be scrubbed.
    pub values: Vec<Zeroizing<String>>,
}

impl Interpolated {
    /// Replaces every environment value of a plausible secret's length in `message` with `***`.
    ///
    /// Parser errors may quote the offending text, and after interpolation that text can contain
    /// an API key. Short values (ports, flags) are left alone: they are not secrets, and hiding
    /// them would garble the message.
    pub(crate) fn scrub(&self, message: &str) -> String {
        const MIN_SECRET_LEN: usize = 8;
        let mut out = message.to_owned();
        for value in &self.values {
            if value.len() >= MIN_SECRET_LEN && out.contains(value.as_str()) {
                out = out.replace(value.as_str(), "***");
            }
        }
        out
    }
}

/// Substitutes variables in `text`. `comments` says whether a line starting with `#` is a
/// comment (YAML, TOML) and therefore copied unchanged. Reports every problem, not the first.
pub(crate) fn interpolate(
    text: &str,
    comments: bool,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Interpolated, Vec<ConfigError>> {
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    let mut values = Vec::new();
    let mut errors = Vec::new();
    for (index, line) in text.split_inclusive('\n').enumerate() {
        let number = index + 1;
        if comments && line.trim_start().starts_with('#') {
            out.push_str(line);
            continue;
        }
        interpolate_line(line, number, env, &mut out, &mut values, &mut errors);
    }
    if errors.is_empty() {
        Ok(Interpolated { text: out, values })
    } else {
        Err(errors)
    }
}

fn interpolate_line(
    line: &str,
    number: usize,
    env: &dyn Fn(&str) -> Option<String>,
    out: &mut String,
    values: &mut Vec<Zeroizing<String>>,
    errors: &mut Vec<ConfigError>,
) {
    let mut rest = line;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let tail = &rest[dollar..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let Some(close) = after.find('}') else {
                errors.push(at_line(
                    number,
                    "unterminated ${ (close it with })".to_owned(),
                ));
                // Keep the rest of the line verbatim; parsing will not happen anyway.
                out.push_str(tail);
                return;
            };
            let inner = &after[..close];
            rest = &after[close + 1..];
            let (name, default) = match inner.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (inner, None),
            };
            if !is_var_name(name) {
                errors.push(at_line(
                    number,
                    format!(
                        "invalid variable reference ${{{inner}}} (use ${{NAME}} or ${{NAME:-default}})"
                    ),
                ));
                continue;
            }
            match (env(name), default) {
                // Like the shell and docker compose, `:-` also replaces an empty value.
                (Some(value), Some(default)) if value.is_empty() => out.push_str(default),
                (Some(value), _) => {
                    out.push_str(&value);
                    values.push(Zeroizing::new(value));
                }
                (None, Some(default)) => out.push_str(default),
                (None, None) => errors.push(at_line(
                    number,
                    format!(
                        "environment variable {name} is not set (use ${{{name}:-default}} for a default)"
                    ),
                )),
            }
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
}

fn is_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn at_line(number: usize, message: String) -> ConfigError {
    ConfigError::new("", format!("line {number}: {message}"))
}

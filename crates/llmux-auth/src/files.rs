//! Rewriting the credential values of a file while keeping everything else byte for byte:
//! comments, layout, key order and quoting survive.
//!
//! How it stays safe without a round-tripping parser for every format:
//! 1. The file is parsed into a tree, which says what each `credentials[i].value` is.
//! 2. A small format-specific scanner finds the byte range of each value in the text — for YAML
//!    and TOML line by line (`value: …` in the block list under `credentials:`, `value = …` in a
//!    `[[credentials]]` table), for JSON with a tokenizer. Its reading of each value must equal
//!    the tree's, or the value is not touched.
//! 3. Only the values the caller changes are spliced; then the new text is parsed again and
//!    must equal the original tree with exactly those values replaced.
//!
//! A value the caller wants changed but that the scanner cannot place (flow style, block
//! scalars, anchors, multi-line strings) is an error naming it; the caller writes nothing.

mod json;
mod quoted;
mod toml_lines;
mod yaml_lines;

#[cfg(test)]
mod tests;

use std::fmt;
use std::ops::Range;
use std::path::Path;

use serde_json::Value;
use zeroize::{Zeroize as _, Zeroizing};

use crate::{KeyError, KeyId, Keyring, OpenError, ResealError, SealError, looks_sealed};

/// The kind of file holding credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// The original router's `credentials.json`: a JSON list `[{platform, type, value}]`.
    Seed,
    /// An llmux config file in JSON (`credentials: [{…, value}]`).
    Json,
    /// An llmux config file in YAML.
    Yaml,
    /// An llmux config file in TOML.
    Toml,
}

impl Layout {
    /// The layout of the file at `path` holding `text`: JSON and TOML by extension (a JSON list
    /// is the seed layout), YAML otherwise, as the config loader decides.
    pub fn detect(path: &Path, text: &str) -> Self {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("json") if text.trim_start().starts_with('[') => Self::Seed,
            Some("json") => Self::Json,
            Some("toml") => Self::Toml,
            _ => Self::Yaml,
        }
    }

    fn format_name(self) -> &'static str {
        match self {
            Self::Seed | Self::Json => "JSON",
            Self::Yaml => "YAML",
            Self::Toml => "TOML",
        }
    }

    /// Where the scanner expects a value, for error messages.
    fn expected_shape(self) -> &'static str {
        match self {
            Self::Seed | Self::Json => "a string",
            Self::Yaml => {
                "`value: …` on a line of its own, in a block-style list under a top-level `credentials:`"
            }
            Self::Toml => "`value = \"…\"` on a line of its own, in a `[[credentials]]` table",
        }
    }
}

/// What to do with one credential value.
pub enum Change {
    /// Leave it exactly as it is.
    Keep,
    /// Replace it with this text (as the loader should read it, before quoting).
    Replace(Zeroizing<String>),
}

/// The result of [`rewrite`].
pub struct Rewritten {
    /// The new file content.
    pub text: Zeroizing<String>,
    /// How many values were replaced.
    pub changed: usize,
}

impl fmt::Debug for Rewritten {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rewritten")
            .field("text", &"***")
            .field("changed", &self.changed)
            .finish()
    }
}

/// Calls `change` with the index and text of every credential value in `text` (numbers and
/// booleans as written, `null` and missing values skipped), and returns the text with the
/// replacements spliced in. Errors from `change` are reported as `credentials[i].value: {error}`,
/// so their messages must not contain secrets.
pub fn rewrite<E: fmt::Display>(
    text: &str,
    layout: Layout,
    mut change: impl FnMut(usize, &str) -> Result<Change, E>,
) -> Result<Rewritten, RewriteError> {
    let tree = parse_tree(text, layout)?;
    let values = credential_values(&tree, layout);
    let slots = match layout {
        Layout::Seed => json::locate(text, true),
        Layout::Json => json::locate(text, false),
        Layout::Yaml => yaml_lines::locate(text),
        Layout::Toml => toml_lines::locate(text),
    };

    let mut expected = Tree(tree.0.clone());
    let mut edits: Vec<(Range<usize>, Zeroizing<String>)> = Vec::new();
    for (index, value) in values.iter().enumerate() {
        let Some(value) = value else { continue };
        let replacement = match change(index, value) {
            Ok(Change::Keep) => continue,
            Ok(Change::Replace(replacement)) => replacement,
            Err(error) => {
                return Err(RewriteError::Value {
                    index,
                    message: error.to_string(),
                });
            }
        };
        let slot = place(&slots, index, value, layout)?;
        let encoded = encode(layout, slot.style, &replacement)?;
        edits.push((slot.span.clone(), encoded));
        if let Some(target) = expected.0.pointer_mut(&value_pointer(layout, index)) {
            *target = Value::String(replacement.to_string());
        }
    }
    let changed = edits.len();
    if changed == 0 {
        return Ok(Rewritten {
            text: Zeroizing::new(text.to_owned()),
            changed,
        });
    }

    edits.sort_by_key(|(span, _)| span.start);
    let mut out = Zeroizing::new(String::with_capacity(text.len() + 64 * changed));
    let mut at = 0;
    for (span, encoded) in &edits {
        let before = text.get(at..span.start).ok_or(RewriteError::Verify)?;
        out.push_str(before);
        out.push_str(encoded);
        at = span.end;
    }
    out.push_str(text.get(at..).ok_or(RewriteError::Verify)?);

    let reread = parse_tree(&out, layout).map_err(|_| RewriteError::Verify)?;
    if reread.0 != expected.0 {
        return Err(RewriteError::Verify);
    }
    Ok(Rewritten { text: out, changed })
}

/// The slot for `index`, checked against the parsed value.
fn place<'s>(
    slots: &'s [Slot],
    index: usize,
    value: &str,
    layout: Layout,
) -> Result<&'s Slot, RewriteError> {
    let mut found = slots.iter().filter(|slot| slot.index == index);
    let unsafe_because = |reason: String| RewriteError::Unsafe { index, reason };
    let Some(slot) = found.next() else {
        return Err(unsafe_because(format!(
            "is not written as {}",
            layout.expected_shape()
        )));
    };
    if found.next().is_some() {
        return Err(unsafe_because(
            "appears to be set on more than one line".to_owned(),
        ));
    }
    match &slot.decoded {
        Err(reason) => Err(unsafe_because(format!(
            "uses {reason}; write it as {}",
            layout.expected_shape()
        ))),
        Ok(decoded) if decoded.as_str() != value => Err(unsafe_because(format!(
            "is read differently line by line than by the {} parser (is it split over several lines?); write it as {}",
            layout.format_name(),
            layout.expected_shape()
        ))),
        Ok(_) => Ok(slot),
    }
}

/// Why a file cannot be rewritten. Messages follow the file name and never contain a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    /// The file does not parse.
    #[error("not valid {format}{}", line.map(|l| format!(" (line {l})")).unwrap_or_default())]
    Parse {
        /// `YAML`, `JSON` or `TOML`.
        format: &'static str,
        /// Where the parser stopped, if it says.
        line: Option<usize>,
    },
    /// A value to change cannot be placed in the text safely.
    #[error("credentials[{index}].value cannot be rewritten safely: it {reason}")]
    Unsafe {
        /// The credential's position.
        index: usize,
        /// What is wrong, and what would work.
        reason: String,
    },
    /// The caller refused a value.
    #[error("credentials[{index}].value: {message}")]
    Value {
        /// The credential's position.
        index: usize,
        /// The caller's error.
        message: String,
    },
    /// The rewritten text did not read back as expected (a bug in the scanner).
    #[error(
        "the rewritten file would not read back with only the credential values changed, so it was left alone"
    )]
    Verify,
}

/// Where the scanner found one value.
#[derive(Debug)]
struct Slot {
    index: usize,
    /// The value's bytes in the text, quotes included.
    span: Range<usize>,
    style: Style,
    /// The value as the scanner reads it, or why it cannot read it.
    decoded: Result<Zeroizing<String>, &'static str>,
}

/// How a value is written, so a replacement is written the same way where it can be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Style {
    /// YAML plain scalar.
    Plain,
    /// `'…'`: YAML single-quoted, TOML literal string.
    Single,
    /// `"…"`: YAML double-quoted, TOML basic string, JSON string.
    Double,
    /// A TOML or JSON number or boolean.
    Bare,
}

fn encode(layout: Layout, style: Style, value: &str) -> Result<Zeroizing<String>, RewriteError> {
    Ok(Zeroizing::new(match (layout, style) {
        (Layout::Seed | Layout::Json, _) => {
            serde_json::to_string(value).map_err(|_| RewriteError::Verify)?
        }
        (Layout::Yaml, Style::Plain) if quoted::yaml_plain_safe(value) => value.to_owned(),
        (Layout::Yaml, Style::Single) if quoted::single_safe(value, true) => {
            format!("'{}'", value.replace('\'', "''"))
        }
        (Layout::Toml, Style::Single) if quoted::single_safe(value, false) => format!("'{value}'"),
        (Layout::Yaml | Layout::Toml, _) => quoted::double(value),
    }))
}

/// The parsed file, wiped on drop because its strings include credential values.
struct Tree(Value);

impl Drop for Tree {
    fn drop(&mut self) {
        fn wipe(value: &mut Value) {
            match value {
                Value::String(s) => s.zeroize(),
                Value::Array(items) => items.iter_mut().for_each(wipe),
                Value::Object(map) => map.values_mut().for_each(wipe),
                Value::Null | Value::Bool(_) | Value::Number(_) => {}
            }
        }
        wipe(&mut self.0);
    }
}

fn parse_tree(text: &str, layout: Layout) -> Result<Tree, RewriteError> {
    let parse_error = |line: Option<usize>| RewriteError::Parse {
        format: layout.format_name(),
        line,
    };
    let value = match layout {
        Layout::Seed | Layout::Json => serde_json::from_str::<Value>(text)
            .map_err(|e| parse_error((e.line() > 0).then_some(e.line())))?,
        Layout::Yaml => {
            let blank = text.lines().all(|l| {
                let l = l.trim();
                l.is_empty() || l.starts_with('#')
            });
            if blank {
                Value::Null
            } else {
                let options = serde_saphyr::options! { with_snippet: false };
                serde_saphyr::from_str_with_options::<Value>(text, options).map_err(|e| {
                    parse_error(e.location().and_then(|l| usize::try_from(l.line()).ok()))
                })?
            }
        }
        Layout::Toml => toml::from_str::<Value>(text).map_err(|e| {
            let line = e
                .span()
                .and_then(|span| text.get(..span.start))
                .map(|before| before.matches('\n').count() + 1);
            parse_error(line)
        })?,
    };
    Ok(Tree(value))
}

fn value_pointer(layout: Layout, index: usize) -> String {
    match layout {
        Layout::Seed => format!("/{index}/value"),
        Layout::Json | Layout::Yaml | Layout::Toml => format!("/credentials/{index}/value"),
    }
}

/// Each credential's `value` as the config loader reads it (numbers and booleans as text);
/// `None` where it is missing, null, or not a scalar.
fn credential_values(tree: &Tree, layout: Layout) -> Vec<Option<Zeroizing<String>>> {
    let list = match layout {
        Layout::Seed => Some(&tree.0),
        Layout::Json | Layout::Yaml | Layout::Toml => tree.0.get("credentials"),
    };
    let Some(list) = list.and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .map(|credential| match credential.get("value")? {
            Value::String(s) => Some(Zeroizing::new(s.clone())),
            Value::Number(n) => Some(Zeroizing::new(n.to_string())),
            Value::Bool(b) => Some(Zeroizing::new(b.to_string())),
            Value::Null | Value::Array(_) | Value::Object(_) => None,
        })
        .collect()
}

/// True when `value` uses a `${VAR}` reference, which the loader fills in from the environment.
/// Mirrors `llmux-config`'s interpolation: `$${` is a literal `${`, not a reference.
pub fn has_reference(value: &str) -> bool {
    let mut rest = value;
    while let Some(dollar) = rest.find('$') {
        let tail = &rest[dollar..];
        if let Some(after) = tail.strip_prefix("$${") {
            rest = after;
        } else if tail.starts_with("${") {
            return true;
        } else {
            rest = &tail[1..];
        }
    }
    false
}

/// The text the loader makes of `value` when it has no reference: `$${` becomes `${`.
pub fn unescape_literal(value: &str) -> Zeroizing<String> {
    Zeroizing::new(value.replace("$${", "${"))
}

/// The inverse of [`unescape_literal`]: text that the loader reads back as `value`.
pub fn escape_literal(value: &str) -> Zeroizing<String> {
    Zeroizing::new(value.replace("${", "$${"))
}

/// What [`encrypt`], [`decrypt`] or [`rotate`] did to a file.
pub struct Outcome {
    /// The new content (for `decrypt`, the content to print).
    pub text: Zeroizing<String>,
    /// Values replaced.
    pub changed: usize,
    /// Values that were sealed and left so (`encrypt`: already sealed; `rotate`: already under
    /// the current key).
    pub sealed: usize,
    /// Values left as they are because they use `${VAR}`.
    pub references: usize,
    /// Plain values left as they are (`decrypt`, `rotate`).
    pub plain: usize,
    /// The id of the current key, when it was needed.
    pub key_id: Option<KeyId>,
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Outcome")
            .field("text", &"***")
            .field("changed", &self.changed)
            .field("sealed", &self.sealed)
            .field("references", &self.references)
            .field("plain", &self.plain)
            .field("key_id", &self.key_id)
            .finish()
    }
}

/// Why [`encrypt`], [`decrypt`] or [`rotate`] failed. Never contains a value or a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    /// The keys in the environment are missing or malformed.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The file cannot be rewritten, or a value cannot be opened or sealed.
    #[error(transparent)]
    Rewrite(#[from] RewriteError),
}

/// Seals every plain credential value under `LLMUX_SECRET_KEY` (read through `env`, only if
/// there is something to seal). Sealed values and values using `${VAR}` are left alone: a
/// reference is not a secret in the file. `$${` in a value is sealed as the `${` the loader
/// would have made of it.
pub fn encrypt(
    text: &str,
    layout: Layout,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Outcome, ActionError> {
    let mut keys = LazyKeys::new(env);
    let (mut sealed, mut references) = (0, 0);
    let rewritten = rewrite(text, layout, |_, value| -> Result<Change, ValueError> {
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Ok(Change::Keep);
        }
        if looks_sealed(trimmed) {
            sealed += 1;
            return Ok(Change::Keep);
        }
        if has_reference(value) {
            references += 1;
            return Ok(Change::Keep);
        }
        let plaintext = unescape_literal(trimmed);
        let ring = keys.get()?;
        let sealed = ring.seal(&plaintext).map_err(ValueError::Seal)?;
        Ok(Change::Replace(Zeroizing::new(sealed)))
    });
    keys.finish(rewritten).map(|(rewritten, key_id)| Outcome {
        text: rewritten.text,
        changed: rewritten.changed,
        sealed,
        references,
        plain: 0,
        key_id,
    })
}

/// Opens every sealed credential value with the keys in `env`; the result is meant for
/// printing, never for writing back over the file. Opened values containing `${` are written
/// as `$${` so the text still loads as the same value.
pub fn decrypt(
    text: &str,
    layout: Layout,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Outcome, ActionError> {
    let mut keys = LazyKeys::new(env);
    let (mut plain, mut references) = (0, 0);
    let rewritten = rewrite(text, layout, |_, value| -> Result<Change, ValueError> {
        let trimmed = value.trim();
        if !looks_sealed(trimmed) {
            count_unsealed(trimmed, &mut plain, &mut references);
            return Ok(Change::Keep);
        }
        let ring = keys.get()?;
        let opened = ring.open(trimmed).map_err(ValueError::Open)?;
        Ok(Change::Replace(escape_literal(&opened)))
    });
    keys.finish(rewritten).map(|(rewritten, key_id)| Outcome {
        text: rewritten.text,
        changed: rewritten.changed,
        sealed: 0,
        references,
        plain,
        key_id,
    })
}

/// Re-seals under the current `LLMUX_SECRET_KEY` every sealed value that an older key (from
/// `LLMUX_SECRET_KEY_PREVIOUS`) sealed. Plain values are left alone; run [`encrypt`] for those.
pub fn rotate(
    text: &str,
    layout: Layout,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Outcome, ActionError> {
    let mut keys = LazyKeys::new(env);
    let (mut sealed, mut plain, mut references) = (0, 0, 0);
    let rewritten = rewrite(text, layout, |_, value| -> Result<Change, ValueError> {
        let trimmed = value.trim();
        if !looks_sealed(trimmed) {
            count_unsealed(trimmed, &mut plain, &mut references);
            return Ok(Change::Keep);
        }
        let ring = keys.get()?;
        match ring.reseal(trimmed).map_err(ValueError::Reseal)? {
            Some(resealed) => Ok(Change::Replace(Zeroizing::new(resealed))),
            None => {
                sealed += 1;
                Ok(Change::Keep)
            }
        }
    });
    keys.finish(rewritten).map(|(rewritten, key_id)| Outcome {
        text: rewritten.text,
        changed: rewritten.changed,
        sealed,
        references,
        plain,
        key_id,
    })
}

/// Counts a value that is not sealed: a `${VAR}` reference, or plain text (empty values are
/// not counted).
fn count_unsealed(value: &str, plain: &mut usize, references: &mut usize) {
    if has_reference(value) {
        *references += 1;
    } else if !value.is_empty() {
        *plain += 1;
    }
}

/// The keyring, read from the environment the first time a value needs it, so files with
/// nothing to do need no key.
struct LazyKeys<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
    ring: Option<Keyring>,
    error: Option<KeyError>,
}

impl<'a> LazyKeys<'a> {
    fn new(env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Self {
            env,
            ring: None,
            error: None,
        }
    }

    fn get(&mut self) -> Result<&Keyring, ValueError> {
        if self.ring.is_none() {
            match Keyring::from_env(self.env) {
                Ok(ring) => self.ring = Some(ring),
                Err(error) => {
                    self.error = Some(error);
                    return Err(ValueError::Key);
                }
            }
        }
        self.ring.as_ref().ok_or(ValueError::Key)
    }

    /// Reports a key error as itself rather than as an error of the value that needed the key.
    fn finish(
        self,
        result: Result<Rewritten, RewriteError>,
    ) -> Result<(Rewritten, Option<KeyId>), ActionError> {
        if let Some(error) = self.error {
            return Err(ActionError::Key(error));
        }
        let key_id = self.ring.map(|ring| ring.current().id());
        Ok((result?, key_id))
    }
}

/// Why one value failed, inside [`encrypt`], [`decrypt`] and [`rotate`].
enum ValueError {
    /// See [`LazyKeys::error`].
    Key,
    Open(OpenError),
    Seal(SealError),
    Reseal(ResealError),
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key => f.write_str("the keys cannot be read"),
            Self::Open(error) => error.fmt(f),
            Self::Seal(error) => error.fmt(f),
            Self::Reseal(error) => error.fmt(f),
        }
    }
}

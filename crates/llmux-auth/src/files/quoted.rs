//! Single-line quoted scalars shared by the YAML and TOML scanners, and the encoders for
//! replacement values. Reading is deliberately a superset of both formats' escapes: the parsed
//! tree has the last word, so an escape read wrongly here only makes a value unplaceable.

use zeroize::Zeroizing;

/// Reads `"…"` at the start of `s`: the byte length including both quotes, and the text.
pub(super) fn read_double(s: &str) -> Result<(usize, Zeroizing<String>), &'static str> {
    let mut out = Zeroizing::new(String::new());
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((i + 1, out)),
            '\\' => {
                let (_, escape) = chars.next().ok_or(MULTI_LINE)?;
                let hex_digits = match escape {
                    'x' => 2,
                    'u' => 4,
                    'U' => 8,
                    _ => 0,
                };
                if hex_digits > 0 {
                    let mut code = 0u32;
                    for _ in 0..hex_digits {
                        let (_, digit) = chars.next().ok_or(UNSUPPORTED_ESCAPE)?;
                        code = code * 16 + digit.to_digit(16).ok_or(UNSUPPORTED_ESCAPE)?;
                    }
                    out.push(char::from_u32(code).ok_or(UNSUPPORTED_ESCAPE)?);
                    continue;
                }
                out.push(match escape {
                    'n' => '\n',
                    't' | '\t' => '\t',
                    'r' => '\r',
                    '"' => '"',
                    '\\' => '\\',
                    '/' => '/',
                    ' ' => ' ',
                    '0' => '\0',
                    'a' => '\x07',
                    'b' => '\x08',
                    'e' => '\x1b',
                    'f' => '\x0c',
                    'v' => '\x0b',
                    'N' => '\u{85}',
                    '_' => '\u{a0}',
                    'L' => '\u{2028}',
                    'P' => '\u{2029}',
                    _ => return Err(UNSUPPORTED_ESCAPE),
                });
            }
            c => out.push(c),
        }
    }
    Err(MULTI_LINE)
}

/// Reads `'…'` at the start of `s`; `doubled_quote` says whether `''` stands for `'` (YAML) or
/// ends the string (TOML literal strings have no escapes).
pub(super) fn read_single(
    s: &str,
    doubled_quote: bool,
) -> Result<(usize, Zeroizing<String>), &'static str> {
    let mut out = Zeroizing::new(String::new());
    let mut chars = s.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\'' {
            if doubled_quote && chars.peek().is_some_and(|&(_, next)| next == '\'') {
                chars.next();
                out.push('\'');
                continue;
            }
            return Ok((i + 1, out));
        }
        out.push(c);
    }
    Err(MULTI_LINE)
}

const MULTI_LINE: &str = "a quoted string that continues on the next line";
const UNSUPPORTED_ESCAPE: &str = "an escape sequence this tool does not read";

/// True when what follows a value on its line is blank or a comment. YAML needs whitespace
/// before the `#` of a comment (`hash_needs_space`); TOML does not.
pub(super) fn rest_is_comment(rest: &str, hash_needs_space: bool) -> bool {
    let trimmed = rest.trim_start_matches([' ', '\t']);
    trimmed.is_empty()
        || (trimmed.starts_with('#') && (!hash_needs_space || trimmed.len() < rest.len()))
}

/// `"…"` valid as a YAML double-quoted scalar and as a TOML basic string: `"` and `\` escaped,
/// and every control or non-printable character as `\uXXXX` (or its short form).
pub(super) fn double(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}'
        )
}

/// Whether `value` can be written between single quotes: no character that needs an escape,
/// and no `'` unless it can be doubled (YAML; TOML literal strings cannot hold one).
pub(super) fn single_safe(value: &str, quote_can_be_doubled: bool) -> bool {
    !value.chars().any(needs_escape) && (quote_can_be_doubled || !value.contains('\''))
}

/// Whether `value` can be a YAML plain scalar that reads back as the same string: it starts
/// with a letter, uses only characters with no YAML meaning, and is not a word YAML reads as a
/// boolean or null. Sealed values (`llmux:v1:…`) always qualify.
pub(super) fn yaml_plain_safe(value: &str) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    const WORDS: [&str; 9] = ["null", "true", "false", "yes", "no", "on", "off", "y", "n"];
    first.is_ascii_alphabetic()
        && !value.ends_with(':')
        && value.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | '+' | '=' | ':')
        })
        && !WORDS.contains(&value.to_ascii_lowercase().as_str())
}

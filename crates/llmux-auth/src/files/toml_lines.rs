//! Finds `value = …` in `[[credentials]]` tables, line by line:
//!
//! ```toml
//! [[credentials]]
//! platform = "openai"
//! value = "sk-…"   # a basic or literal string on one line (or a bare number)
//! ```
//!
//! Inline tables (`credentials = [{ … }]`) and multi-line strings are not placed; `rewrite`
//! then refuses to change those values.

use super::quoted::{read_double, read_single, rest_is_comment};
use super::{Slot, Style};

pub(super) fn locate(text: &str) -> Vec<Slot> {
    let mut slots = Vec::new();
    let mut in_section = false;
    let mut index: Option<usize> = None;
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let start = line_start;
        line_start += line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        let body = content.trim_start_matches([' ', '\t']);
        if let Some(header) = body.strip_prefix("[[") {
            let name = header.split("]]").next().unwrap_or_default().trim();
            in_section = name == "credentials";
            if in_section {
                index = Some(index.map_or(0, |i| i + 1));
            }
            continue;
        }
        if body.starts_with('[') {
            in_section = false;
            continue;
        }
        let (true, Some(index)) = (in_section, index) else {
            continue;
        };
        let Some(after_key) = body.strip_prefix("value") else {
            continue;
        };
        let Some(after) = after_key.trim_start_matches([' ', '\t']).strip_prefix('=') else {
            continue;
        };
        let offset = start + (content.len() - after.len());
        if let Some(slot) = scalar(after, offset, index) {
            slots.push(slot);
        }
    }
    slots
}

fn scalar(after: &str, offset: usize, index: usize) -> Option<Slot> {
    let s = after.trim_start_matches([' ', '\t']);
    let offset = offset + (after.len() - s.len());
    let first = s.chars().next()?;
    let read = if s.starts_with("\"\"\"") || s.starts_with("'''") {
        Err("a multi-line string")
    } else {
        match first {
            '"' => read_double(s).map(|(len, text)| (len, text, Style::Double)),
            '\'' => read_single(s, false).map(|(len, text)| (len, text, Style::Single)),
            '{' | '[' => Err("an inline table or array"),
            _ => {
                let len = s.find([' ', '\t', '#']).unwrap_or(s.len());
                Ok((
                    len,
                    zeroize::Zeroizing::new(s[..len].to_owned()),
                    Style::Bare,
                ))
            }
        }
    };
    Some(match read {
        Ok((len, text, style)) => Slot {
            index,
            span: offset..offset + len,
            style,
            decoded: if rest_is_comment(s.get(len..).unwrap_or_default(), false) {
                Ok(text)
            } else {
                Err("text after the value")
            },
        },
        Err(reason) => Slot {
            index,
            span: offset..offset,
            style: Style::Bare,
            decoded: Err(reason),
        },
    })
}

//! Finds `value:` scalars in the block-style list under a top-level `credentials:` key, line by
//! line. It understands only the shape llmux's docs use:
//!
//! ```yaml
//! credentials:
//!   - platform: openai        # items start with "- " at one indentation
//!     value: sk-…             # keys of an item line up after the "- "
//! ```
//!
//! Anything else (flow style, block scalars, anchors) is reported through [`Slot::decoded`] or
//! simply not found; `rewrite` then refuses to change that value.

use super::quoted::{read_double, read_single, rest_is_comment};
use super::{Slot, Style};

pub(super) fn locate(text: &str) -> Vec<Slot> {
    let mut slots = Vec::new();
    let mut in_section = false;
    // The column of the "- " that starts each item, once seen.
    let mut item_indent: Option<usize> = None;
    // The column the current item's keys start at.
    let mut key_column: Option<usize> = None;
    let mut index: Option<usize> = None;
    let mut line_start = 0;
    for line in text.split_inclusive('\n') {
        let start = line_start;
        line_start += line.len();
        let content = line.trim_end_matches(['\n', '\r']);
        let rest = content.trim_start_matches(' ');
        let indent = content.len() - rest.len();
        if rest.trim().is_empty() || rest.starts_with('#') {
            continue;
        }
        let is_item = rest == "-" || rest.starts_with("- ");
        if indent == 0 && !is_item {
            // A new top-level key (or a document marker) ends the section.
            in_section = rest
                .strip_prefix("credentials:")
                .is_some_and(|after| rest_is_comment(after, true));
            item_indent = None;
            key_column = None;
            continue;
        }
        if !in_section {
            continue;
        }
        let mut column = indent;
        let mut body = rest;
        if is_item {
            if *item_indent.get_or_insert(indent) != indent {
                // A nested list inside an item: not where values live.
                continue;
            }
            index = Some(index.map_or(0, |i| i + 1));
            let after_dash = &rest[1..];
            body = after_dash.trim_start_matches(' ');
            column = indent + 1 + (after_dash.len() - body.len());
            if body.is_empty() || body.starts_with('#') {
                // "-" alone: the item's keys start on the next line.
                key_column = None;
                continue;
            }
            key_column = Some(column);
        } else if key_column.is_none() && index.is_some() && item_indent.is_some_and(|i| indent > i)
        {
            key_column = Some(indent);
        }
        let Some(index) = index else { continue };
        if key_column != Some(column) {
            continue;
        }
        let Some(after) = body.strip_prefix("value:") else {
            continue;
        };
        if !(after.is_empty() || after.starts_with([' ', '\t'])) {
            continue;
        }
        let offset = start + (content.len() - after.len());
        if let Some(slot) = scalar(after, offset, index) {
            slots.push(slot);
        }
    }
    slots
}

/// Reads the scalar in `after` (what follows `value:`), which starts at byte `offset`.
fn scalar(after: &str, offset: usize, index: usize) -> Option<Slot> {
    let s = after.trim_start_matches([' ', '\t']);
    let offset = offset + (after.len() - s.len());
    let first = s.chars().next()?;
    if first == '#' {
        // `value:` with nothing after it is null; there is nothing to change.
        return None;
    }
    let read = match first {
        '"' => read_double(s).map(|(len, text)| (len, text, Style::Double)),
        '\'' => read_single(s, true).map(|(len, text)| (len, text, Style::Single)),
        '|' | '>' => Err("a block scalar (| or >)"),
        '&' | '*' | '!' => Err("an anchor, alias or tag"),
        '[' | '{' => Err("a flow collection"),
        '%' | '@' | '`' => Err("a reserved indicator"),
        _ => plain(s).map(|(len, text)| (len, text, Style::Plain)),
    };
    Some(match read {
        Ok((len, text, style)) => {
            let rest = s.get(len..).unwrap_or_default();
            Slot {
                index,
                span: offset..offset + len,
                style,
                decoded: if rest_is_comment(rest, true) {
                    Ok(text)
                } else {
                    Err("text after the closing quote")
                },
            }
        }
        Err(reason) => Slot {
            index,
            span: offset..offset,
            style: Style::Plain,
            decoded: Err(reason),
        },
    })
}

/// A plain scalar: up to a ` #` comment or the end of the line, trailing blanks excluded.
fn plain(s: &str) -> Result<(usize, zeroize::Zeroizing<String>), &'static str> {
    let end = [" #", "\t#"]
        .iter()
        .filter_map(|marker| s.find(marker))
        .min()
        .unwrap_or(s.len());
    let token = s[..end].trim_end_matches([' ', '\t']);
    if token.contains(": ") || token.ends_with(':') {
        return Err("a nested mapping");
    }
    Ok((token.len(), zeroize::Zeroizing::new(token.to_owned())))
}

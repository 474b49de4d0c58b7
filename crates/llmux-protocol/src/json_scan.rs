//! A single-pass scanner over the top level of a JSON object.
//!
//! The same-protocol hot path only needs to touch a few top-level fields (`model`, `usage`,
//! `choices`, `provider`, `stream_options`). Building a tree for that would cost an allocation
//! per value; this scanner instead returns byte ranges, so callers splice the few bytes they
//! change and copy the rest verbatim. Nested values are skipped by bracket counting (string
//! aware), not validated: callers that need validation parse with serde separately.

use std::ops::Range;

/// One `"key": value` member of the top-level object, as byte ranges into the input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The key between its quotes, raw (escapes are not decoded).
    pub key: Range<usize>,
    /// The value, from its first to its last byte.
    pub value: Range<usize>,
}

/// The input is not a JSON object this scanner can walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed JSON object at byte {0}")]
pub struct ScanError(pub usize);

/// Lists the members of the top-level object, in order.
pub fn members(json: &[u8]) -> Result<Vec<Member>, ScanError> {
    let mut out = Vec::with_capacity(8);
    each_member(json, |member| out.push(member))?;
    Ok(out)
}

/// Shows `visit` each member of the top-level object, in order, without collecting them. On
/// malformed input it may have seen some members before the error.
pub fn each_member(json: &[u8], mut visit: impl FnMut(Member)) -> Result<(), ScanError> {
    let mut pos = skip_ws(json, 0);
    if json.get(pos) != Some(&b'{') {
        return Err(ScanError(pos));
    }
    pos = skip_ws(json, pos + 1);
    if json.get(pos) == Some(&b'}') {
        return finish(json, pos + 1);
    }
    loop {
        if json.get(pos) != Some(&b'"') {
            return Err(ScanError(pos));
        }
        let key_end = skip_string(json, pos)?;
        let key = pos + 1..key_end - 1;
        pos = skip_ws(json, key_end);
        if json.get(pos) != Some(&b':') {
            return Err(ScanError(pos));
        }
        pos = skip_ws(json, pos + 1);
        let value_end = skip_value(json, pos)?;
        visit(Member {
            key,
            value: pos..value_end,
        });
        pos = skip_ws(json, value_end);
        match json.get(pos) {
            Some(b',') => pos = skip_ws(json, pos + 1),
            Some(b'}') => return finish(json, pos + 1),
            _ => return Err(ScanError(pos)),
        }
    }
}

/// Finds the value range of top-level `key` (keys without escapes only).
pub fn find<'m>(json: &[u8], members: &'m [Member], key: &str) -> Option<&'m Member> {
    members
        .iter()
        .find(|m| &json[m.key.clone()] == key.as_bytes())
}

#[inline]
fn finish(json: &[u8], pos: usize) -> Result<(), ScanError> {
    let end = skip_ws(json, pos);
    if end == json.len() {
        Ok(())
    } else {
        Err(ScanError(end))
    }
}

#[inline]
fn skip_ws(json: &[u8], mut pos: usize) -> usize {
    // Every JSON space is at most b' ': one comparison settles compact JSON's common case.
    while let Some(&b) = json.get(pos)
        && b <= b' '
        && matches!(b, b' ' | b'\n' | b'\r' | b'\t')
    {
        pos += 1;
    }
    pos
}

/// `pos` is at an opening quote; returns the position after the closing quote.
#[inline]
fn skip_string(json: &[u8], pos: usize) -> Result<usize, ScanError> {
    let mut i = pos + 1;
    loop {
        let rel = memchr::memchr2(b'"', b'\\', &json[i.min(json.len())..]).ok_or(ScanError(pos))?;
        i += rel;
        if json[i] == b'\\' {
            i += 2;
        } else {
            return Ok(i + 1);
        }
    }
}

/// Returns the position just after the value that starts at `pos`.
#[inline]
fn skip_value(json: &[u8], pos: usize) -> Result<usize, ScanError> {
    match json.get(pos) {
        Some(b'"') => skip_string(json, pos),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut i = pos;
            while i < json.len() {
                match json[i] {
                    b'"' => {
                        i = skip_string(json, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Ok(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            Err(ScanError(pos))
        }
        Some(_) => {
            let mut i = pos;
            while let Some(&b) = json.get(i) {
                if matches!(b, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') {
                    break;
                }
                i += 1;
            }
            if i == pos { Err(ScanError(pos)) } else { Ok(i) }
        }
        None => Err(ScanError(pos)),
    }
}

/// Replaces the bytes of `range` in `json` with `replacement`.
pub fn splice(json: &[u8], range: Range<usize>, replacement: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + replacement.len());
    out.extend_from_slice(&json[..range.start]);
    out.extend_from_slice(replacement);
    out.extend_from_slice(&json[range.end..]);
    out
}

/// How to change one top-level member.
#[derive(Debug, Clone, Copy)]
pub enum Edit<'a> {
    /// Set `key` to this raw JSON value (added at the end when absent).
    Set(&'a str, &'a [u8]),
    /// Drop `key` when present.
    Remove(&'a str),
}

/// Rebuilds the top-level object with `edits` applied; every other member is copied verbatim
/// and in order.
pub fn edit(json: &[u8], members: &[Member], edits: &[Edit<'_>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len() + 64);
    out.push(b'{');
    let mut applied = vec![false; edits.len()];
    let mut first = true;
    let mut push_member = |out: &mut Vec<u8>, bytes: &[&[u8]]| {
        if !first {
            out.push(b',');
        }
        first = false;
        for b in bytes {
            out.extend_from_slice(b);
        }
    };
    for member in members {
        let key = &json[member.key.clone()];
        let edit = edits.iter().position(|e| match e {
            Edit::Set(k, _) | Edit::Remove(k) => k.as_bytes() == key,
        });
        match edit.map(|i| (i, edits[i])) {
            Some((i, Edit::Set(_, value))) => {
                applied[i] = true;
                push_member(
                    &mut out,
                    &[&json[member.key.start - 1..member.key.end + 1], b":", value],
                );
            }
            Some((_, Edit::Remove(_))) => {}
            None => push_member(
                &mut out,
                &[
                    &json[member.key.start - 1..member.key.end + 1],
                    b":",
                    &json[member.value.clone()],
                ],
            ),
        }
    }
    for (i, e) in edits.iter().enumerate() {
        if let (Edit::Set(key, value), false) = (e, applied[i]) {
            push_member(&mut out, &[b"\"", key.as_bytes(), b"\":", value]);
        }
    }
    out.push(b'}');
    out
}

/// What [`edit_array`] does with one element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElementEdit {
    /// The element stays as it is.
    Keep,
    /// The element goes.
    Drop,
    /// The element becomes these bytes.
    Replace(Vec<u8>),
}

/// The JSON array `array` with `edit` applied to each element (given as its raw bytes), or
/// `None` when every element stays as it is (or `array` is not an array). Kept elements are
/// copied verbatim; only the separators between elements are rewritten.
pub fn edit_array(array: &[u8], mut edit: impl FnMut(&[u8]) -> ElementEdit) -> Option<Vec<u8>> {
    let elements: Vec<&serde_json::value::RawValue> = serde_json::from_slice(array).ok()?;
    let mut changed = false;
    let mut out = Vec::with_capacity(array.len());
    out.push(b'[');
    let mut first = true;
    for element in elements {
        let raw = element.get().as_bytes();
        let bytes = match edit(raw) {
            ElementEdit::Keep => raw,
            ElementEdit::Drop => {
                changed = true;
                continue;
            }
            ElementEdit::Replace(bytes) => {
                changed = true;
                if !first {
                    out.push(b',');
                }
                first = false;
                out.extend_from_slice(&bytes);
                continue;
            }
        };
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(bytes);
    }
    out.push(b']');
    changed.then_some(out)
}

/// `json` (an object) with [`edit_array`] applied to the array under top-level `key`; `None`
/// when nothing changed.
pub fn edit_member_array(
    json: &[u8],
    key: &str,
    edit: impl FnMut(&[u8]) -> ElementEdit,
) -> Option<Vec<u8>> {
    let members = members(json).ok()?;
    let range = find(json, &members, key)?.value.clone();
    let edited = edit_array(&json[range.clone()], edit)?;
    Some(splice(json, range, &edited))
}

#[cfg(test)]
mod tests;

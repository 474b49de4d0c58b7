//! The `thoughtSignature` envelope: reasoning another vendor needs back, carried through a
//! Gemini client as an opaque base64 signature.
//!
//! Layout: standard base64 (with padding) of [`MAGIC`] followed by a small JSON object. Clients
//! may re-encode the bytes (the Python SDK decodes `thoughtSignature` into bytes and writes them
//! back), so reading accepts the standard and the URL-safe alphabets, padded or not. A signature
//! that does not open with the magic bytes is a vendor's own (Gemini's) and is used unchanged.

use serde::{Deserialize, Serialize};

use crate::neutral::{Reasoning, ReasoningOrigin};

/// Opens every envelope. No Gemini signature starts with these bytes.
const MAGIC: &[u8] = b"llmux/r1\n";

/// The base64 text every envelope opens with ([`MAGIC`] is whole base64 groups, without `+`
/// or `/`, so both alphabets agree).
pub(super) const ENVELOPE_HEAD: &str = "bGxtdXgvcjEK";

/// For an envelope, the call's own (Gemini) signature inside it, if any; `None` when
/// `signature` is not an envelope (it is Gemini's own).
pub(super) fn own_signature(signature: &str) -> Option<Option<String>> {
    unwrap(signature).map(|envelope| envelope.c)
}

/// What an envelope holds.
#[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
struct Envelope {
    /// The signature over the thought part's own text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    /// Redacted reasoning (the thought part's text is empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
    /// Who issued `s` or `r`; absent in older envelopes, which only ever held Anthropic's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    o: Option<ReasoningOrigin>,
    /// On a call: the call's own signature, when it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    c: Option<String>,
    /// On a call: the reasoning that came before it in the answer.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    rs: Vec<Carried>,
}

/// One reasoning part carried on a call.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Carried {
    #[serde(default)]
    t: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    r: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    o: Option<ReasoningOrigin>,
}

/// Whether a reasoning part must go back to its vendor (it is signed or redacted).
pub(super) fn must_return(reasoning: &Reasoning) -> bool {
    reasoning
        .signature
        .as_deref()
        .is_some_and(|s| !s.is_empty())
        || reasoning.redacted.as_deref().is_some_and(|r| !r.is_empty())
}

/// The `thoughtSignature` of a thought part: `None` when the reasoning carries nothing to return.
pub(super) fn thought_signature(
    signature: Option<&str>,
    redacted: Option<&str>,
    origin: Option<ReasoningOrigin>,
) -> Option<String> {
    let s = signature.filter(|s| !s.is_empty()).map(str::to_owned);
    let r = redacted.filter(|r| !r.is_empty()).map(str::to_owned);
    if s.is_none() && r.is_none() {
        return None;
    }
    Some(wrap(&Envelope {
        s,
        r,
        o: legacy_or(origin),
        ..Envelope::default()
    }))
}

/// The origin an envelope records: none for Anthropic, which envelopes held before origins were
/// recorded (so those envelopes read the same, and stay byte for byte what they were).
fn legacy_or(origin: Option<ReasoningOrigin>) -> Option<ReasoningOrigin> {
    origin.filter(|o| *o != ReasoningOrigin::Anthropic)
}

/// A thought part's `thoughtSignature` → (signature, redacted, who issued them). A signature
/// that is not an envelope is the vendor's own (Gemini's).
pub(super) fn read_thought(
    signature: &str,
) -> (Option<String>, Option<String>, Option<ReasoningOrigin>) {
    match unwrap(signature) {
        Some(envelope) => (
            envelope.s,
            envelope.r,
            Some(envelope.o.unwrap_or(ReasoningOrigin::Anthropic)),
        ),
        None => (
            Some(signature.to_owned()),
            None,
            Some(ReasoningOrigin::Gemini),
        ),
    }
}

/// The `thoughtSignature` of a call: its own signature, unchanged, when no reasoning has to ride
/// with it; otherwise an envelope holding both.
pub(super) fn call_signature(own: Option<&str>, carried: &[&Reasoning]) -> Option<String> {
    let own = own.filter(|s| !s.is_empty());
    if carried.is_empty() {
        return own.map(str::to_owned);
    }
    Some(wrap(&Envelope {
        c: own.map(str::to_owned),
        rs: carried
            .iter()
            .map(|reasoning| Carried {
                t: reasoning.text.clone(),
                s: reasoning.signature.clone().filter(|s| !s.is_empty()),
                r: reasoning.redacted.clone().filter(|r| !r.is_empty()),
                o: legacy_or(reasoning.origin),
            })
            .collect(),
        ..Envelope::default()
    }))
}

/// A call's `thoughtSignature` → (the call's own signature, the reasoning carried with it).
pub(super) fn read_call(signature: &str) -> (Option<String>, Vec<Reasoning>) {
    match unwrap(signature) {
        Some(envelope) => (
            envelope.c,
            envelope
                .rs
                .into_iter()
                .map(|carried| Reasoning {
                    text: carried.t,
                    signature: carried.s,
                    redacted: carried.r,
                    origin: Some(carried.o.unwrap_or(ReasoningOrigin::Anthropic)),
                })
                .collect(),
        ),
        None => (Some(signature.to_owned()), Vec::new()),
    }
}

fn wrap(envelope: &Envelope) -> String {
    let mut bytes = MAGIC.to_vec();
    // Serializing strings and options cannot fail.
    bytes.extend(serde_json::to_vec(envelope).unwrap_or_default());
    encode_base64(&bytes)
}

fn unwrap(signature: &str) -> Option<Envelope> {
    // Cheap test first: an envelope's first 12 characters are always the same (MAGIC is 9 bytes,
    // whole base64 groups), in either alphabet.
    let head = signature.as_bytes().get(..12)?;
    let magic = encode_base64(MAGIC);
    let same = head
        .iter()
        .zip(magic.as_bytes())
        .all(|(&a, &b)| a == b || (a == b'-' && b == b'+') || (a == b'_' && b == b'/'));
    if !same {
        return None;
    }
    let bytes = decode_base64(signature)?;
    serde_json::from_slice(bytes.strip_prefix(MAGIC)?).ok()
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding.
fn encode_base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18u32, 12, 6, 0].into_iter().enumerate() {
            if i <= group.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard or URL-safe base64, padded or not; `None` for anything else.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=').as_bytes();
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0u32;
    for &c in text {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_in_both_alphabets() {
        for len in 0..40usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 250) as u8).collect();
            let text = encode_base64(&bytes);
            assert_eq!(text.len() % 4, 0);
            assert_eq!(decode_base64(&text).as_deref(), Some(&bytes[..]));
            let url_safe: String = text
                .trim_end_matches('=')
                .chars()
                .map(|c| match c {
                    '+' => '-',
                    '/' => '_',
                    c => c,
                })
                .collect();
            assert_eq!(decode_base64(&url_safe).as_deref(), Some(&bytes[..]));
        }
        assert_eq!(encode_base64(b"hello"), "aGVsbG8=");
        assert_eq!(decode_base64("a b"), None);
        assert_eq!(decode_base64("abcde"), None);
    }

    #[test]
    fn envelopes_round_trip_and_foreign_signatures_pass_through() {
        let signed = Reasoning {
            text: "think".into(),
            signature: Some("EqQBCgIYAhIM+/==".into()),
            redacted: None,
            origin: Some(crate::neutral::ReasoningOrigin::Anthropic),
        };
        let redacted = Reasoning {
            text: String::new(),
            signature: None,
            redacted: Some("ErcBCkgIARABGAIiQ".into()),
            origin: Some(crate::neutral::ReasoningOrigin::Anthropic),
        };
        let wrapped = call_signature(Some("gemini-sig"), &[&signed, &redacted]).unwrap();
        assert_eq!(
            read_call(&wrapped),
            (Some("gemini-sig".into()), vec![signed.clone(), redacted])
        );
        // The Python SDK may give it back URL-safe and unpadded.
        let url_safe = wrapped.replace('+', "-").replace('/', "_");
        assert_eq!(read_call(url_safe.trim_end_matches('=')).1.len(), 2);

        assert_eq!(call_signature(Some("own"), &[]).as_deref(), Some("own"));
        assert_eq!(call_signature(Some(""), &[]), None);
        assert_eq!(
            read_call("CssBAb4+9vtA"),
            (Some("CssBAb4+9vtA".into()), vec![])
        );

        let thought = thought_signature(signed.signature.as_deref(), None, signed.origin).unwrap();
        assert_eq!(
            read_thought(&thought),
            (signed.signature.clone(), None, signed.origin)
        );
        assert_eq!(thought_signature(None, Some(""), None), None);
        assert_eq!(
            read_thought("raw"),
            (Some("raw".into()), None, Some(ReasoningOrigin::Gemini))
        );
        assert!(must_return(&signed));
        assert!(!must_return(&Reasoning {
            text: "x".into(),
            signature: Some(String::new()),
            ..Reasoning::default()
        }));
    }
}

//! Vendor bytes → valid UTF-8 for the client.
//!
//! Same-protocol answers are forwarded as bytes, with only `model` rewritten. A vendor that sends
//! invalid UTF-8 inside a JSON string would make the client's JSON invalid, so every rewritten
//! body passes through here: valid text (the normal case) is returned as it is, without a copy,
//! and invalid sequences become U+FFFD. JSON structure is ASCII, so this never breaks a document
//! that was otherwise well-formed.

use bytes::Bytes;

/// `bytes` unchanged (the same buffer, no copy) when it is valid UTF-8; otherwise a copy with
/// each invalid sequence replaced by U+FFFD.
pub fn valid_or_replaced(bytes: Bytes) -> Bytes {
    if is_valid(&bytes) {
        return bytes;
    }
    Bytes::from(String::from_utf8_lossy(&bytes).into_owned())
}

/// [`valid_or_replaced`] for an owned vector: the same allocation when valid.
pub fn valid_or_replaced_vec(bytes: Vec<u8>) -> Vec<u8> {
    if bytes.is_ascii() {
        return bytes;
    }
    match String::from_utf8(bytes) {
        Ok(text) => text.into_bytes(),
        Err(err) => String::from_utf8_lossy(err.as_bytes())
            .into_owned()
            .into_bytes(),
    }
}

/// Whether `bytes` is valid UTF-8. Vendor JSON is almost always pure ASCII, which a word-at-a-time
/// check confirms in about a quarter of the instructions of full UTF-8 validation (this runs on
/// every same-protocol answer and stream event).
fn is_valid(bytes: &[u8]) -> bool {
    bytes.is_ascii() || std::str::from_utf8(bytes).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_text_is_the_same_buffer() {
        let bytes = Bytes::from(r#"{"model":"m","text":"héllo ✓"}"#.as_bytes().to_vec());
        let pointer = bytes.as_ptr();
        let out = valid_or_replaced(bytes.clone());
        assert_eq!(out, bytes);
        assert_eq!(out.as_ptr(), pointer);

        let vec = b"{\"a\":\"\xC3\xA9\"}".to_vec();
        let pointer = vec.as_ptr();
        let out = valid_or_replaced_vec(vec);
        assert_eq!(out, "{\"a\":\"é\"}".as_bytes());
        assert_eq!(out.as_ptr(), pointer);
    }

    #[test]
    fn invalid_sequences_become_replacement_characters_and_json_stays_valid() {
        let raw: &[u8] = b"{\"text\":\"a\xFFb\xC3\",\"n\":\"\xE2\x9C\"}";
        let expected = "{\"text\":\"a\u{FFFD}b\u{FFFD}\",\"n\":\"\u{FFFD}\"}";
        let out = valid_or_replaced(Bytes::copy_from_slice(raw));
        assert_eq!(out, expected.as_bytes());
        assert_eq!(valid_or_replaced_vec(raw.to_vec()), expected.as_bytes());
        let value: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(value["text"], "a\u{FFFD}b\u{FFFD}");
        assert_eq!(valid_or_replaced(Bytes::new()), Bytes::new());
    }
}

//! Masking of secret-looking text before it is logged or returned.
//!
//! Known credential values are removed exactly by the caller (it knows them); these patterns
//! catch what a vendor echoes back on its own (OpenAI's "Incorrect API key provided: sk-…").

use std::borrow::Cow;
use std::sync::LazyLock;

use regex::Regex;

static PATTERNS: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(concat!(
        r"sk-ant-[A-Za-z0-9_*-]{4,}",
        r"|sk-[A-Za-z0-9_*-]{4,}",
        r"|llmux-[A-Za-z0-9_-]{8,}",
        r"|AIza[0-9A-Za-z_-]{20,}",
        r"|(?i:bearer)\s+[A-Za-z0-9._~+/=*-]+",
    ))
    .ok()
});

/// The text with API-key-like substrings replaced by `***`.
pub fn mask_secrets(text: &str) -> Cow<'_, str> {
    match PATTERNS.as_ref() {
        Some(re) => re.replace_all(text, "***"),
        None => Cow::Owned("***".into()),
    }
}

/// Replaces each exact `secret` occurrence with `***`, then masks patterns.
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    for secret in secrets.iter().filter(|s| s.len() >= 4) {
        if out.contains(*secret) {
            out = out.replace(*secret, "***");
        }
    }
    mask_secrets(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_vendor_key_shapes() {
        for (input, leaked) in [
            (
                "Incorrect API key provided: sk-test-abcdefghijklmnopqrstuvwxyz.",
                "abcdefghijklmnop",
            ),
            ("key sk-proj-****abcd", "abcd"),
            ("sk-ant-api03-secretsecret", "secretsecret"),
            ("AIzaSyA1234567890abcdefghijklmnopqrstu", "1234567890abcdef"),
            ("Authorization: Bearer tok.en-value", "tok.en-value"),
        ] {
            let masked = mask_secrets(input);
            assert!(!masked.contains(leaked), "{masked}");
            assert!(masked.contains("***"));
        }
        assert_eq!(mask_secrets("no secret here"), "no secret here");
    }

    #[test]
    fn scrub_removes_exact_values() {
        assert_eq!(
            scrub("bad key XYZ-123456 given", &["XYZ-123456"]),
            "bad key *** given"
        );
    }
}

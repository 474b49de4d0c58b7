//! Small helpers more than one codec needs, kept once.

/// Copies valid JSON text without its insignificant whitespace, keeping member order (a
/// `Value` round trip would sort the keys). `raw` must be valid JSON (a `RawValue` is).
pub(crate) fn compact_json(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in raw.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\n' | '\r' | '\t') {
            // The only whitespace valid JSON has between tokens.
            out.push(c);
        }
    }
    out
}

/// FNV-1a: a stable hash (the same across builds, platforms and Rust versions, unlike
/// `DefaultHasher`) to derive ids from content.
pub(crate) fn stable_hash(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Inline file data as a client sends it (`file_data`): a `data:<mime>;base64,` URL, or bare
/// base64 (OpenAI's Responses API takes a PDF that way), read as a PDF.
pub(crate) fn inline_file(data: &str) -> crate::neutral::ImageSource {
    use crate::neutral::ImageSource;
    match ImageSource::from_url(data) {
        ImageSource::Url(_) if !data.starts_with("http://") && !data.starts_with("https://") => {
            ImageSource::Base64 {
                media_type: crate::neutral::PDF.to_owned(),
                data: data.to_owned(),
            }
        }
        source => source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_json_drops_whitespace_outside_strings_only() {
        assert_eq!(
            compact_json("{ \"b\" : [1, 2],\n\t\"a\\\" x\": \" y \" }"),
            "{\"b\":[1,2],\"a\\\" x\":\" y \"}"
        );
    }

    #[test]
    fn stable_hash_is_fnv1a() {
        assert_eq!(stable_hash(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(stable_hash(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}

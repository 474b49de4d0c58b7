//! Token usage as vendors report it on the same-protocol byte paths, read from the `usage`
//! object alone with a derived struct (no JSON tree). OpenAI Chat names
//! (`prompt_tokens`, `prompt_tokens_details.cached_tokens`, …) and Open Responses names
//! (`input_tokens`, `input_tokens_details.cached_tokens`, …) both count cached input inside the
//! input, so one shape reads both.

use serde::Deserialize;

use crate::neutral;

/// Token counts for one request. Fields a vendor did not report stay `None`: the gateway never
/// invents usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Usage {
    /// Prompt (input) tokens, cached ones included.
    #[serde(default, alias = "input_tokens")]
    pub prompt_tokens: Option<u64>,
    /// Completion (output) tokens, reasoning included.
    #[serde(default, alias = "output_tokens")]
    pub completion_tokens: Option<u64>,
    /// Total tokens, as reported.
    #[serde(default)]
    pub total_tokens: Option<u64>,
    /// Input detail: tokens read from the vendor's prompt cache.
    #[serde(default, alias = "input_tokens_details")]
    pub prompt_tokens_details: Option<InputDetails>,
    /// Output detail: tokens spent on reasoning.
    #[serde(default, alias = "output_tokens_details")]
    pub completion_tokens_details: Option<OutputDetails>,
}

/// `prompt_tokens_details` / `input_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct InputDetails {
    /// Input tokens read from a cache.
    #[serde(default)]
    pub cached_tokens: Option<u64>,
    /// Input tokens written to a cache (OpenAI-compatible relays of Anthropic models report
    /// them here; OpenAI itself never does).
    #[serde(default, alias = "cache_write_tokens")]
    pub cache_creation_tokens: Option<u64>,
}

/// `completion_tokens_details` / `output_tokens_details`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct OutputDetails {
    /// Output tokens spent on reasoning.
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

impl Usage {
    /// Reads a `usage` object with the top-level scanner: the byte paths read one from every
    /// answer, and OpenAI's (with its two detail objects) cost the derived deserializer about
    /// 3,500 instructions. `None` when `json` is not an object. A count that is not a
    /// non-negative integer (`null` included) is left unreported; unknown members are skipped.
    pub fn read(json: &[u8]) -> Option<Self> {
        let mut usage = Self::default();
        each(json, |key, value| match key {
            b"prompt_tokens" | b"input_tokens" => usage.prompt_tokens = count(value),
            b"completion_tokens" | b"output_tokens" => usage.completion_tokens = count(value),
            b"total_tokens" => usage.total_tokens = count(value),
            b"prompt_tokens_details" | b"input_tokens_details" => {
                let mut input = InputDetails::default();
                usage.prompt_tokens_details = each(value, |key, value| match key {
                    b"cached_tokens" => input.cached_tokens = count(value),
                    b"cache_creation_tokens" | b"cache_write_tokens" => {
                        input.cache_creation_tokens = count(value);
                    }
                    _ => {}
                })
                .map(|()| input);
            }
            b"completion_tokens_details" | b"output_tokens_details" => {
                let mut output = OutputDetails::default();
                usage.completion_tokens_details = each(value, |key, value| {
                    if key == b"reasoning_tokens" {
                        output.reasoning_tokens = count(value);
                    }
                })
                .map(|()| output);
            }
            _ => {}
        })?;
        Some(usage)
    }

    /// Input tokens read from a cache, when reported.
    pub fn cached_tokens(&self) -> Option<u64> {
        self.prompt_tokens_details.and_then(|d| d.cached_tokens)
    }

    /// Input tokens written to a cache, when reported.
    pub fn cache_creation_tokens(&self) -> Option<u64> {
        self.prompt_tokens_details
            .and_then(|d| d.cache_creation_tokens)
    }

    /// Output tokens spent on reasoning, when reported.
    pub fn reasoning_tokens(&self) -> Option<u64> {
        self.completion_tokens_details
            .and_then(|d| d.reasoning_tokens)
    }

    /// The normalized counts (unreported input or output counts as zero).
    pub fn to_neutral(&self) -> neutral::Usage {
        neutral::Usage {
            input_tokens: self.prompt_tokens.unwrap_or(0),
            output_tokens: self.completion_tokens.unwrap_or(0),
            cached_input_tokens: self.cached_tokens(),
            cache_creation_input_tokens: self.cache_creation_tokens(),
            reasoning_tokens: self.reasoning_tokens(),
        }
    }
}

impl From<neutral::Usage> for Usage {
    fn from(usage: neutral::Usage) -> Self {
        let input = (usage.cached_input_tokens.is_some()
            || usage.cache_creation_input_tokens.is_some())
        .then_some(InputDetails {
            cached_tokens: usage.cached_input_tokens,
            cache_creation_tokens: usage.cache_creation_input_tokens,
        });
        Self {
            prompt_tokens: Some(usage.input_tokens),
            completion_tokens: Some(usage.output_tokens),
            total_tokens: Some(usage.total()),
            prompt_tokens_details: input,
            completion_tokens_details: usage.reasoning_tokens.map(|r| OutputDetails {
                reasoning_tokens: Some(r),
            }),
        }
    }
}

/// Shows `visit` the raw key and value of each top-level member of `json`; `None` when it is
/// not an object.
fn each(json: &[u8], mut visit: impl FnMut(&[u8], &[u8])) -> Option<()> {
    crate::json_scan::each_member(json, |m| visit(&json[m.key], &json[m.value])).ok()
}

/// A token count: a JSON integer that fits `u64`.
fn count(value: &[u8]) -> Option<u64> {
    // Digits by hand: `str::parse` after `from_utf8` cost three times as much per count.
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        let digit = b.checked_sub(b'0').filter(|d| *d <= 9)?;
        n.checked_mul(10)?.checked_add(u64::from(digit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read with [`Usage::read`], checked against the derived deserializer.
    fn read(json: &str) -> Usage {
        let usage = Usage::read(json.as_bytes()).expect("usage");
        let derived: Usage = serde_json::from_str(json).expect("usage");
        assert_eq!(usage, derived, "{json}");
        usage
    }

    #[test]
    fn the_scanner_reads_what_the_deserializer_reads_and_tolerates_more() {
        read(r#"{"prompt_tokens":9,"completion_tokens":12,"total_tokens":21}"#);
        read(
            r#"{"prompt_tokens":10,"prompt_tokens_details":{"cache_write_tokens":3,"cached_tokens":0}}"#,
        );
        read(r#"{"completion_tokens":null, "total_tokens" : 4 , "extra":{"a":[1,{"b":2}]}}"#);
        assert_eq!(Usage::read(b"[1]"), None);
        assert_eq!(Usage::read(b"null"), None);
        // A malformed count leaves only that count unreported (the derived reader lost all).
        let odd = Usage::read(br#"{"prompt_tokens":"7","completion_tokens":-1,"total_tokens":2.5,"output_tokens_details":{"reasoning_tokens":4}}"#)
            .expect("an object");
        assert_eq!(odd.prompt_tokens, None);
        assert_eq!(odd.completion_tokens, None);
        assert_eq!(odd.total_tokens, None);
        assert_eq!(odd.reasoning_tokens(), Some(4));
        // The largest count reads; one more is not a count.
        let edge = Usage::read(
            br#"{"prompt_tokens":18446744073709551615,"completion_tokens":18446744073709551616}"#,
        )
        .expect("an object");
        assert_eq!(edge.prompt_tokens, Some(u64::MAX));
        assert_eq!(edge.completion_tokens, None);
    }

    #[test]
    fn reads_chat_cached_and_reasoning_tokens() {
        let usage = read(
            r#"{"prompt_tokens":2006,"completion_tokens":300,"total_tokens":2306,
                "prompt_tokens_details":{"cached_tokens":1920,"audio_tokens":0},
                "completion_tokens_details":{"reasoning_tokens":256,"audio_tokens":0,
                  "accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}"#,
        );
        let neutral = usage.to_neutral();
        assert_eq!(neutral.input_tokens, 2006);
        assert_eq!(neutral.cached_input_tokens, Some(1920));
        assert_eq!(neutral.reasoning_tokens, Some(256));
        assert_eq!(neutral.cache_creation_input_tokens, None);
    }

    #[test]
    fn reads_responses_detail_names() {
        let usage = read(
            r#"{"input_tokens":100,"input_tokens_details":{"cached_tokens":64},
                "output_tokens":50,"output_tokens_details":{"reasoning_tokens":20},"total_tokens":150}"#,
        );
        assert_eq!(usage.cached_tokens(), Some(64));
        assert_eq!(usage.reasoning_tokens(), Some(20));
    }

    #[test]
    fn null_details_are_unreported() {
        let usage = read(
            r#"{"prompt_tokens":5,"completion_tokens":1,"prompt_tokens_details":null,"completion_tokens_details":null}"#,
        );
        assert_eq!(usage.cached_tokens(), None);
        assert_eq!(usage.reasoning_tokens(), None);
    }

    #[test]
    fn neutral_round_trip_keeps_every_count() {
        let neutral = neutral::Usage {
            input_tokens: 120,
            output_tokens: 30,
            cached_input_tokens: Some(100),
            cache_creation_input_tokens: Some(10),
            reasoning_tokens: Some(12),
        };
        assert_eq!(Usage::from(neutral).to_neutral(), neutral);
    }
}

//! The few request parameters and answer facts a trace names, read with the top-level scanner
//! (no JSON tree): only when tracing is on, once per request and once per whole answer.

use std::sync::LazyLock;

use llmux_protocol::json_scan;
use memchr::memmem::Finder;

/// `gen_ai.request.*` parameters.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct RequestFacts {
    /// `max_tokens`, `max_completion_tokens`, `max_output_tokens` or Gemini's
    /// `generationConfig.maxOutputTokens`.
    pub max_tokens: Option<u64>,
    /// `temperature` (Gemini: `generationConfig.temperature`).
    pub temperature: Option<f64>,
}

impl RequestFacts {
    /// Reads the parameters of a request body of any ingress; a body that is not a JSON object
    /// has none.
    pub fn scan(body: &[u8]) -> Self {
        let mut out = Self::default();
        let Ok(members) = json_scan::members(body) else {
            return out;
        };
        for key in ["max_tokens", "max_completion_tokens", "max_output_tokens"] {
            if out.max_tokens.is_none() {
                out.max_tokens = number(body, &members, key).and_then(|n| n.parse().ok());
            }
        }
        out.temperature = number(body, &members, "temperature").and_then(|n| n.parse().ok());
        if let Some(config) = json_scan::find(body, &members, "generationConfig") {
            let config = &body[config.value.clone()];
            if let Ok(inner) = json_scan::members(config) {
                out.max_tokens = out.max_tokens.or_else(|| {
                    number(config, &inner, "maxOutputTokens").and_then(|n| n.parse().ok())
                });
                out.temperature = out
                    .temperature
                    .or_else(|| number(config, &inner, "temperature").and_then(|n| n.parse().ok()));
            }
        }
        out
    }
}

/// `gen_ai.response.*` facts of a whole answer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AnswerFacts {
    /// The answer's id (`id`, Gemini's `responseId`).
    pub id: Option<String>,
    /// The model named in the answer (`model`, Gemini's `modelVersion`).
    pub model: Option<String>,
    /// Why each choice ended: OpenAI's `choices[].finish_reason`, Anthropic's `stop_reason`,
    /// Gemini's `candidates[].finishReason`, Responses' `status`.
    pub finish_reasons: Vec<String>,
}

/// Finish reasons beyond this many are left out (one per choice).
const MAX_REASONS: usize = 16;

impl AnswerFacts {
    /// Reads the facts of a whole JSON answer in any client format, in one pass over its
    /// top-level members.
    pub fn scan(body: &[u8]) -> Self {
        match json_scan::members(body) {
            Ok(members) => Self::of_members(body, &members),
            Err(_) => Self::default(),
        }
    }

    /// The facts of `body`, whose top-level members a caller already scanned.
    pub fn of_members(body: &[u8], members: &[json_scan::Member]) -> Self {
        let mut out = Self::default();
        let mut choices = None;
        let mut status = None;
        for member in members {
            let value = &body[member.value.clone()];
            match &body[member.key.clone()] {
                b"id" | b"responseId" if out.id.is_none() => out.id = plain_string(value),
                b"model" | b"modelVersion" if out.model.is_none() => {
                    out.model = plain_string(value);
                }
                b"stop_reason" => out.finish_reasons.extend(plain_string(value)),
                b"choices" => choices = Some((value, &*FINISH_REASON)),
                b"candidates" => choices = Some((value, &*GEMINI_FINISH_REASON)),
                b"status" => status = plain_string(value),
                _ => {}
            }
        }
        if out.finish_reasons.is_empty() {
            if let Some((list, key)) = choices {
                let skip = key.needle().len();
                out.finish_reasons.extend(
                    key.find_iter(list)
                        .filter_map(|at| string_after(&list[at + skip..]))
                        .take(MAX_REASONS),
                );
            } else {
                out.finish_reasons.extend(status);
            }
        }
        out
    }
}

impl AnswerFacts {
    /// Adds what a later piece of a streamed answer says: the first id and model seen, and
    /// every finish reason (up to the cap).
    pub fn merge(&mut self, later: Self) {
        if self.id.is_none() {
            self.id = later.id;
        }
        if self.model.is_none() {
            self.model = later.model;
        }
        for reason in later.finish_reasons {
            self.add_finish_reason(&reason);
        }
    }

    /// A translated stream's start: the vendor's response id and model, when none was seen.
    pub fn start(&mut self, id: &str, model: &str) {
        if self.id.is_none() {
            self.id = plain(id);
        }
        if self.model.is_none() {
            self.model = plain(model);
        }
    }

    /// One more finish reason (one per choice), up to the cap.
    pub fn add_finish_reason(&mut self, reason: &str) {
        if self.finish_reasons.len() < MAX_REASONS
            && let Some(reason) = plain(reason)
        {
            self.finish_reasons.push(reason);
        }
    }

    /// The facts of a Responses stream's terminal event (`response.completed`, …), whose
    /// `response` member is the whole resource.
    pub fn of_event_response(event: &[u8]) -> Self {
        let Ok(members) = json_scan::members(event) else {
            return Self::default();
        };
        json_scan::find(event, &members, "response")
            .map(|response| Self::scan(&event[response.value.clone()]))
            .unwrap_or_default()
    }
}

/// A value from a decoded event, kept when short (the same cap as [`plain_string`]).
fn plain(text: &str) -> Option<String> {
    (!text.is_empty() && text.len() <= 256).then(|| text.to_owned())
}

/// A top-level number's text.
fn number<'b>(body: &'b [u8], members: &[json_scan::Member], key: &str) -> Option<&'b str> {
    let member = json_scan::find(body, members, key)?;
    std::str::from_utf8(&body[member.value.clone()]).ok()
}

/// A string without escapes (ids, models and reasons have none), at most 256 bytes.
fn plain_string(value: &[u8]) -> Option<String> {
    let inner = value.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if inner.len() > 256 || memchr::memchr2(b'\\', b'"', inner).is_some() {
        return None;
    }
    std::str::from_utf8(inner).ok().map(str::to_owned)
}

/// The string value after a key (`: "value"`), if the value is a plain string.
fn string_after(rest: &[u8]) -> Option<String> {
    let start = rest.iter().position(|b| !b" \t\r\n:".contains(b))?;
    let rest = &rest[start..];
    let end = rest.iter().skip(1).position(|&b| b == b'"')? + 2;
    plain_string(&rest[..end])
}

/// The finish-reason keys, as memchr substring searchers built once: comparing a window at
/// every offset cost ~17 instructions per byte of the answer (38,000 per 1 KB request), and
/// building a searcher per answer ~1,000.
static FINISH_REASON: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(b"\"finish_reason\""));
static GEMINI_FINISH_REASON: LazyLock<Finder<'static>> =
    LazyLock::new(|| Finder::new(b"\"finishReason\""));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_parameters_of_every_ingress() {
        let chat = RequestFacts::scan(br#"{"model":"m","max_tokens":50,"temperature":0.5}"#);
        assert_eq!(chat.max_tokens, Some(50));
        assert_eq!(chat.temperature, Some(0.5));
        let responses = RequestFacts::scan(br#"{"max_output_tokens":7}"#);
        assert_eq!(responses.max_tokens, Some(7));
        let gemini = RequestFacts::scan(
            br#"{"contents":[],"generationConfig":{"maxOutputTokens":9,"temperature":1}}"#,
        );
        assert_eq!(gemini.max_tokens, Some(9));
        assert_eq!(gemini.temperature, Some(1.0));
        assert_eq!(RequestFacts::scan(b"not json"), RequestFacts::default());
    }

    #[test]
    fn answer_facts_of_every_format() {
        let openai = AnswerFacts::scan(
            br#"{"id":"chatcmpl-1","model":"gpt","choices":[{"index":0,"finish_reason":"stop"},{"finish_reason": "length"}]}"#,
        );
        assert_eq!(openai.id.as_deref(), Some("chatcmpl-1"));
        assert_eq!(openai.model.as_deref(), Some("gpt"));
        assert_eq!(openai.finish_reasons, ["stop", "length"]);
        let anthropic =
            AnswerFacts::scan(br#"{"id":"msg_1","model":"claude","stop_reason":"end_turn"}"#);
        assert_eq!(anthropic.finish_reasons, ["end_turn"]);
        let gemini = AnswerFacts::scan(
            br#"{"candidates":[{"finishReason":"STOP"}],"modelVersion":"g","responseId":"r1"}"#,
        );
        assert_eq!(gemini.id.as_deref(), Some("r1"));
        assert_eq!(gemini.finish_reasons, ["STOP"]);
        let responses = AnswerFacts::scan(
            br#"{"id":"resp_1","object":"response","status":"completed","model":"m","output":[]}"#,
        );
        assert_eq!(responses.id.as_deref(), Some("resp_1"));
        assert_eq!(responses.finish_reasons, ["completed"]);
        let escaped = AnswerFacts::scan(br#"{"id":"a\"b","stop_reason":null,"status":"x"}"#);
        assert_eq!(escaped.id, None, "an id with escapes is left out");
        assert_eq!(escaped.finish_reasons, ["x"]);
    }
}

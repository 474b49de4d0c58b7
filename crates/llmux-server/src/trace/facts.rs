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
    /// How many choices a Chat Completions answer holds (`n`, or 1), as the chat ingress's
    /// decode read it; `None` where that is not known.
    pub choices: Option<u32>,
}

impl RequestFacts {
    /// Whether the answer is known to hold one choice at most: a chat request that did not ask
    /// for more.
    pub fn one_choice(&self) -> bool {
        self.choices.is_some_and(|n| n <= 1)
    }

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

/// `gen_ai.response.*` facts of an answer: its id, its model and why each choice ended.
///
/// The texts are kept back to back in one string (one allocation per answer, where a `String`
/// each cost three or four); a piece is a byte range of it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AnswerFacts {
    text: String,
    /// The answer's id (`id`, Gemini's `responseId`).
    id: Option<Piece>,
    /// The model named in the answer (`model`, Gemini's `modelVersion`).
    model: Option<Piece>,
    /// Why each choice ended: OpenAI's `choices[].finish_reason`, Anthropic's `stop_reason`,
    /// Gemini's `candidates[].finishReason`, Responses' `status`.
    reasons: [Piece; MAX_REASONS],
    reasons_len: u8,
}

/// A byte range of [`AnswerFacts::text`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Piece {
    start: u16,
    end: u16,
}

impl Piece {
    /// The range of `len` bytes appended to a text of `at` bytes, while a `u16` holds it.
    fn after(at: usize, len: usize) -> Option<Self> {
        Some(Self {
            start: u16::try_from(at).ok()?,
            end: u16::try_from(at + len).ok()?,
        })
    }
}

/// Finish reasons beyond this many are left out (one per choice).
pub const MAX_REASONS: usize = 16;

/// Room for the usual id, model and one reason in one allocation.
const TEXT_CAPACITY: usize = 96;

impl AnswerFacts {
    /// Reads the facts of a whole JSON answer in any client format, in one pass over its
    /// top-level members.
    pub fn scan(body: &[u8]) -> Self {
        let mut out = Self::default();
        if let Ok(members) = json_scan::members(body) {
            out.note_members(body, &members);
        }
        out
    }

    /// The facts of the whole answer `body`, whose top-level members a caller already
    /// scanned; `one_choice` when the request asked for one choice at most.
    pub fn of_answer(body: &[u8], members: &[json_scan::Member], one_choice: bool) -> Self {
        let mut out = Self::default();
        out.note(body, members, one_choice);
        out
    }

    /// Adds what `body` (a whole answer, or one piece of a streamed one), whose top-level
    /// members a caller already scanned, says: the first id and model seen, and its finish
    /// reasons (up to the cap).
    pub fn note_members(&mut self, body: &[u8], members: &[json_scan::Member]) {
        self.note(body, members, false);
    }

    /// [`Self::note_members`]; with `one_choice`, a choice list's finish reason is first looked
    /// for at its end, where OpenAI writes it (a search through the choices read ~500
    /// instructions of a 1 KB answer).
    fn note(&mut self, body: &[u8], members: &[json_scan::Member], one_choice: bool) {
        // The pieces are gathered as bytes, each checked to be plain text, and the text is
        // made a `String` once at the end: checking each piece with memchr and UTF-8
        // validation cost more in setup than in work (~550 instructions per answer).
        let mut text = std::mem::take(&mut self.text).into_bytes();
        let reasons_before = self.reasons_len;
        let mut choices = None;
        let mut status = None;
        for member in members {
            let value = &body[member.value.clone()];
            match &body[member.key.clone()] {
                b"id" | b"responseId" if self.id.is_none() => {
                    self.id = plain_string(value).and_then(|id| push(&mut text, id));
                }
                b"model" | b"modelVersion" if self.model.is_none() => {
                    self.model = plain_string(value).and_then(|model| push(&mut text, model));
                }
                b"stop_reason" => {
                    if let Some(reason) = plain_string(value) {
                        self.add_reason(&mut text, reason);
                    }
                }
                b"choices" => choices = Some((value, &*FINISH_REASON)),
                b"candidates" => choices = Some((value, &*GEMINI_FINISH_REASON)),
                b"status" => status = plain_string(value),
                _ => {}
            }
        }
        if self.reasons_len == reasons_before {
            if let Some((list, key)) = choices {
                let last = one_choice
                    .then(|| last_member_string(list, key.needle()))
                    .flatten();
                match last {
                    Some(reason) => self.add_reason(&mut text, reason),
                    None => self.search_reasons(&mut text, list, key),
                }
            } else if let Some(status) = status {
                self.add_reason(&mut text, status);
            }
        }
        match String::from_utf8(text) {
            Ok(text) => self.text = text,
            // Not reached (every piece was checked); the pieces would name text that is gone.
            Err(_) => *self = Self::default(),
        }
    }

    /// Every finish reason in `list` (the choices or candidates), found by `key`, up to the cap.
    fn search_reasons(&mut self, text: &mut Vec<u8>, list: &[u8], key: &Finder<'_>) {
        let skip = key.needle().len();
        for at in key.find_iter(list) {
            if usize::from(self.reasons_len) == MAX_REASONS {
                break;
            }
            if let Some(reason) = string_after(&list[at + skip..]) {
                self.add_reason(text, reason);
            }
        }
    }

    /// One more finish reason into the gathered `text`, up to the cap.
    fn add_reason(&mut self, text: &mut Vec<u8>, reason: &[u8]) {
        if usize::from(self.reasons_len) < MAX_REASONS
            && let Some(piece) = push(text, reason)
        {
            self.reasons[usize::from(self.reasons_len)] = piece;
            self.reasons_len += 1;
        }
    }

    /// The answer's id.
    pub fn id(&self) -> Option<&str> {
        self.id.map(|piece| self.text(piece))
    }

    /// The model the answer named.
    pub fn model(&self) -> Option<&str> {
        self.model.map(|piece| self.text(piece))
    }

    /// Why each choice ended, in order.
    pub fn finish_reasons(&self) -> impl ExactSizeIterator<Item = &str> {
        self.reasons[..usize::from(self.reasons_len)]
            .iter()
            .map(|piece| self.text(*piece))
    }

    /// A translated stream's start: the vendor's response id and model, when none was seen.
    pub fn start(&mut self, id: &str, model: &str) {
        if self.id.is_none() {
            self.id = plain(id).and_then(|id| self.push(id));
        }
        if self.model.is_none() {
            self.model = plain(model).and_then(|model| self.push(model));
        }
    }

    /// One more finish reason (one per choice), up to the cap.
    pub fn add_finish_reason(&mut self, reason: &str) {
        if usize::from(self.reasons_len) < MAX_REASONS
            && let Some(piece) = plain(reason).and_then(|reason| self.push(reason))
        {
            self.reasons[usize::from(self.reasons_len)] = piece;
            self.reasons_len += 1;
        }
    }

    /// Adds the facts of a Responses stream's terminal event (`response.completed`, …), whose
    /// `response` member is the whole resource.
    pub fn note_event_response(&mut self, event: &[u8]) {
        let Ok(members) = json_scan::members(event) else {
            return;
        };
        if let Some(response) = json_scan::find(event, &members, "response") {
            let response = &event[response.value.clone()];
            if let Ok(inner) = json_scan::members(response) {
                self.note_members(response, &inner);
            }
        }
    }

    /// Keeps `text` (a decoded event's: already a `str`).
    fn push(&mut self, text: &str) -> Option<Piece> {
        let piece = Piece::after(self.text.len(), text.len())?;
        self.text
            .reserve(first_reserve(self.text.capacity(), text.len()));
        self.text.push_str(text);
        Some(piece)
    }

    fn text(&self, piece: Piece) -> &str {
        &self.text[usize::from(piece.start)..usize::from(piece.end)]
    }
}

/// A value from a decoded event, kept when short (the same cap as [`plain_string`]).
fn plain(text: &str) -> Option<&str> {
    (!text.is_empty() && text.len() <= 256).then_some(text)
}

/// A top-level number's text.
fn number<'b>(body: &'b [u8], members: &[json_scan::Member], key: &str) -> Option<&'b str> {
    let member = json_scan::find(body, members, key)?;
    std::str::from_utf8(&body[member.value.clone()]).ok()
}

/// Appends `piece` to `text`; `None` once the pieces would pass what a `u16` range holds (each
/// piece is at most 256 bytes and there are at most 18 of them, so only a hostile caller gets
/// there).
fn push(text: &mut Vec<u8>, piece: &[u8]) -> Option<Piece> {
    let range = Piece::after(text.len(), piece.len())?;
    text.reserve(first_reserve(text.capacity(), piece.len()));
    text.extend_from_slice(piece);
    Some(range)
}

/// What a piece reserves: room for the usual ones in one allocation when it is the first, else
/// nothing (the text grows as usual).
fn first_reserve(capacity: usize, len: usize) -> usize {
    if capacity == 0 {
        TEXT_CAPACITY.max(len)
    } else {
        0
    }
}

/// A string without escapes (ids, models and reasons have none), at most 256 bytes, as UTF-8.
fn plain_string(value: &[u8]) -> Option<&[u8]> {
    plain_text(value.strip_prefix(b"\"")?.strip_suffix(b"\"")?)
}

/// A string's content when it is plain: at most 256 bytes of UTF-8 without escapes or quotes.
fn plain_text(inner: &[u8]) -> Option<&[u8]> {
    let plain = inner.len() <= 256
        && (plain_ascii(inner)
            || (memchr::memchr2(b'\\', b'"', inner).is_none()
                && std::str::from_utf8(inner).is_ok()));
    plain.then_some(inner)
}

/// Whether `bytes` is ASCII without `"` or `\`, eight bytes at a time: the usual id, model and
/// reason, whose bytes the answer's facts keep.
fn plain_ascii(bytes: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // Whether any byte of `word` (all ASCII) is `byte`: the classic zero-byte test on the xor.
    let holds = |word: u64, byte: u8| {
        let x = word ^ (ONES * u64::from(byte));
        x.wrapping_sub(ONES) & !x & HIGH != 0
    };
    let plain = |word: &[u8; 8]| {
        let word = u64::from_le_bytes(*word);
        word & HIGH == 0 && !holds(word, b'"') && !holds(word, b'\\')
    };
    let mut words = bytes.chunks_exact(8);
    let whole = words
        .by_ref()
        .all(|word| plain(&word.try_into().unwrap_or_default()));
    // The last few bytes as one more word, padded with zeros (plain ASCII).
    let mut last = [0u8; 8];
    last[..words.remainder().len()].copy_from_slice(words.remainder());
    whole && plain(&last)
}

/// The plain string value of `key` (quoted) when it is the last member of the last object of
/// `list` (`[…,"key":"value"}]`), read from the end; `None` for any other shape.
fn last_member_string<'l>(list: &'l [u8], key: &[u8]) -> Option<&'l [u8]> {
    let trim = |bytes: &'l [u8]| bytes.trim_ascii_end();
    let rest = trim(list).strip_suffix(b"]")?;
    let rest = trim(rest).strip_suffix(b"}")?;
    let rest = trim(rest).strip_suffix(b"\"")?;
    // A plain value has no quote inside: the last quote is its opening one, and a colon must
    // come before it (anything else is another shape, such as an escaped quote).
    let open = memchr::memrchr(b'"', rest)?;
    let before = trim(&rest[..open]).strip_suffix(b":")?;
    let before = trim(before).strip_suffix(key)?;
    if !matches!(trim(before).last(), Some(b',' | b'{')) {
        return None;
    }
    plain_text(&rest[open + 1..])
}

/// The string value after a key (`: "value"`), if the value is a plain string.
fn string_after(rest: &[u8]) -> Option<&[u8]> {
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

    fn reasons(facts: &AnswerFacts) -> Vec<&str> {
        facts.finish_reasons().collect()
    }

    #[test]
    fn answer_facts_of_every_format() {
        let openai = AnswerFacts::scan(
            br#"{"id":"chatcmpl-1","model":"gpt","choices":[{"index":0,"finish_reason":"stop"},{"finish_reason": "length"}]}"#,
        );
        assert_eq!(openai.id(), Some("chatcmpl-1"));
        assert_eq!(openai.model(), Some("gpt"));
        assert_eq!(reasons(&openai), ["stop", "length"]);
        let anthropic =
            AnswerFacts::scan(br#"{"id":"msg_1","model":"claude","stop_reason":"end_turn"}"#);
        assert_eq!(reasons(&anthropic), ["end_turn"]);
        let gemini = AnswerFacts::scan(
            br#"{"candidates":[{"finishReason":"STOP"}],"modelVersion":"g","responseId":"r1"}"#,
        );
        assert_eq!(gemini.id(), Some("r1"));
        assert_eq!(reasons(&gemini), ["STOP"]);
        let responses = AnswerFacts::scan(
            br#"{"id":"resp_1","object":"response","status":"completed","model":"m","output":[]}"#,
        );
        assert_eq!(responses.id(), Some("resp_1"));
        assert_eq!(reasons(&responses), ["completed"]);
        let escaped = AnswerFacts::scan(br#"{"id":"a\"b","stop_reason":null,"status":"x"}"#);
        assert_eq!(escaped.id(), None, "an id with escapes is left out");
        assert_eq!(reasons(&escaped), ["x"]);
    }

    /// Plain text is kept whatever its length and wherever a quote, backslash or non-ASCII byte
    /// sits among the eight-byte words; text with escapes or that is not UTF-8 is left out.
    #[test]
    fn only_plain_utf8_strings_are_kept() {
        for len in 0..40 {
            let text = "a".repeat(len);
            assert!(plain_ascii(text.as_bytes()), "{len}");
            for at in 0..len {
                for odd in [b'"', b'\\', 0x80, 0xff] {
                    let mut bytes = text.clone().into_bytes();
                    bytes[at] = odd;
                    assert!(!plain_ascii(&bytes), "{len} {at} {odd}");
                }
            }
        }
        assert_eq!(plain_string(br#""gpt-4o""#), Some(&b"gpt-4o"[..]));
        assert_eq!(
            plain_string("\"modèle-été\"".as_bytes()),
            Some("modèle-été".as_bytes())
        );
        assert_eq!(plain_string(br#""a\"b""#), None);
        assert_eq!(plain_string(b"\"\xff\xfe\""), None, "not UTF-8");
        assert_eq!(plain_string(br#"nope"#), None);
        let facts = AnswerFacts::scan(
            b"{\"id\":\"\xc3(\",\"model\":\"m\",\"choices\":[{\"finish_reason\":\"stop\"}]}",
        );
        assert_eq!(facts.id(), None, "an id that is not UTF-8 is left out");
        assert_eq!((facts.model(), reasons(&facts)), (Some("m"), vec!["stop"]));
    }

    /// With one choice asked for, the reason at the end of the choices is read from there; any
    /// other shape (or more choices) is searched for as before, with the same facts.
    #[test]
    fn a_single_choices_reason_is_read_from_its_end() {
        let scanned = |body: &'static [u8]| (body, json_scan::members(body).unwrap());
        for body in [
            &br#"{"id":"c","choices":[{"index":0,"message":{"content":"a \"finish_reason\":\"x\""},"logprobs":null,"finish_reason":"stop"}],"usage":{}}"#[..],
            br#"{"choices":[ { "finish_reason" : "stop" } ] }"#,
            br#"{"choices":[{"finish_reason":"stop","stop_reason":null}]}"#,
            br#"{"choices":[{"finish_reason":"stop","x":"y"}]}"#,
        ] {
            let (body, members) = scanned(body);
            let fast = AnswerFacts::of_answer(body, &members, true);
            let searched = AnswerFacts::of_answer(body, &members, false);
            assert_eq!(fast, searched, "{}", String::from_utf8_lossy(body));
        }
        // The choice's own reason, where a search also finds a nested key of that name.
        let (body, members) =
            scanned(br#"{"choices":[{"x":{"finish_reason":"no"},"finish_reason":"stop"}]}"#);
        assert_eq!(
            reasons(&AnswerFacts::of_answer(body, &members, true)),
            ["stop"]
        );
        // Not plain: left out, as a search leaves it out.
        let (body, members) = scanned(br#"{"choices":[{"finish_reason":"st\"op"}]}"#);
        assert!(reasons(&AnswerFacts::of_answer(body, &members, true)).is_empty());
        assert_eq!(
            last_member_string(
                br#"[{"a":1,"finish_reason":"length"}]"#,
                b"\"finish_reason\""
            ),
            Some(&b"length"[..])
        );
        for shape in [
            &br#"[{"finish_reason":null}]"#[..],
            br#"[{"x":"finish_reason","y":"stop"}]"#,
            br#"[{"x":{"finish_reason":"stop"}}]"#,
            br#"[{"x":"a\",\"finish_reason\":\"stop"}]"#,
            br#"{"finish_reason":"stop"}"#,
            b"",
        ] {
            assert_eq!(
                last_member_string(shape, b"\"finish_reason\""),
                None,
                "{}",
                String::from_utf8_lossy(shape)
            );
        }
        assert!(!RequestFacts::default().one_choice(), "not known");
        assert!(
            RequestFacts {
                choices: Some(1),
                ..RequestFacts::default()
            }
            .one_choice()
        );
        assert!(
            !RequestFacts {
                choices: Some(2),
                ..RequestFacts::default()
            }
            .one_choice()
        );
    }

    /// A stream's pieces add up: the first id and model seen, every reason up to the cap, and
    /// pieces too long (or too many) to keep are left out rather than cut.
    #[test]
    fn a_streams_pieces_add_up_to_the_cap() {
        let mut facts = AnswerFacts::default();
        for chunk in [
            &br#"{"id":"c1","model":"m1","choices":[{"delta":{"content":"hi"},"finish_reason":null}]}"#[..],
            br#"{"id":"c2","model":"m2","choices":[{"delta":{},"finish_reason":"stop"}]}"#,
        ] {
            let members = json_scan::members(chunk).unwrap();
            facts.note_members(chunk, &members);
        }
        assert_eq!((facts.id(), facts.model()), (Some("c1"), Some("m1")));
        assert_eq!(reasons(&facts), ["stop"]);
        facts.start("later", "later");
        assert_eq!(facts.id(), Some("c1"));
        facts.add_finish_reason(&"r".repeat(257));
        for i in 0..40 {
            facts.add_finish_reason(&format!("{i:0>200}"));
        }
        assert_eq!(facts.finish_reasons().len(), MAX_REASONS);
        assert!(facts.finish_reasons().skip(1).all(|r| r.len() == 200));
        let mut event = AnswerFacts::default();
        event.note_event_response(
            br#"{"type":"response.completed","response":{"id":"resp_9","status":"completed"}}"#,
        );
        assert_eq!(
            (event.id(), reasons(&event)),
            (Some("resp_9"), vec!["completed"])
        );
    }
}

//! Golden tests: cached and reasoning token counts survive every vendor → ingress translation,
//! whole and streamed. Each vendor's fixture (fixtures/*/…cache…) is decoded to neutral, encoded
//! by each ingress, and the client's usage object is read back in that ingress's own shape:
//! - Chat: `prompt_tokens_details.cached_tokens`, `completion_tokens_details.reasoning_tokens`;
//! - Messages: `cache_read_input_tokens`, `cache_creation_input_tokens` (`input_tokens`
//!   excludes both);
//! - Responses: `input_tokens_details.cached_tokens`, `output_tokens_details.reasoning_tokens`;
//! - Gemini: `cachedContentTokenCount`, `thoughtsTokenCount` (`candidatesTokenCount` excludes
//!   thoughts).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use bytes::BytesMut;
use llmux_protocol::neutral::{Response, StreamEvent, Usage};
use llmux_protocol::{anthropic, gemini, openai_chat, responses, sse};
use serde_json::Value;

const OPENAI_WHOLE: &[u8] =
    include_bytes!("../../../fixtures/openai/chat_completion_cached_reasoning.json");
const OPENAI_STREAM: &[u8] =
    include_bytes!("../../../fixtures/openai/chat_stream_cached_reasoning.sse");
const ANTHROPIC_WHOLE: &[u8] =
    include_bytes!("../../../fixtures/anthropic/message_cache_usage.json");
const ANTHROPIC_STREAM: &[u8] =
    include_bytes!("../../../fixtures/anthropic/stream_cache_usage.sse");
const GEMINI_WHOLE: &[u8] =
    include_bytes!("../../../fixtures/gemini/generate_content_cached_thoughts.json");
const GEMINI_STREAM: &[u8] = include_bytes!("../../../fixtures/gemini/stream_cached_thoughts.sse");

/// What each vendor's fixture reports, normalized: input includes cached, output reasoning.
fn openai_usage() -> Usage {
    Usage {
        input_tokens: 2006,
        output_tokens: 300,
        cached_input_tokens: Some(1920),
        cache_creation_input_tokens: None,
        reasoning_tokens: Some(256),
    }
}

fn anthropic_usage() -> Usage {
    Usage {
        input_tokens: 21 + 188 + 1920,
        output_tokens: 12,
        cached_input_tokens: Some(1920),
        cache_creation_input_tokens: Some(188),
        reasoning_tokens: None,
    }
}

fn gemini_usage() -> Usage {
    Usage {
        input_tokens: 2129,
        output_tokens: 8 + 90,
        cached_input_tokens: Some(1920),
        cache_creation_input_tokens: None,
        reasoning_tokens: Some(90),
    }
}

#[derive(Clone, Copy, Debug)]
enum Vendor {
    OpenAi,
    Anthropic,
    Gemini,
}

const VENDORS: [Vendor; 3] = [Vendor::OpenAi, Vendor::Anthropic, Vendor::Gemini];

impl Vendor {
    fn expected(self) -> Usage {
        match self {
            Self::OpenAi => openai_usage(),
            Self::Anthropic => anthropic_usage(),
            Self::Gemini => gemini_usage(),
        }
    }

    fn whole(self) -> Response {
        match self {
            Self::OpenAi => openai_chat::decode_neutral_response(OPENAI_WHOLE, 1),
            Self::Anthropic => anthropic::decode_response(ANTHROPIC_WHOLE),
            Self::Gemini => gemini::decode_response(GEMINI_WHOLE, 1),
        }
        .expect("fixture decodes")
    }

    fn stream(self) -> Vec<StreamEvent> {
        let bytes = match self {
            Self::OpenAi => OPENAI_STREAM,
            Self::Anthropic => ANTHROPIC_STREAM,
            Self::Gemini => GEMINI_STREAM,
        };
        let mut decoder = sse::Decoder::default();
        decoder.push(bytes);
        decoder.finish();
        let mut openai = openai_chat::ChunkDecoder::new(1);
        let mut anthropic = anthropic::StreamDecoder::default();
        let mut gemini = gemini::StreamDecoder::new(1);
        let mut events = Vec::new();
        while let Some(event) = decoder.next_event() {
            events.extend(
                match self {
                    Self::OpenAi => openai.decode(&event),
                    Self::Anthropic => anthropic.decode(&event),
                    Self::Gemini => gemini.decode(&event),
                }
                .expect("fixture event decodes"),
            );
        }
        events
    }
}

#[derive(Clone, Copy, Debug)]
enum Ingress {
    Chat,
    Messages,
    Responses,
    Gemini,
}

const INGRESSES: [Ingress; 4] = [
    Ingress::Chat,
    Ingress::Messages,
    Ingress::Responses,
    Ingress::Gemini,
];

impl Ingress {
    /// The usage object of a whole answer.
    fn whole(self, response: &Response) -> Value {
        let body: Value = match self {
            Self::Chat => json(&openai_chat::encode_neutral_response(response, "m", 1)),
            Self::Messages => json(&anthropic::encode_response(response, "m")),
            Self::Responses => responses::encode_response(
                response,
                &responses::Echo::default(),
                &responses::Meta::default(),
            ),
            Self::Gemini => json(&gemini::ingress::encode_response(response, "m", "r")),
        };
        usage_in(&[body]).expect("a usage object in the answer")
    }

    /// The last usage object of a streamed answer.
    fn stream(self, events: &[StreamEvent]) -> Value {
        let mut out = BytesMut::new();
        match self {
            Self::Chat => {
                let mut encoder = openai_chat::ChunkEncoder::new(1, "m", true);
                events.iter().for_each(|e| encoder.encode(e, &mut out));
                encoder.finish(&mut out);
            }
            Self::Messages => {
                let mut encoder = anthropic::StreamEncoder::new("msg_1".into(), "m".into(), 0);
                events.iter().for_each(|e| encoder.encode(e, &mut out));
                encoder.finish(&mut out);
            }
            Self::Responses => {
                let mut encoder = responses::StreamEncoder::new(
                    responses::Echo::default(),
                    responses::Meta::default(),
                );
                events.iter().for_each(|e| encoder.encode(e, &mut out));
                encoder.finish(&mut out, 1);
            }
            Self::Gemini => {
                let mut encoder =
                    gemini::ingress::StreamEncoder::new(gemini::ingress::Framing::Sse, "m", "r");
                events.iter().for_each(|e| encoder.encode(e, &mut out));
                encoder.finish(&mut out);
            }
        }
        let mut decoder = sse::Decoder::default();
        decoder.push(&out);
        decoder.finish();
        let mut payloads = Vec::new();
        while let Some(event) = decoder.next_event() {
            if let Ok(value) = serde_json::from_slice::<Value>(&event.data) {
                payloads.push(value);
            }
        }
        usage_in(&payloads).expect("a usage object in the stream")
    }

    /// The counts a client of this ingress reads, normalized; what the shape cannot say is
    /// `None` (or left as `expected` says for fields absent from the shape).
    fn read(self, usage: &Value) -> Usage {
        let n = |pointer: &str| usage.pointer(pointer).and_then(Value::as_u64);
        match self {
            Self::Chat => Usage {
                input_tokens: n("/prompt_tokens").expect("prompt_tokens"),
                output_tokens: n("/completion_tokens").expect("completion_tokens"),
                cached_input_tokens: n("/prompt_tokens_details/cached_tokens"),
                cache_creation_input_tokens: None,
                reasoning_tokens: n("/completion_tokens_details/reasoning_tokens"),
            },
            Self::Messages => {
                let read = n("/cache_read_input_tokens");
                let write = n("/cache_creation_input_tokens");
                Usage {
                    input_tokens: n("/input_tokens").expect("input_tokens")
                        + read.unwrap_or(0)
                        + write.unwrap_or(0),
                    output_tokens: n("/output_tokens").expect("output_tokens"),
                    cached_input_tokens: read,
                    cache_creation_input_tokens: write,
                    reasoning_tokens: None,
                }
            }
            Self::Responses => Usage {
                input_tokens: n("/input_tokens").expect("input_tokens"),
                output_tokens: n("/output_tokens").expect("output_tokens"),
                cached_input_tokens: n("/input_tokens_details/cached_tokens"),
                cache_creation_input_tokens: None,
                reasoning_tokens: n("/output_tokens_details/reasoning_tokens"),
            },
            Self::Gemini => {
                let thoughts = n("/thoughtsTokenCount");
                Usage {
                    input_tokens: n("/promptTokenCount").expect("promptTokenCount"),
                    output_tokens: n("/candidatesTokenCount").unwrap_or(0) + thoughts.unwrap_or(0),
                    cached_input_tokens: n("/cachedContentTokenCount"),
                    cache_creation_input_tokens: None,
                    reasoning_tokens: thoughts,
                }
            }
        }
    }

    /// `expected` as this ingress can express it: Anthropic has no reasoning count, only
    /// Anthropic has a cache-write count; a zero count may be written or left out.
    fn expressible(self, expected: Usage) -> Usage {
        let nonzero = |count: Option<u64>| count.filter(|c| *c > 0);
        Usage {
            cached_input_tokens: nonzero(expected.cached_input_tokens),
            cache_creation_input_tokens: match self {
                Self::Messages => nonzero(expected.cache_creation_input_tokens),
                _ => None,
            },
            reasoning_tokens: match self {
                Self::Messages => None,
                _ => nonzero(expected.reasoning_tokens),
            },
            ..expected
        }
    }
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("encoder writes JSON")
}

/// The last usage object among `payloads`, wherever the ingress puts it.
fn usage_in(payloads: &[Value]) -> Option<Value> {
    payloads.iter().rev().find_map(|payload| {
        [
            "/usage",
            "/response/usage",
            "/usageMetadata",
            "/message/usage",
        ]
        .iter()
        .find_map(|p| payload.pointer(p).filter(|u| u.is_object()).cloned())
    })
}

fn normalized(usage: Usage) -> Usage {
    let nonzero = |count: Option<u64>| count.filter(|c| *c > 0);
    Usage {
        cached_input_tokens: nonzero(usage.cached_input_tokens),
        cache_creation_input_tokens: nonzero(usage.cache_creation_input_tokens),
        reasoning_tokens: nonzero(usage.reasoning_tokens),
        ..usage
    }
}

#[test]
fn vendors_decode_cached_and_reasoning_tokens() {
    for vendor in VENDORS {
        assert_eq!(
            vendor.whole().usage,
            Some(vendor.expected()),
            "{vendor:?} whole"
        );
        let last = vendor.stream().into_iter().rev().find_map(|e| match e {
            StreamEvent::Usage(u) => Some(u),
            _ => None,
        });
        assert_eq!(last, Some(vendor.expected()), "{vendor:?} stream");
    }
}

#[test]
fn every_ingress_reports_cached_and_reasoning_tokens_in_its_shape() {
    for vendor in VENDORS {
        let whole = vendor.whole();
        let events = vendor.stream();
        for ingress in INGRESSES {
            let want = ingress.expressible(vendor.expected());
            let got = normalized(ingress.read(&ingress.whole(&whole)));
            assert_eq!(got, want, "{vendor:?} → {ingress:?}, whole");
            let got = normalized(ingress.read(&ingress.stream(&events)));
            assert_eq!(got, want, "{vendor:?} → {ingress:?}, stream");
        }
    }
}

//! Property tests: a neutral request encoded by the egress (`gemini::encode_request`) and decoded
//! by the ingress keeps every field both sides carry; no input makes the ingress panic; every
//! event sequence streams as well-formed chunks.

use std::collections::HashMap;

use bytes::BytesMut;
use proptest::prelude::*;
use serde_json::{Map, Value};

use super::super::{Framing, StreamEncoder, decode_count_tokens, decode_request};
use crate::error::ErrorKind;
use crate::gemini;
use crate::neutral::{
    FinishReason, Image, ImageSource, Message, Part, Reasoning, ReasoningConfig, Request,
    ResponseFormat, Role, Sampling, StreamEvent, Tool, ToolCall, ToolChoice, ToolResult, Usage,
};

/// What survives a round trip, in conversation order.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Text {
        model: bool,
        text: String,
    },
    Image {
        media_type: String,
        data: String,
    },
    Call {
        id: Option<String>,
        name: String,
        arguments: Value,
        signature: Option<String>,
    },
    Result {
        call_id: Option<String>,
        name: String,
        content: Content,
        is_error: bool,
    },
}

/// A tool result's content: JSON objects compare as JSON, anything else as text.
#[derive(Debug, Clone, PartialEq)]
enum Content {
    Json(Value),
    Text(String),
}

impl Content {
    fn of(text: &str) -> Self {
        match serde_json::from_str::<Value>(text) {
            Ok(value @ Value::Object(_)) => Self::Json(value),
            _ => Self::Text(text.to_owned()),
        }
    }
}

/// An id the egress sends to Gemini (it drops `call_` ones, which the ingress synthesizes back).
fn sent_id(id: &str) -> Option<String> {
    (!id.is_empty() && !id.starts_with("call_")).then(|| id.to_owned())
}

fn arguments_of(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => value,
        _ => Value::Object(Map::new()),
    }
}

/// Joins adjacent model texts: one model turn's text parts are read as one text.
fn normalize(items: Vec<Item>) -> Vec<Item> {
    let mut out: Vec<Item> = Vec::new();
    for item in items {
        if let (
            Some(Item::Text {
                model: true,
                text: previous,
            }),
            Item::Text { model: true, text },
        ) = (out.last_mut(), &item)
        {
            previous.push_str(text);
            continue;
        }
        out.push(item);
    }
    out
}

fn expected(messages: &[Message]) -> Vec<Item> {
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut items = Vec::new();
    for message in messages {
        for part in &message.parts {
            match part {
                Part::Text { text } if !text.is_empty() => items.push(Item::Text {
                    model: message.role == Role::Assistant,
                    text: text.clone(),
                }),
                Part::Image(Image {
                    source: ImageSource::Base64 { media_type, data },
                    ..
                }) => items.push(Item::Image {
                    media_type: media_type.clone(),
                    data: data.clone(),
                }),
                Part::ToolCall(call) => {
                    names.insert(&call.id, &call.name);
                    items.push(Item::Call {
                        id: sent_id(&call.id),
                        name: call.name.clone(),
                        arguments: arguments_of(&call.arguments),
                        signature: call.signature.clone().filter(|s| !s.is_empty()),
                    });
                }
                Part::ToolResult(result) => items.push(Item::Result {
                    call_id: sent_id(&result.call_id),
                    name: result
                        .name
                        .clone()
                        .filter(|n| !n.is_empty())
                        .or_else(|| names.get(result.call_id.as_str()).map(|n| (*n).to_owned()))
                        .unwrap_or_else(|| "unknown_function".to_owned()),
                    content: Content::of(&result.content),
                    is_error: result.is_error,
                }),
                _ => {}
            }
        }
    }
    normalize(items)
}

fn actual(messages: &[Message]) -> Vec<Item> {
    let mut items = Vec::new();
    for message in messages {
        for part in &message.parts {
            match part {
                Part::Text { text } => items.push(Item::Text {
                    model: message.role == Role::Assistant,
                    text: text.clone(),
                }),
                Part::Image(Image {
                    source: ImageSource::Base64 { media_type, data },
                    ..
                }) => items.push(Item::Image {
                    media_type: media_type.clone(),
                    data: data.clone(),
                }),
                Part::Image(other) => panic!("unexpected image {other:?}"),
                Part::File(other) => panic!("unexpected file {other:?}"),
                Part::ToolCall(call) => items.push(Item::Call {
                    id: sent_id(&call.id),
                    name: call.name.clone(),
                    arguments: serde_json::from_str(&call.arguments).expect("arguments are JSON"),
                    signature: call.signature.clone(),
                }),
                Part::ToolResult(result) => items.push(Item::Result {
                    call_id: sent_id(&result.call_id),
                    name: result.name.clone().unwrap_or_default(),
                    content: Content::of(&result.content),
                    is_error: result.is_error,
                }),
                Part::Reasoning(reasoning) => panic!("reasoning is not sent: {reasoning:?}"),
            }
        }
    }
    normalize(items)
}

fn json_object() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i32>().prop_map(Value::from),
        "[a-z \"\\\\]{0,8}".prop_map(Value::String),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ];
    // Keys never spell `result`, `output` or `error`, the wrappers the codecs use.
    prop::collection::btree_map("[a-d]{1,3}", leaf, 0..4)
        .prop_map(|map| Value::Object(map.into_iter().collect()))
}

fn call_id() -> impl Strategy<Value = String> {
    prop_oneof!["call_[0-9a-f]{24}", "[a-z0-9]{8}", Just(String::new())]
}

fn tool_call() -> impl Strategy<Value = Part> {
    let arguments = prop_oneof![
        json_object().prop_map(|v| v.to_string()),
        Just(String::new()),
        "\\{[a-z\":]{0,6}",
    ];
    (
        call_id(),
        "[a-z_]{1,8}",
        arguments,
        proptest::option::of("[A-Za-z0-9+/]{1,12}"),
    )
        .prop_map(|(id, name, arguments, signature)| {
            Part::ToolCall(ToolCall {
                id,
                name,
                arguments,
                signature,
            })
        })
}

fn tool_result() -> impl Strategy<Value = Part> {
    let content = prop_oneof!["[a-z0-9 ]{0,16}", json_object().prop_map(|v| v.to_string())];
    (
        call_id(),
        proptest::option::of("[a-z_]{1,8}"),
        content,
        any::<bool>(),
    )
        .prop_map(|(call_id, name, content, is_error)| {
            Part::ToolResult(ToolResult {
                call_id,
                name,
                content,
                is_error,
            })
        })
}

fn text() -> impl Strategy<Value = Part> {
    "\\PC{0,12}".prop_map(Part::text)
}

fn image() -> impl Strategy<Value = Part> {
    ("image/(png|jpeg)", "[A-Za-z0-9+/]{4,12}").prop_map(|(media_type, data)| {
        Part::Image(Image {
            source: ImageSource::Base64 { media_type, data },
            detail: None,
        })
    })
}

fn reasoning() -> impl Strategy<Value = Part> {
    ("\\PC{0,8}", proptest::option::of("[a-z]{1,8}")).prop_map(|(text, signature)| {
        Part::Reasoning(Reasoning {
            text,
            signature,
            redacted: None,
            origin: Some(crate::neutral::ReasoningOrigin::Anthropic),
        })
    })
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        prop::collection::vec(prop_oneof![3 => text(), 1 => image()], 1..4).prop_map(|parts| {
            Message {
                role: Role::User,
                parts,
            }
        }),
        prop::collection::vec(prop_oneof![text(), tool_call(), reasoning()], 1..5).prop_map(
            |parts| Message {
                role: Role::Assistant,
                parts,
            }
        ),
        tool_result().prop_map(|part| Message {
            role: Role::Tool,
            parts: vec![part],
        }),
    ]
}

fn tool() -> impl Strategy<Value = Tool> {
    let parameters = prop_oneof![
        Just(None),
        Just(Some(serde_json::json!({
            "type": "object",
            "properties": {"x": {"type": "string", "description": "an x"}, "n": {"type": "integer"}},
            "required": ["x"]
        }))),
    ];
    (
        "[a-z_]{1,8}",
        proptest::option::of("[a-z ]{1,12}"),
        parameters,
    )
        .prop_map(|(name, description, parameters)| Tool {
            name,
            description,
            parameters,
            strict: None,
        })
}

fn sampling() -> impl Strategy<Value = Sampling> {
    let unit = || proptest::option::of((0..=200u32).prop_map(|x| f64::from(x) / 100.0));
    (
        (unit(), unit(), proptest::option::of(0..1000u32)),
        proptest::option::of(1..100_000u32),
        prop::collection::vec("[a-zA-Z]{1,5}", 0..3),
        proptest::option::of(any::<i64>()),
        (unit(), unit()),
    )
        .prop_map(
            |((temperature, top_p, top_k), max_tokens, stop, seed, (presence, frequency))| {
                Sampling {
                    temperature,
                    top_p,
                    top_k,
                    max_tokens,
                    stop,
                    seed,
                    presence_penalty: presence,
                    frequency_penalty: frequency,
                }
            },
        )
}

fn response_format() -> impl Strategy<Value = Option<ResponseFormat>> {
    prop_oneof![
        Just(None),
        Just(Some(ResponseFormat::Text)),
        Just(Some(ResponseFormat::JsonObject)),
        ("[a-z]{1,6}", proptest::option::of(any::<bool>())).prop_map(|(name, strict)| {
            Some(ResponseFormat::JsonSchema {
                name,
                schema: serde_json::json!({"type": "object", "properties": {"x": {"type": "integer"}}}),
                strict,
            })
        }),
    ]
}

fn reasoning_config() -> impl Strategy<Value = Option<ReasoningConfig>> {
    let effort = proptest::option::of(prop::sample::select(vec![
        "minimal", "low", "medium", "high", "unheard",
    ]));
    proptest::option::of((effort, proptest::option::of(0..100_000u32))).prop_map(|config| {
        config.map(|(effort, budget_tokens)| ReasoningConfig {
            effort: effort.map(str::to_owned),
            budget_tokens,
        })
    })
}

/// What the egress sends for a reasoning config, read back: a budget only.
fn expected_reasoning(config: Option<&ReasoningConfig>) -> Option<ReasoningConfig> {
    let config = config?;
    let budget = config
        .budget_tokens
        .or_else(|| match config.effort.as_deref()? {
            "minimal" => Some(0),
            "low" => Some(1024),
            "medium" => Some(8192),
            "high" => Some(24576),
            _ => None,
        })?;
    Some(ReasoningConfig {
        effort: None,
        budget_tokens: Some(budget),
    })
}

fn stream_event() -> impl Strategy<Value = StreamEvent> {
    prop_oneof![
        "\\PC{0,6}".prop_map(|text| StreamEvent::TextDelta { text }),
        ("\\PC{0,6}", proptest::option::of("[a-z]{1,4}")).prop_map(|(text, signature)| {
            StreamEvent::ReasoningDelta {
                text,
                signature,
                origin: Some(crate::neutral::ReasoningOrigin::Anthropic),
            }
        }),
        (0..3usize, "[a-z]{0,4}", proptest::option::of("[a-z]{1,4}")).prop_map(
            |(index, name, signature)| StreamEvent::ToolCallStart {
                index,
                id: format!("id{index}"),
                name,
                signature,
            }
        ),
        (0..3usize, "[{}\":a-z0-9]{0,6}")
            .prop_map(|(index, arguments)| StreamEvent::ToolCallDelta { index, arguments }),
        (0..100u64, 0..100u64).prop_map(|(input, output)| StreamEvent::Usage(Usage {
            input_tokens: input,
            output_tokens: output,
            ..Usage::default()
        })),
        prop::sample::select(vec![
            FinishReason::Stop,
            FinishReason::Length,
            FinishReason::ToolCalls,
            FinishReason::ContentFilter,
        ])
        .prop_map(|reason| StreamEvent::Finish { reason }),
        Just(StreamEvent::Error {
            kind: ErrorKind::UpstreamStatus(500),
            message: "boom".into()
        }),
    ]
}

proptest! {
    #[test]
    fn egress_requests_decode_back(
        messages in prop::collection::vec(message(), 1..8),
        system in prop::collection::vec("\\PC{0,10}", 0..3),
        tools in prop::collection::vec(tool(), 0..3),
        choice in 0..5usize,
        sampling in sampling(),
        response_format in response_format(),
        reasoning in reasoning_config(),
    ) {
        let tool_choice = match choice {
            0 => None,
            1 => Some(ToolChoice::Auto),
            2 => Some(ToolChoice::None),
            3 => Some(ToolChoice::Required),
            _ => tools.first().map(|t| ToolChoice::Named(t.name.clone())),
        };
        let request = Request {
            model: "gemini-2.5-flash".into(),
            system: system.clone(),
            messages: messages.clone(),
            tools: tools.clone(),
            tool_choice: tool_choice.clone(),
            sampling: sampling.clone(),
            response_format: response_format.clone(),
            reasoning: reasoning.clone(),
            ..Request::default()
        };
        let body = gemini::encode_request(&request).expect("encodes");
        let decoded = match decode_request(&body, "alias", true) {
            Ok(decoded) => decoded.request,
            // A request with no content at all is refused, as Gemini refuses it.
            Err(err) => {
                prop_assert!(expected(&messages).is_empty(), "{err}");
                return Ok(());
            }
        };
        prop_assert_eq!(&decoded.model, "alias");
        prop_assert!(decoded.stream);
        prop_assert_eq!(actual(&decoded.messages), expected(&messages));
        let joined = system.iter().filter(|s| !s.is_empty()).cloned().collect::<Vec<_>>().join("\n\n");
        prop_assert_eq!(decoded.system.join("\n\n"), joined);
        let expected_tools: Vec<Tool> = tools
            .iter()
            .filter(|t| match &tool_choice {
                Some(ToolChoice::Named(name)) => &t.name == name,
                _ => true,
            })
            .map(|t| Tool { description: t.description.clone().filter(|d| !d.is_empty()), ..t.clone() })
            .collect();
        prop_assert_eq!(decoded.tools, expected_tools);
        prop_assert_eq!(decoded.tool_choice, tool_choice);
        prop_assert_eq!(decoded.sampling, sampling);
        let expected_format = match response_format {
            Some(ResponseFormat::JsonSchema { schema, .. }) => Some(ResponseFormat::JsonSchema {
                name: "response".into(),
                schema,
                strict: None,
            }),
            Some(ResponseFormat::Text) | None => None,
            other => other,
        };
        prop_assert_eq!(decoded.response_format, expected_format);
        prop_assert_eq!(decoded.reasoning, expected_reasoning(reasoning.as_ref()));
    }

    #[test]
    fn the_decoders_never_panic_on_bytes(body in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_request(&body, "m", false);
        let _ = decode_count_tokens(&body, "m");
    }

    #[test]
    fn the_decoders_never_panic_on_json_like_text(body in "[\\[\\]{}\":,a-zA-Z0-9 .\\-]{0,160}") {
        let _ = decode_request(body.as_bytes(), "m", false);
        let _ = decode_count_tokens(body.as_bytes(), "m");
        let wrapped = format!(r#"{{"contents":[{{"role":"model","parts":[{body}]}}]}}"#);
        let _ = decode_request(wrapped.as_bytes(), "m", false);
    }

    #[test]
    fn every_event_sequence_streams_well_formed_chunks(
        events in prop::collection::vec(stream_event(), 0..20),
    ) {
        for framing in [Framing::Sse, Framing::JsonArray] {
            let mut encoder = StreamEncoder::new(framing, "m", "r");
            let mut out = BytesMut::new();
            for event in &events {
                encoder.encode(event, &mut out);
            }
            encoder.finish(&mut out);
            let chunks = super::chunks_of(framing, std::str::from_utf8(&out).expect("UTF-8"));
            prop_assert!(!chunks.is_empty());
            let last = chunks.last().unwrap();
            prop_assert!(last.get("error").is_some() || last["candidates"][0].get("finishReason").is_some());
            for chunk in &chunks[..chunks.len() - 1] {
                prop_assert!(chunk.get("error").is_none());
                // Calls are whole: args always an object.
                for part in chunk["candidates"][0]["content"]["parts"].as_array().unwrap() {
                    if let Some(call) = part.get("functionCall") {
                        prop_assert!(call["args"].is_object());
                    }
                }
            }
        }
    }
}

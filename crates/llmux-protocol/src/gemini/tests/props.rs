//! Property tests: neutral → `encode_request` → `decode_request` keeps what Gemini can carry,
//! and no input makes a decoder panic.

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::super::{StreamDecoder, decode_error, decode_request, decode_response, encode_request};
use crate::neutral::{
    Image, ImageSource, Message, Part, Reasoning, Request, Role, ToolCall, ToolResult,
};
use crate::sse;

/// What survives a round trip, in conversation order.
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Text {
        role: &'static str,
        text: String,
    },
    Image {
        media_type: String,
        data: String,
    },
    Call {
        name: String,
        arguments: Value,
        signature: Option<String>,
    },
    Result {
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

fn role_of(role: Role) -> &'static str {
    match role {
        Role::Assistant => "model",
        Role::User | Role::Tool => "user",
    }
}

/// The arguments Gemini receives: the JSON object, or `{}` for anything else.
fn arguments_of(text: &str) -> Value {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => value,
        _ => Value::Object(Map::new()),
    }
}

/// What the conversation should look like after the round trip.
fn expected(messages: &[Message]) -> Vec<Item> {
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut items = Vec::new();
    for message in messages {
        for part in &message.parts {
            match part {
                Part::Text { text } if !text.is_empty() => items.push(Item::Text {
                    role: role_of(message.role),
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
                        name: call.name.clone(),
                        arguments: arguments_of(&call.arguments),
                        signature: call.signature.clone().filter(|s| !s.is_empty()),
                    });
                }
                Part::ToolResult(result) => items.push(Item::Result {
                    name: result
                        .name
                        .clone()
                        .or_else(|| names.get(result.call_id.as_str()).map(|n| (*n).to_owned()))
                        .unwrap_or_else(|| "unknown_function".to_owned()),
                    content: Content::of(&result.content),
                    is_error: result.is_error,
                }),
                _ => {}
            }
        }
    }
    items
}

/// What the decoded conversation holds.
fn actual(messages: &[Message]) -> Vec<Item> {
    let mut items = Vec::new();
    for message in messages {
        for part in &message.parts {
            match part {
                Part::Text { text } => items.push(Item::Text {
                    role: role_of(message.role),
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
                    name: call.name.clone(),
                    arguments: serde_json::from_str(&call.arguments).expect("arguments are JSON"),
                    signature: call.signature.clone(),
                }),
                Part::ToolResult(result) => items.push(Item::Result {
                    name: result.name.clone().unwrap_or_default(),
                    content: Content::of(&result.content),
                    is_error: result.is_error,
                }),
                Part::Reasoning(reasoning) => panic!("reasoning is not sent: {reasoning:?}"),
            }
        }
    }
    items
}

fn json_object() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<i32>().prop_map(Value::from),
        "[a-z \"\\\\]{0,8}".prop_map(Value::String),
        any::<bool>().prop_map(Value::Bool),
        Just(Value::Null),
    ];
    // Keys never spell `result` or `error`, the wrappers the codec adds.
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
        Just("[1, 2]".to_owned()),
    ];
    (
        call_id(),
        "[a-z_]{1,8}",
        arguments,
        proptest::option::of("[A-Za-z0-9+/]{0,12}"),
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
    let content = prop_oneof!["[a-z0-9 ]{0,16}", json_object().prop_map(|v| v.to_string()),];
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
            origin: Some(crate::neutral::ReasoningOrigin::Gemini),
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

/// JSON trees made of the keys Gemini answers use, to reach past the first parse error.
fn gemini_like_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        "[A-Z_a-z0-9 .]{0,10}".prop_map(Value::String),
    ];
    let keys = prop::sample::select(vec![
        "candidates",
        "content",
        "parts",
        "text",
        "thought",
        "thoughtSignature",
        "functionCall",
        "functionResponse",
        "name",
        "args",
        "id",
        "finishReason",
        "index",
        "usageMetadata",
        "promptTokenCount",
        "candidatesTokenCount",
        "thoughtsTokenCount",
        "promptFeedback",
        "blockReason",
        "error",
        "code",
        "status",
        "details",
        "@type",
        "retryDelay",
        "contents",
        "role",
        "inlineData",
        "generationConfig",
        "toolConfig",
    ]);
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..5).prop_map(|map| {
                Value::Object(map.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            }),
        ]
    })
}

/// Feeds `body` to every decoder; only panics fail.
fn decode_everything(body: &[u8]) {
    let _ = decode_response(body, 1);
    let _ = decode_request(body);
    let _ = decode_error(429, body);
    let mut decoder = StreamDecoder::new(1);
    let event = sse::Event {
        name: None,
        data: body.to_vec().into(),
    };
    let _ = decoder.decode(&event);
    let _ = decoder.decode(&event);
}

proptest! {
    #[test]
    fn round_trip_keeps_texts_calls_and_results(
        messages in prop::collection::vec(message(), 0..8),
        system in prop::collection::vec("\\PC{0,10}", 0..3),
    ) {
        let request = Request {
            model: "gemini-2.5-flash".into(),
            system: system.clone(),
            messages: messages.clone(),
            ..Request::default()
        };
        let body = encode_request(&request).expect("encodes");
        let decoded = decode_request(&body).expect("decodes");
        prop_assert_eq!(actual(&decoded.messages), expected(&messages));
        let joined = system.iter().filter(|s| !s.is_empty()).cloned().collect::<Vec<_>>().join("\n\n");
        prop_assert_eq!(decoded.system.join("\n\n"), joined);
    }

    #[test]
    fn decoders_never_panic_on_bytes(body in prop::collection::vec(any::<u8>(), 0..256)) {
        decode_everything(&body);
    }

    #[test]
    fn decoders_never_panic_on_json_like_text(body in "[\\[\\]{}\":,a-zA-Z0-9 .\\-]{0,120}") {
        decode_everything(body.as_bytes());
    }

    #[test]
    fn decoders_never_panic_on_gemini_like_json(value in gemini_like_json()) {
        decode_everything(value.to_string().as_bytes());
        decode_everything(Value::Array(vec![value]).to_string().as_bytes());
    }
}

//! Property tests: what an answer says survives the resource, the stream and a replay as
//! input items.

use bytes::BytesMut;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::super::encode::{arguments, encrypted_content};
use super::super::*;
use super::{check_stream, schema};
use crate::neutral::{
    FinishReason, Message, Part, Reasoning, Response, Role, StreamEvent, ToolCall, ToolResult,
};
use crate::openai_chat::split_signature;

fn text() -> impl Strategy<Value = String> {
    "(\\PC|\n|\"){1,12}"
}

fn signature() -> impl Strategy<Value = String> {
    "[A-Za-z0-9+/=]{1,12}"
}

fn tool_call() -> impl Strategy<Value = ToolCall> {
    (
        "call_[a-z0-9]{1,8}",
        "[a-zA-Z0-9_-]{1,12}",
        "(\\PC){0,10}",
        proptest::option::of(signature()),
    )
        .prop_map(|(id, name, arguments, signature)| ToolCall {
            id,
            name,
            arguments,
            signature,
        })
}

/// Reasoning a vendor can produce: readable (maybe signed, maybe signature only) or redacted.
fn reasoning() -> impl Strategy<Value = Reasoning> {
    prop_oneof![
        (text(), proptest::option::of(signature())).prop_map(|(text, signature)| Reasoning {
            origin: signature
                .as_ref()
                .map(|_| crate::neutral::ReasoningOrigin::Anthropic),
            text,
            signature,
            redacted: None,
        }),
        signature().prop_map(|signature| Reasoning {
            text: String::new(),
            signature: Some(signature),
            redacted: None,
            origin: Some(crate::neutral::ReasoningOrigin::Anthropic)
        }),
        signature().prop_map(|data| Reasoning {
            text: String::new(),
            signature: None,
            redacted: Some(data),
            origin: Some(crate::neutral::ReasoningOrigin::OpenAi)
        }),
    ]
}

/// A part of an answer; empty texts included, as vendors send them.
fn answer_part() -> impl Strategy<Value = Part> {
    prop_oneof![
        text().prop_map(|text| Part::Text { text }),
        Just(Part::Text {
            text: String::new()
        }),
        reasoning().prop_map(Part::Reasoning),
        tool_call().prop_map(Part::ToolCall),
    ]
}

fn finish() -> impl Strategy<Value = FinishReason> {
    prop_oneof![
        Just(FinishReason::Stop),
        Just(FinishReason::Length),
        Just(FinishReason::ToolCalls),
        Just(FinishReason::ContentFilter),
        Just(FinishReason::Paused),
        Just(FinishReason::ModelError),
    ]
}

fn response() -> impl Strategy<Value = Response> {
    (prop::collection::vec(answer_part(), 0..6), finish()).prop_map(|(parts, finish)| Response {
        id: "vendor".into(),
        model: "upstream".into(),
        parts,
        finish,
        usage: None,
    })
}

/// What the output keeps, written independently of the codec: runs of text joined, empty text
/// and empty reasoning dropped, missing arguments as `{}`.
fn expected_parts(parts: &[Part]) -> Vec<Part> {
    let mut out: Vec<Part> = Vec::new();
    for part in parts {
        match part {
            Part::Text { text } if text.is_empty() => {}
            Part::Text { text } => {
                if let Some(Part::Text { text: run }) = out.last_mut() {
                    run.push_str(text);
                } else {
                    out.push(part.clone());
                }
            }
            Part::ToolCall(call) if call.arguments.is_empty() => {
                out.push(Part::ToolCall(ToolCall {
                    arguments: "{}".into(),
                    ..call.clone()
                }))
            }
            other => out.push(other.clone()),
        }
    }
    out
}

/// A small reader of output items, independent of the request decoder.
fn read_items(output: &Value) -> Vec<Part> {
    output
        .as_array()
        .expect("output is an array")
        .iter()
        .map(|item| match item["type"].as_str() {
            Some("message") => Part::Text {
                text: item["content"]
                    .as_array()
                    .expect("content")
                    .iter()
                    .map(|part| part["text"].as_str().expect("text"))
                    .collect(),
            },
            Some("function_call") => {
                let (id, signature) = split_signature(item["call_id"].as_str().expect("call_id"));
                Part::ToolCall(ToolCall {
                    id: id.to_owned(),
                    name: item["name"].as_str().expect("name").to_owned(),
                    arguments: item["arguments"].as_str().expect("arguments").to_owned(),
                    signature: signature.map(str::to_owned),
                })
            }
            Some("reasoning") => {
                let content = item.get("encrypted_content").and_then(Value::as_str);
                let signature = content.and_then(|c| c.strip_prefix(REASONING_SIGNATURE_PREFIX));
                Part::Reasoning(Reasoning {
                    text: item["summary"]
                        .as_array()
                        .expect("summary")
                        .iter()
                        .map(|part| part["text"].as_str().expect("text"))
                        .collect(),
                    signature: signature.map(str::to_owned),
                    redacted: content.filter(|_| signature.is_none()).map(str::to_owned),
                    origin: match (signature, content) {
                        (Some(_), _) => Some(crate::neutral::ReasoningOrigin::Anthropic),
                        (None, Some(_)) => Some(crate::neutral::ReasoningOrigin::OpenAi),
                        (None, None) => None,
                    },
                })
            }
            other => panic!("unexpected item {other:?}"),
        })
        .collect()
}

/// Neutral messages as input items (the way a client replays a conversation).
fn input_items(messages: &[Message]) -> Vec<Value> {
    let mut items = Vec::new();
    for message in messages {
        for part in &message.parts {
            items.push(match (message.role, part) {
                (Role::User, Part::Text { text }) => json!({
                    "type": "message", "role": "user",
                    "content": [{"type": "input_text", "text": text}]
                }),
                (Role::Assistant, Part::Text { text }) => json!({
                    "type": "message", "role": "assistant",
                    "content": [{"type": "output_text", "text": text, "annotations": []}]
                }),
                (Role::Assistant, Part::Reasoning(reasoning)) => {
                    let summary: Vec<Value> = if reasoning.text.is_empty() {
                        Vec::new()
                    } else {
                        vec![json!({"type": "summary_text", "text": reasoning.text})]
                    };
                    let mut item = json!({"type": "reasoning", "summary": summary});
                    if let Some(content) = encrypted_content(
                        reasoning.signature.as_deref(),
                        reasoning.redacted.as_deref(),
                        reasoning.origin,
                    ) {
                        item["encrypted_content"] = json!(content);
                    }
                    item
                }
                (Role::Assistant, Part::ToolCall(call)) => json!({
                    "type": "function_call",
                    "call_id": match &call.signature {
                        Some(signature) => format!("{}__ts__{signature}", call.id),
                        None => call.id.clone(),
                    },
                    "name": call.name,
                    "arguments": call.arguments,
                }),
                (Role::Tool, Part::ToolResult(result)) => json!({
                    "type": "function_call_output", "call_id": result.call_id, "output": result.content
                }),
                other => panic!("not generated: {other:?}"),
            });
        }
    }
    items
}

/// One round of a conversation: a user message, the assistant turn an answer leaves in the
/// store, and a result for each of its calls.
fn round() -> impl Strategy<Value = (String, Vec<Part>, Vec<String>)> {
    (
        text(),
        prop::collection::vec(answer_part(), 0..5),
        prop::collection::vec(text(), 5),
    )
}

/// Splits `text` into chunks of `size` characters.
fn chunks(text: &str, size: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// A stream a vendor could send for `response`.
fn stream_of(response: &Response, size: usize) -> Vec<StreamEvent> {
    let mut events = vec![StreamEvent::Start {
        id: response.id.clone(),
        model: response.model.clone(),
    }];
    let mut calls = 0;
    for part in &response.parts {
        match part {
            Part::Text { text } => events.extend(
                chunks(text, size)
                    .into_iter()
                    .map(|text| StreamEvent::TextDelta { text }),
            ),
            Part::Reasoning(reasoning) => {
                events.extend(chunks(&reasoning.text, size).into_iter().map(|text| {
                    StreamEvent::ReasoningDelta {
                        text,
                        signature: None,
                        origin: reasoning.origin,
                    }
                }));
                if let Some(signature) = &reasoning.signature {
                    events.push(StreamEvent::ReasoningDelta {
                        text: String::new(),
                        signature: Some(signature.clone()),
                        origin: reasoning.origin,
                    });
                }
            }
            Part::ToolCall(call) => {
                events.push(StreamEvent::ToolCallStart {
                    index: calls,
                    id: call.id.clone(),
                    name: call.name.clone(),
                    signature: call.signature.clone(),
                });
                events.extend(chunks(&call.arguments, size).into_iter().map(|arguments| {
                    StreamEvent::ToolCallDelta {
                        index: calls,
                        arguments,
                    }
                }));
                calls += 1;
            }
            Part::Image(_) | Part::ToolResult(_) | Part::File(_) => {}
        }
    }
    events.push(StreamEvent::Finish {
        reason: response.finish.clone(),
    });
    events
}

fn texts(parts: &[Part]) -> (String, String, Vec<ToolCall>) {
    let mut text = String::new();
    let mut thinking = String::new();
    let mut calls = Vec::new();
    for part in parts {
        match part {
            Part::Text { text: t } => text.push_str(t),
            Part::Reasoning(r) => thinking.push_str(&r.text),
            Part::ToolCall(call) => calls.push(ToolCall {
                arguments: arguments(&call.arguments).to_owned(),
                ..call.clone()
            }),
            Part::Image(_) | Part::ToolResult(_) | Part::File(_) => {}
        }
    }
    (text, thinking, calls)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn resource_keeps_text_calls_and_finish(response in response()) {
        let meta = super::meta();
        let resource = encode_response(&response, &Echo::default(), &meta);
        schema::check_resource(&resource);
        let expected = expected_parts(&response.parts);
        prop_assert_eq!(&read_items(&resource["output"]), &expected);
        let stored: Vec<Part> = output_messages(&response).into_iter().flat_map(|m| m.parts).collect();
        prop_assert_eq!(&stored, &expected);
        let (status, reason) = match response.finish {
            FinishReason::Stop | FinishReason::ToolCalls => ("completed", Value::Null),
            FinishReason::Length => ("incomplete", json!("max_output_tokens")),
            FinishReason::ContentFilter => ("incomplete", json!("content_filter")),
            FinishReason::Paused => ("incomplete", json!("pause_turn")),
            FinishReason::ModelError => ("failed", Value::Null),
        };
        prop_assert_eq!(&resource["status"], status);
        prop_assert_eq!(&resource["incomplete_details"]["reason"], &reason);
        let ids: std::collections::HashSet<&str> = resource["output"].as_array().expect("output")
            .iter().map(|item| item["id"].as_str().expect("id")).collect();
        prop_assert_eq!(ids.len(), expected.len());
    }

    #[test]
    fn stream_keeps_text_calls_and_finish(
        mut response in response(),
        size in 1usize..4,
    ) {
        // Redacted reasoning has no stream event.
        response.parts.retain(|p| !matches!(p, Part::Reasoning(r) if r.redacted.is_some()));
        let streamed = check_stream(&stream_of(&response, size));
        let answer = streamed.response.clone().expect("finish returns the answer");
        prop_assert_eq!(&answer.finish, &response.finish);
        prop_assert_eq!(texts(&answer.parts), texts(&response.parts));
        // Without two reasoning parts in a row (which a stream cannot tell apart unless the
        // first is signed), the stream describes exactly what the resource does.
        let adjacent_reasoning = expected_parts(&response.parts).windows(2).any(|w| {
            matches!(w, [Part::Reasoning(a), Part::Reasoning(_)] if a.signature.is_none())
        });
        if !adjacent_reasoning {
            prop_assert_eq!(&answer.parts, &expected_parts(&response.parts));
            let meta = Meta { completed_at: Some(super::COMPLETED_AT), ..super::meta() };
            prop_assert_eq!(
                &encode_response(&response, &Echo::default(), &meta)["output"],
                &streamed.last_resource()["output"]
            );
        }
    }

    #[test]
    fn stored_turns_replay_as_input_items(rounds in prop::collection::vec(round(), 1..4)) {
        let mut conversation = Vec::new();
        for (r, (user, mut parts, results)) in rounds.into_iter().enumerate() {
            // Call ids are unique within a conversation.
            let mut k = 0;
            for part in &mut parts {
                if let Part::ToolCall(call) = part {
                    call.id = format!("call_{r}_{k}");
                    k += 1;
                }
            }
            conversation.push(Message { role: Role::User, parts: vec![Part::Text { text: user }] });
            let stored = output_messages(&Response { parts, ..Response::default() });
            let calls: Vec<ToolCall> = stored.iter().flat_map(|m| &m.parts).filter_map(|p| match p {
                Part::ToolCall(call) => Some(call.clone()),
                _ => None,
            }).collect();
            conversation.extend(stored);
            for (call, content) in calls.into_iter().zip(results.into_iter().cycle()) {
                conversation.push(Message {
                    role: Role::Tool,
                    parts: vec![Part::ToolResult(ToolResult {
                        call_id: call.id,
                        name: Some(call.name),
                        content,
                        is_error: false,
                    })],
                });
            }
        }
        let body = json!({"model": "m", "input": input_items(&conversation)});
        let decoded = decode_request(body.to_string().as_bytes()).expect("items decode");
        prop_assert_eq!(decoded.request.messages, conversation);
    }

    #[test]
    fn every_event_is_one_frame(response in response(), size in 1usize..4) {
        let mut encoder = StreamEncoder::new(Echo::default(), super::stream_meta());
        let mut out = BytesMut::new();
        let mut frames = 0;
        for event in stream_of(&response, size) {
            let before = out.len();
            encoder.encode(&event, &mut out);
            let written = std::str::from_utf8(&out[before..]).expect("utf-8");
            prop_assert!(written.is_empty() || written.ends_with("\n\n"));
            frames += written.matches("event: ").count();
            prop_assert_eq!(written.matches("event: ").count(), written.matches("\ndata: ").count());
        }
        prop_assert!(frames >= 2);
    }
}

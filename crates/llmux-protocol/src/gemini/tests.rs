//! Gemini codec tests: golden tests over the recorded exchanges (the repository's
//! `fixtures/gemini`), rule-by-rule tests of the encoder, the decoders and the error mapping,
//! and property tests (`props`). Schema cleaning has its own file (`schema`).

use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::error::{ErrorKind, VendorError};
use crate::neutral::{
    FinishReason, Image, ImageSource, Message, Part, Reasoning, ReasoningConfig, Request, Response,
    ResponseFormat, Role, Sampling, StreamEvent, Tool, ToolCall, ToolChoice, ToolResult, Usage,
};
use crate::sse;

mod props;
mod schema;

const TEXT: &[u8] = include_bytes!("../../../../fixtures/gemini/generate_content_text.json");
const TEXT_REQUEST: &[u8] =
    include_bytes!("../../../../fixtures/gemini/generate_content_text.request.json");
const CALL: &[u8] =
    include_bytes!("../../../../fixtures/gemini/generate_content_function_call.json");
const CALL_REQUEST: &[u8] =
    include_bytes!("../../../../fixtures/gemini/generate_content_function_call.request.json");
const STREAM_TEXT: &[u8] = include_bytes!("../../../../fixtures/gemini/stream_text.sse");
const STREAM_CALLS: &[u8] =
    include_bytes!("../../../../fixtures/gemini/stream_parallel_function_calls.sse");
const STREAM_CALLS_REQUEST: &[u8] =
    include_bytes!("../../../../fixtures/gemini/stream_parallel_function_calls.request.json");
const STREAM_AFTER: &[u8] =
    include_bytes!("../../../../fixtures/gemini/stream_after_function_response.sse");
const STREAM_AFTER_REQUEST: &[u8] =
    include_bytes!("../../../../fixtures/gemini/stream_after_function_response.request.json");

/// The seed every test passes for synthesized call ids.
const SEED: u64 = 7;

// ---------------------------------------------------------------------------------------------
// Helpers: every test goes through these.

/// Decodes a whole response and snapshots it.
#[track_caller]
fn check_response(name: &str, body: &[u8]) -> Response {
    let response = decode_response(body, SEED).expect("response decodes");
    insta::assert_json_snapshot!(name, response);
    response
}

/// Decodes a whole response without a snapshot.
#[track_caller]
fn check_response_json(body: Value) -> Response {
    decode_response(body.to_string().as_bytes(), SEED).expect("response decodes")
}

/// Decodes a request fixture and snapshots it.
#[track_caller]
fn check_request_fixture(name: &str, body: &[u8]) -> Request {
    let request = check_decode_request(body);
    insta::assert_json_snapshot!(name, request);
    request
}

/// Decodes a request body.
#[track_caller]
fn check_decode_request(body: &[u8]) -> Request {
    decode_request(body).expect("request decodes")
}

/// The error a response body that must not decode gives.
#[track_caller]
fn check_bad_response(body: &[u8]) -> String {
    decode_response(body, SEED)
        .expect_err("response must not decode")
        .0
}

/// The error a request body that must not decode gives.
#[track_caller]
fn check_bad_request(body: &[u8]) -> String {
    decode_request(body).expect_err("request must not decode").0
}

/// The error a request that must not encode gives.
#[track_caller]
fn check_encode_error(request: &Request) -> String {
    encode_request(request)
        .expect_err("request must not encode")
        .0
}

/// Splits a recorded SSE body with the crate's SSE decoder and decodes every event.
#[track_caller]
fn stream_events(body: &[u8]) -> Vec<StreamEvent> {
    let mut frames = sse::Decoder::default();
    frames.push(body);
    frames.finish();
    let mut decoder = StreamDecoder::new(SEED);
    let mut events = Vec::new();
    while let Some(event) = frames.next_event() {
        events.extend(decoder.decode(&event).expect("chunk decodes"));
    }
    events
}

/// Decodes a recorded stream and snapshots its events.
#[track_caller]
fn check_stream(name: &str, body: &[u8]) -> Vec<StreamEvent> {
    let events = stream_events(body);
    insta::assert_json_snapshot!(name, events);
    events
}

/// Decodes `data:` payloads given as JSON values, in order, with one decoder.
#[track_caller]
fn check_chunks(chunks: &[Value]) -> Vec<StreamEvent> {
    let mut decoder = StreamDecoder::new(SEED);
    chunks
        .iter()
        .flat_map(|chunk| {
            let event = sse::Event {
                name: None,
                data: chunk.to_string().into(),
            };
            decoder.decode(&event).expect("chunk decodes")
        })
        .collect()
}

/// Encodes a request and reads the body back as JSON.
#[track_caller]
fn check_encode(request: &Request) -> Value {
    let body = encode_request(request).expect("request encodes");
    serde_json::from_slice(&body).expect("body is JSON")
}

#[track_caller]
fn check_error(status: u16, body: &str, expected: (u16, &str, Option<u64>)) -> VendorError {
    let error = decode_error(status, body.as_bytes());
    let (client_status, error_type, retry) = expected;
    assert_eq!(
        (
            error.status,
            error.error_type.as_str(),
            error.retry_after_secs
        ),
        (client_status, error_type, retry),
        "{body}"
    );
    assert_eq!(error.kind, ErrorKind::UpstreamStatus(client_status));
    error
}

/// The tool calls a stream produced, assembled from its start and delta events.
fn calls_of(events: &[StreamEvent]) -> Vec<ToolCall> {
    let mut calls: Vec<ToolCall> = Vec::new();
    for event in events {
        match event {
            StreamEvent::ToolCallStart {
                index,
                id,
                name,
                signature,
            } => {
                assert_eq!(*index, calls.len());
                calls.push(ToolCall {
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                    signature: signature.clone(),
                });
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                calls[*index].arguments.push_str(arguments);
            }
            _ => {}
        }
    }
    calls
}

fn finishes(events: &[StreamEvent]) -> Vec<FinishReason> {
    events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Finish { reason } => Some(reason.clone()),
            _ => None,
        })
        .collect()
}

fn request(messages: Vec<Message>) -> Request {
    Request {
        model: "gemini-2.5-flash".into(),
        messages,
        ..Request::default()
    }
}

fn user(text: &str) -> Message {
    Message {
        role: Role::User,
        parts: vec![Part::text(text)],
    }
}

fn assistant(parts: Vec<Part>) -> Message {
    Message {
        role: Role::Assistant,
        parts,
    }
}

fn call(id: &str, name: &str, arguments: &str, signature: Option<&str>) -> Part {
    Part::ToolCall(ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
        signature: signature.map(str::to_owned),
    })
}

fn result(call_id: &str, name: Option<&str>, content: &str, is_error: bool) -> Message {
    Message {
        role: Role::Tool,
        parts: vec![Part::ToolResult(ToolResult {
            call_id: call_id.into(),
            name: name.map(str::to_owned),
            content: content.into(),
            is_error,
        })],
    }
}

fn image(source: ImageSource) -> Part {
    Part::Image(Image {
        source,
        detail: None,
    })
}

// ---------------------------------------------------------------------------------------------
// Golden: recorded responses.

#[test]
fn text_response_counts_thoughts_as_output() {
    let response = check_response("generate_content_text", TEXT);
    assert_eq!(response.id, "xlWYafXAOKSf1e8PpcODiAg");
    assert_eq!(response.model, "gemini-2.5-flash");
    assert_eq!(response.parts, vec![Part::text("Paris")]);
    assert_eq!(response.finish, FinishReason::Stop);
    assert_eq!(
        response.usage,
        Some(Usage {
            input_tokens: 11,
            output_tokens: 35,
            cached_input_tokens: None,
            cache_creation_input_tokens: None,
            reasoning_tokens: Some(34),
        })
    );
}

#[test]
fn function_call_response_gets_an_id_keeps_its_signature_and_finishes_with_tool_calls() {
    let response = check_response("generate_content_function_call", CALL);
    let [Part::ToolCall(call)] = response.parts.as_slice() else {
        panic!("one call expected: {:?}", response.parts);
    };
    // gemini-2.5 sends no id: one is synthesized from the seed.
    assert_eq!(call.id, crate::neutral::synthesize_call_id(SEED));
    assert!(call.id.starts_with("call_") && call.id.len() == 29);
    assert_eq!(call.name, "sum");
    assert_eq!(call.arguments, r#"{"a":1,"b":2}"#);
    assert!(
        call.signature
            .as_deref()
            .is_some_and(|s| s.starts_with("CssBAb4+9vtA"))
    );
    // finishReason is STOP, but the answer is a tool call.
    assert_eq!(response.finish, FinishReason::ToolCalls);
    assert_eq!(response.usage.map(|u| u.output_tokens), Some(18 + 50));
}

// ---------------------------------------------------------------------------------------------
// Golden: recorded requests.

#[test]
fn text_request_decodes() {
    let request = check_request_fixture("generate_content_text.request", TEXT_REQUEST);
    assert_eq!(request.sampling.temperature, Some(0.0));
    assert_eq!(
        request.messages,
        vec![user("What is the capital of France? One word.")]
    );
}

#[test]
fn function_call_request_decodes() {
    let request = check_request_fixture("generate_content_function_call.request", CALL_REQUEST);
    assert_eq!(request.system.len(), 1);
    assert_eq!(request.tools.len(), 1);
    // parametersJsonSchema is read as the tool's schema, untouched.
    assert_eq!(
        request.tools[0].parameters.as_ref().map(|p| &p["required"]),
        Some(&json!(["a", "b"]))
    );
}

#[test]
fn parallel_calls_request_decodes() {
    check_request_fixture(
        "stream_parallel_function_calls.request",
        STREAM_CALLS_REQUEST,
    );
}

#[test]
fn after_function_response_request_decodes() {
    let request = check_request_fixture(
        "stream_after_function_response.request",
        STREAM_AFTER_REQUEST,
    );
    let roles: Vec<Role> = request.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [
            Role::User,
            Role::Assistant,
            Role::Tool,
            Role::Tool,
            Role::Tool
        ]
    );
    let Part::ToolCall(first) = &request.messages[1].parts[0] else {
        panic!("call expected");
    };
    assert_eq!(first.id, "3ae8iwca");
    assert!(first.signature.is_some());
    let Part::ToolResult(last) = &request.messages[4].parts[0] else {
        panic!("result expected");
    };
    assert_eq!(
        (
            last.call_id.as_str(),
            last.name.as_deref(),
            last.content.as_str()
        ),
        ("ycroch25", Some("sum"), r#"{"sum":13}"#)
    );
}

// ---------------------------------------------------------------------------------------------
// Golden: recorded streams.

#[test]
fn text_stream() {
    let events = check_stream("stream_text", STREAM_TEXT);
    assert_eq!(
        events[0],
        StreamEvent::Start {
            id: "xiawabjkJuPd7M8PkYmgyAo".into(),
            model: "gemini-2.5-flash".into()
        }
    );
    let text: String = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(text.starts_with("I can help you with that!") && text.ends_with("if applicable)?"));
    assert_eq!(finishes(&events), [FinishReason::Stop]);
    assert_eq!(
        events.last(),
        Some(&StreamEvent::Finish {
            reason: FinishReason::Stop
        })
    );
    let last_usage = events.iter().rev().find_map(|e| match e {
        StreamEvent::Usage(usage) => Some(*usage),
        _ => None,
    });
    assert_eq!(
        last_usage.map(|u| (u.input_tokens, u.output_tokens)),
        Some((29, 49 + 36))
    );
}

#[test]
fn parallel_function_call_stream() {
    let events = check_stream("stream_parallel_function_calls", STREAM_CALLS);
    let calls = calls_of(&events);
    let ids: Vec<&str> = calls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["3ae8iwca", "up3kf30e", "ycroch25"]);
    let arguments: Vec<&str> = calls.iter().map(|c| c.arguments.as_str()).collect();
    // The vendor's key order is kept.
    assert_eq!(
        arguments,
        [r#"{"b":3,"a":2}"#, r#"{"a":4,"b":5}"#, r#"{"b":7,"a":6}"#]
    );
    assert!(
        calls[0]
            .signature
            .as_deref()
            .is_some_and(|s| s.starts_with("EukBCuYB"))
    );
    assert_eq!(calls[1].signature, None);
    assert_eq!(calls[2].signature, None);
    // Each start is immediately followed by its arguments.
    for (i, event) in events.iter().enumerate() {
        if let StreamEvent::ToolCallStart { index, .. } = event {
            assert!(
                matches!(&events[i + 1], StreamEvent::ToolCallDelta { index: j, .. } if j == index)
            );
        }
    }
    assert_eq!(finishes(&events), [FinishReason::ToolCalls]);
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, StreamEvent::TextDelta { .. }))
    );
}

#[test]
fn stream_after_function_response() {
    let events = check_stream("stream_after_function_response", STREAM_AFTER);
    assert!(calls_of(&events).is_empty());
    assert_eq!(finishes(&events), [FinishReason::Stop]);
    // Four chunks, four cumulative usages; the last (281 prompt tokens) wins.
    let usages: Vec<Usage> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::Usage(usage) => Some(*usage),
            _ => None,
        })
        .collect();
    assert_eq!(usages.len(), 4);
    assert_eq!(usages[3].input_tokens, 281);
    assert_eq!(usages[3].reasoning_tokens, None);
}

/// The bug other gateways have: the signature of a parallel call must come back on the same
/// part, next to the call, in the next turn. Built from the recorded answer, compared with the
/// request Google's own SDK sent next.
#[test]
fn thought_signature_survives_into_the_next_turn() {
    let calls = calls_of(&stream_events(STREAM_CALLS));
    let recorded: Value = serde_json::from_slice(STREAM_AFTER_REQUEST).unwrap();
    let outputs = [r#"{"sum": 5}"#, r#"{"sum": 9}"#, r#"{"sum": 13}"#];
    let mut messages = vec![
        user("Can you add 2 and 3? Also 4 and 5? And 6 and 7?"),
        assistant(calls.iter().cloned().map(Part::ToolCall).collect()),
    ];
    // Tool results name only the call id, as OpenAI clients send them.
    messages.extend(
        calls
            .iter()
            .zip(outputs)
            .map(|(c, output)| result(&c.id, None, output, false)),
    );
    let request = Request {
        model: "gemini-3-flash-preview".into(),
        system: vec![
            recorded["systemInstruction"]["parts"][0]["text"]
                .as_str()
                .unwrap()
                .to_owned(),
        ],
        ..request(messages)
    };
    let body = check_encode(&request);
    assert_eq!(body["contents"], recorded["contents"]);
    assert_eq!(
        body["systemInstruction"]["parts"],
        recorded["systemInstruction"]["parts"]
    );
}

// ---------------------------------------------------------------------------------------------
// encode_request.

#[test]
fn roles_map_and_consecutive_turns_merge() {
    let body = check_encode(&request(vec![
        user("a"),
        user("b"),
        assistant(vec![Part::text("c"), call("x1", "f", "{}", None)]),
        result("x1", Some("f"), "ok", false),
        user("d"),
        assistant(vec![Part::text("e")]),
    ]));
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
            {"role": "model", "parts": [{"text": "c"}, {"functionCall": {"name": "f", "args": {}, "id": "x1"}}]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "f", "id": "x1", "response": {"result": "ok"}}},
                {"text": "d"}
            ]},
            {"role": "model", "parts": [{"text": "e"}]},
        ])
    );
}

#[test]
fn empty_text_and_reasoning_are_not_sent_and_empty_turns_vanish() {
    let body = check_encode(&request(vec![
        user("a"),
        assistant(vec![
            Part::Reasoning(Reasoning {
                text: "thinking".into(),
                signature: Some("sig".into()),
                redacted: None,
                origin: Some(crate::neutral::ReasoningOrigin::Gemini),
            }),
            Part::text(""),
        ]),
        user("b"),
    ]));
    assert_eq!(
        body["contents"],
        json!([{"role": "user", "parts": [{"text": "a"}, {"text": "b"}]}])
    );
}

#[test]
fn body_has_no_model_no_stream_and_no_empty_objects() {
    let mut plain = request(vec![user("hi")]);
    plain.stream = true;
    plain.user = Some("u1".into());
    plain.response_format = Some(ResponseFormat::Text);
    let body = check_encode(&plain);
    assert_eq!(
        body,
        json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    );
}

#[test]
fn system_instruction_joins_system_texts() {
    let body = check_encode(&Request {
        system: vec!["be brief".into(), String::new(), "be kind".into()],
        ..request(vec![user("hi")])
    });
    assert_eq!(
        body["systemInstruction"],
        json!({"parts": [{"text": "be brief\n\nbe kind"}]})
    );
}

#[test]
fn tools_are_declared_with_cleaned_schemas() {
    let body = check_encode(&Request {
        tools: vec![
            Tool {
                name: "sum".into(),
                description: Some("adds".into()),
                parameters: Some(json!({
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {"a": {"type": "integer", "default": 1}, "b": {"type": ["number", "null"]}},
                    "required": ["a", "c"]
                })),
                strict: Some(true),
            },
            Tool {
                name: "now".into(),
                description: None,
                parameters: None,
                strict: None,
            },
            Tool {
                name: "ping".into(),
                description: Some(String::new()),
                parameters: Some(json!({"type": "object", "properties": {}})),
                strict: None,
            },
        ],
        ..request(vec![user("hi")])
    });
    assert_eq!(
        body["tools"],
        json!([{"functionDeclarations": [
            {"name": "sum", "description": "adds", "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "number", "nullable": true}},
                "required": ["a"]
            }},
            {"name": "now"},
            {"name": "ping"}
        ]}])
    );
}

#[test]
fn tool_choice_becomes_function_calling_config() {
    let cases = [
        (ToolChoice::Auto, json!({"mode": "AUTO"})),
        (ToolChoice::None, json!({"mode": "NONE"})),
        (ToolChoice::Required, json!({"mode": "ANY"})),
        (
            ToolChoice::Named("sum".into()),
            json!({"mode": "ANY", "allowedFunctionNames": ["sum"]}),
        ),
    ];
    for (choice, expected) in cases {
        let body = check_encode(&Request {
            tool_choice: Some(choice),
            ..request(vec![user("hi")])
        });
        assert_eq!(
            body["toolConfig"],
            json!({"functionCallingConfig": expected})
        );
    }
}

#[test]
fn generation_config_carries_sampling_format_and_thinking() {
    let body = check_encode(&Request {
        sampling: Sampling {
            temperature: Some(0.5),
            top_p: Some(0.9),
            top_k: Some(40),
            max_tokens: Some(100),
            stop: vec!["END".into()],
            seed: Some(42),
            presence_penalty: Some(0.1),
            frequency_penalty: Some(0.2),
        },
        response_format: Some(ResponseFormat::JsonSchema {
            name: "answer".into(),
            schema: json!({"type": "object", "title": "Answer", "properties": {"x": {"const": "y"}}}),
            strict: Some(true),
        }),
        reasoning: Some(ReasoningConfig {
            effort: Some("high".into()),
            budget_tokens: Some(2048),
        }),
        ..request(vec![user("hi")])
    });
    assert_eq!(
        body["generationConfig"],
        json!({
            "temperature": 0.5,
            "topP": 0.9,
            "topK": 40,
            "maxOutputTokens": 100,
            "stopSequences": ["END"],
            "seed": 42,
            "presencePenalty": 0.1,
            "frequencyPenalty": 0.2,
            "responseMimeType": "application/json",
            "responseSchema": {"type": "object", "properties": {"x": {"type": "string", "enum": ["y"]}}},
            "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": true}
        })
    );
}

#[test]
fn json_object_format_sets_only_the_mime_type() {
    let body = check_encode(&Request {
        response_format: Some(ResponseFormat::JsonObject),
        ..request(vec![user("hi")])
    });
    assert_eq!(
        body["generationConfig"],
        json!({"responseMimeType": "application/json"})
    );
}

#[test]
fn effort_without_budget_maps_to_a_budget() {
    for (effort, expected) in [
        ("minimal", Some(json!({"thinkingBudget": 0}))),
        (
            "low",
            Some(json!({"thinkingBudget": 1024, "includeThoughts": true})),
        ),
        (
            "medium",
            Some(json!({"thinkingBudget": 8192, "includeThoughts": true})),
        ),
        (
            "high",
            Some(json!({"thinkingBudget": 24576, "includeThoughts": true})),
        ),
        ("unheard-of", None),
    ] {
        let body = check_encode(&Request {
            reasoning: Some(ReasoningConfig {
                effort: Some(effort.into()),
                budget_tokens: None,
            }),
            ..request(vec![user("hi")])
        });
        let config = body
            .get("generationConfig")
            .and_then(|g| g.get("thinkingConfig"))
            .cloned();
        assert_eq!(config, expected, "{effort}");
    }
}

#[test]
fn images_go_inline_or_by_gcs_uri() {
    let body = check_encode(&request(vec![Message {
        role: Role::User,
        parts: vec![
            image(ImageSource::Base64 {
                media_type: "image/png".into(),
                data: "iVBORw0KGgo=".into(),
            }),
            image(ImageSource::Url("gs://bucket/cat.JPG".into())),
            image(ImageSource::Url("gs://bucket/blob".into())),
            image(ImageSource::Url("data:image/webp;base64,UklGRg==".into())),
        ],
    }]));
    assert_eq!(
        body["contents"][0]["parts"],
        json!([
            {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
            {"fileData": {"mimeType": "image/jpeg", "fileUri": "gs://bucket/cat.JPG"}},
            {"fileData": {"fileUri": "gs://bucket/blob"}},
            {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
        ])
    );
}

#[test]
fn http_image_urls_are_refused() {
    for url in ["https://example.com/cat.png", "http://example.com/cat.png"] {
        let err = check_encode_error(&request(vec![Message {
            role: Role::User,
            parts: vec![image(ImageSource::Url(url.into()))],
        }]));
        assert_eq!(err, "image URLs must be fetched before sending to Gemini");
    }
}

#[test]
fn tool_result_names_come_from_the_result_or_the_call() {
    let body = check_encode(&request(vec![
        user("go"),
        assistant(vec![
            call("call_a", "weather", r#"{"city":"Paris"}"#, None),
            call("gem1", "time", "", None),
        ]),
        result("call_a", None, "sunny", false),
        result("gem1", Some("clock"), "noon", false),
        result("call_missing", None, "?", false),
    ]));
    let names: Vec<&Value> = body["contents"][2]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["functionResponse"]["name"])
        .collect();
    assert_eq!(
        names,
        [
            &json!("weather"),
            &json!("clock"),
            &json!("unknown_function")
        ]
    );
}

#[test]
fn tool_results_are_objects_plain_text_is_wrapped_and_errors_go_under_error() {
    let body = check_encode(&request(vec![
        result("a", Some("f"), r#" {"temp": 21, "unit": "C"} "#, false),
        result("b", Some("f"), "sunny", false),
        result("c", Some("f"), "[1,2]", false),
        result("d", Some("f"), "", false),
        result("e", Some("f"), "timeout", true),
        result("g", Some("f"), r#"{"code": 7}"#, true),
    ]));
    let responses: Vec<&Value> = body["contents"][0]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| &p["functionResponse"]["response"])
        .collect();
    assert_eq!(
        responses,
        [
            &json!({"temp": 21, "unit": "C"}),
            &json!({"result": "sunny"}),
            &json!({"result": "[1,2]"}),
            &json!({"result": ""}),
            &json!({"error": "timeout"}),
            &json!({"error": {"code": 7}}),
        ]
    );
}

#[test]
fn call_arguments_are_objects() {
    let body = check_encode(&request(vec![assistant(vec![
        call("gem1", "f", r#"{"b": 1, "a": [true]}"#, None),
        call("gem2", "f", "", None),
        call("gem3", "f", "{not json", None),
        call("gem4", "f", "[1]", None),
    ])]));
    let args: Vec<String> = body["contents"][0]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["functionCall"]["args"].to_string())
        .collect();
    assert_eq!(args, [r#"{"a":[true],"b":1}"#, "{}", "{}", "{}"]);
}

#[test]
fn only_gemini_issued_ids_are_sent_and_signatures_ride_beside_the_call() {
    let body = check_encode(&request(vec![
        assistant(vec![
            call("call_0123456789abcdef01234567", "f", "{}", Some("sigA")),
            call("3ae8iwca", "g", "{}", Some("sigB")),
            call("", "h", "{}", Some("")),
        ]),
        result("call_0123456789abcdef01234567", None, "1", false),
        result("3ae8iwca", None, "2", false),
    ]));
    assert_eq!(
        body["contents"],
        json!([
            {"role": "model", "parts": [
                {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "sigA"},
                {"functionCall": {"name": "g", "args": {}, "id": "3ae8iwca"}, "thoughtSignature": "sigB"},
                {"functionCall": {"name": "h", "args": {}}},
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "f", "response": {"result": "1"}}},
                {"functionResponse": {"name": "g", "id": "3ae8iwca", "response": {"result": "2"}}},
            ]},
        ])
    );
}

#[test]
fn calls_from_another_vendor_get_the_placeholder_signature_on_gemini_3_only() {
    let history = vec![
        user("go"),
        assistant(vec![
            call("call_openai1", "f", "{}", None),
            call("call_openai2", "f", "{}", None),
        ]),
        result("call_openai1", None, "1", false),
        result("call_openai2", None, "2", false),
        assistant(vec![call("gem1", "f", "{}", None)]),
    ];
    let signatures = |model: &str| -> Vec<Value> {
        let body = check_encode(&Request {
            model: model.into(),
            ..request(history.clone())
        });
        [1, 3]
            .iter()
            .flat_map(|&turn| body["contents"][turn]["parts"].as_array().unwrap().clone())
            .map(|p| p.get("thoughtSignature").cloned().unwrap_or(Value::Null))
            .collect()
    };
    // Only the first call of a turn needs one, and a Gemini-issued call that lost its own
    // signature is left alone so the loss stays visible.
    assert_eq!(
        signatures("gemini-3-pro-preview"),
        [
            json!("skip_thought_signature_validator"),
            Value::Null,
            Value::Null
        ]
    );
    assert_eq!(
        signatures("gemini-2.5-flash"),
        [Value::Null, Value::Null, Value::Null]
    );
}

// ---------------------------------------------------------------------------------------------
// decode_response.

#[test]
fn finish_reasons_follow_the_normalization_table() {
    let cases = [
        ("STOP", false, FinishReason::Stop),
        ("STOP", true, FinishReason::ToolCalls),
        ("MAX_TOKENS", false, FinishReason::Length),
        ("MAX_TOKENS", true, FinishReason::Length),
        ("SAFETY", false, FinishReason::ContentFilter),
        ("RECITATION", false, FinishReason::ContentFilter),
        ("BLOCKLIST", false, FinishReason::ContentFilter),
        ("PROHIBITED_CONTENT", false, FinishReason::ContentFilter),
        ("SPII", false, FinishReason::ContentFilter),
        ("IMAGE_SAFETY", false, FinishReason::ContentFilter),
        (
            "IMAGE_PROHIBITED_CONTENT",
            false,
            FinishReason::ContentFilter,
        ),
        ("MALFORMED_FUNCTION_CALL", false, FinishReason::ModelError),
        ("UNEXPECTED_TOOL_CALL", true, FinishReason::ModelError),
        ("TOO_MANY_TOOL_CALLS", true, FinishReason::ModelError),
        ("OTHER", false, FinishReason::Stop),
        ("LANGUAGE", false, FinishReason::Stop),
        ("FINISH_REASON_UNSPECIFIED", false, FinishReason::Stop),
        ("SOMETHING_NEW", true, FinishReason::ToolCalls),
    ];
    for (reason, with_call, expected) in cases {
        let part = if with_call {
            json!({"functionCall": {"name": "f"}})
        } else {
            json!({"text": "x"})
        };
        let body = json!({"candidates": [{"content": {"parts": [part], "role": "model"}, "finishReason": reason}]});
        assert_eq!(check_response_json(body).finish, expected, "{reason}");
    }
    let missing = json!({"candidates": [{"content": {"parts": [{"text": "x"}]}}]});
    assert_eq!(check_response_json(missing).finish, FinishReason::Stop);
}

#[test]
fn blocked_prompt_is_a_content_filter_finish() {
    let response = check_response_json(json!({
        "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
        "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
        "modelVersion": "gemini-2.5-flash",
        "responseId": "r1"
    }));
    assert_eq!(response.parts, []);
    assert_eq!(response.finish, FinishReason::ContentFilter);
    assert_eq!(response.usage.map(|u| u.input_tokens), Some(8));
}

#[test]
fn thoughts_calls_images_and_split_text_decode() {
    let response = check_response_json(json!({
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "Let me think", "thought": true},
            {"text": " harder.", "thought": true, "thoughtSignature": "t1"},
            {"text": "Hello, "},
            {"text": ""},
            {"text": "world", "thoughtSignature": "dropped"},
            {"inlineData": {"mimeType": "image/png", "data": "AAAA"}},
            {"functionCall": {"name": "f", "id": "abc"}, "thoughtSignature": "s1"},
            {"functionCall": {"name": "g", "args": {"a": "x y", "z": 1}}},
        ]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "thoughtsTokenCount": 3, "cachedContentTokenCount": 4}
    }));
    assert_eq!(
        response.parts,
        vec![
            Part::Reasoning(Reasoning {
                text: "Let me think harder.".into(),
                signature: Some("t1".into()),
                redacted: None,
                origin: Some(crate::neutral::ReasoningOrigin::Gemini)
            }),
            Part::text("Hello, world"),
            image(ImageSource::Base64 {
                media_type: "image/png".into(),
                data: "AAAA".into()
            }),
            call("abc", "f", "{}", Some("s1")),
            // Second call of the answer: the id comes from seed + 1.
            call(
                &crate::neutral::synthesize_call_id(SEED + 1),
                "g",
                r#"{"a":"x y","z":1}"#,
                None
            ),
        ]
    );
    assert_eq!(response.finish, FinishReason::ToolCalls);
    assert_eq!(
        response.usage,
        Some(Usage {
            input_tokens: 10,
            output_tokens: 8,
            cached_input_tokens: Some(4),
            cache_creation_input_tokens: None,
            reasoning_tokens: Some(3),
        })
    );
}

#[test]
fn missing_usage_is_none_and_array_bodies_are_read() {
    let one =
        json!({"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}]});
    assert_eq!(check_response_json(one.clone()).usage, None);
    let wrapped = check_response_json(json!([one]));
    assert_eq!(wrapped.parts, vec![Part::text("hi")]);
    // streamGenerateContent without alt=sse: the chunks of one answer.
    let chunks = check_response_json(json!([
        {"candidates": [{"content": {"parts": [{"text": "a"}]}}], "responseId": "r", "modelVersion": "m",
         "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1}},
        {"candidates": [{"content": {"parts": [{"text": "b"}]}, "finishReason": "MAX_TOKENS"}],
         "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 2}},
    ]));
    assert_eq!(
        (
            chunks.id.as_str(),
            chunks.model.as_str(),
            chunks.parts,
            chunks.finish
        ),
        ("r", "m", vec![Part::text("ab")], FinishReason::Length)
    );
    assert_eq!(chunks.usage.map(|u| u.output_tokens), Some(2));
}

#[test]
fn unreadable_responses_are_decode_errors() {
    for body in [
        "",
        "{",
        "[]",
        "{}",
        r#"{"candidates": "no"}"#,
        r#"{"candidates": [{"content": {"parts": [{"text": 5}]}}]}"#,
        r#"{"error": {"code": 500, "message": "boom", "status": "INTERNAL"}}"#,
    ] {
        check_bad_response(body.as_bytes());
    }
    let err = check_bad_response(br#"{"candidates": [{"content": {"parts": [{"text": 5}]}}]}"#);
    assert!(err.contains("candidates[0].content.parts[0].text"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// StreamDecoder.

#[test]
fn stop_on_every_chunk_finishes_once_and_a_late_call_updates_the_reason() {
    let chunk = |part: Value| json!({"candidates": [{"content": {"parts": [part]}, "finishReason": "STOP"}]});
    let events = check_chunks(&[
        chunk(json!({"text": "a"})),
        chunk(json!({"text": "b"})),
        chunk(json!({"functionCall": {"name": "f", "args": {}}})),
        chunk(json!({"text": ""})),
    ]);
    assert_eq!(
        finishes(&events),
        [FinishReason::Stop, FinishReason::ToolCalls]
    );
    let events = check_chunks(&[chunk(json!({"text": "a"})), chunk(json!({"text": "b"}))]);
    assert_eq!(finishes(&events), [FinishReason::Stop]);
}

#[test]
fn stream_thoughts_ids_and_usage() {
    let events = check_chunks(&[
        json!({"candidates": [{"content": {"parts": [{"text": "hmm", "thought": true}]}}],
               "responseId": "r1", "modelVersion": "gemini-2.5-pro"}),
        json!({"candidates": [{"content": {"parts": [
            {"text": "", "thought": true, "thoughtSignature": "ts"},
            {"functionCall": {"name": "f"}},
            {"functionCall": {"name": "g", "args": {"k": "v"}, "id": "given"}}
        ]}, "finishReason": "STOP"}],
               "usageMetadata": {"promptTokenCount": 3, "candidatesTokenCount": 4, "thoughtsTokenCount": 5}}),
    ]);
    assert_eq!(
        events,
        vec![
            StreamEvent::Start {
                id: "r1".into(),
                model: "gemini-2.5-pro".into()
            },
            StreamEvent::ReasoningDelta {
                text: "hmm".into(),
                signature: None,
                origin: Some(crate::neutral::ReasoningOrigin::Gemini)
            },
            StreamEvent::ReasoningDelta {
                text: String::new(),
                signature: Some("ts".into()),
                origin: Some(crate::neutral::ReasoningOrigin::Gemini)
            },
            StreamEvent::ToolCallStart {
                index: 0,
                id: crate::neutral::synthesize_call_id(SEED),
                name: "f".into(),
                signature: None
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "{}".into()
            },
            StreamEvent::ToolCallStart {
                index: 1,
                id: "given".into(),
                name: "g".into(),
                signature: None
            },
            StreamEvent::ToolCallDelta {
                index: 1,
                arguments: r#"{"k":"v"}"#.into()
            },
            StreamEvent::Usage(Usage {
                input_tokens: 3,
                output_tokens: 9,
                cached_input_tokens: None,
                cache_creation_input_tokens: None,
                reasoning_tokens: Some(5)
            }),
            StreamEvent::Finish {
                reason: FinishReason::ToolCalls
            },
        ]
    );
}

#[test]
fn stream_ids_match_the_whole_response_ids() {
    let body = json!({"candidates": [{"content": {"parts": [
        {"functionCall": {"name": "f"}}, {"functionCall": {"name": "g"}}
    ]}, "finishReason": "STOP"}]});
    let whole: Vec<String> = check_response_json(body.clone())
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall(c) => Some(c.id.clone()),
            _ => None,
        })
        .collect();
    let streamed: Vec<String> = calls_of(&check_chunks(&[body]))
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(whole, streamed);
}

#[test]
fn stream_blocked_prompt_and_error_payloads() {
    let events =
        check_chunks(&[json!({"promptFeedback": {"blockReason": "SAFETY"}, "responseId": "r"})]);
    assert_eq!(finishes(&events), [FinishReason::ContentFilter]);

    let events = check_chunks(&[
        json!({"candidates": [{"content": {"parts": [{"text": "a"}]}}]}),
        json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}),
    ]);
    assert_eq!(
        events.last(),
        Some(&StreamEvent::Error {
            kind: ErrorKind::UpstreamStatus(503),
            message: "The model is overloaded.".into()
        })
    );
    let events = check_chunks(&[json!([{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}])]);
    assert_eq!(
        events,
        vec![StreamEvent::Error {
            kind: ErrorKind::UpstreamStatus(429),
            message: "gemini returned 429".into()
        }]
    );
}

#[test]
fn stream_ignores_empty_and_done_payloads_and_reports_malformed_ones() {
    let mut decoder = StreamDecoder::new(SEED);
    let event = |data: &'static str| sse::Event {
        name: None,
        data: data.into(),
    };
    assert_eq!(decoder.decode(&event("")).unwrap(), []);
    assert_eq!(decoder.decode(&event("[DONE]")).unwrap(), []);
    assert!(decoder.decode(&event("{\"candidates\":")).is_err());
    assert!(decoder.decode(&event("not json")).is_err());
    // Still usable after an error.
    let events = decoder
        .decode(&event(
            r#"{"candidates":[{"content":{"parts":[{"text":"ok"}]}}]}"#,
        ))
        .unwrap();
    assert_eq!(events.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// decode_error.

#[test]
fn rpc_statuses_map_to_client_statuses() {
    let body = |code: u16, status: &str| {
        format!(r#"{{"error":{{"code":{code},"message":"m {status}","status":"{status}"}}}}"#)
    };
    let cases = [
        (
            400,
            "INVALID_ARGUMENT",
            (400, "invalid_request_error", None),
        ),
        (
            400,
            "FAILED_PRECONDITION",
            (400, "invalid_request_error", None),
        ),
        (401, "UNAUTHENTICATED", (401, "authentication_error", None)),
        (403, "PERMISSION_DENIED", (403, "permission_error", None)),
        (404, "NOT_FOUND", (404, "not_found_error", None)),
        (429, "RESOURCE_EXHAUSTED", (429, "rate_limit_error", None)),
        (500, "INTERNAL", (500, "api_error", None)),
        (503, "UNAVAILABLE", (503, "overloaded_error", None)),
        (504, "DEADLINE_EXCEEDED", (504, "timeout_error", None)),
    ];
    for (code, status, expected) in cases {
        let error = check_error(code, &body(code, status), expected);
        assert_eq!(error.message, format!("m {status}"));
    }
}

#[test]
fn array_wrapped_errors_and_retry_info() {
    let error = check_error(
        429,
        r#"[{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED",
            "details":[{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[]},
                       {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"41s"}]}}]"#,
        (429, "rate_limit_error", Some(41)),
    );
    assert_eq!(
        error.message,
        "Resource has been exhausted (e.g. check quota)."
    );
    check_error(
        429,
        r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}}"#,
        (429, "rate_limit_error", Some(2)),
    );
    check_error(
        400,
        r#"[{"error":{"code":400,"message":"Invalid JSON payload received. Unknown name \"web_search_options\"","status":"INVALID_ARGUMENT","details":[]}}]"#,
        (400, "invalid_request_error", None),
    );
}

#[test]
fn invalid_api_key_is_an_authentication_error() {
    check_error(
        400,
        r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT",
            "details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#,
        (401, "authentication_error", None),
    );
}

#[test]
fn odd_error_bodies_fall_back_to_the_http_status() {
    let error = check_error(503, "", (503, "overloaded_error", None));
    assert_eq!(error.message, "gemini returned 503");
    let error = check_error(502, "<html>Bad Gateway</html>", (502, "api_error", None));
    assert_eq!(error.message, "gemini returned 502");
    let error = check_error(500, "upstream connect error", (500, "api_error", None));
    assert_eq!(error.message, "upstream connect error");
    let error = check_error(
        400,
        r#"{"error":"bad thing"}"#,
        (400, "invalid_request_error", None),
    );
    assert_eq!(error.message, "bad thing");
    check_error(
        413,
        r#"{"error":{"code":413}}"#,
        (413, "invalid_request_error", None),
    );
    check_error(
        429,
        r#"{"error":{"message":"slow down"}}"#,
        (429, "rate_limit_error", None),
    );
    check_error(
        200,
        r#"{"error":{"message":"?"}}"#,
        (502, "api_error", None),
    );
}

// ---------------------------------------------------------------------------------------------
// decode_request details.

#[test]
fn decode_request_reads_config_choice_and_snake_case() {
    let request = check_decode_request(
        br#"{
        "contents": [
            {"role": "user", "parts": [{"text": "hi"}, {"inline_data": {"mime_type": "image/png", "data": "AA=="}}]},
            {"role": "model", "parts": [
                {"text": "pondering", "thought": true, "thoughtSignature": "t"},
                {"function_call": {"name": "f", "args": {"x": 1}}, "thought_signature": "s"},
                {"functionCall": {"name": "g"}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "g", "response": {"error": "nope"}}},
                {"functionResponse": {"name": "f", "response": {"result": "one"}}},
                {"text": "thanks"}
            ]}
        ],
        "system_instruction": {"parts": [{"text": "a"}, {"text": "b"}]},
        "tools": [{"googleSearch": {}}, {"functionDeclarations": [{"name": "f", "parameters": {"type": "object"}}]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["f"]}},
        "generationConfig": {"maxOutputTokens": 5, "stopSequences": ["x"], "responseMimeType": "application/json",
                             "thinkingConfig": {"thinkingBudget": -1, "thinkingLevel": "HIGH"}}
    }"#,
    )
    ;
    assert_eq!(request.system, ["a", "b"]);
    assert_eq!(request.tool_choice, Some(ToolChoice::Named("f".into())));
    assert_eq!(request.response_format, Some(ResponseFormat::JsonObject));
    assert_eq!(
        request.reasoning,
        Some(ReasoningConfig {
            effort: Some("high".into()),
            budget_tokens: None
        })
    );
    assert_eq!(request.sampling.max_tokens, Some(5));
    assert_eq!(request.tools.len(), 1);
    let [first, model, tool_g, tool_f, thanks] = request.messages.as_slice() else {
        panic!("{:#?}", request.messages);
    };
    assert_eq!(first.parts.len(), 2);
    let (Part::ToolCall(f), Part::ToolCall(g)) = (&model.parts[1], &model.parts[2]) else {
        panic!("{model:?}");
    };
    assert_eq!(f.signature.as_deref(), Some("s"));
    assert_eq!(f.arguments, r#"{"x":1}"#);
    assert_eq!(g.arguments, "{}");
    // Responses without ids find their calls by name.
    let (Part::ToolResult(rg), Part::ToolResult(rf)) = (&tool_g.parts[0], &tool_f.parts[0]) else {
        panic!();
    };
    assert_eq!(
        (&rg.call_id, rg.is_error, rg.content.as_str()),
        (&g.id, true, "nope")
    );
    assert_eq!(
        (&rf.call_id, rf.is_error, rf.content.as_str()),
        (&f.id, false, "one")
    );
    assert_eq!(thanks, &user("thanks"));
}

#[test]
fn decode_request_errors_name_the_path() {
    let err = check_bad_request(br#"{"contents": [{"parts": [{"functionCall": {"name": 3}}]}]}"#);
    assert!(
        err.contains("contents[0].parts[0].functionCall.name"),
        "{err}"
    );
    check_bad_request(b"{}");
    check_bad_request(b"[]");
    check_bad_request(b"{\"contents\": []} x");
}

#[test]
fn documents_and_audio_are_sent_as_inline_data() {
    let file = |media_type: &str, kind| {
        Part::File(crate::neutral::File {
            source: ImageSource::Base64 {
                media_type: media_type.into(),
                data: "AAAA".into(),
            },
            filename: None,
            kind,
        })
    };
    let request = Request {
        model: "gemini-2.5-flash".into(),
        messages: vec![Message {
            role: Role::User,
            parts: vec![
                file("application/pdf", crate::neutral::FileKind::Document),
                file("audio/wav", crate::neutral::FileKind::Audio),
            ],
        }],
        ..Request::default()
    };
    let body = check_encode(&request);
    let parts = &body["contents"][0]["parts"];
    assert_eq!(
        parts[0],
        json!({"inlineData": {"mimeType": "application/pdf", "data": "AAAA"}})
    );
    assert_eq!(parts[1]["inlineData"]["mimeType"], "audio/wav");
    let by_url = Request {
        messages: vec![Message {
            role: Role::User,
            parts: vec![Part::File(crate::neutral::File {
                source: ImageSource::Url("https://x/a.pdf".into()),
                filename: None,
                kind: crate::neutral::FileKind::Document,
            })],
        }],
        ..request
    };
    assert!(check_encode_error(&by_url).contains("must be fetched"));
}

use bytes::BytesMut;
use pretty_assertions::assert_eq;
use proptest::prelude::*;
use serde_json::{Value, json};

use super::*;
use crate::error::{ErrorKind, VendorError};
use crate::neutral::{
    FinishReason, Image, ImageSource, Message, Part, Reasoning, ReasoningConfig, Request, Response,
    ResponseFormat, Role, StreamEvent, Tool, ToolCall, ToolChoice, ToolResult, Usage,
};
use crate::openai_chat::InvalidRequest;
use crate::sse;

// The fixtures vendored into the repository (identical to ../shared/fixtures).
const MESSAGE_TEXT: &[u8] = include_bytes!("../../../../fixtures/anthropic/message_text.json");
const MESSAGE_TOOL_USE: &[u8] =
    include_bytes!("../../../../fixtures/anthropic/message_tool_use.json");
const REQUEST_TOOL_USE: &[u8] =
    include_bytes!("../../../../fixtures/anthropic/message_tool_use.request.json");
const STREAM_TEXT: &[u8] = include_bytes!("../../../../fixtures/anthropic/stream_text.sse");
const STREAM_TOOL_USE: &[u8] = include_bytes!("../../../../fixtures/anthropic/stream_tool_use.sse");
const STREAM_OVERLOADED: &[u8] =
    include_bytes!("../../../../fixtures/anthropic/stream_error_overloaded.sse");

// ---------------------------------------------------------------------------------------------
// Helpers: every test goes through these, so API changes touch one place.

#[track_caller]
fn check_decode_response(snapshot: &str, body: &[u8]) -> Response {
    let response = decode_response(body).expect("response decodes");
    insta::assert_json_snapshot!(snapshot, response);
    response
}

#[track_caller]
fn check_decode_request(snapshot: Option<&str>, body: &[u8]) -> Request {
    let request = decode_request(body).expect("request decodes");
    if let Some(snapshot) = snapshot {
        insta::assert_json_snapshot!(snapshot, request);
    }
    request
}

#[track_caller]
fn check_invalid_request(body: &str, fragment: &str, param: Option<&str>) {
    let err: InvalidRequest = decode_request(body.as_bytes()).expect_err("request is refused");
    assert!(
        err.message.contains(fragment),
        "message {:?} should contain {fragment:?}",
        err.message
    );
    if let Some(param) = param {
        assert_eq!(err.param.as_deref(), Some(param), "param for {body}");
    }
}

/// Encodes and parses back; snapshots when a name is given.
#[track_caller]
fn check_encode_request(snapshot: Option<&str>, request: &Request, default_max: u32) -> Value {
    let body = encode_request(request, default_max);
    let value: Value = serde_json::from_slice(&body).expect("encoded request is JSON");
    if let Some(snapshot) = snapshot {
        insta::assert_json_snapshot!(snapshot, value);
    }
    value
}

#[track_caller]
fn check_encode_response(snapshot: Option<&str>, response: &Response, model: &str) -> Value {
    let body = encode_response(response, model);
    let value: Value = serde_json::from_slice(&body).expect("encoded response is JSON");
    if let Some(snapshot) = snapshot {
        insta::assert_json_snapshot!(snapshot, value);
    }
    value
}

#[track_caller]
fn check_error(status: u16, body: &str) -> VendorError {
    decode_error(status, body.as_bytes())
}

/// SSE bytes → events.
fn sse_events(raw: &[u8]) -> Vec<sse::Event> {
    let mut decoder = sse::Decoder::default();
    decoder.push(raw);
    decoder.finish();
    std::iter::from_fn(|| decoder.next_event()).collect()
}

/// Runs a whole SSE stream through a fresh [`StreamDecoder`].
#[track_caller]
fn check_stream(snapshot: Option<&str>, raw: &[u8]) -> Vec<StreamEvent> {
    let mut decoder = StreamDecoder::default();
    let mut events = Vec::new();
    for event in sse_events(raw) {
        events.extend(decoder.decode(&event).expect("event decodes"));
    }
    if let Some(snapshot) = snapshot {
        insta::assert_json_snapshot!(snapshot, events);
    }
    events
}

/// Runs neutral events through a [`StreamEncoder`] and `finish`.
fn check_encode_stream(events: &[StreamEvent], input_tokens: u64) -> String {
    let mut encoder = StreamEncoder::new("msg_test".into(), "my-alias".into(), input_tokens);
    let mut out = BytesMut::new();
    for event in events {
        encoder.encode(event, &mut out);
    }
    encoder.finish(&mut out);
    String::from_utf8(out.to_vec()).expect("SSE is UTF-8")
}

fn event_names(sse_text: &str) -> Vec<String> {
    sse_events(sse_text.as_bytes())
        .into_iter()
        .map(|e| e.name.unwrap_or_default())
        .collect()
}

fn event_data(sse_text: &str) -> Vec<Value> {
    sse_events(sse_text.as_bytes())
        .iter()
        .map(|e| serde_json::from_slice(&e.data).expect("event data is JSON"))
        .collect()
}

/// What a stream says once its deltas are put together.
#[derive(Debug, Default, PartialEq)]
struct Assembled {
    text: String,
    reasoning: String,
    signatures: Vec<String>,
    calls: Vec<(String, String, String)>,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    errors: Vec<(ErrorKind, String)>,
}

fn assemble(events: &[StreamEvent]) -> Assembled {
    let mut out = Assembled::default();
    for event in events {
        match event {
            StreamEvent::Start { .. } => {}
            StreamEvent::TextDelta { text } => out.text.push_str(text),
            StreamEvent::ReasoningDelta {
                text, signature, ..
            } => {
                out.reasoning.push_str(text);
                out.signatures.extend(signature.clone());
            }
            StreamEvent::ToolCallStart {
                index, id, name, ..
            } => {
                assert_eq!(*index, out.calls.len(), "tool indexes count from 0");
                out.calls.push((id.clone(), name.clone(), String::new()));
            }
            StreamEvent::ToolCallDelta { index, arguments } => {
                out.calls[*index].2.push_str(arguments);
            }
            StreamEvent::Usage(usage) => out.usage = Some(*usage),
            StreamEvent::Finish { reason } => out.finish = Some(reason.clone()),
            StreamEvent::Error { kind, message } => out.errors.push((*kind, message.clone())),
        }
    }
    out
}

fn text(role: Role, text: &str) -> Message {
    Message {
        role,
        parts: vec![Part::text(text)],
    }
}

fn call(id: &str, name: &str, arguments: &str) -> Part {
    Part::ToolCall(ToolCall {
        id: id.into(),
        name: name.into(),
        arguments: arguments.into(),
        signature: None,
    })
}

fn result(call_id: &str, content: &str, is_error: bool) -> Message {
    Message {
        role: Role::Tool,
        parts: vec![Part::ToolResult(ToolResult {
            call_id: call_id.into(),
            name: None,
            content: content.into(),
            is_error,
        })],
    }
}

fn signed(text: &str, signature: &str) -> Part {
    Part::Reasoning(Reasoning {
        text: text.into(),
        signature: Some(signature.into()),
        redacted: None,
        origin: Some(crate::neutral::ReasoningOrigin::Anthropic),
    })
}

fn weather_tool() -> Tool {
    Tool {
        name: "get_weather".into(),
        description: Some("Weather for a city".into()),
        parameters: Some(json!({"type":"object","properties":{"city":{"type":"string"}}})),
        strict: Some(true),
    }
}

fn base_request(messages: Vec<Message>) -> Request {
    Request {
        model: "claude-sonnet-4-5".into(),
        messages,
        ..Request::default()
    }
}

// ---------------------------------------------------------------------------------------------
// Golden: recorded responses, requests and streams.

#[test]
fn decodes_the_text_message_fixture() {
    let response = check_decode_response("message_text", MESSAGE_TEXT);
    assert_eq!(response.id, "msg_01T4jd6NyD9xGGtTPDC4ogy5");
    assert_eq!(response.finish, FinishReason::Stop);
    assert!(matches!(&response.parts[..], [Part::Text { text }] if text.starts_with("{\"items\"")));
    let usage = response.usage.unwrap();
    assert_eq!((usage.input_tokens, usage.output_tokens), (406, 50));
    assert_eq!(usage.cached_input_tokens, Some(0));
}

#[test]
fn decodes_the_tool_use_message_fixture() {
    let response = check_decode_response("message_tool_use", MESSAGE_TOOL_USE);
    assert_eq!(response.finish, FinishReason::ToolCalls);
    let Part::ToolCall(call) = &response.parts[1] else {
        panic!("second part is the tool call: {:?}", response.parts);
    };
    assert_eq!(call.id, "toolu_01LRanfq6DmHn1yDTB4d1SAh");
    assert_eq!(call.name, "get_weather");
    // Compact, in the vendor's member order.
    assert_eq!(
        call.arguments,
        r#"{"location":"San Francisco, CA","units":"f"}"#
    );
    assert_eq!(response.usage.unwrap().total(), 701 + 93);
}

#[test]
fn decodes_the_tool_use_request_fixture() {
    let request = check_decode_request(Some("request_tool_use"), REQUEST_TOOL_USE);
    assert_eq!(request.model, "claude-haiku-4-5");
    assert_eq!(request.sampling.max_tokens, Some(1024));
    assert_eq!(request.messages.len(), 1);
    assert_eq!(request.tools[0].name, "get_weather");
    assert_eq!(
        request.tools[0].parameters.as_ref().unwrap()["required"],
        json!(["location", "units"])
    );
    // Encoding it again gives the request Anthropic received, with the string content as
    // the equivalent text block.
    let mut original: Value = serde_json::from_slice(REQUEST_TOOL_USE).unwrap();
    let content = original["messages"][0]["content"].take();
    original["messages"][0]["content"] = json!([{"type": "text", "text": content}]);
    assert_eq!(check_encode_request(None, &request, 4096), original);
}

#[test]
fn decodes_the_text_stream_fixture() {
    let events = check_stream(Some("stream_text"), STREAM_TEXT);
    let assembled = assemble(&events);
    assert_eq!(assembled.text, "Hello there!");
    assert_eq!(assembled.finish, Some(FinishReason::Stop));
    let usage = assembled.usage.unwrap();
    assert_eq!((usage.input_tokens, usage.output_tokens), (11, 6));
    assert!(matches!(&events[0], StreamEvent::Start { id, model }
        if id == "msg_4QpJur2dWWDjF6C758FbBw5vm12BaVipnK" && model == "claude-3-opus-latest"));
}

#[test]
fn decodes_the_tool_use_stream_fixture() {
    let events = check_stream(Some("stream_tool_use"), STREAM_TOOL_USE);
    let assembled = assemble(&events);
    assert_eq!(
        assembled.text,
        "I'll check the current weather in Paris for you."
    );
    let [(id, name, arguments)] = &assembled.calls[..] else {
        panic!("one tool call: {:?}", assembled.calls);
    };
    assert_eq!(id, "toolu_01NRLabsLyVHZPKxbKvkfSMn");
    assert_eq!(name, "get_weather");
    let arguments: Value = serde_json::from_str(arguments).unwrap();
    assert_eq!(arguments, json!({"location": "Paris"}));
    assert_eq!(assembled.finish, Some(FinishReason::ToolCalls));
    // Output from message_delta (65), not the message_start placeholder (1).
    let usage = assembled.usage.unwrap();
    assert_eq!((usage.input_tokens, usage.output_tokens), (377, 65));
    // The empty first input_json_delta is skipped.
    assert!(!events.iter().any(
        |e| matches!(e, StreamEvent::ToolCallDelta { arguments, .. } if arguments.is_empty())
    ));
}

#[test]
fn decodes_the_overloaded_stream_fixture() {
    let events = check_stream(None, STREAM_OVERLOADED);
    assert_eq!(
        events,
        vec![StreamEvent::Error {
            kind: ErrorKind::UpstreamStatus(529),
            message: "Overloaded".into()
        }]
    );
}

// ---------------------------------------------------------------------------------------------
// Stream decoder details.

#[test]
fn stream_decoder_reads_thinking_cache_usage_and_parallel_tools() {
    let raw = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude\",\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":5,\"cache_read_input_tokens\":100,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"Let me think\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"signature_delta\",\"signature\":\"sig==\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_a\",\"name\":\"a\",\"input\":{}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_b\",\"name\":\"b\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"y\\\":2}\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"x\\\":1}\"}}\n\n",
        "event: some_future_event\ndata: {\"type\":\"some_future_event\"}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":42}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );
    let assembled = assemble(&check_stream(None, raw.as_bytes()));
    assert_eq!(assembled.reasoning, "Let me think");
    assert_eq!(assembled.signatures, vec!["sig==".to_owned()]);
    assert_eq!(
        assembled.calls,
        vec![
            ("toolu_a".into(), "a".into(), r#"{"x":1}"#.into()),
            ("toolu_b".into(), "b".into(), r#"{"y":2}"#.into()),
        ]
    );
    assert_eq!(
        assembled.usage,
        Some(Usage {
            input_tokens: 115,
            output_tokens: 42,
            cached_input_tokens: Some(100),
            cache_creation_input_tokens: Some(5),
            reasoning_tokens: None,
        })
    );
}

#[test]
fn stream_decoder_reads_unnamed_events_and_refuses_malformed_json() {
    let mut decoder = StreamDecoder::default();
    let unnamed = sse::Event {
        name: None,
        data:
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}"#
                .into(),
    };
    assert_eq!(
        decoder.decode(&unnamed).unwrap(),
        vec![StreamEvent::TextDelta { text: "hi".into() }]
    );
    for (name, data) in [
        (Some("message_start"), "{"),
        (Some("content_block_delta"), r#"{"index":"x"}"#),
        (Some("error"), "not json"),
        (None, "nope"),
    ] {
        let event = sse::Event {
            name: name.map(str::to_owned),
            data: data.to_owned().into(),
        };
        let err = decoder
            .decode(&event)
            .expect_err("malformed event is refused");
        assert!(err.0.contains("invalid anthropic"), "{err}");
    }
    // Events that carry nothing are not even parsed.
    let ping = sse::Event {
        name: Some("ping".into()),
        data: "garbage".into(),
    };
    assert_eq!(decoder.decode(&ping).unwrap(), vec![]);
}

#[test]
fn stream_error_events_map_to_retryable_kinds() {
    for (error_type, status) in [
        ("overloaded_error", 529),
        ("rate_limit_error", 429),
        ("api_error", 500),
    ] {
        let raw = format!(
            "event: error\ndata: {{\"type\":\"error\",\"error\":{{\"type\":\"{error_type}\",\"message\":\"m\"}}}}\n\n"
        );
        let events = check_stream(None, raw.as_bytes());
        assert_eq!(
            events,
            vec![StreamEvent::Error {
                kind: ErrorKind::UpstreamStatus(status),
                message: "m".into()
            }]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// encode_request.

#[test]
fn encode_request_hoists_system_and_defaults_max_tokens() {
    let mut request = base_request(vec![text(Role::User, "Hi")]);
    request.system = vec![
        "Be brief.".into(),
        String::new(),
        "Answer in French.".into(),
    ];
    request.sampling.temperature = Some(0.5);
    request.sampling.top_k = Some(40);
    request.sampling.stop = vec!["END".into()];
    request.sampling.seed = Some(7);
    request.sampling.presence_penalty = Some(0.1);
    request.user = Some("user-1".into());
    let body = check_encode_request(Some("encode_request_basic"), &request, 4096);
    assert_eq!(body["system"], "Be brief.\n\nAnswer in French.");
    assert_eq!(body["max_tokens"], 4096);
    assert_eq!(body["stop_sequences"], json!(["END"]));
    assert_eq!(body["metadata"], json!({"user_id": "user-1"}));
    assert!(body.get("seed").is_none() && body.get("stream").is_none());

    request.system.clear();
    request.sampling.max_tokens = Some(100);
    request.stream = true;
    let body = check_encode_request(None, &request, 4096);
    assert!(body.get("system").is_none());
    assert_eq!(body["max_tokens"], 100);
    assert_eq!(body["stream"], true);
}

#[test]
fn encode_request_merges_turns_and_orders_blocks() {
    let request = base_request(vec![
        text(Role::User, "first"),
        text(Role::User, "second"),
        Message {
            role: Role::Assistant,
            parts: vec![
                Part::text("Checking."),
                call("toolu_1", "get_weather", r#"{"city":"Paris"}"#),
                signed("I should call the tool", "sig1"),
                Part::Reasoning(Reasoning {
                    text: String::new(),
                    signature: None,
                    redacted: Some("opaque".into()),
                    origin: Some(crate::neutral::ReasoningOrigin::Anthropic),
                }),
                // From another vendor: no signature, so Anthropic could not verify it.
                Part::Reasoning(Reasoning {
                    text: "unsigned".into(),
                    signature: None,
                    redacted: None,
                    origin: Some(crate::neutral::ReasoningOrigin::Anthropic),
                }),
                call("toolu_2", "get_weather", "not json"),
            ],
        },
        result("toolu_1", "18C", false),
        result("toolu_2", "bad arguments", true),
        text(Role::User, "thanks"),
        text(Role::User, "   "),
    ]);
    let body = check_encode_request(Some("encode_request_merged_turns"), &request, 1024);
    let roles: Vec<_> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert_eq!(
        body["messages"][0]["content"],
        json!([{"type":"text","text":"first"},{"type":"text","text":"second"}])
    );
    let assistant = &body["messages"][1]["content"];
    assert_eq!(
        assistant[0],
        json!({"type":"thinking","thinking":"I should call the tool","signature":"sig1"})
    );
    assert_eq!(
        assistant[1],
        json!({"type":"redacted_thinking","data":"opaque"})
    );
    assert_eq!(assistant[3]["input"], json!({"city":"Paris"}));
    assert_eq!(assistant[4]["input"], json!({}));
    assert_eq!(assistant.as_array().unwrap().len(), 5);
    assert_eq!(
        body["messages"][2]["content"],
        json!([
            {"type":"tool_result","tool_use_id":"toolu_1","content":"18C","is_error":false},
            {"type":"tool_result","tool_use_id":"toolu_2","content":"bad arguments","is_error":true},
            {"type":"text","text":"thanks"},
        ])
    );
}

#[test]
fn encode_request_declares_history_tools_when_none_are_offered() {
    // A follow-up turn that carries a tool round trip but offers no tools: Anthropic refuses
    // tool_use/tool_result blocks without tools, so the history's tools are declared, once
    // each, and tool_choice none keeps the model answering in text.
    let round_trip = vec![
        text(Role::User, "Weather?"),
        Message {
            role: Role::Assistant,
            parts: vec![
                call("toolu_1", "get_weather", r#"{"city":"Paris"}"#),
                call("toolu_2", "get_weather", r#"{"city":"Rome"}"#),
                call("toolu_3", "web.search", "{}"),
            ],
        },
        result("toolu_1", "18C", false),
        result("toolu_2", "21C", false),
        result("toolu_3", "nothing", false),
        text(Role::User, "Thanks, and tomorrow?"),
    ];
    let body = check_encode_request(None, &base_request(round_trip.clone()), 1024);
    assert_eq!(
        body["tools"],
        json!([{"name":"get_weather","input_schema":{"type":"object","properties":{}}}]),
        "a name Anthropic would refuse (web.search) is not declared"
    );
    assert_eq!(body["tool_choice"], json!({"type":"none"}));

    // Only names Anthropic refuses: an inert placeholder.
    let mut odd = round_trip.clone();
    odd.retain(|m| match m.parts.first() {
        Some(Part::ToolResult(r)) => r.call_id == "toolu_3",
        _ => true,
    });
    odd[1].parts.drain(..2);
    let body = check_encode_request(None, &base_request(odd), 1024);
    assert_eq!(body["tools"][0]["name"], "llmux_no_tools_offered");
    assert_eq!(body["tools"].as_array().map(Vec::len), Some(1));
    assert_eq!(body["tool_choice"], json!({"type":"none"}));

    // Offered tools are sent as they are; no history, no tools.
    let mut offered = base_request(round_trip);
    offered.tools = vec![weather_tool()];
    let body = check_encode_request(None, &offered, 1024);
    assert_eq!(body["tools"][0]["description"], "Weather for a city");
    assert!(body.get("tool_choice").is_none());
    let body = check_encode_request(None, &base_request(vec![text(Role::User, "hi")]), 1024);
    assert!(body.get("tools").is_none() && body.get("tool_choice").is_none());
}

#[test]
fn encode_request_drops_empty_text_and_empty_turns() {
    let request = base_request(vec![
        text(Role::User, "a"),
        text(Role::Assistant, ""),
        text(Role::User, "b"),
    ]);
    let body = check_encode_request(None, &request, 1024);
    assert_eq!(
        body["messages"],
        json!([{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}])
    );
}

#[test]
fn encode_request_tool_choice_variants() {
    let cases: [(Option<ToolChoice>, Option<bool>, Option<Value>); 7] = [
        (None, None, None),
        (Some(ToolChoice::Auto), None, Some(json!({"type":"auto"}))),
        (
            Some(ToolChoice::Required),
            None,
            Some(json!({"type":"any"})),
        ),
        (
            Some(ToolChoice::Named("get_weather".into())),
            None,
            Some(json!({"type":"tool","name":"get_weather"})),
        ),
        (
            Some(ToolChoice::None),
            Some(false),
            Some(json!({"type":"none"})),
        ),
        (
            None,
            Some(false),
            Some(json!({"type":"auto","disable_parallel_tool_use":true})),
        ),
        (
            Some(ToolChoice::Required),
            Some(false),
            Some(json!({"type":"any","disable_parallel_tool_use":true})),
        ),
    ];
    for (choice, parallel, expected) in cases {
        let mut request = base_request(vec![text(Role::User, "hi")]);
        request.tools = vec![weather_tool()];
        request.tool_choice = choice.clone();
        request.parallel_tool_calls = parallel;
        let body = check_encode_request(None, &request, 1024);
        assert_eq!(
            body.get("tool_choice"),
            expected.as_ref(),
            "{choice:?} {parallel:?}"
        );
        assert_eq!(
            body["tools"],
            json!([{"name":"get_weather","description":"Weather for a city",
                    "input_schema":{"type":"object","properties":{"city":{"type":"string"}}}}])
        );
    }
    // Without tools there is nothing to choose: Anthropic refuses a lone tool_choice.
    let mut request = base_request(vec![text(Role::User, "hi")]);
    request.tool_choice = Some(ToolChoice::Required);
    assert!(
        check_encode_request(None, &request, 1024)
            .get("tool_choice")
            .is_none()
    );
    // A tool without a schema gets the empty object schema.
    request.tools = vec![Tool {
        name: "ping".into(),
        description: None,
        parameters: None,
        strict: None,
    }];
    assert_eq!(
        check_encode_request(None, &request, 1024)["tools"],
        json!([{"name":"ping","input_schema":{"type":"object","properties":{}}}])
    );
}

#[test]
fn encode_request_images_from_both_sources() {
    let image = |source| {
        Part::Image(Image {
            source,
            detail: Some("high".into()),
        })
    };
    let request = base_request(vec![Message {
        role: Role::User,
        parts: vec![
            image(ImageSource::Base64 {
                media_type: "image/png".into(),
                data: "iVBORw0K".into(),
            }),
            image(ImageSource::Url("https://example.com/cat.jpg".into())),
            image(ImageSource::Url("data:image/jpeg;base64,/9j/4AAQ".into())),
            Part::text("What are these?"),
        ],
    }]);
    let body = check_encode_request(None, &request, 1024);
    assert_eq!(
        body["messages"][0]["content"],
        json!([
            {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0K"}},
            {"type":"image","source":{"type":"url","url":"https://example.com/cat.jpg"}},
            {"type":"image","source":{"type":"base64","media_type":"image/jpeg","data":"/9j/4AAQ"}},
            {"type":"text","text":"What are these?"},
        ])
    );
}

#[test]
fn encode_request_thinking_config() {
    let check = |reasoning: Option<ReasoningConfig>, max_tokens: Option<u32>| {
        let mut request = base_request(vec![text(Role::User, "hi")]);
        request.reasoning = reasoning;
        request.sampling.max_tokens = max_tokens;
        request.sampling.temperature = Some(0.2);
        request.sampling.top_p = Some(0.9);
        request.sampling.top_k = Some(5);
        check_encode_request(None, &request, 4096)
    };
    let effort = |effort: &str| {
        Some(ReasoningConfig {
            effort: Some(effort.into()),
            budget_tokens: None,
        })
    };
    let budget = |budget: u32| {
        Some(ReasoningConfig {
            effort: Some("low".into()),
            budget_tokens: Some(budget),
        })
    };

    let body = check(budget(2000), Some(8000));
    assert_eq!(
        body["thinking"],
        json!({"type":"enabled","budget_tokens":2000})
    );
    assert_eq!(body["max_tokens"], 8000);
    // Thinking allows neither a temperature other than 1, nor top_k, nor top_p below 0.95.
    assert!(body.get("temperature").is_none() && body.get("top_k").is_none());
    assert!(body.get("top_p").is_none());

    // max_tokens must exceed the budget.
    assert_eq!(check(budget(10_000), Some(8000))["max_tokens"], 14_096);
    assert_eq!(check(budget(10_000), None)["max_tokens"], 14_096);
    // Below Anthropic's minimum, raised; zero means off.
    assert_eq!(check(budget(100), None)["thinking"]["budget_tokens"], 1024);
    assert!(check(budget(0), None).get("thinking").is_none());

    for (name, tokens) in [("low", 1024), ("medium", 4096), ("high", 16384)] {
        assert_eq!(
            check(effort(name), None)["thinking"]["budget_tokens"],
            tokens
        );
    }
    let body = check(effort("minimal"), None);
    assert!(body.get("thinking").is_none());
    assert_eq!(body["temperature"], 0.2);
    assert_eq!(body["top_k"], 5);
    assert_eq!(body["max_tokens"], 4096);
}

#[test]
fn encode_request_drops_thinking_where_anthropic_refuses_it() {
    let thinking = |tool_choice: Option<ToolChoice>, assistant: Vec<Part>| {
        let mut request = base_request(vec![
            text(Role::User, "weather?"),
            Message {
                role: Role::Assistant,
                parts: assistant,
            },
            result("toolu_1", "18C", false),
        ]);
        request.tools = vec![weather_tool()];
        request.tool_choice = tool_choice;
        request.reasoning = Some(ReasoningConfig {
            effort: Some("high".into()),
            budget_tokens: None,
        });
        check_encode_request(None, &request, 4096)
            .get("thinking")
            .cloned()
    };
    let tool_call = || call("toolu_1", "get_weather", "{}");
    // Signed thinking before the calls: Anthropic accepts it.
    let signed_turn = vec![signed("need weather", "sig"), tool_call()];
    assert!(thinking(None, signed_turn.clone()).is_some());
    assert!(thinking(Some(ToolChoice::Auto), signed_turn.clone()).is_some());
    // A forced tool choice excludes thinking.
    assert!(thinking(Some(ToolChoice::Required), signed_turn.clone()).is_none());
    assert!(thinking(Some(ToolChoice::Named("get_weather".into())), signed_turn).is_none());
    // Calls written by an OpenAI-style client: no signed thinking to start the turn.
    assert!(thinking(None, vec![Part::text("Checking."), tool_call()]).is_none());
    // No calls in the last assistant turn: nothing to check.
    assert!(thinking(None, vec![Part::text("Hello")]).is_some());
}

#[test]
fn encode_request_response_format_becomes_a_system_instruction() {
    let mut request = base_request(vec![text(Role::User, "List two fruits")]);
    request.system = vec!["You are terse.".into()];
    request.response_format = Some(ResponseFormat::JsonObject);
    assert_eq!(
        check_encode_request(None, &request, 1024)["system"],
        "You are terse.\n\nRespond only with a JSON object."
    );
    request.system.clear();
    request.response_format = Some(ResponseFormat::JsonSchema {
        name: "fruits".into(),
        schema: json!({"type":"object","properties":{"fruits":{"type":"array"}}}),
        strict: Some(true),
    });
    assert_eq!(
        check_encode_request(None, &request, 1024)["system"],
        r#"Respond only with a JSON object matching this JSON schema: {"properties":{"fruits":{"type":"array"}},"type":"object"}"#
    );
    request.response_format = Some(ResponseFormat::Text);
    assert!(
        check_encode_request(None, &request, 1024)
            .get("system")
            .is_none()
    );
}

// ---------------------------------------------------------------------------------------------
// decode_request.

#[test]
fn decode_request_reads_every_block_kind() {
    let body = r#"{
        "model": "claude-sonnet-4-5", "max_tokens": 512, "stream": true,
        "system": [{"type":"text","text":"Be brief.","cache_control":{"type":"ephemeral"}},{"type":"text","text":"Use tools."}],
        "metadata": {"user_id": "u-42"},
        "temperature": 0.3, "top_p": 0.8, "top_k": 10, "stop_sequences": ["END"],
        "thinking": {"type":"enabled","budget_tokens":2048},
        "tool_choice": {"type":"tool","name":"get_weather","disable_parallel_tool_use":true},
        "tools": [{"type":"custom","name":"get_weather","input_schema":{"type":"object"}},{"name":"noop"}],
        "messages": [
            {"role":"user","content":[
                {"type":"text","text":"Look:"},
                {"type":"image","source":{"type":"base64","media_type":"image/png","data":"AAAA"}},
                {"type":"image","source":{"type":"url","url":"https://example.com/a.png"}}]},
            {"role":"assistant","content":[
                {"type":"thinking","thinking":"Need weather","signature":"sig"},
                {"type":"redacted_thinking","data":"opaque"},
                {"type":"text","text":"Let me check."},
                {"type":"tool_use","id":"toolu_1","name":"get_weather","input":{ "city" : "Paris", "days": [1, 2] }}]},
            {"role":"user","content":[
                {"type":"tool_result","tool_use_id":"toolu_1","content":[{"type":"text","text":"18C"},{"type":"text","text":"sunny"},{"type":"image","source":{"type":"url","url":"https://example.com/map.png"}}]},
                {"type":"tool_result","tool_use_id":"toolu_9","content":"failed","is_error":true},
                {"type":"tool_result","tool_use_id":"toolu_8"},
                {"type":"text","text":"Thanks"}]},
            {"role":"assistant","content":"You're welcome"}
        ]
    }"#;
    let request = check_decode_request(Some("decode_request_every_block"), body.as_bytes());
    assert_eq!(request.system, vec!["Be brief.", "Use tools."]);
    assert_eq!(request.user.as_deref(), Some("u-42"));
    assert!(request.stream);
    assert_eq!(
        request.tool_choice,
        Some(ToolChoice::Named("get_weather".into()))
    );
    assert_eq!(request.parallel_tool_calls, Some(false));
    assert_eq!(
        request.reasoning.as_ref().unwrap().budget_tokens,
        Some(2048)
    );
    assert_eq!(request.tools.len(), 2);
    let roles: Vec<Role> = request.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [
            Role::User,
            Role::Assistant,
            Role::Tool,
            Role::Tool,
            Role::Tool,
            Role::User,
            Role::Assistant
        ]
    );
    let Part::ToolCall(call) = &request.messages[1].parts[3] else {
        panic!("tool call expected");
    };
    assert_eq!(call.arguments, r#"{"city":"Paris","days":[1,2]}"#);
    let Part::ToolResult(first) = &request.messages[2].parts[0] else {
        panic!("tool result expected");
    };
    assert_eq!(first.content, "18C\nsunny");
    assert_eq!(first.name.as_deref(), Some("get_weather"));
    // The image from the tool result follows the results, before the user's own text.
    assert!(
        matches!(&request.messages[5].parts[..], [Part::Image(_), Part::Text { text }] if text == "Thanks")
    );
}

#[test]
fn decode_request_refuses_bad_bodies_naming_the_field() {
    let msgs = r#""messages":[{"role":"user","content":"hi"}]"#;
    check_invalid_request("{nope", "not valid JSON", None);
    check_invalid_request("[]", "not valid JSON", None);
    check_invalid_request(
        &format!(r#"{{"model":"m",{msgs}}}"#),
        "missing required field 'max_tokens'",
        Some("max_tokens"),
    );
    check_invalid_request(
        &format!(r#"{{"max_tokens":5,{msgs}}}"#),
        "missing required field 'model'",
        Some("model"),
    );
    check_invalid_request(
        r#"{"model":"m","max_tokens":5}"#,
        "missing required field 'messages'",
        Some("messages"),
    );
    check_invalid_request(
        r#"{"model":"m","max_tokens":5,"messages":[]}"#,
        "at least one message",
        Some("messages"),
    );
    check_invalid_request(
        &format!(r#"{{"model":7,"max_tokens":5,{msgs}}}"#),
        "invalid 'model'",
        Some("model"),
    );
    check_invalid_request(
        &format!(r#"{{"model":"m","max_tokens":"5",{msgs}}}"#),
        "invalid 'max_tokens'",
        Some("max_tokens"),
    );
    let with = |messages: &str| format!(r#"{{"model":"m","max_tokens":5,"messages":{messages}}}"#);
    check_invalid_request(
        &with(r#"[{"role":"tool","content":"x"}]"#),
        "invalid role 'tool'",
        Some("messages[0].role"),
    );
    check_invalid_request(
        &with(r#"[{"role":"user","content":5}]"#),
        "expected a string or an array",
        Some("messages[0].content"),
    );
    check_invalid_request(
        &with(
            r#"[{"role":"user","content":[{"type":"video","source":{"type":"text","media_type":"text/plain","data":"x"}}]}]"#,
        ),
        "content block type 'video' is not supported",
        Some("messages[0].content[0].type"),
    );
    check_invalid_request(
        &with(r#"[{"role":"user","content":[{"type":"text"}]}]"#),
        "missing required field 'messages[0].content[0].text'",
        None,
    );
    check_invalid_request(
        &with(r#"[{"role":"user","content":[{"type":"text","text":5}]}]"#),
        "invalid 'messages[0].content[0]'",
        None,
    );
    check_invalid_request(
        &with(r#"[{"role":"user","content":[{"text":"x"}]}]"#),
        "missing field `type`",
        None,
    );
    check_invalid_request(
        &with(r#"[{"role":"assistant","content":[{"type":"tool_result","tool_use_id":"t"}]}]"#),
        "only allowed in user messages",
        None,
    );
    check_invalid_request(
        &with(
            r#"[{"role":"user","content":[{"type":"tool_use","id":"t","name":"n","input":{}}]}]"#,
        ),
        "only allowed in assistant messages",
        None,
    );
    check_invalid_request(
        &with(
            r#"[{"role":"user","content":[{"type":"image","source":{"type":"file","file_id":"f"}}]}]"#,
        ),
        "image source type 'file' is not supported",
        None,
    );
    check_invalid_request(
        &with(
            r#"[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":[{"type":"document"}]}]}]"#,
        ),
        "tool_result content block type 'document' is not supported",
        None,
    );
    check_invalid_request(
        &format!(r#"{{"model":"m","max_tokens":5,{msgs},"tool_choice":{{"type":"tool"}}}}"#),
        "missing required field 'tool_choice.name'",
        None,
    );
    check_invalid_request(
        &format!(r#"{{"model":"m","max_tokens":5,{msgs},"thinking":{{"type":"enabled"}}}}"#),
        "missing required field 'thinking.budget_tokens'",
        None,
    );
    check_invalid_request(
        &format!(r#"{{"model":"m","max_tokens":5,{msgs},"system":[{{"type":"image"}}]}}"#),
        "system block type 'image' is not supported",
        None,
    );
}

#[test]
fn decode_request_tool_choice_variants() {
    let decode = |choice: &str| {
        let body = format!(
            r#"{{"model":"m","max_tokens":5,"messages":[{{"role":"user","content":"hi"}}],"tool_choice":{choice}}}"#
        );
        let request = check_decode_request(None, body.as_bytes());
        (request.tool_choice, request.parallel_tool_calls)
    };
    assert_eq!(decode(r#"{"type":"auto"}"#), (Some(ToolChoice::Auto), None));
    assert_eq!(
        decode(r#"{"type":"any"}"#),
        (Some(ToolChoice::Required), None)
    );
    assert_eq!(decode(r#"{"type":"none"}"#), (Some(ToolChoice::None), None));
    assert_eq!(
        decode(r#"{"type":"auto","disable_parallel_tool_use":true}"#),
        (Some(ToolChoice::Auto), Some(false))
    );
    assert_eq!(
        decode(r#"{"type":"any","disable_parallel_tool_use":false}"#),
        (Some(ToolChoice::Required), Some(true))
    );
}

// ---------------------------------------------------------------------------------------------
// Responses and errors.

#[test]
fn decode_response_maps_stop_reasons_and_reasoning() {
    for (stop_reason, finish) in [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
        ("tool_use", FinishReason::ToolCalls),
        ("refusal", FinishReason::ContentFilter),
        ("pause_turn", FinishReason::Paused),
        ("something_new", FinishReason::Stop),
    ] {
        let body = format!(
            r#"{{"id":"msg_1","type":"message","role":"assistant","model":"c","content":[],"stop_reason":"{stop_reason}","usage":{{"input_tokens":3,"cache_creation_input_tokens":20,"cache_read_input_tokens":100,"output_tokens":7}}}}"#
        );
        let response = decode_response(body.as_bytes()).unwrap();
        assert_eq!(response.finish, finish, "{stop_reason}");
        assert_eq!(
            response.usage,
            Some(Usage {
                input_tokens: 123,
                output_tokens: 7,
                cached_input_tokens: Some(100),
                cache_creation_input_tokens: Some(20),
                reasoning_tokens: None,
            })
        );
    }
    let body = br#"{"id":"msg_2","content":[
        {"type":"thinking","thinking":"hmm","signature":"s1"},
        {"type":"redacted_thinking","data":"opaque"},
        {"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}},
        {"type":"text","text":"done"}],"stop_reason":null}"#;
    let response = decode_response(body).unwrap();
    assert_eq!(
        response.parts,
        vec![
            signed("hmm", "s1"),
            Part::Reasoning(Reasoning {
                text: String::new(),
                signature: None,
                redacted: Some("opaque".into()),
                origin: Some(crate::neutral::ReasoningOrigin::Anthropic)
            }),
            Part::text("done"),
        ]
    );
    assert_eq!(response.usage, None);
    let err = decode_response(
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    )
    .unwrap_err();
    assert!(err.0.contains("overloaded_error"), "{err}");
    assert!(decode_response(b"not json").is_err());
    assert!(decode_response(br#"{"content":[{"type":"tool_use","name":"x"}]}"#).is_err());
}

#[test]
fn encode_response_renders_an_anthropic_message() {
    let response = Response {
        id: "msg_abc".into(),
        model: "gpt-4o".into(),
        parts: vec![
            signed("thinking…", "sig"),
            Part::text("Calling."),
            Part::text(""),
            call("call_1", "get_weather", r#"{"city": "Paris"}"#),
        ],
        finish: FinishReason::ToolCalls,
        usage: Some(Usage {
            input_tokens: 150,
            output_tokens: 20,
            cached_input_tokens: Some(100),
            cache_creation_input_tokens: Some(10),
            reasoning_tokens: Some(5),
        }),
    };
    let body = check_encode_response(Some("encode_response_tool_use"), &response, "my-alias");
    assert_eq!(body["model"], "my-alias");
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(body["stop_sequence"], Value::Null);
    assert_eq!(
        body["usage"],
        json!({"input_tokens":40,"cache_creation_input_tokens":10,"cache_read_input_tokens":100,"output_tokens":20})
    );
    assert_eq!(body["content"].as_array().unwrap().len(), 3);

    for (finish, stop_reason) in [
        (FinishReason::Stop, "end_turn"),
        (FinishReason::Length, "max_tokens"),
        (FinishReason::ContentFilter, "refusal"),
        (FinishReason::Paused, "pause_turn"),
        (FinishReason::ModelError, "end_turn"),
    ] {
        let response = Response {
            finish,
            ..Response::default()
        };
        let body = check_encode_response(None, &response, "m");
        assert_eq!(body["stop_reason"], stop_reason);
        // No id from the vendor: one is derived from the content, stable across calls.
        let id = body["id"].as_str().unwrap();
        assert!(id.starts_with("msg_") && id.len() == 28, "{id}");
        assert_eq!(check_encode_response(None, &response, "m")["id"], id);
    }
}

#[test]
fn decode_error_maps_statuses_and_types() {
    let overloaded = check_error(
        529,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_1"}"#,
    );
    assert_eq!(
        overloaded,
        VendorError {
            status: 503,
            kind: ErrorKind::UpstreamStatus(529),
            error_type: "overloaded_error".into(),
            message: "Overloaded".into(),
            retry_after_secs: None,
        }
    );
    assert!(overloaded.kind.is_retryable());

    let rate = check_error(
        429,
        r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
    );
    assert_eq!(
        (rate.status, rate.kind),
        (429, ErrorKind::UpstreamStatus(429))
    );
    assert_eq!(rate.error_type, "rate_limit_error");
    assert_eq!(rate.message, "slow down");

    for (status, error_type) in [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (529, "overloaded_error"),
    ] {
        let error = check_error(status, "<html>Request Entity Too Large</html>");
        assert_eq!(error.error_type, error_type, "{status}");
        assert!(
            error.message.contains(&status.to_string()),
            "{}",
            error.message
        );
    }
    assert_eq!(
        check_error(502, "upstream connect error").message,
        "upstream connect error"
    );
}

#[test]
fn encode_error_and_error_types() {
    let body: Value =
        serde_json::from_slice(&encode_error("overloaded_error", "try again")).unwrap();
    assert_eq!(
        body,
        json!({"type":"error","error":{"type":"overloaded_error","message":"try again"}})
    );
    assert_eq!(
        error_type(ErrorKind::UpstreamStatus(529)),
        "overloaded_error"
    );
    assert_eq!(
        error_type(ErrorKind::UpstreamStatus(429)),
        "rate_limit_error"
    );
    assert_eq!(
        error_type(ErrorKind::UpstreamStatus(422)),
        "invalid_request_error"
    );
    assert_eq!(
        error_type(ErrorKind::InvalidRequest),
        "invalid_request_error"
    );
    assert_eq!(error_type(ErrorKind::Internal), "api_error");
}

// ---------------------------------------------------------------------------------------------
// StreamEncoder.

fn text_then_tool_events() -> Vec<StreamEvent> {
    vec![
        StreamEvent::Start {
            id: "chatcmpl-1".into(),
            model: "gpt-4o".into(),
        },
        StreamEvent::TextDelta {
            text: "Let me ".into(),
        },
        StreamEvent::TextDelta {
            text: "check.".into(),
        },
        StreamEvent::ToolCallStart {
            index: 0,
            id: "call_1".into(),
            name: "get_weather".into(),
            signature: None,
        },
        StreamEvent::ToolCallDelta {
            index: 0,
            arguments: "{\"city\":".into(),
        },
        StreamEvent::ToolCallDelta {
            index: 0,
            arguments: "\"Paris\"}".into(),
        },
        StreamEvent::Finish {
            reason: FinishReason::ToolCalls,
        },
        // OpenAI reports usage after the finish reason.
        StreamEvent::Usage(Usage {
            input_tokens: 30,
            output_tokens: 12,
            ..Usage::default()
        }),
    ]
}

#[test]
fn stream_encoder_writes_anthropic_event_sequence() {
    let sse_text = check_encode_stream(&text_then_tool_events(), 30);
    insta::assert_snapshot!("stream_encoder_text_and_tool", sse_text);
    assert_eq!(
        event_names(&sse_text),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let data = event_data(&sse_text);
    assert_eq!(data[0]["message"]["model"], "my-alias");
    assert_eq!(data[0]["message"]["usage"]["input_tokens"], 30);
    assert_eq!(data[2]["index"], 0);
    assert_eq!(data[6]["index"], 1);
    assert_eq!(data[6]["content_block"]["type"], "tool_use");
    assert_eq!(data[7]["delta"]["type"], "input_json_delta");
    assert_eq!(data[10]["delta"]["stop_reason"], "tool_use");
    assert_eq!(data[10]["usage"]["output_tokens"], 12);
    assert!(sse_text.contains("data: {\"type\": \"ping\"}\n\n"));
    assert!(!sse_text.contains('\r'));

    // Decoding the encoder's output gives back the same answer.
    let round = assemble(&check_stream(None, sse_text.as_bytes()));
    let original = assemble(&text_then_tool_events());
    assert_eq!(round.text, original.text);
    assert_eq!(round.calls, original.calls);
    assert_eq!(round.finish, original.finish);
    assert_eq!(round.usage.map(|u| u.total()), Some(42));
}

#[test]
fn stream_encoder_blocks_never_overlap() {
    let sse_text = check_encode_stream(
        &[
            StreamEvent::ReasoningDelta {
                text: "step 1".into(),
                signature: None,
                origin: Some(crate::neutral::ReasoningOrigin::Anthropic),
            },
            StreamEvent::ReasoningDelta {
                text: String::new(),
                signature: Some("sig".into()),
                origin: Some(crate::neutral::ReasoningOrigin::Anthropic),
            },
            // After its signature, more thinking is a new block.
            StreamEvent::ReasoningDelta {
                text: "step 2".into(),
                signature: None,
                origin: Some(crate::neutral::ReasoningOrigin::Anthropic),
            },
            StreamEvent::TextDelta {
                text: "Answer".into(),
            },
            StreamEvent::ToolCallStart {
                index: 0,
                id: "call_a".into(),
                name: "a".into(),
                signature: None,
            },
            StreamEvent::ToolCallStart {
                index: 1,
                id: String::new(),
                name: "b".into(),
                signature: None,
            },
            // Call 0's block is closed: dropped.
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: "{}".into(),
            },
            StreamEvent::ToolCallDelta {
                index: 1,
                arguments: "{\"x\":1}".into(),
            },
            StreamEvent::TextDelta {
                text: "More".into(),
            },
        ],
        5,
    );
    let data = event_data(&sse_text);
    let mut open: Option<u64> = None;
    let mut next = 0;
    for event in &data {
        match event["type"].as_str().unwrap() {
            "content_block_start" => {
                assert_eq!(open, None, "a block opened before the previous closed");
                assert_eq!(event["index"], next);
                open = Some(next);
                next += 1;
            }
            "content_block_delta" => assert_eq!(event["index"].as_u64(), open),
            "content_block_stop" => {
                assert_eq!(event["index"].as_u64(), open);
                open = None;
            }
            _ => {}
        }
    }
    assert_eq!((open, next), (None, 6));
    let assembled = assemble(&check_stream(None, sse_text.as_bytes()));
    assert_eq!(assembled.reasoning, "step 1step 2");
    assert_eq!(assembled.signatures, ["sig"]);
    assert_eq!(assembled.text, "AnswerMore");
    assert_eq!(
        assembled.calls[0],
        ("call_a".into(), "a".into(), String::new())
    );
    assert!(assembled.calls[1].0.starts_with("toolu_"));
    assert_eq!(assembled.calls[1].2, "{\"x\":1}");
    // No Finish: end_turn.
    assert_eq!(assembled.finish, Some(FinishReason::Stop));
}

#[test]
fn stream_encoder_errors_and_idempotent_finish() {
    // An error before anything: the error event alone, as Anthropic sends it.
    let error = StreamEvent::Error {
        kind: ErrorKind::UpstreamStatus(529),
        message: "Overloaded".into(),
    };
    let sse_text = check_encode_stream(std::slice::from_ref(&error), 0);
    assert_eq!(event_names(&sse_text), ["error"]);
    assert_eq!(check_stream(None, sse_text.as_bytes()), vec![error.clone()]);

    // Mid-stream: the open block is closed, then the error; nothing after it.
    let sse_text = check_encode_stream(
        &[
            StreamEvent::TextDelta { text: "Hi".into() },
            StreamEvent::Error {
                kind: ErrorKind::UpstreamStatus(429),
                message: "slow".into(),
            },
            StreamEvent::TextDelta {
                text: "ignored".into(),
            },
        ],
        0,
    );
    assert_eq!(
        event_names(&sse_text),
        [
            "message_start",
            "ping",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "error"
        ]
    );
    assert_eq!(
        event_data(&sse_text)[5]["error"]["type"],
        "rate_limit_error"
    );

    // `fail` is the same as an Error event, and ends the stream.
    let mut encoder = StreamEncoder::new("msg_1".into(), "m".into(), 1);
    let mut out = BytesMut::new();
    encoder.encode(&StreamEvent::TextDelta { text: "Hi".into() }, &mut out);
    encoder.fail(ErrorKind::UpstreamTimeout, "upstream timed out", &mut out);
    encoder.finish(&mut out);
    let sse_text = String::from_utf8(out.to_vec()).unwrap();
    assert_eq!(event_names(&sse_text).last().unwrap(), "error");
    assert_eq!(
        event_data(&sse_text).last().unwrap()["error"],
        json!({"type": "timeout_error", "message": "upstream timed out"})
    );

    // finish twice writes once; content after Finish is ignored.
    let mut encoder = StreamEncoder::new("msg_1".into(), "m".into(), 1);
    let mut out = BytesMut::new();
    encoder.encode(
        &StreamEvent::Finish {
            reason: FinishReason::Length,
        },
        &mut out,
    );
    encoder.encode(
        &StreamEvent::TextDelta {
            text: "late".into(),
        },
        &mut out,
    );
    encoder.finish(&mut out);
    let len = out.len();
    encoder.finish(&mut out);
    encoder.encode(
        &StreamEvent::TextDelta {
            text: "later".into(),
        },
        &mut out,
    );
    assert_eq!(out.len(), len);
    let sse_text = String::from_utf8(out.to_vec()).unwrap();
    assert_eq!(
        event_names(&sse_text),
        ["message_start", "ping", "message_delta", "message_stop"]
    );
    assert_eq!(
        event_data(&sse_text)[2]["delta"]["stop_reason"],
        "max_tokens"
    );
}

// ---------------------------------------------------------------------------------------------
// Property tests.

/// A conversation item as Anthropic sees it, for comparing conversations modulo the changes
/// the codec makes on purpose (merged turns, results and thinking first, dropped empties).
#[derive(Debug, Clone, PartialEq)]
enum Item {
    Text(String),
    Image(ImageSource),
    Call(String, String, Value),
    Result(String, String, bool),
    Thinking(String, String),
    Redacted(String),
}

/// Neutral messages → Anthropic-shaped turns: (is_assistant, items).
fn normalize(messages: &[Message]) -> Vec<(bool, Vec<Item>)> {
    let mut turns: Vec<(bool, Vec<Item>, Vec<Item>)> = Vec::new();
    for message in messages {
        let assistant = message.role == Role::Assistant;
        let (mut lead, mut rest) = (Vec::new(), Vec::new());
        for part in &message.parts {
            match part {
                Part::Text { text } if !text.trim().is_empty() => {
                    rest.push(Item::Text(text.clone()))
                }
                Part::Image(image) => rest.push(Item::Image(match &image.source {
                    ImageSource::Url(url) => ImageSource::from_url(url),
                    other => other.clone(),
                })),
                Part::ToolCall(call) if assistant => {
                    let args = serde_json::from_str::<Value>(&call.arguments)
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!({}));
                    rest.push(Item::Call(call.id.clone(), call.name.clone(), args));
                }
                Part::ToolResult(r) if !assistant => {
                    lead.push(Item::Result(
                        r.call_id.clone(),
                        r.content.clone(),
                        r.is_error,
                    ));
                }
                Part::Reasoning(r) if assistant => match (&r.redacted, &r.signature) {
                    (Some(data), _) => lead.push(Item::Redacted(data.clone())),
                    (None, Some(sig)) if !sig.is_empty() => {
                        lead.push(Item::Thinking(r.text.clone(), sig.clone()));
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        if lead.is_empty() && rest.is_empty() {
            continue;
        }
        match turns.last_mut() {
            Some(turn) if turn.0 == assistant => {
                turn.1.append(&mut lead);
                turn.2.append(&mut rest);
            }
            _ => turns.push((assistant, lead, rest)),
        }
    }
    turns
        .into_iter()
        .map(|(assistant, mut lead, mut rest)| {
            lead.append(&mut rest);
            (assistant, lead)
        })
        .collect()
}

fn arb_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 .,!?\n\"\\\\]{0,16}",
        "\\PC{0,8}",
        Just("  ".to_owned())
    ]
}

fn arb_arguments() -> impl Strategy<Value = String> {
    let value = prop_oneof![
        any::<i32>().prop_map(Value::from),
        "[a-z \"]{0,6}".prop_map(Value::from),
        any::<bool>().prop_map(Value::from),
        Just(json!([1, {"k": null}])),
    ];
    prop_oneof![
        4 => prop::collection::btree_map("[a-z_]{1,6}", value, 0..4)
            .prop_map(|map| serde_json::to_string(&map).unwrap()),
        1 => Just(String::new()),
        1 => Just("{\"broken\":".to_owned()),
        1 => Just("[1,2]".to_owned()),
    ]
}

fn arb_id() -> impl Strategy<Value = String> {
    "(toolu|call)_[a-zA-Z0-9]{1,10}"
}

fn arb_image() -> impl Strategy<Value = Part> {
    prop_oneof![
        "[a-z]{1,8}".prop_map(|p| ImageSource::Url(format!("https://example.com/{p}.png"))),
        "[A-Za-z0-9+/]{4,12}".prop_map(|data| ImageSource::Base64 {
            media_type: "image/png".into(),
            data
        }),
    ]
    .prop_map(|source| {
        Part::Image(Image {
            source,
            detail: None,
        })
    })
}

fn arb_reasoning() -> impl Strategy<Value = Part> {
    prop_oneof![
        (arb_text(), "[A-Za-z0-9+/=]{1,12}").prop_map(|(text, sig)| signed(&text, &sig)),
        "[A-Za-z0-9+/=]{1,12}".prop_map(|data| Part::Reasoning(Reasoning {
            text: String::new(),
            signature: None,
            redacted: Some(data),
            origin: Some(crate::neutral::ReasoningOrigin::Anthropic)
        })),
        arb_text().prop_map(|text| Part::Reasoning(Reasoning {
            text,
            signature: None,
            redacted: None,
            origin: Some(crate::neutral::ReasoningOrigin::Anthropic)
        })),
    ]
}

fn arb_call() -> impl Strategy<Value = Part> {
    (arb_id(), "[a-z_]{1,10}", arb_arguments()).prop_map(|(id, name, args)| call(&id, &name, &args))
}

fn arb_message() -> impl Strategy<Value = Message> {
    let user = prop::collection::vec(
        prop_oneof![3 => arb_text().prop_map(Part::text), 1 => arb_image()],
        1..4,
    )
    .prop_map(|parts| Message {
        role: Role::User,
        parts,
    });
    let assistant = prop::collection::vec(
        prop_oneof![3 => arb_text().prop_map(Part::text), 2 => arb_call(), 1 => arb_reasoning()],
        1..4,
    )
    .prop_map(|parts| Message {
        role: Role::Assistant,
        parts,
    });
    let tool = (arb_id(), arb_text(), any::<bool>())
        .prop_map(|(id, content, is_error)| result(&id, &content, is_error));
    prop_oneof![user, assistant, tool]
}

fn arb_usage() -> impl Strategy<Value = Usage> {
    (0u64..10_000, 0u64..1000, 0u64..1000, 0u64..5000).prop_map(
        |(uncached, write, read, output)| Usage {
            input_tokens: uncached + write + read,
            output_tokens: output,
            cached_input_tokens: Some(read),
            cache_creation_input_tokens: Some(write),
            reasoning_tokens: None,
        },
    )
}

fn arb_finish() -> impl Strategy<Value = FinishReason> {
    prop_oneof![
        Just(FinishReason::Stop),
        Just(FinishReason::Length),
        Just(FinishReason::ToolCalls),
        Just(FinishReason::ContentFilter),
        Just(FinishReason::Paused),
    ]
}

/// Stream content: text, signed reasoning, or a tool call with its argument pieces.
#[derive(Debug, Clone)]
enum Chunk {
    Text(String),
    Thinking(String, String),
    Call(String, String, Vec<String>),
}

fn arb_chunk() -> impl Strategy<Value = Chunk> {
    prop_oneof![
        arb_text().prop_map(Chunk::Text),
        (arb_text(), "[a-z0-9]{1,6}").prop_map(|(t, s)| Chunk::Thinking(t, s)),
        (
            arb_id(),
            "[a-z_]{1,8}",
            prop::collection::vec("[a-z{}\":,0-9]{0,5}", 0..4)
        )
            .prop_map(|(id, name, pieces)| Chunk::Call(id, name, pieces)),
    ]
}

/// Always-available fixtures and JSON-ish noise for the "never panics" tests.
fn arb_noise() -> impl Strategy<Value = Vec<u8>> {
    let fixtures: Vec<&'static [u8]> = vec![
        MESSAGE_TEXT,
        MESSAGE_TOOL_USE,
        REQUEST_TOOL_USE,
        STREAM_TEXT,
        STREAM_TOOL_USE,
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..256),
        "[\\[\\]{}\":,a-z0-9_ .-]{0,120}".prop_map(String::into_bytes),
        (
            prop::sample::select(fixtures),
            any::<prop::sample::Index>(),
            any::<u8>()
        )
            .prop_map(|(fixture, at, byte)| {
                let mut bytes = fixture.to_vec();
                let at = at.index(bytes.len());
                bytes[at] = byte;
                bytes
            }),
        (
            prop::sample::select(vec![MESSAGE_TOOL_USE, REQUEST_TOOL_USE]),
            any::<prop::sample::Index>()
        )
            .prop_map(|(fixture, at)| fixture[..at.index(fixture.len())].to_vec()),
    ]
}

proptest! {
    #[test]
    fn request_round_trip_keeps_the_conversation(
        system in prop::collection::vec(arb_text(), 0..3),
        messages in prop::collection::vec(arb_message(), 0..8),
        stop in prop::collection::vec("[a-z#]{1,4}", 0..2),
        max_tokens in prop::option::of(1u32..100_000),
    ) {
        let mut all = vec![text(Role::User, "start")];
        all.extend(messages);
        let mut request = base_request(all);
        request.system = system;
        request.sampling.stop = stop;
        request.sampling.max_tokens = max_tokens;
        request.tools = vec![weather_tool()];

        let body = encode_request(&request, 2048);
        let decoded = decode_request(&body).map_err(|e| TestCaseError::fail(e.message))?;

        prop_assert_eq!(normalize(&decoded.messages), normalize(&request.messages));
        let system: Vec<&str> = request.system.iter().map(String::as_str).filter(|s| !s.trim().is_empty()).collect();
        prop_assert_eq!(decoded.system.join("\n\n"), system.join("\n\n"));
        prop_assert_eq!(&decoded.sampling.stop, &request.sampling.stop);
        prop_assert_eq!(decoded.sampling.max_tokens, Some(max_tokens.unwrap_or(2048)));
        prop_assert_eq!(&decoded.model, &request.model);
        prop_assert_eq!(decoded.tools.len(), 1);
        // Encoding is a fixpoint after one round.
        prop_assert_eq!(encode_request(&decoded, 2048), body);
    }

    #[test]
    fn response_round_trip_is_exact_for_anthropic_shaped_answers(
        id in "msg_[a-zA-Z0-9]{1,20}",
        parts in prop::collection::vec(
            prop_oneof![arb_text().prop_map(Part::text), arb_call(), arb_reasoning()],
            0..5,
        ),
        finish in arb_finish(),
        usage in arb_usage(),
    ) {
        let response = Response { id, model: "upstream".into(), parts, finish, usage: Some(usage) };
        let decoded = decode_response(&encode_response(&response, "alias"))
            .map_err(|e| TestCaseError::fail(e.0))?;
        let expected_parts: Vec<Part> = response
            .parts
            .iter()
            .filter_map(|part| match part {
                Part::Text { text } if text.is_empty() => None,
                Part::ToolCall(call) => {
                    let args = serde_json::from_str::<Value>(&call.arguments)
                        .ok()
                        .filter(Value::is_object)
                        .map_or_else(|| "{}".to_owned(), |v| serde_json::to_string(&v).unwrap());
                    Some(Part::ToolCall(ToolCall { arguments: args, ..call.clone() }))
                }
                Part::Reasoning(r) if r.redacted.is_some() => Some(Part::Reasoning(Reasoning { text: String::new(), ..r.clone() })),
                other => Some(other.clone()),
            })
            .collect();
        // Compare arguments as JSON values: member order is the generator's, not sorted.
        let canonical = |parts: &[Part]| -> Vec<Part> {
            parts.iter().map(|p| match p {
                Part::ToolCall(c) => Part::ToolCall(ToolCall {
                    arguments: serde_json::from_str::<Value>(&c.arguments).unwrap().to_string(),
                    ..c.clone()
                }),
                other => other.clone(),
            }).collect()
        };
        prop_assert_eq!(canonical(&decoded.parts), canonical(&expected_parts));
        prop_assert_eq!(&decoded.id, &response.id);
        prop_assert_eq!(decoded.model, "alias");
        prop_assert_eq!(decoded.finish, response.finish);
        prop_assert_eq!(decoded.usage, response.usage);
    }

    #[test]
    fn stream_round_trip_keeps_the_answer(
        chunks in prop::collection::vec(arb_chunk(), 0..8),
        finish in arb_finish(),
        usage in arb_usage(),
    ) {
        let mut events = vec![StreamEvent::Start { id: "x".into(), model: "y".into() }];
        let mut tools = 0;
        for chunk in &chunks {
            match chunk {
                Chunk::Text(text) => events.push(StreamEvent::TextDelta { text: text.clone() }),
                Chunk::Thinking(text, sig) => {
                    events.push(StreamEvent::ReasoningDelta { text: text.clone(), signature: None, origin: Some(crate::neutral::ReasoningOrigin::Anthropic) });
                    events.push(StreamEvent::ReasoningDelta { text: String::new(), signature: Some(sig.clone()), origin: Some(crate::neutral::ReasoningOrigin::Anthropic) });
                }
                Chunk::Call(id, name, pieces) => {
                    events.push(StreamEvent::ToolCallStart { index: tools, id: id.clone(), name: name.clone(), signature: None });
                    for piece in pieces {
                        events.push(StreamEvent::ToolCallDelta { index: tools, arguments: piece.clone() });
                    }
                    tools += 1;
                }
            }
        }
        events.push(StreamEvent::Usage(usage));
        events.push(StreamEvent::Finish { reason: finish });
        let sse_text = check_encode_stream(&events, usage.input_tokens);
        let decoded = assemble(&check_stream(None, sse_text.as_bytes()));
        let expected = assemble(&events);
        prop_assert_eq!(decoded, expected);
    }

    #[test]
    fn decoders_never_panic(bytes in arb_noise()) {
        let _ = decode_response(&bytes);
        let _ = decode_request(&bytes);
        let _ = decode_error(500, &bytes);
        let mut decoder = StreamDecoder::default();
        for name in [None, Some("message_start"), Some("content_block_start"), Some("content_block_delta"), Some("message_delta"), Some("error")] {
            let event = sse::Event { name: name.map(str::to_owned), data: bytes.clone().into() };
            let _ = decoder.decode(&event);
        }
        for event in sse_events(&bytes) {
            let _ = decoder.decode(&event);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Agent CLIs: real Claude Code request bodies (fixtures/clients), decoded and re-encoded for
// every vendor behind the neutral model.

const CLAUDE_CODE: [(&str, &[u8]); 3] = [
    (
        "messages_plain",
        include_bytes!(
            "../../../../fixtures/clients/claude-code-2.1.x/messages_plain.request.json"
        ),
    ),
    (
        "messages_tool_turn1",
        include_bytes!(
            "../../../../fixtures/clients/claude-code-2.1.x/messages_tool_turn1.request.json"
        ),
    ),
    (
        "messages_tool_turn2",
        include_bytes!(
            "../../../../fixtures/clients/claude-code-2.1.x/messages_tool_turn2.request.json"
        ),
    ),
];

/// Decodes a client body and encodes it for OpenAI Chat, Anthropic and Gemini; returns the
/// neutral request and the three bodies as JSON.
#[track_caller]
fn check_every_egress(name: &str, body: &[u8]) -> (Request, [Value; 3]) {
    let request = decode_request(body).unwrap_or_else(|e| panic!("{name} decodes: {e:?}"));
    let chat = crate::openai_chat::encode_neutral_request(&request);
    let anthropic = encode_request(&request, 4096);
    let gemini = crate::gemini::encode_request(&request)
        .unwrap_or_else(|e| panic!("{name} encodes for Gemini: {e}"));
    let parse = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).expect("valid JSON");
    let bodies = [parse(&chat), parse(&anthropic), parse(&gemini)];
    (request, bodies)
}

#[test]
fn claude_code_requests_reach_every_vendor() {
    for (name, body) in CLAUDE_CODE {
        let (request, [chat, anthropic, gemini]) = check_every_egress(name, body);
        // adaptive thinking + output_config.effort "medium".
        assert_eq!(
            request.reasoning,
            Some(ReasoningConfig {
                effort: Some("medium".into()),
                budget_tokens: None,
            }),
            "{name}"
        );
        assert!(!request.omit_reasoning, "{name}: display is 'updates'");
        assert_eq!(chat["reasoning_effort"], "medium", "{name}");
        assert_eq!(
            gemini["generationConfig"]["thinkingConfig"]["thinkingBudget"], 8192,
            "{name}"
        );
        assert_eq!(anthropic["thinking"]["budget_tokens"], 4096, "{name}");
        // metadata.user_id → user.
        assert!(
            request
                .user
                .as_deref()
                .is_some_and(|u| u.contains("device_id"))
        );
        assert!(chat["user"].is_string(), "{name}");
        assert_eq!(request.sampling.max_tokens, Some(128_000));
        assert_eq!(
            request.tools.len(),
            12,
            "{name}: every custom tool is offered"
        );
        assert!(request.dropped_tools.is_empty());
        // The `system` message inside `messages` joins the system instructions.
        assert!(
            request
                .system
                .iter()
                .any(|s| s.starts_with("# Environment")),
            "{name}"
        );
        assert!(request.messages.iter().all(|m| !m.parts.is_empty()));
    }
}

#[test]
fn claude_code_tool_turn_keeps_thinking_with_keep_all() {
    let (request, [chat, _, gemini]) = check_every_egress("turn2", CLAUDE_CODE[2].1);
    // `clear_thinking_20251015` with `keep: "all"` clears nothing.
    let assistant = request
        .messages
        .iter()
        .find(|m| m.role == Role::Assistant)
        .expect("assistant turn");
    assert!(matches!(assistant.parts[0], Part::Reasoning(_)));
    assert!(matches!(&assistant.parts[1], Part::ToolCall(c) if c.name == "Read"));
    let last = request.messages.last().expect("messages");
    assert!(matches!(&last.parts[0], Part::ToolResult(r) if r.content.contains("hello")));
    // system, user, assistant (thinking is not sent to OpenAI), tool.
    assert_eq!(chat["messages"].as_array().map(Vec::len), Some(4));
    assert!(gemini["contents"].is_array());
}

fn claude_body(extra: Value) -> Vec<u8> {
    let mut body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "messages": [
            {"role": "user", "content": "read a.txt"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "first", "signature": "s1"},
                {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "a.txt"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "A".repeat(64)}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "second", "signature": "s2"},
                {"type": "tool_use", "id": "toolu_2", "name": "Grep", "input": {"q": "x"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": "B"}
            ]}
        ]
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    body.to_string().into_bytes()
}

fn reasoning_texts(request: &Request) -> Vec<&str> {
    request
        .messages
        .iter()
        .flat_map(|m| &m.parts)
        .filter_map(|p| match p {
            Part::Reasoning(r) => Some(r.text.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn thinking_variants_map_to_neutral_reasoning() {
    let decode = |extra: Value| check_decode_request(None, &claude_body(extra));
    let config = |effort: Option<&str>, budget: Option<u32>| {
        Some(ReasoningConfig {
            effort: effort.map(str::to_owned),
            budget_tokens: budget,
        })
    };
    let adaptive = decode(json!({"thinking": {"type": "adaptive", "display": "omitted"}}));
    assert_eq!(adaptive.reasoning, config(None, None));
    assert!(adaptive.omit_reasoning);
    let max = decode(json!({
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "max"}
    }));
    assert_eq!(max.reasoning, config(Some("high"), None));
    assert!(!max.omit_reasoning);
    let enabled = decode(json!({"thinking": {"type": "enabled", "budget_tokens": 10000}}));
    assert_eq!(enabled.reasoning, config(Some("medium"), Some(10000)));
    let low = decode(json!({
        "thinking": {"type": "enabled", "budget_tokens": 10000},
        "output_config": {"effort": "low"}
    }));
    assert_eq!(low.reasoning, config(Some("low"), Some(10000)));
    let disabled = decode(json!({
        "thinking": {"type": "disabled"},
        "output_config": {"effort": "high"}
    }));
    assert_eq!(disabled.reasoning, None);
    check_invalid_request(
        std::str::from_utf8(&claude_body(json!({"thinking": {"type": "sometimes"}})))
            .expect("utf-8"),
        "thinking type 'sometimes' is not supported",
        Some("thinking.type"),
    );
}

#[test]
fn context_management_edits_are_applied() {
    let decode = |edits: Value| {
        check_decode_request(
            None,
            &claude_body(json!({"context_management": {"edits": edits}})),
        )
    };
    let all = decode(json!([{"type": "clear_thinking_20251015", "keep": "all"}]));
    assert_eq!(reasoning_texts(&all), ["first", "second"]);
    let default = decode(json!([{"type": "clear_thinking_20251015"}]));
    assert_eq!(reasoning_texts(&default), ["second"]);
    let none = decode(json!([
        {"type": "clear_thinking_20251015", "keep": {"type": "thinking_turns", "value": 0}}
    ]));
    assert!(reasoning_texts(&none).is_empty());
    // Tool-use clearing: past the trigger, all but the last `keep` results become a
    // placeholder (and with clear_tool_inputs, their arguments `{}`).
    let cleared = decode(json!([{
        "type": "clear_tool_uses_20250919",
        "trigger": {"type": "input_tokens", "value": 1},
        "keep": {"type": "tool_uses", "value": 1},
        "clear_tool_inputs": true
    }]));
    let parts: Vec<&Part> = cleared.messages.iter().flat_map(|m| &m.parts).collect();
    assert!(parts.iter().any(
        |p| matches!(p, Part::ToolResult(r) if r.call_id == "toolu_1" && r.content.contains("cleared"))
    ));
    assert!(
        parts
            .iter()
            .any(|p| matches!(p, Part::ToolCall(c) if c.id == "toolu_1" && c.arguments == "{}"))
    );
    assert!(
        parts.iter().any(
            |p| matches!(p, Part::ToolResult(r) if r.call_id == "toolu_2" && r.content == "B")
        )
    );
    // Under the trigger (default 100 000 tokens) nothing is cleared; unknown edits are ignored.
    let kept = decode(json!([{"type": "clear_tool_uses_20250919"}, {"type": "future_edit"}]));
    assert!(kept.messages.iter().flat_map(|m| &m.parts).any(
        |p| matches!(p, Part::ToolResult(r) if r.call_id == "toolu_1" && r.content.starts_with('A'))
    ));
}

#[test]
fn server_tools_are_dropped_and_custom_tools_kept() {
    let request = check_decode_request(
        None,
        &claude_body(json!({"tools": [
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
            {"type": "custom", "name": "Read", "input_schema": {"type": "object"}},
            {"name": "Grep", "description": "search", "input_schema": {"type": "object"},
             "cache_control": {"type": "ephemeral"}, "defer_loading": true},
            {"type": "bash_20250124", "name": "bash"}
        ]})),
    );
    let names: Vec<&str> = request.tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["Read", "Grep"]);
    assert_eq!(
        request.dropped_tools,
        ["web_search_20250305", "bash_20250124"]
    );
}

#[test]
fn omitted_display_leaves_only_signed_thinking_without_text() {
    let events = [
        StreamEvent::Start {
            id: "msg_1".into(),
            model: "m".into(),
        },
        StreamEvent::ReasoningDelta {
            text: "secret thoughts".into(),
            signature: None,
            origin: Some(crate::neutral::ReasoningOrigin::Anthropic),
        },
        StreamEvent::ReasoningDelta {
            text: String::new(),
            signature: Some("sig".into()),
            origin: Some(crate::neutral::ReasoningOrigin::Anthropic),
        },
        StreamEvent::TextDelta {
            text: "answer".into(),
        },
        StreamEvent::Finish {
            reason: FinishReason::Stop,
        },
    ];
    let mut encoder = StreamEncoder::new("msg_1".into(), "m".into(), 3).omit_reasoning(true);
    let mut out = BytesMut::new();
    for event in &events {
        encoder.encode(event, &mut out);
    }
    encoder.finish(&mut out);
    let text = String::from_utf8(out.to_vec()).expect("utf-8");
    assert!(!text.contains("secret"), "{text}");
    assert!(text.contains("signature_delta") && text.contains("answer"));

    let mut response = Response {
        parts: vec![
            Part::Reasoning(Reasoning {
                text: "unsigned".into(),
                signature: None,
                redacted: None,
                origin: Some(crate::neutral::ReasoningOrigin::Anthropic),
            }),
            signed("signed thoughts", "sig"),
            Part::text("answer"),
        ],
        ..Response::default()
    };
    response.omit_reasoning_text();
    let body: Value = serde_json::from_slice(&encode_response(&response, "m")).expect("valid JSON");
    assert_eq!(
        body["content"],
        json!([
            {"type": "thinking", "thinking": "", "signature": "sig"},
            {"type": "text", "text": "answer"}
        ])
    );
}

#[test]
fn documents_decode_and_encode_as_document_blocks() {
    let request = check_decode_request(
        None,
        br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[
            {"type":"document","title":"t.pdf","source":{"type":"base64","media_type":"application/pdf","data":"JVBE"}},
            {"type":"document","source":{"type":"url","url":"https://x/a.pdf"}},
            {"type":"document","source":{"type":"text","media_type":"text/plain","data":"plain words"}}]}]}"#,
    );
    let parts = &request.messages[0].parts;
    assert!(matches!(&parts[0], Part::File(f) if f.media_type() == Some("application/pdf")));
    assert_eq!(parts[2], Part::text("plain words"));
    let out = check_encode_request(None, &request, 100);
    let content = &out["messages"][0]["content"];
    assert_eq!(
        content[0],
        json!({"type": "document", "title": "t.pdf",
               "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"}})
    );
    assert_eq!(
        content[1],
        json!({"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}})
    );
}

/// Each opaque reasoning token goes back to the vendor kind that issued it only.
#[test]
fn only_anthropic_reasoning_goes_to_anthropic() {
    use crate::neutral::ReasoningOrigin;
    let reasoning = |origin, signature: &str, redacted: Option<&str>| {
        Part::Reasoning(Reasoning {
            text: "thought".into(),
            signature: (!signature.is_empty()).then(|| signature.to_owned()),
            redacted: redacted.map(str::to_owned),
            origin,
        })
    };
    let request = Request {
        model: "claude".into(),
        messages: vec![
            Message {
                role: Role::User,
                parts: vec![Part::text("hi")],
            },
            Message {
                role: Role::Assistant,
                parts: vec![
                    reasoning(Some(ReasoningOrigin::Anthropic), "sig-a", None),
                    reasoning(Some(ReasoningOrigin::Anthropic), "", Some("red-a")),
                    reasoning(Some(ReasoningOrigin::Gemini), "sig-g", None),
                    reasoning(Some(ReasoningOrigin::OpenAi), "", Some("gAAAA")),
                    reasoning(None, "sig-unknown", None),
                    Part::text("answer"),
                ],
            },
            Message {
                role: Role::User,
                parts: vec![Part::text("more")],
            },
        ],
        ..Request::default()
    };
    let body = check_encode_request(None, &request, 1024);
    assert_eq!(
        body["messages"][1]["content"],
        json!([
            {"type": "thinking", "thinking": "thought", "signature": "sig-a"},
            {"type": "redacted_thinking", "data": "red-a"},
            {"type": "text", "text": "answer"}
        ])
    );
}

/// Another vendor's token reaches an Anthropic client tagged with its origin and comes back
/// with it; Anthropic's own stays exactly as Anthropic issued it.
#[test]
fn foreign_tokens_are_tagged_for_anthropic_clients_and_read_back() {
    use crate::neutral::ReasoningOrigin;
    let response = Response {
        parts: vec![
            Part::Reasoning(Reasoning {
                text: "g".into(),
                signature: Some("gemini-sig".into()),
                redacted: None,
                origin: Some(ReasoningOrigin::Gemini),
            }),
            Part::Reasoning(Reasoning {
                text: "a".into(),
                signature: Some("anthropic-sig".into()),
                redacted: None,
                origin: Some(ReasoningOrigin::Anthropic),
            }),
            Part::text("done"),
        ],
        ..Response::default()
    };
    let body = check_encode_response(None, &response, "m");
    assert_eq!(body["content"][0]["signature"], "llmux:gemini:gemini-sig");
    assert_eq!(body["content"][1]["signature"], "anthropic-sig");
    let replay = json!({"model": "m", "max_tokens": 10, "messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": body["content"]},
        {"role": "user", "content": "more"}]});
    let decoded = decode_request(replay.to_string().as_bytes()).unwrap();
    let origins: Vec<_> = decoded.messages[1]
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::Reasoning(r) => Some((r.origin, r.signature.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        origins,
        [
            (Some(ReasoningOrigin::Gemini), Some("gemini-sig".into())),
            (
                Some(ReasoningOrigin::Anthropic),
                Some("anthropic-sig".into())
            )
        ]
    );
    // On the byte path the tagged (and unsigned) blocks are dropped, the rest kept as sent.
    let mut sent = replay.clone();
    sent["messages"][1]["content"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "thinking", "thinking": "x", "signature": ""}));
    let stripped = strip_foreign_reasoning(sent.to_string().as_bytes()).unwrap();
    let stripped: Value = serde_json::from_slice(&stripped).unwrap();
    assert_eq!(
        stripped["messages"][1]["content"],
        json!([{"type": "thinking", "thinking": "a", "signature": "anthropic-sig"},
               {"type": "text", "text": "done"}])
    );
    let own = json!({"model": "m", "messages": [{"role": "assistant", "content": [
        {"type": "thinking", "thinking": "a", "signature": "anthropic-sig"}]}]});
    assert_eq!(strip_foreign_reasoning(own.to_string().as_bytes()), None);
}

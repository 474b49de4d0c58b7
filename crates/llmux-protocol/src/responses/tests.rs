//! Open Responses codec tests: request decoding (golden snapshots and refusals), response
//! resources (snapshots, checked against the spec's required fields in `schema`), the streamed
//! event sequence, and property tests (`props`). Every test goes through the `check_*`
//! helpers below.

use bytes::BytesMut;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::error::ErrorKind;
use crate::neutral::{
    FinishReason, Message, Part, Reasoning, Response, Role, StreamEvent, ToolCall, ToolResult,
    Usage,
};
use crate::sse;

mod props;
mod schema;

const FIXTURE: &[u8] =
    include_bytes!("../../../../fixtures/openresponses/openai_responses_nonstream.json");

fn meta() -> Meta {
    Meta {
        id: "resp_0123456789abcdef".to_owned(),
        created_at: 1_741_476_777,
        completed_at: Some(1_741_476_778),
        model: "my-alias".to_owned(),
    }
}

/// Meta as a stream starts: not completed yet.
fn stream_meta() -> Meta {
    Meta {
        completed_at: None,
        ..meta()
    }
}

const COMPLETED_AT: u64 = 1_741_476_780;

fn usage() -> Usage {
    Usage {
        input_tokens: 12,
        output_tokens: 5,
        cached_input_tokens: Some(2),
        cache_creation_input_tokens: None,
        reasoning_tokens: None,
    }
}

fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
    ToolCall {
        id: id.to_owned(),
        name: name.to_owned(),
        arguments: arguments.to_owned(),
        signature: None,
    }
}

fn reasoning(text: &str, signature: Option<&str>) -> Part {
    Part::Reasoning(Reasoning {
        text: text.to_owned(),
        signature: signature.map(str::to_owned),
        redacted: None,
        origin: signature.map(|_| crate::neutral::ReasoningOrigin::Anthropic),
    })
}

// ---------------------------------------------------------------------------------------------
// Helpers: every test goes through these.

/// Decodes a body and snapshots the result.
#[track_caller]
fn check_decode(name: &str, body: Value) -> Decoded {
    let decoded = decode_request(body.to_string().as_bytes()).expect("request decodes");
    insta::assert_json_snapshot!(name, decoded);
    decoded
}

/// Decodes a body without a snapshot.
#[track_caller]
fn check_decode_json(body: Value) -> Decoded {
    decode_request(body.to_string().as_bytes()).expect("request decodes")
}

/// Asserts that a body is refused with a message containing `message` and the given `param`.
#[track_caller]
fn check_invalid(body: &str, message: &str, param: Option<&str>) {
    let err = decode_request(body.as_bytes()).expect_err("request is refused");
    assert!(
        err.message.contains(message),
        "message {:?} does not contain {message:?}",
        err.message
    );
    assert_eq!(err.param.as_deref(), param, "param of {:?}", err.message);
}

/// Encodes a response, checks it against the schema and snapshots it.
#[track_caller]
fn check_response(name: &str, response: &Response, echo: &Echo) -> Value {
    let resource = check_response_json(response, echo);
    insta::assert_json_snapshot!(name, resource);
    resource
}

/// Encodes a response and checks it against the schema.
#[track_caller]
fn check_response_json(response: &Response, echo: &Echo) -> Value {
    let resource = encode_response(response, echo, &meta());
    schema::check_resource(&resource);
    resource
}

/// A streamed response, parsed back.
#[derive(Debug)]
struct Streamed {
    /// `(event name, data)` in order, without `[DONE]`.
    events: Vec<(String, Value)>,
    /// What `finish` returned.
    response: Option<Response>,
}

impl Streamed {
    fn kinds(&self) -> Vec<&str> {
        self.events.iter().map(|(name, _)| name.as_str()).collect()
    }

    fn of_kind(&self, kind: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|(name, _)| name == kind)
            .map(|(_, data)| data)
            .collect()
    }

    /// The resource of the terminal event.
    fn last_resource(&self) -> &Value {
        &self.events.last().expect("events").1["response"]
    }
}

/// Feeds `events` to a fresh encoder, then `finish`, and checks the stream's invariants.
#[track_caller]
fn check_stream(events: &[StreamEvent]) -> Streamed {
    check_stream_with(Echo::default(), events, |encoder, out| {
        encoder.finish(out, COMPLETED_AT)
    })
}

/// Feeds `events`, then lets `end` close the stream, then checks every invariant of §C7:
/// LF-only frames with one `data:` line and `event` = `type`; `sequence_number` 0..n; each
/// event's required fields; lifecycle order; items that never interleave, each added once and
/// done once with the same `output_index`; the terminal resource's output equal to the items
/// done; `[DONE]` last; and calling `finish`/`fail` again writes nothing.
#[track_caller]
fn check_stream_with(
    echo: Echo,
    events: &[StreamEvent],
    end: impl FnOnce(&mut StreamEncoder, &mut BytesMut) -> Option<Response>,
) -> Streamed {
    let mut encoder = StreamEncoder::new(echo.clone(), stream_meta());
    let mut out = BytesMut::new();
    for event in events {
        encoder.encode(event, &mut out);
    }
    let response = end(&mut encoder, &mut out);

    let mut again = BytesMut::new();
    assert_eq!(encoder.finish(&mut again, COMPLETED_AT), None);
    encoder.fail("server_error", "late", &mut again);
    encoder.encode(
        &StreamEvent::TextDelta {
            text: "late".into(),
        },
        &mut again,
    );
    assert!(again.is_empty(), "the stream is over");

    let raw = std::str::from_utf8(&out).expect("utf-8").to_owned();
    assert!(!raw.contains('\r'), "LF-only framing");
    assert!(
        raw.ends_with("\n\ndata: [DONE]\n\n"),
        "[DONE] ends the stream"
    );
    let frames: Vec<&str> = raw
        .trim_end_matches("data: [DONE]\n\n")
        .split_terminator("\n\n")
        .collect();
    let mut parsed = Vec::new();
    for frame in &frames {
        let lines: Vec<&str> = frame.split('\n').collect();
        assert_eq!(
            lines.len(),
            2,
            "one event line and one data line: {frame:?}"
        );
        let name = lines[0].strip_prefix("event: ").expect("event line");
        let data = lines[1].strip_prefix("data: ").expect("data line");
        let data: Value = serde_json::from_str(data).expect("data is JSON");
        parsed.push((name.to_owned(), data));
    }
    // The crate's own SSE decoder reads the same events.
    let mut decoder = sse::Decoder::default();
    decoder.push(&out);
    decoder.finish();
    let mut decoded = 0;
    while let Some(event) = decoder.next_event() {
        if !event.is_done_marker() {
            decoded += 1;
        }
    }
    assert_eq!(decoded, parsed.len());

    for (n, (name, data)) in parsed.iter().enumerate() {
        assert_eq!(
            data["sequence_number"],
            json!(n),
            "sequence numbers count from 0"
        );
        schema::check_event(name, data);
    }
    let kinds: Vec<&str> = parsed.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(kinds[..2], ["response.created", "response.in_progress"]);
    let terminal = kinds.last().copied().unwrap_or_default();
    assert!(
        [
            "response.completed",
            "response.incomplete",
            "response.failed"
        ]
        .contains(&terminal),
        "terminal event {terminal}"
    );
    for kind in &kinds[2..kinds.len() - 1] {
        assert!(
            ![
                "response.created",
                "response.in_progress",
                "response.completed",
                "response.incomplete",
                "response.failed"
            ]
            .contains(kind),
            "lifecycle event {kind} in the middle"
        );
    }

    // Items: added and done in pairs, in order, never interleaved; item events refer to the
    // open item.
    let mut open: Option<(u64, String)> = None;
    let mut done_items = Vec::new();
    for (name, data) in &parsed {
        match name.as_str() {
            "response.output_item.added" => {
                assert!(open.is_none(), "items never interleave");
                let index = data["output_index"].as_u64().expect("index");
                assert_eq!(index, done_items.len() as u64, "output_index counts from 0");
                assert_eq!(data["item"]["status"], "in_progress");
                open = Some((index, data["item"]["id"].as_str().expect("id").to_owned()));
            }
            "response.output_item.done" => {
                let (index, id) = open.take().expect("done follows added");
                assert_eq!(data["output_index"], json!(index));
                assert_eq!(data["item"]["id"], json!(id));
                assert_ne!(data["item"]["status"], "in_progress");
                done_items.push(data["item"].clone());
            }
            _ if data.get("item_id").is_some() => {
                let (index, id) = open.as_ref().expect("an item is open");
                assert_eq!(data["output_index"], json!(index));
                assert_eq!(data["item_id"], json!(id));
            }
            _ => {}
        }
    }
    assert!(open.is_none(), "every item is done");
    let last = &parsed.last().expect("events").1["response"];
    assert_eq!(
        last["output"],
        json!(done_items),
        "the terminal resource holds the items done"
    );
    assert_eq!(last["model"], "my-alias");
    match &response {
        // What `finish` returned describes the same answer as the events.
        Some(response) => {
            assert_eq!(last["completed_at"], COMPLETED_AT);
            let mut meta = meta();
            meta.completed_at = Some(COMPLETED_AT);
            assert_eq!(&encode_response(response, &echo, &meta), last);
        }
        // `fail` has no clock: the resource says it completed when it was created.
        None => assert_eq!(last["completed_at"], last["created_at"]),
    }
    Streamed {
        events: parsed,
        response,
    }
}

fn text_events(chunks: &[&str]) -> Vec<StreamEvent> {
    let mut events = vec![StreamEvent::Start {
        id: "vendor-1".into(),
        model: "gpt-4o-2024-08-06".into(),
    }];
    events.extend(chunks.iter().map(|text| StreamEvent::TextDelta {
        text: (*text).to_owned(),
    }));
    events
}

fn call_events(index: usize, id: &str, name: &str, chunks: &[&str]) -> Vec<StreamEvent> {
    let mut events = vec![StreamEvent::ToolCallStart {
        index,
        id: id.to_owned(),
        name: name.to_owned(),
        signature: None,
    }];
    events.extend(chunks.iter().map(|arguments| StreamEvent::ToolCallDelta {
        index,
        arguments: (*arguments).to_owned(),
    }));
    events
}

fn finish(reason: FinishReason) -> StreamEvent {
    StreamEvent::Finish { reason }
}

// ---------------------------------------------------------------------------------------------
// Requests.

#[test]
fn decodes_string_input() {
    let decoded = check_decode(
        "request_string_input",
        json!({"model": "gpt-4o", "input": "Say hello in exactly 3 words."}),
    );
    assert_eq!(decoded.model.as_deref(), Some("gpt-4o"));
    assert!(decoded.store, "store defaults to true");
    assert!(!decoded.request.stream);
    assert_eq!(
        decoded.request.messages,
        vec![Message {
            role: Role::User,
            parts: vec![Part::text("Say hello in exactly 3 words.")]
        }]
    );
}

#[test]
fn decodes_text_and_image_items() {
    let decoded = check_decode(
        "request_text_and_image",
        json!({
            "model": "claude-sonnet-4-5",
            "stream": true,
            "input": [{
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is in these images?"},
                    {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="},
                    {"type": "input_image", "image_url": "https://example.com/cat.jpg", "detail": "low"}
                ]
            }]
        }),
    );
    assert!(decoded.request.stream);
    assert_eq!(decoded.request.messages[0].parts.len(), 3);
}

#[test]
fn decodes_a_function_call_turn() {
    let decoded = check_decode(
        "request_function_call_turn",
        json!({
            "model": "gemini-2.5-flash",
            "input": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "Two cities."}],
                 "encrypted_content": "llmux:sig:c2lnLXI="},
                {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking.", "annotations": []}]},
                {"type": "function_call", "id": "fc_1", "call_id": "call_1__ts__c2lnLTE=", "name": "get_weather",
                 "arguments": "{\"city\":\"Paris\"}", "status": "completed"},
                {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": "{\"city\":\"Rome\"}"},
                {"type": "function_call_output", "call_id": "call_1__ts__c2lnLTE=", "output": "18C and sunny"},
                {"type": "function_call_output", "call_id": "call_2",
                 "output": [{"type": "input_text", "text": "21C"}, {"type": "input_text", "text": " and clear"}]},
                {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Thanks!"}]}
            ]
        }),
    );
    let messages = &decoded.request.messages;
    let roles: Vec<Role> = messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [
            Role::User,
            Role::Assistant,
            Role::Tool,
            Role::Tool,
            Role::User
        ],
        "reasoning, text and both calls are one assistant turn"
    );
    assert_eq!(
        messages[1].parts,
        vec![
            reasoning("Two cities.", Some("c2lnLXI=")),
            Part::text("Checking."),
            Part::ToolCall(ToolCall {
                signature: Some("c2lnLTE=".into()),
                ..call("call_1", "get_weather", "{\"city\":\"Paris\"}")
            }),
            Part::ToolCall(call("call_2", "get_weather", "{\"city\":\"Rome\"}")),
        ]
    );
    assert_eq!(
        messages[3].parts,
        vec![Part::ToolResult(ToolResult {
            call_id: "call_2".into(),
            name: Some("get_weather".into()),
            content: "21C and clear".into(),
            is_error: false,
        })]
    );
}

#[test]
fn decodes_instructions_format_and_reasoning() {
    let decoded = check_decode(
        "request_instructions_format_reasoning",
        json!({
            "model": "o4-mini",
            "provider": "openai",
            "instructions": "You are terse.",
            "input": [
                {"type": "message", "role": "developer", "content": "Answer in JSON."},
                {"type": "message", "role": "system", "content": [{"type": "input_text", "text": "No prose."}]},
                {"type": "message", "role": "user", "content": "List two colors."}
            ],
            "text": {"format": {"type": "json_schema", "name": "colors", "strict": true,
                                "schema": {"type": "object", "properties": {"colors": {"type": "array"}}}},
                     "verbosity": "low"},
            "reasoning": {"effort": "high", "summary": "auto"},
            "temperature": 0.2,
            "top_p": 0.9,
            "max_output_tokens": 256,
            "max_tool_calls": 3,
            "metadata": {"ticket": "42"},
            "tools": [{"type": "function", "name": "lookup", "description": "looks up",
                       "parameters": {"type": "object"}, "strict": false}],
            "tool_choice": {"type": "function", "name": "lookup"},
            "parallel_tool_calls": false,
            "truncation": "auto",
            "store": false,
            "previous_response_id": "resp_prev",
            "user": "user-7",
            "safety_identifier": "safe-7",
            "prompt_cache_key": "cache-7",
            "include": ["reasoning.encrypted_content"],
            "stream_options": {"include_obfuscation": false}
        }),
    );
    assert_eq!(
        decoded.request.system,
        ["You are terse.", "Answer in JSON.", "No prose."]
    );
    assert_eq!(decoded.provider.as_deref(), Some("openai"));
    assert_eq!(decoded.previous_response_id.as_deref(), Some("resp_prev"));
    assert!(!decoded.store);
    assert_eq!(decoded.request.sampling.max_tokens, Some(256));
    // The echo makes a valid resource.
    let resource = encode_failed(&decoded.echo, &meta(), "server_error", "boom");
    schema::check_resource(&resource);
    assert_eq!(resource["text"]["format"]["name"], "colors");
    assert_eq!(
        resource["tool_choice"],
        json!({"type": "function", "name": "lookup"})
    );
    assert_eq!(resource["metadata"], json!({"ticket": "42"}));
    assert_eq!(resource["store"], false);
}

#[test]
fn allowed_tools_hides_the_other_tools() {
    let decoded = check_decode_json(json!({
        "input": "hi",
        "tools": [
            {"type": "function", "name": "a"},
            {"type": "function", "name": "b"},
            {"type": "function", "name": "c"}
        ],
        "tool_choice": {"type": "allowed_tools", "mode": "required",
                        "tools": [{"type": "function", "name": "c"}, {"type": "function", "name": "a"}]}
    }));
    let names: Vec<&str> = decoded
        .request
        .tools
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(names, ["a", "c"]);
    assert_eq!(
        decoded.request.tool_choice,
        Some(neutral::ToolChoice::Required)
    );
    assert_eq!(
        decoded.echo.tools.len(),
        3,
        "the echo lists every tool given"
    );
    check_invalid(
        r#"{"input":"hi","tools":[{"type":"function","name":"a"}],"tool_choice":{"type":"allowed_tools","tools":[{"type":"function","name":"z"}]}}"#,
        "allowed tool 'z' is not in 'tools'",
        Some("tool_choice.tools[0]"),
    );
}

#[test]
fn tool_choice_and_format_variants() {
    for (choice, expected) in [
        (json!("auto"), neutral::ToolChoice::Auto),
        (json!("none"), neutral::ToolChoice::None),
        (json!("required"), neutral::ToolChoice::Required),
        (
            json!({"type": "function", "name": "f"}),
            neutral::ToolChoice::Named("f".into()),
        ),
    ] {
        let decoded = check_decode_json(json!({"input": "x", "tool_choice": choice}));
        assert_eq!(decoded.request.tool_choice, Some(expected));
    }
    for (format, expected) in [
        (json!({"type": "text"}), neutral::ResponseFormat::Text),
        (
            json!({"type": "json_object"}),
            neutral::ResponseFormat::JsonObject,
        ),
    ] {
        let decoded = check_decode_json(json!({"input": "x", "text": {"format": format}}));
        assert_eq!(decoded.request.response_format, Some(expected));
    }
    let plain = check_decode_json(json!({"input": "x", "reasoning": {"summary": "auto"}}));
    assert_eq!(
        plain.request.reasoning, None,
        "no effort, no reasoning config"
    );
    assert_eq!(
        plain.echo.reasoning,
        Some(json!({"effort": null, "summary": "auto"}))
    );
}

#[test]
fn drops_hosted_tools_recording_the_type() {
    for kind in [
        "web_search",
        "web_search_preview",
        "file_search",
        "code_interpreter",
        "computer_use_preview",
        "image_generation",
        "mcp",
        "local_shell",
    ] {
        let decoded = check_decode_json(json!({
            "input": "hi",
            "tools": [{"type": "function", "name": "ok"}, {"type": kind}]
        }));
        let names: Vec<&str> = decoded
            .request
            .tools
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(names, ["ok"]);
        assert_eq!(decoded.request.dropped_tools, [kind]);
        assert_eq!(decoded.echo.tools.len(), 1, "dropped tools are not echoed");
    }
    check_invalid(
        r#"{"input":"hi","tool_choice":{"type":"web_search_preview"}}"#,
        "tool_choice type 'web_search_preview' is not supported",
        Some("tool_choice"),
    );
}

#[test]
fn refuses_missing_input_and_bad_types_naming_the_path() {
    check_invalid(
        r#"{"model":"gpt-4o"}"#,
        "missing required field 'input'",
        Some("input"),
    );
    check_invalid(
        r#"{"input":null}"#,
        "missing required field 'input'",
        Some("input"),
    );
    check_invalid(r#"[{"input":"hi"}]"#, "expected a JSON object", None);
    check_invalid(r#"{"input":"hi""#, "not valid JSON", None);
    check_invalid(
        r#"{"input":"hi","temperature":"hot"}"#,
        "invalid 'temperature'",
        Some("temperature"),
    );
    check_invalid(
        r#"{"input":"hi","stream":"yes"}"#,
        "invalid 'stream'",
        Some("stream"),
    );
    check_invalid(r#"{"input":42}"#, "invalid 'input'", Some("input"));
    check_invalid(
        r#"{"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":7}]}]}"#,
        "invalid 'input[0].content[0].text'",
        Some("input[0].content[0].text"),
    );
    check_invalid(
        r#"{"input":["hi"]}"#,
        "invalid 'input[0]': expected an input item object",
        Some("input[0]"),
    );
    check_invalid(
        r#"{"input":[{"role":"user","content":"a"},{"type":"function_call","name":"f","arguments":"{}"}]}"#,
        "missing required field 'call_id'",
        Some("input[1].call_id"),
    );
    check_invalid(
        r#"{"input":[{"type":"function_call_output","call_id":"c"}]}"#,
        "missing required field 'output'",
        Some("input[0].output"),
    );
    check_invalid(
        r#"{"input":[{"role":"critic","content":"a"}]}"#,
        "unknown role 'critic'",
        Some("input[0].role"),
    );
    check_invalid(
        r#"{"input":[{"type":"message","role":"user","content":[{"type":"input_video","video_url":"https://x/v.mp4"}]}]}"#,
        "content part type 'input_video' is not supported",
        Some("input[0].content[0].type"),
    );
    check_invalid(
        r#"{"input":[{"type":"message","role":"user","content":[{"type":"input_file","file_id":"file_1"}]}]}"#,
        "input_file by 'file_id' is not supported",
        Some("input[0].content[0].file_data"),
    );
    check_invalid(
        r#"{"input":[{"role":"user","content":[{"type":"input_image","file_id":"file_1"}]}]}"#,
        "'file_id' is not supported",
        Some("input[0].content[0].image_url"),
    );
    check_invalid(
        r#"{"input":[{"type":"item_reference","id":"msg_1"}]}"#,
        "item_reference input items are not supported",
        Some("input[0]"),
    );
    check_invalid(
        r#"{"input":[{"type":"compaction","encrypted_content":"x"}]}"#,
        "input item type 'compaction' is not supported",
        Some("input[0].type"),
    );
    check_invalid(
        r#"{"input":"hi","tools":[{"type":"function","name":5}]}"#,
        "invalid 'tools[0].name'",
        Some("tools[0].name"),
    );
    check_invalid(
        r#"{"input":"hi","text":{"format":{"type":"json_schema","name":"x"}}}"#,
        "needs 'schema'",
        Some("text.format.schema"),
    );
    check_invalid(
        r#"{"input":"hi","background":true}"#,
        "background mode",
        Some("background"),
    );
    check_invalid(
        r#"{"input":"hi","truncation":"middle"}"#,
        "'truncation'",
        Some("truncation"),
    );
    check_invalid(
        r#"{"input":"hi","tool_choice":"sometimes"}"#,
        "'tool_choice'",
        Some("tool_choice"),
    );
}

#[test]
fn fixture_output_reads_back_as_input() {
    let fixture: Value = serde_json::from_slice(FIXTURE).expect("fixture is JSON");
    let decoded = check_decode_json(json!({"input": fixture["output"]}));
    let text = fixture["output"][0]["content"][0]["text"]
        .as_str()
        .expect("text");
    assert_eq!(
        decoded.request.messages,
        vec![Message {
            role: Role::Assistant,
            parts: vec![Part::text(text)]
        }]
    );
}

// ---------------------------------------------------------------------------------------------
// Responses.

fn text_response(finish: FinishReason) -> Response {
    Response {
        id: "vendor-1".into(),
        model: "claude-sonnet-4-5-20250929".into(),
        parts: vec![Part::text("Hello there "), Part::text("friend!")],
        finish,
        usage: Some(usage()),
    }
}

#[test]
fn encodes_text() {
    let resource = check_response(
        "response_text",
        &text_response(FinishReason::Stop),
        &Echo::default(),
    );
    assert_eq!(resource["status"], "completed");
    assert_eq!(
        resource["output"][0]["content"][0]["text"],
        "Hello there friend!"
    );
    assert_eq!(
        resource["model"], "my-alias",
        "the client's name, not the vendor's"
    );
    assert_eq!(resource["completed_at"], 1_741_476_778);
}

#[test]
fn encodes_reasoning_and_tool_calls() {
    let response = Response {
        id: "vendor-2".into(),
        model: "gemini-2.5-flash".into(),
        parts: vec![
            reasoning("The user wants two cities.", Some("c2lnLXI=")),
            Part::ToolCall(ToolCall {
                signature: Some("c2lnLTE=".into()),
                ..call("call_1", "get_weather", "{\"city\":\"Paris\"}")
            }),
            Part::ToolCall(call("call_2", "get_weather", "")),
        ],
        finish: FinishReason::ToolCalls,
        usage: Some(Usage {
            reasoning_tokens: Some(3),
            ..usage()
        }),
    };
    let echo = check_decode_json(json!({
        "input": "x",
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]
    }))
    .echo;
    let resource = check_response("response_tool_calls", &response, &echo);
    assert_eq!(resource["status"], "completed");
    let output = resource["output"].as_array().expect("output");
    let types: Vec<&str> = output
        .iter()
        .map(|i| i["type"].as_str().expect("type"))
        .collect();
    assert_eq!(types, ["reasoning", "function_call", "function_call"]);
    assert_eq!(output[0]["encrypted_content"], "llmux:sig:c2lnLXI=");
    assert_eq!(output[1]["call_id"], "call_1__ts__c2lnLTE=");
    assert_eq!(
        output[2]["arguments"], "{}",
        "a call without arguments has an empty object"
    );
}

#[test]
fn encodes_length_as_incomplete() {
    let resource = check_response(
        "response_length",
        &text_response(FinishReason::Length),
        &Echo::default(),
    );
    assert_eq!(resource["status"], "incomplete");
    assert_eq!(
        resource["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(
        resource["output"][0]["status"], "incomplete",
        "the cut item is incomplete"
    );
}

#[test]
fn encodes_content_filter_as_incomplete() {
    let response = Response {
        parts: Vec::new(),
        ..text_response(FinishReason::ContentFilter)
    };
    let resource = check_response("response_content_filter", &response, &Echo::default());
    assert_eq!(resource["status"], "incomplete");
    assert_eq!(
        resource["incomplete_details"],
        json!({"reason": "content_filter"})
    );
    assert_eq!(resource["output"], json!([]));
}

#[test]
fn encodes_model_error_as_failed() {
    let resource = check_response(
        "response_model_error",
        &text_response(FinishReason::ModelError),
        &Echo::default(),
    );
    assert_eq!(resource["status"], "failed");
    assert_eq!(resource["error"]["code"], "model_error");
    assert_eq!(resource["incomplete_details"], Value::Null);
}

#[test]
fn encodes_paused_as_incomplete() {
    let resource = check_response_json(&text_response(FinishReason::Paused), &Echo::default());
    assert_eq!(resource["status"], "incomplete");
    assert_eq!(
        resource["incomplete_details"],
        json!({"reason": "pause_turn"})
    );
}

#[test]
fn encodes_a_failure_before_output() {
    let resource = encode_failed(
        &Echo::default(),
        &meta(),
        "server_error",
        "upstream unreachable",
    );
    schema::check_resource(&resource);
    insta::assert_json_snapshot!("response_failed", resource);
}

#[test]
fn item_ids_are_unique_and_deterministic() {
    let response = Response {
        parts: vec![
            reasoning("a", None),
            Part::text("b"),
            Part::ToolCall(call("c1", "f", "{}")),
            Part::text("d"),
            Part::ToolCall(call("c2", "f", "{}")),
        ],
        ..Response::default()
    };
    let first = check_response_json(&response, &Echo::default());
    let second = check_response_json(&response, &Echo::default());
    assert_eq!(first, second);
    let ids: std::collections::HashSet<&str> = first["output"]
        .as_array()
        .expect("output")
        .iter()
        .map(|item| item["id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 5);
}

#[test]
fn matches_the_fixture_shapes() {
    let fixture: Value = serde_json::from_slice(FIXTURE).expect("fixture is JSON");
    let ours = check_response_json(&text_response(FinishReason::Stop), &Echo::default());
    let keys = |v: &Value| -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
        keys.sort();
        keys
    };
    for key in keys(&fixture) {
        assert!(ours.get(&key).is_some(), "we lack the fixture's {key}");
    }
    assert!(
        fixture.get("completed_at").is_none(),
        "the fixture predates completed_at"
    );
    assert_eq!(keys(&ours["output"][0]), keys(&fixture["output"][0]));
    assert_eq!(
        keys(&ours["output"][0]["content"][0]),
        keys(&fixture["output"][0]["content"][0])
    );
    assert_eq!(keys(&ours["usage"]), keys(&fixture["usage"]));
    for (key, value) in [
        "tool_choice",
        "truncation",
        "service_tier",
        "tools",
        "metadata",
    ]
    .map(|k| (k, &fixture[k]))
    {
        assert_eq!(&ours[key], value, "default {key}");
    }
    assert_eq!(ours["text"]["format"], fixture["text"]["format"]);
}

#[test]
fn output_messages_keep_reasoning_text_and_calls() {
    let response = Response {
        parts: vec![
            reasoning("think", Some("sig")),
            Part::text("Hel"),
            Part::text("lo"),
            Part::ToolCall(ToolCall {
                signature: Some("ts".into()),
                ..call("call_1", "f", "")
            }),
            Part::text(""),
        ],
        ..Response::default()
    };
    assert_eq!(
        output_messages(&response),
        vec![Message {
            role: Role::Assistant,
            parts: vec![
                reasoning("think", Some("sig")),
                Part::text("Hello"),
                Part::ToolCall(ToolCall {
                    signature: Some("ts".into()),
                    ..call("call_1", "f", "{}")
                }),
            ]
        }]
    );
    assert_eq!(output_messages(&Response::default()), Vec::<Message>::new());
}

// ---------------------------------------------------------------------------------------------
// Streams.

#[test]
fn streams_text() {
    let mut events = text_events(&["Hel", "lo"]);
    events.push(finish(FinishReason::Stop));
    events.push(StreamEvent::Usage(usage()));
    let streamed = check_stream(&events);
    insta::assert_json_snapshot!("stream_text", streamed.events);
    assert_eq!(
        streamed.kinds(),
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    assert_eq!(
        streamed.of_kind("response.output_text.done")[0]["text"],
        "Hello"
    );
    let resource = streamed.last_resource();
    assert_eq!(
        resource["usage"]["total_tokens"], 17,
        "usage after Finish still counts"
    );
    assert_eq!(
        streamed.response,
        Some(Response {
            id: "vendor-1".into(),
            model: "gpt-4o-2024-08-06".into(),
            parts: vec![Part::text("Hello")],
            finish: FinishReason::Stop,
            usage: Some(usage()),
        })
    );
}

#[test]
fn streams_two_tool_calls() {
    let mut events = vec![StreamEvent::Start {
        id: "vendor-2".into(),
        model: "claude".into(),
    }];
    events.extend(call_events(
        0,
        "toolu_1",
        "get_weather",
        &["{\"city\":", "\"Paris\"}"],
    ));
    events.extend(call_events(1, "toolu_2", "get_time", &["{\"tz\":\"CET\"}"]));
    events.push(finish(FinishReason::ToolCalls));
    let streamed = check_stream(&events);
    insta::assert_json_snapshot!("stream_tool_calls", streamed.events);
    assert_eq!(
        streamed.kinds()[2..],
        [
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let added = streamed.of_kind("response.output_item.added");
    assert_eq!(added[0]["item"]["arguments"], "");
    assert_eq!(added[0]["item"]["name"], "get_weather");
    let done = streamed.of_kind("response.function_call_arguments.done");
    assert_eq!(done[0]["arguments"], "{\"city\":\"Paris\"}");
    let response = streamed.response.expect("finish returns the answer");
    assert_eq!(
        response.parts,
        vec![
            Part::ToolCall(call("toolu_1", "get_weather", "{\"city\":\"Paris\"}")),
            Part::ToolCall(call("toolu_2", "get_time", "{\"tz\":\"CET\"}")),
        ]
    );
    assert_eq!(response.finish, FinishReason::ToolCalls);
}

#[test]
fn streams_text_then_a_tool_call_then_text() {
    let mut events = text_events(&["Let me check."]);
    events.push(StreamEvent::ToolCallStart {
        index: 0,
        id: "call_1".into(),
        name: "lookup".into(),
        signature: Some("c2ln".into()),
    });
    events.push(StreamEvent::ToolCallDelta {
        index: 0,
        arguments: "{}".into(),
    });
    events.push(StreamEvent::ToolCallDelta {
        index: 5,
        arguments: "dropped".into(),
    });
    events.push(StreamEvent::TextDelta {
        text: "More.".into(),
    });
    let streamed = check_stream(&events);
    let items: Vec<(Value, Value)> = streamed
        .of_kind("response.output_item.done")
        .iter()
        .map(|d| (d["item"]["type"].clone(), d["output_index"].clone()))
        .collect();
    assert_eq!(
        items,
        [
            (json!("message"), json!(0)),
            (json!("function_call"), json!(1)),
            (json!("message"), json!(2))
        ],
        "text after a tool call opens a new message item"
    );
    assert_eq!(
        streamed.of_kind("response.output_item.added")[1]["item"]["call_id"],
        "call_1__ts__c2ln"
    );
    let response = streamed.response.expect("answer");
    assert_eq!(
        response.finish,
        FinishReason::ToolCalls,
        "inferred without a Finish"
    );
    assert_eq!(
        response.parts[1],
        Part::ToolCall(ToolCall {
            signature: Some("c2ln".into()),
            ..call("call_1", "lookup", "{}")
        })
    );
}

#[test]
fn streams_reasoning_then_text() {
    let events = vec![
        StreamEvent::ReasoningDelta {
            text: "Think".into(),
            signature: None,
            origin: Some(crate::neutral::ReasoningOrigin::Anthropic),
        },
        StreamEvent::ReasoningDelta {
            text: "ing.".into(),
            signature: None,
            origin: Some(crate::neutral::ReasoningOrigin::Anthropic),
        },
        StreamEvent::ReasoningDelta {
            text: String::new(),
            signature: Some("c2lnLXI=".into()),
            origin: Some(crate::neutral::ReasoningOrigin::Anthropic),
        },
        StreamEvent::ReasoningDelta {
            text: "Second block.".into(),
            signature: None,
            origin: Some(crate::neutral::ReasoningOrigin::Anthropic),
        },
        StreamEvent::TextDelta {
            text: "Answer.".into(),
        },
        finish(FinishReason::Stop),
    ];
    let streamed = check_stream(&events);
    insta::assert_json_snapshot!("stream_reasoning_text", streamed.events);
    assert_eq!(
        streamed.kinds()[2..9],
        [
            "response.output_item.added",
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
        ]
    );
    let done = streamed.of_kind("response.output_item.done");
    assert_eq!(done[0]["item"]["encrypted_content"], "llmux:sig:c2lnLXI=");
    assert_eq!(done[0]["item"]["summary"][0]["text"], "Thinking.");
    assert!(done[1]["item"].get("encrypted_content").is_none());
    assert_eq!(
        streamed.response.expect("answer").parts,
        vec![
            reasoning("Thinking.", Some("c2lnLXI=")),
            reasoning("Second block.", None),
            Part::text("Answer."),
        ],
        "a signature completes a reasoning block"
    );
}

#[test]
fn streams_length_as_incomplete() {
    let mut events = text_events(&["Once upon"]);
    events.push(finish(FinishReason::Length));
    events.push(StreamEvent::TextDelta {
        text: "ignored after Finish".into(),
    });
    let streamed = check_stream(&events);
    assert_eq!(streamed.kinds().last(), Some(&"response.incomplete"));
    let resource = streamed.last_resource();
    assert_eq!(
        resource["incomplete_details"],
        json!({"reason": "max_output_tokens"})
    );
    assert_eq!(resource["output"][0]["status"], "incomplete");
    assert_eq!(resource["output"][0]["content"][0]["text"], "Once upon");
}

#[test]
fn streams_content_filter_and_model_error() {
    let streamed = check_stream(&[finish(FinishReason::ContentFilter)]);
    assert_eq!(streamed.kinds().last(), Some(&"response.incomplete"));
    let streamed = check_stream(&[
        StreamEvent::ToolCallStart {
            index: 0,
            id: "call_1".into(),
            name: "f".into(),
            signature: None,
        },
        finish(FinishReason::ModelError),
    ]);
    assert_eq!(streamed.kinds().last(), Some(&"response.failed"));
    assert_eq!(streamed.last_resource()["error"]["code"], "model_error");
}

#[test]
fn streams_an_error_then_failed() {
    let mut events = text_events(&["Partial"]);
    events.push(StreamEvent::Usage(usage()));
    events.push(StreamEvent::Error {
        kind: ErrorKind::UpstreamStatus(529),
        message: "overloaded".into(),
    });
    events.push(StreamEvent::TextDelta {
        text: "after the error".into(),
    });
    let streamed = check_stream_with(Echo::default(), &events, |_, _| None);
    insta::assert_json_snapshot!("stream_error", streamed.events);
    let kinds = streamed.kinds();
    assert_eq!(
        kinds[kinds.len() - 4..],
        [
            "response.content_part.done",
            "response.output_item.done",
            "error",
            "response.failed"
        ]
    );
    let error = streamed.of_kind("error")[0];
    assert_eq!(error["code"], "server_error");
    assert_eq!(error["message"], "overloaded");
    assert_eq!(error["error"]["type"], "upstream_error");
    let resource = streamed.last_resource();
    assert_eq!(
        resource["error"],
        json!({"code": "server_error", "message": "overloaded"})
    );
    assert_eq!(
        resource["output"][0]["status"], "incomplete",
        "the interrupted item"
    );
    assert_eq!(resource["usage"]["input_tokens"], 12);
}

#[test]
fn fail_before_any_event_still_opens_the_stream() {
    let streamed = check_stream_with(Echo::default(), &[], |encoder, out| {
        encoder.fail("timeout", "upstream timed out", out);
        None
    });
    assert_eq!(
        streamed.kinds(),
        [
            "response.created",
            "response.in_progress",
            "error",
            "response.failed"
        ]
    );
    assert_eq!(streamed.last_resource()["error"]["code"], "timeout");
}

#[test]
fn finish_without_events_completes_empty() {
    let streamed = check_stream(&[]);
    assert_eq!(
        streamed.kinds(),
        [
            "response.created",
            "response.in_progress",
            "response.completed"
        ]
    );
    assert_eq!(streamed.last_resource()["output"], json!([]));
    assert_eq!(streamed.last_resource()["usage"], Value::Null);
}

#[test]
fn snapshots_echo_the_request() {
    let echo = check_decode_json(json!({
        "input": "x",
        "instructions": "Be brief.",
        "temperature": 0.5,
        "metadata": {"k": "v"},
        "tools": [{"type": "function", "name": "f"}]
    }))
    .echo;
    let streamed = check_stream_with(echo, &text_events(&["ok"]), |encoder, out| {
        encoder.finish(out, COMPLETED_AT)
    });
    for (name, data) in &streamed.events {
        if let Some(resource) = data.get("response") {
            assert_eq!(resource["instructions"], "Be brief.", "{name}");
            assert_eq!(resource["temperature"], 0.5);
            assert_eq!(resource["metadata"], json!({"k": "v"}));
            assert_eq!(resource["tools"][0]["name"], "f");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Agent CLIs: real Codex CLI request bodies (fixtures/clients), decoded and re-encoded for every
// vendor behind the neutral model.

const CODEX: [(&str, &[u8]); 3] = [
    (
        "responses_tool_turn1",
        include_bytes!(
            "../../../../fixtures/clients/codex-0.169.x/responses_tool_turn1.request.json"
        ),
    ),
    (
        "responses_tool_turn2",
        include_bytes!(
            "../../../../fixtures/clients/codex-0.169.x/responses_tool_turn2.request.json"
        ),
    ),
    (
        "responses_multi_agent",
        include_bytes!(
            "../../../../fixtures/clients/codex-0.169.x/responses_multi_agent.request.json"
        ),
    ),
];

/// Decodes a client body and encodes its neutral request for OpenAI Chat, Anthropic and
/// Gemini, as JSON.
#[track_caller]
fn check_every_egress(name: &str, body: &[u8]) -> (Decoded, [Value; 3]) {
    let decoded = decode_request(body).unwrap_or_else(|e| panic!("{name} decodes: {e:?}"));
    let request = &decoded.request;
    let chat = crate::openai_chat::encode_neutral_request(request);
    let anthropic = crate::anthropic::encode_request(request, 4096);
    let gemini = crate::gemini::encode_request(request)
        .unwrap_or_else(|e| panic!("{name} encodes for Gemini: {e}"));
    let parse = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).expect("valid JSON");
    (decoded, [parse(&chat), parse(&anthropic), parse(&gemini)])
}

#[test]
fn codex_requests_reach_every_vendor() {
    for (name, body) in CODEX {
        let (decoded, [chat, anthropic, gemini]) = check_every_egress(name, body);
        let request = &decoded.request;
        // `custom` (freeform apply_patch), `tool_search` and `web_search` are not offered.
        let dropped: &[&str] = if name.contains("multi") {
            &["custom", "web_search"]
        } else {
            &["custom", "tool_search", "web_search"]
        };
        assert_eq!(request.dropped_tools, dropped, "{name}");
        assert!(!decoded.store, "{name}: store false");
        assert_eq!(
            request.reasoning.as_ref().and_then(|r| r.effort.as_deref()),
            Some("medium")
        );
        assert_eq!(chat["reasoning_effort"], "medium", "{name}");
        // After unsigned tool calls Anthropic refuses thinking, so the encoder leaves it out.
        let history = name.contains("turn2");
        assert_eq!(
            anthropic["thinking"]["budget_tokens"].is_u64(),
            !history,
            "{name}"
        );
        assert!(gemini["generationConfig"]["thinkingConfig"].is_object());
        assert!(request.tools.iter().any(|t| t.name == "exec_command"));
        let count = |body: &Value, pointer: &str| {
            body.pointer(pointer)
                .and_then(Value::as_array)
                .map_or(0, Vec::len)
        };
        assert_eq!(count(&chat, "/tools"), request.tools.len(), "{name}");
        assert_eq!(count(&anthropic, "/tools"), request.tools.len(), "{name}");
        assert_eq!(
            count(&gemini, "/tools/0/functionDeclarations"),
            request.tools.len(),
            "{name}"
        );
    }
}

#[test]
fn codex_namespace_tools_are_flattened_and_mapped_back() {
    let (decoded, [chat, ..]) = check_every_egress("multi_agent", CODEX[2].1);
    let flat: Vec<&str> = decoded
        .echo
        .namespaced
        .iter()
        .map(|t| t.flat.as_str())
        .collect();
    assert!(flat.contains(&"collaboration__spawn_agent"), "{flat:?}");
    assert!(flat.iter().all(|f| f.starts_with("collaboration__")));
    let offered: Vec<&str> = decoded
        .request
        .tools
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    for name in &flat {
        assert!(offered.contains(name), "{name} is offered");
    }
    // The flat tools keep the namespace's place in the offer (after view_image).
    let position = |n: &str| offered.iter().position(|o| *o == n).expect("offered");
    assert!(position("view_image") < position(flat[0]));
    assert!(position(flat[flat.len() - 1]) < position("get_goal"));
    assert!(
        chat["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .any(|t| t["function"]["name"] == "collaboration__spawn_agent")
    );
    // The echo lists the tools as offered (the resource's `tools` holds function tools only).
    assert_eq!(decoded.echo.tools.len(), decoded.request.tools.len());
    assert!(
        decoded
            .echo
            .tools
            .iter()
            .any(|t| t["type"] == "function" && t["name"] == "collaboration__spawn_agent")
    );

    // A call of the flat name comes back in the client's form, whole and streamed.
    let call = ToolCall {
        id: "call_1".into(),
        name: "collaboration__spawn_agent".into(),
        arguments: r#"{"message":"hi"}"#.into(),
        signature: None,
    };
    let response = Response {
        id: "r".into(),
        parts: vec![Part::ToolCall(call.clone())],
        finish: FinishReason::ToolCalls,
        ..Response::default()
    };
    let resource = encode_response(&response, &decoded.echo, &meta());
    assert_eq!(resource["output"][0]["name"], "spawn_agent");
    assert_eq!(resource["output"][0]["namespace"], "collaboration");
    let streamed = check_stream_with(
        decoded.echo.clone(),
        &[
            StreamEvent::Start {
                id: "r".into(),
                model: "m".into(),
            },
            StreamEvent::ToolCallStart {
                index: 0,
                id: "call_1".into(),
                name: call.name.clone(),
                signature: None,
            },
            StreamEvent::ToolCallDelta {
                index: 0,
                arguments: call.arguments.clone(),
            },
            finish(FinishReason::ToolCalls),
        ],
        |encoder, out| encoder.finish(out, COMPLETED_AT),
    );
    for kind in ["response.output_item.added", "response.output_item.done"] {
        let item = &streamed.of_kind(kind)[0]["item"];
        assert_eq!(item["name"], "spawn_agent", "{kind}");
        assert_eq!(item["namespace"], "collaboration", "{kind}");
    }

    // The client's next turn names the call by namespace; it reads back to the flat name.
    let mut next: Value = serde_json::from_slice(CODEX[2].1).expect("fixture");
    next["input"].as_array_mut().expect("input").extend([
        json!({"type": "function_call", "call_id": "call_1", "name": "spawn_agent",
               "namespace": "collaboration", "arguments": "{}"}),
        json!({"type": "function_call_output", "call_id": "call_1", "output": "ok"}),
    ]);
    let next = check_decode_json(next);
    let calls: Vec<&str> = next
        .request
        .messages
        .iter()
        .flat_map(|m| &m.parts)
        .filter_map(|p| match p {
            Part::ToolCall(c) => Some(c.name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(calls, ["collaboration__spawn_agent"]);
}

#[test]
fn flat_names_never_collide_and_fit_vendor_limits() {
    let long = "n".repeat(60);
    let decoded = check_decode_json(json!({
        "input": "hi",
        "tools": [
            {"type": "function", "name": "ns__a"},
            {"type": "namespace", "name": "ns", "description": "group", "tools": [
                {"type": "function", "name": "a", "description": "own"},
                {"type": "function", "name": long},
                {"type": "web_search"}
            ]}
        ]
    }));
    let names: Vec<&str> = decoded
        .request
        .tools
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(names.len(), 3);
    assert_eq!(names[0], "ns__a");
    assert_eq!(names[1], "ns__a_2");
    assert!(names[2].len() <= 64 && names[2].starts_with("ns__nnn"));
    assert_eq!(
        decoded.request.tools[1].description.as_deref(),
        Some("group\n\nown")
    );
    assert_eq!(decoded.request.dropped_tools, ["web_search"]);
    assert_eq!(
        decoded.echo.namespaced("ns__a_2").map(|t| t.name.as_str()),
        Some("a")
    );
    assert_eq!(decoded.echo.namespaced("ns__a"), None);
}

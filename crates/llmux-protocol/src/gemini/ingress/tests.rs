//! Gemini ingress tests: golden tests that re-encode the recorded Gemini answers (decoded by the
//! egress codec) and decode the recorded requests, rule-by-rule tests, and property tests
//! (`props`).

use bytes::BytesMut;
use pretty_assertions::assert_eq;
use serde_json::{Value, json};

use super::*;
use crate::error::ErrorKind;
use crate::gemini;
use crate::neutral::{
    FinishReason, Image, ImageSource, Message, Part, Reasoning, ReasoningConfig, Request, Response,
    ResponseFormat, Role, StreamEvent, Tool, ToolCall, ToolChoice, ToolResult, Usage,
};
use crate::sse;

mod props;

const TEXT: &[u8] = include_bytes!("../../../../../fixtures/gemini/generate_content_text.json");
const TEXT_REQUEST: &[u8] =
    include_bytes!("../../../../../fixtures/gemini/generate_content_text.request.json");
const CALL: &[u8] =
    include_bytes!("../../../../../fixtures/gemini/generate_content_function_call.json");
const CALL_REQUEST: &[u8] =
    include_bytes!("../../../../../fixtures/gemini/generate_content_function_call.request.json");
const STREAM_TEXT: &[u8] = include_bytes!("../../../../../fixtures/gemini/stream_text.sse");
const STREAM_CALLS: &[u8] =
    include_bytes!("../../../../../fixtures/gemini/stream_parallel_function_calls.sse");
const STREAM_CALLS_REQUEST: &[u8] =
    include_bytes!("../../../../../fixtures/gemini/stream_parallel_function_calls.request.json");
const STREAM_AFTER: &[u8] =
    include_bytes!("../../../../../fixtures/gemini/stream_after_function_response.sse");
const STREAM_AFTER_REQUEST: &[u8] =
    include_bytes!("../../../../../fixtures/gemini/stream_after_function_response.request.json");

const SEED: u64 = 7;

// ---------------------------------------------------------------------------------------------
// Helpers: every test goes through these.

/// Decodes a client request.
#[track_caller]
fn check_decode(body: Value) -> Decoded {
    decode_request(body.to_string().as_bytes(), "alias", false).expect("request decodes")
}

/// The error a client request that must not decode gives.
#[track_caller]
fn check_bad(body: Value) -> String {
    decode_request(body.to_string().as_bytes(), "alias", false)
        .expect_err("request must not decode")
        .0
}

/// A request with one user text and `extra` members merged in.
fn body_with(extra: Value) -> Value {
    let mut body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]});
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    body
}

/// Encodes a whole answer and reads it back as JSON.
#[track_caller]
fn check_encode(response: &Response) -> Value {
    let bytes = encode_response(response, "my-alias", "resp-1");
    serde_json::from_slice(&bytes).expect("answer is JSON")
}

/// Runs neutral events through a stream encoder (finishing it) and returns the bytes.
fn encode_stream(framing: Framing, events: &[StreamEvent]) -> String {
    let mut encoder = StreamEncoder::new(framing, "my-alias", "resp-1");
    let mut out = BytesMut::new();
    for event in events {
        encoder.encode(event, &mut out);
    }
    encoder.finish(&mut out);
    String::from_utf8(out.to_vec()).expect("UTF-8")
}

/// The chunk objects of an encoded stream, in either framing.
#[track_caller]
fn chunks_of(framing: Framing, text: &str) -> Vec<Value> {
    match framing {
        Framing::JsonArray => match serde_json::from_str(text).expect("one JSON array") {
            Value::Array(chunks) => chunks,
            other => panic!("not an array: {other}"),
        },
        Framing::Sse => {
            let mut decoder = sse::Decoder::default();
            decoder.push(text.as_bytes());
            decoder.finish();
            let mut chunks = Vec::new();
            while let Some(event) = decoder.next_event() {
                chunks.push(serde_json::from_slice(&event.data).expect("chunk is JSON"));
            }
            chunks
        }
    }
}

/// Neutral events of a recorded SSE stream, decoded by the egress codec.
fn recorded_events(body: &[u8]) -> Vec<StreamEvent> {
    let mut frames = sse::Decoder::default();
    frames.push(body);
    frames.finish();
    let mut decoder = gemini::StreamDecoder::new(SEED);
    let mut events = Vec::new();
    while let Some(event) = frames.next_event() {
        events.extend(decoder.decode(&event).expect("chunk decodes"));
    }
    events
}

/// Re-encodes a recorded stream and checks what every chunk must hold; returns the chunks.
#[track_caller]
fn check_restream(name: &str, recorded: &[u8]) -> Vec<Value> {
    let events = recorded_events(recorded);
    let sse_text = encode_stream(Framing::Sse, &events);
    insta::assert_snapshot!(name, sse_text);
    // Google's framing: `data: ` and `\r\n\r\n` after each chunk, nothing else.
    for frame in sse_text.split_terminator("\r\n\r\n") {
        assert!(
            frame.starts_with("data: {") && !frame.contains('\n'),
            "{frame:?}"
        );
    }
    assert!(sse_text.ends_with("}\r\n\r\n"));
    let chunks = chunks_of(Framing::Sse, &sse_text);
    // The JSON-array framing holds the same chunks.
    let array = encode_stream(Framing::JsonArray, &events);
    assert_eq!(chunks_of(Framing::JsonArray, &array), chunks);
    for chunk in &chunks {
        assert_eq!(chunk["modelVersion"], "my-alias");
        assert_eq!(chunk["responseId"], "resp-1");
        assert_eq!(chunk["candidates"][0]["index"], 0);
        assert_eq!(chunk["candidates"][0]["content"]["role"], "model");
    }
    chunks
}

/// The parts of all chunks, in order.
fn parts_of(chunks: &[Value]) -> Vec<Value> {
    chunks
        .iter()
        .flat_map(|c| {
            c["candidates"][0]["content"]["parts"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect()
}

fn text_of(parts: &[Value]) -> String {
    parts
        .iter()
        .filter(|p| p.get("thought").is_none())
        .filter_map(|p| p["text"].as_str())
        .collect()
}

fn user(text: &str) -> Message {
    Message {
        role: Role::User,
        parts: vec![Part::text(text)],
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

fn reasoning_of(part: Part) -> Reasoning {
    match part {
        Part::Reasoning(reasoning) => reasoning,
        other => panic!("not reasoning: {other:?}"),
    }
}

fn thinking(text: &str, signature: Option<&str>, redacted: Option<&str>) -> Part {
    Part::Reasoning(Reasoning {
        text: text.into(),
        signature: signature.map(str::to_owned),
        redacted: redacted.map(str::to_owned),
        // What a Gemini client returns in an envelope is another vendor's (Anthropic's here).
        origin: (signature.is_some() || redacted.is_some())
            .then_some(crate::neutral::ReasoningOrigin::Anthropic),
    })
}

// ---------------------------------------------------------------------------------------------
// Golden: recorded answers, decoded by the egress codec and encoded back.

/// The fields of a recorded answer the ingress must reproduce.
fn relevant(body: &Value) -> Value {
    let candidate = &body["candidates"][0];
    let parts: Vec<Value> = candidate["content"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|part| {
            let mut part = part.clone();
            // gemini-2.5 sends no id: the answer carries the synthesized one.
            if let Some(call) = part.get_mut("functionCall").and_then(Value::as_object_mut) {
                call.remove("id");
            }
            part
        })
        .collect();
    let usage = &body["usageMetadata"];
    json!({
        "parts": parts,
        "role": candidate["content"]["role"],
        "finishReason": candidate["finishReason"],
        "index": candidate["index"],
        "usage": [usage["promptTokenCount"], usage["candidatesTokenCount"], usage["totalTokenCount"], usage["thoughtsTokenCount"]],
        "modelVersion": body["modelVersion"],
        "responseId": body["responseId"],
    })
}

#[track_caller]
fn check_reencode(name: &str, recorded: &[u8]) -> Value {
    let recorded: Value = serde_json::from_slice(recorded).unwrap();
    let neutral = gemini::decode_response(recorded.to_string().as_bytes(), SEED).unwrap();
    let model = recorded["modelVersion"].as_str().unwrap();
    let id = recorded["responseId"].as_str().unwrap();
    let bytes = encode_response(&neutral, model, id);
    let text = String::from_utf8(bytes).unwrap();
    insta::assert_snapshot!(name, text);
    let encoded: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(relevant(&encoded), relevant(&recorded));
    // Google's member order.
    let keys: Vec<&str> = encoded
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(text.find("\"candidates\""), Some(1), "{keys:?}");
    assert!(text.find("\"usageMetadata\"") < text.find("\"modelVersion\""));
    assert!(text.find("\"modelVersion\"") < text.find("\"responseId\""));
    encoded
}

#[test]
fn text_answer_reencodes_as_recorded() {
    let encoded = check_reencode("generate_content_text", TEXT);
    assert_eq!(encoded["usageMetadata"]["totalTokenCount"], 46);
}

#[test]
fn function_call_answer_reencodes_with_its_signature_and_an_id() {
    let encoded = check_reencode("generate_content_function_call", CALL);
    let call = &encoded["candidates"][0]["content"]["parts"][0]["functionCall"];
    assert_eq!(call["id"], crate::neutral::synthesize_call_id(SEED));
    // A tool-call turn finishes with STOP, as on Gemini.
    assert_eq!(encoded["candidates"][0]["finishReason"], "STOP");
}

// ---------------------------------------------------------------------------------------------
// Golden: recorded streams, decoded by the egress codec and streamed back.

#[test]
fn text_stream_restreams() {
    let chunks = check_restream("stream_text", STREAM_TEXT);
    let recorded = chunks_of(Framing::Sse, std::str::from_utf8(STREAM_TEXT).unwrap());
    assert_eq!(text_of(&parts_of(&chunks)), text_of(&parts_of(&recorded)));
    let last = chunks.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert_eq!(
        last["candidates"][0]["content"]["parts"],
        json!([{"text": ""}])
    );
    let usage = &recorded.last().unwrap()["usageMetadata"];
    assert_eq!(
        last["usageMetadata"],
        json!({
            "promptTokenCount": usage["promptTokenCount"],
            "candidatesTokenCount": usage["candidatesTokenCount"],
            "totalTokenCount": usage["totalTokenCount"],
            "thoughtsTokenCount": usage["thoughtsTokenCount"],
        })
    );
    // Usage and the finish reason are only in the last chunk.
    for chunk in &chunks[..chunks.len() - 1] {
        assert!(chunk.get("usageMetadata").is_none());
        assert!(chunk["candidates"][0].get("finishReason").is_none());
    }
}

#[test]
fn parallel_call_stream_restreams_whole_calls_with_ids_and_signatures() {
    let chunks = check_restream("stream_parallel_function_calls", STREAM_CALLS);
    let recorded = chunks_of(Framing::Sse, std::str::from_utf8(STREAM_CALLS).unwrap());
    let calls = |chunks: &[Value]| -> Vec<Value> {
        parts_of(chunks)
            .into_iter()
            .filter(|p| p.get("functionCall").is_some())
            .collect()
    };
    // Same calls, ids, argument order and signature placement, one chunk each.
    assert_eq!(calls(&chunks), calls(&recorded));
    assert_eq!(chunks.len(), 4);
    assert_eq!(chunks[3]["candidates"][0]["finishReason"], "STOP");
}

#[test]
fn stream_after_function_response_restreams() {
    let chunks = check_restream("stream_after_function_response", STREAM_AFTER);
    let recorded = chunks_of(Framing::Sse, std::str::from_utf8(STREAM_AFTER).unwrap());
    assert_eq!(text_of(&parts_of(&chunks)), text_of(&parts_of(&recorded)));
    assert_eq!(
        chunks.last().unwrap()["usageMetadata"]["promptTokenCount"],
        281
    );
}

// ---------------------------------------------------------------------------------------------
// Golden: recorded requests.

#[track_caller]
fn check_request_fixture(name: &str, body: &[u8]) -> Request {
    let decoded = decode_request(body, "alias", true).expect("fixture decodes");
    insta::assert_json_snapshot!(name, decoded.request);
    // The egress decoder (used by the mock) reads the same conversation.
    let egress = gemini::decode_request(body).expect("egress decodes");
    assert_eq!(
        Request {
            model: "alias".into(),
            stream: true,
            ..egress
        },
        decoded.request
    );
    decoded.request
}

#[test]
fn recorded_requests_decode_like_the_egress_decoder() {
    check_request_fixture("generate_content_text.request", TEXT_REQUEST);
    let request = check_request_fixture("generate_content_function_call.request", CALL_REQUEST);
    assert_eq!(
        request.tools[0].parameters.as_ref().unwrap()["required"],
        json!(["a", "b"])
    );
    check_request_fixture(
        "stream_parallel_function_calls.request",
        STREAM_CALLS_REQUEST,
    );
    let request = check_request_fixture(
        "stream_after_function_response.request",
        STREAM_AFTER_REQUEST,
    );
    let Part::ToolCall(first) = &request.messages[1].parts[0] else {
        panic!("call expected");
    };
    // Gemini's own signature is kept as it came.
    assert!(first.signature.as_deref().unwrap().starts_with("EukBCuYB"));
}

// ---------------------------------------------------------------------------------------------
// decode_request.

#[test]
fn unknown_top_level_fields_are_refused_like_google() {
    assert_eq!(
        check_bad(body_with(json!({"web_search_options": {}}))),
        r#"Invalid JSON payload received. Unknown name "web_search_options": Cannot find field."#
    );
    // Both spellings of known fields, and `model`, are accepted.
    let decoded = check_decode(body_with(json!({
        "model": "models/gemini-2.5-flash",
        "system_instruction": {"parts": [{"text": "s"}]},
        "generation_config": {"max_output_tokens": 3},
        "safety_settings": [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        "cached_content": "cachedContents/abc"
    })));
    assert_eq!(decoded.request.system, ["s"]);
    assert_eq!(decoded.request.sampling.max_tokens, Some(3));
    assert_eq!(
        decoded.extras.safety_settings.as_deref().map(RawValue::get),
        Some(r#"[{"category":"HARM_CATEGORY_HARASSMENT","threshold":"BLOCK_NONE"}]"#)
    );
    assert_eq!(
        decoded.extras.cached_content.as_deref(),
        Some("cachedContents/abc")
    );
    // Unknown nested fields are ignored.
    check_decode(body_with(
        json!({"generationConfig": {"mediaResolution": "MEDIA_RESOLUTION_LOW"}}),
    ));
}

#[test]
fn model_and_stream_come_from_the_caller_and_extras_default_empty() {
    let decoded = decode_request(body_with(json!({})).to_string().as_bytes(), "m", true).unwrap();
    assert_eq!(
        (decoded.request.model.as_str(), decoded.request.stream),
        ("m", true)
    );
    assert!(decoded.extras.safety_settings.is_none() && decoded.extras.cached_content.is_none());
}

#[test]
fn malformed_bodies_are_errors() {
    for body in [
        "",
        "[]",
        "{",
        "{}",
        r#"{"contents": []}"#,
        r#"{"contents": "x"}"#,
    ] {
        assert!(
            decode_request(body.as_bytes(), "m", false).is_err(),
            "{body}"
        );
    }
    let err = check_bad(json!({"contents": [{"parts": [{"text": 3}]}]}));
    assert!(err.contains("contents[0].parts[0].text"), "{err}");
    assert_eq!(
        check_bad(json!({"contents": []})),
        "* GenerateContentRequest.contents: contents is not specified"
    );
}

#[test]
fn roles_thoughts_and_text_runs() {
    let decoded = check_decode(json!({"contents": [
        {"parts": [{"text": "a"}, {"text": "b"}]},
        {"role": "model", "parts": [
            {"text": "plan", "thought": true},
            {"text": " more", "thought": true},
            {"text": "", "thought": true, "thoughtSignature": "GEMsig"},
            {"text": "Hel"}, {"text": "lo", "thoughtSignature": "dropped"}, {"text": ""}
        ]},
        {"role": "user", "parts": [{"text": "ignored thought", "thought": true}, {"text": "c"}]}
    ]}));
    assert_eq!(
        decoded.request.messages,
        vec![
            Message {
                role: Role::User,
                parts: vec![Part::text("a"), Part::text("b")]
            },
            Message {
                role: Role::Assistant,
                parts: vec![
                    // A signature outside an envelope is Gemini's own.
                    Part::Reasoning(Reasoning {
                        origin: Some(crate::neutral::ReasoningOrigin::Gemini),
                        ..reasoning_of(thinking("plan more", Some("GEMsig"), None))
                    }),
                    Part::text("Hello")
                ]
            },
            user("c"),
        ]
    );
    assert_eq!(
        check_bad(json!({"contents": [{"role": "system", "parts": [{"text": "x"}]}]})),
        r#"contents[0].role: Please use a valid role: user, model. (got "system")"#
    );
}

#[test]
fn calls_keep_their_ids_and_responses_without_ids_match_by_name_then_order() {
    let decoded = check_decode(json!({"contents": [
        {"role": "user", "parts": [{"text": "go"}]},
        {"role": "model", "parts": [
            {"functionCall": {"name": "a", "args": {"x": 1}}, "thoughtSignature": "sigA"},
            {"functionCall": {"name": "b"}},
            {"functionCall": {"name": "c", "args": {}, "id": "given"}}
        ]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "b", "response": {"output": "B"}}},
            {"functionResponse": {"name": "zzz", "response": {"result": "A"}}},
            {"functionResponse": {"name": "c", "id": "given", "response": {"error": {"code": 1}}}},
            {"text": "and?"}
        ]}
    ]}));
    let messages = &decoded.request.messages;
    let ids: Vec<String> = messages[1]
        .parts
        .iter()
        .map(|p| match p {
            Part::ToolCall(call) => call.id.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        ids,
        [
            crate::neutral::synthesize_call_id(1),
            crate::neutral::synthesize_call_id(2),
            "given".to_owned()
        ]
    );
    assert_eq!(
        messages[1].parts[0],
        call(&ids[0], "a", r#"{"x":1}"#, Some("sigA"))
    );
    assert_eq!(messages[1].parts[1], call(&ids[1], "b", "{}", None));
    let results: Vec<&ToolResult> = messages[2..5]
        .iter()
        .map(|m| {
            assert_eq!(m.role, Role::Tool);
            match &m.parts[..] {
                [Part::ToolResult(result)] => result,
                other => panic!("{other:?}"),
            }
        })
        .collect();
    assert_eq!(
        (
            results[0].call_id.as_str(),
            results[0].content.as_str(),
            results[0].is_error
        ),
        (ids[1].as_str(), "B", false)
    );
    // No call named `zzz`: the first unanswered one.
    assert_eq!(
        (results[1].call_id.as_str(), results[1].content.as_str()),
        (ids[0].as_str(), "A")
    );
    assert_eq!(
        (
            results[2].call_id.as_str(),
            results[2].content.as_str(),
            results[2].is_error
        ),
        ("given", r#"{"code":1}"#, true)
    );
    assert_eq!(messages[5], user("and?"));
    // Calls and responses in the wrong turn are refused.
    assert!(
        check_bad(json!({"contents": [{"parts": [{"functionCall": {"name": "f"}}]}]}))
            .contains("belongs in a model turn")
    );
    assert!(
        check_bad(
            json!({"contents": [{"role": "model", "parts": [{"functionResponse": {"name": "f"}}]}]})
        )
        .contains("belongs in a user turn")
    );
}

#[test]
fn images_inline_and_by_uri_other_media_refused() {
    let decoded = check_decode(json!({"contents": [{"parts": [
        {"inlineData": {"mimeType": "image/png", "data": "iVBO"}},
        {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://example.com/cat"}},
        {"fileData": {"fileUri": "gs://bucket/dog.WEBP"}},
    ]}]}));
    let image = |source| {
        Part::Image(Image {
            source,
            detail: None,
        })
    };
    assert_eq!(
        decoded.request.messages[0].parts,
        vec![
            image(ImageSource::Base64 {
                media_type: "image/png".into(),
                data: "iVBO".into()
            }),
            image(ImageSource::Url("https://example.com/cat".into())),
            image(ImageSource::Url("gs://bucket/dog.WEBP".into())),
        ]
    );
    let err = check_bad(
        json!({"contents": [{"parts": [{"inlineData": {"mimeType": "application/zip", "data": "UEsD"}}]}]}),
    );
    assert!(
        err.starts_with("contents[0].parts[0].inlineData: mimeType \"application/zip\""),
        "{err}"
    );
    let err = check_bad(
        json!({"contents": [{"parts": [{"text": "x"}, {"fileData": {"mimeType": "video/mp4", "fileUri": "https://youtu.be/x"}}]}]}),
    );
    assert!(
        err.starts_with("contents[0].parts[1].fileData: mimeType \"video/mp4\""),
        "{err}"
    );
    let err = check_bad(
        json!({"contents": [{"parts": [{"fileData": {"fileUri": "https://example.com/blob"}}]}]}),
    );
    assert!(err.contains("a file without an image mimeType"), "{err}");
    let err = check_bad(
        json!({"contents": [{"parts": [{"fileData": {"mimeType": "image/png",
        "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc"}}]}]}),
    );
    assert!(err.contains("Gemini Files API"), "{err}");
    let err = check_bad(body_with(
        json!({"systemInstruction": {"parts": [{"inlineData": {"mimeType": "image/png", "data": "A"}}]}}),
    ));
    assert!(err.contains("only text parts"), "{err}");
}

#[test]
fn tools_from_json_schema_or_gemini_schema_and_gemini_only_tools_refused() {
    let decoded = check_decode(body_with(json!({"tools": [
        {"functionDeclarations": [
            {"name": "raw", "description": "d", "parametersJsonSchema": {"type": "object", "additionalProperties": false}},
            {"name": "typed", "parameters": {
                "type": "OBJECT",
                "propertyOrdering": ["a", "b"],
                "properties": {
                    "a": {"type": "STRING", "nullable": true, "format": "enum", "enum": ["x"]},
                    "b": {"type": "ARRAY", "items": {"type": "INTEGER", "example": 3}},
                    "c": {"anyOf": [{"type": "NUMBER"}], "nullable": true}
                },
                "required": ["a"]
            }},
            {"name": "bare", "description": ""}
        ]},
        {"function_declarations": [{"name": "snake"}]}
    ]})));
    assert_eq!(
        decoded.request.tools,
        vec![
            Tool {
                name: "raw".into(),
                description: Some("d".into()),
                parameters: Some(json!({"type": "object", "additionalProperties": false})),
                strict: None
            },
            Tool {
                name: "typed".into(),
                description: None,
                parameters: Some(json!({
                    "type": "object",
                    "properties": {
                        "a": {"type": ["string", "null"], "enum": ["x", null]},
                        "b": {"type": "array", "items": {"type": "integer"}},
                        "c": {"anyOf": [{"type": "number"}, {"type": "null"}]}
                    },
                    "required": ["a"]
                })),
                strict: None
            },
            Tool {
                name: "bare".into(),
                description: None,
                parameters: None,
                strict: None
            },
            Tool {
                name: "snake".into(),
                description: None,
                parameters: None,
                strict: None
            },
        ]
    );
    assert_eq!(
        check_bad(body_with(
            json!({"tools": [{"functionDeclarations": []}, {"googleSearch": {}}]})
        )),
        "tools[1].googleSearch is only available on Gemini models"
    );
    assert!(
        check_bad(body_with(
            json!({"tools": [{"functionDeclarations": [{"description": "x"}]}]})
        ))
        .contains("name is required")
    );
    // A schema nested past the limit is refused, not recursed into.
    let mut deep = json!({"type": "STRING"});
    for _ in 0..70 {
        deep = json!({"type": "ARRAY", "items": deep});
    }
    let err = check_bad(body_with(
        json!({"tools": [{"functionDeclarations": [{"name": "f", "parameters": deep}]}]}),
    ));
    assert!(
        err.ends_with("schema nested deeper than 64 levels"),
        "{err}"
    );
}

#[test]
fn function_calling_config_becomes_tool_choice() {
    let tools = json!([{"functionDeclarations": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}]);
    let decode = |config: Value| {
        check_decode(body_with(
            json!({"tools": tools, "toolConfig": {"functionCallingConfig": config}}),
        ))
        .request
    };
    let names = |request: &Request| -> Vec<String> {
        request.tools.iter().map(|t| t.name.clone()).collect()
    };
    let cases = [
        (json!({}), ToolChoice::Auto, vec!["a", "b", "c"]),
        (
            json!({"mode": "AUTO"}),
            ToolChoice::Auto,
            vec!["a", "b", "c"],
        ),
        (
            json!({"mode": "none"}),
            ToolChoice::None,
            vec!["a", "b", "c"],
        ),
        (
            json!({"mode": "ANY"}),
            ToolChoice::Required,
            vec!["a", "b", "c"],
        ),
        (
            json!({"mode": "ANY", "allowedFunctionNames": ["b"]}),
            ToolChoice::Named("b".into()),
            vec!["b"],
        ),
        (
            json!({"mode": "ANY", "allowedFunctionNames": ["c", "a"]}),
            ToolChoice::Required,
            vec!["a", "c"],
        ),
        (
            json!({"mode": "VALIDATED", "allowedFunctionNames": ["a"]}),
            ToolChoice::Auto,
            vec!["a"],
        ),
    ];
    for (config, choice, kept) in cases {
        let request = decode(config.clone());
        assert_eq!(request.tool_choice, Some(choice), "{config}");
        assert_eq!(names(&request), kept, "{config}");
    }
    assert!(
        check_decode(body_with(json!({"tools": tools})))
            .request
            .tool_choice
            .is_none()
    );
    let bad = |config: Value| {
        check_bad(body_with(
            json!({"tools": tools, "toolConfig": {"functionCallingConfig": config}}),
        ))
    };
    assert!(bad(json!({"mode": "SOMETIMES"})).contains("\"SOMETIMES\""));
    assert!(
        bad(json!({"mode": "ANY", "allowedFunctionNames": ["zz"]}))
            .contains("\"zz\" is not a declared function")
    );
    assert!(
        bad(json!({"mode": "AUTO", "allowedFunctionNames": ["a"]}))
            .contains("only allowed with mode ANY")
    );
}

#[test]
fn generation_config_maps_to_sampling_format_and_reasoning() {
    let request = check_decode(body_with(json!({"generationConfig": {
        "temperature": 0.5, "topP": 0.9, "topK": 40.0, "maxOutputTokens": 100,
        "stopSequences": ["END"], "candidateCount": 1, "seed": 42,
        "presencePenalty": 0.1, "frequencyPenalty": 0.2,
        "responseMimeType": "application/json",
        "responseSchema": {"type": "OBJECT", "properties": {"x": {"type": "STRING"}}},
        "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": true}
    }})))
    .request;
    assert_eq!(
        request.sampling,
        crate::neutral::Sampling {
            temperature: Some(0.5),
            top_p: Some(0.9),
            top_k: Some(40),
            max_tokens: Some(100),
            stop: vec!["END".into()],
            seed: Some(42),
            presence_penalty: Some(0.1),
            frequency_penalty: Some(0.2),
        }
    );
    assert_eq!(
        request.response_format,
        Some(ResponseFormat::JsonSchema {
            name: "response".into(),
            schema: json!({"type": "object", "properties": {"x": {"type": "string"}}}),
            strict: None
        })
    );
    assert_eq!(
        request.reasoning,
        Some(ReasoningConfig {
            effort: None,
            budget_tokens: Some(2048)
        })
    );
    let config =
        |config: Value| check_decode(body_with(json!({"generationConfig": config}))).request;
    // responseJsonSchema is JSON Schema already: kept as it is.
    let schema = json!({"type": "object", "additionalProperties": false});
    assert_eq!(
        config(json!({"responseMimeType": "application/json", "responseJsonSchema": schema}))
            .response_format,
        Some(ResponseFormat::JsonSchema {
            name: "response".into(),
            schema,
            strict: None
        })
    );
    assert_eq!(
        config(json!({"responseMimeType": "application/json"})).response_format,
        Some(ResponseFormat::JsonObject)
    );
    assert_eq!(
        config(json!({"responseMimeType": "text/plain"})).response_format,
        Some(ResponseFormat::Text)
    );
    // Dynamic budget: the vendor's default; 0 turns thinking off; a level is an effort.
    assert_eq!(
        config(json!({"thinkingConfig": {"thinkingBudget": -1, "includeThoughts": true}}))
            .reasoning,
        None
    );
    assert_eq!(
        config(json!({"thinkingConfig": {"thinkingBudget": 0}})).reasoning,
        Some(ReasoningConfig {
            effort: None,
            budget_tokens: Some(0)
        })
    );
    assert_eq!(
        config(json!({"thinkingConfig": {"thinkingLevel": "HIGH"}})).reasoning,
        Some(ReasoningConfig {
            effort: Some("high".into()),
            budget_tokens: None
        })
    );
    assert_eq!(
        config(json!({"candidateCount": 0})).sampling,
        crate::neutral::Sampling::default()
    );
}

#[test]
fn what_only_gemini_can_do_is_a_clear_error() {
    let bad = |config: Value| check_bad(body_with(json!({"generationConfig": config})));
    assert_eq!(
        bad(json!({"candidateCount": 2})),
        "generationConfig.candidateCount: only 1 candidate is supported (got 2)"
    );
    assert!(bad(json!({"responseLogprobs": true})).contains("log probabilities"));
    assert!(bad(json!({"logprobs": 3})).contains("log probabilities"));
    assert!(bad(json!({"responseModalities": ["TEXT", "IMAGE"]})).contains("\"IMAGE\""));
    assert!(bad(json!({"speechConfig": {}})).contains("speech"));
    assert!(bad(json!({"topK": 1.5})).contains("topK"));
    assert!(bad(json!({"responseMimeType": "text/x.enum"})).contains("\"text/x.enum\""));
    assert!(bad(json!({"responseSchema": {"type": "STRING"}})).contains("needs responseMimeType"));
    // The accepted modalities.
    check_decode(body_with(
        json!({"generationConfig": {"responseModalities": ["text"]}}),
    ));
}

// ---------------------------------------------------------------------------------------------
// countTokens.

#[test]
fn count_tokens_bodies_decode_for_estimation() {
    let plain = decode_count_tokens(
        br#"{"contents": [{"parts": [{"text": "hello there"}]}]}"#,
        "m",
    )
    .unwrap();
    assert_eq!((plain.model.as_str(), plain.messages.len()), ("m", 1));
    let wrapped = decode_count_tokens(
        br#"{"generateContentRequest": {"model": "models/x", "contents": [{"parts": [{"text": "hi"}]}],
            "systemInstruction": {"parts": [{"text": "sys"}]}}}"#,
        "m",
    )
    .unwrap();
    assert_eq!(wrapped.system, ["sys"]);
    assert!(wrapped.estimate_input_tokens() > 0);
    assert!(
        decode_count_tokens(br#"{"contents": [], "generateContentRequest": {}}"#, "m").is_err()
    );
    assert!(
        decode_count_tokens(br#"{"contentz": []}"#, "m")
            .unwrap_err()
            .0
            .contains("Unknown name \"contentz\"")
    );
    assert!(decode_count_tokens(br#"{"generateContentRequest": {"bogus": 1}}"#, "m").is_err());
    assert_eq!(encode_count_tokens(31), br#"{"totalTokens":31}"#);
}

// ---------------------------------------------------------------------------------------------
// encode_response.

#[test]
fn answer_parts_finish_and_usage() {
    let response = Response {
        id: "vendor-id".into(),
        model: "claude".into(),
        parts: vec![
            thinking("hmm", Some("SIG"), None),
            Part::text("Hi"),
            Part::Image(Image {
                source: ImageSource::Base64 {
                    media_type: "image/png".into(),
                    data: "AA==".into(),
                },
                detail: None,
            }),
            call("toolu_1", "f", r#"{"b": 1, "a": 2}"#, None),
            call("toolu_2", "g", "{broken", Some("gsig")),
        ],
        finish: FinishReason::ToolCalls,
        usage: Some(Usage {
            input_tokens: 10,
            output_tokens: 8,
            cached_input_tokens: Some(4),
            cache_creation_input_tokens: Some(2),
            reasoning_tokens: Some(3),
        }),
    };
    let body = check_encode(&response);
    let parts = body["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap();
    assert_eq!(parts[0]["text"], "hmm");
    assert_eq!(parts[0]["thought"], true);
    assert_eq!(parts[1], json!({"text": "Hi"}));
    assert_eq!(
        parts[2],
        json!({"inlineData": {"mimeType": "image/png", "data": "AA=="}})
    );
    assert_eq!(
        parts[3]["functionCall"],
        json!({"name": "f", "args": {"b": 1, "a": 2}, "id": "toolu_1"})
    );
    // The first call carries the signed thinking; later calls only their own signature.
    assert!(parts[3]["thoughtSignature"].is_string());
    assert_eq!(
        parts[4],
        json!({"functionCall": {"name": "g", "args": {}, "id": "toolu_2"}, "thoughtSignature": "gsig"})
    );
    assert_eq!(body["candidates"][0]["finishReason"], "STOP");
    assert_eq!(
        body["usageMetadata"],
        json!({"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 18,
               "cachedContentTokenCount": 4, "thoughtsTokenCount": 3})
    );
    assert_eq!(
        (body["modelVersion"].as_str(), body["responseId"].as_str()),
        (Some("my-alias"), Some("resp-1"))
    );
    // The vendor's id when the caller has none.
    let bytes = encode_response(&response, "m", "");
    assert_eq!(
        serde_json::from_slice::<Value>(&bytes).unwrap()["responseId"],
        "vendor-id"
    );
}

#[test]
fn finish_reasons_map_to_gemini_values() {
    for (reason, expected) in [
        (FinishReason::Stop, "STOP"),
        (FinishReason::ToolCalls, "STOP"),
        (FinishReason::Length, "MAX_TOKENS"),
        (FinishReason::ContentFilter, "SAFETY"),
        (FinishReason::ModelError, "MALFORMED_FUNCTION_CALL"),
        (FinishReason::Paused, "OTHER"),
    ] {
        let body = check_encode(&Response {
            parts: vec![Part::text("x")],
            finish: reason,
            ..Response::default()
        });
        assert_eq!(body["candidates"][0]["finishReason"], expected);
    }
    // A filtered answer with nothing in it has no content, as on Gemini; no usage, no metadata.
    let body = check_encode(&Response {
        finish: FinishReason::ContentFilter,
        ..Response::default()
    });
    assert_eq!(
        body,
        json!({"candidates": [{"finishReason": "SAFETY", "index": 0}], "modelVersion": "my-alias", "responseId": "resp-1"})
    );
    let body = check_encode(&Response::default());
    assert_eq!(
        body["candidates"][0]["content"],
        json!({"parts": [], "role": "model"})
    );
}

/// The round trip Gemini clients make: the answer's model turn comes back as history.
#[track_caller]
fn history_of(answer: &Value, keep_thoughts: bool) -> Vec<Message> {
    let mut parts: Vec<Value> = answer["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap()
        .clone();
    if !keep_thoughts {
        // Gemini CLI drops thought parts from its history.
        parts.retain(|p| p.get("thought").is_none());
    }
    check_decode(json!({"contents": [
        {"role": "user", "parts": [{"text": "go"}]},
        {"role": "model", "parts": parts},
    ]}))
    .request
    .messages
}

#[test]
fn signed_and_redacted_reasoning_come_back_with_or_without_thought_parts() {
    let response = Response {
        parts: vec![
            thinking("step one", Some("EqQBsig+/="), None),
            thinking("", None, Some("ErcBredacted")),
            thinking("unsigned summary", None, None),
            Part::text("Calling."),
            call("toolu_1", "f", r#"{"a":1}"#, None),
            call("toolu_2", "f", r#"{"a":2}"#, None),
        ],
        finish: FinishReason::ToolCalls,
        ..Response::default()
    };
    let answer = check_encode(&response);
    let kept = history_of(&answer, true);
    assert_eq!(kept[1].parts, response.parts);
    let dropped = history_of(&answer, false);
    assert_eq!(
        dropped[1].parts,
        vec![
            thinking("step one", Some("EqQBsig+/="), None),
            thinking("", None, Some("ErcBredacted")),
            Part::text("Calling."),
            call("toolu_1", "f", r#"{"a":1}"#, None),
            call("toolu_2", "f", r#"{"a":2}"#, None),
        ]
    );
    // Every signature is base64, so the Python SDK's bytes type takes it.
    for part in answer["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap()
    {
        if let Some(signature) = part["thoughtSignature"].as_str() {
            assert!(
                signature
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b)),
                "{signature}"
            );
        }
    }
}

#[test]
fn gemini_signatures_on_calls_pass_through_unwrapped() {
    let response = Response {
        parts: vec![call("3ae8iwca", "sum", "{}", Some("EukBCuYB"))],
        ..Response::default()
    };
    let answer = check_encode(&response);
    assert_eq!(
        answer["candidates"][0]["content"]["parts"][0]["thoughtSignature"],
        "EukBCuYB"
    );
    assert_eq!(history_of(&answer, false)[1].parts, response.parts);
}

// ---------------------------------------------------------------------------------------------
// StreamEncoder.

#[test]
fn stream_accumulates_call_arguments_into_one_part() {
    let events = vec![
        StreamEvent::Start {
            id: "vendor".into(),
            model: "gpt".into(),
        },
        StreamEvent::TextDelta {
            text: "Let me".into(),
        },
        StreamEvent::ToolCallStart {
            index: 0,
            id: "call_1".into(),
            name: "f".into(),
            signature: None,
        },
        StreamEvent::ToolCallDelta {
            index: 0,
            arguments: "{\"a\":".into(),
        },
        StreamEvent::ToolCallStart {
            index: 1,
            id: "call_2".into(),
            name: "g".into(),
            signature: None,
        },
        StreamEvent::ToolCallDelta {
            index: 1,
            arguments: "{}".into(),
        },
        StreamEvent::ToolCallDelta {
            index: 0,
            arguments: "1}".into(),
        },
        StreamEvent::Finish {
            reason: FinishReason::ToolCalls,
        },
        StreamEvent::Usage(Usage {
            input_tokens: 5,
            output_tokens: 7,
            ..Usage::default()
        }),
    ];
    for framing in [Framing::Sse, Framing::JsonArray] {
        let text = encode_stream(framing, &events);
        let chunks = chunks_of(framing, &text);
        let parts: Vec<Value> = chunks
            .iter()
            .map(|c| c["candidates"][0]["content"]["parts"][0].clone())
            .collect();
        assert_eq!(
            parts,
            vec![
                json!({"text": "Let me"}),
                json!({"functionCall": {"name": "f", "args": {"a": 1}, "id": "call_1"}}),
                json!({"functionCall": {"name": "g", "args": {}, "id": "call_2"}}),
                json!({"text": ""}),
            ]
        );
        let last = chunks.last().unwrap();
        assert_eq!(last["candidates"][0]["finishReason"], "STOP");
        assert_eq!(
            last["usageMetadata"],
            json!({"promptTokenCount": 5, "candidatesTokenCount": 7, "totalTokenCount": 12})
        );
        assert_eq!(last["responseId"], "resp-1");
    }
    // The JSON-array framing, byte for byte.
    let text = encode_stream(Framing::JsonArray, &events[..2]);
    assert!(text.starts_with("[{\"candidates\""), "{text}");
    assert!(text.contains("}\n,\r\n{"), "{text}");
    assert!(text.ends_with("}]"), "{text}");
}

#[test]
fn stream_thoughts_carry_their_signature_and_the_first_call_carries_the_reasoning() {
    let events = vec![
        StreamEvent::ReasoningDelta {
            text: "think".into(),
            signature: None,
            origin: Some(crate::neutral::ReasoningOrigin::Anthropic),
        },
        StreamEvent::ReasoningDelta {
            text: "ing".into(),
            signature: None,
            origin: Some(crate::neutral::ReasoningOrigin::Anthropic),
        },
        StreamEvent::ReasoningDelta {
            text: String::new(),
            signature: Some("ANTHsig".into()),
            origin: Some(crate::neutral::ReasoningOrigin::Anthropic),
        },
        StreamEvent::ToolCallStart {
            index: 0,
            id: "toolu_1".into(),
            name: "f".into(),
            signature: None,
        },
        StreamEvent::ToolCallDelta {
            index: 0,
            arguments: "{}".into(),
        },
        StreamEvent::ToolCallStart {
            index: 1,
            id: "toolu_2".into(),
            name: "f".into(),
            signature: None,
        },
        StreamEvent::Finish {
            reason: FinishReason::ToolCalls,
        },
    ];
    let chunks = chunks_of(Framing::Sse, &encode_stream(Framing::Sse, &events));
    let parts = parts_of(&chunks);
    // What the Python SDK keeps and what Gemini CLI keeps both decode to the signed thinking.
    let expected = vec![
        thinking("thinking", Some("ANTHsig"), None),
        call("toolu_1", "f", "{}", None),
        call("toolu_2", "f", "{}", None),
    ];
    let model_turn = |parts: Vec<Value>| {
        check_decode(
            json!({"contents": [{"parts": [{"text": "go"}]}, {"role": "model", "parts": parts}]}),
        )
        .request
        .messages[1]
            .parts
            .clone()
    };
    assert_eq!(model_turn(parts.clone()), expected);
    let without_thoughts: Vec<Value> = parts
        .into_iter()
        .filter(|p| p.get("thought").is_none())
        .collect();
    assert_eq!(model_turn(without_thoughts), expected);
}

#[test]
fn stream_error_after_content_ends_with_googles_envelope() {
    for framing in [Framing::Sse, Framing::JsonArray] {
        let events = vec![
            StreamEvent::TextDelta {
                text: "partial".into(),
            },
            StreamEvent::ToolCallStart {
                index: 0,
                id: "c".into(),
                name: "f".into(),
                signature: None,
            },
            StreamEvent::Error {
                kind: ErrorKind::UpstreamStatus(529),
                message: "overloaded".into(),
            },
            StreamEvent::TextDelta {
                text: "ignored".into(),
            },
        ];
        let chunks = chunks_of(framing, &encode_stream(framing, &events));
        assert_eq!(
            chunks,
            vec![
                chunks[0].clone(),
                json!({"error": {"code": 503, "message": "overloaded", "status": "UNAVAILABLE"}}),
            ]
        );
    }
    let mut encoder = StreamEncoder::new(Framing::JsonArray, "m", "r");
    let mut out = BytesMut::new();
    encoder.fail(ErrorKind::UpstreamTimeout, "slow", &mut out);
    encoder.finish(&mut out);
    assert!(encoder.is_done());
    assert_eq!(
        &out[..],
        br#"[{"error":{"code":504,"message":"slow","status":"DEADLINE_EXCEEDED"}}]"#
    );
}

#[test]
fn stream_without_events_still_ends_well_formed() {
    assert_eq!(
        chunks_of(Framing::JsonArray, &encode_stream(Framing::JsonArray, &[])),
        vec![
            json!({"candidates": [{"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": "STOP", "index": 0}],
                    "modelVersion": "my-alias", "responseId": "resp-1"})
        ]
    );
    let mut framer = ChunkFramer::new(Framing::JsonArray);
    let mut out = BytesMut::new();
    framer.end(&mut out);
    framer.push(b"{}", &mut out);
    assert_eq!(&out[..], b"[]");
    // SSE: a payload with line breaks takes one data line per line.
    let mut framer = ChunkFramer::new(Framing::Sse);
    let mut out = BytesMut::new();
    framer.push(b"{\r\n\"a\": 1}", &mut out);
    assert_eq!(&out[..], b"data: {\r\ndata: \"a\": 1}\r\n\r\n");
}

// ---------------------------------------------------------------------------------------------
// Errors and the byte path.

#[test]
fn errors_use_googles_envelope_and_status_names() {
    let cases = [
        (400, "INVALID_ARGUMENT"),
        (401, "UNAUTHENTICATED"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (408, "DEADLINE_EXCEEDED"),
        (409, "ABORTED"),
        (413, "INVALID_ARGUMENT"),
        (429, "RESOURCE_EXHAUSTED"),
        (499, "CANCELLED"),
        (500, "INTERNAL"),
        (501, "UNIMPLEMENTED"),
        (502, "UNAVAILABLE"),
        (503, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
        (422, "FAILED_PRECONDITION"),
        (599, "INTERNAL"),
    ];
    for (status, name) in cases {
        assert_eq!(rpc_status(status), name, "{status}");
    }
    assert_eq!(
        encode_error(400, "bad \"x\""),
        br#"{"error":{"code":400,"message":"bad \"x\"","status":"INVALID_ARGUMENT"}}"#
    );
    // The egress error decoder reads it back.
    let decoded = gemini::decode_error(429, &encode_error(429, "slow down"));
    assert_eq!(
        (decoded.status, decoded.message.as_str()),
        (429, "slow down")
    );
}

#[test]
fn model_version_is_rewritten_without_touching_other_bytes() {
    let chunk = br#"{"candidates": [{"content": {"parts": [{"text": "modelVersion"}]}}],"modelVersion": "gemini-2.5-flash","responseId": "r"}"#;
    let rewritten = rewrite_model_version(chunk, "my \"alias\"").unwrap();
    assert_eq!(
        String::from_utf8(rewritten).unwrap(),
        r#"{"candidates": [{"content": {"parts": [{"text": "modelVersion"}]}}],"modelVersion": "my \"alias\"","responseId": "r"}"#
    );
    assert_eq!(
        rewrite_model_version(br#"{"error": {"code": 500}}"#, "m"),
        None
    );
    assert_eq!(rewrite_model_version(b"[{}]", "m"), None);
    assert_eq!(rewrite_model_version(b"{", "m"), None);
    // Every recorded answer and chunk has one.
    assert!(rewrite_model_version(TEXT, "m").is_some());
    for line in std::str::from_utf8(STREAM_CALLS).unwrap().lines() {
        if let Some(data) = line.strip_prefix("data: ") {
            let rewritten = rewrite_model_version(data.as_bytes(), "m").unwrap();
            assert_eq!(
                serde_json::from_slice::<Value>(&rewritten).unwrap()["modelVersion"],
                "m"
            );
        }
    }
}

/// The Gemini byte path: envelopes llmux made for another vendor never reach Gemini.
#[test]
fn envelopes_are_stripped_for_gemini_and_own_signatures_kept() {
    use crate::neutral::ReasoningOrigin;
    let response = Response {
        parts: vec![
            Part::Reasoning(Reasoning {
                text: "thinking".into(),
                signature: Some("anthropic-sig".into()),
                redacted: None,
                origin: Some(ReasoningOrigin::Anthropic),
            }),
            Part::ToolCall(ToolCall {
                id: "call_1".into(),
                name: "f".into(),
                arguments: "{}".into(),
                signature: Some("gemini-own".into()),
            }),
        ],
        ..Response::default()
    };
    let answer: Value = serde_json::from_slice(&encode_response(&response, "m", "r1")).unwrap();
    let turn = answer["candidates"][0]["content"].clone();
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "hi"}]}, turn]});
    let stripped = strip_foreign_reasoning(body.to_string().as_bytes()).unwrap();
    let stripped: Value = serde_json::from_slice(&stripped).unwrap();
    let parts = stripped["contents"][1]["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 1, "{stripped}");
    assert_eq!(parts[0]["thoughtSignature"], "gemini-own");
    let plain = json!({"contents": [{"role": "model", "parts": [
        {"functionCall": {"name": "f", "args": {}}, "thoughtSignature": "gemini-own"}]}]});
    assert_eq!(strip_foreign_reasoning(plain.to_string().as_bytes()), None);
}

//! The cross-protocol codecs (`request`, `response`, `stream`): Chat Completions ⇄ neutral.

use bytes::BytesMut;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::neutral::{
    self, FinishReason, Image, ImageSource, Message, Part, ResponseFormat, Role, StreamEvent,
    ToolCall, ToolChoice, ToolResult, Usage,
};
use crate::openai_chat::{
    ChunkDecoder, ChunkEncoder, decode_neutral_request, decode_neutral_response,
    encode_neutral_request,
};
use crate::sse;

fn decode_stream(raw: &[u8]) -> Vec<StreamEvent> {
    let mut decoder = sse::Decoder::default();
    decoder.push(raw);
    decoder.finish();
    let mut chunks = ChunkDecoder::new(1);
    let mut events = Vec::new();
    while let Some(event) = decoder.next_event() {
        events.extend(chunks.decode(&event).unwrap());
    }
    events
}

#[test]
fn fixture_tool_calls_decode_to_neutral() {
    let body = include_bytes!("../../../../../fixtures/openai/chat_completion_tool_calls.json");
    let response = decode_neutral_response(body, 0).unwrap();
    assert_eq!(response.finish, FinishReason::ToolCalls);
    let calls: Vec<&ToolCall> = response
        .parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall(c) => Some(c),
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 2);
    assert!(calls[0].id.starts_with("call_"));
    serde_json::from_str::<Value>(&calls[0].arguments).unwrap();
    assert!(response.usage.unwrap().input_tokens > 0);
}

#[test]
fn fixture_parallel_tool_stream_decodes_with_stable_indexes() {
    let events = decode_stream(include_bytes!(
        "../../../../../fixtures/openai/chat_stream_parallel_tool_calls.sse"
    ));
    let starts: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCallStart { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    assert_eq!(starts, vec![0, 1]);
    for index in [0, 1] {
        let args: String = events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCallDelta {
                    index: i,
                    arguments,
                } if *i == index => Some(arguments.as_str()),
                _ => None,
            })
            .collect();
        serde_json::from_str::<Value>(&args).expect("arguments reassemble");
    }
    assert!(events.contains(&StreamEvent::Finish {
        reason: FinishReason::ToolCalls
    }));
}

#[test]
fn gemini_compat_stream_without_index_or_id_gets_synthesized_ids() {
    let raw = b"data: {\"id\":\"x\",\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":null,\"id\":\"\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":1}\"}}]},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n";
    let events = decode_stream(raw);
    let id = events
        .iter()
        .find_map(|e| match e {
            StreamEvent::ToolCallStart { id, .. } => Some(id.clone()),
            _ => None,
        })
        .unwrap();
    assert!(id.starts_with("call_") && id.len() == 29, "{id}");
    assert!(
        events.contains(&StreamEvent::Finish {
            reason: FinishReason::ToolCalls
        }),
        "stop after a tool call means tool_calls"
    );
}

#[test]
fn request_keeps_system_sampling_tools_images_and_signatures() {
    let body = json!({
        "model": "fast", "temperature": 0.3, "top_p": 0.9, "max_tokens": 99, "stop": "END", "seed": 3,
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}, "strict": true}},
        "reasoning_effort": "low", "parallel_tool_calls": false,
        "tools": [{"type": "function", "function": {"name": "sum", "description": "adds", "parameters": {"type": "object"}}}],
        "tool_choice": {"type": "function", "function": {"name": "sum"}},
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": [{"type": "text", "text": "use tools"}]},
            {"role": "user", "content": [{"type": "text", "text": "add"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "abc__ts__SIG1", "type": "function", "function": {"name": "sum", "arguments": "{\"a\":1}"}}]},
            {"role": "tool", "tool_call_id": "abc__ts__SIG1", "content": "2"}
        ]
    });
    let request = decode_neutral_request(&serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(request.system, vec!["be brief", "use tools"]);
    assert_eq!(request.sampling.max_tokens, Some(99));
    assert_eq!(request.sampling.stop, vec!["END"]);
    assert_eq!(request.tool_choice, Some(ToolChoice::Named("sum".into())));
    assert_eq!(request.parallel_tool_calls, Some(false));
    assert!(
        matches!(&request.messages[0].parts[1], Part::Image(Image { source: ImageSource::Base64 { media_type, .. }, detail: Some(_) }) if media_type == "image/png")
    );
    let Part::ToolCall(call) = &request.messages[1].parts[0] else {
        panic!("tool call")
    };
    assert_eq!(call.id, "abc");
    assert_eq!(call.signature.as_deref(), Some("SIG1"));
    let Part::ToolResult(result) = &request.messages[2].parts[0] else {
        panic!("tool result")
    };
    assert_eq!(result.call_id, "abc");
    assert!(matches!(
        request.response_format,
        Some(ResponseFormat::JsonSchema { .. })
    ));
}

#[test]
fn unsupported_features_are_refused_not_dropped() {
    for (body, fragment) in [
        (
            json!({"n": 2, "messages": [{"role": "user", "content": "x"}]}),
            "'n'",
        ),
        (
            json!({"logprobs": true, "messages": [{"role": "user", "content": "x"}]}),
            "logprobs",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]}),
            "input_audio",
        ),
        (
            json!({"messages": [{"role": "oracle", "content": "x"}]}),
            "oracle",
        ),
    ] {
        let err = decode_neutral_request(&serde_json::to_vec(&body).unwrap()).unwrap_err();
        assert!(err.message.contains(fragment), "{}", err.message);
    }
}

#[test]
fn chunk_encoder_emits_role_text_tool_calls_finish_usage_and_done() {
    let mut encoder = ChunkEncoder::new(7, "my-alias", true);
    let mut out = BytesMut::new();
    for event in [
        StreamEvent::Start {
            id: "msg_1".into(),
            model: "claude".into(),
        },
        StreamEvent::TextDelta { text: "hi".into() },
        StreamEvent::ToolCallStart {
            index: 0,
            id: "toolu_1".into(),
            name: "f".into(),
            signature: Some("S".into()),
        },
        StreamEvent::ToolCallDelta {
            index: 0,
            arguments: "{}".into(),
        },
        StreamEvent::Usage(Usage {
            input_tokens: 3,
            output_tokens: 4,
            ..Usage::default()
        }),
        StreamEvent::Finish {
            reason: FinishReason::ToolCalls,
        },
    ] {
        encoder.encode(&event, &mut out);
    }
    encoder.finish(&mut out);
    let text = String::from_utf8(out.to_vec()).unwrap();
    let frames: Vec<&str> = text
        .split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| f.strip_prefix("data: ").unwrap())
        .collect();
    assert_eq!(*frames.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["model"] == "my-alias" && c["id"] == "chatcmpl-msg_1")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(
        chunks[2]["choices"][0]["delta"]["tool_calls"][0]["id"],
        "toolu_1__ts__S"
    );
    assert_eq!(
        chunks[2]["choices"][0]["delta"]["tool_calls"][0]["extra_content"]["google"]["thought_signature"],
        "S"
    );
    assert!(
        chunks[3]["choices"][0]["delta"]["tool_calls"][0]
            .get("id")
            .is_none()
    );
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chunks[5]["usage"]["total_tokens"], 7);
    assert_eq!(chunks[5]["choices"], json!([]));
}

fn arb_conversation() -> impl Strategy<Value = Vec<Message>> {
    let text = "[a-zA-Z0-9 .,!?]{1,20}";
    let call = (
        "[a-z]{3,8}",
        "[a-z_]{1,8}",
        proptest::collection::btree_map("[a-z]{1,5}", 0i32..100, 0..3),
    )
        .prop_map(|(id, name, args)| ToolCall {
            id: format!("call_{id}"),
            name,
            arguments: serde_json::to_string(&args).unwrap(),
            signature: None,
        });
    let user = text.prop_map(|t| Message {
        role: Role::User,
        parts: vec![Part::text(t)],
    });
    let assistant = (
        proptest::option::of(text),
        proptest::collection::vec(call, 0..3),
    )
        .prop_map(|(t, calls)| {
            let mut parts: Vec<Part> = t.into_iter().map(Part::text).collect();
            parts.extend(calls.into_iter().map(Part::ToolCall));
            Message {
                role: Role::Assistant,
                parts,
            }
        });
    let tool = ("[a-z]{3,8}", text).prop_map(|(id, content)| Message {
        role: Role::Tool,
        parts: vec![Part::ToolResult(ToolResult {
            call_id: format!("call_{id}"),
            name: None,
            content,
            is_error: false,
        })],
    });
    proptest::collection::vec(prop_oneof![user, assistant, tool], 1..8)
}

proptest! {
    /// neutral → OpenAI → neutral keeps texts, tool calls and tool results.
    #[test]
    fn neutral_request_round_trips(messages in arb_conversation(), system in proptest::option::of("[a-z ]{1,10}")) {
        let mut request = neutral::Request { model: "m".into(), messages, ..neutral::Request::default() };
        request.system = system.into_iter().collect();
        let decoded = decode_neutral_request(&encode_neutral_request(&request)).unwrap();
        let expected: Vec<Message> = request.messages.iter().filter(|m| !m.parts.is_empty() || m.role == Role::Assistant).cloned().collect();
        prop_assert_eq!(decoded.system, request.system);
        prop_assert_eq!(decoded.messages, expected);
    }

    /// Arbitrary bytes never panic the decoders.
    #[test]
    fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_neutral_request(&bytes);
        let _ = decode_neutral_response(&bytes, 0);
        let mut decoder = ChunkDecoder::new(0);
        let _ = decoder.decode(&sse::Event { name: None, data: bytes.into() });
    }
}

#[test]
fn files_audio_and_media_urls_decode_and_encode_natively() {
    let pdf = "data:application/pdf;base64,JVBERi0=";
    let body = json!({"messages": [{"role": "user", "content": [
        {"type": "file", "file": {"filename": "a.pdf", "file_data": pdf}},
        {"type": "input_audio", "input_audio": {"data": "SUQz", "format": "mp3"}},
        {"type": "file_url", "file_url": {"url": "https://x/doc"}},
        {"type": "audio_url", "audio_url": {"url": "https://x/a.wav"}},
        {"type": "image_url", "image_url": {"url": "https://x/a.png", "headers": {"X-Token": "t"}}}]}]});
    let request = decode_neutral_request(&serde_json::to_vec(&body).unwrap()).unwrap();
    let parts = &request.messages[0].parts;
    let Part::File(file) = &parts[0] else {
        panic!("{parts:?}")
    };
    assert_eq!(file.media_type(), Some("application/pdf"));
    assert_eq!(file.filename.as_deref(), Some("a.pdf"));
    let Part::File(audio) = &parts[1] else {
        panic!("{parts:?}")
    };
    assert_eq!(audio.audio_format(), Some("mp3"));
    assert!(
        matches!(&parts[2], Part::File(f) if f.kind == neutral::FileKind::Document && f.media_type().is_none())
    );
    assert!(matches!(&parts[3], Part::File(f) if f.kind == neutral::FileKind::Audio));
    assert_eq!(request.url_headers[0].url, "https://x/a.png");
    assert_eq!(
        request.url_headers[0].headers,
        vec![("X-Token".to_owned(), "t".to_owned())]
    );

    let out: Value = serde_json::from_slice(&encode_neutral_request(&request)).unwrap();
    let content = &out["messages"][0]["content"];
    assert_eq!(
        content[0],
        json!({"type": "file", "file": {"filename": "a.pdf", "file_data": pdf}})
    );
    assert_eq!(
        content[1],
        json!({"type": "input_audio", "input_audio": {"data": "SUQz", "format": "mp3"}})
    );
    // URLs not downloaded are left out rather than sent malformed (the gateway refuses them
    // before encoding); the download headers are never encoded.
    assert_eq!(content.as_array().unwrap().len(), 3, "{content}");
    assert!(!out.to_string().contains("X-Token"));
}

#[test]
fn file_id_and_unknown_audio_formats_are_refused() {
    for (part, fragment) in [
        (
            json!({"type": "file", "file": {"file_id": "file-1"}}),
            "file_id",
        ),
        (
            json!({"type": "input_audio", "input_audio": {"data": "AA", "format": "flac"}}),
            "'flac'",
        ),
        (
            json!({"type": "file_url", "file_url": {"url": ""}}),
            "file_url",
        ),
    ] {
        let body = json!({"messages": [{"role": "user", "content": [part]}]});
        let err = decode_neutral_request(&serde_json::to_vec(&body).unwrap()).unwrap_err();
        assert!(err.message.contains(fragment), "{}", err.message);
    }
}

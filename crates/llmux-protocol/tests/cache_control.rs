//! Anthropic `cache_control` breakpoints sent on the Chat ingress (as LiteLLM and OpenRouter
//! accept them: on content parts, on whole messages, on tools) reach Anthropic on the blocks
//! they were set on, and nowhere else.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use llmux_protocol::{anthropic, gemini, openai_chat};
use serde_json::{Value, json};

fn chat_request() -> Value {
    json!({
        "model": "m",
        "messages": [
            {"role": "system", "content": [
                {"type": "text", "text": "A long, stable system prompt.", "cache_control": {"type": "ephemeral"}}
            ]},
            {"role": "user", "content": [
                {"type": "text", "text": "Here is a big document."},
                {"type": "text", "text": "The document's end.", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
                {"type": "text", "text": "What does it say?"}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "read", "arguments": "{}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "file contents",
             "cache_control": {"type": "ephemeral"}},
            {"role": "user", "content": "And now?", "cache_control": {"type": "ephemeral"}}
        ],
        "tools": [
            {"type": "function", "function": {"name": "read", "parameters": {"type": "object"}},
             "cache_control": {"type": "ephemeral"}},
            {"type": "function", "function": {"name": "write", "parameters": {"type": "object"}}}
        ]
    })
}

fn anthropic_body(chat: &Value) -> Value {
    let request =
        openai_chat::decode_neutral_request(chat.to_string().as_bytes()).expect("chat decodes");
    serde_json::from_slice(&anthropic::encode_request(&request, 1024)).expect("json")
}

#[test]
fn chat_cache_control_reaches_anthropic_on_the_marked_blocks() {
    let body = anthropic_body(&chat_request());
    let ephemeral = json!({"type": "ephemeral"});
    assert_eq!(
        body["system"],
        json!([{"type": "text", "text": "A long, stable system prompt.", "cache_control": ephemeral}])
    );
    let messages = body["messages"].as_array().expect("messages");
    // The user turn: only the second part is marked, with its ttl.
    let first = &messages[0]["content"];
    assert_eq!(first[0].get("cache_control"), None);
    assert_eq!(
        first[1]["cache_control"],
        json!({"type": "ephemeral", "ttl": "1h"})
    );
    assert_eq!(first[1]["text"], "The document's end.");
    assert_eq!(first[2].get("cache_control"), None);
    // The tool message and the next user message merge into one user turn; each keeps its mark.
    let last = &messages[2]["content"];
    assert_eq!(last[0]["type"], "tool_result");
    assert_eq!(last[0]["cache_control"], ephemeral);
    assert_eq!(last[1]["text"], "And now?");
    assert_eq!(last[1]["cache_control"], ephemeral);
    // Tools: only the marked one.
    assert_eq!(body["tools"][0]["cache_control"], ephemeral);
    assert_eq!(body["tools"][1].get("cache_control"), None);
}

#[test]
fn without_markers_the_system_prompt_stays_a_string() {
    let body = anthropic_body(&json!({
        "model": "m",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    }));
    assert_eq!(body["system"], "Be brief.");
    assert_eq!(body["messages"][0]["content"][0].get("cache_control"), None);
}

#[test]
fn other_vendors_never_see_cache_control() {
    let request = openai_chat::decode_neutral_request(chat_request().to_string().as_bytes())
        .expect("chat decodes");
    let chat = String::from_utf8(openai_chat::encode_neutral_request(&request)).expect("utf8");
    assert!(!chat.contains("cache_control"), "{chat}");
    let gemini =
        String::from_utf8(gemini::encode_request(&request).expect("encodes")).expect("utf8");
    assert!(!gemini.contains("cache_control"), "{gemini}");
}

#[test]
fn a_cache_control_anthropic_would_refuse_is_refused_at_the_door() {
    for (cache_control, message) in [
        (
            json!({"type": "persistent"}),
            "cache_control type 'persistent'",
        ),
        (
            json!({"type": "ephemeral", "ttl": "2d"}),
            "cache_control ttl '2d'",
        ),
    ] {
        let chat = json!({
            "model": "m",
            "messages": [{"role": "user", "content": [
                {"type": "text", "text": "Hi", "cache_control": cache_control}
            ]}]
        });
        let err =
            openai_chat::decode_neutral_request(chat.to_string().as_bytes()).expect_err("refused");
        assert!(err.message.contains(message), "{}", err.message);
    }
}

//! 100,000 levels of nesting, as a whole body and inside each field a decoder reads, through every
//! request decoder and on to every encoder: each answers (an error or a request), none overflows
//! the stack. serde_json stops derived and `Value` parsing at 128 levels; `RawValue` skipping is
//! iterative; the schema converter has its own limit.

use llmux_protocol::neutral::Request;
use llmux_protocol::{anthropic, embeddings, gemini, openai_chat, responses};

const DEPTH: usize = 100_000;

fn arrays() -> String {
    format!("{}{}", "[".repeat(DEPTH), "]".repeat(DEPTH))
}

fn objects() -> String {
    format!("{}1{}", r#"{"a":"#.repeat(DEPTH), "}".repeat(DEPTH))
}

/// A schema nested deeper than any limit but under serde_json's (so it parses into a tree).
fn deep_schema() -> String {
    let levels = 120;
    format!(
        "{}{}{}",
        r#"{"type":"array","items":"#.repeat(levels),
        r#"{"type":"string"}"#,
        "}".repeat(levels)
    )
}

/// Bodies for one ingress: the deep value alone, and in each place the decoder reads.
fn bodies(templates: &[&str]) -> Vec<String> {
    let mut out = vec![arrays(), objects()];
    for deep in [arrays(), objects(), deep_schema()] {
        for template in templates {
            out.push(template.replace("DEEP", &deep));
        }
    }
    out
}

fn encode_everywhere(request: &Request) {
    let _ = openai_chat::encode_neutral_request(request);
    let _ = anthropic::encode_request(request, 1024);
    let _ = gemini::encode_request(request);
    let _ = request.estimate_input_tokens();
}

#[test]
fn chat_decoders_survive_deep_nesting() {
    for body in bodies(&[
        r#"{"model":"m","messages":DEEP}"#,
        r#"{"model":"m","messages":[{"role":"user","content":DEEP}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","parameters":DEEP}}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema","json_schema":{"name":"r","schema":DEEP}}}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"metadata":DEEP,"stream_options":DEEP}"#,
    ]) {
        let _ = openai_chat::decode_request(body.as_bytes());
        if let Ok(request) = openai_chat::decode_neutral_request(body.as_bytes()) {
            encode_everywhere(&request);
        }
    }
}

#[test]
fn responses_decoder_survives_deep_nesting() {
    for body in bodies(&[
        r#"{"model":"m","input":DEEP}"#,
        r#"{"model":"m","input":[{"role":"user","content":DEEP}]}"#,
        r#"{"model":"m","input":[{"type":"function_call_output","call_id":"c","output":DEEP}]}"#,
        r#"{"model":"m","input":"hi","tools":[{"type":"function","name":"f","parameters":DEEP}]}"#,
        r#"{"model":"m","input":"hi","text":{"format":{"type":"json_schema","name":"r","schema":DEEP}}}"#,
        r#"{"model":"m","input":"hi","metadata":DEEP,"tool_choice":DEEP}"#,
    ]) {
        if let Ok(decoded) = responses::decode_request(body.as_bytes()) {
            encode_everywhere(&decoded.request);
        }
    }
}

#[test]
fn messages_decoder_survives_deep_nesting() {
    for body in bodies(&[
        r#"{"model":"m","max_tokens":5,"messages":DEEP}"#,
        r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":DEEP}]}"#,
        r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":DEEP}]}]}"#,
        r#"{"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":DEEP}]}]}"#,
        r#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}],"tools":[{"name":"f","input_schema":DEEP}]}"#,
        r#"{"model":"m","max_tokens":5,"system":DEEP,"metadata":DEEP,"messages":[]}"#,
    ]) {
        if let Ok(request) = anthropic::decode_request(body.as_bytes()) {
            encode_everywhere(&request);
        }
    }
}

#[test]
fn gemini_and_embeddings_decoders_survive_deep_nesting() {
    for body in bodies(&[
        r#"{"contents":DEEP}"#,
        r#"{"contents":[{"role":"user","parts":[{"functionResponse":{"name":"f","response":DEEP}}]}]}"#,
        r#"{"contents":[{"role":"model","parts":[{"functionCall":{"name":"f","args":DEEP}}]}]}"#,
        r#"{"contents":[],"tools":[{"functionDeclarations":[{"name":"f","parameters":DEEP}]}]}"#,
        r#"{"contents":[],"generationConfig":{"responseSchema":DEEP}}"#,
    ]) {
        if let Ok(request) = gemini::decode_request(body.as_bytes()) {
            encode_everywhere(&request);
        }
    }
    for body in bodies(&[
        r#"{"model":"m","input":DEEP}"#,
        r#"{"model":"m","input":"x","extra":DEEP}"#,
    ]) {
        let _ = embeddings::decode_request(body.as_bytes());
    }
}

#[test]
fn a_deep_schema_is_a_client_error_for_gemini() {
    let body = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"tools":[{{"type":"function","function":{{"name":"f","parameters":{}}}}}]}}"#,
        deep_schema()
    );
    let request = openai_chat::decode_neutral_request(body.as_bytes()).expect("decodes");
    let err = gemini::encode_request(&request).expect_err("too deep for Gemini");
    assert!(
        err.0.starts_with("tools[0].parameters.items.items.")
            && err.0.ends_with(": schema nested deeper than 64 levels"),
        "{}",
        err.0
    );
}

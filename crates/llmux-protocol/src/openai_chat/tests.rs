use super::*;
use serde_json::{Value, json};

mod neutral;

#[track_caller]
fn check_invalid(body: &str, expected_fragment: &str) {
    let err = decode_request(body.as_bytes()).expect_err("request must be refused");
    assert!(
        err.message.contains(expected_fragment),
        "message {:?} should contain {expected_fragment:?}",
        err.message
    );
}

/// `temperature` and `n` are read for the trace when they are numbers; any other JSON there is
/// left for the vendor to judge, never a reason to refuse the request here.
#[test]
fn reads_a_numeric_temperature_and_passes_anything_else() {
    let read = |temperature: &str| {
        let body = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"temperature":{temperature},"n":{temperature},"max_tokens":7}}"#
        );
        let request = decode_request(body.as_bytes()).unwrap();
        assert_eq!(request.max_tokens, Some(7));
        // `null` is the default, one choice.
        let whole = match temperature {
            "null" => Some(1),
            other => other.parse::<u32>().ok(),
        };
        assert_eq!(request.choices, whole, "n: {temperature}");
        request.temperature
    };
    assert_eq!(read("0.25"), Some(0.25));
    assert_eq!(read("1"), Some(1.0));
    assert_eq!(read("-0"), Some(0.0));
    assert_eq!(read("1e999"), None);
    for other in ["null", "\"0.5\"", "[1]", "{\"t\":1}", "true"] {
        assert_eq!(read(other), None, "{other}");
    }
    let without = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    assert_eq!(decode_request(without).unwrap().temperature, None);
    assert_eq!(
        decode_request(without).unwrap().choices,
        Some(1),
        "one choice without n"
    );
}

#[test]
fn reads_model_stream_usage_wish_and_capabilities() {
    let body = br#"{"model":"fast","stream":true,"stream_options":{"include_usage":true},
        "tools":[{"type":"function","function":{"name":"f"}}],
        "messages":[{"role":"user","content":[{"type":"text","text":""},{"type":"image_url","image_url":{"url":"https://x/y.png","detail":"high"}}]},
                    {"role":"assistant","content":null,"tool_calls":[]}]}"#;
    let request = decode_request(body).unwrap();
    assert_eq!(request.model.as_deref(), Some("fast"));
    assert!(request.client_wants_usage);
    assert_eq!(
        request.needs,
        Needs {
            image: true,
            video: false,
            tools: true,
            streaming: true,
            media: false
        }
    );
}

#[test]
fn missing_null_and_empty_model_mean_no_model() {
    for body in [
        r#"{"messages":[{"role":"user","content":"hi"}]}"#,
        r#"{"model":null,"messages":[{"role":"user","content":"hi"}]}"#,
        r#"{"model":"","messages":[{"role":"user","content":"hi"}]}"#,
    ] {
        assert_eq!(decode_request(body.as_bytes()).unwrap().model, None);
    }
}

#[test]
fn refuses_bad_requests_with_the_field_named() {
    check_invalid("{not json", "not valid JSON");
    check_invalid("[]", "not valid JSON");
    check_invalid(r#"{"model":"x"}"#, "missing required field 'messages'");
    check_invalid(r#"{"messages":[]}"#, "at least one message");
    check_invalid(r#"{"messages":"hi"}"#, "invalid 'messages'");
    check_invalid(r#"{"messages":[{"content":"hi"}]}"#, "messages[0]");
    check_invalid(
        r#"{"messages":[{"role":5,"content":"hi"}]}"#,
        "messages[0].role",
    );
    check_invalid(
        r#"{"messages":[{"role":"user","content":5}]}"#,
        "messages[0].content",
    );
    check_invalid(
        r#"{"messages":[{"role":"user","content":[{"text":"a"}]}]}"#,
        "type",
    );
    check_invalid(
        r#"{"model":5,"messages":[{"role":"user","content":"hi"}]}"#,
        "invalid 'model'",
    );
    check_invalid(
        r#"{"stream":"yes","messages":[{"role":"user","content":"hi"}]}"#,
        "invalid 'stream'",
    );
    check_invalid(
        r#"{"tools":{},"messages":[{"role":"user","content":"hi"}]}"#,
        "invalid 'tools'",
    );
}

#[test]
fn upstream_request_keeps_every_parameter_and_swaps_only_model() {
    // Regression (original router bug A17 #9): sampling and other parameters were dropped.
    let body = br#"{"model":"fast","provider":"openai","temperature":0.2,"top_p":0.9,"max_tokens":7,"seed":1,"n":2,"stop":["x"],"response_format":{"type":"json_object"},"user":"u","logprobs":true,"parallel_tool_calls":false,"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://a/b.png","detail":"low"}}]}]}"#;
    let request = decode_request(body).unwrap();
    let out = encode_upstream_request(body, "gpt-4o-mini", &request).unwrap();
    let mut expected: Value = serde_json::from_slice(body).unwrap();
    expected["model"] = json!("gpt-4o-mini");
    expected.as_object_mut().unwrap().remove("provider");
    assert_eq!(serde_json::from_slice::<Value>(&out).unwrap(), expected);
}

#[test]
fn json_string_writes_what_serde_writes() {
    for text in [
        "gpt-4o-mini",
        "",
        "a\"b",
        "back\\slash",
        "tab\there",
        "\u{1}",
        "é 模型",
        "\u{7f}",
    ] {
        assert_eq!(
            json_string(text),
            serde_json::to_vec(text).unwrap(),
            "{text:?}"
        );
    }
}

#[test]
fn upstream_request_is_the_clients_body_when_nothing_changes() {
    let body = br#"{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}"#;
    let request = decode_request(body).unwrap();
    let out = encode_upstream_request(body, "gpt-4o-mini", &request).unwrap();
    assert!(matches!(out, Cow::Borrowed(b) if b == body));
    // Another vendor name, a `provider` to drop, or a stream that must report usage: a copy.
    for (body, model) in [
        (&body[..], "gpt-4o"),
        (br#"{"model":"gpt-4o-mini","provider":"openai","messages":[{"role":"user","content":"hi"}]}"#, "gpt-4o-mini"),
        (br#"{"model":"gpt-4o-mini","stream":true,"messages":[{"role":"user","content":"hi"}]}"#, "gpt-4o-mini"),
    ] {
        let request = decode_request(body).unwrap();
        let out = encode_upstream_request(body, model, &request).unwrap();
        assert!(matches!(out, Cow::Owned(_)), "{}", String::from_utf8_lossy(body));
        let sent: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(sent["model"], json!(model));
        assert!(sent.get("provider").is_none());
    }
}

#[test]
fn streaming_upstream_request_asks_for_usage_and_keeps_other_stream_options() {
    let body = br#"{"model":"m","stream":true,"stream_options":{"include_obfuscation":false},"messages":[{"role":"user","content":"hi"}]}"#;
    let request = decode_request(body).unwrap();
    assert!(!request.client_wants_usage);
    let out: Value =
        serde_json::from_slice(&encode_upstream_request(body, "u", &request).unwrap()).unwrap();
    assert_eq!(
        out["stream_options"],
        json!({"include_obfuscation":false,"include_usage":true})
    );

    let asked = br#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#;
    let request = decode_request(asked).unwrap();
    let out: Value =
        serde_json::from_slice(&encode_upstream_request(asked, "u", &request).unwrap()).unwrap();
    assert_eq!(out["stream_options"], json!({"include_usage":true}));
}

#[test]
fn rewrite_response_swaps_model_and_reads_usage_from_fixture() {
    let body = include_bytes!("../../../../fixtures/openai/chat_completion_text.json");
    let out = rewrite_response(body, b"\"my-alias\"");
    let v: Value = serde_json::from_slice(&out.body).unwrap();
    let mut expected: Value = serde_json::from_slice(body).unwrap();
    expected["model"] = json!("my-alias");
    assert_eq!(v, expected);
    assert_eq!(out.usage.unwrap().prompt_tokens, Some(14));
    assert!(!out.usage_only);
}

#[test]
fn usage_only_chunk_is_recognized() {
    let chunk = br#"{"id":"c","object":"chat.completion.chunk","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":14,"completion_tokens":30,"total_tokens":44}}"#;
    let out = rewrite_response(chunk, b"\"x\"");
    assert!(out.usage_only);
    assert_eq!(out.usage.unwrap().completion_tokens, Some(30));
    let null_usage =
        br#"{"model":"gpt-4o","choices":[{"index":0,"delta":{"content":"a"}}],"usage":null}"#;
    let out = rewrite_response(null_usage, b"\"x\"");
    assert!(!out.usage_only);
    assert_eq!(out.usage, None);
}

#[test]
fn non_json_bodies_pass_unchanged() {
    assert_eq!(rewrite_response(b"oops", b"\"x\"").body, b"oops");
}

#[test]
fn invalid_utf8_from_the_vendor_becomes_replacement_characters() {
    let chunk = b"{\"model\":\"gpt-4o\",\"choices\":[{\"delta\":{\"content\":\"a\xFF\xC3\"}}]}";
    let out = rewrite_response(chunk, b"\"x\"");
    let v: Value = serde_json::from_slice(&out.body).expect("valid JSON");
    assert_eq!(v["model"], "x");
    assert_eq!(v["choices"][0]["delta"]["content"], "a\u{FFFD}\u{FFFD}");
    // Not JSON, still valid text.
    assert_eq!(
        rewrite_response(b"oops\xFF", b"\"x\"").body,
        "oops\u{FFFD}".as_bytes()
    );
}

#[test]
fn a_second_model_member_is_refused_so_the_borrowed_body_cannot_carry_one() {
    // The body goes to the vendor as received when its first `model` is the vendor's name: a
    // second `model` (raw or escaped) would then pick another model behind routing's back.
    for body in [
        &br#"{"model":"gpt-4o-mini","model":"o1-pro","messages":[{"role":"user","content":"hi"}]}"#[..],
        br#"{"model":"gpt-4o-mini","mod\u0065l":"o1-pro","messages":[{"role":"user","content":"hi"}]}"#,
    ] {
        let err = decode_request(body).expect_err("a duplicate model must be refused");
        assert!(err.message.contains("duplicate field `model`"), "{}", err.message);
    }
}

//! The Open Responses byte path to OpenAI's own `/responses`: the client's body goes upstream
//! with only `model` changed, and OpenAI's answer (whole, or each streamed event) comes back
//! with `model` set to the client's name and the fields the Open Responses specification
//! requires but OpenAI leaves out (`completed_at`, `presence_penalty`, `frequency_penalty`…)
//! added before the resource's closing brace. No JSON tree is built: members are found with
//! [`json_scan`] and every other byte is copied as it came.

use crate::json_scan::{self, Edit, Member};
use crate::usage::Usage;
use crate::utf8;

/// The upstream body: `model` replaced, `provider` (llmux's own field) removed, every other
/// byte as the client sent it (whitespace included, unless `provider` had to go).
pub fn encode_upstream_request(
    body: &[u8],
    upstream_model: &[u8],
) -> Result<Vec<u8>, json_scan::ScanError> {
    let members = json_scan::members(body)?;
    let has_provider = json_scan::find(body, &members, "provider").is_some();
    match json_scan::find(body, &members, "model") {
        Some(model) if !has_provider => {
            Ok(json_scan::splice(body, model.value.clone(), upstream_model))
        }
        _ => Ok(json_scan::edit(
            body,
            &members,
            &[Edit::Set("model", upstream_model), Edit::Remove("provider")],
        )),
    }
}

/// A client's body for OpenAI without the reasoning items OpenAI would refuse: those whose
/// `encrypted_content` llmux tagged as another vendor's (`llmux:…`, see
/// [`crate::neutral::tag_token`]), which a client replays after turns another vendor answered.
/// `None` (the usual case, found without parsing) when there is nothing to drop; otherwise the
/// `input` array is re-assembled around the dropped items, every other byte as sent.
pub fn strip_foreign_reasoning(body: &[u8]) -> Option<Vec<u8>> {
    use crate::json_scan::ElementEdit;
    use crate::neutral::TOKEN_TAG;
    use crate::openai_chat::SIGNATURE_SEPARATOR;
    let tagged = format!("\"{TOKEN_TAG}");
    let suspicious = memchr::memmem::find(body, tagged.as_bytes()).is_some()
        || memchr::memmem::find(body, SIGNATURE_SEPARATOR.as_bytes()).is_some();
    if !suspicious {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Item<'a> {
        #[serde(rename = "type", borrow)]
        kind: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow)]
        encrypted_content: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow)]
        call_id: Option<std::borrow::Cow<'a, str>>,
    }
    json_scan::edit_member_array(body, "input", |raw| {
        let Ok(item) = serde_json::from_slice::<Item<'_>>(raw) else {
            return ElementEdit::Keep;
        };
        match item.kind.as_deref() {
            Some("reasoning")
                if item
                    .encrypted_content
                    .as_deref()
                    .is_some_and(|c| c.starts_with(TOKEN_TAG)) =>
            {
                ElementEdit::Drop
            }
            // A Gemini signature rides on call ids (`call_x__ts__…`): OpenAI gets the id alone.
            Some("function_call" | "function_call_output") => {
                let Some((id, Some(_))) = item
                    .call_id
                    .as_deref()
                    .map(crate::openai_chat::split_signature)
                else {
                    return ElementEdit::Keep;
                };
                let Ok(members) = json_scan::members(raw) else {
                    return ElementEdit::Keep;
                };
                match json_scan::find(raw, &members, "call_id") {
                    Some(member) => ElementEdit::Replace(json_scan::splice(
                        raw,
                        member.value.clone(),
                        &crate::openai_chat::json_string(id),
                    )),
                    None => ElementEdit::Keep,
                }
            }
            _ => ElementEdit::Keep,
        }
    })
}

/// What the gateway reads from a body it cannot translate (items only OpenAI knows, such as
/// `custom_tool_call` or `item_reference`) but can still send to OpenAI as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Envelope {
    /// The requested model.
    #[serde(default)]
    pub model: Option<String>,
    /// llmux's vendor pin.
    #[serde(default)]
    pub provider: Option<String>,
    /// Whether the answer streams.
    #[serde(default)]
    pub stream: Option<bool>,
    /// The response this one continues.
    #[serde(default)]
    pub previous_response_id: Option<String>,
    /// `max_output_tokens`, for the token reservation.
    #[serde(default)]
    pub max_output_tokens: Option<u32>,
    /// Whether the vendor stores the answer (its default: true).
    #[serde(default)]
    pub store: Option<bool>,
}

/// Reads [`Envelope`] (unknown members ignored); `None` when the body is not such an object.
pub fn decode_envelope(body: &[u8]) -> Option<Envelope> {
    crate::openai_chat::require_object(body).ok()?;
    serde_json::from_slice(body).ok()
}

/// The `ResponseResource` members the specification requires (§C4) with the value used when
/// the vendor's resource lacks one. `completed_at` is handled apart (it depends on `status`).
const REQUIRED: &[(&str, &[u8])] = &[
    ("incomplete_details", b"null"),
    ("previous_response_id", b"null"),
    ("instructions", b"null"),
    ("output", b"[]"),
    ("error", b"null"),
    ("tools", b"[]"),
    ("tool_choice", b"\"auto\""),
    ("truncation", b"\"disabled\""),
    ("parallel_tool_calls", b"true"),
    ("text", b"{\"format\":{\"type\":\"text\"}}"),
    ("top_p", b"1"),
    ("presence_penalty", b"0"),
    ("frequency_penalty", b"0"),
    ("top_logprobs", b"0"),
    ("temperature", b"1"),
    ("reasoning", b"null"),
    ("user", b"null"),
    ("usage", b"null"),
    ("max_output_tokens", b"null"),
    ("max_tool_calls", b"null"),
    ("store", b"true"),
    ("background", b"false"),
    ("service_tier", b"\"default\""),
    ("metadata", b"{}"),
    ("safety_identifier", b"null"),
    ("prompt_cache_key", b"null"),
];

/// A resource or event after the rewrite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewritten {
    /// The bytes for the client (valid UTF-8).
    pub body: Vec<u8>,
    /// The resource's `usage`, when it had one.
    pub usage: Option<Usage>,
    /// The event's `type` (`response.completed`, `error`…); empty for a whole resource.
    pub kind: String,
}

impl Rewritten {
    /// Whether this event ends the stream (`response.completed`, `.incomplete`, `.failed`).
    pub fn is_terminal(&self) -> bool {
        matches!(
            self.kind.as_str(),
            "response.completed" | "response.incomplete" | "response.failed"
        )
    }

    /// Whether this event is the vendor's `error` event.
    pub fn is_error(&self) -> bool {
        self.kind == "error"
    }
}

/// A whole `ResponseResource` from the vendor, rewritten for the client: `model` is
/// `client_model` (a JSON string literal) and missing required members are added
/// (`completed_at` is `now` for a finished response). A body that is not a JSON object (an
/// error page) comes back unchanged, made valid UTF-8.
pub fn rewrite_resource(body: &[u8], client_model: &[u8], now: u64) -> Rewritten {
    let (body, usage) = match json_scan::members(body) {
        Ok(members) => complete(body, &members, client_model, now),
        Err(_) => (body.to_vec(), None),
    };
    Rewritten {
        body: utf8::valid_or_replaced_vec(body),
        usage,
        kind: String::new(),
    }
}

/// One streamed event's data, rewritten for the client: the `response` it carries (lifecycle
/// events) gets the treatment of [`rewrite_resource`]; other events pass unchanged.
pub fn rewrite_event(data: &[u8], client_model: &[u8], now: u64) -> Rewritten {
    let Ok(outer) = json_scan::members(data) else {
        return Rewritten {
            body: utf8::valid_or_replaced_vec(data.to_vec()),
            usage: None,
            kind: String::new(),
        };
    };
    let kind = json_scan::find(data, &outer, "type")
        .and_then(|m| serde_json::from_slice::<String>(&data[m.value.clone()]).ok())
        .unwrap_or_default();
    let resource = json_scan::find(data, &outer, "response")
        .map(|m| m.value.clone())
        .filter(|range| data[range.start] == b'{');
    let (body, usage) = match resource {
        Some(range) => {
            let inner = &data[range.clone()];
            match json_scan::members(inner) {
                Ok(members) => {
                    let (rewritten, usage) = complete(inner, &members, client_model, now);
                    (json_scan::splice(data, range, &rewritten), usage)
                }
                Err(_) => (data.to_vec(), None),
            }
        }
        None => (data.to_vec(), None),
    };
    Rewritten {
        body: utf8::valid_or_replaced_vec(body),
        usage,
        kind,
    }
}

/// `object` with `model` replaced and the missing required members inserted before its
/// closing brace, plus its usage.
fn complete(
    object: &[u8],
    members: &[Member],
    client_model: &[u8],
    now: u64,
) -> (Vec<u8>, Option<Usage>) {
    let find = |key| json_scan::find(object, members, key);
    let usage = find("usage")
        .filter(|m| object[m.value.start] == b'{')
        .and_then(|m| Usage::read(&object[m.value.clone()]));
    let mut missing: Vec<u8> = Vec::new();
    let mut add = |key: &str, value: &[u8]| {
        missing.extend_from_slice(b",\"");
        missing.extend_from_slice(key.as_bytes());
        missing.extend_from_slice(b"\":");
        missing.extend_from_slice(value);
    };
    if find("completed_at").is_none() {
        let finished =
            find("status").is_some_and(|m| &object[m.value.clone()] == b"\"completed\"".as_slice());
        let value = if finished {
            now.to_string()
        } else {
            "null".to_owned()
        };
        add("completed_at", value.as_bytes());
    }
    for (key, value) in REQUIRED {
        if find(key).is_none() {
            add(key, value);
        }
    }
    let model = find("model").map(|m| m.value.clone());
    let mut out = Vec::with_capacity(object.len() + missing.len() + client_model.len());
    match model {
        Some(range) => {
            out.extend_from_slice(&object[..range.start]);
            out.extend_from_slice(client_model);
            out.extend_from_slice(&object[range.end..]);
        }
        None => {
            out.extend_from_slice(object);
            missing.extend_from_slice(b",\"model\":");
            missing.extend_from_slice(client_model);
        }
    }
    if !missing.is_empty() {
        // The object ends with `}` (possibly followed by whitespace); the new members go
        // before it. An empty object takes them without their leading comma.
        if let Some(close) = out.iter().rposition(|&b| b == b'}') {
            let insert: &[u8] = if members.is_empty() {
                &missing[1..]
            } else {
                &missing
            };
            out.splice(close..close, insert.iter().copied());
        }
    }
    (out, usage)
}

/// The `error` event llmux writes when a native stream fails, numbered after the vendor's
/// events (`sequence_number`), in the shape of the spec's `error` event.
pub fn error_event(sequence_number: u64, kind: &str, code: &str, message: &str) -> Vec<u8> {
    let error = serde_json::json!({
        "type": "error",
        "sequence_number": sequence_number,
        "code": code,
        "message": message,
        "param": null,
        "error": {"type": kind, "code": code, "message": message, "param": null},
    });
    serde_json::to_vec(&error).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    const FIXTURE: &str =
        include_str!("../../../../fixtures/openresponses/openai_responses_nonstream.json");

    #[test]
    fn request_keeps_every_byte_but_the_model() {
        let body = b"{ \"input\" : \"hi\",\n  \"model\":\"fast\" , \"store\":false}";
        let out = encode_upstream_request(body, b"\"gpt-5\"").unwrap();
        assert_eq!(
            out,
            b"{ \"input\" : \"hi\",\n  \"model\":\"gpt-5\" , \"store\":false}"
        );
    }

    #[test]
    fn request_changes_only_model_and_provider() {
        let body = br#"{"model":"fast","input":[{"type":"reasoning","encrypted_content":"gAAA"}],"provider":"openai","store":false,"include":["reasoning.encrypted_content"]}"#;
        let out = encode_upstream_request(body, b"\"gpt-5\"").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"model":"gpt-5","input":[{"type":"reasoning","encrypted_content":"gAAA"}],"store":false,"include":["reasoning.encrypted_content"]}"#
        );
    }

    #[test]
    fn resource_gets_client_model_and_missing_required_fields() {
        let out = rewrite_resource(FIXTURE.as_bytes(), b"\"fast\"", 1_754_925_870);
        let value: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(value["model"], "fast");
        assert_eq!(value["completed_at"], 1_754_925_870);
        assert_eq!(value["presence_penalty"], 0);
        assert_eq!(value["frequency_penalty"], 0);
        // What OpenAI sent is kept as sent, byte for byte up to the closing brace.
        let original = FIXTURE.trim_end();
        let model_at = original.find("\"gpt-4o-mini-2024-07-18\"").unwrap();
        let text = String::from_utf8(out.body).unwrap();
        assert_eq!(&text[..model_at], &original[..model_at]);
        assert!(text.contains(&original[model_at + 24..original.len() - 1]));
        assert_eq!(out.usage.unwrap().prompt_tokens, Some(14));
        for key in REQUIRED
            .iter()
            .map(|(k, _)| *k)
            .chain(["completed_at", "id"])
        {
            assert!(value.get(key).is_some(), "{key}");
        }
    }

    #[test]
    fn present_fields_are_not_repeated() {
        let body = br#"{"id":"r","status":"completed","completed_at":5,"model":"m","presence_penalty":0.5}"#;
        let out = rewrite_resource(body, b"\"c\"", 9);
        let text = String::from_utf8(out.body).unwrap();
        assert_eq!(text.matches("completed_at").count(), 1);
        assert_eq!(text.matches("presence_penalty").count(), 1);
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["completed_at"], 5);
        assert_eq!(value["presence_penalty"], 0.5);
    }

    #[test]
    fn events_rewrite_the_nested_response_only() {
        let created = br#"{"type":"response.created","sequence_number":0,"response":{"id":"r","object":"response","created_at":1,"status":"in_progress","model":"gpt-5","output":[]}}"#;
        let out = rewrite_event(created, b"\"fast\"", 9);
        assert_eq!(out.kind, "response.created");
        assert!(!out.is_terminal());
        let value: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(value["response"]["model"], "fast");
        assert_eq!(value["response"]["completed_at"], Value::Null);
        assert_eq!(value["sequence_number"], 0);
        let delta = br#"{"type":"response.output_text.delta","sequence_number":3,"item_id":"m","output_index":0,"content_index":0,"delta":"model"}"#;
        let out = rewrite_event(delta, b"\"fast\"", 9);
        assert_eq!(out.body, delta);
        let done = br#"{"type":"response.completed","sequence_number":9,"response":{"id":"r","status":"completed","model":"gpt-5","usage":{"input_tokens":3,"output_tokens":4,"total_tokens":7}}}"#;
        let out = rewrite_event(done, b"\"fast\"", 9);
        assert!(out.is_terminal());
        assert_eq!(out.usage.unwrap().completion_tokens, Some(4));
        let value: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(value["response"]["completed_at"], 9);
    }

    #[test]
    fn hostile_input_never_panics() {
        for body in [
            &b""[..],
            b"{",
            b"{}",
            b"[]",
            b"{\"response\":{",
            b"{\"response\":{}}",
            b"\xff",
        ] {
            let _ = rewrite_resource(body, b"\"m\"", 1);
            let _ = rewrite_event(body, b"\"m\"", 1);
        }
        let out = rewrite_resource(b"{}", b"\"m\"", 1);
        let value: Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(value["model"], "m");
    }
}

#[cfg(test)]
mod strip_tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn foreign_reasoning_and_gemini_signatures_do_not_reach_openai() {
        let body = json!({"model": "m", "input": [
            {"type": "reasoning", "summary": [], "encrypted_content": "gAAAAB-own"},
            {"type": "reasoning", "summary": [], "encrypted_content": "llmux:sig:anthropic-sig"},
            {"type": "function_call", "call_id": "call_1__ts__c2ln", "name": "f", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1__ts__c2ln", "output": "ok"}
        ]});
        let out = strip_foreign_reasoning(body.to_string().as_bytes()).unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            out["input"],
            json!([
                {"type": "reasoning", "summary": [], "encrypted_content": "gAAAAB-own"},
                {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "ok"}
            ])
        );
        let own = br#"{"model":"m","input":[{"type":"reasoning","encrypted_content":"gAAAAB"}]}"#;
        assert_eq!(strip_foreign_reasoning(own), None);
    }
}

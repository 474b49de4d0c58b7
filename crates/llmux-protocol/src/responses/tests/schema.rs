//! A hand-written check of the Open Responses schema's required fields: the `ResponseResource`
//! keys of §C4 (from `schema/components/schemas/ResponseResource.json`), the output item
//! fields of §C5 and each streaming event's fields of §C7 (`schema/events.tsp`). Every
//! non-streamed response and every streamed event in these tests goes through it.

use serde_json::Value;

/// `ResponseResource.required`, in the schema's order.
pub const RESOURCE_REQUIRED: [&str; 32] = [
    "id",
    "object",
    "created_at",
    "completed_at",
    "status",
    "incomplete_details",
    "model",
    "previous_response_id",
    "instructions",
    "output",
    "error",
    "tools",
    "tool_choice",
    "truncation",
    "parallel_tool_calls",
    "text",
    "top_p",
    "presence_penalty",
    "frequency_penalty",
    "top_logprobs",
    "temperature",
    "reasoning",
    "user",
    "usage",
    "max_output_tokens",
    "max_tool_calls",
    "store",
    "background",
    "service_tier",
    "metadata",
    "safety_identifier",
    "prompt_cache_key",
];

/// The fields each event type requires besides `type` and `sequence_number`.
pub fn event_required(kind: &str) -> &'static [&'static str] {
    match kind {
        "response.created"
        | "response.queued"
        | "response.in_progress"
        | "response.completed"
        | "response.failed"
        | "response.incomplete" => &["response"],
        "response.output_item.added" | "response.output_item.done" => &["output_index", "item"],
        "response.content_part.added" | "response.content_part.done" => {
            &["item_id", "output_index", "content_index", "part"]
        }
        "response.output_text.delta" => &["item_id", "output_index", "content_index", "delta"],
        "response.output_text.done" => &["item_id", "output_index", "content_index", "text"],
        "response.function_call_arguments.delta" => &["item_id", "output_index", "delta"],
        "response.function_call_arguments.done" => &["item_id", "output_index", "arguments"],
        "response.reasoning_summary_part.added" | "response.reasoning_summary_part.done" => {
            &["item_id", "output_index", "summary_index", "part"]
        }
        "response.reasoning_summary_text.delta" => {
            &["item_id", "output_index", "summary_index", "delta"]
        }
        "response.reasoning_summary_text.done" => {
            &["item_id", "output_index", "summary_index", "text"]
        }
        "error" => &["error"],
        other => panic!("event type {other:?} is not in the spec"),
    }
}

#[track_caller]
fn has(value: &Value, key: &str, what: &str) {
    assert!(
        value.get(key).is_some(),
        "{what} lacks required field {key:?}: {value}"
    );
}

#[track_caller]
fn is_int(value: &Value, key: &str) {
    assert!(value[key].is_u64(), "{key} must be an integer: {value}");
}

#[track_caller]
fn is_number(value: &Value, key: &str) {
    assert!(value[key].is_number(), "{key} must be a number: {value}");
}

#[track_caller]
fn string_or_null(value: &Value, key: &str) {
    assert!(
        value[key].is_string() || value[key].is_null(),
        "{key} must be a string or null: {value}"
    );
}

/// Asserts that `resource` has every required key with a type the schema accepts.
#[track_caller]
pub fn check_resource(resource: &Value) {
    for key in RESOURCE_REQUIRED {
        has(resource, key, "response resource");
    }
    assert!(resource["id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(resource["object"], "response");
    is_int(resource, "created_at");
    let status = resource["status"].as_str().expect("status is a string");
    assert!(
        [
            "queued",
            "in_progress",
            "completed",
            "failed",
            "incomplete",
            "cancelled"
        ]
        .contains(&status),
        "bad status {status}"
    );
    if status == "in_progress" {
        assert!(resource["completed_at"].is_null());
    } else {
        is_int(resource, "completed_at");
    }
    match &resource["incomplete_details"] {
        Value::Null => assert_ne!(status, "incomplete"),
        details => {
            assert_eq!(status, "incomplete");
            assert!(details["reason"].is_string());
        }
    }
    match &resource["error"] {
        Value::Null => assert_ne!(status, "failed"),
        error => {
            assert_eq!(status, "failed");
            assert!(error["code"].is_string() && error["message"].is_string());
        }
    }
    assert!(resource["model"].is_string());
    string_or_null(resource, "previous_response_id");
    string_or_null(resource, "instructions");
    string_or_null(resource, "user");
    string_or_null(resource, "safety_identifier");
    string_or_null(resource, "prompt_cache_key");
    let output = resource["output"].as_array().expect("output is an array");
    for item in output {
        check_item(item);
    }
    if status == "in_progress" {
        assert!(output.is_empty());
    }
    for tool in resource["tools"].as_array().expect("tools is an array") {
        assert_eq!(tool["type"], "function");
        for key in ["name", "description", "parameters", "strict"] {
            has(tool, key, "function tool");
        }
    }
    let choice = &resource["tool_choice"];
    assert!(
        ["auto", "none", "required"].contains(&choice.as_str().unwrap_or_default())
            || choice["type"] == "function"
            || choice["type"] == "allowed_tools",
        "bad tool_choice {choice}"
    );
    assert!(["auto", "disabled"].contains(&resource["truncation"].as_str().unwrap_or_default()));
    assert!(resource["parallel_tool_calls"].is_boolean());
    assert!(resource["text"]["format"]["type"].is_string());
    for key in [
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "temperature",
    ] {
        is_number(resource, key);
    }
    is_int(resource, "top_logprobs");
    assert!(resource["reasoning"].is_null() || resource["reasoning"].is_object());
    match &resource["usage"] {
        Value::Null => {}
        usage => {
            for key in ["input_tokens", "output_tokens", "total_tokens"] {
                is_int(usage, key);
            }
            is_int(&usage["input_tokens_details"], "cached_tokens");
            is_int(&usage["output_tokens_details"], "reasoning_tokens");
        }
    }
    for key in ["max_output_tokens", "max_tool_calls"] {
        assert!(resource[key].is_null() || resource[key].is_u64());
    }
    assert!(resource["store"].is_boolean());
    assert!(resource["background"].is_boolean());
    assert!(resource["service_tier"].is_string());
    assert!(resource["metadata"].is_object());
}

/// Asserts that an output item has `id`, `type`, `status` (§C5) and its type's fields.
#[track_caller]
pub fn check_item(item: &Value) {
    for key in ["id", "type", "status"] {
        has(item, key, "output item");
    }
    assert!(
        ["in_progress", "completed", "incomplete"]
            .contains(&item["status"].as_str().unwrap_or_default()),
        "bad item status: {item}"
    );
    let id = item["id"].as_str().expect("item id is a string");
    match item["type"].as_str() {
        Some("message") => {
            assert!(id.starts_with("msg_"));
            assert_eq!(item["role"], "assistant");
            for part in item["content"].as_array().expect("content is an array") {
                check_output_text(part);
            }
        }
        Some("function_call") => {
            assert!(id.starts_with("fc_"));
            for key in ["call_id", "name", "arguments"] {
                assert!(item[key].is_string(), "{key} must be a string: {item}");
            }
        }
        Some("reasoning") => {
            assert!(id.starts_with("rs_"));
            for part in item["summary"].as_array().expect("summary is an array") {
                assert_eq!(part["type"], "summary_text");
                assert!(part["text"].is_string());
            }
            if let Some(content) = item.get("encrypted_content") {
                assert!(
                    content.is_string(),
                    "encrypted_content is optional, not nullable"
                );
            }
        }
        other => panic!("unexpected item type {other:?}"),
    }
}

#[track_caller]
fn check_output_text(part: &Value) {
    assert_eq!(part["type"], "output_text");
    assert!(part["text"].is_string());
    assert!(part["annotations"].is_array());
    assert!(part["logprobs"].is_array());
}

/// Asserts that a streamed event has its type's required fields with the right types.
#[track_caller]
pub fn check_event(name: &str, event: &Value) {
    assert_eq!(event["type"], name, "the event name must match the type");
    is_int(event, "sequence_number");
    for key in event_required(name) {
        has(event, key, name);
    }
    for key in ["output_index", "content_index", "summary_index"] {
        if event.get(key).is_some() {
            is_int(event, key);
        }
    }
    for key in ["item_id", "delta", "text", "arguments"] {
        if event.get(key).is_some() {
            assert!(event[key].is_string(), "{key} must be a string: {event}");
        }
    }
    match name {
        "response.created" | "response.in_progress" => {
            check_resource(&event["response"]);
            assert_eq!(event["response"]["status"], "in_progress");
        }
        "response.completed" | "response.failed" | "response.incomplete" => {
            check_resource(&event["response"]);
            assert_eq!(
                event["response"]["status"],
                name.trim_start_matches("response.")
            );
        }
        "response.output_item.added" | "response.output_item.done" => check_item(&event["item"]),
        "response.content_part.added" | "response.content_part.done" => {
            check_output_text(&event["part"]);
        }
        "response.reasoning_summary_part.added" | "response.reasoning_summary_part.done" => {
            assert_eq!(event["part"]["type"], "summary_text");
        }
        "error" => {
            let error = &event["error"];
            assert!(error["type"].is_string() && error["message"].is_string());
            assert!(error["code"].is_string() || error["code"].is_null());
            has(error, "param", "error payload");
        }
        _ => {}
    }
}

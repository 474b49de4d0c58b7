//! Gemini errors: a google.rpc.Status (`{"error":{code,message,status,details}}`, sometimes
//! wrapped in an array) → the status, type and message the client sees.

use serde_json::Value;

use crate::error::{ErrorKind, VendorError, decode_upstream_error};

/// Gemini error (status + google.rpc.Status body, possibly array-wrapped) → what the client sees.
///
/// The rpc `status` decides (`RESOURCE_EXHAUSTED` → 429 `rate_limit_error`, `UNAVAILABLE` → 503
/// `overloaded_error`…); without one, the HTTP status does. An `INVALID_ARGUMENT` whose
/// `ErrorInfo` reason is `API_KEY_INVALID` (how Google reports a bad key) is a 401. A
/// `RetryInfo` detail's `retryDelay` (`"41s"`, `"1.5s"`) becomes `retry_after_secs`, rounded up.
pub fn decode_error(status: u16, body: &[u8]) -> VendorError {
    let value = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| match v {
            Value::Array(items) => items.into_iter().next(),
            other => Some(other),
        });
    let error = value.as_ref().and_then(|v| v.get("error"));
    let mut decoded = from_status(status, error);
    if error.is_none()
        && let Some(text) = decode_upstream_error(body).message
    {
        decoded.message = text;
    }
    decoded
}

/// The client's view of a google.rpc.Status value (`error`), received with HTTP `status`.
pub(super) fn from_status(status: u16, error: Option<&Value>) -> VendorError {
    let rpc_status = error.and_then(|e| e.get("status")).and_then(Value::as_str);
    let details = error
        .and_then(|e| e.get("details"))
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let detail = |suffix: &str| {
        details.iter().find(|d| {
            d.get("@type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.ends_with(suffix))
        })
    };
    let bad_key = detail("google.rpc.ErrorInfo")
        .and_then(|d| d.get("reason"))
        .and_then(Value::as_str)
        == Some("API_KEY_INVALID");
    let (client_status, error_type) = if bad_key {
        (401, "authentication_error")
    } else {
        classify(rpc_status, status)
    };
    let message = match error {
        Some(Value::String(text)) if !text.is_empty() => text.clone(),
        Some(error) => error
            .get("message")
            .and_then(Value::as_str)
            .filter(|m| !m.is_empty())
            .map_or_else(|| format!("gemini returned {status}"), str::to_owned),
        None => format!("gemini returned {status}"),
    };
    let retry_after_secs = detail("google.rpc.RetryInfo")
        .and_then(|d| d.get("retryDelay"))
        .and_then(Value::as_str)
        .and_then(parse_duration);
    VendorError {
        status: client_status,
        kind: ErrorKind::UpstreamStatus(client_status),
        error_type: error_type.to_owned(),
        message,
        retry_after_secs,
    }
}

/// (client status, error type) for an rpc status name, else for the HTTP status.
fn classify(rpc_status: Option<&str>, status: u16) -> (u16, &'static str) {
    match rpc_status {
        Some("INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE") => {
            (400, "invalid_request_error")
        }
        Some("UNAUTHENTICATED") => (401, "authentication_error"),
        Some("PERMISSION_DENIED") => (403, "permission_error"),
        Some("NOT_FOUND") => (404, "not_found_error"),
        Some("RESOURCE_EXHAUSTED") => (429, "rate_limit_error"),
        Some("INTERNAL" | "UNKNOWN" | "DATA_LOSS") => (500, "api_error"),
        Some("UNAVAILABLE") => (503, "overloaded_error"),
        Some("DEADLINE_EXCEEDED") => (504, "timeout_error"),
        _ => match status {
            401 => (401, "authentication_error"),
            403 => (403, "permission_error"),
            404 => (404, "not_found_error"),
            429 => (429, "rate_limit_error"),
            503 => (503, "overloaded_error"),
            504 => (504, "timeout_error"),
            400..=499 => (status, "invalid_request_error"),
            500..=599 => (status, "api_error"),
            // An error body with a success status: something between us and Google broke.
            _ => (502, "api_error"),
        },
    }
}

/// A protobuf JSON duration (`"41s"`, `"1.5s"`) in whole seconds, rounded up.
fn parse_duration(text: &str) -> Option<u64> {
    let seconds: f64 = text.trim().strip_suffix('s')?.parse().ok()?;
    if !seconds.is_finite() || seconds < 0.0 || seconds > u32::MAX as f64 {
        return None;
    }
    // In range and non-negative, so the cast is exact after `ceil`.
    Some(seconds.ceil() as u64)
}

//! HTTP response assembly shared by the vendor handlers: content types, status faults,
//! `Retry-After`, and the request facts every handler reads from headers and body.

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::Value;

use crate::sse::{Events, Pacing};
use crate::state::Fault;

/// `application/json`.
pub(crate) const JSON: &str = "application/json";
/// `text/event-stream`.
pub(crate) const EVENT_STREAM: &str = "text/event-stream";

/// A response with `status`, `content_type` and `body`.
pub(crate) fn with_body(status: StatusCode, content_type: &'static str, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// `value` as a JSON response, sent according to `pacing`.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T, pacing: Pacing) -> Response {
    match Events::json(value) {
        Ok(events) => with_body(status, JSON, events.into_body(pacing)),
        Err(err) => internal(&err),
    }
}

/// A bare 500 for the (unreachable in practice) case of a body that fails to serialise.
pub(crate) fn internal(err: &serde_json::Error) -> Response {
    tracing::error!(error = %err, "mock failed to serialise a response");
    with_body(
        StatusCode::INTERNAL_SERVER_ERROR,
        "text/plain",
        Body::from("mock serialisation error"),
    )
}

/// Adds a header, skipping values that are not valid header text.
pub(crate) fn set_header(response: &mut Response, name: &'static str, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        response
            .headers_mut()
            .insert(header::HeaderName::from_static(name), value);
    }
}

/// The status response a fault asks for, if it sets a status: `body` when given, else the
/// vendor's envelope from `envelope`.
pub(crate) fn fault_status(
    fault: Option<&Fault>,
    envelope: impl FnOnce(StatusCode) -> Response,
) -> Option<Response> {
    let fault = fault?;
    let status = fault.status?;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = match &fault.body {
        Some(body) => {
            let trimmed = body.trim_start();
            let content_type = if trimmed.starts_with('{') || trimmed.starts_with('[') {
                JSON
            } else {
                "text/plain"
            };
            with_body(status, content_type, Body::from(body.clone()))
        }
        None => envelope(status),
    };
    if let Some(retry_after) = &fault.retry_after {
        set_header(&mut response, "retry-after", retry_after);
    }
    Some(response)
}

/// Adds the fault's `Retry-After` to a normal answer (for rules without a status).
pub(crate) fn finish(mut response: Response, fault: Option<&Fault>) -> Response {
    if let Some(retry_after) = fault.and_then(|f| f.retry_after.as_deref()) {
        set_header(&mut response, "retry-after", retry_after);
    }
    response
}

/// How a fault and the server options pace a body.
pub(crate) fn pacing(delay: std::time::Duration, fault: Option<&Fault>) -> Pacing {
    Pacing {
        delay,
        cut_after: fault.and_then(|f| f.cut_after_chunks),
    }
}

/// The request body parsed as JSON, when it is JSON.
pub(crate) fn parse(body: &Bytes) -> Option<Value> {
    serde_json::from_slice(body).ok()
}

/// A header's value as text, when present and valid.
pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = header_str(headers, "authorization")?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// The path and query of `uri`.
pub(crate) fn path_and_query(uri: &http::Uri) -> &str {
    uri.path_and_query().map_or("/", |pq| pq.as_str())
}

/// Seconds since the Unix epoch.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

//! The admin API under `/__mock/`, for driving an out-of-process mock over HTTP.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::StatusCode;

use crate::respond;
use crate::state::{FaultRule, RecordedCall, Shared};

/// `GET /__mock/calls`: every recorded call, oldest first.
pub(crate) async fn calls(State(shared): State<Arc<Shared>>) -> Json<Vec<RecordedCall>> {
    Json(shared.calls())
}

/// `DELETE /__mock/calls`.
pub(crate) async fn clear_calls(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.clear_calls();
    StatusCode::NO_CONTENT
}

/// `POST /__mock/faults` with a [`FaultRule`] body.
pub(crate) async fn add_fault(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    match serde_json::from_slice::<FaultRule>(&body) {
        Ok(rule) => {
            shared.add_fault(rule);
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::NO_CONTENT;
            response
        }
        Err(err) => respond::with_body(
            StatusCode::BAD_REQUEST,
            "text/plain",
            Body::from(format!("invalid fault rule: {err}")),
        ),
    }
}

/// `DELETE /__mock/faults`.
pub(crate) async fn clear_faults(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.clear_faults();
    StatusCode::NO_CONTENT
}

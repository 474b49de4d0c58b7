//! Reading a request body with a size limit and a deadline.

use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use llmux_protocol::error::ErrorKind;

use crate::api_error::ApiError;
use crate::state::Snapshot;

/// Reads a client's request body under the snapshot's `limits.max_body_bytes` and
/// `timeouts.body_read_ms`.
pub async fn read_request(body: Body, snapshot: &Snapshot) -> Result<Bytes, ApiError> {
    let deadline = Duration::from_millis(snapshot.config.timeouts.body_read_ms);
    read(body, snapshot.config.limits.max_body_bytes, deadline).await
}

/// Collects the body, refusing more than `limit` bytes (413) or taking longer than `deadline`
/// (408), so a slow or huge upload cannot hold a connection or memory.
pub async fn read(body: Body, limit: usize, deadline: Duration) -> Result<Bytes, ApiError> {
    let collect = Limited::new(body, limit).collect();
    match tokio::time::timeout(deadline, collect).await {
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) if err.is::<http_body_util::LengthLimitError>() => Err(ApiError::new(
            ErrorKind::PayloadTooLarge,
            format!("request body is larger than the limit of {limit} bytes"),
        )),
        Ok(Err(_)) => Err(ApiError::new(
            ErrorKind::InvalidRequest,
            "request body could not be read",
        )),
        Err(_) => Err(ApiError::new(
            ErrorKind::RequestTimeout,
            format!(
                "request body was not received within {} ms",
                deadline.as_millis()
            ),
        )),
    }
}

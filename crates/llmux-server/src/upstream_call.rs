//! One upstream attempt: send, classify the status, and turn vendor errors into client errors
//! with every secret scrubbed.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use llmux_protocol::error::{ErrorKind, GatewayError, decode_upstream_error};
use llmux_telemetry::mask::scrub;

use crate::api_error::ApiError;
use crate::state::Snapshot;

/// Upstream error bodies larger than this are cut: they are only read for their message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Reads a whole upstream body, at most `limit` bytes, waiting at most `idle` between chunks.
pub async fn read_body(
    response: &mut reqwest::Response,
    limit: usize,
    idle: Duration,
) -> Result<Bytes, ApiError> {
    let mut out = BytesMut::new();
    loop {
        match tokio::time::timeout(idle, response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                if out.len() + chunk.len() > limit {
                    return Err(ApiError::new(
                        ErrorKind::UpstreamProtocol,
                        format!("upstream response is larger than {limit} bytes"),
                    ));
                }
                out.extend_from_slice(&chunk);
            }
            Ok(Ok(None)) => return Ok(out.freeze()),
            Ok(Err(_)) => {
                return Err(ApiError::new(
                    ErrorKind::UpstreamUnreachable,
                    "upstream connection failed while reading the response",
                ));
            }
            Err(_) => {
                return Err(ApiError::new(
                    ErrorKind::UpstreamTimeout,
                    format!("upstream sent nothing for {} ms", idle.as_millis()),
                ));
            }
        }
    }
}

/// Turns a non-2xx upstream response into the error the client sees: the same status, the
/// vendor's message and code in the OpenAI envelope, with credentials scrubbed.
pub async fn upstream_failure(
    mut response: reqwest::Response,
    snapshot: &Snapshot,
    vendor: &str,
    idle: Duration,
) -> ApiError {
    let status = response.status().as_u16();
    let body = read_body(&mut response, ERROR_BODY_LIMIT, idle)
        .await
        .unwrap_or_default();
    let parsed = decode_upstream_error(&body);
    let secrets = snapshot.secret_refs();
    let message = match parsed.message {
        Some(m) => format!(
            "upstream {vendor} returned {status}: {}",
            scrub(&m, &secrets)
        ),
        None => format!("upstream {vendor} returned {status}"),
    };
    tracing::warn!(vendor, status, message = %message, "upstream error");
    let mut error = GatewayError::new(ErrorKind::UpstreamStatus(status), message);
    error.code = parsed.code.map(|c| scrub(&c, &secrets));
    error.param = parsed.param.map(|p| scrub(&p, &secrets));
    if let Some(kind) = parsed
        .kind
        .filter(|k| k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        error.type_override = Some(kind.to_ascii_lowercase());
    }
    ApiError(error)
}

/// A failure before any response: unreachable or timed out.
pub fn send_failure(err: &llmux_upstream::Error, vendor: &str) -> ApiError {
    let kind = err.kind();
    tracing::warn!(vendor, error = %err, "upstream request failed");
    let message = match kind {
        ErrorKind::UpstreamTimeout => format!("upstream {vendor} timed out: {err}"),
        _ => format!("upstream {vendor} is unreachable: {err}"),
    };
    ApiError::new(kind, message)
}

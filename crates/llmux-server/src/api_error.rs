//! A [`GatewayError`] as an HTTP response in the OpenAI envelope.

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use llmux_protocol::error::{ErrorKind, GatewayError};
use llmux_protocol::openai_chat::InvalidRequest;
use llmux_router::RouteError;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError(pub Box<GatewayError>);

impl ApiError {
    /// Wraps a [`GatewayError`].
    pub fn from_error(error: GatewayError) -> Self {
        Self(Box::new(error))
    }

    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self(Box::new(GatewayError::new(kind, message)))
    }

    /// The refusal of a body the byte path cannot splice `model` into: not a JSON object.
    pub fn not_an_object() -> Self {
        Self::new(
            ErrorKind::InvalidRequest,
            "request body must be a JSON object",
        )
    }
}

/// The HTTP status for each kind of failure.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidRequest => StatusCode::BAD_REQUEST,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        ErrorKind::UpstreamStatus(code) => {
            StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_GATEWAY)
        }
        ErrorKind::UpstreamUnreachable | ErrorKind::UpstreamProtocol => StatusCode::BAD_GATEWAY,
        ErrorKind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::NoCombination => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.0.to_openai_json();
        error_response(&self.0, status_of(self.0.kind), body, "application/json")
    }
}

/// `error` rendered in an envelope: `status`, the envelope's JSON `body` of `content_type`, and
/// the error's limit headers.
pub fn error_response(
    error: &GatewayError,
    status: StatusCode,
    body: Vec<u8>,
    content_type: &'static str,
) -> Response {
    let mut response = (status, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    add_limit_headers(headers, error);
    response
}

/// `Retry-After` and `x-ratelimit-*` for an error that carries them.
pub fn add_limit_headers(headers: &mut http::HeaderMap, error: &GatewayError) {
    if let Some(secs) = error.retry_after_secs {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    if let Some(limit) = error.rate_limit.as_deref() {
        headers.insert("x-ratelimit-limit", HeaderValue::from(limit.limit));
        headers.insert("x-ratelimit-remaining", HeaderValue::from(limit.remaining));
        headers.insert("x-ratelimit-reset", HeaderValue::from(limit.reset_secs));
    }
}

impl From<InvalidRequest> for ApiError {
    fn from(err: InvalidRequest) -> Self {
        Self(Box::new(
            GatewayError::new(ErrorKind::InvalidRequest, err.message).with_param(err.param),
        ))
    }
}

impl From<RouteError> for ApiError {
    fn from(err: RouteError) -> Self {
        let (code, param) = match &err {
            RouteError::UnknownVendor { .. } => ("unknown_vendor", "vendor"),
            RouteError::ModelNotFound { .. } => ("model_not_found", "model"),
            RouteError::NoCapableModel { .. } => ("unsupported_capability", "model"),
            RouteError::Empty(_) => ("no_combination", "model"),
        };
        Self(Box::new(
            GatewayError::new(ErrorKind::InvalidRequest, err.to_string())
                .with_code(code)
                .with_param(Some(param.into())),
        ))
    }
}

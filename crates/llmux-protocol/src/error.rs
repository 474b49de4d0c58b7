//! What failed, independent of the wire format, and how each ingress API renders it.

use serde::Serialize;

/// The class of a failure: decides the HTTP status, whether another attempt may succeed, and
/// the `type` in the error envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ErrorKind {
    /// The client's request is malformed or names something that does not exist.
    InvalidRequest,
    /// The route does not exist.
    NotFound,
    /// The method is not allowed on this route.
    MethodNotAllowed,
    /// The request body is over the configured limit.
    PayloadTooLarge,
    /// The client did not send its request body in time.
    RequestTimeout,
    /// The upstream answered with this error status; the status is kept for the client.
    UpstreamStatus(u16),
    /// The upstream could not be reached (connect error, reset before a response).
    UpstreamUnreachable,
    /// The upstream did not answer in time.
    UpstreamTimeout,
    /// The upstream answered something that is not the protocol it should speak.
    UpstreamProtocol,
    /// No configured combination can serve the request.
    NoCombination,
    /// A bug or an unexpected state in the gateway.
    Internal,
}

impl ErrorKind {
    /// Whether another attempt, on this or another combination, may succeed.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            Self::UpstreamUnreachable
                | Self::UpstreamTimeout
                | Self::UpstreamStatus(408 | 409 | 429 | 500 | 502 | 503 | 504 | 529)
        )
    }

    /// The OpenAI envelope's `type` for this kind.
    pub fn openai_type(self) -> &'static str {
        match self {
            Self::InvalidRequest
            | Self::NotFound
            | Self::MethodNotAllowed
            | Self::PayloadTooLarge
            | Self::RequestTimeout => "invalid_request_error",
            Self::UpstreamStatus(401) => "authentication_error",
            Self::UpstreamStatus(403) => "permission_error",
            Self::UpstreamStatus(404) => "not_found_error",
            Self::UpstreamStatus(429) => "rate_limit_error",
            Self::UpstreamStatus(400..=499) => "invalid_request_error",
            Self::UpstreamStatus(_) | Self::UpstreamProtocol => "upstream_error",
            Self::UpstreamUnreachable => "upstream_unreachable",
            Self::UpstreamTimeout => "timeout_error",
            Self::NoCombination => "service_unavailable",
            Self::Internal => "server_error",
        }
    }
}

/// A failure with a message that is safe to show to the client (never a credential).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GatewayError {
    /// What failed.
    pub kind: ErrorKind,
    /// Human-readable, lowercase, names the input at fault.
    pub message: String,
    /// The request parameter at fault, if any.
    pub param: Option<String>,
    /// A machine-readable code (`model_not_found`, an upstream's own code…).
    pub code: Option<String>,
    /// Overrides the envelope `type` (an upstream's own type, kept for the client).
    pub type_override: Option<String>,
    /// How long the client (and the gateway) should wait before trying again, in seconds.
    pub retry_after_secs: Option<u64>,
    /// The limit a 429 refers to, for `x-ratelimit-*` headers.
    pub rate_limit: Option<Box<RateLimit>>,
}

/// A client rate limit's state, rendered as `x-ratelimit-limit/remaining/reset` headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// The limit (per minute).
    pub limit: u64,
    /// What is left now.
    pub remaining: u64,
    /// Seconds until the limit is fully available again.
    pub reset_secs: u64,
}

impl GatewayError {
    /// A new error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            param: None,
            code: None,
            type_override: None,
            retry_after_secs: None,
            rate_limit: None,
        }
    }

    /// Sets the parameter at fault.
    pub fn with_param(mut self, param: Option<String>) -> Self {
        self.param = param;
        self
    }

    /// Sets the machine-readable code.
    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Renders OpenAI's `{"error":{"message","type","param","code"}}`.
    pub fn to_openai_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Body<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        struct Inner<'a> {
            message: &'a str,
            #[serde(rename = "type")]
            kind: &'a str,
            param: Option<&'a str>,
            code: Option<&'a str>,
        }
        let body = Body {
            error: Inner {
                message: &self.message,
                kind: self
                    .type_override
                    .as_deref()
                    .unwrap_or(self.kind.openai_type()),
                param: self.param.as_deref(),
                code: self.code.as_deref(),
            },
        };
        serde_json::to_vec(&body).unwrap_or_else(|_| {
            br#"{"error":{"message":"internal error","type":"server_error","param":null,"code":null}}"#
                .to_vec()
        })
    }
}

/// An upstream error body in any of the shapes OpenAI-compatible servers send, reduced to its
/// parts: OpenAI's `{"error":{...}}`, Google's array-wrapped `[{"error":{code,message,status}}]`,
/// `{"error":"text"}`, or plain text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UpstreamError {
    /// The vendor's message (the caller must scrub secrets before showing it).
    pub message: Option<String>,
    /// The vendor's `type` (or Google's `status`).
    pub kind: Option<String>,
    /// The vendor's `code`, as text.
    pub code: Option<String>,
    /// The vendor's `param`.
    pub param: Option<String>,
}

/// Reads an upstream error body; never fails (unknown shapes give an empty result or the text).
pub fn decode_upstream_error(body: &[u8]) -> UpstreamError {
    #[derive(serde::Deserialize)]
    struct Wrapper {
        error: Option<ErrorValue>,
    }
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum ErrorValue {
        Object(ErrorObject),
        Text(String),
    }
    #[derive(serde::Deserialize)]
    struct ErrorObject {
        message: Option<String>,
        #[serde(rename = "type")]
        kind: Option<String>,
        status: Option<String>,
        code: Option<serde_json::Value>,
        param: Option<String>,
    }
    // Serde would also read `[{...}]` as a struct (by position), so arrays are tried first.
    let is_array = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let wrapper = if is_array {
        serde_json::from_slice::<Vec<Wrapper>>(body)
            .ok()
            .and_then(|v| v.into_iter().next())
    } else {
        serde_json::from_slice::<Wrapper>(body).ok()
    };
    match wrapper.and_then(|w| w.error) {
        Some(ErrorValue::Object(e)) => UpstreamError {
            message: e.message,
            kind: e.kind.or(e.status),
            code: e.code.and_then(|c| match c {
                serde_json::Value::String(s) => Some(s),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            }),
            param: e.param,
        },
        Some(ErrorValue::Text(text)) => UpstreamError {
            message: Some(text),
            ..UpstreamError::default()
        },
        None => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            UpstreamError {
                message: (!text.is_empty() && !text.starts_with(['{', '[', '<']))
                    .then(|| text.chars().take(500).collect()),
                ..UpstreamError::default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_openai_google_array_and_text_errors() {
        let openai = decode_upstream_error(
            br#"{"error":{"message":"bad","type":"invalid_request_error","param":"model","code":"model_not_found"}}"#,
        );
        assert_eq!(openai.message.as_deref(), Some("bad"));
        assert_eq!(openai.code.as_deref(), Some("model_not_found"));
        assert_eq!(openai.param.as_deref(), Some("model"));
        let google = decode_upstream_error(
            br#"[{"error":{"code":400,"message":"Invalid JSON payload","status":"INVALID_ARGUMENT"}}]"#,
        );
        assert_eq!(google.kind.as_deref(), Some("INVALID_ARGUMENT"));
        assert_eq!(google.code.as_deref(), Some("400"));
        assert_eq!(
            decode_upstream_error(b"upstream down").message.as_deref(),
            Some("upstream down")
        );
        assert_eq!(decode_upstream_error(b"<html>").message, None);
    }

    #[test]
    fn openai_envelope_has_all_four_fields() {
        let err = GatewayError::new(
            ErrorKind::InvalidRequest,
            "missing required field 'messages'",
        )
        .with_param(Some("messages".into()));
        let v: serde_json::Value = serde_json::from_slice(&err.to_openai_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error":{"message":"missing required field 'messages'","type":"invalid_request_error","param":"messages","code":null}})
        );
    }

    #[test]
    fn retryable_kinds() {
        assert!(ErrorKind::UpstreamStatus(503).is_retryable());
        assert!(ErrorKind::UpstreamStatus(529).is_retryable());
        assert!(!ErrorKind::UpstreamStatus(400).is_retryable());
        assert!(!ErrorKind::InvalidRequest.is_retryable());
    }
}

/// A vendor's error response, decoded by its codec into what the client should see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VendorError {
    /// The HTTP status for the client (vendor-specific statuses such as Anthropic's 529 become
    /// a standard one).
    pub status: u16,
    /// What failed; decides retries.
    pub kind: ErrorKind,
    /// The error `type` for the client's envelope (e.g. `overloaded_error`, `rate_limit_error`).
    pub error_type: String,
    /// The vendor's message (the caller scrubs secrets before showing it).
    pub message: String,
    /// How long the vendor asks us to wait, in seconds (Retry-After, Gemini `RetryInfo`).
    pub retry_after_secs: Option<u64>,
}

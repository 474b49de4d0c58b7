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
        // vLLM and other OpenAI-compatible servers put the fields at the top level:
        // `{"object":"error","message","type","param","code"}`.
        message: Option<String>,
        #[serde(rename = "type")]
        kind: Option<String>,
        code: Option<serde_json::Value>,
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
        // Google's rpc status name; Azure OpenAI sends the HTTP status here as a number, and
        // a number must not make the whole body unreadable.
        status: Option<serde_json::Value>,
        code: Option<serde_json::Value>,
        param: Option<serde_json::Value>,
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
    let wrapper = wrapper.map(|w| match (w.error, w.message) {
        (None, Some(message)) => Some(ErrorValue::Object(ErrorObject {
            message: Some(message),
            kind: w.kind,
            status: None,
            code: w.code,
            param: None,
        })),
        (error, _) => error,
    });
    let code_text = |c: serde_json::Value| match c {
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match wrapper.flatten() {
        Some(ErrorValue::Object(e)) => UpstreamError {
            message: e.message,
            kind: e.kind.or(e.status.and_then(|s| match s {
                serde_json::Value::String(s) => Some(s),
                _ => None,
            })),
            code: e.code.and_then(code_text),
            param: e.param.and_then(|p| match p {
                serde_json::Value::String(s) => Some(s),
                _ => None,
            }),
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

/// The class of a vendor's error that decides which fallback chain a request takes
/// (`routing.context_fallbacks`, `routing.content_fallbacks`). Other errors follow the ordinary
/// retry and failover rules of their [`ErrorKind`].
///
/// Only refusals of the *request* are classified here, from the error responses vendors send.
/// An answer that the vendor stops itself (OpenAI `finish_reason: "content_filter"`, Gemini
/// `finishReason: "SAFETY"` or `promptFeedback.blockReason`, Anthropic `stop_reason: "refusal"`)
/// is a successful response with a finish reason, handled where answers are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The input (with `max_tokens`) does not fit the model's context window.
    ContextWindowExceeded,
    /// The vendor's safety system refused the request.
    ContentFilter,
    /// Anything else.
    Other,
}

impl ErrorClass {
    /// A bounded label: `context_window_exceeded`, `content_filter` or `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContextWindowExceeded => "context_window_exceeded",
            Self::ContentFilter => "content_filter",
            Self::Other => "other",
        }
    }
}

/// Classifies a vendor error from its HTTP status and the parts of its body
/// ([`decode_upstream_error`] reads OpenAI, Anthropic and Google shapes alike).
///
/// OpenAI and compatible servers say it with a `code` (`context_length_exceeded`;
/// `content_filter` from Azure OpenAI, `content_policy_violation` from the images API).
/// Anthropic and Gemini have no code for these (both are a 400 `invalid_request_error` /
/// `INVALID_ARGUMENT`), so their documented messages are matched, as are the messages of
/// OpenAI-compatible servers (vLLM, Mistral, DeepSeek…) that send no code. Only client errors
/// (4xx) are classified: a 5xx is the vendor's fault whatever its text says.
pub fn classify_error(status: u16, error: &UpstreamError) -> ErrorClass {
    classify_parts(
        status,
        error.code.as_deref(),
        error.kind.as_deref(),
        error.message.as_deref().unwrap_or_default(),
    )
}

/// [`classify_error`] of a raw error body.
pub fn classify_error_body(status: u16, body: &[u8]) -> ErrorClass {
    classify_error(status, &decode_upstream_error(body))
}

impl VendorError {
    /// The class of this error, from its status, type and message (a codec has no `code` to
    /// keep, so OpenAI-shaped errors are better classified by [`classify_error`] on the body).
    pub fn class(&self) -> ErrorClass {
        let status = match self.kind {
            ErrorKind::UpstreamStatus(status) => status,
            _ => self.status,
        };
        classify_parts(status, None, Some(&self.error_type), &self.message)
    }
}

impl GatewayError {
    /// The class of an upstream error as the gateway reports it (`UpstreamStatus` with the
    /// vendor's code, type and message); [`ErrorClass::Other`] for every other kind.
    pub fn class(&self) -> ErrorClass {
        let ErrorKind::UpstreamStatus(status) = self.kind else {
            return ErrorClass::Other;
        };
        classify_parts(
            status,
            self.code.as_deref(),
            self.type_override.as_deref(),
            &self.message,
        )
    }
}

/// Message fragments (lowercase) that mean the context window was exceeded, each from a real
/// vendor error:
/// - OpenAI and most compatible servers: "This model's maximum context length is 128000 tokens.
///   However, your messages resulted in 130000 tokens…"; the Responses API: "Your input exceeds
///   the context window of this model…";
/// - Anthropic: "prompt is too long: 208310 tokens > 200000 maximum" and "input length and
///   `max_tokens` exceed context limit: 197202 + 21333 > 200000, decrease input length or
///   `max_tokens` and try again";
/// - Gemini: "The input token count (1200000) exceeds the maximum number of tokens allowed
///   (1048576).";
/// - Mistral and vLLM: "… too large for model with 32768 maximum context length".
const CONTEXT_MESSAGES: [&str; 6] = [
    "maximum context length",
    "exceeds the context window",
    "prompt is too long",
    "exceed context limit",
    "exceeds the maximum number of tokens allowed",
    "context_length_exceeded",
];

/// Codes that mean the context window was exceeded.
const CONTEXT_CODES: [&str; 2] = ["context_length_exceeded", "context_window_exceeded"];

/// Codes that mean a content filter refused the request: Azure OpenAI's `content_filter`
/// (its `innererror.code` is `ResponsibleAIPolicyViolation`) and OpenAI's
/// `content_policy_violation` (images).
const CONTENT_CODES: [&str; 3] = [
    "content_filter",
    "content_policy_violation",
    "responsibleaipolicyviolation",
];

/// Message fragments (lowercase) of content refusals that come without such a code: Azure's
/// "The response was filtered due to the prompt triggering Azure OpenAI's content management
/// policy" and OpenAI's "Invalid prompt: your prompt was flagged as potentially violating our
/// usage policy" (code `invalid_prompt`, which other refusals share, hence the text).
const CONTENT_MESSAGES: [&str; 3] = [
    "content management policy",
    "flagged as potentially violating",
    "rejected as a result of our safety system",
];

// Vendors give no code for these classes (Anthropic, Gemini), so the message is matched; the
// fragments are specific enough that an unrelated 4xx does not contain them.
fn classify_parts(
    status: u16,
    code: Option<&str>,
    kind: Option<&str>,
    message: &str,
) -> ErrorClass {
    if !(400..500).contains(&status) {
        return ErrorClass::Other;
    }
    let is = |value: Option<&str>, set: &[&str]| {
        value.is_some_and(|v| set.iter().any(|s| v.eq_ignore_ascii_case(s)))
    };
    if is(code, &CONTEXT_CODES) || is(kind, &CONTEXT_CODES) {
        return ErrorClass::ContextWindowExceeded;
    }
    if is(code, &CONTENT_CODES) || is(kind, &CONTENT_CODES) {
        return ErrorClass::ContentFilter;
    }
    // Vendor messages are capped by the caller's body limit; only the start is searched, so a
    // hostile body costs a bounded scan.
    let end = message
        .char_indices()
        .nth(2048)
        .map_or(message.len(), |(i, _)| i);
    let message = message[..end].to_ascii_lowercase();
    if CONTEXT_MESSAGES.iter().any(|m| message.contains(m)) {
        return ErrorClass::ContextWindowExceeded;
    }
    if CONTENT_MESSAGES.iter().any(|m| message.contains(m)) {
        return ErrorClass::ContentFilter;
    }
    ErrorClass::Other
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
        let top_level = decode_upstream_error(
            br#"{"object":"error","message":"bad","type":"BadRequestError","param":null,"code":400}"#,
        );
        assert_eq!(top_level.message.as_deref(), Some("bad"));
        assert_eq!(top_level.kind.as_deref(), Some("BadRequestError"));
        assert_eq!(top_level.code.as_deref(), Some("400"));
        assert_eq!(
            decode_upstream_error(br#"{"detail":"x"}"#),
            UpstreamError::default()
        );
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

    #[track_caller]
    fn check_class(status: u16, body: &str, expected: ErrorClass) {
        assert_eq!(
            classify_error_body(status, body.as_bytes()),
            expected,
            "{body}"
        );
    }

    #[test]
    fn classifies_openai_context_length_exceeded() {
        check_class(
            400,
            r#"{"error":{"message":"This model's maximum context length is 128000 tokens. However, your messages resulted in 130412 tokens. Please reduce the length of the messages.","type":"invalid_request_error","param":"messages","code":"context_length_exceeded"}}"#,
            ErrorClass::ContextWindowExceeded,
        );
        // The Responses API says it differently, with the same code.
        check_class(
            400,
            r#"{"error":{"message":"Your input exceeds the context window of this model. Please adjust your input and try again.","type":"invalid_request_error","param":"input","code":"context_length_exceeded"}}"#,
            ErrorClass::ContextWindowExceeded,
        );
        // An OpenAI-compatible server (vLLM) without a code, its fields at the top level.
        check_class(
            400,
            r#"{"object":"error","message":"This model's maximum context length is 4096 tokens. However, you requested 5120 tokens (4096 in the messages, 1024 in the completion). Please reduce the length of the messages or completion.","type":"BadRequestError","param":null,"code":400}"#,
            ErrorClass::ContextWindowExceeded,
        );
    }

    #[test]
    fn classifies_openai_compatible_errors_by_message() {
        let vllm = UpstreamError {
            message: Some("This model's maximum context length is 4096 tokens. However, you requested 5120 tokens.".into()),
            kind: Some("BadRequestError".into()),
            code: Some("400".into()),
            param: None,
        };
        assert_eq!(
            classify_error(400, &vllm),
            ErrorClass::ContextWindowExceeded
        );
        check_class(
            400,
            r#"{"object":"error","message":"Prompt contains 40000 tokens and 0 draft tokens, too large for model with 32768 maximum context length","type":"invalid_request_error","param":null,"code":null}"#,
            ErrorClass::ContextWindowExceeded,
        );
        check_class(
            400,
            r#"{"error":{"message":"Prompt contains 40000 tokens and 0 draft tokens, too large for model with 32768 maximum context length","type":"invalid_request_error","param":null,"code":null}}"#,
            ErrorClass::ContextWindowExceeded,
        );
    }

    #[test]
    fn classifies_openai_and_azure_content_filters() {
        check_class(
            400,
            r#"{"error":{"message":"The response was filtered due to the prompt triggering Azure OpenAI's content management policy. Please modify your prompt and retry.","type":null,"param":"prompt","code":"content_filter","status":400,"innererror":{"code":"ResponsibleAIPolicyViolation","content_filter_result":{"hate":{"filtered":true,"severity":"high"}}}}}"#,
            ErrorClass::ContentFilter,
        );
        check_class(
            400,
            r#"{"error":{"code":"content_policy_violation","message":"Your request was rejected as a result of our safety system. Your prompt may contain text that is not allowed by our safety system.","param":null,"type":"invalid_request_error"}}"#,
            ErrorClass::ContentFilter,
        );
        check_class(
            400,
            r#"{"error":{"message":"Invalid prompt: your prompt was flagged as potentially violating our usage policy. Please try again with a different prompt.","type":"invalid_request_error","param":null,"code":"invalid_prompt"}}"#,
            ErrorClass::ContentFilter,
        );
    }

    #[test]
    fn classifies_anthropic_context_errors() {
        check_class(
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"prompt is too long: 208310 tokens > 200000 maximum"},"request_id":"req_011CSHoEeqs5C35K2UUqR7Fy"}"#,
            ErrorClass::ContextWindowExceeded,
        );
        check_class(
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"input length and `max_tokens` exceed context limit: 197202 + 21333 > 200000, decrease input length or `max_tokens` and try again"}}"#,
            ErrorClass::ContextWindowExceeded,
        );
        check_class(
            400,
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"messages: roles must alternate between \"user\" and \"assistant\", but found multiple \"user\" roles in a row"}}"#,
            ErrorClass::Other,
        );
        // A body over Anthropic's size limit is about bytes, not the context window.
        check_class(
            413,
            r#"{"type":"error","error":{"type":"request_too_large","message":"Request exceeds the maximum allowed number of bytes."}}"#,
            ErrorClass::Other,
        );
    }

    #[test]
    fn classifies_gemini_token_count_errors_native_and_array_wrapped() {
        let body = r#"{"error":{"code":400,"message":"The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#;
        check_class(400, body, ErrorClass::ContextWindowExceeded);
        check_class(400, &format!("[{body}]"), ErrorClass::ContextWindowExceeded);
        check_class(
            400,
            r#"{"error":{"code":400,"message":"* GenerateContentRequest.contents: contents is not specified\n","status":"INVALID_ARGUMENT"}}"#,
            ErrorClass::Other,
        );
    }

    #[test]
    fn only_client_errors_are_classified() {
        let body = r#"{"error":{"message":"prompt is too long","code":"context_length_exceeded"}}"#;
        check_class(500, body, ErrorClass::Other);
        check_class(
            429,
            r#"{"error":{"message":"Rate limit reached","code":"rate_limit_exceeded"}}"#,
            ErrorClass::Other,
        );
        check_class(400, "", ErrorClass::Other);
        check_class(400, "<html>bad gateway</html>", ErrorClass::Other);
    }

    #[test]
    fn vendor_and_gateway_errors_classify_themselves() {
        let anthropic = VendorError {
            status: 400,
            kind: ErrorKind::UpstreamStatus(400),
            error_type: "invalid_request_error".into(),
            message: "prompt is too long: 208310 tokens > 200000 maximum".into(),
            retry_after_secs: None,
        };
        assert_eq!(anthropic.class(), ErrorClass::ContextWindowExceeded);
        let overloaded = VendorError {
            status: 503,
            kind: ErrorKind::UpstreamStatus(529),
            error_type: "overloaded_error".into(),
            message: "Overloaded".into(),
            retry_after_secs: None,
        };
        assert_eq!(overloaded.class(), ErrorClass::Other);
        let gateway = GatewayError::new(
            ErrorKind::UpstreamStatus(400),
            "upstream azure returned 400: The response was filtered",
        )
        .with_code("content_filter");
        assert_eq!(gateway.class(), ErrorClass::ContentFilter);
        let local = GatewayError::new(ErrorKind::InvalidRequest, "prompt is too long");
        assert_eq!(local.class(), ErrorClass::Other);
        assert_eq!(
            ErrorClass::ContextWindowExceeded.as_str(),
            "context_window_exceeded"
        );
        assert_eq!(ErrorClass::ContentFilter.as_str(), "content_filter");
    }

    #[test]
    fn a_huge_message_is_scanned_only_at_its_start() {
        let message = format!("{}prompt is too long", "x".repeat(10_000));
        let error = UpstreamError {
            message: Some(message),
            ..UpstreamError::default()
        };
        assert_eq!(classify_error(400, &error), ErrorClass::Other);
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

//! OpenAI: `POST /v1/chat/completions`, `POST /v1/responses`, `POST /v1/embeddings`, `GET /v1/models`, and the
//! OpenAI error envelope they share.

mod chat;
mod embeddings;
mod models;
pub(crate) mod responses;

use axum::response::Response;
use http::StatusCode;
use serde::Serialize;

use crate::respond;

pub(crate) use chat::chat;
pub(crate) use embeddings::embeddings;
pub(crate) use models::models;
pub(crate) use responses::responses;

// ---------------------------------------------------------------------------------------------
// Errors.

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    error: ErrorBody<'a>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    param: Option<&'a str>,
    code: Option<&'a str>,
}

/// An OpenAI error response.
fn error(
    status: StatusCode,
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let envelope = ErrorEnvelope {
        error: ErrorBody {
            message,
            kind,
            param,
            code,
        },
    };
    respond::json(status, &envelope, Default::default())
}

/// The error OpenAI sends for `status`, used for status faults.
fn status_error(status: StatusCode, model: &str) -> Response {
    match status.as_u16() {
        400 => error(
            status,
            "Invalid request (injected by llmux mock).",
            "invalid_request_error",
            None,
            None,
        ),
        401 => error(
            status,
            "Incorrect API key provided.",
            "invalid_request_error",
            None,
            Some("invalid_api_key"),
        ),
        403 => error(
            status,
            "Country, region, or territory not supported",
            "request_forbidden",
            None,
            Some("unsupported_country_region_territory"),
        ),
        404 => {
            let message =
                format!("The model `{model}` does not exist or you do not have access to it.");
            error(
                status,
                &message,
                "invalid_request_error",
                None,
                Some("model_not_found"),
            )
        }
        429 => error(
            status,
            "Rate limit reached for requests. Please try again later.",
            "requests",
            None,
            Some("rate_limit_exceeded"),
        ),
        503 => error(
            status,
            "The engine is currently overloaded, please try again later",
            "server_error",
            None,
            None,
        ),
        code if code >= 500 => error(
            status,
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
            None,
        ),
        _ => error(
            status,
            "Request failed (injected by llmux mock).",
            "invalid_request_error",
            None,
            None,
        ),
    }
}

fn missing_key() -> Response {
    error(
        StatusCode::UNAUTHORIZED,
        "You didn't provide an API key. You need to provide your API key in an Authorization \
         header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
        "invalid_request_error",
        None,
        Some("invalid_api_key"),
    )
}

fn bad_json() -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't \
         using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was \
         sent was not valid JSON.)",
        "invalid_request_error",
        None,
        None,
    )
}

fn missing_param(name: &str) -> Response {
    let message = format!("Missing required parameter: '{name}'.");
    error(
        StatusCode::BAD_REQUEST,
        &message,
        "invalid_request_error",
        Some(name),
        Some("missing_required_parameter"),
    )
}

/// A parameter Chat Completions does not know (the real message; `param` and `code` are null).
/// A content part the real API refuses.
fn invalid_content(message: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        message,
        "invalid_request_error",
        None,
        None,
    )
}

fn unrecognized_argument(name: &str) -> Response {
    let message = format!("Unrecognized request argument supplied: {name}");
    error(
        StatusCode::BAD_REQUEST,
        &message,
        "invalid_request_error",
        None,
        None,
    )
}

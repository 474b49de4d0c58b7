//! Which error envelope a path's clients understand. Every refusal made before a handler runs
//! (authentication, load shedding, a panic) is rendered through here, so an Anthropic SDK gets
//! `{"type":"error",…}` and everyone else gets OpenAI's `{"error":{…}}`.

use axum::response::{IntoResponse, Response};
use llmux_config::Api;

use crate::api_error::ApiError;

/// An ingress's error format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// `{"error":{message,type,param,code}}`.
    OpenAi,
    /// `{"type":"error","error":{type,message}}`.
    Anthropic,
    /// Google's `{"error":{code,message,status}}` (the Gemini API).
    Google,
}

impl Envelope {
    /// The envelope of the clients of `api`.
    pub const fn of(api: Api) -> Self {
        match api {
            Api::OpenAi => Self::OpenAi,
            Api::Anthropic => Self::Anthropic,
            Api::Gemini => Self::Google,
        }
    }

    /// The envelope of the API served at `path`.
    pub fn for_path(path: &str) -> Self {
        if path.starts_with("/v1/messages") {
            Self::Anthropic
        } else if crate::ingress::gemini::is_gemini_path(path) {
            Self::Google
        } else {
            Self::OpenAi
        }
    }

    /// `error` as a response in this envelope, with its status and limit headers.
    pub fn render(self, error: ApiError) -> Response {
        match self {
            Self::OpenAi => error.into_response(),
            Self::Anthropic => crate::ingress::messages::anthropic_error(error),
            Self::Google => crate::ingress::gemini::google_error(error),
        }
    }
}

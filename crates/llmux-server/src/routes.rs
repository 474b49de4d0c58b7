//! The application: axum routes and fallbacks, wrapped in the edge (`edge::App`).

mod admin;
mod chat;
mod embeddings;
mod info;
mod messages;
mod proxy;
mod responses;
mod vendors;

pub(crate) use messages::anthropic_error;
pub(crate) use proxy::idle;

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use llmux_protocol::error::ErrorKind;

use crate::api_error::ApiError;
use crate::edge::App;
use crate::state::Gateway;

/// Builds the application for `gateway`: the edge (authentication, request id, log line,
/// metrics) around the routes.
pub fn app(gateway: Arc<Gateway>) -> App {
    let router = Router::new()
        .route("/v1/chat/completions", post(chat::handle))
        .route("/v1/embeddings", post(embeddings::handle))
        .route("/v1/responses", post(responses::create))
        .route(
            "/v1/responses/{id}",
            get(responses::get).delete(responses::delete),
        )
        .route("/v1/messages", post(messages::create))
        .route("/v1/messages/count_tokens", post(messages::count_tokens))
        .route("/v1/models", get(info::models))
        .route("/admin/keys", post(admin::create).get(admin::list))
        .route(
            "/admin/keys/{id}",
            get(admin::get).patch(admin::update).delete(admin::revoke),
        )
        .route("/admin/keys/{id}/usage", get(admin::usage))
        .route("/health", get(info::health))
        .route("/health/vendors", get(vendors::health))
        .route("/metrics", get(info::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(gateway.clone());
    App::new(gateway, router)
}

async fn not_found(request: Request) -> impl IntoResponse {
    ApiError::new(
        ErrorKind::NotFound,
        format!(
            "unknown route: {} {}",
            request.method(),
            request.uri().path()
        ),
    )
}

async fn method_not_allowed(request: Request) -> impl IntoResponse {
    ApiError::new(
        ErrorKind::MethodNotAllowed,
        format!(
            "method {} is not allowed on {}",
            request.method(),
            request.uri().path()
        ),
    )
}

//! The application: axum routes and fallbacks, wrapped in the edge (`edge::App`).

mod admin;
pub(crate) mod chat;
mod embeddings;
mod info;
pub(crate) mod messages;
mod proxy;
pub(crate) mod responses;
mod vendors;

pub(crate) use messages::anthropic_error;
pub(crate) use proxy::idle;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Router};
use llmux_protocol::error::ErrorKind;

use crate::api_error::ApiError;
use crate::edge::{App, RequestId};
use crate::governance::Caller;
use crate::state::Gateway;

/// Builds the application for `gateway`: the edge (authentication, request id, log line,
/// metrics) around the routes.
pub fn app(gateway: Arc<Gateway>) -> App {
    let router = Router::new()
        // The edge calls the three proxy handlers itself for every POST (`edge::dispatch`).
        // The router keeps the routes so other methods get a 405 with `Allow: POST`, and keeps
        // real handlers on them so the router stays correct on its own.
        .route("/v1/chat/completions", post(routed(chat::handle)))
        .route("/v1/embeddings", post(embeddings::handle))
        .route("/v1/responses", post(routed(responses::create)))
        .route(
            "/v1/responses/{id}",
            get(responses::get).delete(responses::delete),
        )
        .route("/v1/messages", post(routed(messages::create)))
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

/// A proxy handler as an axum handler: the request id and caller come from the extensions the
/// edge sets before it hands a request to the router.
fn routed<F, Fut>(
    handler: F,
) -> impl Fn(State<Arc<Gateway>>, Extension<RequestId>, Extension<Caller>, Request) -> Fut
+ Clone
+ Send
+ Sync
+ 'static
where
    F: Fn(Arc<Gateway>, RequestId, Caller, Request) -> Fut + Copy + Send + Sync + 'static,
    Fut: Future<Output = Response> + Send + 'static,
{
    move |State(gateway), Extension(id), Extension(caller), request| {
        handler(gateway, id, caller, request)
    }
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

//! The application: axum routes and fallbacks, wrapped in the edge (`edge::App`).

mod admin;
mod info;
pub(crate) mod openapi;
mod vendors;

use crate::ingress::{
    Chat, Embeddings, ImagesText, Messages, Responses, gemini, messages, responses,
};

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use axum::{Extension, Router};
use futures_util::FutureExt as _;
use llmux_protocol::error::ErrorKind;

use crate::api_error::ApiError;
use crate::edge::{App, RequestId};
use crate::governance::Caller;
use crate::pipeline::serve;
use crate::state::Gateway;

/// Who may call a route (checked by the edge before any handler runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (`/health`).
    Open,
    /// A virtual key once authentication is enforced (the API).
    Key,
    /// The master key (`/admin`).
    Master,
    /// The master key when `auth.protect_metrics` is on (`/metrics`).
    Metrics,
    /// The master key once authentication is enforced (`/health/vendors`: it names
    /// credentials and models, and `?probe=true` calls every vendor).
    Operator,
}

/// What serves a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    Chat,
    Embeddings,
    /// `POST /v1/images/text`: the original router's image description.
    ImagesText,
    Responses,
    ResponseById,
    Messages,
    /// `POST /…/models/{model}:{action}` (the Gemini API).
    Gemini,
    /// `GET /v1beta/models`.
    GeminiModels,
    CountTokens,
    Models,
    AdminKeys,
    AdminKey,
    AdminKeyUsage,
    /// `GET /admin/requests`: the request log, newest first.
    AdminRequests,
    /// `GET /admin/requests/{id}`: one record with its attempts.
    AdminRequest,
    /// `GET /admin/traffic`: the last hour per minute, for the dashboard.
    AdminTraffic,
    /// `GET /admin/config`: the active configuration, secrets masked.
    AdminConfig,
    /// `GET /ui`: the dashboard page.
    Ui,
    /// `GET /ui/{asset}`: its script and style sheet.
    UiAsset,
    Health,
    HealthVendors,
    Metrics,
    /// `GET /openapi.json`: the API description, generated from this table.
    OpenApi,
}

/// One route: its path pattern (`{id}` is one segment), its bounded metric label, who may call
/// it, and what serves it.
#[derive(Debug)]
pub struct Route {
    pub path: &'static str,
    pub label: &'static str,
    pub access: Access,
    pub handler: Handler,
}

/// Every route, declared once: the router, the edge's dispatch, metric labels and
/// authentication all derive from this table. The proxy routes come first (the edge looks
/// them up on every request).
pub const ROUTES: &[Route] = &[
    api("/v1/chat/completions", "chat", Handler::Chat),
    api("/v1/messages", "messages", Handler::Messages),
    api("/v1/responses", "responses", Handler::Responses),
    api("/v1/embeddings", "embeddings", Handler::Embeddings),
    api("/v1beta/models/{model}", "gemini", Handler::Gemini),
    api("/v1/models/{model}", "gemini", Handler::Gemini),
    api("/v1alpha/models/{model}", "gemini", Handler::Gemini),
    api("/v1beta/models", "models", Handler::GeminiModels),
    api("/v1alpha/models", "models", Handler::GeminiModels),
    api("/v1/responses/{id}", "responses", Handler::ResponseById),
    api(
        "/v1/messages/count_tokens",
        "count_tokens",
        Handler::CountTokens,
    ),
    api("/v1/models", "models", Handler::Models),
    api("/v1/images/text", "images_text", Handler::ImagesText),
    route("/openapi.json", "info", Access::Open, Handler::OpenApi),
    route("/health", "health", Access::Open, Handler::Health),
    route(
        "/health/vendors",
        "health",
        Access::Operator,
        Handler::HealthVendors,
    ),
    route("/metrics", "metrics", Access::Metrics, Handler::Metrics),
    admin("/admin/keys", Handler::AdminKeys),
    admin("/admin/keys/{id}", Handler::AdminKey),
    admin("/admin/keys/{id}/usage", Handler::AdminKeyUsage),
    admin("/admin/requests", Handler::AdminRequests),
    admin("/admin/requests/{id}", Handler::AdminRequest),
    admin("/admin/traffic", Handler::AdminTraffic),
    admin("/admin/config", Handler::AdminConfig),
    route("/ui", "ui", Access::Open, Handler::Ui),
    route("/ui/{asset}", "ui", Access::Open, Handler::UiAsset),
];

const fn route(path: &'static str, label: &'static str, access: Access, handler: Handler) -> Route {
    Route {
        path,
        label,
        access,
        handler,
    }
}

/// A route of the API: callers present a virtual key.
const fn api(path: &'static str, label: &'static str, handler: Handler) -> Route {
    route(path, label, Access::Key, handler)
}

/// An administration route: the master key only, labelled `admin`.
const fn admin(path: &'static str, handler: Handler) -> Route {
    route(path, "admin", Access::Master, handler)
}

impl Route {
    fn matches(&self, path: &str) -> bool {
        if !self.path.contains('{') {
            return self.path == path;
        }
        let mut pattern = self.path.split('/');
        let mut actual = path.split('/');
        loop {
            match (pattern.next(), actual.next()) {
                (None, None) => return true,
                (Some(p), Some(a)) if p.starts_with('{') && !a.is_empty() => {}
                (Some(p), Some(a)) if p == a => {}
                _ => return false,
            }
        }
    }
}

/// The route serving `path`, if any.
pub fn lookup(path: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|route| route.matches(path))
}

/// Who may call `path`: its route's access, or for unknown paths the access of the area they
/// are in (an unknown API path still needs a key, so a 404 tells nothing to strangers).
pub fn access(path: &str, route: Option<&Route>) -> Access {
    match route {
        Some(route) => route.access,
        None if path.starts_with("/admin") => Access::Master,
        None if path.starts_with("/v1/") => Access::Key,
        None => Access::Open,
    }
}

fn method_router(handler: Handler) -> MethodRouter<Arc<Gateway>> {
    match handler {
        // The edge calls the three proxy handlers itself for every POST (`edge::dispatch`).
        // The router keeps them so other methods get a 405 with `Allow: POST`, and keeps real
        // handlers on them so the router stays correct on its own.
        Handler::Chat => post(routed(serve::<Chat>)),
        Handler::Embeddings => post(routed(serve::<Embeddings>)),
        Handler::ImagesText => post(routed(serve::<ImagesText>)),
        Handler::Responses => post(routed(serve::<Responses>)),
        Handler::Messages => post(routed(serve::<Messages>)),
        Handler::Gemini => post(routed(gemini::handle)).get(gemini::get_model),
        Handler::GeminiModels => get(gemini::list_models),
        Handler::ResponseById => get(responses::get).delete(responses::delete),
        Handler::CountTokens => post(messages::count_tokens),
        Handler::Models => get(info::models),
        Handler::AdminKeys => post(admin::create).get(admin::list),
        Handler::AdminKey => get(admin::get).patch(admin::update).delete(admin::revoke),
        Handler::AdminKeyUsage => get(admin::usage),
        Handler::AdminRequests => get(admin::requests),
        Handler::AdminRequest => get(admin::request),
        Handler::AdminTraffic => get(admin::traffic),
        Handler::AdminConfig => get(admin::config),
        Handler::Ui => get(crate::ui::index),
        Handler::UiAsset => get(crate::ui::file),
        Handler::Health => get(info::health),
        Handler::HealthVendors => get(vendors::health),
        Handler::Metrics => get(info::metrics),
        Handler::OpenApi => get(openapi::serve),
    }
}

/// Builds the application for `gateway`: the edge (authentication, request id, log line,
/// metrics) around the routes of [`ROUTES`].
pub fn app(gateway: Arc<Gateway>) -> App {
    let router = ROUTES
        .iter()
        .fold(Router::new(), |router, route| {
            router.route(route.path, method_router(route.handler))
        })
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(gateway.clone());
    App::new(gateway, router)
}

/// A proxy handler as an axum handler: the request id, the caller and what observes the request
/// come from the extensions the edge sets before it hands a request to the router.
fn routed<F, Fut>(
    handler: F,
) -> impl Fn(State<Arc<Gateway>>, Extension<RequestId>, Extension<Caller>, Request) -> Routed<Fut>
+ Clone
+ Send
+ Sync
+ 'static
where
    F: Fn(Arc<Gateway>, RequestId, Caller, Option<crate::edge::Observed>, Request) -> Fut
        + Copy
        + Send
        + Sync
        + 'static,
    Fut: Future<Output = crate::edge::Served> + Send + 'static,
{
    move |State(gateway), Extension(id), Extension(caller), mut request: Request| {
        let into_response: fn(crate::edge::Served) -> Response = crate::edge::into_response;
        let observed = request.extensions_mut().remove::<crate::edge::Observed>();
        handler(gateway, id, caller, observed, request).map(into_response)
    }
}

/// A routed proxy handler's future: the pipeline's answer, its outcome in the extensions.
type Routed<Fut> = futures_util::future::Map<Fut, fn(crate::edge::Served) -> Response>;

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

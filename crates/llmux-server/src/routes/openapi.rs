//! `GET /openapi.json`: an OpenAPI 3.1 description of llmux's own routes, generated from
//! [`ROUTES`] so it cannot drift from what is served. Each handler declares its operations in
//! one exhaustive match: a new handler does not compile until it is described here.
//!
//! Request and response bodies of the proxy routes are the vendors' own formats (OpenAI,
//! Anthropic, Gemini, Open Responses), described by them; here they are open JSON objects.

use std::sync::OnceLock;

use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use serde_json::{Map, Value, json};

use super::{Access, Handler, ROUTES};

/// One operation of a route.
struct Operation {
    method: &'static str,
    summary: &'static str,
    /// Whether it takes a JSON body.
    body: bool,
    /// Query parameters, by name and description.
    query: &'static [(&'static str, &'static str)],
    /// The media type of a successful answer.
    answer: &'static str,
}

const VENDOR: (&str, &str) = (
    "vendor",
    "keep only this vendor's combinations (google names the Gemini vendor)",
);

const fn op(method: &'static str, summary: &'static str) -> Operation {
    Operation {
        method,
        summary,
        body: false,
        query: &[],
        answer: "application/json",
    }
}

const fn post(summary: &'static str) -> Operation {
    Operation {
        body: true,
        query: &[VENDOR],
        ..op("post", summary)
    }
}

/// The operations `handler` serves (the same methods as `routes::method_router`).
fn operations(handler: Handler) -> Vec<Operation> {
    match handler {
        Handler::Chat => vec![post(
            "OpenAI Chat Completions (an Open Responses body with `input` is served as /v1/responses)",
        )],
        Handler::Embeddings => vec![post("OpenAI embeddings")],
        Handler::ImagesText => vec![post(
            "describe one image (the original router's body: {type: image_url, image_url: {url}})",
        )],
        Handler::Responses => vec![post("Open Responses: create a response")],
        Handler::ResponseById => vec![
            op("get", "a stored response"),
            op("delete", "delete a stored response"),
        ],
        Handler::Messages => vec![post("Anthropic Messages")],
        Handler::Gemini => vec![
            Operation {
                summary: "Gemini API: `{model}:generateContent`, `:streamGenerateContent`, `:countTokens`, `:embedContent`",
                ..post("")
            },
            op("get", "Gemini API: one model"),
        ],
        Handler::GeminiModels => vec![op("get", "Gemini API: the models")],
        Handler::CountTokens => vec![post("Anthropic Messages: count tokens")],
        Handler::Models => vec![Operation {
            query: &[VENDOR],
            ..op("get", "the configured models (OpenAI list shape)")
        }],
        Handler::AdminKeys => vec![
            Operation {
                body: true,
                ..op("post", "create a virtual key")
            },
            op("get", "list virtual keys"),
        ],
        Handler::AdminKey => vec![
            op("get", "one virtual key"),
            Operation {
                body: true,
                ..op("patch", "change a virtual key")
            },
            op("delete", "revoke a virtual key"),
        ],
        Handler::AdminKeyUsage => vec![op("get", "a virtual key's usage")],
        Handler::AdminRequests => vec![op("get", "the request log, newest first")],
        Handler::AdminRequest => vec![op("get", "one request log record with its attempts")],
        Handler::Health => vec![Operation {
            answer: "text/plain",
            ..op("get", "liveness: 200 OK")
        }],
        Handler::HealthVendors => vec![op("get", "per-combination health")],
        Handler::Metrics => vec![Operation {
            answer: "text/plain",
            ..op("get", "Prometheus metrics")
        }],
        Handler::OpenApi => vec![op("get", "this document")],
        Handler::AdminTraffic => vec![op(
            "get",
            "the last hour of traffic per minute, by vendor, model and key (the dashboard)",
        )],
        Handler::AdminConfig => vec![op("get", "the active configuration, secrets masked")],
        Handler::Ui => vec![Operation {
            answer: "text/html",
            ..op("get", "the dashboard")
        }],
        Handler::UiAsset => vec![Operation {
            answer: "text/plain",
            ..op("get", "a dashboard asset (script, style sheet)")
        }],
    }
}

/// The tag of a route in the document: what kind of caller uses it.
fn tag(access: Access, label: &str) -> &'static str {
    match (access, label) {
        (Access::Master, _) => "admin",
        (Access::Open | Access::Operator | Access::Metrics, _) => "operations",
        (Access::Key, _) => "proxy",
    }
}

fn security(access: Access) -> Value {
    match access {
        Access::Open => json!([]),
        Access::Key => json!([{}, {"bearer": []}]),
        Access::Master | Access::Operator | Access::Metrics => json!([{"bearer": []}]),
    }
}

/// The path parameters of a pattern (`{id}` segments).
fn path_parameters(path: &str) -> Vec<Value> {
    path.split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| {
            json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}})
        })
        .collect()
}

/// The document, built from [`ROUTES`].
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let mut item = Map::new();
        for operation in operations(route.handler) {
            let mut parameters = path_parameters(route.path);
            parameters.extend(operation.query.iter().map(|(name, description)| {
                json!({"name": name, "in": "query", "required": false,
                       "description": description, "schema": {"type": "string"}})
            }));
            let id = format!(
                "{}{}",
                operation.method,
                route
                    .path
                    .split(|c: char| !c.is_ascii_alphanumeric())
                    .filter(|w| !w.is_empty())
                    .map(|w| {
                        let mut chars = w.chars();
                        chars.next().map_or_else(String::new, |first| {
                            first.to_ascii_uppercase().to_string() + chars.as_str()
                        })
                    })
                    .collect::<String>()
            );
            let mut entry = json!({
                "operationId": id,
                "summary": operation.summary,
                "tags": [tag(route.access, route.label)],
                "security": security(route.access),
                "responses": {
                    "200": {"description": "success",
                            "content": {operation.answer: {"schema": {}}}},
                    "default": {"description": "an error in the route's envelope",
                                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
                }
            });
            if !parameters.is_empty() {
                entry["parameters"] = Value::Array(parameters);
            }
            if operation.body {
                entry["requestBody"] = json!({
                    "required": true,
                    "content": {"application/json": {"schema": {"type": "object"}}}
                });
            }
            item.insert(operation.method.to_owned(), entry);
        }
        paths.insert(route.path.to_owned(), Value::Object(item));
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "llmux",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "One API for many LLM vendors. Proxy routes speak the vendors' own formats (OpenAI Chat Completions and embeddings, Open Responses, Anthropic Messages, Gemini API)."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer",
                           "description": "a virtual key (proxy routes, once authentication is on) or the master key"}
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "description": "OpenAI `{error:{message,type,param,code}}`, Anthropic `{type:error,error:{type,message}}` or Gemini `{error:{code,message,status}}`, by route",
                    "properties": {"error": {"type": "object"}}
                }
            }
        }
    })
}

/// `GET /openapi.json`.
pub async fn serve() -> Response {
    static BODY: OnceLock<Vec<u8>> = OnceLock::new();
    let body = BODY.get_or_init(|| serde_json::to_vec(&document()).unwrap_or_default());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.as_slice(),
    )
        .into_response()
}

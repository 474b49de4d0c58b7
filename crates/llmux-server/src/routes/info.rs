//! `GET /v1/models`, `GET /health`, `GET /metrics`.

use std::collections::HashSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use http::{HeaderValue, header};
use serde::Serialize;

use crate::egress::answer::VendorParam;
use crate::state::Gateway;

#[derive(Serialize)]
struct ModelList<'a> {
    object: &'static str,
    data: Vec<ModelEntry<'a>>,
}

#[derive(Serialize)]
struct ModelEntry<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    owned_by: &'a str,
}

/// The configured models in OpenAI's list shape (`id` = public name, `owned_by` = vendor).
/// An unknown `?vendor=` gives an empty list, never `null`.
pub async fn models(
    State(gateway): State<Arc<Gateway>>,
    Query(params): Query<VendorParam>,
) -> impl IntoResponse {
    let snapshot = gateway.snapshot.load();
    let vendor = params.vendor.as_deref().filter(|v| !v.is_empty()).map(|v| {
        if snapshot.table.vendors().iter().any(|known| known == v) {
            v
        } else {
            llmux_router::vendor_alias(v)
        }
    });
    // An unknown vendor is a 400, as on the chat endpoint, not an empty list.
    if let Some(v) = vendor
        && !snapshot.table.vendors().iter().any(|known| known == v)
    {
        return crate::api_error::ApiError::from(llmux_router::RouteError::UnknownVendor {
            vendor: v.to_owned(),
            known: snapshot.table.vendors().to_vec(),
        })
        .into_response();
    }
    let mut seen = HashSet::new();
    let data = snapshot
        .config
        .models
        .iter()
        .filter(|m| vendor.is_none_or(|v| v == m.vendor))
        .filter(|m| seen.insert((m.public_name(), m.vendor.as_str())))
        .map(|m| ModelEntry {
            id: m.public_name(),
            object: "model",
            created: gateway.started_unix,
            owned_by: &m.vendor,
        })
        .collect();
    Json(ModelList {
        object: "list",
        data,
    })
    .into_response()
}

pub async fn health() -> &'static str {
    "OK"
}

pub async fn metrics(State(gateway): State<Arc<Gateway>>) -> impl IntoResponse {
    if let Some(sink) = gateway.request_log.get() {
        // The writer counts its drops; the metric catches up at each scrape.
        let dropped = sink.log.dropped();
        let shown = gateway.metrics.log_dropped.get();
        gateway
            .metrics
            .log_dropped
            .inc_by(dropped.saturating_sub(shown));
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        gateway.metrics.encode(),
    )
}

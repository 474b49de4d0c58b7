//! `GET /health/vendors`: the state of every combination and credential — breaker state,
//! cooldown, recent error rate, last error kind, median latency — and, with `?probe=true`, the
//! answer of each credential's cheapest endpoint (at most one probe round every 10 seconds).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{Query, State};
use axum::response::IntoResponse;
use llmux_reliability::HealthView;
use serde::Serialize;
use serde_json::{Value, json};

use crate::state::Gateway;

const PROBE_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, serde::Deserialize)]
pub struct Params {
    #[serde(default)]
    probe: Option<bool>,
}

#[derive(Serialize)]
struct Row {
    vendor: String,
    credential: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    state: &'static str,
    cooldown_remaining_ms: Option<u64>,
    error_rate: f64,
    recent_requests: u32,
    last_error: Option<&'static str>,
    p50_latency_ms: Option<f64>,
}

fn row(
    vendor: &str,
    credential: &str,
    model: Option<(&str, Option<&str>)>,
    view: HealthView,
) -> Row {
    Row {
        vendor: vendor.to_owned(),
        credential: credential.to_owned(),
        model: model.map(|(m, _)| m.to_owned()),
        name: model.and_then(|(_, n)| n.map(str::to_owned)),
        state: view.state.as_str(),
        cooldown_remaining_ms: view.cooldown_remaining.map(|d| d.as_millis() as u64),
        error_rate: (view.error_rate * 1000.0).round() / 1000.0,
        recent_requests: view.recent_requests,
        last_error: view.last_error,
        p50_latency_ms: view.p50_latency.map(|d| d.as_secs_f64() * 1000.0),
    }
}

pub async fn health(
    State(gateway): State<Arc<Gateway>>,
    Query(params): Query<Params>,
) -> impl IntoResponse {
    let snapshot = gateway.snapshot.load_full();
    let now = Instant::now();
    let credentials: Vec<Row> = snapshot
        .table
        .credentials()
        .iter()
        .zip(&snapshot.health.credentials)
        .map(|(c, h)| row(&c.vendor, &c.name, None, h.view(now)))
        .collect();
    let combinations: Vec<Row> = snapshot
        .table
        .combinations()
        .iter()
        .zip(&snapshot.health.combinations)
        .map(|(c, h)| {
            let credential = &snapshot.table.credentials()[c.credential];
            row(
                &credential.vendor,
                &credential.name,
                Some((&c.model.model, c.model.name.as_deref())),
                h.view(now),
            )
        })
        .collect();
    let mut body = json!({"combinations": combinations, "credentials": credentials});
    if params.probe == Some(true) {
        body["probe"] = probe(&gateway).await;
    }
    Json(body)
}

/// Calls every credential's model list, at most once per [`PROBE_INTERVAL`]; later calls within
/// the interval get the cached answers.
async fn probe(gateway: &Gateway) -> Value {
    let mut last = gateway.last_probe.lock().await;
    if let Some((at, results)) = last.as_ref()
        && at.elapsed() < PROBE_INTERVAL
    {
        return json!({"cached": true, "age_ms": at.elapsed().as_millis() as u64, "results": results_json(results)});
    }
    let snapshot = gateway.snapshot.load_full();
    let probes = snapshot
        .table
        .credentials()
        .iter()
        .enumerate()
        .map(|(i, credential)| {
            let endpoint = snapshot.endpoints.get(i).cloned();
            let name = credential.name.clone();
            async move {
                let outcome = match endpoint {
                    Some(endpoint) => match endpoint.probe().await {
                        Ok(status) if (200..300).contains(&status) => "ok".to_owned(),
                        Ok(status) => format!("status {status}"),
                        Err(err) => err.to_string(),
                    },
                    None => "no endpoint".to_owned(),
                };
                (name, outcome)
            }
        });
    let results: Vec<(String, String)> = futures_util::future::join_all(probes).await;
    let value = json!({"cached": false, "age_ms": 0, "results": results_json(&results)});
    *last = Some((Instant::now(), results));
    value
}

fn results_json(results: &[(String, String)]) -> Value {
    Value::Array(
        results
            .iter()
            .map(|(credential, outcome)| json!({"credential": credential, "result": outcome}))
            .collect(),
    )
}

//! What chat and embeddings share on the same-protocol path: sending to an OpenAI-compatible
//! endpoint and answering a non-streamed JSON response with the client's model name.

use std::time::{Duration, Instant};

use axum::response::Response;
use http::{HeaderMap, HeaderName, HeaderValue, header};
use llmux_protocol::openai_chat::repair::{self, ToolCallRepair};
use llmux_router::Target;

use crate::api_error::ApiError;
use crate::edge::{Outcome, Served};
use crate::egress::send::read_body;
use crate::pipeline::Call;
use crate::series::Series;
use crate::state::Snapshot;

/// `?vendor=`; an empty value means no filter.
#[derive(Debug, serde::Deserialize)]
pub struct VendorParam {
    pub vendor: Option<String>,
}

impl VendorParam {
    /// Reads `?vendor=` from `uri` as axum's `Query` extractor would, rejection included.
    pub fn of(uri: &http::Uri) -> Result<Self, axum::extract::rejection::QueryRejection> {
        axum::extract::Query::try_from_uri(uri).map(|axum::extract::Query(params)| params)
    }
}

/// Response headers naming where the request went (never the credential's value); the values
/// come prepared from the target's series.
fn routing_headers(headers: &mut HeaderMap, target: &Target<'_>, series: &Series) {
    const VENDOR: HeaderName = HeaderName::from_static("x-llmux-vendor");
    const MODEL: HeaderName = HeaderName::from_static("x-llmux-model");
    const CREDENTIAL: HeaderName = HeaderName::from_static("x-llmux-credential");
    let values = series.header_values();
    if let Some(vendor) = &values.vendor {
        headers.insert(VENDOR, vendor.clone());
    }
    let model = match &values.model {
        Some(model) => Some(model.clone()),
        None => HeaderValue::from_str(target.upstream_model).ok(),
    };
    if let Some(model) = model {
        headers.insert(MODEL, model);
    }
    if let Some(credential) = &values.credential {
        headers.insert(CREDENTIAL, credential.clone());
    }
}

pub fn outcome(snapshot: &Snapshot, target: &Target<'_>) -> Outcome {
    let series = crate::series::of(snapshot, target);
    let passed_model = series
        .upstream_model()
        .is_none()
        .then(|| target.upstream_model.to_owned());
    Outcome {
        series,
        passed_model,
        upstream_time: None,
    }
}

/// Adds routing headers to any response for this target, and pairs it with the outcome.
pub fn finish(response: Response, snapshot: &Snapshot, target: &Target<'_>) -> Served {
    let (response, outcome) = attach(response, target, outcome(snapshot, target));
    (response, Some(outcome))
}

fn attach(mut response: Response, target: &Target<'_>, outcome: Outcome) -> (Response, Outcome) {
    routing_headers(response.headers_mut(), target, &outcome.series);
    (response, outcome)
}

/// [`finish`] for a committed attempt, also recording the upstream time for the edge's
/// overhead measurement.
pub fn finish_timed(
    response: Response,
    snapshot: &Snapshot,
    target: &Target<'_>,
    upstream_time: Duration,
) -> (Response, Outcome) {
    let mut outcome = outcome(snapshot, target);
    outcome.upstream_time = Some(upstream_time);
    attach(response, target, outcome)
}

/// Reads a complete JSON response and rewrites `model` to the client's name.
pub async fn read_json(
    call: &Call<'_>,
    target: &Target<'_>,
    mut response: llmux_upstream::Response,
    client_model: &[u8],
    started: Instant,
) -> Result<Vec<u8>, ApiError> {
    let (gateway, snapshot) = (call.gateway, call.snapshot);
    let mut body = read_whole(snapshot, target, &mut response).await?;
    if (needs_tool_call_repair(target) || repair::shows_symptoms(&body))
        && let Some(fixed) = ToolCallRepair::new(fastrand::u64(..)).message(&body)
    {
        body = fixed.into();
    }
    let rewritten = call.rewrite_answer(&body, client_model);
    let series = crate::series::of(snapshot, target);
    series.observe_upstream(&gateway.metrics, started.elapsed().as_secs_f64());
    series.add_usage(&gateway.metrics, rewritten.usage);
    let tokens = rewritten.usage.map(|u| u.to_neutral());
    // Without the vendor's usage, the answer's bytes are llmux's count of the output.
    call.settle
        .done_or_estimate(target.upstream_model, tokens, (body.len() / 4) as u64);
    Ok(rewritten.body)
}

/// Whether this target's vendor is known to send malformed tool calls (Gemini's OpenAI
/// endpoint), so every answer goes through the repair. The credential's declared platform
/// decides, not its host name; other vendors are repaired when a chunk shows the symptoms.
pub fn needs_tool_call_repair(target: &Target<'_>) -> bool {
    repair::needs_repair_for(repair::CompatKind::from_vendor(&target.credential.vendor))
}

/// A 200 JSON response.
pub fn json_response(body: Vec<u8>) -> Response {
    // Built directly: `into_response` on bytes first inserts an `application/octet-stream`
    // content type, which this would then replace (a header insert, ~250 instructions).
    let mut out = Response::new(axum::body::Body::from(body));
    out.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    out
}

/// Reads a whole vendor answer under the snapshot's size limit and the target's idle timeout.
pub async fn read_whole(
    snapshot: &Snapshot,
    target: &Target<'_>,
    response: &mut llmux_upstream::Response,
) -> Result<bytes::Bytes, ApiError> {
    let limit = snapshot.config.limits.max_upstream_body_bytes;
    read_body(response, limit, idle(snapshot, target)).await
}

/// The longest silence allowed inside this target's response.
pub fn idle(snapshot: &Snapshot, target: &Target<'_>) -> Duration {
    let ms = snapshot
        .endpoints
        .get(target.credential_index)
        .map_or(snapshot.config.timeouts.idle_ms, |e| e.timeouts.idle_ms);
    Duration::from_millis(ms)
}

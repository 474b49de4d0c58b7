//! Metric series resolved once per combination instead of once per request.
//!
//! Looking a series up in a prometheus-client `Family` clones its label strings and hashes them
//! (SipHash) under a lock. Every label of the hot-path series is a function of the target's
//! slot (its combination, or its credential for a passed-through model), so each slot resolves
//! its series on first use and keeps the handles (counters and histograms share their value
//! with the family). Series still appear in `/metrics` only once used, as before. The table
//! lives in the [`Snapshot`] because slots are indexes into its routing table.

use std::sync::{Arc, OnceLock};

use http::HeaderValue;

use llmux_protocol::usage::Usage;
use llmux_router::Target;
use llmux_telemetry::metrics::{
    Counter, Histogram, Metrics, RequestLabels, RouteLabels, SelectionLabels, TokenLabels,
    UpstreamLabels, UsdCounter,
};
use llmux_telemetry::otlp::{RequestTrace, ServerSpanFixed};

use crate::state::Snapshot;

/// Routes whose successful requests are counted through a slot (the ones that reach a vendor).
const ROUTES: [&str; 5] = [
    "chat",
    "embeddings",
    "responses",
    "messages",
    "count_tokens",
];

/// The index of `route` in [`ROUTES`], where the per-route handles of a series are kept.
fn route_index(route: &str) -> Option<usize> {
    ROUTES.iter().position(|r| *r == route)
}

/// One [`Series`] per slot of a snapshot, resolved on first use.
#[derive(Debug, Default)]
pub struct SeriesTable {
    /// Combinations first, then one slot per credential for passed-through models. Sized on
    /// first use (the snapshot is built before any gateway, and so before its metrics, exists).
    slots: OnceLock<Box<[OnceLock<Arc<Series>>]>>,
}

/// The hot-path series of one slot, each resolved when first used (so `/metrics` shows the
/// same series as it would without this cache).
#[derive(Debug)]
pub struct Series {
    /// The labels: vendor, credential name and public model name. The first two are shared
    /// with the request log's records (`Arc<str>`), which name them per request.
    vendor: Arc<str>,
    credential: Arc<str>,
    model: String,
    /// The vendor's model name, fixed for a combination's slot (`None` for a passed-through
    /// model, which varies per request).
    upstream_model: Option<Arc<str>>,
    selections: OnceLock<Counter>,
    upstream_duration: OnceLock<Histogram>,
    input_tokens: OnceLock<Counter>,
    output_tokens: OnceLock<Counter>,
    /// `llmux_cost_usd_total`, with the upstream model's price; `None` for a passed-through
    /// model (its upstream model varies per request) or one without a price.
    cost: Option<(llmux_config::Price, OnceLock<UsdCounter>)>,
    ttfb: OnceLock<Histogram>,
    /// `llmux_requests_total{status="200"}` per entry of [`ROUTES`].
    requests_ok: [OnceLock<Counter>; ROUTES.len()],
    /// `llmux_overhead_seconds` per entry of [`ROUTES`] (a family lookup hashes its labels
    /// under a lock, ~150 instructions per request).
    overhead: [OnceLock<Histogram>; ROUTES.len()],
    /// The routing response headers' values, built once.
    headers: HeaderValues,
    /// An attempt span's fixed attributes for the URL this slot first sent to, encoded once
    /// when tracing is on (a slot sends to one URL, or to two for Gemini's stream and
    /// non-stream; the other one's are encoded per attempt).
    client_span: OnceLock<ClientSpanAttributes>,
    /// A request span's name and fixed attributes per entry of [`ROUTES`], for the first
    /// requested model and provider seen there (a slot is asked for by one name, as a rule).
    server_span: [OnceLock<ServerSpanKept>; ROUTES.len()],
}

/// [`Series::server_span_fixed`]'s key (besides the route and the slot) and encoded parts.
#[derive(Debug)]
struct ServerSpanKept {
    requested: Box<str>,
    provider: &'static str,
    fixed: ServerSpanFixed,
}

/// [`Series::client_span_attributes`]'s URL (scheme, authority, path) and encoded attributes.
#[derive(Debug)]
struct ClientSpanAttributes {
    url: [String; 3],
    encoded: Box<[u8]>,
}

/// A URL's scheme, authority and path with query.
fn url_parts(url: &http::Uri) -> [&str; 3] {
    [
        url.scheme_str().unwrap_or(""),
        url.authority().map_or("", http::uri::Authority::as_str),
        url.path_and_query()
            .map_or("", http::uri::PathAndQuery::as_str),
    ]
}

/// Values of the `x-llmux-vendor`, `x-llmux-model` and `x-llmux-credential` response headers
/// (`None` where a name is not a valid header value). The model is only fixed for a
/// combination's slot; a passed-through model varies per request.
#[derive(Debug)]
pub struct HeaderValues {
    pub vendor: Option<HeaderValue>,
    pub model: Option<HeaderValue>,
    pub credential: Option<HeaderValue>,
}

/// The series of `target` in `snapshot`.
pub fn of(snapshot: &Snapshot, target: &Target<'_>) -> Arc<Series> {
    let table = &snapshot.table;
    let slots = snapshot.series.slots.get_or_init(|| {
        (0..table.combinations().len() + table.credentials().len())
            .map(|_| OnceLock::new())
            .collect()
    });
    let index = match target.combination {
        Some(i) => i,
        None => table.combinations().len() + target.credential_index,
    };
    match slots.get(index) {
        Some(slot) => slot
            .get_or_init(|| Arc::new(Series::new(snapshot, target)))
            .clone(),
        // Not reachable for a target of this snapshot; stay correct anyway.
        None => Arc::new(Series::new(snapshot, target)),
    }
}

impl Series {
    fn new(snapshot: &Snapshot, target: &Target<'_>) -> Self {
        let price = target
            .combination
            .and_then(|_| snapshot.config.pricing.price(target.upstream_model));
        Self {
            vendor: target.credential.vendor.as_str().into(),
            credential: target.credential.name.as_str().into(),
            model: target.public_name.to_owned(),
            upstream_model: target.combination.map(|_| target.upstream_model.into()),
            selections: OnceLock::new(),
            upstream_duration: OnceLock::new(),
            input_tokens: OnceLock::new(),
            output_tokens: OnceLock::new(),
            cost: price.map(|price| (price, OnceLock::new())),
            ttfb: OnceLock::new(),
            requests_ok: Default::default(),
            overhead: Default::default(),
            headers: HeaderValues {
                vendor: HeaderValue::from_str(&target.credential.vendor).ok(),
                model: target
                    .combination
                    .and_then(|_| HeaderValue::from_str(target.upstream_model).ok()),
                credential: HeaderValue::from_str(&target.credential.name).ok(),
            },
            client_span: OnceLock::new(),
            server_span: Default::default(),
        }
    }

    /// The fixed attributes of an attempt span sent to `url` from this slot, encoded by
    /// `encode` the first time; `None` for a passed-through model (its model varies) or a URL
    /// other than the first one.
    pub fn client_span_attributes(
        &self,
        url: &http::Uri,
        encode: impl FnOnce() -> Vec<u8>,
    ) -> Option<&[u8]> {
        self.upstream_model.as_ref()?;
        let parts = url_parts(url);
        let kept = self.client_span.get_or_init(|| ClientSpanAttributes {
            url: parts.map(str::to_owned),
            encoded: encode().into_boxed_slice(),
        });
        (kept.url == parts).then_some(&*kept.encoded)
    }

    /// The name and fixed attributes of the span of a request answered through this slot,
    /// encoded the first time for `trace`'s route; `None` when the slot does not fix them (a
    /// passed-through model, a route outside [`ROUTES`]), when `trace` has no provider or a
    /// response model other than the slot's, or when its requested model or provider differ
    /// from the ones kept for the route.
    pub fn server_span_fixed(&self, trace: &RequestTrace<'_>) -> Option<&ServerSpanFixed> {
        let model = self.upstream_model.as_deref()?;
        let provider = trace.provider?;
        if trace.response_model != Some(model) {
            return None;
        }
        let route = route_index(trace.route)?;
        let kept = self.server_span[route].get_or_init(|| ServerSpanKept {
            requested: trace.request_model.into(),
            provider,
            fixed: ServerSpanFixed::of(trace),
        });
        (*kept.requested == *trace.request_model && kept.provider == provider)
            .then_some(&kept.fixed)
    }

    /// The routing response headers' prepared values.
    pub fn header_values(&self) -> &HeaderValues {
        &self.headers
    }

    /// The vendor (`platform`) label.
    pub fn vendor(&self) -> &str {
        &self.vendor
    }

    /// The credential's name (never its value).
    pub fn credential(&self) -> &str {
        &self.credential
    }

    /// The public model name label.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The vendor's model name when this slot fixes it (a combination's).
    pub fn upstream_model(&self) -> Option<&str> {
        self.upstream_model.as_deref()
    }

    /// The shared names a log record keeps: vendor, credential and the vendor's model. A
    /// combination's slot fixes the model (every target of it sends that one); a passed-through
    /// model's slot does not, and `upstream_model` is copied.
    pub fn names(&self, upstream_model: &str) -> [Arc<str>; 3] {
        [
            Arc::clone(&self.vendor),
            Arc::clone(&self.credential),
            match &self.upstream_model {
                Some(fixed) => Arc::clone(fixed),
                None => upstream_model.into(),
            },
        ]
    }

    /// The price of `model` when it is this slot's fixed upstream model (`Some(None)`: it has
    /// no price); `None` when the slot cannot say (a passed-through model, or another one).
    pub fn price_of(&self, model: &str) -> Option<Option<llmux_config::Price>> {
        (self.upstream_model.as_deref() == Some(model))
            .then(|| self.cost.as_ref().map(|(price, _)| *price))
    }

    /// `llmux_selections_total`: the router chose this slot for an attempt.
    pub fn count_selection(&self, metrics: &Metrics) {
        self.selections
            .get_or_init(|| {
                metrics
                    .selections
                    .get_or_create(&SelectionLabels {
                        vendor: self.vendor.to_string(),
                        credential: self.credential.to_string(),
                        model: self.model.clone(),
                    })
                    .clone()
            })
            .inc();
    }

    /// `llmux_upstream_duration_seconds`.
    pub fn observe_upstream(&self, metrics: &Metrics, seconds: f64) {
        self.upstream_duration
            .get_or_init(|| {
                metrics
                    .upstream_duration
                    .get_or_create(&UpstreamLabels {
                        vendor: self.vendor.to_string(),
                        model: self.model.clone(),
                    })
                    .clone()
            })
            .observe(seconds);
    }

    /// `llmux_ttfb_seconds`: the request's time to its response head.
    pub fn observe_ttfb(&self, metrics: &Metrics, seconds: f64) {
        self.ttfb
            .get_or_init(|| metrics.ttfb.get_or_create(&self.upstream_labels()).clone())
            .observe(seconds);
    }

    fn upstream_labels(&self) -> UpstreamLabels {
        UpstreamLabels {
            vendor: self.vendor.to_string(),
            model: self.model.clone(),
        }
    }

    /// Adds reported tokens to `llmux_tokens_total` and their price to `llmux_cost_usd_total`;
    /// unreported usage adds nothing.
    pub fn add_usage(&self, metrics: &Metrics, usage: Option<Usage>) {
        let Some(usage) = usage else { return };
        if let Some((price, counter)) = &self.cost {
            let cost = price.cost(&usage.to_neutral());
            if cost > 0.0 {
                counter
                    .get_or_init(|| metrics.cost.get_or_create(&self.upstream_labels()).clone())
                    .inc_by(cost);
            }
        }
        for (direction, count, slot) in [
            ("input", usage.prompt_tokens, &self.input_tokens),
            ("output", usage.completion_tokens, &self.output_tokens),
        ] {
            let Some(count) = count else { continue };
            slot.get_or_init(|| {
                metrics
                    .tokens
                    .get_or_create(&TokenLabels {
                        vendor: self.vendor.to_string(),
                        model: self.model.clone(),
                        direction,
                    })
                    .clone()
            })
            .inc_by(count);
        }
    }

    /// [`Series::add_usage`] for neutral usage.
    pub fn add_neutral_usage(
        &self,
        metrics: &Metrics,
        usage: Option<llmux_protocol::neutral::Usage>,
    ) {
        self.add_usage(metrics, usage.map(Usage::from));
    }

    /// `llmux_overhead_seconds{route}`: the gateway's own time in a committed request.
    pub fn observe_overhead(&self, metrics: &Metrics, route: &'static str, seconds: f64) {
        let labels = RouteLabels { route };
        match route_index(route) {
            Some(i) => self.overhead[i]
                .get_or_init(|| metrics.overhead.get_or_create(&labels).clone())
                .observe(seconds),
            None => metrics.overhead.get_or_create(&labels).observe(seconds),
        }
    }

    /// `llmux_requests_total` for a request this slot answered.
    pub fn count_request(&self, metrics: &Metrics, route: &'static str, status: u16) {
        let labels = || RequestLabels {
            route,
            vendor: self.vendor.to_string(),
            model: self.model.clone(),
            status,
        };
        match route_index(route) {
            Some(i) if status == 200 => self.requests_ok[i]
                .get_or_init(|| metrics.requests.get_or_create(&labels()).clone())
                .inc(),
            _ => metrics.requests.get_or_create(&labels()).inc(),
        };
    }
}

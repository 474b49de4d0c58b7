//! The Prometheus registry and the gateway's metric families.

use prometheus_client::encoding::EncodeLabelSet;
/// Series handles: a clone shares its value with the family's series.
pub use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
pub use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::histogram::exponential_buckets;
use prometheus_client::registry::Registry;

/// A counter of US dollars (fractional).
pub type UsdCounter = Counter<f64, std::sync::atomic::AtomicU64>;

/// Labels of `llmux_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `chat`, `embeddings`, `models`…
    pub route: &'static str,
    /// Vendor that served it, or `none` when no upstream was chosen.
    pub vendor: String,
    /// Public model name (alias, configured model, or `passthrough`), or `none`.
    pub model: String,
    /// HTTP status sent to the client.
    pub status: u16,
}

/// Labels of per-upstream families.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// Vendor.
    pub vendor: String,
    /// Public model name.
    pub model: String,
}

/// Labels of `llmux_selections_total`: one series per combination.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SelectionLabels {
    /// Vendor.
    pub vendor: String,
    /// Credential name (never its value).
    pub credential: String,
    /// Public model name.
    pub model: String,
}

/// Labels of `llmux_tokens_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// Vendor.
    pub vendor: String,
    /// Public model name.
    pub model: String,
    /// `input` or `output`.
    pub direction: &'static str,
}

/// Labels of per-vendor reliability counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VendorLabels {
    /// Vendor.
    pub vendor: String,
}

/// Labels of `llmux_breaker_transitions_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BreakerLabels {
    /// Vendor.
    pub vendor: String,
    /// Credential name.
    pub credential: String,
    /// `combination` or `credential`.
    pub scope: &'static str,
    /// `open`, `half_open` or `closed`.
    pub to: &'static str,
}

/// Labels of `llmux_client_cancellations_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// `chat`, `responses`, `messages`…
    pub route: &'static str,
}

/// Labels of `llmux_cache_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `chat`, `responses`, `messages`, `gemini`.
    pub route: &'static str,
    /// `hit`, `miss` or `bypass`.
    pub result: &'static str,
}

/// Every metric family, registered once.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Client requests by route, vendor, model and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Time from sending upstream to the end of the upstream response.
    pub upstream_duration: Family<UpstreamLabels, Histogram, fn() -> Histogram>,
    /// Combinations chosen by the router.
    pub selections: Family<SelectionLabels, Counter>,
    /// Tokens reported by vendors.
    pub tokens: Family<TokenLabels, Counter>,
    /// US dollars spent, from reported tokens and the price table.
    pub cost: Family<UpstreamLabels, UsdCounter>,
    /// Time from a request's arrival to its response head (for a stream: its first content).
    pub ttfb: Family<UpstreamLabels, Histogram, fn() -> Histogram>,
    /// Attempts after the first.
    pub retries: Family<VendorLabels, Counter>,
    /// Retries that went to a different combination.
    pub failovers: Family<VendorLabels, Counter>,
    /// Circuit breaker state changes.
    pub breaker_transitions: Family<BreakerLabels, Counter>,
    /// Combinations put on cooldown by a rate limit or overload.
    pub cooldowns: Family<VendorLabels, Counter>,
    /// Upstream timeouts and connection failures.
    pub timeouts: Family<VendorLabels, Counter>,
    /// Streams the client closed before the end (their upstream request is cancelled).
    pub client_cancellations: Family<RouteLabels, Counter>,
    /// The gateway's own time per request: total time to the response head minus time waiting
    /// on upstreams.
    pub overhead: Family<RouteLabels, Histogram, fn() -> Histogram>,
    /// Requests (or response bodies) that failed with an internal error (a caught panic).
    pub panics: Counter,
    /// Requests refused at once because `limits.max_in_flight` were being served.
    pub shed: Counter,
    /// Client connections closed at once because `limits.max_connections` were open.
    pub connections_refused: Counter,
    /// Request log records dropped (the writer's queue was full or the database failed).
    pub log_dropped: Counter,
    /// Request traces dropped before export (the exporter's queue was full or the collector
    /// failed).
    pub trace_dropped: Counter,
    /// Requests the response cache answered (`hit`), sent on (`miss`) or was told to skip
    /// (`bypass`).
    pub cache: Family<CacheLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("llmux");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "requests",
            "Client requests by route, vendor, model and status",
            requests.clone(),
        );
        let upstream_duration: Family<UpstreamLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        registry.register(
            "upstream_duration_seconds",
            "Time from sending a request upstream to the end of its response",
            upstream_duration.clone(),
        );
        let selections = Family::<SelectionLabels, Counter>::default();
        registry.register(
            "selections",
            "Combinations chosen by the router",
            selections.clone(),
        );
        let tokens = Family::<TokenLabels, Counter>::default();
        registry.register("tokens", "Tokens reported by vendors", tokens.clone());
        let cost = Family::<UpstreamLabels, UsdCounter>::default();
        registry.register(
            "cost_usd",
            "US dollars spent by vendor and model: reported tokens times the price table (configured models only)",
            cost.clone(),
        );
        let ttfb: Family<UpstreamLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(duration_histogram);
        registry.register(
            "ttfb_seconds",
            "Time from a request's arrival to its response head (a stream's first content)",
            ttfb.clone(),
        );
        let retries = Family::<VendorLabels, Counter>::default();
        registry.register("retries", "Attempts after the first", retries.clone());
        let failovers = Family::<VendorLabels, Counter>::default();
        registry.register(
            "failovers",
            "Retries sent to a different combination",
            failovers.clone(),
        );
        let breaker_transitions = Family::<BreakerLabels, Counter>::default();
        registry.register(
            "breaker_transitions",
            "Circuit breaker state changes",
            breaker_transitions.clone(),
        );
        let cooldowns = Family::<VendorLabels, Counter>::default();
        registry.register(
            "cooldowns",
            "Cooldowns after rate limits or overload",
            cooldowns.clone(),
        );
        let timeouts = Family::<VendorLabels, Counter>::default();
        registry.register(
            "upstream_failures_connect_or_timeout",
            "Upstream timeouts and connection failures",
            timeouts.clone(),
        );
        let client_cancellations = Family::<RouteLabels, Counter>::default();
        registry.register(
            "client_cancellations",
            "Streams closed by the client before the end",
            client_cancellations.clone(),
        );
        let overhead: Family<RouteLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(overhead_histogram);
        registry.register(
            "overhead_seconds",
            "Gateway time per request: total to the response head minus upstream time",
            overhead.clone(),
        );
        let panics = Counter::default();
        registry.register(
            "panics",
            "Requests or response bodies that failed with an internal error (a caught panic)",
            panics.clone(),
        );
        let shed = Counter::default();
        registry.register(
            "requests_shed",
            "Requests refused with 503 because limits.max_in_flight were being served",
            shed.clone(),
        );
        let connections_refused = Counter::default();
        registry.register(
            "connections_refused",
            "Client connections closed because limits.max_connections were open",
            connections_refused.clone(),
        );
        let log_dropped = Counter::default();
        registry.register(
            "log_dropped",
            "Request log records dropped (queue full or database error)",
            log_dropped.clone(),
        );
        let trace_dropped = Counter::default();
        registry.register(
            "trace_dropped",
            "Request traces dropped (exporter queue full or collector error)",
            trace_dropped.clone(),
        );
        let cache = Family::<CacheLabels, Counter>::default();
        registry.register(
            "cache_requests",
            "Requests by response cache result: hit, miss or bypass (Cache-Control: no-store)",
            cache.clone(),
        );
        Self {
            registry,
            cache,
            requests,
            upstream_duration,
            selections,
            tokens,
            cost,
            ttfb,
            retries,
            failovers,
            breaker_transitions,
            cooldowns,
            timeouts,
            client_cancellations,
            overhead,
            panics,
            shed,
            connections_refused,
            log_dropped,
            trace_dropped,
        }
    }
}

/// 5 µs to ~80 ms in powers of two: the gateway's own cost.
fn overhead_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.000_005, 2.0, 15))
}

/// 1 ms to ~131 s in powers of two.
fn duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 18))
}

impl Metrics {
    /// The registry in Prometheus text format.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

//! What every request reads: the current configuration snapshot and the shared services.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use llmux_config::{Config, Credential, Reliability};
use llmux_reliability::{BreakerConfig, Health};
use llmux_router::RoutingTable;
use llmux_telemetry::metrics::Metrics;
use llmux_upstream::images::ImageFetcher;
use llmux_upstream::{Endpoints, UpstreamOptions};

use crate::shared_health::{SharedHealth, shared_id};

/// A config compiled for serving: routing table, prepared upstream endpoints and the health of
/// every combination and credential. Immutable; replaced as a whole on reload.
#[derive(Debug)]
pub struct Snapshot {
    /// The validated config.
    pub config: Config,
    /// Combinations and indexes.
    pub table: RoutingTable,
    /// Per-credential URLs, auth headers and clients, in `table.credentials()` order.
    pub endpoints: Endpoints,
    /// Breaker and statistics per combination and per credential.
    pub health: HealthTable,
    /// Every credential value, to scrub from anything shown or logged.
    pub(crate) secrets: Vec<String>,
    /// Metric series per routing slot, resolved on first use (`crate::series`).
    pub(crate) series: crate::series::SeriesTable,
    /// Live routing statistics (TTFB average, requests in flight) per combination, carried
    /// across reloads; the latency and least-busy policies read them.
    pub stats: llmux_router::StatsTable,
    /// Every name some credential lists in `forward_headers`, for capturing client headers.
    pub forward_headers: Vec<http::HeaderName>,
}

/// A config that cannot be served, or a reload that cannot be applied live.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The upstream side (endpoints, image fetcher) cannot be prepared.
    #[error(transparent)]
    Upstream(#[from] llmux_upstream::Error),
    /// A reload changed a section that only applies at start.
    #[error("'{0}' cannot change while the gateway runs; restart to apply it")]
    Fixed(&'static str),
}

/// Health entries aligned with the routing table: `combinations[i]` for combination `i`,
/// `credentials[j]` for credential `j`. Entries are shared with the previous snapshot for every
/// combination and credential that a reload left unchanged, so their breaker and cooldown state
/// survives.
#[derive(Debug, Default)]
pub struct HealthTable {
    pub combinations: Vec<Arc<Health>>,
    pub credentials: Vec<Arc<Health>>,
    combination_keys: HashMap<String, usize>,
    credential_keys: HashMap<String, usize>,
    shared: HashMap<String, Arc<Health>>,
    /// Per credential (aligned with `credentials`): entries for models passed through
    /// unchanged (no configured combination), so a 429 on one client's odd model cools down
    /// that (credential, model) only, never the whole credential.
    passed: Vec<Arc<PassedThrough>>,
    breaker: BreakerConfig,
}

/// Health of the passed-through models of one credential, created on first use.
#[derive(Debug, Default)]
pub struct PassedThrough {
    entries: std::sync::Mutex<HashMap<String, Arc<Health>>>,
}

/// Passed-through models tracked per credential; past this, healthy entries are forgotten
/// (clients choose these names, so the map must not grow without bound).
const MAX_PASSED_THROUGH: usize = 1024;

impl PassedThrough {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Health>>> {
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Identity of a credential across reloads: a changed key or URL is a new credential (its old
/// breaker state, e.g. after a 401, must not stick).
fn credential_key(c: &Credential) -> String {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    c.secret.expose().hash(&mut hasher);
    format!(
        "{}\u{0}{}\u{0}{}\u{0}{:x}",
        c.name,
        c.vendor,
        c.base_url,
        hasher.finish()
    )
}

pub fn breaker_config(r: &Reliability) -> BreakerConfig {
    BreakerConfig {
        consecutive_failures: r.breaker_consecutive_failures,
        failure_rate: r.breaker_failure_rate,
        window: r.breaker_window,
        min_requests: r.breaker_min_requests,
        open_for: Duration::from_millis(r.breaker_open_ms),
        max_open_for: Duration::from_millis(r.breaker_max_open_ms),
    }
}

impl HealthTable {
    fn build(
        table: &RoutingTable,
        reliability: &Reliability,
        previous: Option<&HealthTable>,
    ) -> Self {
        let breaker = breaker_config(reliability);
        let mut out = HealthTable::default();
        for credential in table.credentials() {
            let key = credential_key(credential);
            let entry = previous
                .and_then(|p| {
                    p.credential_keys
                        .get(&key)
                        .map(|&i| p.credentials[i].clone())
                })
                .unwrap_or_else(|| {
                    Arc::new(Health::new(breaker).shared_as(shared_id(credential, None)))
                });
            out.note_shared(&entry);
            let passed = previous
                .and_then(|p| p.credential_keys.get(&key).map(|&i| p.passed[i].clone()))
                .unwrap_or_default();
            out.passed.push(passed);
            out.credential_keys.insert(key, out.credentials.len());
            out.credentials.push(entry);
        }
        out.breaker = breaker;
        for combination in table.combinations() {
            let credential = &table.credentials()[combination.credential];
            let key = format!(
                "{}\u{0}{}",
                credential_key(credential),
                combination.model.model
            );
            let entry = previous
                .and_then(|p| {
                    p.combination_keys
                        .get(&key)
                        .map(|&i| p.combinations[i].clone())
                })
                .unwrap_or_else(|| {
                    let id = shared_id(credential, Some(&combination.model.model));
                    Arc::new(Health::new(breaker).shared_as(id))
                });
            out.note_shared(&entry);
            out.combination_keys.insert(key, out.combinations.len());
            out.combinations.push(entry);
        }
        out
    }

    fn note_shared(&mut self, entry: &Arc<Health>) {
        if let Some(id) = entry.shared_id() {
            self.shared.insert(id.to_owned(), Arc::clone(entry));
        }
    }

    /// The entry shared with other replicas under `id`: a configured combination or
    /// credential, or a passed-through model this replica has served.
    pub fn by_shared_id(&self, id: &str) -> Option<Arc<Health>> {
        if let Some(entry) = self.shared.get(id) {
            return Some(Arc::clone(entry));
        }
        self.passed.iter().find_map(|passed| {
            passed
                .lock()
                .values()
                .find(|entry| entry.shared_id() == Some(id))
                .cloned()
        })
    }

    /// The health of `model` passed through unchanged on credential `index` (created on first
    /// use, shared with other replicas like a combination's).
    pub fn passed_through(
        &self,
        index: usize,
        credential: &Credential,
        model: &str,
    ) -> Option<Arc<Health>> {
        let passed = self.passed.get(index)?;
        let mut entries = passed.lock();
        if let Some(entry) = entries.get(model) {
            return Some(Arc::clone(entry));
        }
        if entries.len() >= MAX_PASSED_THROUGH {
            let now = std::time::Instant::now();
            entries.retain(|_, entry| !entry.is_available(now));
            if entries.len() >= MAX_PASSED_THROUGH {
                // Every tracked model is cooling down: this one gets an untracked entry.
                return Some(Arc::new(Health::new(self.breaker)));
            }
        }
        let entry =
            Arc::new(Health::new(self.breaker).shared_as(shared_id(credential, Some(model))));
        entries.insert(model.to_owned(), Arc::clone(&entry));
        Some(entry)
    }
}

impl Snapshot {
    /// The endpoint (URLs, auth headers, client) of `target`'s credential.
    pub fn endpoint(
        &self,
        target: &llmux_router::Target<'_>,
    ) -> Result<&llmux_upstream::Endpoint, crate::api_error::ApiError> {
        self.endpoints.get(target.credential_index).ok_or_else(|| {
            crate::api_error::ApiError::new(
                llmux_protocol::error::ErrorKind::Internal,
                "credential endpoint missing",
            )
        })
    }

    /// Compiles `config` into a servable snapshot with fresh health state.
    pub fn compile(config: Config) -> Result<Self, SnapshotError> {
        Self::compile_after(config, None)
    }

    /// Compiles `config`, keeping the health state of what `previous` already had.
    pub fn compile_after(
        config: Config,
        previous: Option<&Snapshot>,
    ) -> Result<Self, SnapshotError> {
        let table = RoutingTable::compile(&config);
        let options = UpstreamOptions::from_config(&config, &|name| std::env::var(name).ok())?;
        let endpoints = Endpoints::prepare_with(table.credentials(), &options)?;
        let health = HealthTable::build(&table, &config.reliability, previous.map(|p| &p.health));
        let stats = match previous {
            Some(previous) => {
                llmux_router::StatsTable::carried(&table, &previous.table, &previous.stats)
            }
            None => llmux_router::StatsTable::new(&table),
        };
        let secrets = table
            .credentials()
            .iter()
            .map(|c| c.secret.expose().to_owned())
            .collect();
        let mut forward_headers: Vec<http::HeaderName> = Vec::new();
        for name in table.credentials().iter().flat_map(|c| &c.forward_headers) {
            // Validated names always parse; a duplicate is captured once.
            if let Ok(name) = http::HeaderName::from_bytes(name.as_bytes())
                && !forward_headers.contains(&name)
            {
                forward_headers.push(name);
            }
        }
        Ok(Self {
            config,
            table,
            endpoints,
            health,
            secrets,
            series: Default::default(),
            stats,
            forward_headers,
        })
    }

    pub(crate) fn secret_refs(&self) -> Vec<&str> {
        self.secrets.iter().map(String::as_str).collect()
    }
}

/// When vendors were last probed, and each credential's (name, outcome).
pub(crate) type ProbeResults = (std::time::Instant, Vec<(String, String)>);

/// Shared state of the running gateway.
#[derive(Debug)]
pub struct Gateway {
    /// The current snapshot; swapped atomically on reload.
    pub snapshot: ArcSwap<Snapshot>,
    /// Prometheus metrics.
    pub metrics: Metrics,
    /// Image URL downloads for vendors that need inline data (`images:`; replaced on reload).
    pub images: ArcSwap<ImageFetcher>,
    /// Client authentication, limits and budgets; `None` when `auth:` is not configured.
    pub governance: Option<Arc<crate::governance::Governance>>,
    /// Stored Open Responses answers (`previous_response_id`, GET/DELETE).
    pub(crate) responses: crate::response_store::ResponseStore,
    /// Unix time the process started (the `created` of listed models).
    pub started_unix: u64,
    /// When vendors were last actively probed, and what they answered (rate limit for
    /// `/health/vendors?probe=true`).
    pub(crate) last_probe: tokio::sync::Mutex<Option<ProbeResults>>,
    /// Breaker openings and cooldowns shared with other replicas, once [`Gateway::share_health`]
    /// was called.
    pub(crate) shared_health: std::sync::OnceLock<Arc<SharedHealth>>,
    /// Counters for vendor quotas (`credentials[].limits`): the governance limiter when there is
    /// one, Redis when configured, else memory (see [`Gateway::connect_shared_state`]).
    quota_limiter: std::sync::OnceLock<Arc<dyn llmux_store::Limiter>>,
    /// Requests in flight against `limits.max_in_flight`.
    pub(crate) load: Arc<crate::edge::overload::Load>,
    /// The request log, once [`Gateway::start_request_log`] opened it.
    pub(crate) request_log: std::sync::OnceLock<crate::request_log::LogSink>,
    /// Trace export, once [`Gateway::start_tracing`] found an endpoint.
    pub(crate) tracing: std::sync::OnceLock<Arc<crate::trace::Tracing>>,
    /// The response cache's store, made on first use (`cache.store`).
    answer_cache: std::sync::OnceLock<Option<Arc<dyn llmux_store::AnswerCache>>>,
}

impl Gateway {
    /// A gateway serving `snapshot`.
    pub fn new(snapshot: Snapshot) -> Result<Arc<Self>, SnapshotError> {
        Self::with_governance(snapshot, None)
    }

    /// A gateway serving `snapshot` with client governance.
    pub fn with_governance(
        snapshot: Snapshot,
        governance: Option<crate::governance::Governance>,
    ) -> Result<Arc<Self>, SnapshotError> {
        Self::with_parts(snapshot, governance, None)
    }

    /// A gateway with client governance and a database behind the stored responses.
    pub fn with_parts(
        snapshot: Snapshot,
        governance: Option<crate::governance::Governance>,
        response_backend: Option<Arc<dyn llmux_store::ResponseStore>>,
    ) -> Result<Arc<Self>, SnapshotError> {
        let bounds = crate::response_store::Bounds::of(&snapshot.config.responses);
        let images = ImageFetcher::new(&snapshot.config.images)?;
        let load = crate::edge::overload::Load::new(snapshot.config.limits.max_in_flight);
        Ok(Arc::new(Self {
            snapshot: ArcSwap::from_pointee(snapshot),
            metrics: Metrics::default(),
            images: ArcSwap::from_pointee(images),
            governance: governance.map(Arc::new),
            responses: crate::response_store::ResponseStore::with_backend(bounds, response_backend),
            started_unix: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            last_probe: tokio::sync::Mutex::new(None),
            shared_health: std::sync::OnceLock::new(),
            quota_limiter: std::sync::OnceLock::new(),
            load,
            request_log: std::sync::OnceLock::new(),
            tracing: std::sync::OnceLock::new(),
            answer_cache: std::sync::OnceLock::new(),
        }))
    }

    /// The response cache's store, made from `cache:` on first use: memory bounded by
    /// `cache.max_bytes`, or Redis (`redis:`). `None` when a Redis URL cannot be used (logged
    /// once; requests then go to vendors). A reload does not change the store once made.
    pub(crate) fn answer_cache(
        &self,
        snapshot: &Snapshot,
    ) -> Option<Arc<dyn llmux_store::AnswerCache>> {
        self.answer_cache
            .get_or_init(|| {
                let config = &snapshot.config;
                match (config.cache.store, &config.redis) {
                    (llmux_config::CacheStore::Redis, Some(url)) => {
                        match llmux_store::RedisAnswerCache::new(url.expose()) {
                            Ok(cache) => Some(Arc::new(cache) as Arc<dyn llmux_store::AnswerCache>),
                            Err(err) => {
                                tracing::error!(error = %err, "response cache: cannot use redis; caching is off");
                                None
                            }
                        }
                    }
                    _ => Some(Arc::new(llmux_store::MemoryAnswerCache::new(
                        config.cache.max_bytes,
                    ))),
                }
            })
            .clone()
    }

    /// Connects what replicas share beyond governance, when `redis:` is configured: breaker
    /// openings and cooldowns ([`Gateway::share_health`]) and, when a credential has
    /// `limits`, the vendor quota counters. Call once at start, inside the runtime.
    pub async fn connect_shared_state(self: &Arc<Self>) -> Result<(), llmux_store::StoreError> {
        let snapshot = self.snapshot.load_full();
        let Some(url) = &snapshot.config.redis else {
            return Ok(());
        };
        let board = llmux_store::RedisHealthBoard::new(url.expose())?;
        let interval = Duration::from_millis(snapshot.config.reliability.share_interval_ms);
        self.share_health(Arc::new(board), interval);
        let quotas = snapshot.config.credentials.iter().any(|c| c.limits.any());
        if quotas && self.governance.is_none() {
            let limiter = llmux_store::RedisLimiter::connect(url.expose()).await?;
            let _ = self.quota_limiter.set(Arc::new(limiter));
        }
        Ok(())
    }

    /// Opens the request log named by `log:` (when configured) and starts its writer as a
    /// tracked task. Call once at start, inside the runtime.
    pub async fn start_request_log(self: &Arc<Self>) -> Result<(), llmux_store::StoreError> {
        let snapshot = self.snapshot.load_full();
        let Some(config) = &snapshot.config.log else {
            return Ok(());
        };
        let store = llmux_store::open_request_log(config.database.expose()).await?;
        let options = llmux_store::RequestLogOptions {
            retention_days: Some(config.retention_days),
            ..llmux_store::RequestLogOptions::default()
        };
        let (log, task) = llmux_store::RequestLog::start(store, options);
        if self
            .request_log
            .set(crate::request_log::LogSink::new(log, config))
            .is_ok()
        {
            llmux_telemetry::spawn_tracked(task);
        }
        Ok(())
    }

    /// Starts exporting traces when an OTLP endpoint is configured (`telemetry.otlp`, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` read through `env`); the config file wins over the
    /// environment, field by field. Call once at start, inside the runtime. Returns the
    /// endpoint traces go to, or a message when the settings are unusable.
    pub fn start_tracing(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<String>, String> {
        let snapshot = self.snapshot.load_full();
        let Some(exporter) = exporter(&snapshot.config.telemetry, &env)? else {
            return Ok(None);
        };
        let sampler = crate::trace::Sampler::configured(&snapshot.config.telemetry, &env)?;
        let (tracer, task) =
            llmux_telemetry::otlp::Tracer::start(&exporter, self.metrics.trace_dropped.clone())?;
        let telemetry = &snapshot.config.telemetry;
        let tracing = crate::trace::Tracing {
            tracer,
            sampler,
            capture_content: telemetry
                .capture_content
                .then_some(telemetry.max_content_bytes),
        };
        if self.tracing.set(Arc::new(tracing)).is_ok() {
            llmux_telemetry::spawn_tracked(task);
        }
        Ok(Some(exporter.endpoint))
    }

    /// Asks the trace exporter to send what is queued and stop (at shutdown, before draining).
    pub fn stop_tracing(&self) {
        if let Some(tracing) = self.tracing.get() {
            tracing.tracer.shutdown();
        }
    }

    /// Bytes the stored-responses memory cache holds now (bounded by `responses.max_bytes`).
    pub fn stored_response_bytes(&self) -> usize {
        self.responses.cached_bytes()
    }

    /// The counters behind vendor quotas.
    pub(crate) fn quota_limiter(&self) -> &Arc<dyn llmux_store::Limiter> {
        self.quota_limiter.get_or_init(|| match &self.governance {
            Some(governance) => Arc::clone(governance.limiter()),
            None => Arc::new(llmux_store::MemoryLimiter::default()),
        })
    }

    /// Shares breaker openings and cooldowns with the other replicas on `board`, reading it
    /// every `interval` (a background task that ends with the gateway). Call once, inside the
    /// runtime; later calls are ignored.
    pub fn share_health(
        self: &Arc<Self>,
        board: Arc<dyn llmux_store::HealthBoard>,
        interval: Duration,
    ) {
        let shared = Arc::new(SharedHealth::new(board, interval));
        if self.shared_health.set(Arc::clone(&shared)).is_ok() {
            // Lives as long as the gateway (it stops when the gateway is dropped), so it is
            // not one of the tracked tasks that shutdown waits for.
            tokio::runtime::Handle::current().spawn(shared.run(Arc::downgrade(self)));
        }
    }

    /// Validates nothing (the caller already has a valid `Config`): compiles it next to the
    /// current snapshot and swaps it in. Requests in flight finish on the snapshot they loaded.
    ///
    /// Every section applies: routing, credentials and `limits` through the snapshot, `images`
    /// by a new fetcher, `auth` (master key, `protect_metrics`, `redis_failure`) in governance.
    /// What only applies at start — adding or removing `auth`, `auth.database`, `redis`,
    /// `responses.store`, `limits.max_connections` — rejects the whole reload, named in the
    /// error, so nothing is silently ignored.
    pub fn reload(&self, config: Config) -> Result<(), SnapshotError> {
        let current = self.snapshot.load_full();
        if let Some(section) = fixed_section_changed(&current.config, &config) {
            return Err(SnapshotError::Fixed(section));
        }
        let images = ImageFetcher::new(&config.images)?;
        let next = Snapshot::compile_after(config, Some(&current))?;
        if let (Some(governance), Some(auth)) = (&self.governance, &next.config.auth) {
            governance.apply(auth);
        }
        self.images.store(Arc::new(images));
        self.load.set_limit(next.config.limits.max_in_flight);
        self.snapshot.store(Arc::new(next));
        Ok(())
    }
}

/// The first setting that differs between `current` and `next` but is only read at start.
fn fixed_section_changed(current: &Config, next: &Config) -> Option<&'static str> {
    match (&current.auth, &next.auth) {
        (None, Some(_)) | (Some(_), None) => return Some("auth"),
        (Some(a), Some(b)) if a.database != b.database => return Some("auth.database"),
        _ => {}
    }
    if current.redis != next.redis {
        return Some("redis");
    }
    if current.responses.store != next.responses.store {
        return Some("responses.store");
    }
    if current.limits.max_connections != next.limits.max_connections {
        return Some("limits.max_connections");
    }
    None
}

/// The exporter's settings: `telemetry:` first, then the standard `OTEL_*` variables for what
/// the file leaves out. `None` when no endpoint is set anywhere (tracing stays off).
fn exporter(
    telemetry: &llmux_config::Telemetry,
    env: &impl Fn(&str) -> Option<String>,
) -> Result<Option<llmux_telemetry::otlp::Exporter>, String> {
    use llmux_telemetry::otlp::{Exporter, Protocol};
    let env = |name: &str| {
        env(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let otlp = telemetry.otlp.as_ref();
    let endpoint = match otlp.and_then(|o| o.endpoint.as_ref()) {
        Some(url) => url.as_str().to_owned(),
        None => match env("OTEL_EXPORTER_OTLP_ENDPOINT") {
            Some(url) => url,
            None => return Ok(None),
        },
    };
    let protocol = match otlp.and_then(|o| o.protocol) {
        Some(protocol) => protocol,
        None => match env("OTEL_EXPORTER_OTLP_PROTOCOL") {
            Some(text) => llmux_config::OtlpProtocol::parse(&text).ok_or_else(|| {
                format!("OTEL_EXPORTER_OTLP_PROTOCOL '{text}' is not one of grpc, http/protobuf")
            })?,
            None => llmux_config::OtlpProtocol::Grpc,
        },
    };
    // `OTEL_EXPORTER_OTLP_HEADERS`: `name=value,name=value`, values percent-encoded.
    let mut headers: Vec<(String, String)> = env("OTEL_EXPORTER_OTLP_HEADERS")
        .map(|list| {
            list.split(',')
                .filter_map(|pair| pair.split_once('='))
                .map(|(n, v)| (n.trim().to_ascii_lowercase(), percent_decode(v.trim())))
                .collect()
        })
        .unwrap_or_default();
    if let Some(otlp) = otlp {
        for (name, value) in &otlp.headers {
            headers.retain(|(n, _)| n != name);
            headers.push((name.clone(), value.expose().to_owned()));
        }
    }
    Ok(Some(Exporter {
        endpoint,
        protocol: match protocol {
            llmux_config::OtlpProtocol::Grpc => Protocol::Grpc,
            llmux_config::OtlpProtocol::HttpProtobuf => Protocol::HttpProtobuf,
        },
        headers,
        service_name: telemetry
            .service_name
            .clone()
            .or_else(|| env("OTEL_SERVICE_NAME"))
            .unwrap_or_else(|| "llmux".to_owned()),
    }))
}

/// `%XX` escapes decoded (W3C baggage-style header values); anything malformed is kept as is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

//! The validated configuration types. They hold no raw strings that still need checking: URLs are
//! [`url::Url`], choices are enums, and secrets are [`Secret`].

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::Secret;

/// A validated configuration: what the router compiles into its routing table.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Config {
    /// The `listen:` address; `None` lets the caller decide (the `PORT` env var, else 8082).
    pub listen: Option<SocketAddr>,
    /// Vendor credentials, in file order.
    pub credentials: Vec<Credential>,
    /// Models, in file order.
    pub models: Vec<Model>,
    /// How requests are matched to models.
    pub routing: Routing,
    /// Request size limits.
    pub limits: Limits,
    /// Upstream and server timeouts.
    pub timeouts: Timeouts,
    /// Fetching image URLs for vendors that need inline image data.
    pub images: Images,
    /// Retries, failover, circuit breakers and cooldowns.
    pub reliability: Reliability,
    /// Client authentication and the key database (`auth:`); `None` runs the gateway open.
    pub auth: Option<Auth>,
    /// Shared state for several replicas (`redis:`).
    pub redis: Option<Secret>,
    /// Where stored Open Responses live (`responses:`).
    pub responses: ResponsesStore,
    /// Trust roots for vendor connections (`tls:`).
    pub tls: Tls,
    /// The request log (`log:`); `None` keeps no log.
    pub log: Option<RequestLogConfig>,
    /// How clients' API features that a vendor lacks are handled (`compat:`).
    pub compat: Compat,
    /// The response cache (`cache:`); off unless configured.
    pub cache: Cache,
    /// OpenTelemetry traces (`telemetry:`); exported only when an endpoint is set here or in
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub telemetry: Telemetry,
    /// USD per million tokens by upstream model name (prefix match), shipped defaults merged
    /// with `pricing:`.
    pub pricing: Pricing,
    /// Where this configuration came from, for humans: `llmux.yaml`,
    /// `configs/credentials.json + configs/models.json`, `demo mode (OPENAI_API_KEY)`, …
    pub source: String,
}

/// One credential for one vendor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// Unique name, shown in headers and metrics (`openai-1`); never the secret.
    pub name: String,
    /// The vendor this credential belongs to (the file's `platform` field).
    pub vendor: String,
    /// The credential type (the file's `type` field), `api-key` by default.
    pub kind: String,
    /// The wire protocol spoken to this vendor.
    pub api: Api,
    /// The vendor's API root including its version segment, e.g. `https://api.openai.com/v1`.
    ///
    /// The path never ends in `/` except for a bare host (`https://host/`), so append operations
    /// with `base_url.as_str().trim_end_matches('/')` + `/chat/completions`. It has no query or
    /// fragment.
    pub base_url: url::Url,
    /// The credential value.
    pub secret: Secret,
    /// Download `http(s)` image URLs and send them inline. Always on for Gemini's native API,
    /// which cannot fetch URLs; off by default elsewhere (the vendor fetches them).
    pub fetch_images: bool,
    /// Upstream timeouts for this credential (the global ones unless overridden).
    pub timeouts: Timeouts,
    /// The vendor's quota for this key, enforced by llmux across every replica.
    pub limits: CredentialLimits,
    /// Client request headers passed on to this vendor on the same-protocol paths, besides the
    /// defaults (`anthropic-beta`, `anthropic-version`, `openai-beta`): lowercase names, none of
    /// them refused by [`crate::refused_forward_header`].
    pub forward_headers: Vec<String>,
    /// How Open Responses requests (`/v1/responses`) reach this credential.
    pub responses: ResponsesMode,
}

/// How `/v1/responses` reaches a credential (`credentials[].responses`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResponsesMode {
    /// The vendor's own `{base_url}/responses`, with the client's body as sent except `model`
    /// (the default for `platform: openai` with `api: openai`).
    Native,
    /// Through the neutral model to the credential's API (Chat Completions for `api: openai`):
    /// the default everywhere else, since most OpenAI-compatible servers have no `/responses`.
    #[default]
    Translate,
}

impl ResponsesMode {
    /// The default for a credential of `vendor` speaking `api`.
    pub fn default_for(vendor: &str, api: Api) -> Self {
        if vendor == "openai" && api == Api::OpenAi {
            Self::Native
        } else {
            Self::Translate
        }
    }
}

/// Requests and tokens per minute a vendor allows one key (`credentials[].limits`). llmux keeps
/// each key under its quota (shared through Redis by replicas) and sends the request to another
/// key, or answers 429, instead of letting the vendor refuse it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CredentialLimits {
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Tokens per minute (input estimate + `max_tokens` reserved before the call, corrected
    /// with the real usage after it).
    pub tpm: Option<u32>,
}

impl CredentialLimits {
    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.rpm.is_some() || self.tpm.is_some()
    }
}

/// The wire protocol a credential speaks upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Api {
    /// OpenAI Chat Completions, and every OpenAI-compatible server.
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini native `generateContent`.
    Gemini,
}

impl Api {
    /// The name used in config files: `openai`, `anthropic` or `gemini`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
        }
    }
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One model offered by one vendor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// The vendor that serves it; matches [`Credential::vendor`].
    pub vendor: String,
    /// The model id sent upstream.
    pub model: String,
    /// Optional public alias; models sharing a name form a group.
    pub name: Option<String>,
    /// Chat or embedding.
    pub kind: ModelKind,
    /// Which request features this model accepts.
    pub capabilities: Capabilities,
    /// Its share of traffic under the `weighted` policy (`models[].weight`, default 1). Each
    /// combination of this model carries the whole weight, so a model served by two credentials
    /// gets twice the traffic of a model with the same weight and one credential.
    pub weight: Weight,
    /// Its tier under the `priority` policy (`models[].tier`, default 0): lower is preferred.
    pub tier: u32,
}

impl Model {
    /// The name clients see: the alias if set, else the model id.
    pub fn public_name(&self) -> &str {
        self.name.as_deref().unwrap_or(&self.model)
    }
}

/// A model's share of traffic under [`RoutingPolicy::Weighted`]: a finite number greater than 0.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd)]
pub struct Weight(f64);

// Equality is total: a `Weight` is never NaN.
impl Eq for Weight {}

impl Weight {
    /// The default weight, 1.
    pub const ONE: Self = Self(1.0);

    /// `value` as a weight, or `None` unless it is finite and greater than 0.
    pub fn new(value: f64) -> Option<Self> {
        (value.is_finite() && value > 0.0).then_some(Self(value))
    }

    /// The weight as a number: finite and greater than 0.
    pub fn get(self) -> f64 {
        self.0
    }
}

impl Default for Weight {
    fn default() -> Self {
        Self::ONE
    }
}

/// What a model is used for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Chat, Responses and Messages endpoints.
    #[default]
    Chat,
    /// The embeddings endpoint.
    Embedding,
}

impl ModelKind {
    /// The name used in config files: `chat` or `embedding`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Embedding => "embedding",
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Request features a model supports; a request that needs one only goes to models that have it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Capabilities {
    /// Image inputs.
    pub image: bool,
    /// Video inputs.
    pub video: bool,
    /// Tool (function) calling.
    pub tools: bool,
    /// Streaming responses.
    pub streaming: bool,
}

impl Default for Capabilities {
    /// Everything supported, as for a seed model without `config`.
    fn default() -> Self {
        Self {
            image: true,
            video: true,
            tools: true,
            streaming: true,
        }
    }
}

/// Routing options (`routing:`).
///
/// Every name used as a key or in a chain is a configured `models[].name` or `models[].model`
/// (validated). Fallback chains may form cycles across chains (`a: [b]`, `b: [a]`): the runtime
/// never serves a request twice from the same group, it skips every group the request already
/// visited, so a walk over the chains always ends. A chain never contains its own name.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Routing {
    /// What to do with a requested model that matches no configured `model` or `name`.
    pub unknown_model: UnknownModelPolicy,
    /// How a group chooses among its available combinations, unless `groups` says otherwise
    /// (`routing.policy`, default `even`).
    pub policy: RoutingPolicy,
    /// Per public name overrides (`routing.groups`).
    pub groups: BTreeMap<String, Group>,
    /// Where a request goes when no combination of its group can serve it (all failed, open or
    /// cooling down): `routing.fallbacks`, name → the groups to try next, in order.
    pub fallbacks: BTreeMap<String, Vec<String>>,
    /// Where a request goes when its vendor says the input exceeds the model's context window
    /// (`routing.context_fallbacks`).
    pub context_fallbacks: BTreeMap<String, Vec<String>>,
    /// Where a request goes when its vendor refuses it with a content filter
    /// (`routing.content_fallbacks`).
    pub content_fallbacks: BTreeMap<String, Vec<String>>,
}

impl Routing {
    /// The policy of the group `name`: its `routing.groups` override, else `routing.policy`.
    pub fn policy_for(&self, name: &str) -> RoutingPolicy {
        self.groups.get(name).map_or(self.policy, |g| g.policy)
    }
}

/// One `routing.groups` entry: settings for the combinations of one public name.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Group {
    /// The group's policy (`routing.policy` when the entry does not set one).
    pub policy: RoutingPolicy,
    /// The group's cache mode (`cache.mode` when the entry does not set one).
    pub cache: Option<CacheMode>,
}

/// How a group chooses among its available combinations. Every policy only ever chooses among
/// combinations that may take the request now (breakers, cooldowns, vendor quotas, capability
/// filters and `?vendor=` are applied first) and prefers combinations not yet tried for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RoutingPolicy {
    /// Each combination equally likely (the original router's guarantee).
    #[default]
    Even,
    /// Probability proportional to `models[].weight`.
    Weighted,
    /// Power of two choices on a decaying average of time to first byte; a small share of
    /// traffic still goes to slower combinations, so their recovery is noticed.
    Latency,
    /// Power of two choices on requests in flight.
    LeastBusy,
    /// The cheapest combination for the request's estimated tokens (`pricing`), ties even.
    Cost,
    /// The lowest `models[].tier` that has an available combination, even within the tier.
    Priority,
}

impl RoutingPolicy {
    /// The name used in config files, e.g. `least_busy`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Even => "even",
            Self::Weighted => "weighted",
            Self::Latency => "latency",
            Self::LeastBusy => "least_busy",
            Self::Cost => "cost",
            Self::Priority => "priority",
        }
    }
}

impl fmt::Display for RoutingPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to do with a requested model that matches no configured `model` or `name`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnknownModelPolicy {
    /// Infer the vendor when it has credentials, else use the whole pool.
    #[default]
    InferThenPool,
    /// Use every candidate combination (the original router's "any model" behaviour).
    Pool,
    /// Infer the vendor from the model name and pass the model through unchanged.
    Infer,
    /// Reject the request.
    Reject,
}

impl UnknownModelPolicy {
    /// The name used in config files, e.g. `infer_then_pool`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InferThenPool => "infer_then_pool",
            Self::Pool => "pool",
            Self::Infer => "infer",
            Self::Reject => "reject",
        }
    }
}

impl fmt::Display for UnknownModelPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Size, connection and concurrency limits (`limits:`): what one client, one request or one
/// vendor may make llmux hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted request body, in bytes (default 10 MiB).
    pub max_body_bytes: usize,
    /// `max_tokens` sent to vendors that require one (Anthropic) when the request has none.
    pub default_max_tokens: u32,
    /// Open client connections; a connection past it is closed at once (default 10,000).
    pub max_connections: usize,
    /// Requests being served at once; past it a request gets an immediate 503 with
    /// `Retry-After` (default 1,024 per CPU core).
    pub max_in_flight: usize,
    /// Largest non-stream vendor response body, in bytes (default 64 MiB); larger is a 502.
    pub max_upstream_body_bytes: usize,
    /// Largest vendor stream line or event, in bytes (default 16 MiB); larger is a 502.
    pub max_upstream_event_bytes: usize,
    /// Connections llmux keeps open to one vendor host (default 512).
    pub upstream_connections_per_host: usize,
}

impl Limits {
    /// The default `max_body_bytes`: 10 MiB.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 10 * 1024 * 1024;

    /// The default `max_in_flight`: 1,024 per core this process may use.
    pub fn default_max_in_flight() -> usize {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        1024 * cores
    }
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            default_max_tokens: 4096,
            max_connections: 10_000,
            max_in_flight: Self::default_max_in_flight(),
            max_upstream_body_bytes: 64 * 1024 * 1024,
            max_upstream_event_bytes: 16 * 1024 * 1024,
            upstream_connections_per_host: 512,
        }
    }
}

/// `compat:`: what happens to parts of a request the chosen vendor cannot honour.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Compat {
    /// Hosted tools (`web_search`, `file_search`, `code_interpreter`, …) offered to a vendor
    /// that cannot run them.
    pub unsupported_tools: UnsupportedTools,
}

/// What to do with an offered tool the vendor cannot run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsupportedTools {
    /// Remove it from the offer (an offered tool is optional to the model) and name it in
    /// `x-llmux-dropped-tools` (the default).
    #[default]
    Drop,
    /// Refuse the request with a 400 naming the tool.
    Reject,
}

/// The response cache (`cache:`): complete answers kept for `ttl_seconds` and served again for
/// the same normalized request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cache {
    /// `off` (the default) or `exact`; `routing.groups.<name>.cache` overrides it per group.
    pub mode: CacheMode,
    /// Whose answers a request may reuse: its own key's (the default) or anyone's.
    pub scope: CacheScope,
    /// How long an answer is served from the cache (default 300 s).
    pub ttl_seconds: u64,
    /// Bytes the in-memory cache may hold (default 64 MiB).
    pub max_bytes: u64,
    /// Where answers are kept: `memory` (the default) or `redis` (the top-level `redis:`,
    /// shared by replicas).
    pub store: CacheStore,
}

impl Config {
    /// Whether answers of the group `name` are cached: its `routing.groups` override, else
    /// `cache.mode`.
    pub fn cache_mode_for(&self, name: &str) -> CacheMode {
        self.routing
            .groups
            .get(name)
            .and_then(|g| g.cache)
            .unwrap_or(self.cache.mode)
    }
}

impl Default for Cache {
    fn default() -> Self {
        Self {
            mode: CacheMode::Off,
            scope: CacheScope::Key,
            ttl_seconds: 300,
            max_bytes: 64 << 20,
            store: CacheStore::Memory,
        }
    }
}

/// Whether answers are cached (`cache.mode`, `routing.groups.<name>.cache`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheMode {
    /// No lookup, nothing stored.
    #[default]
    Off,
    /// Answers are reused for requests equal after normalization.
    Exact,
}

/// Who shares cached answers (`cache.scope`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheScope {
    /// Each virtual key (or, without auth, everyone together) has its own answers.
    #[default]
    Key,
    /// Every caller shares every answer.
    Global,
}

/// Where cached answers live (`cache.store`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheStore {
    /// This process's memory, bounded by `cache.max_bytes`.
    #[default]
    Memory,
    /// Redis (`redis:`), shared by every replica.
    Redis,
}

/// The request log (`log:`): one record per API request, written off the request path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestLogConfig {
    /// `sqlite://file` (default `sqlite://llmux-log.db`) or `postgres://…` (partitioned by day).
    pub database: Secret,
    /// Which request bodies are kept with their records.
    pub bodies: LogBodies,
    /// Whole days of records kept (default 7).
    pub retention_days: u32,
    /// Largest body kept, in bytes (default 16 KiB; longer bodies are cut).
    pub max_body_bytes: usize,
}

/// OpenTelemetry traces (`telemetry:`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Telemetry {
    /// Where spans are exported; `None` leaves it to the `OTEL_EXPORTER_OTLP_*` variables.
    pub otlp: Option<Otlp>,
    /// Record prompts and completions on spans (default off: they may hold personal data).
    pub capture_content: bool,
    /// Longest content kept per span, in bytes (default 16 KiB).
    pub max_content_bytes: usize,
    /// `service.name` of the exported resource (default `llmux`, or `OTEL_SERVICE_NAME`).
    pub service_name: Option<String>,
    /// The share of new traces recorded (`telemetry.sample_ratio`); a client's `traceparent`
    /// decides for its own trace. `None` leaves it to `OTEL_TRACES_SAMPLER` (else all).
    pub sample_ratio: Option<SampleRatio>,
}

/// A share of traces to record, from 0 to 1, kept in millionths (so the config stays `Eq`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SampleRatio {
    per_million: u32,
}

impl SampleRatio {
    /// Every trace.
    pub const ALL: Self = Self {
        per_million: 1_000_000,
    };
    /// No trace.
    pub const NONE: Self = Self { per_million: 0 };

    /// A ratio from 0 to 1 (finer than a millionth is rounded); `None` outside that.
    pub fn new(ratio: f64) -> Option<Self> {
        (0.0..=1.0).contains(&ratio).then(|| Self {
            // In range, so the product is at most 10^6.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            per_million: (ratio * 1e6).round() as u32,
        })
    }

    /// `OTEL_TRACES_SAMPLER_ARG`'s form: a decimal number from 0 to 1.
    pub fn parse(text: &str) -> Option<Self> {
        text.trim().parse().ok().and_then(Self::new)
    }

    /// The ratio in millionths.
    pub fn per_million(self) -> u32 {
        self.per_million
    }
}

/// `telemetry.otlp:`: an OTLP collector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Otlp {
    /// `http(s)://host:port`: the collector's base URL (OTLP/HTTP appends `/v1/traces` unless
    /// the path already names it).
    pub endpoint: Option<url::Url>,
    /// The transport; `None` leaves it to `OTEL_EXPORTER_OTLP_PROTOCOL` (else `grpc`).
    pub protocol: Option<OtlpProtocol>,
    /// Extra request headers (collector API keys): secrets, never logged.
    pub headers: Vec<(String, Secret)>,
}

/// How spans travel to the collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (`grpc`, port 4317 by convention).
    Grpc,
    /// OTLP/HTTP with protobuf bodies (`http/protobuf`, port 4318 by convention).
    HttpProtobuf,
}

impl OtlpProtocol {
    /// Parses the names OpenTelemetry uses (`grpc`, `http/protobuf`).
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            "grpc" => Some(Self::Grpc),
            "http/protobuf" => Some(Self::HttpProtobuf),
            _ => None,
        }
    }
}

/// Which request bodies the request log keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LogBodies {
    /// None (the default).
    #[default]
    None,
    /// Those of requests that failed.
    Errors,
    /// All of them.
    All,
}

/// Which certificate authorities vendor connections trust (`tls:`).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Tls {
    /// A PEM file of extra CA certificates (a private CA in front of a vendor).
    pub ca_file: Option<std::path::PathBuf>,
    /// The built-in root sets to trust besides `ca_file`.
    pub roots: TlsRoots,
}

/// Built-in trust roots.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TlsRoots {
    /// Mozilla's roots compiled into the binary (the default: no dependence on the host).
    #[default]
    Webpki,
    /// The operating system's trust store.
    System,
    /// Both.
    Both,
}

/// `images.fetch`: which http(s) image URLs are downloaded and inlined. File and audio URLs
/// (`file_url`, `audio_url`, `input_file.file_url`) are always downloaded unless `off`: no
/// vendor reads them from a URL through every API.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FetchImages {
    /// Only for vendors that need inline data (Gemini's native API, or a credential with
    /// `fetch_images: true`); others get the URL. `true` in older configs.
    #[default]
    Auto,
    /// Every image URL, for every vendor (the original router's behaviour).
    All,
    /// None: a request that needs a download is a 400. `false` in older configs.
    Off,
}

/// Image URL fetching (`images:`), guarded against server-side request forgery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    /// Which http(s) media URLs the gateway downloads and sends inline (`auto` by default;
    /// `all` in the original router's layout).
    pub fetch: FetchImages,
    /// Hosts (exact names, case-insensitive) that may receive the per-part download headers
    /// of the original router (`image_url.headers`); other hosts get no client header.
    pub header_hosts: Vec<String>,
    /// Largest image, in bytes (default 20 MiB).
    pub max_bytes: usize,
    /// Whole-download deadline (default 10000 ms).
    pub timeout_ms: u64,
    /// Redirects followed, each one re-checked (default 3).
    pub max_redirects: u32,
    /// Allow loopback, private, link-local and other internal addresses (default false).
    pub allow_private_networks: bool,
    /// Exact addresses allowed even though they are internal (e.g. an internal image host).
    pub allow_addresses: Vec<std::net::IpAddr>,
    /// Image URLs fetched for one request (default 16); more is a 400.
    pub max_per_request: usize,
    /// Bytes downloaded for one request's images together (default 50 MiB); more is a 400.
    pub max_total_bytes: usize,
    /// An HTTP(S) proxy for image downloads (`http://host:port`); without it downloads go
    /// direct, whatever `HTTP(S)_PROXY` says, so the address guard sees the real target.
    pub proxy: Option<String>,
}

impl Default for Images {
    fn default() -> Self {
        Self {
            fetch: FetchImages::Auto,
            header_hosts: Vec::new(),
            max_bytes: 20 * 1024 * 1024,
            timeout_ms: 10_000,
            max_redirects: 3,
            allow_private_networks: false,
            allow_addresses: Vec::new(),
            max_per_request: 16,
            max_total_bytes: 50 * 1024 * 1024,
            proxy: None,
        }
    }
}

/// Timeouts, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Connecting to a vendor (default 5000).
    pub connect_ms: u64,
    /// From sending the request to the first response byte (default 120000).
    pub first_byte_ms: u64,
    /// Largest gap between two stream chunks (default 120000).
    pub idle_ms: u64,
    /// The server reading a client's request headers (default 10000).
    pub header_read_ms: u64,
    /// The server reading a client's request body (default 30000).
    pub body_read_ms: u64,
    /// A whole request, all attempts included (default 600000).
    pub total_ms: u64,
    /// An idle client connection (keep-alive, between requests) is closed after this (default
    /// 60000).
    pub client_idle_ms: u64,
}

/// Stored Open Responses (`responses:`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponsesStore {
    /// `sqlite://…` or `postgres://…` to persist and share stored responses; `None` keeps them
    /// in memory only.
    pub store: Option<Secret>,
    /// Responses kept in the memory cache (default 10,000; the least recently used are evicted).
    pub capacity: usize,
    /// Bytes of responses kept in the memory cache (default 256 MiB).
    pub max_bytes: usize,
    /// Days a stored response is kept (default 30); `None` (`ttl_days: 0`) keeps them.
    pub ttl_days: Option<u32>,
}

impl Default for ResponsesStore {
    fn default() -> Self {
        Self {
            store: None,
            capacity: 10_000,
            max_bytes: 256 << 20,
            ttl_days: Some(30),
        }
    }
}

/// Client authentication (`auth:`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Auth {
    /// The master key: every API and admin route. `None` when unset or empty.
    pub master_key: Option<Secret>,
    /// The key database URL: `sqlite://llmux.db` (default), `sqlite::memory:`, `postgres://…`.
    pub database: Secret,
    /// Whether `/metrics` needs the master key (default true).
    pub protect_metrics: bool,
    /// What to do when Redis is unreachable (default: fail open, with a warning).
    pub redis_failure: RedisFailure,
}

/// Policy when the shared-state backend (Redis) is unreachable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisFailure {
    /// Serve without limits and budgets until Redis is back (logged).
    #[default]
    Open,
    /// Refuse requests (503) until Redis is back.
    Closed,
}

/// One model's price, USD per million tokens of each kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Price {
    /// Uncached input tokens.
    pub input_per_million: f64,
    /// Output tokens other than reasoning.
    pub output_per_million: f64,
    /// Input tokens read from the vendor's prompt cache.
    pub cache_read_per_million: f64,
    /// Input tokens written to the vendor's prompt cache (Anthropic's 5-minute writes).
    pub cache_write_per_million: f64,
    /// Output tokens spent on reasoning.
    pub reasoning_per_million: f64,
}

impl Price {
    /// A price with the default rates for cached and reasoning tokens: cache reads and writes
    /// at the input price, reasoning at the output price.
    pub fn flat(input_per_million: f64, output_per_million: f64) -> Self {
        Self {
            input_per_million,
            output_per_million,
            cache_read_per_million: input_per_million,
            cache_write_per_million: input_per_million,
            reasoning_per_million: output_per_million,
        }
    }

    /// The dearest of the five rates: what a token of unknown kind may cost at most.
    pub fn highest_per_million(&self) -> f64 {
        [
            self.input_per_million,
            self.output_per_million,
            self.cache_read_per_million,
            self.cache_write_per_million,
            self.reasoning_per_million,
        ]
        .into_iter()
        .fold(0.0, f64::max)
    }

    /// The USD cost of `usage`: uncached input × input + cache reads × cache_read + cache
    /// writes × cache_write + (output − reasoning) × output + reasoning × reasoning. The
    /// normalized input and output counts include their cached and reasoning parts.
    pub fn cost(&self, usage: &llmux_protocol::neutral::Usage) -> f64 {
        let read = usage.cached_input_tokens.unwrap_or(0);
        let write = usage.cache_creation_input_tokens.unwrap_or(0);
        let reasoning = usage.reasoning_tokens.unwrap_or(0);
        let uncached = usage
            .input_tokens
            .saturating_sub(read)
            .saturating_sub(write);
        let plain_output = usage.output_tokens.saturating_sub(reasoning);
        (uncached as f64 * self.input_per_million
            + read as f64 * self.cache_read_per_million
            + write as f64 * self.cache_write_per_million
            + plain_output as f64 * self.output_per_million
            + reasoning as f64 * self.reasoning_per_million)
            / 1_000_000.0
    }
}

/// Prices by model name.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Pricing(pub Vec<(String, Price)>);

impl Eq for Pricing {}

impl Pricing {
    /// The price of `model`: an exact entry, else the longest entry that prefixes it (so dated
    /// versions such as `gpt-4o-2024-08-06` use `gpt-4o`).
    pub fn price(&self, model: &str) -> Option<Price> {
        self.0
            .iter()
            .filter(|(name, _)| model == name || model.starts_with(name.as_str()))
            .max_by_key(|(name, _)| name.len())
            .map(|(_, price)| *price)
    }

    /// The USD cost of a request's `usage` on `model` (see [`Price::cost`]).
    pub fn cost(&self, model: &str, usage: &llmux_protocol::neutral::Usage) -> Option<f64> {
        self.price(model).map(|p| p.cost(usage))
    }

    /// List prices of common models (USD per million tokens: input, output, cache read, cache
    /// write), as the vendors publish them; reasoning is billed as output by all three. Override
    /// or extend with `pricing:`. Sources (2025–2026):
    /// - OpenAI, platform.openai.com/docs/pricing: "cached input" per model (0.5× for the
    ///   gpt-4o family, 0.25× for gpt-4.1 and o-series, 0.1× for gpt-5); writing the cache costs
    ///   nothing extra, so writes are at the input price.
    /// - Anthropic, docs.anthropic.com/en/docs/build-with-claude/prompt-caching: cache hits
    ///   0.1× the input price, 5-minute cache writes 1.25×.
    /// - Google, ai.google.dev/gemini-api/docs/pricing: "context caching" price (0.25× for
    ///   2.5 Pro and Flash and 2.0 Flash); storage is billed per hour and not counted here.
    pub fn shipped() -> Self {
        let table: [(&str, f64, f64, f64, f64); 17] = [
            ("gpt-4o", 2.50, 10.00, 1.25, 2.50),
            ("gpt-4o-mini", 0.15, 0.60, 0.075, 0.15),
            ("gpt-4.1", 2.00, 8.00, 0.50, 2.00),
            ("gpt-4.1-mini", 0.40, 1.60, 0.10, 0.40),
            ("gpt-4.1-nano", 0.10, 0.40, 0.025, 0.10),
            ("gpt-5", 1.25, 10.00, 0.125, 1.25),
            ("gpt-5-mini", 0.25, 2.00, 0.025, 0.25),
            ("o3", 2.00, 8.00, 0.50, 2.00),
            ("o4-mini", 1.10, 4.40, 0.275, 1.10),
            ("text-embedding-3-small", 0.02, 0.0, 0.02, 0.02),
            ("text-embedding-3-large", 0.13, 0.0, 0.13, 0.13),
            ("claude-sonnet-4", 3.00, 15.00, 0.30, 3.75),
            ("claude-opus-4", 15.00, 75.00, 1.50, 18.75),
            ("claude-haiku-4", 1.00, 5.00, 0.10, 1.25),
            ("gemini-2.5-pro", 1.25, 10.00, 0.31, 1.25),
            ("gemini-2.5-flash", 0.30, 2.50, 0.075, 0.30),
            ("gemini-2.0-flash", 0.10, 0.40, 0.025, 0.10),
        ];
        Self(
            table
                .iter()
                .map(|&(name, input, output, cache_read, cache_write)| {
                    (
                        name.to_owned(),
                        Price {
                            cache_read_per_million: cache_read,
                            cache_write_per_million: cache_write,
                            ..Price::flat(input, output)
                        },
                    )
                })
                .collect(),
        )
    }
}

/// Retries, failover and circuit breaking (`reliability:`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Reliability {
    /// Attempts per request, the first included (default 3).
    pub max_attempts: u32,
    /// Backoff base before a retry (default 25 ms); full jitter, doubling per retry.
    pub backoff_base_ms: u64,
    /// Longest backoff (default 2000 ms).
    pub backoff_max_ms: u64,
    /// Cooldown after a 429 without a usable Retry-After (default 1000 ms).
    pub default_cooldown_ms: u64,
    /// Longest cooldown a vendor can dictate with `Retry-After` and similar headers (default
    /// 600000 ms); longer values are cut to it.
    pub max_cooldown_ms: u64,
    /// Failures in a row that open a breaker (default 5).
    pub breaker_consecutive_failures: u32,
    /// Failure rate over the window that opens a breaker (default 0.5).
    pub breaker_failure_rate: f64,
    /// Outcomes in the failure-rate window (default 20, at most 64).
    pub breaker_window: u32,
    /// Outcomes needed before the rate counts (default 10).
    pub breaker_min_requests: u32,
    /// First open period (default 30000 ms); doubles after each failed probe.
    pub breaker_open_ms: u64,
    /// Longest open period (default 300000 ms).
    pub breaker_max_open_ms: u64,
    /// With `redis:`, how often each replica reads the breaker openings and cooldowns that the
    /// others announced (default 250 ms).
    pub share_interval_ms: u64,
}

impl Eq for Reliability {}

impl Default for Reliability {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            backoff_base_ms: 25,
            backoff_max_ms: 2_000,
            default_cooldown_ms: 1_000,
            max_cooldown_ms: 600_000,
            breaker_consecutive_failures: 5,
            breaker_failure_rate: 0.5,
            breaker_window: 20,
            breaker_min_requests: 10,
            breaker_open_ms: 30_000,
            breaker_max_open_ms: 300_000,
            share_interval_ms: 250,
        }
    }
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect_ms: 5_000,
            first_byte_ms: 120_000,
            idle_ms: 120_000,
            header_read_ms: 10_000,
            body_read_ms: 30_000,
            total_ms: 600_000,
            client_idle_ms: 60_000,
        }
    }
}

impl Config {
    /// Every combination (credential × model of the same vendor) as an aligned plain-text table,
    /// credentials in the outer loop and models in the inner one, ending with `N combinations`.
    /// Shows credential names only, never secrets.
    pub fn combination_table(&self) -> String {
        const HEADER: [&str; 5] = ["VENDOR", "CREDENTIAL", "MODEL", "NAME", "KIND"];
        let mut rows: Vec<[&str; 5]> = Vec::new();
        for credential in &self.credentials {
            for model in self.models.iter().filter(|m| m.vendor == credential.vendor) {
                rows.push([
                    &credential.vendor,
                    &credential.name,
                    &model.model,
                    model.name.as_deref().unwrap_or("-"),
                    model.kind.as_str(),
                ]);
            }
        }
        let mut widths = HEADER.map(str::len);
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&HEADER).chain(&rows) {
            let mut line = String::new();
            for (column, (cell, width)) in row.iter().zip(widths).enumerate() {
                if column > 0 {
                    line.push_str("  ");
                }
                // Writing to a String cannot fail.
                let _ = write!(line, "{cell:<width$}");
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        let count = rows.len();
        let noun = if count == 1 {
            "combination"
        } else {
            "combinations"
        };
        let _ = writeln!(out, "{count} {noun}");
        out
    }
}

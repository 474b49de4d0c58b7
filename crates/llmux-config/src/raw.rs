//! Serde structs that mirror the files exactly. No logic: defaults and checks live in
//! `validate.rs`. Unknown fields are errors so a typo never silently changes behaviour.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::{Api, ModelKind, RoutingPolicy, UnknownModelPolicy};

/// A whole `llmux.yaml|json|toml` file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub listen: Option<Scalar>,
    #[serde(default)]
    pub credentials: Vec<RawCredential>,
    #[serde(default)]
    pub models: Vec<RawModel>,
    pub routing: Option<RawRouting>,
    pub limits: Option<RawLimits>,
    pub timeouts: Option<RawTimeouts>,
    pub images: Option<RawImages>,
    pub reliability: Option<RawReliability>,
    pub auth: Option<RawAuth>,
    pub redis: Option<String>,
    pub responses: Option<RawResponses>,
    pub tls: Option<RawTls>,
    pub log: Option<RawLog>,
    pub compat: Option<RawCompat>,
    pub cache: Option<RawCache>,
    pub telemetry: Option<RawTelemetry>,
    #[serde(default)]
    pub pricing: std::collections::BTreeMap<String, RawPrice>,
}

/// One `credentials[]` entry; also one entry of the seed's `credentials.json`.
///
/// `value` may hold a decrypted secret, so `Debug` redacts it and drop zeroizes it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCredential {
    pub platform: String,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub value: Scalar,
    pub name: Option<String>,
    pub base_url: Option<String>,
    pub api: Option<Api>,
    pub fetch_images: Option<bool>,
    pub timeouts: Option<RawTimeouts>,
    pub limits: Option<RawCredentialLimits>,
    pub forward_headers: Option<Vec<String>>,
    pub responses: Option<crate::ResponsesMode>,
}

/// `credentials[].limits:` — the vendor's quota for this key, shared by every replica.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCredentialLimits {
    pub rpm: Option<u32>,
    pub tpm: Option<u32>,
}

impl std::fmt::Debug for RawCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawCredential")
            .field("platform", &self.platform)
            .field("kind", &self.kind)
            .field("value", &"***")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("api", &self.api)
            .field("fetch_images", &self.fetch_images)
            .field("timeouts", &self.timeouts)
            .field("limits", &self.limits)
            .field("forward_headers", &self.forward_headers)
            .field("responses", &self.responses)
            .finish()
    }
}

impl Drop for RawCredential {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.value.0);
    }
}

/// One `models[]` entry; also one entry of the seed's `models.json`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModel {
    pub vendor: String,
    pub model: String,
    pub name: Option<String>,
    pub kind: Option<ModelKind>,
    pub config: Option<RawCapabilities>,
    pub weight: Option<f64>,
    /// Signed so that a negative tier is a validation error naming its path, not a parse error.
    pub tier: Option<i64>,
}

/// The seed's per-model `config` block.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCapabilities {
    pub support_image: Option<bool>,
    pub support_video: Option<bool>,
    pub support_tools: Option<bool>,
    pub support_streaming: Option<bool>,
}

/// `routing:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRouting {
    pub unknown_model: Option<UnknownModelPolicy>,
    pub policy: Option<RoutingPolicy>,
    #[serde(default)]
    pub groups: BTreeMap<String, RawGroup>,
    #[serde(default)]
    pub fallbacks: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub context_fallbacks: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub content_fallbacks: BTreeMap<String, Vec<String>>,
}

/// One `routing.groups` entry.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGroup {
    pub policy: Option<RoutingPolicy>,
    pub cache: Option<crate::CacheMode>,
}

/// `cache:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCache {
    pub mode: Option<crate::CacheMode>,
    pub scope: Option<crate::CacheScope>,
    pub ttl_seconds: Option<u64>,
    pub max_bytes: Option<u64>,
    pub store: Option<crate::CacheStore>,
}

/// `limits:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    pub max_body_bytes: Option<usize>,
    pub default_max_tokens: Option<u32>,
    pub max_connections: Option<usize>,
    pub max_in_flight: Option<usize>,
    pub max_upstream_body_bytes: Option<usize>,
    pub max_upstream_event_bytes: Option<usize>,
    pub upstream_connections_per_host: Option<usize>,
}

/// `compat:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCompat {
    pub unsupported_tools: Option<crate::UnsupportedTools>,
}

/// `log:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLog {
    pub database: Option<String>,
    pub bodies: Option<crate::LogBodies>,
    pub retention_days: Option<u32>,
    pub max_body_bytes: Option<usize>,
}

/// `telemetry:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTelemetry {
    pub otlp: Option<RawOtlp>,
    pub capture_content: Option<bool>,
    pub service_name: Option<String>,
    pub max_content_bytes: Option<usize>,
    pub sample_ratio: Option<f64>,
}

/// `telemetry.otlp:`. Header values are secrets (collector API keys).
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOtlp {
    pub endpoint: Option<String>,
    pub protocol: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

impl std::fmt::Debug for RawOtlp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawOtlp")
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `tls:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTls {
    pub ca_file: Option<String>,
    pub roots: Option<crate::TlsRoots>,
}

/// `images.fetch`: `auto | all | off`, or the older `true` (auto) / `false` (off).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawFetch {
    Flag(bool),
    Mode(String),
}

/// `images:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawImages {
    pub fetch: Option<RawFetch>,
    #[serde(default)]
    pub header_hosts: Vec<String>,
    pub max_bytes: Option<usize>,
    pub timeout_ms: Option<u64>,
    pub max_redirects: Option<u32>,
    pub allow_private_networks: Option<bool>,
    #[serde(default)]
    pub allow_addresses: Vec<String>,
    pub max_per_request: Option<usize>,
    pub max_total_bytes: Option<usize>,
    pub proxy: Option<String>,
}

/// `timeouts:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTimeouts {
    pub connect_ms: Option<u64>,
    pub first_byte_ms: Option<u64>,
    pub idle_ms: Option<u64>,
    pub header_read_ms: Option<u64>,
    pub body_read_ms: Option<u64>,
    pub total_ms: Option<u64>,
    pub client_idle_ms: Option<u64>,
}

/// `responses:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResponses {
    pub store: Option<String>,
    pub capacity: Option<usize>,
    pub max_bytes: Option<usize>,
    pub ttl_days: Option<u32>,
}

/// `auth:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    pub master_key: Option<String>,
    pub database: Option<String>,
    pub protect_metrics: Option<bool>,
    pub redis_failure: Option<crate::RedisFailure>,
}

/// One `pricing:` entry, USD per million tokens.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPrice {
    pub input: f64,
    pub output: f64,
    /// Cache reads; default: the vendor's published multiplier of `input`, else `input`.
    pub cache_read: Option<f64>,
    /// Cache writes; default: the vendor's published multiplier of `input`, else `input`.
    pub cache_write: Option<f64>,
    /// Reasoning output; default `output`.
    pub reasoning: Option<f64>,
}

/// `reliability:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawReliability {
    pub max_attempts: Option<u32>,
    pub backoff_base_ms: Option<u64>,
    pub backoff_max_ms: Option<u64>,
    pub default_cooldown_ms: Option<u64>,
    pub max_cooldown_ms: Option<u64>,
    pub share_interval_ms: Option<u64>,
    pub breaker: Option<RawBreaker>,
}

/// `reliability.breaker:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBreaker {
    pub consecutive_failures: Option<u32>,
    pub failure_rate: Option<f64>,
    pub window: Option<u32>,
    pub min_requests: Option<u32>,
    pub open_ms: Option<u64>,
    pub max_open_ms: Option<u64>,
}

/// The seed's `models.json` in its object shape.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSeedModels {
    #[serde(default)]
    pub vendors: BTreeMap<String, String>,
    #[serde(default)]
    pub models: Vec<RawModel>,
}

/// A string field that also accepts a bare number or boolean, so `value: 12345` or
/// `listen: 8082` in YAML (or an unquoted number in TOML) reads as the text the user wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl serde::de::Visitor<'_> for ScalarVisitor {
    type Value = Scalar;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar(v.to_string()))
    }

    // `value: ${KEY:-}` leaves an empty YAML value, which is null; validation then reports an
    // empty value rather than a type error.
    fn visit_unit<E: serde::de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::default())
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::default())
    }
}

//! Raw structs → [`Config`], applying defaults and collecting every problem at once, each with
//! its path. Messages name vendors, models and credential names, never a credential value.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};

use url::Url;

use crate::raw::{RawCapabilities, RawConfig, RawCredential, RawModel, RawRouting};
use crate::secret::Secret;
use crate::{
    Api, Capabilities, Config, ConfigError, Credential, Group, Limits, Model, ModelKind,
    ResponsesMode, Routing, Timeouts, Weight,
};

/// Which file layout the raw config came from; it changes the defaults.
pub(crate) enum Flavour {
    /// `llmux.yaml` and friends: the API defaults to the vendor's native one.
    Native,
    /// The original router's `credentials.json` + `models.json`: every vendor speaks the OpenAI
    /// API unless a credential says otherwise, and `vendors` supplies base URLs.
    Seed {
        /// The `vendors` map of `models.json` (empty for the plain-list shape).
        vendors: BTreeMap<String, String>,
    },
}

/// Validates `raw` into a [`Config`] described as `source`, or returns every problem.
pub(crate) fn validate(
    raw: RawConfig,
    flavour: &Flavour,
    source: String,
) -> Result<Config, Vec<ConfigError>> {
    let mut errors = Vec::new();

    let listen = raw.listen.and_then(|listen| {
        parse_listen(&listen.0)
            .map_err(|message| errors.push(ConfigError::new("listen", message)))
            .ok()
    });

    let vendor_urls = vendor_urls(flavour, &mut errors);
    let credentials = credentials(&raw.credentials, flavour, &vendor_urls, &mut errors);
    let credential_vendors: BTreeSet<&str> =
        raw.credentials.iter().map(|c| c.platform.trim()).collect();
    let models = models(&raw.models, &credential_vendors, &mut errors);

    let routing = routing(raw.routing.unwrap_or_default(), &raw.models, &mut errors);
    let limits = limits(raw.limits.unwrap_or_default(), &mut errors);
    let timeouts = timeouts(raw.timeouts.unwrap_or_default(), &mut errors);
    let images = images(raw.images.unwrap_or_default(), flavour, &mut errors);
    let reliability = reliability(raw.reliability.unwrap_or_default(), &mut errors);
    let cache = cache(
        raw.cache.unwrap_or_default(),
        raw.redis.is_some(),
        &mut errors,
    );
    let log = raw.log.map(|log| crate::RequestLogConfig {
        database: crate::Secret::new(
            log.database
                .map(|d| d.trim().to_owned())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "sqlite://llmux-log.db".to_owned()),
        ),
        bodies: log.bodies.unwrap_or_default(),
        retention_days: log.retention_days.unwrap_or(7).max(1),
        max_body_bytes: log.max_body_bytes.unwrap_or(16 * 1024),
    });
    let telemetry = telemetry(raw.telemetry.unwrap_or_default(), &mut errors);
    let tls = raw.tls.map_or_else(crate::Tls::default, |tls| crate::Tls {
        ca_file: tls
            .ca_file
            .map(|f| f.trim().to_owned())
            .filter(|f| !f.is_empty())
            .map(std::path::PathBuf::from),
        roots: tls.roots.unwrap_or_default(),
    });
    let auth = raw.auth.map(|auth| crate::Auth {
        master_key: auth
            .master_key
            .map(|k| k.trim().to_owned())
            .filter(|k| !k.is_empty())
            .map(crate::Secret::new),
        database: crate::Secret::new(
            auth.database
                .map(|d| d.trim().to_owned())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| "sqlite://llmux.db".to_owned()),
        ),
        protect_metrics: auth.protect_metrics.unwrap_or(true),
        redis_failure: auth.redis_failure.unwrap_or_default(),
    });
    let redis = raw
        .redis
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .map(crate::Secret::new);
    let responses = raw
        .responses
        .map_or_else(crate::ResponsesStore::default, |r| crate::ResponsesStore {
            store: r
                .store
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .map(crate::Secret::new),
            capacity: r.capacity.unwrap_or(10_000).max(1),
            max_bytes: r.max_bytes.unwrap_or(256 << 20),
            ttl_days: r
                .ttl_days
                .map_or(Some(30), |days| (days > 0).then_some(days)),
        });
    let mut pricing = crate::Pricing::shipped();
    for (model, price) in &raw.pricing {
        let rates = [
            ("input", Some(price.input)),
            ("output", Some(price.output)),
            ("cache_read", price.cache_read),
            ("cache_write", price.cache_write),
            ("reasoning", price.reasoning),
        ];
        for (field, rate) in rates {
            if rate.is_some_and(|r| !(r >= 0.0 && r.is_finite())) {
                errors.push(ConfigError::new(
                    format!("pricing.{model}.{field}"),
                    "prices must be finite and not negative",
                ));
            }
        }
        let price = price_of(model, price);
        pricing.0.retain(|(name, _)| name != model);
        pricing.0.push((model.clone(), price));
    }
    let credentials = credentials
        .into_iter()
        .zip(&raw.credentials)
        .enumerate()
        .map(|(i, (mut credential, raw))| {
            credential.timeouts =
                credential_timeouts(&timeouts, raw.timeouts.as_ref(), i, &mut errors);
            credential
        })
        .collect();

    if errors.is_empty() {
        Ok(Config {
            listen,
            credentials,
            models,
            routing,
            limits,
            timeouts,
            images,
            reliability,
            auth,
            redis,
            responses,
            tls,
            log,
            telemetry,
            compat: crate::Compat {
                unsupported_tools: raw
                    .compat
                    .and_then(|c| c.unsupported_tools)
                    .unwrap_or_default(),
            },
            cache,
            pricing,
            source,
        })
    } else {
        Err(errors)
    }
}

/// `cache:`, with its defaults; a Redis store needs `redis:`.
fn cache(
    raw: crate::raw::RawCache,
    has_redis: bool,
    errors: &mut Vec<ConfigError>,
) -> crate::Cache {
    let defaults = crate::Cache::default();
    let cache = crate::Cache {
        mode: raw.mode.unwrap_or(defaults.mode),
        scope: raw.scope.unwrap_or(defaults.scope),
        ttl_seconds: raw.ttl_seconds.unwrap_or(defaults.ttl_seconds),
        max_bytes: raw.max_bytes.unwrap_or(defaults.max_bytes),
        store: raw.store.unwrap_or(defaults.store),
    };
    if cache.ttl_seconds == 0 {
        errors.push(ConfigError::new(
            "cache.ttl_seconds",
            "must be at least 1 (set cache.mode: off to disable the cache)",
        ));
    }
    if cache.store == crate::CacheStore::Redis && !has_redis {
        errors.push(ConfigError::new(
            "cache.store",
            "'redis' needs the top-level redis: URL",
        ));
    }
    cache
}

/// `listen:` as `IP:port`, or a bare port meaning every IPv4 interface.
fn parse_listen(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)));
    }
    text.parse::<SocketAddr>().map_err(|_| {
        format!("'{text}' is not an IP address and port (for example 0.0.0.0:8082 or [::1]:8082)")
    })
}

/// Parses the seed's `vendors` map, reporting bad URLs under `vendors.<name>`.
fn vendor_urls(flavour: &Flavour, errors: &mut Vec<ConfigError>) -> BTreeMap<String, Url> {
    let Flavour::Seed { vendors } = flavour else {
        return BTreeMap::new();
    };
    vendors
        .iter()
        .filter_map(|(vendor, url)| match parse_base_url(url) {
            Ok(url) => Some((vendor.clone(), url)),
            Err(message) => {
                errors.push(ConfigError::new(format!("vendors.{vendor}"), message));
                None
            }
        })
        .collect()
}

fn credentials(
    raw: &[RawCredential],
    flavour: &Flavour,
    vendor_urls: &BTreeMap<String, Url>,
    errors: &mut Vec<ConfigError>,
) -> Vec<Credential> {
    if raw.is_empty() {
        errors.push(ConfigError::new("credentials", "no credential configured"));
        return Vec::new();
    }
    let mut per_vendor: HashMap<&str, usize> = HashMap::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::with_capacity(raw.len());
    for (index, credential) in raw.iter().enumerate() {
        let path = format!("credentials[{index}]");
        let before = errors.len();
        let vendor = credential.platform.trim();
        if vendor.is_empty() {
            errors.push(ConfigError::new(
                format!("{path}.platform"),
                "empty platform",
            ));
        }
        let number = per_vendor.entry(vendor).or_insert(0);
        *number += 1;
        let name = match &credential.name {
            Some(name) => name.trim().to_owned(),
            None => format!("{vendor}-{number}"),
        };
        if name.is_empty() {
            errors.push(ConfigError::new(format!("{path}.name"), "empty name"));
        } else if let Some(first) = names.get(&name) {
            errors.push(ConfigError::new(
                format!("{path}.name"),
                format!("duplicate credential name '{name}' (also credentials[{first}])"),
            ));
        } else {
            names.insert(name.clone(), index);
        }
        let value = credential.value.0.trim();
        if value.is_empty() {
            errors.push(ConfigError::new(
                format!("{path}.value"),
                "empty credential value",
            ));
        }
        let api = credential.api.unwrap_or(match flavour {
            Flavour::Native => native_api(vendor),
            Flavour::Seed { .. } => Api::OpenAi,
        });
        let base_url = match &credential.base_url {
            Some(text) => parse_base_url(text)
                .map_err(|message| {
                    errors.push(ConfigError::new(format!("{path}.base_url"), message))
                })
                .ok(),
            None => match vendor_urls.get(vendor) {
                Some(url) => Some(url.clone()),
                // A bad `vendors` entry was already reported; don't report it again here.
                None if matches!(flavour, Flavour::Seed { vendors } if vendors.contains_key(vendor)) => {
                    None
                }
                // An empty platform was reported above; a missing URL would only repeat it.
                None if vendor.is_empty() => None,
                None => default_base_url(vendor, api, &path, errors),
            },
        };
        let forward_headers = forward_headers(credential.forward_headers.as_deref(), &path, errors);
        let responses = match credential.responses {
            Some(ResponsesMode::Native) if api != Api::OpenAi => {
                errors.push(ConfigError::new(
                    format!("{path}.responses"),
                    format!(
                        "'native' needs an OpenAI API credential (api: openai), not api: {api}; \
                         use 'translate'"
                    ),
                ));
                ResponsesMode::Translate
            }
            Some(mode) => mode,
            None => ResponsesMode::default_for(vendor, api),
        };
        if errors.len() == before
            && let Some(base_url) = base_url
        {
            out.push(Credential {
                name,
                vendor: vendor.to_owned(),
                kind: credential
                    .kind
                    .as_deref()
                    .map(str::trim)
                    .filter(|k| !k.is_empty())
                    .unwrap_or("api-key")
                    .to_owned(),
                api,
                base_url,
                secret: Secret::new(value.to_owned()),
                fetch_images: api == Api::Gemini || credential.fetch_images.unwrap_or(false),
                timeouts: Timeouts::default(),
                limits: credential_limits(credential.limits.as_ref(), &path, errors),
                forward_headers,
                responses,
            });
        }
    }
    out
}

/// `credentials[].forward_headers`: header names, lowercased and deduplicated; a name that is not
/// a header name or that must never be forwarded is an error naming why.
fn forward_headers(
    raw: Option<&[String]>,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, name) in raw.unwrap_or_default().iter().enumerate() {
        let name = name.trim().to_ascii_lowercase();
        let problem = if !crate::forward::is_header_name(&name) {
            Some("is not an HTTP header name")
        } else {
            crate::refused_forward_header(&name)
        };
        match problem {
            Some(why) => errors.push(ConfigError::new(
                format!("{path}.forward_headers[{i}]"),
                format!("'{name}' {why}"),
            )),
            None if !out.contains(&name) => out.push(name),
            None => {}
        }
    }
    out
}

/// The API a vendor speaks natively; unknown vendors are assumed OpenAI-compatible.
pub(crate) fn native_api(vendor: &str) -> Api {
    match vendor {
        "anthropic" => Api::Anthropic,
        "gemini" => Api::Gemini,
        _ => Api::OpenAi,
    }
}

/// The well-known API root for a vendor and API, if there is one. The URLs themselves are
/// facts about each vendor's public service and live in its protocol module.
pub(crate) fn default_base_url_str(vendor: &str, api: Api) -> Option<&'static str> {
    use llmux_protocol::{anthropic, gemini, openai_chat};
    match (vendor, api) {
        ("openai", _) => Some(openai_chat::PUBLIC_BASE_URL),
        // Anthropic serves its OpenAI-compatible API under the same root.
        ("anthropic", Api::Anthropic | Api::OpenAi) => Some(anthropic::PUBLIC_BASE_URL),
        ("gemini", Api::Gemini) => Some(gemini::PUBLIC_BASE_URL),
        ("gemini", Api::OpenAi) => Some(gemini::OPENAI_COMPATIBLE_BASE_URL),
        _ => None,
    }
}

fn default_base_url(
    vendor: &str,
    api: Api,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Option<Url> {
    let Some(text) = default_base_url_str(vendor, api) else {
        let message = if default_base_url_str(vendor, native_api(vendor)).is_some() {
            format!("vendor '{vendor}' has no default base_url for api '{api}'; set base_url")
        } else {
            format!("vendor '{vendor}' has no default base_url; set base_url")
        };
        errors.push(ConfigError::new(path, message));
        return None;
    };
    parse_base_url(text)
        .map_err(|message| errors.push(ConfigError::new(format!("{path}.base_url"), message)))
        .ok()
}

/// Parses an API root: http(s), with a host, no query or fragment, no trailing `/`.
///
/// Messages describe the problem without repeating the URL, which may carry userinfo.
pub(crate) fn parse_base_url(text: &str) -> Result<Url, String> {
    let mut url = Url::parse(text.trim()).map_err(|e| format!("invalid URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme '{}' is not http or https", url.scheme()));
    }
    if url.host().is_none() {
        return Err("URL has no host".to_owned());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(
            "must not have a query or fragment (llmux appends the operation path to it)".to_owned(),
        );
    }
    let trimmed = url.path().trim_end_matches('/').to_owned();
    url.set_path(&trimmed);
    Ok(url)
}

fn models(
    raw: &[RawModel],
    credential_vendors: &BTreeSet<&str>,
    errors: &mut Vec<ConfigError>,
) -> Vec<Model> {
    if raw.is_empty() {
        errors.push(ConfigError::new("models", "no model configured"));
        return Vec::new();
    }
    let mut pairs: HashMap<(&str, &str), usize> = HashMap::new();
    // Every name a request can use (model id or alias) → the kind and index that claimed it first.
    let mut public: HashMap<&str, (ModelKind, usize)> = HashMap::new();
    let mut conflicts: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::with_capacity(raw.len());
    for (index, model) in raw.iter().enumerate() {
        let path = format!("models[{index}]");
        let before = errors.len();
        let vendor = model.vendor.trim();
        let id = model.model.trim();
        let alias = model.name.as_deref().map(str::trim);
        let kind = model.kind.unwrap_or_default();
        if vendor.is_empty() {
            errors.push(ConfigError::new(format!("{path}.vendor"), "empty vendor"));
        } else if !credential_vendors.is_empty() && !credential_vendors.contains(vendor) {
            let known: Vec<&str> = credential_vendors.iter().copied().collect();
            errors.push(ConfigError::new(
                path.clone(),
                format!(
                    "no credential for vendor '{vendor}' (vendors with credentials: {})",
                    known.join(", ")
                ),
            ));
        }
        if id.is_empty() {
            errors.push(ConfigError::new(format!("{path}.model"), "empty model"));
        } else if let Some(first) = pairs.get(&(vendor, id)) {
            errors.push(ConfigError::new(
                path.clone(),
                format!("duplicate model '{vendor}/{id}' (also models[{first}])"),
            ));
        } else {
            pairs.insert((vendor, id), index);
        }
        if alias == Some("") {
            errors.push(ConfigError::new(format!("{path}.name"), "empty name"));
        }
        for key in [Some(id), alias].into_iter().flatten() {
            if key.is_empty() {
                continue;
            }
            match public.get(key) {
                None => {
                    public.insert(key, (kind, index));
                }
                Some(&(first_kind, first)) if first_kind != kind && conflicts.insert(key) => {
                    errors.push(ConfigError::new(
                        path.clone(),
                        format!(
                            "name '{key}' is used by both chat and embedding models (models[{first}] is {first_kind}, this one is {kind})"
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        let weight = match model.weight {
            None => Weight::ONE,
            Some(value) => Weight::new(value).unwrap_or_else(|| {
                errors.push(ConfigError::new(
                    format!("{path}.weight"),
                    format!("must be a number greater than 0, not {value}"),
                ));
                Weight::ONE
            }),
        };
        let tier = match model.tier {
            None => 0,
            Some(value) => u32::try_from(value).unwrap_or_else(|_| {
                errors.push(ConfigError::new(
                    format!("{path}.tier"),
                    format!("must be an integer from 0 to {}, not {value}", u32::MAX),
                ));
                0
            }),
        };
        if errors.len() == before {
            out.push(Model {
                vendor: vendor.to_owned(),
                model: id.to_owned(),
                name: alias.map(str::to_owned),
                kind,
                capabilities: capabilities(model.config.as_ref()),
                weight,
                tier,
            });
        }
    }
    out
}

/// `routing:` — the default policy, per-group overrides and the three fallback chains. Names are
/// checked against the raw models (trimmed, as `models` stores them), so a model with another
/// problem does not also make every chain naming it an error.
fn routing(raw: RawRouting, models: &[RawModel], errors: &mut Vec<ConfigError>) -> Routing {
    // Every public name (model id or alias) → the kind of the first model that claims it;
    // `models` already reports a name claimed by both kinds.
    let mut names: HashMap<&str, ModelKind> = HashMap::new();
    for model in models {
        let kind = model.kind.unwrap_or_default();
        for name in [
            Some(model.model.trim()),
            model.name.as_deref().map(str::trim),
        ]
        .into_iter()
        .flatten()
        .filter(|n| !n.is_empty())
        {
            names.entry(name).or_insert(kind);
        }
    }
    let unknown = |name: &str| {
        format!("unknown model name '{name}' (no models[] entry has it as name or model)")
    };
    let policy = raw.policy.unwrap_or_default();
    let mut groups = BTreeMap::new();
    for (name, group) in raw.groups {
        if !names.contains_key(name.as_str()) {
            errors.push(ConfigError::new(
                format!("routing.groups.{name}"),
                unknown(&name),
            ));
        }
        groups.insert(
            name,
            Group {
                policy: group.policy.unwrap_or(policy),
                cache: group.cache,
            },
        );
    }
    let mut chains = |field: &str, raw: BTreeMap<String, Vec<String>>| {
        let mut out = BTreeMap::new();
        for (name, chain) in raw {
            let path = format!("routing.{field}.{name}");
            let kind = names.get(name.as_str()).copied();
            if kind.is_none() {
                errors.push(ConfigError::new(path.clone(), unknown(&name)));
            }
            let mut seen: BTreeSet<&str> = BTreeSet::new();
            for (i, next) in chain.iter().enumerate() {
                let at = format!("{path}[{i}]");
                if *next == name {
                    errors.push(ConfigError::new(
                        at,
                        format!("'{name}' falls back to itself"),
                    ));
                } else if !seen.insert(next) {
                    errors.push(ConfigError::new(
                        at,
                        format!("'{next}' appears twice in the chain"),
                    ));
                } else {
                    match (kind, names.get(next.as_str())) {
                        (_, None) => errors.push(ConfigError::new(at, unknown(next))),
                        (Some(kind), Some(&next_kind)) if kind != next_kind => {
                            errors.push(ConfigError::new(
                                at,
                                format!(
                                    "'{next}' is {} model but '{name}' is {} model",
                                    a_kind(next_kind),
                                    a_kind(kind)
                                ),
                            ));
                        }
                        _ => {}
                    }
                }
            }
            out.insert(name, chain);
        }
        out
    };
    let fallbacks = chains("fallbacks", raw.fallbacks);
    let context_fallbacks = chains("context_fallbacks", raw.context_fallbacks);
    let content_fallbacks = chains("content_fallbacks", raw.content_fallbacks);
    Routing {
        unknown_model: raw.unknown_model.unwrap_or_default(),
        policy,
        groups,
        fallbacks,
        context_fallbacks,
        content_fallbacks,
    }
}

/// "a chat" or "an embedding", for messages.
fn a_kind(kind: ModelKind) -> &'static str {
    match kind {
        ModelKind::Chat => "a chat",
        ModelKind::Embedding => "an embedding",
    }
}

/// The seed's rule: no `config` means everything is supported; with `config`, a missing flag
/// means unsupported.
fn capabilities(config: Option<&RawCapabilities>) -> Capabilities {
    match config {
        None => Capabilities::default(),
        Some(config) => Capabilities {
            image: config.support_image.unwrap_or(false),
            video: config.support_video.unwrap_or(false),
            tools: config.support_tools.unwrap_or(false),
            streaming: config.support_streaming.unwrap_or(false),
        },
    }
}

fn limits(raw: crate::raw::RawLimits, errors: &mut Vec<ConfigError>) -> Limits {
    let defaults = Limits::default();
    let max_body_bytes = raw.max_body_bytes.unwrap_or(defaults.max_body_bytes);
    if max_body_bytes == 0 {
        errors.push(ConfigError::new(
            "limits.max_body_bytes",
            "must be greater than 0",
        ));
    }
    let default_max_tokens = raw
        .default_max_tokens
        .unwrap_or(defaults.default_max_tokens);
    if default_max_tokens == 0 {
        errors.push(ConfigError::new(
            "limits.default_max_tokens",
            "must be greater than 0",
        ));
    }
    let mut positive = |name: &str, value: Option<usize>, default: usize| {
        let value = value.unwrap_or(default);
        if value == 0 {
            errors.push(ConfigError::new(
                format!("limits.{name}"),
                "must be greater than 0",
            ));
        }
        value
    };
    Limits {
        max_body_bytes,
        default_max_tokens,
        max_connections: positive(
            "max_connections",
            raw.max_connections,
            defaults.max_connections,
        ),
        max_in_flight: positive("max_in_flight", raw.max_in_flight, defaults.max_in_flight),
        max_upstream_body_bytes: positive(
            "max_upstream_body_bytes",
            raw.max_upstream_body_bytes,
            defaults.max_upstream_body_bytes,
        ),
        max_upstream_event_bytes: positive(
            "max_upstream_event_bytes",
            raw.max_upstream_event_bytes,
            defaults.max_upstream_event_bytes,
        ),
        upstream_connections_per_host: positive(
            "upstream_connections_per_host",
            raw.upstream_connections_per_host,
            defaults.upstream_connections_per_host,
        ),
    }
}

fn images(
    raw: crate::raw::RawImages,
    flavour: &Flavour,
    errors: &mut Vec<ConfigError>,
) -> crate::Images {
    use crate::FetchImages;
    let defaults = crate::Images::default();
    // The original router downloaded every image URL for every vendor.
    let default_fetch = match flavour {
        Flavour::Seed { .. } => FetchImages::All,
        _ => defaults.fetch,
    };
    let fetch = match raw.fetch {
        None => default_fetch,
        Some(crate::raw::RawFetch::Flag(true)) => FetchImages::Auto,
        Some(crate::raw::RawFetch::Flag(false)) => FetchImages::Off,
        Some(crate::raw::RawFetch::Mode(mode)) => match mode.trim() {
            "auto" => FetchImages::Auto,
            "all" => FetchImages::All,
            "off" => FetchImages::Off,
            other => {
                errors.push(ConfigError::new(
                    "images.fetch",
                    format!("'{other}' is not one of auto, all, off"),
                ));
                default_fetch
            }
        },
    };
    let header_hosts = raw
        .header_hosts
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    let mut allow_addresses = Vec::new();
    for (i, address) in raw.allow_addresses.iter().enumerate() {
        match address.trim().parse() {
            Ok(ip) => allow_addresses.push(ip),
            Err(_) => errors.push(ConfigError::new(
                format!("images.allow_addresses[{i}]"),
                format!("'{address}' is not an IP address"),
            )),
        }
    }
    let images = crate::Images {
        fetch,
        header_hosts,
        max_bytes: raw.max_bytes.unwrap_or(defaults.max_bytes),
        timeout_ms: raw.timeout_ms.unwrap_or(defaults.timeout_ms),
        max_redirects: raw.max_redirects.unwrap_or(defaults.max_redirects),
        allow_private_networks: raw
            .allow_private_networks
            .unwrap_or(defaults.allow_private_networks),
        allow_addresses,
        max_per_request: raw.max_per_request.unwrap_or(defaults.max_per_request),
        max_total_bytes: raw.max_total_bytes.unwrap_or(defaults.max_total_bytes),
        proxy: raw
            .proxy
            .map(|p| p.trim().to_owned())
            .filter(|p| !p.is_empty()),
    };
    if let Some(proxy) = &images.proxy
        && !matches!(url::Url::parse(proxy), Ok(u) if matches!(u.scheme(), "http" | "https"))
    {
        errors.push(ConfigError::new(
            "images.proxy",
            "must be an http:// or https:// URL",
        ));
    }
    if images.max_total_bytes < images.max_bytes {
        errors.push(ConfigError::new(
            "images.max_total_bytes",
            "must be at least images.max_bytes",
        ));
    }
    if images.max_bytes == 0 {
        errors.push(ConfigError::new(
            "images.max_bytes",
            "must be greater than 0",
        ));
    }
    if images.timeout_ms == 0 {
        errors.push(ConfigError::new(
            "images.timeout_ms",
            "must be greater than 0",
        ));
    }
    images
}

fn timeouts(raw: crate::raw::RawTimeouts, errors: &mut Vec<ConfigError>) -> Timeouts {
    let defaults = Timeouts::default();
    let mut field = |name: &str, value: Option<u64>, default: u64| {
        let value = value.unwrap_or(default);
        if value == 0 {
            errors.push(ConfigError::new(
                format!("timeouts.{name}"),
                "must be greater than 0",
            ));
        }
        value
    };
    Timeouts {
        connect_ms: field("connect_ms", raw.connect_ms, defaults.connect_ms),
        first_byte_ms: field("first_byte_ms", raw.first_byte_ms, defaults.first_byte_ms),
        idle_ms: field("idle_ms", raw.idle_ms, defaults.idle_ms),
        header_read_ms: field(
            "header_read_ms",
            raw.header_read_ms,
            defaults.header_read_ms,
        ),
        body_read_ms: field("body_read_ms", raw.body_read_ms, defaults.body_read_ms),
        total_ms: field("total_ms", raw.total_ms, defaults.total_ms),
        client_idle_ms: field(
            "client_idle_ms",
            raw.client_idle_ms,
            defaults.client_idle_ms,
        ),
    }
}

fn credential_limits(
    raw: Option<&crate::raw::RawCredentialLimits>,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> crate::CredentialLimits {
    let Some(raw) = raw else {
        return crate::CredentialLimits::default();
    };
    for (name, value) in [("rpm", raw.rpm), ("tpm", raw.tpm)] {
        if value == Some(0) {
            errors.push(ConfigError::new(
                format!("{path}.limits.{name}"),
                "must be at least 1 (leave it out for no limit)",
            ));
        }
    }
    crate::CredentialLimits {
        rpm: raw.rpm,
        tpm: raw.tpm,
    }
}

/// A credential's timeouts: the global ones with its own overrides.
fn credential_timeouts(
    global: &Timeouts,
    raw: Option<&crate::raw::RawTimeouts>,
    index: usize,
    errors: &mut Vec<ConfigError>,
) -> Timeouts {
    let Some(raw) = raw else { return *global };
    let mut pick = |name: &str, value: Option<u64>, global: u64| match value {
        Some(0) => {
            errors.push(ConfigError::new(
                format!("credentials[{index}].timeouts.{name}"),
                "must be greater than 0",
            ));
            global
        }
        Some(v) => v,
        None => global,
    };
    Timeouts {
        connect_ms: pick("connect_ms", raw.connect_ms, global.connect_ms),
        first_byte_ms: pick("first_byte_ms", raw.first_byte_ms, global.first_byte_ms),
        idle_ms: pick("idle_ms", raw.idle_ms, global.idle_ms),
        header_read_ms: global.header_read_ms,
        body_read_ms: global.body_read_ms,
        total_ms: pick("total_ms", raw.total_ms, global.total_ms),
        client_idle_ms: global.client_idle_ms,
    }
}

fn reliability(
    raw: crate::raw::RawReliability,
    errors: &mut Vec<ConfigError>,
) -> crate::Reliability {
    let d = crate::Reliability::default();
    let breaker = raw.breaker.unwrap_or_default();
    let out = crate::Reliability {
        max_attempts: raw.max_attempts.unwrap_or(d.max_attempts),
        backoff_base_ms: raw.backoff_base_ms.unwrap_or(d.backoff_base_ms),
        backoff_max_ms: raw.backoff_max_ms.unwrap_or(d.backoff_max_ms),
        default_cooldown_ms: raw.default_cooldown_ms.unwrap_or(d.default_cooldown_ms),
        max_cooldown_ms: raw.max_cooldown_ms.unwrap_or(d.max_cooldown_ms),
        breaker_consecutive_failures: breaker
            .consecutive_failures
            .unwrap_or(d.breaker_consecutive_failures),
        breaker_failure_rate: breaker.failure_rate.unwrap_or(d.breaker_failure_rate),
        breaker_window: breaker.window.unwrap_or(d.breaker_window),
        breaker_min_requests: breaker.min_requests.unwrap_or(d.breaker_min_requests),
        breaker_open_ms: breaker.open_ms.unwrap_or(d.breaker_open_ms),
        breaker_max_open_ms: breaker.max_open_ms.unwrap_or(d.breaker_max_open_ms),
        share_interval_ms: raw.share_interval_ms.unwrap_or(d.share_interval_ms),
    };
    if out.share_interval_ms == 0 {
        errors.push(ConfigError::new(
            "reliability.share_interval_ms",
            "must be at least 1",
        ));
    }
    if out.max_cooldown_ms == 0 {
        errors.push(ConfigError::new(
            "reliability.max_cooldown_ms",
            "must be at least 1",
        ));
    }
    if out.max_attempts == 0 {
        errors.push(ConfigError::new(
            "reliability.max_attempts",
            "must be at least 1",
        ));
    }
    if out.breaker_consecutive_failures == 0 {
        errors.push(ConfigError::new(
            "reliability.breaker.consecutive_failures",
            "must be at least 1",
        ));
    }
    if !(out.breaker_failure_rate > 0.0 && out.breaker_failure_rate <= 1.0) {
        errors.push(ConfigError::new(
            "reliability.breaker.failure_rate",
            "must be in (0, 1]",
        ));
    }
    if !(1..=64).contains(&out.breaker_window) {
        errors.push(ConfigError::new(
            "reliability.breaker.window",
            "must be between 1 and 64",
        ));
    }
    if out.breaker_open_ms == 0 || out.breaker_max_open_ms < out.breaker_open_ms {
        errors.push(ConfigError::new(
            "reliability.breaker",
            "open_ms must be > 0 and max_open_ms >= open_ms",
        ));
    }
    out
}

/// A `pricing:` entry with its defaults filled in: cache reads and writes at the vendor's
/// published multiple of the input price when the shipped table knows the model's family
/// (Anthropic: 0.1× and 1.25×), else at the input price; reasoning at the output price.
fn price_of(model: &str, raw: &crate::raw::RawPrice) -> crate::Price {
    let (read_ratio, write_ratio) = published_cache_ratios(model).unwrap_or((1.0, 1.0));
    crate::Price {
        input_per_million: raw.input,
        output_per_million: raw.output,
        cache_read_per_million: raw.cache_read.unwrap_or(raw.input * read_ratio),
        cache_write_per_million: raw.cache_write.unwrap_or(raw.input * write_ratio),
        reasoning_per_million: raw.reasoning.unwrap_or(raw.output),
    }
}

/// Cache read and write prices as multiples of the input price, from the shipped entry that
/// `model` extends (`claude-sonnet-4-5` → `claude-sonnet-4`), or Anthropic's uniform
/// multipliers for any other Claude model.
fn published_cache_ratios(model: &str) -> Option<(f64, f64)> {
    if let Some(price) = crate::Pricing::shipped()
        .price(model)
        .filter(|p| p.input_per_million > 0.0)
    {
        return Some((
            price.cache_read_per_million / price.input_per_million,
            price.cache_write_per_million / price.input_per_million,
        ));
    }
    model.starts_with("claude").then_some((0.1, 1.25))
}

/// `telemetry:`: the collector URL must be http(s), the protocol one OpenTelemetry names, and
/// header names valid HTTP header names.
fn telemetry(raw: crate::raw::RawTelemetry, errors: &mut Vec<ConfigError>) -> crate::Telemetry {
    let otlp = raw.otlp.map(|otlp| {
        let endpoint = otlp
            .endpoint
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .and_then(|e| match Url::parse(&e) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => Some(url),
                _ => {
                    errors.push(ConfigError::new(
                        "telemetry.otlp.endpoint",
                        "must be an http:// or https:// URL",
                    ));
                    None
                }
            });
        let protocol = otlp.protocol.and_then(|p| {
            let parsed = crate::OtlpProtocol::parse(&p);
            if parsed.is_none() {
                errors.push(ConfigError::new(
                    "telemetry.otlp.protocol",
                    format!("'{p}' is not one of grpc, http/protobuf"),
                ));
            }
            parsed
        });
        let headers = otlp
            .headers
            .into_iter()
            .filter_map(|(name, value)| {
                let valid = !name.is_empty()
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
                if !valid {
                    errors.push(ConfigError::new(
                        format!("telemetry.otlp.headers.{name}"),
                        "is not a valid header name",
                    ));
                    return None;
                }
                if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
                    // The value is a secret: the message does not repeat it.
                    errors.push(ConfigError::new(
                        format!("telemetry.otlp.headers.{name}"),
                        "holds control characters",
                    ));
                    return None;
                }
                Some((name.to_ascii_lowercase(), crate::Secret::new(value)))
            })
            .collect();
        crate::Otlp {
            endpoint,
            protocol,
            headers,
        }
    });
    let sample_ratio = raw.sample_ratio.and_then(|ratio| {
        let parsed = crate::SampleRatio::new(ratio);
        if parsed.is_none() {
            errors.push(ConfigError::new(
                "telemetry.sample_ratio",
                format!("{ratio} is not a number from 0 to 1"),
            ));
        }
        parsed
    });
    crate::Telemetry {
        otlp,
        sample_ratio,
        capture_content: raw.capture_content.unwrap_or(false),
        max_content_bytes: raw.max_content_bytes.unwrap_or(16 * 1024),
        service_name: raw
            .service_name
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty()),
    }
}

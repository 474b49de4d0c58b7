//! Demo mode: a configuration built from vendor keys in the environment, or around the built-in
//! mock vendor when there are none, so the first `curl` works without a config file.

use url::Url;

use crate::secret::Secret;
use crate::validate::{default_base_url_str, parse_base_url};
use crate::{Api, Capabilities, Config, ConfigError, Credential, Model, ModelKind};

/// How many numbered extra keys (`OPENAI_API_KEY_1..N`) are read, as in the original router.
const NUMBERED_KEYS: usize = 20;

/// A demo vendor: where its keys come from and what it serves.
struct DemoVendor {
    vendor: &'static str,
    /// Variables holding the main key; the first one set wins (`GEMINI_API_KEY` over `GOOGLE_API_KEY`).
    main: &'static [&'static str],
    /// Prefix of the numbered extra keys, if this vendor has them.
    numbered: Option<&'static str>,
    /// The vendor's own API: every demo vendor is reached natively.
    api: Api,
    models: &'static [(&'static str, ModelKind)],
}

const VENDORS: [DemoVendor; 3] = [
    DemoVendor {
        vendor: "openai",
        main: &["OPENAI_API_KEY"],
        numbered: Some("OPENAI_API_KEY"),
        api: Api::OpenAi,
        models: &[
            ("gpt-4o-mini", ModelKind::Chat),
            ("text-embedding-3-small", ModelKind::Embedding),
        ],
    },
    DemoVendor {
        vendor: "gemini",
        main: &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
        numbered: Some("GEMINI_API_KEY"),
        api: Api::Gemini,
        models: &[("gemini-2.5-flash", ModelKind::Chat)],
    },
    DemoVendor {
        vendor: "anthropic",
        main: &["ANTHROPIC_API_KEY"],
        numbered: None,
        api: Api::Anthropic,
        models: &[("claude-sonnet-4-5", ModelKind::Chat)],
    },
];

/// Each vendor's keys as (variable name, value), main key first, skipping empty values.
fn keys(env: &dyn Fn(&str) -> Option<String>) -> Vec<(&'static DemoVendor, String, String)> {
    let lookup = |name: &str| {
        env(name)
            .map(|value| value.trim().to_owned())
            .filter(|value| !value.is_empty())
    };
    let mut out = Vec::new();
    for vendor in &VENDORS {
        if let Some((name, value)) = vendor
            .main
            .iter()
            .find_map(|name| lookup(name).map(|value| ((*name).to_owned(), value)))
        {
            out.push((vendor, name, value));
        }
        if let Some(prefix) = vendor.numbered {
            for n in 1..=NUMBERED_KEYS {
                let name = format!("{prefix}_{n}");
                if let Some(value) = lookup(&name) {
                    out.push((vendor, name, value));
                }
            }
        }
    }
    out
}

/// True when at least one vendor key is set.
pub(crate) fn has_keys(env: &dyn Fn(&str) -> Option<String>) -> bool {
    !keys(env).is_empty()
}

/// The demo configuration from the environment's vendor keys.
pub(crate) fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Config, Vec<ConfigError>> {
    let keys = keys(env);
    if keys.is_empty() {
        return Err(vec![ConfigError::new(
            "",
            "no vendor key in the environment",
        )]);
    }
    let mut credentials = Vec::new();
    let mut variables = Vec::new();
    for (vendor, variable, value) in keys {
        let number = credentials
            .iter()
            .filter(|c: &&Credential| c.vendor == vendor.vendor)
            .count()
            + 1;
        let base_url = default_base_url_str(vendor.vendor, vendor.api)
            .ok_or_else(|| format!("no default base_url for {}", vendor.vendor))
            .and_then(parse_base_url)
            .map_err(|message| vec![ConfigError::new(variable.clone(), message)])?;
        credentials.push(Credential {
            name: format!("{}-{number}", vendor.vendor),
            vendor: vendor.vendor.to_owned(),
            kind: "api-key".to_owned(),
            api: vendor.api,
            base_url,
            secret: Secret::new(value),
            fetch_images: vendor.api == Api::Gemini,
            forward_headers: Vec::new(),
            responses: crate::ResponsesMode::default_for(vendor.vendor, vendor.api),
            limits: Default::default(),
            timeouts: crate::Timeouts::default(),
        });
        variables.push(variable);
    }
    let models = VENDORS
        .iter()
        .filter(|v| credentials.iter().any(|c| c.vendor == v.vendor))
        .flat_map(|v| {
            v.models
                .iter()
                .map(|(model, kind)| demo_model(v.vendor, model, *kind))
        })
        .collect();
    Ok(Config {
        credentials,
        models,
        source: format!("demo mode ({})", variables.join(", ")),
        ..Config::default()
    })
}

/// Demo mode around the built-in mock vendor listening at `base_url`.
pub(crate) fn mock(base_url: &Url) -> Config {
    Config {
        credentials: vec![Credential {
            name: "mock-1".to_owned(),
            vendor: "mock".to_owned(),
            kind: "api-key".to_owned(),
            api: Api::OpenAi,
            base_url: base_url.clone(),
            secret: Secret::new("mock-key".to_owned()),
            fetch_images: false,
            forward_headers: Vec::new(),
            responses: crate::ResponsesMode::Translate,
            limits: Default::default(),
            timeouts: crate::Timeouts::default(),
        }],
        models: vec![
            demo_model("mock", "mock-model", ModelKind::Chat),
            demo_model("mock", "mock-embedding", ModelKind::Embedding),
        ],
        source: "demo mode (built-in mock vendor)".to_owned(),
        ..Config::default()
    }
}

fn demo_model(vendor: &str, model: &str, kind: ModelKind) -> Model {
    Model {
        vendor: vendor.to_owned(),
        model: model.to_owned(),
        name: None,
        kind,
        capabilities: Capabilities::default(),
        weight: crate::Weight::ONE,
        tier: 0,
    }
}

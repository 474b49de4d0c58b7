//! What llmux knows about each vendor's public service, kept beside the code that calls it.
//!
//! Today `llmux-config` fills a credential's `base_url` from its own copy of this table
//! (`validate::default_base_url_str`); the config cannot call this crate (this crate depends on
//! it), so moving the table here for good means the config leaving `base_url` unset and
//! [`Endpoints::prepare`](crate::Endpoints::prepare) filling it in. Until then both copies must
//! agree: a test in this module pins the values.

use llmux_config::Api;

/// The API root (with its version segment, without a trailing slash) of the vendor whose
/// native protocol is `api`: OpenAI for [`Api::OpenAi`], Anthropic for [`Api::Anthropic`],
/// Google for [`Api::Gemini`].
pub fn default_base_url(api: Api) -> &'static str {
    match api {
        Api::OpenAi => "https://api.openai.com/v1",
        Api::Anthropic => "https://api.anthropic.com/v1",
        Api::Gemini => "https://generativelanguage.googleapis.com/v1beta",
    }
}

/// The well-known API root of `vendor` (a credential's `platform`) when spoken to in `api`, or
/// `None` when llmux knows none (a self-hosted or unknown vendor needs a `base_url`).
pub fn vendor_base_url(vendor: &str, api: Api) -> Option<&'static str> {
    match (vendor, api) {
        ("openai", _) => Some(default_base_url(Api::OpenAi)),
        // Anthropic serves its OpenAI-compatible API under the same root.
        ("anthropic", Api::Anthropic | Api::OpenAi) => Some(default_base_url(Api::Anthropic)),
        ("gemini", Api::Gemini) => Some(default_base_url(Api::Gemini)),
        ("gemini", Api::OpenAi) => Some("https://generativelanguage.googleapis.com/v1beta/openai"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_match_the_vendors_documentation() {
        assert_eq!(default_base_url(Api::OpenAi), "https://api.openai.com/v1");
        assert_eq!(
            default_base_url(Api::Anthropic),
            "https://api.anthropic.com/v1"
        );
        assert_eq!(
            default_base_url(Api::Gemini),
            "https://generativelanguage.googleapis.com/v1beta"
        );
        assert_eq!(
            vendor_base_url("gemini", Api::OpenAi),
            Some("https://generativelanguage.googleapis.com/v1beta/openai")
        );
        assert_eq!(
            vendor_base_url("anthropic", Api::OpenAi),
            Some("https://api.anthropic.com/v1")
        );
        assert_eq!(vendor_base_url("anthropic", Api::Gemini), None);
        assert_eq!(vendor_base_url("mistral", Api::OpenAi), None);
    }

    /// The config still fills `base_url` from its own table: a credential without one must get
    /// the root this module names.
    #[test]
    fn config_defaults_agree() {
        for (vendor, api) in [
            ("openai", "openai"),
            ("anthropic", "anthropic"),
            ("anthropic", "openai"),
            ("gemini", "gemini"),
            ("gemini", "openai"),
        ] {
            let yaml = format!(
                "credentials:\n  - {{ platform: {vendor}, api: {api}, value: sk-x }}\nmodels:\n  - {{ vendor: {vendor}, model: m }}\n"
            );
            let config = llmux_config::from_str(&yaml, llmux_config::Format::Yaml, &|_| None)
                .unwrap_or_else(|e| panic!("{vendor}/{api}: {e:?}"));
            let credential = &config.credentials[0];
            assert_eq!(
                Some(credential.base_url.as_str().trim_end_matches('/')),
                vendor_base_url(vendor, credential.api),
                "{vendor}/{api}"
            );
        }
    }
}

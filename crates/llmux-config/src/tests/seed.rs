//! The original router's `credentials.json` + `models.json` load unchanged.

use super::{env, fixture, messages};
use crate::{Api, Capabilities, ConfigError, Source, load};

fn seed(models: &str) -> Result<crate::Config, Vec<ConfigError>> {
    let source = Source::Seed {
        credentials: fixture("seed/credentials.json"),
        models: fixture(models),
    };
    load(&source, &env(&[]))
}

fn seed_texts(credentials: &str, models: &str) -> Result<crate::Config, Vec<ConfigError>> {
    crate::seed::from_texts(
        ("credentials.json", credentials),
        ("models.json", models),
        &env(&[]),
        "seed".to_owned(),
    )
}

#[test]
fn object_shape_from_reference_loads() {
    let config = seed("seed/models_object.json").unwrap();

    let names: Vec<_> = config.credentials.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["openai-1", "gemini-1"]);
    let openai = &config.credentials[0];
    assert_eq!(openai.vendor, "openai");
    assert_eq!(openai.kind, "api-key");
    assert_eq!(openai.api, Api::OpenAi);
    assert_eq!(openai.base_url.as_str(), "https://api.openai.com/v1");
    assert_eq!(openai.secret.expose(), "sk-proj-...");
    let gemini = &config.credentials[1];
    assert_eq!(
        gemini.api,
        Api::OpenAi,
        "the seed speaks OpenAI to every vendor"
    );
    assert_eq!(
        gemini.base_url.as_str(),
        "https://generativelanguage.googleapis.com/v1beta/openai"
    );

    assert_eq!(config.models.len(), 1);
    let model = &config.models[0];
    assert_eq!(model.vendor, "gemini");
    assert_eq!(model.model, "gemini-2.5-flash-preview-05-20");
    assert_eq!(model.name, None);
    assert_eq!(model.capabilities, Capabilities::default());
    assert!(config.source.contains("credentials.json + "));
    assert!(config.source.ends_with("models_object.json"));
}

#[test]
fn plain_list_shape_loads_with_openai_compatible_defaults() {
    let config = seed("seed/models_list.json").unwrap();

    let models: Vec<_> = config
        .models
        .iter()
        .map(|m| (m.vendor.as_str(), m.model.as_str()))
        .collect();
    assert_eq!(
        models,
        [
            ("openai", "gpt-4o"),
            ("gemini", "gemini-2.5-flash-preview-05-20")
        ]
    );
    let gemini = &config.credentials[1];
    assert_eq!(gemini.api, Api::OpenAi);
    assert_eq!(
        gemini.base_url.as_str(),
        "https://generativelanguage.googleapis.com/v1beta/openai"
    );
    // The original router downloaded every image URL for every vendor.
    assert_eq!(config.images.fetch, crate::FetchImages::All);
}

#[test]
fn vendors_map_supplies_base_url_for_any_platform() {
    let config = seed_texts(
        r#"[{"platform":"groq","type":"api-key","value":"gsk_abcdefgh"},
            {"platform":"groq","type":"api-key","value":"gsk_ijklmnop","base_url":"https://proxy.example/v1"}]"#,
        r#"{"vendors":{"groq":"https://api.groq.com/openai/v1/"},
            "models":[{"vendor":"groq","model":"llama-3.3-70b"}]}"#,
    )
    .unwrap();
    assert_eq!(
        config.credentials[0].base_url.as_str(),
        "https://api.groq.com/openai/v1"
    );
    assert_eq!(config.credentials[0].api, Api::OpenAi);
    assert_eq!(
        config.credentials[1].base_url.as_str(),
        "https://proxy.example/v1",
        "a credential's own base_url wins over the vendors map"
    );
    assert_eq!(config.credentials[1].name, "groq-2");
}

#[test]
fn credential_api_overrides_seed_default() {
    let config = seed_texts(
        r#"[{"platform":"gemini","type":"api-key","value":"AIza-native","api":"gemini"}]"#,
        r#"[{"vendor":"gemini","model":"gemini-2.5-flash"}]"#,
    )
    .unwrap();
    assert_eq!(config.credentials[0].api, Api::Gemini);
    assert_eq!(
        config.credentials[0].base_url.as_str(),
        "https://generativelanguage.googleapis.com/v1beta"
    );
}

#[test]
fn capability_flags_follow_the_original_router() {
    let config = seed_texts(
        r#"[{"platform":"openai","type":"api-key","value":"sk-abcdefgh"}]"#,
        r#"{"models":[
            {"vendor":"openai","model":"no-config"},
            {"vendor":"openai","model":"empty-config","config":{}},
            {"vendor":"openai","model":"some","config":{"support_tools":true,"support_streaming":true}},
            {"vendor":"openai","model":"all-false","config":{"support_image":false,"support_video":false,"support_tools":false,"support_streaming":false}}
        ]}"#,
    )
    .unwrap();
    let caps: Vec<_> = config.models.iter().map(|m| m.capabilities).collect();
    let all = |v| Capabilities {
        image: v,
        video: v,
        tools: v,
        streaming: v,
    };
    assert_eq!(caps[0], all(true), "absent config: everything supported");
    assert_eq!(
        caps[1],
        all(false),
        "present config: missing flags are false"
    );
    assert_eq!(
        caps[2],
        Capabilities {
            image: false,
            video: false,
            tools: true,
            streaming: true
        }
    );
    assert_eq!(caps[3], all(false));
}

#[test]
fn bad_vendors_url_is_reported_once() {
    let errors = seed_texts(
        r#"[{"platform":"groq","type":"api-key","value":"gsk_abcdefgh"}]"#,
        r#"{"vendors":{"groq":"ftp://api.groq.com"},"models":[{"vendor":"groq","model":"m"}]}"#,
    )
    .unwrap_err();
    assert_eq!(
        messages(&errors),
        ["vendors.groq: scheme 'ftp' is not http or https"]
    );
}

#[test]
fn parse_errors_name_the_file() {
    let errors = seed_texts(
        r#"[{"platform":"openai","value":"sk-abcdefgh","colour":"red"}]"#,
        r#"{"models":[], "extra": 1}"#,
    )
    .unwrap_err();
    let errors = messages(&errors);
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].starts_with("credentials.json: line 1: unknown field `colour`"),
        "{errors:?}"
    );
    assert!(
        errors[1].starts_with("models.json: line 1: unknown field `extra`"),
        "{errors:?}"
    );
}

#[test]
fn unreadable_files_are_all_reported() {
    let source = Source::Seed {
        credentials: fixture("seed/missing-credentials.json"),
        models: fixture("seed/missing-models.json"),
    };
    let errors = messages(&load(&source, &env(&[])).unwrap_err());
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].contains("missing-credentials.json: cannot read file"));
    assert!(errors[1].contains("missing-models.json: cannot read file"));
}

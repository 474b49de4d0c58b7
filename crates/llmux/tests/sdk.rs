//! The official OpenAI, Anthropic and google-genai Python SDKs against llmux, each on OpenAI,
//! Anthropic and Gemini combinations of the mock. `scripts/test` installs the SDKs into a venv and
//! sets `LLMUX_TEST_PYTHON`; without it (or without the one SDK a test needs) the test says so and
//! checks nothing else.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use common::*;

fn config(mock: &llmux_mock::MockUpstream) -> String {
    every_vendor(
        mock,
        "  - { vendor: openai, model: text-embedding-3-small, name: embed-openai, kind: embedding }\n",
    )
}

async fn run_script(python: &str, script: &str, base_url: &str, model: &str) {
    run_script_with(python, script, base_url, model, &[]).await;
}

async fn run_script_with(
    python: &str,
    script: &str,
    base_url: &str,
    model: &str,
    env: &[(&str, &str)],
) {
    let path = format!("{}/tests/sdk/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = tokio::process::Command::new(python)
        .arg(&path)
        .env("LLMUX_BASE_URL", base_url)
        .env("LLMUX_MODEL", model)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("python runs");
    assert_script_passed(script, model, &output);
}

#[tokio::test]
async fn official_sdks_work_against_every_vendor() {
    let Ok(python) = std::env::var("LLMUX_TEST_PYTHON") else {
        eprintln!(
            "skipped: LLMUX_TEST_PYTHON is not set (scripts/test sets it after installing the SDKs)"
        );
        return;
    };
    let mock = mock().await;
    let gateway = TestGateway::start(&config(&mock)).await;
    for model in ["via-openai", "via-anthropic", "via-gemini"] {
        run_script(&python, "openai_responses.py", &gateway.url, model).await;
        run_script(&python, "anthropic_messages.py", &gateway.url, model).await;
        run_script(&python, "openresponses_schema.py", &gateway.url, model).await;
    }
}

#[tokio::test]
async fn google_genai_sdk_works_against_every_vendor() {
    const KEY: &str = "sk-master-genai-0123456789";
    let Ok(python) = std::env::var("LLMUX_TEST_PYTHON") else {
        eprintln!(
            "skipped: LLMUX_TEST_PYTHON is not set (scripts/test sets it after installing the SDKs)"
        );
        return;
    };
    let installed = tokio::process::Command::new(&python)
        .args(["-c", "import google.genai"])
        .output()
        .await
        .is_ok_and(|o| o.status.success());
    if !installed {
        eprintln!("skipped: google-genai is not installed in {python} (scripts/test installs it)");
        return;
    }
    let mock = mock().await;
    // With client keys on: the SDK's `x-goog-api-key` must authenticate.
    let dir = temp_dir("sdk-genai");
    let gateway = TestGateway::start(&format!(
        "{}auth: {{ master_key: {KEY}, database: \"sqlite://{}\" }}\n",
        config(&mock),
        dir.join("keys.db").display()
    ))
    .await;
    for model in ["via-openai", "via-anthropic", "via-gemini"] {
        run_script_with(
            &python,
            "google_genai.py",
            &gateway.url,
            model,
            &[
                ("LLMUX_EMBED_MODEL", "embed-openai"),
                ("LLMUX_API_KEY", KEY),
            ],
        )
        .await;
    }
}

//! The official OpenAI and Anthropic Python SDKs against llmux, each on OpenAI, Anthropic and
//! Gemini combinations of the mock. `scripts/test` installs the SDKs into a venv and sets
//! `LLMUX_TEST_PYTHON`; without it the test says so and checks nothing else.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use common::*;

fn config(mock: &llmux_mock::MockUpstream) -> String {
    format!(
        "credentials:
  - {{ platform: openai, value: sk-openai-test-0123456789, base_url: \"{url}/v1\" }}
  - {{ platform: anthropic, value: sk-ant-test-0123456789, base_url: \"{url}/v1\" }}
  - {{ platform: gemini, value: AIzaTestKey0123456789012345678901234, base_url: \"{url}/v1beta\" }}
models:
  - {{ vendor: openai, model: gpt-4o-mini, name: via-openai }}
  - {{ vendor: anthropic, model: claude-sonnet-4-5, name: via-anthropic }}
  - {{ vendor: gemini, model: gemini-2.5-flash, name: via-gemini }}
",
        url = mock.url()
    )
}

async fn run_script(python: &str, script: &str, base_url: &str, model: &str) {
    let path = format!("{}/tests/sdk/{script}", env!("CARGO_MANIFEST_DIR"));
    let output = tokio::process::Command::new(python)
        .arg(&path)
        .env("LLMUX_BASE_URL", base_url)
        .env("LLMUX_MODEL", model)
        .output()
        .await
        .expect("python runs");
    assert!(
        output.status.success(),
        "{script} on {model} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
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

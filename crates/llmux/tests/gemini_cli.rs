//! Gemini CLI (`@google/gemini-cli` from npm, pinned in `scripts/test`) run headless against
//! llmux in front of the mock, on every vendor alias: `GOOGLE_GEMINI_BASE_URL` points the CLI at
//! the gateway, with a fake `GEMINI_API_KEY`, a fresh HOME (telemetry, usage statistics and
//! update checks off), a fresh working directory and a time limit. `scripts/test` installs the
//! CLI into `target/clients/gemini-cli` and sets `LLMUX_TEST_GEMINI_CLI` to its `gemini`
//! binary; without it the tests say so and check nothing else.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

const VIA: [&str; 3] = ["via-openai", "via-anthropic", "via-gemini"];

/// The tools Gemini CLI 0.61 declares by default in headless mode.
const DEFAULT_TOOLS: [&str; 8] = [
    "update_topic",
    "list_directory",
    "read_file",
    "grep_search",
    "glob",
    "google_web_search",
    "enter_plan_mode",
    "invoke_agent",
];

fn cli() -> Option<String> {
    installed_client("LLMUX_TEST_GEMINI_CLI", "@google/gemini-cli", "gemini-cli")
}

/// Runs `gemini -p <prompt> --output-format json -m <model>` against `base_url` with `tools`
/// (the CLI's `tools` settings) and returns its parsed JSON output; panics unless it exits 0
/// within 30 seconds.
async fn run_cli(cli: &str, base_url: &str, model: &str, prompt: &str, tools: Value) -> Value {
    let home = temp_dir("gemini-cli-home");
    let work = temp_dir("gemini-cli-work");
    std::fs::create_dir_all(home.join(".gemini")).unwrap();
    let settings = json!({
        "general": {"enableAutoUpdate": false, "enableAutoUpdateNotification": false},
        "privacy": {"usageStatisticsEnabled": false},
        "telemetry": {"enabled": false},
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "tools": tools,
    });
    std::fs::write(
        home.join(".gemini/settings.json"),
        serde_json::to_vec_pretty(&settings).unwrap(),
    )
    .unwrap();
    let mut command = tokio::process::Command::new(cli);
    command
        .args(["-p", prompt, "--output-format", "json", "-m", model])
        .arg("--skip-trust")
        .current_dir(&work)
        .env_clear()
        // `gemini` is a node script (`#!/usr/bin/env node`).
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", &home)
        .env("GEMINI_API_KEY", "AIzaFakeCliKey0123456789")
        .env("GOOGLE_GEMINI_BASE_URL", base_url)
        .env("GEMINI_CLI_NO_RELAUNCH", "true")
        .env("GEMINI_TELEMETRY_ENABLED", "false")
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(30), command.output())
        .await
        .unwrap_or_else(|_| panic!("gemini on {model} did not finish within 30 s"))
        .expect("gemini runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "gemini on {model} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let _ = std::fs::remove_dir_all(&home);
    let _ = std::fs::remove_dir_all(&work);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("gemini on {model}: output is not JSON ({e}):\n{stdout}"))
}

#[tokio::test]
async fn gemini_cli_answers_a_prompt_on_every_vendor() {
    let Some(cli) = cli() else { return };
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    for via in VIA {
        let prompt = format!("Say hello through {via}");
        // No tools: the mock calls the first declared tool otherwise.
        let output = run_cli(
            &cli,
            &gateway.url,
            via,
            &prompt,
            json!({"exclude": DEFAULT_TOOLS}),
        )
        .await;
        let response = output["response"].as_str().unwrap_or_default();
        assert!(
            response.contains(&prompt),
            "{via}: the mock's echo is missing from {output}"
        );
    }
    let vendors: Vec<String> = mock.calls().into_iter().map(|c| c.model).collect();
    for model in ["gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash"] {
        assert!(
            vendors.iter().filter(|m| *m == model).count() == 1,
            "{model} was not called once: {vendors:?}"
        );
    }
}

#[tokio::test]
async fn gemini_cli_runs_a_tool_round_trip_on_every_vendor() {
    let Some(cli) = cli() else { return };
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    for via in VIA {
        let prompt = format!("Read a file through {via}");
        // One tool: the mock calls it with `{"text": <prompt>}`, the CLI answers with the tool's
        // result (an argument error), and the mock acknowledges that result in text.
        let output = run_cli(
            &cli,
            &gateway.url,
            via,
            &prompt,
            json!({"core": ["read_file"], "exclude": ["update_topic", "invoke_agent", "enter_plan_mode"]}),
        )
        .await;
        let response = output["response"].as_str().unwrap_or_default();
        // The vendor saw the CLI's `functionResponse` (the missing `file_path`) as a tool result.
        assert!(
            response.starts_with("Tool result received") && response.contains("file_path"),
            "{via}: no tool round trip in {output}"
        );
        assert_eq!(output["stats"]["tools"]["totalCalls"], 1, "{via}: {output}");
        assert_eq!(
            output["stats"]["models"][via]["api"]["totalRequests"], 2,
            "{via}: {output}"
        );
    }
    let vendors: Vec<String> = mock.calls().into_iter().map(|c| c.model).collect();
    for model in ["gpt-4o-mini", "claude-sonnet-4-5", "gemini-2.5-flash"] {
        assert_eq!(
            vendors.iter().filter(|m| *m == model).count(),
            2,
            "{model}: {vendors:?}"
        );
    }
}

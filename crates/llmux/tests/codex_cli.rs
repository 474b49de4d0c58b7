//! Codex CLI (`@openai/codex` from npm, pinned in `scripts/test`) run headless (`codex exec
//! --json`) against llmux's `/v1/responses` in front of the mock, on an OpenAI, an Anthropic and a
//! Gemini model: a `model_provider` in its `config.toml` points it at the gateway with a fake key,
//! analytics, OpenTelemetry exporters and update checks are off, and it runs with a throwaway
//! HOME and working directory in a loopback-only network namespace when one can be made (see
//! `agents/sandbox.rs`). The prompt scripts the mock (`mock:text`, `mock:call <tool>
//! <arguments>`). `scripts/test` installs the CLI into `target/clients/codex` and sets
//! `LLMUX_TEST_CODEX` to its `codex` launcher; without it the tests say so and check nothing else.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;
#[path = "agents/sandbox.rs"]
mod sandbox;

use common::*;
use llmux_mock::Api;
use sandbox::{Sandbox, json_lines};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Each alias, the model the mock sees for it and the vendor API it must be called on.
const VIA: [(&str, &str, Api); 3] = [
    // OpenAI itself gets the Responses body as Codex sent it (the native byte path).
    ("via-openai", "gpt-4o-mini", Api::OpenAiResponses),
    ("via-anthropic", "claude-sonnet-4-5", Api::Anthropic),
    ("via-gemini", "gemini-2.5-flash", Api::Gemini),
];

fn cli() -> Option<PathBuf> {
    installed_client("LLMUX_TEST_CODEX", "@openai/codex", "codex").map(PathBuf::from)
}

/// Codex's `config.toml`: llmux as a Responses API provider, nothing else on the network.
fn codex_config(gateway_url: &str) -> String {
    format!(
        r#"model_provider = "llmux"
check_for_update_on_startup = false

[model_providers.llmux]
name = "llmux"
base_url = "{gateway_url}/v1"
env_key = "LLMUX_KEY"
wire_api = "responses"

[analytics]
enabled = false

[otel]
exporter = "none"
trace_exporter = "none"
metrics_exporter = "none"
"#
    )
}

/// Runs `codex exec --json --skip-git-repo-check -m <via> <prompt>` in `sandbox` and returns its
/// events.
async fn run_codex(cli: &Path, sandbox: &Sandbox, via: &str, prompt: &str) -> Vec<Value> {
    let codex_home = sandbox.home.join(".codex");
    std::fs::create_dir_all(&codex_home).unwrap();
    std::fs::write(
        codex_home.join("config.toml"),
        codex_config(&sandbox.gateway_url),
    )
    .unwrap();
    let env = [("LLMUX_KEY", "sk-fake-codex-key-0123456789")];
    let args = ["exec", "--json", "--skip-git-repo-check", "-m", via, prompt];
    let stdout = sandbox.run(cli, &args, &env, Duration::from_secs(60)).await;
    let events = json_lines(&stdout);
    assert!(
        events.iter().any(|e| e["type"] == "turn.completed"),
        "{via}: the turn did not complete:\n{stdout}"
    );
    events
}

/// The completed items of `kind` (`agent_message`, `command_execution`, …).
fn items<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == "item.completed" && e["item"]["type"] == kind)
        .map(|e| &e["item"])
        .collect()
}

/// The text of the last agent message.
fn final_text<'a>(via: &str, events: &'a [Value]) -> &'a str {
    let messages = items(events, "agent_message");
    let last = messages
        .last()
        .unwrap_or_else(|| panic!("{via}: no agent message in {events:?}"));
    last["text"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn codex_answers_a_prompt_on_every_vendor() {
    let Some(cli) = cli() else { return };
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    for (via, model, api) in VIA {
        let sandbox = Sandbox::new("codex", &gateway.addr()).await;
        let prompt = format!("Say hello through {via}. mock:text");
        let events = run_codex(&cli, &sandbox, via, &prompt).await;
        let text = final_text(via, &events);
        assert!(
            text.contains(&prompt),
            "{via}: the mock's echo is missing from {text:?}"
        );
        assert!(
            items(&events, "command_execution").is_empty(),
            "{via}: {events:?}"
        );
        vendor_calls(&mock, via, model, &api, 1);
    }
}

#[tokio::test]
async fn codex_runs_a_command_with_its_own_tool_on_every_vendor() {
    let Some(cli) = cli() else { return };
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    for (via, model, api) in VIA {
        let sandbox = Sandbox::new("codex", &gateway.addr()).await;
        sandbox.write_file("notes.txt", "The secret word is PAPAYA.\n");
        // Turn 1: the mock calls Codex's exec_command tool to print the file; turn 2
        // acknowledges the command's output, which only the CLI could have produced.
        let prompt = format!(
            r#"Read the notes through {via}. mock:call exec_command {{"cmd": "cat notes.txt"}}"#
        );
        let events = run_codex(&cli, &sandbox, via, &prompt).await;

        let commands = items(&events, "command_execution");
        let [command] = commands.as_slice() else {
            panic!("{via}: expected one command in {events:?}");
        };
        assert!(
            command["command"]
                .as_str()
                .unwrap_or_default()
                .contains("cat notes.txt"),
            "{via}: {command}"
        );
        assert_eq!(command["exit_code"], 0, "{via}: {command}");
        assert!(
            command["aggregated_output"]
                .as_str()
                .unwrap_or_default()
                .contains("PAPAYA"),
            "{via}: {command}"
        );
        let text = final_text(via, &events);
        assert!(
            text.starts_with("Tool result received") && text.contains("PAPAYA"),
            "{via}: no tool round trip in {text:?}"
        );
        let calls = vendor_calls(&mock, via, model, &api, 2);
        assert!(
            calls[1].body.to_string().contains("PAPAYA"),
            "{via}: the vendor never saw the command's output: {}",
            calls[1].body
        );
    }
}

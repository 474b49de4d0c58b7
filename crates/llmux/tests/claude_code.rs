//! Claude Code (`@anthropic-ai/claude-code` from npm, pinned in `scripts/test`) run headless
//! (`claude -p --output-format stream-json`) against llmux in front of the mock, on an OpenAI, an
//! Anthropic and a Gemini model: `ANTHROPIC_BASE_URL` points it at the gateway, with a fake key,
//! telemetry, error reporting and updates off, a throwaway HOME and working directory, and a
//! loopback-only network namespace when one can be made (see `agents/sandbox.rs`). The prompt
//! scripts the mock (`mock:text`, `mock:call <tool> <arguments>`). `scripts/test` installs the CLI
//! into `target/clients/claude-code` and sets `LLMUX_TEST_CLAUDE_CODE` to its `claude` binary;
//! without it the tests say so and check nothing else.
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
    ("via-openai", "gpt-4o-mini", Api::OpenAiChat),
    ("via-anthropic", "claude-sonnet-4-5", Api::Anthropic),
    ("via-gemini", "gemini-2.5-flash", Api::Gemini),
];

fn cli() -> Option<PathBuf> {
    installed_client(
        "LLMUX_TEST_CLAUDE_CODE",
        "@anthropic-ai/claude-code",
        "claude-code",
    )
    .map(PathBuf::from)
}

/// Runs `claude -p <prompt> --output-format stream-json --verbose --model <via>` in `sandbox`
/// and returns its events.
async fn run_claude(cli: &Path, sandbox: &Sandbox, via: &str, prompt: &str) -> Vec<Value> {
    let env = [
        ("ANTHROPIC_BASE_URL", sandbox.gateway_url.as_str()),
        ("ANTHROPIC_API_KEY", "sk-ant-fake-cli-key-0123456789"),
        // Nothing but the model API: no telemetry, error reports, update checks or feedback.
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1"),
        ("DISABLE_TELEMETRY", "1"),
        ("DISABLE_ERROR_REPORTING", "1"),
        ("DISABLE_AUTOUPDATER", "1"),
        ("DISABLE_UPDATES", "1"),
        // Background and sub-agent requests go to the model under test, not to a Claude name.
        ("ANTHROPIC_DEFAULT_HAIKU_MODEL", via),
        ("ANTHROPIC_DEFAULT_SONNET_MODEL", via),
        ("ANTHROPIC_DEFAULT_OPUS_MODEL", via),
        ("CLAUDE_CODE_SUBAGENT_MODEL", via),
    ];
    let args = [
        "-p",
        prompt,
        "--output-format",
        "stream-json",
        "--verbose",
        "--model",
        via,
    ];
    let stdout = sandbox.run(cli, &args, &env, Duration::from_secs(60)).await;
    let events = json_lines(&stdout);
    assert!(
        events.iter().any(|e| e["type"] == "result"),
        "{via}: no result event in:\n{stdout}"
    );
    events
}

/// The final `result` event, checked to be a success.
fn result<'a>(via: &str, events: &'a [Value]) -> &'a Value {
    let result = events.iter().rfind(|e| e["type"] == "result").unwrap();
    assert_eq!(result["subtype"], "success", "{via}: {result}");
    assert_eq!(result["is_error"], false, "{via}: {result}");
    result
}

#[tokio::test]
async fn claude_code_answers_a_prompt_on_every_vendor() {
    let Some(cli) = cli() else { return };
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    for (via, model, api) in VIA {
        let sandbox = Sandbox::new("claude-code", &gateway.addr()).await;
        let prompt = format!("Say hello through {via}. mock:text");
        let events = run_claude(&cli, &sandbox, via, &prompt).await;
        let answer = result(via, &events)["result"].as_str().unwrap_or_default();
        assert!(
            answer.contains(&prompt),
            "{via}: the mock's echo is missing from {answer:?}"
        );
        let calls = vendor_calls(&mock, via, model, &api, 1);
        if api == Api::Anthropic {
            // The byte path carries the client's betas, or Anthropic refuses its beta fields.
            let beta = calls[0]
                .headers
                .iter()
                .find(|(name, _)| name == "anthropic-beta")
                .map(|(_, value)| value.as_str())
                .unwrap_or_default();
            assert!(
                beta.contains("claude-code-20250219"),
                "{via}: anthropic-beta {beta:?}"
            );
        }
    }
}

#[tokio::test]
async fn claude_code_reads_a_file_with_its_own_tool_on_every_vendor() {
    let Some(cli) = cli() else { return };
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    for (via, model, api) in VIA {
        let sandbox = Sandbox::new("claude-code", &gateway.addr()).await;
        let notes = sandbox.write_file("notes.txt", "The secret word is PAPAYA.\n");
        // Turn 1: the mock calls Claude Code's Read tool on the file; turn 2 acknowledges the
        // tool result, which only the CLI could have produced by reading the file.
        let arguments = serde_json::json!({ "file_path": notes });
        let prompt = format!("Read the notes through {via}. mock:call Read {arguments}");
        let events = run_claude(&cli, &sandbox, via, &prompt).await;

        let call = events
            .iter()
            .filter(|e| e["type"] == "assistant")
            .flat_map(|e| {
                e["message"]["content"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .find(|block| block["type"] == "tool_use")
            .unwrap_or_else(|| panic!("{via}: no tool call in {events:?}"));
        assert_eq!(call["name"], "Read", "{via}: {call}");
        assert_eq!(call["input"], arguments, "{via}: {call}");
        let tool_result = events
            .iter()
            .filter(|e| e["type"] == "user")
            .flat_map(|e| {
                e["message"]["content"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .find(|block| block["type"] == "tool_result")
            .unwrap_or_else(|| panic!("{via}: the CLI ran no tool: {events:?}"));
        assert_eq!(tool_result["tool_use_id"], call["id"], "{via}");
        assert!(
            tool_result["content"].to_string().contains("PAPAYA"),
            "{via}: Read did not return the file: {tool_result}"
        );
        let answer = result(via, &events)["result"].as_str().unwrap_or_default();
        assert!(
            answer.starts_with("Tool result received") && answer.contains("PAPAYA"),
            "{via}: no tool round trip in {answer:?}"
        );
        let calls = vendor_calls(&mock, via, model, &api, 2);
        assert!(
            calls[1].body.to_string().contains("PAPAYA"),
            "{via}: the vendor never saw the tool result: {}",
            calls[1].body
        );
    }
}

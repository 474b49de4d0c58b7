//! The official OpenAI and Anthropic Node SDKs (`openai`, `@anthropic-ai/sdk` from npm, pinned in
//! `scripts/test`) against llmux in front of the mock, on an OpenAI, an Anthropic and a Gemini
//! model: `agents/openai_sdk.js` (Chat Completions whole, streamed and with a function call;
//! Responses whole and streamed) and `agents/anthropic_sdk.js` (Messages whole, streamed and a
//! tool round trip). `scripts/test` installs both into `target/clients/node-sdks` and sets
//! `LLMUX_TEST_NODE_SDKS` to its `node_modules`; without it the test says so and checks nothing
//! else.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use common::*;
use llmux_mock::Api;
use std::time::Duration;

/// Each alias, the model the mock sees for it and the vendor API it must be called on.
const VIA: [(&str, &str, Api); 3] = [
    ("via-openai", "gpt-4o-mini", Api::OpenAiChat),
    ("via-anthropic", "claude-sonnet-4-5", Api::Anthropic),
    ("via-gemini", "gemini-2.5-flash", Api::Gemini),
];

/// Runs `agents/<script>` with node for `model` and panics with its output unless it succeeds.
async fn run_script(node_modules: &str, script: &str, base_url: &str, model: &str) {
    let path = format!("{}/tests/agents/{script}", env!("CARGO_MANIFEST_DIR"));
    let run = tokio::process::Command::new("node")
        .arg(&path)
        .env("NODE_PATH", node_modules)
        .env("LLMUX_BASE_URL", base_url)
        .env("LLMUX_MODEL", model)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .unwrap_or_else(|_| panic!("{script} on {model} did not finish within 60 s"))
        .expect("node runs");
    assert_script_passed(script, model, &output);
}

#[tokio::test]
async fn node_sdks_work_against_every_vendor() {
    let Some(node_modules) = installed_client(
        "LLMUX_TEST_NODE_SDKS",
        "the openai and @anthropic-ai/sdk packages",
        "node-sdks",
    ) else {
        return;
    };
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "")).await;
    for (via, model, api) in VIA {
        run_script(&node_modules, "openai_sdk.js", &gateway.url, via).await;
        run_script(&node_modules, "anthropic_sdk.js", &gateway.url, via).await;
        // Chat whole and streamed, 2 for the function call, Responses whole and streamed; Messages
        // whole and streamed, 2 for the tool round trip: each on the vendor behind the alias.
        let calls = mock.calls();
        mock.clear_calls();
        let seen: Vec<(&Api, &str)> = calls.iter().map(|c| (&c.api, c.model.as_str())).collect();
        assert!(
            calls.len() == 10
                && calls.iter().all(|c| {
                    // OpenAI itself answers Responses on its own `/responses` (the byte path).
                    let native = api == Api::OpenAiChat && c.api == Api::OpenAiResponses;
                    (c.api == api || native) && c.model == model
                }),
            "{via}: expected 10 calls of {model} on {api:?}, the mock saw {seen:?}"
        );
        assert_eq!(
            calls.iter().filter(|c| c.stream).count(),
            3,
            "{via}: the streamed chat, responses and messages calls must reach the vendor as streams"
        );
    }
}

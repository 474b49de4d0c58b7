//! The binary as a user runs it: demo mode, `llmux check`, the seed layout, and logs that never
//! carry a secret.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use std::process::Command;

use common::*;
use llmux_mock::FaultRule;
use serde_json::{Value, json};

fn llmux(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_llmux"));
    command.args(args).current_dir(dir).env_clear();
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("llmux runs")
}

#[tokio::test]
async fn demo_mode_without_keys_answers_the_first_curl_from_the_builtin_mock() {
    let dir = temp_dir("demo");
    let gateway = Binary::serve(&dir, &[], &[]);
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{}/v1/chat/completions", gateway.url))
        .json(&json!({"messages": [{"role": "user", "content": "Hello llmux"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-llmux-vendor"], "mock");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "Hello llmux");
    assert!(gateway.logs().contains("DEMO MODE"));
}

#[tokio::test]
async fn seed_layout_loads_unchanged_from_configs() {
    let mock = mock().await;
    let dir = temp_dir("seed");
    std::fs::create_dir_all(dir.join("configs")).unwrap();
    std::fs::write(
        dir.join("configs/credentials.json"),
        json!([{"platform": "openai", "type": "api-key", "value": SECRET}, {"platform": "gemini", "type": "api-key", "value": "AIzaSyTestTestTestTestTestTestTestTest12"}]).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("configs/models.json"),
        json!({"vendors": {"openai": format!("{}/v1", mock.url()), "gemini": format!("{}/v1", mock.url())},
               "models": [{"vendor": "gemini", "model": "gemini-2.5-flash", "config": {"support_image": true, "support_video": true, "support_tools": true, "support_streaming": true}},
                          {"vendor": "openai", "model": "gpt-4o"}]})
        .to_string(),
    )
    .unwrap();
    let gateway = Binary::serve(&dir, &[], &[]);
    let client = reqwest::Client::new();
    for _ in 0..20 {
        let response = client
            .post(format!("{}/v1/chat/completions", gateway.url))
            .json(&chat("any-model", "x"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let models: std::collections::HashSet<String> =
        mock.calls().into_iter().map(|c| c.model).collect();
    assert_eq!(models.len(), 2, "both seed models served: {models:?}");
}

#[tokio::test]
async fn secrets_never_reach_logs_even_at_trace_level() {
    let mock = mock().await;
    mock.add_fault(FaultRule {
        status: Some(401),
        body: Some(json!({"error": {"message": format!("Incorrect API key provided: {SECRET}"), "type": "invalid_request_error", "code": "invalid_api_key"}}).to_string()),
        times: Some(1),
        ..Default::default()
    });
    let dir = temp_dir("secrets");
    std::fs::write(dir.join("llmux.yaml"), basic_config(&mock)).unwrap();
    let gateway = Binary::serve(&dir, &[], &[("LOG_LEVEL", "trace")]);
    let client = reqwest::Client::new();
    for stream in [false, false, true] {
        let mut request = chat("fast", "hello");
        request["stream"] = json!(stream);
        let response = client
            .post(format!("{}/v1/chat/completions", gateway.url))
            .json(&request)
            .send()
            .await
            .unwrap();
        let text = response.text().await.unwrap();
        assert!(!text.contains("abcdefghijklmnop"), "{text}");
    }
    let metrics = client
        .get(format!("{}/metrics", gateway.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!metrics.contains("abcdefghijklmnop"));
    // The log line is written by the gateway's process; wait for it to arrive.
    eventually(std::time::Duration::from_secs(10), || async {
        gateway
            .logs()
            .contains("upstream error")
            .then_some(())
            .ok_or("no upstream error logged")
    })
    .await;
    let logs = gateway.logs();
    assert!(
        logs.contains("upstream error"),
        "the 401 was logged: {logs}"
    );
    assert!(logs.lines().count() > 5, "trace logging produced output");
    assert!(
        !logs.contains("abcdefghijklmnop"),
        "secret in logs:\n{logs}"
    );
}

/// The allocator runs with the thread-cache collector BENCHMARKS.md measured ("the allocator's
/// collector"), baked in at build time (`.cargo/config.toml`): jemalloc lists its options at
/// exit when asked to.
#[cfg(feature = "jemalloc")]
#[test]
fn the_allocator_trims_its_thread_caches_one_size_class_at_a_time() {
    let dir = temp_dir("allocator");
    let output = llmux(
        &dir,
        &["--version"],
        &[("_RJEM_MALLOC_CONF", "stats_print:true")],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("opt.experimental_tcache_gc: false"),
        "jemalloc's options:\n{text}"
    );
}

#[test]
fn check_prints_the_combination_table() {
    let dir = temp_dir("check-ok");
    std::fs::write(
        dir.join("llmux.yaml"),
        "credentials:\n  - { platform: openai, value: \"${OPENAI_KEY}\" }\n  - { platform: openai, value: sk-2, name: backup }\nmodels:\n  - { vendor: openai, model: gpt-4o-mini, name: fast }\n",
    )
    .unwrap();
    let output = llmux(&dir, &["check"], &[("OPENAI_KEY", SECRET)]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("VENDOR"));
    assert!(stdout.contains("openai-1") && stdout.contains("backup") && stdout.contains("fast"));
    assert!(stdout.contains("2 combinations"));
    assert!(!stdout.contains("abcdefghijklmnop"));
}

#[test]
fn check_reports_every_config_error_and_exits_non_zero() {
    let dir = temp_dir("check-bad");
    std::fs::write(
        dir.join("llmux.yaml"),
        "credentials:\n  - { platform: openai, value: \"${MISSING_KEY}\" }\nmodels:\n  - { vendor: openai, model: gpt-4o }\n",
    )
    .unwrap();
    let output = llmux(&dir, &["check"], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("MISSING_KEY"), "{stderr}");

    std::fs::write(
        dir.join("llmux.yaml"),
        "credentials:\n  - { platform: openai, value: a, name: x }\n  - { platform: openai, value: b, name: x }\n  - { platform: ollama, value: c, base_url: \"ftp://nope\" }\nmodels:\n  - { vendor: anthropic, model: claude-sonnet-4-5 }\n  - { vendor: openai, model: gpt-4o }\n  - { vendor: openai, model: gpt-4o }\n",
    )
    .unwrap();
    let output = llmux(&dir, &["check"], &[]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    for fragment in ["anthropic", "duplicate", "base_url"] {
        assert!(
            stderr.to_lowercase().contains(fragment),
            "{fragment} missing from:\n{stderr}"
        );
    }
}

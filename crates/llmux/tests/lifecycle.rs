//! The process as operators drive it: graceful shutdown on SIGTERM, hot reload on file change
//! and SIGHUP, and a broken config that never replaces a working one.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]
#![allow(
    clippy::disallowed_methods,
    reason = "tests spawn their own peers and load on the test runtime, which ends with the test: nothing to drain"
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use llmux_mock::MockOptions;
use serde_json::json;

fn config_with_alias(mock: &llmux_mock::MockUpstream, alias: &str) -> String {
    format!(
        "credentials:\n{}models:\n  - {{ vendor: openai, model: gpt-4o-mini, name: {alias} }}\nrouting: {{ unknown_model: reject }}\n",
        credentials(mock, "openai", &[SECRET])
    )
}

#[tokio::test]
async fn sigterm_lets_an_open_stream_finish_then_exits_zero() {
    let mock = mock_with(MockOptions {
        chunks: 10,
        chunk_delay: Duration::from_millis(100),
        ..MockOptions::default()
    })
    .await;
    let dir = temp_dir("shutdown");
    std::fs::write(dir.join("llmux.yaml"), basic_config(&mock)).unwrap();
    let mut gateway = Binary::serve(&dir, &[], &[]);
    let client = reqwest::Client::new();
    let mut request = chat("fast", "one two three four five six seven eight nine ten");
    request["stream"] = json!(true);
    let mut response = client
        .post(format!("{}/v1/chat/completions", gateway.url))
        .json(&request)
        .send()
        .await
        .unwrap();
    let mut body = String::from_utf8(response.chunk().await.unwrap().unwrap().to_vec()).unwrap();

    gateway.signal("TERM");

    while let Some(chunk) = response.chunk().await.unwrap() {
        body.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(
        body.ends_with("data: [DONE]\n\n"),
        "the stream finished: {body}"
    );
    let status = gateway.wait_exit(Duration::from_secs(10)).await;
    assert_eq!(status.code(), Some(0));
}

#[tokio::test]
async fn a_changed_config_file_is_picked_up_and_a_broken_one_is_rejected() {
    let mock = mock().await;
    let dir = temp_dir("reload");
    let file = dir.join("llmux.yaml");
    std::fs::write(&file, config_with_alias(&mock, "old-name")).unwrap();
    let gateway = Binary::serve(&dir, &[], &[]);
    let client = reqwest::Client::new();
    let post = |model: &'static str| {
        let client = client.clone();
        let url = format!("{}/v1/chat/completions", gateway.url);
        async move {
            client
                .post(url)
                .json(&chat(model, "x"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(post("old-name").await, 200);
    assert_eq!(post("new-name").await, 400);

    std::fs::write(&file, config_with_alias(&mock, "new-name")).unwrap();
    eventually(Duration::from_secs(10), || async {
        (post("new-name").await == 200)
            .then_some(())
            .ok_or_else(|| format!("reload not seen; logs:\n{}", gateway.logs()))
    })
    .await;
    assert_eq!(post("old-name").await, 400);

    std::fs::write(&file, "credentials: [ this is not valid").unwrap();
    eventually(Duration::from_secs(10), || async {
        let logs = gateway.logs();
        logs.contains("reload rejected")
            .then_some(())
            .ok_or_else(|| format!("broken config not noticed; logs:\n{logs}"))
    })
    .await;
    assert_eq!(
        post("new-name").await,
        200,
        "the previous configuration keeps serving"
    );
}

#[tokio::test]
async fn sighup_reloads_and_reloading_under_load_fails_no_request() {
    let mock = mock().await;
    let dir = temp_dir("sighup");
    let file = dir.join("llmux.yaml");
    std::fs::write(&file, config_with_alias(&mock, "steady")).unwrap();
    let gateway = Binary::serve(&dir, &[], &[]);
    let url = format!("{}/v1/chat/completions", gateway.url);
    let failures = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (url, failures, done, stop) =
            (url.clone(), failures.clone(), done.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !stop.load(Ordering::Relaxed) {
                let status = client
                    .post(&url)
                    .json(&chat("steady", "x"))
                    .send()
                    .await
                    .map(|r| r.status().as_u16());
                if !matches!(status, Ok(200)) {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    // Reload repeatedly while the load runs: by file change and by SIGHUP, each time waiting
    // until the new configuration serves before the next change.
    let client = reqwest::Client::new();
    for i in 0..5 {
        let extra = format!(
            "{}  - {{ vendor: openai, model: gpt-4o, name: extra-{i} }}\n",
            config_with_alias(&mock, "steady").replace("routing: { unknown_model: reject }\n", "")
        );
        std::fs::write(
            &file,
            format!("{extra}routing: {{ unknown_model: reject }}\n"),
        )
        .unwrap();
        gateway.signal("HUP");
        eventually(Duration::from_secs(10), || async {
            let status = client
                .post(&url)
                .json(&chat(&format!("extra-{i}"), "x"))
                .send()
                .await
                .unwrap()
                .status();
            (status == 200)
                .then_some(())
                .ok_or_else(|| format!("reload {i} not seen; logs:\n{}", gateway.logs()))
        })
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    for task in load {
        task.await.unwrap();
    }
    assert!(done.load(Ordering::Relaxed) > 20);
    assert_eq!(
        failures.load(Ordering::Relaxed),
        0,
        "logs:\n{}",
        gateway.logs()
    );
    assert!(
        gateway.logs().contains("SIGHUP"),
        "SIGHUP triggered a reload"
    );
    let status = client
        .post(&url)
        .json(&chat("extra-4", "x"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
}

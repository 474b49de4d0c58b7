//! The dashboard at `/ui` in a real headless Chromium (driven by playwright-core): it logs in
//! with the master key, sees the traffic this test sent, filters the request log, opens a
//! request's attempt timeline, and creates and revokes a key. `scripts/test` installs the
//! browser and exports `LLMUX_TEST_CHROMIUM` / `LLMUX_TEST_PLAYWRIGHT`; without them the browser
//! test says why and passes. Screenshots go to `target/test-artifacts/dashboard/`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use std::time::Duration;

use common::*;
use llmux_mock::{FaultRule, MockUpstream};
use serde_json::{Value, json};

const FIRST: &str = "sk-ui-first-0123456789abcdef";
const SECOND: &str = "sk-ui-second-0123456789abcdef";
/// A credential whose vendor refuses connections (the grafana test opens its breaker).
const DEAD: &str = "sk-ui-dead-0123456789abcdef";

fn config(mock: &MockUpstream, dir: &std::path::Path) -> String {
    format!(
        "credentials:
  - {{ platform: openai, name: first, value: {FIRST}, base_url: \"{url}/v1\", limits: {{ rpm: 600 }} }}
  - {{ platform: openai, name: second, value: {SECOND}, base_url: \"{url}/v1\" }}
  - {{ platform: spare, name: dead, value: {DEAD}, base_url: \"http://127.0.0.1:1/v1\" }}
models:
  - {{ vendor: openai, model: gpt-4o-mini, name: fast }}
  - {{ vendor: openai, model: gpt-4o, name: smart }}
  - {{ vendor: spare, model: gpt-4o-mini, name: unreachable }}
auth: {{ master_key: {MASTER}, database: \"sqlite://{keys}\" }}
log: {{ database: \"sqlite://{log}\" }}
",
        url = mock.url(),
        keys = dir.join("keys.db").display(),
        log = dir.join("log.db").display(),
    )
}

async fn admin(
    gateway: &TestGateway,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = gateway
        .client
        .request(method, format!("{}{path}", gateway.url))
        .bearer_auth(MASTER);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A gateway with a virtual key `team-ui` and traffic through it: `ok` answered requests to
/// `fast`, one to `smart`, and one that failed with 502 after both credentials answered 500.
/// Returns the gateway, the key's id, and the failed request's id once all are in the log.
async fn gateway_with_traffic(
    mock: &MockUpstream,
    dir: &std::path::Path,
    ok: usize,
) -> (TestGateway, String, String) {
    let gateway = TestGateway::start(&config(mock, dir)).await;
    let (status, created) = admin(
        &gateway,
        reqwest::Method::POST,
        "/admin/keys",
        Some(json!({"name": "team-ui"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let key_id = created["id"].as_str().unwrap().to_owned();
    let send = |model: &'static str| {
        gateway
            .client
            .post(format!("{}/v1/chat/completions", gateway.url))
            .bearer_auth(&key)
            .header("user-agent", "dashboard-test <script>alert(1)</script>")
            .json(&chat(model, "hello"))
            .send()
    };
    for _ in 0..ok {
        let response = send("fast").await.unwrap();
        assert_eq!(response.status(), 200);
        let _ = response.bytes().await;
    }
    let response = send("smart").await.unwrap();
    assert_eq!(response.status(), 200);
    let _ = response.bytes().await;
    for credential in [FIRST, SECOND] {
        mock.add_fault(FaultRule {
            credential: Some(credential.into()),
            status: Some(500),
            times: Some(2),
            ..FaultRule::default()
        });
    }
    let failed = send("fast").await.unwrap();
    assert!(failed.status().is_server_error(), "{}", failed.status());
    let failed_id = failed.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = failed.bytes().await;

    eventually(Duration::from_secs(10), || async {
        let (status, page) = gateway.admin("/admin/requests?limit=200").await;
        assert_eq!(status, 200, "{page}");
        if page["records"].as_array().unwrap().len() >= ok + 2 {
            Ok(())
        } else {
            Err(format!("the log never got all requests: {page}"))
        }
    })
    .await;
    (gateway, key_id, failed_id)
}

#[tokio::test]
async fn traffic_endpoint_counts_the_last_hour_by_vendor_model_and_key() {
    let mock = mock().await;
    let dir = temp_dir("dashboard");
    let (gateway, _, _) = gateway_with_traffic(&mock, &dir, 5).await;
    let (status, report) = admin(&gateway, reqwest::Method::GET, "/admin/traffic", None).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["minutes"].as_array().unwrap().len(), 60);
    let hour = &report["hour"];
    assert_eq!(hour["requests"], 7, "{report}");
    assert_eq!(hour["errors"], 1, "{report}");
    assert!(hour["input_tokens"].as_u64().unwrap() > 0, "{report}");
    assert!(hour["cost_usd"].as_f64().unwrap() > 0.0, "{report}");
    assert!(hour["latency_p95_ms"].as_f64().is_some(), "{report}");
    assert!(hour["ttfb_p50_ms"].as_f64().is_some(), "{report}");
    let by = |dim: &str, name: &str| -> u64 {
        report["by"][dim]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["name"] == name)
            .map_or(0, |n| n["requests"].as_u64().unwrap())
    };
    assert_eq!(by("model", "fast"), 6, "{report}");
    assert_eq!(by("model", "smart"), 1, "{report}");
    assert_eq!(by("key", "team-ui"), 7, "{report}");
    assert_eq!(by("vendor", "openai"), 7, "{report}");

    // The data APIs need the master key; the page itself is open.
    let refused = gateway.get("/admin/traffic").await;
    assert_eq!(refused.status(), 401);
    let page = gateway.get("/ui").await;
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("script-src 'self'")
    );
    assert!(page.text().await.unwrap().contains("/ui/app.js"));
    assert_eq!(gateway.get("/ui/app.js").await.status(), 200);
    assert_eq!(gateway.get("/ui/nothing.js").await.status(), 404);
}

#[tokio::test]
async fn config_endpoint_masks_every_secret() {
    let mock = mock().await;
    let dir = temp_dir("dashboard");
    let gateway = TestGateway::start(&config(&mock, &dir)).await;
    let refused = gateway.get("/admin/config").await;
    assert_eq!(refused.status(), 401);
    let response = gateway
        .client
        .get(format!("{}/admin/config", gateway.url))
        .bearer_auth(MASTER)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for secret in [MASTER, FIRST, SECOND, DEAD, "0123456789abcdef"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    let config: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(config["credentials"][0]["name"], "first");
    assert_eq!(config["credentials"][0]["value"], "***");
    assert_eq!(config["credentials"][0]["limits"]["rpm"], 600);
    assert_eq!(config["models"][1]["name"], "smart");
    assert!(config["text"].as_str().unwrap().contains("gpt-4o-mini"));
}

#[tokio::test]
async fn dashboard_in_a_headless_browser() {
    let (Ok(chromium), Ok(playwright)) = (
        std::env::var("LLMUX_TEST_CHROMIUM"),
        std::env::var("LLMUX_TEST_PLAYWRIGHT"),
    ) else {
        eprintln!(
            "SKIPPED dashboard_in_a_headless_browser: LLMUX_TEST_CHROMIUM and LLMUX_TEST_PLAYWRIGHT \
             are not both set (run scripts/test, which installs Debian's chromium and playwright-core)"
        );
        return;
    };
    let mock = mock().await;
    let dir = temp_dir("dashboard");
    let (gateway, key_id, failed_id) = gateway_with_traffic(&mock, &dir, 5).await;
    let artifacts = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/test-artifacts/dashboard");
    std::fs::create_dir_all(&artifacts).unwrap();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/dashboard.mjs");
    let output = tokio::process::Command::new("node")
        .arg(&script)
        .env("LLMUX_URL", &gateway.url)
        .env("LLMUX_MASTER", MASTER)
        .env("LLMUX_SECRETS", format!("{FIRST},{SECOND}"))
        .env("LLMUX_KEY_ID", &key_id)
        .env("LLMUX_FAILED_ID", &failed_id)
        .env("LLMUX_REQUESTS", "7")
        .env("LLMUX_TEST_CHROMIUM", &chromium)
        .env("LLMUX_TEST_PLAYWRIGHT", &playwright)
        .env("LLMUX_ARTIFACTS", &artifacts)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .expect("the browser script finishes within 2 minutes")
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "browser script failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    let result: Value = stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no result line:\n{stdout}\n{stderr}"));

    // What the browser did is real: the key it created exists and is revoked.
    let created = result["created_key_id"].as_str().unwrap();
    let (status, key) = admin(
        &gateway,
        reqwest::Method::GET,
        &format!("/admin/keys/{created}"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{key}");
    assert_eq!(key["name"], "made-in-browser");
    assert!(!key["revoked_at"].is_null(), "{key}");
    assert_eq!(key["budget_daily_usd"], 2.5, "{key}");
    for shot in [
        "traffic", "vendors", "requests", "request", "keys", "config",
    ] {
        assert!(
            artifacts.join(format!("{shot}.png")).is_file(),
            "no screenshot {shot}"
        );
    }
}

/// The metric names `/metrics` exports: every sample's name, and for each declared family
/// (`# TYPE`, shown even before its first sample) the names its samples take.
fn exported_names(text: &str) -> std::collections::BTreeSet<String> {
    let mut names = std::collections::BTreeSet::new();
    for line in text.lines() {
        if let Some(declared) = line.strip_prefix("# TYPE ") {
            let mut parts = declared.split_whitespace();
            let (Some(name), Some(kind)) = (parts.next(), parts.next()) else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            for suffix in suffixes {
                names.insert(format!("{name}{suffix}"));
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

/// Every `llmux_…` identifier in a PromQL expression.
fn named_series(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expr;
    while let Some(at) = rest.find("llmux_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    names
}

#[tokio::test]
async fn grafana_dashboard_queries_name_series_llmux_exports() {
    let mock = mock_with(llmux_mock::MockOptions {
        chunks: 40,
        chunk_delay: Duration::from_millis(25),
        ..llmux_mock::MockOptions::default()
    })
    .await;
    let dir = temp_dir("grafana");
    let (gateway, _, _) = gateway_with_traffic(&mock, &dir, 3).await;
    // The reliability series appear once used: a vendor's 429 (a cooldown), and a vendor that
    // refuses connections until its breaker opens.
    mock.add_fault(FaultRule {
        status: Some(429),
        retry_after: Some("1".into()),
        times: Some(1),
        ..FaultRule::default()
    });
    let _ = gateway
        .client
        .post(format!("{}/v1/chat/completions", gateway.url))
        .bearer_auth(MASTER)
        .json(&chat("smart", "hello"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await;
    for _ in 0..6 {
        let response = gateway
            .client
            .post(format!("{}/v1/chat/completions", gateway.url))
            .bearer_auth(MASTER)
            .json(&chat("unreachable", "hello"))
            .send()
            .await
            .unwrap();
        assert!(!response.status().is_success());
        let _ = response.bytes().await;
    }
    // A stream the client leaves after its first chunk.
    let mut body = chat("fast", "stream");
    body["stream"] = json!(true);
    let mut stream = gateway
        .client
        .post(format!("{}/v1/chat/completions", gateway.url))
        .bearer_auth(MASTER)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(stream.chunk().await.unwrap().is_some());
    drop(stream);

    let metrics = eventually(Duration::from_secs(10), || async {
        let response = gateway.get_as("/metrics", MASTER).await;
        assert_eq!(response.status(), 200);
        let metrics = response.text().await.unwrap();
        if metrics.contains("llmux_client_cancellations_total") {
            Ok(metrics)
        } else {
            Err(format!("no cancellation counted:\n{metrics}"))
        }
    })
    .await;
    let exported = exported_names(&metrics);

    // The new series carry samples after the traffic, labelled by vendor and configured model.
    for sample in [
        "llmux_cost_usd_total{vendor=\"openai\",model=\"fast\"}",
        "llmux_ttfb_seconds_count{vendor=\"openai\",model=\"fast\"}",
        "llmux_tokens_total{vendor=\"openai\",model=\"fast\",direction=\"input\"}",
    ] {
        assert!(metrics.contains(sample), "{sample} missing:\n{metrics}");
    }

    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/grafana/llmux.json");
    let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            let expr = target["expr"].as_str().unwrap();
            let names = named_series(expr);
            assert!(!names.is_empty(), "query names no llmux series: {expr}");
            for name in names {
                assert!(
                    exported.contains(&name),
                    "panel '{}' queries {name}, which llmux does not export",
                    panel["title"]
                );
            }
            queries += 1;
        }
    }
    assert!(queries >= 10, "only {queries} queries");
}

//! Client keys, limits and budgets through the real server: SQLite by default, PostgreSQL and a
//! shared Redis when `LLMUX_TEST_PG_URL` / `LLMUX_TEST_REDIS_URL` are set (scripts/test sets them).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use std::time::Duration;

use common::*;
use llmux_mock::{MockOptions, MockUpstream};
use serde_json::{Value, json};

fn config(mock: &MockUpstream, database: &str, extra: &str) -> String {
    governed(
        mock,
        &[
            ("openai", "sk-vendor-0123456789abcd"),
            ("anthropic", "sk-ant-vendor-0123456789"),
        ],
        &[
            ("openai", "gpt-4o-mini", "fast"),
            ("openai", "gpt-4o", "other"),
            ("anthropic", "claude-sonnet-4-5", "claude"),
        ],
        database,
        extra,
    )
}

/// A Messages request presenting `key` as Anthropic clients do, in `x-api-key`.
async fn messages_as(gateway: &TestGateway, key: &str, body: &Value) -> reqwest::Response {
    gateway
        .client
        .post(format!("{}/v1/messages", gateway.url))
        .header("x-api-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

fn sqlite(name: &str) -> String {
    format!("sqlite://{}", temp_dir(name).join("keys.db").display())
}

/// The status of a small chat request to `fast` presenting `key`.
async fn status_as(gateway: &TestGateway, key: Option<&str>) -> u16 {
    gateway
        .post_as("/v1/chat/completions", key, &chat("fast", "x"))
        .await
        .status()
        .as_u16()
}

async fn key_lifecycle(database: &str) {
    let mock = mock().await;
    let gateway = TestGateway::start(&config(&mock, database, "")).await;
    // Without a key: 401 in each API's own envelope; /health stays open.
    let response = gateway
        .post_as("/v1/chat/completions", None, &chat("fast", "x"))
        .await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["type"],
        "authentication_error"
    );
    let messages = json!({"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]});
    let response = gateway.post_as("/v1/messages", None, &messages).await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["type"].as_str(), body["error"]["type"].as_str()),
        (Some("error"), Some("authentication_error"))
    );
    assert_eq!(gateway.get("/health").await.status(), 200);
    assert_eq!(
        gateway.get("/metrics").await.status(),
        401,
        "/metrics needs the master key"
    );
    assert_eq!(status_as(&gateway, Some(MASTER)).await, 200);

    let (id, key) = create_key(
        &gateway,
        json!({"name": "ci", "allowed_models": ["fast", "claude"]}),
    )
    .await;
    assert!(key.starts_with(&format!("llmux-{id}-")));
    let (status, list) = gateway.admin("/admin/keys").await;
    assert_eq!(status, 200, "{list}");
    assert!(
        !list.to_string().contains(&key[key.len() - 20..]),
        "the secret is shown once only"
    );
    assert_eq!(status_as(&gateway, Some(&key)).await, 200);
    // Anthropic clients send x-api-key.
    let anthropic = messages_as(&gateway, &key, &messages).await;
    assert_eq!(anthropic.status(), 200);
    // Allowed models only.
    let response = gateway
        .post_as("/v1/chat/completions", Some(&key), &chat("other", "x"))
        .await;
    assert_eq!(response.status(), 403);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("may not use model 'other'")
    );
    // Revocation takes effect at once.
    let revoked = gateway
        .send_as(
            reqwest::Method::DELETE,
            &format!("/admin/keys/{id}"),
            Some(MASTER),
            None,
        )
        .await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(status_as(&gateway, Some(&key)).await, 401);
    // An expired key is refused.
    let (_, expired) = create_key(&gateway, json!({"expires_at": 1_000})).await;
    assert_eq!(status_as(&gateway, Some(&expired)).await, 401);
}

#[tokio::test]
async fn key_lifecycle_on_sqlite() {
    key_lifecycle(&sqlite("lifecycle")).await;
}

#[tokio::test]
async fn key_lifecycle_on_postgres() {
    let Ok(url) = std::env::var("LLMUX_TEST_PG_URL") else {
        eprintln!("skipped: LLMUX_TEST_PG_URL is not set");
        return;
    };
    key_lifecycle(&url).await;
}

#[tokio::test]
async fn auth_bypass_attempts_are_all_401() {
    let mock = mock().await;
    let gateway = TestGateway::start(&config(&mock, &sqlite("bypass"), "")).await;
    let (id, key) = create_key(&gateway, json!({})).await;
    let wrong_secret = format!("llmux-{id}-{}", "0".repeat(64));
    for presented in [
        "".to_owned(),
        "Bearer".to_owned(),
        "garbage".to_owned(),
        "sk-proj-abcdefghijklmnop".to_owned(),
        wrong_secret,
        key.replace("llmux-", "llmx-"),
        format!("{key}x"),
        MASTER.to_uppercase(),
    ] {
        let response = gateway
            .client
            .post(format!("{}/v1/chat/completions", gateway.url))
            .header("authorization", format!("Bearer {presented}"))
            .json(&chat("fast", "x"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401, "{presented:?}");
        let text = response.text().await.unwrap();
        assert!(
            !text.contains(&key[key.len() - 20..]),
            "no secret in the answer"
        );
    }
    assert!(mock.calls().is_empty(), "nothing reached the vendor");
    let admin = gateway
        .client
        .get(format!("{}/admin/keys", gateway.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(admin.status(), 401, "a virtual key is not the master key");
}

#[tokio::test]
async fn rpm_limit_is_a_429_with_retry_after_and_rate_limit_headers() {
    let mock = mock().await;
    let gateway = TestGateway::start(&config(&mock, &sqlite("rpm"), "")).await;
    let (_, key) = create_key(&gateway, json!({"rpm": 3})).await;
    for _ in 0..3 {
        assert_eq!(status_as(&gateway, Some(&key)).await, 200);
    }
    let limited = gateway
        .post_as("/v1/chat/completions", Some(&key), &chat("fast", "x"))
        .await;
    assert_eq!(limited.status(), 429);
    let headers = limited.headers().clone();
    assert!(
        headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(headers["x-ratelimit-limit"], "3");
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    assert!(headers.contains_key("x-ratelimit-reset"));
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    // The Messages API answers in its own envelope.
    let messages = json!({"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]});
    let limited = messages_as(&gateway, &key, &messages).await;
    assert_eq!(limited.status(), 429);
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(mock.calls().len(), 3);
}

#[tokio::test]
async fn parallel_limit_counts_open_streams() {
    let mock = mock_with(MockOptions {
        chunks: 20,
        chunk_delay: Duration::from_millis(50),
        ..MockOptions::default()
    })
    .await;
    let gateway = TestGateway::start(&config(&mock, &sqlite("parallel"), "")).await;
    let (_, key) = create_key(&gateway, json!({"max_parallel": 1})).await;
    let mut streaming = chat("fast", "a long streamed answer");
    streaming["stream"] = json!(true);
    let mut open = gateway
        .post_as("/v1/chat/completions", Some(&key), &streaming)
        .await;
    assert_eq!(open.status(), 200);
    assert!(open.chunk().await.unwrap().is_some());
    let second = gateway
        .post_as("/v1/chat/completions", Some(&key), &chat("fast", "x"))
        .await;
    assert_eq!(second.status(), 429);
    assert_eq!(
        second.json::<Value>().await.unwrap()["error"]["code"],
        "parallel_limit_exceeded"
    );
    while open.chunk().await.unwrap().is_some() {}
    // The slot is released when the stream ends.
    eventually(Duration::from_secs(5), || async {
        (status_as(&gateway, Some(&key)).await == 200)
            .then_some(())
            .ok_or("the slot was never released")
    })
    .await;
}

/// A dollar per token makes any request exceed a $0.50 budget.
const EXPENSIVE: &str = "pricing:\n  gpt-4o-mini: { input: 1000000, output: 1000000 }\n  claude-sonnet-4-5: { input: 1000000, output: 1000000 }\n";

async fn spent(gateway: &TestGateway, id: &str) -> Value {
    eventually(Duration::from_secs(5), || async {
        let usage = key_usage(gateway, id).await;
        if usage["spend_usd"]["total"].as_f64().unwrap_or(0.0) > 0.0 {
            Ok(usage)
        } else {
            Err(format!("usage never recorded: {usage}"))
        }
    })
    .await
}

#[tokio::test]
async fn budgets_hold_on_every_ingress_api_including_streams() {
    let mock = mock().await;
    let gateway = TestGateway::start(&config(&mock, &sqlite("budgets"), EXPENSIVE)).await;
    let cases: [(&str, Value); 3] = [
        (
            "/v1/chat/completions",
            json!({"model": "fast", "stream": true, "messages": [{"role": "user", "content": "spend"}]}),
        ),
        (
            "/v1/responses",
            json!({"model": "fast", "stream": true, "input": "spend"}),
        ),
        (
            "/v1/messages",
            json!({"model": "claude", "max_tokens": 50, "stream": true, "messages": [{"role": "user", "content": "spend"}]}),
        ),
    ];
    for (path, body) in cases {
        let (id, key) = create_key(&gateway, json!({"budget_total_usd": 0.5})).await;
        let first = gateway.post_as(path, Some(&key), &body).await;
        assert_eq!(first.status(), 200, "{path}");
        let text = first.text().await.unwrap();
        assert!(!text.is_empty());
        let usage = spent(&gateway, &id).await;
        assert_eq!(usage["days"][0]["requests"], 1, "{path}: {usage}");
        assert!(
            usage["days"][0]["output_tokens"].as_u64().unwrap() > 0,
            "{path}: streams are not logged at $0: {usage}"
        );
        let refused = gateway.post_as(path, Some(&key), &body).await;
        assert_eq!(refused.status(), 429, "{path}");
        assert!(refused.text().await.unwrap().contains("budget"), "{path}");
    }
}

async fn start_redis(port: u16) -> std::process::Child {
    let child = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server runs");
    eventually(Duration::from_secs(10), || async {
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("redis did not start: {e}"))
    })
    .await;
    child
}

#[tokio::test]
async fn two_replicas_sharing_redis_share_limits_and_revocations() {
    let (Ok(pg), Ok(redis)) = (
        std::env::var("LLMUX_TEST_PG_URL"),
        std::env::var("LLMUX_TEST_REDIS_URL"),
    ) else {
        eprintln!("skipped: LLMUX_TEST_PG_URL and LLMUX_TEST_REDIS_URL are needed");
        return;
    };
    let mock = mock().await;
    let config = config(&mock, &pg, &format!("redis: \"{redis}\"\n"));
    let a = TestGateway::start(&config).await;
    let b = TestGateway::start(&config).await;
    let (id, key) = create_key(&a, json!({"rpm": 60})).await;
    let mut ok = 0;
    for i in 0..100 {
        let gateway = if i % 2 == 0 { &a } else { &b };
        if status_as(gateway, Some(&key)).await == 200 {
            ok += 1;
        }
    }
    assert_eq!(ok, 60, "60 RPM across both replicas, not 120");

    let (id2, key2) = create_key(&a, json!({})).await;
    assert_eq!(status_as(&b, Some(&key2)).await, 200);
    let revoked = a
        .send_as(
            reqwest::Method::DELETE,
            &format!("/admin/keys/{id2}"),
            Some(MASTER),
            None,
        )
        .await;
    assert_eq!(revoked.status(), 200);
    eventually(Duration::from_secs(1), || async {
        (status_as(&b, Some(&key2)).await == 401)
            .then_some(())
            .ok_or("replica b still accepts a key revoked on a")
    })
    .await;
    let _ = id;
}

async fn redis_outage(policy: &str, expected_during: u16) {
    let Ok(pg) = std::env::var("LLMUX_TEST_PG_URL") else {
        eprintln!("skipped: LLMUX_TEST_PG_URL is not set");
        return;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut redis = start_redis(port).await;
    let mock = mock().await;
    let config = config(
        &mock,
        &pg,
        &format!("redis: \"redis://127.0.0.1:{port}\"\n"),
    )
    .replace(
        &format!("auth: {{ master_key: {MASTER},"),
        &format!("auth: {{ redis_failure: {policy}, master_key: {MASTER},"),
    );
    let gateway = TestGateway::start(&config).await;
    let (_, key) = create_key(&gateway, json!({"rpm": 1})).await;
    let body = chat("fast", "x");
    let first = gateway
        .post_as("/v1/chat/completions", Some(&key), &body)
        .await;
    assert_eq!(first.status(), 200);
    let second = gateway
        .post_as("/v1/chat/completions", Some(&key), &body)
        .await;
    assert_eq!(second.status(), 429, "the limit holds while Redis is up");

    redis.kill().unwrap();
    redis.wait().unwrap();
    // The key's one request per minute is spent, so until the gateway notices the outage (its
    // key cache may still answer) the limit refuses with 429; once it has, the policy decides:
    // closed refuses with 503, open serves without limits.
    let during = eventually(Duration::from_secs(10), || async {
        let during = status_as(&gateway, Some(&key)).await;
        (during != 429)
            .then_some(during)
            .ok_or_else(|| format!("policy {policy}: the outage was never noticed"))
    })
    .await;
    assert_eq!(during, expected_during, "policy {policy}");

    let mut redis = start_redis(port).await;
    eventually(Duration::from_secs(15), || async {
        (status_as(&gateway, Some(&key)).await == 200)
            .then_some(())
            .ok_or("no recovery after Redis came back")
    })
    .await;
    redis.kill().unwrap();
    redis.wait().unwrap();
}

#[tokio::test]
async fn redis_down_fails_open_when_configured_then_recovers() {
    redis_outage("open", 200).await;
}

#[tokio::test]
async fn redis_down_fails_closed_when_configured_then_recovers() {
    redis_outage("closed", 503).await;
}

#[tokio::test]
async fn vendor_health_needs_the_master_key_once_auth_is_on_and_health_stays_open() {
    let mock = mock().await;
    let gateway = TestGateway::start(&config(&mock, &sqlite("health-vendors"), "")).await;
    let open = gateway.get("/health/vendors").await;
    assert_eq!(
        open.status(),
        401,
        "credential names and breaker states are not public"
    );
    let (_, key) = create_key(&gateway, json!({})).await;
    let with_key = gateway.get_as("/health/vendors", &key).await;
    assert_eq!(with_key.status(), 401, "a virtual key is not an operator");
    let master = gateway.get_as("/health/vendors", MASTER).await;
    assert_eq!(master.status(), 200);
    assert_eq!(gateway.get("/health").await.status(), 200);
}

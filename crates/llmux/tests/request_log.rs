//! The request log: one record per API request, written off the request path when the response
//! body ends, and read back through `/admin/requests` (master key).
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

fn logged(mock: &MockUpstream, dir: &std::path::Path, bodies: &str) -> String {
    format!(
        "credentials:
  - {{ platform: openai, name: first, value: sk-log-first-0123456789, base_url: \"{url}/v1\" }}
  - {{ platform: openai, name: second, value: sk-log-second-0123456789, base_url: \"{url}/v1\" }}
models:
  - {{ vendor: openai, model: gpt-4o-mini, name: fast }}
auth: {{ master_key: {MASTER}, database: \"sqlite://{keys}\" }}
log: {{ database: \"sqlite://{log}\", bodies: {bodies} }}
",
        url = mock.url(),
        keys = dir.join("keys.db").display(),
        log = dir.join("log.db").display(),
    )
}

/// Waits until the log holds `n` records (the writer batches every 200 ms).
async fn records(gateway: &TestGateway, query: &str, n: usize) -> Vec<Value> {
    eventually(Duration::from_secs(10), || async {
        let (status, page) = gateway.admin(&format!("/admin/requests{query}")).await;
        assert_eq!(status, 200, "{page}");
        let records = page["records"].as_array().unwrap().clone();
        if records.len() >= n {
            Ok(records)
        } else {
            Err(format!(
                "the log has {} of {n} records: {page}",
                records.len()
            ))
        }
    })
    .await
}

#[tokio::test]
async fn every_request_is_recorded_with_its_attempts_usage_and_key() {
    let mock = mock().await;
    let dir = temp_dir("request-log");
    let gateway = TestGateway::start(&logged(&mock, &dir, "errors")).await;
    let (key_id, key) = create_key(&gateway, json!({"name": "team-a"})).await;

    // 1. A whole answer after two failed attempts (each credential answers 500 once).
    mock.add_fault(FaultRule {
        credential: Some("sk-log-first-0123456789".into()),
        status: Some(500),
        times: Some(1),
        ..FaultRule::default()
    });
    mock.add_fault(FaultRule {
        credential: Some("sk-log-second-0123456789".into()),
        status: Some(500),
        times: Some(1),
        ..FaultRule::default()
    });
    let whole = gateway
        .post_as(
            "/v1/chat/completions",
            Some(&key),
            &chat("fast", "count me"),
        )
        .await;
    assert_eq!(whole.status(), 200);
    let whole_id = whole.headers()["x-request-id"].to_str().unwrap().to_owned();
    let _ = whole.bytes().await;

    // 2. A stream, read to its end.
    let mut body = chat("fast", "stream me");
    body["stream"] = json!(true);
    let stream = gateway
        .post_as("/v1/chat/completions", Some(&key), &body)
        .await;
    let stream_id = stream.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let _ = stream.text().await.unwrap();

    // 3. A client error, with its body kept (`log.bodies: errors`).
    let bad = gateway
        .post_as(
            "/v1/chat/completions",
            Some(&key),
            &json!({"model": "fast", "messages": "not a list"}),
        )
        .await;
    assert_eq!(bad.status(), 400);
    let bad_id = bad.headers()["x-request-id"].to_str().unwrap().to_owned();

    let all = records(&gateway, "", 3).await;
    // Newest first: by start time, and among requests that started in the same millisecond
    // by request id (the page order), so only records of different milliseconds must follow
    // the order the requests were sent in.
    let sent_newest_first = [&bad_id, &stream_id, &whole_id];
    let rank = |record: &Value| {
        let id = record["request_id"].as_str().unwrap();
        sent_newest_first.iter().position(|sent| *sent == id)
    };
    let mut ranks: Vec<_> = all.iter().map(rank).collect();
    ranks.sort_unstable();
    assert_eq!(
        ranks,
        [Some(0), Some(1), Some(2)],
        "the three requests: {all:?}"
    );
    for pair in all.windows(2) {
        let (newer, older) = (&pair[0], &pair[1]);
        let time = |record: &Value| record["time_ms"].as_i64().expect("time_ms");
        let (t_newer, t_older) = (time(newer), time(older));
        assert!(t_newer >= t_older, "newest first: {all:?}");
        if t_newer > t_older {
            assert!(rank(newer) < rank(older), "newest first: {all:?}");
        }
    }

    let (status, whole) = gateway.admin(&format!("/admin/requests/{whole_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(whole["ingress"], "chat");
    assert_eq!(whole["requested_model"], "fast");
    assert_eq!(whole["status"], 200);
    assert_eq!(whole["vendor"], "openai");
    assert_eq!(whole["upstream_model"], "gpt-4o-mini");
    assert_eq!(whole["key_id"], key_id.as_str());
    assert_eq!(whole["key_name"], "team-a");
    assert_eq!(whole["stream"], false);
    let attempts = whole["attempts"].as_array().unwrap();
    assert_eq!(
        attempts.len(),
        3,
        "two failed attempts, then the answer: {whole}"
    );
    assert_eq!(attempts[0]["status"], 500);
    assert_eq!(attempts[0]["error"], "status_500");
    assert_eq!(attempts[1]["status"], 500);
    assert_eq!(attempts[2]["status"], 200);
    assert_ne!(
        attempts[0]["credential"], attempts[1]["credential"],
        "failover"
    );
    assert_eq!(whole["credential"], attempts[2]["credential"]);
    assert!(whole["input_tokens"].as_u64().unwrap() > 0, "{whole}");
    assert!(whole["output_tokens"].as_u64().unwrap() > 0, "{whole}");
    assert!(whole["cost_usd"].as_f64().unwrap() > 0.0, "{whole}");
    assert!(whole["ttfb_ms"].is_u64(), "{whole}");
    assert!(
        whole.get("request_body").is_none(),
        "bodies of successes are not kept"
    );

    let (_, stream) = gateway.admin(&format!("/admin/requests/{stream_id}")).await;
    assert_eq!(stream["stream"], true);
    assert!(
        stream["output_tokens"].as_u64().unwrap() > 0,
        "a stream's usage arrives at its end: {stream}"
    );

    let (_, bad) = gateway.admin(&format!("/admin/requests/{bad_id}")).await;
    assert_eq!(bad["status"], 400);
    assert_eq!(bad["error_kind"], "invalid_request");
    assert!(
        bad["request_body"].as_str().unwrap().contains("not a list"),
        "{bad}"
    );

    // Filters: by status class, and pages with a cursor.
    let errors = records(&gateway, "?status=4xx", 1).await;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["request_id"], bad_id.as_str());
    let (_, first) = gateway.admin("/admin/requests?limit=2").await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = gateway
        .admin(&format!("/admin/requests?limit=2&cursor={cursor}"))
        .await;
    assert_eq!(second["records"][0]["request_id"], whole_id.as_str());
    assert!(second["next_cursor"].is_null());

    // Only the master key reads the log.
    let refused = gateway
        .client
        .get(format!("{}/admin/requests", gateway.url))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
}

#[tokio::test]
async fn without_a_log_section_the_admin_api_says_so() {
    let mock = mock().await;
    let dir = temp_dir("no-request-log");
    let config = logged(&mock, &dir, "none").replace(
        &format!(
            "log: {{ database: \"sqlite://{}\", bodies: none }}\n",
            dir.join("log.db").display()
        ),
        "",
    );
    let gateway = TestGateway::start(&config).await;
    let (status, body) = gateway.admin("/admin/requests").await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("log:"));
}

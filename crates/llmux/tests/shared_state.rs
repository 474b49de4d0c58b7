//! Two `llmux serve` processes sharing one Redis share their breaker openings and cooldowns (a vendor key that
//! one replica found revoked or rate-limited gets no traffic from the other, which never saw it
//! fail) and their vendor quotas. Needs `LLMUX_TEST_REDIS_URL` (scripts/test sets it); client
//! keys, limits and budgets across replicas are in governance.rs.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use llmux_mock::FaultRule;
use serde_json::Value;

/// Two gateway processes with the same config.
fn two_replicas(name: &str, config: &str) -> (Binary, Binary) {
    let start = |replica: &str| {
        let dir = temp_dir(&format!("{name}-{replica}"));
        std::fs::write(dir.join("llmux.yaml"), config).unwrap();
        Binary::serve(&dir, &[], &[])
    };
    (start("a"), start("b"))
}

async fn post_chat(replica: &Binary) -> reqwest::StatusCode {
    reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", replica.url))
        .json(&chat("fast", "x"))
        .send()
        .await
        .unwrap()
        .status()
}

/// Each credential's (breaker state, cooling down?) as `/health/vendors` shows it.
async fn states(replica: &Binary) -> HashMap<String, (String, bool)> {
    let body: Value = reqwest::get(format!("{}/health/vendors", replica.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut out = HashMap::new();
    for scope in ["credentials", "combinations"] {
        for entry in body[scope].as_array().unwrap() {
            let name = format!("{scope}/{}", entry["credential"].as_str().unwrap());
            let state = entry["state"].as_str().unwrap().to_owned();
            let cooling = !entry["cooldown_remaining_ms"].is_null();
            out.insert(name, (state, cooling));
        }
    }
    out
}

#[tokio::test]
async fn a_key_refused_or_rate_limited_on_one_replica_gets_no_traffic_from_the_other() {
    let Ok(redis) = std::env::var("LLMUX_TEST_REDIS_URL") else {
        eprintln!("skipped: LLMUX_TEST_REDIS_URL is needed");
        return;
    };
    let mock = mock().await;
    mock.add_fault(FaultRule {
        credential: Some("sk-revoked".into()),
        status: Some(401),
        ..Default::default()
    });
    mock.add_fault(FaultRule {
        credential: Some("sk-limited".into()),
        status: Some(429),
        retry_after: Some("30".into()),
        ..Default::default()
    });
    let config = format!(
        "credentials:\n{}models:\n  - {{ vendor: openai, model: gpt-4o-mini, name: fast }}\n\
         reliability: {{ backoff_base_ms: 1, share_interval_ms: 100, breaker: {{ open_ms: 60000 }} }}\n\
         redis: \"{redis}\"\n",
        credentials(&mock, "openai", &["sk-good", "sk-revoked", "sk-limited"])
    );
    let (a, b) = two_replicas("breakers", &config);

    // Replica a meets both bad keys (each request fails over to the good one).
    let hit = |credential: &str| mock.calls().iter().any(|c| c.credential == credential);
    for _ in 0..200 {
        if hit("sk-revoked") && hit("sk-limited") {
            break;
        }
        // A vendor 401 is the client's answer (not retried); a 429 fails over.
        let status = post_chat(&a).await;
        assert!(status == 200 || status == 401, "{status}");
    }
    assert!(
        hit("sk-revoked") && hit("sk-limited"),
        "a never tried both bad keys"
    );

    // Replica b learns it within a few sync intervals, without any failure of its own.
    eventually(Duration::from_secs(2), || async {
        let seen = states(&b).await;
        let revoked_open = seen["credentials/openai-2"].0 == "open";
        let limited_cooling = seen["combinations/openai-3"].1;
        if revoked_open && limited_cooling {
            Ok(())
        } else {
            Err(format!("replica b does not show a's decisions: {seen:?}"))
        }
    })
    .await;
    mock.clear_calls();
    for _ in 0..40 {
        assert_eq!(post_chat(&b).await, 200);
    }
    let calls = mock.calls();
    assert_eq!(calls.len(), 40, "every request of b went out once");
    assert!(
        calls.iter().all(|c| c.credential == "sk-good"),
        "b sent traffic to a key a had taken out of rotation: {:?}",
        calls.iter().map(|c| &c.credential).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_vendor_quota_holds_across_replicas() {
    let Ok(redis) = std::env::var("LLMUX_TEST_REDIS_URL") else {
        eprintln!("skipped: LLMUX_TEST_REDIS_URL is needed");
        return;
    };
    let mock = mock().await;
    // A key of its own per run: the quota counters in Redis outlive the test by a minute.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let config = format!(
        "credentials:\n  - {{ platform: openai, value: sk-quota-{nanos}, base_url: \"{}/v1\", limits: {{ rpm: 5 }} }}\n\
         models:\n  - {{ vendor: openai, model: gpt-4o-mini, name: fast }}\n\
         redis: \"{redis}\"\n",
        mock.url()
    );
    let (a, b) = two_replicas("quota", &config);
    let mut ok = 0;
    for i in 0..12 {
        let replica = if i % 2 == 0 { &a } else { &b };
        let status = post_chat(replica).await;
        match status.as_u16() {
            200 => ok += 1,
            429 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(ok, 5, "5 RPM across both replicas, not 10");
    assert_eq!(
        mock.calls().len(),
        5,
        "the vendor saw only what its quota allows"
    );
}

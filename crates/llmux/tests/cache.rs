//! The response cache (`cache: { mode: exact }`): a repeated request is answered without a
//! vendor call on every ingress, whole or streamed (replayed with the live framing), across
//! ingresses, per virtual key, with `Cache-Control` bypasses, at no cost, and shared by two
//! gateway processes through Redis.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

/// One request of an ingress: path and body for `model` and `text`.
struct Ask {
    name: &'static str,
    path: fn(&str, bool) -> String,
    body: fn(&str, &str, bool) -> Value,
    text: fn(&Value) -> String,
}

const CHAT: Ask = Ask {
    name: "chat",
    path: |_, _| "/v1/chat/completions".into(),
    body: |model, text, stream| {
        json!({"model": model, "max_tokens": 50, "stream": stream,
               "messages": [{"role": "user", "content": text}]})
    },
    text: |v| {
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap_or_default()
            .into()
    },
};

const MESSAGES: Ask = Ask {
    name: "messages",
    path: |_, _| "/v1/messages".into(),
    body: |model, text, stream| {
        json!({"model": model, "max_tokens": 50, "stream": stream,
               "messages": [{"role": "user", "content": text}]})
    },
    text: |v| {
        v["content"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["text"].as_str())
            .collect()
    },
};

const RESPONSES: Ask = Ask {
    name: "responses",
    path: |_, _| "/v1/responses".into(),
    body: |model, text, stream| {
        json!({"model": model, "max_output_tokens": 50, "stream": stream, "store": false,
               "input": [{"role": "user", "content": [{"type": "input_text", "text": text}]}]})
    },
    text: |v| {
        v["output"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|item| item["content"].as_array().cloned().unwrap_or_default())
            .filter_map(|c| c["text"].as_str().map(str::to_owned))
            .collect()
    },
};

const GEMINI: Ask = Ask {
    name: "gemini",
    path: |model, stream| {
        if stream {
            format!("/v1beta/models/{model}:streamGenerateContent?alt=sse")
        } else {
            format!("/v1beta/models/{model}:generateContent")
        }
    },
    body: |_, text, _| {
        json!({"contents": [{"role": "user", "parts": [{"text": text}]}],
               "generationConfig": {"maxOutputTokens": 50}})
    },
    text: |v| {
        v["candidates"][0]["content"]["parts"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["text"].as_str())
            .collect()
    },
};

async fn ask(
    gateway: &TestGateway,
    ingress: &Ask,
    model: &str,
    text: &str,
    cache_control: Option<&str>,
) -> (String, Value) {
    let mut request = gateway
        .client
        .post(format!("{}{}", gateway.url, (ingress.path)(model, false)))
        .json(&(ingress.body)(model, text, false));
    if let Some(value) = cache_control {
        request = request.header("cache-control", value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{} {model}", ingress.name);
    let cache = response
        .headers()
        .get("x-llmux-cache")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (cache, response.json().await.unwrap())
}

#[tokio::test]
async fn every_ingress_misses_then_hits_and_honours_cache_control() {
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "cache: { mode: exact }\n")).await;
    for ingress in [&CHAT, &MESSAGES, &RESPONSES, &GEMINI] {
        for model in ["via-openai", "via-anthropic", "via-gemini"] {
            let text = format!("cache me {} {model}", ingress.name);
            let calls = || mock.calls().len();
            let before = calls();
            let (first, answer) = ask(&gateway, ingress, model, &text, None).await;
            assert_eq!(first, "miss", "{} {model}", ingress.name);
            assert_eq!(calls(), before + 1);
            assert_eq!((ingress.text)(&answer), text, "{} {model}", ingress.name);

            let (second, again) = ask(&gateway, ingress, model, &text, None).await;
            assert_eq!(second, "hit", "{} {model}", ingress.name);
            assert_eq!(calls(), before + 1, "a hit calls no vendor");
            assert_eq!((ingress.text)(&again), text, "{} {model}", ingress.name);

            let (bypass, _) = ask(&gateway, ingress, model, &text, Some("no-store")).await;
            assert_eq!(bypass, "bypass");
            assert_eq!(calls(), before + 2, "no-store goes to the vendor");

            let (refresh, _) = ask(&gateway, ingress, model, &text, Some("no-cache")).await;
            assert_eq!(refresh, "miss", "no-cache skips the lookup");
            assert_eq!(calls(), before + 3);
            let (after, _) = ask(&gateway, ingress, model, &text, None).await;
            assert_eq!(after, "hit");
            assert_eq!(calls(), before + 3);
        }
    }
    // A different question, or other sampling, is not the same request.
    let (other, _) = ask(&gateway, &CHAT, "via-openai", "something else", None).await;
    assert_eq!(other, "miss");
    let metrics = gateway.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("llmux_cache_requests_total{route=\"chat\",result=\"hit\"} 6"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_hit_answers_with_a_fresh_id_and_the_clients_model_name() {
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "cache: { mode: exact }\n")).await;
    let (_, first) = ask(&gateway, &CHAT, "via-anthropic", "ids", None).await;
    let (cache, second) = ask(&gateway, &CHAT, "via-anthropic", "ids", None).await;
    assert_eq!(cache, "hit");
    assert_ne!(first["id"], second["id"], "each answer has its own id");
    assert_eq!(second["model"], "via-anthropic");
    assert_eq!(second["usage"], first["usage"]);
}

/// Every JSON value with its strings and numbers blanked: what a client's parser sees of a
/// frame's structure.
fn shape(value: &Value) -> Value {
    match value {
        Value::String(_) => json!(""),
        Value::Number(_) => json!(0),
        Value::Array(items) => Value::Array(items.iter().map(shape).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), shape(v))).collect())
        }
        other => other.clone(),
    }
}

async fn stream(gateway: &TestGateway, ingress: &Ask, model: &str, text: &str) -> (String, String) {
    let response = gateway
        .client
        .post(format!("{}{}", gateway.url, (ingress.path)(model, true)))
        .json(&(ingress.body)(model, text, true))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let cache = response.headers()["x-llmux-cache"]
        .to_str()
        .unwrap()
        .to_owned();
    (cache, response.text().await.unwrap())
}

/// The frames of an SSE body: (event name, shape of the data).
fn frames(body: &str) -> Vec<(Option<String>, Value)> {
    // Gemini's framing ends lines with CRLF, like Google's servers.
    body.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|frame| {
            let event = frame
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .map(str::to_owned);
            let data: String = frame
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect();
            let data = serde_json::from_str(&data).map_or(Value::String(data), |v| shape(&v));
            (event, data)
        })
        .collect()
}

#[tokio::test]
async fn a_streamed_hit_replays_the_live_event_sequence() {
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "cache: { mode: exact }\n")).await;
    for ingress in [&CHAT, &MESSAGES, &RESPONSES, &GEMINI] {
        for model in ["via-openai", "via-anthropic"] {
            let text = format!("stream me please {}", ingress.name);
            let before = mock.calls().len();
            let (first, live) = stream(&gateway, ingress, model, &text).await;
            assert_eq!(first, "miss");
            let (second, replayed) = stream(&gateway, ingress, model, &text).await;
            assert_eq!(second, "hit", "{} {model}", ingress.name);
            assert_eq!(mock.calls().len(), before + 1);
            assert_eq!(
                frames(&replayed),
                frames(&live),
                "{} {model}: the replay has the live stream's frames\nlive:\n{live}\nreplayed:\n{replayed}",
                ingress.name
            );
            assert!(replayed.contains("stream"), "{replayed}");
        }
    }
}

#[tokio::test]
async fn an_answer_cached_through_one_ingress_serves_the_others() {
    let mock = mock().await;
    let gateway = TestGateway::start(&every_vendor(&mock, "cache: { mode: exact }\n")).await;
    let text = "one question, four APIs";
    let (first, _) = ask(&gateway, &CHAT, "via-gemini", text, None).await;
    assert_eq!(first, "miss");
    for ingress in [&MESSAGES, &RESPONSES, &GEMINI] {
        let (cache, answer) = ask(&gateway, ingress, "via-gemini", text, None).await;
        assert_eq!(cache, "hit", "{}", ingress.name);
        assert_eq!((ingress.text)(&answer), text, "{}", ingress.name);
    }
    let (cache, body) = stream(&gateway, &MESSAGES, "via-gemini", text).await;
    assert_eq!(cache, "hit", "a whole answer replays as a stream");
    assert!(body.contains("message_stop"), "{body}");
    assert_eq!(mock.calls().len(), 1);
}

#[tokio::test]
async fn groups_override_the_mode_and_keys_do_not_share_answers() {
    let mock = mock().await;
    let dir = temp_dir("cache-keys");
    let master = "master-cache-secret-0123456789";
    let config = every_vendor(
        &mock,
        &format!(
            "cache: {{ mode: exact }}
routing: {{ groups: {{ via-anthropic: {{ cache: off }} }} }}
auth: {{ master_key: {master}, database: \"sqlite://{}\" }}
log: {{ database: \"sqlite://{}\" }}
",
            dir.join("keys.db").display(),
            dir.join("log.db").display()
        ),
    );
    let gateway = TestGateway::start(&config).await;
    let key = |name: &'static str| {
        let gateway = &gateway;
        async move {
            let response = gateway
                .client
                .post(format!("{}/admin/keys", gateway.url))
                .bearer_auth(master)
                .json(&json!({"name": name}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
            let body: Value = response.json().await.unwrap();
            body["key"].as_str().unwrap().to_owned()
        }
    };
    let (alice, bob) = (key("alice").await, key("bob").await);
    let send = |key: String, model: &'static str| {
        let gateway = &gateway;
        async move {
            let response = gateway
                .client
                .post(format!("{}/v1/chat/completions", gateway.url))
                .bearer_auth(key)
                .json(&chat(model, "private question"))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            response
                .headers()
                .get("x-llmux-cache")
                .map(|v| v.to_str().unwrap().to_owned())
        }
    };
    assert_eq!(
        send(alice.clone(), "via-openai").await.as_deref(),
        Some("miss")
    );
    assert_eq!(
        send(alice.clone(), "via-openai").await.as_deref(),
        Some("hit")
    );
    assert_eq!(
        send(bob.clone(), "via-openai").await.as_deref(),
        Some("miss"),
        "scope key: another key's answer is not reused"
    );
    assert_eq!(
        send(alice.clone(), "via-anthropic").await,
        None,
        "group cache: off"
    );
    assert_eq!(send(alice, "via-anthropic").await, None);
    assert_eq!(mock.calls().len(), 4);

    // The hit is in the request log, answered by the cache at no cost.
    let hit = eventually(Duration::from_secs(10), || async {
        let page: Value = gateway
            .get_as("/admin/requests?vendor=cache", master)
            .await
            .json()
            .await
            .unwrap();
        match page["records"].as_array().and_then(|r| r.first()) {
            Some(record) => Ok(record.clone()),
            None => Err(format!("no cache hit logged: {page}")),
        }
    })
    .await;
    assert_eq!(hit["requested_model"], "via-openai");
    assert_eq!(hit["status"], 200);
    assert!(
        hit["cost_usd"].as_f64().unwrap_or(0.0) == 0.0,
        "a hit costs nothing: {hit}"
    );
}

#[tokio::test]
async fn a_redis_cache_is_shared_by_two_gateway_processes() {
    let Ok(redis) = std::env::var("LLMUX_TEST_REDIS_URL") else {
        eprintln!("skipped: LLMUX_TEST_REDIS_URL is not set (run scripts/services)");
        return;
    };
    let mock = mock().await;
    let config = every_vendor(
        &mock,
        &format!("redis: \"{redis}\"\ncache: {{ mode: exact, store: redis, ttl_seconds: 60 }}\n"),
    );
    let first = Binary::with_config("cache-redis-a", &config);
    let second = Binary::with_config("cache-redis-b", &config);
    // Redis outlives test runs: a fresh question each time.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let text = format!("shared {nanos:x} {}", std::process::id());
    let client = reqwest::Client::new();
    let send = |url: String| {
        let client = client.clone();
        let text = text.clone();
        async move {
            let response = client
                .post(format!("{url}/v1/chat/completions"))
                .json(&chat("via-openai", &text))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let cache = response.headers()["x-llmux-cache"]
                .to_str()
                .unwrap()
                .to_owned();
            let body: Value = response.json().await.unwrap();
            (cache, body["choices"][0]["message"]["content"].clone())
        }
    };
    let (cache, content) = send(first.url.clone()).await;
    assert_eq!(cache, "miss");
    assert_eq!(content, text.as_str());
    // The answer is stored in the background: the other replica finds it once it lands.
    let content = eventually(Duration::from_secs(10), || async {
        let (cache, content) = send(second.url.clone()).await;
        (cache == "hit")
            .then_some(content)
            .ok_or("the other replica never hit")
    })
    .await;
    assert_eq!(content, text.as_str());
    let misses = mock.calls().len();
    assert!(misses <= 3, "{misses} vendor calls");
}

//! The workload table and the gateway configs it needs.
//!
//! A workload is a pair of targets: the same request sent to the mock directly (`direct`, the
//! physical limit) and through llmux (`proxied`). When the two speak different protocols (a
//! translated path, or a client-facing API other than Chat Completions) the direct request is the
//! vendor-format equivalent of the proxied one. Adding an ingress API is one more entry in
//! [`main`]: a path, a body and the framing of a good answer; `probe: true` makes the benchmark
//! skip the row when the gateway answers 404 for the route.

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use serde_json::json;

use crate::load::{Framing, Target};

/// Content pieces per streamed answer (the issue asks for at least 20).
pub const CHUNKS: usize = 20;
/// Pause between streamed events of the paced mock, ms: long enough that each event is its own
/// network write, so the client sees and times every gap.
pub const CHUNK_DELAY_MS: u64 = 2;

/// Which mock a workload's direct side (and its model alias behind the gateway) uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mock {
    /// No pacing: every answer is written in one piece.
    Fast,
    /// Events [`CHUNK_DELAY_MS`] apart.
    Paced,
}

/// One row of the main table.
#[derive(Debug, Clone)]
pub struct Spec {
    pub name: String,
    pub concurrency: usize,
    pub mock: Mock,
    pub direct: Target,
    pub proxied: Target,
    /// Ask the gateway first and skip the row on 404 (routes still being built).
    pub probe: bool,
    /// The same-protocol row whose added latency this row's is compared with.
    pub baseline: Option<String>,
    /// Also measured through LiteLLM when `--litellm` is given, and through the byte relay
    /// (the floor of any proxy process): the same-protocol chat rows.
    pub litellm: bool,
    /// Part of `--smoke`.
    pub smoke: bool,
}

impl Spec {
    pub fn streams(&self) -> bool {
        matches!(self.proxied.framing, Framing::Sse { .. })
    }

    /// Whether the direct and the proxied stream carry the same events, so that their gaps can
    /// be compared one for one. A translated stream has a different event sequence (Anthropic's
    /// `content_block_start` or `ping`, for instance, become no client event at all).
    pub fn same_events(&self) -> bool {
        api_of(&self.direct.path) == api_of(&self.proxied.path)
    }
}

/// A request path without the model a Gemini path names (`/v1beta/models/{model}:method`), so
/// that the direct and the proxied side of a Gemini row compare as the same API.
fn api_of(path: &str) -> (&str, &str) {
    match path.split_once("/models/") {
        Some((root, rest)) => (
            root,
            rest.split_once(':').map_or(rest, |(_, method)| method),
        ),
        None => (path, ""),
    }
}

/// The text of a request body of about `size` bytes.
pub fn text(size: usize) -> String {
    let filler = "lorem ipsum dolor sit amet ".repeat(size / 27 + 1);
    filler[..size.saturating_sub(120).max(10)].to_owned()
}

fn header(name: &'static str, value: &'static str) -> (HeaderName, HeaderValue) {
    (
        HeaderName::from_static(name),
        HeaderValue::from_static(value),
    )
}

fn framing(stream: bool, terminal: &'static str) -> Framing {
    if stream {
        Framing::Sse { terminal }
    } else {
        Framing::Json
    }
}

/// An OpenAI Chat Completions request (`model: None` leaves the field out).
pub fn openai_chat(path: &str, model: Option<&str>, text: &str, stream: bool) -> Target {
    let mut body = json!({
        "stream": stream,
        "messages": [{"role": "user", "content": text}],
    });
    if let Some(object) = body.as_object_mut() {
        if let Some(model) = model {
            object.insert("model".into(), model.into());
        }
        // llmux always asks the vendor for usage (and drops the usage chunk when the client did
        // not ask for it). Asking for it here too makes the mock send the same events directly
        // and through llmux, so whole-stream times and gaps compare like for like.
        if stream {
            object.insert("stream_options".into(), json!({"include_usage": true}));
        }
    }
    Target {
        path: path.to_owned(),
        // The mock checks for a key like the real vendor; the gateway ignores the client's.
        headers: vec![header("authorization", "Bearer sk-bench")],
        body: Bytes::from(body.to_string()),
        framing: framing(stream, "[DONE]"),
    }
}

/// An Anthropic Messages request.
pub fn anthropic_messages(path: &str, model: &str, text: &str, stream: bool) -> Target {
    let body = json!({
        "model": model,
        // What the gateway sends for a client that sets none (`limits.default_max_tokens`).
        "max_tokens": 4096,
        "stream": stream,
        "messages": [{"role": "user", "content": text}],
    });
    Target {
        path: path.to_owned(),
        headers: vec![
            header("x-api-key", "sk-ant-bench"),
            header("anthropic-version", "2023-06-01"),
        ],
        body: Bytes::from(body.to_string()),
        framing: framing(stream, "message_stop"),
    }
}

/// A Gemini `generateContent` / `streamGenerateContent?alt=sse` request: to the mock directly, or
/// to llmux's Gemini API ingress (the model in the path is then a gateway alias).
pub fn gemini_generate(model: &str, text: &str, stream: bool) -> Target {
    let body = json!({"contents": [{"role": "user", "parts": [{"text": text}]}]});
    let path = if stream {
        format!("/v1beta/models/{model}:streamGenerateContent?alt=sse")
    } else {
        format!("/v1beta/models/{model}:generateContent")
    };
    Target {
        path,
        headers: vec![header("x-goog-api-key", "bench-gemini-key")],
        body: Bytes::from(body.to_string()),
        framing: framing(stream, "finishReason"),
    }
}

/// An Open Responses request (`POST /v1/responses`).
pub fn responses(model: &str, text: &str, stream: bool) -> Target {
    let body = json!({"model": model, "input": text, "stream": stream});
    Target {
        path: "/v1/responses".to_owned(),
        headers: vec![header("authorization", "Bearer sk-bench")],
        body: Bytes::from(body.to_string()),
        framing: framing(stream, "response.completed"),
    }
}

pub const CHAT: &str = "/v1/chat/completions";
pub const MESSAGES: &str = "/v1/messages";
/// Upstream model names the mock is asked for.
const OPENAI_MODEL: &str = "gpt-4o-mini";
const ANTHROPIC_MODEL: &str = "claude-sonnet-4-5";
const GEMINI_MODEL: &str = "gemini-2.5-flash";

/// The gateway alias that reaches `vendor` on `mock`.
pub fn alias(vendor: &str, mock: Mock) -> String {
    let vendor = if vendor == "openai" {
        String::new()
    } else {
        format!("-{vendor}")
    };
    match mock {
        Mock::Fast => format!("bench{vendor}"),
        Mock::Paced => format!("bench{vendor}-stream"),
    }
}

fn spec(name: String, concurrency: usize, mock: Mock, direct: Target, proxied: Target) -> Spec {
    Spec {
        name,
        concurrency,
        mock,
        direct,
        proxied,
        probe: false,
        baseline: None,
        litellm: false,
        smoke: false,
    }
}

/// Same-protocol OpenAI chat: `size` bytes, `stream` or not, at `concurrency`.
fn chat(name: String, size: usize, stream: bool, concurrency: usize) -> Spec {
    let mock = if stream { Mock::Paced } else { Mock::Fast };
    let text = text(size);
    let direct = openai_chat(CHAT, Some(OPENAI_MODEL), &text, stream);
    let proxied = openai_chat(CHAT, Some(&alias("openai", mock)), &text, stream);
    Spec {
        litellm: true,
        ..spec(name, concurrency, mock, direct, proxied)
    }
}

/// An OpenAI client served by a translated vendor (`anthropic` or `gemini`).
fn translated(vendor: &str, stream: bool, concurrency: usize, baseline: &str) -> Spec {
    let mock = if stream { Mock::Paced } else { Mock::Fast };
    let text = text(1024);
    let direct = if vendor == "anthropic" {
        anthropic_messages(MESSAGES, ANTHROPIC_MODEL, &text, stream)
    } else {
        gemini_generate(GEMINI_MODEL, &text, stream)
    };
    let proxied = openai_chat(CHAT, Some(&alias(vendor, mock)), &text, stream);
    let what = if stream { "stream" } else { "1KB" };
    Spec {
        baseline: Some(baseline.to_owned()),
        ..spec(
            format!("openai→{vendor} {what} c={concurrency}"),
            concurrency,
            mock,
            direct,
            proxied,
        )
    }
}

/// The main table: non-streaming chat at each level of `levels`, a large body, streams,
/// translated paths, and the other ingress APIs (probed). `smoke` gives the CI subset.
pub fn main(levels: &[usize], smoke: bool) -> Vec<Spec> {
    if smoke {
        let mut rows = vec![
            chat("chat 1KB c=1".into(), 1024, false, 1),
            chat("chat 1KB c=4".into(), 1024, false, 4),
            chat(format!("stream {CHUNKS} chunks c=4"), 1024, true, 4),
            translated("anthropic", false, 4, "chat 1KB c=4"),
            translated("gemini", true, 4, &format!("stream {CHUNKS} chunks c=4")),
        ];
        for row in &mut rows {
            row.smoke = true;
        }
        return rows;
    }
    let mut rows: Vec<Spec> = levels
        .iter()
        .map(|&c| chat(format!("chat 1KB c={c}"), 1024, false, c))
        .collect();
    rows.push(chat("chat 100KB c=16".into(), 100 * 1024, false, 16));
    let same_stream = format!("stream {CHUNKS} chunks c=1");
    rows.push(chat(same_stream.clone(), 1024, true, 1));
    rows.push(chat(format!("stream {CHUNKS} chunks c=16"), 1024, true, 16));
    for vendor in ["anthropic", "gemini"] {
        rows.push(translated(vendor, false, 1, "chat 1KB c=1"));
        rows.push(translated(vendor, true, 1, &same_stream));
    }
    rows.extend(ingress(&same_stream));
    rows.push(cache_hit(1));
    rows.push(cache_hit(16));
    rows
}

/// The group whose answers the response cache keeps (`routing.groups.<CACHED>.cache: exact`).
const CACHED: &str = "bench-cached";

/// Same-protocol chat to a cached group: after the first request every answer is a cache hit,
/// measured beside the same request sent to the mock directly.
fn cache_hit(concurrency: usize) -> Spec {
    let text = text(1024);
    Spec {
        baseline: Some(format!("chat 1KB c={concurrency}")),
        ..spec(
            format!("chat 1KB cache hit c={concurrency}"),
            concurrency,
            Mock::Fast,
            openai_chat(CHAT, Some(OPENAI_MODEL), &text, false),
            openai_chat(CHAT, Some(CACHED), &text, false),
        )
    }
}

/// Client-facing APIs other than Chat Completions. Each row is probed first.
fn ingress(same_stream: &str) -> Vec<Spec> {
    let text = text(1024);
    let probed = |name: &str, mock: Mock, direct: Target, proxied: Target, baseline: &str| Spec {
        probe: true,
        baseline: Some(baseline.to_owned()),
        ..spec(name.to_owned(), 1, mock, direct, proxied)
    };
    vec![
        probed(
            "responses→openai 1KB c=1",
            Mock::Fast,
            openai_chat(CHAT, Some(OPENAI_MODEL), &text, false),
            responses(&alias("openai", Mock::Fast), &text, false),
            "chat 1KB c=1",
        ),
        probed(
            "responses→openai stream c=1",
            Mock::Paced,
            openai_chat(CHAT, Some(OPENAI_MODEL), &text, true),
            responses(&alias("openai", Mock::Paced), &text, true),
            same_stream,
        ),
        probed(
            "messages→anthropic 1KB c=1",
            Mock::Fast,
            anthropic_messages(MESSAGES, ANTHROPIC_MODEL, &text, false),
            anthropic_messages(MESSAGES, &alias("anthropic", Mock::Fast), &text, false),
            "chat 1KB c=1",
        ),
        probed(
            "messages→anthropic stream c=1",
            Mock::Paced,
            anthropic_messages(MESSAGES, ANTHROPIC_MODEL, &text, true),
            anthropic_messages(MESSAGES, &alias("anthropic", Mock::Paced), &text, true),
            same_stream,
        ),
        probed(
            "messages→openai 1KB c=1",
            Mock::Fast,
            openai_chat(CHAT, Some(OPENAI_MODEL), &text, false),
            anthropic_messages(MESSAGES, &alias("openai", Mock::Fast), &text, false),
            "chat 1KB c=1",
        ),
        probed(
            "gemini→gemini 1KB c=1",
            Mock::Fast,
            gemini_generate(GEMINI_MODEL, &text, false),
            gemini_generate(&alias("gemini", Mock::Fast), &text, false),
            "chat 1KB c=1",
        ),
        probed(
            "gemini→gemini stream c=1",
            Mock::Paced,
            gemini_generate(GEMINI_MODEL, &text, true),
            gemini_generate(&alias("gemini", Mock::Paced), &text, true),
            same_stream,
        ),
        probed(
            "gemini→openai 1KB c=1",
            Mock::Fast,
            openai_chat(CHAT, Some(OPENAI_MODEL), &text, false),
            gemini_generate(&alias("openai", Mock::Fast), &text, false),
            "chat 1KB c=1",
        ),
        probed(
            "gemini→openai stream c=1",
            Mock::Paced,
            openai_chat(CHAT, Some(OPENAI_MODEL), &text, true),
            gemini_generate(&alias("openai", Mock::Paced), &text, true),
            same_stream,
        ),
    ]
}

/// The `log:` section every main gateway gets, when `--request-log` is given.
pub static REQUEST_LOG: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The main gateway: one alias per (vendor API, mock), each a single combination.
pub fn main_config(fast: std::net::SocketAddr, paced: std::net::SocketAddr) -> String {
    let mut config = String::from("credentials:\n");
    let mut models = String::from("models:\n");
    for (mock, addr) in [(Mock::Fast, fast), (Mock::Paced, paced)] {
        let suffix = match mock {
            Mock::Fast => "fast",
            Mock::Paced => "paced",
        };
        for (api, root, model, key) in [
            ("openai", "v1", OPENAI_MODEL, "sk-bench"),
            ("anthropic", "v1", ANTHROPIC_MODEL, "sk-ant-bench"),
            ("gemini", "v1beta", GEMINI_MODEL, "bench-gemini-key"),
        ] {
            let platform = format!("{api}-{suffix}");
            config.push_str(&format!(
                "  - {{ platform: {platform}, api: {api}, value: {key}, base_url: \"http://{addr}/{root}\" }}\n"
            ));
            models.push_str(&format!(
                "  - {{ vendor: {platform}, model: {model}, name: {} }}\n",
                alias(api, mock)
            ));
        }
    }
    // One group behind the response cache, on the fast mock (its own credential: a model may
    // appear once per vendor).
    config.push_str(&format!(
        "  - {{ platform: openai-cached, api: openai, value: sk-bench, base_url: \"http://{fast}/v1\" }}\n"
    ));
    models.push_str(&format!(
        "  - {{ vendor: openai-cached, model: {OPENAI_MODEL}, name: {CACHED} }}\n"
    ));
    config.push_str(&models);
    config.push_str(&format!(
        "routing:\n  groups:\n    {CACHED}: {{ cache: exact }}\n"
    ));
    if let Some(log) = REQUEST_LOG.get() {
        config.push_str(log);
    }
    if let Some(tracing) = TRACING.get() {
        config.push_str(tracing);
    }
    config
}

/// The `telemetry:` section every main gateway gets, when `--tracing` is given.
pub static TRACING: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// A routing table of `credentials × models` OpenAI combinations on the fast mock; requests that
/// name no model use the whole pool.
pub fn routing_config(fast: std::net::SocketAddr, credentials: usize, models: usize) -> String {
    let mut config = String::from("routing:\n  unknown_model: pool\ncredentials:\n");
    for i in 0..credentials {
        config.push_str(&format!(
            "  - {{ platform: openai, name: key-{i}, value: sk-bench-{i}, base_url: \"http://{fast}/v1\" }}\n"
        ));
    }
    config.push_str("models:\n");
    for i in 0..models {
        config.push_str(&format!("  - {{ vendor: openai, model: model-{i} }}\n"));
    }
    config
}

/// The routing workload for one table size: the pool is chosen per request (no model named).
pub fn routing(credentials: usize, models: usize, concurrency: usize) -> Spec {
    let text = text(1024);
    spec(
        format!(
            "routing {} combinations c={concurrency}",
            credentials * models
        ),
        concurrency,
        Mock::Fast,
        openai_chat(CHAT, Some("model-0"), &text, false),
        openai_chat(CHAT, None, &text, false),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

    /// Every gateway config the benchmark writes is one the gateway accepts (a broken one only
    /// shows when a bench run's gateway refuses to start).
    #[test]
    fn the_benchmark_configs_are_valid() {
        let (fast, paced) = (
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:2".parse().unwrap(),
        );
        let configs = [
            super::main_config(fast, paced),
            super::routing_config(fast, 10, 10),
        ];
        for config in configs {
            if let Err(errors) =
                llmux_config::from_str(&config, llmux_config::Format::Yaml, &|_| None)
            {
                panic!("{errors:?}\n{config}");
            }
        }
    }
}

//! Integration tests: the mock over real sockets, checked against the recorded vendor fixtures.

// Test helpers live outside `#[test]` functions, where clippy's test exemptions do not reach.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail loudly"
)]

mod mock {
    mod anthropic;
    mod faults;
    mod gemini;
    mod openai;
    mod recording;
}

use std::collections::BTreeSet;
use std::path::PathBuf;

use llmux_mock::{MockOptions, MockUpstream};
use serde_json::Value;

/// Starts a mock with default options.
async fn start() -> MockUpstream {
    start_with(MockOptions::default()).await
}

async fn start_with(opts: MockOptions) -> MockUpstream {
    MockUpstream::start(opts).await.expect("mock starts")
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// The text of a recorded fixture (the repository's `fixtures/`), e.g. `fixture("openai/chat_completion_text.json")`.
fn fixture(name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "..", "fixtures", name]
        .iter()
        .collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).expect("fixture is JSON")
}

/// One SSE event: its `event:` name (if any) and its `data:` text.
#[derive(Debug, Clone)]
struct Event {
    name: Option<String>,
    data: String,
}

impl Event {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
    }
}

/// Splits an SSE body into events on `separator` ("\n\n" or "\r\n\r\n").
fn events(body: &str, separator: &str) -> Vec<Event> {
    body.split(separator)
        .filter(|frame| !frame.trim().is_empty())
        .map(|frame| {
            let mut name = None;
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    name = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push_str(v);
                }
            }
            Event { name, data }
        })
        .collect()
}

/// Every key path of `value` (`a.b`, `a[].c`), arrays as the union over their elements. Paths
/// listed in `opaque` are kept but not descended into (free-form tool arguments).
fn key_paths(value: &Value, opaque: &[&str]) -> BTreeSet<String> {
    fn walk(value: &Value, path: &str, opaque: &[&str], out: &mut BTreeSet<String>) {
        if opaque.contains(&path) {
            return;
        }
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let child_path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    out.insert(child_path.clone());
                    walk(child, &child_path, opaque, out);
                }
            }
            Value::Array(items) => {
                let child_path = format!("{path}[]");
                for item in items {
                    walk(item, &child_path, opaque, out);
                }
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    walk(value, "", opaque, &mut out);
    out
}

/// The union of `key_paths` over `values`.
fn union_paths<'a>(
    values: impl IntoIterator<Item = &'a Value>,
    opaque: &[&str],
) -> BTreeSet<String> {
    values
        .into_iter()
        .flat_map(|v| key_paths(v, opaque))
        .collect()
}

/// Asserts that the mock's key paths equal the fixture's, after removing `skipped` (fixture-only
/// vendor extras the mock leaves out, with everything under them) and `extras` (fields the mock
/// adds, each documented at its call site).
#[track_caller]
fn assert_same_paths(
    mock: BTreeSet<String>,
    fixture: BTreeSet<String>,
    skipped: &[&str],
    extras: &[&str],
) {
    let under = |path: &String, roots: &[&str]| {
        roots.iter().any(|root| {
            path == root
                || path.starts_with(&format!("{root}."))
                || path.starts_with(&format!("{root}["))
        })
    };
    let fixture: BTreeSet<String> = fixture.into_iter().filter(|p| !under(p, skipped)).collect();
    let mock: BTreeSet<String> = mock.into_iter().filter(|p| !under(p, extras)).collect();
    assert_eq!(
        mock, fixture,
        "key paths differ (left: mock, right: fixture)"
    );
}

/// `items` with consecutive duplicates collapsed, for comparing event order patterns.
fn collapse<T: PartialEq>(items: Vec<T>) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for item in items {
        if out.last() != Some(&item) {
            out.push(item);
        }
    }
    out
}

/// Reads a response body chunk by chunk, returning what arrived and whether it ended cleanly.
async fn read_body(mut response: reqwest::Response) -> (String, bool) {
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) => return (String::from_utf8(bytes).expect("utf-8"), true),
            Err(_) => return (String::from_utf8(bytes).expect("utf-8"), false),
        }
    }
}

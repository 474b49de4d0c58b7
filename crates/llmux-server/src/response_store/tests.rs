use llmux_protocol::neutral::{Part, Role};
use serde_json::json;

use super::*;

fn bounds(max_bytes: usize) -> Bounds {
    Bounds {
        capacity: 10_000,
        max_bytes,
        ttl_secs: None,
    }
}

fn said(text: &str) -> Vec<Message> {
    vec![Message {
        role: Role::User,
        parts: vec![Part::text(text)],
    }]
}

fn texts(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .flat_map(|m| &m.parts)
        .filter_map(|p| match p {
            Part::Text { text } => Some(text.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn another_owner_sees_nothing() {
    let store = ResponseStore::with_backend(bounds(1 << 20), None);
    store.put(
        "a".into(),
        "alice".into(),
        None,
        &json!({"n": 1}),
        said("hi"),
    );
    assert!(store.resource("a", "bob").await.is_none());
    assert!(store.conversation("a", "bob").await.is_none());
    assert!(!store.delete("a", "bob").await);
    assert!(store.resource("a", "alice").await.is_some());
    assert!(store.delete("a", "alice").await);
    assert!(!store.delete("a", "alice").await);
    assert!(store.resource("a", "alice").await.is_none());
}

#[tokio::test]
async fn a_conversation_is_rebuilt_from_its_turns_even_after_a_delete() {
    let store = ResponseStore::with_backend(bounds(1 << 20), None);
    store.put("1".into(), "o".into(), None, &json!({}), said("one"));
    store.put(
        "2".into(),
        "o".into(),
        Some("1".into()),
        &json!({}),
        said("two"),
    );
    store.put(
        "3".into(),
        "o".into(),
        Some("2".into()),
        &json!({}),
        said("three"),
    );
    assert!(store.delete("2", "o").await);
    assert!(store.conversation("2", "o").await.is_none());
    let all = store.conversation("3", "o").await.unwrap();
    assert_eq!(texts(&all), ["one", "two", "three"]);
}

#[tokio::test]
async fn the_cache_is_bounded_by_bytes_and_shares_prefixes() {
    let big = "x".repeat(100_000);
    let store = ResponseStore::with_backend(bounds(1 << 20), None);
    store.put("0".into(), "o".into(), None, &json!({}), said(&big));
    for n in 1..50 {
        let parent = (n - 1).to_string();
        store.put(
            n.to_string(),
            "o".into(),
            Some(parent),
            &json!({}),
            said("more"),
        );
    }
    // Fifty turns over a 100 kB first message: the prefix is held once.
    assert!(store.cached_bytes() < 150_000, "{}", store.cached_bytes());
    assert_eq!(store.conversation("49", "o").await.unwrap().len(), 50);
    // Past the byte bound, the least recently used go.
    for n in 0..30 {
        store.put(format!("big{n}"), "o".into(), None, &json!({}), said(&big));
    }
    assert!(store.cached_bytes() <= 1 << 20);
    assert!(store.resource("big0", "o").await.is_none());
    assert!(store.resource("big29", "o").await.is_some());
}

#[tokio::test]
async fn expired_responses_are_gone() {
    let store = ResponseStore::with_backend(
        Bounds {
            ttl_secs: Some(-1),
            ..bounds(1 << 20)
        },
        None,
    );
    store.put("a".into(), "o".into(), None, &json!({}), said("hi"));
    assert!(store.resource("a", "o").await.is_none());
}

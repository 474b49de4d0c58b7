//! Repairs tool calls that OpenAI-compatible vendors send malformed, on the same-protocol path
//! (bytes otherwise pass through untouched).
//!
//! Gemini's OpenAI-compatible endpoint streams `tool_calls` entries without an `index` or with
//! `"index": null`, with `"id": ""`, sometimes the same id twice, and may end a tool-call turn
//! with `finish_reason: "stop"`. Clients accumulate stream fragments by `index` and answer calls
//! by `id`, so such a stream breaks them. The repair gives every call a stable index (a new call
//! is a fragment that names a function, or a vendor index not seen before), an id on its first
//! fragment only (synthesized when empty or already used), no empty id on continuations, and
//! `finish_reason: "tool_calls"` when calls were made.
//!
//! Only chunks that mention tool calls (or finish after some) are parsed; well-formed chunks
//! come back as `None` and the caller forwards the original bytes.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use memchr::memmem::Finder;
use serde_json::{Map, Value};

use crate::neutral::synthesize_call_id;

// Every same-protocol stream chunk is checked: searchers built once, not per call (building one
// costs more than searching a chunk).
static TOOL_CALLS: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"tool_calls\""));
static STOP: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"stop\""));
static NULL_INDEX: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"index\":null"));
static EMPTY_ID: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new(b"\"id\":\"\""));

fn contains(haystack: &[u8], needle: &Finder<'_>) -> bool {
    needle.find(haystack).is_some()
}

/// Per-stream (or per-answer) state of the repair.
#[derive(Debug, Default)]
pub struct ToolCallRepair {
    id_seed: u64,
    /// Vendor index (or position when it sends none) → our index.
    indexes: HashMap<u64, u64>,
    ids: HashSet<String>,
    saw_calls: bool,
}

impl ToolCallRepair {
    /// A repair for one stream; `id_seed` makes synthesized ids unique per answer.
    pub fn new(id_seed: u64) -> Self {
        Self {
            id_seed,
            ..Self::default()
        }
    }

    /// Whether `chunk` may need repairing (cheap byte checks; most chunks do not).
    pub fn concerns(&self, chunk: &[u8]) -> bool {
        contains(chunk, &TOOL_CALLS) || (self.saw_calls && contains(chunk, &STOP))
    }

    /// The repaired stream chunk, or `None` when it was already well formed.
    pub fn chunk(&mut self, chunk: &[u8]) -> Option<Vec<u8>> {
        let mut value: Value = serde_json::from_slice(chunk).ok()?;
        let mut changed = false;
        for choice in value.get_mut("choices")?.as_array_mut()?.iter_mut().take(1) {
            if let Some(calls) = choice
                .pointer_mut("/delta/tool_calls")
                .and_then(Value::as_array_mut)
            {
                for (position, call) in calls.iter_mut().enumerate() {
                    if let Some(call) = call.as_object_mut() {
                        changed |= self.fragment(call, position as u64);
                    }
                }
            }
            changed |= self.finish(choice);
        }
        changed.then(|| serde_json::to_vec(&value).ok()).flatten()
    }

    /// The repaired whole answer (`message.tool_calls`), or `None` when already well formed.
    pub fn message(&mut self, body: &[u8]) -> Option<Vec<u8>> {
        TOOL_CALLS.find(body)?;
        let mut value: Value = serde_json::from_slice(body).ok()?;
        let mut changed = false;
        for choice in value.get_mut("choices")?.as_array_mut()?.iter_mut() {
            let Some(calls) = choice
                .pointer_mut("/message/tool_calls")
                .and_then(Value::as_array_mut)
            else {
                continue;
            };
            for (position, call) in calls.iter_mut().enumerate() {
                if let Some(call) = call.as_object_mut() {
                    changed |= self.first_fragment_id(call, position as u64);
                }
            }
            self.saw_calls |= !calls.is_empty();
            changed |= self.finish(choice);
        }
        changed.then(|| serde_json::to_vec(&value).ok()).flatten()
    }

    /// Fixes one streamed fragment's index and id; true when it changed.
    fn fragment(&mut self, call: &mut Map<String, Value>, position: u64) -> bool {
        self.saw_calls = true;
        let explicit = call.get("index").and_then(Value::as_u64);
        let starts = call
            .get("function")
            .and_then(|f| f.get("name"))
            .and_then(Value::as_str)
            .is_some_and(|name| !name.is_empty());
        let vendor_index = explicit.unwrap_or(position);
        let known = self.indexes.get(&vendor_index).copied();
        let (index, first) = match known {
            // A continuation, or a vendor that numbers its calls properly.
            Some(index) if !starts || explicit.is_some() => (index, false),
            // A new call: unseen index, or a named fragment from a vendor that sends no index.
            _ => {
                let index = self.indexes.len() as u64;
                self.indexes.insert(vendor_index, index);
                (index, true)
            }
        };
        let mut changed = false;
        if explicit != Some(index) {
            call.insert("index".into(), Value::from(index));
            changed = true;
        }
        if first {
            changed |= self.first_fragment_id(call, index);
        } else if call.get("id").and_then(Value::as_str) == Some("") {
            call.remove("id");
            changed = true;
        }
        changed
    }

    /// Gives a call's first fragment an id of its own: kept when present and unused, else
    /// synthesized.
    fn first_fragment_id(&mut self, call: &mut Map<String, Value>, index: u64) -> bool {
        let id = call.get("id").and_then(Value::as_str).unwrap_or_default();
        if !id.is_empty() && self.ids.insert(id.to_owned()) {
            return false;
        }
        let mut seed = self.id_seed.wrapping_add(index);
        let fresh = loop {
            let candidate = synthesize_call_id(seed);
            if self.ids.insert(candidate.clone()) {
                break candidate;
            }
            seed = seed.wrapping_add(0x1_0000_0000);
        };
        call.insert("id".into(), Value::from(fresh));
        true
    }

    /// A turn that made tool calls ends with `tool_calls`, not `stop`.
    fn finish(&self, choice: &mut Value) -> bool {
        match choice.get_mut("finish_reason") {
            Some(reason) if self.saw_calls && reason == "stop" => {
                *reason = Value::from("tool_calls");
                true
            }
            _ => false,
        }
    }
}

/// Which OpenAI-compatible dialect a credential declares it speaks. The declaration decides,
/// never the host name: a proxy or a private endpoint serves the same dialect under any host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompatKind {
    /// OpenAI, or a server that follows OpenAI's format.
    OpenAi,
    /// Gemini's OpenAI-compatible endpoint (a credential whose `platform` is `gemini`).
    Gemini,
}

impl CompatKind {
    /// The dialect of a credential declared with `platform: vendor`.
    pub fn from_vendor(vendor: &str) -> Self {
        if vendor.eq_ignore_ascii_case("gemini") {
            Self::Gemini
        } else {
            Self::OpenAi
        }
    }
}

/// Whether a dialect is known to need the repair on every answer (Gemini's OpenAI endpoint);
/// others get it only when a chunk shows the symptoms ([`shows_symptoms`]).
pub fn needs_repair_for(kind: CompatKind) -> bool {
    kind == CompatKind::Gemini
}

/// The byte patterns of malformed tool calls in compact JSON.
pub fn shows_symptoms(chunk: &[u8]) -> bool {
    contains(chunk, &TOOL_CALLS) && (contains(chunk, &NULL_INDEX) || contains(chunk, &EMPTY_ID))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

    use serde_json::{Value, json};

    use super::*;

    fn chunk(calls: Value, finish: Value) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": finish}]
        }))
        .unwrap()
    }

    fn calls_of(bytes: &[u8]) -> Vec<Value> {
        let value: Value = serde_json::from_slice(bytes).unwrap();
        value["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .unwrap()
            .clone()
    }

    #[test]
    fn well_formed_openai_fragments_are_left_alone() {
        let mut repair = ToolCallRepair::new(7);
        let first = chunk(
            json!([{"index": 0, "id": "call_a", "type": "function", "function": {"name": "f", "arguments": ""}}]),
            Value::Null,
        );
        let more = chunk(
            json!([{"index": 0, "function": {"arguments": "{\"x\":1}"}}]),
            Value::Null,
        );
        let second = chunk(
            json!([{"index": 1, "id": "call_b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]),
            Value::Null,
        );
        for c in [&first, &more, &second] {
            assert!(repair.concerns(c));
            assert_eq!(repair.chunk(c), None);
        }
        let end = serde_json::to_vec(
            &json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        )
        .unwrap();
        assert_eq!(repair.chunk(&end), None);
    }

    #[test]
    fn gemini_calls_without_index_and_with_empty_ids_get_both() {
        let mut repair = ToolCallRepair::new(7);
        // Gemini sends each call whole, in its own chunk, with a null index and an empty id.
        let a = repair
            .chunk(&chunk(
                json!([{"index": null, "id": "", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]),
                Value::Null,
            ))
            .unwrap();
        let b = repair
            .chunk(&chunk(
                json!([{"id": "", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Rome\"}"}}]),
                Value::Null,
            ))
            .unwrap();
        let (a, b) = (calls_of(&a).remove(0), calls_of(&b).remove(0));
        assert_eq!(
            (a["index"].clone(), b["index"].clone()),
            (json!(0), json!(1))
        );
        let (id_a, id_b) = (a["id"].as_str().unwrap(), b["id"].as_str().unwrap());
        assert!(id_a.starts_with("call_") && id_b.starts_with("call_"));
        assert_ne!(id_a, id_b);
        assert_eq!(a["function"]["arguments"], "{\"city\":\"Paris\"}");
    }

    #[test]
    fn a_duplicate_id_is_replaced_and_empty_continuation_ids_dropped() {
        let mut repair = ToolCallRepair::new(1);
        let first = chunk(
            json!([{"index": 0, "id": "dup", "function": {"name": "f", "arguments": ""}}]),
            Value::Null,
        );
        assert_eq!(repair.chunk(&first), None);
        let continuation = repair
            .chunk(&chunk(
                json!([{"index": 0, "id": "", "function": {"arguments": "{}"}}]),
                Value::Null,
            ))
            .unwrap();
        assert!(calls_of(&continuation)[0].get("id").is_none());
        let second = repair
            .chunk(&chunk(
                json!([{"index": 1, "id": "dup", "function": {"name": "g", "arguments": "{}"}}]),
                Value::Null,
            ))
            .unwrap();
        let id = calls_of(&second)[0]["id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("call_"), "{id}");
    }

    #[test]
    fn a_tool_call_turn_that_says_stop_finishes_with_tool_calls() {
        let mut repair = ToolCallRepair::new(1);
        let stop = serde_json::to_vec(
            &json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
        )
        .unwrap();
        assert!(
            !repair.concerns(&stop),
            "no calls yet: a plain stop is left alone"
        );
        repair.chunk(&chunk(
            json!([{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{}"}}]),
            Value::Null,
        ));
        assert!(repair.concerns(&stop));
        let fixed: Value = serde_json::from_slice(&repair.chunk(&stop).unwrap()).unwrap();
        assert_eq!(fixed["choices"][0]["finish_reason"], "tool_calls");
    }

    #[test]
    fn whole_answers_get_ids_and_finish_reason() {
        let body = serde_json::to_vec(&json!({
            "id": "x", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": null,
                "tool_calls": [
                    {"id": "", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                    {"id": "", "type": "function", "function": {"name": "g", "arguments": "{}"}}
                ]}}]
        }))
        .unwrap();
        let fixed: Value =
            serde_json::from_slice(&ToolCallRepair::new(3).message(&body).unwrap()).unwrap();
        let calls = fixed["choices"][0]["message"]["tool_calls"]
            .as_array()
            .unwrap();
        assert_ne!(calls[0]["id"], calls[1]["id"]);
        assert!(
            calls
                .iter()
                .all(|c| c["id"].as_str().unwrap().starts_with("call_"))
        );
        assert_eq!(fixed["choices"][0]["finish_reason"], "tool_calls");
        let text = br#"{"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#;
        assert_eq!(ToolCallRepair::new(3).message(text), None);
    }

    #[test]
    fn symptoms_and_vendors() {
        assert!(shows_symptoms(br#"{"tool_calls":[{"index":null}]}"#));
        assert!(shows_symptoms(br#"{"tool_calls":[{"id":""}]}"#));
        assert!(!shows_symptoms(
            br#"{"tool_calls":[{"index":0,"id":"call_1"}]}"#
        ));
        assert!(needs_repair_for(CompatKind::from_vendor("gemini")));
        assert!(needs_repair_for(CompatKind::from_vendor("Gemini")));
        assert!(!needs_repair_for(CompatKind::from_vendor("openai")));
        // The host alone does not declare the dialect.
        assert!(!needs_repair_for(CompatKind::from_vendor("google")));
    }
}

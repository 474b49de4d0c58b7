//! Anthropic prompt caching, as the real API reports it: the prompt (tools, then `system`, then
//! the messages' blocks) up to each `cache_control` breakpoint is a cacheable prefix. The first
//! request with a prefix writes it (`cache_creation_input_tokens`), a later identical prefix
//! reads it (`cache_read_input_tokens`), and `input_tokens` counts only what follows the last
//! breakpoint. Prefixes shorter than the models' minimum are not cached, silently; more than
//! four breakpoints are refused.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;

use serde_json::Value;

use crate::json::{array_at, content_text, str_at};
use crate::text;

/// The fewest tokens a cached prefix holds (Claude Sonnet and Opus; Haiku needs 2048).
pub(crate) const MIN_CACHEABLE_TOKENS: u64 = 1024;

/// The most breakpoints one request may set.
const MAX_BREAKPOINTS: usize = 4;

/// The prefixes written so far, by hash. Lives as long as the mock.
#[derive(Default)]
pub(crate) struct PromptCache(Mutex<HashSet<u64>>);

/// One request's input tokens, split as Anthropic reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Split {
    /// Tokens after the cached prefix.
    pub input: u64,
    /// Tokens written to the cache by this request.
    pub write: u64,
    /// Tokens read from the cache.
    pub read: u64,
}

impl PromptCache {
    /// Splits `request`'s `total` input tokens, and remembers its prefixes. `Err` carries the
    /// real API's message for a request it refuses.
    pub(crate) fn split(&self, request: &Value, total: u64) -> Result<Split, String> {
        let prefixes = prefixes(request);
        if prefixes.len() > MAX_BREAKPOINTS {
            return Err(format!(
                "A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found {}.",
                prefixes.len()
            ));
        }
        let prefixes: Vec<(u64, u64)> = prefixes
            .into_iter()
            .filter(|(_, tokens)| *tokens >= MIN_CACHEABLE_TOKENS)
            .collect();
        let Some(&(_, longest)) = prefixes.last() else {
            return Ok(Split {
                input: total,
                ..Split::default()
            });
        };
        let mut cache = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let read = prefixes
            .iter()
            .rev()
            .find(|(hash, _)| cache.contains(hash))
            .map_or(0, |(_, tokens)| *tokens);
        cache.extend(prefixes.iter().map(|(hash, _)| *hash));
        let longest = longest.min(total);
        Ok(Split {
            input: total - longest,
            write: longest - read.min(longest),
            read: read.min(longest),
        })
    }
}

/// (hash, tokens) of the prompt up to each breakpoint, in prompt order. The hash covers the
/// model and every block up to the breakpoint, markers left out.
fn prefixes(request: &Value) -> Vec<(u64, u64)> {
    let mut hasher = DefaultHasher::new();
    request.get("model").map(Value::to_string).hash(&mut hasher);
    let mut words = 0;
    let mut out = Vec::new();
    let mut block = |block: &Value, counted: usize| {
        let mut unmarked = block.clone();
        let marked = unmarked
            .as_object_mut()
            .and_then(|o| o.remove("cache_control"))
            .is_some();
        unmarked.to_string().hash(&mut hasher);
        words += counted;
        if marked {
            out.push((hasher.finish(), text::tokens(words)));
        }
    };
    for tool in array_at(request, "tools") {
        block(tool, 0);
    }
    match request.get("system") {
        Some(Value::Array(blocks)) => {
            for b in blocks {
                block(b, text::words(&block_text(b)));
            }
        }
        Some(system) => block(system, text::words(&content_text(Some(system)))),
        None => {}
    }
    for message in array_at(request, "messages") {
        match message.get("content") {
            Some(Value::Array(blocks)) => {
                for b in blocks {
                    block(b, text::words(&block_text(b)));
                }
            }
            Some(content) => block(content, text::words(&content_text(Some(content)))),
            None => {}
        }
    }
    out
}

/// The text a block counts as input: a text block's text, a tool result's content.
fn block_text(block: &Value) -> String {
    match str_at(block, "type") {
        "text" => str_at(block, "text").to_owned(),
        "tool_result" => content_text(block.get("content")),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(marked: bool) -> Value {
        let long = "word ".repeat(1100);
        let mut block = json!({"type": "text", "text": long});
        if marked {
            block["cache_control"] = json!({"type": "ephemeral"});
        }
        json!({"model": "claude", "system": [block], "messages": [{"role": "user", "content": "Hi there"}]})
    }

    #[test]
    fn first_call_writes_and_a_repeat_reads() {
        let cache = PromptCache::default();
        let first = cache.split(&request(true), 1102).expect("split");
        assert_eq!(
            first,
            Split {
                input: 2,
                write: 1100,
                read: 0
            }
        );
        let again = cache.split(&request(true), 1102).expect("split");
        assert_eq!(
            again,
            Split {
                input: 2,
                write: 0,
                read: 1100
            }
        );
    }

    #[test]
    fn without_markers_or_below_the_minimum_nothing_is_cached() {
        let cache = PromptCache::default();
        assert_eq!(
            cache.split(&request(false), 1102).expect("split").input,
            1102
        );
        let short = json!({"model": "c", "system": [{"type": "text", "text": "short", "cache_control": {"type": "ephemeral"}}], "messages": []});
        assert_eq!(
            cache.split(&short, 1).expect("split"),
            Split {
                input: 1,
                write: 0,
                read: 0
            }
        );
    }

    #[test]
    fn more_than_four_breakpoints_are_refused() {
        let marked = json!({"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}});
        let request = json!({"model": "c", "system": [marked, marked, marked, marked, marked]});
        assert!(PromptCache::default().split(&request, 5).is_err());
    }
}

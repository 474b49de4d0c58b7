//! Fallback chains: which group serves a request after its own could not (DESIGN.md routing,
//! `routing.fallbacks`, `routing.context_fallbacks`, `routing.content_fallbacks`).
//!
//! Chains may form cycles across one another (`a: [b]`, `b: [a]`; validation only forbids a
//! chain naming its own group). Resolution therefore always skips the groups a request already
//! visited, so a request is served at most once by each group and a walk always ends.

use llmux_protocol::error::ErrorClass;

use crate::RoutingTable;

impl RoutingTable {
    /// The chain of `name` for `class`, in order, without the groups in `visited`.
    ///
    /// `class` is `None` when the group is exhausted (every combination failed, is open or is
    /// cooling down): `routing.fallbacks`. A vendor error of class
    /// [`ContextWindowExceeded`](ErrorClass::ContextWindowExceeded) uses
    /// `routing.context_fallbacks`, [`ContentFilter`](ErrorClass::ContentFilter)
    /// `routing.content_fallbacks`; each class uses only its own chain, and
    /// [`Other`](ErrorClass::Other) none.
    pub fn fallbacks<'t>(
        &'t self,
        name: &str,
        class: Option<ErrorClass>,
        visited: &[&str],
    ) -> Vec<&'t str> {
        self.chain(name, class)
            .iter()
            .map(String::as_str)
            .filter(|next| !visited.contains(next))
            .collect()
    }

    /// The next group along the chains, for a request that has visited the groups `path`
    /// (first the one it asked for, last the one that just failed with `class`), or `None`.
    ///
    /// The chain of the last group comes first; when all of its groups were visited, the chain
    /// of the group before it, and so on back to the requested one. With `gpt-4o: [claude,
    /// gemini]` and `claude: [mistral]`, a request for `gpt-4o` whose every group is exhausted
    /// visits gpt-4o → claude → mistral → gemini, each once.
    pub fn next_fallback<'t>(
        &'t self,
        path: &[&str],
        class: Option<ErrorClass>,
    ) -> Option<&'t str> {
        path.iter().rev().find_map(|group| {
            self.chain(group, class)
                .iter()
                .map(String::as_str)
                .find(|next| !path.contains(next))
        })
    }

    fn chain(&self, name: &str, class: Option<ErrorClass>) -> &[String] {
        let chains = match class {
            None => &self.routing.fallbacks,
            Some(ErrorClass::ContextWindowExceeded) => &self.routing.context_fallbacks,
            Some(ErrorClass::ContentFilter) => &self.routing.content_fallbacks,
            Some(ErrorClass::Other) => return &[],
        };
        chains.get(name).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use llmux_config::{Format, from_str};

    use super::*;

    fn table() -> RoutingTable {
        let config = from_str(
            r#"
credentials:
  - { platform: openai, value: sk-a }
  - { platform: anthropic, value: sk-ant-a }
  - { platform: gemini, value: g-a }
models:
  - { vendor: openai, model: gpt-4o }
  - { vendor: openai, model: gpt-4.1, name: long }
  - { vendor: anthropic, model: claude-sonnet-4-5, name: claude }
  - { vendor: gemini, model: gemini-2.5-pro, name: gemini }
  - { vendor: gemini, model: gemini-2.5-flash, name: mistral }
routing:
  fallbacks:
    gpt-4o: [claude, gemini]
    claude: [mistral, gpt-4o]
    gemini: [gpt-4o]
  context_fallbacks: { gpt-4o: [long, gemini] }
  content_fallbacks: { gpt-4o: [claude] }
"#,
            Format::Yaml,
            &|_| None,
        )
        .expect("test config is valid");
        RoutingTable::compile(&config)
    }

    #[test]
    fn each_class_uses_its_own_chain() {
        let table = table();
        assert_eq!(
            table.fallbacks("gpt-4o", None, &["gpt-4o"]),
            ["claude", "gemini"]
        );
        assert_eq!(
            table.fallbacks("gpt-4o", Some(ErrorClass::ContextWindowExceeded), &[]),
            ["long", "gemini"]
        );
        assert_eq!(
            table.fallbacks("gpt-4o", Some(ErrorClass::ContentFilter), &[]),
            ["claude"]
        );
        assert!(
            table
                .fallbacks("gpt-4o", Some(ErrorClass::Other), &[])
                .is_empty()
        );
        // No chain for this group and class.
        assert!(
            table
                .fallbacks("claude", Some(ErrorClass::ContentFilter), &[])
                .is_empty()
        );
        assert!(table.fallbacks("unknown", None, &[]).is_empty());
    }

    #[test]
    fn visited_groups_are_skipped() {
        let table = table();
        assert_eq!(
            table.fallbacks("gpt-4o", None, &["gpt-4o", "claude"]),
            ["gemini"]
        );
        assert_eq!(
            table.fallbacks("claude", None, &["gpt-4o", "claude"]),
            ["mistral"]
        );
    }

    #[test]
    fn a_walk_backtracks_to_earlier_chains_and_ends_despite_cycles() {
        let table = table();
        let mut path = vec!["gpt-4o"];
        while let Some(next) = table.next_fallback(&path, None) {
            path.push(next);
        }
        // claude's chain first (mistral; gpt-4o was visited), then mistral has none, so back
        // to claude's (done) and gpt-4o's: gemini. gemini → gpt-4o is a cycle, skipped.
        assert_eq!(path, ["gpt-4o", "claude", "mistral", "gemini"]);
        let mut path = vec!["gemini"];
        while let Some(next) = table.next_fallback(&path, None) {
            path.push(next);
        }
        assert_eq!(path, ["gemini", "gpt-4o", "claude", "mistral"]);
    }

    #[test]
    fn a_walk_follows_the_class_of_the_last_failure() {
        let table = table();
        assert_eq!(
            table.next_fallback(&["gpt-4o"], Some(ErrorClass::ContextWindowExceeded)),
            Some("long")
        );
        // `long` has no context chain of its own: back to gpt-4o's.
        assert_eq!(
            table.next_fallback(&["gpt-4o", "long"], Some(ErrorClass::ContextWindowExceeded)),
            Some("gemini")
        );
        assert_eq!(
            table.next_fallback(
                &["gpt-4o", "long", "gemini"],
                Some(ErrorClass::ContextWindowExceeded)
            ),
            None
        );
        assert_eq!(
            table.next_fallback(&["gpt-4o"], Some(ErrorClass::Other)),
            None
        );
    }
}

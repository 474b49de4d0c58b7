//! What the mock answers, decided once from vendor-neutral facts about the request.
//!
//! The rules are the same for every vendor: echo the last user text; after a tool result,
//! acknowledge it; when tools are declared and allowed, call one (or all, for "parallel").
//!
//! A test driving a real client, whose requests it cannot shape, scripts the answer in its
//! prompt instead: `mock:call <tool> <JSON object>` calls that declared tool with those
//! arguments, and `mock:text` answers in text although tools are declared.

use crate::text;

/// The reply when the last user message holds no text.
pub(crate) const FALLBACK: &str = "Hello from the llmux mock!";

/// How the request constrains tool use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Choice<'a> {
    /// The model may call any declared tool.
    Auto,
    /// The model must not call tools.
    None,
    /// The model must call this tool.
    Named(&'a str),
}

/// The facts a vendor handler extracts from its request.
#[derive(Debug)]
pub(crate) struct Facts<'a> {
    /// Text of the last user message (its text parts joined with "").
    pub user_text: String,
    /// The tool result text when the conversation ends with tool results instead of user text.
    pub tool_result: Option<String>,
    /// Declared tool names, in declaration order.
    pub tools: Vec<&'a str>,
    pub choice: Choice<'a>,
}

/// One tool call the mock makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ToolCall {
    pub name: String,
    /// Compact JSON object text: `{"text":<last user text>}`.
    pub arguments: String,
}

/// The mock's answer, before it is put in a vendor format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reply {
    Text(String),
    Tools(Vec<ToolCall>),
}

impl Reply {
    /// Output tokens: words of the text, or of every call's arguments.
    pub fn output_tokens(&self) -> u64 {
        match self {
            Reply::Text(text) => text::tokens(text::words(text)),
            Reply::Tools(calls) => {
                text::tokens(calls.iter().map(|c| text::words(&c.arguments)).sum())
            }
        }
    }
}

/// An answer scripted in the user text.
#[derive(Debug, PartialEq, Eq)]
enum Directive<'a> {
    /// `mock:call <tool> <JSON object>`.
    Call { name: &'a str, arguments: String },
    /// `mock:text`.
    Text,
}

/// The first directive in `text`, if any; a `mock:call` without a tool name and a JSON object
/// is no directive.
fn directive(text: &str) -> Option<Directive<'_>> {
    const CALL: &str = "mock:call ";
    let call = text.find(CALL);
    let plain = text.find("mock:text");
    match (call, plain) {
        (Some(at), plain) if plain.is_none_or(|p| at < p) => {
            let rest = text[at + CALL.len()..].trim_start();
            let (name, rest) = rest.split_once(char::is_whitespace)?;
            // The object ends where its JSON ends; whatever text follows is ignored.
            let arguments = serde_json::Deserializer::from_str(rest.trim_start())
                .into_iter::<serde_json::Map<String, serde_json::Value>>()
                .next()?
                .ok()?;
            Some(Directive::Call {
                name,
                arguments: serde_json::Value::Object(arguments).to_string(),
            })
        }
        (_, Some(_)) => Some(Directive::Text),
        _ => None,
    }
}

/// Decides the reply for `facts`.
pub(crate) fn decide(facts: &Facts<'_>) -> Reply {
    if let Some(result) = &facts.tool_result {
        return Reply::Text(format!("Tool result received: {result}"));
    }
    match directive(&facts.user_text) {
        Some(Directive::Text) => return Reply::Text(facts.user_text.clone()),
        // A `tool_choice` the client set still binds the mock.
        Some(Directive::Call { .. }) if facts.choice != Choice::Auto => {}
        Some(Directive::Call { name, arguments }) => {
            // A call to a tool the client did not offer would be the mock's bug, not the client's.
            if !facts.tools.contains(&name) {
                return Reply::Text(format!("mock: tool {name} was not offered"));
            }
            return Reply::Tools(vec![ToolCall {
                name: name.to_owned(),
                arguments,
            }]);
        }
        None => {}
    }
    let names: Vec<&str> = match facts.choice {
        Choice::None => Vec::new(),
        // A named tool wins over "parallel": the caller asked for exactly that one.
        Choice::Named(name) if !facts.tools.is_empty() => vec![name],
        Choice::Named(_) => Vec::new(),
        Choice::Auto if facts.tools.len() >= 2 && text::mentions_parallel(&facts.user_text) => {
            facts.tools.clone()
        }
        Choice::Auto => facts.tools.first().copied().into_iter().collect(),
    };
    if names.is_empty() {
        let reply = if facts.user_text.is_empty() {
            FALLBACK.to_owned()
        } else {
            facts.user_text.clone()
        };
        return Reply::Text(reply);
    }
    let arguments = serde_json::json!({ "text": facts.user_text }).to_string();
    Reply::Tools(
        names
            .into_iter()
            .map(|name| ToolCall {
                name: name.to_owned(),
                arguments: arguments.clone(),
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(user: &str, tools: &[&'static str], choice: Choice<'static>) -> Facts<'static> {
        Facts {
            user_text: user.to_owned(),
            tool_result: None,
            tools: tools.to_vec(),
            choice,
        }
    }

    #[test]
    fn echoes_or_falls_back() {
        assert_eq!(
            decide(&facts("hi there", &[], Choice::Auto)),
            Reply::Text("hi there".into())
        );
        assert_eq!(
            decide(&facts("", &[], Choice::Auto)),
            Reply::Text(FALLBACK.into())
        );
        assert_eq!(
            decide(&facts("hi", &["a"], Choice::None)),
            Reply::Text("hi".into())
        );
    }

    #[test]
    fn calls_first_named_or_all_tools() {
        let one = |reply: Reply| match reply {
            Reply::Tools(calls) => calls.into_iter().map(|c| c.name).collect::<Vec<_>>(),
            Reply::Text(t) => vec![t],
        };
        assert_eq!(one(decide(&facts("x", &["a", "b"], Choice::Auto))), ["a"]);
        assert_eq!(
            one(decide(&facts("x", &["a", "b"], Choice::Named("b")))),
            ["b"]
        );
        assert_eq!(
            one(decide(&facts("go parallel", &["a", "b"], Choice::Auto))),
            ["a", "b"]
        );
        let Reply::Tools(calls) = decide(&facts("say \"hi\"", &["a"], Choice::Auto)) else {
            panic!("expected tools");
        };
        assert_eq!(calls[0].arguments, r#"{"text":"say \"hi\""}"#);
    }

    #[test]
    fn prompt_scripts_the_call_or_a_text_answer() {
        let f = facts(
            "Read it. mock:call Read {\"file_path\": \"/w/notes.txt\"} please",
            &["Agent", "Read"],
            Choice::Auto,
        );
        assert_eq!(
            decide(&f),
            Reply::Tools(vec![ToolCall {
                name: "Read".into(),
                arguments: r#"{"file_path":"/w/notes.txt"}"#.into(),
            }])
        );
        let missing = facts("mock:call Write {}", &["Read"], Choice::Auto);
        assert_eq!(
            decide(&missing),
            Reply::Text("mock: tool Write was not offered".into())
        );
        let plain = facts("hello mock:text", &["Agent"], Choice::Auto);
        assert_eq!(decide(&plain), Reply::Text("hello mock:text".into()));
        let refused = facts("mock:call Read {}", &["Read"], Choice::None);
        assert_eq!(decide(&refused), Reply::Text("mock:call Read {}".into()));
        // Not a directive: no JSON object after the name.
        let broken = facts("mock:call Read now", &["Agent", "Read"], Choice::Auto);
        assert!(matches!(decide(&broken), Reply::Tools(calls) if calls[0].name == "Agent"));
    }

    #[test]
    fn tool_result_is_acknowledged() {
        let mut f = facts("x", &["a"], Choice::Auto);
        f.tool_result = Some("42".into());
        assert_eq!(decide(&f), Reply::Text("Tool result received: 42".into()));
    }
}

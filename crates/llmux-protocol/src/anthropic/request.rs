//! Requests: neutral → Anthropic (egress) and Anthropic → neutral (the `/v1/messages` ingress).
//!
//! Lossy points, each a deliberate choice:
//! - `seed`, `presence_penalty` and `frequency_penalty` have no Anthropic equivalent and are
//!   dropped; so are OpenAI's image `detail` and a tool's `strict` flag.
//! - `response_format` has no plain-API equivalent (structured outputs are a beta that not every
//!   model accepts), so it becomes a final system instruction asking for JSON (and the schema).
//! - Text that is empty or only whitespace is dropped: Anthropic rejects such text blocks.
//! - History with tool calls or results but no tools offered (Anthropic refuses it) declares the
//!   tools the history called, with `tool_choice: none` (see `history_tools`).
//! - Reasoning without an Anthropic signature (from another vendor, or never signed) is dropped
//!   from history: Anthropic rejects thinking blocks it cannot verify.
//! - With thinking enabled, Anthropic accepts only `temperature` 1, no `top_k` and a `top_p`
//!   of at least 0.95; other values are dropped rather than failing the request. Thinking
//!   itself is dropped where Anthropic would refuse it (see `thinking_allowed`).
//! - On ingress, `cache_control`, citations and unknown top-level fields are ignored; images
//!   inside a `tool_result` move to the user message that follows the tool results (the neutral
//!   tool result is text only).
//! - On ingress (which only serves other vendors: Anthropic→Anthropic is a byte path),
//!   Claude Code's fields are mapped: `thinking` (`enabled`, `adaptive`, `disabled`, and
//!   `display: "omitted"` as [`Request::omit_reasoning`]) and `output_config.effort` become
//!   the neutral reasoning settings; `context_management` edits are applied here; `system`
//!   messages join the system instructions; Anthropic-defined tools are dropped and listed in
//!   [`Request::dropped_tools`]. README "Agent CLIs: fields and mappings" has the table.

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

use super::{BlockOut, ImageSourceOut, Input, WireBlock, WireType, compact_json, error_reason};
use crate::neutral::{
    self, CacheSpot, Image, ImageSource, Message, Part, Reasoning, ReasoningConfig,
    ReasoningOrigin, Request, ResponseFormat, Role, Sampling, Tool, ToolCall, ToolChoice,
    ToolResult, untag_token,
};
use crate::openai_chat::{InvalidRequest, describe_error, require_object};

/// Anthropic's smallest accepted thinking budget.
const MIN_THINKING_BUDGET: u32 = 1024;

/// The schema sent for a tool that declares none: Anthropic requires `input_schema`.
fn empty_schema() -> Value {
    serde_json::json!({"type": "object", "properties": {}})
}

#[derive(Serialize)]
struct RequestOut<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<SystemOut<'a>>,
    messages: Vec<TurnOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<ToolChoiceOut<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<ThinkingOut>,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<MetadataOut<'a>>,
    #[serde(skip_serializing_if = "is_false")]
    stream: bool,
}

fn is_false(value: &bool) -> bool {
    !*value
}

struct TurnOut<'a> {
    role: &'static str,
    content: Vec<BlockOut<'a>>,
    /// Prompt-cache breakpoints: (index into `content`, the marker).
    cache: Vec<(usize, CacheControlOut<'a>)>,
}

impl Serialize for TurnOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut turn = serializer.serialize_struct("TurnOut", 2)?;
        turn.serialize_field("role", self.role)?;
        turn.serialize_field("content", &ContentOut(self))?;
        turn.end()
    }
}

/// A turn's blocks, each with its `cache_control` when the client set a breakpoint on it.
struct ContentOut<'t, 'a>(&'t TurnOut<'a>);

impl Serialize for ContentOut<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let turn = self.0;
        let mut seq = serializer.serialize_seq(Some(turn.content.len()))?;
        for (i, block) in turn.content.iter().enumerate() {
            match turn.cache.iter().find(|(at, _)| *at == i) {
                Some((_, cache_control)) => seq.serialize_element(&Marked {
                    block,
                    cache_control,
                })?,
                None => seq.serialize_element(block)?,
            }
        }
        seq.end()
    }
}

#[derive(Serialize)]
struct Marked<'b, 'a> {
    #[serde(flatten)]
    block: &'b BlockOut<'a>,
    cache_control: &'b CacheControlOut<'a>,
}

/// `cache_control: {"type": "ephemeral", "ttl"?}`.
#[derive(Serialize, Clone, Copy)]
struct CacheControlOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    ttl: Option<&'a str>,
}

impl<'a> CacheControlOut<'a> {
    fn of(mark: &'a neutral::CacheMark) -> Self {
        Self {
            kind: "ephemeral",
            ttl: mark.ttl.as_deref(),
        }
    }
}

/// `system`: a string, or text blocks when a breakpoint sits on one of them.
#[derive(Serialize)]
#[serde(untagged)]
enum SystemOut<'a> {
    Text(String),
    Blocks(Vec<SystemBlockOut<'a>>),
}

#[derive(Serialize)]
struct SystemBlockOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<CacheControlOut<'a>>,
}

#[derive(Serialize)]
struct ToolOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: Cow<'a, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<CacheControlOut<'a>>,
}

#[derive(Serialize)]
struct ToolChoiceOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "is_false")]
    disable_parallel_tool_use: bool,
}

#[derive(Serialize)]
struct ThinkingOut {
    #[serde(rename = "type")]
    kind: &'static str,
    budget_tokens: u32,
}

#[derive(Serialize)]
struct MetadataOut<'a> {
    user_id: &'a str,
}

/// Builds an Anthropic Messages request body from a neutral request.
///
/// `default_max_tokens` is used when the request sets no limit (Anthropic requires one). When
/// thinking is enabled, `max_tokens` must exceed the thinking budget; a smaller limit is raised
/// to `budget + default_max_tokens`.
pub fn encode_request(request: &Request, default_max_tokens: u32) -> Vec<u8> {
    let messages = encode_messages(request);
    let mut tools: Vec<ToolOut<'_>> = request
        .tools
        .iter()
        .enumerate()
        .map(|(i, tool)| ToolOut {
            cache_control: request
                .cache_mark(CacheSpot::Tool(i))
                .map(CacheControlOut::of),
            ..encode_tool(tool)
        })
        .collect();
    let mut tool_choice = encode_tool_choice(request);
    if tools.is_empty() && has_tool_blocks(&messages) {
        tools = history_tools(&messages);
        tool_choice = Some(ToolChoiceOut {
            kind: "none",
            name: None,
            disable_parallel_tool_use: false,
        });
    }
    let budget = thinking_budget(request.reasoning.as_ref())
        .filter(|_| thinking_allowed(tool_choice.as_ref(), &messages));
    let mut max_tokens = request.sampling.max_tokens.unwrap_or(default_max_tokens);
    if let Some(budget) = budget
        && max_tokens <= budget
    {
        max_tokens = budget.saturating_add(default_max_tokens.max(1));
    }
    let sampling = &request.sampling;
    let thinking = budget.is_some();
    let body = RequestOut {
        model: &request.model,
        max_tokens,
        system: system_out(request),
        messages,
        tools,
        tool_choice,
        stop_sequences: &sampling.stop,
        temperature: sampling
            .temperature
            .filter(|t| !thinking || (t - 1.0).abs() < f64::EPSILON),
        top_p: sampling.top_p.filter(|p| !thinking || *p >= 0.95),
        top_k: sampling.top_k.filter(|_| !thinking),
        thinking: budget.map(|budget_tokens| ThinkingOut {
            kind: "enabled",
            budget_tokens,
        }),
        metadata: request
            .user
            .as_deref()
            .map(|user_id| MetadataOut { user_id }),
        stream: request.stream,
    };
    serde_json::to_vec(&body).unwrap_or_default()
}

/// Whether Anthropic accepts thinking for this request. It refuses thinking together with a
/// forced tool choice (`any`, `tool`), and when the last assistant turn made tool calls without
/// starting with its thinking block — the usual case for history written by an OpenAI-style
/// client or another vendor, which never returns signed thinking. In both cases the request is
/// still useful without thinking, so thinking is dropped rather than failing the call.
fn thinking_allowed(tool_choice: Option<&ToolChoiceOut<'_>>, messages: &[TurnOut<'_>]) -> bool {
    if tool_choice.is_some_and(|choice| matches!(choice.kind, "any" | "tool")) {
        return false;
    }
    match messages.iter().rev().find(|turn| turn.role == "assistant") {
        Some(turn)
            if turn
                .content
                .iter()
                .any(|b| matches!(b, BlockOut::ToolUse { .. })) =>
        {
            matches!(
                turn.content.first(),
                Some(BlockOut::Thinking { .. } | BlockOut::RedactedThinking { .. })
            )
        }
        _ => true,
    }
}

/// The thinking budget to ask for: an explicit budget wins; otherwise OpenAI-style effort maps
/// to a fixed budget (`minimal`, `none` and unknown efforts mean no thinking). A zero budget
/// means "no thinking" (Gemini's convention); small budgets are raised to Anthropic's minimum.
fn thinking_budget(reasoning: Option<&ReasoningConfig>) -> Option<u32> {
    let reasoning = reasoning?;
    let budget = match reasoning.budget_tokens {
        Some(budget) => budget,
        None => match reasoning.effort.as_deref()? {
            "low" => 1024,
            "medium" => 4096,
            "high" => 16384,
            _ => return None,
        },
    };
    (budget > 0).then(|| budget.max(MIN_THINKING_BUDGET))
}

/// The system prompt: every non-empty instruction, then the JSON instruction standing in for
/// `response_format`; one string, or one block per instruction when the client set a cache
/// breakpoint on one.
fn system_out(request: &Request) -> Option<SystemOut<'_>> {
    let marked = |i: usize| request.cache_mark(CacheSpot::System(i));
    if (0..request.system.len()).any(|i| marked(i).is_some()) {
        let mut blocks: Vec<SystemBlockOut<'_>> = request
            .system
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.trim().is_empty())
            .map(|(i, s)| SystemBlockOut {
                kind: "text",
                text: Cow::Borrowed(s.as_str()),
                cache_control: marked(i).map(CacheControlOut::of),
            })
            .collect();
        blocks.extend(json_instruction(request).map(|text| SystemBlockOut {
            kind: "text",
            text,
            cache_control: None,
        }));
        return Some(SystemOut::Blocks(blocks));
    }
    let mut parts: Vec<Cow<'_, str>> = request
        .system
        .iter()
        .filter(|s| !s.trim().is_empty())
        .map(|s| Cow::Borrowed(s.as_str()))
        .collect();
    parts.extend(json_instruction(request));
    (!parts.is_empty()).then(|| SystemOut::Text(parts.join("\n\n")))
}

/// The instruction standing in for `response_format` (Anthropic has no JSON mode).
fn json_instruction(request: &Request) -> Option<Cow<'_, str>> {
    match &request.response_format {
        Some(ResponseFormat::JsonObject) => Some(Cow::Borrowed("Respond only with a JSON object.")),
        Some(ResponseFormat::JsonSchema { schema, .. }) => {
            let schema = serde_json::to_string(schema).unwrap_or_default();
            Some(Cow::Owned(format!(
                "Respond only with a JSON object matching this JSON schema: {schema}"
            )))
        }
        Some(ResponseFormat::Text) | None => None,
    }
}

/// A turn being built: `lead` blocks must come first (tool results in a user turn, thinking in
/// an assistant turn), `rest` keeps the order of everything else.
struct TurnBuilder<'a> {
    role: &'static str,
    lead: Vec<(BlockOut<'a>, Option<CacheControlOut<'a>>)>,
    rest: Vec<(BlockOut<'a>, Option<CacheControlOut<'a>>)>,
}

/// Neutral messages → alternating Anthropic turns. Tool messages become user turns and
/// consecutive turns of the same role are merged, since Anthropic requires alternation. A
/// block keeps the client's cache breakpoint wherever it lands.
fn encode_messages<'a>(request: &'a Request) -> Vec<TurnOut<'a>> {
    let mut turns: Vec<TurnBuilder<'_>> = Vec::new();
    for (m, message) in request.messages.iter().enumerate() {
        let assistant = message.role == Role::Assistant;
        let role = if assistant { "assistant" } else { "user" };
        let mut lead = Vec::new();
        let mut rest = Vec::new();
        let (mut lead_marks, mut rest_marks) = (Vec::new(), Vec::new());
        for (p, part) in message.parts.iter().enumerate() {
            let rest_before = rest.len();
            match part {
                Part::Text { text } if !text.trim().is_empty() => {
                    rest.push(BlockOut::Text { text });
                }
                Part::Text { .. } => {}
                Part::Image(image) => rest.push(BlockOut::Image {
                    source: encode_image_source(&image.source),
                }),
                // Only documents: the gateway refuses audio for Anthropic before encoding.
                Part::File(file) if file.kind == neutral::FileKind::Document => {
                    rest.push(BlockOut::Document {
                        source: encode_image_source(&file.source),
                        title: file.filename.as_deref(),
                    });
                }
                Part::File(_) => {}
                // A call in a user turn or a result in an assistant turn is invalid for
                // Anthropic; dropping it keeps the rest of the conversation usable.
                Part::ToolCall(call) if assistant => rest.push(BlockOut::ToolUse {
                    id: Cow::Borrowed(&call.id),
                    name: &call.name,
                    input: Input::from_arguments(&call.arguments),
                }),
                Part::ToolResult(result) if !assistant => lead.push(BlockOut::ToolResult {
                    tool_use_id: &result.call_id,
                    content: &result.content,
                    is_error: result.is_error,
                }),
                Part::Reasoning(reasoning) if assistant => {
                    lead.extend(encode_reasoning(reasoning));
                }
                Part::ToolCall(_) | Part::ToolResult(_) | Part::Reasoning(_) => {}
            }
            let spot = CacheSpot::Part {
                message: m,
                part: p,
            };
            if let Some(mark) = request.cache_mark(spot).map(CacheControlOut::of) {
                // Thinking blocks cannot carry a breakpoint; tool results and content can.
                if matches!(part, Part::ToolResult(_)) && !assistant && !lead.is_empty() {
                    lead_marks.push((lead.len() - 1, mark));
                } else if rest.len() > rest_before {
                    rest_marks.push((rest.len() - 1, mark));
                }
            }
        }
        if lead.is_empty() && rest.is_empty() {
            continue;
        }
        let with_marks = |blocks: Vec<BlockOut<'a>>, marks: Vec<(usize, CacheControlOut<'a>)>| {
            blocks
                .into_iter()
                .enumerate()
                .map(|(i, block)| {
                    let mark = marks.iter().find(|(at, _)| *at == i).map(|(_, m)| *m);
                    (block, mark)
                })
                .collect::<Vec<_>>()
        };
        let mut lead = with_marks(lead, lead_marks);
        let mut rest = with_marks(rest, rest_marks);
        match turns.last_mut() {
            Some(turn) if turn.role == role => {
                turn.lead.append(&mut lead);
                turn.rest.append(&mut rest);
            }
            _ => turns.push(TurnBuilder { role, lead, rest }),
        }
    }
    turns
        .into_iter()
        .map(|mut turn| {
            turn.lead.append(&mut turn.rest);
            let mut cache = Vec::new();
            let content = turn
                .lead
                .into_iter()
                .enumerate()
                .map(|(i, (block, mark))| {
                    cache.extend(mark.map(|mark| (i, mark)));
                    block
                })
                .collect();
            TurnOut {
                role: turn.role,
                content,
                cache,
            }
        })
        .collect()
}

fn encode_image_source(source: &ImageSource) -> ImageSourceOut<'_> {
    match source {
        ImageSource::Base64 { media_type, data } => ImageSourceOut::Base64 {
            media_type: Cow::Borrowed(media_type),
            data: Cow::Borrowed(data),
        },
        // A `data:` URL that reached us as a URL is still inline data for Anthropic.
        ImageSource::Url(url) => match ImageSource::from_url(url) {
            ImageSource::Base64 { media_type, data } => ImageSourceOut::Base64 {
                media_type: Cow::Owned(media_type),
                data: Cow::Owned(data),
            },
            ImageSource::Url(_) => ImageSourceOut::Url { url },
        },
    }
}

/// Reasoning as history: redacted data goes back as `redacted_thinking`; readable thinking
/// needs its signature, without which Anthropic refuses the block. Only Anthropic's own tokens
/// go back: Anthropic refuses another vendor's (a Gemini signature, OpenAI encrypted
/// reasoning), so that reasoning is dropped.
fn encode_reasoning(reasoning: &Reasoning) -> Option<BlockOut<'_>> {
    if !reasoning.belongs_to(ReasoningOrigin::Anthropic) {
        return None;
    }
    if let Some(data) = &reasoning.redacted {
        return Some(BlockOut::RedactedThinking {
            data: Cow::Borrowed(data),
        });
    }
    let signature = reasoning.signature.as_deref().filter(|s| !s.is_empty())?;
    Some(BlockOut::Thinking {
        thinking: &reasoning.text,
        signature: Cow::Borrowed(signature),
    })
}

fn encode_tool(tool: &Tool) -> ToolOut<'_> {
    ToolOut {
        name: &tool.name,
        description: tool.description.as_deref(),
        input_schema: match &tool.parameters {
            Some(schema) => Cow::Borrowed(schema),
            None => Cow::Owned(empty_schema()),
        },
        cache_control: None,
    }
}

/// The tool declared when a request's history holds tool calls but no tool of it has a name
/// Anthropic accepts; `tool_choice: none` keeps the model from calling it.
const PLACEHOLDER_TOOL: &str = "llmux_no_tools_offered";

/// Whether any turn holds a `tool_use` or `tool_result` block.
fn has_tool_blocks(messages: &[TurnOut<'_>]) -> bool {
    messages.iter().flat_map(|turn| &turn.content).any(|block| {
        matches!(
            block,
            BlockOut::ToolUse { .. } | BlockOut::ToolResult { .. }
        )
    })
}

/// Tools for a request that offers none but carries tool history (a follow-up turn, or a
/// client whose only tools were dropped). Anthropic refuses such a request ("Requests which
/// include `tool_use` or `tool_result` blocks must define tools"), so the tools the history
/// called are declared again, with an empty schema, and the caller sets `tool_choice: none`:
/// the client offered no tool for this turn, so the model must answer in text, as on every
/// other vendor.
fn history_tools<'a>(messages: &[TurnOut<'a>]) -> Vec<ToolOut<'a>> {
    let mut tools: Vec<ToolOut<'a>> = Vec::new();
    for block in messages.iter().flat_map(|turn| &turn.content) {
        if let BlockOut::ToolUse { name, .. } = block
            && is_tool_name(name)
            && !tools.iter().any(|tool| tool.name == *name)
        {
            tools.push(ToolOut {
                name,
                description: None,
                input_schema: Cow::Owned(empty_schema()),
                cache_control: None,
            });
        }
    }
    if tools.is_empty() {
        tools.push(ToolOut {
            name: PLACEHOLDER_TOOL,
            description: Some("Placeholder: no tool is offered in this turn."),
            input_schema: Cow::Owned(empty_schema()),
            cache_control: None,
        });
    }
    tools
}

/// Whether Anthropic accepts `name` as a tool name (`^[a-zA-Z0-9_-]{1,64}$`).
fn is_tool_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `tool_choice`, omitted without tools (Anthropic refuses a choice with nothing to choose).
/// `parallel_tool_calls: false` rides on the choice, so it forces an explicit `auto`.
fn encode_tool_choice(request: &Request) -> Option<ToolChoiceOut<'_>> {
    if request.tools.is_empty() {
        return None;
    }
    let disable_parallel_tool_use = request.parallel_tool_calls == Some(false);
    let (kind, name) = match &request.tool_choice {
        None if !disable_parallel_tool_use => return None,
        None | Some(ToolChoice::Auto) => ("auto", None),
        Some(ToolChoice::Required) => ("any", None),
        Some(ToolChoice::Named(name)) => ("tool", Some(name.as_str())),
        Some(ToolChoice::None) => {
            return Some(ToolChoiceOut {
                kind: "none",
                name: None,
                disable_parallel_tool_use: false,
            });
        }
    };
    Some(ToolChoiceOut {
        kind,
        name,
        disable_parallel_tool_use,
    })
}

// ---------------------------------------------------------------------------------------------
// Ingress: a client's Messages body → neutral.

#[derive(Deserialize)]
struct WireRequest<'a> {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    messages: Option<Vec<WireMessage<'a>>>,
    #[serde(default, borrow)]
    system: Option<&'a RawValue>,
    #[serde(default)]
    tools: Option<Vec<WireTool>>,
    #[serde(default)]
    tool_choice: Option<WireToolChoice>,
    #[serde(default)]
    stop_sequences: Option<Vec<String>>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    top_k: Option<u32>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    metadata: Option<WireMetadata>,
    #[serde(default)]
    thinking: Option<WireThinking>,
    #[serde(default)]
    output_config: Option<WireOutputConfig>,
    #[serde(default)]
    context_management: Option<WireContextManagement>,
}

/// `output_config` (beta `effort-2025-11-24`; `format` is structured outputs).
#[derive(Deserialize)]
struct WireOutputConfig {
    #[serde(default)]
    effort: Option<String>,
    #[serde(default)]
    format: Option<WireOutputFormat>,
}

#[derive(Deserialize)]
struct WireOutputFormat {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    schema: Option<Value>,
}

/// `context_management` (beta `context-management-2025-06-27`): edits Anthropic applies to the
/// conversation before the model reads it. Other vendors cannot, so llmux applies them.
#[derive(Deserialize)]
struct WireContextManagement {
    #[serde(default)]
    edits: Vec<WireEdit>,
}

/// One edit; every field is optional so unknown edit types read too (and are ignored).
#[derive(Deserialize)]
struct WireEdit {
    #[serde(rename = "type")]
    kind: String,
    /// `"all"` or `{"type": "thinking_turns" | "tool_uses", "value": n}`.
    #[serde(default)]
    keep: Option<Value>,
    /// `{"type": "input_tokens", "value": n}`.
    #[serde(default)]
    trigger: Option<Value>,
    #[serde(default)]
    exclude_tools: Vec<String>,
    #[serde(default)]
    clear_tool_inputs: Option<bool>,
}

#[derive(Deserialize)]
struct WireMessage<'a> {
    role: String,
    #[serde(borrow)]
    content: &'a RawValue,
}

#[derive(Deserialize)]
struct WireTool {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    // `defer_loading` (tool search, `advanced-tool-use-2025-11-20`: the tool is loaded only
    // once a search finds it) is deliberately not read: vendors without tool search are
    // offered the tool from the start, which lets the model do at least what the search would.
    // `cache_control` is not read either (the byte path to Anthropic keeps it).
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    input_schema: Option<Value>,
}

#[derive(Deserialize)]
struct WireToolChoice {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    disable_parallel_tool_use: Option<bool>,
}

#[derive(Deserialize)]
struct WireMetadata {
    #[serde(default)]
    user_id: Option<String>,
}

#[derive(Deserialize)]
struct WireThinking {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    budget_tokens: Option<u32>,
    /// `summarized`, `omitted`, `updates`…: only `omitted` changes what llmux returns.
    #[serde(default)]
    display: Option<String>,
}

#[derive(Deserialize)]
struct WireImageSource {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    data: Option<String>,
    #[serde(default)]
    url: Option<String>,
}

fn invalid(message: impl Into<String>, param: impl Into<String>) -> InvalidRequest {
    InvalidRequest {
        message: message.into(),
        param: Some(param.into()),
    }
}

fn missing(field: &str) -> InvalidRequest {
    invalid(format!("missing required field '{field}'"), field)
}

/// Reads a client's Messages request body into the neutral model. Errors name the field at
/// fault and are safe to show to the client.
pub fn decode_request(body: &[u8]) -> Result<Request, InvalidRequest> {
    require_object(body)?;
    let wire: WireRequest<'_> = match serde_json::from_slice(body) {
        Ok(wire) => wire,
        Err(_) => return Err(describe_error::<WireRequest<'_>>(body)),
    };
    let model = wire.model.ok_or_else(|| missing("model"))?;
    if model.is_empty() {
        return Err(invalid("'model' must not be empty", "model"));
    }
    let max_tokens = wire.max_tokens.ok_or_else(|| missing("max_tokens"))?;
    let messages = wire.messages.ok_or_else(|| missing("messages"))?;
    if messages.is_empty() {
        return Err(invalid(
            "'messages' must contain at least one message",
            "messages",
        ));
    }
    let tools = decode_tools(wire.tools.unwrap_or_default())?;
    let (tool_choice, parallel_tool_calls) = match wire.tool_choice {
        Some(choice) => decode_tool_choice(choice)?,
        None => (None, None),
    };
    let (tools, dropped_tools) = tools;
    let omit_reasoning = wire
        .thinking
        .as_ref()
        .is_some_and(|t| t.display.as_deref() == Some("omitted"));
    let (effort, response_format) = match wire.output_config {
        Some(config) => (
            config.effort.as_deref().and_then(decode_effort),
            config.format.and_then(decode_output_format),
        ),
        None => (None, None),
    };
    let reasoning = decode_thinking(wire.thinking, effort)?;
    let mut system = match wire.system {
        Some(system) => decode_system(system, "system")?,
        None => Vec::new(),
    };
    let mut messages = decode_messages(&messages, &mut system)?;
    if let Some(context) = wire.context_management {
        apply_context_edits(&context.edits, &mut messages);
    }
    Ok(Request {
        model,
        system,
        messages,
        tools,
        dropped_tools,
        omit_reasoning,
        url_headers: Vec::new(),
        // The byte path to Anthropic keeps the client's markers; other vendors need none.
        cache_marks: Vec::new(),
        tool_choice,
        parallel_tool_calls,
        sampling: Sampling {
            temperature: wire.temperature,
            top_p: wire.top_p,
            top_k: wire.top_k,
            max_tokens: Some(max_tokens),
            stop: wire.stop_sequences.unwrap_or_default(),
            seed: None,
            presence_penalty: None,
            frequency_penalty: None,
        },
        response_format,
        reasoning,
        stream: wire.stream.unwrap_or(false),
        user: wire.metadata.and_then(|m| m.user_id),
    })
}

/// `thinking` plus `output_config.effort` → neutral reasoning.
///
/// - `enabled` keeps its budget and also gets the effort that budget stands for, so vendors
///   that take only an effort (OpenAI `reasoning_effort`) think about as much.
/// - `adaptive` lets the model decide: the effort when one was sent, else the vendor's
///   default (an empty config).
/// - `disabled`, or no `thinking`: no reasoning settings, whatever the effort (Anthropic's
///   effort also shapes text and tool use, which other vendors have no knob for).
fn decode_thinking(
    thinking: Option<WireThinking>,
    effort: Option<&'static str>,
) -> Result<Option<ReasoningConfig>, InvalidRequest> {
    let Some(thinking) = thinking else {
        return Ok(None);
    };
    match thinking.kind.as_str() {
        "enabled" => {
            let budget = thinking
                .budget_tokens
                .ok_or_else(|| missing("thinking.budget_tokens"))?;
            Ok(Some(ReasoningConfig {
                effort: Some(effort.unwrap_or_else(|| budget_effort(budget)).to_owned()),
                budget_tokens: Some(budget),
            }))
        }
        "adaptive" => Ok(Some(ReasoningConfig {
            effort: effort.map(str::to_owned),
            budget_tokens: None,
        })),
        "disabled" => Ok(None),
        other => Err(invalid(
            format!("thinking type '{other}' is not supported"),
            "thinking.type",
        )),
    }
}

/// Anthropic's `output_config.effort` as the neutral (OpenAI-style) effort. `max` has no
/// OpenAI equivalent and becomes `high`; an unknown effort is ignored (the vendor's default).
fn decode_effort(effort: &str) -> Option<&'static str> {
    match effort {
        "low" => Some("low"),
        "medium" => Some("medium"),
        "high" | "max" => Some("high"),
        _ => None,
    }
}

/// The effort a thinking budget stands for (the inverse of the egress budgets).
fn budget_effort(budget: u32) -> &'static str {
    match budget {
        0..=2048 => "low",
        2049..=12288 => "medium",
        _ => "high",
    }
}

/// `output_config.format` (structured outputs): a JSON schema the answer must match.
fn decode_output_format(format: WireOutputFormat) -> Option<ResponseFormat> {
    match (format.kind.as_str(), format.schema) {
        ("json_schema", Some(schema)) => Some(ResponseFormat::JsonSchema {
            name: "response".to_owned(),
            schema,
            strict: Some(true),
        }),
        _ => None,
    }
}

/// A `keep` or `trigger` count: `{"type": …, "value": n}`; `"all"` is `None` (no limit).
fn edit_count(value: Option<&Value>, default: usize) -> Option<usize> {
    match value {
        None => Some(default),
        Some(Value::String(all)) if all == "all" => None,
        Some(value) => Some(
            value
                .get("value")
                .and_then(Value::as_u64)
                .map_or(default, |n| usize::try_from(n).unwrap_or(usize::MAX)),
        ),
    }
}

/// The placeholder a cleared tool result gets (Anthropic's edit leaves one too, so the model
/// knows something was there).
const CLEARED_TOOL_RESULT: &str = "[tool result cleared to save context]";

/// Applies `context_management` edits the way Anthropic would, before the conversation goes
/// to a vendor that has no such feature. Unknown edit types are ignored: each edit only
/// shrinks the context, so skipping one never changes what the model is asked.
///
/// - `clear_thinking_20251015`: reasoning is kept in the last `keep` assistant turns that
///   have any (`keep: "all"` keeps everything; the default is 1 turn) and removed elsewhere.
/// - `clear_tool_uses_20250919`: once the input passes `trigger` tokens (estimated; default
///   100 000), the results of all but the last `keep` tool calls (default 3) are replaced by a
///   placeholder, and with `clear_tool_inputs` their calls' arguments by `{}`. Calls of
///   `exclude_tools` are never cleared. `clear_at_least` is not needed: clearing everything
///   allowed already clears at least as much.
fn apply_context_edits(edits: &[WireEdit], messages: &mut Vec<Message>) {
    for edit in edits {
        match edit.kind.as_str() {
            "clear_thinking_20251015" => {
                let Some(keep) = edit_count(edit.keep.as_ref(), 1) else {
                    continue;
                };
                let mut seen = 0;
                for message in messages.iter_mut().rev() {
                    if message.role != Role::Assistant
                        || !message
                            .parts
                            .iter()
                            .any(|p| matches!(p, Part::Reasoning(_)))
                    {
                        continue;
                    }
                    seen += 1;
                    if seen > keep {
                        message.parts.retain(|p| !matches!(p, Part::Reasoning(_)));
                    }
                }
                messages.retain(|m| !m.parts.is_empty());
            }
            "clear_tool_uses_20250919" => clear_tool_uses(edit, messages),
            _ => {}
        }
    }
}

fn clear_tool_uses(edit: &WireEdit, messages: &mut [Message]) {
    let trigger = edit_count(edit.trigger.as_ref(), 100_000).unwrap_or(0);
    let estimate = Request {
        messages: messages.to_vec(),
        ..Request::default()
    }
    .estimate_input_tokens();
    if usize::try_from(estimate).unwrap_or(usize::MAX) <= trigger {
        return;
    }
    let Some(keep) = edit_count(edit.keep.as_ref(), 3) else {
        return;
    };
    // The calls that may be cleared, oldest first.
    let calls: Vec<String> = messages
        .iter()
        .flat_map(|m| &m.parts)
        .filter_map(|p| match p {
            Part::ToolCall(call) if !edit.exclude_tools.contains(&call.name) => {
                Some(call.id.clone())
            }
            _ => None,
        })
        .collect();
    let cleared: std::collections::HashSet<&str> = calls
        .iter()
        .take(calls.len().saturating_sub(keep))
        .map(String::as_str)
        .collect();
    let clear_inputs = edit.clear_tool_inputs == Some(true);
    for part in messages.iter_mut().flat_map(|m| &mut m.parts) {
        match part {
            Part::ToolResult(result) if cleared.contains(result.call_id.as_str()) => {
                CLEARED_TOOL_RESULT.clone_into(&mut result.content);
            }
            Part::ToolCall(call) if clear_inputs && cleared.contains(call.id.as_str()) => {
                "{}".clone_into(&mut call.arguments);
            }
            _ => {}
        }
    }
}

/// Content that is a string or an array of blocks (messages, `system`, `tool_result`).
enum Content<'a> {
    Text(String),
    Blocks(Vec<&'a RawValue>),
}

fn read_content<'a>(raw: &'a RawValue, path: &str) -> Result<Content<'a>, InvalidRequest> {
    let text = raw.get();
    let parsed = if text.starts_with('"') {
        serde_json::from_str(text).map(Content::Text)
    } else if text.starts_with('[') {
        serde_json::from_str(text).map(Content::Blocks)
    } else {
        return Err(invalid(
            format!("invalid '{path}': expected a string or an array of content blocks"),
            path,
        ));
    };
    parsed.map_err(|err| invalid(format!("invalid '{path}': {}", error_reason(&err)), path))
}

/// Reads one block; when the read fails, an unknown `type` is the better explanation.
fn read_block<'a>(raw: &'a RawValue, path: &str) -> Result<WireBlock<'a>, InvalidRequest> {
    serde_json::from_str(raw.get()).map_err(|err| {
        match serde_json::from_str::<WireType>(raw.get()) {
            Ok(header) if !is_known_block(&header.kind) => unsupported_block(&header.kind, path),
            _ => invalid(format!("invalid '{path}': {}", error_reason(&err)), path),
        }
    })
}

fn is_known_block(kind: &str) -> bool {
    matches!(
        kind,
        "text"
            | "image"
            | "document"
            | "tool_use"
            | "tool_result"
            | "thinking"
            | "redacted_thinking"
    )
}

fn unsupported_block(kind: &str, path: &str) -> InvalidRequest {
    invalid(
        format!("content block type '{kind}' is not supported"),
        format!("{path}.type"),
    )
}

fn required<T>(value: Option<T>, path: &str, field: &str) -> Result<T, InvalidRequest> {
    value.ok_or_else(|| missing(&format!("{path}.{field}")))
}

fn decode_system(raw: &RawValue, path: &str) -> Result<Vec<String>, InvalidRequest> {
    match read_content(raw, path)? {
        Content::Text(text) if text.is_empty() => Ok(Vec::new()),
        Content::Text(text) => Ok(vec![text]),
        Content::Blocks(blocks) => {
            let mut system = Vec::with_capacity(blocks.len());
            for (i, raw) in blocks.into_iter().enumerate() {
                let path = format!("{path}[{i}]");
                let block = read_block(raw, &path)?;
                if block.kind != "text" {
                    return Err(invalid(
                        format!("system block type '{}' is not supported", block.kind),
                        format!("{path}.type"),
                    ));
                }
                system.push(required(block.text, &path, "text")?);
            }
            Ok(system)
        }
    }
}

/// The conversation. A `system` message inside it (Claude Code sends them for per-turn
/// instructions, beta `per-turn-control-2026-07-01`) joins the system instructions: every
/// vendor behind the neutral model reads instructions there.
fn decode_messages(
    wire: &[WireMessage<'_>],
    system: &mut Vec<String>,
) -> Result<Vec<Message>, InvalidRequest> {
    let mut messages = Vec::with_capacity(wire.len());
    // Tool names by call id, so tool results can carry the name (Gemini needs it).
    let mut names: HashMap<String, String> = HashMap::new();
    for (i, message) in wire.iter().enumerate() {
        let path = format!("messages[{i}].content");
        let assistant = match message.role.as_str() {
            "user" => false,
            "assistant" => true,
            "system" => {
                system.extend(decode_system(message.content, &path)?);
                continue;
            }
            other => {
                return Err(invalid(
                    format!(
                        "invalid role '{other}' in messages[{i}]: expected 'user', 'assistant' or 'system'"
                    ),
                    format!("messages[{i}].role"),
                ));
            }
        };
        let blocks = match read_content(message.content, &path)? {
            Content::Text(text) => {
                let role = if assistant {
                    Role::Assistant
                } else {
                    Role::User
                };
                messages.push(Message {
                    role,
                    parts: vec![Part::Text { text }],
                });
                continue;
            }
            Content::Blocks(blocks) => blocks,
        };
        if assistant {
            let parts = decode_assistant_blocks(&blocks, &path, &mut names)?;
            if !parts.is_empty() {
                messages.push(Message {
                    role: Role::Assistant,
                    parts,
                });
            }
        } else {
            decode_user_blocks(&blocks, &path, &names, &mut messages)?;
        }
    }
    Ok(messages)
}

fn decode_assistant_blocks(
    blocks: &[&RawValue],
    path: &str,
    names: &mut HashMap<String, String>,
) -> Result<Vec<Part>, InvalidRequest> {
    let mut parts = Vec::with_capacity(blocks.len());
    for (j, raw) in blocks.iter().enumerate() {
        let path = format!("{path}[{j}]");
        let block = read_block(raw, &path)?;
        match block.kind.as_str() {
            "text" => parts.push(Part::Text {
                text: required(block.text, &path, "text")?,
            }),
            "image" => parts.push(decode_image(block.source, &path)?),
            "tool_use" => {
                let id = required(block.id, &path, "id")?;
                let name = required(block.name, &path, "name")?;
                names.insert(id.clone(), name.clone());
                parts.push(Part::ToolCall(ToolCall {
                    id,
                    name,
                    arguments: block
                        .input
                        .map_or_else(|| "{}".to_owned(), |raw| compact_json(raw.get())),
                    signature: None,
                }));
            }
            // A client's token is Anthropic's own unless llmux tagged it with another origin.
            "thinking" => {
                let text = required(block.thinking, &path, "thinking")?;
                let signature = block.signature.filter(|s| !s.is_empty());
                let (origin, signature) = match signature {
                    Some(signature) => {
                        let (origin, token) = untag_token(&signature, ReasoningOrigin::Anthropic);
                        (Some(origin), Some(token.to_owned()))
                    }
                    None => (None, None),
                };
                parts.push(Part::Reasoning(Reasoning {
                    text,
                    signature,
                    redacted: None,
                    origin,
                }));
            }
            "redacted_thinking" => {
                let data = required(block.data, &path, "data")?;
                let (origin, data) = untag_token(&data, ReasoningOrigin::Anthropic);
                parts.push(Part::Reasoning(Reasoning {
                    text: String::new(),
                    signature: None,
                    redacted: Some(data.to_owned()),
                    origin: Some(origin),
                }));
            }
            "tool_result" => {
                return Err(invalid(
                    "'tool_result' blocks are only allowed in user messages",
                    format!("{path}.type"),
                ));
            }
            other => return Err(unsupported_block(other, &path)),
        }
    }
    Ok(parts)
}

/// A user turn: every `tool_result` becomes a Tool message (one result each, in order), then
/// the rest of the turn follows as one User message. Anthropic puts results first anyway, and
/// OpenAI-style vendors need tool messages right after the assistant's calls.
fn decode_user_blocks(
    blocks: &[&RawValue],
    path: &str,
    names: &HashMap<String, String>,
    messages: &mut Vec<Message>,
) -> Result<(), InvalidRequest> {
    let mut user = Vec::new();
    for (j, raw) in blocks.iter().enumerate() {
        let path = format!("{path}[{j}]");
        let block = read_block(raw, &path)?;
        match block.kind.as_str() {
            "text" => user.push(Part::Text {
                text: required(block.text, &path, "text")?,
            }),
            "image" => user.push(decode_image(block.source, &path)?),
            "document" => user.push(decode_document(block.source, block.title, &path)?),
            "tool_result" => {
                let call_id = required(block.tool_use_id, &path, "tool_use_id")?;
                let content = match block.content {
                    None => String::new(),
                    Some(raw) => {
                        decode_tool_result_content(raw, &format!("{path}.content"), &mut user)?
                    }
                };
                messages.push(Message {
                    role: Role::Tool,
                    parts: vec![Part::ToolResult(ToolResult {
                        name: names.get(&call_id).cloned(),
                        call_id,
                        content,
                        is_error: block.is_error.unwrap_or(false),
                    })],
                });
            }
            "tool_use" | "thinking" | "redacted_thinking" => {
                return Err(invalid(
                    format!(
                        "'{}' blocks are only allowed in assistant messages",
                        block.kind
                    ),
                    format!("{path}.type"),
                ));
            }
            other => return Err(unsupported_block(other, &path)),
        }
    }
    if !user.is_empty() {
        messages.push(Message {
            role: Role::User,
            parts: user,
        });
    }
    Ok(())
}

/// A tool result's content as text: a string, or text blocks joined by newlines. Images go to
/// `images`, for the user message that follows the results.
fn decode_tool_result_content(
    raw: &RawValue,
    path: &str,
    images: &mut Vec<Part>,
) -> Result<String, InvalidRequest> {
    match read_content(raw, path)? {
        Content::Text(text) => Ok(text),
        Content::Blocks(blocks) => {
            let mut texts = Vec::with_capacity(blocks.len());
            for (k, raw) in blocks.into_iter().enumerate() {
                let path = format!("{path}[{k}]");
                let block = read_block(raw, &path)?;
                match block.kind.as_str() {
                    "text" => texts.push(required(block.text, &path, "text")?),
                    "image" => images.push(decode_image(block.source, &path)?),
                    // Tool search results: every tool is already offered (see `WireTool`), so
                    // a reference only needs to tell the model the tool is there.
                    "tool_reference" => {
                        if let Some(name) = block.tool_name {
                            texts.push(format!("Tool '{name}' is available."));
                        }
                    }
                    other => {
                        return Err(invalid(
                            format!("tool_result content block type '{other}' is not supported"),
                            format!("{path}.type"),
                        ));
                    }
                }
            }
            Ok(texts.join("\n"))
        }
    }
}

fn decode_image(source: Option<&RawValue>, path: &str) -> Result<Part, InvalidRequest> {
    let raw = required(source, path, "source")?;
    let path = format!("{path}.source");
    let source: WireImageSource = serde_json::from_str(raw.get())
        .map_err(|err| invalid(format!("invalid '{path}': {}", error_reason(&err)), &path))?;
    let source = match source.kind.as_str() {
        "base64" => ImageSource::Base64 {
            media_type: required(source.media_type, &path, "media_type")?,
            data: required(source.data, &path, "data")?,
        },
        "url" => ImageSource::Url(required(source.url, &path, "url")?),
        other => {
            return Err(invalid(
                format!("image source type '{other}' is not supported"),
                format!("{path}.type"),
            ));
        }
    };
    Ok(Part::Image(Image {
        source,
        detail: None,
    }))
}

/// A `document` block: a PDF (inline or by URL) becomes a file part; a plain-text source is
/// text already.
fn decode_document(
    source: Option<&RawValue>,
    title: Option<String>,
    path: &str,
) -> Result<Part, InvalidRequest> {
    let raw = required(source, path, "source")?;
    let path = format!("{path}.source");
    let source: WireImageSource = serde_json::from_str(raw.get())
        .map_err(|err| invalid(format!("invalid '{path}': {}", error_reason(&err)), &path))?;
    let source = match source.kind.as_str() {
        "base64" => ImageSource::Base64 {
            media_type: required(source.media_type, &path, "media_type")?,
            data: required(source.data, &path, "data")?,
        },
        "url" => ImageSource::Url(required(source.url, &path, "url")?),
        "text" => {
            return Ok(Part::Text {
                text: required(source.data, &path, "data")?,
            });
        }
        other => {
            return Err(invalid(
                format!("document source type '{other}' is not supported"),
                format!("{path}.type"),
            ));
        }
    };
    Ok(Part::File(neutral::File {
        source,
        filename: title,
        kind: neutral::FileKind::Document,
    }))
}

/// Custom tools (no `type`, or `type: "custom"`) → neutral tools; every other type is an
/// Anthropic-defined tool (web search, code execution, computer use, bash, text editor…) that
/// other vendors neither run nor know the schema of: it is removed from the offer and its type
/// listed in the second vector.
fn decode_tools(wire: Vec<WireTool>) -> Result<(Vec<Tool>, Vec<String>), InvalidRequest> {
    let mut tools = Vec::with_capacity(wire.len());
    let mut dropped = Vec::new();
    for (i, tool) in wire.into_iter().enumerate() {
        let path = format!("tools[{i}]");
        if let Some(kind) = tool.kind.filter(|k| k != "custom") {
            dropped.push(kind);
            continue;
        }
        tools.push(Tool {
            name: required(tool.name, &path, "name")?,
            description: tool.description,
            parameters: tool.input_schema,
            strict: None,
        });
    }
    Ok((tools, dropped))
}

fn decode_tool_choice(
    choice: WireToolChoice,
) -> Result<(Option<ToolChoice>, Option<bool>), InvalidRequest> {
    let tool_choice = match choice.kind.as_str() {
        "auto" => ToolChoice::Auto,
        "any" => ToolChoice::Required,
        "none" => ToolChoice::None,
        "tool" => ToolChoice::Named(required(choice.name, "tool_choice", "name")?),
        other => {
            return Err(invalid(
                format!("tool_choice type '{other}' is not supported"),
                "tool_choice.type",
            ));
        }
    };
    Ok((
        Some(tool_choice),
        choice.disable_parallel_tool_use.map(|disable| !disable),
    ))
}

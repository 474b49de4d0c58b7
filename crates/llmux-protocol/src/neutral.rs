//! The neutral model every ingress decodes into and every egress encodes from, when the client's
//! protocol and the vendor's differ (DESIGN.md principle 2). Pure data: no I/O, no wire format.
//!
//! Conventions shared by every codec:
//! - System and developer instructions are hoisted into [`Request::system`], in order.
//! - Tool results travel in [`Role::Tool`] messages, one [`ToolResult`] part each (codecs for
//!   vendors that put them in user turns merge them there).
//! - Tool-call arguments are JSON *text*, as the vendors stream them.
//! - A vendor's opaque continuity token (Gemini `thoughtSignature`, Anthropic thinking
//!   `signature`) rides on the part it belongs to and must come back on the next turn.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ErrorKind;

/// A generation request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// The upstream model to ask for.
    pub model: String,
    /// System and developer instructions, in order.
    pub system: Vec<String>,
    /// The conversation.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    pub tools: Vec<Tool>,
    /// How the model may use the tools.
    pub tool_choice: Option<ToolChoice>,
    /// Whether several tool calls may come in one turn.
    pub parallel_tool_calls: Option<bool>,
    /// Sampling and length parameters.
    pub sampling: Sampling,
    /// Output format constraint.
    pub response_format: Option<ResponseFormat>,
    /// Reasoning / thinking settings.
    pub reasoning: Option<ReasoningConfig>,
    /// Whether the answer is streamed.
    pub stream: bool,
    /// An end-user identifier, when the client sent one.
    pub user: Option<String>,
    /// The `type` of each hosted tool the client offered that no vendor behind the neutral
    /// model can run (`web_search`, `code_interpreter`, Anthropic's `web_search_20250305`…),
    /// in offer order. They were removed from [`tools`](Self::tools): an offered tool is
    /// optional to the model. The gateway reports them (`x-llmux-dropped-tools`) or refuses the
    /// request, as configured.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped_tools: Vec<String>,
    /// The client asked for no readable reasoning in the answer (Anthropic
    /// `thinking.display: "omitted"`): the model may still think, but the answer carries only
    /// what must come back on the next turn (signatures, redacted reasoning). See
    /// [`Response::omit_reasoning_text`].
    #[serde(default, skip_serializing_if = "is_false")]
    pub omit_reasoning: bool,
    /// Request headers the client asked the gateway to send when it downloads an image URL
    /// (the original router's `image_url.headers`), by URL. Never sent to a vendor; the
    /// gateway sends them only to hosts its config allows.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub url_headers: Vec<UrlHeaders>,
    /// Prompt-cache breakpoints the client set (Anthropic `cache_control`, which the Chat
    /// ingress accepts too). Only the Anthropic encoder writes them; other vendors cache on
    /// their own and ignore them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cache_marks: Vec<CacheMark>,
}

/// A prompt-cache breakpoint: the prompt up to and including `at` may be cached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheMark {
    /// The block the breakpoint is on.
    pub at: CacheSpot,
    /// How long the cache entry lives (`5m` or `1h`); the vendor's default when `None`.
    pub ttl: Option<String>,
}

/// Where a [`CacheMark`] sits, by index into the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheSpot {
    /// `system[i]`.
    System(usize),
    /// `messages[message].parts[part]`.
    Part {
        /// Index into [`Request::messages`].
        message: usize,
        /// Index into that message's parts.
        part: usize,
    },
    /// `tools[i]`.
    Tool(usize),
}

impl Request {
    /// The breakpoint on `spot`, if the client set one.
    pub fn cache_mark(&self, spot: CacheSpot) -> Option<&CacheMark> {
        self.cache_marks.iter().find(|mark| mark.at == spot)
    }
}

/// Headers to send with the download of one URL.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UrlHeaders {
    /// The URL, as the client wrote it.
    pub url: String,
    /// Header names and values, in the client's order.
    pub headers: Vec<(String, String)>,
}

fn is_false(value: &bool) -> bool {
    !*value
}

impl Request {
    /// A rough input-token count (about 4 characters per token, plus a few tokens per message),
    /// for vendors without a counting endpoint. Never zero for a non-empty request.
    pub fn estimate_input_tokens(&self) -> u64 {
        let mut chars = self.system.iter().map(String::len).sum::<usize>();
        for message in &self.messages {
            chars += 16;
            for part in &message.parts {
                chars += match part {
                    Part::Text { text } => text.len(),
                    Part::Image(_) => 4 * 765, // a typical tile-based image cost
                    Part::ToolCall(call) => call.name.len() + call.arguments.len(),
                    Part::ToolResult(result) => result.content.len(),
                    Part::Reasoning(reasoning) => reasoning.text.len(),
                    Part::File(file) => file.estimate_chars(),
                };
            }
        }
        for tool in &self.tools {
            chars += tool.name.len() + tool.description.as_ref().map_or(0, String::len);
            chars += tool.parameters.as_ref().map_or(0, |p| p.to_string().len());
        }
        (chars as u64).div_ceil(4).max(1)
    }
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The user.
    User,
    /// The model.
    Assistant,
    /// Tool results sent back to the model.
    Tool,
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Author.
    pub role: Role,
    /// Content, in order.
    pub parts: Vec<Part>,
}

/// A typed piece of content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Part {
    /// Plain text.
    Text {
        /// The text.
        text: String,
    },
    /// An image.
    Image(Image),
    /// A call the model made.
    ToolCall(ToolCall),
    /// The result of a call, sent back by the client.
    ToolResult(ToolResult),
    /// The model's reasoning ("thinking").
    Reasoning(Reasoning),
    /// A document (PDF) or a sound (mp3, wav) the client sent, inline or by URL.
    File(File),
}

impl Part {
    /// A text part.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text { text: text.into() }
    }
}

/// An image, by URL or inline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// Where the bytes are.
    pub source: ImageSource,
    /// OpenAI's `detail` hint (`low`, `high`, `auto`), kept when the target understands it.
    pub detail: Option<String>,
}

/// Where an image's bytes are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ImageSource {
    /// An `http(s)` URL (fetched by the gateway when the vendor needs inline data).
    Url(String),
    /// Inline data.
    Base64 {
        /// MIME type, e.g. `image/png`.
        media_type: String,
        /// Base64 data, without the `data:` prefix.
        data: String,
    },
}

impl ImageSource {
    /// Reads a `data:<mime>;base64,<data>` URL into inline data; other URLs stay URLs.
    pub fn from_url(url: &str) -> Self {
        if let Some(rest) = url.strip_prefix("data:")
            && let Some((meta, data)) = rest.split_once(',')
            && let Some(media_type) = meta.strip_suffix(";base64")
        {
            return Self::Base64 {
                media_type: media_type.to_owned(),
                data: data.to_owned(),
            };
        }
        Self::Url(url.to_owned())
    }

    /// The source as a URL (`data:` for inline data).
    pub fn to_url(&self) -> String {
        match self {
            Self::Url(url) => url.clone(),
            Self::Base64 { media_type, data } => format!("data:{media_type};base64,{data}"),
        }
    }
}

/// A document or a sound sent by the client. A URL source is downloaded by the gateway
/// (and its type sniffed) before the request reaches a vendor; inline data goes to each vendor
/// in its native form: PDFs as Anthropic `document`, Gemini `inlineData`, OpenAI `file`; mp3
/// and wav as OpenAI `input_audio` or Gemini `inlineData`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct File {
    /// Where the bytes are (`Base64` carries the MIME type, e.g. `application/pdf`).
    pub source: ImageSource,
    /// The client's file name, when it gave one.
    pub filename: Option<String>,
    /// What the client said the file is, which decides the types a download may turn into.
    pub kind: FileKind,
}

/// What the client said a file part holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// A document (`file`, `file_url`, `input_file`, Anthropic `document`): a PDF, or an
    /// image found by sniffing a download.
    Document,
    /// A sound (`audio_url`, `input_audio`): mp3 or wav.
    Audio,
}

/// The MIME type of PDF documents.
pub const PDF: &str = "application/pdf";

impl File {
    /// The inline MIME type, `None` for a URL not downloaded yet.
    pub fn media_type(&self) -> Option<&str> {
        match &self.source {
            ImageSource::Base64 { media_type, .. } => Some(media_type),
            ImageSource::Url(_) => None,
        }
    }

    /// The audio format name OpenAI's `input_audio.format` uses (`mp3`, `wav`), for inline
    /// audio of a type OpenAI accepts.
    pub fn audio_format(&self) -> Option<&'static str> {
        match self.media_type()? {
            "audio/mpeg" | "audio/mp3" => Some("mp3"),
            "audio/wav" | "audio/x-wav" | "audio/wave" => Some("wav"),
            _ => None,
        }
    }

    /// A rough size in characters for token estimates (about one token per 3 bytes of a
    /// document; audio ~ 32 tokens per second at 16 kB/s).
    fn estimate_chars(&self) -> usize {
        match &self.source {
            ImageSource::Base64 { data, .. } => data.len() / 3,
            ImageSource::Url(_) => 4 * 1000,
        }
    }
}

/// The MIME type for OpenAI's `input_audio.format`, `None` for a format llmux does not carry.
pub fn audio_media_type(format: &str) -> Option<&'static str> {
    match format {
        "mp3" => Some("audio/mpeg"),
        "wav" => Some("audio/wav"),
        _ => None,
    }
}

/// A tool call made by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call id (vendor-issued, or synthesized as `call_<24 hex>` when the vendor gives none).
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments as JSON text.
    pub arguments: String,
    /// Gemini's `thoughtSignature` for this call, which must be sent back with it.
    pub signature: Option<String>,
}

/// The result of a tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolResult {
    /// The id of the call this answers.
    pub call_id: String,
    /// The tool's name, when known (Gemini needs it; codecs look it up in history otherwise).
    pub name: Option<String>,
    /// The result as text (JSON text for structured results).
    pub content: String,
    /// Whether the tool failed.
    pub is_error: bool,
}

/// Reasoning content.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reasoning {
    /// Readable reasoning text (may be a summary).
    pub text: String,
    /// The vendor's signature over it (Anthropic `signature`, Gemini `thoughtSignature`),
    /// needed to send it back.
    pub signature: Option<String>,
    /// Encrypted/redacted reasoning the client cannot read but must return (Anthropic
    /// `redacted_thinking.data`, OpenAI `encrypted_content`).
    pub redacted: Option<String>,
    /// The vendor kind that issued `signature` or `redacted`: they go back to that kind only
    /// (any other refuses them) and are dropped on the way to another. `None`: unknown, sent
    /// nowhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<ReasoningOrigin>,
}

/// The vendor kind that issued an opaque reasoning token: a thinking signature or redacted
/// thinking (Anthropic), a `thoughtSignature` (Gemini), encrypted reasoning (OpenAI
/// Responses). Vendors verify these tokens and refuse foreign ones, so a token is sent back
/// only to its own kind.
///
/// A client of another vendor's API holds the token tagged with its origin
/// (`llmux:<origin>:<token>`, [`tag_token`]); a client of the issuing vendor's own API holds
/// it exactly as issued, so same-vendor conversations (and byte paths) see the vendor's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningOrigin {
    /// Anthropic Messages.
    Anthropic,
    /// Gemini `generateContent`.
    Gemini,
    /// OpenAI Responses.
    #[serde(rename = "openai")]
    OpenAi,
}

impl ReasoningOrigin {
    /// The name in tagged tokens: `anthropic`, `gemini`, `openai`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Anthropic => "anthropic",
            Self::Gemini => "gemini",
            Self::OpenAi => "openai",
        }
    }

    /// The origin named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "anthropic" => Some(Self::Anthropic),
            "gemini" => Some(Self::Gemini),
            "openai" => Some(Self::OpenAi),
            _ => None,
        }
    }
}

/// Opens a token tagged with its origin.
pub const TOKEN_TAG: &str = "llmux:";

/// `token` as a client of `native`'s API holds it: unchanged when `native` issued it (or its
/// origin is unknown), else `llmux:<origin>:<token>`.
pub fn tag_token(origin: Option<ReasoningOrigin>, native: ReasoningOrigin, token: &str) -> String {
    match origin {
        Some(origin) if origin != native => format!("{TOKEN_TAG}{}:{token}", origin.as_str()),
        _ => token.to_owned(),
    }
}

/// The reverse of [`tag_token`]: a tagged token's origin and the vendor's token; an untagged
/// one is `native`'s own.
pub fn untag_token(token: &str, native: ReasoningOrigin) -> (ReasoningOrigin, &str) {
    token
        .strip_prefix(TOKEN_TAG)
        .and_then(|rest| rest.split_once(':'))
        .and_then(|(origin, inner)| Some((ReasoningOrigin::parse(origin)?, inner)))
        .unwrap_or((native, token))
}

impl Reasoning {
    /// Whether this reasoning can go to a vendor of kind `vendor` with its token: it has one
    /// and `vendor` issued it.
    pub fn belongs_to(&self, vendor: ReasoningOrigin) -> bool {
        self.origin == Some(vendor) && (self.signature.is_some() || self.redacted.is_some())
    }
}

/// A function tool.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tool {
    /// Name.
    pub name: String,
    /// What it does.
    pub description: Option<String>,
    /// JSON Schema of the arguments.
    pub parameters: Option<Value>,
    /// OpenAI's strict schema adherence flag.
    pub strict: Option<bool>,
}

/// How the model may use tools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call.
    Required,
    /// This tool must be called.
    Named(String),
}

/// Sampling and length parameters; `None` means the vendor's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// Temperature.
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    pub top_p: Option<f64>,
    /// Top-k sampling (Anthropic, Gemini).
    pub top_k: Option<u32>,
    /// Maximum output tokens.
    pub max_tokens: Option<u32>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Seed.
    pub seed: Option<i64>,
    /// Presence penalty.
    pub presence_penalty: Option<f64>,
    /// Frequency penalty.
    pub frequency_penalty: Option<f64>,
}

/// Output format.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseFormat {
    /// Free text.
    Text,
    /// Any JSON object.
    JsonObject,
    /// JSON matching a schema.
    JsonSchema {
        /// Schema name.
        name: String,
        /// The schema.
        schema: Value,
        /// Strict adherence.
        strict: Option<bool>,
    },
}

/// Reasoning settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReasoningConfig {
    /// OpenAI-style effort: `minimal`, `low`, `medium`, `high`.
    pub effort: Option<String>,
    /// Token budget for thinking (Anthropic `budget_tokens`, Gemini `thinkingBudget`).
    pub budget_tokens: Option<u32>,
}

/// A complete (non-streamed) answer.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// The vendor's response id.
    pub id: String,
    /// The model the vendor reports.
    pub model: String,
    /// Output content: text, tool calls, reasoning.
    pub parts: Vec<Part>,
    /// Why generation stopped.
    pub finish: FinishReason,
    /// Token usage, when reported (never invented).
    pub usage: Option<Usage>,
}

/// Why generation stopped, normalized (REFERENCE.md §D4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// Natural end or a stop sequence.
    #[default]
    Stop,
    /// The output token limit.
    Length,
    /// The model called tools.
    ToolCalls,
    /// Blocked by a safety or content filter.
    ContentFilter,
    /// The vendor ended the turn early (e.g. Anthropic `pause_turn`): incomplete.
    Paused,
    /// The model produced an invalid tool call (Gemini `MALFORMED_FUNCTION_CALL`…).
    ModelError,
}

impl Response {
    /// Removes readable reasoning text from the answer, for a request with
    /// [`Request::omit_reasoning`]: reasoning with a signature or redacted data stays (with
    /// empty text), since the client must send it back; reasoning with neither is removed.
    pub fn omit_reasoning_text(&mut self) {
        self.parts.retain_mut(|part| match part {
            Part::Reasoning(reasoning) => {
                reasoning.text.clear();
                reasoning.signature.is_some() || reasoning.redacted.is_some()
            }
            _ => true,
        });
    }
}

impl FinishReason {
    /// The OpenAI `finish_reason` value.
    pub fn openai(&self) -> &'static str {
        match self {
            Self::Stop | Self::Paused | Self::ModelError => "stop",
            Self::Length => "length",
            Self::ToolCalls => "tool_calls",
            Self::ContentFilter => "content_filter",
        }
    }
}

/// Token usage, normalized (REFERENCE.md §D4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// All input tokens, cached ones included.
    pub input_tokens: u64,
    /// All output tokens, reasoning included.
    pub output_tokens: u64,
    /// Input tokens read from a cache.
    pub cached_input_tokens: Option<u64>,
    /// Input tokens written to a cache (Anthropic).
    pub cache_creation_input_tokens: Option<u64>,
    /// Output tokens spent on reasoning.
    pub reasoning_tokens: Option<u64>,
}

impl Usage {
    /// Input plus output.
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens
    }
}

/// One event of a streamed answer, in the order the vendor produced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StreamEvent {
    /// The answer started. Input usage is known here for some vendors (Anthropic).
    Start {
        /// The vendor's response id.
        id: String,
        /// The model the vendor reports.
        model: String,
    },
    /// A piece of answer text.
    TextDelta {
        /// The text.
        text: String,
    },
    /// A piece of reasoning text, or a reasoning signature.
    ReasoningDelta {
        /// The text (may be empty when only a signature arrives).
        text: String,
        /// A signature for the reasoning so far.
        signature: Option<String>,
        /// Who issued `signature`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<ReasoningOrigin>,
    },
    /// A tool call begins. `index` counts tool calls from 0 within the answer.
    ToolCallStart {
        /// Position among this answer's tool calls.
        index: usize,
        /// Call id.
        id: String,
        /// Tool name.
        name: String,
        /// Gemini `thoughtSignature`.
        signature: Option<String>,
    },
    /// More argument text for tool call `index`.
    ToolCallDelta {
        /// Position among this answer's tool calls.
        index: usize,
        /// JSON text fragment.
        arguments: String,
    },
    /// Usage so far (vendors report it at the start, cumulatively, or at the end; the last one
    /// wins).
    Usage(Usage),
    /// Generation stopped.
    Finish {
        /// Why.
        reason: FinishReason,
    },
    /// The vendor reported an error inside the stream.
    Error {
        /// What failed.
        kind: ErrorKind,
        /// Safe message.
        message: String,
    },
}

/// A vendor body or event the codec cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DecodeError(pub String);

impl DecodeError {
    /// A new decode error.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

impl From<serde_json::Error> for DecodeError {
    fn from(err: serde_json::Error) -> Self {
        Self(format!("invalid JSON: {err}"))
    }
}

/// A fresh tool-call id, `call_` and 24 hex digits, for vendors that issue none.
pub fn synthesize_call_id(seed: u64) -> String {
    // SplitMix64 over the seed: unique per (answer, index) without a global RNG here.
    let mut x = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut next = || {
        x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    format!("call_{:016x}{:08x}", next(), next() >> 32)
}

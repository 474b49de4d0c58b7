//! `:embedContent` and `:batchEmbedContents` as a client-facing API.
//!
//! - Requests: [`decode`] reads either body into an [`EmbedRequest`] (one text per content, the
//!   requested `outputDimensionality` of each). `taskType` and `title` are accepted; only Gemini
//!   reads them (an OpenAI-compatible vendor has no place for them, so they are dropped there).
//! - To Gemini, the body goes as received, with only each `model` set to the vendor's name
//!   ([`rewrite_models`]).
//! - To an OpenAI-compatible vendor, [`EmbedRequest::to_openai`] writes one `/embeddings`
//!   request for every content, and [`decode_openai_response`] + [`encode_response`] give the
//!   vectors back in Gemini's shape; the vendor's numbers are copied as written, never reparsed.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::super::wire;
use crate::json_scan::{self, Edit};
use crate::neutral::DecodeError;

/// A decoded `embedContent` or `batchEmbedContents` body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedRequest {
    /// Whether the body was a `batchEmbedContents` (the answer is `{"embeddings":[…]}`).
    pub batch: bool,
    /// One text per content: its `text` parts, joined by a newline.
    pub texts: Vec<String>,
    /// The `outputDimensionality` of each content's request.
    pub dimensions: Vec<Option<u32>>,
    /// Some part is not text (`inlineData`, `fileData`): only Gemini embeds those.
    pub non_text: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Request {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default, alias = "task_type")]
    #[allow(dead_code, reason = "accepted: only Gemini reads it")]
    task_type: Option<IgnoredAny>,
    #[serde(default)]
    #[allow(dead_code, reason = "accepted: only Gemini reads it")]
    title: Option<IgnoredAny>,
    #[serde(default, alias = "output_dimensionality")]
    output_dimensionality: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Batch {
    requests: Vec<Request>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<PartIn>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartIn {
    #[serde(default)]
    text: Option<String>,
    #[serde(default, alias = "inline_data")]
    inline_data: Option<IgnoredAny>,
    #[serde(default, alias = "file_data")]
    file_data: Option<IgnoredAny>,
}

/// Reads an `embedContent` (`batch` false) or `batchEmbedContents` body for `model` (the name in
/// the URL, without `models/`). A request's own `model`, when present, must name the same model.
pub fn decode(body: &[u8], model: &str, batch: bool) -> Result<EmbedRequest, DecodeError> {
    let requests = if batch {
        let parsed: Batch = wire::parse(body, "batchEmbedContents request")?;
        if parsed.requests.is_empty() {
            return Err(DecodeError::new(
                "* BatchEmbedContentsRequest.requests: requests is not specified",
            ));
        }
        parsed.requests
    } else {
        vec![wire::parse::<Request>(body, "embedContent request")?]
    };
    let mut out = EmbedRequest {
        batch,
        texts: Vec::with_capacity(requests.len()),
        dimensions: Vec::with_capacity(requests.len()),
        non_text: false,
    };
    for (index, request) in requests.into_iter().enumerate() {
        let at = if batch {
            format!("requests[{index}].")
        } else {
            String::new()
        };
        if let Some(named) = request.model.as_deref() {
            let named_model = named.strip_prefix("models/").unwrap_or(named);
            if named_model != model {
                return Err(DecodeError::new(format!(
                    "{at}model: 'models/{named_model}' does not match the model in the URL \
                     ('models/{model}')"
                )));
            }
        }
        let Some(content) = request.content else {
            return Err(DecodeError::new(format!(
                "* {at}content: content is not specified"
            )));
        };
        if content.parts.is_empty() {
            return Err(DecodeError::new(format!(
                "* {at}content.parts: parts is not specified"
            )));
        }
        let mut text = String::new();
        for part in content.parts {
            if part.inline_data.is_some() || part.file_data.is_some() {
                out.non_text = true;
            }
            if let Some(piece) = part.text {
                if !text.is_empty() {
                    text.push('\n');
                }
                text.push_str(&piece);
            }
        }
        out.texts.push(text);
        out.dimensions.push(request.output_dimensionality);
    }
    Ok(out)
}

impl EmbedRequest {
    /// About four characters per token, for reservations.
    pub fn estimate_input_tokens(&self) -> u64 {
        self.texts.iter().map(|t| t.len() as u64 / 4 + 1).sum()
    }

    /// The OpenAI `/embeddings` body for `upstream_model`: `{"model","input":[…],"dimensions"?}`.
    ///
    /// A 400 when some content is not text, or when the contents of a batch ask for different
    /// `outputDimensionality` (one OpenAI request has one `dimensions`).
    pub fn to_openai(&self, upstream_model: &str) -> Result<Vec<u8>, DecodeError> {
        if self.non_text {
            return Err(DecodeError::new(
                "only text parts can be embedded by this model's vendor (inlineData and fileData \
                 need a Gemini embedding model)",
            ));
        }
        let first = self.dimensions.first().copied().flatten();
        if self.dimensions.iter().any(|d| *d != first) {
            return Err(DecodeError::new(
                "the requests of one batch must ask for the same outputDimensionality on this \
                 model's vendor",
            ));
        }
        #[derive(serde::Serialize)]
        struct OpenAi<'a> {
            model: &'a str,
            input: &'a [String],
            #[serde(skip_serializing_if = "Option::is_none")]
            dimensions: Option<u32>,
        }
        serde_json::to_vec(&OpenAi {
            model: upstream_model,
            input: &self.texts,
            dimensions: first,
        })
        .map_err(|e| DecodeError::new(format!("cannot encode the embeddings request: {e}")))
    }
}

/// The body for a Gemini vendor: as received, with the top-level `model` of an `embedContent`
/// (when present) or each request's `model` of a `batchEmbedContents` set to
/// `models/{upstream_model}`. Every other byte of a request is copied verbatim.
pub fn rewrite_models(
    body: &[u8],
    batch: bool,
    upstream_model: &str,
) -> Result<Vec<u8>, DecodeError> {
    let model = serde_json::to_vec(&format!("models/{upstream_model}"))
        .map_err(|e| DecodeError::new(e.to_string()))?;
    let malformed = |_| DecodeError::new("Invalid JSON payload received.");
    if !batch {
        let members = json_scan::members(body).map_err(malformed)?;
        if json_scan::find(body, &members, "model").is_none() {
            return Ok(body.to_vec());
        }
        return Ok(json_scan::edit(
            body,
            &members,
            &[Edit::Set("model", &model)],
        ));
    }
    #[derive(Deserialize)]
    struct RawBatch<'a> {
        #[serde(borrow)]
        requests: Vec<&'a RawValue>,
    }
    let parsed: RawBatch<'_> = serde_json::from_slice(body)
        .map_err(|e| DecodeError::new(format!("invalid gemini batchEmbedContents request: {e}")))?;
    let mut out = Vec::with_capacity(body.len() + 32 * parsed.requests.len());
    out.extend_from_slice(b"{\"requests\":[");
    for (index, request) in parsed.requests.iter().enumerate() {
        if index > 0 {
            out.push(b',');
        }
        let raw = request.get().as_bytes();
        let members = json_scan::members(raw).map_err(malformed)?;
        out.extend_from_slice(&json_scan::edit(
            raw,
            &members,
            &[Edit::Set("model", &model)],
        ));
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// The vectors of an OpenAI `/embeddings` answer, in input order, as the vendor wrote them.
#[derive(Debug)]
pub struct OpenAiEmbeddings {
    /// One JSON array of numbers per input.
    pub vectors: Vec<Box<RawValue>>,
    /// `usage.prompt_tokens`, when reported.
    pub prompt_tokens: Option<u64>,
}

/// Reads an OpenAI `/embeddings` answer that should hold `expected` float vectors.
pub fn decode_openai_response(
    body: &[u8],
    expected: usize,
) -> Result<OpenAiEmbeddings, DecodeError> {
    #[derive(Deserialize)]
    struct List {
        data: Vec<Entry>,
        #[serde(default)]
        usage: Option<Usage>,
    }
    #[derive(Deserialize)]
    struct Entry {
        #[serde(default)]
        index: Option<usize>,
        embedding: Box<RawValue>,
    }
    #[derive(Deserialize)]
    struct Usage {
        #[serde(default)]
        prompt_tokens: Option<u64>,
    }
    let list: List = serde_json::from_slice(body).map_err(|e| {
        DecodeError::new(format!("malformed embeddings answer from the vendor: {e}"))
    })?;
    if list.data.len() != expected {
        return Err(DecodeError::new(format!(
            "the vendor answered {} embeddings for {expected} inputs",
            list.data.len()
        )));
    }
    let mut slots: Vec<Option<Box<RawValue>>> = (0..expected).map(|_| None).collect();
    for (position, entry) in list.data.into_iter().enumerate() {
        let index = entry.index.unwrap_or(position);
        if !entry.embedding.get().trim_start().starts_with('[') {
            return Err(DecodeError::new(
                "the vendor's embedding is not an array of numbers",
            ));
        }
        match slots.get_mut(index) {
            Some(slot @ None) => *slot = Some(entry.embedding),
            _ => {
                return Err(DecodeError::new(format!(
                    "the vendor's embedding index {index} is out of range or repeated"
                )));
            }
        }
    }
    Ok(OpenAiEmbeddings {
        vectors: slots.into_iter().flatten().collect(),
        prompt_tokens: list.usage.and_then(|u| u.prompt_tokens),
    })
}

/// Gemini's answer: `{"embedding":{"values":[…]}}`, or `{"embeddings":[{"values":[…]},…]}` for
/// a batch.
pub fn encode_response(vectors: &[Box<RawValue>], batch: bool) -> Vec<u8> {
    let size: usize = vectors.iter().map(|v| v.get().len() + 16).sum();
    let mut out = Vec::with_capacity(size + 32);
    if batch {
        out.extend_from_slice(b"{\"embeddings\":[");
        for (index, vector) in vectors.iter().enumerate() {
            if index > 0 {
                out.push(b',');
            }
            out.extend_from_slice(b"{\"values\":");
            out.extend_from_slice(vector.get().as_bytes());
            out.push(b'}');
        }
        out.extend_from_slice(b"]}");
    } else {
        out.extend_from_slice(b"{\"embedding\":{\"values\":");
        if let Some(vector) = vectors.first() {
            out.extend_from_slice(vector.get().as_bytes());
        } else {
            out.extend_from_slice(b"[]");
        }
        out.extend_from_slice(b"}}");
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

    use super::*;

    #[test]
    fn decodes_single_and_batch_bodies() {
        let single = decode(
            br#"{"content":{"parts":[{"text":"a"},{"text":"b"}]},"taskType":"RETRIEVAL_QUERY","outputDimensionality":4}"#,
            "m",
            false,
        )
        .unwrap();
        assert_eq!(single.texts, ["a\nb"]);
        assert_eq!(single.dimensions, [Some(4)]);
        let batch = decode(
            br#"{"requests":[{"model":"models/m","content":{"parts":[{"text":"x"}]}},{"content":{"role":"user","parts":[{"text":"y"}]}}]}"#,
            "m",
            true,
        )
        .unwrap();
        assert_eq!(batch.texts, ["x", "y"]);
        assert_eq!(
            batch.to_openai("up").unwrap(),
            br#"{"model":"up","input":["x","y"]}"#
        );
    }

    #[test]
    fn refuses_what_it_cannot_serve() {
        let other =
            br#"{"requests":[{"model":"models/other","content":{"parts":[{"text":"x"}]}}]}"#;
        assert!(
            decode(other, "m", true)
                .unwrap_err()
                .0
                .contains("does not match")
        );
        assert!(decode(br#"{"content":{"parts":[]}}"#, "m", false).is_err());
        assert!(
            decode(
                br#"{"nonsense":1,"content":{"parts":[{"text":"x"}]}}"#,
                "m",
                false
            )
            .is_err()
        );
        assert!(decode(br#"{"requests":[]}"#, "m", true).is_err());
        let mixed = decode(
            br#"{"requests":[{"content":{"parts":[{"text":"x"}]},"outputDimensionality":4},{"content":{"parts":[{"text":"y"}]}}]}"#,
            "m",
            true,
        )
        .unwrap();
        assert!(mixed.to_openai("up").is_err());
        let image = decode(
            br#"{"content":{"parts":[{"inlineData":{"mimeType":"image/png","data":"AA=="}}]}}"#,
            "m",
            false,
        )
        .unwrap();
        assert!(image.to_openai("up").is_err());
    }

    #[test]
    fn rewrites_only_the_models_for_gemini() {
        let body = br#"{"requests":[{"model":"models/alias","content":{"parts":[{"text":"x"}]}}, {"content":{"parts":[{"text":"y"}]}}]}"#;
        let out = rewrite_models(body, true, "text-embedding-004").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            r#"{"requests":[{"model":"models/text-embedding-004","content":{"parts":[{"text":"x"}]}},{"content":{"parts":[{"text":"y"}]},"model":"models/text-embedding-004"}]}"#
        );
        let single = br#"{"content":{"parts":[{"text":"x"}]}}"#;
        assert_eq!(rewrite_models(single, false, "e").unwrap(), single);
    }

    #[test]
    fn openai_vectors_come_back_in_order_and_verbatim() {
        let answer = br#"{"object":"list","data":[{"index":1,"embedding":[0.5,1e-3]},{"index":0,"embedding":[0.25, -1]}],"usage":{"prompt_tokens":3,"total_tokens":3}}"#;
        let decoded = decode_openai_response(answer, 2).unwrap();
        assert_eq!(decoded.prompt_tokens, Some(3));
        assert_eq!(
            encode_response(&decoded.vectors, true),
            br#"{"embeddings":[{"values":[0.25, -1]},{"values":[0.5,1e-3]}]}"#
        );
        assert_eq!(
            encode_response(&decoded.vectors[..1], false),
            br#"{"embedding":{"values":[0.25, -1]}}"#
        );
        assert!(decode_openai_response(answer, 3).is_err());
        let base64 = br#"{"data":[{"index":0,"embedding":"AAAA"}]}"#;
        assert!(decode_openai_response(base64, 1).is_err());
    }
}

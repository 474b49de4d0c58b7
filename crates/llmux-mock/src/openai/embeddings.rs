//! `POST /v1/embeddings`: deterministic unit vectors derived from the input text.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri};
use serde::Serialize;
use serde_json::Value;

use super::chat::{Admitted, admit};
use super::missing_param;
use crate::json::str_at;
use crate::respond;
use crate::state::{Api, Shared};
use crate::text;

#[derive(Serialize)]
struct EmbeddingList<'a> {
    object: &'static str,
    data: Vec<EmbeddingEntry>,
    model: &'a str,
    usage: EmbeddingUsage,
}

#[derive(Serialize)]
struct EmbeddingEntry {
    object: &'static str,
    index: usize,
    embedding: Embedding,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Embedding {
    Floats(Vec<f32>),
    Base64(String),
}

#[derive(Serialize)]
struct EmbeddingUsage {
    prompt_tokens: u64,
    total_tokens: u64,
}

/// The inputs of an embeddings request as texts (token arrays become their JSON text).
fn embedding_inputs(input: &Value) -> Option<Vec<String>> {
    match input {
        Value::String(text) => Some(vec![text.clone()]),
        Value::Array(items) if items.iter().all(Value::is_number) && !items.is_empty() => {
            Some(vec![input.to_string()])
        }
        Value::Array(items) if !items.is_empty() => Some(
            items
                .iter()
                .map(|item| match item {
                    Value::String(text) => text.clone(),
                    other => other.to_string(),
                })
                .collect(),
        ),
        _ => None,
    }
}

/// A deterministic unit vector of `dims` floats derived from `text` (FNV-1a seed, SplitMix64
/// stream).
fn embed(text: &str, dims: usize) -> Vec<f32> {
    let mut state = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    let mut vector: Vec<f32> = (0..dims)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            // Top 24 bits to a float in [-1, 1).
            ((z >> 40) as f32 / (1u64 << 23) as f32) - 1.0
        })
        .collect();
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
    vector
}

/// `POST /v1/embeddings`: 8-dimensional vectors (or `dimensions`, up to 4096).
pub(crate) async fn embeddings(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    use base64::Engine as _;

    let parsed = respond::parse(&body);
    let admitted = admit(
        &shared,
        Api::OpenAiEmbeddings,
        false,
        (&uri, &headers, &body),
        parsed.as_ref(),
    )
    .await;
    let Admitted {
        request,
        model,
        fault,
        ..
    } = match admitted {
        Ok(admitted) => admitted,
        Err(response) => return response,
    };
    if model.is_empty() {
        return missing_param("model");
    }
    let Some(inputs) = request.get("input").and_then(embedding_inputs) else {
        return missing_param("input");
    };
    let dims = request
        .get("dimensions")
        .and_then(Value::as_u64)
        .map_or(8, |d| d.clamp(1, 4096) as usize);
    let base64 = str_at(request, "encoding_format") == "base64";
    let words: usize = inputs.iter().map(|t| text::words(t)).sum();
    let data = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let vector = embed(input, dims);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Embedding::Base64(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Embedding::Floats(vector)
            };
            EmbeddingEntry {
                object: "embedding",
                index,
                embedding,
            }
        })
        .collect();
    let tokens = text::tokens(words);
    let list = EmbeddingList {
        object: "list",
        data,
        model,
        usage: EmbeddingUsage {
            prompt_tokens: tokens,
            total_tokens: tokens,
        },
    };
    let pacing = respond::pacing(std::time::Duration::ZERO, fault.as_ref());
    respond::finish(respond::json(StatusCode::OK, &list, pacing), fault.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_are_deterministic_unit_vectors() {
        let a = embed("hello", 8);
        assert_eq!(a, embed("hello", 8));
        assert_ne!(a, embed("hullo", 8));
        let norm: f32 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }
}

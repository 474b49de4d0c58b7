//! `GET /v1/models`: a fixed list of mock models.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderMap, StatusCode, Uri};
use serde::Serialize;

use super::missing_key;
use crate::respond;
use crate::state::{Api, Incoming, Shared};

#[derive(Serialize)]
struct ModelList {
    object: &'static str,
    data: [ModelEntry; 5],
}

#[derive(Serialize)]
struct ModelEntry {
    id: &'static str,
    object: &'static str,
    created: u64,
    owned_by: &'static str,
}

const fn model(id: &'static str, created: u64, owned_by: &'static str) -> ModelEntry {
    ModelEntry {
        id,
        object: "model",
        created,
        owned_by,
    }
}

/// The mock's model list.
const MODELS: ModelList = ModelList {
    object: "list",
    data: [
        model("gpt-4o", 1_715_367_049, "system"),
        model("gpt-4o-mini", 1_721_172_741, "system"),
        model("gpt-4.1", 1_744_316_542, "system"),
        model("o3-mini", 1_737_146_383, "system"),
        model("text-embedding-3-small", 1_705_948_997, "system"),
    ],
};

/// `GET /v1/models`. Faults do not apply here.
pub(crate) async fn models(
    State(shared): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let credential = respond::bearer(&headers);
    let incoming = Incoming {
        api: Api::OpenAiModels,
        credential: credential.unwrap_or(""),
        model: "",
        stream: false,
        path: respond::path_and_query(&uri),
        headers: &headers,
        body: &Bytes::new(),
    };
    shared.admit(incoming, false).await;
    if credential.is_none() {
        return missing_key();
    }
    respond::json(StatusCode::OK, &MODELS, Default::default())
}

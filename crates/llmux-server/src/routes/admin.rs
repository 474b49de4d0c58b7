//! `/admin/keys`: virtual key management over HTTP (master key only; the edge's
//! `authenticate` step enforces it). The same operations as `llmux keys`.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use llmux_protocol::error::ErrorKind;
use serde_json::Value;

use crate::api_error::ApiError;
use crate::keys;
use crate::state::Gateway;

fn governance(gateway: &Gateway) -> Result<&Arc<crate::governance::Governance>, ApiError> {
    gateway.governance.as_ref().ok_or_else(|| {
        ApiError::new(
            ErrorKind::NotFound,
            "key management needs an `auth:` section in the config",
        )
    })
}

fn store_error(err: llmux_store::StoreError) -> ApiError {
    ApiError::new(ErrorKind::NoCombination, format!("key store error: {err}"))
}

fn body(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            ErrorKind::InvalidRequest,
            format!("request body is not valid JSON: {e}"),
        )
    })
}

fn not_found(id: &str) -> ApiError {
    ApiError::new(ErrorKind::NotFound, format!("key '{id}' not found"))
}

fn result(r: Result<Response, ApiError>) -> Response {
    r.unwrap_or_else(IntoResponse::into_response)
}

pub async fn create(State(gateway): State<Arc<Gateway>>, bytes: Bytes) -> Response {
    result(
        async {
            let governance = governance(&gateway)?;
            let new_key = keys::new_key(&body(&bytes)?)
                .map_err(|e| ApiError::new(ErrorKind::InvalidRequest, e.to_string()))?;
            let (record, plaintext) = governance.keys.create(new_key).await.map_err(store_error)?;
            governance.note_key_created();
            let mut json = keys::record_json(&record);
            json["key"] = Value::String(plaintext);
            Ok((StatusCode::CREATED, Json(json)).into_response())
        }
        .await,
    )
}

pub async fn list(State(gateway): State<Arc<Gateway>>) -> Response {
    result(
        async {
            let records = governance(&gateway)?
                .keys
                .list()
                .await
                .map_err(store_error)?;
            let data: Vec<Value> = records.iter().map(keys::record_json).collect();
            Ok(Json(serde_json::json!({"object": "list", "data": data})).into_response())
        }
        .await,
    )
}

pub async fn get(State(gateway): State<Arc<Gateway>>, Path(id): Path<String>) -> Response {
    result(
        async {
            let record = governance(&gateway)?
                .keys
                .get(&id)
                .await
                .map_err(store_error)?
                .ok_or_else(|| not_found(&id))?;
            Ok(Json(keys::record_json(&record)).into_response())
        }
        .await,
    )
}

pub async fn update(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Response {
    result(
        async {
            let governance = governance(&gateway)?;
            let update = keys::update(&body(&bytes)?)
                .map_err(|e| ApiError::new(ErrorKind::InvalidRequest, e.to_string()))?;
            let record = governance
                .keys
                .update(&id, update)
                .await
                .map_err(store_error)?
                .ok_or_else(|| not_found(&id))?;
            governance.note_revoked_cache_only(&id);
            Ok(Json(keys::record_json(&record)).into_response())
        }
        .await,
    )
}

pub async fn revoke(State(gateway): State<Arc<Gateway>>, Path(id): Path<String>) -> Response {
    result(
        async {
            let governance = governance(&gateway)?;
            if !governance.keys.revoke(&id).await.map_err(store_error)? {
                return Err(not_found(&id));
            }
            governance.note_revoked(&id).await;
            Ok(Json(serde_json::json!({"id": id, "revoked": true})).into_response())
        }
        .await,
    )
}

pub async fn usage(State(gateway): State<Arc<Gateway>>, Path(id): Path<String>) -> Response {
    result(
        async {
            let governance = governance(&gateway)?;
            governance
                .keys
                .get(&id)
                .await
                .map_err(store_error)?
                .ok_or_else(|| not_found(&id))?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            // Spend first, then the rows: a usage row committed between two reads then shows
            // up in the rows too, never as spend without its row.
            let spend = governance.keys.spend(&id, now).await.map_err(store_error)?;
            let rows = governance.keys.usage(&id).await.map_err(store_error)?;
            Ok(Json(keys::usage_json(&id, &rows, spend)).into_response())
        }
        .await,
    )
}

fn request_log(gateway: &Gateway) -> Result<&crate::request_log::LogSink, ApiError> {
    gateway.request_log.get().ok_or_else(|| {
        ApiError::new(
            ErrorKind::NotFound,
            "the request log needs a `log:` section in the config",
        )
    })
}

/// `GET /admin/requests?from=&to=&key=&model=&vendor=&status=&limit=&cursor=`: newest first,
/// with `next_cursor` for the next page.
pub async fn requests(
    State(gateway): State<Arc<Gateway>>,
    query: Result<
        axum::extract::Query<llmux_store::RequestFilter>,
        axum::extract::rejection::QueryRejection,
    >,
) -> Response {
    let result = async {
        let axum::extract::Query(filter) = query
            .map_err(|e| ApiError::new(ErrorKind::InvalidRequest, format!("bad query: {e}")))?;
        let sink = request_log(&gateway)?;
        sink.log.store().query(&filter).await.map_err(|e| match e {
            llmux_store::StoreError::InvalidCursor => ApiError::new(
                ErrorKind::InvalidRequest,
                "cursor is not one this log issued",
            ),
            other => ApiError::new(
                ErrorKind::NoCombination,
                format!("request log error: {other}"),
            ),
        })
    }
    .await;
    match result {
        Ok(page) => Json(page).into_response(),
        Err(error) => error.into_response(),
    }
}

/// `GET /admin/requests/{request_id}`: one record with its attempts.
pub async fn request(State(gateway): State<Arc<Gateway>>, Path(id): Path<String>) -> Response {
    let result = async {
        let sink = request_log(&gateway)?;
        match sink.log.store().get(&id).await {
            Ok(Some(record)) => Ok(record),
            Ok(None) => Err(ApiError::new(
                ErrorKind::NotFound,
                format!("no request '{id}' in the log"),
            )),
            Err(e) => Err(ApiError::new(
                ErrorKind::NoCombination,
                format!("request log error: {e}"),
            )),
        }
    }
    .await;
    match result {
        Ok(record) => Json(record).into_response(),
        Err(error) => error.into_response(),
    }
}

/// `GET /admin/traffic`: the last hour per minute, and by vendor, model and key (the
/// dashboard's live view).
pub async fn traffic(State(gateway): State<Arc<Gateway>>) -> Response {
    match request_log(&gateway) {
        Ok(sink) => Json(sink.traffic.report(crate::clock::unix_millis())).into_response(),
        Err(error) => error.into_response(),
    }
}

/// `GET /admin/config`: the active configuration with every secret masked. It is the
/// validated config's `Debug` text, in which credential values, the master key and database
/// URLs print as `***`; every credential value and key-shaped string left anywhere is masked
/// again, in case a value was also written into some other field.
pub async fn config(State(gateway): State<Arc<Gateway>>) -> Response {
    let snapshot = gateway.snapshot.load();
    let config = &snapshot.config;
    let mut secrets: Vec<&str> = config
        .credentials
        .iter()
        .map(|c| c.secret.expose())
        .collect();
    if let Some(auth) = &config.auth {
        secrets.extend(auth.master_key.as_ref().map(|k| k.expose()));
    }
    let credentials: Vec<Value> = config
        .credentials
        .iter()
        .map(|c| {
            let mut base_url = c.base_url.clone();
            if !base_url.username().is_empty() || base_url.password().is_some() {
                let _ = base_url.set_username("***");
                let _ = base_url.set_password(None);
            }
            serde_json::json!({
                "name": c.name,
                "vendor": c.vendor,
                "api": format!("{:?}", c.api).to_lowercase(),
                "base_url": base_url.as_str(),
                "value": "***",
                "limits": {"rpm": c.limits.rpm, "tpm": c.limits.tpm},
            })
        })
        .collect();
    let models: Vec<Value> = config
        .models
        .iter()
        .map(|m| serde_json::json!({"vendor": m.vendor, "model": m.model, "name": m.name}))
        .collect();
    let answer = serde_json::json!({
        "source": config.source,
        "credentials": credentials,
        "models": models,
        "text": format!("{config:#?}"),
    });
    // Scrub the serialized answer as a whole: no field can carry a secret past this.
    let text = llmux_telemetry::mask::scrub(&answer.to_string(), &secrets);
    ([(http::header::CONTENT_TYPE, "application/json")], text).into_response()
}

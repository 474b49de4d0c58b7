//! Virtual keys as JSON, shared by the admin HTTP routes and the `llmux keys` command.
//! A key's plaintext appears exactly once, in the answer to its creation.

use llmux_store::{KeyRecord, KeyUpdate, NewKey, Spend, UsageRow};
use serde_json::{Map, Value, json};

/// A field of a key that a client sent with the wrong type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid '{0}': {1}")]
pub struct FieldError(pub String, pub &'static str);

/// A stored key as JSON (no secret, no hash).
pub fn record_json(record: &KeyRecord) -> Value {
    json!({
        "id": record.id,
        "name": record.name,
        "created_at": record.created_at,
        "expires_at": record.expires_at,
        "revoked_at": record.revoked_at,
        "allowed_models": record.allowed_models,
        "allowed_vendors": record.allowed_vendors,
        "rpm": record.rpm,
        "tpm": record.tpm,
        "max_parallel": record.max_parallel,
        "budget_daily_usd": record.budget_daily_usd,
        "budget_monthly_usd": record.budget_monthly_usd,
        "budget_total_usd": record.budget_total_usd,
    })
}

/// Per-day usage and current spend as JSON.
pub fn usage_json(id: &str, rows: &[UsageRow], spend: Spend) -> Value {
    json!({
        "id": id,
        "spend_usd": {"day": spend.day, "month": spend.month, "total": spend.total},
        "days": rows.iter().map(|r| json!({
            "day": r.day, "requests": r.requests, "input_tokens": r.input_tokens,
            "output_tokens": r.output_tokens, "cost_usd": r.cost_usd,
        })).collect::<Vec<_>>(),
    })
}

fn string(map: &Map<String, Value>, key: &str) -> Result<Option<Option<String>>, FieldError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
        Some(_) => Err(FieldError(key.into(), "must be a string or null")),
    }
}

fn int<T: TryFrom<i64>>(
    map: &Map<String, Value>,
    key: &str,
) -> Result<Option<Option<T>>, FieldError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => v
            .as_i64()
            .and_then(|n| T::try_from(n).ok())
            .map(|n| Some(Some(n)))
            .ok_or_else(|| FieldError(key.into(), "must be a non-negative integer or null")),
    }
}

fn money(map: &Map<String, Value>, key: &str) -> Result<Option<Option<f64>>, FieldError> {
    match map.get(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(v) => v
            .as_f64()
            .filter(|n| *n >= 0.0)
            .map(|n| Some(Some(n)))
            .ok_or_else(|| FieldError(key.into(), "must be a non-negative number or null")),
    }
}

fn list(map: &Map<String, Value>, key: &str) -> Result<Option<Vec<String>>, FieldError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| i.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| FieldError(key.into(), "must be a list of strings")),
        Some(_) => Err(FieldError(key.into(), "must be a list of strings")),
    }
}

const FIELDS: [&str; 10] = [
    "name",
    "expires_at",
    "allowed_models",
    "allowed_vendors",
    "rpm",
    "tpm",
    "max_parallel",
    "budget_daily_usd",
    "budget_monthly_usd",
    "budget_total_usd",
];

fn object(value: &Value) -> Result<&Map<String, Value>, FieldError> {
    let map = value
        .as_object()
        .ok_or_else(|| FieldError("body".into(), "must be a JSON object"))?;
    if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(FieldError(unknown.clone(), "is not a key field"));
    }
    Ok(map)
}

/// A key to create, from JSON (every field optional).
pub fn new_key(value: &Value) -> Result<NewKey, FieldError> {
    let update = update(value)?;
    Ok(NewKey {
        name: update.name.flatten(),
        expires_at: update.expires_at.flatten(),
        allowed_models: update.allowed_models.unwrap_or_default(),
        allowed_vendors: update.allowed_vendors.unwrap_or_default(),
        rpm: update.rpm.flatten(),
        tpm: update.tpm.flatten(),
        max_parallel: update.max_parallel.flatten(),
        budget_daily_usd: update.budget_daily_usd.flatten(),
        budget_monthly_usd: update.budget_monthly_usd.flatten(),
        budget_total_usd: update.budget_total_usd.flatten(),
    })
}

/// Changes to a key, from JSON: an absent field is left alone, `null` clears it.
pub fn update(value: &Value) -> Result<KeyUpdate, FieldError> {
    let map = object(value)?;
    Ok(KeyUpdate {
        name: string(map, "name")?,
        expires_at: int(map, "expires_at")?,
        allowed_models: list(map, "allowed_models")?,
        allowed_vendors: list(map, "allowed_vendors")?,
        rpm: int(map, "rpm")?,
        tpm: int(map, "tpm")?,
        max_parallel: int(map, "max_parallel")?,
        budget_daily_usd: money(map, "budget_daily_usd")?,
        budget_monthly_usd: money(map, "budget_monthly_usd")?,
        budget_total_usd: money(map, "budget_total_usd")?,
    })
}

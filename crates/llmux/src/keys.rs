//! `llmux keys create|list|revoke|update|usage`: the same operations as `/admin/keys`, run
//! directly against the config's `auth.database`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, bail};
use llmux_config::Source;
use serde_json::{Map, Value, json};

use crate::cli::{KeyFields, KeysAction};

fn fields_json(fields: &KeyFields) -> Value {
    let mut map = Map::new();
    let mut put = |key: &str, value: Value| {
        map.insert(key.to_owned(), value);
    };
    if let Some(name) = &fields.name {
        put("name", json!(name));
    }
    if let Some(days) = fields.expires_in_days {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        put("expires_at", json!(now + i64::from(days) * 86_400));
    }
    if let Some(models) = &fields.models {
        put("allowed_models", json!(models));
    }
    if let Some(vendors) = &fields.vendors {
        put("allowed_vendors", json!(vendors));
    }
    for (key, value) in [
        ("rpm", fields.rpm),
        ("tpm", fields.tpm),
        ("max_parallel", fields.max_parallel),
    ] {
        if let Some(value) = value {
            put(key, json!(value));
        }
    }
    for (key, value) in [
        ("budget_daily_usd", fields.budget_daily),
        ("budget_monthly_usd", fields.budget_monthly),
        ("budget_total_usd", fields.budget_total),
    ] {
        if let Some(value) = value {
            put(key, json!(value));
        }
    }
    Value::Object(map)
}

fn print(value: &Value) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", serde_json::to_string_pretty(value)?)?;
    Ok(())
}

pub async fn run(
    source: &Source,
    action: KeysAction,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<ExitCode> {
    let config = llmux_config::load(source, env).map_err(|errors| {
        for error in &errors {
            eprintln!("config error: {error}");
        }
        anyhow::anyhow!("the configuration has {} error(s)", errors.len())
    })?;
    let Some(auth) = &config.auth else {
        bail!("the config has no `auth:` section, so there is no key database to manage");
    };
    let store = llmux_store::open(auth.database.expose())
        .await
        .context("cannot open auth.database")?;
    match action {
        KeysAction::Create(fields) => {
            let new_key = llmux_server::keys::new_key(&fields_json(&fields))?;
            let (record, plaintext) = store.create(new_key).await?;
            let mut json = llmux_server::keys::record_json(&record);
            json["key"] = Value::String(plaintext);
            print(&json)?;
            eprintln!("keep the key now: it is stored only as a hash and cannot be shown again");
        }
        KeysAction::List => {
            let records = store.list().await?;
            print(&Value::Array(
                records
                    .iter()
                    .map(llmux_server::keys::record_json)
                    .collect(),
            ))?;
        }
        KeysAction::Revoke { id } => {
            if !store.revoke(&id).await? {
                bail!("key '{id}' not found");
            }
            eprintln!("key '{id}' revoked");
        }
        KeysAction::Update { id, fields } => {
            let update = llmux_server::keys::update(&fields_json(&fields))?;
            let record = store
                .update(&id, update)
                .await?
                .with_context(|| format!("key '{id}' not found"))?;
            print(&llmux_server::keys::record_json(&record))?;
        }
        KeysAction::Usage { id } => {
            store
                .get(&id)
                .await?
                .with_context(|| format!("key '{id}' not found"))?;
            let rows = store.usage(&id).await?;
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            let spend = store.spend(&id, now).await?;
            print(&llmux_server::keys::usage_json(&id, &rows, spend))?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

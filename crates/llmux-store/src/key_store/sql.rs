//! What the SQLite and PostgreSQL stores share: the statements, the row shape and the
//! [`KeyStore`](crate::KeyStore) implementation itself.
//!
//! Both backends accept `$1`-style placeholders (SQLite treats `$NNN` as numbered parameters),
//! and every statement here uses only syntax both understand (`ON CONFLICT … DO UPDATE`,
//! `RETURNING`, `CAST(… AS BIGINT)`). So only the schema and the connection setup differ per
//! backend; the trait is implemented once, by [`impl_key_store!`], for each pool type.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::{KeyRecord, KeyUpdate, NewKey, StoreError, UsageRow};

/// Columns of a key record, in [`KeyRow`] order; never the secret hash.
macro_rules! key_columns {
    () => {
        "id, name, created_at, expires_at, revoked_at, allowed_models, allowed_vendors, \
         rpm, tpm, max_parallel, budget_daily_usd, budget_monthly_usd, budget_total_usd"
    };
}

pub(super) const INSERT_KEY: &str = "INSERT INTO llmux_keys (id, secret_hash, name, created_at, \
     expires_at, revoked_at, allowed_models, allowed_vendors, rpm, tpm, max_parallel, \
     budget_daily_usd, budget_monthly_usd, budget_total_usd) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)";

pub(super) const LIST_KEYS: &str = concat!(
    "SELECT ",
    key_columns!(),
    " FROM llmux_keys ORDER BY created_at, id"
);

pub(super) const GET_KEY: &str =
    concat!("SELECT ", key_columns!(), " FROM llmux_keys WHERE id = $1");

pub(super) const GET_KEY_WITH_HASH: &str = concat!(
    "SELECT secret_hash, ",
    key_columns!(),
    " FROM llmux_keys WHERE id = $1"
);

pub(super) const REVOKE_KEY: &str =
    "UPDATE llmux_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1";

/// One statement, so an update is atomic without a transaction: `$2k` says whether to set a
/// field and `$2k+1` is its new value.
pub(super) const UPDATE_KEY: &str = concat!(
    "UPDATE llmux_keys SET ",
    "name = CASE WHEN $2 THEN $3 ELSE name END, ",
    "expires_at = CASE WHEN $4 THEN $5 ELSE expires_at END, ",
    "allowed_models = CASE WHEN $6 THEN $7 ELSE allowed_models END, ",
    "allowed_vendors = CASE WHEN $8 THEN $9 ELSE allowed_vendors END, ",
    "rpm = CASE WHEN $10 THEN $11 ELSE rpm END, ",
    "tpm = CASE WHEN $12 THEN $13 ELSE tpm END, ",
    "max_parallel = CASE WHEN $14 THEN $15 ELSE max_parallel END, ",
    "budget_daily_usd = CASE WHEN $16 THEN $17 ELSE budget_daily_usd END, ",
    "budget_monthly_usd = CASE WHEN $18 THEN $19 ELSE budget_monthly_usd END, ",
    "budget_total_usd = CASE WHEN $20 THEN $21 ELSE budget_total_usd END ",
    "WHERE id = $1 RETURNING ",
    key_columns!()
);

/// Adds in the database, so concurrent calls never lose an increment.
pub(super) const RECORD_USAGE: &str = "INSERT INTO llmux_usage \
     (key_id, day, requests, input_tokens, output_tokens, cost_nanos) \
     VALUES ($1, $2, 1, $3, $4, $5) \
     ON CONFLICT (key_id, day) DO UPDATE SET \
     requests = llmux_usage.requests + excluded.requests, \
     input_tokens = llmux_usage.input_tokens + excluded.input_tokens, \
     output_tokens = llmux_usage.output_tokens + excluded.output_tokens, \
     cost_nanos = llmux_usage.cost_nanos + excluded.cost_nanos";

pub(super) const USAGE: &str = "SELECT day, requests, input_tokens, output_tokens, cost_nanos \
     FROM llmux_usage WHERE key_id = $1 ORDER BY day";

/// PostgreSQL's `SUM(bigint)` is `numeric`, hence the casts back to `BIGINT`.
pub(super) const SPEND: &str = "SELECT \
     CAST(COALESCE(SUM(CASE WHEN day = $2 THEN cost_nanos ELSE 0 END), 0) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN day >= $3 AND day <= $4 THEN cost_nanos ELSE 0 END), 0) AS BIGINT), \
     CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) \
     FROM llmux_usage WHERE key_id = $1";

pub(super) const ANY_KEY: &str = "SELECT id FROM llmux_keys LIMIT 1";

/// Name of the table in which sqlx records applied migrations; our own, so llmux can share a
/// database with an application that uses sqlx's default `_sqlx_migrations`.
pub(super) const MIGRATIONS_TABLE: &str = "llmux_store_migrations";

/// Costs are stored as integer nano-dollars: sums stay exact under concurrent updates, and
/// the smallest request costs (a few tokens at cents per million) still register.
const NANOS_PER_USD: f64 = 1e9;

pub(super) fn usd_to_nanos(usd: f64) -> i64 {
    // `as` saturates and maps NaN to 0; a negative cost is a caller bug, counted as zero.
    (usd.max(0.0) * NANOS_PER_USD).round() as i64
}

pub(super) fn nanos_to_usd(nanos: i64) -> f64 {
    nanos as f64 / NANOS_PER_USD
}

/// Token counts beyond `i64::MAX` cannot happen; saturate rather than fail.
pub(super) fn count_to_sql(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

pub(super) fn count_from_sql(id: &str, what: &str, count: i64) -> Result<u64, StoreError> {
    u64::try_from(count).map_err(|_| invalid_row(id, format!("negative {what}")))
}

pub(super) fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

/// A key record as stored: lists as JSON text, limits as `BIGINT`.
pub(super) struct KeyRow {
    pub(super) id: String,
    pub(super) name: Option<String>,
    pub(super) created_at: i64,
    pub(super) expires_at: Option<i64>,
    pub(super) revoked_at: Option<i64>,
    pub(super) allowed_models: String,
    pub(super) allowed_vendors: String,
    pub(super) rpm: Option<i64>,
    pub(super) tpm: Option<i64>,
    pub(super) max_parallel: Option<i64>,
    pub(super) budget_daily_usd: Option<f64>,
    pub(super) budget_monthly_usd: Option<f64>,
    pub(super) budget_total_usd: Option<f64>,
}

impl KeyRow {
    pub(super) fn new(id: String, created_at: i64, key: NewKey) -> Self {
        Self {
            id,
            name: key.name,
            created_at,
            expires_at: key.expires_at,
            revoked_at: None,
            allowed_models: list_to_sql(&key.allowed_models),
            allowed_vendors: list_to_sql(&key.allowed_vendors),
            rpm: key.rpm.map(i64::from),
            tpm: key.tpm.map(i64::from),
            max_parallel: key.max_parallel.map(i64::from),
            budget_daily_usd: key.budget_daily_usd,
            budget_monthly_usd: key.budget_monthly_usd,
            budget_total_usd: key.budget_total_usd,
        }
    }

    pub(super) fn into_record(self) -> Result<KeyRecord, StoreError> {
        let id = self.id;
        Ok(KeyRecord {
            name: self.name,
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            allowed_models: list_from_sql(&id, "allowed_models", &self.allowed_models)?,
            allowed_vendors: list_from_sql(&id, "allowed_vendors", &self.allowed_vendors)?,
            rpm: limit_from_sql(&id, "rpm", self.rpm)?,
            tpm: limit_from_sql(&id, "tpm", self.tpm)?,
            max_parallel: limit_from_sql(&id, "max_parallel", self.max_parallel)?,
            budget_daily_usd: self.budget_daily_usd,
            budget_monthly_usd: self.budget_monthly_usd,
            budget_total_usd: self.budget_total_usd,
            id,
        })
    }
}

/// A [`KeyUpdate`] as `UPDATE_KEY` binds it: a "set" flag and a value per column.
pub(super) struct UpdateRow {
    pub(super) name: (bool, Option<String>),
    pub(super) expires_at: (bool, Option<i64>),
    pub(super) allowed_models: (bool, Option<String>),
    pub(super) allowed_vendors: (bool, Option<String>),
    pub(super) rpm: (bool, Option<i64>),
    pub(super) tpm: (bool, Option<i64>),
    pub(super) max_parallel: (bool, Option<i64>),
    pub(super) budget_daily_usd: (bool, Option<f64>),
    pub(super) budget_monthly_usd: (bool, Option<f64>),
    pub(super) budget_total_usd: (bool, Option<f64>),
}

impl From<KeyUpdate> for UpdateRow {
    fn from(update: KeyUpdate) -> Self {
        fn field<T>(value: Option<Option<T>>) -> (bool, Option<T>) {
            (value.is_some(), value.flatten())
        }
        fn limit(value: Option<Option<u32>>) -> (bool, Option<i64>) {
            field(value.map(|limit| limit.map(i64::from)))
        }
        fn list(value: Option<Vec<String>>) -> (bool, Option<String>) {
            field(value.map(|items| Some(list_to_sql(&items))))
        }
        Self {
            name: field(update.name),
            expires_at: field(update.expires_at),
            allowed_models: list(update.allowed_models),
            allowed_vendors: list(update.allowed_vendors),
            rpm: limit(update.rpm),
            tpm: limit(update.tpm),
            max_parallel: limit(update.max_parallel),
            budget_daily_usd: field(update.budget_daily_usd),
            budget_monthly_usd: field(update.budget_monthly_usd),
            budget_total_usd: field(update.budget_total_usd),
        }
    }
}

pub(super) fn usage_row(
    id: &str,
    day: String,
    requests: i64,
    input_tokens: i64,
    output_tokens: i64,
    cost_nanos: i64,
) -> Result<UsageRow, StoreError> {
    Ok(UsageRow {
        day,
        requests: count_from_sql(id, "requests", requests)?,
        input_tokens: count_from_sql(id, "input_tokens", input_tokens)?,
        output_tokens: count_from_sql(id, "output_tokens", output_tokens)?,
        cost_usd: nanos_to_usd(cost_nanos),
    })
}

fn list_to_sql(items: &[String]) -> String {
    // Serializing a list of strings cannot fail; fall back to an empty list all the same.
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

fn list_from_sql(id: &str, column: &str, text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|err| invalid_row(id, format!("{column}: {err}")))
}

fn limit_from_sql(id: &str, column: &str, value: Option<i64>) -> Result<Option<u32>, StoreError> {
    value
        .map(|limit| {
            u32::try_from(limit).map_err(|_| invalid_row(id, format!("{column} out of range")))
        })
        .transpose()
}

fn invalid_row(id: &str, reason: String) -> StoreError {
    StoreError::InvalidRow {
        id: id.to_owned(),
        reason,
    }
}

/// Decodes a [`KeyRow`] from any backend's row (the column names are the same everywhere).
/// Expands to an expression that uses `?` with a [`StoreError`] naming the operation `$op`.
macro_rules! decode_key_row {
    ($row:expr, $op:literal) => {{
        use sqlx::Row as _;
        let row = $row;
        let err = || $crate::StoreError::database($op);
        sql::KeyRow {
            id: row.try_get("id").map_err(err())?,
            name: row.try_get("name").map_err(err())?,
            created_at: row.try_get("created_at").map_err(err())?,
            expires_at: row.try_get("expires_at").map_err(err())?,
            revoked_at: row.try_get("revoked_at").map_err(err())?,
            allowed_models: row.try_get("allowed_models").map_err(err())?,
            allowed_vendors: row.try_get("allowed_vendors").map_err(err())?,
            rpm: row.try_get("rpm").map_err(err())?,
            tpm: row.try_get("tpm").map_err(err())?,
            max_parallel: row.try_get("max_parallel").map_err(err())?,
            budget_daily_usd: row.try_get("budget_daily_usd").map_err(err())?,
            budget_monthly_usd: row.try_get("budget_monthly_usd").map_err(err())?,
            budget_total_usd: row.try_get("budget_total_usd").map_err(err())?,
        }
    }};
}

/// Implements [`KeyStore`](crate::KeyStore) for a store type with a `pool: sqlx::Pool<_>`
/// field. A macro rather than generic code: sqlx's per-database trait bounds would be longer
/// than the bodies, and the expansion type-checks against each backend's concrete types.
macro_rules! impl_key_store {
    ($store:ty) => {
        impl $crate::KeyStore for $store {
            fn create(
                &self,
                key: $crate::NewKey,
            ) -> $crate::BoxFuture<'_, Result<($crate::KeyRecord, String), $crate::StoreError>>
            {
                Box::pin(async move {
                    let generated = $crate::key::generate()?;
                    let row = sql::KeyRow::new(generated.id, sql::now_unix(), key);
                    sqlx::query(sql::INSERT_KEY)
                        .bind(row.id.as_str())
                        .bind(generated.secret_hash.as_slice())
                        .bind(row.name.as_deref())
                        .bind(row.created_at)
                        .bind(row.expires_at)
                        .bind(row.revoked_at)
                        .bind(row.allowed_models.as_str())
                        .bind(row.allowed_vendors.as_str())
                        .bind(row.rpm)
                        .bind(row.tpm)
                        .bind(row.max_parallel)
                        .bind(row.budget_daily_usd)
                        .bind(row.budget_monthly_usd)
                        .bind(row.budget_total_usd)
                        .execute(&self.pool)
                        .await
                        .map_err($crate::StoreError::database("create"))?;
                    Ok((row.into_record()?, generated.plaintext))
                })
            }

            fn list(
                &self,
            ) -> $crate::BoxFuture<'_, Result<Vec<$crate::KeyRecord>, $crate::StoreError>> {
                Box::pin(async move {
                    let rows = sqlx::query(sql::LIST_KEYS)
                        .fetch_all(&self.pool)
                        .await
                        .map_err($crate::StoreError::database("list"))?;
                    rows.iter()
                        .map(|row| sql::decode_key_row!(row, "list").into_record())
                        .collect()
                })
            }

            fn get<'a>(
                &'a self,
                id: &'a str,
            ) -> $crate::BoxFuture<'a, Result<Option<$crate::KeyRecord>, $crate::StoreError>> {
                Box::pin(async move {
                    let row = sqlx::query(sql::GET_KEY)
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err($crate::StoreError::database("get"))?;
                    row.map(|row| sql::decode_key_row!(&row, "get").into_record())
                        .transpose()
                })
            }

            fn authenticate<'a>(
                &'a self,
                presented: &'a str,
            ) -> $crate::BoxFuture<'a, Result<Option<$crate::KeyRecord>, $crate::StoreError>> {
                Box::pin(async move {
                    use sqlx::Row as _;
                    let Some((id, secret)) = $crate::parse_key(presented) else {
                        return Ok(None);
                    };
                    let row = sqlx::query(sql::GET_KEY_WITH_HASH)
                        .bind(id)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err($crate::StoreError::database("authenticate"))?;
                    let Some(row) = row else {
                        // Same work as a wrong secret, so the time does not tell ids apart.
                        std::hint::black_box($crate::key::secret_matches(secret, &[0; 32]));
                        return Ok(None);
                    };
                    let stored_hash: Vec<u8> = row
                        .try_get("secret_hash")
                        .map_err($crate::StoreError::database("authenticate"))?;
                    if !$crate::key::secret_matches(secret, &stored_hash) {
                        return Ok(None);
                    }
                    sql::decode_key_row!(&row, "authenticate")
                        .into_record()
                        .map(Some)
                })
            }

            fn revoke<'a>(
                &'a self,
                id: &'a str,
            ) -> $crate::BoxFuture<'a, Result<bool, $crate::StoreError>> {
                Box::pin(async move {
                    let done = sqlx::query(sql::REVOKE_KEY)
                        .bind(id)
                        .bind(sql::now_unix())
                        .execute(&self.pool)
                        .await
                        .map_err($crate::StoreError::database("revoke"))?;
                    Ok(done.rows_affected() > 0)
                })
            }

            fn update<'a>(
                &'a self,
                id: &'a str,
                update: $crate::KeyUpdate,
            ) -> $crate::BoxFuture<'a, Result<Option<$crate::KeyRecord>, $crate::StoreError>> {
                Box::pin(async move {
                    let u = sql::UpdateRow::from(update);
                    let row = sqlx::query(sql::UPDATE_KEY)
                        .bind(id)
                        .bind(u.name.0)
                        .bind(u.name.1)
                        .bind(u.expires_at.0)
                        .bind(u.expires_at.1)
                        .bind(u.allowed_models.0)
                        .bind(u.allowed_models.1)
                        .bind(u.allowed_vendors.0)
                        .bind(u.allowed_vendors.1)
                        .bind(u.rpm.0)
                        .bind(u.rpm.1)
                        .bind(u.tpm.0)
                        .bind(u.tpm.1)
                        .bind(u.max_parallel.0)
                        .bind(u.max_parallel.1)
                        .bind(u.budget_daily_usd.0)
                        .bind(u.budget_daily_usd.1)
                        .bind(u.budget_monthly_usd.0)
                        .bind(u.budget_monthly_usd.1)
                        .bind(u.budget_total_usd.0)
                        .bind(u.budget_total_usd.1)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err($crate::StoreError::database("update"))?;
                    row.map(|row| sql::decode_key_row!(&row, "update").into_record())
                        .transpose()
                })
            }

            fn record_usage<'a>(
                &'a self,
                id: &'a str,
                at_unix: i64,
                input_tokens: u64,
                output_tokens: u64,
                cost_usd: f64,
            ) -> $crate::BoxFuture<'a, Result<(), $crate::StoreError>> {
                Box::pin(async move {
                    sqlx::query(sql::RECORD_USAGE)
                        .bind(id)
                        .bind($crate::calendar::day(at_unix))
                        .bind(sql::count_to_sql(input_tokens))
                        .bind(sql::count_to_sql(output_tokens))
                        .bind(sql::usd_to_nanos(cost_usd))
                        .execute(&self.pool)
                        .await
                        .map_err($crate::StoreError::database("record_usage"))?;
                    Ok(())
                })
            }

            fn usage<'a>(
                &'a self,
                id: &'a str,
            ) -> $crate::BoxFuture<'a, Result<Vec<$crate::UsageRow>, $crate::StoreError>> {
                Box::pin(async move {
                    use sqlx::Row as _;
                    let rows = sqlx::query(sql::USAGE)
                        .bind(id)
                        .fetch_all(&self.pool)
                        .await
                        .map_err($crate::StoreError::database("usage"))?;
                    rows.iter()
                        .map(|row| {
                            let err = || $crate::StoreError::database("usage");
                            sql::usage_row(
                                id,
                                row.try_get("day").map_err(err())?,
                                row.try_get("requests").map_err(err())?,
                                row.try_get("input_tokens").map_err(err())?,
                                row.try_get("output_tokens").map_err(err())?,
                                row.try_get("cost_nanos").map_err(err())?,
                            )
                        })
                        .collect()
                })
            }

            fn spend<'a>(
                &'a self,
                id: &'a str,
                now_unix: i64,
            ) -> $crate::BoxFuture<'a, Result<$crate::Spend, $crate::StoreError>> {
                Box::pin(async move {
                    let (first, last) = $crate::calendar::month_bounds(now_unix);
                    let (day, month, total): (i64, i64, i64) = sqlx::query_as(sql::SPEND)
                        .bind(id)
                        .bind($crate::calendar::day(now_unix))
                        .bind(first)
                        .bind(last)
                        .fetch_one(&self.pool)
                        .await
                        .map_err($crate::StoreError::database("spend"))?;
                    Ok($crate::Spend {
                        day: sql::nanos_to_usd(day),
                        month: sql::nanos_to_usd(month),
                        total: sql::nanos_to_usd(total),
                    })
                })
            }

            fn any_keys(&self) -> $crate::BoxFuture<'_, Result<bool, $crate::StoreError>> {
                Box::pin(async move {
                    let row = sqlx::query(sql::ANY_KEY)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err($crate::StoreError::database("any_keys"))?;
                    Ok(row.is_some())
                })
            }
        }
    };
}

pub(super) use {decode_key_row, impl_key_store};

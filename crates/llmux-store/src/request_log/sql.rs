//! What the SQLite and PostgreSQL request logs share: the insert and page statements (both
//! backends accept `$N` placeholders), the row shape and its decoding, days and retention.

use std::borrow::Cow;

use sqlx::Row;

use super::query::Cursor;
use crate::request_log::record::{USER_AGENT_CAP, capped};
use crate::{AttemptRecord, Page, RequestFilter, RequestRecord, StatusFilter, StoreError};

/// The (parent) table.
pub(super) const TABLE: &str = "llmux_request_log";

/// The table in which sqlx records the request log's applied migrations: its own, so the
/// log may share a database (and a migration history table name) with the key store, whose
/// versions are numbered independently.
pub(super) const MIGRATIONS_TABLE: &str = "llmux_request_log_migrations";

pub(super) const DAY_MS: i64 = 86_400_000;

/// 9999-12-31T23:59:59.999Z: times are clamped to `0..=MAX_TIME_MS` so that day arithmetic
/// (and PostgreSQL partition bounds) cannot overflow.
const MAX_TIME_MS: i64 = 253_402_300_799_999;

/// Columns in insert and bind order ([`bind_row!`]).
const COLUMNS: [&str; 25] = [
    "time_ms",
    "request_id",
    "key_id",
    "key_name",
    "ingress",
    "requested_model",
    "vendor",
    "credential",
    "upstream_model",
    "status",
    "error_kind",
    "attempts",
    "ttfb_ms",
    "total_ms",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "reasoning_tokens",
    "cost_usd",
    "cost_estimated",
    "stream",
    "client_addr",
    "user_agent",
    "request_body",
    "response_body",
];

/// Rows per `INSERT` statement: SQLite allows 32,766 parameters in one statement (PostgreSQL
/// 65,535). A batch larger than this is several statements in the same transaction.
pub(super) const ROWS_PER_STATEMENT: usize = 32_766 / COLUMNS.len();

/// `INSERT … VALUES (…), (…) ON CONFLICT DO NOTHING` for `rows` rows. With `sigil` `'$'`
/// the placeholders are `$1`, `$2`… (PostgreSQL); with `'?'` they are plain `?` (SQLite: it
/// keeps numbered or named parameters in a list it searches on every lookup, and sqlx looks
/// each one's name up when binding, so `$N` costs quadratic time in a batch — 2.4 million
/// instructions per record at 500-row batches). `attempts_cast` follows the attempts
/// placeholder (`::jsonb` for PostgreSQL). A record already stored (the same time and request
/// id) is skipped rather than failing its whole batch.
pub(super) fn insert_sql(rows: usize, sigil: char, attempts_cast: &str) -> String {
    let mut sql = format!("INSERT INTO {TABLE} ({}) VALUES ", COLUMNS.join(", "));
    let mut n = 0;
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for (i, column) in COLUMNS.iter().enumerate() {
            n += 1;
            if i > 0 {
                sql.push_str(", ");
            }
            sql.push(sigil);
            if sigil == '$' {
                sql.push_str(&n.to_string());
            }
            if *column == "attempts" {
                sql.push_str(attempts_cast);
            }
        }
        sql.push(')');
    }
    sql.push_str(" ON CONFLICT DO NOTHING");
    sql
}

/// A record as bound into an `INSERT`: integers as `BIGINT`, attempts as JSON text, the user
/// agent capped, the time clamped and non-finite costs dropped.
pub(super) struct InsertRow<'a> {
    pub(super) time_ms: i64,
    pub(super) request_id: &'a str,
    pub(super) key_id: Option<&'a str>,
    pub(super) key_name: Option<&'a str>,
    pub(super) ingress: &'a str,
    pub(super) requested_model: &'a str,
    pub(super) vendor: Option<&'a str>,
    pub(super) credential: Option<&'a str>,
    pub(super) upstream_model: Option<&'a str>,
    pub(super) status: i64,
    pub(super) error_kind: Option<&'a str>,
    pub(super) attempts: String,
    pub(super) ttfb_ms: Option<i64>,
    pub(super) total_ms: i64,
    pub(super) input_tokens: Option<i64>,
    pub(super) output_tokens: Option<i64>,
    pub(super) cached_tokens: Option<i64>,
    pub(super) reasoning_tokens: Option<i64>,
    pub(super) cost_usd: Option<f64>,
    pub(super) cost_estimated: bool,
    pub(super) stream: bool,
    pub(super) client_addr: &'a str,
    pub(super) user_agent: Option<&'a str>,
    pub(super) request_body: Option<&'a str>,
    pub(super) response_body: Option<&'a str>,
}

impl<'a> InsertRow<'a> {
    pub(super) fn new(record: &'a RequestRecord) -> Self {
        let count = |count: Option<u64>| count.map(|n| i64::try_from(n).unwrap_or(i64::MAX));
        Self {
            time_ms: clamp_time(record.time_ms),
            request_id: &record.request_id,
            key_id: record.key_id.as_deref(),
            key_name: record.key_name.as_deref(),
            ingress: &record.ingress,
            requested_model: &record.requested_model,
            vendor: record.vendor.as_deref(),
            credential: record.credential.as_deref(),
            upstream_model: record.upstream_model.as_deref(),
            status: i64::from(record.status),
            error_kind: record.error_kind.as_deref(),
            // Serializing plain strings and integers cannot fail; an empty list is the
            // harmless answer if it ever did.
            attempts: serde_json::to_string(&record.attempts).unwrap_or_else(|_| "[]".into()),
            ttfb_ms: record.ttfb_ms.map(i64::from),
            total_ms: i64::from(record.total_ms),
            input_tokens: count(record.input_tokens),
            output_tokens: count(record.output_tokens),
            cached_tokens: count(record.cached_tokens),
            reasoning_tokens: count(record.reasoning_tokens),
            cost_usd: record.cost_usd.filter(|cost| cost.is_finite()),
            cost_estimated: record.cost_estimated,
            stream: record.stream,
            client_addr: &record.client_addr,
            user_agent: record
                .user_agent
                .as_deref()
                .map(|agent| capped(agent, USER_AGENT_CAP)),
            request_body: record.request_body.as_deref(),
            response_body: record.response_body.as_deref(),
        }
    }
}

/// Binds one [`InsertRow`] in [`COLUMNS`] order.
macro_rules! bind_row {
    ($query:expr, $row:expr) => {{
        let row: &$crate::request_log::sql::InsertRow<'_> = $row;
        $query
            .bind(row.time_ms)
            .bind(row.request_id)
            .bind(row.key_id)
            .bind(row.key_name)
            .bind(row.ingress)
            .bind(row.requested_model)
            .bind(row.vendor)
            .bind(row.credential)
            .bind(row.upstream_model)
            .bind(row.status)
            .bind(row.error_kind)
            .bind(row.attempts.as_str())
            .bind(row.ttfb_ms)
            .bind(row.total_ms)
            .bind(row.input_tokens)
            .bind(row.output_tokens)
            .bind(row.cached_tokens)
            .bind(row.reasoning_tokens)
            .bind(row.cost_usd)
            .bind(row.cost_estimated)
            .bind(row.stream)
            .bind(row.client_addr)
            .bind(row.user_agent)
            .bind(row.request_body)
            .bind(row.response_body)
    }};
}
pub(super) use bind_row;

/// Columns a page returns (no bodies) and a single `get` returns (with bodies), given how the
/// backend reads attempts back as text.
macro_rules! select_columns {
    ($attempts:literal, bodies) => {
        concat!(
            $crate::request_log::sql::select_columns!($attempts),
            ", request_body, response_body"
        )
    };
    ($attempts:literal) => {
        concat!(
            "time_ms, request_id, key_id, key_name, ingress, requested_model, vendor, \
             credential, upstream_model, status, error_kind, ",
            $attempts,
            ", ttfb_ms, total_ms, input_tokens, output_tokens, cached_tokens, \
             reasoning_tokens, cost_usd, cost_estimated, stream, client_addr, user_agent"
        )
    };
}
pub(super) use select_columns;

/// A value bound into a page query.
pub(super) enum Param {
    Int(i64),
    Text(String),
}

/// A page query: SQL with `$N` placeholders, its parameters in order, and the page size.
pub(super) struct PageQuery {
    pub(super) sql: String,
    pub(super) params: Vec<Param>,
    pub(super) size: usize,
}

/// The keyset page query for `filter`: newest first on `(time_ms, request_id)`, one row more
/// than the page holds so that the caller knows whether another page follows.
///
/// Only placeholders and fixed text enter the SQL; every value is a parameter.
pub(super) fn page_query(columns: &str, filter: &RequestFilter) -> Result<PageQuery, StoreError> {
    let mut sql = format!("SELECT {columns} FROM {TABLE} WHERE 1 = 1");
    let mut params = Vec::new();
    let mut param = |value: Param| {
        params.push(value);
        format!("${}", params.len())
    };
    if let Some(from) = filter.from {
        sql.push_str(&format!(" AND time_ms >= {}", param(Param::Int(from))));
    }
    if let Some(to) = filter.to {
        sql.push_str(&format!(" AND time_ms < {}", param(Param::Int(to))));
    }
    if let Some(key) = &filter.key {
        sql.push_str(&format!(
            " AND key_id = {}",
            param(Param::Text(key.clone()))
        ));
    }
    if let Some(model) = &filter.model {
        let requested = param(Param::Text(model.clone()));
        let upstream = param(Param::Text(model.clone()));
        sql.push_str(&format!(
            " AND (requested_model = {requested} OR upstream_model = {upstream})"
        ));
    }
    if let Some(vendor) = &filter.vendor {
        sql.push_str(&format!(
            " AND vendor = {}",
            param(Param::Text(vendor.clone()))
        ));
    }
    match filter.status {
        None => {}
        Some(StatusFilter::Exact(status)) => {
            let status = param(Param::Int(i64::from(status)));
            sql.push_str(&format!(" AND status = {status}"));
        }
        Some(StatusFilter::Class(class)) => {
            let low = param(Param::Int(i64::from(class) * 100));
            let high = param(Param::Int(i64::from(class) * 100 + 100));
            sql.push_str(&format!(" AND status >= {low} AND status < {high}"));
        }
        Some(StatusFilter::Error) => {
            sql.push_str(" AND (status >= 400 OR error_kind IS NOT NULL)");
        }
    }
    if let Some(cursor) = &filter.cursor {
        let cursor = Cursor::decode(cursor)?;
        // The first condition alone lets PostgreSQL prune partitions and both backends seek
        // the time index; the second makes it exact.
        let at_most = param(Param::Int(cursor.time_ms));
        let before = param(Param::Int(cursor.time_ms));
        let id = param(Param::Text(cursor.request_id));
        sql.push_str(&format!(
            " AND time_ms <= {at_most} AND (time_ms < {before} OR request_id < {id})"
        ));
    }
    let size = filter.page_size() as usize;
    let limit = param(Param::Int(size as i64 + 1));
    sql.push_str(&format!(
        " ORDER BY time_ms DESC, request_id DESC LIMIT {limit}"
    ));
    Ok(PageQuery { sql, params, size })
}

/// Binds a [`PageQuery`]'s parameters in order.
macro_rules! bind_params {
    ($query:expr, $params:expr) => {{
        let mut query = $query;
        for param in $params {
            query = match param {
                $crate::request_log::sql::Param::Int(value) => query.bind(*value),
                $crate::request_log::sql::Param::Text(value) => query.bind(value.as_str()),
            };
        }
        query
    }};
}
pub(super) use bind_params;

/// The page for rows fetched by a [`PageQuery`] of page size `size`.
pub(super) fn page(mut records: Vec<RequestRecord>, size: usize) -> Page {
    let next_cursor = if records.len() > size {
        records.truncate(size);
        records
            .last()
            .map(|last| Cursor::encode(last.time_ms, &last.request_id))
    } else {
        None
    };
    Page {
        records,
        next_cursor,
    }
}

/// Decodes a row selected with [`select_columns!`]; `bodies` says whether the body columns
/// were selected.
pub(super) fn decode<'r, R>(row: &'r R, bodies: bool) -> Result<RequestRecord, StoreError>
where
    R: Row,
    &'static str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Option<f64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let err = |source| StoreError::Database {
        op: "read the request log",
        source,
    };
    let request_id: String = row.try_get("request_id").map_err(err)?;
    let invalid = |reason: &str| StoreError::InvalidLogRow {
        request_id: request_id.clone(),
        reason: reason.to_owned(),
    };
    let count = |column: &'static str| -> Result<Option<u64>, StoreError> {
        let value: Option<i64> = row.try_get(column).map_err(err)?;
        value
            .map(|n| u64::try_from(n).map_err(|_| invalid(column)))
            .transpose()
    };
    let status: i64 = row.try_get("status").map_err(err)?;
    let ttfb_ms: Option<i64> = row.try_get("ttfb_ms").map_err(err)?;
    let total_ms: i64 = row.try_get("total_ms").map_err(err)?;
    let attempts: String = row.try_get("attempts").map_err(err)?;
    let attempts: Vec<AttemptRecord> =
        serde_json::from_str(&attempts).map_err(|_| invalid("attempts"))?;
    let (request_body, response_body) = if bodies {
        (
            row.try_get("request_body").map_err(err)?,
            row.try_get("response_body").map_err(err)?,
        )
    } else {
        (None, None)
    };
    Ok(RequestRecord {
        time_ms: row.try_get("time_ms").map_err(err)?,
        key_id: row.try_get("key_id").map_err(err)?,
        key_name: row.try_get("key_name").map_err(err)?,
        ingress: Cow::Owned(row.try_get("ingress").map_err(err)?),
        requested_model: row.try_get("requested_model").map_err(err)?,
        vendor: row
            .try_get::<Option<String>, _>("vendor")
            .map_err(err)?
            .map(Into::into),
        credential: row
            .try_get::<Option<String>, _>("credential")
            .map_err(err)?
            .map(Into::into),
        upstream_model: row
            .try_get::<Option<String>, _>("upstream_model")
            .map_err(err)?
            .map(Into::into),
        status: u16::try_from(status).map_err(|_| invalid("status"))?,
        error_kind: row
            .try_get::<Option<String>, _>("error_kind")
            .map_err(err)?
            .map(Cow::Owned),
        attempts,
        ttfb_ms: ttfb_ms
            .map(|ms| u32::try_from(ms).map_err(|_| invalid("ttfb_ms")))
            .transpose()?,
        total_ms: u32::try_from(total_ms).map_err(|_| invalid("total_ms"))?,
        input_tokens: count("input_tokens")?,
        output_tokens: count("output_tokens")?,
        cached_tokens: count("cached_tokens")?,
        reasoning_tokens: count("reasoning_tokens")?,
        cost_usd: row.try_get("cost_usd").map_err(err)?,
        cost_estimated: row.try_get("cost_estimated").map_err(err)?,
        stream: row.try_get("stream").map_err(err)?,
        client_addr: row.try_get("client_addr").map_err(err)?,
        user_agent: row.try_get("user_agent").map_err(err)?,
        request_body,
        response_body,
        request_id,
    })
}

pub(super) fn clamp_time(time_ms: i64) -> i64 {
    time_ms.clamp(0, MAX_TIME_MS)
}

/// The UTC day number (days since 1970-01-01) of a time.
pub(super) fn day_of(time_ms: i64) -> i64 {
    clamp_time(time_ms).div_euclid(DAY_MS)
}

/// The day as `YYYYMMDD`: the suffix of its PostgreSQL partition. Zero-padded, so string
/// order is day order.
pub(super) fn day_suffix(day: i64) -> String {
    crate::calendar::day(day * 86_400).replace('-', "")
}

/// The first day retention keeps, given `days` of retention at `now_ms`: the day that
/// contained `now - days`. Every record younger than `days` days is kept; whole days older
/// than that are dropped.
pub(super) fn first_kept_day(days: u32, now_ms: i64) -> i64 {
    day_of(now_ms.saturating_sub(i64::from(days) * DAY_MS))
}

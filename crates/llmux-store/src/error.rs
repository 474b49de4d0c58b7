//! The crate's one error type and its classification.
//!
//! Messages name the operation and the (redacted) URL, never a key secret, its hash or a
//! password: a caller may log `error = %err` without thinking about it.

use std::error::Error as StdError;

/// What a caller should do about a [`StoreError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The backing service could not be reached in time (connection refused, reset or timed
    /// out, pool exhausted). The caller applies its fail-open or fail-closed policy.
    Unavailable,
    /// Anything else: a bad URL, a failed query, a corrupt row. Retrying will not help.
    Other,
}

/// An error from a [`KeyStore`](crate::KeyStore), a [`Limiter`](crate::Limiter) or a
/// [`RequestLogStore`](crate::RequestLogStore).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL names no backend this crate knows.
    #[error("unsupported store url {url}: expected sqlite: or postgres://")]
    UnsupportedUrl {
        /// The URL with any password removed.
        url: String,
    },
    /// The URL names a known backend but does not parse.
    #[error("invalid store url {url}")]
    InvalidUrl {
        /// The URL with any password removed.
        url: String,
        /// Why the driver rejected it.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// A SQL statement or connection failed.
    #[error("database operation {op} failed")]
    Database {
        /// The store operation that failed, such as `record_usage`.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// A statement on the request log's SQLite write connection failed.
    #[error("database operation {op} failed")]
    Sqlite {
        /// The store operation that failed, such as `write the request log`.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A blocking task running a store operation panicked or was cancelled.
    #[error("{op} failed: its task ended early")]
    TaskFailed {
        /// The operation, such as `write the request log`.
        op: &'static str,
    },
    /// Bringing the schema up to date failed.
    #[error("database migration failed")]
    Migration(#[source] sqlx::migrate::MigrateError),
    /// A Redis command or connection failed.
    #[error("redis operation {op} failed")]
    Redis {
        /// The limiter operation that failed, such as `check`.
        op: &'static str,
        /// The driver's error.
        #[source]
        source: redis::RedisError,
    },
    /// A stored row could not be turned into a record.
    #[error("stored row for key {id} is invalid: {reason}")]
    InvalidRow {
        /// The public key id of the row.
        id: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A stored request-log row could not be turned into a record.
    #[error("stored request log row {request_id} is invalid: {reason}")]
    InvalidLogRow {
        /// The request id of the row.
        request_id: String,
        /// What was wrong with it.
        reason: String,
    },
    /// A request-log cursor that this store did not issue.
    #[error("invalid request log cursor")]
    InvalidCursor,
    /// The operation did not finish before its deadline.
    #[error("{op} timed out")]
    TimedOut {
        /// The operation, such as `write the request log`.
        op: &'static str,
    },
    /// An argument cannot be represented by the backend.
    #[error("{what} is out of range")]
    OutOfRange {
        /// Which argument.
        what: &'static str,
    },
    /// The operating system's random source failed while generating a key.
    #[error("random source failed while generating a key")]
    Random(#[source] getrandom::Error),
}

impl StoreError {
    /// Whether the backend was unreachable or something else went wrong.
    pub fn kind(&self) -> ErrorKind {
        let unavailable = match self {
            Self::Database { source, .. } => sqlx_unavailable(source),
            Self::Migration(
                sqlx::migrate::MigrateError::Execute(source)
                | sqlx::migrate::MigrateError::ExecuteMigration(source, _),
            ) => sqlx_unavailable(source),
            Self::Redis { source, .. } => redis_unavailable(source),
            Self::TimedOut { .. } => true,
            _ => false,
        };
        if unavailable {
            ErrorKind::Unavailable
        } else {
            ErrorKind::Other
        }
    }

    pub(crate) fn database(op: &'static str) -> impl FnOnce(sqlx::Error) -> Self {
        move |source| Self::Database { op, source }
    }

    pub(crate) fn sqlite(op: &'static str) -> impl FnOnce(rusqlite::Error) -> Self {
        move |source| Self::Sqlite { op, source }
    }

    pub(crate) fn redis(op: &'static str) -> impl FnOnce(redis::RedisError) -> Self {
        move |source| Self::Redis { op, source }
    }
}

fn sqlx_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL class 08 is "connection exception"; 57P01..57P03 are shutdowns and
        // "cannot connect now"; 53300 is "too many connections".
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || code.starts_with("57P") || code == "53300"
        }),
        _ => false,
    }
}

fn redis_unavailable(err: &redis::RedisError) -> bool {
    use redis::{ErrorKind as K, ServerErrorKind as S};
    err.is_io_error()
        || err.is_timeout()
        || err.is_connection_refusal()
        || err.is_connection_dropped()
        || matches!(
            err.kind(),
            K::Server(S::BusyLoading | S::TryAgain | S::ClusterDown | S::MasterDown)
        )
}

/// Returns `url` fit for a message: the password and any `password=` query value replaced by
/// `***`. A URL that does not parse keeps only its scheme and what follows the last `@`.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                // Cannot fail: the URL already has a host, since it has a password.
                let _ = parsed.set_password(Some("***"));
            }
            let secret_query = parsed.query_pairs().any(|(name, _)| is_secret_param(&name));
            if secret_query {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(name, value)| {
                        let value = if is_secret_param(&name) {
                            "***".to_owned()
                        } else {
                            value.into_owned()
                        };
                        (name.into_owned(), value)
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            parsed.to_string()
        }
        Err(_) => match (url.split_once("://"), url.rfind('@')) {
            (Some((scheme, _)), Some(at)) => format!("{scheme}://***{}", &url[at..]),
            (None, Some(at)) => format!("***{}", &url[at..]),
            _ => url.to_owned(),
        },
    }
}

fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("password") || name == "pass" || name.contains("secret") || name == "token"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password_in_url() {
        let shown = redact_url("postgres://admin:hunter2@db.internal:5432/llmux");
        assert_eq!(shown, "postgres://admin:***@db.internal:5432/llmux");
    }

    #[test]
    fn redacts_password_query_parameter() {
        let shown = redact_url("postgres://db/llmux?sslmode=disable&password=hunter2");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("sslmode=disable"), "{shown}");
    }

    #[test]
    fn redacts_unparseable_url_with_credentials() {
        let shown = redact_url("postgres://admin:hun@ter2@db:notaport/llmux");
        assert!(!shown.contains("hun"), "{shown}");
        assert_eq!(shown, "postgres://***@db:notaport/llmux");
    }

    #[test]
    fn keeps_url_without_credentials() {
        assert_eq!(redact_url("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
    }
}

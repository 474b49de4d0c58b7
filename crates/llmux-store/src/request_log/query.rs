//! What a request-log query asks for and what it returns: [`RequestFilter`], [`StatusFilter`],
//! [`Page`] and the opaque cursor.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

use crate::{RequestRecord, StoreError};

/// Records per page when the filter names no limit.
pub const DEFAULT_LIMIT: u32 = 50;
/// The most records one page holds; larger limits are lowered to it.
pub const MAX_LIMIT: u32 = 500;

/// Which records a [`query`](crate::RequestLogStore::query) returns. Every field narrows the
/// result; `Default` matches everything.
///
/// The field names are the query parameters of `GET /admin/requests`, so a server can
/// deserialize the filter straight from its query string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RequestFilter {
    /// Only records at or after this time (Unix milliseconds, inclusive).
    pub from: Option<i64>,
    /// Only records before this time (Unix milliseconds, exclusive).
    pub to: Option<i64>,
    /// Only records of this virtual key id.
    pub key: Option<String>,
    /// Only records whose requested or upstream model is this one.
    pub model: Option<String>,
    /// Only records whose (last) vendor is this one.
    pub vendor: Option<String>,
    /// Only records with this status or status class.
    pub status: Option<StatusFilter>,
    /// Records per page: [`DEFAULT_LIMIT`] when absent, at most [`MAX_LIMIT`], at least 1.
    pub limit: Option<u32>,
    /// Continue after the page that returned this [`Page::next_cursor`].
    pub cursor: Option<String>,
}

impl RequestFilter {
    /// The page size this filter asks for, after defaults and bounds.
    pub fn page_size(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT)
    }
}

/// A status condition: one status, a class of statuses, or every failure.
///
/// Parsed from (and shown as) `429`, `4xx`, `5xx` or `error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum StatusFilter {
    /// Exactly this status.
    Exact(u16),
    /// Every status in `class * 100 ..= class * 100 + 99`; `class` is 1 to 9.
    Class(u8),
    /// Every failed request: a status of 400 or above, or an error kind (a stream that broke
    /// after a 200 head was sent).
    Error,
}

/// A status filter that is neither a status, a class such as `4xx`, nor `error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid status filter {0:?}: expected a status such as 429, a class such as 5xx, or error"
)]
pub struct ParseStatusFilterError(String);

impl FromStr for StatusFilter {
    type Err = ParseStatusFilterError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || ParseStatusFilterError(text.chars().take(32).collect());
        let bytes = text.as_bytes();
        if text.eq_ignore_ascii_case("error") {
            return Ok(Self::Error);
        }
        match bytes {
            [class @ b'1'..=b'9', b'x' | b'X', b'x' | b'X'] => Ok(Self::Class(class - b'0')),
            [b'1'..=b'9', b'0'..=b'9', b'0'..=b'9'] => {
                text.parse().map(Self::Exact).map_err(|_| invalid())
            }
            _ => Err(invalid()),
        }
    }
}

impl TryFrom<String> for StatusFilter {
    type Error = ParseStatusFilterError;

    fn try_from(text: String) -> Result<Self, ParseStatusFilterError> {
        text.parse()
    }
}

impl fmt::Display for StatusFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(status) => write!(f, "{status}"),
            Self::Class(class) => write!(f, "{class}xx"),
            Self::Error => f.write_str("error"),
        }
    }
}

impl From<StatusFilter> for String {
    fn from(filter: StatusFilter) -> Self {
        filter.to_string()
    }
}

/// One page of a query: records newest first, and where the next page starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// The records, newest first (ties broken by request id, descending).
    pub records: Vec<RequestRecord>,
    /// Pass this as [`RequestFilter::cursor`] for the next (older) page; `None` on the last.
    pub next_cursor: Option<String>,
}

/// Where a page ends: the `(time_ms, request_id)` of its last record. Pages are keyset
/// pages on `(time_ms DESC, request_id DESC)`, so records inserted while a client pages
/// neither repeat nor hide older ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    pub(crate) time_ms: i64,
    pub(crate) request_id: String,
}

impl Cursor {
    /// The opaque form: URL-safe base64 of `time_ms:request_id`.
    pub(crate) fn encode(time_ms: i64, request_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(format!("{time_ms}:{request_id}"))
    }

    pub(crate) fn decode(text: &str) -> Result<Self, StoreError> {
        let bytes = URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| StoreError::InvalidCursor)?;
        let text = String::from_utf8(bytes).map_err(|_| StoreError::InvalidCursor)?;
        let (time, request_id) = text.split_once(':').ok_or(StoreError::InvalidCursor)?;
        Ok(Self {
            time_ms: time.parse().map_err(|_| StoreError::InvalidCursor)?,
            request_id: request_id.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_filters_parse_and_show() {
        for (text, filter) in [
            ("429", StatusFilter::Exact(429)),
            ("200", StatusFilter::Exact(200)),
            ("4xx", StatusFilter::Class(4)),
            ("5XX", StatusFilter::Class(5)),
            ("error", StatusFilter::Error),
            ("ERROR", StatusFilter::Error),
        ] {
            assert_eq!(text.parse::<StatusFilter>(), Ok(filter), "{text}");
            assert_eq!(
                filter.to_string().parse::<StatusFilter>(),
                Ok(filter),
                "{text}"
            );
        }
        for bad in ["", "4", "42", "4294", "0xx", "099", "x4x", "errors", "4xxx"] {
            assert!(bad.parse::<StatusFilter>().is_err(), "{bad}");
        }
    }

    #[test]
    fn filter_deserializes_from_query_parameters() {
        let filter: RequestFilter = serde_json::from_value(serde_json::json!({
            "from": 1, "status": "5xx", "limit": 10, "model": "gpt"
        }))
        .unwrap();
        assert_eq!(filter.status, Some(StatusFilter::Class(5)));
        assert_eq!(filter.page_size(), 10);
        assert_eq!(filter.model.as_deref(), Some("gpt"));
        assert!(
            serde_json::from_value::<RequestFilter>(serde_json::json!({"status": "nope"})).is_err()
        );
    }

    #[test]
    fn page_size_is_bounded() {
        let size = |limit| {
            RequestFilter {
                limit,
                ..RequestFilter::default()
            }
            .page_size()
        };
        assert_eq!(size(None), DEFAULT_LIMIT);
        assert_eq!(size(Some(0)), 1);
        assert_eq!(size(Some(10_000)), MAX_LIMIT);
    }

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let text = Cursor::encode(1_793_487_600_123, "req:with:colons");
        let cursor = Cursor::decode(&text).unwrap();
        assert_eq!(cursor.time_ms, 1_793_487_600_123);
        assert_eq!(cursor.request_id, "req:with:colons");
        for bad in [
            "",
            "!!!",
            &URL_SAFE_NO_PAD.encode("nocolon"),
            &URL_SAFE_NO_PAD.encode("x:1"),
        ] {
            assert!(
                matches!(Cursor::decode(bad), Err(StoreError::InvalidCursor)),
                "{bad}"
            );
        }
    }
}

//! HTTP/1.1 heads on the wire: request heads written from header lines prepared once per
//! credential, response heads parsed (`httparse`) into a status, a `HeaderMap` whose values
//! share the read buffer, the body's framing and whether the connection can be reused.

use bytes::BytesMut;
use http::header::{CONNECTION, CONTENT_LENGTH, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::framing::{Chunked, Framing};

/// Most response header lines accepted.
const MAX_HEADERS: usize = 100;
/// Largest response head accepted (vendors send 1–2 KiB).
pub(crate) const MAX_HEAD: usize = 64 * 1024;

/// Request header lines (`name: value\r\n`…), serialized once. They carry the credential, so
/// they never print.
#[derive(Clone)]
pub(crate) struct HeaderLines(Box<[u8]>);

impl HeaderLines {
    pub(crate) fn new(headers: &HeaderMap) -> Self {
        let mut out = Vec::with_capacity(256);
        for (name, value) in headers {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        Self(out.into_boxed_slice())
    }
}

impl std::fmt::Debug for HeaderLines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeaderLines({} bytes, not shown)", self.0.len())
    }
}

/// `METHOD path HTTP/1.1`, the prepared lines, the request's `traceparent` (its value) when it
/// is traced, `content-length` when there is a body.
///
/// The `traceparent` is a line of its own, not one of the extra headers of
/// [`request_head_with`]: the prepared lines never hold one (they are the credential's, the
/// host, the agent and the content types), so it replaces nothing, and passing it as a header
/// (a `HeaderValue` allocated, a list of headers built, filtered and searched for in the lines)
/// cost about 1,000 instructions per traced request.
pub(crate) fn request_head(
    method: &str,
    path_and_query: &str,
    lines: &HeaderLines,
    content_length: Option<usize>,
    traceparent: Option<&[u8]>,
) -> Vec<u8> {
    let mut head = Vec::with_capacity(method.len() + path_and_query.len() + lines.0.len() + 128);
    head.extend_from_slice(method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(path_and_query.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    head.extend_from_slice(&lines.0);
    push_traceparent(&mut head, traceparent);
    if let Some(length) = content_length {
        head.extend_from_slice(b"content-length: ");
        head.extend_from_slice(itoa::Buffer::new().format(length).as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// [`request_head`] with client headers forwarded after ours. A forwarded header replaces our
/// line of the same name (the client's `anthropic-version`, or a listed `user-agent`); one that
/// must never reach a vendor ([`llmux_config::refused_forward_header`]: credentials, cookies,
/// hop-by-hop, framing) is skipped, whatever the caller passed, and so is a client's
/// `traceparent` when the request has its own.
pub(crate) fn request_head_with(
    method: &str,
    path_and_query: &str,
    lines: &HeaderLines,
    content_length: Option<usize>,
    extra: &[(HeaderName, HeaderValue)],
    traceparent: Option<&[u8]>,
) -> Vec<u8> {
    let extra: Vec<&(HeaderName, HeaderValue)> = extra
        .iter()
        .filter(|(name, _)| llmux_config::refused_forward_header(name.as_str()).is_none())
        .filter(|(name, _)| traceparent.is_none() || name.as_str() != TRACEPARENT)
        .collect();
    let mut head = Vec::with_capacity(method.len() + path_and_query.len() + lines.0.len() + 256);
    head.extend_from_slice(method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(path_and_query.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    // Line by line only when an extra header replaces one of the prepared lines: a
    // `traceparent` on every traced request replaces none, and splitting the lines cost about
    // 1,500 instructions.
    if extra
        .iter()
        .any(|(name, _)| has_line(&lines.0, name.as_str()))
    {
        for line in lines.0.split_inclusive(|&b| b == b'\n') {
            let name = line.split(|&b| b == b':').next().unwrap_or_default();
            if !extra.iter().any(|(n, _)| n.as_str().as_bytes() == name) {
                head.extend_from_slice(line);
            }
        }
    } else {
        head.extend_from_slice(&lines.0);
    }
    push_traceparent(&mut head, traceparent);
    if let Some(length) = content_length {
        head.extend_from_slice(b"content-length: ");
        head.extend_from_slice(itoa::Buffer::new().format(length).as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    for (name, value) in extra {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    head
}

/// The W3C trace context header.
const TRACEPARENT: &str = "traceparent";

fn push_traceparent(head: &mut Vec<u8>, value: Option<&[u8]>) {
    if let Some(value) = value {
        head.extend_from_slice(TRACEPARENT.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
}

/// Whether `lines` (`name: value\r\n` each) holds a line named exactly `name`.
fn has_line(lines: &[u8], name: &str) -> bool {
    let name = name.as_bytes();
    let mut rest = lines;
    loop {
        if rest.len() > name.len() && rest.starts_with(name) && rest[name.len()] == b':' {
            return true;
        }
        match memchr::memchr(b'\n', rest) {
            Some(end) => rest = &rest[end + 1..],
            None => return false,
        }
    }
}

/// A parsed response head.
#[derive(Debug)]
pub(crate) struct Head {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub framing: Framing,
    /// The connection can carry another request once this body has been read.
    pub keep_alive: bool,
}

/// The response head is not valid HTTP/1.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeadError {
    /// The bytes do not parse as a status line and header lines.
    #[error("malformed response head")]
    Malformed,
    /// The head did not end within its byte cap, or has too many header lines.
    #[error("response head too large")]
    TooLarge,
    /// A `content-length` that is not a number, is too large, or disagrees with another one.
    #[error("conflicting content-length")]
    ContentLength,
    /// A status llmux cannot relay: `101 Switching Protocols` (other informational heads are
    /// skipped).
    #[error("unsupported response status")]
    Status,
}

/// Largest `Content-Length` believed (1 TiB): no vendor answer comes near it, and a larger one
/// is a broken or hostile head rather than a body to wait for.
pub(crate) const MAX_CONTENT_LENGTH: u64 = 1 << 40;

/// Finds complete response heads in a buffer that grows by reads, scanning each byte once: a
/// head arriving a byte at a time costs linear work, not a full re-parse per read.
#[derive(Debug, Default)]
pub(crate) struct HeadScan {
    /// Bytes of the buffer already searched for the end of the head.
    scanned: usize,
}

impl HeadScan {
    /// Parses the head at the start of `buf`, removing it: `None` while it is incomplete.
    /// Informational (1xx) heads are skipped.
    pub(crate) fn parse(&mut self, buf: &mut BytesMut) -> Result<Option<Head>, HeadError> {
        loop {
            if buf.is_empty() {
                self.scanned = 0;
                return Ok(None);
            }
            // A head never starts with an empty line; refusing one here also keeps a run of
            // newlines from looking like a stream of head ends.
            if matches!(buf[0], b'\r' | b'\n') {
                return Err(HeadError::Malformed);
            }
            let Some(end) = head_end(buf, self.scanned) else {
                if buf.len() > MAX_HEAD {
                    return Err(HeadError::TooLarge);
                }
                self.scanned = buf.len();
                return Ok(None);
            };
            if end > MAX_HEAD {
                return Err(HeadError::TooLarge);
            }
            self.scanned = 0;
            if let Some(head) = parse_one(buf)? {
                return Ok(Some(head));
            }
        }
    }
}

/// The offset just past the first empty line (`\n\n` or `\n\r\n`) ending at or after `from`.
pub(crate) fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    let from = from.min(buf.len());
    memchr::memchr_iter(b'\n', &buf[from..])
        .map(|i| from + i)
        .find(|&i| {
            (i >= 1 && buf[i - 1] == b'\n')
                || (i >= 2 && buf[i - 1] == b'\r' && buf[i - 2] == b'\n')
        })
        .map(|i| i + 1)
}

/// Parses the head at the start of `buf`, removing it: `None` while it is incomplete.
/// Informational (1xx) heads are skipped.
#[cfg(test)]
pub(crate) fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, HeadError> {
    HeadScan::default().parse(buf)
}

/// Parses one complete head at the start of `buf` and removes it: `None` for an informational
/// head (skipped).
fn parse_one(buf: &mut BytesMut) -> Result<Option<Head>, HeadError> {
    #[cfg(test)]
    tests::PARSES.with(|n| n.set(n.get() + 1));
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut slots);
    let length = match response.parse(buf) {
        Ok(httparse::Status::Complete(length)) => length,
        // The end of the head is in the buffer: a parser that still wants more disagrees
        // about where it ends, and waiting would only grow the buffer.
        Ok(httparse::Status::Partial) => return Err(HeadError::Malformed),
        Err(httparse::Error::TooManyHeaders) => return Err(HeadError::TooLarge),
        Err(_) => return Err(HeadError::Malformed),
    };
    let code = response.code.ok_or(HeadError::Malformed)?;
    let status = StatusCode::from_u16(code).map_err(|_| HeadError::Malformed)?;
    if status.is_informational() {
        if code == 101 {
            return Err(HeadError::Status);
        }
        let _ = buf.split_to(length);
        return Ok(None);
    }
    let http11 = response.version == Some(1);
    // Header values are slices of the head's bytes: offsets now, `Bytes` once it is split off.
    let base = buf.as_ptr() as usize;
    let mut spans = Vec::with_capacity(response.headers.len());
    for header in response.headers.iter() {
        let name =
            HeaderName::from_bytes(header.name.as_bytes()).map_err(|_| HeadError::Malformed)?;
        let start = (header.value.as_ptr() as usize).saturating_sub(base);
        spans.push((name, start, start.saturating_add(header.value.len())));
    }
    let head = buf.split_to(length).freeze();
    let mut headers = HeaderMap::with_capacity(spans.len());
    for (name, start, end) in spans {
        if start > end || end > head.len() {
            return Err(HeadError::Malformed);
        }
        let value = HeaderValue::from_maybe_shared(head.slice(start..end))
            .map_err(|_| HeadError::Malformed)?;
        headers.append(name, value);
    }
    head_of(status, headers, http11).map(Some)
}

/// Framing and reuse from the status and headers (RFC 9112 §6.3, §9.3).
fn head_of(status: StatusCode, headers: HeaderMap, http11: bool) -> Result<Head, HeadError> {
    let mut keep_alive = http11 && !has_token(&headers, &CONNECTION, "close");
    let framing = if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        Framing::Length(0)
    } else if headers.contains_key(TRANSFER_ENCODING) {
        if last_token_is(&headers, &TRANSFER_ENCODING, "chunked") {
            Framing::Chunked(Chunked::Size)
        } else {
            keep_alive = false;
            Framing::UntilClose
        }
    } else if let Some(length) = content_length(&headers)? {
        Framing::Length(length)
    } else {
        keep_alive = false;
        Framing::UntilClose
    };
    Ok(Head {
        status,
        headers,
        framing,
        keep_alive,
    })
}

/// Every `Content-Length` value must agree (a list like `5, 5` counts as one).
fn content_length(headers: &HeaderMap) -> Result<Option<u64>, HeadError> {
    let mut length = None;
    for value in headers.get_all(CONTENT_LENGTH) {
        let text = value.to_str().map_err(|_| HeadError::ContentLength)?;
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(HeadError::ContentLength);
            }
            let n: u64 = part.parse().map_err(|_| HeadError::ContentLength)?;
            if n > MAX_CONTENT_LENGTH {
                return Err(HeadError::ContentLength);
            }
            if length.is_some_and(|l| l != n) {
                return Err(HeadError::ContentLength);
            }
            length = Some(n);
        }
    }
    Ok(length)
}

fn tokens<'a>(headers: &'a HeaderMap, name: &HeaderName) -> impl Iterator<Item = &'a [u8]> {
    headers
        .get_all(name)
        .into_iter()
        .flat_map(|value| value.as_bytes().split(|&b| b == b','))
        .map(<[u8]>::trim_ascii)
}

fn has_token(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    tokens(headers, name).any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
}

fn last_token_is(headers: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    tokens(headers, name)
        .filter(|t| !t.is_empty())
        .last()
        .is_some_and(|t| t.eq_ignore_ascii_case(token.as_bytes()))
}

/// Bytes of a head, for tests.
#[cfg(test)]
pub(crate) fn head_bytes(head: &str) -> BytesMut {
    BytesMut::from(head.as_bytes())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

    use super::*;

    thread_local! {
        /// Full head parses on this thread.
        pub(super) static PARSES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    #[test]
    fn a_head_arriving_byte_by_byte_is_parsed_once() {
        let head = format!(
            "HTTP/1.1 200 OK\r\nx-big: {}\r\ncontent-length: 0\r\n\r\n",
            "v".repeat(60_000)
        );
        PARSES.with(|n| n.set(0));
        let mut scan = HeadScan::default();
        let mut buf = BytesMut::new();
        let mut parsed = None;
        for &byte in head.as_bytes() {
            buf.extend_from_slice(&[byte]);
            if let Some(head) = scan.parse(&mut buf).unwrap() {
                parsed = Some(head);
            }
        }
        assert_eq!(parsed.unwrap().status, 200);
        assert_eq!(
            PARSES.with(std::cell::Cell::get),
            1,
            "one parse, not one per byte"
        );
        // Bare newlines end a head too, and a run of empty lines is not a head.
        let mut buf = head_bytes("HTTP/1.1 204 No Content\n\n");
        assert_eq!(
            HeadScan::default().parse(&mut buf).unwrap().unwrap().status,
            204
        );
        let mut buf = head_bytes("\n\n\n\n");
        assert_eq!(
            HeadScan::default().parse(&mut buf).unwrap_err(),
            HeadError::Malformed
        );
    }

    fn parse(text: &str) -> Result<Option<Head>, HeadError> {
        parse_head(&mut head_bytes(text))
    }

    /// An extra header replaces the prepared line of that name, and only that one (not a line
    /// whose name merely starts with it); one that replaces nothing is added.
    #[test]
    fn extra_headers_replace_lines_of_their_name_only() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("api.example.com"));
        headers.insert("traceparent-x", HeaderValue::from_static("keep"));
        headers.insert("x-trace", HeaderValue::from_static("old"));
        let lines = HeaderLines::new(&headers);
        let traceparent = HeaderName::from_static("traceparent");
        let head = |extra: &[(HeaderName, HeaderValue)]| {
            String::from_utf8(request_head_with("POST", "/", &lines, Some(2), extra, None)).unwrap()
        };
        let added = head(&[(traceparent.clone(), HeaderValue::from_static("00-a"))]);
        assert_eq!(
            added,
            "POST / HTTP/1.1\r\nhost: api.example.com\r\ntraceparent-x: keep\r\nx-trace: old\r\ncontent-length: 2\r\ntraceparent: 00-a\r\n\r\n"
        );
        let replaced = head(&[(
            HeaderName::from_static("x-trace"),
            HeaderValue::from_static("new"),
        )]);
        assert_eq!(
            replaced,
            "POST / HTTP/1.1\r\nhost: api.example.com\r\ntraceparent-x: keep\r\ncontent-length: 2\r\nx-trace: new\r\n\r\n"
        );
        assert!(has_line(b"host: a\r\n", "host"));
        assert!(!has_line(b"hostx: a\r\n", "host"));
        assert!(!has_line(b"x: host:\r\n", "host"));
        assert!(!has_line(b"", "host"));
    }

    /// The request's own `traceparent` follows the prepared lines, and a client's one among the
    /// forwarded headers gives way to it.
    #[test]
    fn a_traced_request_carries_its_own_traceparent_once() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("api.example.com"));
        let lines = HeaderLines::new(&headers);
        let ours = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let head =
            String::from_utf8(request_head("POST", "/", &lines, Some(2), Some(ours))).unwrap();
        assert_eq!(
            head,
            "POST / HTTP/1.1\r\nhost: api.example.com\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\ncontent-length: 2\r\n\r\n"
        );
        let clients = [
            (
                HeaderName::from_static("traceparent"),
                HeaderValue::from_static("00-client"),
            ),
            (
                HeaderName::from_static("x-title"),
                HeaderValue::from_static("app"),
            ),
        ];
        let with = |traceparent| {
            String::from_utf8(request_head_with(
                "POST",
                "/",
                &lines,
                Some(2),
                &clients,
                traceparent,
            ))
            .unwrap()
        };
        let traced = with(Some(&ours[..]));
        assert_eq!(traced.matches("traceparent:").count(), 1, "{traced}");
        assert!(traced.contains("traceparent: 00-4bf92f"));
        assert!(traced.contains("x-title: app\r\n"));
        assert!(with(None).contains("traceparent: 00-client\r\n"));
    }

    #[test]
    fn writes_the_request_line_prepared_lines_and_length() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("api.example.com"));
        headers.insert("authorization", HeaderValue::from_static("Bearer sk-x"));
        let lines = HeaderLines::new(&headers);
        let head = request_head("POST", "/v1/chat/completions", &lines, Some(1234), None);
        assert_eq!(
            String::from_utf8(head).unwrap(),
            "POST /v1/chat/completions HTTP/1.1\r\nhost: api.example.com\r\nauthorization: Bearer sk-x\r\ncontent-length: 1234\r\n\r\n"
        );
        let get = request_head("GET", "/v1/models", &lines, None, None);
        assert!(String::from_utf8(get).unwrap().ends_with("sk-x\r\n\r\n"));
        assert!(!format!("{lines:?}").contains("sk-x"));
        for n in [0, 7, 10, 9_876_543_210, usize::MAX] {
            let head = String::from_utf8(request_head("POST", "/", &lines, Some(n), None)).unwrap();
            assert!(
                head.ends_with(&format!("content-length: {n}\r\n\r\n")),
                "{head}"
            );
        }
    }

    #[test]
    fn parses_status_headers_and_leaves_the_body_in_the_buffer() {
        let mut buf = head_bytes(
            "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 7\r\nx-custom: a\r\nx-custom: b\r\ncontent-length: 4\r\n\r\nbody",
        );
        let head = parse_head(&mut buf).unwrap().unwrap();
        assert_eq!(head.status, 429);
        assert_eq!(head.headers["retry-after"], "7");
        assert_eq!(head.headers.get_all("x-custom").iter().count(), 2);
        assert!(matches!(head.framing, Framing::Length(4)));
        assert!(head.keep_alive);
        assert_eq!(&buf[..], b"body");
    }

    #[test]
    fn an_incomplete_head_waits_and_an_endless_one_is_refused() {
        assert!(parse("HTTP/1.1 200 OK\r\ncontent-le").unwrap().is_none());
        let endless = format!("HTTP/1.1 200 OK\r\nx: {}", "a".repeat(MAX_HEAD + 1));
        assert_eq!(parse(&endless).unwrap_err(), HeadError::TooLarge);
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("x-{i}: 1\r\n"))
            .collect();
        assert_eq!(
            parse(&format!("HTTP/1.1 200 OK\r\n{many}\r\n")).unwrap_err(),
            HeadError::TooLarge
        );
        assert_eq!(
            parse("SMTP ready\r\n\r\n").unwrap_err(),
            HeadError::Malformed
        );
    }

    #[test]
    fn framing_follows_rfc_9112() {
        let framing = |text: &str| {
            let head = parse(text).unwrap().unwrap();
            (format!("{:?}", head.framing), head.keep_alive)
        };
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n"),
            ("Chunked(Size)".to_owned(), true)
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n"),
            ("UntilClose".to_owned(), false)
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 9\r\n\r\n"),
            ("Chunked(Size)".to_owned(), true)
        );
        assert_eq!(
            framing("HTTP/1.1 200 OK\r\n\r\n"),
            ("UntilClose".to_owned(), false)
        );
        assert_eq!(
            framing("HTTP/1.1 204 No Content\r\ncontent-length: 10\r\n\r\n"),
            ("Length(0)".to_owned(), true)
        );
        assert_eq!(
            framing(
                "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nConnection: keep-alive, Close\r\n\r\n"
            ),
            ("Length(5)".to_owned(), false)
        );
        assert_eq!(
            framing("HTTP/1.0 200 OK\r\ncontent-length: 2\r\n\r\n"),
            ("Length(2)".to_owned(), false)
        );
        for bad in [
            "5, 6",
            "-1",
            "",
            "0x10",
            "99999999999999999999999",
            "99999999999999999999",
            "18446744073709551615",
            "1099511627777",
        ] {
            assert_eq!(
                parse(&format!("HTTP/1.1 200 OK\r\ncontent-length: {bad}\r\n\r\n")).unwrap_err(),
                HeadError::ContentLength,
                "{bad}"
            );
        }
    }

    #[test]
    fn informational_heads_are_skipped() {
        let mut buf = head_bytes(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: x\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        );
        let head = parse_head(&mut buf).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert!(buf.is_empty());
        assert_eq!(
            parse("HTTP/1.1 101 Switching Protocols\r\n\r\n").unwrap_err(),
            HeadError::Status
        );
    }
}

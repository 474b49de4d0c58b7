//! The one log line per request (`"message":"request"`), written without tracing's formatter.
//!
//! Why hand-written: this line is on every request's path, and through `tracing-subscriber`'s
//! JSON formatter it cost about 20,000 instructions per request — a third of a whole proxied
//! request — mostly in `serde_json` string escaping and a UTF-8 re-check of every piece it
//! writes. Here the line is built into a thread-local buffer with integer formatting and one
//! escape pass, then written to stderr in one `write` (as the formatter did). Same keys, same
//! order, same timestamp format, so log readers see no difference.
//!
//! It follows the subscriber that [`crate::logging::init`] installed: JSON lines only when the
//! log format is JSON and `info` is enabled for this module; with the pretty format the line
//! goes through `tracing` as before.

use std::cell::RefCell;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Whether the installed subscriber writes JSON (set by [`crate::logging::init`]).
static JSON: AtomicBool = AtomicBool::new(false);

/// Writes the request line as JSON from now on (the subscriber's format is JSON).
pub(crate) fn use_json(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

/// What the line says about one request.
#[derive(Debug, Clone, Copy)]
pub struct RequestLine<'a> {
    /// The request id.
    pub request_id: &'a str,
    /// HTTP method.
    pub method: &'a str,
    /// Request path.
    pub path: &'a str,
    /// Response status.
    pub status: u16,
    /// Where it was routed, when it was: (vendor, model, upstream model, credential name).
    pub routed: Option<(&'a str, &'a str, &'a str, &'a str)>,
    /// Time from the request's head to the response's head.
    pub elapsed: Duration,
}

/// Logs one request at `info`.
pub fn request(line: &RequestLine<'_>) {
    if !tracing::enabled!(tracing::Level::INFO) {
        return;
    }
    if !JSON.load(Ordering::Relaxed) {
        let elapsed_ms = line.elapsed.as_secs_f64() * 1000.0;
        let RequestLine {
            request_id,
            method,
            path,
            status,
            ..
        } = *line;
        match line.routed {
            Some((vendor, model, upstream_model, credential)) => tracing::info!(
                request_id,
                method,
                path,
                status,
                vendor,
                model,
                upstream_model,
                credential,
                elapsed_ms,
                "request"
            ),
            None => tracing::info!(request_id, method, path, status, elapsed_ms, "request"),
        }
        return;
    }
    thread_local! {
        static BUFFER: RefCell<Vec<u8>> = RefCell::new(Vec::with_capacity(512));
    }
    BUFFER.with(|buffer| {
        let Ok(mut out) = buffer.try_borrow_mut() else {
            return;
        };
        out.clear();
        json_line(&mut out, line, SystemTime::now());
        // Like the formatter: one write of the whole line; a failed write is not retried.
        let _ = std::io::stderr().lock().write_all(&out);
    });
}

/// The JSON line for `line` at `now`, newline included.
fn json_line(out: &mut Vec<u8>, line: &RequestLine<'_>, now: SystemTime) {
    out.extend_from_slice(b"{\"timestamp\":\"");
    timestamp(out, now);
    out.extend_from_slice(b"\",\"level\":\"INFO\",\"message\":\"request\",\"request_id\":");
    string(out, line.request_id);
    out.extend_from_slice(b",\"method\":");
    string(out, line.method);
    out.extend_from_slice(b",\"path\":");
    string(out, line.path);
    out.extend_from_slice(b",\"status\":");
    integer(out, u64::from(line.status));
    if let Some((vendor, model, upstream_model, credential)) = line.routed {
        out.extend_from_slice(b",\"vendor\":");
        string(out, vendor);
        out.extend_from_slice(b",\"model\":");
        string(out, model);
        out.extend_from_slice(b",\"upstream_model\":");
        string(out, upstream_model);
        out.extend_from_slice(b",\"credential\":");
        string(out, credential);
    }
    // Milliseconds with microsecond precision, without float formatting.
    let micros = u64::try_from(line.elapsed.as_micros()).unwrap_or(u64::MAX);
    out.extend_from_slice(b",\"elapsed_ms\":");
    integer(out, micros / 1000);
    out.push(b'.');
    padded(out, micros % 1000, 3);
    out.extend_from_slice(b"}\n");
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` (UTC), as tracing-subscriber writes it.
fn timestamp(out: &mut Vec<u8>, now: SystemTime) {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    let (year, month, day) = crate::calendar::civil(secs);
    let of_day = secs.rem_euclid(86_400).unsigned_abs();
    padded(out, u64::try_from(year).unwrap_or(0), 4);
    out.push(b'-');
    padded(out, u64::from(month), 2);
    out.push(b'-');
    padded(out, u64::from(day), 2);
    out.push(b'T');
    padded(out, of_day / 3600, 2);
    out.push(b':');
    padded(out, of_day / 60 % 60, 2);
    out.push(b':');
    padded(out, of_day % 60, 2);
    out.push(b'.');
    padded(out, u64::from(since.subsec_micros()), 6);
    out.push(b'Z');
}

fn integer(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

/// `value` with leading zeros to `width` digits.
fn padded(out: &mut Vec<u8>, value: u64, width: usize) {
    let mut digits = itoa::Buffer::new();
    let digits = digits.format(value).as_bytes();
    out.extend(std::iter::repeat_n(
        b'0',
        width.saturating_sub(digits.len()),
    ));
    out.extend_from_slice(digits);
}

/// A JSON string: quotes, backslashes and control characters escaped; everything else (valid
/// UTF-8, since it is a `&str`) copied as is.
fn string(out: &mut Vec<u8>, value: &str) {
    out.push(b'"');
    let bytes = value.as_bytes();
    let mut start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let escape: &[u8] = match byte {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f | 0x7f => b"",
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        if escape.is_empty() {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(byte >> 4)]);
            out.push(HEX[usize::from(byte & 0xf)]);
        } else {
            out.extend_from_slice(escape);
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

    use super::*;

    fn line(routed: bool) -> RequestLine<'static> {
        RequestLine {
            request_id: "req_1",
            method: "POST",
            path: "/v1/chat/completions",
            status: 200,
            routed: routed.then_some(("openai", "fast \"q\"\n", "gpt-4o-mini", "key-1")),
            elapsed: Duration::from_micros(293_946),
        }
    }

    #[test]
    fn the_line_is_json_with_the_formatters_keys_in_order() {
        let mut out = Vec::new();
        let at = UNIX_EPOCH + Duration::from_micros(1_796_529_671_880_816);
        json_line(&mut out, &line(true), at);
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "{\"timestamp\":\"2026-12-06T04:01:11.880816Z\",\"level\":\"INFO\",\"message\":\"request\",\
             \"request_id\":\"req_1\",\"method\":\"POST\",\"path\":\"/v1/chat/completions\",\
             \"status\":200,\"vendor\":\"openai\",\"model\":\"fast \\\"q\\\"\\n\",\
             \"upstream_model\":\"gpt-4o-mini\",\"credential\":\"key-1\",\"elapsed_ms\":293.946}\n"
        );
    }

    #[test]
    fn every_string_survives_a_json_parser() {
        let nasty = "a\u{0}b\u{1f}c\u{7f}d\\e\"f\u{e9}\u{1F600}";
        let mut out = Vec::new();
        string(&mut out, nasty);
        let parsed: String = serde_json::from_slice(&out).unwrap();
        assert_eq!(parsed, nasty);
        let mut out = Vec::new();
        json_line(&mut out, &line(false), SystemTime::now());
        let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(value["status"], 200);
        assert!(value.get("vendor").is_none());
        assert!((value["elapsed_ms"].as_f64().unwrap() - 293.946).abs() < 1e-9);
    }
}

//! One upstream attempt: send, classify the status, and turn vendor errors into client errors
//! with every secret scrubbed.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use llmux_config::Api;
use llmux_protocol::error::{ErrorKind, GatewayError, VendorError, decode_upstream_error};
use llmux_protocol::{anthropic, gemini};
use llmux_router::Target;
use llmux_telemetry::mask::scrub;

use crate::api_error::ApiError;
use crate::state::Snapshot;

/// Upstream error bodies larger than this are cut: they are only read for their message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Reads a whole upstream body, at most `limit` bytes, waiting at most `idle` between chunks.
pub async fn read_body(
    response: &mut llmux_upstream::Response,
    limit: usize,
    idle: Duration,
) -> Result<Bytes, ApiError> {
    // A body that arrives as one chunk (the usual case) is returned as it is, without a copy.
    let mut first: Option<Bytes> = None;
    let mut out = BytesMut::new();
    loop {
        match tokio::time::timeout(idle, response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                let so_far = first.as_ref().map_or(0, Bytes::len) + out.len();
                if so_far + chunk.len() > limit {
                    return Err(ApiError::new(
                        ErrorKind::UpstreamProtocol,
                        format!("upstream response is larger than {limit} bytes"),
                    ));
                }
                if so_far == 0 {
                    first = Some(chunk);
                } else {
                    if let Some(first) = first.take() {
                        out.reserve(first.len() + chunk.len());
                        out.extend_from_slice(&first);
                    }
                    out.extend_from_slice(&chunk);
                }
            }
            Ok(Ok(None)) => return Ok(first.unwrap_or_else(|| out.freeze())),
            Ok(Err(_)) => {
                return Err(ApiError::new(
                    ErrorKind::UpstreamUnreachable,
                    "upstream connection failed while reading the response",
                ));
            }
            Err(_) => {
                return Err(ApiError::new(
                    ErrorKind::UpstreamTimeout,
                    format!("upstream sent nothing for {} ms", idle.as_millis()),
                ));
            }
        }
    }
}

/// Sends an encoded body to `url` on `target`'s credential and waits for the response head. A
/// non-2xx answer is decoded with that vendor's error codec into the client's error (credentials
/// scrubbed, with any Retry-After for cooldowns). The one place every attempt sends from.
pub async fn send(
    snapshot: &Snapshot,
    target: &Target<'_>,
    url: &http::Uri,
    body: &[u8],
    stream: bool,
    trace: Option<&crate::trace::Context>,
) -> Result<llmux_upstream::Response, ApiError> {
    send_with(snapshot, target, url, body, stream, &[], trace).await
}

/// Sends an OpenAI embeddings request to `target`'s `/embeddings`.
pub async fn embeddings(
    snapshot: &Snapshot,
    target: &Target<'_>,
    body: &[u8],
    trace: Option<&crate::trace::Context>,
) -> Result<llmux_upstream::Response, ApiError> {
    let url = &snapshot.endpoint(target)?.embeddings_url;
    send(snapshot, target, url, body, false, trace).await
}

/// The client headers a same-protocol path may pass on to a vendor of its own API, captured
/// when the request is decoded: the protocol's defaults (the beta switches without which the
/// vendor refuses or ignores the body's beta fields, and `anthropic-version`), and the names some
/// credential lists in `forward_headers`, of which the chosen credential's own list decides per
/// attempt. Nothing else of the client's is ever forwarded, and the upstream client drops auth,
/// cookie, hop-by-hop and framing headers whatever it is given.
#[derive(Debug, Default)]
pub struct ClientHeaders {
    defaults: Vec<(http::HeaderName, http::HeaderValue)>,
    listed: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl ClientHeaders {
    /// OpenAI's beta switch, forwarded on the byte paths to OpenAI's APIs.
    pub const OPENAI_BETA: http::HeaderName = http::HeaderName::from_static("openai-beta");
    /// Longer values are not forwarded: real beta lists are a few hundred bytes.
    const MAX_VALUE: usize = 2048;
    /// At most this many values of one name are forwarded.
    const MAX_VALUES: usize = 8;

    /// Captures the `defaults` and `listed` names from the client's `headers`. `listed` is
    /// every name any credential forwards ([`Snapshot::forward_headers`]); it is read from the
    /// current snapshot when the request is decoded, and a reload in between can only leave a
    /// newly listed header out of this one request: what is sent is decided by the attempt's
    /// credential.
    pub fn capture(
        headers: &http::HeaderMap,
        defaults: &[http::HeaderName],
        listed: &[http::HeaderName],
    ) -> Self {
        let take = |names: &[http::HeaderName], skip: &[http::HeaderName]| {
            names
                .iter()
                // A listed name that is also a default is captured once, as a default.
                .filter(|name| !skip.contains(name))
                .flat_map(|name| {
                    headers
                        .get_all(name)
                        .iter()
                        .filter(|v| v.len() <= Self::MAX_VALUE)
                        .take(Self::MAX_VALUES)
                        .map(move |v| (name.clone(), v.clone()))
                })
                .collect::<Vec<_>>()
        };
        Self {
            defaults: take(defaults, &[]),
            listed: take(listed, defaults),
        }
    }

    /// What goes to `credential`'s vendor: the defaults, plus the listed headers its
    /// `forward_headers` names.
    pub fn for_credential(
        &self,
        credential: &llmux_config::Credential,
    ) -> std::borrow::Cow<'_, [(http::HeaderName, http::HeaderValue)]> {
        if self.listed.is_empty() || credential.forward_headers.is_empty() {
            return std::borrow::Cow::Borrowed(&self.defaults);
        }
        let mut out = self.defaults.clone();
        out.extend(
            self.listed
                .iter()
                .filter(|(name, _)| {
                    credential
                        .forward_headers
                        .iter()
                        .any(|f| f == name.as_str())
                })
                .cloned(),
        );
        std::borrow::Cow::Owned(out)
    }
}

/// [`send`] with `extra` client header lines (see [`ClientHeaders`]).
pub async fn send_with(
    snapshot: &Snapshot,
    target: &Target<'_>,
    url: &http::Uri,
    body: &[u8],
    stream: bool,
    extra: &[(http::HeaderName, http::HeaderValue)],
    trace: Option<&crate::trace::Context>,
) -> Result<llmux_upstream::Response, ApiError> {
    // The request's `traceparent` (in place of any the client's headers carried).
    let traceparent = trace.map(|t| t.outgoing(url));
    let endpoint = snapshot.endpoint(target)?;
    let vendor = target.credential.vendor.as_str();
    let mut response = endpoint
        .post_json_with(
            url,
            body,
            stream,
            extra,
            traceparent
                .as_ref()
                .map(crate::trace::Traceparent::as_bytes),
        )
        .await
        .map_err(|e| send_failure(&e, vendor))?;
    if response.status().is_success() {
        return Ok(response);
    }
    let idle = Duration::from_millis(endpoint.timeouts.idle_ms);
    let status = response.status().as_u16();
    let mut error = match endpoint.api {
        Api::OpenAi => return Err(upstream_failure(response, snapshot, vendor, idle).await),
        Api::Anthropic | Api::Gemini => {
            let header_retry = retry_after(response.headers());
            let body = read_body(&mut response, ERROR_BODY_LIMIT, idle)
                .await
                .unwrap_or_default();
            let mut error = if endpoint.api == Api::Anthropic {
                anthropic::decode_error(status, &body)
            } else {
                gemini::decode_error(status, &body)
            };
            error.retry_after_secs = error.retry_after_secs.or(header_retry);
            error
        }
    };
    error.retry_after_secs = error.retry_after_secs.map(|s| s.min(MAX_RETRY_AFTER_SECS));
    Err(vendor_failure(error, snapshot, vendor))
}

fn vendor_failure(error: VendorError, snapshot: &Snapshot, vendor: &str) -> ApiError {
    let secrets = snapshot.secret_refs();
    let message = if error.message.is_empty() {
        format!("upstream {vendor} returned {}", error.status)
    } else {
        format!(
            "upstream {vendor} returned {}: {}",
            error.status,
            scrub(&error.message, &secrets)
        )
    };
    tracing::warn!(vendor, status = error.status, message = %message, "upstream error");
    let mut gateway_error = GatewayError::new(ErrorKind::UpstreamStatus(error.status), message);
    gateway_error.type_override = Some(error.error_type);
    gateway_error.retry_after_secs = error.retry_after_secs;
    ApiError(Box::new(gateway_error))
}

/// Turns a non-2xx upstream response into the error the client sees: the same status, the
/// vendor's message and code in the OpenAI envelope, with credentials scrubbed.
async fn upstream_failure(
    mut response: llmux_upstream::Response,
    snapshot: &Snapshot,
    vendor: &str,
    idle: Duration,
) -> ApiError {
    let status = response.status().as_u16();
    let body = read_body(&mut response, ERROR_BODY_LIMIT, idle)
        .await
        .unwrap_or_default();
    let parsed = decode_upstream_error(&body);
    let secrets = snapshot.secret_refs();
    let message = match parsed.message {
        Some(m) => format!(
            "upstream {vendor} returned {status}: {}",
            scrub(&m, &secrets)
        ),
        None => format!("upstream {vendor} returned {status}"),
    };
    tracing::warn!(vendor, status, message = %message, "upstream error");
    let mut error = GatewayError::new(ErrorKind::UpstreamStatus(status), message);
    error.code = parsed.code.map(|c| scrub(&c, &secrets));
    error.param = parsed.param.map(|p| scrub(&p, &secrets));
    if let Some(kind) = parsed
        .kind
        .filter(|k| k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        error.type_override = Some(kind.to_ascii_lowercase());
    }
    error.retry_after_secs = retry_after(response.headers());
    ApiError(Box::new(error))
}

/// The longest wait a vendor's header is read as (a day). The attempt loop cuts cooldowns
/// further, to `reliability.max_cooldown_ms`; this bound keeps the `Retry-After` a client sees
/// sane as well.
const MAX_RETRY_AFTER_SECS: u64 = 86_400;

/// How long a vendor asks us to wait: `Retry-After` (seconds or an HTTP date), `retry-after-ms`,
/// or OpenAI's `x-ratelimit-reset-*` durations (`1s`, `6m0s`, `20ms`), rounded up to seconds
/// and at most a day (the numbers are the vendor's: anything, `1e300` included).
pub fn retry_after(headers: &http::HeaderMap) -> Option<u64> {
    vendor_retry_after(headers).map(|secs| secs.min(MAX_RETRY_AFTER_SECS))
}

fn vendor_retry_after(headers: &http::HeaderMap) -> Option<u64> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(value) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return Some((value / 1000.0).ceil().max(0.0) as u64);
    }
    if let Some(value) = text("retry-after") {
        if let Ok(secs) = value.parse::<u64>() {
            return Some(secs);
        }
        if let Ok(when) = httpdate::parse_http_date(value) {
            return Some(
                when.duration_since(std::time::SystemTime::now())
                    .map_or(0, |d| d.as_secs().saturating_add(1)),
            );
        }
    }
    ["x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"]
        .iter()
        .filter_map(|name| text(name).and_then(parse_go_duration))
        .max()
}

/// `6m0s`, `1.5s`, `20ms` → whole seconds, rounded up.
fn parse_go_duration(text: &str) -> Option<u64> {
    let mut total_ms = 0.0;
    let mut number = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let value: f64 = number.parse().ok()?;
        number.clear();
        let unit_ms = match (c, chars.peek()) {
            ('m', Some('s')) => {
                chars.next();
                1.0
            }
            ('h', _) => 3_600_000.0,
            ('m', _) => 60_000.0,
            ('s', _) => 1_000.0,
            _ => return None,
        };
        total_ms += value * unit_ms;
    }
    if !number.is_empty() {
        return None;
    }
    Some((total_ms / 1000.0).ceil() as u64)
}

/// A failure before any response: unreachable or timed out.
pub fn send_failure(err: &llmux_upstream::Error, vendor: &str) -> ApiError {
    let kind = err.kind();
    tracing::warn!(vendor, error = %err, "upstream request failed");
    let message = match kind {
        ErrorKind::UpstreamTimeout => format!("upstream {vendor} timed out: {err}"),
        _ => format!("upstream {vendor} is unreachable: {err}"),
    };
    ApiError::new(kind, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_retry_after_form() {
        let mut headers = http::HeaderMap::new();
        headers.insert("retry-after", "2".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(2));
        headers.clear();
        headers.insert("retry-after-ms", "1500".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(2));
        headers.clear();
        let in_a_minute =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(60));
        headers.insert("retry-after", in_a_minute.parse().unwrap());
        assert!((59..=61).contains(&retry_after(&headers).unwrap()));
        headers.clear();
        headers.insert("x-ratelimit-reset-requests", "6m0s".parse().unwrap());
        headers.insert("x-ratelimit-reset-tokens", "20ms".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(360));
        headers.clear();
        assert_eq!(retry_after(&headers), None);
    }
}

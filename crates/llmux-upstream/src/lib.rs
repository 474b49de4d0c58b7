//! The only crate that speaks HTTP to vendors: request URIs, auth headers, connections.
//!
//! [`Endpoints`] holds, per credential, the request URIs, the request headers (auth included)
//! and the timeouts, computed once at config load so the hot path parses and formats nothing,
//! and the keep-alive pool of the credential's vendor host (`client`: our own HTTP/1.1 client
//! over TCP or rustls, `TCP_NODELAY`, no redirects). Credentials on the same host share one
//! pool, capped at `limits.upstream_connections_per_host` connections. [`UpstreamOptions`]
//! carries what applies to every vendor connection: trust roots (`tls:`), proxies from the
//! environment ([`ProxySettings`]) and that cap; [`Endpoints::prepare_with`] takes them.
//! Answers come back as [`Response`]. [`images`] downloads image URLs for vendors that need
//! inline data, refusing internal addresses. Each vendor's public API root is a fact of its
//! protocol module (`llmux_protocol::openai_chat::PUBLIC_BASE_URL` and its siblings), which the
//! config uses to fill a credential's `base_url`.
//!
//! Nothing a client or a vendor sends may crash llmux, misuse a credential or hold unbounded
//! memory: a client's model name is one path segment of a vendor URL or refused
//! ([`Endpoint::gemini_url`]); response heads, chunk-size lines and trailers are bounded and
//! scanned once; a request is written at most once per call (a pooled connection is checked
//! for a close before it is used, never re-sent after it was written to).

#![warn(missing_docs)]

mod client;
mod connection;
mod framing;
pub mod images;
mod proxy;
mod response;
mod wire;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderValue, Uri};
use llmux_config::{Api, Config, Credential, Timeouts, Tls};
use llmux_protocol::error::ErrorKind;

pub use client::SendError;
pub use proxy::ProxySettings;
pub use response::{Body, BodyError, Response};
pub use wire::HeadError;

use crate::wire::HeaderLines;

/// Failure to build a client or send a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An HTTP client could not be built (TLS setup: a CA file that cannot be read or parsed;
    /// a malformed proxy variable).
    #[error("cannot build the upstream HTTP client: {0}")]
    Build(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A credential's base URL or secret cannot form a request.
    #[error("credential '{0}' cannot form an upstream request: {1}")]
    Credential(String, &'static str),
    /// The request failed before a response arrived.
    #[error("upstream request failed: {0}")]
    Send(#[source] SendError),
    /// No response head arrived within the first-byte timeout.
    #[error("upstream did not answer within {0} ms")]
    FirstByteTimeout(u64),
    /// A model name from the client cannot be put in a vendor URL (it must be exactly one
    /// path segment). Holds the name (escaped, shortened) and why.
    #[error("model name '{0}' {1}")]
    InvalidModel(String, &'static str),
}

impl Error {
    /// What failed, for status and retry decisions.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Send(e) if e.is_timeout() => ErrorKind::UpstreamTimeout,
            Self::Send(SendError::Head(_)) => ErrorKind::UpstreamProtocol,
            Self::Send(_) => ErrorKind::UpstreamUnreachable,
            Self::FirstByteTimeout(_) => ErrorKind::UpstreamTimeout,
            Self::Build(_) | Self::Credential(..) => ErrorKind::Internal,
            Self::InvalidModel(..) => ErrorKind::InvalidRequest,
        }
    }
}

/// The Anthropic API version llmux speaks (the one the recorded fixtures use).
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// Sent on every vendor request.
const USER_AGENT: &str = concat!("llmux/", env!("CARGO_PKG_VERSION"));

/// URIs, headers, timeouts and the pooled client for one credential.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The wire protocol this credential speaks.
    pub api: Api,
    /// The API root without a trailing slash.
    pub base: String,
    /// `{base_url}/chat/completions`.
    pub chat_url: Uri,
    /// `{base_url}/embeddings`.
    pub embeddings_url: Uri,
    /// `{base_url}/responses` (OpenAI's Responses API, for `responses: native`).
    pub responses_url: Uri,
    /// `{base_url}/messages` (Anthropic).
    pub messages_url: Uri,
    /// `{base_url}/messages/count_tokens` (Anthropic).
    pub count_tokens_url: Uri,
    /// `{base_url}/models`, the probe.
    models_url: Uri,
    /// This credential's timeouts.
    pub timeouts: Timeouts,
    /// Header lines of a JSON POST (host, auth, user agent, content type, vendor extras),
    /// serialized once; they never print.
    json_headers: HeaderLines,
    /// The same with `accept: text/event-stream`.
    stream_headers: HeaderLines,
    /// Host, auth, user agent and vendor extras, for the probe's GET.
    probe_headers: HeaderLines,
    /// The keep-alive pool of this credential's vendor host.
    pool: Arc<client::Pool>,
}

impl Endpoint {
    /// Gemini's `models/{model}:generateContent`, or `:streamGenerateContent?alt=sse`.
    ///
    /// The model comes from the client, and the URL carries the credential's key, so the name
    /// must stay one path segment of this URL: an optional leading `models/` (Gemini's own
    /// spelling) is dropped, then any `/`, `\`, `%`, `?`, `#`, whitespace or control character,
    /// and a name that is empty, `.` or `..`, is refused ([`Error::InvalidModel`]).
    pub fn gemini_url(&self, model: &str, stream: bool) -> Result<Uri, Error> {
        let name = model.strip_prefix("models/").unwrap_or(model);
        check_path_segment(name).map_err(|why| Error::InvalidModel(shown_model(model), why))?;
        let operation = if stream {
            "streamGenerateContent?alt=sse"
        } else {
            "generateContent"
        };
        let mut url = String::with_capacity(self.base.len() + name.len() + 40);
        url.push_str(&self.base);
        url.push_str("/models/");
        push_path_escaped(&mut url, name);
        url.push(':');
        url.push_str(operation);
        Uri::try_from(url).map_err(|_| Error::InvalidModel(shown_model(model), "cannot form a URL"))
    }

    /// Sends a JSON POST with only our own headers (never the client's: no cookies, no
    /// forwarded-for, no client auth) and waits for the response head, bounded by the
    /// first-byte timeout.
    pub async fn post_json(&self, url: &Uri, body: &[u8], stream: bool) -> Result<Response, Error> {
        let headers = if stream {
            &self.stream_headers
        } else {
            &self.json_headers
        };
        let head = wire::request_head("POST", path_of(url), headers, Some(body.len()), None);
        self.send(&head, body, self.timeouts.first_byte_ms).await
    }

    /// [`Endpoint::post_json`] with client headers a same-protocol path forwards
    /// (`anthropic-beta`, `anthropic-version`, `openai-beta`, the credential's
    /// `forward_headers`): each replaces our header of the same name, and the names that must
    /// never reach a vendor (auth, cookies, hop-by-hop, framing) are dropped here whatever the
    /// caller passed. `traceparent` is the request's W3C trace context (its header value), in
    /// place of any a client header carried.
    pub async fn post_json_with(
        &self,
        url: &Uri,
        body: &[u8],
        stream: bool,
        extra: &[(http::HeaderName, HeaderValue)],
        traceparent: Option<&[u8]>,
    ) -> Result<Response, Error> {
        let headers = if stream {
            &self.stream_headers
        } else {
            &self.json_headers
        };
        let length = Some(body.len());
        let head = if extra.is_empty() {
            wire::request_head("POST", path_of(url), headers, length, traceparent)
        } else {
            wire::request_head_with("POST", path_of(url), headers, length, extra, traceparent)
        };
        self.send(&head, body, self.timeouts.first_byte_ms).await
    }

    /// The vendor's cheapest authenticated call (listing models): its status, or the failure.
    pub async fn probe(&self) -> Result<u16, Error> {
        let head = wire::request_head(
            "GET",
            path_of(&self.models_url),
            &self.probe_headers,
            None,
            None,
        );
        let response = self
            .send(&head, &[], self.timeouts.first_byte_ms.min(10_000))
            .await?;
        Ok(response.status().as_u16())
    }

    /// Sends on this credential's pool (every URL of an endpoint is on its base URL's host).
    async fn send(&self, head: &[u8], body: &[u8], first_byte_ms: u64) -> Result<Response, Error> {
        let first_byte = Duration::from_millis(first_byte_ms);
        let connect = Duration::from_millis(self.timeouts.connect_ms);
        match tokio::time::timeout(first_byte, self.pool.send(head, body, connect)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) => Err(Error::Send(err)),
            Err(_) => Err(Error::FirstByteTimeout(first_byte_ms)),
        }
    }
}

/// Why `name` cannot be one path segment of a vendor URL, if it cannot.
fn check_path_segment(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("is empty");
    }
    if name == "." || name == ".." {
        return Err("is not a single path segment");
    }
    for c in name.chars() {
        match c {
            '/' | '\\' => return Err("is not a single path segment"),
            // A real model id never has one, and a decoding proxy or vendor could turn
            // `%2e%2e%2f` back into `../`.
            '%' => return Err("contains '%' (percent-encodings are not accepted)"),
            '?' | '#' => return Err("contains '?' or '#'"),
            c if c.is_whitespace() || c.is_control() => {
                return Err("contains whitespace or a control character");
            }
            _ => {}
        }
    }
    Ok(())
}

/// A client's model name as an error shows it: escaped, and cut after 100 characters.
fn shown_model(model: &str) -> String {
    let mut shown: String = model
        .chars()
        .take(100)
        .flat_map(char::escape_debug)
        .collect();
    if model.chars().nth(100).is_some() {
        shown.push('…');
    }
    shown
}

/// Percent-encodes what cannot stand in a URI path segment (a model name checked by
/// [`check_path_segment`]; non-ASCII characters are encoded as UTF-8).
fn push_path_escaped(out: &mut String, segment: &str) {
    for byte in segment.bytes() {
        let keep = byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&byte);
        if keep {
            out.push(char::from(byte));
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(byte >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(byte & 15)]));
        }
    }
}

/// The request target of `url` (`/v1/chat/completions`, with any query).
fn path_of(url: &Uri) -> &str {
    url.path_and_query()
        .map_or("/", http::uri::PathAndQuery::as_str)
}

/// The `Host` header of every request to `uri`'s host, built once (the port only when it is
/// not the scheme's default).
fn host_header(uri: &Uri) -> Option<HeaderValue> {
    let host = uri.host()?;
    let default_port = if uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
        443
    } else {
        80
    };
    let value = match uri.port_u16() {
        Some(port) if port != default_port => format!("{host}:{port}"),
        _ => host.to_owned(),
    };
    HeaderValue::from_str(&value).ok()
}

/// How vendor connections are made, shared by every credential: trust roots, proxies and the
/// connection cap per vendor host.
#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    /// Trust roots (`tls:`).
    pub tls: Tls,
    /// Proxies from the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`).
    pub proxies: ProxySettings,
    /// Connections open at once to one vendor host (`limits.upstream_connections_per_host`).
    pub connections_per_host: usize,
}

impl Default for UpstreamOptions {
    /// Webpki roots, no proxy, 512 connections per host.
    fn default() -> Self {
        Self {
            tls: Tls::default(),
            proxies: ProxySettings::default(),
            connections_per_host: llmux_config::Limits::default().upstream_connections_per_host,
        }
    }
}

impl UpstreamOptions {
    /// The options of `config`, with proxies read through `env` (the process environment in
    /// production, a closure in tests). Fails on a malformed proxy variable.
    pub fn from_config(
        config: &Config,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, Error> {
        Ok(Self {
            tls: config.tls.clone(),
            proxies: ProxySettings::from_env(env)?,
            connections_per_host: config.limits.upstream_connections_per_host,
        })
    }
}

/// One [`Endpoint`] per credential, in the routing table's credential order.
#[derive(Debug, Clone, Default)]
pub struct Endpoints(Vec<Endpoint>);

impl Endpoints {
    /// Prepares every credential's URIs, headers and pool with the default options (webpki
    /// roots, no proxy, 512 connections per host): [`Self::prepare_with`].
    pub fn prepare(credentials: &[Credential]) -> Result<Self, Error> {
        Self::prepare_with(credentials, &UpstreamOptions::default())
    }

    /// Prepares every credential's URIs, headers and pool: one pool per scheme, host and port,
    /// shared by the credentials on it. Fails when the TLS roots cannot be loaded (an
    /// unreadable `tls.ca_file`) or a credential cannot form a request.
    pub fn prepare_with(
        credentials: &[Credential],
        options: &UpstreamOptions,
    ) -> Result<Self, Error> {
        let tls = connection::tls_config(&options.tls)?;
        let mut pools: HashMap<String, Arc<client::Pool>> = HashMap::new();
        let mut out = Vec::with_capacity(credentials.len());
        for credential in credentials {
            out.push(prepare(credential, &mut pools, &tls, options)?);
        }
        Ok(Self(out))
    }

    /// The endpoint of credential `index`.
    pub fn get(&self, index: usize) -> Option<&Endpoint> {
        self.0.get(index)
    }
}

fn prepare(
    credential: &Credential,
    pools: &mut HashMap<String, Arc<client::Pool>>,
    tls: &Arc<rustls::ClientConfig>,
    options: &UpstreamOptions,
) -> Result<Endpoint, Error> {
    let base = credential.base_url.as_str().trim_end_matches('/');
    let join = |op: &str| {
        Uri::try_from(format!("{base}/{op}"))
            .map_err(|_| Error::Credential(credential.name.clone(), "invalid base_url"))
    };
    let secret = credential.secret.expose();
    let (name, value) = match credential.api {
        Api::OpenAi => (http::header::AUTHORIZATION, format!("Bearer {secret}")),
        Api::Anthropic => (
            http::HeaderName::from_static("x-api-key"),
            secret.to_owned(),
        ),
        Api::Gemini => (
            http::HeaderName::from_static("x-goog-api-key"),
            secret.to_owned(),
        ),
    };
    let mut value = HeaderValue::from_str(&value).map_err(|_| {
        Error::Credential(
            credential.name.clone(),
            "secret is not a valid header value",
        )
    })?;
    value.set_sensitive(true);
    let mut probe_headers = HeaderMap::with_capacity(8);
    probe_headers.insert(name, value);
    probe_headers.insert(
        http::header::USER_AGENT,
        HeaderValue::from_static(USER_AGENT),
    );
    let chat_url = join("chat/completions")?;
    let invalid = |why| Error::Credential(credential.name.clone(), why);
    probe_headers.insert(
        http::header::HOST,
        host_header(&chat_url).ok_or_else(|| invalid("base_url has no valid host"))?,
    );
    // The connect timeout is the request's, so credentials with different timeouts on one
    // host still share its pool and its connection cap.
    let pool_key = format!(
        "{}://{}",
        chat_url.scheme_str().unwrap_or_default(),
        chat_url.authority().map_or("", |a| a.as_str())
    );
    let pool = match pools.get(&pool_key) {
        Some(pool) => Arc::clone(pool),
        None => {
            let (host, port, https) = connection::host_port(&chat_url).map_err(invalid)?;
            let proxy = options.proxies.for_target(https, &host, port);
            let target = connection::Target::new(&chat_url, tls, proxy).map_err(invalid)?;
            let pool = client::Pool::new(target, options.connections_per_host);
            pools.insert(pool_key, Arc::clone(&pool));
            pool
        }
    };
    if credential.api == Api::Anthropic {
        probe_headers.insert(
            http::HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
    }
    let mut json_headers = probe_headers.clone();
    json_headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let mut stream_headers = json_headers.clone();
    json_headers.insert(
        http::header::ACCEPT,
        HeaderValue::from_static("application/json"),
    );
    stream_headers.insert(
        http::header::ACCEPT,
        HeaderValue::from_static("text/event-stream"),
    );
    Ok(Endpoint {
        api: credential.api,
        base: base.to_owned(),
        chat_url,
        embeddings_url: join("embeddings")?,
        responses_url: join("responses")?,
        messages_url: join("messages")?,
        count_tokens_url: join("messages/count_tokens")?,
        models_url: join("models")?,
        timeouts: credential.timeouts,
        json_headers: HeaderLines::new(&json_headers),
        stream_headers: HeaderLines::new(&stream_headers),
        probe_headers: HeaderLines::new(&probe_headers),
        pool,
    })
}

#[cfg(test)]
mod tests;

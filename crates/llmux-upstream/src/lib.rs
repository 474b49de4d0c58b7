//! The only crate that knows vendor URLs and auth headers.
//!
//! [`UpstreamClient`] wraps one pooled `reqwest::Client` (HTTP/1.1 keep-alive pools per host,
//! `TCP_NODELAY`, no redirects, connect timeout) and [`Endpoints`] holds, per credential, the
//! request URLs and the auth header computed once at config load, so the hot path formats
//! nothing. [`images`] downloads image URLs for vendors that need inline data, refusing
//! internal addresses.

pub mod images;

use std::time::Duration;

use http::HeaderValue;
use llmux_config::{Api, Credential, Timeouts};
use llmux_protocol::error::ErrorKind;

/// Failure to build the client or send a request.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build the upstream HTTP client")]
    Build(#[source] reqwest::Error),
    /// A credential's base URL or secret cannot form a request.
    #[error("credential '{0}' cannot form an upstream request: {1}")]
    Credential(String, &'static str),
    /// The request failed before a response arrived.
    #[error("upstream request failed: {}", describe(.0))]
    Send(#[source] reqwest::Error),
    /// No response head arrived within the first-byte timeout.
    #[error("upstream did not answer within {0} ms")]
    FirstByteTimeout(u64),
}

impl Error {
    /// What failed, for status and retry decisions.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Send(e) if e.is_timeout() => ErrorKind::UpstreamTimeout,
            Self::Send(_) => ErrorKind::UpstreamUnreachable,
            Self::FirstByteTimeout(_) => ErrorKind::UpstreamTimeout,
            Self::Build(_) | Self::Credential(..) => ErrorKind::Internal,
        }
    }
}

/// A short, secret-free description: reqwest's own Display can include the URL, which is safe
/// (keys travel in headers), but not the headers.
fn describe(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "body error"
    } else {
        "connection error"
    }
}

/// URLs and auth for one credential.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The wire protocol this credential speaks.
    pub api: Api,
    /// The API root without a trailing slash.
    pub base: String,
    /// `{base_url}/messages` (Anthropic).
    pub messages_url: reqwest::Url,
    /// Headers every request to this vendor carries besides auth (`anthropic-version`).
    pub extra_headers: Vec<(http::HeaderName, HeaderValue)>,
    /// `{base_url}/chat/completions`.
    pub chat_url: reqwest::Url,
    /// `{base_url}/embeddings`.
    pub embeddings_url: reqwest::Url,
    /// The auth header (name, value), marked sensitive so it never prints.
    pub auth: (http::HeaderName, HeaderValue),
}

/// The Anthropic API version llmux speaks (the one the recorded fixtures use).
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

impl Endpoint {
    /// Gemini's `models/{model}:generateContent`, or `:streamGenerateContent?alt=sse`.
    pub fn gemini_url(&self, model: &str, stream: bool) -> Result<reqwest::Url, Error> {
        let model = model.strip_prefix("models/").unwrap_or(model);
        let operation = if stream { "streamGenerateContent?alt=sse" } else { "generateContent" };
        reqwest::Url::parse(&format!("{}/models/{model}:{operation}", self.base))
            .map_err(|_| Error::Credential(String::new(), "invalid Gemini model URL"))
    }
}

/// One [`Endpoint`] per credential, in the routing table's credential order.
#[derive(Debug, Clone, Default)]
pub struct Endpoints(Vec<Endpoint>);

impl Endpoints {
    /// Prepares every credential's URLs and auth header.
    pub fn prepare(credentials: &[Credential]) -> Result<Self, Error> {
        credentials
            .iter()
            .map(prepare)
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// The endpoint of credential `index`.
    pub fn get(&self, index: usize) -> Option<&Endpoint> {
        self.0.get(index)
    }
}

fn prepare(credential: &Credential) -> Result<Endpoint, Error> {
    let base = credential.base_url.as_str().trim_end_matches('/');
    let join = |op: &str| {
        reqwest::Url::parse(&format!("{base}/{op}"))
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
    let extra_headers = match credential.api {
        Api::Anthropic => vec![(
            http::HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(ANTHROPIC_VERSION),
        )],
        Api::OpenAi | Api::Gemini => Vec::new(),
    };
    Ok(Endpoint {
        api: credential.api,
        base: base.to_owned(),
        messages_url: join("messages")?,
        extra_headers,
        chat_url: join("chat/completions")?,
        embeddings_url: join("embeddings")?,
        auth: (name, value),
    })
}

/// The pooled client shared by every request.
#[derive(Debug, Clone)]
pub struct UpstreamClient {
    http: reqwest::Client,
    first_byte: Duration,
}

impl UpstreamClient {
    /// Builds the client: keep-alive pools, `TCP_NODELAY` (streams must not wait on Nagle),
    /// no redirects (a vendor redirect would carry our key elsewhere), connect timeout.
    pub fn new(timeouts: &Timeouts) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_millis(timeouts.connect_ms))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(1024)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("llmux/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::Build)?;
        Ok(Self {
            http,
            first_byte: Duration::from_millis(timeouts.first_byte_ms),
        })
    }

    /// Sends a JSON POST with only our own headers (never the client's: no cookies, no
    /// forwarded-for, no client auth) and waits for the response head, bounded by the
    /// first-byte timeout.
    pub async fn post_json(
        &self,
        url: &reqwest::Url,
        endpoint: &Endpoint,
        body: Vec<u8>,
        stream: bool,
    ) -> Result<reqwest::Response, Error> {
        let accept = if stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let request = self
            .http
            .post(url.clone())
            .header(endpoint.auth.0.clone(), endpoint.auth.1.clone())
            .headers(endpoint.extra_headers.iter().cloned().collect())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, accept)
            .body(body)
            .send();
        match tokio::time::timeout(self.first_byte, request).await {
            Ok(result) => result.map_err(Error::Send),
            Err(_) => Err(Error::FirstByteTimeout(
                u64::try_from(self.first_byte.as_millis()).unwrap_or(u64::MAX),
            )),
        }
    }
}

//! The only crate that knows vendor URLs and auth headers.
//!
//! [`Endpoints`] holds, per credential, the request URLs, the auth header and the timeouts,
//! computed once at config load so the hot path formats nothing, and a pooled `reqwest::Client`
//! (HTTP/1.1 keep-alive pools per host, `TCP_NODELAY`, no redirects). Credentials with the same
//! connect timeout share one client and therefore one pool. [`images`] downloads image URLs for
//! vendors that need inline data, refusing internal addresses.

pub mod images;

use std::collections::HashMap;
use std::time::Duration;

use http::HeaderValue;
use llmux_config::{Api, Credential, Timeouts};
use llmux_protocol::error::ErrorKind;

/// Failure to build a client or send a request.
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

/// A short, secret-free description: keys travel in headers, which reqwest never prints, but a
/// fixed phrase keeps log lines bounded.
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

/// The Anthropic API version llmux speaks (the one the recorded fixtures use).
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// URLs, auth, timeouts and the pooled client for one credential.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// The wire protocol this credential speaks.
    pub api: Api,
    /// The API root without a trailing slash.
    pub base: String,
    /// `{base_url}/chat/completions`.
    pub chat_url: reqwest::Url,
    /// `{base_url}/embeddings`.
    pub embeddings_url: reqwest::Url,
    /// `{base_url}/messages` (Anthropic).
    pub messages_url: reqwest::Url,
    /// The auth header (name, value), marked sensitive so it never prints.
    pub auth: (http::HeaderName, HeaderValue),
    /// Headers every request to this vendor carries besides auth (`anthropic-version`).
    pub extra_headers: Vec<(http::HeaderName, HeaderValue)>,
    /// This credential's timeouts.
    pub timeouts: Timeouts,
    client: reqwest::Client,
}

impl Endpoint {
    /// Gemini's `models/{model}:generateContent`, or `:streamGenerateContent?alt=sse`.
    pub fn gemini_url(&self, model: &str, stream: bool) -> Result<reqwest::Url, Error> {
        let model = model.strip_prefix("models/").unwrap_or(model);
        let operation = if stream {
            "streamGenerateContent?alt=sse"
        } else {
            "generateContent"
        };
        reqwest::Url::parse(&format!("{}/models/{model}:{operation}", self.base))
            .map_err(|_| Error::Credential(String::new(), "invalid Gemini model URL"))
    }

    /// Sends a JSON POST with only our own headers (never the client's: no cookies, no
    /// forwarded-for, no client auth) and waits for the response head, bounded by the
    /// first-byte timeout.
    pub async fn post_json(
        &self,
        url: &reqwest::Url,
        body: Vec<u8>,
        stream: bool,
    ) -> Result<reqwest::Response, Error> {
        let accept = if stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let mut request = self
            .client
            .post(url.clone())
            .header(self.auth.0.clone(), self.auth.1.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, accept);
        for (name, value) in &self.extra_headers {
            request = request.header(name.clone(), value.clone());
        }
        let first_byte = Duration::from_millis(self.timeouts.first_byte_ms);
        match tokio::time::timeout(first_byte, request.body(body).send()).await {
            Ok(result) => result.map_err(Error::Send),
            Err(_) => Err(Error::FirstByteTimeout(self.timeouts.first_byte_ms)),
        }
    }
}

impl Endpoint {
    /// The vendor's cheapest authenticated call (listing models): its status, or the failure.
    pub async fn probe(&self) -> Result<u16, Error> {
        let url = reqwest::Url::parse(&format!("{}/models", self.base))
            .map_err(|_| Error::Credential(String::new(), "invalid base_url"))?;
        let mut request = self
            .client
            .get(url)
            .header(self.auth.0.clone(), self.auth.1.clone());
        for (name, value) in &self.extra_headers {
            request = request.header(name.clone(), value.clone());
        }
        let first_byte = Duration::from_millis(self.timeouts.first_byte_ms.min(10_000));
        match tokio::time::timeout(first_byte, request.send()).await {
            Ok(Ok(response)) => Ok(response.status().as_u16()),
            Ok(Err(err)) => Err(Error::Send(err)),
            Err(_) => Err(Error::FirstByteTimeout(first_byte.as_millis() as u64)),
        }
    }
}

/// One [`Endpoint`] per credential, in the routing table's credential order.
#[derive(Debug, Clone, Default)]
pub struct Endpoints(Vec<Endpoint>);

impl Endpoints {
    /// Prepares every credential's URLs, auth header and client.
    pub fn prepare(credentials: &[Credential]) -> Result<Self, Error> {
        let mut clients: HashMap<u64, reqwest::Client> = HashMap::new();
        let mut out = Vec::with_capacity(credentials.len());
        for credential in credentials {
            let connect_ms = credential.timeouts.connect_ms;
            let client = match clients.get(&connect_ms) {
                Some(client) => client.clone(),
                None => {
                    let client = build_client(connect_ms)?;
                    clients.insert(connect_ms, client.clone());
                    client
                }
            };
            out.push(prepare(credential, client)?);
        }
        Ok(Self(out))
    }

    /// The endpoint of credential `index`.
    pub fn get(&self, index: usize) -> Option<&Endpoint> {
        self.0.get(index)
    }
}

/// Keep-alive pools, `TCP_NODELAY` (streams must not wait on Nagle), no redirects (a vendor
/// redirect would carry our key elsewhere), connect timeout.
fn build_client(connect_ms: u64) -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_millis(connect_ms))
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(1024)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("llmux/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(Error::Build)
}

fn prepare(credential: &Credential, client: reqwest::Client) -> Result<Endpoint, Error> {
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
        chat_url: join("chat/completions")?,
        embeddings_url: join("embeddings")?,
        messages_url: join("messages")?,
        auth: (name, value),
        extra_headers,
        timeouts: credential.timeouts,
        client,
    })
}

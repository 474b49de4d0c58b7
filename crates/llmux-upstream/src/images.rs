//! Downloading image URLs for vendors that need inline data, safely.
//!
//! A gateway that fetches URLs on a client's behalf is an SSRF vector (the original router
//! fetched `http://169.254.169.254/…` happily). Every guard here applies on every hop: the
//! resolver refuses names that resolve to an internal address (all addresses are checked, so a
//! name mixing public and private answers is refused too), the redirect policy refuses IP-literal
//! hops to internal addresses and caps the number of redirects, and the body is read with a hard
//! size limit inside one deadline. Only `image/*` content (or octet-stream with image magic bytes)
//! is accepted.
//!
//! Proxies from the environment (`HTTP(S)_PROXY`) are ignored: through a proxy the resolver
//! never sees the target, so the guard would not apply. Only `images.proxy` is used, and then
//! every hop's host is resolved and checked here before the request is sent (redirects are
//! followed by this module, not by reqwest, so each hop can be checked asynchronously). The
//! proxy resolves the name again, so a name whose answers change between the two lookups (DNS
//! rebinding) is the remaining gap; use `allow_addresses` with an IP-literal allow-list where
//! that matters.
//!
//! [`ImageBudget`] bounds what one request may download: how many URLs and how many bytes
//! together, counted while streaming.

use std::error::Error as StdError;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use llmux_config::Images;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an image could not be fetched; the message is safe to show to the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    /// Fetching is turned off in the config.
    #[error("media URLs cannot be fetched (images.fetch is off); send the content inline as data")]
    Disabled,
    /// The URL answered with content of a type the part may not hold.
    #[error("URL returned content of type '{found}', which is not {expected}")]
    Unsupported {
        /// What the part may hold (`an image`, `an image or a PDF`, `mp3 or wav audio`).
        expected: &'static str,
        /// The declared type, or `unknown` when it was missing and the bytes did not tell.
        found: String,
    },
    /// Not an http(s) URL.
    #[error("image URL must be http or https: {0}")]
    Scheme(String),
    /// The URL points at an internal address.
    #[error("image URL refused: {0}")]
    Refused(String),
    /// Too many redirects.
    #[error("image URL refused: more than {0} redirects")]
    Redirects(u32),
    /// Over the size limit.
    #[error("image is larger than the limit of {0} bytes")]
    TooLarge(usize),
    /// Not an image.
    #[error("image URL did not return an image (content-type '{0}')")]
    NotAnImage(String),
    /// The server answered with an error status.
    #[error("image URL answered with status {0}")]
    Status(u16),
    /// Out of time.
    #[error("image download took longer than {0} ms")]
    Timeout(u64),
    /// Network failure.
    #[error("image download failed: {0}")]
    Network(String),
    /// The request already fetched as many image URLs as one request may.
    #[error("a request may fetch at most {0} image URLs")]
    TooMany(usize),
    /// The request's images together are over the size limit.
    #[error("the images of one request are larger than the limit of {0} bytes together")]
    TotalTooLarge(usize),
}

/// What one client request may still download (`images.max_per_request` URLs and
/// `images.max_total_bytes` bytes together). The server creates one per request and passes it
/// to [`ImageFetcher::fetch_within`] for each URL.
#[derive(Debug, Clone)]
pub struct ImageBudget {
    max_urls: usize,
    max_bytes: usize,
    urls: usize,
    bytes: usize,
}

impl ImageBudget {
    /// A fresh budget under the `images:` settings.
    pub fn new(settings: &Images) -> Self {
        Self {
            max_urls: settings.max_per_request,
            max_bytes: settings.max_total_bytes,
            urls: 0,
            bytes: 0,
        }
    }

    /// Bytes downloaded so far under this budget.
    pub fn bytes_used(&self) -> usize {
        self.bytes
    }

    /// URLs fetched (or attempted) so far under this budget.
    pub fn urls_used(&self) -> usize {
        self.urls
    }
}

/// Byte limits of one download: the image's own and what is left of the request's budget.
struct Limits<'a> {
    per_image: usize,
    budget: Option<&'a mut ImageBudget>,
}

impl Limits<'_> {
    /// Counts `more` bytes on top of `have` already read for this image.
    fn take(&mut self, have: usize, more: usize) -> Result<(), ImageError> {
        if have.saturating_add(more) > self.per_image {
            return Err(ImageError::TooLarge(self.per_image));
        }
        if let Some(budget) = self.budget.as_deref_mut() {
            if budget.bytes.saturating_add(more) > budget.max_bytes {
                return Err(ImageError::TotalTooLarge(budget.max_bytes));
            }
            budget.bytes += more;
        }
        Ok(())
    }

    /// Refuses a declared length that cannot fit.
    fn check_declared(&self, length: u64) -> Result<(), ImageError> {
        if length > self.per_image as u64 {
            return Err(ImageError::TooLarge(self.per_image));
        }
        if let Some(budget) = self.budget.as_deref()
            && length > budget.max_bytes.saturating_sub(budget.bytes) as u64
        {
            return Err(ImageError::TotalTooLarge(budget.max_bytes));
        }
        Ok(())
    }
}

/// What a URL part may hold, which decides the content types a download may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// An image (`image_url`, `input_image`).
    Image,
    /// An image or a PDF, told apart by content (`file_url`, `input_file`).
    Document,
    /// mp3 or wav (`audio_url`).
    Audio,
}

impl Expect {
    fn describe(self) -> &'static str {
        match self {
            Self::Image => "an image",
            Self::Document => "an image or a PDF",
            Self::Audio => "mp3 or wav audio",
        }
    }
}

/// A downloaded image, document or sound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// MIME type without parameters, e.g. `image/png`.
    pub media_type: String,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// Which destination addresses may be contacted.
#[derive(Debug, Clone, Default)]
struct AddressPolicy {
    allow_private: bool,
    allow: Vec<IpAddr>,
}

impl AddressPolicy {
    fn check(&self, ip: IpAddr) -> Result<(), String> {
        if self.allow_private || self.allow.contains(&ip) || !is_internal(ip) {
            Ok(())
        } else {
            // The reason only: a resolved address is internal detail, never shown to a client.
            Err("a private address".to_owned())
        }
    }
}

/// Whether `ip` is loopback, private, link-local (cloud metadata), CGNAT, multicast, reserved or
/// otherwise not a public unicast address. IPv4-mapped and embedded IPv6 forms are unwrapped.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_v4(v4);
            }
            let s = v6.segments();
            // IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96) and 6to4 (2002::/16) embed IPv4.
            if s[..6] == [0, 0, 0, 0, 0, 0] && !v6.is_loopback() && !v6.is_unspecified() {
                return is_internal_v4(Ipv4Addr::from(((u32::from(s[6])) << 16) | u32::from(s[7])));
            }
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_internal_v4(Ipv4Addr::from(((u32::from(s[6])) << 16) | u32::from(s[7])));
            }
            if s[0] == 0x2002 {
                return is_internal_v4(Ipv4Addr::from(((u32::from(s[1])) << 16) | u32::from(s[2])));
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated) fec0::/10
                || s[0] == 0x2001 && s[1] == 0x0db8 // documentation
        }
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // CGNAT 100.64/10
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

/// Resolves names with the system resolver, then refuses internal answers (except for the
/// configured proxy's own name: an internal proxy is the usual case).
struct GuardedResolver {
    policy: AddressPolicy,
    proxy_host: Option<String>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = if self
            .proxy_host
            .as_deref()
            .is_some_and(|p| p.eq_ignore_ascii_case(name.as_str()))
        {
            AddressPolicy {
                allow_private: true,
                allow: Vec::new(),
            }
        } else {
            self.policy.clone()
        };
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = resolve_checked(&host, &policy).await.map_err(|e| match e {
                Resolved::Io(e) => Box::new(e) as Box<dyn StdError + Send + Sync>,
                Resolved::Refused(why) => Box::new(Refusal(why)),
            })?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

enum Resolved {
    Io(std::io::Error),
    Refused(String),
}

/// Every address of `host`, or the refusal of the first internal one.
async fn resolve_checked(host: &str, policy: &AddressPolicy) -> Result<Vec<SocketAddr>, Resolved> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(Resolved::Io)?
        .collect();
    for addr in &addrs {
        policy.check(addr.ip()).map_err(|why| {
            Resolved::Refused(format!("the URL's host '{host}' resolves to {why}"))
        })?;
    }
    Ok(addrs)
}

/// A policy refusal carried through reqwest's error chain.
#[derive(Debug)]
struct Refusal(String);

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl StdError for Refusal {}

/// Checks a URL's scheme and, for IP-literal hosts, its address (named hosts are checked by the
/// resolver at connect time).
fn check_url(url: &reqwest::Url, policy: &AddressPolicy) -> Result<(), ImageError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ImageError::Scheme(url.scheme().to_owned()));
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err(ImageError::Refused("URL has no host".into())),
    };
    policy.check(ip).map_err(|why| {
        let host = url.host_str().unwrap_or_default();
        ImageError::Refused(format!("the URL's host {host} is {why}"))
    })
}

/// Downloads images under the configured guards.
#[derive(Debug, Clone)]
pub struct ImageFetcher {
    client: reqwest::Client,
    settings: Images,
    policy: AddressPolicy,
    /// Whether `images.proxy` is set: every hop's host is then resolved and checked here.
    proxied: bool,
}

impl ImageFetcher {
    /// A fetcher for the `images:` settings. Environment proxies are ignored; `images.proxy`
    /// is used when set (a malformed one is an [`crate::Error::Build`]).
    pub fn new(settings: &Images) -> Result<Self, crate::Error> {
        let policy = AddressPolicy {
            allow_private: settings.allow_private_networks,
            allow: settings.allow_addresses.clone(),
        };
        let proxy = settings
            .proxy
            .as_deref()
            .map(|url| {
                let parsed = reqwest::Url::parse(url).map_err(|_| {
                    crate::Error::Build("images.proxy is not a valid proxy URL".into())
                })?;
                let host = parsed.host_str().map(str::to_owned);
                let proxy = reqwest::Proxy::all(parsed).map_err(|_| {
                    crate::Error::Build("images.proxy is not a valid proxy URL".into())
                })?;
                Ok::<_, crate::Error>((proxy, host))
            })
            .transpose()?;
        let proxy_host = proxy.as_ref().and_then(|(_, host)| host.clone());
        let mut builder = reqwest::Client::builder()
            // Never the environment's proxy: the guard must see the real target.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
                proxy_host,
            }))
            // Redirects are followed in `download`, each hop checked before it is requested.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_millis(settings.timeout_ms))
            .user_agent(concat!(
                "llmux/",
                env!("CARGO_PKG_VERSION"),
                " (image fetch)"
            ));
        let proxied = proxy.is_some();
        if let Some((proxy, _)) = proxy {
            builder = builder.proxy(proxy);
        }
        let client = builder
            .build()
            .map_err(|e| crate::Error::Build(Box::new(e)))?;
        Ok(Self {
            client,
            settings: settings.clone(),
            policy,
            proxied,
        })
    }

    /// Downloads `url` (http or https) as an image.
    pub async fn fetch(&self, url: &str) -> Result<Fetched, ImageError> {
        self.fetch_limited(url, Expect::Image, &[], None).await
    }

    /// Downloads `url` as `expect` under one request's `budget` (as [`Self::fetch_within`]),
    /// sending `headers` only to hops whose host is listed in `images.header_hosts`.
    pub async fn fetch_media(
        &self,
        url: &str,
        expect: Expect,
        headers: &[(String, String)],
        budget: &mut ImageBudget,
    ) -> Result<Fetched, ImageError> {
        if budget.urls >= budget.max_urls {
            return Err(ImageError::TooMany(budget.max_urls));
        }
        budget.urls += 1;
        self.fetch_limited(url, expect, headers, Some(budget)).await
    }

    /// Downloads `url` as an image under one request's `budget`: refused when the request has
    /// fetched `images.max_per_request` URLs already, stopped as soon as the request's bytes
    /// together would pass `images.max_total_bytes`.
    pub async fn fetch_within(
        &self,
        url: &str,
        budget: &mut ImageBudget,
    ) -> Result<Fetched, ImageError> {
        if budget.urls >= budget.max_urls {
            return Err(ImageError::TooMany(budget.max_urls));
        }
        budget.urls += 1;
        self.fetch_limited(url, Expect::Image, &[], Some(budget))
            .await
    }

    async fn fetch_limited(
        &self,
        url: &str,
        expect: Expect,
        headers: &[(String, String)],
        budget: Option<&mut ImageBudget>,
    ) -> Result<Fetched, ImageError> {
        if self.settings.fetch == llmux_config::FetchImages::Off {
            return Err(ImageError::Disabled);
        }
        let parsed =
            reqwest::Url::parse(url).map_err(|_| ImageError::Scheme("invalid URL".into()))?;
        check_url(&parsed, &self.policy)?;
        let limits = Limits {
            per_image: self.settings.max_bytes,
            budget,
        };
        let deadline = Duration::from_millis(self.settings.timeout_ms);
        let download = self.download(parsed, expect, headers, limits);
        match tokio::time::timeout(deadline, download).await {
            Ok(result) => result,
            Err(_) => Err(ImageError::Timeout(self.settings.timeout_ms)),
        }
    }

    /// Checks one hop: its scheme and address, and, through a proxy (which resolves the name
    /// itself), the addresses its name resolves to.
    async fn check_hop(&self, url: &reqwest::Url) -> Result<(), ImageError> {
        check_url(url, &self.policy)?;
        if self.proxied
            && let Some(url::Host::Domain(host)) = url.host()
        {
            resolve_checked(host, &self.policy)
                .await
                .map_err(|e| match e {
                    Resolved::Refused(why) => ImageError::Refused(why),
                    Resolved::Io(_) => ImageError::Network(format!("cannot resolve {host}")),
                })?;
        }
        Ok(())
    }

    /// Whether the client's download headers may go to `url`'s host.
    fn may_send_headers(&self, url: &reqwest::Url) -> bool {
        url.host_str().is_some_and(|host| {
            self.settings
                .header_hosts
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(host))
        })
    }

    async fn download(
        &self,
        mut url: reqwest::Url,
        expect: Expect,
        headers: &[(String, String)],
        mut limits: Limits<'_>,
    ) -> Result<Fetched, ImageError> {
        let mut redirects = 0u32;
        let mut response = loop {
            self.check_hop(&url).await?;
            let mut request = self.client.get(url.clone());
            if !headers.is_empty() && self.may_send_headers(&url) {
                for (name, value) in headers {
                    // Headers that would change how the download is routed or framed are
                    // never the client's to set.
                    let lower = name.to_ascii_lowercase();
                    if matches!(
                        lower.as_str(),
                        "host"
                            | "content-length"
                            | "transfer-encoding"
                            | "connection"
                            | "te"
                            | "upgrade"
                            | "proxy-authorization"
                    ) {
                        continue;
                    }
                    if let (Ok(name), Ok(value)) = (
                        http::HeaderName::from_bytes(name.as_bytes()),
                        http::HeaderValue::from_str(value),
                    ) {
                        request = request.header(name, value);
                    }
                }
            }
            let response = request.send().await.map_err(|e| classify(&e))?;
            if !response.status().is_redirection() {
                break response;
            }
            let Some(next) = response
                .headers()
                .get(http::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|location| url.join(location).ok())
            else {
                return Err(ImageError::Status(response.status().as_u16()));
            };
            redirects += 1;
            if redirects > self.settings.max_redirects {
                return Err(ImageError::Redirects(self.settings.max_redirects));
            }
            url = next;
        };
        if !response.status().is_success() {
            return Err(ImageError::Status(response.status().as_u16()));
        }
        let declared = response
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        if let Some(length) = response.content_length() {
            limits.check_declared(length)?;
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| classify(&e))? {
            limits.take(bytes.len(), chunk.len())?;
            bytes.extend_from_slice(&chunk);
        }
        let media_type = match expect {
            Expect::Image => image_type(declared, &bytes)?,
            Expect::Document | Expect::Audio => media_type(expect, declared, &bytes)?,
        };
        Ok(Fetched { media_type, bytes })
    }
}

/// An image's type: declared `image/*`, or generic and sniffed.
fn image_type(declared: String, bytes: &[u8]) -> Result<String, ImageError> {
    if declared.starts_with("image/") {
        Ok(declared)
    } else if is_generic(&declared) {
        Ok(sniff(bytes)
            .ok_or_else(|| ImageError::NotAnImage(declared.clone()))?
            .to_owned())
    } else {
        Err(ImageError::NotAnImage(declared))
    }
}

fn is_generic(declared: &str) -> bool {
    matches!(
        declared,
        "application/octet-stream" | "binary/octet-stream" | "application/binary" | ""
    )
}

/// A document's or a sound's type, from the bytes first (servers often mislabel files), then
/// from a specific declared type.
fn media_type(expect: Expect, declared: String, bytes: &[u8]) -> Result<String, ImageError> {
    let sniffed = match expect {
        Expect::Document => {
            sniff(bytes).or_else(|| bytes.starts_with(b"%PDF-").then_some("application/pdf"))
        }
        _ => sniff_audio(bytes),
    };
    if let Some(found) = sniffed {
        return Ok(found.to_owned());
    }
    let unsupported = |found: String| ImageError::Unsupported {
        expected: expect.describe(),
        found: if found.is_empty() {
            "unknown".to_owned()
        } else {
            found
        },
    };
    Err(unsupported(declared))
}

/// mp3 (an ID3 tag or an MPEG audio frame header) or wav (RIFF/WAVE).
fn sniff_audio(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"ID3")
        || (bytes.len() >= 2 && bytes[0] == 0xFF && bytes[1] & 0xE0 == 0xE0)
    {
        Some("audio/mpeg")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE" {
        Some("audio/wav")
    } else {
        None
    }
}

fn classify(err: &reqwest::Error) -> ImageError {
    let mut source: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(refusal) = e.downcast_ref::<Refusal>() {
            return ImageError::Refused(refusal.0.clone());
        }
        source = e.source();
    }
    if err.is_timeout() {
        ImageError::Timeout(0)
    } else if err.is_connect() {
        ImageError::Network("cannot connect".into())
    } else {
        ImageError::Network("connection error".into())
    }
}

/// The image type from its first bytes.
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(b"\xFF\xD8\xFF") {
        Some("image/jpeg")
    } else if bytes.starts_with(b"GIF8") {
        Some("image/gif")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses_are_recognized() {
        for ip in [
            "127.0.0.1",
            "127.9.9.9",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "::127.0.0.1",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip} must be internal");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip} is public");
        }
    }

    #[test]
    fn sniffs_documents_and_audio() {
        let ok = |expect, bytes: &[u8]| media_type(expect, String::new(), bytes).unwrap();
        assert_eq!(ok(Expect::Document, b"%PDF-1.7\n"), "application/pdf");
        assert_eq!(ok(Expect::Document, b"\x89PNG\r\n\x1a\nrest"), "image/png");
        assert_eq!(ok(Expect::Audio, b"ID3\x04\0\0"), "audio/mpeg");
        assert_eq!(ok(Expect::Audio, b"RIFF\0\0\0\0WAVEfmt "), "audio/wav");
        let err = media_type(Expect::Document, "text/html".into(), b"<html>").unwrap_err();
        assert_eq!(
            err.to_string(),
            "URL returned content of type 'text/html', which is not an image or a PDF"
        );
        assert!(media_type(Expect::Audio, String::new(), b"%PDF-").is_err());
    }

    #[test]
    fn sniffs_magic_bytes() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\nrest"), Some("image/png"));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8"), Some("image/webp"));
        assert_eq!(sniff(b"<html>"), None);
    }
}

//! HTTP proxies for vendor traffic, from `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` (and their
//! lowercase forms), read once when the pools are prepared.
//!
//! Both `https` and `http` vendors go through an HTTP `CONNECT` tunnel: one code path, the
//! request bytes are the same with or without a proxy, and the proxy never sees a plain
//! request's headers (the credential) as something to log or rewrite. TLS to the vendor runs
//! inside the tunnel. Proxy credentials in the URL become `Proxy-Authorization: Basic`.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::Error;
use crate::wire::head_end;

/// Largest answer head accepted from a proxy.
const MAX_PROXY_HEAD: usize = 16 * 1024;

/// Which proxy vendor connections use, per scheme, and which hosts bypass it.
#[derive(Debug, Clone, Default)]
pub struct ProxySettings {
    https: Option<Arc<Proxy>>,
    http: Option<Arc<Proxy>>,
    no_proxy: NoProxy,
}

impl ProxySettings {
    /// Reads `HTTPS_PROXY`/`https_proxy`, `HTTP_PROXY`/`http_proxy` and `NO_PROXY`/`no_proxy`
    /// (the uppercase name wins; empty values count as unset) through `env`. A proxy URL is
    /// `http://[user:password@]host[:port]` (the scheme may be left out); an `https://` proxy
    /// is refused. The error names the variable, never its value (it may hold a password).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let var = |upper: &'static str, lower: &'static str| {
            [upper, lower].into_iter().find_map(|name| {
                env(name)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (name, v))
            })
        };
        let proxy = |upper, lower| -> Result<Option<Arc<Proxy>>, Error> {
            var(upper, lower)
                .map(|(name, value)| Proxy::parse(name, &value).map(Arc::new))
                .transpose()
        };
        Ok(Self {
            https: proxy("HTTPS_PROXY", "https_proxy")?,
            http: proxy("HTTP_PROXY", "http_proxy")?,
            no_proxy: var("NO_PROXY", "no_proxy")
                .map(|(_, list)| NoProxy::parse(&list))
                .unwrap_or_default(),
        })
    }

    /// The proxy for a vendor at `host:port` (`host` lowercase, without IPv6 brackets).
    pub(crate) fn for_target(&self, https: bool, host: &str, port: u16) -> Option<Arc<Proxy>> {
        let proxy = if https { &self.https } else { &self.http };
        let proxy = proxy.as_ref()?;
        if self.no_proxy.matches(host, port) {
            return None;
        }
        Some(Arc::clone(proxy))
    }
}

/// One HTTP proxy. Its credentials never print.
#[derive(Clone)]
pub(crate) struct Proxy {
    host: String,
    port: u16,
    /// `Basic …`, when the URL carried credentials.
    authorization: Option<String>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Proxy {
    fn parse(var: &str, value: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::Build(format!("{var} {why}").into());
        let text = value.trim();
        let url = if text.contains("://") {
            url::Url::parse(text)
        } else {
            url::Url::parse(&format!("http://{text}"))
        }
        .map_err(|_| bad("is not a valid proxy URL"))?;
        match url.scheme() {
            "http" => {}
            "https" => {
                return Err(bad(
                    "names an https:// proxy; only http:// proxies are supported",
                ));
            }
            _ => return Err(bad("must be an http:// proxy URL")),
        }
        let host = url.host_str().ok_or_else(|| bad("has no host"))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_ascii_lowercase();
        let port = url.port_or_known_default().unwrap_or(80);
        let authorization = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let user = percent_decode(url.username());
            let password = percent_decode(url.password().unwrap_or_default());
            let mut pair = user;
            pair.push(b':');
            pair.extend_from_slice(&password);
            Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(pair)
            ))
        };
        Ok(Self {
            host,
            port,
            authorization,
        })
    }

    pub(crate) fn host(&self) -> &str {
        &self.host
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// Asks the proxy on `tcp` for a tunnel to `host:port` and waits for its 2xx answer.
    pub(crate) async fn tunnel(
        &self,
        tcp: &mut TcpStream,
        host: &str,
        port: u16,
    ) -> io::Result<()> {
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
        if let Some(authorization) = &self.authorization {
            request.push_str("Proxy-Authorization: ");
            request.push_str(authorization);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        tcp.write_all(request.as_bytes()).await?;
        let mut answer = Vec::with_capacity(512);
        let mut chunk = [0u8; 512];
        let end = loop {
            let n = tcp.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the proxy closed the connection before answering CONNECT",
                ));
            }
            let from = answer.len();
            answer.extend_from_slice(&chunk[..n]);
            if let Some(end) = head_end(&answer, from) {
                break end;
            }
            if answer.len() > MAX_PROXY_HEAD {
                return Err(io::Error::other(
                    "the proxy's answer to CONNECT is too large",
                ));
            }
        };
        let mut slots = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut slots);
        let code = match response.parse(&answer[..end]) {
            Ok(httparse::Status::Complete(_)) => response.code.unwrap_or(0),
            _ => {
                return Err(io::Error::other(
                    "the proxy's answer to CONNECT is malformed",
                ));
            }
        };
        if !(200..300).contains(&code) {
            return Err(io::Error::other(format!(
                "the proxy refused CONNECT to {authority} with status {code}"
            )));
        }
        // The vendor has not been spoken to yet, so nothing may follow the proxy's head.
        if end != answer.len() {
            return Err(io::Error::other(
                "the proxy sent data after its CONNECT answer",
            ));
        }
        Ok(())
    }
}

/// Decodes `%XX` escapes (URL user info); anything else is kept as it is.
fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(&h), Some(&l)) = (bytes.get(i + 1), bytes.get(i + 2))
            && let (Some(h), Some(l)) = (hex(h), hex(l))
        {
            out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// `NO_PROXY`: hosts that are contacted directly.
#[derive(Debug, Clone, Default)]
struct NoProxy {
    /// `*`: no host uses the proxy.
    all: bool,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Rule {
    /// `example.com` (itself and its subdomains) or `.example.com` / `*.example.com`
    /// (subdomains only).
    Domain {
        name: String,
        subdomains_only: bool,
        port: Option<u16>,
    },
    /// An address (`10.0.0.1`, `[::1]:8080`) or a network (`10.0.0.0/8`).
    Net {
        net: IpAddr,
        prefix: u8,
        port: Option<u16>,
    },
}

impl NoProxy {
    /// A comma-separated list; entries that parse as nothing are ignored.
    fn parse(list: &str) -> Self {
        let mut out = Self::default();
        for entry in list.split(',') {
            let entry = entry.trim().to_ascii_lowercase();
            if entry.is_empty() {
                continue;
            }
            if entry == "*" {
                out.all = true;
                continue;
            }
            if let Some(rule) = Rule::parse(&entry) {
                out.rules.push(rule);
            }
        }
        out
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        if self.all {
            return true;
        }
        let host = host.trim_end_matches('.');
        let ip = host.parse::<IpAddr>().ok();
        self.rules.iter().any(|rule| rule.matches(host, ip, port))
    }
}

impl Rule {
    fn parse(entry: &str) -> Option<Self> {
        let full = |ip: IpAddr| if ip.is_ipv4() { 32 } else { 128 };
        if let Some((addr, bits)) = entry.split_once('/') {
            let net: IpAddr = addr.parse().ok()?;
            let prefix: u8 = bits.parse().ok().filter(|&b| b <= full(net))?;
            return Some(Self::Net {
                net,
                prefix,
                port: None,
            });
        }
        let bare = entry
            .strip_prefix('[')
            .and_then(|e| e.strip_suffix(']'))
            .unwrap_or(entry);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Some(Self::Net {
                net: ip,
                prefix: full(ip),
                port: None,
            });
        }
        if let Ok(addr) = entry.parse::<SocketAddr>() {
            return Some(Self::Net {
                net: addr.ip(),
                prefix: full(addr.ip()),
                port: Some(addr.port()),
            });
        }
        let (name, port) = match entry.rsplit_once(':') {
            Some((name, port)) => (name, Some(port.parse::<u16>().ok()?)),
            None => (entry, None),
        };
        let (name, subdomains_only) =
            match name.strip_prefix("*.").or_else(|| name.strip_prefix('.')) {
                Some(rest) => (rest, true),
                None => (name, false),
            };
        let name = name.trim_end_matches('.');
        if name.is_empty() {
            return None;
        }
        Some(Self::Domain {
            name: name.to_owned(),
            subdomains_only,
            port,
        })
    }

    fn matches(&self, host: &str, ip: Option<IpAddr>, port: u16) -> bool {
        match self {
            Self::Domain {
                name,
                subdomains_only,
                port: want,
            } => {
                if want.is_some_and(|p| p != port) || ip.is_some() {
                    return false;
                }
                let subdomain = host
                    .strip_suffix(name.as_str())
                    .is_some_and(|rest| rest.ends_with('.'));
                subdomain || (!subdomains_only && host == name)
            }
            Self::Net {
                net,
                prefix,
                port: want,
            } => {
                if want.is_some_and(|p| p != port) {
                    return false;
                }
                ip.is_some_and(|ip| in_net(ip, *net, *prefix))
            }
        }
    }
}

fn in_net(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail by panicking")]

    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn no_proxy_matches_hosts_suffixes_addresses_and_ports() {
        let list = NoProxy::parse(
            "internal.example, .corp.example, *.svc, 10.0.0.0/8, 192.168.1.5, [::1]:8443, api.local:8080",
        );
        for (host, port) in [
            ("internal.example", 443),
            ("a.internal.example", 443),
            ("x.corp.example", 443),
            ("a.b.svc", 80),
            ("10.1.2.3", 443),
            ("192.168.1.5", 80),
            ("::1", 8443),
            ("api.local", 8080),
        ] {
            assert!(list.matches(host, port), "{host}:{port} bypasses the proxy");
        }
        for (host, port) in [
            ("notinternal.example", 443),
            ("corp.example", 443),
            ("svc", 80),
            ("11.0.0.1", 443),
            ("192.168.1.6", 80),
            ("::1", 443),
            ("api.local", 443),
            ("api.openai.com", 443),
        ] {
            assert!(!list.matches(host, port), "{host}:{port} uses the proxy");
        }
        assert!(NoProxy::parse(" * ").matches("anything", 1));
    }

    #[test]
    fn proxies_come_from_the_environment_once() {
        let settings = ProxySettings::from_env(&env(&[
            ("https_proxy", "http://user:p%40ss@proxy.corp:3128"),
            ("HTTP_PROXY", "plain.corp:8080"),
            ("no_proxy", "localhost"),
        ]))
        .unwrap();
        let https = settings.for_target(true, "api.openai.com", 443).unwrap();
        assert_eq!((https.host(), https.port()), ("proxy.corp", 3128));
        assert_eq!(
            https.authorization.as_deref(),
            Some("Basic dXNlcjpwQHNz"),
            "user:p@ss"
        );
        assert!(!format!("{settings:?}").contains("dXNlcjpwQHNz"));
        let http = settings.for_target(false, "vendor", 80).unwrap();
        assert_eq!(
            (http.host(), http.port(), http.authorization.is_none()),
            ("plain.corp", 8080, true)
        );
        assert!(settings.for_target(true, "localhost", 443).is_none());
        assert!(
            ProxySettings::from_env(&env(&[]))
                .unwrap()
                .for_target(true, "a", 1)
                .is_none()
        );
        let err = ProxySettings::from_env(&env(&[("HTTPS_PROXY", "https://u:secretpw@p:1")]))
            .unwrap_err();
        assert!(err.to_string().contains("HTTPS_PROXY"), "{err}");
        assert!(!err.to_string().contains("secretpw"));
    }
}

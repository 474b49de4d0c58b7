//! Which client headers a credential may pass on to its vendor (`credentials[].forward_headers`).
//!
//! The lists here are checked when the config loads, and again by the upstream client before it
//! writes a forwarded header, so a refused name can never reach a vendor.

/// Headers that carry a secret: llmux authenticates to the vendor with its own key, and the
/// client's key is for llmux.
const CREDENTIALS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "x-goog-api-key",
    "api-key",
];

/// Cookies belong to the client's session with llmux.
const COOKIES: &[&str] = &["cookie", "cookie2", "set-cookie"];

/// Hop-by-hop headers describe the client's connection, not the request (RFC 9110 §7.6.1).
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "http2-settings",
];

/// Headers llmux writes itself for the body it sends and the answer it can read (a forwarded
/// `accept-encoding` would get a compressed answer the relay cannot rewrite).
const FRAMING: &[&str] = &[
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "accept",
    "accept-encoding",
    "expect",
];

/// Why `name` (lowercase) must never be forwarded to a vendor, or `None` when it may be.
pub fn refused_forward_header(name: &str) -> Option<&'static str> {
    if CREDENTIALS.contains(&name) {
        Some("carries a credential: llmux sends the vendor its own key")
    } else if COOKIES.contains(&name) {
        Some("is a cookie header: cookies are never forwarded")
    } else if HOP_BY_HOP.contains(&name) {
        Some("is hop-by-hop: it describes the client's connection, not the request")
    } else if FRAMING.contains(&name) {
        Some("is set by llmux for the request it sends")
    } else {
        None
    }
}

/// Whether `name` is an HTTP field name (an RFC 9110 token) of at most 128 bytes.
pub(crate) fn is_header_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

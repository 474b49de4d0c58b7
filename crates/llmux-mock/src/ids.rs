//! Vendor-shaped identifiers: unique per server (a counter), random-looking (a bijective mix).

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;

const ALNUM: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const LOWER_ALNUM: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// 36^8: the number of distinct 8-character lowercase alphanumeric ids.
const SHORT_SPACE: u64 = 2_821_109_907_456;

/// The SplitMix64 finaliser: a bijection on `u64`, so distinct inputs give distinct outputs.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Appends `len` digits of `alphabet`: first `value` written in that base with a fixed number
/// of digits (enough for any `u64`, least significant first), then digits drawn from a SplitMix64
/// chain seeded by `value`, so long ids look random all the way. Distinct values give distinct
/// ids whenever `len` covers the fixed digits (or `value` is below `base^len`).
fn push_digits(out: &mut String, value: u64, len: usize, alphabet: &[u8]) {
    let base = alphabet.len() as u64;
    let mut exact = 0;
    let mut span: u128 = 1;
    while span <= u128::from(u64::MAX) {
        span *= u128::from(base);
        exact += 1;
    }
    let mut rest = value;
    let mut chain = value;
    for i in 0..len {
        let digit = if i < exact {
            let d = rest % base;
            rest /= base;
            d
        } else {
            chain = mix(chain);
            chain % base
        };
        out.push(char::from(
            alphabet.get(digit as usize).copied().unwrap_or(b'0'),
        ));
    }
}

/// Identifier source of one mock server.
pub(crate) struct Ids {
    counter: AtomicU64,
    seed: u64,
}

impl Default for Ids {
    fn default() -> Self {
        // Servers in one process get different seeds, so ids rarely collide across servers.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self {
            counter: AtomicU64::new(0),
            seed: mix(nanos ^ fastrand::u64(..)),
        }
    }
}

impl Ids {
    /// A fresh 64-bit value, distinct from every earlier one of this server.
    fn next(&self) -> u64 {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        mix(self.seed.wrapping_add(n))
    }

    fn alnum(&self, prefix: &str, len: usize) -> String {
        let mut out = String::with_capacity(prefix.len() + len);
        out.push_str(prefix);
        push_digits(&mut out, self.next(), len, ALNUM);
        out
    }

    /// `chatcmpl-` and 29 alphanumerics.
    pub fn chat_completion(&self) -> String {
        self.alnum("chatcmpl-", 29)
    }

    /// `call_` and 24 lowercase hex digits.
    pub fn openai_call(&self) -> String {
        let value = self.next();
        format!("call_{value:016x}{:08x}", mix(value) as u32)
    }

    /// `msg_` and 24 alphanumerics.
    pub fn anthropic_message(&self) -> String {
        self.alnum("msg_", 24)
    }

    /// `toolu_` and 24 alphanumerics.
    pub fn anthropic_tool_use(&self) -> String {
        self.alnum("toolu_", 24)
    }

    /// `req_` and 24 alphanumerics.
    pub fn request(&self) -> String {
        self.alnum("req_", 24)
    }

    /// A 23-character Gemini `responseId`.
    pub fn gemini_response(&self) -> String {
        self.alnum("", 23)
    }

    /// An 8-character lowercase alphanumeric Gemini function call id.
    pub fn gemini_call(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // Multiplying by a number coprime to 36^8 permutes the id space, so the first 36^8
        // calls of a server all get different ids.
        let space = u128::from(SHORT_SPACE);
        let value = (u128::from(self.seed) + u128::from(n) * 0x5DEE_CE6D) % space;
        let mut out = String::with_capacity(8);
        // value < 36^8, so all eight digits come from it and distinct values stay distinct.
        push_digits(&mut out, value as u64, 8, LOWER_ALNUM);
        out
    }

    /// An opaque base64 `thoughtSignature`.
    pub fn thought_signature(&self) -> String {
        let mut bytes = [0_u8; 48];
        let mut state = self.next();
        for chunk in bytes.chunks_mut(8) {
            state = mix(state);
            let word = state.to_le_bytes();
            chunk.copy_from_slice(word.get(..chunk.len()).unwrap_or(&word));
        }
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// A tag over `kind` and `payload` that only this server produces: a keyed SplitMix64 chain,
    /// not cryptography, but enough for the mock to tell a token it issued from a forged or
    /// foreign one, as the real APIs do with their signatures.
    pub fn tag(&self, kind: &str, payload: &str) -> String {
        let mut state = mix(self.seed ^ 0x5EA1_5EA1);
        for byte in kind.bytes().chain([0xff]).chain(payload.bytes()) {
            state = mix(state ^ u64::from(byte));
        }
        format!("{state:016x}")
    }

    /// A fresh opaque token of `kind`: `prefix`, a nonce and its [`Ids::tag`].
    pub fn token(&self, kind: &str, prefix: &str) -> String {
        let nonce = format!("{:016x}", self.next());
        let tag = self.tag(kind, &nonce);
        format!("{prefix}{nonce}{tag}")
    }

    /// Whether `token` is a [`Ids::token`] of `kind` this server issued.
    pub fn verify_token(&self, kind: &str, prefix: &str, token: &str) -> bool {
        token
            .strip_prefix(prefix)
            .filter(|rest| rest.len() == 32 && rest.is_char_boundary(16))
            .is_some_and(|rest| self.tag(kind, &rest[..16]) == rest[16..])
    }

    /// A signature over `payload`: a nonce and the [`Ids::tag`] of the nonce with the payload.
    pub fn sign(&self, kind: &str, payload: &str) -> String {
        let nonce = format!("{:016x}", self.next());
        let tag = self.tag(kind, &format!("{nonce}{payload}"));
        format!("{nonce}{tag}")
    }

    /// Whether `signature` is this server's [`Ids::sign`] of `payload`.
    pub fn verify_signature(&self, kind: &str, payload: &str, signature: &str) -> bool {
        signature.len() == 32
            && signature.is_char_boundary(16)
            && self.tag(kind, &format!("{}{payload}", &signature[..16])) == signature[16..]
    }

    /// A `system_fingerprint` that stays the same for the life of the server.
    pub fn fingerprint(&self) -> String {
        format!("fp_{:010x}", self.seed >> 24)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_have_vendor_shapes_and_are_unique() {
        let ids = Ids::default();
        let mut seen = HashSet::new();
        for _ in 0..1000 {
            let call = ids.openai_call();
            assert_eq!(call.len(), 5 + 24);
            assert!(
                call[5..]
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
            let tool = ids.anthropic_tool_use();
            assert_eq!(tool.len(), 6 + 24);
            assert!(tool[6..].chars().all(|c| c.is_ascii_alphanumeric()));
            let short = ids.gemini_call();
            assert_eq!(short.len(), 8);
            assert!(
                short
                    .chars()
                    .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
            );
            assert!(seen.insert(call));
            assert!(seen.insert(tool));
            assert!(seen.insert(short));
        }
        assert!(ids.fingerprint().starts_with("fp_"));
        assert!(!ids.thought_signature().is_empty());
    }
}

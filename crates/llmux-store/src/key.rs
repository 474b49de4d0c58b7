//! Virtual keys: the records a store keeps, the plaintext format and how secrets are hashed.
//!
//! A key's plaintext is `llmux-<public id>-<secret>`. The public id (12 lowercase
//! alphanumerics) finds the row; the secret (32 random bytes as 64 lowercase hex digits) is
//! shown once and only its SHA-256 is stored, compared in constant time.

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::StoreError;

const PREFIX: &str = "llmux-";
const ID_LEN: usize = 12;
const SECRET_BYTES: usize = 32;
const ID_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// What a caller supplies to create a virtual key.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NewKey {
    /// A label for people; not unique.
    pub name: Option<String>,
    /// Unix seconds after which the key no longer authenticates requests.
    pub expires_at: Option<i64>,
    /// Model names the key may use; empty means all.
    pub allowed_models: Vec<String>,
    /// Vendors the key may reach; empty means all.
    pub allowed_vendors: Vec<String>,
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Tokens per minute.
    pub tpm: Option<u32>,
    /// Requests in flight at once.
    pub max_parallel: Option<u32>,
    /// Spend limit per UTC day, in USD.
    pub budget_daily_usd: Option<f64>,
    /// Spend limit per UTC calendar month, in USD.
    pub budget_monthly_usd: Option<f64>,
    /// Spend limit over the key's lifetime, in USD.
    pub budget_total_usd: Option<f64>,
}

/// A stored virtual key. It holds neither the secret nor its hash, so `Debug` is safe to log.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    /// Public id: 12 lowercase alphanumerics, the middle part of the plaintext.
    pub id: String,
    /// A label for people.
    pub name: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which the key is unusable.
    pub expires_at: Option<i64>,
    /// Unix seconds at which the key was revoked.
    pub revoked_at: Option<i64>,
    /// Model names the key may use; empty means all.
    pub allowed_models: Vec<String>,
    /// Vendors the key may reach; empty means all.
    pub allowed_vendors: Vec<String>,
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Tokens per minute.
    pub tpm: Option<u32>,
    /// Requests in flight at once.
    pub max_parallel: Option<u32>,
    /// Spend limit per UTC day, in USD.
    pub budget_daily_usd: Option<f64>,
    /// Spend limit per UTC calendar month, in USD.
    pub budget_monthly_usd: Option<f64>,
    /// Spend limit over the key's lifetime, in USD.
    pub budget_total_usd: Option<f64>,
}

impl KeyRecord {
    /// Whether the key may authenticate a request at `now_unix`: not revoked and not expired.
    /// An expiry is exclusive: at `expires_at` itself the key is already unusable.
    pub fn is_usable(&self, now_unix: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|expires| now_unix < expires)
    }
}

/// Changes to a key. `None` leaves a field alone; `Some(None)` clears an optional field.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KeyUpdate {
    /// New label, or `Some(None)` to remove it.
    pub name: Option<Option<String>>,
    /// New expiry, or `Some(None)` for none.
    pub expires_at: Option<Option<i64>>,
    /// New model allow-list (empty means all).
    pub allowed_models: Option<Vec<String>>,
    /// New vendor allow-list (empty means all).
    pub allowed_vendors: Option<Vec<String>>,
    /// New requests-per-minute limit, or `Some(None)` for none.
    pub rpm: Option<Option<u32>>,
    /// New tokens-per-minute limit, or `Some(None)` for none.
    pub tpm: Option<Option<u32>>,
    /// New concurrency limit, or `Some(None)` for none.
    pub max_parallel: Option<Option<u32>>,
    /// New daily budget, or `Some(None)` for none.
    pub budget_daily_usd: Option<Option<f64>>,
    /// New monthly budget, or `Some(None)` for none.
    pub budget_monthly_usd: Option<Option<f64>>,
    /// New lifetime budget, or `Some(None)` for none.
    pub budget_total_usd: Option<Option<f64>>,
}

/// One key's usage on one UTC day.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRow {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    /// Requests recorded.
    pub requests: u64,
    /// Input (prompt) tokens.
    pub input_tokens: u64,
    /// Output (completion) tokens.
    pub output_tokens: u64,
    /// Cost in USD.
    pub cost_usd: f64,
}

/// A key's spend in USD for the current UTC day, the current UTC month and its lifetime.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spend {
    /// Spend on the UTC day containing `now`.
    pub day: f64,
    /// Spend in the UTC calendar month containing `now`.
    pub month: f64,
    /// Spend over the key's lifetime.
    pub total: f64,
}

/// Splits a presented key into its public id and secret, or `None` when it is not shaped like
/// an llmux key (wrong prefix, id or secret length, or characters).
pub fn parse_key(presented: &str) -> Option<(&str, &str)> {
    let rest = presented.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('-')?;
    let id_ok = id.len() == ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let secret_ok = secret.len() == SECRET_BYTES * 2
        && secret
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    (id_ok && secret_ok).then_some((id, secret))
}

/// A freshly generated key: the plaintext to show once, and what the store keeps.
pub(crate) struct GeneratedKey {
    pub(crate) id: String,
    pub(crate) plaintext: String,
    pub(crate) secret_hash: [u8; 32],
}

/// Generates a public id and a secret from the operating system's random source.
pub(crate) fn generate() -> Result<GeneratedKey, StoreError> {
    let mut id = String::with_capacity(ID_LEN);
    let mut pool = [0u8; 32];
    while id.len() < ID_LEN {
        getrandom::fill(&mut pool).map_err(StoreError::Random)?;
        // Rejection sampling: 252 is the largest multiple of 36 below 256, so every
        // character is equally likely.
        for byte in pool.iter().filter(|&&b| b < 252) {
            if id.len() == ID_LEN {
                break;
            }
            id.push(char::from(ID_ALPHABET[usize::from(byte % 36)]));
        }
    }
    let mut secret = [0u8; SECRET_BYTES];
    getrandom::fill(&mut secret).map_err(StoreError::Random)?;
    let secret = hex(&secret);
    let secret_hash = hash_secret(&secret);
    Ok(GeneratedKey {
        plaintext: format!("{PREFIX}{id}-{secret}"),
        id,
        secret_hash,
    })
}

/// SHA-256 of the secret's text. The secret is 256 random bits, so a plain hash (no salt, no
/// slow KDF) is enough: there is nothing to brute-force.
pub(crate) fn hash_secret(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Compares the hash of `secret` with a stored hash in constant time.
pub(crate) fn secret_matches(secret: &str, stored_hash: &[u8]) -> bool {
    bool::from(hash_secret(secret).as_slice().ct_eq(stored_hash))
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> KeyRecord {
        KeyRecord {
            id: "abcdefghij12".into(),
            name: None,
            created_at: 100,
            expires_at: None,
            revoked_at: None,
            allowed_models: vec![],
            allowed_vendors: vec![],
            rpm: None,
            tpm: None,
            max_parallel: None,
            budget_daily_usd: None,
            budget_monthly_usd: None,
            budget_total_usd: None,
        }
    }

    #[test]
    fn generated_key_parses_and_matches_its_hash() {
        let key = generate().unwrap();
        let (id, secret) = parse_key(&key.plaintext).unwrap();
        assert_eq!(id, key.id);
        assert!(secret_matches(secret, &key.secret_hash));
        assert!(!secret_matches(
            &secret.replace('a', "b").replace('0', "1"),
            &key.secret_hash
        ));
    }

    #[test]
    fn generated_keys_differ() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a.id, b.id);
        assert_ne!(a.plaintext, b.plaintext);
    }

    #[test]
    fn parse_key_rejects_malformed_input() {
        let secret = "0".repeat(64);
        assert!(parse_key(&format!("llmux-abcdefghij12-{secret}")).is_some());
        for bad in [
            String::new(),
            "llmux-".into(),
            format!("sk-abcdefghij12-{secret}"),
            format!("llmux-abcdefghij1-{secret}"),
            format!("llmux-ABCDEFGHIJ12-{secret}"),
            format!("llmux-abcdefghij12-{}", "0".repeat(63)),
            format!("llmux-abcdefghij12-{}", "G".repeat(64)),
            format!("llmux-abcdefghij12{secret}"),
            format!("llmux-abcdefghij12-{secret}-x"),
        ] {
            assert_eq!(parse_key(&bad), None, "{bad}");
        }
    }

    #[test]
    fn is_usable_checks_revocation_and_expiry() {
        let mut key = record();
        assert!(key.is_usable(1_000));
        key.expires_at = Some(1_000);
        assert!(key.is_usable(999));
        assert!(!key.is_usable(1_000));
        key.expires_at = None;
        key.revoked_at = Some(500);
        assert!(!key.is_usable(400));
    }
}

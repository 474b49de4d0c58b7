//! Sealed values: `llmux:v1:<key id>:<nonce>:<ciphertext‖tag>`, AES-256-GCM.
//!
//! - `<key id>` is the [`KeyId`] of the key that sealed the value (8 lowercase hex characters),
//!   so a [`Keyring`] holding several keys knows which one to use.
//! - `<nonce>` is 96 random bits from the operating system, new for every seal, and
//!   `<ciphertext‖tag>` the AES-256-GCM output; both in unpadded base64url, so the whole value is
//!   one token of `[A-Za-z0-9_:-]` that needs no quoting in YAML, JSON or TOML.
//! - The associated data is the header `llmux:v1:<key id>`: changing the version or the key id
//!   makes authentication fail rather than change how the value is read.

use std::fmt;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead as _, KeyInit as _, Nonce, Payload};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use zeroize::Zeroizing;

use crate::key::{KeyId, Keyring, SecretKey};

/// What every value sealed in the current format starts with.
pub const PREFIX: &str = "llmux:v1:";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// True when `value` is in the sealed format of any version (`llmux:v<digits>:…`), so it must be
/// opened rather than used as it is. Values of an unknown version then fail to open with a clear
/// error instead of being sent to a vendor as if they were keys.
pub fn looks_sealed(value: &str) -> bool {
    version(value).is_some()
}

/// The `v<digits>` of a sealed value, if it has the sealed shape.
fn version(value: &str) -> Option<&str> {
    let rest = value.strip_prefix("llmux:")?;
    let (version, _) = rest.split_once(':')?;
    let digits = version.strip_prefix('v')?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(version)
}

/// Seals `plaintext` under `key` with a fresh random nonce.
pub fn seal(key: &SecretKey, plaintext: &str) -> Result<String, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::fill(&mut nonce).map_err(|_| SealError::Random)?;
    let header = format!("{PREFIX}{}", key.id());
    let cipher = Aes256Gcm::new_from_slice(key.bytes()).map_err(|_| SealError::Cipher)?;
    let sealed = cipher
        .encrypt(
            &Nonce::<Aes256Gcm>::from(nonce),
            Payload {
                msg: plaintext.as_bytes(),
                aad: header.as_bytes(),
            },
        )
        .map_err(|_| SealError::Cipher)?;
    Ok(format!(
        "{header}:{}:{}",
        URL_SAFE_NO_PAD.encode(nonce),
        URL_SAFE_NO_PAD.encode(sealed)
    ))
}

/// A sealed value split into its parts, checked for shape but not yet authenticated.
struct Parts<'a> {
    /// `llmux:v1:<key id>`: the associated data.
    header: &'a str,
    key_id: KeyId,
    nonce: [u8; NONCE_LEN],
    sealed: Vec<u8>,
}

fn parts(value: &str) -> Result<Parts<'_>, OpenError> {
    match version(value) {
        None => return Err(OpenError::Malformed("it does not start with llmux:v1:")),
        Some("v1") => {}
        Some(other) => {
            return Err(OpenError::UnsupportedVersion {
                version: other.to_owned(),
            });
        }
    }
    let fields: Vec<&str> = value.split(':').collect();
    let [_, _, key_id, nonce, sealed] = fields.as_slice() else {
        return Err(OpenError::Malformed(
            "it does not have exactly five ':'-separated parts",
        ));
    };
    let key_id = KeyId::parse(key_id).ok_or(OpenError::Malformed(
        "the key id is not 8 lowercase hex characters",
    ))?;
    let header_len = PREFIX.len() + 8;
    let header = value
        .get(..header_len)
        .ok_or(OpenError::Malformed("the header is truncated"))?;
    let nonce: [u8; NONCE_LEN] = URL_SAFE_NO_PAD
        .decode(nonce)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(OpenError::Malformed(
            "the nonce is not 12 bytes of unpadded base64url",
        ))?;
    let sealed = URL_SAFE_NO_PAD
        .decode(sealed)
        .map_err(|_| OpenError::Malformed("the ciphertext is not unpadded base64url"))?;
    if sealed.len() < TAG_LEN {
        return Err(OpenError::Malformed(
            "the ciphertext is shorter than its authentication tag",
        ));
    }
    Ok(Parts {
        header,
        key_id,
        nonce,
        sealed,
    })
}

/// The id of the key that sealed `value`, from its header (not authenticated).
pub fn sealed_key_id(value: &str) -> Result<KeyId, OpenError> {
    parts(value).map(|parts| parts.key_id)
}

impl Keyring {
    /// Seals `plaintext` under the current key.
    pub fn seal(&self, plaintext: &str) -> Result<String, SealError> {
        seal(self.current(), plaintext)
    }

    /// Opens a sealed value with the key its header names.
    pub fn open(&self, value: &str) -> Result<Zeroizing<String>, OpenError> {
        let parts = parts(value)?;
        let key = self
            .find(parts.key_id)
            .ok_or_else(|| OpenError::UnknownKey {
                key_id: parts.key_id,
                configured: KeyIds(self.ids()),
            })?;
        let cipher = Aes256Gcm::new_from_slice(key.bytes()).map_err(|_| OpenError::Rejected {
            key_id: parts.key_id,
        })?;
        let plaintext = cipher
            .decrypt(
                &Nonce::<Aes256Gcm>::from(parts.nonce),
                Payload {
                    msg: &parts.sealed,
                    aad: parts.header.as_bytes(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| OpenError::Rejected {
                key_id: parts.key_id,
            })?;
        match String::from_utf8(plaintext.to_vec()) {
            Ok(text) => Ok(Zeroizing::new(text)),
            Err(error) => {
                // The bytes are authentic but not text; wipe the copy the error holds.
                drop(Zeroizing::new(error.into_bytes()));
                Err(OpenError::NotText)
            }
        }
    }

    /// Re-seals `value` under the current key; `None` when it is sealed under it already.
    pub fn reseal(&self, value: &str) -> Result<Option<String>, ResealError> {
        if sealed_key_id(value)? == self.current().id() {
            // Still open it, so a damaged value is reported rather than kept.
            self.open(value)?;
            return Ok(None);
        }
        let plaintext = self.open(value)?;
        Ok(Some(self.seal(&plaintext)?))
    }
}

/// Why a value cannot be sealed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The operating system gave no random bytes for the nonce.
    #[error("cannot get random bytes for the nonce from the operating system")]
    Random,
    /// The cipher refused the input (too long).
    #[error("the value cannot be encrypted (too long)")]
    Cipher,
}

/// Why a value cannot be opened. Messages are written to follow the value's position, as in
/// `credentials[2].value: cannot be decrypted …`, and never contain the value or a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not in the `llmux:v1:` shape.
    #[error(
        "is not a valid encrypted value: {0} (the format is llmux:v1:<key id>:<nonce>:<ciphertext>)"
    )]
    Malformed(&'static str),
    /// A format version this build does not know.
    #[error("is encrypted in format {version}, which this llmux cannot read (it reads v1)")]
    UnsupportedVersion {
        /// `v` and digits.
        version: String,
    },
    /// No configured key has the id in the header.
    #[error(
        "cannot be decrypted with the configured LLMUX_SECRET_KEY (key id {key_id} sealed it, but the configured keys are {configured}; put the key it was sealed with in LLMUX_SECRET_KEY or LLMUX_SECRET_KEY_PREVIOUS)"
    )]
    UnknownKey {
        /// The id in the value's header.
        key_id: KeyId,
        /// The ids of the keys that were tried.
        configured: KeyIds,
    },
    /// The key with the right id did not authenticate the value.
    #[error(
        "cannot be decrypted with the configured LLMUX_SECRET_KEY (key id {key_id}: authentication failed, so the value was altered or truncated)"
    )]
    Rejected {
        /// The id in the value's header.
        key_id: KeyId,
    },
    /// Authentic, but not UTF-8 text.
    #[error("decrypts to bytes that are not UTF-8 text")]
    NotText,
}

/// Why a value cannot be re-sealed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResealError {
    /// The old value does not open.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The new value cannot be sealed.
    #[error(transparent)]
    Seal(#[from] SealError),
}

/// A list of key ids, shown comma-separated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIds(pub Vec<KeyId>);

impl fmt::Display for KeyIds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, id) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{id}")?;
        }
        Ok(())
    }
}

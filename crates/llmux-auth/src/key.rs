//! [`SecretKey`] (32 bytes, zeroized on drop, never printed), its public [`KeyId`], and the
//! [`Keyring`] built from `LLMUX_SECRET_KEY` and `LLMUX_SECRET_KEY_PREVIOUS`.

use std::fmt;

use base64::Engine as _;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

/// The variable holding the current key.
pub const SECRET_KEY_VAR: &str = "LLMUX_SECRET_KEY";
/// The variable holding older keys, comma-separated, still accepted for decryption.
pub const PREVIOUS_KEYS_VAR: &str = "LLMUX_SECRET_KEY_PREVIOUS";

/// Length of a key in bytes (AES-256).
pub const KEY_LEN: usize = 32;

/// A 256-bit key for sealing credential values.
///
/// The bytes live on the heap in zeroize-on-drop storage (so moving the key moves a pointer, not
/// copies of the bytes); `Debug` shows only the [`KeyId`], and there is no `Display`, `Clone` or
/// accessor outside this crate.
pub struct SecretKey {
    bytes: Box<Zeroizing<[u8; KEY_LEN]>>,
    id: KeyId,
}

impl SecretKey {
    /// Wraps 32 raw key bytes. The caller's copy is its own to wipe.
    pub fn from_bytes(bytes: &[u8; KEY_LEN]) -> Self {
        let mut key = Box::new(Zeroizing::new([0u8; KEY_LEN]));
        key.copy_from_slice(bytes);
        Self::new(key)
    }

    fn new(bytes: Box<Zeroizing<[u8; KEY_LEN]>>) -> Self {
        let id = KeyId::of(bytes.as_slice());
        Self { bytes, id }
    }

    /// Parses a key written as 64 hex characters, or as base64 (standard or URL-safe alphabet,
    /// padding optional) of exactly 32 bytes. Surrounding whitespace is ignored.
    ///
    /// The error describes the shape of the input (its length, what it decoded to), never the
    /// input itself.
    pub fn parse(text: &str) -> Result<Self, KeyFormatError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(KeyFormatError::Empty);
        }
        let shape = || KeyFormatError::Shape {
            chars: text.chars().count(),
        };
        let mut key = Box::new(Zeroizing::new([0u8; KEY_LEN]));
        if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            for (i, out) in key.iter_mut().enumerate() {
                let pair = text.get(2 * i..2 * i + 2).ok_or_else(shape)?;
                *out = u8::from_str_radix(pair, 16).map_err(|_| shape())?;
            }
            return Ok(Self::new(key));
        }
        let decoded = decode_base64_any(text).ok_or_else(shape)?;
        if decoded.len() != KEY_LEN {
            return Err(KeyFormatError::Length {
                bytes: decoded.len(),
            });
        }
        key.copy_from_slice(&decoded);
        Ok(Self::new(key))
    }

    /// The key's public identifier.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The raw bytes, for the cipher only.
    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretKey")
            .field("id", &self.id)
            .field("bytes", &"***")
            .finish()
    }
}

/// Decodes base64 in the standard or URL-safe alphabet, with or without padding.
fn decode_base64_any(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    const INDIFFERENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    const STANDARD: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, INDIFFERENT);
    const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, INDIFFERENT);
    // Standard and URL-safe differ only in `+/` versus `-_`; a key holding neither decodes the
    // same with both, so trying them in turn is unambiguous.
    STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE.decode(text))
        .ok()
        .map(Zeroizing::new)
}

/// Why a key's text is not a key. Never contains the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    /// Empty or whitespace only.
    #[error("must be 32 bytes written as 64 hex characters or as base64, but it is empty")]
    Empty,
    /// Neither 64 hex characters nor base64.
    #[error(
        "must be 32 bytes written as 64 hex characters or as base64, but it is {chars} characters long and neither (generate a key with `openssl rand -hex 32`)"
    )]
    Shape {
        /// Length of the trimmed text, in characters.
        chars: usize,
    },
    /// Base64 of the wrong number of bytes.
    #[error(
        "must be 32 bytes written as 64 hex characters or as base64, but it is base64 of {bytes} bytes (generate a key with `openssl rand -hex 32`)"
    )]
    Length {
        /// How many bytes the base64 decoded to.
        bytes: usize,
    },
}

/// The public identifier of a key: the first 4 bytes of SHA-256 of the key, shown as 8 lowercase
/// hex characters. It tells which key sealed a value without revealing anything usable about it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 4]);

impl KeyId {
    fn of(key: &[u8]) -> Self {
        let digest = Sha256::digest(key);
        let mut id = [0u8; 4];
        id.copy_from_slice(&digest[..4]);
        Self(id)
    }

    /// Parses the 8 lowercase hex characters of a sealed value's header.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        if text.len() != 8
            || !text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return None;
        }
        let mut id = [0u8; 4];
        for (i, out) in id.iter_mut().enumerate() {
            *out = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Self(id))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The keys in use: the current one (seals, and opens) and older ones (open only), so values
/// sealed before a rotation keep loading until they are re-sealed.
#[derive(Debug)]
pub struct Keyring {
    current: SecretKey,
    previous: Vec<SecretKey>,
}

impl Keyring {
    /// A keyring with `current` and the older keys `previous`.
    pub fn new(current: SecretKey, previous: Vec<SecretKey>) -> Self {
        Self { current, previous }
    }

    /// Reads `LLMUX_SECRET_KEY` and `LLMUX_SECRET_KEY_PREVIOUS` (comma-separated; empty entries
    /// are ignored) through `env`. An empty `LLMUX_SECRET_KEY` counts as unset.
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self, KeyError> {
        let current = env(SECRET_KEY_VAR).map(Zeroizing::new);
        let current = match current.as_deref().map(String::as_str).map(str::trim) {
            None | Some("") => return Err(KeyError::Missing),
            Some(text) => SecretKey::parse(text).map_err(|reason| KeyError::Invalid {
                var: SECRET_KEY_VAR.to_owned(),
                reason,
            })?,
        };
        let mut previous = Vec::new();
        if let Some(list) = env(PREVIOUS_KEYS_VAR).map(Zeroizing::new) {
            for (index, entry) in list.split(',').enumerate() {
                if entry.trim().is_empty() {
                    continue;
                }
                let key = SecretKey::parse(entry).map_err(|reason| KeyError::Invalid {
                    var: format!("{PREVIOUS_KEYS_VAR} (entry {})", index + 1),
                    reason,
                })?;
                previous.push(key);
            }
        }
        Ok(Self { current, previous })
    }

    /// The key new values are sealed with.
    pub fn current(&self) -> &SecretKey {
        &self.current
    }

    /// The ids of every key, current first.
    pub fn ids(&self) -> Vec<KeyId> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .map(SecretKey::id)
            .collect()
    }

    /// The key with `id`, current first.
    pub(crate) fn find(&self, id: KeyId) -> Option<&SecretKey> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|key| key.id == id)
    }
}

/// Why the keys cannot be read from the environment. Never contains a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// `LLMUX_SECRET_KEY` is unset or empty.
    #[error("LLMUX_SECRET_KEY is not set")]
    Missing,
    /// A key is not 32 bytes in hex or base64.
    #[error("{var} {reason}")]
    Invalid {
        /// The variable (and entry) at fault.
        var: String,
        /// What is wrong with its shape.
        reason: KeyFormatError,
    },
}

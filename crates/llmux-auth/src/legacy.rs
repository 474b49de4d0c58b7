//! The original router's encrypted `credentials.json` (REFERENCE §A1): the whole file is
//! `base64(nonce(12) ‖ AES-256-GCM ciphertext ‖ tag(16))` in the standard alphabet with padding,
//! no associated data, the plaintext is the JSON credentials list, and the key is the raw bytes
//! of `CONFIG_ENCRYPTION_KEY`, exactly 32 of them.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead as _, KeyInit as _, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::key::KEY_LEN;

/// The variable holding the original router's key.
pub const LEGACY_KEY_VAR: &str = "CONFIG_ENCRYPTION_KEY";

const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

/// True when `text`, trimmed, is non-empty standard base64 whose length is a multiple of 4: the
/// original router's test for an encrypted file. JSON never passes it (`[`, `{` and `"` are not
/// base64 characters).
pub fn looks_legacy(text: &str) -> bool {
    let text = text.trim();
    !text.is_empty() && text.len().is_multiple_of(4) && STANDARD.decode(text).is_ok()
}

/// Decrypts an encrypted credentials file with `CONFIG_ENCRYPTION_KEY`, read through `env`.
/// Like the original router, the variable's bytes are the key as they are (not trimmed, not
/// decoded).
pub fn open_legacy(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Zeroizing<String>, LegacyError> {
    let key = env(LEGACY_KEY_VAR)
        .map(Zeroizing::new)
        .filter(|key| !key.is_empty())
        .ok_or(LegacyError::MissingKey)?;
    if key.len() != KEY_LEN {
        return Err(LegacyError::KeyLength { bytes: key.len() });
    }
    let data = STANDARD
        .decode(text.trim())
        .map_err(|_| LegacyError::NotBase64)?;
    if data.len() < NONCE_LEN + TAG_LEN {
        return Err(LegacyError::TooShort);
    }
    let (nonce, sealed) = data.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| LegacyError::TooShort)?;
    let cipher = Aes256Gcm::new_from_slice(key.as_bytes())
        .map_err(|_| LegacyError::KeyLength { bytes: key.len() })?;
    let plaintext = cipher
        .decrypt(&Nonce::<Aes256Gcm>::from(nonce), sealed)
        .map(Zeroizing::new)
        .map_err(|_| LegacyError::Rejected)?;
    match String::from_utf8(plaintext.to_vec()) {
        Ok(text) => Ok(Zeroizing::new(text)),
        Err(error) => {
            drop(Zeroizing::new(error.into_bytes()));
            Err(LegacyError::NotText)
        }
    }
}

/// Why an encrypted credentials file cannot be read. Messages follow the file name, as in
/// `configs/credentials.json: cannot be decrypted …`, and never contain the key or the content.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegacyError {
    /// `CONFIG_ENCRYPTION_KEY` is unset or empty.
    #[error("is encrypted (the original router's format) but CONFIG_ENCRYPTION_KEY is not set")]
    MissingKey,
    /// `CONFIG_ENCRYPTION_KEY` is not 32 bytes.
    #[error(
        "is encrypted (the original router's format) but CONFIG_ENCRYPTION_KEY is {bytes} bytes long; it must be exactly 32 bytes"
    )]
    KeyLength {
        /// The variable's length in bytes.
        bytes: usize,
    },
    /// Not standard base64.
    #[error("is not base64, so it is not an encrypted credentials file")]
    NotBase64,
    /// Too short to hold a nonce and a tag.
    #[error("is too short to be an encrypted credentials file")]
    TooShort,
    /// The key did not authenticate the content.
    #[error("cannot be decrypted with CONFIG_ENCRYPTION_KEY (wrong key, or the file was altered)")]
    Rejected,
    /// Authentic, but not UTF-8 text.
    #[error("decrypts to bytes that are not UTF-8 text")]
    NotText,
}

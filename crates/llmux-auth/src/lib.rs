//! Credential encryption at rest.
//!
//! A credential value can be stored *sealed*: `llmux:v1:<key id>:<nonce>:<ciphertext‖tag>`,
//! AES-256-GCM under a 32-byte key from `LLMUX_SECRET_KEY`, with a fresh random 96-bit nonce per
//! value and the header as associated data. The key id (the first 8 hex characters of SHA-256 of
//! the key) lets older keys in `LLMUX_SECRET_KEY_PREVIOUS` keep opening values sealed before a
//! rotation.
//!
//! The invariant this crate keeps: no key and no plaintext ever appears in a `Debug` or
//! `Display` output or an error message, and keys and decrypted values live in memory that is
//! zeroized on drop.
//!
//! Entry points:
//! - [`Keyring::from_env`] reads the keys; [`Keyring::seal`], [`Keyring::open`] and
//!   [`Keyring::reseal`] work on single values; [`looks_sealed`] tells a sealed value from a
//!   plain one;
//! - [`legacy::open_legacy`] reads the original router's encrypted `credentials.json`;
//! - [`files::rewrite`] changes the credential values of a config or seed file while keeping
//!   its comments and layout (used by `llmux credentials encrypt|decrypt|rotate`).
#![warn(missing_docs)]

pub mod files;
mod key;
pub mod legacy;
mod sealed;

pub use key::{
    KEY_LEN, KeyError, KeyFormatError, KeyId, Keyring, PREVIOUS_KEYS_VAR, SECRET_KEY_VAR, SecretKey,
};
pub use sealed::{
    KeyIds, OpenError, PREFIX, ResealError, SealError, looks_sealed, seal, sealed_key_id,
};

#[cfg(test)]
mod tests;

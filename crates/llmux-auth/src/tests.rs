//! Keys, sealed values and the original router's format.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]

use std::collections::HashMap;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead as _, KeyInit as _, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};

use crate::legacy::{LegacyError, looks_legacy, open_legacy};
use crate::{KeyError, KeyFormatError, Keyring, OpenError, SecretKey, looks_sealed, sealed_key_id};

const HEX_A: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const HEX_B: &str = "f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff000102030405060708090a0b0c0d0e0f";
const HEX_C: &str = "4242424242424242424242424242424242424242424242424242424242424242";
const SECRET: &str = "sk-proj-SECRET-abcdefghijklmnop";

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> + use<> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| map.get(name).cloned()
}

fn ring(current: &str, previous: &[&str]) -> Keyring {
    Keyring::new(
        SecretKey::parse(current).unwrap(),
        previous
            .iter()
            .map(|k| SecretKey::parse(k).unwrap())
            .collect(),
    )
}

fn key_bytes(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

// ---- keys ----

#[test]
fn key_parses_from_hex_and_every_base64_flavour_to_the_same_key() {
    let bytes = key_bytes(HEX_B);
    let id = SecretKey::from_bytes(&bytes).id();
    let forms = [
        HEX_B.to_owned(),
        HEX_B.to_uppercase(),
        format!("  {HEX_B}\n"),
        STANDARD.encode(bytes),
        STANDARD.encode(bytes).trim_end_matches('=').to_owned(),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
    ];
    for form in forms {
        assert_eq!(SecretKey::parse(&form).unwrap().id(), id, "{form}");
    }
    // The bytes include 0xfb/0xff, so the two alphabets really differ here.
    assert_ne!(STANDARD.encode(bytes), URL_SAFE.encode(bytes));
}

#[test]
fn key_id_is_the_first_8_hex_of_sha256_of_the_key() {
    use sha2::Digest as _;
    let bytes = key_bytes(HEX_A);
    let digest = sha2::Sha256::digest(bytes);
    let expected: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(SecretKey::from_bytes(&bytes).id().to_string(), expected);
}

#[test]
fn key_of_the_wrong_shape_or_length_is_a_clear_error() {
    assert_eq!(SecretKey::parse("").unwrap_err(), KeyFormatError::Empty);
    assert_eq!(
        SecretKey::parse(&HEX_A[..62]).unwrap_err(),
        KeyFormatError::Shape { chars: 62 }
    );
    assert_eq!(
        SecretKey::parse(&format!("{HEX_A}0000")).unwrap_err(),
        KeyFormatError::Length { bytes: 51 },
        "68 hex characters happen to be base64 of 51 bytes"
    );
    assert_eq!(
        SecretKey::parse(&STANDARD.encode([7u8; 16])).unwrap_err(),
        KeyFormatError::Length { bytes: 16 }
    );
    assert_eq!(
        SecretKey::parse("not a key!").unwrap_err(),
        KeyFormatError::Shape { chars: 10 }
    );
    let message = SecretKey::parse("correct horse battery staple")
        .unwrap_err()
        .to_string();
    assert!(message.starts_with("must be 32 bytes written as 64 hex characters or as base64"));
    assert!(!message.contains("horse"), "{message}");
}

#[test]
fn keys_never_print() {
    let key = SecretKey::parse(HEX_A).unwrap();
    let debug = format!("{key:?} {:?}", ring(HEX_A, &[HEX_B]));
    assert!(!debug.contains(HEX_A) && !debug.contains(HEX_B), "{debug}");
    assert!(!debug.contains("[0, 1, 2"), "{debug}");
    assert!(debug.contains(&key.id().to_string()), "{debug}");
}

#[test]
fn keyring_from_env_reads_current_and_previous() {
    let ring = Keyring::from_env(&env(&[
        ("LLMUX_SECRET_KEY", HEX_A),
        (
            "LLMUX_SECRET_KEY_PREVIOUS",
            &format!(" {HEX_B} ,, {HEX_C},"),
        ),
    ]))
    .unwrap();
    let ids: Vec<String> = ring.ids().iter().map(ToString::to_string).collect();
    let expected: Vec<String> = [HEX_A, HEX_B, HEX_C]
        .iter()
        .map(|k| SecretKey::parse(k).unwrap().id().to_string())
        .collect();
    assert_eq!(ids, expected);
}

#[test]
fn keyring_from_env_errors_name_the_variable_not_the_key() {
    assert_eq!(Keyring::from_env(&env(&[])).unwrap_err(), KeyError::Missing);
    assert_eq!(
        Keyring::from_env(&env(&[("LLMUX_SECRET_KEY", " ")])).unwrap_err(),
        KeyError::Missing
    );
    let error = Keyring::from_env(&env(&[("LLMUX_SECRET_KEY", "MDEyMzQ1Njc4OQ==")])).unwrap_err();
    assert_eq!(
        error.to_string(),
        "LLMUX_SECRET_KEY must be 32 bytes written as 64 hex characters or as base64, but it is base64 of 10 bytes (generate a key with `openssl rand -hex 32`)"
    );
    let error = Keyring::from_env(&env(&[
        ("LLMUX_SECRET_KEY", HEX_A),
        ("LLMUX_SECRET_KEY_PREVIOUS", &format!("{HEX_B},short")),
    ]))
    .unwrap_err()
    .to_string();
    assert!(
        error.starts_with("LLMUX_SECRET_KEY_PREVIOUS (entry 2) must be 32 bytes"),
        "{error}"
    );
    assert!(
        !error.contains(HEX_B) && !error.contains("short"),
        "{error}"
    );
}

// ---- sealing ----

#[test]
fn seal_then_open_round_trips() {
    let ring = ring(HEX_A, &[]);
    for plaintext in [SECRET, "", "ünïcødé 🔑", "with:colons and spaces"] {
        let sealed = ring.seal(plaintext).unwrap();
        assert!(looks_sealed(&sealed));
        assert_eq!(ring.open(&sealed).unwrap().as_str(), plaintext);
    }
}

#[test]
fn sealed_value_has_the_documented_shape() {
    let ring = ring(HEX_A, &[]);
    let sealed = ring.seal(SECRET).unwrap();
    let parts: Vec<&str> = sealed.split(':').collect();
    assert_eq!(parts.len(), 5, "{sealed}");
    assert_eq!(parts[0], "llmux");
    assert_eq!(parts[1], "v1");
    assert_eq!(parts[2], ring.current().id().to_string());
    assert_eq!(URL_SAFE_NO_PAD.decode(parts[3]).unwrap().len(), 12);
    assert_eq!(
        URL_SAFE_NO_PAD.decode(parts[4]).unwrap().len(),
        SECRET.len() + 16
    );
    assert!(
        sealed
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_:".contains(&b))
    );
    assert!(!sealed.contains(SECRET));
}

#[test]
fn sealed_value_opens_with_an_independent_aes_gcm_decryption() {
    // The format written down in the docs, decrypted without this crate's code.
    let ring = ring(HEX_A, &[]);
    let sealed = ring.seal(SECRET).unwrap();
    let parts: Vec<&str> = sealed.split(':').collect();
    let nonce: [u8; 12] = URL_SAFE_NO_PAD
        .decode(parts[3])
        .unwrap()
        .try_into()
        .unwrap();
    let cipher = Aes256Gcm::new_from_slice(&key_bytes(HEX_A)).unwrap();
    let aad = format!("llmux:v1:{}", parts[2]);
    let plaintext = cipher
        .decrypt(
            &Nonce::<Aes256Gcm>::from(nonce),
            aes_gcm::aead::Payload {
                msg: &URL_SAFE_NO_PAD.decode(parts[4]).unwrap(),
                aad: aad.as_bytes(),
            },
        )
        .unwrap();
    assert_eq!(plaintext, SECRET.as_bytes());
}

#[test]
fn every_seal_uses_a_new_nonce() {
    let ring = ring(HEX_A, &[]);
    let sealed: Vec<String> = (0..32).map(|_| ring.seal(SECRET).unwrap()).collect();
    let nonces: std::collections::HashSet<&str> = sealed
        .iter()
        .map(|s| s.split(':').nth(3).unwrap())
        .collect();
    assert_eq!(nonces.len(), sealed.len());
    assert_ne!(sealed[0], sealed[1]);
}

/// Flips one base64url character of `part` (2 = key id, 3 = nonce, 4 = ciphertext).
fn tamper(sealed: &str, part: usize, at: usize) -> String {
    let mut parts: Vec<String> = sealed.split(':').map(str::to_owned).collect();
    let mut chars: Vec<char> = parts[part].chars().collect();
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    parts[part] = chars.into_iter().collect();
    parts.join(":")
}

#[test]
fn tampering_with_any_part_fails_to_open() {
    let ring = ring(HEX_A, &[]);
    let sealed = ring.seal(SECRET).unwrap();
    let id = ring.current().id();

    // Nonce and ciphertext (start, middle, and the tag at the end): authentication fails.
    for (part, at) in [(3, 0), (3, 7), (4, 0), (4, 10), (4, 60)] {
        let tampered = tamper(&sealed, part, at);
        assert_ne!(tampered, sealed);
        let error = ring.open(&tampered).unwrap_err();
        assert!(
            matches!(
                error,
                OpenError::Rejected { key_id } if key_id == id
            ) || matches!(error, OpenError::Malformed(_)),
            "part {part} at {at}: {error:?}"
        );
    }
    let error = ring.open(&tamper(&sealed, 4, 10)).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "cannot be decrypted with the configured LLMUX_SECRET_KEY (key id {id}: authentication failed, so the value was altered or truncated)"
        )
    );

    // The header: another key id, another version, a truncated value.
    let other_id = if sealed.as_bytes()[9] == b'0' {
        "1"
    } else {
        "0"
    };
    let moved_id = format!("{}{other_id}{}", &sealed[..9], &sealed[10..]);
    assert!(matches!(
        ring.open(&moved_id).unwrap_err(),
        OpenError::UnknownKey { .. }
    ));
    assert!(matches!(
        ring.open(&tamper(&sealed, 2, 0)).unwrap_err(),
        OpenError::Malformed(_)
    ));
    let v2 = sealed.replacen("llmux:v1:", "llmux:v2:", 1);
    assert!(looks_sealed(&v2));
    assert_eq!(
        ring.open(&v2).unwrap_err().to_string(),
        "is encrypted in format v2, which this llmux cannot read (it reads v1)"
    );
    assert!(matches!(
        ring.open(&sealed[..sealed.len() - 4]).unwrap_err(),
        OpenError::Rejected { .. } | OpenError::Malformed(_)
    ));
    assert!(matches!(
        ring.open(&format!("{sealed}:x")).unwrap_err(),
        OpenError::Malformed(_)
    ));
    // The header is authenticated: moving the ciphertext under another key's header fails
    // even when that key is configured.
    let other = self::ring(HEX_B, &[HEX_A]);
    let moved = sealed.replacen(&id.to_string(), &other.current().id().to_string(), 1);
    assert!(matches!(
        other.open(&moved).unwrap_err(),
        OpenError::Rejected { .. }
    ));
}

#[test]
fn a_wrong_key_fails_to_open_and_names_both_key_ids() {
    let sealed = ring(HEX_A, &[]).seal(SECRET).unwrap();
    let wrong = ring(HEX_B, &[HEX_C]);
    let error = wrong.open(&sealed).unwrap_err();
    let sealed_id = sealed_key_id(&sealed).unwrap();
    let message = error.to_string();
    assert_eq!(
        message,
        format!(
            "cannot be decrypted with the configured LLMUX_SECRET_KEY (key id {sealed_id} sealed it, but the configured keys are {}, {}; put the key it was sealed with in LLMUX_SECRET_KEY or LLMUX_SECRET_KEY_PREVIOUS)",
            wrong.ids()[0],
            wrong.ids()[1]
        )
    );
    assert!(!message.contains(HEX_A) && !message.contains(HEX_B) && !message.contains(SECRET));
}

#[test]
fn a_value_sealed_under_an_old_key_opens_through_previous_and_rotates_to_the_current_key() {
    let old = ring(HEX_A, &[]);
    let sealed = old.seal(SECRET).unwrap();

    let rotated = ring(HEX_B, &[HEX_A]);
    assert_eq!(rotated.open(&sealed).unwrap().as_str(), SECRET);

    let resealed = rotated.reseal(&sealed).unwrap().expect("re-sealed");
    assert_eq!(sealed_key_id(&resealed).unwrap(), rotated.current().id());
    assert_eq!(rotated.open(&resealed).unwrap().as_str(), SECRET);
    // Already under the current key: nothing to do.
    assert_eq!(rotated.reseal(&resealed).unwrap(), None);
    // The new key alone opens it; the old key alone no longer does.
    assert_eq!(ring(HEX_B, &[]).open(&resealed).unwrap().as_str(), SECRET);
    assert!(old.open(&resealed).is_err());
}

#[test]
fn looks_sealed_only_matches_the_versioned_prefix() {
    assert!(looks_sealed("llmux:v1:abcd"));
    assert!(looks_sealed("llmux:v12:x"));
    for plain in [
        "sk-llmux:v1:",
        "llmux:",
        "llmux:vx:",
        "llmux:v:",
        "llmux-v1-x",
        "LLMUX:v1:x",
    ] {
        assert!(!looks_sealed(plain), "{plain}");
    }
}

// ---- the original router's format ----

/// Encrypts `plaintext` the way the original router does.
fn legacy_file(key: &[u8; 32], plaintext: &str) -> String {
    let nonce = [9u8; 12];
    let cipher = Aes256Gcm::new_from_slice(key).unwrap();
    let sealed = cipher
        .encrypt(&Nonce::<Aes256Gcm>::from(nonce), plaintext.as_bytes())
        .unwrap();
    STANDARD.encode([nonce.as_slice(), &sealed].concat())
}

const LEGACY_KEY: &str = "0123456789abcdef0123456789abcdef";

#[test]
fn legacy_file_opens_with_the_raw_key_bytes() {
    let json = r#"[{"platform":"openai","type":"api-key","value":"sk-x"}]"#;
    let file = format!(
        "{}\n",
        legacy_file(LEGACY_KEY.as_bytes().try_into().unwrap(), json)
    );
    assert!(looks_legacy(&file));
    let opened = open_legacy(&file, &env(&[("CONFIG_ENCRYPTION_KEY", LEGACY_KEY)])).unwrap();
    assert_eq!(opened.as_str(), json);
}

#[test]
fn legacy_errors_are_clear() {
    let file = legacy_file(LEGACY_KEY.as_bytes().try_into().unwrap(), "[]");
    assert_eq!(
        open_legacy(&file, &env(&[])).unwrap_err(),
        LegacyError::MissingKey
    );
    assert_eq!(
        open_legacy(
            &file,
            &env(&[(
                "CONFIG_ENCRYPTION_KEY",
                "default-key-change-in-production-32b"
            )])
        )
        .unwrap_err(),
        LegacyError::KeyLength { bytes: 36 }
    );
    assert_eq!(
        open_legacy(
            &file,
            &env(&[("CONFIG_ENCRYPTION_KEY", "ffffffffffffffffffffffffffffffff")])
        )
        .unwrap_err(),
        LegacyError::Rejected
    );
    assert_eq!(
        open_legacy("AAAA", &env(&[("CONFIG_ENCRYPTION_KEY", LEGACY_KEY)])).unwrap_err(),
        LegacyError::TooShort
    );
}

#[test]
fn json_never_looks_like_the_legacy_format() {
    for text in ["[]", "[{}]", "{\"a\":1}", "", "   ", "\"abc\""] {
        assert!(!looks_legacy(text), "{text}");
    }
}

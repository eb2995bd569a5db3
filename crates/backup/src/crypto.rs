//! Backup-set encryption: PBKDF2-HMAC-SHA256 key derivation, a password verifier and
//! AES-256-GCM block sealing (see `docs/backup-format.md` §Encryption).

use std::fmt;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce, Tag};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::meta::EncryptionInfo;

type HmacSha256 = Hmac<Sha256>;

/// Length of the AES-GCM authentication tag appended to an encrypted payload.
pub const TAG_LEN: usize = 16;
/// Length of the AES-GCM nonce stored in each block header.
pub const NONCE_LEN: usize = 12;
/// Default PBKDF2 iteration count for new sets.
pub const DEFAULT_KDF_ITERATIONS: u32 = 100_000;
/// The most iterations a set info may ask for: 10 times the default, so that a hostile
/// info costs at most ~0.15 s per set and password tried (10,000,000 took 1.5 s, and
/// a restore tries every password along a chain of sets).
pub const MAX_KDF_ITERATIONS: u32 = 1_000_000;

const DATA_KEY_LABEL: &[u8] = b"obrestore data key v1";
const VERIFIER_KEY_LABEL: &[u8] = b"obrestore verifier key v1";
const VERIFIER_MESSAGE: &[u8] = b"obrestore backup set password verifier v1";

/// The data key of one encrypted backup set. `Debug` does not print the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SetKey {
    key: [u8; 32],
}

impl fmt::Debug for SetKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SetKey(<redacted>)")
    }
}

fn hmac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac =
        <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

fn master_key(password: &str, salt: &[u8], iterations: u32) -> [u8; 32] {
    let mut master = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<Sha256>(password.as_bytes(), salt, iterations.max(1), &mut master);
    master
}

/// Creates the encryption info of a new set and its data key.
pub fn new_encryption(password: &str, salt: [u8; 16], iterations: u32) -> (EncryptionInfo, SetKey) {
    let master = master_key(password, &salt, iterations);
    let verifier = hmac(&hmac(&master, VERIFIER_KEY_LABEL), VERIFIER_MESSAGE);
    let info = EncryptionInfo {
        algorithm: "AES-256-GCM".to_string(),
        kdf: "PBKDF2-HMAC-SHA256".to_string(),
        kdf_iterations: iterations,
        salt_hex: hex::encode(salt),
        verifier_hex: hex::encode(verifier),
    };
    let key = SetKey {
        key: hmac(&master, DATA_KEY_LABEL),
    };
    (info, key)
}

/// Whether a set info may ask for `iterations` of PBKDF2 (checked before deriving).
fn iterations_allowed(iterations: u32) -> bool {
    (1..=MAX_KDF_ITERATIONS).contains(&iterations)
}

/// Derives the set key if `password` matches the set's verifier (constant-time compare).
///
/// Returns `None` for a wrong password or malformed encryption info.
pub fn unlock(info: &EncryptionInfo, password: &str) -> Option<SetKey> {
    if !iterations_allowed(info.kdf_iterations) {
        return None;
    }
    let salt = hex::decode(&info.salt_hex).ok()?;
    let expected = hex::decode(&info.verifier_hex).ok()?;
    let master = master_key(password, &salt, info.kdf_iterations);
    let mut mac = <HmacSha256 as Mac>::new_from_slice(&hmac(&master, VERIFIER_KEY_LABEL)).ok()?;
    mac.update(VERIFIER_MESSAGE);
    mac.verify_slice(&expected).ok()?;
    Some(SetKey {
        key: hmac(&master, DATA_KEY_LABEL),
    })
}

impl SetKey {
    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new(&self.key.into())
    }

    /// Encrypts `buffer` in place and appends the tag.
    pub(crate) fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buffer: &mut Vec<u8>) {
        // Encryption only fails for plaintexts beyond GCM's 64 GiB limit, which block
        // payload limits rule out; an empty tag would then fail authentication on read.
        let tag = self
            .cipher()
            .encrypt_in_place_detached(Nonce::from_slice(nonce), aad, buffer)
            .unwrap_or_default();
        buffer.extend_from_slice(&tag);
    }

    /// Verifies and decrypts `buffer` (ciphertext ‖ tag) in place, leaving the plaintext.
    pub(crate) fn open(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], buffer: &mut Vec<u8>) -> bool {
        let Some(split) = buffer.len().checked_sub(TAG_LEN) else {
            return false;
        };
        let tag = Tag::clone_from_slice(&buffer[split..]);
        buffer.truncate(split);
        self.cipher()
            .decrypt_in_place_detached(Nonce::from_slice(nonce), aad, buffer, &tag)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iteration_counts_outside_one_to_the_maximum_are_refused() {
        assert!(iterations_allowed(1));
        assert!(iterations_allowed(MAX_KDF_ITERATIONS));
        assert!(!iterations_allowed(0));
        assert!(!iterations_allowed(MAX_KDF_ITERATIONS + 1));
        assert_eq!(MAX_KDF_ITERATIONS, 10 * DEFAULT_KDF_ITERATIONS);
        let (mut info, _) = new_encryption("s3cret", [7; 16], 1000);
        info.kdf_iterations = u32::MAX;
        assert_eq!(unlock(&info, "s3cret"), None);
    }

    #[test]
    fn verifier_accepts_only_the_password_and_never_stores_it() {
        let (info, key) = new_encryption("s3cret", [7; 16], 1000);
        assert!(!serde_json::to_string(&info).unwrap().contains("s3cret"));
        assert_eq!(unlock(&info, "s3cret"), Some(key.clone()));
        assert_eq!(unlock(&info, "S3cret"), None);
        assert_eq!(unlock(&info, ""), None);
        let mut buffer = b"hello rows".to_vec();
        key.seal(&[1; 12], b"aad", &mut buffer);
        assert_ne!(&buffer[..10], b"hello rows");
        let mut tampered = buffer.clone();
        tampered[0] ^= 1;
        assert!(!key.open(&[1; 12], b"aad", &mut tampered));
        assert!(key.open(&[1; 12], b"aad", &mut buffer));
        assert_eq!(buffer, b"hello rows");
        assert_eq!(format!("{key:?}"), "SetKey(<redacted>)");
    }
}

//! Tenant root-password verifiers.
//!
//! The embedded cluster never stores a root password, only a [`PasswordVerifier`]:
//! PBKDF2-HMAC-SHA256 over the password with 16 random bytes of salt, then an HMAC of a
//! constant under the derived key. This is the backup crate's set-password verifier
//! ([`obrestore_backup::crypto`]), reused so the workspace has one PBKDF2 verifier and
//! one constant-time comparison; the restore crate has no direct `pbkdf2` dependency.
//! The verifier records its iteration count, so raising
//! [`ROOT_PASSWORD_KDF_ITERATIONS`] later does not invalidate stored verifiers.

use obrestore_backup::crypto::{new_encryption, unlock, MAX_KDF_ITERATIONS};
use obrestore_backup::meta::EncryptionInfo;
use rand::RngCore;

use super::model::PasswordVerifier;

/// PBKDF2 iterations of new root-password verifiers (the backup crate's default).
pub const ROOT_PASSWORD_KDF_ITERATIONS: u32 = 100_000;

const KDF: &str = "PBKDF2-HMAC-SHA256";
/// The backup crate's info needs a cipher name; only the verifier part is used here.
const CIPHER: &str = "AES-256-GCM";

/// A new verifier of `password` with a fresh random salt.
pub(crate) fn new_verifier(password: &str, iterations: u32) -> PasswordVerifier {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    let iterations = iterations.clamp(1, MAX_KDF_ITERATIONS);
    let (info, _unused_data_key) = new_encryption(password, salt, iterations);
    PasswordVerifier {
        kdf: KDF.to_string(),
        iterations,
        salt_hex: info.salt_hex,
        verifier_hex: info.verifier_hex,
    }
}

/// Whether `password` is the one `verifier` was made from (constant-time compare). A
/// verifier of another KDF, or one that is malformed, matches nothing.
pub(crate) fn matches(verifier: &PasswordVerifier, password: &str) -> bool {
    if verifier.kdf != KDF {
        return false;
    }
    let info = EncryptionInfo {
        algorithm: CIPHER.to_string(),
        kdf: KDF.to_string(),
        kdf_iterations: verifier.iterations,
        salt_hex: verifier.salt_hex.clone(),
        verifier_hex: verifier.verifier_hex.clone(),
    };
    unlock(&info, password).is_some()
}

/// Whether `password` is the tenant's current root password; no verifier means the
/// empty password.
pub(crate) fn is_current(verifier: Option<&PasswordVerifier>, password: &str) -> bool {
    match verifier {
        None => password.is_empty(),
        Some(verifier) => matches(verifier, password),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_matches_only_its_password_and_differs_per_salt() {
        let first = new_verifier("Secr3t!", 10);
        let second = new_verifier("Secr3t!", 10);
        assert_ne!(first.salt_hex, second.salt_hex);
        assert_ne!(first.verifier_hex, second.verifier_hex);
        assert!(matches(&first, "Secr3t!"));
        assert!(matches(&second, "Secr3t!"));
        assert!(!matches(&first, "secr3t!"));
        assert!(!matches(&first, ""));
        let other_kdf = PasswordVerifier {
            kdf: "SHA1".to_string(),
            ..first.clone()
        };
        assert!(!matches(&other_kdf, "Secr3t!"));
        let malformed = PasswordVerifier {
            salt_hex: "zz".to_string(),
            ..first
        };
        assert!(!matches(&malformed, "Secr3t!"));
        assert!(is_current(None, ""));
        assert!(!is_current(None, "x"));
        assert_eq!(
            format!("{second:?}"),
            "PasswordVerifier { kdf: \"PBKDF2-HMAC-SHA256\", iterations: 10, .. }"
        );
    }
}

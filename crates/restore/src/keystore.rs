//! The agent keystore: restore passwords are needed again after a restart (to decrypt
//! the rest of an encrypted backup), but must never be stored in plain text. They are
//! sealed with AES-256-GCM under a random agent key kept in `<data dir>/agent.key`
//! (mode 0600), and only the sealed form goes into the DAG's persisted parameters.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use rand::RngCore;

/// File name of the agent key in the data directory.
pub const AGENT_KEY_FILE: &str = "agent.key";

/// Seals and unseals secrets under the agent key.
#[derive(Clone)]
pub struct Keystore {
    cipher: Arc<Aes256Gcm>,
}

impl std::fmt::Debug for Keystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keystore(<redacted>)")
    }
}

impl Keystore {
    /// Loads the agent key from `data_dir`, creating it (mode 0600) on first use.
    ///
    /// # Errors
    /// The key file cannot be read or created, or has the wrong length.
    pub fn open(data_dir: &Path) -> Result<Keystore, String> {
        let path = data_dir.join(AGENT_KEY_FILE);
        let key = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let mut key = vec![0u8; 32];
                rand::thread_rng().fill_bytes(&mut key);
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                let mut file = options
                    .open(&path)
                    .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                file.write_all(&key)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
                key
            }
            Err(err) => return Err(format!("cannot read {}: {err}", path.display())),
        };
        let cipher = Aes256Gcm::new_from_slice(&key)
            .map_err(|_| format!("{} must hold 32 bytes", path.display()))?;
        Ok(Keystore {
            cipher: Arc::new(cipher),
        })
    }

    /// Seals `plain` as base64(nonce ‖ ciphertext).
    pub fn seal(&self, plain: &[u8]) -> String {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        // Encryption with a valid key and a 12-byte nonce cannot fail.
        let sealed = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plain)
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        base64::engine::general_purpose::STANDARD.encode(out)
    }

    /// Opens what [`Keystore::seal`] sealed.
    ///
    /// # Errors
    /// Not base64, too short, or not sealed under this agent's key.
    pub fn unseal(&self, sealed: &str) -> Result<Vec<u8>, String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(sealed)
            .map_err(|_| "sealed secret is not base64".to_string())?;
        if bytes.len() < 12 {
            return Err("sealed secret is too short".to_string());
        }
        let (nonce, body) = bytes.split_at(12);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), body)
            .map_err(|_| "sealed secret does not open under this agent's key".to_string())
    }

    /// Seals a list of passwords.
    pub fn seal_passwords(&self, passwords: &[String]) -> String {
        self.seal(
            serde_json::to_string(passwords)
                .unwrap_or_default()
                .as_bytes(),
        )
    }

    /// Opens a list sealed by [`Keystore::seal_passwords`].
    ///
    /// # Errors
    /// As [`Keystore::unseal`], or the content is not a list of strings.
    pub fn unseal_passwords(&self, sealed: &str) -> Result<Vec<String>, String> {
        let plain = self.unseal(sealed)?;
        serde_json::from_slice(&plain).map_err(|_| "sealed passwords are malformed".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_with_a_persistent_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let keystore = Keystore::open(dir.path()).unwrap();
        let sealed = keystore.seal_passwords(&["pw1".to_string(), "pw2".to_string()]);
        assert!(!sealed.contains("pw1"));
        let reopened = Keystore::open(dir.path()).unwrap();
        assert_eq!(
            reopened.unseal_passwords(&sealed).unwrap(),
            vec!["pw1", "pw2"]
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(AGENT_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let other = tempfile::tempdir().unwrap();
        let stranger = Keystore::open(other.path()).unwrap();
        assert!(stranger.unseal_passwords(&sealed).is_err());
        assert!(keystore.unseal("not base64!").is_err());
    }
}

//! Secrets (backup-set passwords, KMS info) that must never be logged.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A secret string. `Debug` prints `***`; read it with [`Secret::expose`].
///
/// It serializes as a plain string because it has to travel in a request body
/// (`decryption` of `POST /api/v1/tenant/restore`). Persisted records that hold
/// secrets skip them instead (see [`crate::ValidatedRestore`]).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret value, for the code that actually needs it (decryption).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Secret {
        Secret::new(value)
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Secret {
        Secret(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let secret = Secret::new("pa55word");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(secret.expose(), "pa55word");
        assert_eq!(serde_json::to_string(&secret).unwrap(), "\"pa55word\"");
    }
}

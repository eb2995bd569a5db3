//! Backup storage URIs.
//!
//! Only `file://` is implemented. `s3://`, `oss://` and `cos://` are recognised (so the
//! error can say what they are) and refused with "unsupported storage type".

use std::path::PathBuf;

/// A parsed backup destination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageUri {
    /// A local directory, `file:///abs/path`.
    File(PathBuf),
}

/// Why a URI was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum UriError {
    #[error("uri is empty")]
    Empty,
    #[error("unsupported storage type '{scheme}' in uri '{uri}'")]
    Unsupported { scheme: String, uri: String },
    #[error("invalid uri '{uri}': {reason}")]
    Invalid { uri: String, reason: String },
}

impl StorageUri {
    /// Parses `uri`, accepting only `file://` with an absolute path.
    ///
    /// # Errors
    /// [`UriError::Unsupported`] for `s3://`, `oss://`, `cos://` and unknown schemes;
    /// [`UriError::Invalid`] when the path is missing or not absolute.
    pub fn parse(uri: &str) -> Result<StorageUri, UriError> {
        let trimmed = uri.trim();
        if trimmed.is_empty() {
            return Err(UriError::Empty);
        }
        let Some((scheme, rest)) = trimmed.split_once("://") else {
            return Err(UriError::Invalid {
                uri: uri.to_string(),
                reason: "missing scheme (expected file://)".to_string(),
            });
        };
        match scheme.to_ascii_lowercase().as_str() {
            "file" => {
                let path = rest.split('?').next().unwrap_or_default();
                if !path.starts_with('/') {
                    return Err(UriError::Invalid {
                        uri: uri.to_string(),
                        reason: "file:// path must be absolute".to_string(),
                    });
                }
                Ok(StorageUri::File(PathBuf::from(path)))
            }
            other => Err(UriError::Unsupported {
                scheme: other.to_string(),
                uri: uri.to_string(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_and_refuses_others() {
        assert_eq!(
            StorageUri::parse("file:///data/backup").unwrap(),
            StorageUri::File(PathBuf::from("/data/backup"))
        );
        for uri in ["s3://b/x", "oss://b/x?host=h", "cos://b/x"] {
            let err = StorageUri::parse(uri).unwrap_err();
            assert!(err.to_string().contains("unsupported storage type"), "{err}");
        }
        assert!(matches!(StorageUri::parse("file://rel"), Err(UriError::Invalid { .. })));
        assert_eq!(StorageUri::parse("  "), Err(UriError::Empty));
    }
}

//! Backup storage URIs.
//!
//! Only `file://` is implemented. `s3://`, `oss://` and `cos://` are recognised (so the
//! error can say what they are) and refused with "unsupported storage type".

use std::path::{Component, Path, PathBuf};

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
    /// The path contains `..`, `.` or another component that could escape a root.
    #[error("path '{path}' is refused: {reason}")]
    Traversal { path: String, reason: String },
    /// The (symlink-resolved) path is not under any allowed root.
    #[error(
        "path '{path}' (resolved to '{resolved}') is outside the allowed backup roots [{roots}]"
    )]
    OutsideRoots {
        path: String,
        resolved: String,
        roots: String,
    },
    /// No allowed root is configured, so nothing can be opened.
    #[error("no allowed backup root is configured; refusing '{path}'")]
    NoRoots { path: String },
    /// An allowed root could not be resolved (it must exist).
    #[error("allowed root '{root}' cannot be resolved: {reason}")]
    BadRoot { root: String, reason: String },
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
                // A local path takes no parameters: a `?query` would be stored verbatim
                // and a `#fragment` read as part of a file name.
                if rest.contains(['?', '#']) {
                    return Err(UriError::Invalid {
                        uri: uri.to_string(),
                        reason: "a file:// URI takes no '?' query or '#' fragment".to_string(),
                    });
                }
                let path = rest;
                if !path.starts_with('/') {
                    return Err(UriError::Invalid {
                        uri: uri.to_string(),
                        reason: "file:// path must be absolute".to_string(),
                    });
                }
                if path.contains('\0') {
                    return Err(UriError::Invalid {
                        uri: uri.to_string(),
                        reason: "path contains a NUL byte".to_string(),
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

impl StorageUri {
    /// The `file://` URI of an absolute local path.
    pub fn from_path(path: &Path) -> StorageUri {
        StorageUri::File(path.to_path_buf())
    }

    /// The local path of a `file://` URI (not yet confined; see [`AllowedRoots::resolve`]).
    pub fn path(&self) -> &Path {
        match self {
            StorageUri::File(path) => path,
        }
    }
}

impl std::fmt::Display for StorageUri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageUri::File(path) => write!(f, "file://{}", path.display()),
        }
    }
}

/// The directories a backup URI may point into.
///
/// Every root is canonicalised when the set is built. [`AllowedRoots::resolve`] refuses
/// `..` and `.` components lexically, then resolves symlinks of the longest existing
/// prefix of the path and requires the result to lie under one of the roots, so neither
/// `../` tricks nor a symlink pointing out of a root can escape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedRoots {
    roots: Vec<PathBuf>,
}

impl AllowedRoots {
    /// Builds the set from existing directories.
    ///
    /// # Errors
    /// [`UriError::BadRoot`] if a root is relative or cannot be canonicalised.
    pub fn new<I, P>(roots: I) -> Result<AllowedRoots, UriError>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<Path>,
    {
        let mut resolved = Vec::new();
        for root in roots {
            let root = root.as_ref();
            if !root.is_absolute() {
                return Err(UriError::BadRoot {
                    root: root.display().to_string(),
                    reason: "an allowed root must be an absolute path".to_string(),
                });
            }
            let canonical = std::fs::canonicalize(root).map_err(|err| UriError::BadRoot {
                root: root.display().to_string(),
                reason: err.to_string(),
            })?;
            resolved.push(canonical);
        }
        Ok(AllowedRoots { roots: resolved })
    }

    /// The canonical roots.
    pub fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Resolves `uri` to a canonical local path under one of the roots.
    ///
    /// The path need not exist yet (a generator target); its longest existing prefix is
    /// canonicalised and the remaining components must be plain names.
    ///
    /// # Errors
    /// [`UriError::Traversal`] for `..`/`.` components, [`UriError::OutsideRoots`] when the
    /// resolved path is outside every root, [`UriError::NoRoots`] when no root is set.
    pub fn resolve(&self, uri: &StorageUri) -> Result<PathBuf, UriError> {
        self.resolve_path(uri.path())
    }

    /// [`AllowedRoots::resolve`] for a bare path.
    ///
    /// # Errors
    /// As [`AllowedRoots::resolve`].
    pub fn resolve_path(&self, path: &Path) -> Result<PathBuf, UriError> {
        let shown = path.display().to_string();
        if self.roots.is_empty() {
            return Err(UriError::NoRoots { path: shown });
        }
        if !path.is_absolute() {
            return Err(UriError::Traversal {
                path: shown,
                reason: "path must be absolute".to_string(),
            });
        }
        // `Path::components` silently drops inner `.` segments, so look at the raw text too.
        if path
            .to_string_lossy()
            .split('/')
            .any(|segment| segment == "." || segment == "..")
        {
            return Err(UriError::Traversal {
                path: shown,
                reason: "'.' and '..' segments are not allowed".to_string(),
            });
        }
        for component in path.components() {
            match component {
                Component::RootDir | Component::Normal(_) => {}
                Component::ParentDir => {
                    return Err(UriError::Traversal {
                        path: shown,
                        reason: "'..' components are not allowed".to_string(),
                    })
                }
                Component::CurDir | Component::Prefix(_) => {
                    return Err(UriError::Traversal {
                        path: shown,
                        reason: "'.' and prefix components are not allowed".to_string(),
                    })
                }
            }
        }
        let resolved = canonicalize_existing_prefix(path).map_err(|err| UriError::Traversal {
            path: shown.clone(),
            reason: format!("cannot resolve: {err}"),
        })?;
        if self.roots.iter().any(|root| resolved.starts_with(root)) {
            Ok(resolved)
        } else {
            Err(UriError::OutsideRoots {
                path: shown,
                resolved: resolved.display().to_string(),
                roots: self
                    .roots
                    .iter()
                    .map(|root| root.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
        }
    }
}

/// Canonicalises the longest existing prefix of `path` and appends the rest verbatim.
fn canonicalize_existing_prefix(path: &Path) -> std::io::Result<PathBuf> {
    let mut existing = path.to_path_buf();
    let mut rest = Vec::new();
    loop {
        match std::fs::canonicalize(&existing) {
            Ok(mut canonical) => {
                for name in rest.iter().rev() {
                    canonical.push(name);
                }
                return Ok(canonical);
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let Some(name) = existing.file_name().map(|name| name.to_os_string()) else {
                    return Err(err);
                };
                rest.push(name);
                if !existing.pop() {
                    return Err(err);
                }
            }
            Err(err) => return Err(err),
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
            assert!(
                err.to_string().contains("unsupported storage type"),
                "{err}"
            );
        }
        assert!(matches!(
            StorageUri::parse("file://rel"),
            Err(UriError::Invalid { .. })
        ));
        assert_eq!(StorageUri::parse("  "), Err(UriError::Empty));
        for uri in [
            "file:///data/backup?x=1",
            "file:///data/backup#frag",
            "file:///a?",
        ] {
            match StorageUri::parse(uri) {
                Err(UriError::Invalid { reason, .. }) => {
                    assert!(reason.contains("query"), "{reason}")
                }
                other => panic!("{uri}: {other:?}"),
            }
        }
    }
}

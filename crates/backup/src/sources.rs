//! The two destinations of one backup, opened together: [`Sources`].
//!
//! This is the one place that turns a pair of backup URIs into a [`DataStore`] and an
//! [`ArchiveStore`]; every frontend (the agent, the HTTP handlers, the CLI) opens through
//! it. Invariant: a [`Sources`] exists only for destinations that were confined first,
//! either to the caller's [`AllowedRoots`] ([`Sources::open`]) or to the two destination
//! directories themselves ([`Sources::open_self_confined`]), so no file outside them is
//! ever read.

use std::path::PathBuf;

use crate::error::{BackupError, Result};
use crate::plan::{plan_restore, restore_windows, RestorePlan, RestoreTarget, RestoreWindow};
use crate::store::{ArchiveStore, DataStore};
use crate::uri::{AllowedRoots, StorageUri};

/// One of the two destinations of a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// The data backup destination (backup sets), `data_backup_uri`.
    Data,
    /// The archive log destination (pieces), `archive_log_uri`.
    Archive,
}

/// Why [`Sources`] could not be opened, naming the destination so that a frontend can
/// say which of its options is wrong. Converts into the [`BackupError`] it wraps.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourcesError {
    /// [`Sources::open_self_confined`]: a destination that is not an existing directory
    /// cannot be its own root.
    #[error("backup destination {uri} does not exist or is not a directory")]
    NotADirectory {
        destination: Destination,
        uri: String,
    },
    /// The destination was refused (URI, confinement) or cannot be read; the message is
    /// the [`BackupError`]'s own.
    #[error("{error}")]
    Open {
        destination: Destination,
        uri: String,
        error: BackupError,
    },
}

impl SourcesError {
    fn open(destination: Destination, uri: &str, error: BackupError) -> SourcesError {
        SourcesError::Open {
            destination,
            uri: uri.to_string(),
            error,
        }
    }

    /// The destination the error is about.
    pub fn destination(&self) -> Destination {
        match self {
            SourcesError::NotADirectory { destination, .. }
            | SourcesError::Open { destination, .. } => *destination,
        }
    }

    /// The URI of that destination, as given.
    pub fn uri(&self) -> &str {
        match self {
            SourcesError::NotADirectory { uri, .. } | SourcesError::Open { uri, .. } => uri,
        }
    }
}

impl From<SourcesError> for BackupError {
    fn from(err: SourcesError) -> BackupError {
        match err {
            SourcesError::NotADirectory { uri, .. } => BackupError::NotFound {
                path: PathBuf::from(uri),
            },
            SourcesError::Open { error, .. } => error,
        }
    }
}

/// A backup's data and archive destinations, opened and confined.
#[derive(Debug, Clone)]
pub struct Sources {
    pub data: DataStore,
    pub archive: ArchiveStore,
}

impl Sources {
    /// Parses both URIs, confines them to `roots` and opens them (data first).
    ///
    /// # Errors
    /// [`SourcesError::Open`] naming the first destination that is refused (unsupported
    /// scheme, outside the roots) or unreadable (missing or bad `format.obbak`, a
    /// destination of the other kind).
    pub fn open(
        data_uri: &str,
        archive_uri: &str,
        roots: &AllowedRoots,
    ) -> Result<Sources, SourcesError> {
        let data = DataStore::open_uri(data_uri, roots)
            .map_err(|error| SourcesError::open(Destination::Data, data_uri, error))?;
        let archive = ArchiveStore::open_uri(archive_uri, roots)
            .map_err(|error| SourcesError::open(Destination::Archive, archive_uri, error))?;
        Ok(Sources { data, archive })
    }

    /// [`Sources::open`] confined to the two destination directories themselves: for a
    /// one-shot command the backup's owner runs without configured roots (the CLI
    /// without `--allowed-root`). A daemon never uses it.
    ///
    /// # Errors
    /// [`SourcesError::NotADirectory`] for a destination that is not an existing
    /// directory, else as [`Sources::open`].
    pub fn open_self_confined(data_uri: &str, archive_uri: &str) -> Result<Sources, SourcesError> {
        let mut paths = Vec::with_capacity(2);
        for (destination, uri) in [
            (Destination::Data, data_uri),
            (Destination::Archive, archive_uri),
        ] {
            let parsed = StorageUri::parse(uri)
                .map_err(|err| SourcesError::open(destination, uri, err.into()))?;
            if !parsed.path().is_dir() {
                return Err(SourcesError::NotADirectory {
                    destination,
                    uri: uri.to_string(),
                });
            }
            paths.push(parsed.path().to_path_buf());
        }
        let roots = AllowedRoots::new(&paths)
            .map_err(|err| SourcesError::open(Destination::Data, data_uri, err.into()))?;
        Sources::open(data_uri, archive_uri, &roots)
    }

    /// The sets and pieces of a restore to `target` ([`plan_restore`]).
    ///
    /// # Errors
    /// As [`plan_restore`].
    pub fn plan(&self, target: &RestoreTarget, passwords: &[String]) -> Result<RestorePlan> {
        plan_restore(&self.data, &self.archive, target, passwords)
    }

    /// The restorable windows ([`restore_windows`]).
    ///
    /// # Errors
    /// The set or piece infos cannot be read.
    pub fn windows(&self) -> Result<Vec<RestoreWindow>> {
        restore_windows(&self.data, &self.archive)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::{generate, GenerateConfig};

    #[test]
    fn opens_both_destinations_and_names_the_one_that_fails() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = GenerateConfig::new(dir.path());
        config.target_bytes = 1 << 20;
        let summary = generate(&config).unwrap();
        let roots = AllowedRoots::new([dir.path()]).unwrap();
        let sources = Sources::open(&summary.data_uri, &summary.archive_uri, &roots).unwrap();
        assert_eq!(
            sources
                .plan(&RestoreTarget::Latest, &[])
                .unwrap()
                .restore_scn,
            summary.end_scn
        );
        assert!(!sources.windows().unwrap().is_empty());
        let alone = Sources::open_self_confined(&summary.data_uri, &summary.archive_uri).unwrap();
        assert_eq!(alone.data.root(), sources.data.root());

        // Each side is named; the message is the reader's own.
        let swapped = Sources::open(&summary.archive_uri, &summary.data_uri, &roots).unwrap_err();
        assert_eq!(swapped.destination(), Destination::Data);
        assert!(matches!(
            BackupError::from(swapped),
            BackupError::WrongDestination { .. }
        ));
        let outside = AllowedRoots::new([summary.data_dir.as_path()]).unwrap();
        let refused = Sources::open(&summary.data_uri, &summary.archive_uri, &outside).unwrap_err();
        assert_eq!(
            (refused.destination(), refused.uri()),
            (Destination::Archive, summary.archive_uri.as_str())
        );
        assert!(
            refused
                .to_string()
                .contains("outside the allowed backup roots"),
            "{refused}"
        );
        let missing = format!("file://{}/nowhere", dir.path().display());
        let absent = Sources::open_self_confined(&summary.data_uri, &missing).unwrap_err();
        assert_eq!(
            absent.to_string(),
            format!("backup destination {missing} does not exist or is not a directory")
        );
        assert_eq!(absent.destination(), Destination::Archive);
    }
}

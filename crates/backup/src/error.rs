//! The one error type of the backup crate.

use std::path::PathBuf;

use crate::scn::Scn;
use crate::uri::UriError;

/// Everything that can go wrong while reading, writing or planning over a backup.
///
/// Storage variants name the file (and the byte offset for block-level faults), so a
/// message is actionable without a debugger. Planning variants carry OceanBase's own
/// wording (SPEC §5.3).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The URI was refused (unsupported scheme, outside the allowed roots, ...).
    #[error(transparent)]
    Uri(#[from] UriError),
    /// An I/O error on a named file or directory.
    #[error("i/o error on '{path}': {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file the layout requires does not exist.
    #[error("missing backup file '{path}'")]
    NotFound { path: PathBuf },
    /// A metadata file is not valid JSON or does not have the expected shape.
    #[error("bad metadata in '{path}': {reason}")]
    BadMetadata { path: PathBuf, reason: String },
    /// A file carries a format version this build does not understand.
    #[error("unsupported format version {found} in '{path}' (supported: {supported})")]
    UnsupportedVersion {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    /// A binary file is structurally broken at `offset`.
    #[error("corrupt backup file '{path}' at offset {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// A binary file ends before its footer.
    #[error("truncated backup file '{path}' at offset {offset}: {reason}")]
    Truncated {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    /// A block's stored checksum does not match its content.
    #[error("checksum mismatch in '{path}' at offset {offset}: {what} expected {expected:08x}, computed {actual:08x}")]
    ChecksumMismatch {
        path: PathBuf,
        offset: u64,
        what: &'static str,
        expected: u32,
        actual: u32,
    },
    /// AES-GCM authentication of an encrypted block failed (wrong key or tampering).
    #[error("decryption failed in '{path}' at offset {offset}: authentication tag mismatch")]
    DecryptFailed { path: PathBuf, offset: u64 },
    /// The destination is of the other kind (DATA vs ARCHIVE_LOG) or another tenant.
    #[error("wrong backup destination '{path}': {reason}")]
    WrongDestination { path: PathBuf, reason: String },
    /// A backup set id that the destination does not list.
    #[error("backup set {set_id} not found in '{path}'")]
    UnknownBackupSet { path: PathBuf, set_id: u64 },
    /// An encrypted set is read without a key, or a key of another set is given.
    #[error("backup set {set_id} is encrypted: a decryption key is required")]
    KeyRequired { set_id: u64 },
    /// OB_BACKUP_INVALID_PASSWORD: no given password matches an encrypted set that the
    /// planner's scan visits (not only the sets it keeps, as in OceanBase), or that a
    /// reader is asked to unlock.
    #[error("backup set password is invalid")]
    InvalidPassword { set_id: u64 },
    /// OB_RESTORE_SOURCE_NOT_ENOUGH with usable FULL sets: none of them starts early enough
    /// for the target. `min_restorable` is the smallest `min_restore_scn` of the usable
    /// (SUCCESS and AVAILABLE) FULL sets (OceanBase's wording).
    #[error("no full backup set can be used to restore to given time, minimum restorable time is {min_restorable}")]
    NoFullBackupSet { min_restorable: Scn },
    /// OB_RESTORE_SOURCE_NOT_ENOUGH without any usable (SUCCESS and AVAILABLE) FULL set in
    /// the destination (OceanBase's wording, `rootserver/restore/ob_restore_util.cpp`).
    #[error("no full backup set exists")]
    NoFullBackupSetExists,
    /// The archive has no piece that covers `restore_start_scn`; `detail` names the
    /// pieces and SCNs (OceanBase's message, then ours).
    #[error("no enough log for restore: {detail}")]
    NoEnoughLog { detail: String },
    /// The archive stops before the target.
    #[error("no enough log, maximum restorable time is {max_restorable}")]
    NoEnoughLogUntil { max_restorable: Scn },
    /// A target timestamp could not be parsed or converted to an SCN.
    #[error("invalid restore target '{input}': {reason}")]
    InvalidTarget { input: String, reason: String },
    /// A time zone is not a UTC offset `±hh:mm` within OceanBase's range (-12:59 to +13:00).
    #[error("invalid time zone '{input}': {reason}")]
    InvalidTimeZone { input: String, reason: String },
    /// Generator configuration that cannot be satisfied.
    #[error("invalid generator config: {0}")]
    InvalidConfig(String),
}

/// Result alias of the crate.
pub type Result<T, E = BackupError> = std::result::Result<T, E>;

impl BackupError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        let path = path.into();
        if source.kind() == std::io::ErrorKind::NotFound {
            BackupError::NotFound { path }
        } else {
            BackupError::Io { path, source }
        }
    }
}

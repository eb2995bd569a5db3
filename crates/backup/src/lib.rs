//! OceanBase-shaped backup storage (SPEC §5).
//!
//! - [`uri`]: `file://` URIs and [`AllowedRoots`] confinement.
//! - [`layout`], [`meta`], [`block`]: the on-disk layout, the JSON metadata files and the
//!   versioned binary block format of data and log files (`docs/backup-format.md`).
//! - [`store`]: streaming readers, [`DataStore`] for backup sets and [`ArchiveStore`] for
//!   archive pieces.
//! - [`sources`]: [`Sources`], the data and archive destinations of one backup opened
//!   together under the allowed roots (the one home of the two openers).
//! - [`plan`]: OceanBase's rules for choosing sets and pieces, preview items, windows.
//! - [`mod@generate`]: a deterministic synthetic backup writer; [`truth`]: the independent
//!   oracle of a tenant's rows at any SCN.
//! - [`human`]: [`human_bytes`], the one formatter of sizes shown to people.
//!
//! A restore uses it like this:
//! ```no_run
//! # fn main() -> Result<(), obrestore_backup::BackupError> {
//! use obrestore_backup::{AllowedRoots, RestoreTarget, Sources};
//! let roots = AllowedRoots::new(["/obbackup"])?;
//! let Sources { data, archive } = Sources::open(
//!     "file:///obbackup/c/1/incarnation_1/1002/data",
//!     "file:///obbackup/c/1/incarnation_1/1002/clog",
//!     &roots,
//! )?;
//! let plan = obrestore_backup::plan_restore(&data, &archive, &RestoreTarget::Latest, &[])?;
//! for set in &plan.sets {
//!     for ls in data.ls_attrs(&set.info)? {
//!         for file in data.data_files(&set.info, ls.ls_id)? {
//!             for block in data.read_data_file(&file, plan.key(set.info.backup_set_id))? {
//!                 let _rows = block?.rows; // apply: Some(value) = put, None = delete
//!             }
//!         }
//!     }
//! }
//! for entry in archive.log_entries(&plan.piece_infos(), 1001, plan.restore_start_scn, plan.restore_scn)? {
//!     let _entry = entry?; // apply in SCN order
//! }
//! # Ok(()) }
//! ```

pub mod block;
pub mod crypto;
pub mod error;
#[cfg(feature = "failpoints")]
pub mod failpoint;
#[cfg(not(feature = "failpoints"))]
mod failpoint;
#[cfg(feature = "fuzzing")]
pub mod fuzz;
pub mod generate;
pub mod human;
pub mod layout;
pub mod meta;
pub mod plan;
pub mod scn;
pub mod sources;
pub mod store;
pub mod truth;
pub mod uri;

pub use block::{DataRow, DataRowRef, LogEntry, LogEntryRef, LogOp};
pub use crypto::SetKey;
pub use error::{BackupError, Result};
pub use generate::{generate, GenerateConfig, GenerateSummary};
pub use human::human_bytes;
pub use meta::{
    BackupSetInfo, BackupType, DestType, FileStatus, FormatInfo, LsAttr, LsId, MacroBlockEntry,
    PieceInfo, PieceStatus, RowBound, SetStatus, TabletId,
};
pub use plan::{
    choose_sources, compute_windows, plan_restore, restore_windows, visited_sets, PlannedPiece,
    PlannedSet, PreviewBackupType, RestorePlan, RestorePreviewItem, RestoreTarget, RestoreWindow,
    RestoreWindowsDto,
};
pub use scn::{Scn, UtcOffset};
pub use sources::{Destination, Sources, SourcesError};
pub use store::{
    ArchiveStore, DataBlock, DataFileReader, DataFileRef, DataStore, LogEntries, LogFileRef,
    RawDataBlock,
};
pub use truth::{DigestBuilder, TenantDigest};
pub use uri::{AllowedRoots, StorageUri, UriError};

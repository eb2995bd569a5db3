//! Choosing the backup sets and archive pieces of a restore (SPEC §5.3, OceanBase's rules),
//! the OCP preview items and the restore windows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::crypto::SetKey;
use crate::error::{BackupError, Result};
use crate::meta::{BackupSetInfo, BackupType, FileStatus, PieceInfo, SetStatus};
use crate::scn::{Scn, UtcOffset};
use crate::store::{ArchiveStore, DataStore};

/// What to restore to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreTarget {
    /// The newest archived point: the maximum checkpoint SCN of the available pieces.
    Latest,
    /// An exact SCN.
    Scn(Scn),
    /// An RFC 3339 timestamp, converted exactly to an SCN; or `YYYY-MM-DD hh:mm:ss[.f]`
    /// without an offset, which [`plan_restore`] reads in the backup's time zone.
    Timestamp(String),
}

impl RestoreTarget {
    /// From restore parameters: `scn = 0` and an empty timestamp mean "unset".
    ///
    /// # Errors
    /// [`BackupError::InvalidTarget`] if both are set.
    pub fn from_params(scn: Option<u64>, timestamp: Option<&str>) -> Result<RestoreTarget> {
        let scn = scn.filter(|scn| *scn != 0);
        let timestamp = timestamp.map(str::trim).filter(|text| !text.is_empty());
        match (scn, timestamp) {
            (Some(_), Some(text)) => Err(BackupError::InvalidTarget {
                input: text.to_string(),
                reason: "give either scn or timestamp, not both".to_string(),
            }),
            (Some(scn), None) => Ok(RestoreTarget::Scn(Scn(scn))),
            (None, Some(text)) => Ok(RestoreTarget::Timestamp(text.to_string())),
            (None, None) => Ok(RestoreTarget::Latest),
        }
    }

    /// The target SCN given the destination's pieces. A timestamp without an offset is
    /// read in the agent's local time zone; planning uses
    /// [`RestoreTarget::resolve_in_zone`] with the backup's zone instead.
    ///
    /// # Errors
    /// A bad timestamp; [`BackupError::NoEnoughLog`] for `Latest` without any available piece.
    pub fn resolve(&self, pieces: &[PieceInfo]) -> Result<Scn> {
        self.resolve_with(pieces, Scn::from_timestamp)
    }

    /// The target SCN given the destination's pieces, reading a timestamp without an
    /// offset in `zone`, the backup's system time zone ([`DataStore::time_zone`]), as
    /// OceanBase does. RFC 3339 timestamps with an offset convert exactly.
    ///
    /// # Errors
    /// A bad timestamp; [`BackupError::NoEnoughLog`] for `Latest` without any available piece.
    pub fn resolve_in_zone(&self, pieces: &[PieceInfo], zone: UtcOffset) -> Result<Scn> {
        self.resolve_with(pieces, |text| Scn::from_timestamp_in(text, zone))
    }

    fn resolve_with(
        &self,
        pieces: &[PieceInfo],
        parse: impl FnOnce(&str) -> Result<Scn>,
    ) -> Result<Scn> {
        match self {
            RestoreTarget::Scn(scn) => Ok(*scn),
            RestoreTarget::Timestamp(text) => parse(text),
            RestoreTarget::Latest => pieces
                .iter()
                .filter(|piece| piece.file_status == FileStatus::Available)
                .map(|piece| piece.checkpoint_scn)
                .max()
                .ok_or_else(|| BackupError::NoEnoughLog {
                    detail: "the archive has no available piece".to_string(),
                }),
        }
    }
}

/// The outcome of [`choose_sources`]: indices into the given slices, in restore order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceChoice {
    pub set_indices: Vec<usize>,
    pub piece_indices: Vec<usize>,
    pub restore_start_scn: Scn,
}

/// The sets OceanBase's scan reads for a target, and the chain it keeps.
struct SetScan {
    /// Every set whose password the scan checks, by id ascending.
    visited: Vec<usize>,
    /// The kept chain: a FULL set, then its INCREMENTALs.
    chain: Vec<usize>,
}

/// OceanBase's set scan (`ObBackupDataStore::do_get_backup_set_array_`).
///
/// OceanBase lists only the sets with an `end_success` placeholder, so a FAILED or DOING
/// set is never read. It reads every listed set by id ascending and checks its password
/// first, before the `min_restore_scn > target` stop test and before the status test, so
/// the set that stops the scan and the DELETED sets before it are visited too. Here a set
/// that is not AVAILABLE is visited but skipped before the stop test (OceanBase would stop
/// at a DELETED set with `min_restore_scn > target`); the two orders differ only when set
/// ids and `min_restore_scn`s disagree (see `docs/backup-format.md` §6).
fn scan_sets(sets: &[BackupSetInfo], target: Scn) -> SetScan {
    let mut set_order: Vec<usize> = (0..sets.len()).collect();
    set_order.sort_by_key(|&index| sets[index].backup_set_id);
    let mut visited: Vec<usize> = Vec::new();
    let mut chain: Vec<usize> = Vec::new();
    for index in set_order {
        let set = &sets[index];
        if set.status != SetStatus::Success {
            continue;
        }
        visited.push(index);
        if set.file_status != FileStatus::Available {
            continue;
        }
        if set.min_restore_scn > target {
            break;
        }
        match set.backup_type {
            BackupType::Full => chain = vec![index],
            BackupType::Incremental => {
                let has_full = chain.iter().any(|&kept| {
                    sets[kept].backup_set_id == set.prev_full_backup_set_id
                        && sets[kept].backup_type == BackupType::Full
                });
                let has_prev = chain
                    .iter()
                    .any(|&kept| sets[kept].backup_set_id == set.prev_inc_backup_set_id);
                if has_full && has_prev {
                    chain.push(index);
                }
            }
        }
    }
    SetScan { visited, chain }
}

/// The sets whose decryption password OceanBase checks when planning a restore to
/// `target`, as indices into `sets`, by id ascending: every SUCCESS set (FAILED and DOING
/// sets are never listed) up to and including the first usable one with
/// `min_restore_scn > target`, DELETED ones included. The sets [`choose_sources`] keeps
/// are always among them.
pub fn visited_sets(sets: &[BackupSetInfo], target: Scn) -> Vec<usize> {
    scan_sets(sets, target).visited
}

/// OceanBase's source selection over in-memory infos (no I/O, no password check).
///
/// Sets are taken by id ascending: unusable ones (not SUCCESS or not AVAILABLE) are
/// skipped, the scan stops at the first with `min_restore_scn > target`, a FULL set
/// resets the chain and an INCREMENTAL joins only if its `prev_full_backup_set_id` (a
/// FULL) and `prev_inc_backup_set_id` are in the chain. `restore_start_scn` is the last
/// kept set's `start_replay_scn`.
///
/// Pieces are taken by (round, piece): non-AVAILABLE ones and those with `end_scn <=
/// restore_start_scn` are dropped; once a piece is kept, a piece with `start_scn >= target`
/// ends the scan (its logs are all after the target, as in OceanBase); a piece whose
/// `start_scn` differs from the previous kept piece's `end_scn` restarts the list at
/// itself; the first kept piece must have `start_scn <= restore_start_scn`; the last kept
/// piece's `checkpoint_scn` must reach the target.
///
/// # Errors
/// With OceanBase's messages: [`BackupError::NoFullBackupSetExists`] when no FULL set is
/// usable at all, [`BackupError::NoFullBackupSet`] when usable FULL sets exist but none
/// starts a chain for the target, [`BackupError::NoEnoughLog`] (naming the pieces),
/// [`BackupError::NoEnoughLogUntil`].
pub fn choose_sources(
    sets: &[BackupSetInfo],
    pieces: &[PieceInfo],
    target: Scn,
) -> Result<SourceChoice> {
    let chain = scan_sets(sets, target).chain;
    let Some(&last_set) = chain.last() else {
        let min_restorable = sets
            .iter()
            .filter(|set| set.is_usable() && set.backup_type == BackupType::Full)
            .map(|set| set.min_restore_scn)
            .min();
        return Err(match min_restorable {
            Some(min_restorable) => BackupError::NoFullBackupSet { min_restorable },
            None => BackupError::NoFullBackupSetExists,
        });
    };
    let restore_start_scn = sets[last_set].start_replay_scn;

    let mut piece_order: Vec<usize> = (0..pieces.len()).collect();
    piece_order.sort_by_key(|&index| (pieces[index].round_id, pieces[index].piece_id));
    let mut kept: Vec<usize> = Vec::new();
    // Why the last chain of pieces broke, for the error: (earlier piece, later piece).
    let mut break_at: Option<(usize, usize)> = None;
    for index in piece_order {
        let piece = &pieces[index];
        if piece.file_status != FileStatus::Available || piece.end_scn <= restore_start_scn {
            continue;
        }
        if !kept.is_empty() && piece.start_scn >= target {
            break;
        }
        if let Some(&previous) = kept.last() {
            if pieces[previous].end_scn != piece.start_scn {
                break_at = Some((previous, index));
                kept.clear();
            }
        }
        if kept.is_empty() && piece.start_scn > restore_start_scn {
            return Err(no_enough_log(
                pieces,
                restore_start_scn,
                Some(index),
                break_at,
            ));
        }
        kept.push(index);
    }
    let Some(&last_piece) = kept.last() else {
        return Err(no_enough_log(pieces, restore_start_scn, None, break_at));
    };
    if pieces[last_piece].checkpoint_scn < target {
        return Err(BackupError::NoEnoughLogUntil {
            max_restorable: pieces[last_piece].checkpoint_scn,
        });
    }
    Ok(SourceChoice {
        set_indices: chain,
        piece_indices: kept,
        restore_start_scn,
    })
}

/// [`BackupError::NoEnoughLog`] naming what is missing: the replay must start at
/// `restore_start_scn`, and `first` is the piece a chain would start with (if any);
/// `break_at` is where the last chain of contiguous pieces broke.
fn no_enough_log(
    pieces: &[PieceInfo],
    restore_start_scn: Scn,
    first: Option<usize>,
    break_at: Option<(usize, usize)>,
) -> BackupError {
    let name = |piece: &PieceInfo| format!("piece {} (round {})", piece.piece_id, piece.round_id);
    let mut detail = match first {
        Some(index) => format!(
            "the replay starts at scn {}, but {} starts at scn {}",
            restore_start_scn.as_u64(),
            name(&pieces[index]),
            pieces[index].start_scn.as_u64()
        ),
        None => format!(
            "no available piece has log after scn {}",
            restore_start_scn.as_u64()
        ),
    };
    if let Some((earlier, later)) = break_at {
        detail.push_str(&format!(
            "; {} ends at scn {} where {} starts at scn {}",
            name(&pieces[earlier]),
            pieces[earlier].end_scn.as_u64(),
            name(&pieces[later]),
            pieces[later].start_scn.as_u64()
        ));
    }
    BackupError::NoEnoughLog { detail }
}

/// A chosen backup set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedSet {
    pub info: BackupSetInfo,
    /// `file://` URI of the set directory.
    pub backup_dest: String,
}

/// A chosen archive piece.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedPiece {
    pub info: PieceInfo,
    /// `file://` URI of the piece directory.
    pub backup_dest: String,
}

/// Everything a restore needs to know about its sources.
///
/// Serialisable (for a DAG context) without the derived keys, which are only in memory;
/// re-derive them with [`DataStore::unlock`] after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestorePlan {
    pub data_uri: String,
    pub archive_uri: String,
    pub restore_scn: Scn,
    pub restore_start_scn: Scn,
    /// FULL first, then its INCREMENTALs, in apply order.
    pub sets: Vec<PlannedSet>,
    /// In replay order.
    pub pieces: Vec<PlannedPiece>,
    #[serde(skip)]
    keys: BTreeMap<u64, SetKey>,
}

impl RestorePlan {
    /// The data key of an encrypted chosen set.
    pub fn key(&self, set_id: u64) -> Option<&SetKey> {
        self.keys.get(&set_id)
    }

    /// The chosen pieces' infos, for [`ArchiveStore::log_entries`].
    pub fn piece_infos(&self) -> Vec<PieceInfo> {
        self.pieces.iter().map(|piece| piece.info.clone()).collect()
    }

    /// OCP preview items: sets, then pieces.
    pub fn preview_items(&self) -> Vec<RestorePreviewItem> {
        let sets = self.sets.iter().map(|set| RestorePreviewItem {
            backup_dest: set.backup_dest.clone(),
            backup_id: set.info.backup_set_id,
            backup_type: PreviewBackupType::BackupSet,
            copy_id: 0,
        });
        let pieces = self.pieces.iter().map(|piece| RestorePreviewItem {
            backup_dest: piece.backup_dest.clone(),
            backup_id: piece.info.piece_id,
            backup_type: PreviewBackupType::BackupPiece,
            copy_id: 0,
        });
        sets.chain(pieces).collect()
    }
}

/// Plans a restore: target SCN, set chain, password check, pieces (SPEC §5.3).
///
/// A target timestamp without an offset is read in the backup's time zone
/// ([`DataStore::time_zone`]). As in OceanBase, the decryption password is checked for
/// every set the scan visits ([`visited_sets`]), not only the sets kept, and during the
/// scan, so a wrong or missing password is reported before a missing full set or
/// missing logs.
///
/// # Errors
/// Storage errors while reading infos; [`BackupError::InvalidTarget`];
/// [`BackupError::InvalidPassword`] when a visited encrypted set matches none of
/// `passwords`; [`BackupError::NoFullBackupSetExists`]; [`BackupError::NoFullBackupSet`];
/// [`BackupError::NoEnoughLog`]; [`BackupError::NoEnoughLogUntil`].
#[tracing::instrument(skip_all, fields(data = %data.root().display(), archive = %archive.root().display(), ?target))]
pub fn plan_restore(
    data: &DataStore,
    archive: &ArchiveStore,
    target: &RestoreTarget,
    passwords: &[String],
) -> Result<RestorePlan> {
    let sets = data.list_sets()?;
    let pieces = archive.pieces()?;
    let restore_scn = target.resolve_in_zone(&pieces, data.time_zone())?;
    // Passwords first, as OceanBase checks them while it scans the sets; the kept chain
    // is always among the visited sets, so its keys come from the same pass.
    let mut keys = check_passwords(data, &sets, &visited_sets(&sets, restore_scn), passwords)?;
    let choice = choose_sources(&sets, &pieces, restore_scn)?;
    keys.retain(|set_id, _| {
        choice
            .set_indices
            .iter()
            .any(|&index| sets[index].backup_set_id == *set_id)
    });
    tracing::debug!(
        restore_scn = restore_scn.as_u64(),
        sets = choice.set_indices.len(),
        pieces = choice.piece_indices.len(),
        "restore sources chosen"
    );
    Ok(RestorePlan {
        data_uri: data.uri(),
        archive_uri: archive.uri(),
        restore_scn,
        restore_start_scn: choice.restore_start_scn,
        sets: choice
            .set_indices
            .iter()
            .map(|&index| PlannedSet {
                backup_dest: data.set_uri(&sets[index]),
                info: sets[index].clone(),
            })
            .collect(),
        pieces: choice
            .piece_indices
            .iter()
            .map(|&index| PlannedPiece {
                backup_dest: archive.piece_uri(&pieces[index]),
                info: pieces[index].clone(),
            })
            .collect(),
        keys,
    })
}

/// Unlocks every set of `indices` in order; the first that no password opens fails.
fn check_passwords(
    data: &DataStore,
    sets: &[BackupSetInfo],
    indices: &[usize],
    passwords: &[String],
) -> Result<BTreeMap<u64, SetKey>> {
    let mut keys = BTreeMap::new();
    for &index in indices {
        if let Some(key) = data.unlock(&sets[index], passwords)? {
            keys.insert(sets[index].backup_set_id, key);
        }
    }
    Ok(keys)
}

/// `BACKUP_SET` or `BACKUP_PIECE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PreviewBackupType {
    BackupSet,
    BackupPiece,
}

/// OCP's RestorePreviewItem (seed 000). `backupId` and `copyId` are Longs that OCP sends
/// as JSON strings (`"24"`), as in its sample response; both forms are accepted on input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestorePreviewItem {
    pub backup_dest: String,
    #[serde(with = "long_as_string")]
    pub backup_id: u64,
    pub backup_type: PreviewBackupType,
    #[serde(with = "long_as_string")]
    pub copy_id: u64,
}

mod long_as_string {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&value.to_string())
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Long {
        Number(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        match Long::deserialize(deserializer)? {
            Long::Number(value) => Ok(value),
            Long::Text(text) => text.trim().parse().map_err(serde::de::Error::custom),
        }
    }
}

/// A closed interval of restorable SCNs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreWindow {
    pub start: Scn,
    pub end: Scn,
}

/// obshell's restore-windows response body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreWindowsDto {
    pub restore_windows: Vec<RestoreWindowDto>,
}

/// One window, RFC 3339 in the agent's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreWindowDto {
    pub start_time: String,
    pub end_time: String,
}

impl RestoreWindowsDto {
    /// Converts domain windows to the DTO.
    pub fn from_windows(windows: &[RestoreWindow]) -> RestoreWindowsDto {
        RestoreWindowsDto {
            restore_windows: windows
                .iter()
                .map(|window| RestoreWindowDto {
                    start_time: window.start.to_rfc3339(),
                    end_time: window.end.to_rfc3339(),
                })
                .collect(),
        }
    }
}

/// The restore windows of two destinations.
///
/// # Errors
/// Storage errors while reading infos.
pub fn restore_windows(data: &DataStore, archive: &ArchiveStore) -> Result<Vec<RestoreWindow>> {
    Ok(compute_windows(&data.list_sets()?, &archive.pieces()?))
}

/// Exactly the SCNs for which [`choose_sources`] succeeds, as merged closed intervals.
///
/// Every condition of [`choose_sources`] compares the target with a set's
/// `min_restore_scn` or a piece's `start_scn`/`checkpoint_scn`, so the outcome is constant
/// between consecutive such values; evaluating each value and one point of each gap gives
/// the exact answer (the union of `[min_restore_scn of a usable chain, checkpoint of its
/// contiguous logs]`, possibly several intervals).
pub fn compute_windows(sets: &[BackupSetInfo], pieces: &[PieceInfo]) -> Vec<RestoreWindow> {
    let mut points: Vec<u64> = sets
        .iter()
        .filter(|set| set.is_usable())
        .map(|set| set.min_restore_scn.as_u64())
        .chain(
            pieces
                .iter()
                .filter(|piece| piece.file_status == FileStatus::Available)
                .flat_map(|piece| [piece.start_scn.as_u64(), piece.checkpoint_scn.as_u64()]),
        )
        .collect();
    points.sort_unstable();
    points.dedup();
    let valid = |scn: u64| choose_sources(sets, pieces, Scn(scn)).is_ok();
    let mut windows: Vec<RestoreWindow> = Vec::new();
    let mut push = |start: u64, end: u64| match windows.last_mut() {
        Some(last) if last.end.as_u64().checked_add(1) == Some(start) => last.end = Scn(end),
        _ => windows.push(RestoreWindow {
            start: Scn(start),
            end: Scn(end),
        }),
    };
    for (position, &point) in points.iter().enumerate() {
        if valid(point) {
            push(point, point);
        }
        let next = points.get(position + 1).copied();
        let gap_start = point.checked_add(1);
        match (gap_start, next) {
            (Some(start), Some(next)) if start < next && valid(start) => push(start, next - 1),
            (Some(start), None) if valid(start) => push(start, u64::MAX),
            _ => {}
        }
    }
    windows
}

#[cfg(test)]
mod tests;

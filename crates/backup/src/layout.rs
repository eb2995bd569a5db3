//! File and directory names of the OceanBase 4.x layout (SPEC §5.1).
//!
//! Every path the readers open is built here from ids, never taken from file contents,
//! so metadata cannot steer a reader outside its destination.

use std::path::{Path, PathBuf};

use crate::meta::{BackupType, LsId};
use crate::scn::Scn;

/// `format.obbak` at the root of both destination kinds.
pub const FORMAT_FILE: &str = "format.obbak";
/// Directory of backup-set listing files.
pub const BACKUP_SETS_DIR: &str = "backup_sets";
/// Directory of archive round listing files.
pub const ROUNDS_DIR: &str = "rounds";
/// Directory of archive piece listing files.
pub const PIECES_DIR: &str = "pieces";
/// Set info file name.
pub const SINGLE_SET_INFO: &str = "single_backup_set_info.obbak";
/// Tenant set history file name.
pub const TENANT_SET_INFOS: &str = "tenant_backup_set_infos.obbak";
/// Data turn directory of a log stream in a set.
pub const DATA_TURN_DIR: &str = "major_data_turn_1_retry_0";
/// Per-LS index of data files.
pub const MACRO_RANGE_INDEX: &str = "macro_range_index.obbak";
/// Piece info file name.
pub const SINGLE_PIECE_INFO: &str = "single_piece_info.obarc";
/// Piece tenant info file name.
pub const TENANT_PIECE_INFOS: &str = "tenant_archive_piece_infos.obarc";

/// `backup_set_<id>_{full|inc}`.
pub fn set_dir_name(set_id: u64, backup_type: BackupType) -> String {
    format!("backup_set_{set_id}_{}", backup_type.short_name())
}

/// `<set dir>/infos/meta_info/ls_attr_info.obbak`.
pub fn ls_attr_info_path(set_dir: &Path) -> PathBuf {
    set_dir
        .join("infos")
        .join("meta_info")
        .join("ls_attr_info.obbak")
}

/// `<set dir>/logstream_<ls>/major_data_turn_1_retry_0`.
pub fn ls_data_dir(set_dir: &Path, ls_id: LsId) -> PathBuf {
    set_dir
        .join(format!("logstream_{ls_id}"))
        .join(DATA_TURN_DIR)
}

/// `macro_block_data.<k>.obbak`.
pub fn data_file_name(file_index: u64) -> String {
    format!("macro_block_data.{file_index}.obbak")
}

/// `backup_set_<id>_{full|inc}_start.obbak`.
pub fn set_start_marker(set_id: u64, backup_type: BackupType) -> String {
    format!("{}_start.obbak", set_dir_name(set_id, backup_type))
}

/// `backup_set_<id>_{full|inc}_end_success_<ts>.obbak` or `..._end_failed_<ts>.obbak`.
pub fn set_end_marker(set_id: u64, backup_type: BackupType, success: bool, at: Scn) -> String {
    let outcome = if success { "success" } else { "failed" };
    format!(
        "{}_end_{outcome}_{}.obbak",
        set_dir_name(set_id, backup_type),
        at.to_file_stamp()
    )
}

/// Parses a `backup_sets/` listing name into (set id, type).
pub fn parse_set_marker(name: &str) -> Option<(u64, BackupType)> {
    let rest = name.strip_prefix("backup_set_")?.strip_suffix(".obbak")?;
    let (id, rest) = rest.split_once('_')?;
    let set_id = id.parse().ok()?;
    let backup_type = if rest.starts_with("full_") {
        BackupType::Full
    } else if rest.starts_with("inc_") {
        BackupType::Incremental
    } else {
        return None;
    };
    Some((set_id, backup_type))
}

/// `piece_d<dest>r<round>p<piece>`.
pub fn piece_dir_name(dest_id: u64, round_id: u64, piece_id: u64) -> String {
    format!("piece_d{dest_id}r{round_id}p{piece_id}")
}

/// `round_d<dest>r<round>_{start|end}.obarc`.
pub fn round_marker(dest_id: u64, round_id: u64, start: bool) -> String {
    let which = if start { "start" } else { "end" };
    format!("round_d{dest_id}r{round_id}_{which}.obarc")
}

/// `piece_d<dest>r<round>p<piece>_{start|end}_<ts>.obarc`.
pub fn piece_marker(dest_id: u64, round_id: u64, piece_id: u64, start: bool, at: Scn) -> String {
    let which = if start { "start" } else { "end" };
    format!(
        "{}_{which}_{}.obarc",
        piece_dir_name(dest_id, round_id, piece_id),
        at.to_file_stamp()
    )
}

/// Parses a `pieces/` listing name into (dest, round, piece).
pub fn parse_piece_marker(name: &str) -> Option<(u64, u64, u64)> {
    let rest = name.strip_prefix("piece_d")?.strip_suffix(".obarc")?;
    let (ids, _) = rest.split_once('_')?;
    let (dest, rest) = ids.split_once('r')?;
    let (round, piece) = rest.split_once('p')?;
    Some((dest.parse().ok()?, round.parse().ok()?, piece.parse().ok()?))
}

/// `<piece dir>/checkpoint/checkpoint.<scn>.obarc`.
pub fn checkpoint_path(piece_dir: &Path, scn: Scn) -> PathBuf {
    piece_dir
        .join("checkpoint")
        .join(format!("checkpoint.{}.obarc", scn.as_u64()))
}

/// Parses `checkpoint.<scn>.obarc`.
pub fn parse_checkpoint_name(name: &str) -> Option<Scn> {
    let scn = name.strip_prefix("checkpoint.")?.strip_suffix(".obarc")?;
    scn.parse().ok().map(Scn)
}

/// `<piece dir>/logstream_<ls>/log`.
pub fn ls_log_dir(piece_dir: &Path, ls_id: LsId) -> PathBuf {
    piece_dir.join(format!("logstream_{ls_id}")).join("log")
}

/// `<file_id>.obarc`.
pub fn log_file_name(file_id: u64) -> String {
    format!("{file_id}.obarc")
}

/// Parses `<file_id>.obarc`.
pub fn parse_log_file_name(name: &str) -> Option<u64> {
    name.strip_suffix(".obarc")?.parse().ok()
}

/// Parses `logstream_<ls>`.
pub fn parse_ls_dir_name(name: &str) -> Option<LsId> {
    name.strip_prefix("logstream_")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let end = set_end_marker(
            3,
            BackupType::Incremental,
            true,
            Scn(1_712_384_162_000_000_000),
        );
        assert_eq!(end, "backup_set_3_inc_end_success_20240406T061602.obbak");
        assert_eq!(parse_set_marker(&end), Some((3, BackupType::Incremental)));
        assert_eq!(
            parse_set_marker(&set_start_marker(12, BackupType::Full)),
            Some((12, BackupType::Full))
        );
        assert_eq!(parse_set_marker("backup_set_x_full_start.obbak"), None);
        let piece = piece_marker(1, 2, 7, false, Scn(0));
        assert_eq!(piece, "piece_d1r2p7_end_19700101T000000.obarc");
        assert_eq!(parse_piece_marker(&piece), Some((1, 2, 7)));
        assert_eq!(parse_checkpoint_name("checkpoint.99.obarc"), Some(Scn(99)));
        assert_eq!(parse_log_file_name("12.obarc"), Some(12));
        assert_eq!(parse_ls_dir_name("logstream_1001"), Some(1001));
    }
}

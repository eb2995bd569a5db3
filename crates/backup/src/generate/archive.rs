//! The archive destination: rounds and pieces, each piece with one log file chain per
//! log stream, its info files, checkpoint files and listing markers.
//!
//! A piece covers `piece_len_ns` of SCNs; an op past its end freezes it and opens the
//! next. A stopped round closes its piece at the stop SCN (FROZEN, keeping its planned
//! `end_scn`); the piece open at the end of the workload stays ACTIVE.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use super::config::GenerateConfig;
use super::{create_file, io_err, remove_ls_dirs};
use crate::block::{BlockWriter, FileKind, LogOp};
use crate::error::Result;
use crate::layout;
use crate::meta::{
    write_meta, CheckpointInfo, FileStatus, ListingMarker, LsId, PieceInfo, PieceStatus, TabletId,
    TenantArchivePieceInfos,
};
use crate::scn::Scn;

struct LogFileState {
    writer: BlockWriter<BufWriter<File>>,
    path: PathBuf,
    file_id: u64,
}

struct OpenPiece {
    info: PieceInfo,
    dir: PathBuf,
    logs: BTreeMap<LsId, LogFileState>,
    bytes: u64,
}

pub(super) struct ArchiveWriter {
    root: PathBuf,
    dest_id: u64,
    piece_len_ns: u64,
    log_file_bytes: u64,
    block_bytes: usize,
    round_id: u64,
    next_piece_id: u64,
    current: Option<OpenPiece>,
    done: Vec<(PieceInfo, Vec<LsId>)>,
    bytes: u64,
    /// The SCN of the last entry appended: entries come in non-decreasing SCN order
    /// across files and pieces, as the readers require.
    last_scn: Scn,
}

impl ArchiveWriter {
    /// A writer of the archive destination at `root` (dest id 1), no round started.
    pub(super) fn new(root: PathBuf, config: &GenerateConfig) -> ArchiveWriter {
        ArchiveWriter {
            root,
            dest_id: 1,
            piece_len_ns: config.piece_len_ns,
            log_file_bytes: config.log_file_bytes,
            block_bytes: config.block_bytes,
            round_id: 0,
            next_piece_id: 1,
            current: None,
            done: Vec::new(),
            bytes: 0,
            last_scn: Scn(0),
        }
    }

    /// Whether a round is running (a piece is open).
    pub(super) fn is_archiving(&self) -> bool {
        self.current.is_some()
    }

    fn marker(&self, dir: &str, name: String, scn: Scn) -> Result<()> {
        let path = self.root.join(dir).join(&name);
        write_meta(&path, &ListingMarker { name, scn })
    }

    pub(super) fn start_round(&mut self, start: Scn) -> Result<()> {
        self.round_id += 1;
        self.marker(
            layout::ROUNDS_DIR,
            layout::round_marker(self.dest_id, self.round_id, true),
            start,
        )?;
        self.open_piece(start)
    }

    fn open_piece(&mut self, start: Scn) -> Result<()> {
        let piece_id = self.next_piece_id;
        self.next_piece_id += 1;
        let info = PieceInfo {
            dest_id: self.dest_id,
            round_id: self.round_id,
            piece_id,
            start_scn: start,
            checkpoint_scn: start,
            end_scn: Scn(start.as_u64().saturating_add(self.piece_len_ns)),
            status: PieceStatus::Active,
            file_status: FileStatus::Available,
            output_bytes: 0,
        };
        self.marker(
            layout::PIECES_DIR,
            layout::piece_marker(self.dest_id, self.round_id, piece_id, true, start),
            start,
        )?;
        let dir = self.root.join(info.dir_name());
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        self.current = Some(OpenPiece {
            info,
            dir,
            logs: BTreeMap::new(),
            bytes: 0,
        });
        Ok(())
    }

    /// Closes the current piece with `checkpoint`; FROZEN unless `active`.
    fn close_piece(&mut self, checkpoint: Scn, active: bool) -> Result<()> {
        let Some(mut piece) = self.current.take() else {
            return Ok(());
        };
        let mut ls_ids = Vec::new();
        for (ls_id, log) in std::mem::take(&mut piece.logs) {
            let (stats, _) = log.writer.finish().map_err(io_err(&log.path))?;
            piece.bytes += stats.bytes;
            ls_ids.push(ls_id);
        }
        let log_files = list_log_files(&piece.dir, &ls_ids)?;
        piece.info.checkpoint_scn = checkpoint;
        piece.info.status = if active {
            PieceStatus::Active
        } else {
            PieceStatus::Frozen
        };
        piece.info.output_bytes = piece.bytes;
        self.bytes += piece.bytes;
        write_meta(&piece.dir.join(layout::SINGLE_PIECE_INFO), &piece.info)?;
        write_meta(
            &piece.dir.join(layout::TENANT_PIECE_INFOS),
            &TenantArchivePieceInfos {
                piece: piece.info.clone(),
                ls_ids: ls_ids.clone(),
                log_files,
            },
        )?;
        write_meta(
            &layout::checkpoint_path(&piece.dir, checkpoint),
            &CheckpointInfo {
                checkpoint_scn: checkpoint,
            },
        )?;
        if !active {
            self.marker(
                layout::PIECES_DIR,
                layout::piece_marker(
                    self.dest_id,
                    piece.info.round_id,
                    piece.info.piece_id,
                    false,
                    checkpoint,
                ),
                checkpoint,
            )?;
        }
        self.done.push((piece.info, ls_ids));
        Ok(())
    }

    /// Freezes full pieces until `scn` falls into the current one.
    fn advance_to(&mut self, scn: Scn) -> Result<()> {
        while let Some(piece) = &self.current {
            if scn <= piece.info.end_scn {
                break;
            }
            let end = piece.info.end_scn;
            self.close_piece(end, false)?;
            self.open_piece(end)?;
        }
        Ok(())
    }

    pub(super) fn append(
        &mut self,
        scn: Scn,
        ls_id: LsId,
        tablet_id: TabletId,
        op: LogOp,
        key: &[u8],
        value: &[u8],
    ) -> Result<()> {
        let Some(piece) = &self.current else {
            return Ok(());
        };
        if scn < self.last_scn {
            let dir = layout::ls_log_dir(&piece.dir, ls_id);
            let reason = format!(
                "log entry scn {} after scn {}: entries must come in non-decreasing SCN order",
                scn.as_u64(),
                self.last_scn.as_u64()
            );
            return Err(io_err(&dir)(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                reason,
            )));
        }
        self.last_scn = scn;
        self.advance_to(scn)?;
        let (log_file_bytes, block_bytes) = (self.log_file_bytes, self.block_bytes);
        let Some(piece) = self.current.as_mut() else {
            return Ok(());
        };
        let roll = piece
            .logs
            .get(&ls_id)
            .is_some_and(|log| log.writer.bytes_written() >= log_file_bytes);
        if roll {
            if let Some(log) = piece.logs.remove(&ls_id) {
                let (stats, _) = log.writer.finish().map_err(io_err(&log.path))?;
                piece.bytes += stats.bytes;
                let file_id = log.file_id + 1;
                piece.logs.insert(
                    ls_id,
                    new_log_file(&piece.dir, ls_id, file_id, block_bytes)?,
                );
            }
        }
        if !piece.logs.contains_key(&ls_id) {
            piece
                .logs
                .insert(ls_id, new_log_file(&piece.dir, ls_id, 1, block_bytes)?);
        }
        if let Some(log) = piece.logs.get_mut(&ls_id) {
            log.writer
                .push_log_entry(scn, tablet_id, op, key, value)
                .map_err(io_err(&log.path))?;
        }
        Ok(())
    }

    pub(super) fn stop_round(&mut self, stop: Scn) -> Result<()> {
        if self.current.is_none() {
            return Ok(());
        }
        self.advance_to(stop)?;
        self.close_piece(stop, false)?;
        self.marker(
            layout::ROUNDS_DIR,
            layout::round_marker(self.dest_id, self.round_id, false),
            stop,
        )
    }

    /// Ends the workload at `end`: the open piece, if any, is closed ACTIVE there.
    pub(super) fn finish(&mut self, end: Scn) -> Result<()> {
        if self.current.is_some() {
            self.advance_to(end)?;
            self.close_piece(end, true)?;
        }
        Ok(())
    }

    /// The closed pieces by (round, piece), those of `delete_pieces` marked DELETED with
    /// their log files removed, and the bytes written.
    pub(super) fn into_pieces(
        self,
        delete_pieces: &[u64],
        ls_ids: &[LsId],
    ) -> Result<(Vec<PieceInfo>, u64)> {
        let mut pieces = Vec::new();
        for (mut piece, _) in self.done {
            if delete_pieces.contains(&piece.piece_id) {
                piece.file_status = FileStatus::Deleted;
                let piece_dir = self.root.join(piece.dir_name());
                write_meta(&piece_dir.join(layout::SINGLE_PIECE_INFO), &piece)?;
                remove_ls_dirs(&piece_dir, ls_ids)?;
            }
            pieces.push(piece);
        }
        Ok((pieces, self.bytes))
    }
}

/// The log files of each of `ls_ids` in `piece_dir`: `(file id, size)` by file id.
fn list_log_files(piece_dir: &Path, ls_ids: &[LsId]) -> Result<BTreeMap<LsId, Vec<(u64, u64)>>> {
    let mut log_files = BTreeMap::new();
    for ls_id in ls_ids {
        let dir = layout::ls_log_dir(piece_dir, *ls_id);
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(file_id) = layout::parse_log_file_name(&name) {
                let size = entry.metadata().map_err(io_err(&entry.path()))?.len();
                files.push((file_id, size));
            }
        }
        files.sort_unstable();
        log_files.insert(*ls_id, files);
    }
    Ok(log_files)
}

fn new_log_file(
    piece_dir: &Path,
    ls_id: LsId,
    file_id: u64,
    block_bytes: usize,
) -> Result<LogFileState> {
    let path = layout::ls_log_dir(piece_dir, ls_id).join(layout::log_file_name(file_id));
    let out = create_file(&path)?;
    let writer = BlockWriter::new(out, FileKind::Log, ls_id, file_id, None, block_bytes)
        .map_err(io_err(&path))?;
    Ok(LogFileState {
        writer,
        path,
        file_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_writer_refuses_an_entry_going_back_naming_the_log_directory() {
        let dir =
            std::env::temp_dir().join(format!("obrestore-archive-order-{}", std::process::id()));
        let mut config = GenerateConfig::new(&dir);
        config.log_file_bytes = 1;
        let mut writer = ArchiveWriter::new(dir.clone(), &config);
        writer.start_round(Scn(100)).unwrap();
        writer
            .append(Scn(200), 1001, 7, LogOp::Insert, b"a", b"1")
            .unwrap();
        // The next entry would open a new file (1 byte per file): the order holds across files.
        writer
            .append(Scn(200), 1001, 7, LogOp::Update, b"a", b"2")
            .unwrap();
        let err = writer
            .append(Scn(150), 1002, 7, LogOp::Insert, b"b", b"1")
            .unwrap_err()
            .to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(err.contains("logstream_1002"), "{err}");
        assert!(
            err.contains(
                "log entry scn 150 after scn 200: entries must come in non-decreasing SCN order"
            ),
            "{err}"
        );
    }
}

//! [`LogEntries`]: the entries of one log stream across a restore's pieces, streamed
//! one block at a time. Invariant: entries come out in SCN order or not at all: a
//! block or entry below what its piece already reached is a corruption error naming
//! the file, because the restore applies entries in the order they are read.

use std::io::BufReader;

use super::{ArchiveStore, LogFileRef};
use crate::block::{decode_log_entries, recycle_payload, BlockReader, LogEntry, RawBlock};
use crate::error::{BackupError, Result};
use crate::failpoint::SourceFile;
use crate::scn::Scn;

/// Iterator of [`ArchiveStore::log_entries`]: bounded memory, one block at a time.
pub struct LogEntries {
    pub(super) store: ArchiveStore,
    pub(super) files: std::vec::IntoIter<LogFileRef>,
    pub(super) current: Option<BlockReader<BufReader<SourceFile>>>,
    pub(super) pending: std::vec::IntoIter<LogEntry>,
    pub(super) to: Scn,
    /// Entries at or below this SCN were yielded from earlier pieces (or are before `from`).
    pub(super) floor: Scn,
    pub(super) current_piece: Option<(u64, u64)>,
    /// The highest SCN of the blocks read so far in the current piece.
    pub(super) piece_high: Scn,
    pub(super) last_yielded: Scn,
    pub(super) done: bool,
}

/// The entries of a block are in non-decreasing SCN order, inside the block's range.
fn check_entry_order(entries: &[LogEntry], block: &RawBlock) -> std::result::Result<(), String> {
    let mut previous = block.min_scn;
    for entry in entries {
        if entry.scn < previous || entry.scn > block.max_scn {
            return Err(format!(
                "log entries out of SCN order: scn {} after scn {} in a block of scn {}..={}",
                entry.scn.as_u64(),
                previous.as_u64(),
                block.min_scn.as_u64(),
                block.max_scn.as_u64()
            ));
        }
        previous = entry.scn;
    }
    Ok(())
}

impl LogEntries {
    fn advance(&mut self) -> Result<Option<LogEntry>> {
        loop {
            for entry in self.pending.by_ref() {
                if entry.scn > self.to {
                    self.done = true;
                    return Ok(None);
                }
                if entry.scn > self.floor {
                    self.last_yielded = entry.scn;
                    return Ok(Some(entry));
                }
            }
            if self.current.is_none() {
                match self.files.next() {
                    Some(file) => {
                        // Entries repeated by an overlapping later piece are skipped;
                        // equal SCNs across files of one piece are all kept.
                        let piece = (file.round_id, file.piece_id);
                        if self.current_piece != Some(piece) {
                            self.floor = self.floor.max(self.last_yielded);
                            self.current_piece = Some(piece);
                            self.piece_high = Scn(0);
                        }
                        self.current = Some(self.store.open_log_file(&file)?);
                    }
                    None => return Ok(None),
                }
            }
            let Some(reader) = self.current.as_mut() else {
                continue;
            };
            match reader.next_block()? {
                None => self.current = None,
                Some(block) => {
                    let corrupt = |reason: String| BackupError::Corrupt {
                        path: reader.path().to_path_buf(),
                        offset: block.offset,
                        reason,
                    };
                    // Entries are applied in the order read, so that order is checked:
                    // within a piece, no block starts below what an earlier one reached.
                    if block.min_scn > block.max_scn || block.min_scn < self.piece_high {
                        return Err(corrupt(format!(
                            "log entries out of SCN order: a block of scn {}..={} after scn {}",
                            block.min_scn.as_u64(),
                            block.max_scn.as_u64(),
                            self.piece_high.as_u64()
                        )));
                    }
                    self.piece_high = block.max_scn;
                    if block.max_scn <= self.floor {
                        continue;
                    }
                    let entries = decode_log_entries(&block).map_err(corrupt)?;
                    check_entry_order(&entries, &block).map_err(corrupt)?;
                    recycle_payload(block.payload);
                    self.pending = entries.into_iter();
                }
            }
        }
    }
}

impl Iterator for LogEntries {
    type Item = Result<LogEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.advance() {
            Ok(Some(entry)) => Some(Ok(entry)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(err) => {
                self.done = true;
                Some(Err(err))
            }
        }
    }
}

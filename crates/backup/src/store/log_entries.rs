//! [`LogEntries`]: the entries of one log stream across a restore's pieces, streamed
//! one block at a time. Invariant: entries come out in SCN order or not at all: a
//! block or entry below what its piece already reached is a corruption error naming
//! the file, because the restore applies entries in the order they are read.
//!
//! [`LogEntries::next_entry`] lends each entry from its block's payload (nothing copied
//! per entry; the restore's replay copies it once, into its batch); the `Iterator`
//! copies each out. A block's payload is recycled before the next block is read.

use std::io::BufReader;

use super::{ArchiveStore, LogFileRef};
use crate::block::{
    decode_log_entry_spans, recycle_payload, BlockReader, LogEntry, LogEntryRef, LogEntrySpan,
    RawBlock,
};
use crate::error::{BackupError, Result};
use crate::failpoint::SourceFile;
use crate::scn::Scn;

/// Iterator of [`ArchiveStore::log_entries`]: bounded memory, one block at a time.
pub struct LogEntries {
    pub(super) store: ArchiveStore,
    pub(super) files: std::vec::IntoIter<LogFileRef>,
    pub(super) current: Option<BlockReader<BufReader<SourceFile>>>,
    /// The block whose entries are being yielded, where they lie in it, and the next.
    pub(super) block: Option<RawBlock>,
    pub(super) spans: Vec<LogEntrySpan>,
    pub(super) next: usize,
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
fn check_entry_order(
    entries: &[LogEntrySpan],
    block: &RawBlock,
) -> std::result::Result<(), String> {
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
    /// The next entry, borrowed from its block; `None` after the last (or after an
    /// error, which is returned once).
    pub fn next_entry(&mut self) -> Option<Result<LogEntryRef<'_>>> {
        if self.done {
            return None;
        }
        match self.advance() {
            Ok(Some(index)) => {
                let payload = self.block.as_ref().map_or(&[][..], |block| &block.payload);
                Some(Ok(self.spans[index].entry(payload)))
            }
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

    /// Moves to the next entry to yield: its index in `spans`.
    fn advance(&mut self) -> Result<Option<usize>> {
        loop {
            while let Some(span) = self.spans.get(self.next) {
                let index = self.next;
                self.next += 1;
                if span.scn > self.to {
                    self.done = true;
                    return Ok(None);
                }
                if span.scn > self.floor {
                    self.last_yielded = span.scn;
                    return Ok(Some(index));
                }
            }
            // Every entry of the block was yielded: its buffer serves the next read.
            if let Some(block) = self.block.take() {
                recycle_payload(block.payload);
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
                    decode_log_entry_spans(&block, &mut self.spans).map_err(corrupt)?;
                    check_entry_order(&self.spans, &block).map_err(corrupt)?;
                    self.next = 0;
                    self.block = Some(block);
                }
            }
        }
    }
}

impl Iterator for LogEntries {
    type Item = Result<LogEntry>;

    /// [`LogEntries::next_entry`], copied out.
    fn next(&mut self) -> Option<Self::Item> {
        self.next_entry()
            .map(|entry| entry.map(|entry| entry.to_owned_entry()))
    }
}

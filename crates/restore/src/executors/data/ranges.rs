//! Splitting a log stream's data into row ranges by its macro blocks, so that
//! `Restore data L` has several sub-tasks even when all of L's tablets form one group.
//!
//! The macro range index lists every block of every data file with its first and last
//! row. The row space `(tablet_id, key)` is cut at blocks' first rows into ranges of about
//! equal stored bytes; a range's group reads, set by set in chain order, only the blocks
//! whose rows may fall in the range, and applies only the rows inside it. Every version of
//! a row (the FULL set's, then each INCREMENTAL's) is thus in one group and applied in
//! chain order, as a group of whole files does: the final version wins, and a group that
//! runs again after a crash writes the same rows in the same order, touching no row of
//! another group. Invariants: the ranges partition the row space; each block's bytes are
//! counted in exactly one group (the one holding its first row; a file's header and
//! footer go with its first block) and each tablet in exactly one (the one holding
//! `(tablet_id, empty key)`), so the parts of the restore job's progress add up to its
//! totals (the sizes of the data files, and the tablets).

use std::cmp::Ordering;
use std::collections::BTreeSet;

use obrestore_backup::block::{FILE_HEADER_LEN, FOOTER_LEN};
use obrestore_backup::{BackupError, DataFileRef, MacroBlockEntry, RowBound};
use serde::{Deserialize, Serialize};

use super::DataGroup;

/// Rows `[from, to)` by `(tablet_id, key)`; a missing bound is open.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowRange {
    pub from: Option<RowBound>,
    pub to: Option<RowBound>,
}

impl RowRange {
    /// Whether the row `(tablet_id, key)` is in the range.
    pub fn contains(&self, tablet_id: u64, key: &[u8]) -> bool {
        self.from.as_ref().map_or(true, |from| {
            from.cmp_row(tablet_id, key) != Ordering::Greater
        }) && self
            .to
            .as_ref()
            .map_or(true, |to| to.cmp_row(tablet_id, key) == Ordering::Greater)
    }

    /// Whether a block holding rows from `first` to `last` may hold rows of the range.
    fn overlaps(&self, first: &RowBound, last: &RowBound) -> bool {
        self.from.as_ref().map_or(true, |from| last >= from)
            && self.to.as_ref().map_or(true, |to| first < to)
    }
}

/// The blocks of one data file whose headers are at offsets in `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockSpan {
    pub set_id: u64,
    pub file_index: u64,
    pub from: u64,
    pub to: u64,
}

/// A block of the index with the set and file it belongs to.
struct IndexedBlock<'a> {
    set_id: u64,
    file_index: u64,
    entry: &'a MacroBlockEntry,
}

/// Whether every file has its blocks in the index (so the data can be split by ranges).
pub(super) fn indexed(files: &[(u64, DataFileRef)]) -> bool {
    files
        .iter()
        .all(|(_, file)| file.block_count == 0 || !file.blocks.is_empty())
}

/// Checks that a file's block entries describe the whole file: contiguous from the file
/// header to the footer, as many blocks and rows as the file entry says, each block's
/// first row not after its last.
fn check_blocks(file: &DataFileRef) -> Result<(), BackupError> {
    let bad = |reason: String| BackupError::BadMetadata {
        path: file.path.clone(),
        reason: format!("macro range index: {reason}"),
    };
    if file.blocks.len() as u64 != file.block_count {
        return Err(bad(format!(
            "{} block entries for {} blocks",
            file.blocks.len(),
            file.block_count
        )));
    }
    let mut offset = FILE_HEADER_LEN as u64;
    let mut rows = 0u64;
    for block in &file.blocks {
        if block.offset != offset || block.stored_bytes == 0 || block.first > block.last {
            return Err(bad(format!("bad block entry at offset {}", block.offset)));
        }
        offset = offset
            .checked_add(block.stored_bytes)
            .ok_or_else(|| bad("block sizes overflow".to_string()))?;
        rows = rows.saturating_add(block.row_count);
    }
    if offset.checked_add(FOOTER_LEN as u64) != Some(file.size_bytes) || rows != file.row_count {
        return Err(bad(
            "block entries do not add up to the file's size and rows".to_string(),
        ));
    }
    Ok(())
}

/// Cut points splitting `blocks` into at most `parts` ranges of about equal stored bytes:
/// blocks' first rows, strictly ascending and above the smallest first row, so every
/// range holds the first row of at least one block.
fn cut_points(blocks: &[IndexedBlock<'_>], parts: usize) -> Vec<RowBound> {
    let mut sorted: Vec<&MacroBlockEntry> = blocks.iter().map(|block| block.entry).collect();
    sorted.sort_by(|a, b| a.first.cmp(&b.first));
    let total: u64 = sorted.iter().map(|block| block.stored_bytes).sum();
    let share = total / parts.max(1) as u64;
    let mut cuts: Vec<RowBound> = Vec::new();
    let mut before = 0u64;
    for block in &sorted {
        let wanted = share.saturating_mul(cuts.len() as u64 + 1);
        if cuts.len() + 1 < parts && before >= wanted {
            let lower = cuts.last().or_else(|| sorted.first().map(|b| &b.first));
            if lower.is_some_and(|lower| block.first > *lower) {
                cuts.push(block.first.clone());
            }
        }
        before += block.stored_bytes;
    }
    cuts
}

/// L's data as at most `parts` range groups. `files` are L's data files with their set
/// ids, in apply order (chain order, then file order), every one with its blocks indexed.
///
/// # Errors
/// [`BackupError::BadMetadata`] for block entries that do not describe their file.
pub(super) fn range_groups(
    files: &[(u64, DataFileRef)],
    ls: u64,
    parts: usize,
) -> Result<Vec<DataGroup>, BackupError> {
    let mut blocks = Vec::new();
    let mut tablets = BTreeSet::new();
    for (set_id, file) in files {
        check_blocks(file)?;
        tablets.extend(file.tablet_ids.iter().copied());
        blocks.extend(file.blocks.iter().map(|entry| IndexedBlock {
            set_id: *set_id,
            file_index: file.file_index,
            entry,
        }));
    }
    if blocks.is_empty() {
        return Ok(Vec::new());
    }
    let cuts = cut_points(&blocks, parts);
    let bounds: Vec<Option<RowBound>> = std::iter::once(None)
        .chain(cuts.into_iter().map(Some))
        .chain(std::iter::once(None))
        .collect();
    let mut groups: Vec<DataGroup> = bounds
        .windows(2)
        .enumerate()
        .map(|(index, pair)| {
            let range = RowRange {
                from: pair[0].clone(),
                to: pair[1].clone(),
            };
            range_group(&blocks, &tablets, ls, index, range)
        })
        .collect();
    count_bytes(&mut groups, files);
    Ok(groups)
}

/// Adds each block's bytes to the group holding its first row, and the rest of each
/// file (header and footer, as [`check_blocks`] made sure) to the group of its first
/// block (the first group for a file without blocks).
fn count_bytes(groups: &mut [DataGroup], files: &[(u64, DataFileRef)]) {
    let owner = |groups: &[DataGroup], row: &RowBound| {
        groups
            .iter()
            .position(|group| {
                group
                    .range
                    .as_ref()
                    .is_some_and(|range| range.contains(row.tablet_id, &row.key))
            })
            .unwrap_or(0)
    };
    for (_, file) in files {
        let mut blocks_bytes = 0u64;
        for block in &file.blocks {
            let index = owner(groups, &block.first);
            if let Some(group) = groups.get_mut(index) {
                group.bytes += block.stored_bytes;
            }
            blocks_bytes += block.stored_bytes;
        }
        let index = file
            .blocks
            .first()
            .map_or(0, |block| owner(groups, &block.first));
        if let Some(group) = groups.get_mut(index) {
            group.bytes += file.size_bytes.saturating_sub(blocks_bytes);
        }
    }
}

/// The group of `range`: the spans of the blocks it overlaps (in apply order, adjacent
/// blocks of a file merged) and the tablets whose key space starts in it; its bytes are
/// counted by [`count_bytes`].
fn range_group(
    blocks: &[IndexedBlock<'_>],
    tablets: &BTreeSet<u64>,
    ls: u64,
    index: usize,
    range: RowRange,
) -> DataGroup {
    let mut spans: Vec<BlockSpan> = Vec::new();
    for block in blocks {
        let entry = block.entry;
        if !range.overlaps(&entry.first, &entry.last) {
            continue;
        }
        let end = entry.offset + entry.stored_bytes;
        match spans.last_mut() {
            Some(span)
                if span.set_id == block.set_id
                    && span.file_index == block.file_index
                    && span.to == entry.offset =>
            {
                span.to = end;
            }
            _ => spans.push(BlockSpan {
                set_id: block.set_id,
                file_index: block.file_index,
                from: entry.offset,
                to: end,
            }),
        }
    }
    let mut files: Vec<(u64, u64)> = spans
        .iter()
        .map(|span| (span.set_id, span.file_index))
        .collect();
    files.dedup();
    DataGroup {
        name: format!("Restore data {ls} range {}", index + 1),
        ls,
        tablets: tablets
            .iter()
            .copied()
            .filter(|tablet| range.contains(*tablet, &[]))
            .collect(),
        files,
        bytes: 0,
        range: Some(range),
        spans,
    }
}

#[cfg(test)]
mod tests;

//! Record decoding: the rows of a data block and the entries of a log block, checked
//! against the block's record count (and, for log entries, its SCN range and order)
//! through a bounds-checked [`Cursor`].

use std::ops::Range;

use super::reader::RawBlock;
use super::{le_u32, le_u64, DataRow, LogEntry, LogOp, MAX_BLOCK_PAYLOAD, MAX_KEY_LEN};
use crate::meta::TabletId;
use crate::scn::Scn;

/// A bounds-checked cursor over a decoded payload.
struct Cursor<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize) -> std::result::Result<&'a [u8], String> {
        let end = self
            .position
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or_else(|| {
                format!(
                    "record overruns the payload at payload byte {}",
                    self.position
                )
            })?;
        let slice = &self.bytes[self.position..end];
        self.position = end;
        Ok(slice)
    }

    fn u8(&mut self) -> std::result::Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(le_u32(self.take(4)?))
    }

    fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(le_u64(self.take(8)?))
    }

    fn slice(&mut self, limit: u32) -> std::result::Result<&'a [u8], String> {
        let range = self.range(limit)?;
        Ok(&self.bytes[range])
    }

    /// A length-prefixed field of at most `limit` bytes, as its range of the payload.
    fn range(&mut self, limit: u32) -> std::result::Result<Range<usize>, String> {
        let len = self.u32()?;
        if len > limit {
            return Err(format!("length {len} exceeds the limit {limit}"));
        }
        let start = self.position;
        self.take(len as usize)?;
        Ok(start..self.position)
    }

    fn finished(&self) -> bool {
        self.position == self.bytes.len()
    }
}

/// Smallest encoded data row (tablet + op + two empty lengths).
const MIN_DATA_ROW: usize = 8 + 1 + 4 + 4;
/// Smallest encoded log entry.
const MIN_LOG_ENTRY: usize = 8 + 8 + 1 + 4 + 4;

/// A row of a data block, borrowed from the block's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataRowRef<'a> {
    pub tablet_id: TabletId,
    pub key: &'a [u8],
    /// `None` is a delete tombstone (only in INCREMENTAL sets).
    pub value: Option<&'a [u8]>,
}

impl DataRowRef<'_> {
    /// An owned copy.
    pub fn to_owned_row(&self) -> DataRow {
        DataRow {
            tablet_id: self.tablet_id,
            key: self.key.to_vec(),
            value: self.value.map(<[u8]>::to_vec),
        }
    }
}

/// Decodes the rows of a data block payload without copying them: the whole payload is
/// checked before any row is returned.
///
/// # Errors
/// A reason string when the payload does not hold exactly `record_count` rows.
pub fn decode_data_row_refs(
    payload: &[u8],
    record_count: u32,
) -> std::result::Result<Vec<DataRowRef<'_>>, String> {
    let mut cursor = Cursor {
        bytes: payload,
        position: 0,
    };
    let mut rows = Vec::with_capacity((record_count as usize).min(payload.len() / MIN_DATA_ROW));
    for _ in 0..record_count {
        let tablet_id = cursor.u64()?;
        let op = cursor.u8()?;
        let key = cursor.slice(MAX_KEY_LEN)?;
        let value = cursor.slice(MAX_BLOCK_PAYLOAD)?;
        let value = match op {
            1 => Some(value),
            2 if value.is_empty() => None,
            2 => return Err("delete tombstone carries a value".to_string()),
            other => return Err(format!("unknown data row op {other}")),
        };
        rows.push(DataRowRef {
            tablet_id,
            key,
            value,
        });
    }
    if !cursor.finished() {
        return Err("payload has bytes after the last record".to_string());
    }
    Ok(rows)
}

/// Decodes the rows of a data block payload.
///
/// # Errors
/// A reason string when the payload does not hold exactly `record_count` rows.
pub fn decode_data_rows(
    payload: &[u8],
    record_count: u32,
) -> std::result::Result<Vec<DataRow>, String> {
    Ok(decode_data_row_refs(payload, record_count)?
        .iter()
        .map(DataRowRef::to_owned_row)
        .collect())
}

/// A log entry borrowed from its block's payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogEntryRef<'a> {
    pub scn: Scn,
    pub tablet_id: TabletId,
    pub op: LogOp,
    pub key: &'a [u8],
    /// Empty for [`LogOp::Delete`].
    pub value: &'a [u8],
}

impl LogEntryRef<'_> {
    /// An owned copy.
    pub fn to_owned_entry(&self) -> LogEntry {
        LogEntry {
            scn: self.scn,
            tablet_id: self.tablet_id,
            op: self.op,
            key: self.key.to_vec(),
            value: self.value.to_vec(),
        }
    }
}

/// Where one log entry lies in its block's payload: [`LogEntrySpan::entry`] borrows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogEntrySpan {
    pub(crate) scn: Scn,
    tablet_id: TabletId,
    op: LogOp,
    key: Range<usize>,
    value: Range<usize>,
}

impl LogEntrySpan {
    /// The entry, borrowed from `payload` (the payload it was decoded from).
    ///
    /// # Panics
    /// If `payload` is shorter than the one it was decoded from.
    pub(crate) fn entry<'a>(&self, payload: &'a [u8]) -> LogEntryRef<'a> {
        LogEntryRef {
            scn: self.scn,
            tablet_id: self.tablet_id,
            op: self.op,
            key: &payload[self.key.clone()],
            value: &payload[self.value.clone()],
        }
    }
}

/// Decodes the entries of a log block payload into `spans` (cleared first; a reused
/// vector allocates nothing per block once grown), checking SCN order and the header
/// range. Nothing is copied out of the payload.
///
/// # Errors
/// A reason string when the payload is malformed or out of order (`spans` then holds
/// the entries before the bad one).
pub(crate) fn decode_log_entry_spans(
    block: &RawBlock,
    spans: &mut Vec<LogEntrySpan>,
) -> std::result::Result<(), String> {
    let mut cursor = Cursor {
        bytes: &block.payload,
        position: 0,
    };
    spans.clear();
    // A hostile record count reserves no more than the payload can hold.
    spans.reserve((block.record_count as usize).min(block.payload.len() / MIN_LOG_ENTRY));
    for _ in 0..block.record_count {
        let scn = Scn(cursor.u64()?);
        let tablet_id = cursor.u64()?;
        let code = cursor.u8()?;
        let op = LogOp::from_code(code).ok_or_else(|| format!("unknown log op {code}"))?;
        let key = cursor.range(MAX_KEY_LEN)?;
        let value = cursor.range(MAX_BLOCK_PAYLOAD)?;
        if scn < block.min_scn || scn > block.max_scn {
            return Err(format!(
                "entry scn {} outside the block range",
                scn.as_u64()
            ));
        }
        if spans.last().is_some_and(|last| last.scn > scn) {
            return Err(format!("entry scn {} out of order", scn.as_u64()));
        }
        spans.push(LogEntrySpan {
            scn,
            tablet_id,
            op,
            key,
            value,
        });
    }
    if !cursor.finished() {
        return Err("payload has bytes after the last record".to_string());
    }
    Ok(())
}

/// Decodes the entries of a log block payload, checking SCN order and the header range
/// ([`decode_log_entry_spans`], then copied out).
///
/// # Errors
/// A reason string when the payload is malformed or out of order.
pub fn decode_log_entries(block: &RawBlock) -> std::result::Result<Vec<LogEntry>, String> {
    let mut spans = Vec::new();
    decode_log_entry_spans(block, &mut spans)?;
    Ok(spans
        .iter()
        .map(|span| span.entry(&block.payload).to_owned_entry())
        .collect())
}

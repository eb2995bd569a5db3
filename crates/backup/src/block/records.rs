//! Record decoding: the rows of a data block and the entries of a log block, checked
//! against the block's record count (and, for log entries, its SCN range and order)
//! through a bounds-checked [`Cursor`].

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

    fn bytes(&mut self, limit: u32) -> std::result::Result<Vec<u8>, String> {
        Ok(self.slice(limit)?.to_vec())
    }

    fn slice(&mut self, limit: u32) -> std::result::Result<&'a [u8], String> {
        let len = self.u32()?;
        if len > limit {
            return Err(format!("length {len} exceeds the limit {limit}"));
        }
        self.take(len as usize)
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

/// Decodes the entries of a log block payload, checking SCN order and the header range.
///
/// # Errors
/// A reason string when the payload is malformed or out of order.
pub fn decode_log_entries(block: &RawBlock) -> std::result::Result<Vec<LogEntry>, String> {
    let mut cursor = Cursor {
        bytes: &block.payload,
        position: 0,
    };
    let capacity = (block.record_count as usize).min(block.payload.len() / MIN_LOG_ENTRY);
    let mut entries: Vec<LogEntry> = Vec::with_capacity(capacity);
    for _ in 0..block.record_count {
        let scn = Scn(cursor.u64()?);
        let tablet_id = cursor.u64()?;
        let code = cursor.u8()?;
        let op = LogOp::from_code(code).ok_or_else(|| format!("unknown log op {code}"))?;
        let key = cursor.bytes(MAX_KEY_LEN)?;
        let value = cursor.bytes(MAX_BLOCK_PAYLOAD)?;
        if scn < block.min_scn || scn > block.max_scn {
            return Err(format!(
                "entry scn {} outside the block range",
                scn.as_u64()
            ));
        }
        if entries.last().is_some_and(|last| last.scn > scn) {
            return Err(format!("entry scn {} out of order", scn.as_u64()));
        }
        entries.push(LogEntry {
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
    Ok(entries)
}

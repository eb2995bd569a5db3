//! [`BlockWriter`]: streams records into a block file, sealing (and with a key,
//! encrypting) a block whenever the block size is reached, then the footer.

use std::io::{ErrorKind, Write};

use super::{
    block_aad, derive_nonce, FileHeader, FileKind, LogOp, BLOCK_FORMAT_VERSION, BLOCK_HEADER_LEN,
    BLOCK_MAGIC, FILE_HEADER_LEN, FLAG_ENCRYPTED, FOOTER_LEN, FOOTER_MAGIC, MAX_BLOCK_PAYLOAD,
    MAX_KEY_LEN,
};
use crate::crypto::{SetKey, TAG_LEN};
use crate::meta::{LsId, TabletId};
use crate::scn::Scn;

/// Counts of a finished file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStats {
    pub bytes: u64,
    pub blocks: u64,
    pub records: u64,
}

/// Streams records into a block file, sealing a block whenever `block_size` is reached.
pub struct BlockWriter<W: Write> {
    out: W,
    header_bytes: [u8; FILE_HEADER_LEN],
    key: Option<SetKey>,
    block_size: usize,
    buffer: Vec<u8>,
    block_records: u32,
    block_min_scn: u64,
    block_max_scn: u64,
    /// The SCN of the last log entry pushed (the floor of the next one).
    last_scn: Option<Scn>,
    stats: FileStats,
}

impl<W: Write> BlockWriter<W> {
    /// Writes the file header. With `key`, every payload is AES-256-GCM sealed.
    ///
    /// # Errors
    /// I/O errors of `out`.
    pub fn new(
        mut out: W,
        kind: FileKind,
        ls_id: LsId,
        file_no: u64,
        key: Option<SetKey>,
        block_size: usize,
    ) -> std::io::Result<Self> {
        let header = FileHeader {
            kind,
            version: BLOCK_FORMAT_VERSION,
            flags: if key.is_some() { FLAG_ENCRYPTED } else { 0 },
            ls_id,
            file_no,
        };
        let header_bytes = header.encode();
        out.write_all(&header_bytes)?;
        let block_size = block_size.clamp(4096, (MAX_BLOCK_PAYLOAD / 2) as usize);
        Ok(BlockWriter {
            out,
            header_bytes,
            key,
            block_size,
            buffer: Vec::with_capacity(block_size + 4096),
            block_records: 0,
            block_min_scn: 0,
            block_max_scn: 0,
            last_scn: None,
            stats: FileStats {
                bytes: FILE_HEADER_LEN as u64,
                ..FileStats::default()
            },
        })
    }

    /// Bytes written so far, including the current unsealed block.
    pub fn bytes_written(&self) -> u64 {
        self.stats.bytes + self.buffer.len() as u64
    }

    /// Counts of the blocks sealed so far (`bytes` includes the file header): the next
    /// block starts at offset `bytes`.
    pub fn sealed(&self) -> FileStats {
        self.stats
    }

    /// Appends a data row (`value == None` is a tombstone).
    ///
    /// # Errors
    /// I/O errors when a full block is flushed; `InvalidInput` for an oversized key/value.
    pub fn push_data_row(
        &mut self,
        tablet_id: TabletId,
        key: &[u8],
        value: Option<&[u8]>,
    ) -> std::io::Result<()> {
        check_lengths(key, value.unwrap_or_default())?;
        self.buffer.extend_from_slice(&tablet_id.to_le_bytes());
        self.buffer.push(if value.is_some() { 1 } else { 2 });
        put_bytes(&mut self.buffer, key);
        put_bytes(&mut self.buffer, value.unwrap_or_default());
        self.record_pushed(0)
    }

    /// Appends a log entry; entries must come in non-decreasing SCN order, across the
    /// blocks of the file, as readers require.
    ///
    /// # Errors
    /// As [`BlockWriter::push_data_row`]; `InvalidInput` (writing nothing) for an entry
    /// whose SCN is below the previous entry's.
    pub fn push_log_entry(
        &mut self,
        scn: Scn,
        tablet_id: TabletId,
        op: LogOp,
        key: &[u8],
        value: &[u8],
    ) -> std::io::Result<()> {
        check_lengths(key, value)?;
        if let Some(last) = self.last_scn.filter(|last| *last > scn) {
            return Err(std::io::Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "log entry scn {} after scn {}: entries must come in non-decreasing SCN order",
                    scn.as_u64(),
                    last.as_u64()
                ),
            ));
        }
        self.last_scn = Some(scn);
        self.buffer.extend_from_slice(&scn.as_u64().to_le_bytes());
        self.buffer.extend_from_slice(&tablet_id.to_le_bytes());
        self.buffer.push(op.code());
        put_bytes(&mut self.buffer, key);
        put_bytes(&mut self.buffer, value);
        self.record_pushed(scn.as_u64())
    }

    fn record_pushed(&mut self, scn: u64) -> std::io::Result<()> {
        if self.block_records == 0 {
            self.block_min_scn = scn;
        }
        self.block_max_scn = scn;
        self.block_records += 1;
        if self.buffer.len() >= self.block_size {
            self.flush_block()?;
        }
        Ok(())
    }

    fn flush_block(&mut self) -> std::io::Result<()> {
        if self.block_records == 0 {
            return Ok(());
        }
        let header = seal_block(
            &self.header_bytes,
            self.stats.bytes,
            self.key.as_ref(),
            BlockRange {
                records: self.block_records,
                min_scn: self.block_min_scn,
                max_scn: self.block_max_scn,
            },
            &mut self.buffer,
        );
        self.out.write_all(&header)?;
        self.out.write_all(&self.buffer)?;
        self.stats.bytes += (BLOCK_HEADER_LEN + self.buffer.len()) as u64;
        self.stats.blocks += 1;
        self.stats.records += u64::from(self.block_records);
        self.buffer.clear();
        self.block_records = 0;
        Ok(())
    }

    /// Seals the last block, writes the footer and flushes.
    ///
    /// # Errors
    /// I/O errors of the underlying writer.
    pub fn finish(mut self) -> std::io::Result<(FileStats, W)> {
        self.flush_block()?;
        let footer = encode_footer(self.stats.blocks, self.stats.records);
        self.out.write_all(&footer)?;
        self.out.flush()?;
        self.stats.bytes += FOOTER_LEN as u64;
        Ok((self.stats, self.out))
    }
}

/// The record count and SCN range a block header declares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct BlockRange {
    pub(super) records: u32,
    pub(super) min_scn: u64,
    pub(super) max_scn: u64,
}

/// Seals `payload` (plaintext in, stored bytes out: encrypted with `key`) as the block at
/// `offset` of the file whose header is `file_header`, and returns the block header with
/// its nonce and both CRCs.
pub(super) fn seal_block(
    file_header: &[u8; FILE_HEADER_LEN],
    offset: u64,
    key: Option<&SetKey>,
    range: BlockRange,
    payload: &mut Vec<u8>,
) -> [u8; BLOCK_HEADER_LEN] {
    let stored_len = payload.len() + if key.is_some() { TAG_LEN } else { 0 };
    let mut header = [0u8; BLOCK_HEADER_LEN];
    header[0..4].copy_from_slice(&BLOCK_MAGIC);
    header[4..8].copy_from_slice(&(stored_len as u32).to_le_bytes());
    header[8..12].copy_from_slice(&range.records.to_le_bytes());
    header[12..20].copy_from_slice(&range.min_scn.to_le_bytes());
    header[20..28].copy_from_slice(&range.max_scn.to_le_bytes());
    if let Some(key) = key {
        let nonce = derive_nonce(file_header, offset);
        header[28..40].copy_from_slice(&nonce);
        let aad = block_aad(file_header, offset, &header);
        key.seal(&nonce, &aad, payload);
    }
    let payload_crc = crc32fast::hash(payload);
    header[40..44].copy_from_slice(&payload_crc.to_le_bytes());
    let header_crc = crc32fast::hash(&header[0..44]);
    header[44..48].copy_from_slice(&header_crc.to_le_bytes());
    header
}

/// The footer of a file of `blocks` blocks and `records` records.
pub(super) fn encode_footer(blocks: u64, records: u64) -> [u8; FOOTER_LEN] {
    let mut footer = [0u8; FOOTER_LEN];
    footer[0..4].copy_from_slice(&FOOTER_MAGIC);
    footer[8..16].copy_from_slice(&blocks.to_le_bytes());
    footer[16..24].copy_from_slice(&records.to_le_bytes());
    let crc = crc32fast::hash(&footer[0..28]);
    footer[28..32].copy_from_slice(&crc.to_le_bytes());
    footer
}

fn check_lengths(key: &[u8], value: &[u8]) -> std::io::Result<()> {
    if key.len() > MAX_KEY_LEN as usize || value.len() > (MAX_BLOCK_PAYLOAD / 2) as usize {
        return Err(std::io::Error::new(
            ErrorKind::InvalidInput,
            "key or value too large for a block",
        ));
    }
    Ok(())
}

fn put_bytes(buffer: &mut Vec<u8>, bytes: &[u8]) {
    buffer.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    buffer.extend_from_slice(bytes);
}

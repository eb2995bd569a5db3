//! The versioned binary block format of data (`.obbak`) and log (`.obarc`) files.
//!
//! ```text
//! file   := file_header block* footer
//! header := magic[8] version:u16 flags:u16 ls_id:u64 file_no:u64 crc32(header[0..28]):u32   (32 bytes)
//! block  := "OBBL" stored_len:u32 records:u32 min_scn:u64 max_scn:u64 nonce[12]
//!           payload_crc:u32 header_crc:u32 payload[stored_len]                             (48 + n bytes)
//! footer := "OBFT" 0:u32 blocks:u64 records:u64 0:u32 crc32(footer[0..28]):u32              (32 bytes)
//! ```
//! All integers little-endian. `docs/backup-format.md` documents every byte, the record
//! encodings and the encryption. Readers hold one block in memory at a time, refuse
//! blocks larger than [`MAX_BLOCK_PAYLOAD`], and never panic on file contents.

use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::crypto::{SetKey, NONCE_LEN, TAG_LEN};
use crate::error::{BackupError, Result};
use crate::meta::{LsId, TabletId};
use crate::scn::Scn;

/// Version of the binary format written by this build.
pub const BLOCK_FORMAT_VERSION: u16 = 1;
/// Magic of a data file.
pub const DATA_MAGIC: [u8; 8] = *b"OBBKDATA";
/// Magic of an archive log file.
pub const LOG_MAGIC: [u8; 8] = *b"OBBKCLOG";
/// Magic of a block header.
pub const BLOCK_MAGIC: [u8; 4] = *b"OBBL";
/// Magic of the footer.
pub const FOOTER_MAGIC: [u8; 4] = *b"OBFT";
/// File header length.
pub const FILE_HEADER_LEN: usize = 32;
/// Block header length.
pub const BLOCK_HEADER_LEN: usize = 48;
/// Footer length.
pub const FOOTER_LEN: usize = 32;
/// Largest stored payload a reader accepts (a hostile length cannot allocate more).
pub const MAX_BLOCK_PAYLOAD: u32 = 64 * 1024 * 1024;
/// Largest key a record may carry.
pub const MAX_KEY_LEN: u32 = 64 * 1024;
/// File header flag: payloads are AES-256-GCM sealed.
pub const FLAG_ENCRYPTED: u16 = 1;

/// Which kind of file a block file is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `macro_block_data.<k>.obbak`: [`DataRow`] records.
    Data,
    /// `<file_id>.obarc`: [`LogEntry`] records.
    Log,
}

impl FileKind {
    fn magic(self) -> [u8; 8] {
        match self {
            FileKind::Data => DATA_MAGIC,
            FileKind::Log => LOG_MAGIC,
        }
    }
}

/// One row of a backup set data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRow {
    pub tablet_id: TabletId,
    pub key: Vec<u8>,
    /// `None` is a delete tombstone (only in INCREMENTAL sets).
    pub value: Option<Vec<u8>>,
}

/// Operation of an archived log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogOp {
    Insert,
    Update,
    Delete,
}

impl LogOp {
    fn code(self) -> u8 {
        match self {
            LogOp::Insert => 1,
            LogOp::Update => 2,
            LogOp::Delete => 3,
        }
    }

    fn from_code(code: u8) -> Option<LogOp> {
        match code {
            1 => Some(LogOp::Insert),
            2 => Some(LogOp::Update),
            3 => Some(LogOp::Delete),
            _ => None,
        }
    }
}

/// One archived redo entry of a log stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub scn: Scn,
    pub tablet_id: TabletId,
    pub op: LogOp,
    pub key: Vec<u8>,
    /// Empty for [`LogOp::Delete`].
    pub value: Vec<u8>,
}

/// The fixed header of a block file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub kind: FileKind,
    pub version: u16,
    pub flags: u16,
    pub ls_id: LsId,
    pub file_no: u64,
}

impl FileHeader {
    /// Whether payloads are encrypted.
    pub fn encrypted(&self) -> bool {
        self.flags & FLAG_ENCRYPTED != 0
    }

    fn encode(&self) -> [u8; FILE_HEADER_LEN] {
        let mut bytes = [0u8; FILE_HEADER_LEN];
        bytes[0..8].copy_from_slice(&self.kind.magic());
        bytes[8..10].copy_from_slice(&self.version.to_le_bytes());
        bytes[10..12].copy_from_slice(&self.flags.to_le_bytes());
        bytes[12..20].copy_from_slice(&self.ls_id.to_le_bytes());
        bytes[20..28].copy_from_slice(&self.file_no.to_le_bytes());
        let crc = crc32fast::hash(&bytes[0..28]);
        bytes[28..32].copy_from_slice(&crc.to_le_bytes());
        bytes
    }
}

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

    /// Appends a log entry; entries must come in non-decreasing SCN order.
    ///
    /// # Errors
    /// As [`BlockWriter::push_data_row`].
    pub fn push_log_entry(
        &mut self,
        scn: Scn,
        tablet_id: TabletId,
        op: LogOp,
        key: &[u8],
        value: &[u8],
    ) -> std::io::Result<()> {
        check_lengths(key, value)?;
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
        let offset = self.stats.bytes;
        let stored_len = self.buffer.len() + if self.key.is_some() { TAG_LEN } else { 0 };
        let mut header = [0u8; BLOCK_HEADER_LEN];
        header[0..4].copy_from_slice(&BLOCK_MAGIC);
        header[4..8].copy_from_slice(&(stored_len as u32).to_le_bytes());
        header[8..12].copy_from_slice(&self.block_records.to_le_bytes());
        header[12..20].copy_from_slice(&self.block_min_scn.to_le_bytes());
        header[20..28].copy_from_slice(&self.block_max_scn.to_le_bytes());
        if let Some(key) = &self.key {
            let nonce = derive_nonce(&self.header_bytes, offset);
            header[28..40].copy_from_slice(&nonce);
            let aad = block_aad(&self.header_bytes, offset, &header);
            key.seal(&nonce, &aad, &mut self.buffer);
        }
        let payload_crc = crc32fast::hash(&self.buffer);
        header[40..44].copy_from_slice(&payload_crc.to_le_bytes());
        let header_crc = crc32fast::hash(&header[0..44]);
        header[44..48].copy_from_slice(&header_crc.to_le_bytes());
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
        let mut footer = [0u8; FOOTER_LEN];
        footer[0..4].copy_from_slice(&FOOTER_MAGIC);
        footer[8..16].copy_from_slice(&self.stats.blocks.to_le_bytes());
        footer[16..24].copy_from_slice(&self.stats.records.to_le_bytes());
        let crc = crc32fast::hash(&footer[0..28]);
        footer[28..32].copy_from_slice(&crc.to_le_bytes());
        self.out.write_all(&footer)?;
        self.out.flush()?;
        self.stats.bytes += FOOTER_LEN as u64;
        Ok((self.stats, self.out))
    }
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

fn derive_nonce(file_header: &[u8; FILE_HEADER_LEN], offset: u64) -> [u8; NONCE_LEN] {
    let mut hasher = Sha256::new();
    hasher.update(b"obrestore block nonce v1");
    hasher.update(file_header);
    hasher.update(offset.to_le_bytes());
    let digest = hasher.finalize();
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&digest[..NONCE_LEN]);
    nonce
}

fn block_aad(
    file_header: &[u8; FILE_HEADER_LEN],
    offset: u64,
    block_header: &[u8; BLOCK_HEADER_LEN],
) -> [u8; 68] {
    let mut aad = [0u8; 68];
    aad[0..32].copy_from_slice(file_header);
    aad[32..40].copy_from_slice(&offset.to_le_bytes());
    aad[40..68].copy_from_slice(&block_header[0..28]);
    aad
}

/// A verified (and decrypted) block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBlock {
    /// Byte offset of the block header in the file.
    pub offset: u64,
    /// Bytes the block occupies on disk (header + stored payload).
    pub stored_bytes: u64,
    pub record_count: u32,
    pub min_scn: Scn,
    pub max_scn: Scn,
    /// Plaintext payload.
    pub payload: Vec<u8>,
}

/// Reads and verifies the blocks of one file, one at a time.
pub struct BlockReader<R: Read> {
    input: R,
    path: PathBuf,
    header: FileHeader,
    header_bytes: [u8; FILE_HEADER_LEN],
    key: Option<SetKey>,
    offset: u64,
    blocks: u64,
    records: u64,
    done: bool,
}

impl<R: Read> BlockReader<R> {
    /// Reads and checks the file header. `path` is only used in errors. A key is required
    /// for an encrypted file and ignored for a plain one.
    ///
    /// # Errors
    /// Truncated/corrupt header, wrong kind, unsupported version, missing key.
    pub fn new(mut input: R, path: &Path, expected: FileKind, key: Option<SetKey>) -> Result<Self> {
        let mut header_bytes = [0u8; FILE_HEADER_LEN];
        read_exact_at(&mut input, &mut header_bytes, path, 0, "file header")?;
        let corrupt = |reason: String| BackupError::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            reason,
        };
        let kind = if header_bytes[0..8] == DATA_MAGIC {
            FileKind::Data
        } else if header_bytes[0..8] == LOG_MAGIC {
            FileKind::Log
        } else {
            return Err(corrupt("bad file magic".to_string()));
        };
        let stored_crc = le_u32(&header_bytes[28..32]);
        let actual_crc = crc32fast::hash(&header_bytes[0..28]);
        if stored_crc != actual_crc {
            return Err(BackupError::ChecksumMismatch {
                path: path.to_path_buf(),
                offset: 0,
                what: "file header",
                expected: stored_crc,
                actual: actual_crc,
            });
        }
        let version = u16::from_le_bytes([header_bytes[8], header_bytes[9]]);
        if version != BLOCK_FORMAT_VERSION {
            return Err(BackupError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: u32::from(version),
                supported: u32::from(BLOCK_FORMAT_VERSION),
            });
        }
        if kind != expected {
            return Err(corrupt(format!(
                "file is a {kind:?} file, expected {expected:?}"
            )));
        }
        let header = FileHeader {
            kind,
            version,
            flags: u16::from_le_bytes([header_bytes[10], header_bytes[11]]),
            ls_id: le_u64(&header_bytes[12..20]),
            file_no: le_u64(&header_bytes[20..28]),
        };
        if header.flags & !FLAG_ENCRYPTED != 0 {
            return Err(corrupt(format!("unknown flags {:#x}", header.flags)));
        }
        if header.encrypted() && key.is_none() {
            return Err(BackupError::KeyRequired { set_id: 0 });
        }
        Ok(BlockReader {
            input,
            path: path.to_path_buf(),
            header,
            header_bytes,
            key: if header.encrypted() { key } else { None },
            offset: FILE_HEADER_LEN as u64,
            blocks: 0,
            records: 0,
            done: false,
        })
    }

    /// The file header.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// The file this reader reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the next block; `Ok(None)` after a valid footer.
    ///
    /// # Errors
    /// Truncation, checksum mismatch, decryption failure, oversized block, bad footer,
    /// trailing garbage; all naming the file and offset.
    pub fn next_block(&mut self) -> Result<Option<RawBlock>> {
        if self.done {
            return Ok(None);
        }
        let offset = self.offset;
        let mut magic = [0u8; 4];
        read_exact_at(
            &mut self.input,
            &mut magic,
            &self.path,
            offset,
            "block header (missing footer)",
        )?;
        if magic == FOOTER_MAGIC {
            self.read_footer(magic)?;
            return Ok(None);
        }
        if magic != BLOCK_MAGIC {
            return Err(self.corrupt(offset, "bad block magic".to_string()));
        }
        let mut header = [0u8; BLOCK_HEADER_LEN];
        header[0..4].copy_from_slice(&magic);
        read_exact_at(
            &mut self.input,
            &mut header[4..],
            &self.path,
            offset,
            "block header",
        )?;
        let stored_crc = le_u32(&header[44..48]);
        let actual_crc = crc32fast::hash(&header[0..44]);
        if stored_crc != actual_crc {
            return Err(self.checksum(offset, "block header", stored_crc, actual_crc));
        }
        let stored_len = le_u32(&header[4..8]);
        if stored_len > MAX_BLOCK_PAYLOAD {
            return Err(self.corrupt(
                offset,
                format!(
                    "block payload of {stored_len} bytes exceeds the limit {MAX_BLOCK_PAYLOAD}"
                ),
            ));
        }
        // `stored_len` is bounded by MAX_BLOCK_PAYLOAD above.
        let mut payload = Vec::with_capacity(stored_len as usize);
        let payload_offset = offset + BLOCK_HEADER_LEN as u64;
        let read = (&mut self.input)
            .take(u64::from(stored_len))
            .read_to_end(&mut payload)
            .map_err(|err| BackupError::io(&self.path, err))?;
        if read != stored_len as usize {
            return Err(BackupError::Truncated {
                path: self.path.clone(),
                offset: payload_offset,
                reason: format!("block payload has {read} of {stored_len} bytes"),
            });
        }
        let payload_crc = crc32fast::hash(&payload);
        let expected_payload_crc = le_u32(&header[40..44]);
        if payload_crc != expected_payload_crc {
            return Err(self.checksum(offset, "block payload", expected_payload_crc, payload_crc));
        }
        if let Some(key) = &self.key {
            let mut nonce = [0u8; NONCE_LEN];
            nonce.copy_from_slice(&header[28..40]);
            let aad = block_aad(&self.header_bytes, offset, &header);
            if !key.open(&nonce, &aad, &mut payload) {
                return Err(BackupError::DecryptFailed {
                    path: self.path.clone(),
                    offset,
                });
            }
        }
        let record_count = le_u32(&header[8..12]);
        self.offset = payload_offset + u64::from(stored_len);
        self.blocks += 1;
        self.records += u64::from(record_count);
        Ok(Some(RawBlock {
            offset,
            stored_bytes: BLOCK_HEADER_LEN as u64 + u64::from(stored_len),
            record_count,
            min_scn: Scn(le_u64(&header[12..20])),
            max_scn: Scn(le_u64(&header[20..28])),
            payload,
        }))
    }

    fn read_footer(&mut self, magic: [u8; 4]) -> Result<()> {
        let offset = self.offset;
        let mut footer = [0u8; FOOTER_LEN];
        footer[0..4].copy_from_slice(&magic);
        read_exact_at(
            &mut self.input,
            &mut footer[4..],
            &self.path,
            offset,
            "footer",
        )?;
        let stored_crc = le_u32(&footer[28..32]);
        let actual_crc = crc32fast::hash(&footer[0..28]);
        if stored_crc != actual_crc {
            return Err(self.checksum(offset, "footer", stored_crc, actual_crc));
        }
        let blocks = le_u64(&footer[8..16]);
        let records = le_u64(&footer[16..24]);
        if blocks != self.blocks || records != self.records {
            return Err(self.corrupt(
                offset,
                format!(
                    "footer counts {blocks} blocks/{records} records, file has {}/{}",
                    self.blocks, self.records
                ),
            ));
        }
        let mut probe = [0u8; 1];
        loop {
            match self.input.read(&mut probe) {
                Ok(0) => break,
                Ok(_) => {
                    return Err(self.corrupt(
                        offset + FOOTER_LEN as u64,
                        "trailing bytes after footer".to_string(),
                    ))
                }
                Err(err) if err.kind() == ErrorKind::Interrupted => continue,
                Err(err) => return Err(BackupError::io(&self.path, err)),
            }
        }
        self.offset += FOOTER_LEN as u64;
        self.done = true;
        Ok(())
    }

    fn corrupt(&self, offset: u64, reason: String) -> BackupError {
        BackupError::Corrupt {
            path: self.path.clone(),
            offset,
            reason,
        }
    }

    fn checksum(&self, offset: u64, what: &'static str, expected: u32, actual: u32) -> BackupError {
        BackupError::ChecksumMismatch {
            path: self.path.clone(),
            offset,
            what,
            expected,
            actual,
        }
    }
}

fn read_exact_at<R: Read>(
    input: &mut R,
    buf: &mut [u8],
    path: &Path,
    offset: u64,
    what: &str,
) -> Result<()> {
    input.read_exact(buf).map_err(|err| {
        if err.kind() == ErrorKind::UnexpectedEof {
            BackupError::Truncated {
                path: path.to_path_buf(),
                offset,
                reason: format!("file ends inside the {what}"),
            }
        } else {
            BackupError::io(path, err)
        }
    })
}

fn le_u32(bytes: &[u8]) -> u32 {
    let mut array = [0u8; 4];
    array.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(array)
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut array = [0u8; 8];
    array.copy_from_slice(&bytes[..8]);
    u64::from_le_bytes(array)
}

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

/// Parses a whole data file held in memory (for fuzzing and tools).
///
/// # Errors
/// Any format error, as the streaming reader reports it.
pub fn parse_data_file(bytes: &[u8], key: Option<SetKey>) -> Result<Vec<DataRow>> {
    let path = Path::new("<memory>");
    let mut reader = BlockReader::new(bytes, path, FileKind::Data, key)?;
    let mut rows = Vec::new();
    while let Some(block) = reader.next_block()? {
        let decoded = decode_data_rows(&block.payload, block.record_count).map_err(|reason| {
            BackupError::Corrupt {
                path: path.to_path_buf(),
                offset: block.offset,
                reason,
            }
        })?;
        rows.extend(decoded);
    }
    Ok(rows)
}

/// Parses a whole log file held in memory (for fuzzing and tools).
///
/// # Errors
/// Any format error, as the streaming reader reports it.
pub fn parse_log_file(bytes: &[u8]) -> Result<Vec<LogEntry>> {
    let path = Path::new("<memory>");
    let mut reader = BlockReader::new(bytes, path, FileKind::Log, None)?;
    let mut entries = Vec::new();
    while let Some(block) = reader.next_block()? {
        let decoded = decode_log_entries(&block).map_err(|reason| BackupError::Corrupt {
            path: path.to_path_buf(),
            offset: block.offset,
            reason,
        })?;
        entries.extend(decoded);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::new_encryption;

    fn sample_log() -> Vec<u8> {
        let mut writer = BlockWriter::new(Vec::new(), FileKind::Log, 1001, 1, None, 4096).unwrap();
        for i in 0..200u64 {
            let op = if i % 3 == 0 {
                LogOp::Delete
            } else {
                LogOp::Insert
            };
            let value = if op == LogOp::Delete {
                Vec::new()
            } else {
                vec![i as u8; 50]
            };
            writer
                .push_log_entry(Scn(1000 + i), 7, op, &i.to_be_bytes(), &value)
                .unwrap();
        }
        let (stats, bytes) = writer.finish().unwrap();
        assert_eq!(stats.bytes, bytes.len() as u64);
        assert!(stats.blocks > 1);
        bytes
    }

    #[test]
    fn log_file_round_trips_and_every_truncation_is_an_error() {
        let bytes = sample_log();
        let entries = parse_log_file(&bytes).unwrap();
        assert_eq!(entries.len(), 200);
        assert_eq!(entries[3].op, LogOp::Delete);
        assert_eq!(entries[4].value, vec![4u8; 50]);
        for cut in 0..bytes.len() {
            assert!(parse_log_file(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extended = bytes.clone();
        extended.push(0);
        assert!(parse_log_file(&extended).is_err());
    }

    #[test]
    fn every_flipped_byte_is_detected() {
        let bytes = sample_log();
        for position in (0..bytes.len()).step_by(7) {
            let mut flipped = bytes.clone();
            flipped[position] ^= 0x40;
            assert!(parse_log_file(&flipped).is_err(), "flip at {position}");
        }
    }

    #[test]
    fn encrypted_data_needs_the_key() {
        let (_, key) = new_encryption("pw", [1; 16], 10);
        let mut writer =
            BlockWriter::new(Vec::new(), FileKind::Data, 1, 0, Some(key.clone()), 4096).unwrap();
        writer.push_data_row(5, b"k1", Some(b"v1")).unwrap();
        writer.push_data_row(5, b"k2", None).unwrap();
        let (_, bytes) = writer.finish().unwrap();
        assert!(!bytes.windows(2).any(|w| w == b"v1"));
        let rows = parse_data_file(&bytes, Some(key)).unwrap();
        assert_eq!(rows[0].value.as_deref(), Some(&b"v1"[..]));
        assert_eq!(rows[1].value, None);
        assert!(matches!(
            parse_data_file(&bytes, None),
            Err(BackupError::KeyRequired { .. })
        ));
        let (_, other) = new_encryption("other", [1; 16], 10);
        assert!(matches!(
            parse_data_file(&bytes, Some(other)),
            Err(BackupError::DecryptFailed { offset: 32, .. })
        ));
    }

    #[test]
    fn random_mutations_never_panic() {
        use rand::{Rng, SeedableRng};
        let original = sample_log();
        let (_, key) = new_encryption("pw", [3; 16], 10);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..2000 {
            let mut bytes = original.clone();
            for _ in 0..rng.gen_range(1..8) {
                let position = rng.gen_range(0..bytes.len());
                bytes[position] = rng.gen();
            }
            if rng.gen_bool(0.3) {
                bytes.truncate(rng.gen_range(0..bytes.len()));
            }
            // Either an error or (for mutations that cancel out) a parse; never a panic.
            let _ = parse_log_file(&bytes);
            let _ = parse_data_file(&bytes, Some(key.clone()));
        }
    }

    #[test]
    fn huge_length_field_is_refused_without_allocating() {
        let mut bytes = sample_log();
        let offset = FILE_HEADER_LEN;
        bytes[offset + 4..offset + 8].copy_from_slice(&u32::MAX.to_le_bytes());
        let crc = crc32fast::hash(&bytes[offset..offset + 44]);
        bytes[offset + 44..offset + 48].copy_from_slice(&crc.to_le_bytes());
        let err = parse_log_file(&bytes).unwrap_err();
        assert!(err.to_string().contains("exceeds the limit"), "{err}");
    }
}

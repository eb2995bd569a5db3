//! [`BlockReader`]: reads and verifies the blocks of one file, one at a time (header
//! and payload CRCs, decryption, the size limit, the footer's counts, nothing after it).

use std::cell::Cell;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{
    block_aad, le_u32, le_u64, FileHeader, FileKind, BLOCK_FORMAT_VERSION, BLOCK_HEADER_LEN,
    BLOCK_MAGIC, DATA_MAGIC, FILE_HEADER_LEN, FLAG_ENCRYPTED, FOOTER_LEN, FOOTER_MAGIC, LOG_MAGIC,
    MAX_BLOCK_PAYLOAD,
};
use crate::crypto::{SetKey, NONCE_LEN};
use crate::error::{BackupError, Result};
use crate::scn::Scn;

/// The most a reader reserves for a payload before its bytes arrive (the generator's
/// blocks are 2 MiB).
const PAYLOAD_PREALLOCATION: usize = 4 << 20;

/// The largest payload buffer kept for reuse by [`recycle_payload`] (one per thread).
const SPARE_PAYLOAD_MAX: usize = 2 * PAYLOAD_PREALLOCATION;

thread_local! {
    /// A payload buffer handed back by [`recycle_payload`], the next block read on this
    /// thread reads into it: its pages are faulted in and zeroed once, not per block.
    static SPARE_PAYLOAD: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// Hands back the payload of a block the caller is done with, so that the next block
/// read on this thread reuses its buffer (one buffer a thread, at most
/// [`SPARE_PAYLOAD_MAX`] bytes of capacity; a smaller or larger one is dropped).
pub fn recycle_payload(payload: Vec<u8>) {
    if payload.capacity() > SPARE_PAYLOAD_MAX {
        return;
    }
    SPARE_PAYLOAD.with(|spare| {
        let kept = spare.take();
        spare.set(if payload.capacity() >= kept.capacity() {
            payload
        } else {
            kept
        });
    });
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
        let Some(header) = self.read_block_header(offset)? else {
            return Ok(None);
        };
        let stored_len = le_u32(&header[4..8]);
        let payload = self.read_payload(offset, &header, stored_len)?;
        let record_count = le_u32(&header[8..12]);
        self.offset = offset + BLOCK_HEADER_LEN as u64 + u64::from(stored_len);
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

    /// The verified header of the block at `offset`, or `None` when the footer is there
    /// (then read and checked).
    fn read_block_header(&mut self, offset: u64) -> Result<Option<[u8; BLOCK_HEADER_LEN]>> {
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
        Ok(Some(header))
    }

    /// The plaintext payload of `stored_len` bytes after the block header `header` at
    /// `offset`: size-limited, CRC-checked, then decrypted with the file's key.
    fn read_payload(
        &mut self,
        offset: u64,
        header: &[u8; BLOCK_HEADER_LEN],
        stored_len: u32,
    ) -> Result<Vec<u8>> {
        if stored_len > MAX_BLOCK_PAYLOAD {
            return Err(self.corrupt(
                offset,
                format!(
                    "block payload of {stored_len} bytes exceeds the limit {MAX_BLOCK_PAYLOAD}"
                ),
            ));
        }
        // The length is not trusted with memory either: the buffer grows as bytes arrive,
        // never more than PAYLOAD_PREALLOCATION past them (a header claiming 64 MiB in
        // front of a few bytes gets no more). A recycled buffer keeps its length, so only
        // its growth is zeroed and the reads go straight into it.
        let want = stored_len as usize;
        let mut payload = SPARE_PAYLOAD.with(Cell::take);
        let mut filled = 0;
        while filled < want {
            let end = want.min(filled + PAYLOAD_PREALLOCATION);
            if payload.len() < end {
                payload.resize(end, 0);
            }
            match self.input.read(&mut payload[filled..end]) {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(err) if err.kind() == ErrorKind::Interrupted => {}
                Err(err) => return Err(BackupError::io(&self.path, err)),
            }
        }
        payload.truncate(filled);
        if filled != want {
            return Err(BackupError::Truncated {
                path: self.path.clone(),
                offset: offset + BLOCK_HEADER_LEN as u64,
                reason: format!("block payload has {filled} of {stored_len} bytes"),
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
            let aad = block_aad(&self.header_bytes, offset, header);
            if !key.open(&nonce, &aad, &mut payload) {
                return Err(BackupError::DecryptFailed {
                    path: self.path.clone(),
                    offset,
                });
            }
        }
        Ok(payload)
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

impl<R: Read + Seek> BlockReader<R> {
    /// Continues at the block whose header is at `offset`, a block boundary named by
    /// another source (the macro range index). Blocks are verified as ever; a reader
    /// moved this way cannot check the footer's counts, so it must not be read up to the
    /// footer (the counts would not match).
    ///
    /// # Errors
    /// An offset inside the file header; a failed seek.
    pub fn seek_to_block(&mut self, offset: u64) -> Result<()> {
        if offset < FILE_HEADER_LEN as u64 {
            return Err(self.corrupt(offset, "block offset inside the file header".to_string()));
        }
        self.input
            .seek(SeekFrom::Start(offset))
            .map_err(|err| BackupError::io(&self.path, err))?;
        self.offset = offset;
        Ok(())
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

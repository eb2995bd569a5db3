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

//!
//! `writer.rs` writes a file, `reader.rs` reads and verifies one, `records.rs` decodes
//! the records of a verified block; this file holds the constants, the record types and
//! the file header they share.

#[cfg(feature = "fuzzing")]
pub mod forge;
mod reader;
mod records;
mod writer;

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::crypto::{SetKey, NONCE_LEN};
use crate::error::{BackupError, Result};
use crate::meta::{LsId, TabletId};
use crate::scn::Scn;

pub use reader::{recycle_payload, BlockReader, RawBlock};
pub use records::{
    decode_data_row_refs, decode_data_rows, decode_log_entries, DataRowRef, LogEntryRef,
};
pub(crate) use records::{decode_log_entry_spans, LogEntrySpan};
pub use writer::{BlockWriter, FileStats};

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
    fn a_recycled_payload_buffer_holds_exactly_the_next_block() {
        let bytes = sample_log();
        let expected = parse_log_file(&bytes).unwrap();
        // Before every block the thread's spare buffer is a longer one full of junk: the
        // block read into it holds its own bytes and nothing after them.
        let junk = || recycle_payload(vec![0xAB; 64 << 10]);
        let path = Path::new("<memory>");
        let mut reader = BlockReader::new(&bytes[..], path, FileKind::Log, None).unwrap();
        let mut entries = Vec::new();
        junk();
        while let Some(block) = reader.next_block().unwrap() {
            entries.extend(decode_log_entries(&block).unwrap());
            recycle_payload(block.payload);
            junk();
        }
        assert_eq!(entries, expected);
        // A file cut inside a payload is still an error when the buffer is longer.
        for cut in (FILE_HEADER_LEN + BLOCK_HEADER_LEN + 1..bytes.len()).step_by(97) {
            junk();
            assert!(parse_log_file(&bytes[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn the_writer_refuses_a_log_entry_going_back_even_across_blocks() {
        let mut writer = BlockWriter::new(Vec::new(), FileKind::Log, 1001, 1, None, 4096).unwrap();
        for i in 0..200u64 {
            writer
                .push_log_entry(
                    Scn(1000 + i / 2),
                    7,
                    LogOp::Insert,
                    &i.to_be_bytes(),
                    &[0; 50],
                )
                .unwrap();
        }
        // Entry 199 sealed blocks behind it; an entry below its SCN is refused, not written.
        let err = writer
            .push_log_entry(Scn(1000), 7, LogOp::Insert, b"k", b"v")
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
        assert!(
            err.to_string().contains(
                "log entry scn 1000 after scn 1099: entries must come in non-decreasing SCN order"
            ),
            "{err}"
        );
        // An equal SCN is fine, and the file holds exactly the entries accepted.
        writer
            .push_log_entry(Scn(1099), 7, LogOp::Delete, b"k", b"")
            .unwrap();
        let (stats, bytes) = writer.finish().unwrap();
        assert!(stats.blocks > 1);
        let entries = parse_log_file(&bytes).unwrap();
        assert_eq!(entries.len(), 201);
        assert!(entries.windows(2).all(|pair| pair[0].scn <= pair[1].scn));
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

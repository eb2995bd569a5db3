//! The bodies of the fuzz targets in `fuzz/` (cargo feature `fuzzing`): one function per
//! parser of backup bytes, each taking the fuzzer's bytes and returning nothing. A body
//! must never panic, abort or run away; every error is an expected outcome.
//!
//! Mutations must reach the decoders, not die at a checksum: the record targets forge a
//! valid block (and AES-GCM seal) around the fuzzed payload, `block_reader` repairs
//! every CRC it can find ([`crate::block::forge`]), and metadata targets wrap the fuzzed
//! body into a valid envelope of its kind. The filesystem targets lay the fuzzed listing
//! and files out in a scratch directory and read them through the real stores.
//!
//! The bodies live here, not in `fuzz/`, so `cargo test` runs every one over the seed
//! corpus (`tests/fuzz_bodies.rs`) and CI compiles them without cargo-fuzz; [`seeds`]
//! derives each target's inputs from a generated backup.

mod fs_targets;
pub mod seeds;

use std::io::Read;
use std::path::Path;
use std::sync::OnceLock;

use crate::block::forge::{forge_file, repair_checksums, ForgedBlock};
use crate::block::{parse_data_file, parse_log_file, BlockReader, FileKind};
use crate::crypto::{self, SetKey};
use crate::meta::{
    parse_meta, BackupSetInfo, CheckpointInfo, EncryptionInfo, FormatInfo, ListingMarker,
    LsAttrInfo, MacroRangeIndex, MetaBody, PieceInfo, TenantArchivePieceInfos,
    TenantBackupSetInfos, META_MAGIC, META_VERSION,
};
use crate::scn::Scn;

pub use fs_targets::{log_entries, log_file_list, macro_range_index, piece_listing, set_listing};

/// A fuzz target: its name (the binary in `fuzz/`, the corpus directory) and its body.
pub type Target = (&'static str, fn(&[u8]));

/// Every target, by name.
pub const TARGETS: &[Target] = &[
    ("block_parser", block_parser),
    ("block_records", block_records),
    ("block_records_encrypted", block_records_encrypted),
    ("block_reader", block_reader),
    ("meta_parser", meta_parser),
    ("meta_bodies", meta_bodies),
    ("set_listing", set_listing),
    ("piece_listing", piece_listing),
    ("macro_range_index", macro_range_index),
    ("log_file_list", log_file_list),
    ("log_entries", log_entries),
    ("password_check", password_check),
];

/// The body of the target called `name`.
pub fn target(name: &str) -> Option<fn(&[u8])> {
    TARGETS
        .iter()
        .find(|(target, _)| *target == name)
        .map(|(_, body)| *body)
}

/// The password of the fuzzing key (not a secret: it seals forged blocks only).
pub const FUZZ_PASSWORD: &str = "obrestore-fuzz";

/// The key forged encrypted blocks are sealed with (PBKDF2 with one iteration: cheap).
pub fn fuzz_key() -> &'static SetKey {
    static KEY: OnceLock<SetKey> = OnceLock::new();
    KEY.get_or_init(|| crypto::new_encryption(FUZZ_PASSWORD, [0x5a; 16], 1).1)
}

/// Reads the fuzzer's bytes front to back; missing bytes read as zero.
pub(crate) struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Input<'a> {
        Input { bytes }
    }

    pub(crate) fn take(&mut self, len: usize) -> &'a [u8] {
        let (head, tail) = self.bytes.split_at(len.min(self.bytes.len()));
        self.bytes = tail;
        head
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut array = [0u8; N];
        let head = self.take(N);
        array[..head.len()].copy_from_slice(head);
        array
    }

    pub(crate) fn u8(&mut self) -> u8 {
        self.array::<1>()[0]
    }

    pub(crate) fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }

    pub(crate) fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.array())
    }

    pub(crate) fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    pub(crate) fn rest_is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    pub(crate) fn rest(self) -> &'a [u8] {
        self.bytes
    }

    /// The bytes up to the next NUL (consumed), or all that is left.
    pub(crate) fn until_nul(&mut self) -> &'a [u8] {
        match self.bytes.iter().position(|byte| *byte == 0) {
            Some(at) => {
                let head = &self.bytes[..at];
                self.bytes = &self.bytes[at + 1..];
                head
            }
            None => self.take(self.bytes.len()),
        }
    }
}

/// Encodes one forged block as the record targets read it:
/// `kind:u8 (0 data, 1 log) records:u32 min_scn:u64 max_scn:u64 payload`.
pub fn encode_block_input(kind: FileKind, block: &ForgedBlock) -> Vec<u8> {
    let mut bytes = vec![u8::from(kind == FileKind::Log)];
    bytes.extend_from_slice(&block.record_count.to_le_bytes());
    bytes.extend_from_slice(&block.min_scn.as_u64().to_le_bytes());
    bytes.extend_from_slice(&block.max_scn.as_u64().to_le_bytes());
    bytes.extend_from_slice(&block.payload);
    bytes
}

fn decode_block_input(data: &[u8]) -> (FileKind, ForgedBlock) {
    let mut input = Input::new(data);
    let kind = if input.u8() & 1 == 1 {
        FileKind::Log
    } else {
        FileKind::Data
    };
    let record_count = input.u32();
    let min_scn = Scn(input.u64());
    let max_scn = Scn(input.u64());
    let block = ForgedBlock {
        record_count,
        min_scn,
        max_scn,
        payload: input.rest().to_vec(),
    };
    (kind, block)
}

/// Raw bytes as a whole data file (plain and encrypted) and as a log file.
pub fn block_parser(data: &[u8]) {
    let _ = parse_log_file(data);
    let _ = parse_data_file(data, None);
    let _ = parse_data_file(data, Some(fuzz_key().clone()));
}

/// Block records after the checksum: the fuzzed payload in a valid plain block.
pub fn block_records(data: &[u8]) {
    let (kind, block) = decode_block_input(data);
    let file = forge_file(kind, 1001, 1, None, &[block]);
    match kind {
        FileKind::Data => drop(parse_data_file(&file, None)),
        FileKind::Log => drop(parse_log_file(&file)),
    }
}

/// Block records after decryption: the fuzzed payload sealed into a valid encrypted
/// data block, so it reaches the row decoder through AES-GCM.
pub fn block_records_encrypted(data: &[u8]) {
    let (_, block) = decode_block_input(data);
    let file = forge_file(FileKind::Data, 1001, 1, Some(fuzz_key()), &[block]);
    let _ = parse_data_file(&file, Some(fuzz_key().clone()));
}

/// A reader that hands out at most `chunk` bytes a call, as a slow storage would.
struct Chunked<'a> {
    bytes: &'a [u8],
    chunk: usize,
}

impl Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let len = buf.len().min(self.chunk).min(self.bytes.len());
        buf[..len].copy_from_slice(&self.bytes[..len]);
        self.bytes = &self.bytes[len..];
        Ok(len)
    }
}

/// The streaming block reader over a whole file whose CRCs were repaired:
/// `flags:u8 (bit 0 log file, bit 1 with the fuzz key) chunk:u8 file`.
pub fn block_reader(data: &[u8]) {
    let mut input = Input::new(data);
    let flags = input.u8();
    let chunk = usize::from(input.u8()).max(1);
    let mut file = input.rest().to_vec();
    repair_checksums(&mut file);
    let kind = if flags & 1 == 1 {
        FileKind::Log
    } else {
        FileKind::Data
    };
    let key = (flags & 2 == 2).then(|| fuzz_key().clone());
    let source = Chunked {
        bytes: &file,
        chunk,
    };
    let Ok(mut reader) = BlockReader::new(source, Path::new("fuzz"), kind, key) else {
        return;
    };
    while let Ok(Some(_)) = reader.next_block() {}
}

/// Raw bytes as every kind of metadata file, and as listing names.
pub fn meta_parser(data: &[u8]) {
    let path = Path::new("fuzz.obbak");
    let _ = parse_meta::<FormatInfo>(data, path);
    let _ = parse_meta::<BackupSetInfo>(data, path);
    let _ = parse_meta::<TenantBackupSetInfos>(data, path);
    let _ = parse_meta::<LsAttrInfo>(data, path);
    let _ = parse_meta::<MacroRangeIndex>(data, path);
    let _ = parse_meta::<ListingMarker>(data, path);
    let _ = parse_meta::<PieceInfo>(data, path);
    let _ = parse_meta::<TenantArchivePieceInfos>(data, path);
    let _ = parse_meta::<CheckpointInfo>(data, path);
    let name = String::from_utf8_lossy(data);
    let _ = crate::layout::parse_set_marker(&name);
    let _ = crate::layout::parse_piece_marker(&name);
    let _ = crate::layout::parse_checkpoint_name(&name);
    let _ = crate::layout::parse_log_file_name(&name);
    let _ = crate::layout::parse_ls_dir_name(&name);
}

/// The metadata kinds of [`meta_bodies`], by selector.
pub const META_KINDS: &[&str] = &[
    FormatInfo::KIND,
    BackupSetInfo::KIND,
    TenantBackupSetInfos::KIND,
    LsAttrInfo::KIND,
    MacroRangeIndex::KIND,
    ListingMarker::KIND,
    PieceInfo::KIND,
    TenantArchivePieceInfos::KIND,
    CheckpointInfo::KIND,
];

/// `body` (any bytes) inside a valid envelope of `kind`.
pub(crate) fn envelope(kind: &str, body: &[u8]) -> Vec<u8> {
    let mut bytes =
        format!(r#"{{"magic":"{META_MAGIC}","version":{META_VERSION},"kind":"{kind}","body":"#)
            .into_bytes();
    bytes.extend_from_slice(body);
    bytes.push(b'}');
    bytes
}

/// A metadata body inside a valid envelope, so it reaches the typed decoding:
/// `kind:u8 (index into META_KINDS) body`.
pub fn meta_bodies(data: &[u8]) {
    let mut input = Input::new(data);
    let kind = META_KINDS[usize::from(input.u8()) % META_KINDS.len()];
    let bytes = envelope(kind, input.rest());
    let path = Path::new("fuzz.obbak");
    match kind {
        FormatInfo::KIND => drop(parse_meta::<FormatInfo>(&bytes, path)),
        BackupSetInfo::KIND => drop(parse_meta::<BackupSetInfo>(&bytes, path)),
        TenantBackupSetInfos::KIND => drop(parse_meta::<TenantBackupSetInfos>(&bytes, path)),
        LsAttrInfo::KIND => drop(parse_meta::<LsAttrInfo>(&bytes, path)),
        MacroRangeIndex::KIND => drop(parse_meta::<MacroRangeIndex>(&bytes, path)),
        ListingMarker::KIND => drop(parse_meta::<ListingMarker>(&bytes, path)),
        PieceInfo::KIND => drop(parse_meta::<PieceInfo>(&bytes, path)),
        TenantArchivePieceInfos::KIND => drop(parse_meta::<TenantArchivePieceInfos>(&bytes, path)),
        _ => drop(parse_meta::<CheckpointInfo>(&bytes, path)),
    }
}

/// Above this many iterations the target derives with this many instead: the cap check
/// ([`crypto::MAX_KDF_ITERATIONS`]) still runs on the fuzzed value, but 1,000,000
/// iterations would make each run take a second and hide everything else.
const FUZZ_KDF_ITERATIONS: u32 = 1000;

/// The password check of an encrypted set: `password_len:u8 password encryption-json`.
pub fn password_check(data: &[u8]) {
    let mut input = Input::new(data);
    let len = usize::from(input.u8());
    let password = String::from_utf8_lossy(input.take(len)).into_owned();
    let Ok(mut info) = serde_json::from_slice::<EncryptionInfo>(input.rest()) else {
        return;
    };
    if (FUZZ_KDF_ITERATIONS..=crypto::MAX_KDF_ITERATIONS).contains(&info.kdf_iterations) {
        info.kdf_iterations = FUZZ_KDF_ITERATIONS;
    }
    let _ = crypto::unlock(&info, &password);
}

/// Encodes a [`password_check`] input.
pub fn encode_password_input(password: &str, info: &EncryptionInfo) -> Vec<u8> {
    let password = &password.as_bytes()[..password.len().min(255)];
    let mut bytes = vec![password.len() as u8];
    bytes.extend_from_slice(password);
    bytes.extend(serde_json::to_vec(info).unwrap_or_default());
    bytes
}

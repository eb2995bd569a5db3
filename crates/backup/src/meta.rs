//! Metadata files: JSON bodies in a small versioned envelope.
//!
//! Every `.obbak`/`.obarc` metadata file is one JSON object
//! `{"magic":"OBRESTORE-META","version":1,"kind":"<kind>","body":{...}}`. The kind names
//! the body type, so a file copied to the wrong place is refused instead of misread.

use std::io::Read;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{BackupError, Result};
use crate::scn::{Scn, UtcOffset};

/// Magic string of every metadata envelope.
pub const META_MAGIC: &str = "OBRESTORE-META";
/// The metadata format version this build reads and writes.
pub const META_VERSION: u32 = 1;
/// Metadata files larger than this are refused before they are read into memory.
pub const MAX_META_BYTES: u64 = 64 * 1024 * 1024;

/// A log stream id: 1 is the sys LS, user log streams are 1001, 1002, ...
pub type LsId = u64;
/// A tablet id.
pub type TabletId = u64;

/// A metadata body type with its envelope kind.
pub trait MetaBody: Serialize + DeserializeOwned {
    /// The `kind` written into the envelope.
    const KIND: &'static str;
}

#[derive(Serialize)]
struct EnvelopeOut<'a, T> {
    magic: &'static str,
    version: u32,
    kind: &'static str,
    body: &'a T,
}

/// The envelope as read. The body stays raw text until its kind is known, and is then
/// parsed straight into its record: parsing it into a generic JSON value first cost
/// about 20 times the file's size in memory.
#[derive(Deserialize)]
struct EnvelopeIn<'a> {
    magic: String,
    version: u32,
    kind: String,
    #[serde(borrow)]
    body: &'a serde_json::value::RawValue,
}

/// Serialises `body` into its envelope (pretty JSON, newline-terminated).
pub fn encode_meta<T: MetaBody>(body: &T) -> Vec<u8> {
    let envelope = EnvelopeOut {
        magic: META_MAGIC,
        version: META_VERSION,
        kind: T::KIND,
        body,
    };
    // Serialising plain data structs into a Vec cannot fail.
    let mut bytes = serde_json::to_vec_pretty(&envelope).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Parses a metadata file's bytes; `path` is only used in errors.
///
/// # Errors
/// [`BackupError::BadMetadata`] for bad JSON, a wrong magic or kind or body shape;
/// [`BackupError::UnsupportedVersion`] for another version.
pub fn parse_meta<T: MetaBody>(bytes: &[u8], path: &Path) -> Result<T> {
    let bad = |reason: String| BackupError::BadMetadata {
        path: path.to_path_buf(),
        reason,
    };
    let envelope: EnvelopeIn<'_> =
        serde_json::from_slice(bytes).map_err(|err| bad(format!("invalid JSON: {err}")))?;
    if envelope.magic != META_MAGIC {
        return Err(bad(format!(
            "magic is '{}', expected '{META_MAGIC}'",
            envelope.magic
        )));
    }
    if envelope.version != META_VERSION {
        return Err(BackupError::UnsupportedVersion {
            path: path.to_path_buf(),
            found: envelope.version,
            supported: META_VERSION,
        });
    }
    if envelope.kind != T::KIND {
        return Err(bad(format!(
            "kind is '{}', expected '{}'",
            envelope.kind,
            T::KIND
        )));
    }
    serde_json::from_str(envelope.body.get())
        .map_err(|err| bad(format!("invalid {}: {err}", T::KIND)))
}

/// Reads and parses a metadata file, refusing files over [`MAX_META_BYTES`].
///
/// # Errors
/// [`BackupError::NotFound`]/[`BackupError::Io`] for I/O, else as [`parse_meta`].
pub fn read_meta<T: MetaBody>(path: &Path) -> Result<T> {
    let file = std::fs::File::open(path).map_err(|err| BackupError::io(path, err))?;
    let mut bytes = Vec::new();
    file.take(MAX_META_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| BackupError::io(path, err))?;
    if bytes.len() as u64 > MAX_META_BYTES {
        return Err(BackupError::BadMetadata {
            path: path.to_path_buf(),
            reason: format!("larger than {MAX_META_BYTES} bytes"),
        });
    }
    parse_meta(&bytes, path)
}

/// Writes a metadata file (create or truncate).
///
/// # Errors
/// [`BackupError::Io`] naming the file.
pub fn write_meta<T: MetaBody>(path: &Path, body: &T) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|err| BackupError::io(parent, err))?;
    }
    std::fs::write(path, encode_meta(body)).map_err(|err| BackupError::io(path, err))
}

/// Kind of a backup destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DestType {
    /// Data backup destination (`backup_set_*`).
    Data,
    /// Archive log destination (`piece_*`).
    ArchiveLog,
}

/// `format.obbak` at the root of a destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormatInfo {
    pub dest_type: DestType,
    pub tenant_id: u64,
    pub tenant_name: String,
    pub cluster_name: String,
    pub cluster_id: u64,
    pub incarnation: u64,
    pub cluster_version: String,
    /// The archive dest id (`d<dest_id>` in piece names); 0 for a data destination.
    #[serde(default)]
    pub dest_id: u64,
    /// The tenant's system time zone when it was backed up, `±hh:mm` (e.g. `+08:00`).
    /// Restore planning reads a target timestamp without an offset in the data
    /// destination's zone. `None` in files written before the field existed: see
    /// [`FormatInfo::effective_time_zone`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<UtcOffset>,
}

impl MetaBody for FormatInfo {
    const KIND: &'static str = "format";
}

impl FormatInfo {
    /// The backup's time zone: `time_zone`, or [`UtcOffset::OCEANBASE_DEFAULT`] (`+08:00`)
    /// when the file does not record one. OceanBase reads a backup that records no zone
    /// (made before 4.2.0) as `+08:00` too, so the default does not depend on the agent's
    /// local zone.
    pub fn effective_time_zone(&self) -> UtcOffset {
        self.time_zone.unwrap_or(UtcOffset::OCEANBASE_DEFAULT)
    }
}

/// FULL or INCREMENTAL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BackupType {
    Full,
    Incremental,
}

impl BackupType {
    /// `full` or `inc`, as in directory names.
    pub fn short_name(self) -> &'static str {
        match self {
            BackupType::Full => "full",
            BackupType::Incremental => "inc",
        }
    }
}

/// Outcome of a backup job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SetStatus {
    Success,
    Failed,
    Doing,
}

/// Whether the files of a set or piece are still there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FileStatus {
    Available,
    Deleted,
}

/// Encryption of a backup set: how to derive the key and how to check a password.
///
/// Never contains the password. See `docs/backup-format.md` §Encryption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncryptionInfo {
    /// Always `AES-256-GCM`.
    pub algorithm: String,
    /// Always `PBKDF2-HMAC-SHA256`.
    pub kdf: String,
    pub kdf_iterations: u32,
    /// Per-set salt, hex.
    pub salt_hex: String,
    /// HMAC-SHA256 of a constant under the verifier key, hex.
    pub verifier_hex: String,
}

/// `single_backup_set_info.obbak`: one backup set (SPEC §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupSetInfo {
    pub backup_set_id: u64,
    pub backup_type: BackupType,
    /// 0 for a FULL set.
    pub prev_full_backup_set_id: u64,
    /// 0 for a FULL set; the previous set of the chain for an INCREMENTAL.
    pub prev_inc_backup_set_id: u64,
    /// The data snapshot SCN; log replay starts after it.
    pub start_replay_scn: Scn,
    /// The earliest SCN this set can be restored to.
    pub min_restore_scn: Scn,
    pub status: SetStatus,
    pub file_status: FileStatus,
    /// `None` for an unencrypted set.
    pub encryption: Option<EncryptionInfo>,
    /// Bytes of data files of the set.
    pub output_bytes: u64,
    pub tenant_id: u64,
    pub tenant_name: String,
    pub cluster_version: String,
}

impl MetaBody for BackupSetInfo {
    const KIND: &'static str = "single_backup_set_info";
}

impl BackupSetInfo {
    /// The set directory name, `backup_set_<id>_{full|inc}`.
    pub fn dir_name(&self) -> String {
        crate::layout::set_dir_name(self.backup_set_id, self.backup_type)
    }

    /// SUCCESS and AVAILABLE: the planner may use it.
    pub fn is_usable(&self) -> bool {
        self.status == SetStatus::Success && self.file_status == FileStatus::Available
    }
}

/// `tenant_backup_set_infos.obbak`: every set known when this set was written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantBackupSetInfos {
    pub backup_sets: Vec<BackupSetInfo>,
}

impl MetaBody for TenantBackupSetInfos {
    const KIND: &'static str = "tenant_backup_set_infos";
}

/// One log stream and its tablets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LsAttr {
    pub ls_id: LsId,
    pub tablet_ids: Vec<TabletId>,
}

/// `infos/meta_info/ls_attr_info.obbak`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LsAttrInfo {
    pub log_streams: Vec<LsAttr>,
}

impl MetaBody for LsAttrInfo {
    const KIND: &'static str = "ls_attr_info";
}

/// One data file of a log stream in `macro_range_index.obbak`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacroRangeEntry {
    /// `k` in `macro_block_data.<k>.obbak`.
    pub file_index: u64,
    pub size_bytes: u64,
    pub block_count: u64,
    pub row_count: u64,
    /// Tablets with rows in this file, ascending.
    pub tablet_ids: Vec<TabletId>,
    /// The file's blocks (macro blocks) in file order, each with the rows it holds; empty
    /// in an index written without them (the file is then only read whole).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<MacroBlockEntry>,
}

/// One block of a data file in `macro_range_index.obbak`: where it is and the first and
/// last row it holds (rows are sorted by `(tablet_id, key)` within a file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacroBlockEntry {
    /// Offset of the block header in the file.
    pub offset: u64,
    /// Header and stored payload bytes.
    pub stored_bytes: u64,
    pub row_count: u64,
    pub first: RowBound,
    pub last: RowBound,
}

/// A row's position `(tablet_id, key)`, ordered as rows are in a data file. The key is
/// hex in JSON.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RowBound {
    pub tablet_id: TabletId,
    #[serde(with = "hex_key")]
    pub key: Vec<u8>,
}

impl RowBound {
    /// Where `(tablet_id, key)` lies relative to this position.
    pub fn cmp_row(&self, tablet_id: TabletId, key: &[u8]) -> std::cmp::Ordering {
        (self.tablet_id, self.key.as_slice()).cmp(&(tablet_id, key))
    }
}

mod hex_key {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(key: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(key))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        hex::decode(text.as_ref()).map_err(serde::de::Error::custom)
    }
}

/// `logstream_<ls>/major_data_turn_1_retry_0/macro_range_index.obbak`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MacroRangeIndex {
    pub ls_id: LsId,
    pub files: Vec<MacroRangeEntry>,
}

impl MetaBody for MacroRangeIndex {
    const KIND: &'static str = "macro_range_index";
}

/// A listing file in `backup_sets/`, `rounds/` or `pieces/` (its name carries the facts;
/// the body repeats them for humans).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingMarker {
    pub name: String,
    pub scn: Scn,
}

impl MetaBody for ListingMarker {
    const KIND: &'static str = "listing_marker";
}

/// ACTIVE (still archiving) or FROZEN (closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PieceStatus {
    Active,
    Frozen,
}

/// `single_piece_info.obarc`: one archive piece (SPEC §5.1).
///
/// A piece holds log entries with `start_scn < scn <= min(checkpoint_scn, end_scn)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PieceInfo {
    pub dest_id: u64,
    pub round_id: u64,
    pub piece_id: u64,
    pub start_scn: Scn,
    pub checkpoint_scn: Scn,
    pub end_scn: Scn,
    pub status: PieceStatus,
    pub file_status: FileStatus,
    /// Bytes of log files of the piece.
    #[serde(default)]
    pub output_bytes: u64,
}

impl MetaBody for PieceInfo {
    const KIND: &'static str = "single_piece_info";
}

impl PieceInfo {
    /// The piece directory name, `piece_d<dest>r<round>p<piece>`.
    pub fn dir_name(&self) -> String {
        crate::layout::piece_dir_name(self.dest_id, self.round_id, self.piece_id)
    }
}

/// `tenant_archive_piece_infos.obarc`: the piece and the log streams it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantArchivePieceInfos {
    pub piece: PieceInfo,
    pub ls_ids: Vec<LsId>,
    /// Per log stream, its log files `(file_id, size_bytes)`: a file that is missing or
    /// of another size is an error, so a lost file cannot silently drop log entries.
    #[serde(default)]
    pub log_files: std::collections::BTreeMap<LsId, Vec<(u64, u64)>>,
}

impl MetaBody for TenantArchivePieceInfos {
    const KIND: &'static str = "tenant_archive_piece_infos";
}

/// `checkpoint/checkpoint.<scn>.obarc`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointInfo {
    pub checkpoint_scn: Scn,
}

impl MetaBody for CheckpointInfo {
    const KIND: &'static str = "checkpoint";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_time_zone_is_optional_and_checked() {
        let path = Path::new("/x/format.obbak");
        let mut format = FormatInfo {
            dest_type: DestType::Data,
            tenant_id: 1002,
            tenant_name: "t".to_string(),
            cluster_name: "c".to_string(),
            cluster_id: 1,
            incarnation: 1,
            cluster_version: "4.2.1.0".to_string(),
            dest_id: 0,
            time_zone: Some("-05:00".parse().unwrap()),
        };
        let bytes = encode_meta(&format);
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains(r#""time_zone": "-05:00""#), "{text}");
        let parsed = parse_meta::<FormatInfo>(&bytes, path).unwrap();
        assert_eq!(parsed, format);
        assert_eq!(parsed.effective_time_zone().to_string(), "-05:00");
        // A file written before the field existed has no `time_zone`: it reads as +08:00.
        format.time_zone = None;
        let old = encode_meta(&format);
        assert!(!String::from_utf8(old.clone())
            .unwrap()
            .contains("time_zone"));
        let parsed = parse_meta::<FormatInfo>(&old, path).unwrap();
        assert_eq!(parsed.time_zone, None);
        assert_eq!(parsed.effective_time_zone(), UtcOffset::OCEANBASE_DEFAULT);
        // A zone that is not an offset is bad metadata naming the file.
        let named = text.replace(r#""-05:00""#, r#""Asia/Shanghai""#);
        let err = parse_meta::<FormatInfo>(named.as_bytes(), path).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("bad metadata in '/x/format.obbak': invalid format: invalid time zone 'Asia/Shanghai'"),
            "{err}"
        );
    }

    #[test]
    fn envelope_round_trips_and_refuses_wrong_kind_and_version() {
        let path = Path::new("/x/checkpoint.1.obarc");
        let body = CheckpointInfo {
            checkpoint_scn: Scn(42),
        };
        let bytes = encode_meta(&body);
        assert_eq!(parse_meta::<CheckpointInfo>(&bytes, path).unwrap(), body);
        let err = parse_meta::<PieceInfo>(&bytes, path).unwrap_err();
        assert!(err.to_string().contains("kind is 'checkpoint'"), "{err}");
        let newer = String::from_utf8(bytes)
            .unwrap()
            .replace("\"version\": 1", "\"version\": 7");
        let err = parse_meta::<CheckpointInfo>(newer.as_bytes(), path).unwrap_err();
        assert!(
            matches!(err, BackupError::UnsupportedVersion { found: 7, .. }),
            "{err}"
        );
        let err = parse_meta::<CheckpointInfo>(b"{\"magic\":", path).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("bad metadata in '/x/checkpoint.1.obarc'"),
            "{err}"
        );
    }
}

//! Readers of the two destinations: [`DataStore`] (backup sets) and [`ArchiveStore`]
//! (archive pieces). Both stream: a data file or log file is read one block at a time.

use std::collections::BTreeMap;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::block::{
    decode_data_row_refs, recycle_payload, BlockReader, DataRow, DataRowRef, FileKind,
};
use crate::crypto::{self, SetKey};
use crate::error::{BackupError, Result};
use crate::failpoint::SourceFile;
use crate::layout;
use crate::meta::{
    read_meta, BackupSetInfo, CheckpointInfo, DestType, FormatInfo, LsAttr, LsAttrInfo, LsId,
    MacroBlockEntry, MacroRangeIndex, PieceInfo, TabletId,
};
use crate::scn::{Scn, UtcOffset};
use crate::uri::{AllowedRoots, StorageUri};

mod log_entries;
pub use log_entries::LogEntries;

/// Read buffer of block files: it serves the small reads (block headers, the footer);
/// a payload is read past it, straight into its own buffer, except for the bytes already
/// buffered, so a small one copies less of each payload twice.
const READ_BUFFER: usize = 64 * 1024;

/// Canonical root of a destination, used to keep every opened file inside it.
#[derive(Debug, Clone)]
struct DestRoot {
    root: PathBuf,
}

impl DestRoot {
    fn open(path: &Path) -> Result<DestRoot> {
        let root = std::fs::canonicalize(path).map_err(|err| BackupError::io(path, err))?;
        Ok(DestRoot { root })
    }

    /// Opens `path` for reading after checking that, symlinks resolved, it is inside the root.
    fn open_file(&self, path: &Path) -> Result<SourceFile> {
        let resolved = resolve_inside(&self.root, path)?;
        SourceFile::open(&resolved).map_err(|err| BackupError::io(path, err))
    }

    fn read_meta<T: crate::meta::MetaBody>(&self, path: &Path) -> Result<T> {
        // Checks confinement first; `read_meta` then reads the same path.
        drop(self.open_file(path)?);
        read_meta(path)
    }

    fn list_dir(&self, dir: &Path) -> Result<Vec<String>> {
        let entries = std::fs::read_dir(dir).map_err(|err| BackupError::io(dir, err))?;
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|err| BackupError::io(dir, err))?;
            if let Some(name) = entry.file_name().to_str() {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }
}

/// `path` with its symbolic links resolved, if that is inside `root` (a canonical
/// directory, as a store's [`DataStore::root`] / [`ArchiveStore::root`]): the rule every
/// file a restore reads is held to.
pub fn resolve_inside(root: &Path, path: &Path) -> Result<PathBuf> {
    let resolved = std::fs::canonicalize(path).map_err(|err| BackupError::io(path, err))?;
    if !resolved.starts_with(root) {
        return Err(BackupError::Uri(crate::uri::UriError::OutsideRoots {
            path: path.display().to_string(),
            resolved: resolved.display().to_string(),
            roots: root.display().to_string(),
        }));
    }
    Ok(resolved)
}

fn open_format(root: &DestRoot, expected: DestType) -> Result<FormatInfo> {
    let path = root.root.join(layout::FORMAT_FILE);
    let format: FormatInfo = root.read_meta(&path)?;
    if format.dest_type != expected {
        return Err(BackupError::WrongDestination {
            path: root.root.clone(),
            reason: format!(
                "format.obbak says dest_type {:?}, expected {expected:?}",
                format.dest_type
            ),
        });
    }
    Ok(format)
}

fn resolve_uri(uri: &str, roots: &AllowedRoots) -> Result<PathBuf> {
    let parsed = StorageUri::parse(uri)?;
    Ok(roots.resolve(&parsed)?)
}

/// A data file of one log stream of one backup set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFileRef {
    pub set_id: u64,
    pub ls_id: LsId,
    /// `k` of `macro_block_data.<k>.obbak`.
    pub file_index: u64,
    pub path: PathBuf,
    pub size_bytes: u64,
    pub block_count: u64,
    pub row_count: u64,
    pub tablet_ids: Vec<TabletId>,
    pub encrypted: bool,
    /// The file's blocks from the index, in file order (empty when the index has none).
    pub blocks: Vec<MacroBlockEntry>,
}

/// A verified, decrypted block of rows of a data file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataBlock {
    /// Byte offset of the block in its file.
    pub offset: u64,
    /// Bytes the block occupies on disk.
    pub stored_bytes: u64,
    pub rows: Vec<DataRow>,
}

/// Iterator over the blocks of one data file (bounded memory: one block at a time).
///
/// After the first error it yields `None`.
pub struct DataFileReader {
    reader: BlockReader<BufReader<SourceFile>>,
    failed: bool,
}

/// A verified, decrypted block of a data file whose rows are decoded on demand, without
/// copying them ([`DataFileReader::next_raw`]).
#[derive(Debug, Clone)]
pub struct RawDataBlock {
    /// Byte offset of the block in its file.
    pub offset: u64,
    /// Bytes the block occupies on disk.
    pub stored_bytes: u64,
    path: PathBuf,
    record_count: u32,
    payload: Vec<u8>,
}

impl RawDataBlock {
    /// The block's rows, borrowed from its payload.
    ///
    /// # Errors
    /// `Corrupt` (naming the file and offset) when the payload does not decode.
    pub fn rows(&self) -> Result<Vec<DataRowRef<'_>>> {
        decode_data_row_refs(&self.payload, self.record_count).map_err(|reason| {
            BackupError::Corrupt {
                path: self.path.clone(),
                offset: self.offset,
                reason,
            }
        })
    }

    /// Done with the block: its payload buffer is reused by the next block read on this
    /// thread ([`crate::block::recycle_payload`]).
    pub fn recycle(self) {
        recycle_payload(self.payload);
    }
}

impl DataFileReader {
    /// Continues at the block whose header is at `offset` (from the macro range index);
    /// the reader must then not be read past the file's last block (see
    /// [`BlockReader::seek_to_block`]).
    ///
    /// # Errors
    /// An offset inside the file header; a failed seek.
    pub fn seek_to_block(&mut self, offset: u64) -> Result<()> {
        self.reader.seek_to_block(offset)
    }

    /// The next block, verified and decrypted but not decoded; `None` at the end or after
    /// an error.
    pub fn next_raw(&mut self) -> Option<Result<RawDataBlock>> {
        if self.failed {
            return None;
        }
        match self.reader.next_block() {
            Ok(None) => None,
            Ok(Some(block)) => Some(Ok(RawDataBlock {
                offset: block.offset,
                stored_bytes: block.stored_bytes,
                path: self.reader.path().to_path_buf(),
                record_count: block.record_count,
                payload: block.payload,
            })),
            Err(err) => {
                self.failed = true;
                Some(Err(err))
            }
        }
    }
}

impl Iterator for DataFileReader {
    type Item = Result<DataBlock>;

    fn next(&mut self) -> Option<Self::Item> {
        let result = self.next_raw()?.and_then(|block| {
            let rows = block.rows()?.iter().map(DataRowRef::to_owned_row).collect();
            let owned = DataBlock {
                offset: block.offset,
                stored_bytes: block.stored_bytes,
                rows,
            };
            block.recycle();
            Ok(owned)
        });
        if result.is_err() {
            self.failed = true;
        }
        Some(result)
    }
}

/// The data backup destination (`.../data`).
#[derive(Debug, Clone)]
pub struct DataStore {
    root: DestRoot,
    format: FormatInfo,
}

impl DataStore {
    /// Opens a data destination at a local path and checks its `format.obbak`.
    ///
    /// # Errors
    /// Missing/bad `format.obbak`, or the destination is an archive.
    pub fn open(path: &Path) -> Result<DataStore> {
        let root = DestRoot::open(path)?;
        let format = open_format(&root, DestType::Data)?;
        Ok(DataStore { root, format })
    }

    /// Parses `uri`, confines it to `roots` and opens it.
    ///
    /// # Errors
    /// URI errors (unsupported scheme, outside the roots) and those of [`DataStore::open`].
    pub fn open_uri(uri: &str, roots: &AllowedRoots) -> Result<DataStore> {
        DataStore::open(&resolve_uri(uri, roots)?)
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root.root
    }

    /// The `file://` URI of the root.
    pub fn uri(&self) -> String {
        StorageUri::from_path(&self.root.root).to_string()
    }

    /// The destination's `format.obbak`.
    pub fn format(&self) -> &FormatInfo {
        &self.format
    }

    /// The backup's system time zone (`format.obbak`'s `time_zone`, `+08:00` when absent),
    /// in which restore planning reads a timestamp without an offset.
    pub fn time_zone(&self) -> UtcOffset {
        self.format.effective_time_zone()
    }

    /// Every set listed in `backup_sets/`, by id ascending, with its info file.
    ///
    /// # Errors
    /// A listed set whose info file is missing, truncated or malformed.
    pub fn list_sets(&self) -> Result<Vec<BackupSetInfo>> {
        let dir = self.root.root.join(layout::BACKUP_SETS_DIR);
        // set id -> (type, has an end marker)
        let mut ids = BTreeMap::new();
        for name in self.root.list_dir(&dir)? {
            if let Some((set_id, backup_type)) = layout::parse_set_marker(&name) {
                let ended = name.contains("_end_");
                let entry = ids.entry(set_id).or_insert((backup_type, false));
                entry.1 |= ended;
            }
        }
        let mut sets = Vec::with_capacity(ids.len());
        for (set_id, (backup_type, ended)) in ids {
            match self.read_set_info(set_id, backup_type) {
                Ok(info) => sets.push(info),
                // A set still being written (start marker only) may not have its info yet.
                Err(BackupError::NotFound { path }) if !ended => {
                    tracing::debug!(set_id, path = %path.display(), "skipping backup set without info (in progress)");
                }
                Err(err) => return Err(err),
            }
        }
        Ok(sets)
    }

    fn read_set_info(
        &self,
        set_id: u64,
        backup_type: crate::meta::BackupType,
    ) -> Result<BackupSetInfo> {
        let path = self
            .root
            .root
            .join(layout::set_dir_name(set_id, backup_type))
            .join(layout::SINGLE_SET_INFO);
        let info: BackupSetInfo = self.root.read_meta(&path)?;
        if info.backup_set_id != set_id || info.backup_type != backup_type {
            return Err(BackupError::BadMetadata {
                path,
                reason: format!(
                    "info describes set {} {:?}, the listing names set {set_id} {backup_type:?}",
                    info.backup_set_id, info.backup_type
                ),
            });
        }
        Ok(info)
    }

    /// The info of one set.
    ///
    /// # Errors
    /// [`BackupError::UnknownBackupSet`] if the set is not listed, else as [`DataStore::list_sets`].
    pub fn set_info(&self, set_id: u64) -> Result<BackupSetInfo> {
        self.list_sets()?
            .into_iter()
            .find(|info| info.backup_set_id == set_id)
            .ok_or_else(|| BackupError::UnknownBackupSet {
                path: self.root.root.clone(),
                set_id,
            })
    }

    /// The directory of a set.
    pub fn set_dir(&self, set: &BackupSetInfo) -> PathBuf {
        self.root.root.join(set.dir_name())
    }

    /// The `file://` URI of a set's directory (a preview item's `backupDest`).
    pub fn set_uri(&self, set: &BackupSetInfo) -> String {
        StorageUri::from_path(&self.set_dir(set)).to_string()
    }

    /// Log streams of a set and their tablets.
    ///
    /// # Errors
    /// Missing or malformed `ls_attr_info.obbak`.
    pub fn ls_attrs(&self, set: &BackupSetInfo) -> Result<Vec<LsAttr>> {
        let path = layout::ls_attr_info_path(&self.set_dir(set));
        let info: LsAttrInfo = self.root.read_meta(&path)?;
        Ok(info.log_streams)
    }

    /// Data files of one log stream of a set, by file index.
    ///
    /// # Errors
    /// Missing or malformed `macro_range_index.obbak`.
    pub fn data_files(&self, set: &BackupSetInfo, ls_id: LsId) -> Result<Vec<DataFileRef>> {
        let dir = layout::ls_data_dir(&self.set_dir(set), ls_id);
        let index_path = dir.join(layout::MACRO_RANGE_INDEX);
        let index: MacroRangeIndex = self.root.read_meta(&index_path)?;
        if index.ls_id != ls_id {
            return Err(BackupError::BadMetadata {
                path: index_path,
                reason: format!("index is for log stream {}, expected {ls_id}", index.ls_id),
            });
        }
        Ok(index
            .files
            .into_iter()
            .map(|entry| DataFileRef {
                set_id: set.backup_set_id,
                ls_id,
                file_index: entry.file_index,
                path: dir.join(layout::data_file_name(entry.file_index)),
                size_bytes: entry.size_bytes,
                block_count: entry.block_count,
                row_count: entry.row_count,
                tablet_ids: entry.tablet_ids,
                encrypted: set.encryption.is_some(),
                blocks: entry.blocks,
            })
            .collect())
    }

    /// Derives the data key of an encrypted set from the first matching password.
    /// `Ok(None)` for an unencrypted set.
    ///
    /// # Errors
    /// [`BackupError::InvalidPassword`] if no password matches ("backup set password is invalid").
    pub fn unlock(&self, set: &BackupSetInfo, passwords: &[String]) -> Result<Option<SetKey>> {
        let Some(encryption) = &set.encryption else {
            return Ok(None);
        };
        passwords
            .iter()
            .find_map(|password| crypto::unlock(encryption, password))
            .map(Some)
            .ok_or(BackupError::InvalidPassword {
                set_id: set.backup_set_id,
            })
    }

    /// Streams the verified, decrypted blocks of a data file.
    ///
    /// # Errors
    /// The file cannot be opened, its header is bad, or it is encrypted and `key` is `None`.
    /// Block-level errors come from the iterator.
    pub fn read_data_file(
        &self,
        file: &DataFileRef,
        key: Option<&SetKey>,
    ) -> Result<DataFileReader> {
        if file.encrypted && key.is_none() {
            return Err(BackupError::KeyRequired {
                set_id: file.set_id,
            });
        }
        let handle = self.root.open_file(&file.path)?;
        let reader = BlockReader::new(
            BufReader::with_capacity(READ_BUFFER, handle),
            &file.path,
            FileKind::Data,
            key.cloned(),
        )
        .map_err(|err| match err {
            BackupError::KeyRequired { .. } => BackupError::KeyRequired {
                set_id: file.set_id,
            },
            other => other,
        })?;
        if reader.header().ls_id != file.ls_id || reader.header().file_no != file.file_index {
            return Err(BackupError::Corrupt {
                path: file.path.clone(),
                offset: 0,
                reason: "file header names another log stream or file index".to_string(),
            });
        }
        Ok(DataFileReader {
            reader,
            failed: false,
        })
    }
}

/// Log files are read in the listed order, and a log stream's files are numbered in log
/// order, so a list out of file id order would replay out of order and a file listed
/// twice would replay twice: both are refused (not repaired), naming the file.
fn check_file_list(
    files: &[(u64, u64)],
    ls_id: LsId,
    dir: &Path,
) -> std::result::Result<(), String> {
    for pair in files.windows(2) {
        let (previous, file_id) = (pair[0].0, pair[1].0);
        let path = dir.join(layout::log_file_name(file_id));
        if file_id == previous {
            return Err(format!(
                "log file '{}' of log stream {ls_id} is listed twice",
                path.display()
            ));
        }
        if file_id < previous {
            return Err(format!(
                "log file '{}' of log stream {ls_id} is listed after file id {previous}: \
                 files must be listed in ascending file id order",
                path.display()
            ));
        }
    }
    Ok(())
}

/// A log file of one log stream in one piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFileRef {
    pub round_id: u64,
    pub piece_id: u64,
    pub ls_id: LsId,
    pub file_id: u64,
    pub path: PathBuf,
    pub size_bytes: u64,
}

/// The archive log destination (`.../clog`).
#[derive(Debug, Clone)]
pub struct ArchiveStore {
    root: DestRoot,
    format: FormatInfo,
}

impl ArchiveStore {
    /// Opens an archive destination at a local path and checks its `format.obbak`.
    ///
    /// # Errors
    /// Missing/bad `format.obbak`, or the destination holds data backups.
    pub fn open(path: &Path) -> Result<ArchiveStore> {
        let root = DestRoot::open(path)?;
        let format = open_format(&root, DestType::ArchiveLog)?;
        Ok(ArchiveStore { root, format })
    }

    /// Parses `uri`, confines it to `roots` and opens it.
    ///
    /// # Errors
    /// URI errors and those of [`ArchiveStore::open`].
    pub fn open_uri(uri: &str, roots: &AllowedRoots) -> Result<ArchiveStore> {
        ArchiveStore::open(&resolve_uri(uri, roots)?)
    }

    /// The canonical root directory.
    pub fn root(&self) -> &Path {
        &self.root.root
    }

    /// The `file://` URI of the root.
    pub fn uri(&self) -> String {
        StorageUri::from_path(&self.root.root).to_string()
    }

    /// The destination's `format.obbak`.
    pub fn format(&self) -> &FormatInfo {
        &self.format
    }

    /// Every piece listed in `pieces/`, by (round, piece). `checkpoint_scn` is the larger
    /// of the info's and the newest `checkpoint/checkpoint.<scn>.obarc` (OceanBase updates
    /// the checkpoint files of an ACTIVE piece more often than its info).
    ///
    /// # Errors
    /// A listed piece whose info is missing or malformed.
    pub fn pieces(&self) -> Result<Vec<PieceInfo>> {
        let dir = self.root.root.join(layout::PIECES_DIR);
        // (round, piece) -> (dest, has an end marker)
        let mut keys = BTreeMap::new();
        for name in self.root.list_dir(&dir)? {
            if let Some((dest_id, round_id, piece_id)) = layout::parse_piece_marker(&name) {
                let ended = name.contains("_end_");
                let entry = keys.entry((round_id, piece_id)).or_insert((dest_id, false));
                entry.1 |= ended;
            }
        }
        let mut pieces = Vec::with_capacity(keys.len());
        for ((round_id, piece_id), (dest_id, ended)) in keys {
            let piece_dir = self
                .root
                .root
                .join(layout::piece_dir_name(dest_id, round_id, piece_id));
            let path = piece_dir.join(layout::SINGLE_PIECE_INFO);
            let mut info: PieceInfo = match self.root.read_meta(&path) {
                Ok(info) => info,
                // A piece just opened may not have its info yet.
                Err(BackupError::NotFound { .. }) if !ended => continue,
                Err(err) => return Err(err),
            };
            if (info.dest_id, info.round_id, info.piece_id) != (dest_id, round_id, piece_id) {
                return Err(BackupError::BadMetadata {
                    path,
                    reason: "info describes another piece than its directory".to_string(),
                });
            }
            if let Some(checkpoint) = self.newest_checkpoint(&piece_dir)? {
                info.checkpoint_scn = info.checkpoint_scn.max(checkpoint);
            }
            pieces.push(info);
        }
        Ok(pieces)
    }

    fn newest_checkpoint(&self, piece_dir: &Path) -> Result<Option<Scn>> {
        let dir = piece_dir.join("checkpoint");
        if !dir.is_dir() {
            return Ok(None);
        }
        let newest = self
            .root
            .list_dir(&dir)?
            .iter()
            .filter_map(|name| layout::parse_checkpoint_name(name))
            .max();
        let Some(scn) = newest else { return Ok(None) };
        let info: CheckpointInfo = self
            .root
            .read_meta(&layout::checkpoint_path(piece_dir, scn))?;
        Ok(Some(info.checkpoint_scn.min(scn)))
    }

    /// The directory of a piece.
    pub fn piece_dir(&self, piece: &PieceInfo) -> PathBuf {
        self.root.root.join(piece.dir_name())
    }

    /// The `file://` URI of a piece's directory (a preview item's `backupDest`).
    pub fn piece_uri(&self, piece: &PieceInfo) -> String {
        StorageUri::from_path(&self.piece_dir(piece)).to_string()
    }

    /// Log streams with logs in a piece, ascending.
    ///
    /// # Errors
    /// The piece directory cannot be listed.
    pub fn ls_ids(&self, piece: &PieceInfo) -> Result<Vec<LsId>> {
        let mut ids: Vec<LsId> = self
            .root
            .list_dir(&self.piece_dir(piece))?
            .iter()
            .filter_map(|name| layout::parse_ls_dir_name(name))
            .collect();
        ids.sort_unstable();
        Ok(ids)
    }

    /// Log files of one log stream in a piece, by file id (empty if the LS has none).
    ///
    /// # Errors
    /// The log directory cannot be listed.
    pub fn log_files(&self, piece: &PieceInfo, ls_id: LsId) -> Result<Vec<LogFileRef>> {
        let piece_dir = self.piece_dir(piece);
        let dir = layout::ls_log_dir(&piece_dir, ls_id);
        // The piece's file list is authoritative: every listed file must be there with
        // its size, so a lost file is an error instead of silently missing log.
        let infos: crate::meta::TenantArchivePieceInfos = self
            .root
            .read_meta(&piece_dir.join(layout::TENANT_PIECE_INFOS))?;
        if let Some(expected) = infos.log_files.get(&ls_id) {
            check_file_list(expected, ls_id, &dir).map_err(|reason| BackupError::BadMetadata {
                path: piece_dir.join(layout::TENANT_PIECE_INFOS),
                reason,
            })?;
            let mut files = Vec::with_capacity(expected.len());
            for (file_id, size_bytes) in expected {
                let path = dir.join(layout::log_file_name(*file_id));
                let actual = match std::fs::metadata(&path) {
                    Ok(meta) => meta.len(),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                        return Err(BackupError::NotFound { path });
                    }
                    Err(err) => return Err(BackupError::io(&path, err)),
                };
                if actual != *size_bytes {
                    return Err(BackupError::Truncated {
                        path,
                        offset: actual,
                        reason: format!("the piece lists {size_bytes} bytes"),
                    });
                }
                files.push(LogFileRef {
                    round_id: piece.round_id,
                    piece_id: piece.piece_id,
                    ls_id,
                    file_id: *file_id,
                    path,
                    size_bytes: *size_bytes,
                });
            }
            return Ok(files);
        }
        if infos.ls_ids.contains(&ls_id) {
            return Err(BackupError::BadMetadata {
                path: piece_dir.join(layout::TENANT_PIECE_INFOS),
                reason: format!("log stream {ls_id} has no file list"),
            });
        }
        if !dir.is_dir() {
            return Ok(Vec::new());
        }
        let mut files = Vec::new();
        for name in self.root.list_dir(&dir)? {
            let Some(file_id) = layout::parse_log_file_name(&name) else {
                continue;
            };
            let path = dir.join(layout::log_file_name(file_id));
            let size_bytes = std::fs::metadata(&path)
                .map_err(|err| BackupError::io(&path, err))?
                .len();
            files.push(LogFileRef {
                round_id: piece.round_id,
                piece_id: piece.piece_id,
                ls_id,
                file_id,
                path,
                size_bytes,
            });
        }
        files.sort_by_key(|file| file.file_id);
        Ok(files)
    }

    fn open_log_file(&self, file: &LogFileRef) -> Result<BlockReader<BufReader<SourceFile>>> {
        let handle = self.root.open_file(&file.path)?;
        let reader = BlockReader::new(
            BufReader::with_capacity(READ_BUFFER, handle),
            &file.path,
            FileKind::Log,
            None,
        )?;
        if reader.header().ls_id != file.ls_id || reader.header().file_no != file.file_id {
            return Err(BackupError::Corrupt {
                path: file.path.clone(),
                offset: 0,
                reason: "file header names another log stream or file id".to_string(),
            });
        }
        Ok(reader)
    }

    /// Streams the entries of log stream `ls_id` across `pieces` (in the given order,
    /// normally a plan's pieces) with `from < scn <= to`, in SCN order. Entries repeated
    /// in overlapping pieces are yielded once; an entry older than one already yielded
    /// inside a file is a corruption error.
    ///
    /// # Errors
    /// Listing errors up front; file and block errors from the iterator.
    pub fn log_entries(
        &self,
        pieces: &[PieceInfo],
        ls_id: LsId,
        from: Scn,
        to: Scn,
    ) -> Result<LogEntries> {
        let mut files = Vec::new();
        for piece in pieces {
            files.extend(self.log_files(piece, ls_id)?);
        }
        Ok(LogEntries {
            store: self.clone(),
            files: files.into_iter(),
            current: None,
            block: None,
            spans: Vec::new(),
            next: 0,
            to,
            floor: from,
            current_piece: None,
            piece_high: Scn(0),
            last_yielded: from,
            done: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send + 'static>() {}
    fn assert_send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn readers_can_move_to_worker_threads() {
        assert_send::<DataFileReader>();
        assert_send::<LogEntries>();
        assert_send_sync::<DataStore>();
        assert_send_sync::<ArchiveStore>();
        assert_send_sync::<crate::plan::RestorePlan>();
        assert_send_sync::<BackupError>();
    }
}

//! The fuzz targets that read a backup laid out on disk: the fuzzed listing names,
//! metadata bodies and block files are written into a fresh scratch directory (removed
//! afterwards), which is then read through [`DataStore`] and [`ArchiveStore`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::{envelope, Input};
use crate::block::forge::{forge_file, ForgedBlock};
use crate::block::FileKind;
use crate::layout;
use crate::meta::{
    parse_meta, write_meta, BackupSetInfo, BackupType, CheckpointInfo, DestType, FileStatus,
    FormatInfo, LsId, MacroRangeIndex, MetaBody, PieceInfo, PieceStatus, SetStatus,
    TenantArchivePieceInfos,
};
use crate::scn::Scn;
use crate::store::{ArchiveStore, DataStore};

/// Most files a target creates from one input (listed log files, data files).
const MAX_FILES: usize = 32;
/// Largest file a target creates from a listed size (sparse, so cheap).
const MAX_LISTED_SIZE: u64 = 1 << 20;
/// The log stream the targets read.
pub const FUZZ_LS: LsId = 1001;

/// A fresh directory, removed when dropped: in `/dev/shm` where there is one (creating
/// and removing a few files per run on a disk file system cost ~30 ms), else in the
/// temporary directory.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Option<Scratch> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let shm = Path::new("/dev/shm");
        let base = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = base.join(format!(
            "obrestore-fuzz-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).ok()?;
        Some(Scratch { dir })
    }

    /// A destination of `dest_type` with its `format.obbak`.
    fn destination(&self, dest_type: DestType) -> Option<PathBuf> {
        let format = FormatInfo {
            dest_type,
            tenant_id: 1002,
            tenant_name: "fuzz".to_string(),
            cluster_name: "fuzz".to_string(),
            cluster_id: 1,
            incarnation: 1,
            cluster_version: "4.2.1.0".to_string(),
            dest_id: u64::from(dest_type == DestType::ArchiveLog),
            time_zone: None,
        };
        write_meta(&self.dir.join(layout::FORMAT_FILE), &format).ok()?;
        Some(self.dir.clone())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Writes `body` in a valid envelope of `T`'s kind.
fn write_body<T: MetaBody>(path: &Path, body: &[u8]) {
    if let Some(parent) = path.parent() {
        let _ = std::fs::create_dir_all(parent);
    }
    let _ = std::fs::write(path, envelope(T::KIND, body));
}

/// The names of a listing: NUL-free lines that are plain file names.
fn listing_names(bytes: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter(|name| !name.is_empty() && !name.contains('/') && *name != "." && *name != "..")
        .take(MAX_FILES)
        .map(str::to_string)
        .collect()
}

/// Set listing and markers: `names NUL body NUL body ...`, the names laid out in
/// `backup_sets/`, the i-th body the info of the i-th set the markers name.
pub fn set_listing(data: &[u8]) {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let Some(root) = scratch.destination(DestType::Data) else {
        return;
    };
    let mut input = Input::new(data);
    let names = listing_names(input.until_nul());
    let mut sets = BTreeMap::new();
    for name in &names {
        let _ = std::fs::create_dir_all(root.join(layout::BACKUP_SETS_DIR));
        let _ = std::fs::write(root.join(layout::BACKUP_SETS_DIR).join(name), b"{}");
        if let Some((set_id, backup_type)) = layout::parse_set_marker(name) {
            sets.entry(set_id).or_insert(backup_type);
        }
    }
    for (set_id, backup_type) in sets {
        let path = root
            .join(layout::set_dir_name(set_id, backup_type))
            .join(layout::SINGLE_SET_INFO);
        write_body::<BackupSetInfo>(&path, input.until_nul());
    }
    let Ok(store) = DataStore::open(&root) else {
        return;
    };
    if let Ok(sets) = store.list_sets() {
        for set in sets.iter().take(4) {
            let _ = store.set_info(set.backup_set_id);
            let _ = store.ls_attrs(set);
        }
    }
}

/// Piece and checkpoint listing: `names NUL piece-body NUL ... checkpoint-body`: names
/// that are piece markers go to `pieces/`, those that are checkpoint names to each
/// piece's `checkpoint/`; the i-th body is the info of the i-th piece, the last the
/// checkpoint files' body.
pub fn piece_listing(data: &[u8]) {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let Some(root) = scratch.destination(DestType::ArchiveLog) else {
        return;
    };
    let mut input = Input::new(data);
    let names = listing_names(input.until_nul());
    let mut pieces = BTreeMap::new();
    let mut checkpoints = Vec::new();
    let pieces_dir = root.join(layout::PIECES_DIR);
    let _ = std::fs::create_dir_all(&pieces_dir);
    for name in &names {
        if let Some(scn) = layout::parse_checkpoint_name(name) {
            checkpoints.push(scn);
            continue;
        }
        let _ = std::fs::write(pieces_dir.join(name), b"{}");
        if let Some((dest_id, round_id, piece_id)) = layout::parse_piece_marker(name) {
            pieces.entry((round_id, piece_id)).or_insert(dest_id);
        }
    }
    let mut bodies: Vec<&[u8]> = Vec::new();
    for _ in 0..pieces.len() {
        bodies.push(input.until_nul());
    }
    let checkpoint_body = input.rest();
    for (((round_id, piece_id), dest_id), body) in pieces.iter().zip(bodies) {
        let piece_dir = root.join(layout::piece_dir_name(*dest_id, *round_id, *piece_id));
        write_body::<PieceInfo>(&piece_dir.join(layout::SINGLE_PIECE_INFO), body);
        for scn in &checkpoints {
            let path = layout::checkpoint_path(&piece_dir, *scn);
            write_body::<CheckpointInfo>(&path, checkpoint_body);
        }
    }
    let Ok(store) = ArchiveStore::open(&root) else {
        return;
    };
    if let Ok(pieces) = store.pieces() {
        for piece in pieces.iter().take(4) {
            let _ = store.ls_ids(piece);
        }
    }
}

/// A set of the fuzz data destination (id 1, FULL, plain).
fn fuzz_set() -> BackupSetInfo {
    BackupSetInfo {
        backup_set_id: 1,
        backup_type: BackupType::Full,
        prev_full_backup_set_id: 0,
        prev_inc_backup_set_id: 0,
        start_replay_scn: Scn(1),
        min_restore_scn: Scn(1),
        status: SetStatus::Success,
        file_status: FileStatus::Available,
        encryption: None,
        output_bytes: 0,
        tenant_id: 1002,
        tenant_name: "fuzz".to_string(),
        cluster_version: "4.2.1.0".to_string(),
    }
}

/// `macro_range_index.obbak` of log stream [`FUZZ_LS`]: the body, then the data files
/// it lists are read (each listed file exists, holding one empty block).
pub fn macro_range_index(data: &[u8]) {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let Some(root) = scratch.destination(DestType::Data) else {
        return;
    };
    let set = fuzz_set();
    let dir = layout::ls_data_dir(&root.join(set.dir_name()), FUZZ_LS);
    let index_path = dir.join(layout::MACRO_RANGE_INDEX);
    write_body::<MacroRangeIndex>(&index_path, data);
    if let Ok(index) =
        parse_meta::<MacroRangeIndex>(&envelope(MacroRangeIndex::KIND, data), &index_path)
    {
        for entry in index.files.iter().take(MAX_FILES) {
            let file = forge_file(FileKind::Data, index.ls_id, entry.file_index, None, &[]);
            let _ = std::fs::write(dir.join(layout::data_file_name(entry.file_index)), file);
        }
    }
    let Ok(store) = DataStore::open(&root) else {
        return;
    };
    let Ok(files) = store.data_files(&set, FUZZ_LS) else {
        return;
    };
    for file in files.iter().take(MAX_FILES) {
        if let Ok(reader) = store.read_data_file(file, None) {
            reader.for_each(drop);
        }
    }
}

/// A log stream's file list in `tenant_archive_piece_infos.obarc`: the body, with each
/// listed file created at its listed size (sparse, zeros), then listed and replayed.
pub fn log_file_list(data: &[u8]) {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let Some(root) = scratch.destination(DestType::ArchiveLog) else {
        return;
    };
    let bytes = envelope(TenantArchivePieceInfos::KIND, data);
    let Ok(infos) = parse_meta::<TenantArchivePieceInfos>(&bytes, Path::new("fuzz")) else {
        return;
    };
    let piece_dir = root.join(infos.piece.dir_name());
    let _ = std::fs::create_dir_all(&piece_dir);
    let _ = std::fs::write(piece_dir.join(layout::TENANT_PIECE_INFOS), &bytes);
    let listed = infos.log_files.iter().flat_map(|(ls_id, files)| {
        files
            .iter()
            .map(move |(file_id, size)| (*ls_id, *file_id, *size))
    });
    for (ls_id, file_id, size) in listed.take(MAX_FILES) {
        let dir = layout::ls_log_dir(&piece_dir, ls_id);
        let _ = std::fs::create_dir_all(&dir);
        if let Ok(file) = std::fs::File::create(dir.join(layout::log_file_name(file_id))) {
            let _ = file.set_len(size.min(MAX_LISTED_SIZE));
        }
    }
    let Ok(store) = ArchiveStore::open(&root) else {
        return;
    };
    let ls_ids = infos.ls_ids.iter().chain(infos.log_files.keys());
    for ls_id in ls_ids.take(8) {
        let _ = store.log_files(&infos.piece, *ls_id);
        if let Ok(entries) =
            store.log_entries(std::slice::from_ref(&infos.piece), *ls_id, Scn(0), Scn::MAX)
        {
            entries.take(1 << 16).for_each(drop);
        }
    }
}

/// One piece of [`log_entries`]: round 1, piece `piece_id`.
fn fuzz_piece(piece_id: u64) -> PieceInfo {
    PieceInfo {
        dest_id: 1,
        round_id: 1,
        piece_id,
        start_scn: Scn(0),
        checkpoint_scn: Scn::MAX,
        end_scn: Scn::MAX,
        status: PieceStatus::Frozen,
        file_status: FileStatus::Available,
        output_bytes: 0,
    }
}

/// One block of a [`log_entries`] input, and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogBlockInput {
    /// 0 or 1: the first or second piece.
    pub piece: u8,
    /// The file id within the piece (1 to 4).
    pub file_id: u8,
    pub block: ForgedBlock,
}

/// Encodes a [`log_entries`] input: `from:u64 to:u64` then per block `piece:u8
/// file_id:u8 records:u32 min:u64 max:u64 len:u16 payload`.
pub fn encode_log_entries_input(from: Scn, to: Scn, blocks: &[LogBlockInput]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&from.as_u64().to_le_bytes());
    bytes.extend_from_slice(&to.as_u64().to_le_bytes());
    for input in blocks {
        let payload = &input.block.payload[..input.block.payload.len().min(usize::from(u16::MAX))];
        bytes.push(input.piece);
        bytes.push(input.file_id);
        bytes.extend_from_slice(&input.block.record_count.to_le_bytes());
        bytes.extend_from_slice(&input.block.min_scn.as_u64().to_le_bytes());
        bytes.extend_from_slice(&input.block.max_scn.as_u64().to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u16).to_le_bytes());
        bytes.extend_from_slice(payload);
    }
    bytes
}

/// Log entries across two pieces: CRC-valid log files forged from the fuzzed blocks,
/// listed in each piece's infos, replayed from `from` to `to` through [`ArchiveStore`].
pub fn log_entries(data: &[u8]) {
    let Some(scratch) = Scratch::new() else {
        return;
    };
    let Some(root) = scratch.destination(DestType::ArchiveLog) else {
        return;
    };
    let mut input = Input::new(data);
    let (from, to) = (Scn(input.u64()), Scn(input.u64()));
    let mut files: BTreeMap<(u64, u64), Vec<ForgedBlock>> = BTreeMap::new();
    while !input.rest_is_empty() {
        let piece_id = u64::from(input.u8() & 1) + 1;
        let file_id = u64::from(input.u8() % 4) + 1;
        let record_count = input.u32();
        let (min_scn, max_scn) = (Scn(input.u64()), Scn(input.u64()));
        let len = usize::from(input.u16());
        let payload = input.take(len).to_vec();
        let block = ForgedBlock {
            record_count,
            min_scn,
            max_scn,
            payload,
        };
        files.entry((piece_id, file_id)).or_default().push(block);
    }
    let pieces = [fuzz_piece(1), fuzz_piece(2)];
    for piece in &pieces {
        let piece_dir = root.join(piece.dir_name());
        let mut listed = Vec::new();
        for ((_, file_id), blocks) in files.range((piece.piece_id, 0)..(piece.piece_id + 1, 0)) {
            let file = forge_file(FileKind::Log, FUZZ_LS, *file_id, None, blocks);
            let dir = layout::ls_log_dir(&piece_dir, FUZZ_LS);
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join(layout::log_file_name(*file_id)), &file);
            listed.push((*file_id, file.len() as u64));
        }
        let infos = TenantArchivePieceInfos {
            piece: piece.clone(),
            ls_ids: vec![FUZZ_LS],
            log_files: BTreeMap::from([(FUZZ_LS, listed)]),
        };
        let _ = write_meta(&piece_dir.join(layout::TENANT_PIECE_INFOS), &infos);
    }
    let Ok(store) = ArchiveStore::open(&root) else {
        return;
    };
    if let Ok(entries) = store.log_entries(&pieces, FUZZ_LS, from, to) {
        entries.for_each(drop);
    }
}

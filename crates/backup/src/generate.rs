//! A deterministic synthetic backup: a tenant, its workload, backup sets, archive pieces,
//! and the truth file (SPEC §5.4).
//!
//! Same config and seed → byte-identical output. Memory is bounded by the number of live
//! rows (a few tens of bytes each), never by the data size: values are regenerated from
//! `(seed, tablet, key, version)` whenever a set or log needs them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use crate::block::{BlockWriter, FileKind, LogOp};
use crate::crypto::{self, SetKey};
use crate::error::{BackupError, Result};
use crate::layout;
use crate::meta::{
    write_meta, BackupSetInfo, BackupType, CheckpointInfo, DestType, FileStatus, FormatInfo,
    ListingMarker, LsAttr, LsAttrInfo, LsId, MacroRangeEntry, MacroRangeIndex, PieceInfo,
    PieceStatus, SetStatus, TabletId, TenantArchivePieceInfos, TenantBackupSetInfos,
};
use crate::scn::{Scn, UtcOffset};
use crate::truth::TruthWriter;
use crate::uri::StorageUri;

const NANOS_PER_SEC: u64 = 1_000_000_000;
const WRITE_BUFFER: usize = 1 << 20;

/// One backup set to take.
#[derive(Debug, Clone, PartialEq)]
pub struct SetPlan {
    pub backup_type: BackupType,
    /// When, as a fraction of the workload duration (0 < at < 1).
    pub at: f64,
    /// Encrypt the set with this password.
    pub password: Option<String>,
    /// Record the set as FAILED (`_end_failed_` marker); it does not join any chain.
    pub fail: bool,
    /// Mark the set DELETED afterwards and remove its data files.
    pub delete: bool,
}

/// A pause of archiving: the round stops at `at` and a new round starts `length_ns` later.
/// The stopped piece keeps its planned `end_scn` (as OceanBase does), so a short gap
/// overlaps the next round's first piece and a long one leaves a hole.
#[derive(Debug, Clone, PartialEq)]
pub struct GapPlan {
    pub at: f64,
    pub length_ns: u64,
}

/// Generator configuration. `GenerateConfig::new(dir)` gives the demo defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateConfig {
    /// Output root; destinations go to `<dir>/<cluster_name>/<cluster_id>/incarnation_1/<tenant_id>/`.
    pub dir: PathBuf,
    pub cluster_name: String,
    pub cluster_id: u64,
    pub tenant_id: u64,
    pub tenant_name: String,
    pub cluster_version: String,
    pub seed: u64,
    /// Approximate total bytes of both destinations.
    pub target_bytes: u64,
    /// User log streams (1001, 1002, ...) besides the sys LS 1.
    pub user_log_streams: u32,
    pub tablets_per_ls: u32,
    /// SCN of the tenant's creation (the workload starts right after it).
    pub base_scn: Scn,
    pub duration_ns: u64,
    pub piece_len_ns: u64,
    pub sets: Vec<SetPlan>,
    pub gaps: Vec<GapPlan>,
    /// Piece ids whose files are marked DELETED (and removed).
    pub delete_pieces: Vec<u64>,
    pub data_file_bytes: u64,
    pub log_file_bytes: u64,
    pub block_bytes: usize,
    pub kdf_iterations: u32,
    /// The tenant's system time zone, recorded in both `format.obbak` files; restore
    /// planning reads a timestamp without an offset in it. Default `+08:00`.
    pub time_zone: UtcOffset,
    /// Remove existing `data`, `clog` and `truth` directories first.
    pub overwrite: bool,
}

/// 2024-04-01T00:00:00Z.
pub const DEFAULT_BASE_SCN: Scn = Scn(1_711_929_600 * NANOS_PER_SEC);

impl GenerateConfig {
    /// Demo defaults: 256 MiB, seed 42, LS 1 + 3 user LS × 4 tablets, 48 h of workload,
    /// 6 h pieces, sets FULL, INC, INC, FULL, INC evenly spread, time zone `+08:00`.
    pub fn new(dir: impl Into<PathBuf>) -> GenerateConfig {
        GenerateConfig {
            dir: dir.into(),
            cluster_name: "obcluster".to_string(),
            cluster_id: 1_704_259_760,
            tenant_id: 1002,
            tenant_name: "mysql_tenant".to_string(),
            cluster_version: "4.2.1.0".to_string(),
            seed: 42,
            target_bytes: 256 << 20,
            user_log_streams: 3,
            tablets_per_ls: 4,
            base_scn: DEFAULT_BASE_SCN,
            duration_ns: 48 * 3600 * NANOS_PER_SEC,
            piece_len_ns: 6 * 3600 * NANOS_PER_SEC,
            sets: sets_from_pattern("FIIFI").unwrap_or_default(),
            gaps: Vec::new(),
            delete_pieces: Vec::new(),
            data_file_bytes: 64 << 20,
            log_file_bytes: 64 << 20,
            block_bytes: 2 << 20,
            kdf_iterations: crypto::DEFAULT_KDF_ITERATIONS,
            time_zone: UtcOffset::OCEANBASE_DEFAULT,
            overwrite: false,
        }
    }

    /// `<dir>/<cluster_name>/<cluster_id>/incarnation_1/<tenant_id>`.
    pub fn tenant_dir(&self) -> PathBuf {
        self.dir
            .join(&self.cluster_name)
            .join(self.cluster_id.to_string())
            .join("incarnation_1")
            .join(self.tenant_id.to_string())
    }
}

/// Sets evenly spread over the workload from a pattern like `FIIFI` (F = FULL, I = INC).
///
/// # Errors
/// [`BackupError::InvalidConfig`] for other letters.
pub fn sets_from_pattern(pattern: &str) -> Result<Vec<SetPlan>> {
    let letters: Vec<char> = pattern
        .chars()
        .filter(|c| !matches!(c, ',' | ' '))
        .collect();
    let count = letters.len() as f64;
    letters
        .iter()
        .enumerate()
        .map(|(index, letter)| {
            let backup_type = match letter.to_ascii_uppercase() {
                'F' => BackupType::Full,
                'I' => BackupType::Incremental,
                other => {
                    return Err(BackupError::InvalidConfig(format!(
                        "set pattern letter '{other}' (use F for FULL, I for INCREMENTAL)"
                    )))
                }
            };
            Ok(SetPlan {
                backup_type,
                at: (index as f64 + 1.0) / (count + 1.0),
                password: None,
                fail: false,
                delete: false,
            })
        })
        .collect()
}

/// Parses sizes like `256MiB`, `4GiB`, `10MB`, `512k`, `1048576`.
///
/// # Errors
/// [`BackupError::InvalidConfig`] for anything else.
pub fn parse_size(text: &str) -> Result<u64> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number.parse().map_err(|_| {
        BackupError::InvalidConfig(format!("size '{text}' is not a number with a unit"))
    })?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        other => {
            return Err(BackupError::InvalidConfig(format!(
                "unknown size unit '{other}' in '{text}'"
            )))
        }
    };
    Ok((number * factor as f64) as u64)
}

/// Parses durations like `6h`, `30m`, `90s`, `2d`, `1500ms`.
///
/// # Errors
/// [`BackupError::InvalidConfig`] for anything else.
pub fn parse_duration_ns(text: &str) -> Result<u64> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let number: f64 = number.parse().map_err(|_| {
        BackupError::InvalidConfig(format!("duration '{text}' is not a number with a unit"))
    })?;
    let factor: u64 = match unit.trim() {
        "ns" => 1,
        "us" => 1_000,
        "ms" => 1_000_000,
        "" | "s" => NANOS_PER_SEC,
        "m" | "min" => 60 * NANOS_PER_SEC,
        "h" => 3600 * NANOS_PER_SEC,
        "d" => 86_400 * NANOS_PER_SEC,
        other => {
            return Err(BackupError::InvalidConfig(format!(
                "unknown duration unit '{other}' in '{text}'"
            )))
        }
    };
    Ok((number * factor as f64) as u64)
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateSummary {
    pub tenant_dir: PathBuf,
    pub data_dir: PathBuf,
    pub archive_dir: PathBuf,
    /// `workload.tsv` for [`crate::truth::rows_at`].
    pub truth_dir: PathBuf,
    pub data_uri: String,
    pub archive_uri: String,
    pub tenant_id: u64,
    pub tenant_name: String,
    /// Final infos, by id.
    pub sets: Vec<BackupSetInfo>,
    /// Final infos, by (round, piece).
    pub pieces: Vec<PieceInfo>,
    pub log_stream_ids: Vec<LsId>,
    pub first_scn: Scn,
    /// The newest checkpoint (end of the workload, unless archiving was stopped then).
    pub end_scn: Scn,
    pub ops: u64,
    pub live_rows: u64,
    pub data_bytes: u64,
    pub archive_bytes: u64,
    pub truth_bytes: u64,
    pub elapsed: Duration,
}

impl GenerateSummary {
    /// Bytes of both destinations and the truth file.
    pub fn total_bytes(&self) -> u64 {
        self.data_bytes + self.archive_bytes + self.truth_bytes
    }

    /// Write throughput in MB/s (10^6 bytes).
    pub fn mb_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        self.total_bytes() as f64 / 1e6 / secs
    }

    /// A set's info by id.
    pub fn set(&self, set_id: u64) -> Option<&BackupSetInfo> {
        self.sets.iter().find(|set| set.backup_set_id == set_id)
    }

    /// A piece's info by piece id.
    pub fn piece(&self, piece_id: u64) -> Option<&PieceInfo> {
        self.pieces.iter().find(|piece| piece.piece_id == piece_id)
    }
}

fn mix(mut value: u64) -> u64 {
    // splitmix64 finaliser.
    value = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    value ^ (value >> 31)
}

/// Value bytes of a row version, a pure function of its coordinates.
struct ValueGen {
    seed: u64,
    avg_len: u64,
}

impl ValueGen {
    fn fill(&self, tablet_id: TabletId, key: u64, version: u32, buffer: &mut Vec<u8>) {
        let value_seed = mix(self.seed ^ mix(tablet_id ^ mix(key ^ mix(u64::from(version)))));
        let len = self.avg_len / 2 + value_seed % self.avg_len.max(1);
        buffer.clear();
        buffer.resize(len as usize, 0);
        ChaCha8Rng::seed_from_u64(value_seed).fill_bytes(buffer);
    }
}

struct TabletState {
    ls_id: LsId,
    tablet_id: TabletId,
    next_key: u64,
    live_keys: Vec<u64>,
    /// key -> (position in `live_keys`, version)
    rows: HashMap<u64, (usize, u32)>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |err| BackupError::io(path, err)
}

fn create_file(path: &Path) -> Result<BufWriter<File>> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let file = File::create(path).map_err(io_err(path))?;
    Ok(BufWriter::with_capacity(WRITE_BUFFER, file))
}

struct LogFileState {
    writer: BlockWriter<BufWriter<File>>,
    path: PathBuf,
    file_id: u64,
}

struct OpenPiece {
    info: PieceInfo,
    dir: PathBuf,
    logs: BTreeMap<LsId, LogFileState>,
    bytes: u64,
}

struct ArchiveWriter {
    root: PathBuf,
    dest_id: u64,
    piece_len_ns: u64,
    log_file_bytes: u64,
    block_bytes: usize,
    round_id: u64,
    next_piece_id: u64,
    current: Option<OpenPiece>,
    done: Vec<(PieceInfo, Vec<LsId>)>,
    bytes: u64,
}

impl ArchiveWriter {
    fn marker(&self, dir: &str, name: String, scn: Scn) -> Result<()> {
        let path = self.root.join(dir).join(&name);
        write_meta(&path, &ListingMarker { name, scn })
    }

    fn start_round(&mut self, start: Scn) -> Result<()> {
        self.round_id += 1;
        self.marker(
            layout::ROUNDS_DIR,
            layout::round_marker(self.dest_id, self.round_id, true),
            start,
        )?;
        self.open_piece(start)
    }

    fn open_piece(&mut self, start: Scn) -> Result<()> {
        let piece_id = self.next_piece_id;
        self.next_piece_id += 1;
        let info = PieceInfo {
            dest_id: self.dest_id,
            round_id: self.round_id,
            piece_id,
            start_scn: start,
            checkpoint_scn: start,
            end_scn: Scn(start.as_u64().saturating_add(self.piece_len_ns)),
            status: PieceStatus::Active,
            file_status: FileStatus::Available,
            output_bytes: 0,
        };
        self.marker(
            layout::PIECES_DIR,
            layout::piece_marker(self.dest_id, self.round_id, piece_id, true, start),
            start,
        )?;
        let dir = self.root.join(info.dir_name());
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        self.current = Some(OpenPiece {
            info,
            dir,
            logs: BTreeMap::new(),
            bytes: 0,
        });
        Ok(())
    }

    /// Closes the current piece with `checkpoint`; FROZEN unless `active`.
    fn close_piece(&mut self, checkpoint: Scn, active: bool) -> Result<()> {
        let Some(mut piece) = self.current.take() else {
            return Ok(());
        };
        let mut ls_ids = Vec::new();
        for (ls_id, log) in std::mem::take(&mut piece.logs) {
            let (stats, _) = log.writer.finish().map_err(io_err(&log.path))?;
            piece.bytes += stats.bytes;
            ls_ids.push(ls_id);
        }
        let mut log_files = BTreeMap::new();
        for ls_id in &ls_ids {
            let dir = layout::ls_log_dir(&piece.dir, *ls_id);
            let mut files = Vec::new();
            for entry in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
                let entry = entry.map_err(io_err(&dir))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if let Some(file_id) = layout::parse_log_file_name(&name) {
                    let size = entry.metadata().map_err(io_err(&entry.path()))?.len();
                    files.push((file_id, size));
                }
            }
            files.sort_unstable();
            log_files.insert(*ls_id, files);
        }
        piece.info.checkpoint_scn = checkpoint;
        piece.info.status = if active {
            PieceStatus::Active
        } else {
            PieceStatus::Frozen
        };
        piece.info.output_bytes = piece.bytes;
        self.bytes += piece.bytes;
        write_meta(&piece.dir.join(layout::SINGLE_PIECE_INFO), &piece.info)?;
        write_meta(
            &piece.dir.join(layout::TENANT_PIECE_INFOS),
            &TenantArchivePieceInfos {
                piece: piece.info.clone(),
                ls_ids: ls_ids.clone(),
                log_files,
            },
        )?;
        write_meta(
            &layout::checkpoint_path(&piece.dir, checkpoint),
            &CheckpointInfo {
                checkpoint_scn: checkpoint,
            },
        )?;
        if !active {
            self.marker(
                layout::PIECES_DIR,
                layout::piece_marker(
                    self.dest_id,
                    piece.info.round_id,
                    piece.info.piece_id,
                    false,
                    checkpoint,
                ),
                checkpoint,
            )?;
        }
        self.done.push((piece.info, ls_ids));
        Ok(())
    }

    /// Freezes full pieces until `scn` falls into the current one.
    fn advance_to(&mut self, scn: Scn) -> Result<()> {
        while let Some(piece) = &self.current {
            if scn <= piece.info.end_scn {
                break;
            }
            let end = piece.info.end_scn;
            self.close_piece(end, false)?;
            self.open_piece(end)?;
        }
        Ok(())
    }

    fn append(
        &mut self,
        scn: Scn,
        ls_id: LsId,
        tablet_id: TabletId,
        op: LogOp,
        key: &[u8],
        value: &[u8],
    ) -> Result<()> {
        if self.current.is_none() {
            return Ok(());
        }
        self.advance_to(scn)?;
        let (log_file_bytes, block_bytes) = (self.log_file_bytes, self.block_bytes);
        let Some(piece) = self.current.as_mut() else {
            return Ok(());
        };
        let roll = piece
            .logs
            .get(&ls_id)
            .is_some_and(|log| log.writer.bytes_written() >= log_file_bytes);
        if roll {
            if let Some(log) = piece.logs.remove(&ls_id) {
                let (stats, _) = log.writer.finish().map_err(io_err(&log.path))?;
                piece.bytes += stats.bytes;
                let file_id = log.file_id + 1;
                piece.logs.insert(
                    ls_id,
                    new_log_file(&piece.dir, ls_id, file_id, block_bytes)?,
                );
            }
        }
        if !piece.logs.contains_key(&ls_id) {
            piece
                .logs
                .insert(ls_id, new_log_file(&piece.dir, ls_id, 1, block_bytes)?);
        }
        if let Some(log) = piece.logs.get_mut(&ls_id) {
            log.writer
                .push_log_entry(scn, tablet_id, op, key, value)
                .map_err(io_err(&log.path))?;
        }
        Ok(())
    }

    fn stop_round(&mut self, stop: Scn) -> Result<()> {
        if self.current.is_none() {
            return Ok(());
        }
        self.advance_to(stop)?;
        self.close_piece(stop, false)?;
        self.marker(
            layout::ROUNDS_DIR,
            layout::round_marker(self.dest_id, self.round_id, false),
            stop,
        )
    }
}

fn new_log_file(
    piece_dir: &Path,
    ls_id: LsId,
    file_id: u64,
    block_bytes: usize,
) -> Result<LogFileState> {
    let path = layout::ls_log_dir(piece_dir, ls_id).join(layout::log_file_name(file_id));
    let out = create_file(&path)?;
    let writer = BlockWriter::new(out, FileKind::Log, ls_id, file_id, None, block_bytes)
        .map_err(io_err(&path))?;
    Ok(LogFileState {
        writer,
        path,
        file_id,
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum EventKind {
    ArchiveRestart,
    Set(usize),
    ArchiveStop,
}

struct Generator<'a> {
    config: &'a GenerateConfig,
    data_dir: PathBuf,
    values: ValueGen,
    tablets: Vec<TabletState>,
    ls_ids: Vec<LsId>,
    dirty: BTreeSet<(usize, u64)>,
    sets: Vec<BackupSetInfo>,
    last_full: Option<u64>,
    last_success: Option<u64>,
    data_bytes: u64,
    value_buffer: Vec<u8>,
}

/// Writes the synthetic backup described by `config`.
///
/// # Errors
/// [`BackupError::InvalidConfig`] for an unsatisfiable config (e.g. an INCREMENTAL
/// before any FULL, an existing destination without `overwrite`); I/O errors.
#[tracing::instrument(skip_all, fields(dir = %config.dir.display(), seed = config.seed, bytes = config.target_bytes))]
pub fn generate(config: &GenerateConfig) -> Result<GenerateSummary> {
    let started = Instant::now();
    validate(config)?;
    let tenant_dir = config.tenant_dir();
    let data_dir = tenant_dir.join("data");
    let archive_dir = tenant_dir.join("clog");
    let truth_dir = tenant_dir.join("truth");
    for dir in [&data_dir, &archive_dir, &truth_dir] {
        if dir.exists() {
            if !config.overwrite {
                return Err(BackupError::InvalidConfig(format!(
                    "'{}' already exists (use overwrite / --force)",
                    dir.display()
                )));
            }
            std::fs::remove_dir_all(dir).map_err(io_err(dir))?;
        }
    }
    let format = |dest_type, dest_id| FormatInfo {
        dest_type,
        tenant_id: config.tenant_id,
        tenant_name: config.tenant_name.clone(),
        cluster_name: config.cluster_name.clone(),
        cluster_id: config.cluster_id,
        incarnation: 1,
        cluster_version: config.cluster_version.clone(),
        dest_id,
        time_zone: Some(config.time_zone),
    };
    write_meta(
        &data_dir.join(layout::FORMAT_FILE),
        &format(DestType::Data, 0),
    )?;
    std::fs::create_dir_all(data_dir.join(layout::BACKUP_SETS_DIR)).map_err(io_err(&data_dir))?;
    write_meta(
        &archive_dir.join(layout::FORMAT_FILE),
        &format(DestType::ArchiveLog, 1),
    )?;
    std::fs::create_dir_all(archive_dir.join(layout::PIECES_DIR)).map_err(io_err(&archive_dir))?;

    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    // Sizing: the log holds every op (2 per target row), the sets about 2.5 copies of the
    // live rows; ~4.5 values per target row in all.
    let target_rows = (config.target_bytes / 4096).clamp(64, 2_000_000);
    let avg_len = (config.target_bytes / (target_rows * 9 / 2)).clamp(16, 8 << 20);
    let total_ops = target_rows * 2;

    let mut ls_ids = vec![1];
    ls_ids.extend((0..u64::from(config.user_log_streams)).map(|index| 1001 + index));
    let mut tablets = Vec::new();
    for &ls_id in &ls_ids {
        let count = if ls_id == 1 {
            3
        } else {
            u64::from(config.tablets_per_ls)
        };
        for index in 0..count {
            let tablet_id = if ls_id == 1 {
                index + 1
            } else {
                200_001 + (ls_id - 1001) * 1000 + index
            };
            tablets.push(TabletState {
                ls_id,
                tablet_id,
                next_key: 1,
                live_keys: Vec::new(),
                rows: HashMap::new(),
            });
        }
    }
    let sys_tablets = 3usize;

    let base = config.base_scn.as_u64();
    let end_scn = Scn(base + config.duration_ns);
    let mut events: Vec<(Scn, EventKind)> = Vec::new();
    for (index, plan) in config.sets.iter().enumerate() {
        events.push((
            Scn(base + (plan.at * config.duration_ns as f64) as u64),
            EventKind::Set(index),
        ));
    }
    for gap in &config.gaps {
        let stop = base + (gap.at * config.duration_ns as f64) as u64;
        events.push((Scn(stop), EventKind::ArchiveStop));
        events.push((
            Scn(stop.saturating_add(gap.length_ns)),
            EventKind::ArchiveRestart,
        ));
    }
    events.sort();
    let mut events = events.into_iter().peekable();

    let mut truth = TruthWriter::create(&truth_dir)?;
    let mut archive = ArchiveWriter {
        root: archive_dir.clone(),
        dest_id: 1,
        piece_len_ns: config.piece_len_ns,
        log_file_bytes: config.log_file_bytes,
        block_bytes: config.block_bytes,
        round_id: 0,
        next_piece_id: 1,
        current: None,
        done: Vec::new(),
        bytes: 0,
    };
    archive.start_round(config.base_scn)?;
    let mut generator = Generator {
        config,
        data_dir: data_dir.clone(),
        values: ValueGen {
            seed: mix(config.seed ^ 0x5EED),
            avg_len,
        },
        tablets,
        ls_ids: ls_ids.clone(),
        dirty: BTreeSet::new(),
        sets: Vec::new(),
        last_full: None,
        last_success: None,
        data_bytes: 0,
        value_buffer: Vec::new(),
    };

    let step = (config.duration_ns / (total_ops + 1)).max(2);
    let mut live_rows: u64 = 0;
    let mut value = Vec::new();
    for op_index in 0..total_ops {
        let scn = Scn(base + (op_index + 1) * step - rng.gen_range(0..step / 2));
        while let Some((event_scn, _)) = events.peek() {
            if *event_scn >= scn {
                break;
            }
            if let Some((event_scn, kind)) = events.next() {
                generator.handle_event(event_scn, kind, &mut archive, &mut rng)?;
            }
        }
        let tablet_index = if rng.gen_range(0..100) < 5 {
            rng.gen_range(0..sys_tablets)
        } else {
            rng.gen_range(sys_tablets..generator.tablets.len())
        };
        let roll = rng.gen_range(0..100u32);
        let tablet = &mut generator.tablets[tablet_index];
        let (insert, update) = if live_rows < target_rows {
            (70, 90)
        } else {
            (20, 80)
        };
        let op = if tablet.live_keys.is_empty() || roll < insert {
            LogOp::Insert
        } else if roll < update {
            LogOp::Update
        } else {
            LogOp::Delete
        };
        let key = match op {
            LogOp::Insert => {
                let key = tablet.next_key;
                tablet.next_key += 1;
                tablet.rows.insert(key, (tablet.live_keys.len(), 0));
                tablet.live_keys.push(key);
                live_rows += 1;
                key
            }
            LogOp::Update => {
                let key = tablet.live_keys[rng.gen_range(0..tablet.live_keys.len())];
                if let Some(row) = tablet.rows.get_mut(&key) {
                    row.1 += 1;
                }
                key
            }
            LogOp::Delete => {
                let position = rng.gen_range(0..tablet.live_keys.len());
                let key = tablet.live_keys.swap_remove(position);
                tablet.rows.remove(&key);
                if let Some(&moved) = tablet.live_keys.get(position) {
                    if let Some(row) = tablet.rows.get_mut(&moved) {
                        row.0 = position;
                    }
                }
                live_rows -= 1;
                key
            }
        };
        let (ls_id, tablet_id) = (tablet.ls_id, tablet.tablet_id);
        let key_bytes = key.to_be_bytes();
        let (op_char, value_hash) = if op == LogOp::Delete {
            value.clear();
            ('D', None)
        } else {
            let version = tablet.rows.get(&key).map_or(0, |row| row.1);
            generator.values.fill(tablet_id, key, version, &mut value);
            let hash: [u8; 32] = Sha256::digest(&value).into();
            (if op == LogOp::Insert { 'I' } else { 'U' }, Some(hash))
        };
        truth.record(
            scn,
            ls_id,
            tablet_id,
            op_char,
            &key_bytes,
            value_hash.as_ref(),
        )?;
        archive.append(scn, ls_id, tablet_id, op, &key_bytes, &value)?;
        generator.dirty.insert((tablet_index, key));
    }
    for (event_scn, kind) in events {
        generator.handle_event(event_scn, kind, &mut archive, &mut rng)?;
    }
    if archive.current.is_some() {
        archive.advance_to(end_scn)?;
        archive.close_piece(end_scn, true)?;
    }
    let truth_bytes = truth.finish()?;

    let mut sets = generator.sets.clone();
    for (set, plan) in sets.iter_mut().zip(&config.sets) {
        if plan.delete {
            set.file_status = FileStatus::Deleted;
            let set_dir = data_dir.join(set.dir_name());
            write_meta(&set_dir.join(layout::SINGLE_SET_INFO), &*set)?;
            for ls_id in &ls_ids {
                let ls_dir = set_dir.join(format!("logstream_{ls_id}"));
                if ls_dir.exists() {
                    std::fs::remove_dir_all(&ls_dir).map_err(io_err(&ls_dir))?;
                }
            }
        }
    }
    let mut pieces = Vec::new();
    for (mut piece, _) in std::mem::take(&mut archive.done) {
        if config.delete_pieces.contains(&piece.piece_id) {
            piece.file_status = FileStatus::Deleted;
            let piece_dir = archive_dir.join(piece.dir_name());
            write_meta(&piece_dir.join(layout::SINGLE_PIECE_INFO), &piece)?;
            for ls_id in &ls_ids {
                let ls_dir = piece_dir.join(format!("logstream_{ls_id}"));
                if ls_dir.exists() {
                    std::fs::remove_dir_all(&ls_dir).map_err(io_err(&ls_dir))?;
                }
            }
        }
        pieces.push(piece);
    }
    let newest_checkpoint = pieces
        .iter()
        .map(|piece| piece.checkpoint_scn)
        .max()
        .unwrap_or(end_scn);
    Ok(GenerateSummary {
        data_uri: StorageUri::from_path(&data_dir).to_string(),
        archive_uri: StorageUri::from_path(&archive_dir).to_string(),
        tenant_dir,
        data_dir,
        archive_dir,
        truth_dir,
        tenant_id: config.tenant_id,
        tenant_name: config.tenant_name.clone(),
        sets,
        pieces,
        log_stream_ids: ls_ids,
        first_scn: config.base_scn,
        end_scn: newest_checkpoint,
        ops: total_ops,
        live_rows,
        data_bytes: generator.data_bytes,
        archive_bytes: archive.bytes,
        truth_bytes,
        elapsed: started.elapsed(),
    })
}

fn validate(config: &GenerateConfig) -> Result<()> {
    let invalid = |reason: String| Err(BackupError::InvalidConfig(reason));
    if !config.dir.is_absolute() {
        return invalid(format!(
            "output dir '{}' must be absolute",
            config.dir.display()
        ));
    }
    if config.duration_ns < 1_000_000 || config.piece_len_ns == 0 {
        return invalid("duration must be at least 1 ms and piece length positive".to_string());
    }
    if config.user_log_streams == 0 || config.tablets_per_ls == 0 {
        return invalid(
            "need at least one user log stream and one tablet per log stream".to_string(),
        );
    }
    if config
        .base_scn
        .as_u64()
        .checked_add(config.duration_ns.saturating_mul(2))
        .is_none()
    {
        return invalid("base scn + duration overflows".to_string());
    }
    let mut seen_full = false;
    let mut order: Vec<&SetPlan> = config.sets.iter().collect();
    order.sort_by(|a, b| a.at.total_cmp(&b.at));
    if order
        .iter()
        .zip(&config.sets)
        .any(|(a, b)| !std::ptr::eq(*a, b))
    {
        return invalid("sets must be listed in time order".to_string());
    }
    for plan in &config.sets {
        if !(plan.at > 0.0 && plan.at < 1.0) {
            return invalid(format!(
                "set position {} must be strictly between 0 and 1",
                plan.at
            ));
        }
        match plan.backup_type {
            BackupType::Full if !plan.fail => seen_full = true,
            BackupType::Incremental if !seen_full => {
                return invalid(
                    "an INCREMENTAL set needs an earlier successful FULL set".to_string(),
                )
            }
            _ => {}
        }
    }
    for gap in &config.gaps {
        if !(gap.at > 0.0 && gap.at < 1.0) {
            return invalid(format!(
                "gap position {} must be strictly between 0 and 1",
                gap.at
            ));
        }
    }
    Ok(())
}

impl Generator<'_> {
    fn handle_event(
        &mut self,
        scn: Scn,
        kind: EventKind,
        archive: &mut ArchiveWriter,
        rng: &mut ChaCha8Rng,
    ) -> Result<()> {
        match kind {
            EventKind::ArchiveStop => archive.stop_round(scn),
            EventKind::ArchiveRestart => {
                if archive.current.is_none()
                    && scn < Scn(self.config.base_scn.as_u64() + self.config.duration_ns)
                {
                    archive.start_round(scn)?;
                }
                Ok(())
            }
            EventKind::Set(index) => self.take_set(scn, index, rng),
        }
    }

    fn take_set(&mut self, snapshot: Scn, index: usize, rng: &mut ChaCha8Rng) -> Result<()> {
        let plan = &self.config.sets[index];
        let set_id = index as u64 + 1;
        let (prev_full, prev_inc) = match plan.backup_type {
            BackupType::Full => (0, 0),
            BackupType::Incremental => {
                (self.last_full.unwrap_or(0), self.last_success.unwrap_or(0))
            }
        };
        let mut salt = [0u8; 16];
        rng.fill_bytes(&mut salt);
        let (encryption, key) = match &plan.password {
            Some(password) => {
                let (info, key) =
                    crypto::new_encryption(password, salt, self.config.kdf_iterations);
                (Some(info), Some(key))
            }
            None => (None, None),
        };
        let backup_window = (self.config.duration_ns / 200).clamp(1, 10 * 60 * NANOS_PER_SEC);
        let min_restore_scn = Scn(snapshot.as_u64() + backup_window);
        let set_dir = self
            .data_dir
            .join(layout::set_dir_name(set_id, plan.backup_type));
        let sets_dir = self.data_dir.join(layout::BACKUP_SETS_DIR);
        let start_name = layout::set_start_marker(set_id, plan.backup_type);
        write_meta(
            &sets_dir.join(&start_name),
            &ListingMarker {
                name: start_name.clone(),
                scn: snapshot,
            },
        )?;

        let mut output_bytes = 0;
        let mut ls_attrs = Vec::new();
        for ls_id in self.ls_ids.clone() {
            let tablet_indices: Vec<usize> = (0..self.tablets.len())
                .filter(|&tablet| self.tablets[tablet].ls_id == ls_id)
                .collect();
            ls_attrs.push(LsAttr {
                ls_id,
                tablet_ids: tablet_indices
                    .iter()
                    .map(|&tablet| self.tablets[tablet].tablet_id)
                    .collect(),
            });
            output_bytes += self.write_ls_data(
                &set_dir,
                ls_id,
                &tablet_indices,
                plan.backup_type,
                key.as_ref(),
            )?;
        }
        write_meta(
            &layout::ls_attr_info_path(&set_dir),
            &LsAttrInfo {
                log_streams: ls_attrs,
            },
        )?;
        self.data_bytes += output_bytes;
        let info = BackupSetInfo {
            backup_set_id: set_id,
            backup_type: plan.backup_type,
            prev_full_backup_set_id: prev_full,
            prev_inc_backup_set_id: prev_inc,
            start_replay_scn: snapshot,
            min_restore_scn,
            status: if plan.fail {
                SetStatus::Failed
            } else {
                SetStatus::Success
            },
            file_status: FileStatus::Available,
            encryption,
            output_bytes,
            tenant_id: self.config.tenant_id,
            tenant_name: self.config.tenant_name.clone(),
            cluster_version: self.config.cluster_version.clone(),
        };
        write_meta(&set_dir.join(layout::SINGLE_SET_INFO), &info)?;
        self.sets.push(info);
        write_meta(
            &set_dir.join(layout::TENANT_SET_INFOS),
            &TenantBackupSetInfos {
                backup_sets: self.sets.clone(),
            },
        )?;
        let end_name =
            layout::set_end_marker(set_id, plan.backup_type, !plan.fail, min_restore_scn);
        write_meta(
            &sets_dir.join(&end_name),
            &ListingMarker {
                name: end_name.clone(),
                scn: min_restore_scn,
            },
        )?;
        if !plan.fail {
            self.dirty.clear();
            self.last_success = Some(set_id);
            if plan.backup_type == BackupType::Full {
                self.last_full = Some(set_id);
            }
        }
        Ok(())
    }

    /// Writes one LS of a set: its data files and `macro_range_index.obbak`. Returns bytes.
    fn write_ls_data(
        &mut self,
        set_dir: &Path,
        ls_id: LsId,
        tablet_indices: &[usize],
        backup_type: BackupType,
        key: Option<&SetKey>,
    ) -> Result<u64> {
        let dir = layout::ls_data_dir(set_dir, ls_id);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let mut files: Vec<MacroRangeEntry> = Vec::new();
        let mut current: Option<(BlockWriter<BufWriter<File>>, PathBuf, BTreeSet<TabletId>)> = None;
        let mut bytes = 0;
        for &tablet_index in tablet_indices {
            let keys: Vec<u64> = match backup_type {
                BackupType::Full => {
                    let mut keys = self.tablets[tablet_index].live_keys.clone();
                    keys.sort_unstable();
                    keys
                }
                BackupType::Incremental => self
                    .dirty
                    .range((tablet_index, 0)..=(tablet_index, u64::MAX))
                    .map(|&(_, key)| key)
                    .collect(),
            };
            let tablet_id = self.tablets[tablet_index].tablet_id;
            for row_key in keys {
                if current.as_ref().is_some_and(|(writer, _, _)| {
                    writer.bytes_written() >= self.config.data_file_bytes
                }) {
                    if let Some((writer, path, tablets)) = current.take() {
                        bytes += finish_data_file(writer, &path, tablets, &mut files)?;
                    }
                }
                if current.is_none() {
                    let file_index = files.len() as u64 + 1;
                    let path = dir.join(layout::data_file_name(file_index));
                    let out = create_file(&path)?;
                    let writer = BlockWriter::new(
                        out,
                        FileKind::Data,
                        ls_id,
                        file_index,
                        key.cloned(),
                        self.config.block_bytes,
                    )
                    .map_err(io_err(&path))?;
                    current = Some((writer, path, BTreeSet::new()));
                }
                let version = self.tablets[tablet_index]
                    .rows
                    .get(&row_key)
                    .map(|row| row.1);
                let key_bytes = row_key.to_be_bytes();
                if let Some((writer, path, tablets)) = current.as_mut() {
                    tablets.insert(tablet_id);
                    match version {
                        Some(version) => {
                            self.values
                                .fill(tablet_id, row_key, version, &mut self.value_buffer);
                            writer.push_data_row(tablet_id, &key_bytes, Some(&self.value_buffer))
                        }
                        None => writer.push_data_row(tablet_id, &key_bytes, None),
                    }
                    .map_err(io_err(path))?;
                }
            }
        }
        if let Some((writer, path, tablets)) = current.take() {
            bytes += finish_data_file(writer, &path, tablets, &mut files)?;
        }
        write_meta(
            &dir.join(layout::MACRO_RANGE_INDEX),
            &MacroRangeIndex { ls_id, files },
        )?;
        Ok(bytes)
    }
}

fn finish_data_file(
    writer: BlockWriter<BufWriter<File>>,
    path: &Path,
    tablets: BTreeSet<TabletId>,
    files: &mut Vec<MacroRangeEntry>,
) -> Result<u64> {
    let (stats, _) = writer.finish().map_err(io_err(path))?;
    files.push(MacroRangeEntry {
        file_index: files.len() as u64 + 1,
        size_bytes: stats.bytes,
        block_count: stats.blocks,
        row_count: stats.records,
        tablet_ids: tablets.into_iter().collect(),
    });
    Ok(stats.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_durations_and_patterns_parse() {
        assert_eq!(parse_size("256MiB").unwrap(), 256 << 20);
        assert_eq!(parse_size("1.5 GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert!(parse_size("ten").is_err());
        assert_eq!(parse_duration_ns("6h").unwrap(), 6 * 3600 * NANOS_PER_SEC);
        assert_eq!(parse_duration_ns("30m").unwrap(), 1800 * NANOS_PER_SEC);
        assert!(parse_duration_ns("3 fortnights").is_err());
        let sets = sets_from_pattern("F,I,F").unwrap();
        assert_eq!(sets.len(), 3);
        assert_eq!(sets[1].backup_type, BackupType::Incremental);
        assert!((sets[0].at - 0.25).abs() < 1e-9);
        assert!(sets_from_pattern("FX").is_err());
    }
}

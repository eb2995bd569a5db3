//! A deterministic synthetic backup: a tenant, its workload, backup sets, archive pieces,
//! and the truth file (SPEC §5.4).
//!
//! Same config and seed → byte-identical output. Memory is bounded by the number of live
//! rows (a few tens of bytes each), never by the data size: values are regenerated from
//! `(seed, tablet, key, version)` whenever a set or log needs them.
//!
//! [`generate`] walks these steps, one file per job:
//!
//! 1. Check the config (`config.rs`) and create the two destinations with their
//!    `format.obbak` files (`Destinations`).
//! 2. Size the workload and lay out the tablets (`workload.rs`); schedule the planned
//!    sets and archive gaps by SCN (`schedule_events`).
//! 3. Run the workload op by op, each at a rising SCN. Before an op, every event due is
//!    handled: a set is taken of the rows as they are (`backup_sets.rs`), archiving stops
//!    or restarts (`archive.rs`). Each op is recorded in the truth file (`truth.rs`) and
//!    appended to the archive's log of its log stream.
//! 4. Handle the events after the last op; close the open piece ACTIVE.
//! 5. Mark the sets and pieces planned DELETED and remove their files.
//!
//! Every random draw comes from one ChaCha8 stream seeded with `seed`, in this order,
//! so the steps must not be reordered.

mod archive;
mod backup_sets;
mod config;
mod workload;

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{BackupError, Result};
use crate::layout;
use crate::meta::{write_meta, BackupSetInfo, DestType, FormatInfo, LsId, PieceInfo};
use crate::scn::Scn;
use crate::truth::TruthWriter;
use crate::uri::StorageUri;
use archive::ArchiveWriter;
use backup_sets::SetWriter;
use workload::{Change, Workload};

pub use config::{
    parse_duration_ns, parse_size, sets_from_pattern, GapPlan, GenerateConfig, SetPlan,
    DEFAULT_BASE_SCN,
};

const WRITE_BUFFER: usize = 1 << 20;

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

/// Writes the synthetic backup described by `config`.
///
/// # Errors
/// [`BackupError::InvalidConfig`] for an unsatisfiable config (e.g. an INCREMENTAL
/// before any FULL, an existing destination without `overwrite`); I/O errors.
#[tracing::instrument(skip_all, fields(dir = %config.dir.display(), seed = config.seed, bytes = config.target_bytes))]
pub fn generate(config: &GenerateConfig) -> Result<GenerateSummary> {
    let started = Instant::now();
    config::validate(config)?;
    let dirs = Destinations::create(config)?;
    let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
    let ls_ids = log_stream_ids(config);
    let mut workload = Workload::new(config, &ls_ids);
    let mut events = schedule_events(config).into_iter().peekable();
    let mut truth = TruthWriter::create(&dirs.truth)?;
    let mut archive = ArchiveWriter::new(dirs.archive.clone(), config);
    archive.start_round(config.base_scn)?;
    let mut sets = SetWriter::new(config, dirs.data.clone(), &ls_ids);
    let mut writers = Writers {
        config,
        archive: &mut archive,
        sets: &mut sets,
        workload: &mut workload,
    };

    for op_index in 0..writers.workload.total_ops() {
        let scn = writers.workload.op_scn(op_index, &mut rng);
        while let Some((event_scn, kind)) = events.next_if(|(event_scn, _)| *event_scn < scn) {
            writers.handle_event(event_scn, kind, &mut rng)?;
        }
        let change = writers.workload.next_change(&mut rng);
        writers.record_change(scn, &change, &mut truth)?;
    }
    for (event_scn, kind) in events {
        writers.handle_event(event_scn, kind, &mut rng)?;
    }
    let end_scn = workload_end(config);
    archive.finish(end_scn)?;
    let truth_bytes = truth.finish()?;

    let (set_infos, data_bytes) = sets.into_sets()?;
    let (pieces, archive_bytes) = archive.into_pieces(&config.delete_pieces, &ls_ids)?;
    let newest_checkpoint = pieces
        .iter()
        .map(|piece| piece.checkpoint_scn)
        .max()
        .unwrap_or(end_scn);
    Ok(GenerateSummary {
        data_uri: StorageUri::from_path(&dirs.data).to_string(),
        archive_uri: StorageUri::from_path(&dirs.archive).to_string(),
        tenant_dir: dirs.tenant,
        data_dir: dirs.data,
        archive_dir: dirs.archive,
        truth_dir: dirs.truth,
        tenant_id: config.tenant_id,
        tenant_name: config.tenant_name.clone(),
        sets: set_infos,
        pieces,
        log_stream_ids: ls_ids,
        first_scn: config.base_scn,
        end_scn: newest_checkpoint,
        ops: workload.total_ops(),
        live_rows: workload.live_rows,
        data_bytes,
        archive_bytes,
        truth_bytes,
        elapsed: started.elapsed(),
    })
}

/// The directories one generation writes.
struct Destinations {
    /// `<dir>/<cluster_name>/<cluster_id>/incarnation_1/<tenant_id>`.
    tenant: PathBuf,
    /// `<tenant>/data`: the backup sets.
    data: PathBuf,
    /// `<tenant>/clog`: the archive.
    archive: PathBuf,
    /// `<tenant>/truth`: the truth file.
    truth: PathBuf,
}

impl Destinations {
    /// Removes earlier output (only with `overwrite`), then writes the `format.obbak` of
    /// both destinations and creates their listing directories.
    ///
    /// # Errors
    /// `InvalidConfig` when a directory exists without `overwrite`; I/O errors.
    fn create(config: &GenerateConfig) -> Result<Destinations> {
        let tenant = config.tenant_dir();
        let dirs = Destinations {
            data: tenant.join("data"),
            archive: tenant.join("clog"),
            truth: tenant.join("truth"),
            tenant,
        };
        for dir in [&dirs.data, &dirs.archive, &dirs.truth] {
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
            &dirs.data.join(layout::FORMAT_FILE),
            &format(DestType::Data, 0),
        )?;
        std::fs::create_dir_all(dirs.data.join(layout::BACKUP_SETS_DIR))
            .map_err(io_err(&dirs.data))?;
        write_meta(
            &dirs.archive.join(layout::FORMAT_FILE),
            &format(DestType::ArchiveLog, 1),
        )?;
        std::fs::create_dir_all(dirs.archive.join(layout::PIECES_DIR))
            .map_err(io_err(&dirs.archive))?;
        Ok(dirs)
    }
}

/// The sys log stream 1, then user log streams 1001, 1002, ...
fn log_stream_ids(config: &GenerateConfig) -> Vec<LsId> {
    let mut ls_ids = vec![1];
    ls_ids.extend((0..u64::from(config.user_log_streams)).map(|index| 1001 + index));
    ls_ids
}

/// The SCN the workload ends at.
fn workload_end(config: &GenerateConfig) -> Scn {
    Scn(config.base_scn.as_u64() + config.duration_ns)
}

/// Something that happens between ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum EventKind {
    ArchiveRestart,
    /// Take planned set `index`.
    Set(usize),
    ArchiveStop,
}

/// The planned sets and archive gaps, by SCN (and kind at the same SCN).
fn schedule_events(config: &GenerateConfig) -> Vec<(Scn, EventKind)> {
    let base = config.base_scn.as_u64();
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
    events
}

/// What the workload and the events write to while the workload runs.
struct Writers<'g, 'c> {
    config: &'c GenerateConfig,
    archive: &'g mut ArchiveWriter,
    sets: &'g mut SetWriter<'c>,
    workload: &'g mut Workload,
}

impl Writers<'_, '_> {
    fn handle_event(&mut self, scn: Scn, kind: EventKind, rng: &mut ChaCha8Rng) -> Result<()> {
        match kind {
            EventKind::ArchiveStop => self.archive.stop_round(scn),
            EventKind::ArchiveRestart => {
                if !self.archive.is_archiving() && scn < workload_end(self.config) {
                    self.archive.start_round(scn)?;
                }
                Ok(())
            }
            EventKind::Set(index) => self.sets.take_set(scn, index, rng, self.workload),
        }
    }

    /// Records `change` in the truth file and the archive; the next incremental set
    /// will hold its row.
    fn record_change(&mut self, scn: Scn, change: &Change, truth: &mut TruthWriter) -> Result<()> {
        let key_bytes = change.key.to_be_bytes();
        let value_hash = self.workload.fill_value(change);
        truth.record(
            scn,
            change.ls_id,
            change.tablet_id,
            change.op_char(),
            &key_bytes,
            value_hash.as_ref(),
        )?;
        self.archive.append(
            scn,
            change.ls_id,
            change.tablet_id,
            change.op,
            &key_bytes,
            &self.workload.value,
        )?;
        self.workload
            .dirty
            .insert((change.tablet_index, change.key));
        Ok(())
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> BackupError + '_ {
    move |err| BackupError::io(path, err)
}

/// Creates `path` (and its parent directories) for buffered writing.
fn create_file(path: &Path) -> Result<BufWriter<File>> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    }
    let file = File::create(path).map_err(io_err(path))?;
    Ok(BufWriter::with_capacity(WRITE_BUFFER, file))
}

/// Removes the `logstream_<id>` directories of `ls_ids` under `dir` (a DELETED set or
/// piece keeps only its info files).
fn remove_ls_dirs(dir: &Path, ls_ids: &[LsId]) -> Result<()> {
    for ls_id in ls_ids {
        let ls_dir = dir.join(format!("logstream_{ls_id}"));
        if ls_dir.exists() {
            std::fs::remove_dir_all(&ls_dir).map_err(io_err(&ls_dir))?;
        }
    }
    Ok(())
}

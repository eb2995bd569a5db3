//! Tenant rows: sorted, immutable run files per tenant (a one-level LSM tree).
//!
//! Layout under the rows directory (`<data-dir>/obrestore.rows/` for an agent):
//!
//! | path | what |
//! |---|---|
//! | `t<tenant_id>/<lo>-<hi>.run` | a committed run (`lo`, `hi`: 16 lower-case hex digits) |
//! | `t<tenant_id>/<lo>-<hi>.tmp` | a run being written; removed at open |
//! | `dropped-<tenant_id>-<n>/` | a tenant's runs being removed; removed at open |
//!
//! A run holds the rows of one [`RowStore::apply`] batch (`lo == hi ==` the batch's
//! sequence number) or the merge of a tenant's runs with sequence numbers in `lo..=hi`
//! (compaction). Sequence numbers come from one counter per store, so later batches have
//! higher numbers. Reads merge all runs of the tenant (a heap: O(log runs) per record):
//! for a `(tablet_id, key)` the run with the highest `hi` wins, and a tombstone there
//! hides the row.
//!
//! **Compaction** is lazy and size-tiered: only an `apply` that leaves the tenant with
//! more than [`COMPACT_AT_RUNS`] runs merges some, namely the newest runs of the smallest
//! size tiers (a factor of [`TIER_FAN_IN`] in bytes per tier) that number at least
//! `TIER_FAN_IN`. Small runs are merged often and big ones rarely, so a row is rewritten
//! about once per tier rather than once per compaction (merging every run each time
//! rewrote a 2.5 GB restore's rows 4 times over), and fewer than `COMPACT_AT_RUNS`
//! batches are never rewritten. A merge keeps tombstones unless it includes the
//! tenant's oldest run.
//!
//! **Commit protocol.** A run is written to `.tmp`, `fdatasync`ed, renamed to `.run`,
//! and the tenant directory is `fsync`ed; only then does `apply` return. A crash before
//! the rename leaves a `.tmp` that the next open removes, so a batch is all or nothing.
//! A new directory (the store's, a tenant's) is `fsync`ed into its parent when created.
//! Compaction commits the same way; its inputs are deleted after the output's rename.
//! A run whose `lo..=hi` lies inside another run's range is such an input and is deleted
//! at open. Dropping a tenant's rows renames its directory to `dropped-*` (one atomic
//! step, then the parent is `fsync`ed) before deleting it.
//!
//! **Run file format** (version 2, little-endian):
//!
//! ```text
//! header  : magic "OBRRUN01" | version u32 | reserved u32 | tenant_id u64 | lo u64 | hi u64   (40 bytes)
//! records : tablet_id u64 | key_len u32 | value_len u32 (0xFFFF_FFFF = tombstone) | key | value | value_sha256 (32 bytes, not for a tombstone)
//!           ... strictly ascending by (tablet_id, key)
//! footer  : magic "OBRRUNFT" | rows u64 | tombstones u64 | records_len u64 | crc32 u32 | reserved u32 (40 bytes)
//! ```
//!
//! `crc32` (IEEE, `crc32fast`) covers the records, value hashes included. Opening a run
//! checks the header, the footer and the file length; reading it to the end checks the
//! row count and the CRC. `value_sha256` is the SHA-256 of the value, computed by the
//! writer of the batch from the bytes it writes (a merge copies it): the tenant digest
//! (`digest.rs`) reads it instead of hashing every value again, so the Post check costs a
//! read and a CRC of the runs, not a SHA-256 of every value after the last log stream.
//! Version 1 runs (no value hashes) are still read; the reader hashes their values.

//!
//! `run_file.rs` holds the run file format: writing a run, reading one back, merging
//! runs; `split_merge.rs` the hashed scan on two threads. This file holds the store: which runs a tenant has, the commit protocol
//! around them, compaction and drops.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing::warn;

use super::error::{ClusterError, ClusterResult};
use super::model::RowBatch;
use run_file::{merge, read_frame, RunReader, RunWriter};

mod failpoint;
mod run_file;
mod split_merge;

#[cfg(feature = "failpoints")]
pub use failpoint::{clear_row_write_failure, fail_row_writes_under};

/// Version of the run file format described in the module docs.
pub const RUN_FORMAT_VERSION: u32 = 2;
/// A tenant with more committed runs than this gets some of them merged after the
/// `apply` that crossed it: the newest runs of the smallest size tiers (see [`tier`]).
pub const COMPACT_AT_RUNS: usize = 48;
/// Size tiers: a compaction merges at least this many newest runs, all of the smallest
/// tiers that give that many.
pub const TIER_FAN_IN: usize = 16;
// A compaction past COMPACT_AT_RUNS always finds TIER_FAN_IN runs to merge.
const _: () = assert!(TIER_FAN_IN >= 2 && TIER_FAN_IN <= COMPACT_AT_RUNS);
/// Runs below this size are in tier 0; tier `t` holds runs of
/// `TIER_BASE_BYTES × TIER_FAN_IN^t` bytes up to `TIER_FAN_IN` times that.
const TIER_BASE_BYTES: u64 = 1 << 20;

/// Total read buffer of one merge, shared by its runs (each gets 16 KiB to 256 KiB).
const MERGE_READ_BUDGET: usize = 8 << 20;

fn io_error(path: &Path, error: impl std::fmt::Display) -> ClusterError {
    ClusterError::RowFile {
        path: path.display().to_string(),
        reason: error.to_string(),
    }
}

fn sync_dir(dir: &Path) -> ClusterResult<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(dir, format!("fsync of the directory: {e}")))
}

fn run_name(lo: u64, hi: u64, ext: &str) -> String {
    format!("{lo:016x}-{hi:016x}.{ext}")
}

/// `(lo, hi)` of a `<lo>-<hi>.run` name.
fn parse_run_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".run")?;
    let (lo, hi) = stem.split_once('-')?;
    if lo.len() != 16 || hi.len() != 16 {
        return None;
    }
    let lo = u64::from_str_radix(lo, 16).ok()?;
    let hi = u64::from_str_radix(hi, 16).ok()?;
    (lo <= hi).then_some((lo, hi))
}

/// A committed run of one tenant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    lo: u64,
    hi: u64,
    rows: u64,
    tombstones: u64,
    /// Bytes of its records.
    bytes: u64,
}

/// The size tier of a run of `bytes` record bytes: 0 below
/// `TIER_BASE_BYTES × TIER_FAN_IN`, then one more per factor of `TIER_FAN_IN`.
fn tier(bytes: u64) -> u32 {
    let mut tier = 0;
    let mut limit = TIER_BASE_BYTES.saturating_mul(TIER_FAN_IN as u64);
    while bytes >= limit && limit != u64::MAX {
        tier += 1;
        limit = limit.saturating_mul(TIER_FAN_IN as u64);
    }
    tier
}

/// What a compaction merges: `runs` (consecutive, oldest first); tombstones are dropped
/// only when the oldest run of the tenant is among them (nothing older to hide).
struct Compaction {
    runs: Vec<Run>,
    drop_tombstones: bool,
}

impl Compaction {
    /// Every run below the first in-flight batch (the explicit [`RowStore::compact`]).
    fn all(runs: &BTreeMap<u64, Run>, below: u64) -> Compaction {
        Compaction {
            runs: runs
                .values()
                .filter(|run| run.hi < below)
                .copied()
                .collect(),
            drop_tombstones: true,
        }
    }

    /// The newest runs below the first in-flight batch whose tier is at most `t`, for the
    /// smallest `t` that makes them at least [`TIER_FAN_IN`] runs (all of them if none
    /// does). Small runs are merged often and big ones rarely, so a row is rewritten
    /// about once per tier, not once per compaction.
    fn tiered(runs: &BTreeMap<u64, Run>, below: u64) -> Compaction {
        let eligible: Vec<Run> = runs
            .values()
            .filter(|run| run.hi < below)
            .copied()
            .collect();
        let tiers: Vec<u32> = eligible.iter().map(|run| tier(run.bytes)).collect();
        let mut first = 0;
        for t in tiers.iter().copied().collect::<BTreeSet<u32>>() {
            let group = tiers.iter().rev().take_while(|tier| **tier <= t).count();
            if group >= TIER_FAN_IN {
                first = eligible.len() - group;
                break;
            }
        }
        Compaction {
            // Eligible runs are the oldest ones: the first is the tenant's oldest run.
            drop_tombstones: first == 0,
            runs: eligible[first..].to_vec(),
        }
    }
}

#[derive(Default)]
struct State {
    next_seq: u64,
    /// Sequence numbers handed out whose run is not committed (or abandoned) yet.
    inflight: BTreeSet<u64>,
    /// Committed runs per tenant, by `lo`.
    tenants: HashMap<u64, BTreeMap<u64, Run>>,
    /// Counter for unique `dropped-*` names.
    drops: u64,
}

/// Summary of a tenant's stored runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Committed runs.
    pub runs: usize,
    /// Row versions stored, tombstones included (≥ live rows).
    pub versions: u64,
}

/// The row store of one cluster.
#[derive(Debug)]
pub struct RowStore {
    dir: PathBuf,
    state: Mutex<State>,
    /// Held by a compaction for its whole run and by a drop, so that a compaction never
    /// commits a merge of runs whose tenant directory was dropped meanwhile.
    maintenance: Mutex<()>,
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("next_seq", &self.next_seq)
            .field("tenants", &self.tenants.len())
            .finish_non_exhaustive()
    }
}

impl RowStore {
    /// Opens (creating) the store in `dir`: removes unfinished writes, finished-but-not-
    /// deleted compaction inputs and half-dropped tenants, checks every run's header and
    /// footer, and removes the runs of tenants for which `keep` is false.
    ///
    /// # Errors
    /// I/O failures; a run whose header or footer is invalid (`RowFile`).
    pub fn open(dir: impl Into<PathBuf>, keep: impl Fn(u64) -> bool) -> ClusterResult<RowStore> {
        let dir = dir.into();
        if !dir.exists() {
            std::fs::create_dir_all(&dir).map_err(|e| io_error(&dir, e))?;
            // The new directory's own name must be on the device before the runs in it.
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                sync_dir(parent)?;
            }
        }
        let mut state = State::default();
        let mut max_seq = 0u64;
        let mut removed_any = false;
        for entry in std::fs::read_dir(&dir).map_err(|e| io_error(&dir, e))? {
            let entry = entry.map_err(|e| io_error(&dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            if name.starts_with("dropped-") {
                std::fs::remove_dir_all(&path).map_err(|e| io_error(&path, e))?;
                removed_any = true;
                continue;
            }
            let Some(tenant_id) = name.strip_prefix('t').and_then(|t| t.parse::<u64>().ok()) else {
                continue;
            };
            if !keep(tenant_id) {
                std::fs::remove_dir_all(&path).map_err(|e| io_error(&path, e))?;
                removed_any = true;
                continue;
            }
            let runs = open_tenant_dir(&path, tenant_id)?;
            if let Some(run) = runs.values().next_back() {
                max_seq = max_seq.max(run.hi);
            }
            if !runs.is_empty() {
                state.tenants.insert(tenant_id, runs);
            }
        }
        if removed_any {
            sync_dir(&dir)?;
        }
        state.next_seq = max_seq + 1;
        Ok(RowStore {
            dir,
            state: Mutex::new(state),
            maintenance: Mutex::new(()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn tenant_dir(&self, tenant_id: u64) -> PathBuf {
        self.dir.join(format!("t{tenant_id}"))
    }

    /// Applies `batch` in order as one atomic, durable batch (put = upsert, delete = remove).
    ///
    /// # Errors
    /// `InvalidRow` for a key or value of 4 GiB or more; I/O failures.
    pub fn apply(&self, tenant_id: u64, batch: &RowBatch) -> ClusterResult<()> {
        if batch.is_empty() {
            return Ok(());
        }
        // Sorted by (tablet, key), stable, so that the last change of a key is the last of
        // its equal run (changes apply in order). A batch already in strictly ascending
        // order (a data round's rows, read from sorted blocks) is written as it is.
        let ascending = (1..batch.len())
            .all(|index| batch.get(index - 1).sort_key() < batch.get(index).sort_key());
        let order: Option<Vec<u32>> = (!ascending).then(|| {
            let mut order: Vec<u32> = (0..batch.len() as u32).collect();
            order.sort_by(|a, b| {
                batch
                    .get(*a as usize)
                    .sort_key()
                    .cmp(&batch.get(*b as usize).sort_key())
            });
            order
        });
        let seq = {
            let mut state = self.lock();
            let seq = state.next_seq;
            state.next_seq += 1;
            state.inflight.insert(seq);
            seq
        };
        let written = (|| {
            let mut writer =
                RunWriter::create(&self.dir, &self.tenant_dir(tenant_id), tenant_id, seq, seq)?;
            let Some(order) = order else {
                for change in batch.iter() {
                    writer.push(change.tablet_id, change.key, change.value)?;
                }
                return writer.commit();
            };
            for (position, index) in order.iter().enumerate() {
                let change = batch.get(*index as usize);
                if let Some(next) = order.get(position + 1) {
                    if batch.get(*next as usize).sort_key() == change.sort_key() {
                        continue; // a later change of the batch overrides this one
                    }
                }
                writer.push(change.tablet_id, change.key, change.value)?;
            }
            writer.commit()
        })();
        {
            let mut state = self.lock();
            state.inflight.remove(&seq);
            let run = written?;
            state
                .tenants
                .entry(tenant_id)
                .or_default()
                .insert(run.lo, run);
        }
        if self.stats(tenant_id).runs > COMPACT_AT_RUNS {
            if let Err(error) = self.compact_with(tenant_id, Compaction::tiered) {
                // The batch itself is durable; compaction is retried by the next batch.
                warn!(tenant_id, %error, "compaction of tenant rows failed");
            }
        }
        Ok(())
    }

    /// Merges the tenant's committed runs below every in-flight batch into one run,
    /// dropping overridden versions and tombstones. Returns how many runs were merged
    /// (0 when there was nothing to do or another compaction is running).
    ///
    /// # Errors
    /// I/O failures, a corrupt run.
    pub fn compact(&self, tenant_id: u64) -> ClusterResult<usize> {
        self.compact_with(tenant_id, Compaction::all)
    }

    /// Merges the runs `choose` picks among the tenant's committed runs (given the first
    /// in-flight sequence number) into one run. Returns how many runs were merged.
    fn compact_with(
        &self,
        tenant_id: u64,
        choose: fn(&BTreeMap<u64, Run>, u64) -> Compaction,
    ) -> ClusterResult<usize> {
        let _maintenance = match self.maintenance.try_lock() {
            Ok(guard) => guard,
            Err(std::sync::TryLockError::WouldBlock) => return Ok(0),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        };
        let (inputs, drop_tombstones, readers) = {
            let state = self.lock();
            let below = state.inflight.first().copied().unwrap_or(u64::MAX);
            let Some(runs) = state.tenants.get(&tenant_id) else {
                return Ok(0);
            };
            let Compaction {
                runs: inputs,
                drop_tombstones,
            } = choose(runs, below);
            if inputs.len() < 2 {
                return Ok(0);
            }
            let readers = self.open_runs(tenant_id, &inputs)?;
            (inputs, drop_tombstones, readers)
        };
        let result = (|| {
            let lo = inputs.first().map_or(0, |run| run.lo);
            let hi = inputs.last().map_or(0, |run| run.hi);
            let mut writer =
                RunWriter::create(&self.dir, &self.tenant_dir(tenant_id), tenant_id, lo, hi)?;
            merge(readers, &mut |tablet_id, key, value| {
                if value.is_some() || !drop_tombstones {
                    writer.push_hashed(tablet_id, key, value)?;
                }
                Ok(())
            })?;
            writer.commit()
        })();
        let output = result?;
        let mut state = self.lock();
        // Only this function removes runs other than a drop, which `maintenance` excludes.
        let runs = state.tenants.entry(tenant_id).or_default();
        for run in &inputs {
            runs.remove(&run.lo);
        }
        runs.insert(output.lo, output);
        drop(state);
        let dir = self.tenant_dir(tenant_id);
        for run in &inputs {
            let path = dir.join(run_name(run.lo, run.hi, "run"));
            if let Err(error) = std::fs::remove_file(&path) {
                if error.kind() != std::io::ErrorKind::NotFound {
                    warn!(path = %path.display(), %error, "cannot remove a compacted run");
                }
            }
        }
        Ok(inputs.len())
    }

    /// Opens readers over `runs` of the tenant (called with the state locked, so that a
    /// concurrent compaction cannot delete them first).
    fn open_runs(&self, tenant_id: u64, runs: &[Run]) -> ClusterResult<Vec<RunReader>> {
        let buffer = (MERGE_READ_BUDGET / runs.len().max(1)).clamp(16 << 10, 256 << 10);
        let dir = self.tenant_dir(tenant_id);
        runs.iter()
            .map(|run| {
                RunReader::open(
                    &dir.join(run_name(run.lo, run.hi, "run")),
                    tenant_id,
                    *run,
                    buffer,
                )
            })
            .collect()
    }

    /// Calls `visit(tablet_id, key, value)` for every live row in `(tablet_id, key)` order.
    ///
    /// # Errors
    /// I/O failures; a corrupt run (the CRC is checked when a run has been read to its
    /// end, so rows before the corruption may have been visited).
    pub fn for_each(
        &self,
        tenant_id: u64,
        visit: &mut super::service::RowVisitor<'_>,
    ) -> ClusterResult<()> {
        let (_, readers) = self.open_tenant_runs(tenant_id)?;
        merge(readers, &mut |tablet_id, key, value| {
            if let Some((value, _)) = value {
                visit(tablet_id, key, value);
            }
            Ok(())
        })
    }

    /// Calls `visit(tablet_id, key, SHA-256 of the value)` for every live row in
    /// `(tablet_id, key)` order: [`RowStore::for_each`] with the value hashes the runs
    /// store (each run is still read to its end and its CRC checked).
    ///
    /// # Errors
    /// As [`RowStore::for_each`].
    ///
    /// Two runs or more are read on two threads (`split_merge.rs`): the older and the
    /// newer half of the runs each merged on its own, then the two streams merged.
    pub fn for_each_hashed(
        &self,
        tenant_id: u64,
        visit: &mut super::digest::HashedRowVisitor<'_>,
    ) -> ClusterResult<()> {
        let (runs, readers) = self.open_tenant_runs(tenant_id)?;
        let readers: Vec<RunReader> = readers.into_iter().map(RunReader::without_values).collect();
        if readers.len() >= 2 {
            let bytes: Vec<u64> = runs.iter().map(|run| run.bytes).collect();
            return split_merge::merge_hashed(&self.tenant_dir(tenant_id), readers, &bytes, visit);
        }
        merge(readers, &mut |tablet_id, key, value| match value {
            Some((_, sha)) => visit(tablet_id, key, sha),
            None => Ok(()),
        })
    }

    /// The tenant's committed runs in ascending sequence order, and a reader of each.
    fn open_tenant_runs(&self, tenant_id: u64) -> ClusterResult<(Vec<Run>, Vec<RunReader>)> {
        let state = self.lock();
        let runs: Vec<Run> = state
            .tenants
            .get(&tenant_id)
            .map(|runs| runs.values().copied().collect())
            .unwrap_or_default();
        let readers = self.open_runs(tenant_id, &runs)?;
        Ok((runs, readers))
    }

    /// Runs and row versions stored for the tenant.
    pub fn stats(&self, tenant_id: u64) -> RunStats {
        let state = self.lock();
        state
            .tenants
            .get(&tenant_id)
            .map(|runs| RunStats {
                runs: runs.len(),
                versions: runs.values().map(|run| run.rows + run.tombstones).sum(),
            })
            .unwrap_or_default()
    }

    /// Removes every row of the tenant, durably (one directory rename), then deletes the
    /// files.
    ///
    /// # Errors
    /// I/O failures.
    pub fn drop_tenant(&self, tenant_id: u64) -> ClusterResult<()> {
        let _maintenance = self
            .maintenance
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = self.tenant_dir(tenant_id);
        let doomed = {
            let mut state = self.lock();
            state.tenants.remove(&tenant_id);
            if !dir.exists() {
                return Ok(());
            }
            state.drops += 1;
            let doomed = self.dir.join(format!(
                "dropped-{tenant_id}-{}-{}",
                std::process::id(),
                state.drops
            ));
            std::fs::rename(&dir, &doomed).map_err(|e| io_error(&dir, e))?;
            sync_dir(&self.dir)?;
            doomed
        };
        std::fs::remove_dir_all(&doomed).map_err(|e| io_error(&doomed, e))
    }
}

/// Committed runs of one tenant directory, after removing `.tmp` files and runs covered
/// by another run (compaction inputs whose output is committed).
fn open_tenant_dir(dir: &Path, tenant_id: u64) -> ClusterResult<BTreeMap<u64, Run>> {
    let mut found: Vec<(u64, u64)> = Vec::new();
    let mut removed_any = false;
    for entry in std::fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
        let entry = entry.map_err(|e| io_error(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.ends_with(".tmp") {
            let path = entry.path();
            std::fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
            removed_any = true;
        } else if let Some(range) = parse_run_name(&name) {
            found.push(range);
        }
    }
    // Widest first among equal `lo`, so a covering run is seen before what it covers.
    found.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let mut runs = BTreeMap::new();
    let mut covered_to: Option<u64> = None;
    for (lo, hi) in found {
        if covered_to.is_some_and(|end| hi <= end) {
            let path = dir.join(run_name(lo, hi, "run"));
            std::fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
            removed_any = true;
            continue;
        }
        if covered_to.is_some_and(|end| lo <= end) {
            return Err(io_error(
                &dir.join(run_name(lo, hi, "run")),
                "overlaps another run without being inside it",
            ));
        }
        covered_to = Some(hi);
        let path = dir.join(run_name(lo, hi, "run"));
        let mut file = File::open(&path).map_err(|e| io_error(&path, e))?;
        let footer = read_frame(&mut file, &path, tenant_id, lo, hi)?;
        runs.insert(
            lo,
            Run {
                lo,
                hi,
                rows: footer.rows,
                tombstones: footer.tombstones,
                bytes: footer.records_len,
            },
        );
    }
    if removed_any {
        sync_dir(dir)?;
    }
    Ok(runs)
}

//! Reading the backup into the cluster: splitting a log stream's data into [`DataGroup`]s
//! (row ranges by macro block, `data/ranges.rs`, or connected groups of tablets when the
//! index lists no blocks), restoring a group's rows, and replaying a log stream's
//! archived log.
//!
//! Everything here is blocking (files and the cluster) and runs on the blocking pool
//! ([`Worker`], `steps::blocking`). Invariants: rows reach the cluster only in durable batches of at
//! most [`APPLY_BATCH_ROWS`] rows / [`APPLY_BATCH_BYTES`] bytes; a set's rows are applied
//! in chain order; a cancelled sub-task stops between blocks (data) or batches (log); a
//! data round does not write the rows its stream's log writes or deletes later
//! (`data/log_keys.rs`), yet reads and counts their blocks as before.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use obrestore_backup::block::{DataRowRef, FILE_HEADER_LEN};
use obrestore_backup::{
    ArchiveStore, BackupError, BackupSetInfo, DataFileRef, DataStore, LogOp, RawDataBlock,
    RestorePlan, Scn, SetKey, Sources,
};
use obrestore_dag::TaskError;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::failpoint::{apply_batch_rows, block_delay, crash_point};
use super::steps::err;
use super::{Deps, RestoreDagParams};
use crate::cluster::{RowBatch, TenantService};
pub(crate) use log_keys::LogKeysCache;
use log_keys::{HeldLogKeys, LogKeys, LOG_KEYS_BUDGET};
pub use ranges::{BlockSpan, RowRange};

mod log_keys;
mod ranges;

/// Rows applied per cluster batch (one `apply_rows`: one run file, durable when it
/// returns).
const APPLY_BATCH_ROWS: usize = 16_384;
/// Bytes of row data applied per cluster batch. Each worker holds one `RowBatch`
/// (the run file is streamed from it), so this bounds memory per worker; larger batches
/// mean fewer `fsync`s and fewer runs to merge (`benches/restore_throughput.rs`).
const APPLY_BATCH_BYTES: usize = 4 << 20;

/// Row batches kept for the next worker when one finishes its group or replay: once
/// grown (to about [`APPLY_BATCH_BYTES`] plus a block) a batch's buffers are reused, not
/// allocated and faulted in again by every step. At most [`POOLED_BATCHES`] are kept, and
/// only while a restore runs: its Post check releases them ([`BatchPool::release`]).
#[derive(Default)]
pub(crate) struct BatchPool(Mutex<Vec<RowBatch>>);

/// Batches a [`BatchPool`] keeps at most.
const POOLED_BATCHES: usize = 4;

impl BatchPool {
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<RowBatch>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A pooled batch (empty), or a new one.
    fn take(&self) -> RowBatch {
        self.lock().pop().unwrap_or_default()
    }

    /// Keeps `batch` (cleared) for the next [`BatchPool::take`] unless the pool is full.
    fn give(&self, mut batch: RowBatch) {
        batch.clear();
        let mut pooled = self.lock();
        if pooled.len() < POOLED_BATCHES {
            pooled.push(batch);
        }
    }

    /// Drops every pooled batch (their memory goes back).
    pub(crate) fn release(&self) {
        self.lock().clear();
    }
}

/// A cancellation flag the blocking workers poll between blocks.
#[derive(Clone, Default)]
pub struct CancelFlag(Arc<AtomicBool>);

impl CancelFlag {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    /// `other` is this flag (a clone of it), not another one.
    pub(super) fn same(&self, other: &CancelFlag) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// One sub-task of `Restore data L`: a range of rows and the blocks that may hold them
/// (`range` and `spans`), or a connected group of tablets and the whole files that hold
/// them (no `range`); both in chain order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataGroup {
    pub name: String,
    pub ls: u64,
    /// The tablets counted in this group's progress (with a range: those whose key space
    /// starts in it).
    pub tablets: Vec<u64>,
    /// `(set_id, file_index)` in apply order.
    pub files: Vec<(u64, u64)>,
    /// Stored bytes counted in this group's progress.
    pub bytes: u64,
    /// Only the rows in this range are restored; `None`: every row of `tablets` in `files`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<RowRange>,
    /// With `range`: the blocks to read, in apply order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<BlockSpan>,
}

/// What blocking work gets: a channel for its progress and the flag that tells it to
/// stop (set when the sub-task is cancelled or its future dropped).
pub(super) struct Worker<P> {
    pub(super) progress: mpsc::UnboundedSender<P>,
    pub(super) cancel: CancelFlag,
}

impl<P> Worker<P> {
    /// Reports progress; a receiver that is gone is not an error.
    pub(super) fn report(&self, progress: P) {
        let _ = self.progress.send(progress);
    }

    /// A worker with the same cancellation flag whose progress goes nowhere.
    pub(super) fn without_progress<Q>(&self) -> Worker<Q> {
        let (progress, _) = mpsc::unbounded_channel();
        Worker {
            progress,
            cancel: self.cancel.clone(),
        }
    }

    /// `Err` once the work should stop.
    fn check_cancel(&self) -> Result<(), TaskError> {
        if self.cancel.is_set() {
            return Err(err("sub task cancelled"));
        }
        Ok(())
    }
}

impl Deps {
    /// The plan's destinations, opened under the agent's roots again.
    pub(super) fn sources(&self, plan: &RestorePlan) -> Result<Sources, TaskError> {
        Sources::open(&plan.data_uri, &plan.archive_uri, &self.roots).map_err(err)
    }

    /// The restore's decryption passwords, unsealed.
    fn passwords(&self, params: &RestoreDagParams) -> Result<Vec<String>, TaskError> {
        match &params.decryption_sealed {
            Some(sealed) => self.keystore.unseal_passwords(sealed).map_err(err),
            None => Ok(Vec::new()),
        }
    }

    /// The data key of an encrypted set (cached), `None` for a plain set.
    fn set_key(
        &self,
        data: &DataStore,
        set: &BackupSetInfo,
        params: &RestoreDagParams,
    ) -> Result<Option<SetKey>, TaskError> {
        if set.encryption.is_none() {
            return Ok(None);
        }
        let cache_key = (data.uri(), set.backup_set_id);
        if let Some(key) = self
            .keys
            .lock()
            .ok()
            .and_then(|keys| keys.get(&cache_key).cloned())
        {
            return Ok(Some(key));
        }
        let passwords = self.passwords(params)?;
        let key = data.unlock(set, &passwords).map_err(err)?.ok_or_else(|| {
            err(BackupError::InvalidPassword {
                set_id: set.backup_set_id,
            })
        })?;
        if let Ok(mut keys) = self.keys.lock() {
            keys.insert(cache_key, key.clone());
        }
        Ok(Some(key))
    }

    /// Applies `batch` (one durable cluster batch) and clears it.
    fn flush_rows(&self, tenant_id: u64, batch: &mut RowBatch) -> Result<(), TaskError> {
        if !batch.is_empty() {
            self.cluster.apply_batch(tenant_id, batch).map_err(err)?;
            crash_point("after-apply-rows");
            batch.clear();
        }
        Ok(())
    }

    /// DAG `dag_id`'s key set of stream `ls` (`data/log_keys.rs`): the rows its data
    /// rounds do not write. Read from the log the replay will apply, once while rounds
    /// of the stream hold it; `None` inside when the stream writes every row.
    pub(super) fn log_keys(
        &self,
        dag_id: u64,
        archive: &ArchiveStore,
        plan: &RestorePlan,
        ls: u64,
        worker: &Worker<u64>,
    ) -> HeldLogKeys {
        self.log_keys.get(dag_id, ls, || {
            let from = plan.restore_start_scn;
            let entries = archive
                .log_entries(&plan.piece_infos(), ls, from, plan.restore_scn)
                .ok()?;
            LogKeys::collect(entries, log_keys_budget(), || worker.cancel.is_set())
        })
    }

    /// Restores one data group: its spans or files, set by set in chain order, without
    /// the rows in `skip` (its stream's log writes them later). Reports the stored bytes
    /// of each block read (with a range: of each block whose first row is in it, so the
    /// reports add up to the group's bytes), skipped rows or not.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn restore_group(
        &self,
        data: &DataStore,
        params: &RestoreDagParams,
        tenant_id: u64,
        group: &DataGroup,
        skip: Option<&LogKeys>,
        worker: &Worker<u64>,
    ) -> Result<(), TaskError> {
        if let Some(range) = &group.range {
            return self.restore_range(data, params, tenant_id, group, range, skip, worker);
        }
        let tablets: BTreeSet<u64> = group.tablets.iter().copied().collect();
        let mut batch = self.batches.take();
        let mut files_by_set: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for (set_id, file_index) in &group.files {
            files_by_set.entry(*set_id).or_default().push(*file_index);
        }
        for planned in &params.plan.sets {
            let set = &planned.info;
            let Some(wanted) = files_by_set.get(&set.backup_set_id) else {
                continue;
            };
            let key = self.set_key(data, set, params)?;
            for file in data.data_files(set, group.ls).map_err(err)? {
                if !wanted.contains(&file.file_index) {
                    continue;
                }
                let mut reader = data.read_data_file(&file, key.as_ref()).map_err(err)?;
                while let Some(block) = reader.next_raw() {
                    worker.check_cancel()?;
                    let block = block.map_err(err)?;
                    let keep = |tablet_id: u64, _: &[u8]| tablets.contains(&tablet_id);
                    let bounds = |_: &[DataRowRef<'_>]| Ok(());
                    let rows = RowFilter { keep, skip };
                    self.apply_block(tenant_id, &block, rows, bounds, &mut batch, worker, true)?;
                    block.recycle();
                }
            }
        }
        self.flush_rows(tenant_id, &mut batch)?;
        self.batches.give(batch);
        Ok(())
    }

    /// Restores the rows of `range` (but those in `skip`) from the group's spans, span
    /// by span (apply order).
    #[allow(clippy::too_many_arguments)]
    fn restore_range(
        &self,
        data: &DataStore,
        params: &RestoreDagParams,
        tenant_id: u64,
        group: &DataGroup,
        range: &RowRange,
        skip: Option<&LogKeys>,
        worker: &Worker<u64>,
    ) -> Result<(), TaskError> {
        let mut batch = self.batches.take();
        let mut listed: BTreeMap<u64, Vec<DataFileRef>> = BTreeMap::new();
        let keep = |tablet_id: u64, key: &[u8]| range.contains(tablet_id, key);
        for span in &group.spans {
            let set = params
                .plan
                .sets
                .iter()
                .map(|planned| &planned.info)
                .find(|set| set.backup_set_id == span.set_id)
                .ok_or_else(|| err(format!("backup set {} is not planned", span.set_id)))?;
            let key = self.set_key(data, set, params)?;
            let files = match listed.entry(span.set_id) {
                Entry::Occupied(listed) => listed.into_mut(),
                Entry::Vacant(slot) => slot.insert(data.data_files(set, group.ls).map_err(err)?),
            };
            let file = files
                .iter()
                .find(|file| file.file_index == span.file_index)
                .ok_or_else(|| {
                    err(format!(
                        "data file {} of backup set {} is not in its index",
                        span.file_index, span.set_id
                    ))
                })?;
            let mut reader = data.read_data_file(file, key.as_ref()).map_err(err)?;
            if span.from != FILE_HEADER_LEN as u64 {
                reader.seek_to_block(span.from).map_err(err)?;
            }
            let mut next = span.from;
            while next < span.to {
                let block = reader.next_raw().ok_or_else(|| {
                    err(format!(
                        "'{}' ends before offset {}, where its index says a block is",
                        file.path.display(),
                        next
                    ))
                })?;
                worker.check_cancel()?;
                let block = block.map_err(err)?;
                next = block.offset + block.stored_bytes;
                let bounds = |rows: &[DataRowRef<'_>]| check_block_bounds(file, &block, rows);
                let rows = RowFilter { keep, skip };
                self.apply_block(tenant_id, &block, rows, bounds, &mut batch, worker, false)?;
                block.recycle();
            }
        }
        self.flush_rows(tenant_id, &mut batch)?;
        self.batches.give(batch);
        Ok(())
    }

    /// Adds the rows of `block` that `filter` writes to `batch`, applying it when full,
    /// and reports the block's stored bytes: always with `count_all`, otherwise when
    /// `filter.keep` accepts its first row (skipped or not). `bounds` checks the block's
    /// rows first.
    #[allow(clippy::too_many_arguments)]
    fn apply_block<K: Fn(u64, &[u8]) -> bool>(
        &self,
        tenant_id: u64,
        block: &RawDataBlock,
        filter: RowFilter<'_, K>,
        bounds: impl FnOnce(&[DataRowRef<'_>]) -> Result<(), TaskError>,
        batch: &mut RowBatch,
        worker: &Worker<u64>,
        count_all: bool,
    ) -> Result<(), TaskError> {
        let rows = block.rows().map_err(err)?;
        bounds(&rows)?;
        let keep = &filter.keep;
        let counted = count_all || rows.first().is_some_and(|row| keep(row.tablet_id, row.key));
        for row in rows {
            if filter.writes(row.tablet_id, row.key) {
                batch.push(row.tablet_id, row.key, row.value);
            }
        }
        if batch_full(batch) {
            self.flush_rows(tenant_id, batch)?;
        }
        if counted {
            worker.report(block.stored_bytes);
        }
        if let Some(delay) = block_delay() {
            std::thread::sleep(delay);
        }
        Ok(())
    }

    /// Replays L's archived log in `(from, restore_scn]`, reporting the SCN below which
    /// everything is applied. Returns how many entries were applied.
    pub(super) fn replay_log(
        &self,
        archive: &ArchiveStore,
        plan: &RestorePlan,
        tenant_id: u64,
        ls: u64,
        from: u64,
        worker: &Worker<u64>,
    ) -> Result<u64, TaskError> {
        let mut entries = archive
            .log_entries(&plan.piece_infos(), ls, Scn(from), plan.restore_scn)
            .map_err(err)?;
        let mut batch = self.batches.take();
        let mut last_scn;
        let mut applied = 0u64;
        // Entries are borrowed from their block: copied once, into the batch.
        while let Some(entry) = entries.next_entry() {
            let entry = entry.map_err(err)?;
            match entry.op {
                LogOp::Insert | LogOp::Update => batch.put(entry.tablet_id, entry.key, entry.value),
                LogOp::Delete => batch.delete(entry.tablet_id, entry.key),
            }
            last_scn = entry.scn.as_u64();
            applied += 1;
            if batch_full(&batch) {
                worker.check_cancel()?;
                self.flush_rows(tenant_id, &mut batch)?;
                // Entries at `last_scn` may continue in the next batch, so only what is
                // strictly below it is known to be complete.
                worker.report(last_scn.saturating_sub(1));
            }
        }
        self.flush_rows(tenant_id, &mut batch)?;
        self.batches.give(batch);
        worker.report(plan.restore_scn.as_u64());
        Ok(applied)
    }
}

/// Which rows of a block a data round writes: those `keep` accepts (its group's), but
/// not those in `skip` (its stream's log writes them later).
struct RowFilter<'a, K> {
    keep: K,
    skip: Option<&'a LogKeys>,
}

impl<K: Fn(u64, &[u8]) -> bool> RowFilter<'_, K> {
    fn writes(&self, tablet_id: u64, key: &[u8]) -> bool {
        (self.keep)(tablet_id, key) && !self.skip.is_some_and(|skip| skip.contains(tablet_id, key))
    }
}

/// The budget of a stream's key set: [`LOG_KEYS_BUDGET`], or the failpoint's
/// (`super::failpoint::log_keys_budget`).
fn log_keys_budget() -> usize {
    super::failpoint::log_keys_budget(LOG_KEYS_BUDGET)
}

/// The batch holds [`APPLY_BATCH_ROWS`] rows (or the failpoint's cap,
/// `OBRESTORE_FAILPOINT_APPLY_BATCH_ROWS`) or [`APPLY_BATCH_BYTES`] bytes: apply it.
fn batch_full(batch: &RowBatch) -> bool {
    batch.len() >= apply_batch_rows(APPLY_BATCH_ROWS) || batch.byte_len() >= APPLY_BATCH_BYTES
}

/// L's data as the sub-tasks of `Restore data L`: at most `parts` row ranges when the
/// macro range index lists every file's blocks, else connected groups of tablets.
pub(super) fn data_groups(
    data: &DataStore,
    plan: &RestorePlan,
    ls: u64,
    parts: usize,
) -> Result<Vec<DataGroup>, BackupError> {
    let mut files = Vec::new();
    for planned in &plan.sets {
        for file in data.data_files(&planned.info, ls)? {
            files.push((planned.info.backup_set_id, file));
        }
    }
    if ranges::indexed(&files) {
        ranges::range_groups(&files, ls, parts)
    } else {
        Ok(tablet_groups(files, ls))
    }
}

/// Groups L's data files of the chain (in apply order, with their set ids) into
/// connected components of tablets.
fn tablet_groups(files: Vec<(u64, DataFileRef)>, ls: u64) -> Vec<DataGroup> {
    // Union-find over tablets: a file joins all the tablets it holds.
    let mut parent: BTreeMap<u64, u64> = BTreeMap::new();
    fn find(parent: &mut BTreeMap<u64, u64>, x: u64) -> u64 {
        let mut root = x;
        while let Some(&p) = parent.get(&root) {
            if p == root {
                break;
            }
            root = p;
        }
        parent.insert(x, root);
        root
    }
    for (_, file) in &files {
        for tablet in &file.tablet_ids {
            parent.entry(*tablet).or_insert(*tablet);
        }
        if let Some((first, rest)) = file.tablet_ids.split_first() {
            for tablet in rest {
                let (a, b) = (find(&mut parent, *first), find(&mut parent, *tablet));
                if a != b {
                    parent.insert(a.max(b), a.min(b));
                }
            }
        }
    }
    let mut groups: BTreeMap<u64, DataGroup> = BTreeMap::new();
    let tablets: Vec<u64> = parent.keys().copied().collect();
    for tablet in tablets {
        let root = find(&mut parent, tablet);
        groups
            .entry(root)
            .or_insert_with(|| DataGroup {
                name: String::new(),
                ls,
                tablets: Vec::new(),
                files: Vec::new(),
                bytes: 0,
                range: None,
                spans: Vec::new(),
            })
            .tablets
            .push(tablet);
    }
    for (set_id, file) in files {
        let Some(first) = file.tablet_ids.first() else {
            continue;
        };
        let root = find(&mut parent, *first);
        if let Some(group) = groups.get_mut(&root) {
            group.files.push((set_id, file.file_index));
            group.bytes += file.size_bytes;
        }
    }
    groups
        .into_values()
        .enumerate()
        .map(|(index, mut group)| {
            group.name = format!("Restore data {ls} group {}", index + 1);
            group
        })
        .collect()
}

/// Refuses a block whose rows are not the ones its index entry declares: a range reads
/// only the blocks its index says may hold its rows, so a block holding others would
/// silently lose them. Rows must lie within the entry's `first..=last` and start and end
/// on those two rows.
fn check_block_bounds(
    file: &DataFileRef,
    block: &RawDataBlock,
    rows: &[DataRowRef<'_>],
) -> Result<(), TaskError> {
    let bad = |what: &str| {
        err(format!(
            "'{}': the block at offset {} {what} (macro_range_index.obbak)",
            file.path.display(),
            block.offset
        ))
    };
    let entry = file
        .blocks
        .binary_search_by_key(&block.offset, |entry| entry.offset)
        .map(|at| &file.blocks[at])
        .map_err(|_| bad("is not listed in the index"))?;
    let outside = rows.iter().any(|row| {
        entry.first.cmp_row(row.tablet_id, row.key).is_gt()
            || entry.last.cmp_row(row.tablet_id, row.key).is_lt()
    });
    let ends = rows.first().zip(rows.last()).is_some_and(|(first, last)| {
        entry.first.cmp_row(first.tablet_id, first.key).is_eq()
            && entry.last.cmp_row(last.tablet_id, last.key).is_eq()
    });
    if outside || !ends || rows.len() as u64 != entry.row_count {
        return Err(bad("holds rows other than its index entry declares"));
    }
    Ok(())
}

//! The engine's commit log: what makes a [`SledStore`](super::SledStore) commit durable
//! with one synced write (`log_write.rs`: on Linux one `O_DIRECT | O_DSYNC` `pwrite`,
//! elsewhere `pwrite` + `fdatasync`), instead of sled's `Db::flush` (two writes and two
//! `sync_file_range` waits) followed by a device sync.
//!
//! # Layout
//!
//! One file, `<sled dir>/commit-log`, created zero-filled (the file's size is its
//! capacity) and synced once with its directory entry, then only ever overwritten in
//! place: its size and block map never change between two checkpoints, so an
//! `fdatasync` after a write has no metadata to write. A new log is created at
//! [`INITIAL_CAPACITY`] (1 MiB, 256 one-page records: a few milliseconds to zero-fill
//! and sync on a fresh agent's first start, where the full 8 MiB took ~20 ms and its
//! read back at recovery as much again) and grows to the capacity asked for (8 MiB by
//! default) at its first wrap, right after that checkpoint (zeros written past its end
//! and synced, while the log's lock holds every commit): a short-lived process (one
//! restore: ~50 commits) never pays the full zero-fill, a long-lived one pays it once.
//! A crash in the middle of a growth leaves a longer file whose tail is zeros: its
//! records all precede the checkpoint, and recovery takes the capacity from the
//! file's size. A commit is one record starting
//! on a 4 KiB boundary (a torn write of a record never touches the sectors of an
//! earlier one):
//!
//! ```text
//! magic "OBCL" | payload length u32 | sequence u64 | crc32 u32 | payload
//! payload: writes u32, then per write: key length u32, key, 0 (delete) or 1 (put),
//!          for a put: value length u32, value               (all little-endian)
//! ```
//!
//! The crc covers the length, the sequence and the payload.
//!
//! # Commit
//!
//! Under one lock: the record is written at the log's offset and synced (`log_write.rs`:
//! directly with `O_DSYNC`, or through the page cache and `fdatasync`); only then
//! is the batch published to the store's readers and the commit returns. The batch is
//! applied to the sled tree afterwards, off the commit's path, by the log's applier
//! (`applier.rs`: an overlay makes every synced record visible, whole, until the tree
//! holds it): one sled write per key and then the key [`APPLIED`] = the record's
//! sequence, without sled's flush. Not a sled batch: that
//! pins sled's log, which then writes and `sync_file_range`s two buffers per batch in
//! the background, competing with the log's `fdatasync` for the device. A write, sync or apply that fails poisons the log: every later
//! commit fails with the first error (a failed `fdatasync` may have dropped the dirty
//! pages; the engine stops on the error, and a reopen recovers what is on the device).
//! A failed write applies nothing; after a failed sync the record may or may not be on
//! the device, as [`KvStore::commit`](super::KvStore::commit) allows.
//!
//! # Checkpoint and recycling
//!
//! When the next record does not fit after the offset, a checkpoint applies every synced
//! record still queued, makes sled durable
//! ([`DeviceSync::flush`]: everything applied so far, with its [`APPLIED`] sequence) and
//! the log starts again at offset 0. Older records stay behind the new ones until they
//! are overwritten; their sequences are all lower. A batch larger than the whole log is
//! committed as one sled batch (which sled recovers whole or not at all), then sled's
//! flush and a device sync, after a checkpoint.
//!
//! # Recovery
//!
//! Opening reads sled's [`APPLIED`] sequence `A` and the log from offset 0: a run of
//! records, each with a valid magic and crc, the sequence one more than the previous.
//! The run ends at the first record that is not (zeros, a torn or corrupt tail, or an
//! older record of an earlier round). Records of the run with a sequence above `A` are
//! applied to sled in order, each with its sequence; then a checkpoint. sled recovers a
//! prefix of its writes, and a record's sequence is written after its keys (the
//! applier's group of records: after every key of the group): the tree holds every
//! record up to `A` and maybe part of the ones after it, which replay writes again.
//! Replay writes whole values, so replaying twice gives the same store. A run that starts above
//! `A + 1` means records are missing: the store is reported corrupt, not opened. A
//! database written before the log existed has neither the key nor the file: `A` is 0
//! and the log is created.
//!
//! Invariant: a sled tree the log serves is written only through it (the engine's
//! tree); other trees of the database (the cluster's) keep committing through
//! [`DeviceSync::flush`], which also makes the engine's applied batches durable.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use super::applier::Applier;
use super::device::{file_key, lock, named, shared, sync_dir, DeviceSync, Registry};
use super::log_write::{RecordWriter, PAGE};
use super::{Pairs, StoreError};

/// The key in the engine's tree holding the sequence of the last record applied to it
/// (8 bytes, big-endian). Written in every batch the log applies; never shown to the
/// engine.
pub const APPLIED: &[u8] = b"m/commit-log-applied";
/// The log's file name in the sled directory.
pub const FILE_NAME: &str = "commit-log";
/// Size a log grows to by default.
pub const DEFAULT_CAPACITY: u64 = 8 << 20;
/// Size of a new log when its capacity is larger: it grows at its first wrap.
pub const INITIAL_CAPACITY: u64 = 1 << 20;
const MAGIC: [u8; 4] = *b"OBCL";
/// magic, payload length, sequence, crc.
const HEADER: usize = 4 + 4 + 8 + 4;

/// A batch as the log writes it: key → new value, or `None` to delete.
pub(super) type Writes = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// A fault to inject into the log's commits (the `failpoints` feature).
#[cfg(any(test, feature = "failpoints"))]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFault {
    /// The record's write fails: nothing reaches the file.
    Write,
    /// The record is written, then its `fdatasync` fails (a direct write, which syncs
    /// within the write, reports the failure after it).
    Sync,
}

/// The commit log of one sled database's engine tree; see the module docs.
pub struct CommitLog {
    path: PathBuf,
    file: File,
    /// The file's size: records fit in it. Changed only by a growth, under `state`.
    capacity: AtomicU64,
    /// The size the log grows to at its next wrap, if it is smaller.
    target: u64,
    db: sled::Db,
    device: Arc<DeviceSync>,
    state: Mutex<LogState>,
    /// Applies synced records to the tree; every read of the tree goes through it.
    applier: Arc<Applier>,
    /// The applier's thread, joined when the log is dropped.
    applying: Mutex<Option<std::thread::JoinHandle<()>>>,
    syncs: AtomicU64,
    /// Nanoseconds spent in the records' synced writes.
    sync_nanos: AtomicU64,
    checkpoints: AtomicU64,
    replayed: u64,
}

#[derive(Debug, Default)]
struct LogState {
    /// Where the next record goes.
    offset: u64,
    /// The next record's sequence.
    next: u64,
    /// The first failure, which every later commit reports.
    failed: Option<String>,
    /// Puts records on the device (`log_write.rs`).
    writer: RecordWriter,
    /// An injected fault and the first commit (by sequence) it hits.
    #[cfg(any(test, feature = "failpoints"))]
    fault: Option<(LogFault, u64)>,
}

impl std::fmt::Debug for CommitLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitLog")
            .field("path", &self.path)
            .field("capacity", &self.capacity())
            .field("state", &self.state)
            .field("syncs", &self.syncs())
            .field("checkpoints", &self.checkpoints())
            .field("replayed", &self.replayed)
            .field("unapplied", &self.unapplied())
            .finish_non_exhaustive()
    }
}

fn logs() -> &'static Registry<CommitLog> {
    static REGISTRY: OnceLock<Registry<CommitLog>> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

impl CommitLog {
    /// Size of a new log whose capacity is larger ([`INITIAL_CAPACITY`]).
    pub const INITIAL_CAPACITY: u64 = INITIAL_CAPACITY;

    /// The commit log of `tree` in `db`: the one already serving this database, or the
    /// log file opened (created with `capacity` bytes if there is none) and recovered
    /// into `tree` (module docs).
    ///
    /// # Errors
    /// An I/O failure, a sled failure while replaying, or a log whose records do not
    /// continue the tree's ([`StoreError::Corrupt`]).
    pub(super) fn of(
        db: &sled::Db,
        tree: &sled::Tree,
        device: &Arc<DeviceSync>,
        capacity: u64,
    ) -> Result<Arc<CommitLog>, StoreError> {
        let dir = db.context.get_path();
        let path = dir.join(FILE_NAME);
        let created = !path.exists();
        if created {
            create(&dir, &path, capacity.min(INITIAL_CAPACITY))?;
        }
        let file = File::options()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| named(&path, "open", e))?;
        let key = file_key(&file).map_err(|e| named(&path, "stat", e))?;
        shared(logs(), key, || {
            let trees = (db.clone(), tree.clone());
            CommitLog::recover(path, file, trees, Arc::clone(device), capacity, created)
        })
    }

    /// Opens the log: replays its records (none in a log just `created`, which is not
    /// read back), then a checkpoint. It grows to `target` at its first wrap.
    fn recover(
        path: PathBuf,
        file: File,
        (db, tree): (sled::Db, sled::Tree),
        device: Arc<DeviceSync>,
        target: u64,
        created: bool,
    ) -> Result<CommitLog, StoreError> {
        let (bytes, len) = if created {
            let len = file.metadata().map_err(|e| named(&path, "stat", e))?.len();
            (Vec::new(), len)
        } else {
            let bytes = std::fs::read(&path).map_err(|e| named(&path, "read", e))?;
            let len = bytes.len() as u64;
            (bytes, len)
        };
        let capacity = len / PAGE * PAGE;
        let applied = applied(&tree)?;
        let (run, end) = scan(&bytes).map_err(|reason| corrupt(&path, reason))?;
        check_continues(&bytes, &run, end, applied).map_err(|reason| corrupt(&path, reason))?;
        let mut last = applied;
        let mut replayed = 0;
        for (seq, writes) in run {
            if seq > applied {
                apply(&tree, &writes, seq)?;
                last = seq;
                replayed += 1;
            }
        }
        if replayed > 0 {
            tracing::info!(log = %path.display(), replayed, last, "commit log replayed");
        }
        let (applier, applying) =
            Applier::start(tree.clone()).map_err(|e| named(&path, "start the applier of", e))?;
        let writer = RecordWriter::open(&path);
        let log = CommitLog {
            path,
            file,
            capacity: AtomicU64::new(capacity),
            target: target.div_ceil(PAGE) * PAGE,
            db,
            device,
            state: Mutex::new(LogState {
                next: last + 1,
                writer,
                ..LogState::default()
            }),
            applier,
            applying: Mutex::new(Some(applying)),
            syncs: AtomicU64::new(0),
            sync_nanos: AtomicU64::new(0),
            checkpoints: AtomicU64::new(0),
            replayed,
        };
        log.checkpoint(&mut lock(&log.state))?;
        Ok(log)
    }

    /// Writes `writes` as one record, syncs it, then publishes it to readers (the
    /// applier writes it to the tree later); see the module docs.
    ///
    /// # Errors
    /// The write, the sync, a checkpoint or the apply failed, now or in an earlier
    /// commit (sticky).
    pub(super) fn commit(&self, writes: Writes) -> Result<(), StoreError> {
        let mut state = lock(&self.state);
        if let Some(reason) = &state.failed {
            return Err(failed(format!("an earlier commit failed: {reason}")));
        }
        if let Some(reason) = self.applier.failed() {
            state.failed = Some(reason.clone());
            return Err(failed(format!("an earlier apply failed: {reason}")));
        }
        let seq = state.next;
        let record = encode(seq, &writes);
        let len = record.len() as u64;
        if len > self.capacity() - state.offset {
            self.checkpoint(&mut state)?;
            self.grow();
        }
        if len > self.capacity() {
            return self.commit_through_sled(&mut state, seq, writes);
        }
        if let Err(err) = self.write(&mut state, seq, &record) {
            state.failed = Some(err.to_string());
            return Err(err.into());
        }
        self.applier.publish(seq, writes);
        state.offset += len.div_ceil(PAGE) * PAGE;
        state.next = seq + 1;
        Ok(())
    }

    /// The record's durable write (`log_write.rs`: direct and synchronous, or `pwrite`
    /// and `fdatasync`).
    fn write(&self, state: &mut LogState, seq: u64, record: &[u8]) -> sled::Result<()> {
        #[cfg(any(test, feature = "failpoints"))]
        let fault = state.fault.filter(|(_, from)| seq >= *from).map(|(f, _)| f);
        #[cfg(not(any(test, feature = "failpoints")))]
        let _ = seq;
        #[cfg(any(test, feature = "failpoints"))]
        if fault == Some(LogFault::Write) {
            return Err(injected(&self.path, "write", seq));
        }
        let started = std::time::Instant::now();
        let before_sync = || {
            #[cfg(any(test, feature = "failpoints"))]
            if fault == Some(LogFault::Sync) {
                return Err(io::Error::other(format!("failpoint: record {seq} fails")));
            }
            Ok(())
        };
        state
            .writer
            .write(&self.file, record, state.offset, before_sync)
            .map_err(|e| named(&self.path, "write + fdatasync", e))?;
        self.syncs.fetch_add(1, Ordering::SeqCst);
        let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.sync_nanos.fetch_add(nanos, Ordering::Relaxed);
        Ok(())
    }

    /// A batch larger than the log: applied to sled and made durable by sled's flush
    /// and a device sync (after a checkpoint, so the log holds nothing newer).
    fn commit_through_sled(
        &self,
        state: &mut LogState,
        seq: u64,
        writes: Writes,
    ) -> Result<(), StoreError> {
        // A sled batch here: the log does not hold this record, so sled's own recovery
        // must keep it whole. The checkpoint before drained the applier.
        let applied = self
            .applier
            .exclusive(|tree| apply_batch(tree, writes, seq));
        let result = applied.and_then(|()| self.device.flush(&self.db).map_err(StoreError::from));
        match result {
            Ok(()) => {
                state.next = seq + 1;
                Ok(())
            }
            Err(err) => {
                state.failed = Some(err.to_string());
                Err(err)
            }
        }
    }

    /// One key of the tree as of the last synced record ([`APPLIED`] is never shown).
    pub(super) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.applier.get(key, APPLIED)
    }

    /// The tree's pairs under `prefix` as of the last synced record ([`APPLIED`] is
    /// never shown).
    pub(super) fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        self.applier.scan_prefix(prefix, APPLIED)
    }

    /// Applies every synced record, makes sled durable, then starts the log again.
    fn checkpoint(&self, state: &mut LogState) -> Result<(), StoreError> {
        if let Err(err) = self.applier.drain() {
            state.failed = Some(err.to_string());
            return Err(err);
        }
        if let Err(err) = self.device.flush(&self.db) {
            state.failed = Some(err.to_string());
            return Err(err.into());
        }
        state.offset = 0;
        self.checkpoints.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Whether records are written directly (`O_DIRECT | O_DSYNC`, `log_write.rs`),
    /// rather than through the page cache and `fdatasync`.
    pub fn direct_writes(&self) -> bool {
        lock(&self.state).writer.is_direct()
    }

    /// From now on, records are written through the page cache and `fdatasync`, as on
    /// a system without direct writes: for tests of both ways.
    #[cfg(any(test, feature = "failpoints"))]
    pub fn write_buffered(&self) {
        lock(&self.state).writer.buffered();
    }

    /// Records written and synced since this log was opened.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }

    /// Time spent writing and syncing records since this log was opened: what the
    /// device costs the commits (the rest of a commit's latency is the engine's).
    pub fn sync_time(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.sync_nanos.load(Ordering::Relaxed))
    }

    /// Checkpoints since this log was opened (one at open).
    pub fn checkpoints(&self) -> u64 {
        self.checkpoints.load(Ordering::SeqCst)
    }

    /// Records replayed into the tree when this log was opened.
    pub fn replayed(&self) -> u64 {
        self.replayed
    }

    /// Records synced (their commit returned) and not yet applied to the tree.
    pub fn unapplied(&self) -> usize {
        self.applier.unapplied()
    }

    /// Applies every synced record to the tree now, on the caller's thread (after any
    /// the applier thread is applying): for whoever reads or flushes the tree itself
    /// rather than through the store (reads through the store never need it).
    ///
    /// # Errors
    /// An apply failed, now or earlier.
    pub fn apply_pending(&self) -> Result<(), StoreError> {
        self.applier.drain()
    }

    /// While `held`, synced records are not applied to the tree in the background
    /// (a checkpoint or the log's drop still applies them): for tests of a crash between
    /// a record's sync and its apply.
    #[cfg(any(test, feature = "failpoints"))]
    pub fn hold_applies(&self, held: bool) {
        self.applier.hold(held);
    }

    /// The log's size: records fit in it.
    pub fn capacity(&self) -> u64 {
        self.capacity.load(Ordering::SeqCst)
    }

    /// Right after a checkpoint (the log's lock held, every record in sled): extends a
    /// log smaller than its target with zeros, synced, so that the commits after it
    /// still overwrite allocated, durable blocks. A failure leaves the log as it was
    /// (its records precede the checkpoint; a partly written tail is zeros) and is not
    /// tried again.
    fn grow(&self) {
        let from = self.capacity();
        if from >= self.target {
            return;
        }
        match zero_fill(&self.file, from, self.target).and_then(|()| self.file.sync_all()) {
            Ok(()) => self.capacity.store(self.target, Ordering::SeqCst),
            Err(error) => tracing::warn!(
                log = %self.path.display(),
                %error,
                "cannot grow the commit log; it keeps its size"
            ),
        }
    }

    /// From the commit with sequence `from_now` counted from the next one (1: the next
    /// one) on, every commit hits `fault`.
    #[cfg(any(test, feature = "failpoints"))]
    pub fn inject(&self, fault: LogFault, from_now: u64) {
        let mut state = lock(&self.state);
        let from = state.next + from_now.max(1) - 1;
        state.fault = Some((fault, from));
    }
}

impl Drop for CommitLog {
    /// The applier's thread stops; what it had not applied is applied here (the log
    /// holds it anyway: a reopen would replay it).
    fn drop(&mut self) {
        self.applier.stop();
        if let Some(thread) = lock(&self.applying).take() {
            let _ = thread.join();
        }
        if let Err(err) = self.applier.drain() {
            tracing::warn!(log = %self.path.display(), error = %err, "records left to replay at the next open");
        }
    }
}

/// Creates the log zero-filled at its full size, synced, then renamed into place with
/// its directory synced: a log file that exists is whole.
fn create(dir: &Path, path: &Path, capacity: u64) -> Result<(), StoreError> {
    let capacity = capacity.max(2 * PAGE).div_ceil(PAGE) * PAGE;
    let temporary = dir.join(format!("{FILE_NAME}.new"));
    let result = (|| {
        let file = File::create(&temporary)?;
        zero_fill(&file, 0, capacity)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    result.map_err(|e| named(path, "create", e))?;
    sync_dir(dir)?;
    Ok(())
}

/// Writes zeros to `file` from `from` up to `to`.
fn zero_fill(file: &File, from: u64, to: u64) -> io::Result<()> {
    let zeros = vec![0u8; 1 << 20];
    let mut offset = from;
    while offset < to {
        let len = (to - offset).min(zeros.len() as u64);
        write_at(file, &zeros[..len as usize], offset)?;
        offset += len;
    }
    Ok(())
}

/// The sequence of the last record applied to `tree` (0: none).
fn applied(tree: &sled::Tree) -> Result<u64, StoreError> {
    match tree.get(APPLIED)? {
        None => Ok(0),
        Some(value) => <[u8; 8]>::try_from(value.as_ref())
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Corrupt {
                key: String::from_utf8_lossy(APPLIED).into_owned(),
                reason: format!("{} bytes, not a sequence", value.len()),
            }),
    }
}

/// Applies one record to `tree`, then its sequence (see [`apply_writes`]).
pub(super) fn apply(tree: &sled::Tree, writes: &Writes, seq: u64) -> Result<(), StoreError> {
    let writes = writes
        .iter()
        .map(|(key, value)| (key.as_slice(), value.as_deref()));
    apply_writes(tree, writes, seq)
}

/// Applies `writes` (key, new value or `None` to delete) to `tree`, then the sequence
/// `seq`: one sled write per key, not a sled batch. A sled batch pins sled's log, which
/// writes out and `sync_file_range`s two of its buffers per batch; single writes fill
/// its buffers. Atomicity comes from the log instead: sled recovers a prefix of its
/// writes, and the sequence is written last, so a recovered tree holds every record up
/// to its sequence, and maybe part of the ones after it (the applier writes a group of
/// records as each key's newest value, `applier.rs`), which replay writes again, in
/// order and whole. Readers see every record whole through the applier's overlay.
pub(super) fn apply_writes<'a>(
    tree: &sled::Tree,
    writes: impl IntoIterator<Item = (&'a [u8], Option<&'a [u8]>)>,
    seq: u64,
) -> Result<(), StoreError> {
    for (key, value) in writes {
        match value {
            Some(value) => tree.insert(key, value)?,
            None => tree.remove(key)?,
        };
    }
    tree.insert(APPLIED, &seq.to_be_bytes())?;
    Ok(())
}

/// Applies a batch the log does not hold, with its sequence, as one sled batch (which
/// sled recovers whole or not at all).
fn apply_batch(tree: &sled::Tree, writes: Writes, seq: u64) -> Result<(), StoreError> {
    let mut batch = sled::Batch::default();
    for (key, value) in writes {
        match value {
            Some(value) => batch.insert(key, value),
            None => batch.remove(key),
        }
    }
    batch.insert(APPLIED, &seq.to_be_bytes());
    tree.apply_batch(batch)?;
    Ok(())
}

/// One record: header, then the payload.
pub(super) fn encode(seq: u64, writes: &Writes) -> Vec<u8> {
    let size: usize = writes
        .iter()
        .map(|(key, value)| 9 + key.len() + value.as_ref().map_or(0, Vec::len))
        .sum();
    let mut record = Vec::with_capacity(HEADER + 4 + size);
    record.extend_from_slice(&[0; HEADER]);
    put_len(&mut record, writes.len());
    for (key, value) in writes {
        put_len(&mut record, key.len());
        record.extend_from_slice(key);
        match value {
            None => record.push(0),
            Some(value) => {
                record.push(1);
                put_len(&mut record, value.len());
                record.extend_from_slice(value);
            }
        }
    }
    let payload = (record.len() - HEADER) as u32;
    record[..4].copy_from_slice(&MAGIC);
    record[4..8].copy_from_slice(&payload.to_le_bytes());
    record[8..16].copy_from_slice(&seq.to_le_bytes());
    let crc = crc(&record[4..16], &record[HEADER..]);
    record[16..20].copy_from_slice(&crc.to_le_bytes());
    record
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    // A key or value of 4 GiB or more is not a record the engine writes; the length
    // would not fit a sled value either.
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
}

fn crc(header: &[u8], payload: &[u8]) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(header);
    hasher.update(payload);
    hasher.finalize()
}

/// Checks that the run continues what the tree holds (`applied`): it starts at most one
/// record after it, and no record newer than both lies behind the run's end (only a
/// damaged record in the middle of a round ends a run before a newer record; a torn
/// write is always the last record).
fn check_continues(
    bytes: &[u8],
    run: &[(u64, Writes)],
    end: usize,
    applied: u64,
) -> Result<(), String> {
    if let Some((first, _)) = run.first() {
        if *first > applied.saturating_add(1) {
            return Err(format!("the log starts at record {first}, the store holds up to {applied}: records are missing"));
        }
    }
    let newest = run.last().map_or(applied, |(last, _)| applied.max(*last));
    let mut offset = end;
    while offset < bytes.len() {
        if let Some((seq, _)) = record_at(bytes, offset).filter(|(seq, _)| *seq > newest) {
            return Err(format!("record {seq} at offset {offset} lies behind a damaged record (the run ends at offset {end} with record {newest})"));
        }
        offset += PAGE as usize;
    }
    Ok(())
}

/// The run of records from offset 0 (module docs, Recovery), and the offset where it
/// ends. A record whose crc holds but whose payload does not decode is an error, not an
/// end: it was written whole.
pub(super) fn scan(bytes: &[u8]) -> Result<(Vec<(u64, Writes)>, usize), String> {
    let mut run: Vec<(u64, Writes)> = Vec::new();
    let mut offset = 0usize;
    while let Some((seq, payload)) = record_at(bytes, offset) {
        if run.last().is_some_and(|(last, _)| seq != last + 1) {
            break;
        }
        let writes = decode(payload).ok_or_else(|| {
            format!(
                "record {seq} at offset {offset}: a valid crc over a payload that does not decode"
            )
        })?;
        run.push((seq, writes));
        let len = (HEADER + payload.len()) as u64;
        offset += (len.div_ceil(PAGE) * PAGE) as usize;
    }
    Ok((run, offset))
}

/// The record at `offset`, if a whole one with a valid crc is there.
fn record_at(bytes: &[u8], offset: usize) -> Option<(u64, &[u8])> {
    let header = bytes.get(offset..offset.checked_add(HEADER)?)?;
    if header[..4] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes(header[4..8].try_into().ok()?) as usize;
    let seq = u64::from_le_bytes(header[8..16].try_into().ok()?);
    let stored = u32::from_le_bytes(header[16..20].try_into().ok()?);
    let start = offset + HEADER;
    let payload = bytes.get(start..start.checked_add(len)?)?;
    (crc(&header[4..16], payload) == stored).then_some((seq, payload))
}

fn decode(payload: &[u8]) -> Option<Writes> {
    let mut input = payload;
    let count = take_len(&mut input)?;
    // Every write takes at least 5 bytes: a count beyond that is corrupt, and must not
    // reserve memory.
    if count > input.len() / 5 {
        return None;
    }
    let mut writes = Vec::with_capacity(count);
    for _ in 0..count {
        let len = take_len(&mut input)?;
        let key = take(&mut input, len)?.to_vec();
        let value = match take(&mut input, 1)? {
            [0] => None,
            [1] => {
                let len = take_len(&mut input)?;
                Some(take(&mut input, len)?.to_vec())
            }
            _ => return None,
        };
        writes.push((key, value));
    }
    input.is_empty().then_some(writes)
}

fn take<'a>(input: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    let (head, rest) = input.split_at_checked(len)?;
    *input = rest;
    Some(head)
}

fn take_len(input: &mut &[u8]) -> Option<usize> {
    let bytes = take(input, 4)?;
    Some(u32::from_le_bytes(bytes.try_into().ok()?) as usize)
}

fn corrupt(path: &Path, reason: String) -> StoreError {
    StoreError::Corrupt {
        key: path.display().to_string(),
        reason,
    }
}

fn failed(reason: String) -> StoreError {
    StoreError::Sled(sled::Error::Io(io::Error::other(reason)))
}

#[cfg(any(test, feature = "failpoints"))]
fn injected(path: &Path, operation: &str, seq: u64) -> sled::Error {
    let error = io::Error::other(format!("failpoint: record {seq} fails"));
    named(path, operation, error)
}

#[cfg(test)]
#[path = "commit_log_tests.rs"]
mod tests;

#[cfg(unix)]
pub(super) fn write_at(file: &File, bytes: &[u8], offset: u64) -> io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
}

#[cfg(windows)]
pub(super) fn write_at(file: &File, mut bytes: &[u8], mut offset: u64) -> io::Result<()> {
    while !bytes.is_empty() {
        match std::os::windows::fs::FileExt::seek_write(file, bytes, offset)? {
            0 => return Err(io::ErrorKind::WriteZero.into()),
            n => {
                bytes = &bytes[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

//! Device sync after a sled flush: the one place that makes a flushed sled database
//! durable on the device. The engine's [`SledStore`](super::SledStore) and the embedded
//! cluster (`obrestore-restore`'s `SledCluster`) both commit through
//! [`DeviceSync::flush`].
//!
//! # Why sled's flush is not enough
//!
//! sled 0.34's `Db::flush` writes its log with `sync_file_range(WAIT_BEFORE | WRITE |
//! WAIT_AFTER)` on Linux. That puts the pages in the device's queue, so a flushed write
//! survives a killed process, but it neither flushes the device's volatile cache nor
//! writes the file's metadata (its size, when the log grew): after a power failure or a
//! kernel crash an acknowledged commit can be gone. sled also writes some files without
//! any sync: the `conf` file at creation, and a blob (`blobs/<lsn>`, for a page larger
//! than a quarter of a 512 KiB segment) before the log entry that points to it. Its
//! snapshots are `fsync`ed but renamed into place without an `fsync` of the directory.
//!
//! # What a device sync does
//!
//! After `Db::flush`, in this order:
//! 1. `fdatasync` of the log file `<path>/db`. `fdatasync` acts on the inode, so our own
//!    descriptor flushes what sled wrote through its own; it writes the data, the
//!    metadata needed to read it back (the size) and flushes the device cache.
//! 2. Any blob file not seen before gets an `fdatasync`, then `<path>/blobs` an `fsync`.
//! 3. If the names in `<path>` changed (a snapshot was renamed into place), `<path>`
//!    gets an `fsync`.
//!
//! Steps 2 and 3 cost one directory listing each when nothing changed. Once per open of
//! a database, [`DeviceSync::of`] also syncs `conf`, the log, `<path>/blobs`, `<path>`
//! and the directory holding `<path>`, so that a new database's files and directory
//! entries are on the device before its first commit is acknowledged.
//!
//! # Group commit
//!
//! One `DeviceSync` serves every user of a database (a registry keyed by the log file's
//! device and inode): the engine and the cluster share the agent's database, and so
//! share syncs. A caller takes a ticket once its `Db::flush` returned, then waits for the
//! sync lock. The holder reads the highest ticket taken before it calls `fdatasync`:
//! every caller with a ticket up to that one had flushed before, so that one sync covers
//! them all, and they return without a sync of their own. Under load this turns many
//! concurrent commits into a few device syncs; alone, every commit pays one.
//!
//! # Failure
//!
//! A failed sync is sticky: after an `fdatasync` error the kernel may have dropped the
//! dirty pages and a later `fdatasync` can succeed without them, so every later flush of
//! the database fails with the first error. The engine is poisoned by it; reopening the
//! database after a restart recovers what is really on the device.

use std::collections::{BTreeSet, HashMap};
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError, Weak};

/// Makes flushes of one sled database durable on the device; see the module docs.
#[derive(Debug)]
pub struct DeviceSync {
    /// The database directory (`sled::Config::path`).
    dir: PathBuf,
    /// sled's log file, `<dir>/db`.
    log: File,
    /// Tickets taken: one per flush that asked for a device sync.
    requested: AtomicU64,
    /// Device syncs done (`fdatasync` of the log, with steps 2 and 3).
    syncs: AtomicU64,
    state: Mutex<SyncState>,
}

#[derive(Debug, Default)]
struct SyncState {
    /// Highest ticket covered by a completed device sync.
    synced: u64,
    /// The first failed sync, which every later one reports.
    failed: Option<String>,
    /// Names in `<dir>/blobs` that are on the device.
    blobs: BTreeSet<OsString>,
    /// Names in `<dir>` as of the last `fsync` of it.
    names: BTreeSet<OsString>,
}

/// File identity (device, inode) → the live `T` serving that file: one `DeviceSync` per
/// sled log, one commit log per database (`commit_log.rs`).
pub(super) type Registry<T> = Mutex<HashMap<(u64, u64), Weak<T>>>;

fn devices() -> &'static Registry<DeviceSync> {
    static REGISTRY: OnceLock<Registry<DeviceSync>> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

/// The `T` registered for the file `key` ([`file_key`]), or a new one from `open`,
/// registered then. `open` runs with the registry locked, so two callers never make two
/// of one file.
pub(super) fn shared<T, E>(
    registry: &Registry<T>,
    key: (u64, u64),
    open: impl FnOnce() -> Result<T, E>,
) -> Result<Arc<T>, E> {
    let mut registry = lock(registry);
    registry.retain(|_, live| live.strong_count() > 0);
    if let Some(live) = registry.get(&key).and_then(Weak::upgrade) {
        return Ok(live);
    }
    let live = Arc::new(open()?);
    registry.insert(key, Arc::downgrade(&live));
    Ok(live)
}

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The guarded state is only changed after the I/O it records succeeded, so it stays
    // true if a holder panicked.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl DeviceSync {
    /// The device sync of `db`: the one already serving this database, or a new one,
    /// which first syncs the database's files and directories (module docs).
    ///
    /// # Errors
    /// The log file cannot be opened, or a sync at open fails (`sled::Error::Io`, naming
    /// the file).
    pub fn of(db: &sled::Db) -> sled::Result<Arc<DeviceSync>> {
        // `context` and `get_path` are public but hidden in sled 0.34 (pinned to =0.34.7
        // in the workspace): the only way to find the directory of an open `Db`.
        let dir = db.context.get_path();
        let log_path = dir.join("db");
        let log = File::options()
            .read(true)
            .write(true)
            .open(&log_path)
            .map_err(|e| named(&log_path, "open", e))?;
        let key = file_key(&log).map_err(|e| named(&log_path, "stat", e))?;
        shared(devices(), key, || DeviceSync::open(dir, log))
    }

    /// Syncs what sled wrote before `open` without a device sync of its own.
    fn open(dir: PathBuf, log: File) -> sled::Result<DeviceSync> {
        let conf = dir.join("conf");
        if conf.exists() {
            sync_file(&conf)?;
        }
        log.sync_all()
            .map_err(|e| named(&dir.join("db"), "fsync", e))?;
        let blobs_dir = dir.join("blobs");
        let blobs = names(&blobs_dir)?;
        for blob in &blobs {
            sync_file(&blobs_dir.join(blob))?;
        }
        sync_dir(&blobs_dir)?;
        sync_dir(&dir)?;
        if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
            // A parent we may not read (mode 0333) cannot be synced; the database still
            // opens, as it would have before this sync existed.
            match sync_dir(parent) {
                Err(sled::Error::Io(e)) if e.kind() == io::ErrorKind::PermissionDenied => {
                    tracing::warn!(dir = %parent.display(), error = %e, "cannot sync the directory holding the database");
                }
                other => other?,
            }
        }
        let state = SyncState {
            names: names(&dir)?,
            blobs,
            ..SyncState::default()
        };
        Ok(DeviceSync {
            dir,
            log,
            requested: AtomicU64::new(0),
            syncs: AtomicU64::new(0),
            state: Mutex::new(state),
        })
    }

    /// `db.flush()`, then a device sync (or the wait for one that covers this flush):
    /// when this returns `Ok`, everything written to `db` before the call is on the
    /// device. `db` must be the database this `DeviceSync` was made for.
    ///
    /// # Errors
    /// sled's flush failed, or a device sync failed now or earlier (sticky; module docs).
    pub fn flush(&self, db: &sled::Db) -> sled::Result<()> {
        db.flush()?;
        let ticket = self.requested.fetch_add(1, Ordering::SeqCst) + 1;
        let mut state = lock(&self.state);
        if let Some(reason) = &state.failed {
            return Err(
                io::Error::other(format!("an earlier device sync failed: {reason}")).into(),
            );
        }
        if state.synced >= ticket {
            return Ok(());
        }
        // Every ticket up to `covered` was taken after its flush returned, and the sync
        // below starts after this read: it covers all of them.
        let covered = self.requested.load(Ordering::SeqCst);
        match self.sync_device(&mut state) {
            Ok(()) => {
                state.synced = covered;
                self.syncs.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
            Err(err) => {
                state.failed = Some(err.to_string());
                Err(err)
            }
        }
    }

    /// How many device syncs were done since this `DeviceSync` was made: at most one
    /// per [`DeviceSync::flush`], fewer when concurrent flushes shared one.
    pub fn syncs(&self) -> u64 {
        self.syncs.load(Ordering::SeqCst)
    }

    /// How many flushes asked for a device sync.
    pub fn requests(&self) -> u64 {
        self.requested.load(Ordering::SeqCst)
    }

    /// Steps 1–3 of the module docs.
    fn sync_device(&self, state: &mut SyncState) -> sled::Result<()> {
        self.log
            .sync_data()
            .map_err(|e| named(&self.dir.join("db"), "fdatasync", e))?;
        let blobs_dir = self.dir.join("blobs");
        let blobs = names(&blobs_dir)?;
        let mut new_blob = false;
        for blob in blobs.difference(&state.blobs) {
            match File::open(blobs_dir.join(blob)) {
                Ok(file) => file
                    .sync_data()
                    .map_err(|e| named(&blobs_dir.join(blob), "fdatasync", e))?,
                // sled removed a stale blob since the listing: nothing to keep.
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(named(&blobs_dir.join(blob), "open", e)),
            }
            new_blob = true;
        }
        if new_blob {
            sync_dir(&blobs_dir)?;
        }
        state.blobs = blobs;
        let names = names(&self.dir)?;
        if names != state.names {
            sync_dir(&self.dir)?;
            state.names = names;
        }
        Ok(())
    }
}

/// The names in `dir` (none if it does not exist).
fn names(dir: &Path) -> sled::Result<BTreeSet<OsString>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(named(dir, "list", e)),
    };
    entries
        .map(|entry| {
            entry
                .map(|entry| entry.file_name())
                .map_err(|e| named(dir, "list", e))
        })
        .collect()
}

fn sync_file(path: &Path) -> sled::Result<()> {
    File::open(path)
        .and_then(|file| file.sync_all())
        .map_err(|e| named(path, "fsync", e))
}

/// `fsync` of a directory, so the names in it are on the device.
pub(super) fn sync_dir(dir: &Path) -> sled::Result<()> {
    match File::open(dir) {
        Ok(file) => file.sync_all().map_err(|e| named(dir, "fsync", e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(named(dir, "open", e)),
    }
}

/// An I/O error that names the operation and the file.
pub(super) fn named(path: &Path, operation: &str, error: io::Error) -> sled::Error {
    sled::Error::Io(io::Error::new(
        error.kind(),
        format!("{operation} of {}: {error}", path.display()),
    ))
}

/// The identity of an open file (device, inode): two `Db` values of one database share
/// it, a database removed and created again at the same path does not.
#[cfg(unix)]
pub(super) fn file_key(file: &File) -> io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let metadata = file.metadata()?;
    Ok((metadata.dev(), metadata.ino()))
}

/// Elsewhere every `DeviceSync::of` makes a new one: correct, only without sharing.
#[cfg(not(unix))]
pub(super) fn file_key(_file: &File) -> io::Result<(u64, u64)> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    Ok((u64::MAX, NEXT.fetch_add(1, Ordering::SeqCst)))
}

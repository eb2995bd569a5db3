//! Read-ahead of a restore's archive log: the user log streams' log files, read once in
//! replay order by one background thread that "Restore sys tablets" starts when LS 1 is
//! restored.
//!
//! Why: a stream's "Replay log" starts when its data rounds end and, on a cold page
//! cache, waited for each 1 MiB read of its log files; the last one runs alone on the
//! critical path. Read ahead while the data rounds compute, the logs are in the page
//! cache when the replays start (last replay ~0.10 → ~0.07 s, docs/performance.md).
//! Not the data files: reading them ahead too (tried) gained nothing in the data rounds
//! (the workers read them at about the pace the thread did, and their run syncs queued
//! behind its reads) and less in all. It starts after LS 1, not with it: measured, its
//! reads queued ahead of LS 1's run and commit syncs and made `Restore sys tablets`
//! (alone on the critical path) about twice as long. It changes no result: the restore
//! reads and checks every byte itself as before; a file read here is only in the cache
//! sooner.
//!
//! Invariants: only files the replays list are read (the user log streams' log files
//! in the planned pieces, as [`obrestore_backup::ArchiveStore::log_files`] lists them
//! for the replay; a replay that stops at a restore point inside its last piece may
//! never open that piece's later files, read here all the same), each only after it
//! resolves, symbolic links followed, inside the
//! archive's root (the rule of the restore's own opens), at most [`READ_AHEAD_BYTES`] in
//! all (a bigger restore gets its first files read ahead, so the page cache is not
//! flooded with what would be evicted before use). Every error is ignored: the
//! restore's own reads meet and report it. A cancelled restore stops it: each read-ahead
//! is registered under its DAG ([`ReadAheads`]) with a flag it checks before every read,
//! and a step of that DAG whose attempt is cancelled sets the flag when the runner drops
//! it ([`StopOnCancel`]); the thread then ends after the read under way and unregisters.
//! Otherwise it ends after at most `READ_AHEAD_BYTES`, reading nothing twice.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use obrestore_backup::{RestorePlan, Sources};

use super::CancelFlag;

/// Bytes read ahead at most for one restore.
const READ_AHEAD_BYTES: u64 = 256 << 20;
/// Bytes per `read` (as the restore's own block readers): few system calls, large
/// requests to the device.
const READ_BUFFER: usize = 1 << 20;

/// The read-aheads running, by restore DAG id, each with the flag that stops it.
#[derive(Default)]
pub(crate) struct ReadAheads(Mutex<HashMap<u64, CancelFlag>>);

impl ReadAheads {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, CancelFlag>> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A new flag for DAG `dag_id`'s read-ahead (stopping one still registered for it).
    fn register(&self, dag_id: u64) -> CancelFlag {
        let flag = CancelFlag::default();
        if let Some(old) = self.lock().insert(dag_id, flag.clone()) {
            old.set();
        }
        flag
    }

    /// Removes `flag` if it is still DAG `dag_id`'s (its thread ended).
    fn unregister(&self, dag_id: u64, flag: &CancelFlag) {
        let mut running = self.lock();
        if running
            .get(&dag_id)
            .is_some_and(|current| current.same(flag))
        {
            running.remove(&dag_id);
        }
    }

    /// Stops DAG `dag_id`'s read-ahead, if one runs.
    pub(crate) fn stop(&self, dag_id: u64) {
        if let Some(flag) = self.lock().remove(&dag_id) {
            flag.set();
        }
    }
}

/// Held by a step's attempt: dropped after its attempt's cancellation (`cancelled()`
/// true: the runner cancels, then drops the attempt), it stops the DAG's read-ahead.
pub(super) struct StopOnCancel<'a, F: Fn() -> bool> {
    pub(super) read_aheads: &'a ReadAheads,
    pub(super) dag_id: u64,
    pub(super) cancelled: F,
}

impl<F: Fn() -> bool> Drop for StopOnCancel<'_, F> {
    fn drop(&mut self) {
        if (self.cancelled)() {
            self.read_aheads.stop(self.dag_id);
        }
    }
}

/// Starts the read-ahead of `user_ls`'s log files for DAG `dag_id` on a thread of its
/// own (detached: it ends after its last file, its budget, or [`ReadAheads::stop`]).
/// A thread that cannot be spawned is no error.
pub(super) fn spawn(
    read_aheads: &Arc<ReadAheads>,
    dag_id: u64,
    sources: &Sources,
    plan: &RestorePlan,
    user_ls: &[u64],
) {
    let sources = sources.clone();
    let plan = plan.clone();
    let user_ls = user_ls.to_vec();
    let flag = read_aheads.register(dag_id);
    let spawned = std::thread::Builder::new()
        .name("restore-read-ahead".to_string())
        .spawn({
            let (read_aheads, flag) = (Arc::clone(read_aheads), flag.clone());
            move || {
                let files = log_files(&sources, &plan, &user_ls);
                read_files(sources.archive.root(), files, &flag);
                read_aheads.unregister(dag_id, &flag);
            }
        });
    if spawned.is_err() {
        read_aheads.unregister(dag_id, &flag);
    }
}

/// Reads `files` in order (those inside `root`, within [`READ_AHEAD_BYTES`]) until
/// `stop` is set; the bytes read.
fn read_files(root: &Path, files: Vec<(PathBuf, u64)>, stop: &CancelFlag) -> u64 {
    let mut buffer = vec![0u8; READ_BUFFER];
    let mut budget = READ_AHEAD_BYTES;
    let mut read = 0;
    for (path, size) in files {
        if size > budget || stop.is_set() {
            break;
        }
        budget -= size;
        if let Some(path) = confined(root, &path) {
            read +=
                crate::prepare::read_ahead_file_until(&path, size, &mut buffer, || stop.is_set());
        }
    }
    read
}

/// The log files of the user log streams in replay order (stream by stream, each across
/// the planned pieces), each with its listed size.
fn log_files(sources: &Sources, plan: &RestorePlan, user_ls: &[u64]) -> Vec<(PathBuf, u64)> {
    let pieces = plan.piece_infos();
    let mut files = Vec::new();
    for &ls in user_ls {
        for piece in &pieces {
            for file in sources.archive.log_files(piece, ls).unwrap_or_default() {
                files.push((file.path, file.size_bytes));
            }
        }
    }
    files
}

/// `path` resolved (symbolic links followed) if it is a regular file inside `root` (the
/// archive's canonical root), by the rule of the restore's own opens
/// ([`obrestore_backup::store::resolve_inside`]).
fn confined(root: &Path, path: &Path) -> Option<PathBuf> {
    let resolved = obrestore_backup::store::resolve_inside(root, path).ok()?;
    std::fs::metadata(&resolved)
        .ok()?
        .is_file()
        .then_some(resolved)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::{confined, read_files, ReadAheads, StopOnCancel, READ_BUFFER};

    /// A set flag stops the reads before the next one; an unset one reads every file.
    #[test]
    fn a_stopped_read_ahead_reads_no_further() {
        let root = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(root.path()).unwrap();
        let size = 3 * READ_BUFFER as u64 + 5;
        let files: Vec<_> = (0..2)
            .map(|index| {
                let path = root.join(format!("{index}.obarc"));
                std::fs::write(&path, vec![7u8; size as usize]).unwrap();
                (path, size)
            })
            .collect();
        let read_aheads = ReadAheads::default();
        let flag = read_aheads.register(9);
        assert_eq!(read_files(&root, files.clone(), &flag), 2 * size);
        read_aheads.stop(9);
        assert!(flag.is_set());
        assert_eq!(read_files(&root, files, &flag), 0);
        // Stopped once, the DAG has no read-ahead left to stop.
        read_aheads.stop(9);
        assert!(read_aheads.lock().is_empty());
    }

    /// The guard stops its DAG's read-ahead only when dropped after a cancellation, and
    /// a read-ahead that ended unregisters only its own flag.
    #[test]
    fn only_a_cancelled_step_stops_the_read_ahead() {
        let read_aheads = ReadAheads::default();
        let cancelled = AtomicBool::new(false);
        let flag = read_aheads.register(3);
        let other = read_aheads.register(4);
        drop(StopOnCancel {
            read_aheads: &read_aheads,
            dag_id: 3,
            cancelled: || cancelled.load(Ordering::Relaxed),
        });
        assert!(!flag.is_set());
        cancelled.store(true, Ordering::Relaxed);
        drop(StopOnCancel {
            read_aheads: &read_aheads,
            dag_id: 3,
            cancelled: || cancelled.load(Ordering::Relaxed),
        });
        assert!(flag.is_set());
        assert!(!other.is_set());
        // A second read-ahead of DAG 4 replaces (and stops) the first; the first's end
        // leaves the second registered.
        let second = read_aheads.register(4);
        assert!(other.is_set());
        read_aheads.unregister(4, &other);
        read_aheads.stop(4);
        assert!(second.is_set());
    }

    /// Only regular files that resolve inside the root are read: not a symbolic link
    /// out of it, not a directory, not a missing file.
    #[test]
    fn only_files_inside_the_root_are_read() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let inside = root.path().join("log.obarc");
        std::fs::write(&inside, b"log").unwrap();
        let secret = outside.path().join("secret");
        std::fs::write(&secret, b"secret").unwrap();
        let link = root.path().join("link.obarc");
        std::os::unix::fs::symlink(&secret, &link).unwrap();
        let inner_link = root.path().join("inner.obarc");
        std::os::unix::fs::symlink(&inside, &inner_link).unwrap();
        let resolved = std::fs::canonicalize(&inside).unwrap();
        // As the archive's root is: canonical.
        let canonical = std::fs::canonicalize(root.path()).unwrap();
        assert_eq!(confined(&canonical, &inside), Some(resolved.clone()));
        assert_eq!(confined(&canonical, &inner_link), Some(resolved));
        assert_eq!(confined(&canonical, &link), None);
        assert_eq!(confined(&canonical, &secret), None);
        assert_eq!(confined(&canonical, root.path()), None);
        assert_eq!(confined(&canonical, &root.path().join("missing")), None);
    }
}

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
//! restore's own reads meet and report it. The thread is not stopped by a cancelled
//! restore: it ends after at most `READ_AHEAD_BYTES`, reading nothing twice.

use std::path::{Path, PathBuf};

use obrestore_backup::{RestorePlan, Sources};

/// Bytes read ahead at most for one restore.
const READ_AHEAD_BYTES: u64 = 256 << 20;
/// Bytes per `read` (as the restore's own block readers): few system calls, large
/// requests to the device.
const READ_BUFFER: usize = 1 << 20;

/// Starts the read-ahead of `user_ls`'s log files on a thread of its own
/// (detached: it ends after its last file or its budget). A thread that cannot be
/// spawned is no error.
pub(super) fn spawn(sources: &Sources, plan: &RestorePlan, user_ls: &[u64]) {
    let sources = sources.clone();
    let plan = plan.clone();
    let user_ls = user_ls.to_vec();
    let _ = std::thread::Builder::new()
        .name("restore-read-ahead".to_string())
        .spawn(move || {
            let files = log_files(&sources, &plan, &user_ls);
            let mut buffer = vec![0u8; READ_BUFFER];
            let mut budget = READ_AHEAD_BYTES;
            for (path, size) in files {
                if size > budget {
                    break;
                }
                budget -= size;
                if let Some(path) = confined(sources.archive.root(), &path) {
                    crate::prepare::read_ahead_file(&path, size, &mut buffer);
                }
            }
        });
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
    use super::confined;

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

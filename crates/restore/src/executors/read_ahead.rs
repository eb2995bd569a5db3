//! Read-ahead of a restore's bulk files: the user log streams' data files and archive
//! log files, read once, in about the order the data rounds and the replays need them
//! ([`read_order`]), by one background thread that "Restore sys tablets" starts when LS
//! 1 is restored.
//!
//! Why: a restore alternates between waiting for the device and using the CPU (SHA-256
//! of the values, CRCs, copies); on a cold page cache the data rounds and the replays
//! wait for each read of theirs. This thread keeps the device streaming, so the workers
//! find most blocks in the page cache. It starts after LS 1, not with it: measured, its
//! reads queued ahead of LS 1's run and commit syncs and made `Restore sys tablets`
//! (LS 1, ~5 % of the bytes, alone on the critical path) about twice as long. It changes no result: the restore reads and checks
//! every byte itself as before; a file read here is only in the cache sooner.
//!
//! Invariants: only files the restore reads are read (the planned sets' data files of
//! the user log streams, and their log files in the planned pieces, as
//! [`DataStore::data_files`] and [`ArchiveStore::log_files`] list them), each only
//! after it resolves, symbolic links followed, inside its destination's root (the rule
//! of the restore's own opens), at most [`READ_AHEAD_BYTES`] in all (a bigger restore
//! gets its first files read ahead, so the page cache is not flooded with what would
//! be evicted before use). Every error is ignored: the restore's own reads meet and
//! report it. The thread is not stopped by a cancelled restore: it ends after at most
//! `READ_AHEAD_BYTES`, reading nothing twice.

use std::path::{Path, PathBuf};

use obrestore_backup::{RestorePlan, Sources};

/// Bytes read ahead at most for one restore.
const READ_AHEAD_BYTES: u64 = 512 << 20;
/// Bytes per `read` (as the restore's own block readers): few system calls, large
/// requests to the device.
const READ_BUFFER: usize = 1 << 20;

/// Starts the read-ahead of `user_ls`'s data and log files on a thread of its own
/// (detached: it ends after its last file or its budget). A thread that cannot be
/// spawned is no error.
pub(super) fn spawn(sources: &Sources, plan: &RestorePlan, user_ls: &[u64]) {
    let sources = sources.clone();
    let plan = plan.clone();
    let user_ls = user_ls.to_vec();
    let _ = std::thread::Builder::new()
        .name("restore-read-ahead".to_string())
        .spawn(move || {
            let files = bulk_files(&sources, &plan, &user_ls);
            let mut buffer = vec![0u8; READ_BUFFER];
            let mut budget = READ_AHEAD_BYTES;
            for (root, path, size) in files {
                if size > budget {
                    break;
                }
                budget -= size;
                if let Some(path) = confined(&root, &path) {
                    crate::prepare::read_ahead_file(&path, size, &mut buffer);
                }
            }
        });
}

/// The bulk files of the user log streams in read order, each with its destination's
/// root and its listed size.
fn bulk_files(
    sources: &Sources,
    plan: &RestorePlan,
    user_ls: &[u64],
) -> Vec<(PathBuf, PathBuf, u64)> {
    let data_root = sources.data.root().to_path_buf();
    let archive_root = sources.archive.root().to_path_buf();
    let pieces = plan.piece_infos();
    let mut data = Vec::new();
    let mut logs = Vec::new();
    for &ls in user_ls {
        let mut files = Vec::new();
        for planned in &plan.sets {
            for file in sources
                .data
                .data_files(&planned.info, ls)
                .unwrap_or_default()
            {
                files.push((data_root.clone(), file.path, file.size_bytes));
            }
        }
        data.push(files);
        let mut files = Vec::new();
        for piece in &pieces {
            for file in sources.archive.log_files(piece, ls).unwrap_or_default() {
                files.push((archive_root.clone(), file.path, file.size_bytes));
            }
        }
        logs.push(files);
    }
    read_order(data, logs)
}

/// One list from the log streams' data files and log files (both by log stream, in
/// its order): a stream's log is replayed after its data is restored, while the next
/// streams' data still is, so stream `i`'s log files come after stream `i + 1`'s data
/// files: data 1, data 2, log 1, data 3, log 2, ..., log n.
fn read_order<T>(data: Vec<Vec<T>>, logs: Vec<Vec<T>>) -> Vec<T> {
    let mut order = Vec::new();
    let mut pending_log: Option<Vec<T>> = None;
    let mut logs = logs.into_iter();
    for files in data {
        order.extend(files);
        order.extend(pending_log.take().unwrap_or_default());
        pending_log = logs.next();
    }
    order.extend(pending_log.unwrap_or_default());
    order.extend(logs.flatten());
    order
}

/// `path` resolved (symbolic links followed) if it is a regular file inside `root`
/// (also resolved), as the restore's own opens require.
fn confined(root: &Path, path: &Path) -> Option<PathBuf> {
    let root = std::fs::canonicalize(root).ok()?;
    let resolved = std::fs::canonicalize(path).ok()?;
    let is_file = std::fs::metadata(&resolved).ok()?.is_file();
    (is_file && resolved.starts_with(&root)).then_some(resolved)
}

#[cfg(test)]
mod tests {
    use super::{confined, read_order};

    #[test]
    fn a_streams_log_comes_after_the_next_streams_data() {
        let data = vec![vec!["d1a", "d1b"], vec!["d2"], vec!["d3"]];
        let logs = vec![vec!["l1"], vec!["l2a", "l2b"], vec!["l3"]];
        assert_eq!(
            read_order(data, logs),
            ["d1a", "d1b", "d2", "l1", "d3", "l2a", "l2b", "l3"]
        );
        assert_eq!(read_order(vec![vec!["d1"]], vec![vec!["l1"]]), ["d1", "l1"]);
        assert_eq!(
            read_order::<&str>(Vec::new(), Vec::new()),
            Vec::<&str>::new()
        );
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
        assert_eq!(confined(root.path(), &inside), Some(resolved.clone()));
        assert_eq!(confined(root.path(), &inner_link), Some(resolved));
        assert_eq!(confined(root.path(), &link), None);
        assert_eq!(confined(root.path(), &secret), None);
        assert_eq!(confined(root.path(), root.path()), None);
        assert_eq!(confined(root.path(), &root.path().join("missing")), None);
    }
}

//! Confine, open, plan: the one path from a restore's backup URIs to its plan.
//!
//! Every frontend plans through here (the agent at submit and for previews, the HTTP
//! handlers through the agent, the CLI offline): the URIs are confined to the allowed
//! roots and opened together ([`Sources`]), then planned with OceanBase's rules
//! ([`obrestore_backup::plan_restore`]). A restore is planned once, at submit
//! ([`prepare_restore`]); the plan travels in the DAG's parameters, and "Pre restore
//! check" only checks that the planned sources are still readable
//! ([`check_planned_sources`]).
//!
//! Invariant: nothing here reads a file outside the given [`AllowedRoots`] (or, for
//! [`Sources::open_self_confined`], outside the destinations themselves).

use std::collections::BTreeSet;

use obrestore_backup::{
    AllowedRoots, BackupError, DataStore, RestorePlan, RestoreTarget, RestoreWindow, Sources,
};

use crate::cluster::NewRestoreJob;
use crate::executors::SYS_LS;
use crate::param::ValidatedRestore;

/// A restore planned at submit: what its DAG and its restore job are built from.
#[derive(Debug, Clone)]
pub struct PreparedRestore {
    /// The sets and pieces (with the set keys, which are never serialized).
    pub plan: RestorePlan,
    /// The user log streams of the planned sets (LS 1 is restored with the sys tablets).
    pub user_ls: Vec<u64>,
    /// The restore job the overview shows from submit on.
    pub job: NewRestoreJob,
}

/// What a backup says about the tenant it was taken of.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceTenantInfo {
    pub tenant_name: String,
    pub cluster_name: String,
    pub windows: Vec<RestoreWindow>,
}

/// Confines and opens the restore's destinations and plans it to its target with its
/// decryption passwords. Blocking.
///
/// # Errors
/// A URI outside the roots, an unreadable backup, a bad password, not enough sets or
/// log for the target (OceanBase's wording, [`BackupError`]).
pub fn prepare_restore(
    restore: &ValidatedRestore,
    roots: &AllowedRoots,
    task_time: i64,
) -> Result<PreparedRestore, BackupError> {
    let passwords = restore.decryption_passwords();
    let sources = Sources::open(&restore.data_backup_uri, &restore.archive_log_uri, roots)?;
    let plan = sources.plan(&restore.target.plan_target(), &passwords)?;
    let mut user_ls = BTreeSet::new();
    for planned in &plan.sets {
        for attr in sources.data.ls_attrs(&planned.info)? {
            if attr.ls_id != SYS_LS {
                user_ls.insert(attr.ls_id);
            }
        }
    }
    let job = new_restore_job(&sources.data, &plan, restore, task_time)?;
    Ok(PreparedRestore {
        plan,
        user_ls: user_ls.into_iter().collect(),
        job,
    })
}

/// Threads of [`read_ahead_metadata`]: reads in flight at once on a cold device.
const READ_AHEAD_THREADS: usize = 8;

/// Reads, on [`READ_AHEAD_THREADS`] threads, the files that planning any restore of
/// these destinations reads (`format.obbak`, every set's set info, every piece's piece
/// info and checkpoint files; not the planned sets' log stream lists and indexes,
/// which depend on the plan) and drops them: run while the agent's state is created
/// (`obagent restore start`), so that the restore's own planning, which comes after the
/// request is validated against the cluster and reads these files one after the
/// other, finds them in the page cache instead of waiting for a cold device each time.
/// Nothing else is read, so the restore reads the same files as without it. Only
/// directories and regular files under the destinations, once confined to `roots`, are
/// read (symbolic links are not followed). Every error is ignored: the restore's own
/// planning meets and reports it. Blocking.
pub fn read_ahead_metadata(data_uri: &str, archive_uri: Option<&str>, roots: &AllowedRoots) {
    let mut dirs = Vec::new();
    for uri in std::iter::once(data_uri).chain(archive_uri) {
        let confined = obrestore_backup::StorageUri::parse(uri)
            .ok()
            .and_then(|uri| roots.resolve(&uri).ok());
        if let Some(dir) = confined {
            dirs.push((dir, 0));
        }
    }
    let work = std::sync::Mutex::new((dirs, 0usize));
    let changed = std::sync::Condvar::new();
    std::thread::scope(|scope| {
        for _ in 0..READ_AHEAD_THREADS {
            scope.spawn(|| read_ahead_worker(&work, &changed));
        }
    });
}

/// What [`read_ahead_metadata`] does with an entry `depth` levels below a destination.
#[derive(Debug, PartialEq)]
enum ReadAhead {
    Descend,
    Read,
    Skip,
}

fn read_ahead_kind(depth: usize, name: &str, is_dir: bool) -> ReadAhead {
    use obrestore_backup::layout::{FORMAT_FILE, SINGLE_PIECE_INFO, SINGLE_SET_INFO};
    match (depth, is_dir) {
        // A set's or a piece's directory (not the `backup_sets` and `pieces` listings).
        (0, true) if name.starts_with("backup_set_") || name.starts_with("piece_") => {
            ReadAhead::Descend
        }
        (0, false) if name == FORMAT_FILE => ReadAhead::Read,
        (1, true) if name == "checkpoint" => ReadAhead::Descend,
        (1, false) if name == SINGLE_SET_INFO || name == SINGLE_PIECE_INFO => ReadAhead::Read,
        (2, false) => ReadAhead::Read,
        _ => ReadAhead::Skip,
    }
}

/// Bytes of one file [`read_ahead_metadata`] reads at most: planning's files are small,
/// and a large file under a planning name (a damaged or hostile backup) costs no more.
const READ_AHEAD_FILE_BYTES: u64 = 4 << 20;

/// Reads `path`'s first `limit` bytes through `buffer` (into the page cache; nothing is
/// kept; one `read` per buffer's length, so a big file wants a big buffer); the bytes
/// read, up to an error. Also the restore's read-ahead of its bulk files
/// (`executors/read_ahead.rs`).
pub(crate) fn read_ahead_file(path: &std::path::Path, limit: u64, buffer: &mut [u8]) -> u64 {
    read_ahead_file_until(path, limit, buffer, || false)
}

/// [`read_ahead_file`] that checks `stopped` before each `read` and returns once it
/// says so (the restore's read-ahead of a cancelled restore).
pub(crate) fn read_ahead_file_until(
    path: &std::path::Path,
    limit: u64,
    buffer: &mut [u8],
    stopped: impl Fn() -> bool,
) -> u64 {
    use std::io::Read;
    let Ok(mut file) = std::fs::File::open(path) else {
        return 0;
    };
    let mut done = 0u64;
    while done < limit && !buffer.is_empty() && !stopped() {
        let want =
            usize::try_from(limit - done).map_or(buffer.len(), |left| left.min(buffer.len()));
        match file.read(&mut buffer[..want]) {
            Ok(0) => break,
            Ok(read) => done += read as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    done
}

/// Buffer of one [`read_ahead_metadata`] thread (planning's files are small).
const METADATA_BUFFER: usize = 8 << 10;

/// One thread of [`read_ahead_metadata`]: takes a directory, reads its planning files
/// and queues the directories holding more, until no directory is queued and none is
/// being read.
fn read_ahead_worker(
    work: &std::sync::Mutex<(Vec<(std::path::PathBuf, usize)>, usize)>,
    changed: &std::sync::Condvar,
) {
    let lock = || {
        work.lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    };
    loop {
        let (dir, depth) = {
            let mut state = lock();
            loop {
                if let Some(next) = state.0.pop() {
                    state.1 += 1;
                    break next;
                }
                if state.1 == 0 {
                    return;
                }
                state = changed
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
            }
        };
        let mut found = Vec::new();
        let mut buffer = [0u8; METADATA_BUFFER];
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let name = entry.file_name();
            let name = name.to_string_lossy();
            match read_ahead_kind(depth, &name, kind.is_dir()) {
                ReadAhead::Descend if kind.is_dir() => found.push((entry.path(), depth + 1)),
                ReadAhead::Read if kind.is_file() => {
                    read_ahead_file(&entry.path(), READ_AHEAD_FILE_BYTES, &mut buffer);
                }
                _ => {}
            }
        }
        let mut state = lock();
        state.0.extend(found);
        state.1 -= 1;
        changed.notify_all();
    }
}

/// "Pre restore check" of a restore planned at submit: its destinations (the request's
/// URIs, as at submit) open again under `roots`, and the planned sets' metadata and
/// pieces' directories are still readable (a backup may have been moved or deleted
/// since). Returns the restore job. Blocking.
///
/// # Errors
/// A destination or a planned set or piece is gone or unreadable.
pub fn check_planned_sources(
    restore: &ValidatedRestore,
    plan: &RestorePlan,
    roots: &AllowedRoots,
    task_time: i64,
) -> Result<NewRestoreJob, BackupError> {
    let sources = Sources::open(&restore.data_backup_uri, &restore.archive_log_uri, roots)?;
    for piece in &plan.pieces {
        sources.archive.ls_ids(&piece.info)?;
    }
    new_restore_job(&sources.data, plan, restore, task_time)
}

/// The sets and pieces a restore to `target` would use (OCP's restore preview, the
/// CLI's `restore preview`). Blocking.
///
/// # Errors
/// As [`prepare_restore`].
pub fn preview(
    data_uri: &str,
    archive_uri: &str,
    roots: &AllowedRoots,
    target: &RestoreTarget,
    passwords: &[String],
) -> Result<RestorePlan, BackupError> {
    Sources::open(data_uri, archive_uri, roots)?.plan(target, passwords)
}

/// The tenant a backup was taken of and its restorable windows. Blocking.
///
/// # Errors
/// A URI outside the roots, an unreadable backup.
pub fn source_tenant_info(
    data_uri: &str,
    archive_uri: &str,
    roots: &AllowedRoots,
) -> Result<SourceTenantInfo, BackupError> {
    let sources = Sources::open(data_uri, archive_uri, roots)?;
    Ok(SourceTenantInfo {
        windows: sources.windows()?,
        tenant_name: sources.data.format().tenant_name.clone(),
        cluster_name: sources.data.format().cluster_name.clone(),
    })
}

/// The restore job of a plan: sources, log stream and tablet counts, data bytes.
///
/// # Errors
/// The set metadata cannot be read.
pub fn new_restore_job(
    data: &DataStore,
    plan: &RestorePlan,
    restore: &ValidatedRestore,
    task_time: i64,
) -> Result<NewRestoreJob, BackupError> {
    let mut total_bytes = 0u64;
    let mut tablets = BTreeSet::new();
    let mut ls_ids = BTreeSet::new();
    for planned in &plan.sets {
        for attr in data.ls_attrs(&planned.info)? {
            ls_ids.insert(attr.ls_id);
            tablets.extend(attr.tablet_ids.iter().copied());
            for file in data.data_files(&planned.info, attr.ls_id)? {
                total_bytes += file.size_bytes;
            }
        }
    }
    let first = plan.sets.first().map(|s| s.info.clone());
    Ok(NewRestoreJob {
        restore_tenant_name: restore.restore_tenant_name.clone(),
        restore_scn: plan.restore_scn.as_u64(),
        data_backup_uri: restore.data_backup_uri.clone(),
        archive_log_uri: restore.archive_log_uri.clone(),
        backup_tenant_name: first.as_ref().map(|s| s.tenant_name.clone()),
        backup_tenant_id: first.as_ref().map(|s| s.tenant_id),
        backup_cluster_version: first.as_ref().map(|s| s.cluster_version.clone()),
        backup_cluster_name: Some(data.format().cluster_name.clone()),
        restore_option: restore_option(restore, task_time),
        backup_set_list: plan.sets.iter().map(|s| s.backup_dest.clone()).collect(),
        backup_piece_list: plan.pieces.iter().map(|p| p.backup_dest.clone()).collect(),
        ls_count: ls_ids.len() as u64,
        tablet_count: tablets.len() as u64,
        total_bytes,
    })
}

/// OceanBase's `RESTORE_OPTION` of a restore: `pool_list=..&locality=..&primary_zone=..
/// &concurrency=..&ha_high_thread_score=..`.
pub fn restore_option(restore: &ValidatedRestore, task_time: i64) -> String {
    let pools: Vec<String> = restore
        .pool_specs(task_time)
        .into_iter()
        .map(|pool| pool.name)
        .collect();
    format!(
        "pool_list={}&locality={}&primary_zone={}&concurrency={}&ha_high_thread_score={}",
        pools.join(","),
        crate::cluster::locality(&restore.tenant_zones()),
        restore.primary_zone,
        restore.concurrency,
        restore.ha_high_thread_score
    )
}

#[cfg(test)]
mod tests {
    use super::{read_ahead_kind, ReadAhead};
    use obrestore_backup::layout::{FORMAT_FILE, SINGLE_PIECE_INFO, SINGLE_SET_INFO};

    #[test]
    fn the_read_ahead_reads_only_what_planning_reads() {
        let dir = |depth, name| read_ahead_kind(depth, name, true);
        let file = |depth, name| read_ahead_kind(depth, name, false);
        // A destination's root: the format file, the sets' and pieces' directories.
        assert_eq!(file(0, FORMAT_FILE), ReadAhead::Read);
        assert_eq!(dir(0, "backup_set_4_full"), ReadAhead::Descend);
        assert_eq!(dir(0, "piece_d1r1p7"), ReadAhead::Descend);
        for listing in ["backup_sets", "pieces", "rounds"] {
            assert_eq!(dir(0, listing), ReadAhead::Skip, "{listing}");
        }
        assert_eq!(file(0, "backup_set_4_full"), ReadAhead::Skip);
        // In a set or a piece: its info, and the piece's checkpoints.
        assert_eq!(file(1, SINGLE_SET_INFO), ReadAhead::Read);
        assert_eq!(file(1, SINGLE_PIECE_INFO), ReadAhead::Read);
        assert_eq!(dir(1, "checkpoint"), ReadAhead::Descend);
        assert_eq!(file(1, "tenant_backup_set_infos.obbak"), ReadAhead::Skip);
        for data in ["logstream_1001", "infos"] {
            assert_eq!(dir(1, data), ReadAhead::Skip, "{data}");
        }
        assert_eq!(
            file(2, "checkpoint.1712102400000000000.obarc"),
            ReadAhead::Read
        );
        assert_eq!(dir(2, "deeper"), ReadAhead::Skip);
        assert_eq!(file(3, "macro_block_data.1.obbak"), ReadAhead::Skip);
    }

    /// A destination whose planning files are there, one of them huge: the read-ahead
    /// returns, reading each through a bounded window, and a missing destination or a
    /// symbolic link out of it is no error.
    #[test]
    fn the_read_ahead_of_a_destination_returns_whatever_it_holds() {
        use super::{read_ahead_file, read_ahead_metadata, READ_AHEAD_FILE_BYTES};
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        let set = data.join("backup_set_1_full");
        std::fs::create_dir_all(&set).unwrap();
        std::fs::write(data.join(FORMAT_FILE), b"format").unwrap();
        // Sparse: 64 GiB on paper, nothing on the disk; a whole read would not end soon.
        let huge = std::fs::File::create(set.join(SINGLE_SET_INFO)).unwrap();
        huge.set_len(64 << 30).unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), data.join("backup_set_2_full")).unwrap();
        let roots = obrestore_backup::AllowedRoots::new(vec![root.path().to_path_buf()]).unwrap();
        let uri = format!("file://{}", data.display());
        let missing = format!("file://{}", root.path().join("nothing").display());
        read_ahead_metadata(&uri, Some(&missing), &roots);
        let mut buffer = vec![0u8; 1 << 20];
        assert_eq!(
            read_ahead_file(
                &set.join(SINGLE_SET_INFO),
                READ_AHEAD_FILE_BYTES,
                &mut buffer
            ),
            READ_AHEAD_FILE_BYTES
        );
        assert_eq!(
            read_ahead_file(&data.join(FORMAT_FILE), READ_AHEAD_FILE_BYTES, &mut buffer),
            6
        );
        assert_eq!(read_ahead_file(&data.join(FORMAT_FILE), 4, &mut buffer), 4);
        assert_eq!(
            read_ahead_file(
                &root.path().join("nothing"),
                READ_AHEAD_FILE_BYTES,
                &mut buffer
            ),
            0
        );
    }
}

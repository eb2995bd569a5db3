//! Fault injection on the restore side (cargo feature `failpoints`): a backup file whose
//! reads fail in the middle, and a full disk under the row store. Each fault ends the
//! restore DAG FAILED with a task log that says what happened (the file, "No space left
//! on device"); once the fault is cleared, RETRY ends SUCCEED with the tenant digest of
//! the independent truth, or ROLLBACK leaves no tenant and no pools.

mod common;

use std::path::{Path, PathBuf};

use common::fixtures::{
    assert_rows_equal_truth, files_under, open_agent, restore_param, rollback_leaves_nothing,
    small_backup,
};
use obrestore_backup::failpoint::{clear_read_failure, fail_reads_after};
use obrestore_backup::GenerateSummary;
use obrestore_dag::{Operator, State};
use obrestore_restore::cluster::{agent_rows_path, clear_row_write_failure, fail_row_writes_under};
use obrestore_restore::{RestoreAgent, TenantService};
use serde_json::json;

/// The files under `dir` whose path contains every one of `parts`, sorted.
fn files_with(dir: &Path, parts: &[&str]) -> Vec<PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|path| {
            parts
                .iter()
                .all(|part| path.to_string_lossy().contains(part))
        })
        .collect()
}

/// Starts a restore of `tenant` and waits for it to settle FAILED; returns the DAG and
/// every task log line.
async fn restore_fails(
    agent: &RestoreAgent,
    summary: &GenerateSummary,
    tenant: &str,
) -> (u64, Vec<String>) {
    let dag = agent
        .start_restore(restore_param(summary, tenant, json!({})))
        .await
        .unwrap();
    let dag_id = agent.engine().find_dag(&dag.id).unwrap().id;
    let settled = agent.engine().wait_settled(dag_id).await.unwrap();
    assert_eq!(settled.state, State::Failed);
    let detail = agent.engine().dag_detail(dag_id, true).unwrap();
    let logs = detail
        .nodes
        .unwrap()
        .into_iter()
        .flat_map(|node| node.sub_tasks.unwrap())
        .flat_map(|task| task.task_logs)
        .collect();
    (dag_id, logs)
}

/// RETRY, then SUCCEED with the rows (tenant digest) of the truth at the restore SCN.
async fn retry_succeeds_with_the_exact_digest(
    agent: &RestoreAgent,
    summary: &GenerateSummary,
    tenant: &str,
    dag_id: u64,
) {
    agent
        .engine()
        .operate(dag_id, Operator::Retry)
        .await
        .unwrap();
    let settled = agent.engine().wait_settled(dag_id).await.unwrap();
    assert_eq!(settled.state, State::Succeed);
    let overview = agent.restore_overview(tenant).unwrap().job;
    assert_rows_equal_truth(agent, summary, tenant, overview.restore_scn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_error_mid_data_file_fails_naming_the_file_and_retry_restores_exactly() {
    let backup = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let summary = small_backup(backup.path(), None);
    let agent = open_agent(state.path(), backup.path()).await;
    // The newest data file of a user log stream: every plan reads it.
    let victim = files_with(&summary.data_dir, &["logstream_1002", "macro_block_data"])
        .pop()
        .unwrap();
    let size = std::fs::metadata(&victim).unwrap().len();
    fail_reads_after(&victim, size / 2);
    let (dag_id, logs) = restore_fails(&agent, &summary, "readfault").await;
    let named = logs.iter().any(|line| {
        line.contains(&victim.display().to_string())
            && line.contains(&format!("failpoint: read error after {} bytes", size / 2))
    });
    assert!(named, "no log names the file that failed: {logs:#?}");
    clear_read_failure(&victim);
    retry_succeeds_with_the_exact_digest(&agent, &summary, "readfault", dag_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_error_mid_log_file_fails_naming_the_file_and_rollback_leaves_nothing() {
    let backup = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let summary = small_backup(backup.path(), None);
    let agent = open_agent(state.path(), backup.path()).await;
    let pools_before = agent.cluster().list_pools().unwrap().len();
    // The newest log file of a log stream: the replay to the latest point reads it.
    let victim = files_with(&summary.archive_dir, &["logstream_1001/log/"])
        .into_iter()
        .max_by_key(|path| {
            let piece = path
                .components()
                .find(|part| part.as_os_str().to_string_lossy().starts_with("piece_"));
            (piece.map(|part| part.as_os_str().to_owned()), path.clone())
        })
        .unwrap();
    fail_reads_after(&victim, 100);
    let (dag_id, logs) = restore_fails(&agent, &summary, "logfault").await;
    let named = logs.iter().any(|line| {
        line.contains(&victim.display().to_string())
            && line.contains("failpoint: read error after 100 bytes")
    });
    assert!(named, "no log names the file that failed: {logs:#?}");
    clear_read_failure(&victim);
    assert!(agent.cluster().tenant("logfault").unwrap().is_some());
    rollback_leaves_nothing(&agent, dag_id, "logfault", pools_before).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_under_the_row_store_fails_with_enospc_and_retry_restores_exactly() {
    let backup = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let summary = small_backup(backup.path(), None);
    let agent = open_agent(state.path(), backup.path()).await;
    let rows = agent_rows_path(state.path());
    fail_row_writes_under(&rows);
    let (dag_id, logs) = restore_fails(&agent, &summary, "diskfull").await;
    clear_row_write_failure(&rows);
    let named = logs.iter().any(|line| {
        line.contains("No space left on device") && line.contains(&rows.display().to_string())
    });
    assert!(named, "no log says the disk is full: {logs:#?}");
    retry_succeeds_with_the_exact_digest(&agent, &summary, "diskfull", dag_id).await;
}

/// A size-limited tmpfs mounted at a directory for the life of the value.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=`) at `dir`; `None` where this process
    /// may not mount (not root, or no mount namespace rights).
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| Tmpfs {
            dir: dir.to_path_buf(),
        })
    }

    fn resize(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_really_full_tmpfs_under_the_row_store_fails_and_retry_after_growing_it_succeeds() {
    let backup = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let summary = small_backup(backup.path(), None);
    let rows = agent_rows_path(state.path());
    // The restored rows take a few MiB; 256 KiB holds the first runs only.
    let Some(tmpfs) = Tmpfs::mount(&rows, "256k") else {
        eprintln!(
            "skipped: cannot mount a tmpfs here (needs root); the failpoint test covers ENOSPC"
        );
        return;
    };
    let agent = open_agent(state.path(), backup.path()).await;
    let (dag_id, logs) = restore_fails(&agent, &summary, "tmpfsfull").await;
    let named = logs.iter().any(|line| {
        line.contains("No space left on device") && line.contains(&rows.display().to_string())
    });
    assert!(named, "no log says the disk is full: {logs:#?}");
    tmpfs.resize("256m");
    retry_succeeds_with_the_exact_digest(&agent, &summary, "tmpfsfull", dag_id).await;
    drop(agent);
}

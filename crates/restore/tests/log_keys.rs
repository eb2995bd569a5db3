//! A data round does not write the rows its log stream's archived log writes or deletes
//! later (`executors/data/log_keys.rs`): the restore stores fewer row versions, yet its
//! rows equal the truth and its progress adds up; above the key set's budget a stream
//! writes every row, as before.

mod common;

use common::fixtures::{assert_rows_equal_truth, open_agent, restore_param};
use obrestore_backup::{generate, GenerateConfig};
use obrestore_dag::State;
use obrestore_restore::RestoreAgent;
use serde_json::json;

/// Restores the backup as `tenant` and checks it against the truth; the row versions
/// the restore stored (data rounds' rows plus the replays' entries, tombstones included).
async fn restore_versions(
    agent: &RestoreAgent,
    summary: &obrestore_backup::GenerateSummary,
    tenant: &str,
) -> u64 {
    let param = restore_param(summary, tenant, json!({"concurrency": 2}));
    let dag = agent.start_restore(param).await.unwrap();
    let dag_id = agent.engine().find_dag(&dag.id).unwrap().id;
    let settled = agent.engine().wait_settled(dag_id).await.unwrap();
    assert_eq!(settled.state, State::Succeed, "{tenant}");
    let job = agent.restore_overview(tenant).unwrap().job;
    assert_rows_equal_truth(agent, summary, tenant, job.restore_scn);
    assert_eq!(job.finish_bytes, job.total_bytes, "{job:?}");
    assert_eq!(job.finish_tablet_count, job.tablet_count, "{job:?}");
    let tenant_id = job.restore_tenant_id.unwrap();
    agent.cluster().row_stats(tenant_id).versions
}

/// One test (the budget failpoint is process-wide): the same backup restored with the
/// built-in budget and with a budget no key fits in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_rounds_skip_the_rows_the_log_rewrites_unless_over_budget() {
    let backup = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let mut config = GenerateConfig::new(backup.path());
    config.target_bytes = 6 << 20;
    config.data_file_bytes = 512 << 10;
    config.log_file_bytes = 512 << 10;
    config.block_bytes = 32 << 10;
    config.kdf_iterations = 1000;
    let summary = generate(&config).unwrap();
    let agent = open_agent(state.path(), backup.path()).await;
    let skipping = restore_versions(&agent, &summary, "skipping").await;
    obrestore_restore::executors::set_log_keys_budget_failpoint(Some(0));
    let writing_all = restore_versions(&agent, &summary, "writing_all").await;
    obrestore_restore::executors::set_log_keys_budget_failpoint(None);
    // The log rewrites a good share of the rows (about a quarter in the generator's
    // workload): every one of them is a version fewer.
    assert!(
        skipping * 10 < writing_all * 9,
        "skipping {skipping} versions, writing all {writing_all}"
    );
    let again = restore_versions(&agent, &summary, "again").await;
    assert_eq!(again, skipping);
}

//! `Restore data L` split by macro-block ranges: a log stream whose tablets form one
//! group still restores in several sub-tasks when `concurrency` allows, row-exact
//! against the generator's truth, with its progress adding up, across a restart in the
//! middle of the split node too.

mod common;

use std::path::Path;
use std::time::Duration;

use common::fixtures::{assert_rows_equal_truth, open_agent, reopen_agent, restore_param};
use obrestore_backup::{generate, GenerateConfig, GenerateSummary};
use obrestore_dag::State;
use obrestore_restore::RestoreAgent;
use serde_json::json;

/// A small backup whose user log streams have one tablet each (so each is one group of
/// tablets), in many small blocks: FULL + INC sets, so rows have versions in both.
fn one_tablet_backup(dir: &Path) -> GenerateSummary {
    let mut config = GenerateConfig::new(dir);
    config.target_bytes = 6 << 20;
    config.tablets_per_ls = 1;
    config.data_file_bytes = 512 << 10;
    config.log_file_bytes = 512 << 10;
    config.block_bytes = 32 << 10;
    config.kdf_iterations = 1000;
    generate(&config).unwrap()
}

/// Sub-tasks of each `Restore data L` node of the DAG, by node name.
fn data_sub_tasks(agent: &RestoreAgent, dag_id: u64) -> Vec<(String, usize)> {
    let detail = agent.engine().dag_detail(dag_id, true).unwrap();
    detail
        .nodes
        .unwrap()
        .into_iter()
        .filter(|node| node.name.starts_with("Restore data"))
        .map(|node| (node.name, node.sub_tasks.map_or(0, |tasks| tasks.len())))
        .collect()
}

/// The restore job ended with every byte and tablet counted once.
#[track_caller]
fn progress_adds_up(agent: &RestoreAgent, tenant: &str) {
    let job = agent.restore_overview(tenant).unwrap().job;
    assert_eq!(job.status.to_string(), "SUCCESS");
    assert!(job.total_bytes > 0);
    assert_eq!(job.finish_bytes, job.total_bytes, "{job:?}");
    assert_eq!(job.finish_tablet_count, job.tablet_count, "{job:?}");
}

async fn restore(
    agent: &RestoreAgent,
    summary: &GenerateSummary,
    tenant: &str,
    concurrency: u32,
) -> u64 {
    let param = restore_param(summary, tenant, json!({"concurrency": concurrency}));
    let dag = agent.start_restore(param).await.unwrap();
    agent.engine().find_dag(&dag.id).unwrap().id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tablet_per_log_stream_restores_in_several_ranges_exactly() {
    let backup = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let summary = one_tablet_backup(backup.path());
    let agent = open_agent(state.path(), backup.path()).await;
    for (tenant, concurrency) in [("serial", 1), ("parallel", 8)] {
        let dag_id = restore(&agent, &summary, tenant, concurrency).await;
        let settled = agent.engine().wait_settled(dag_id).await.unwrap();
        assert_eq!(settled.state, State::Succeed, "{tenant}");
        let nodes = data_sub_tasks(&agent, dag_id);
        assert_eq!(nodes.len(), summary.log_stream_ids.len() - 1, "{nodes:?}");
        for (name, sub_tasks) in &nodes {
            if concurrency == 1 {
                assert_eq!(*sub_tasks, 1, "{name}");
            } else {
                assert!(
                    *sub_tasks > 1 && *sub_tasks <= concurrency as usize,
                    "{name}: {sub_tasks} sub-tasks at concurrency {concurrency}"
                );
            }
        }
        let job = agent.restore_overview(tenant).unwrap().job;
        assert_rows_equal_truth(&agent, &summary, tenant, job.restore_scn);
        progress_adds_up(&agent, tenant);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_in_the_middle_of_a_split_restore_data_ends_exactly() {
    // 3 ms per block keeps the ranges running while the agent is stopped.
    obrestore_restore::executors::set_block_delay_failpoint(3);
    let backup = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let summary = one_tablet_backup(backup.path());
    let agent = open_agent(state.path(), backup.path()).await;
    let dag_id = restore(&agent, &summary, "restarted", 4).await;
    // Stop once some range of some `Restore data L` has finished and others have not.
    let mut midway = false;
    for _ in 0..10_000 {
        let detail = agent.engine().dag_detail(dag_id, true).unwrap();
        let tasks: Vec<String> = detail
            .nodes
            .unwrap()
            .into_iter()
            .filter(|node| node.name.starts_with("Restore data"))
            .flat_map(|node| node.sub_tasks.unwrap_or_default())
            .map(|task| task.state)
            .collect();
        if tasks.iter().any(|state| state == "SUCCEED")
            && tasks.iter().any(|state| state != "SUCCEED")
        {
            midway = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(midway, "never saw Restore data half done");
    agent.shutdown(Duration::ZERO).await;
    drop(agent);
    obrestore_restore::executors::set_block_delay_failpoint(0);
    let resumed = reopen_agent(state.path(), backup.path()).await;
    let settled = resumed.engine().wait_settled(dag_id).await.unwrap();
    assert_eq!(settled.state, State::Succeed);
    let job = resumed.restore_overview("restarted").unwrap().job;
    assert_rows_equal_truth(&resumed, &summary, "restarted", job.restore_scn);
    progress_adds_up(&resumed, "restarted");
}

/// Every `macro_range_index.obbak` under `dir`.
fn index_files(dir: &Path) -> Vec<std::path::PathBuf> {
    common::fixtures::files_under(dir)
        .into_iter()
        .filter(|path| path.ends_with("macro_range_index.obbak"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_block_holding_rows_its_index_entry_does_not_declare_fails_the_restore() {
    let backup = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let summary = one_tablet_backup(backup.path());
    // The index now says the second block of every file holds only its first row:
    // still well formed (tiled, first <= last), but a lie about the rows after it.
    let mut lied = 0;
    for path in index_files(backup.path()) {
        let text = std::fs::read_to_string(&path).unwrap();
        let mut envelope: serde_json::Value = serde_json::from_str(&text).unwrap();
        for file in envelope["body"]["files"].as_array_mut().unwrap() {
            if let Some(block) = file["blocks"].as_array_mut().and_then(|b| b.get_mut(1)) {
                block["last"] = block["first"].clone();
                lied += 1;
            }
        }
        std::fs::write(&path, envelope.to_string()).unwrap();
    }
    assert!(lied > 0, "no file with two blocks to lie about");
    let agent = open_agent(state.path(), backup.path()).await;
    let dag_id = restore(&agent, &summary, "lied", 4).await;
    let settled = agent.engine().wait_settled(dag_id).await.unwrap();
    assert_eq!(settled.state, State::Failed);
    let detail = serde_json::to_string(&agent.engine().dag_detail(dag_id, true).unwrap()).unwrap();
    assert!(
        detail.contains("holds rows other than its index entry declares"),
        "{detail}"
    );
}

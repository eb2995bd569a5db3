//! End-to-end restores over generated backups, each checked row-exact against the
//! independent truth (the generator's workload file, not the restore code path).

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::fixtures::{
    assert_rows_equal_truth, files_under, open_agent, restore_param, rollback_leaves_nothing,
    small_backup,
};

use obrestore_backup::GenerateSummary;
use obrestore_dag::{Maintenance, OperateError, Operator, State};
use obrestore_restore::cluster::RestoreJobStatus;
use obrestore_restore::{
    prepare, ClusterConfig, OfflineAgent, RestoreAgent, RestoreError, RestoreParam,
    RestoreParamError, TenantService,
};
use serde_json::json;

/// Restores and checks the rows against the truth at the DAG's restore_scn.
async fn restore_and_verify(
    agent: &RestoreAgent,
    summary: &GenerateSummary,
    tenant: &str,
    param: RestoreParam,
) -> u64 {
    let dag = agent.start_restore(param).await.unwrap();
    assert_eq!(dag.name, format!("Restore backup_{tenant}"));
    // A cluster DAG under the tenant's lock, as obshell's restore.
    assert_eq!(
        (dag.maintenance_type, dag.maintenance_key.as_str()),
        (3, tenant)
    );
    assert!(dag.id.starts_with('1'), "{}", dag.id);
    let dag_id = agent.engine().find_dag(&dag.id).unwrap().id;
    // The restore job exists as soon as the restore is accepted.
    let early = agent
        .restore_progress(tenant)
        .unwrap()
        .expect("overview right after submit");
    assert_eq!(early.dag_id.as_deref(), Some(dag.id.as_str()));
    let settled = agent.engine().wait_settled(dag_id).await.unwrap();
    let detail = agent.engine().dag_detail(dag_id, true).unwrap();
    assert_eq!(
        settled.state,
        State::Succeed,
        "{}",
        serde_json::to_string_pretty(&detail).unwrap()
    );
    let overview = agent.restore_overview(tenant).unwrap().job;
    assert_eq!(overview.status, RestoreJobStatus::Success);
    // The plan made at submit is in the DAG's parameters; the restore went to it.
    let params = agent.engine().dag_record(dag_id).unwrap().params;
    assert_eq!(
        params["plan"]["restore_scn"].as_u64(),
        Some(overview.restore_scn),
        "{params}"
    );
    assert_eq!(overview.finish_ls_count, overview.ls_count);
    assert_eq!(overview.finish_bytes, overview.total_bytes);
    assert_rows_equal_truth(agent, summary, tenant, overview.restore_scn);
    let restored = agent.cluster().tenant(tenant).unwrap().unwrap();
    assert_eq!(
        (restored.status.to_string(), restored.role.to_string()),
        ("NORMAL".to_string(), "PRIMARY".to_string())
    );
    assert_eq!(restored.sync_scn, overview.restore_scn);
    overview.restore_scn
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_to_the_latest_point_and_to_an_scn_inside_a_piece() {
    let backup = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let summary = small_backup(backup.path(), None);
    let agent = open_agent(state.path(), backup.path()).await;
    let latest = restore_and_verify(
        &agent,
        &summary,
        "latest",
        restore_param(&summary, "latest", json!({})),
    )
    .await;
    assert_eq!(latest, summary.end_scn.as_u64());

    // Inside the third piece, after the second set: exercises replay up to an exact SCN.
    let piece = &summary.pieces[4];
    let target = piece.start_scn.as_u64()
        + (piece.checkpoint_scn.as_u64() - piece.start_scn.as_u64()) / 3
        + 7;
    let scn = restore_and_verify(
        &agent,
        &summary,
        "pitr",
        restore_param(&summary, "pitr", json!({"scn": target})),
    )
    .await;
    assert_eq!(scn, target);
    let dag = agent.unfinished_restore_of("pitr").unwrap();
    assert_eq!(dag, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_to_a_timestamp_of_an_encrypted_chain() {
    let backup = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let summary = small_backup(backup.path(), Some("s3cret"));
    let agent = open_agent(state.path(), backup.path()).await;
    // Missing and wrong passwords are refused before any DAG exists.
    for extra in [json!({}), json!({"decryption": ["wrong"]})] {
        match agent
            .start_restore(restore_param(&summary, "enc", extra))
            .await
        {
            Err(RestoreError::Backup(err)) => {
                assert_eq!(err.to_string(), "backup set password is invalid")
            }
            other => panic!("expected an invalid password, got {other:?}"),
        }
    }
    let target = obrestore_backup::Scn(summary.end_scn.as_u64() - 3_600_000_000_000);
    let timestamp = target.to_rfc3339();
    let scn = restore_and_verify(
        &agent,
        &summary,
        "enc",
        restore_param(
            &summary,
            "enc",
            json!({"decryption": ["wrong", "s3cret"], "timestamp": timestamp}),
        ),
    )
    .await;
    assert_eq!(scn, target.as_u64());
    // The password is not stored in plain text anywhere in the agent's database.
    agent.db().flush().unwrap();
    for tree_name in agent.db().tree_names() {
        let tree = agent.db().open_tree(&tree_name).unwrap();
        for item in tree.iter() {
            let (key, value) = item.unwrap();
            let haystack = [key.as_ref(), value.as_ref()].concat();
            assert!(
                !haystack.windows(6).any(|w| w == b"s3cret"),
                "password stored in tree {:?}",
                String::from_utf8_lossy(&tree_name)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_block_fails_then_retry_after_repair_succeeds() {
    let backup = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let summary = small_backup(backup.path(), None);
    let agent = open_agent(state.path(), backup.path()).await;
    // Corrupt one data file of a user log stream in the newest full set.
    let victim = files_under(&summary.data_dir)
        .into_iter()
        .filter(|p| {
            p.to_string_lossy().contains("logstream_1002")
                && p.to_string_lossy().contains("macro_block_data")
        })
        .max()
        .unwrap();
    let original = std::fs::read(&victim).unwrap();
    let mut broken = original.clone();
    let at = broken.len() / 2;
    broken[at] ^= 0xff;
    std::fs::write(&victim, &broken).unwrap();

    let dag = agent
        .start_restore(restore_param(&summary, "fix", json!({})))
        .await
        .unwrap();
    let dag_id = agent.engine().find_dag(&dag.id).unwrap().id;
    let settled = agent.engine().wait_settled(dag_id).await.unwrap();
    assert_eq!(settled.state, State::Failed);
    let detail = agent.engine().dag_detail(dag_id, true).unwrap();
    let logs: Vec<String> = detail
        .nodes
        .unwrap()
        .into_iter()
        .flat_map(|n| n.sub_tasks.unwrap())
        .flat_map(|t| t.task_logs)
        .collect();
    let named = logs
        .iter()
        .any(|l| l.contains("checksum") && l.contains(&victim.display().to_string()));
    assert!(named, "no log names the corrupt file: {logs:#?}");

    // The failure released the tenant's lock (obshell's failure_exit_maintenance), so a
    // second restore of the tenant gets as far as validation: the tenant exists.
    let (_, held) = agent
        .engine()
        .lock_taker(&Maintenance::Tenant("fix".to_string()))
        .unwrap()
        .unwrap();
    assert!(!held);
    match agent
        .start_restore(restore_param(&summary, "fix", json!({})))
        .await
    {
        Err(RestoreError::Param(RestoreParamError::TenantExists { name })) => {
            assert_eq!(name, "fix")
        }
        other => panic!("expected the tenant to exist, got {other:?}"),
    }

    std::fs::write(&victim, &original).unwrap();
    agent
        .engine()
        .operate(dag_id, Operator::Retry)
        .await
        .unwrap();
    assert_eq!(
        agent.engine().wait_settled(dag_id).await.unwrap().state,
        State::Succeed
    );
    let overview = agent.restore_overview("fix").unwrap().job;
    assert_rows_equal_truth(&agent, &summary, "fix", overview.restore_scn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_after_a_failure_leaves_no_tenant_and_no_pools() {
    let backup = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let summary = small_backup(backup.path(), None);
    let agent = open_agent(state.path(), backup.path()).await;
    let pools_before = agent.cluster().list_pools().unwrap().len();
    // Remove the archive of one log stream in one piece: replay fails.
    let victim = files_under(&summary.archive_dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("logstream_1001/log/"))
        .max()
        .unwrap();
    std::fs::remove_file(&victim).unwrap();
    let dag = agent
        .start_restore(restore_param(&summary, "gone", json!({})))
        .await
        .unwrap();
    let dag_id = agent.engine().find_dag(&dag.id).unwrap().id;
    assert_eq!(
        agent.engine().wait_settled(dag_id).await.unwrap().state,
        State::Failed
    );
    assert!(agent.cluster().tenant("gone").unwrap().is_some());
    rollback_leaves_nothing(&agent, dag_id, "gone", pools_before).await;
    // The tenant is gone, so obshell's overview refuses it; the job ended FAIL.
    assert!(matches!(
        agent.restore_overview("gone"),
        Err(RestoreError::TenantNotFound(_))
    ));
    let overview = agent.restore_progress("gone").unwrap().unwrap().job;
    assert_eq!(overview.status, RestoreJobStatus::Fail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_restore_data_then_rollback() {
    // 2 ms per data block keeps `Restore data` running long enough to be seen and
    // cancelled however fast the machine is (the other tests of this binary are only
    // slowed down by it).
    obrestore_restore::executors::set_block_delay_failpoint(2);
    let backup = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let summary = small_backup(backup.path(), None);
    let agent = open_agent(state.path(), backup.path()).await;
    let dag = agent
        .start_restore(restore_param(&summary, "stop", json!({"concurrency": 1})))
        .await
        .unwrap();
    let dag_id = agent.engine().find_dag(&dag.id).unwrap().id;
    // Wait for a Restore data node to run, then cancel + roll back through the agent.
    let mut seen = false;
    for _ in 0..4000 {
        let detail = agent.engine().dag_detail(dag_id, true).unwrap();
        if detail
            .nodes
            .unwrap()
            .iter()
            .any(|n| n.name.starts_with("Restore data") && n.state == "RUNNING")
        {
            seen = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(seen, "Restore data never ran");
    // While the restore holds the tenant, a second one is refused with the lock holder.
    match agent
        .start_restore(restore_param(&summary, "stop", json!({})))
        .await
    {
        Err(RestoreError::UnderMaintenance(conflict)) => {
            assert_eq!(conflict.holder, dag_id);
            assert_eq!(
                RestoreError::UnderMaintenance(conflict).to_string(),
                "Tenant 'stop' is under maintenance, please try again later."
            );
        }
        other => panic!("expected the lock holder, got {other:?}"),
    }
    let after = agent.cancel_restore("stop").await.unwrap().unwrap();
    obrestore_restore::executors::set_block_delay_failpoint(0);
    assert_eq!(after.operator, "ROLLBACK");
    let settled = agent.engine().wait_settled(dag_id).await.unwrap();
    assert_eq!(
        (settled.state, settled.operator),
        (State::Succeed, Operator::Rollback)
    );
    assert!(agent.cluster().tenant("stop").unwrap().is_none());
    assert_eq!(agent.cancel_restore("stop").await.unwrap(), None);
    let _ = Arc::new(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_is_planned_once_and_pre_check_only_checks_the_planned_sources() {
    let backup = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let summary = small_backup(backup.path(), None);
    let agent = open_agent(state.path(), backup.path()).await;
    let validated = restore_param(&summary, "once", json!({}))
        .validate(agent.cluster().as_ref())
        .unwrap();
    let roots = agent.allowed_roots();
    let prepared = prepare::prepare_restore(&validated, roots, 1_700_000_000).unwrap();
    assert_eq!(prepared.plan.restore_scn, summary.end_scn);
    assert!(!prepared.user_ls.is_empty() && !prepared.user_ls.contains(&1));
    let checked =
        prepare::check_planned_sources(&validated, &prepared.plan, roots, 1_700_000_000).unwrap();
    assert_eq!(checked, prepared.job);
    // The backup moved away after submit: the check names what is missing.
    let moved = backup.path().join("moved");
    std::fs::rename(&summary.data_dir, &moved).unwrap();
    let err = prepare::check_planned_sources(&validated, &prepared.plan, roots, 1_700_000_000)
        .unwrap_err();
    assert!(
        matches!(err, obrestore_backup::BackupError::NotFound { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&summary.data_dir.display().to_string()),
        "{err}"
    );
    std::fs::rename(&moved, &summary.data_dir).unwrap();
    // Previews plan the same way.
    let preview = prepare::preview(
        &summary.data_uri,
        &summary.archive_uri,
        roots,
        &obrestore_backup::RestoreTarget::Latest,
        &[],
    )
    .unwrap();
    assert_eq!(preview.preview_items(), prepared.plan.preview_items());
    let info = agent
        .source_tenant_info(&summary.data_uri, &summary.archive_uri)
        .await
        .unwrap();
    assert_eq!(
        agent
            .restore_windows(&summary.data_uri, &summary.archive_uri)
            .await
            .unwrap(),
        info.windows
    );
}

/// Opens the agent's state offline once the agent that had it open has let go of it.
async fn open_offline(data_dir: &Path) -> OfflineAgent {
    for _ in 0..1000 {
        if let Ok(offline) = OfflineAgent::open(data_dir, &ClusterConfig::default()) {
            return offline;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the agent's database stays locked");
}

/// A restore interrupted while it holds its tenant: the offline drop is refused; once the
/// resumed restore has ended, the offline drop succeeds, pools included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_drop_follows_the_agent_policy() {
    obrestore_restore::executors::set_block_delay_failpoint(2);
    let backup = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let summary = small_backup(backup.path(), None);
    let restoring = open_agent(state.path(), backup.path()).await;
    let pools_before = restoring.cluster().list_pools().unwrap().len();
    let dag = restoring
        .start_restore(restore_param(&summary, "held", json!({"concurrency": 1})))
        .await
        .unwrap();
    let dag_id = restoring.engine().find_dag(&dag.id).unwrap().id;
    // Stop the agent as soon as the restoring tenant exists: its restore holds it.
    let mut created = false;
    for _ in 0..4000 {
        if restoring.cluster().tenant("held").unwrap().is_some() {
            created = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(created, "the restore never created its tenant");
    restoring.shutdown(Duration::ZERO).await;
    drop(restoring);
    let offline = open_offline(state.path()).await;
    match offline.drop_tenant("held", true) {
        Err(RestoreError::UnderMaintenance(conflict)) => assert_eq!(conflict.holder, dag_id),
        other => panic!("expected the restore to hold the tenant, got {other:?}"),
    }
    assert!(matches!(
        offline.drop_tenant("sys", true),
        Err(RestoreError::SysTenant)
    ));
    assert_eq!(offline.drop_tenant("ghost", true).unwrap(), None);
    assert!(offline.cluster().tenant("held").unwrap().is_some());
    drop(offline);
    // The restore resumes at the next open and ends; then the tenant may go.
    let resumed = open_agent(state.path(), backup.path()).await;
    assert_eq!(
        resumed.engine().wait_settled(dag_id).await.unwrap().state,
        State::Succeed
    );
    resumed.shutdown(Duration::ZERO).await;
    drop(resumed);
    let offline = open_offline(state.path()).await;
    let dropped = offline.drop_tenant("held", true).unwrap().unwrap();
    assert_eq!(
        (dropped.tenant.name.as_str(), dropped.canceled_restore_job),
        ("held", None)
    );
    assert_eq!(dropped.pools_dropped, dropped.tenant.pool_names.len());
    assert!(offline.cluster().tenant("held").unwrap().is_none());
    assert_eq!(offline.cluster().list_pools().unwrap().len(), pools_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_pools_bound_data_and_replay_concurrency() {
    let backup = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let summary = small_backup(backup.path(), None);
    let agent = open_agent(state.path(), backup.path()).await;
    let mut events = agent.engine().subscribe();
    let param = restore_param(
        &summary,
        "pools",
        json!({"concurrency": 2, "ha_high_thread_score": 1}),
    );
    let dag = agent.start_restore(param).await.unwrap();
    let dag_id = agent.engine().find_dag(&dag.id).unwrap().id;
    // Count sub-tasks RUNNING at once per kind of node, from the durable event stream.
    let mut running: std::collections::HashMap<&str, std::collections::HashSet<u64>> =
        Default::default();
    let mut max: std::collections::HashMap<&str, usize> = Default::default();
    let mut node_kind: std::collections::HashMap<u64, &str> = Default::default();
    loop {
        let event = events.recv().await.unwrap();
        if event.dag_id != dag_id {
            continue;
        }
        if event.subject == obrestore_dag::Subject::Dag && event.state.is_finished() {
            assert_eq!(event.state, State::Succeed);
            break;
        }
        let obrestore_dag::Subject::SubTask { node_id, task_id } = event.subject else {
            continue;
        };
        let kind = *node_kind.entry(node_id).or_insert_with(|| {
            let name = agent
                .engine()
                .records()
                .node(node_id)
                .unwrap()
                .unwrap()
                .name;
            if name.starts_with("Restore data") {
                "restore_data"
            } else if name.starts_with("Replay log") {
                "ha_high"
            } else {
                "other"
            }
        });
        let set = running.entry(kind).or_default();
        if event.state == State::Running {
            set.insert(task_id);
        } else {
            set.remove(&task_id);
        }
        let now = set.len();
        let entry = max.entry(kind).or_default();
        *entry = (*entry).max(now);
    }
    assert!(
        max["restore_data"] >= 1 && max["restore_data"] <= 2,
        "{max:?}"
    );
    assert_eq!(max["ha_high"], 1, "{max:?}");
    let overview = agent.restore_overview("pools").unwrap().job;
    assert_rows_equal_truth(&agent, &summary, "pools", overview.restore_scn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_restore_released_to_a_drop_is_expired_and_pass_ends_it() {
    let backup = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let summary = small_backup(backup.path(), None);
    let agent = open_agent(state.path(), backup.path()).await;
    let pools_before = agent.cluster().list_pools().unwrap().len();
    let victim = files_under(&summary.archive_dir)
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("logstream_1001/log/"))
        .max()
        .unwrap();
    std::fs::remove_file(&victim).unwrap();
    let dag = agent
        .start_restore(restore_param(&summary, "stale", json!({})))
        .await
        .unwrap();
    let dag_id = agent.engine().find_dag(&dag.id).unwrap().id;
    assert_eq!(
        agent.engine().wait_settled(dag_id).await.unwrap().state,
        State::Failed
    );
    // The failed restore released the tenant: a drop goes through a DAG of its own.
    let drop = agent.drop_tenant("stale", false).await.unwrap().unwrap();
    assert_eq!(
        (drop.name.as_str(), drop.maintenance_type),
        ("Drop tenant", 3)
    );
    let drop_id = agent.engine().find_dag(&drop.id).unwrap().id;
    let dropped = agent.engine().wait_settled(drop_id).await.unwrap();
    assert_eq!(
        (dropped.state, dropped.operator),
        (State::Succeed, Operator::Run)
    );
    assert!(agent.cluster().tenant("stale").unwrap().is_none());
    assert_eq!(agent.cluster().list_pools().unwrap().len(), pools_before);
    // The drop closed the restore job.
    let job = agent.restore_progress("stale").unwrap().unwrap().job;
    assert_eq!(job.status, RestoreJobStatus::Canceled);
    // The restore's work is stale now: RETRY and ROLLBACK are Task.Expired.
    for operator in [Operator::Retry, Operator::Rollback] {
        match agent.engine().operate(dag_id, operator).await {
            Err(OperateError::Expired { dag_name, .. }) => {
                assert_eq!(dag_name, "Restore backup_stale")
            }
            other => panic!("{operator}: expected Task.Expired, got {other:?}"),
        }
    }
    // PASS does not take the lock, so it ends the stale DAG.
    agent
        .engine()
        .operate(dag_id, Operator::Pass)
        .await
        .unwrap();
    let passed = agent.engine().dag_record(dag_id).unwrap();
    assert_eq!(
        (passed.state, passed.operator),
        (State::Succeed, Operator::Pass)
    );
    // A drop of a missing tenant is nothing to do; sys is refused.
    assert!(agent.drop_tenant("stale", false).await.unwrap().is_none());
    assert!(matches!(
        agent.drop_tenant("sys", false).await,
        Err(RestoreError::SysTenant)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passing_a_failed_restore_node_continues_downstream() {
    let backup = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let summary = small_backup(backup.path(), None);
    let agent = open_agent(state.path(), backup.path()).await;
    // One data file of log stream 1002 goes missing: `Restore data 1002` fails.
    let victim = files_under(&summary.data_dir)
        .into_iter()
        .filter(|p| {
            p.to_string_lossy().contains("logstream_1002")
                && p.to_string_lossy().contains("macro_block_data")
        })
        .max()
        .unwrap();
    std::fs::remove_file(&victim).unwrap();
    let dag = agent
        .start_restore(restore_param(&summary, "passed", json!({})))
        .await
        .unwrap();
    let dag_id = agent.engine().find_dag(&dag.id).unwrap().id;
    assert_eq!(
        agent.engine().wait_settled(dag_id).await.unwrap().state,
        State::Failed
    );
    let nodes = agent
        .engine()
        .dag_detail(dag_id, true)
        .unwrap()
        .nodes
        .unwrap();
    let failed: Vec<_> = nodes.iter().filter(|n| n.state == "FAILED").collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].name, "Restore data 1002");
    agent.engine().pass_node(failed[0].node_id).await.unwrap();
    let settled = agent.engine().wait_settled(dag_id).await.unwrap();
    assert_eq!(
        (settled.state, settled.operator),
        (State::Succeed, Operator::Run)
    );
    let nodes = agent
        .engine()
        .dag_detail(dag_id, true)
        .unwrap()
        .nodes
        .unwrap();
    let status = |name: &str| {
        let node = nodes.iter().find(|n| n.name == name).unwrap();
        (node.state.clone(), node.operator.clone())
    };
    assert_eq!(
        status("Restore data 1002"),
        ("SUCCEED".into(), "PASS".into())
    );
    for name in [
        "Replay log 1002",
        "Post check",
        "Activate tenant",
        "Upgrade tenant",
    ] {
        assert_eq!(status(name), ("SUCCEED".into(), "RUN".into()), "{name}");
    }
    let tenant = agent.cluster().tenant("passed").unwrap().unwrap();
    assert_eq!(tenant.role.to_string(), "PRIMARY");
}

/// Every step is idempotent: for each task type of the restore DAG, the step's first
/// attempt fails right after its side effects (as if the process died before its
/// SUCCEED was committed), and the re-run — the engine's own retry or RETRY — ends the
/// restore SUCCEED with the exact rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_step_converges_when_re_run_after_its_side_effects() {
    const STEPS: [&str; 10] = [
        "restore.pre_check",
        "restore.create_pools",
        "restore.create_tenant",
        "restore.sys_tablets",
        "restore.tablets_meta",
        "restore.data",
        "restore.replay_log",
        "restore.post_check",
        "restore.activate",
        "restore.upgrade",
    ];
    let backup = tempfile::tempdir().unwrap();
    let summary = small_backup(backup.path(), None);
    for (index, step) in STEPS.into_iter().enumerate() {
        let state = tempfile::tempdir().unwrap();
        let agent = open_agent(state.path(), backup.path()).await;
        let tenant = format!("rerun{index}");
        obrestore_restore::executors::fail_after_step_once(step, &tenant);
        let dag = agent
            .start_restore(restore_param(&summary, &tenant, json!({})))
            .await
            .unwrap();
        let dag_id = agent.engine().find_dag(&dag.id).unwrap().id;
        if agent.engine().wait_settled(dag_id).await.unwrap().state == State::Failed {
            agent
                .engine()
                .operate(dag_id, Operator::Retry)
                .await
                .unwrap();
        }
        let settled = agent.engine().wait_settled(dag_id).await.unwrap();
        let detail = agent.engine().dag_detail(dag_id, true).unwrap();
        let text = serde_json::to_string(&detail).unwrap();
        assert!(
            text.contains(&format!("failpoint: {step} failed")),
            "{step}: never fired: {text}"
        );
        assert_eq!(settled.state, State::Succeed, "{step}: {text}");
        let job = agent.restore_overview(&tenant).unwrap().job;
        assert_eq!(job.status, RestoreJobStatus::Success, "{step}");
        assert_rows_equal_truth(&agent, &summary, &tenant, job.restore_scn);
        agent.shutdown(Duration::from_secs(5)).await;
    }
}

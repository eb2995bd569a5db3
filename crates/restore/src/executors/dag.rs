//! The shape of the restore DAG: its nodes, edges, pools and lock, laid out at submit
//! from [`RestoreDagParams`] (one branch per user log stream). Invariant: every node's
//! task type is one of [`TASK_TYPES`], each registered by [`super::register`].

use obrestore_dag::{DagSpec, Maintenance, NodeSpec, Scope};
use serde_json::{json, Value};

use super::steps::Step;
use super::RestoreDagParams;

pub(super) const PRE_CHECK: &str = "restore.pre_check";
pub(super) const CREATE_POOLS: &str = "restore.create_pools";
pub(super) const CREATE_TENANT: &str = "restore.create_tenant";
pub(super) const SYS_TABLETS: &str = "restore.sys_tablets";
pub(super) const TABLETS_META: &str = "restore.tablets_meta";
pub(super) const RESTORE_DATA: &str = "restore.data";
pub(super) const REPLAY_LOG: &str = "restore.replay_log";
pub(super) const POST_CHECK: &str = "restore.post_check";
pub(super) const ACTIVATE: &str = "restore.activate";
pub(super) const UPGRADE: &str = "restore.upgrade";

/// Every restore task type and the step it runs.
pub(super) const TASK_TYPES: [(&str, Step); 10] = [
    (PRE_CHECK, Step::PreCheck),
    (CREATE_POOLS, Step::CreatePools),
    (CREATE_TENANT, Step::CreateTenant),
    (SYS_TABLETS, Step::SysTablets),
    (TABLETS_META, Step::TabletsMeta),
    (RESTORE_DATA, Step::RestoreData),
    (REPLAY_LOG, Step::ReplayLog),
    (POST_CHECK, Step::PostCheck),
    (ACTIVATE, Step::Activate),
    (UPGRADE, Step::Upgrade),
];

/// The DAG name of a tenant's restore.
pub fn dag_name(tenant: &str) -> String {
    format!("Restore backup_{tenant}")
}

/// The output key under which `Restore tablets meta L` lists L's data groups (the
/// dynamic sub-tasks of `Restore data L`).
pub(super) fn groups_key(ls: u64) -> String {
    format!("data_groups_{ls}")
}

/// Builds the restore DAG.
pub fn restore_dag(params: &RestoreDagParams) -> DagSpec {
    let restore = &params.restore;
    let mut spec = DagSpec::new(dag_name(&restore.restore_tenant_name))
        .scope(Scope::Cluster)
        .params(serde_json::to_value(params).unwrap_or(Value::Null))
        .maintenance(Maintenance::Tenant(restore.restore_tenant_name.clone()))
        .pool("restore_data", restore.concurrency.max(1))
        .pool("ha_high", restore.ha_high_threads.max(1));
    let sys = spec.chain(
        None,
        vec![
            NodeSpec::new(Step::PreCheck.label(), PRE_CHECK),
            NodeSpec::new(Step::CreatePools.label(), CREATE_POOLS),
            NodeSpec::new(Step::CreateTenant.label(), CREATE_TENANT),
            NodeSpec::new(Step::SysTablets.label(), SYS_TABLETS),
        ],
    );
    let post = spec.add_node(NodeSpec::new(Step::PostCheck.label(), POST_CHECK));
    for ls in &params.user_ls {
        let meta = spec.add_node(
            NodeSpec::new(format!("{} {ls}", Step::TabletsMeta.label()), TABLETS_META)
                .sub_tasks(vec![json!({"ls": ls})]),
        );
        let data = spec.add_node(
            NodeSpec::new(format!("{} {ls}", Step::RestoreData.label()), RESTORE_DATA)
                .dynamic_sub_tasks(groups_key(*ls))
                .pool("restore_data"),
        );
        let replay = spec.add_node(
            NodeSpec::new(format!("{} {ls}", Step::ReplayLog.label()), REPLAY_LOG)
                .sub_tasks(vec![json!({"ls": ls})])
                .pool("ha_high"),
        );
        if let Some(sys) = sys {
            spec.add_edge(sys, meta);
        }
        spec.add_edge(meta, data);
        spec.add_edge(data, replay);
        spec.add_edge(replay, post);
    }
    if params.user_ls.is_empty() {
        if let Some(sys) = sys {
            spec.add_edge(sys, post);
        }
    }
    spec.chain(
        Some(post),
        vec![
            NodeSpec::new(Step::Activate.label(), ACTIVATE),
            NodeSpec::new(Step::Upgrade.label(), UPGRADE),
        ],
    );
    // As obshell's restore context (`FAILURE_EXIT_MAINTENANCE`): a failed restore
    // releases the tenant lock; an operator takes it back (or finds it `Task.Expired`).
    spec.map_nodes(NodeSpec::failure_exit_maintenance)
}

//! obshell's tenant-administration DAGs through the agent: `Create tenant <name>` with
//! each of its steps, its rollback, the scale-in/out, modify-replicas and primary-zone
//! DAGs, and the pre-checks that refuse a request before any DAG or write.

mod common;

use std::path::Path;

use common::fixtures::{files_under, rollback_leaves_nothing};

use obrestore_dag::{AgentInfo, Operator, State};
use obrestore_restore::cluster::{ReplicaModify, ReplicaSpec, ReplicaType};
use obrestore_restore::tenant_ops::{create_tenant_dag, CreateTenantDagParams};
use obrestore_restore::tenant_param::CreateTenantParam;
use obrestore_restore::{
    AgentConfig, ClusterConfig, ClusterError, RestoreAgent, RestoreError, RestoreParamError,
    TenantService,
};
use serde_json::json;

async fn agent(data_dir: &Path) -> RestoreAgent {
    RestoreAgent::open(AgentConfig {
        data_dir: data_dir.to_path_buf(),
        agent: AgentInfo::default(),
        allowed_roots: Vec::new(),
        worker_limit: 4,
        cluster: ClusterConfig::default(),
    })
    .await
    .unwrap()
}

fn create_param(body: serde_json::Value) -> CreateTenantParam {
    serde_json::from_value(body).unwrap()
}

fn zone(name: &str) -> serde_json::Value {
    json!({"name": name, "unit_config_name": "s1", "unit_num": 1})
}

/// Settles the DAG with generic id `id` and returns its state, operator and node names.
async fn settle(agent: &RestoreAgent, id: &str) -> (State, Operator, Vec<String>) {
    let dag = agent.engine().find_dag(id).unwrap();
    let settled = agent.engine().wait_settled(dag.id).await.unwrap();
    let detail = agent.engine().dag_detail(dag.id, true).unwrap();
    let nodes = detail
        .nodes
        .unwrap_or_default()
        .into_iter()
        .map(|node| node.name)
        .collect();
    (settled.state, settled.operator, nodes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_tenant_runs_obshells_steps_and_keeps_the_password_sealed() {
    const PASSWORD: &str = "Pw-never-on-disk-7361";
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path()).await;
    let dag = agent
        .create_tenant(create_param(json!({
            "name": "t1",
            "zone_list": [zone("z1"), zone("z2"), zone("z3")],
            "primary_zone": "z1;z2,z3",
            "whitelist": "10.0.0.%",
            "root_password": PASSWORD,
            "charset": "utf8mb4",
            "comment": "made by a test",
            "variables": {"ob_query_timeout": 20000000, "time_zone": "+00:00",
                          "lower_case_table_names": 2, "autocommit": false},
            "parameters": {"writing_throttling_trigger_percentage": 70},
        })))
        .await
        .unwrap();
    assert_eq!(dag.name, "Create tenant t1");
    assert!(dag.id.starts_with('1'), "a cluster DAG: {}", dag.id);
    assert_eq!(dag.maintenance_type, 3, "the tenant's lock");
    let (state, _, nodes) = settle(&agent, &dag.id).await;
    assert_eq!(state, State::Succeed);
    assert_eq!(
        nodes,
        [
            "Create tenant",
            "Set tenant parameters",
            "Modify tenant whitelist",
            "Set tenant time zone",
            "Set tenant variables",
            "Set root password"
        ]
    );
    let cluster = agent.cluster();
    let tenant = cluster.tenant("t1").unwrap().unwrap();
    assert_eq!(tenant.primary_zone, "z1;z2,z3");
    assert_eq!(tenant.comment, "made by a test");
    assert_eq!(tenant.pool_names.len(), 3);
    for pool in &tenant.pool_names {
        assert!(
            pool.starts_with("t1_z"),
            "obshell's <tenant>_<zone>_<time>: {pool}"
        );
    }
    let variable = |name: &str| cluster.variable("t1", name).unwrap().value;
    assert_eq!(variable("ob_tcp_invited_nodes"), "10.0.0.%,127.0.0.1");
    assert_eq!(variable("ob_query_timeout"), "20000000");
    assert_eq!(variable("time_zone"), "+00:00");
    assert_eq!(variable("lower_case_table_names"), "2");
    assert_eq!(variable("autocommit"), "0");
    assert_eq!(
        cluster
            .parameter("t1", "writing_throttling_trigger_percentage")
            .unwrap()
            .value,
        "70"
    );
    assert!(cluster.check_root_password("t1", PASSWORD).unwrap());
    assert!(!cluster.check_root_password("t1", "").unwrap());
    // The password was in the DAG's parameters until its step ran: sealed, never plain.
    agent.shutdown(std::time::Duration::from_secs(5)).await;
    for path in files_under(dir.path()) {
        let bytes = std::fs::read(&path).unwrap();
        assert!(
            !bytes
                .windows(PASSWORD.len())
                .any(|window| window == PASSWORD.as_bytes()),
            "{} holds the root password",
            path.display()
        );
    }
}

/// What a refusal must match.
type Rule = fn(&RestoreError) -> bool;

/// Create-tenant requests refused before anything is written, with what the refusal
/// must match, in obshell's rule order.
// long: a table of cases, one refusal per rule.
fn refused_create_cases() -> Vec<(serde_json::Value, Rule)> {
    vec![
        (
            json!({"zone_list": [zone("z1")]}),
            |e| matches!(e, RestoreError::Param(RestoreParamError::Required { fields }) if fields == &["name"]),
        ),
        (json!({"name": "", "zone_list": [zone("z1")]}), |e| {
            matches!(
                e,
                RestoreError::Param(RestoreParamError::Cluster(ClusterError::TenantNameEmpty))
            )
        }),
        (json!({"name": "sys", "zone_list": [zone("z1")]}), |e| {
            matches!(
                e,
                RestoreError::Param(RestoreParamError::Cluster(ClusterError::TenantExists(_)))
            )
        }),
        (json!({"name": "a$b", "zone_list": [zone("z1")]}), |e| {
            matches!(
                e,
                RestoreError::Param(RestoreParamError::Cluster(
                    ClusterError::TenantNameInvalid { .. }
                ))
            )
        }),
        (json!({"name": "t2", "zone_list": []}), |e| {
            matches!(e, RestoreError::Param(RestoreParamError::ZoneListEmpty))
        }),
        (
            json!({"name": "t2", "zone_list": [zone("z1")], "mode": "oracle"}),
            |e| matches!(e, RestoreError::Param(RestoreParamError::TenantModeNotSupported { mode }) if mode == "ORACLE"),
        ),
        (
            json!({"name": "t2", "zone_list": [zone("z1"), zone("z1")]}),
            |e| {
                matches!(
                    e,
                    RestoreError::Param(RestoreParamError::ZoneRepeated { index: 1, .. })
                )
            },
        ),
        (json!({"name": "t2", "zone_list": [zone("z9")]}), |e| {
            matches!(
                e,
                RestoreError::Param(RestoreParamError::ZoneNotExist { .. })
            )
        }),
        (
            json!({"name": "t2", "zone_list": [zone("z1")], "primary_zone": "z2"}),
            |e| {
                matches!(
                    e,
                    RestoreError::Param(RestoreParamError::PrimaryZoneInvalid { .. })
                )
            },
        ),
        (
            json!({"name": "t2", "zone_list": [zone("z1")], "charset": "klingon"}),
            |e| {
                matches!(
                    e,
                    RestoreError::Param(RestoreParamError::Cluster(
                        ClusterError::CharsetCollationInvalid { .. }
                    ))
                )
            },
        ),
        (
            json!({"name": "t2", "zone_list": [zone("z1")], "variables": {"no_such_variable": 1}}),
            |e| {
                matches!(
                    e,
                    RestoreError::Param(RestoreParamError::Cluster(
                        ClusterError::VariableNotExist(_)
                    ))
                )
            },
        ),
        (
            json!({"name": "t2", "zone_list": [zone("z1")], "variables": {"ob_query_timeout": [1]}}),
            |e| {
                matches!(
                    e,
                    RestoreError::Param(RestoreParamError::Cluster(
                        ClusterError::VariableInvalid { .. }
                    ))
                )
            },
        ),
        (
            json!({"name": "t2", "zone_list": [zone("z1")], "parameters": {"no_such_parameter": 1}}),
            |e| {
                matches!(
                    e,
                    RestoreError::Param(RestoreParamError::Cluster(
                        ClusterError::ParameterNotExist(_)
                    ))
                )
            },
        ),
        (
            json!({"name": "t2", "zone_list": [zone("z1")], "whitelist": "10.0.0.1;drop"}),
            |e| {
                matches!(
                    e,
                    RestoreError::Param(RestoreParamError::Cluster(
                        ClusterError::VariableInvalid { .. }
                    ))
                )
            },
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_creates_submit_nothing_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path()).await;
    let pools_before = agent.cluster().list_pools().unwrap().len();
    let refused = |body: serde_json::Value| {
        let agent = agent.clone();
        async move { agent.create_tenant(create_param(body)).await.unwrap_err() }
    };
    for (body, rule) in refused_create_cases() {
        let err = refused(body.clone()).await;
        assert!(rule(&err), "{body}: {err:?}");
    }
    assert!(agent
        .engine()
        .dags(Some(obrestore_dag::Scope::Cluster))
        .unwrap()
        .is_empty());
    assert_eq!(agent.cluster().list_pools().unwrap().len(), pools_before);
    assert!(agent.cluster().list_tenants().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_create_releases_the_lock_and_rolls_back_to_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path()).await;
    let plan = create_param(json!({"name": "t3", "zone_list": [zone("z1"), zone("z2")],
                                   "root_password": "x"}))
    .validate(agent.cluster().as_ref())
    .unwrap();
    // A sealed password that does not open: `Set root password` fails after the
    // tenant was created.
    let params = CreateTenantDagParams {
        plan,
        task_time: 1_700_000_000,
        root_password_sealed: Some("not-sealed-by-this-agent".to_string()),
    };
    let id = agent
        .engine()
        .submit(create_tenant_dag(&params))
        .await
        .unwrap();
    let failed = agent.engine().wait_settled(id).await.unwrap();
    assert_eq!(failed.state, State::Failed);
    assert!(agent.cluster().tenant("t3").unwrap().is_some());
    assert_eq!(agent.cluster().list_pools().unwrap().len(), 2);
    // failure_exit_maintenance: another DAG may take the tenant now.
    assert!(agent
        .engine()
        .lock_taker(&obrestore_dag::Maintenance::Tenant("t3".into()))
        .unwrap()
        .is_some_and(|(_, held)| !held));
    rollback_leaves_nothing(&agent, id, "t3", 0).await;
}

// long: one tenant walked through scale in, scale out, modify and primary zone, each
// change checked against previews that write nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reshaping_dags_change_the_tenant_after_previews_that_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path()).await;
    let created = agent
        .create_tenant(create_param(json!({
            "name": "t4", "zone_list": [zone("z1"), zone("z2"), zone("z3")]})))
        .await
        .unwrap();
    assert_eq!(settle(&agent, &created.id).await.0, State::Succeed);
    let cluster = agent.cluster();
    let locality = || cluster.tenant("t4").unwrap().unwrap().locality();
    let before = cluster.tenant("t4").unwrap().unwrap();
    let pools_before = cluster.list_pools().unwrap();

    // A preview returns the change and writes nothing.
    let previewed = cluster
        .preview_remove_replicas("t4", &["z3".to_string()])
        .unwrap();
    assert_eq!(previewed.zone_list.len(), 2);
    assert_eq!(cluster.tenant("t4").unwrap().unwrap(), before);
    assert_eq!(cluster.list_pools().unwrap(), pools_before);
    // Its refusal is the write's.
    let only_one = |z: &[&str]| z.iter().map(|z| z.to_string()).collect::<Vec<_>>();
    assert!(matches!(
        cluster.preview_remove_replicas("t4", &only_one(&["z1", "z2", "z3"])),
        Err(ClusterError::ReplicaDeleteAll)
    ));

    // Scale in, then nothing left to do.
    let dag = agent
        .remove_tenant_replicas("t4", only_one(&["z3", "z9"]))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dag.name, "Scale in tenant replicas");
    let (state, _, nodes) = settle(&agent, &dag.id).await;
    assert_eq!(
        (state, nodes),
        (State::Succeed, vec!["Scale in tenant locality".to_string()])
    );
    assert_eq!(locality(), "FULL{1}@z1, FULL{1}@z2");
    assert!(agent
        .remove_tenant_replicas("t4", only_one(&["z3"]))
        .await
        .unwrap()
        .is_none());
    // 2 FULL → 1 FULL is refused before any DAG.
    assert!(matches!(
        agent.remove_tenant_replicas("t4", only_one(&["z2"])).await,
        Err(RestoreError::Cluster(
            ClusterError::LocalityPrincipalNotAllowed
        ))
    ));

    // Scale out again; a zone that has a replica is refused.
    let spec = ReplicaSpec {
        zone: "z3".into(),
        replica_type: ReplicaType::Full,
        unit_config_name: "s1".into(),
        unit_num: 1,
    };
    // Every preview writes nothing.
    let (tenant_now, pools_now) = (
        cluster.tenant("t4").unwrap().unwrap(),
        cluster.list_pools().unwrap(),
    );
    let grown = cluster
        .preview_add_replicas("t4", std::slice::from_ref(&spec), "preview")
        .unwrap();
    assert_eq!(grown.zone_list.len(), 3);
    let readonly_z2 = ReplicaModify {
        zone: "z2".into(),
        replica_type: Some(ReplicaType::Readonly),
        ..ReplicaModify::default()
    };
    assert!(matches!(
        cluster.preview_modify_replicas("t4", &[readonly_z2]),
        Err(ClusterError::LocalityPrincipalNotAllowed)
    ));
    assert_eq!(
        cluster
            .preview_primary_zone("t4", "z2")
            .unwrap()
            .primary_zone,
        "z2"
    );
    assert_eq!(cluster.tenant("t4").unwrap().unwrap(), tenant_now);
    assert_eq!(cluster.list_pools().unwrap(), pools_now);
    let dag = agent
        .add_tenant_replicas("t4", vec![spec.clone()])
        .await
        .unwrap();
    assert_eq!(dag.name, "Scale out tenant replicas");
    assert_eq!(settle(&agent, &dag.id).await.0, State::Succeed);
    assert_eq!(locality(), "FULL{1}@z1, FULL{1}@z2, FULL{1}@z3");
    assert!(matches!(
        agent.add_tenant_replicas("t4", vec![spec]).await,
        Err(RestoreError::Cluster(ClusterError::ZoneAlreadyHasReplica(
            _
        )))
    ));

    // Modify: z3 READONLY; asking again is nothing to do.
    let readonly = ReplicaModify {
        zone: "z3".into(),
        replica_type: Some(ReplicaType::Readonly),
        ..ReplicaModify::default()
    };
    let dag = agent
        .modify_tenant_replicas("t4", vec![readonly.clone()])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(dag.name, "Modify tenant replicas");
    assert_eq!(settle(&agent, &dag.id).await.0, State::Succeed);
    assert_eq!(locality(), "FULL{1}@z1, FULL{1}@z2, READONLY{1}@z3");
    assert!(agent
        .modify_tenant_replicas("t4", vec![readonly])
        .await
        .unwrap()
        .is_none());

    // Primary zone: always a DAG; a zone outside the tenant is refused first.
    let dag = agent.set_tenant_primary_zone("t4", "z2;z1").await.unwrap();
    assert_eq!(dag.name, "Modify tenant primary zone");
    assert_eq!(settle(&agent, &dag.id).await.0, State::Succeed);
    assert_eq!(cluster.tenant("t4").unwrap().unwrap().primary_zone, "z2;z1");
    assert!(matches!(
        agent.set_tenant_primary_zone("t4", "z9").await,
        Err(RestoreError::Cluster(
            ClusterError::PrimaryZoneInvalid { .. }
        ))
    ));
    assert!(matches!(
        agent.set_tenant_primary_zone("ghost", "RANDOM").await,
        Err(RestoreError::Cluster(ClusterError::TenantNotFound(_)))
    ));
}

/// obshell's `CancelRestoreTaskForTenant` on tenants that were never restored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_restore_of_tenants_that_were_never_restored() {
    use obrestore_restore::cluster::{NewTenant, PoolSpec, TenantRole, TenantStatus, TenantZone};
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path()).await;
    // Made by a `Create tenant` DAG: the tenant's last DAG is not a restore.
    let created = agent
        .create_tenant(create_param(
            json!({"name": "t5", "zone_list": [zone("z1")]}),
        ))
        .await
        .unwrap();
    assert_eq!(settle(&agent, &created.id).await.0, State::Succeed);
    match agent.cancel_restore("t5").await {
        Err(RestoreError::NotRestoreDag(message)) => {
            assert!(message.starts_with("Create tenant t5("), "{message}");
            assert!(message.ends_with(") is not the restore dag"), "{message}");
        }
        other => panic!("expected NotRestoreDag, got {other:?}"),
    }
    // Made without a DAG (as by SQL): exists, not being restored.
    let cluster = agent.cluster();
    let pools = cluster
        .create_pools(
            &[PoolSpec {
                name: "t6_pool".into(),
                unit_config_name: "s1".into(),
                unit_num: 1,
                zone_list: vec!["z2".into()],
            }],
            "sql",
        )
        .unwrap();
    cluster
        .create_tenant(
            &NewTenant {
                name: "t6".into(),
                status: TenantStatus::Normal,
                role: TenantRole::Primary,
                data_version: "4.2.1.0".into(),
                primary_zone: "RANDOM".into(),
                zone_list: vec![TenantZone {
                    zone: "z2".into(),
                    replica_type: ReplicaType::Full,
                }],
                pool_names: vec![pools[0].name.clone()],
            },
            "sql",
        )
        .unwrap();
    match agent.cancel_restore("t6").await {
        Err(err @ RestoreError::NotRecovering(_)) => {
            assert_eq!(err.to_string(), "Tenant 't6' is not in restore state");
        }
        other => panic!("expected NotRecovering, got {other:?}"),
    }
    // Neither a tenant nor a DAG: nothing to cancel. `sys` is refused.
    assert!(agent.cancel_restore("ghost").await.unwrap().is_none());
    assert!(matches!(
        agent.cancel_restore("sys").await,
        Err(RestoreError::SysTenant)
    ));
    // Both tenants are untouched.
    assert!(cluster.tenant("t5").unwrap().is_some() && cluster.tenant("t6").unwrap().is_some());
}

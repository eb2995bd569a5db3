//! Records, clusters, backups and agents the tests build the same way.

use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use obrestore_backup::{generate, GenerateConfig, GenerateSummary};
use obrestore_dag::AgentInfo;
use obrestore_restore::cluster::{
    ClusterResult, NewTenant, NewUnitConfig, PoolSpec, ReplicaType, Row, RowOp, TenantRole,
    TenantStatus, TenantZone,
};
use obrestore_restore::{AgentConfig, ClusterConfig, RestoreAgent, RestoreParam, SledCluster};
use serde_json::{json, Value};

/// The tests' "now" when a cluster is opened with a manual clock.
pub fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 9, 9, 11, 43).unwrap()
}

/// Opens (retrying while sled's lock is still held) the cluster at `path` with
/// [`ClusterConfig::default`] and the system clock.
pub fn open_default_cluster(path: &Path) -> ClusterResult<SledCluster> {
    super::retry_while_locked(|| SledCluster::open(path, &ClusterConfig::default()))
}

/// A unit config of `cpu` CPUs and `memory` bytes, OceanBase's defaults otherwise.
pub fn unit_config(name: &str, cpu: f64, memory: u64) -> NewUnitConfig {
    NewUnitConfig {
        name: name.into(),
        memory_size: memory,
        max_cpu: cpu,
        min_cpu: None,
        log_disk_size: None,
        max_iops: None,
        min_iops: None,
    }
}

/// A pool of one `unit_config` unit in each of `zones`.
pub fn pool_spec(name: &str, unit_config: &str, zones: &[&str]) -> PoolSpec {
    PoolSpec {
        name: name.into(),
        unit_config_name: unit_config.into(),
        unit_num: 1,
        zone_list: zones.iter().map(|zone| zone.to_string()).collect(),
    }
}

/// A tenant as a restore creates it: RESTORE, STANDBY, a FULL replica in each of
/// `zones`, primary zone RANDOM, on `pools`.
pub fn restoring_tenant(name: &str, pools: &[&str], zones: &[&str]) -> NewTenant {
    NewTenant {
        name: name.into(),
        status: TenantStatus::Restore,
        role: TenantRole::Standby,
        data_version: "4.2.1.0".into(),
        primary_zone: "RANDOM".into(),
        zone_list: zones
            .iter()
            .map(|zone| TenantZone {
                zone: zone.to_string(),
                replica_type: ReplicaType::Full,
            })
            .collect(),
        pool_names: pools.iter().map(|pool| pool.to_string()).collect(),
    }
}

/// An upsert of `(tablet_id, key)`.
pub fn put(tablet_id: u64, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> RowOp {
    RowOp::Put {
        tablet_id,
        key: key.as_ref().to_vec(),
        value: value.as_ref().to_vec(),
    }
}

/// A delete of `(tablet_id, key)`.
pub fn del(tablet_id: u64, key: impl AsRef<[u8]>) -> RowOp {
    RowOp::Delete {
        tablet_id,
        key: key.as_ref().to_vec(),
    }
}

/// A row.
pub fn row(tablet_id: u64, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Row {
    Row {
        tablet_id,
        key: key.as_ref().to_vec(),
        value: value.as_ref().to_vec(),
    }
}

/// A small generated backup (6 MiB, 3 user log streams), its sets encrypted with
/// `password` if given.
pub fn small_backup(dir: &Path, password: Option<&str>) -> GenerateSummary {
    let mut config = GenerateConfig::new(dir);
    config.target_bytes = 6 << 20;
    config.data_file_bytes = 512 << 10;
    config.log_file_bytes = 512 << 10;
    config.block_bytes = 64 << 10;
    config.kdf_iterations = 1000;
    if let Some(password) = password {
        for set in &mut config.sets {
            set.password = Some(password.to_string());
        }
    }
    generate(&config).unwrap()
}

/// A restore agent on `data_dir` allowed to read backups under `root`.
pub async fn open_agent(data_dir: &Path, root: &Path) -> RestoreAgent {
    RestoreAgent::open(agent_config(data_dir, root))
        .await
        .unwrap()
}

/// The configuration [`open_agent`] and [`reopen_agent`] open with.
fn agent_config(data_dir: &Path, root: &Path) -> AgentConfig {
    AgentConfig {
        data_dir: data_dir.to_path_buf(),
        agent: AgentInfo::default(),
        allowed_roots: vec![root.to_path_buf()],
        worker_limit: 8,
        cluster: ClusterConfig::default(),
    }
}

/// [`open_agent`] again on the data dir of an agent just dropped, waiting (up to 10 s)
/// while its database is still locked by the workers it was stopping.
pub async fn reopen_agent(data_dir: &Path, root: &Path) -> RestoreAgent {
    for _ in 0..1000 {
        match RestoreAgent::open(agent_config(data_dir, root)).await {
            Ok(agent) => return agent,
            Err(error) if error.to_string().contains("could not acquire lock") => {
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            Err(error) => panic!("the agent does not reopen: {error}"),
        }
    }
    panic!("the agent's database stays locked");
}

/// The body of a restore of `tenant` from `summary`: zone z1 on unit config s1,
/// concurrency 2.
pub fn restore_body(summary: &GenerateSummary, tenant: &str) -> Value {
    json!({
        "data_backup_uri": summary.data_uri,
        "archive_log_uri": summary.archive_uri,
        "restore_tenant_name": tenant,
        "zone_list": [{"name": "z1", "unit_config_name": "s1", "unit_num": 1}],
        "concurrency": 2,
    })
}

/// [`restore_body`] with the fields of `extra` added or replaced, as a parameter.
pub fn restore_param(summary: &GenerateSummary, tenant: &str, extra: Value) -> RestoreParam {
    let mut body = restore_body(summary, tenant);
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        for (key, value) in extra {
            body.insert(key.clone(), value.clone());
        }
    }
    serde_json::from_value(body).unwrap()
}

/// ROLLBACK of the failed DAG `dag_id`: it must end SUCCEED + ROLLBACK with `tenant`
/// gone and `pools` resource pools left.
pub async fn rollback_leaves_nothing(
    agent: &RestoreAgent,
    dag_id: u64,
    tenant: &str,
    pools: usize,
) {
    use obrestore_dag::{Operator, State};
    use obrestore_restore::TenantService as _;
    agent
        .engine()
        .operate(dag_id, Operator::Rollback)
        .await
        .unwrap();
    let settled = agent.engine().wait_settled(dag_id).await.unwrap();
    assert_eq!(
        (settled.state, settled.operator),
        (State::Succeed, Operator::Rollback)
    );
    assert!(agent.cluster().tenant(tenant).unwrap().is_none());
    assert_eq!(agent.cluster().list_pools().unwrap().len(), pools);
}

/// Every file under `dir`, sorted.
pub fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The rows of `tenant` equal the independent truth of `summary` at `restore_scn`, and
/// there are some.
#[track_caller]
pub fn assert_rows_equal_truth(
    agent: &RestoreAgent,
    summary: &GenerateSummary,
    tenant: &str,
    restore_scn: u64,
) {
    let verification = obrestore_restore::verify::verify_tenant(
        agent.cluster(),
        tenant,
        &summary.truth_dir,
        restore_scn,
    )
    .unwrap();
    assert!(
        verification.matches(),
        "rows of {tenant} differ: {verification:?}"
    );
    assert_eq!(verification.actual, verification.expected);
    assert!(verification.actual.rows > 0, "{tenant} has no rows");
}

//! The restore agent: the engine, the embedded cluster and the restore task types wired
//! together. Every frontend (the HTTP daemon, the CLI, the demo) drives restores and
//! tenant operations through it, so that each policy ("no drop while a restore holds the
//! tenant", obshell's cancel-restore rules) lives here once.
//!
//! - this file: [`RestoreAgent`] itself (opening, accessors, shutdown) and
//!   [`RestoreError`];
//! - `agent/restore.rs`: starting, cancelling and watching restores, previews and
//!   windows of a backup;
//! - `agent/tenants.rs`: dropping, recycling, locking tenants, with the drop
//!   policy;
//! - `agent/tenant_admin.rs`: creating and reshaping tenants;
//! - `agent/offline.rs`: [`OfflineAgent`], the agent's state without the engine,
//!   for one-shot CLI commands while the daemon is stopped.
//!
//! Invariant: a refusal is an error returned before anything is written or submitted;
//! what is accepted becomes a DAG under the tenant's maintenance lock.

mod offline;
mod restore;
mod tenant_admin;
mod tenants;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use obrestore_backup::{AllowedRoots, BackupError};
use obrestore_dag::{
    AgentInfo, DagDetailDto, Engine, LockConflict, Maintenance, OpenError, OperateError,
    QueryError, SubmitError,
};

use crate::cluster::{ClusterConfig, ClusterError, SledCluster};
use crate::param::RestoreParamError;

pub use crate::prepare::SourceTenantInfo;
pub use offline::{DroppedTenant, OfflineAgent};
pub use restore::{RestoreOverview, RestoreTaskFilter};

/// Page cache of the agent's sled database.
pub const AGENT_DB_CACHE_BYTES: u64 = 16 << 20;
/// How long cancelling a restore waits for its running steps to stop (obshell: 60 s).
pub const CANCEL_WAIT: Duration = Duration::from_secs(60);

/// How to open a [`RestoreAgent`].
#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// Directory of the agent's state: `obrestore.sled` and `agent.key`.
    pub data_dir: PathBuf,
    /// Address used for generic ids and `execute_agent`.
    pub agent: AgentInfo,
    /// `file://` backup URIs must resolve inside one of these directories.
    pub allowed_roots: Vec<PathBuf>,
    /// The engine's global worker limit (obshell: 8).
    pub worker_limit: usize,
    /// Seed of the embedded cluster on first start.
    pub cluster: ClusterConfig,
}

/// Why a restore or tenant operation was refused or failed. Typed so that frontends
/// map it to their own codes (the HTTP layer to obshell's) without reading the text.
/// Where the maintainer of a cluster of agents keeps what the agents share
/// ([`RestoreAgent::open_clustered`]).
#[derive(Debug, Clone)]
pub struct SharedState {
    /// This agent's own database (the server's trees; no cluster record).
    pub db: sled::Db,
    /// The cluster's etcd.
    pub etcd: obrestore_etcd::Etcd,
    /// The cluster's name: its keys are under `/obrestore/<cluster>/`.
    pub cluster: String,
    /// The maintainer's claim; every write checks it.
    pub fence: obrestore_etcd::Fence,
    /// The directory every agent mounts (`--shared-dir`): tenant rows in `rows/`, the
    /// agent key that seals restore passwords.
    pub shared_dir: PathBuf,
}

/// Tenant rows under the shared directory.
pub const SHARED_ROWS_DIR: &str = "rows";
/// A cluster reader's own row directory under its data directory: always empty
/// ([`RestoreAgent::open_reader`]).
const READER_ROWS_DIR: &str = "reader-rows";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// A parameter is invalid; the error names the field.
    #[error(transparent)]
    Param(#[from] RestoreParamError),
    /// The backup cannot serve the request: no usable set, not enough log, bad
    /// password, unreadable files.
    #[error(transparent)]
    Backup(#[from] BackupError),
    /// Another DAG holds the tenant's (or the cluster's) maintenance lock: a restore or
    /// another tenant operation is running.
    #[error("{}", under_maintenance(.0))]
    UnderMaintenance(LockConflict),
    /// The operation is not allowed on the `sys` tenant.
    #[error("System tenant is not allowed to perform this operation")]
    SysTenant,
    /// The tenant does not exist.
    #[error("Tenant '{0}' does not exist.")]
    TenantNotFound(String),
    /// No restore of the tenant is known (overview).
    #[error("Element not found: restore task")]
    NoRestore { tenant: String },
    /// Cancel restore: the tenant exists and is not being restored.
    #[error("Tenant '{0}' is not in restore state")]
    NotRecovering(String),
    /// Cancel restore: the tenant's last maintenance DAG is not its restore.
    #[error("there is no restore dag: {0}")]
    NotRestoreDag(String),
    /// Cancel restore: the restore's job already finished.
    #[error("restore task was succeed, can not cancel")]
    AlreadySucceed,
    /// The tenant is not in the recycle bin.
    #[error("Tenant '{0}' does not exist in recyclebin")]
    NotInRecyclebin(String),
    /// The cluster refused or failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// The engine refused the DAG.
    #[error(transparent)]
    Submit(#[from] SubmitError),
    /// The engine refused an operator.
    #[error(transparent)]
    Operate(#[from] OperateError),
    /// A query of the engine failed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The engine could not open.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The agent key could not be read or used.
    #[error("agent key: {0}")]
    Keystore(String),
    /// An internal fault.
    #[error("internal: {0}")]
    Internal(String),
}

fn under_maintenance(conflict: &LockConflict) -> String {
    match &conflict.lock {
        Maintenance::Tenant(tenant) => {
            format!("Tenant '{tenant}' is under maintenance, please try again later.")
        }
        _ => format!(
            "OceanBase cluster is under maintenance by DAG: {}, please try again later",
            conflict.holder_name
        ),
    }
}

impl From<LockConflict> for RestoreError {
    fn from(conflict: LockConflict) -> RestoreError {
        RestoreError::UnderMaintenance(conflict)
    }
}

/// A submit refused for a held lock is [`RestoreError::UnderMaintenance`].
fn submit_error(err: SubmitError) -> RestoreError {
    match err {
        SubmitError::LockConflict(conflict) => RestoreError::UnderMaintenance(conflict),
        other => RestoreError::Submit(other),
    }
}

/// The engine, the embedded cluster and the restore task types.
#[derive(Clone)]
pub struct RestoreAgent {
    pub(crate) engine: Engine,
    pub(crate) cluster: Arc<SledCluster>,
    pub(crate) roots: AllowedRoots,
    pub(crate) config: AgentConfig,
    pub(crate) keystore: crate::keystore::Keystore,
}

impl std::fmt::Debug for RestoreAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestoreAgent")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl RestoreAgent {
    /// Opens the agent's state in `config.data_dir` (creating it on first start): one sled
    /// database shared by the engine and the cluster, and the keystore. Unfinished
    /// restores resume. Must be called inside a multi-threaded tokio runtime.
    ///
    /// # Errors
    /// The data directory, the database, the keystore or a root cannot be opened.
    ///
    /// # Cancel safety
    /// Not cancel safe.
    pub async fn open(config: AgentConfig) -> Result<RestoreAgent, RestoreError> {
        let (db, cluster) = open_agent_state(&config.data_dir, &config.cluster)?;
        let store = obrestore_dag::SledStore::from_db(&db)
            .map_err(|e| RestoreError::Internal(e.to_string()))?;
        let keys = config.data_dir.clone();
        RestoreAgent::assemble(config, cluster, Arc::new(store), &keys).await
    }

    /// Opens the agent as the maintainer of a cluster of agents (`obagent serve
    /// --cluster`): the engine's records and the cluster's in etcd, both guarded by the
    /// maintainer's `fence`, so nothing is written once another agent took over; tenant
    /// rows and the agent key in `shared.shared_dir`, which every agent of the cluster
    /// mounts; `shared.db` is this agent's own database (the server's trees). Unfinished
    /// DAGs of the cluster resume here with the usual restart rules.
    ///
    /// # Errors
    /// etcd cannot be reached, the fence is already lost, or as [`RestoreAgent::open`].
    ///
    /// # Cancel safety
    /// Not cancel safe.
    pub async fn open_clustered(
        config: AgentConfig,
        shared: SharedState,
    ) -> Result<RestoreAgent, RestoreError> {
        let opened = {
            let shared = shared.clone();
            let seed = config.cluster.clone();
            tokio::task::spawn_blocking(move || {
                let cluster = SledCluster::open_etcd(
                    &shared.db,
                    shared.etcd.clone(),
                    &shared.cluster,
                    Some(shared.fence.clone()),
                    shared.shared_dir.join(SHARED_ROWS_DIR),
                    &seed,
                    Arc::new(crate::clock::SystemClock),
                )?;
                let store =
                    obrestore_etcd::EtcdStore::new(shared.etcd, &shared.cluster, shared.fence)
                        .map_err(|e| RestoreError::Internal(e.to_string()))?;
                Ok::<_, RestoreError>((cluster, store))
            })
            .await
            .map_err(|e| RestoreError::Internal(e.to_string()))??
        };
        let (cluster, store) = opened;
        RestoreAgent::assemble(config, cluster, Arc::new(store), &shared.shared_dir).await
    }

    /// Opens the agent as a reader of a cluster of agents (an agent that is not the
    /// maintainer): the engine is an [`Engine::reader`] of the cluster's DAGs in etcd and
    /// the cluster a [`SledCluster::open_etcd_reader`], so every query reads what the
    /// maintainer made durable, at the time of the call, and nothing is ever written
    /// (submits and operators answer that the engine is shut down; cluster writes
    /// `ReadOnly`). `db` is this agent's own database; its private, always empty row
    /// directory is under `config.data_dir`. Needs no tokio runtime.
    ///
    /// # Errors
    /// A cluster name that cannot be part of a key; etcd or the database cannot be read;
    /// a root or the keystore in `shared_dir` cannot be opened.
    pub fn open_reader(
        config: AgentConfig,
        db: &sled::Db,
        etcd: obrestore_etcd::Etcd,
        cluster_name: &str,
        shared_dir: &Path,
    ) -> Result<RestoreAgent, RestoreError> {
        let cluster = SledCluster::open_etcd_reader(
            db,
            etcd.clone(),
            cluster_name,
            config.data_dir.join(READER_ROWS_DIR),
            Arc::new(crate::clock::SystemClock),
        )?;
        let store = obrestore_etcd::EtcdStore::read_only(etcd, cluster_name)
            .map_err(|e| RestoreError::Internal(e.to_string()))?;
        let roots = AllowedRoots::new(&config.allowed_roots)
            .map_err(|e| RestoreError::Internal(e.to_string()))?;
        let keystore =
            crate::keystore::Keystore::open(shared_dir).map_err(RestoreError::Keystore)?;
        Ok(RestoreAgent {
            engine: Engine::reader(config.agent.clone(), Arc::new(store)),
            cluster: Arc::new(cluster),
            roots,
            config,
            keystore,
        })
    }

    /// Wires the executors, the keystore in `keys_dir` and the engine on `store`.
    async fn assemble(
        config: AgentConfig,
        cluster: SledCluster,
        store: Arc<dyn obrestore_dag::KvStore>,
        keys_dir: &Path,
    ) -> Result<RestoreAgent, RestoreError> {
        let cluster = Arc::new(cluster);
        let roots = AllowedRoots::new(&config.allowed_roots)
            .map_err(|e| RestoreError::Internal(e.to_string()))?;
        let keystore = crate::keystore::Keystore::open(keys_dir).map_err(RestoreError::Keystore)?;
        let deps = Arc::new(crate::executors::Deps::new(
            Arc::clone(&cluster),
            roots.clone(),
            keystore.clone(),
        ));
        let mut registry = obrestore_dag::TaskRegistry::new();
        crate::executors::register(&mut registry, Arc::clone(&deps));
        crate::tenant_ops::register(&mut registry, Arc::clone(&deps));
        crate::tenant_ops::register_admin(&mut registry, deps);
        let engine_config = obrestore_dag::EngineConfig {
            worker_limit: config.worker_limit.max(1),
            agent: config.agent.clone(),
            ..obrestore_dag::EngineConfig::default()
        };
        let engine = Engine::open(engine_config, store, registry).await?;
        Ok(RestoreAgent {
            engine,
            cluster,
            roots,
            config,
            keystore,
        })
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn cluster(&self) -> &Arc<SledCluster> {
        &self.cluster
    }

    pub fn allowed_roots(&self) -> &AllowedRoots {
        &self.roots
    }

    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// The shared sled database (other components use their own trees).
    pub fn db(&self) -> &sled::Db {
        self.cluster.db()
    }

    /// The holder of `lock`, if a DAG holds it now.
    fn lock_holder(&self, lock: Maintenance) -> Result<Option<LockConflict>, RestoreError> {
        Ok(match self.engine.lock_taker(&lock)? {
            Some((dag, true)) => Some(LockConflict {
                lock,
                holder: dag.id,
                holder_name: dag.name,
            }),
            _ => None,
        })
    }

    /// The tenant maintenance lock's holder, if another DAG holds it now.
    fn tenant_lock_holder(&self, tenant: &str) -> Result<Option<LockConflict>, RestoreError> {
        self.lock_holder(Maintenance::Tenant(tenant.to_string()))
    }

    /// Runs cluster work off the async threads.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&SledCluster) -> Result<T, RestoreError> + Send + 'static,
    ) -> Result<T, RestoreError> {
        let cluster = Arc::clone(&self.cluster);
        tokio::task::spawn_blocking(move || work(cluster.as_ref()))
            .await
            .map_err(|e| RestoreError::Internal(e.to_string()))?
    }

    /// Submits `spec` and returns its DAG without details.
    async fn submit_brief(
        &self,
        spec: obrestore_dag::DagSpec,
    ) -> Result<DagDetailDto, RestoreError> {
        let id = self.engine.submit(spec).await.map_err(submit_error)?;
        Ok(self.engine.dag_detail(id, false)?)
    }

    /// Stops the engine: running sub-tasks get `grace` to finish, the rest resume at the
    /// next open.
    ///
    /// # Cancel safety
    /// Not cancel safe.
    pub async fn shutdown(&self, grace: std::time::Duration) {
        self.engine.shutdown(grace).await;
        // Commits are on the device already; this covers writes of other components to
        // the shared database (the server's trees).
        if let Err(error) = self.blocking(|cluster| Ok(cluster.sync_to_device()?)).await {
            tracing::warn!(%error, "cannot sync the agent database at shutdown");
        }
    }
}

/// Opens the agent's database in `data_dir` (creating the directory on first start)
/// and the cluster in it; shared by [`RestoreAgent::open`] and [`OfflineAgent::open`].
fn open_agent_state(
    data_dir: &Path,
    cluster: &ClusterConfig,
) -> Result<(sled::Db, SledCluster), RestoreError> {
    let db = open_agent_db(data_dir)?;
    let cluster = SledCluster::new(
        &db,
        crate::cluster::agent_rows_path(data_dir),
        cluster,
        Arc::new(crate::clock::SystemClock),
    )?;
    Ok((db, cluster))
}

/// Opens (creating it and `data_dir` on first start) the agent's own sled database.
///
/// # Errors
/// The directory cannot be created, or sled cannot open the database (another process
/// has it open, say).
pub fn open_agent_db(data_dir: &Path) -> Result<sled::Db, RestoreError> {
    std::fs::create_dir_all(data_dir).map_err(|e| {
        RestoreError::Internal(format!("cannot create {}: {e}", data_dir.display()))
    })?;
    // A small page cache instead of sled's default 1 GiB: sled holds the engine's
    // records and the cluster's metadata; tenant rows live in run files
    // (`cluster::rowstore`), so nothing in sled grows with the restored data.
    let config = sled::Config::new()
        .path(crate::cluster::agent_db_path(data_dir))
        .cache_capacity(AGENT_DB_CACHE_BYTES);
    obrestore_dag::store::open_sled(&config)
        .map_err(|e| RestoreError::Internal(format!("cannot open the agent database: {e}")))
}

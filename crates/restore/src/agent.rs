//! The restore agent: the engine, the embedded cluster and the restore task types wired
//! together. Binaries (the CLI, the HTTP daemon, the demo) drive restores through it.

use std::path::PathBuf;
use std::sync::Arc;

use obrestore_backup::{AllowedRoots, BackupError};
use obrestore_dag::{
    AgentInfo, DagDetailDto, Engine, OpenError, OperateError, QueryError, SubmitError,
};
use serde::{Deserialize, Serialize};

use crate::cluster::{ClusterConfig, ClusterError, SledCluster, TenantService};
use crate::param::{RestoreParam, RestoreParamError};

/// Page cache of the agent's sled database.
pub const AGENT_DB_CACHE_BYTES: u64 = 16 << 20;

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

/// Why a restore request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// A parameter is invalid (400); the message names the field.
    #[error(transparent)]
    Param(#[from] RestoreParamError),
    /// The backup cannot serve the request (400): no usable set, not enough log, bad
    /// password, unreadable files.
    #[error("{0}")]
    Backup(#[from] BackupError),
    /// The tenant's restore is already running (409).
    #[error("a restore of tenant '{tenant}' is already running (dag {holder})")]
    AlreadyRunning { tenant: String, holder: u64 },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error("engine: {0}")]
    Submit(#[from] SubmitError),
    #[error("engine: {0}")]
    Operate(#[from] OperateError),
    #[error("engine: {0}")]
    Query(#[from] QueryError),
    #[error("engine: {0}")]
    Open(#[from] OpenError),
    #[error("agent key: {0}")]
    Keystore(String),
    #[error("internal: {0}")]
    Internal(String),
}

impl RestoreError {
    /// The HTTP status an API maps this error to.
    pub fn http_status(&self) -> u16 {
        match self {
            RestoreError::Param(err) => err.http_status(),
            RestoreError::Backup(_) => 400,
            RestoreError::AlreadyRunning { .. } => 409,
            RestoreError::Cluster(err) => err.http_status(),
            RestoreError::Operate(
                OperateError::NotAllowed { .. } | OperateError::LockConflict { .. },
            ) => 409,
            RestoreError::Query(QueryError::NotFound { .. }) => 404,
            _ => 500,
        }
    }

    /// obshell's dotted error code.
    pub fn err_code(&self) -> &'static str {
        match self {
            RestoreError::Param(err) => err.err_code(),
            RestoreError::Backup(BackupError::InvalidPassword { .. }) => {
                "OB.Backup.PasswordInvalid"
            }
            RestoreError::Backup(_) => "Common.IllegalArgument",
            RestoreError::AlreadyRunning { .. } => "Task.Dag.Maintenance.Conflict",
            RestoreError::Cluster(err) => err.err_code(),
            RestoreError::Operate(OperateError::NotAllowed { .. }) => {
                "Task.Dag.Operator.NotAllowed"
            }
            RestoreError::Query(QueryError::NotFound { .. }) => "Task.NotFound",
            _ => "Common.UnexpectedError",
        }
    }
}

/// `GET /api/v1/tenant/:name/restore/overview`: the fields of CDB_OB_RESTORE_PROGRESS
/// (running job) or CDB_OB_RESTORE_HISTORY (latest finished one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RestoreOverview {
    pub job_id: u64,
    pub tenant_name: String,
    pub tenant_id: Option<u64>,
    pub restore_scn: u64,
    pub restore_scn_display: String,
    pub status: String,
    pub backup_set_list: String,
    pub backup_piece_list: String,
    pub ls_count: u64,
    pub finish_ls_count: u64,
    pub tablet_count: u64,
    pub finish_tablet_count: u64,
    pub total_bytes: u64,
    pub total_bytes_display: String,
    pub finish_bytes: u64,
    pub finish_bytes_display: String,
    pub recover_scn: u64,
    pub recover_scn_display: String,
    pub recover_progress: f64,
    pub restore_progress: f64,
    pub start_timestamp: String,
    pub finish_timestamp: Option<String>,
    pub comment: String,
    /// The restore DAG (generic id), when known.
    pub dag_id: Option<String>,
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
        std::fs::create_dir_all(&config.data_dir).map_err(|e| {
            RestoreError::Internal(format!("cannot create {}: {e}", config.data_dir.display()))
        })?;
        // A small page cache instead of sled's default 1 GiB: sled holds the engine's
        // records and the cluster's metadata; tenant rows live in run files
        // (`cluster::rowstore`), so nothing in sled grows with the restored data.
        let db = sled::Config::new()
            .path(crate::cluster::agent_db_path(&config.data_dir))
            .cache_capacity(AGENT_DB_CACHE_BYTES)
            .open()
            .map_err(|e| RestoreError::Internal(format!("cannot open the agent database: {e}")))?;
        let cluster = Arc::new(SledCluster::new(
            &db,
            crate::cluster::agent_rows_path(&config.data_dir),
            &config.cluster,
            Arc::new(crate::clock::SystemClock),
        )?);
        let roots = AllowedRoots::new(&config.allowed_roots)
            .map_err(|e| RestoreError::Internal(e.to_string()))?;
        let keystore =
            crate::keystore::Keystore::open(&config.data_dir).map_err(RestoreError::Keystore)?;
        let deps = Arc::new(crate::executors::Deps::new(
            Arc::clone(&cluster),
            roots.clone(),
            keystore.clone(),
        ));
        let mut registry = obrestore_dag::TaskRegistry::new();
        crate::executors::register(&mut registry, deps);
        let store = obrestore_dag::SledStore::from_db(&db)
            .map_err(|e| RestoreError::Internal(e.to_string()))?;
        let engine_config = obrestore_dag::EngineConfig {
            worker_limit: config.worker_limit.max(1),
            agent: config.agent.clone(),
            ..obrestore_dag::EngineConfig::default()
        };
        let engine = Engine::open(engine_config, Arc::new(store), registry).await?;
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

    /// Validates `param` (SPEC §4.1), plans the sources (SPEC §5.3), and submits the
    /// restore DAG under the tenant's maintenance lock. Returns the DAG without details.
    ///
    /// # Errors
    /// [`RestoreError::AlreadyRunning`] while the tenant's restore is unfinished, a
    /// parameter or backup error naming the problem, or an engine failure.
    ///
    /// # Cancel safety
    /// If dropped after validation, the DAG may or may not have been submitted.
    pub async fn start_restore(&self, param: RestoreParam) -> Result<DagDetailDto, RestoreError> {
        let tenant = param.restore_tenant_name.clone();
        if let Some(holder) = self.unfinished_restore_of(&tenant)? {
            return Err(RestoreError::AlreadyRunning { tenant, holder });
        }
        let cluster = Arc::clone(&self.cluster);
        let roots = self.roots.clone();
        let keystore = self.keystore.clone();
        type Prepared = (
            crate::executors::RestoreDagParams,
            crate::cluster::NewRestoreJob,
        );
        let (params, job) =
            tokio::task::spawn_blocking(move || -> Result<Prepared, RestoreError> {
                let validated = param.validate(cluster.as_ref())?;
                let passwords: Vec<String> = validated
                    .secrets()
                    .decryption
                    .iter()
                    .map(|secret| secret.expose().to_string())
                    .collect();
                let data =
                    obrestore_backup::DataStore::open_uri(&validated.data_backup_uri, &roots)?;
                let archive =
                    obrestore_backup::ArchiveStore::open_uri(&validated.archive_log_uri, &roots)?;
                let target = match validated.target.scn() {
                    Some(scn) => obrestore_backup::RestoreTarget::Scn(obrestore_backup::Scn(scn)),
                    None => obrestore_backup::RestoreTarget::Latest,
                };
                let plan = obrestore_backup::plan_restore(&data, &archive, &target, &passwords)?;
                let mut user_ls = std::collections::BTreeSet::new();
                for planned in &plan.sets {
                    for attr in data.ls_attrs(&planned.info)? {
                        if attr.ls_id != crate::executors::SYS_LS {
                            user_ls.insert(attr.ls_id);
                        }
                    }
                }
                let job = crate::executors::new_restore_job(&data, &plan, &validated)?;
                let params = crate::executors::RestoreDagParams {
                    decryption_sealed: (!passwords.is_empty())
                        .then(|| keystore.seal_passwords(&passwords)),
                    restore: validated,
                    task_time: chrono::Utc::now().timestamp(),
                    user_ls: user_ls.into_iter().collect(),
                };
                Ok((params, job))
            })
            .await
            .map_err(|e| RestoreError::Internal(e.to_string()))??;
        let spec = crate::executors::restore_dag(&params);
        let dag_id = match self.engine.submit(spec).await {
            Ok(id) => id,
            Err(SubmitError::LockConflict(conflict)) => {
                return Err(RestoreError::AlreadyRunning {
                    tenant: params.restore.restore_tenant_name,
                    holder: conflict.holder,
                })
            }
            Err(other) => return Err(other.into()),
        };
        // The overview shows the restore from the moment it is accepted. "Pre restore
        // check" creates the same job (same creator) if this does not get there first.
        let cluster = Arc::clone(&self.cluster);
        let creator = format!("dag:{dag_id}");
        // Best effort: the DAG exists now, and "Pre restore check" reports any problem.
        match tokio::task::spawn_blocking(move || cluster.start_restore_job(&job, &creator)).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                tracing::warn!(dag_id, error = %err, "restore job not created at submit")
            }
            Err(err) => tracing::warn!(dag_id, error = %err, "restore job not created at submit"),
        }
        tracing::info!(dag_id, tenant = %params.restore.restore_tenant_name, "restore submitted");
        Ok(self.engine.dag_detail(dag_id, false)?)
    }

    /// The id of the tenant's restore DAG that has not succeeded, if any.
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn unfinished_restore_of(&self, tenant: &str) -> Result<Option<u64>, RestoreError> {
        let name = crate::executors::dag_name(tenant);
        Ok(self
            .engine
            .records()
            .all_dags()
            .map_err(|e| RestoreError::Internal(e.to_string()))?
            .into_iter()
            .filter(|dag| dag.name == name && dag.state != obrestore_dag::State::Succeed)
            .map(|dag| dag.id)
            .max())
    }

    /// Cancels the tenant's unfinished restore (if it runs) and rolls it back. `None` when
    /// there is nothing to cancel.
    ///
    /// # Errors
    /// The engine refuses (for example: activation already ran, so it cannot roll back).
    ///
    /// # Cancel safety
    /// If dropped, the cancel or the rollback may or may not have been applied.
    pub async fn cancel_restore(&self, tenant: &str) -> Result<Option<DagDetailDto>, RestoreError> {
        let Some(dag_id) = self.unfinished_restore_of(tenant)? else {
            return Ok(None);
        };
        let dag = self.engine.dag_record(dag_id)?;
        if !dag.state.is_finished() {
            match self
                .engine
                .operate(dag_id, obrestore_dag::Operator::Cancel)
                .await
            {
                Ok(()) | Err(OperateError::NotAllowed { .. }) => {}
                Err(other) => return Err(other.into()),
            }
            self.engine.wait_settled(dag_id).await?;
        }
        let dag = self.engine.dag_record(dag_id)?;
        if dag.state == obrestore_dag::State::Failed {
            self.engine
                .operate(dag_id, obrestore_dag::Operator::Rollback)
                .await?;
        }
        Ok(Some(self.engine.dag_detail(dag_id, false)?))
    }

    /// Progress of the tenant's running restore, else its latest finished one.
    ///
    /// # Errors
    /// The cluster cannot be read.
    pub fn restore_overview(&self, tenant: &str) -> Result<Option<RestoreOverview>, RestoreError> {
        let Some(job) = self.cluster.restore_overview(tenant)? else {
            return Ok(None);
        };
        let dag_id = job
            .creator
            .strip_prefix("dag:")
            .and_then(|id| id.parse::<u64>().ok())
            .map(|id| self.engine.dto().generic_id(id, obrestore_dag::Scope::Cluster));
        let display = |scn: u64| {
            if scn == 0 {
                String::new()
            } else {
                obrestore_backup::Scn(scn).to_string()
            }
        };
        Ok(Some(RestoreOverview {
            job_id: job.job_id,
            tenant_name: job.restore_tenant_name.clone(),
            tenant_id: job.restore_tenant_id,
            restore_scn: job.restore_scn,
            restore_scn_display: display(job.restore_scn),
            status: job.status.to_string(),
            backup_set_list: job.backup_set_list.join(","),
            backup_piece_list: job.backup_piece_list.join(","),
            ls_count: job.ls_count,
            finish_ls_count: job.finish_ls_count,
            tablet_count: job.tablet_count,
            finish_tablet_count: job.finish_tablet_count,
            total_bytes: job.total_bytes,
            total_bytes_display: human_bytes(job.total_bytes),
            finish_bytes: job.finish_bytes,
            finish_bytes_display: human_bytes(job.finish_bytes),
            recover_scn: job.recover_scn,
            recover_scn_display: display(job.recover_scn),
            recover_progress: if job.ls_count == 0 {
                0.0
            } else {
                job.finish_ls_count as f64 / job.ls_count as f64
            },
            restore_progress: job.restore_progress(),
            start_timestamp: obrestore_dag::dto::format_time(job.start_time),
            finish_timestamp: job.finish_time.map(obrestore_dag::dto::format_time),
            comment: job.comment.clone(),
            dag_id,
        }))
    }

    /// Stops the engine: running sub-tasks get `grace` to finish, the rest resume at the
    /// next open.
    ///
    /// # Cancel safety
    /// Not cancel safe.
    pub async fn shutdown(&self, grace: std::time::Duration) {
        self.engine.shutdown(grace).await;
        let _ = self.db().flush_async().await;
    }
}

/// `1.50 GiB`-style sizes.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.2} {}", UNITS[unit])
    }
}

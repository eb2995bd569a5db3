//! The restore agent: the engine, the embedded cluster and the restore task types wired
//! together. Binaries (the CLI, the HTTP daemon, the demo) drive restores and tenant
//! operations through it, so that each policy ("no drop while a restore holds the
//! tenant", obshell's cancel-restore rules) lives here once.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use obrestore_backup::{AllowedRoots, BackupError};
use obrestore_dag::{
    AgentInfo, DagDetailDto, Engine, LockConflict, Maintenance, OpenError, OperateError, Operator,
    QueryError, State, SubmitError,
};

use obrestore_dag::record::DagRecord;

use crate::cluster::{ClusterConfig, ClusterError, RestoreJob, SledCluster, Tenant, TenantService};
use crate::param::{RestoreParam, RestoreParamError};

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
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreError {
    /// A parameter is invalid; the error names the field.
    #[error(transparent)]
    Param(#[from] RestoreParamError),
    /// The backup cannot serve the request: no usable set, not enough log, bad
    /// password, unreadable files.
    #[error("{0}")]
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
    #[error("engine: {0}")]
    Submit(#[from] SubmitError),
    /// The engine refused an operator.
    #[error("{0}")]
    Operate(#[from] OperateError),
    /// A query of the engine failed.
    #[error("engine: {0}")]
    Query(#[from] QueryError),
    /// The engine could not open.
    #[error("engine: {0}")]
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

/// A restore job as `GET /api/v1/tenant/:name/restore/overview` and
/// `GET /api/v1/restore/tasks` show it (CDB_OB_RESTORE_PROGRESS while it runs,
/// CDB_OB_RESTORE_HISTORY once finished), with what the job does not carry itself.
#[derive(Debug, Clone, PartialEq)]
pub struct RestoreOverview {
    pub job: RestoreJob,
    /// Generic id of the restore DAG, when known.
    pub dag_id: Option<String>,
}

impl RestoreOverview {
    /// `YYYY-MM-DD hh:mm:ss.ffffff` of an SCN, "" for 0.
    pub fn scn_display(scn: u64) -> String {
        if scn == 0 {
            String::new()
        } else {
            obrestore_backup::Scn(scn).to_string()
        }
    }

    /// `finish_bytes / total_bytes` as a percentage with two decimals ("45.10").
    pub fn restore_progress(&self) -> String {
        format!("{:.2}", self.job.restore_progress() * 100.0)
    }

    /// `finish_ls_count / ls_count` as a percentage with two decimals.
    pub fn recover_progress(&self) -> String {
        format!("{:.2}", self.job.recover_progress() * 100.0)
    }
}

/// Which restore jobs [`RestoreAgent::restore_tasks`] lists (obshell's
/// `QueryRestoreTasksParam`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RestoreTaskFilter {
    /// Jobs started at or after this time.
    pub start_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Jobs started at or before this time.
    pub end_time: Option<chrono::DateTime<chrono::Utc>>,
    /// Upper-case job statuses; empty for all.
    pub statuses: Vec<String>,
}

/// What a backup says about the tenant it was taken of
/// (`POST /api/v1/restore/source-tenant-info`).
#[derive(Debug, Clone, PartialEq)]
pub struct SourceTenantInfo {
    pub tenant_name: String,
    pub cluster_name: String,
    pub windows: Vec<obrestore_backup::RestoreWindow>,
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
        crate::executors::register(&mut registry, Arc::clone(&deps));
        crate::tenant_ops::register(&mut registry, Arc::clone(&deps));
        crate::tenant_ops::register_admin(&mut registry, deps);
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

    /// The tenant maintenance lock's holder, if another DAG holds it now.
    fn tenant_lock_holder(&self, tenant: &str) -> Result<Option<LockConflict>, RestoreError> {
        let lock = Maintenance::Tenant(tenant.to_string());
        Ok(match self.engine.lock_taker(&lock)? {
            Some((dag, true)) => Some(LockConflict {
                lock,
                holder: dag.id,
                holder_name: dag.name,
            }),
            _ => None,
        })
    }

    /// Validates `param` (obshell's rules and order, `crate::param`), plans the sources
    /// (SPEC §5.3), and submits the restore DAG (a cluster DAG) under the tenant's
    /// maintenance lock. Returns the DAG without details.
    ///
    /// A tenant whose lock another DAG holds is refused first, with
    /// [`RestoreError::UnderMaintenance`]: obshell would validate first and answer
    /// "tenant exists" for a restore that already created its tenant, which hides the
    /// reason.
    ///
    /// # Errors
    /// [`RestoreError::UnderMaintenance`], a parameter or backup error naming the
    /// problem, or an engine failure.
    ///
    /// # Cancel safety
    /// If dropped after validation, the DAG may or may not have been submitted.
    pub async fn start_restore(&self, param: RestoreParam) -> Result<DagDetailDto, RestoreError> {
        if !param.restore_tenant_name.is_empty() {
            if let Some(conflict) = self.tenant_lock_holder(&param.restore_tenant_name)? {
                return Err(RestoreError::UnderMaintenance(conflict));
            }
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
                let task_time = chrono::Utc::now().timestamp();
                let job = crate::executors::new_restore_job(&data, &plan, &validated, task_time)?;
                let params = crate::executors::RestoreDagParams {
                    decryption_sealed: (!passwords.is_empty())
                        .then(|| keystore.seal_passwords(&passwords)),
                    restore: validated,
                    task_time,
                    user_ls: user_ls.into_iter().collect(),
                };
                Ok((params, job))
            })
            .await
            .map_err(|e| RestoreError::Internal(e.to_string()))??;
        let spec = crate::executors::restore_dag(&params);
        let dag_id = self.engine.submit(spec).await.map_err(submit_error)?;
        // The overview shows the restore from the moment it is accepted. "Pre restore
        // check" creates the same job (same creator) if this does not get there first.
        // A job an older restore DAG of the tenant left unfinished is closed: that DAG
        // released the lock when it failed, and this DAG took it, so the older one can
        // only be PASSed (its operators are `Task.Expired`).
        let cluster = Arc::clone(&self.cluster);
        let creator = format!("dag:{dag_id}");
        let tenant = params.restore.restore_tenant_name.clone();
        let started = tokio::task::spawn_blocking(move || -> Result<(), ClusterError> {
            if let Some(old) = cluster.active_restore_job(&tenant)? {
                if old.creator != creator {
                    let comment = format!("superseded by restore {creator}");
                    cluster.finish_restore_job(
                        old.job_id,
                        crate::cluster::RestoreOutcome::Fail,
                        Some(&comment),
                    )?;
                }
            }
            cluster.start_restore_job(&job, &creator).map(|_| ())
        })
        .await;
        // Best effort: the DAG exists now, and "Pre restore check" reports any problem.
        match started {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(dag_id, error = %err, "restore job not created at submit")
            }
            Err(err) => tracing::warn!(dag_id, error = %err, "restore job not created at submit"),
        }
        tracing::info!(dag_id, tenant = %params.restore.restore_tenant_name, "restore submitted");
        Ok(self.engine.dag_detail(dag_id, false)?)
    }

    /// The id of the tenant's newest restore DAG that has not succeeded, if any.
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn unfinished_restore_of(&self, tenant: &str) -> Result<Option<u64>, RestoreError> {
        let name = crate::executors::dag_name(tenant);
        Ok(self
            .engine
            .dags(None)?
            .into_iter()
            .filter(|dag| dag.name == name && dag.state != State::Succeed)
            .map(|dag| dag.id)
            .max())
    }

    /// The restore DAG that owns `job` (its creator), if it still exists.
    fn dag_of_job(&self, job: &RestoreJob) -> Result<Option<DagRecord>, RestoreError> {
        let Some(id) = job
            .creator
            .strip_prefix("dag:")
            .and_then(|id| id.parse::<u64>().ok())
        else {
            return Ok(None);
        };
        match self.engine.dag_record(id) {
            Ok(dag) => Ok(Some(dag)),
            Err(QueryError::NotFound { .. }) => Ok(None),
            Err(err) => Err(err.into()),
        }
    }

    /// The restore job a restore DAG started, running or finished.
    fn job_of_dag(&self, dag: &DagRecord) -> Result<Option<RestoreJob>, RestoreError> {
        let creator = format!("dag:{}", dag.id);
        if let Some(job) = self.cluster.active_restore_job(&restore_tenant_of(dag))? {
            if job.creator == creator {
                return Ok(Some(job));
            }
        }
        Ok(self
            .cluster
            .restore_history(Some(&restore_tenant_of(dag)))?
            .into_iter()
            .rev()
            .find(|job| job.creator == creator))
    }

    /// Cancels the tenant's restore and rolls it back, with obshell's rules
    /// (`executor/ob/cancel_restore.go`): the restore DAG that took the tenant's lock
    /// last is cancelled (waiting up to [`CANCEL_WAIT`] for it to stop) and rolled back;
    /// a restore job without an unfinished restore DAG gets a `Cancel restore <tenant>`
    /// DAG. Returns that DAG (with details), `None` when there is nothing to cancel.
    ///
    /// # Errors
    /// [`RestoreError::SysTenant`]; [`RestoreError::NotRecovering`] for a tenant that is
    /// not being restored; [`RestoreError::NotRestoreDag`] when the tenant's last
    /// maintenance DAG is another operation; [`RestoreError::AlreadySucceed`] when the
    /// restore job already finished; an engine refusal (e.g. ROLLBACK after the tenant
    /// was activated).
    ///
    /// # Cancel safety
    /// If dropped, the cancel or the rollback may or may not have been applied.
    pub async fn cancel_restore(&self, tenant: &str) -> Result<Option<DagDetailDto>, RestoreError> {
        if tenant == "sys" {
            return Err(RestoreError::SysTenant);
        }
        let job = self.cluster.active_restore_job(tenant)?;
        let taker = self
            .engine
            .lock_taker(&Maintenance::Tenant(tenant.to_string()))?
            .map(|(dag, _)| dag);
        let restore_name = crate::executors::dag_name(tenant);
        match (job, taker) {
            (None, None) => self.nothing_to_cancel(tenant),
            (None, Some(dag)) => {
                // A restore that ended rolled back has nothing left to cancel.
                if dag.state == State::Succeed && dag.operator == Operator::Rollback {
                    return self.nothing_to_cancel(tenant);
                }
                if dag.name != restore_name {
                    return Err(RestoreError::NotRestoreDag(format!(
                        "{}({}) is not the restore dag",
                        dag.name,
                        self.engine.generic_id(&dag)
                    )));
                }
                if self.job_of_dag(&dag)?.is_some() {
                    return Err(RestoreError::AlreadySucceed);
                }
                self.cancel_and_roll_back(dag).await.map(Some)
            }
            (Some(job), taker) => {
                let owner = self.dag_of_job(&job)?;
                match (owner, taker) {
                    (Some(owner), _) if owner.state != State::Succeed => {
                        self.cancel_and_roll_back(owner).await.map(Some)
                    }
                    (_, Some(dag)) if dag.state != State::Succeed => {
                        Err(RestoreError::NotRestoreDag(format!(
                            "{}({}) is not the restore backup task",
                            dag.name,
                            self.engine.generic_id(&dag)
                        )))
                    }
                    // The job's DAG is gone or finished (e.g. passed): cancel the job
                    // with a DAG of its own.
                    _ => self.submit_cancel_restore(tenant).await.map(Some),
                }
            }
        }
    }

    fn nothing_to_cancel(&self, tenant: &str) -> Result<Option<DagDetailDto>, RestoreError> {
        if self.cluster.tenant(tenant)?.is_some() {
            return Err(RestoreError::NotRecovering(tenant.to_string()));
        }
        Ok(None)
    }

    async fn cancel_and_roll_back(&self, dag: DagRecord) -> Result<DagDetailDto, RestoreError> {
        let id = dag.id;
        if !dag.state.is_finished() {
            self.engine.operate(id, Operator::Cancel).await?;
            // Bounded like obshell's wait; ROLLBACK below refuses a DAG still running.
            let _ = tokio::time::timeout(CANCEL_WAIT, self.engine.wait_settled(id)).await;
        }
        self.engine.operate(id, Operator::Rollback).await?;
        Ok(self.engine.dag_detail(id, true)?)
    }

    async fn submit_cancel_restore(&self, tenant: &str) -> Result<DagDetailDto, RestoreError> {
        let Some(found) = self.cluster.tenant(tenant)? else {
            return Err(RestoreError::TenantNotFound(tenant.to_string()));
        };
        let spec = crate::tenant_ops::cancel_restore_dag(&found);
        let id = self.engine.submit(spec).await.map_err(submit_error)?;
        Ok(self.engine.dag_detail(id, false)?)
    }

    /// Progress of the tenant's running restore, else its latest finished one, with
    /// obshell's checks (`api/restore_route.go`): not `sys`, the tenant exists.
    ///
    /// # Errors
    /// [`RestoreError::SysTenant`], [`RestoreError::TenantNotFound`],
    /// [`RestoreError::NoRestore`], or the cluster cannot be read.
    pub fn restore_overview(&self, tenant: &str) -> Result<RestoreOverview, RestoreError> {
        if tenant == "sys" {
            return Err(RestoreError::SysTenant);
        }
        if self.cluster.tenant(tenant)?.is_none() {
            return Err(RestoreError::TenantNotFound(tenant.to_string()));
        }
        match self.cluster.restore_overview(tenant)? {
            Some(job) => Ok(self.overview_of(job)),
            None => Err(RestoreError::NoRestore {
                tenant: tenant.to_string(),
            }),
        }
    }

    /// The tenant's running (else latest) restore job, without the tenant checks of
    /// [`RestoreAgent::restore_overview`] (progress displays while the tenant is not
    /// created yet).
    ///
    /// # Errors
    /// The cluster cannot be read.
    pub fn restore_progress(&self, tenant: &str) -> Result<Option<RestoreOverview>, RestoreError> {
        Ok(self
            .cluster
            .restore_overview(tenant)?
            .map(|job| self.overview_of(job)))
    }

    fn overview_of(&self, job: RestoreJob) -> RestoreOverview {
        let dag_id = job
            .creator
            .strip_prefix("dag:")
            .and_then(|id| id.parse::<u64>().ok())
            .map(|id| {
                self.engine
                    .dto()
                    .generic_id(id, obrestore_dag::Scope::Cluster)
            });
        RestoreOverview { job, dag_id }
    }

    /// Running restore jobs, then finished ones (`GET /api/v1/restore/tasks`).
    ///
    /// # Errors
    /// The cluster cannot be read.
    pub fn restore_tasks(
        &self,
        filter: &RestoreTaskFilter,
    ) -> Result<Vec<RestoreOverview>, RestoreError> {
        let mut running = Vec::new();
        for tenant in self.cluster.list_tenants()? {
            if let Some(job) = self.cluster.active_restore_job(&tenant.name)? {
                running.push(job);
            }
        }
        // Jobs whose tenant does not exist yet or any more.
        for job in self.cluster.running_restore_jobs()? {
            if !running.iter().any(|known| known.job_id == job.job_id) {
                running.push(job);
            }
        }
        running.sort_by_key(|job| job.job_id);
        let history = self.cluster.restore_history(None)?;
        Ok(running
            .into_iter()
            .chain(history)
            .filter(|job| {
                filter
                    .start_time
                    .map_or(true, |from| job.start_time >= from)
                    && filter.end_time.map_or(true, |to| job.start_time <= to)
                    && (filter.statuses.is_empty()
                        || filter
                            .statuses
                            .iter()
                            .any(|status| status == job.status.as_str()))
            })
            .map(|job| self.overview_of(job))
            .collect())
    }

    /// The tenant a backup was taken of and its restorable windows
    /// (`POST /api/v1/restore/source-tenant-info`).
    ///
    /// # Errors
    /// A URI outside the allowed roots, an unreadable backup.
    pub async fn source_tenant_info(
        &self,
        data_uri: &str,
        archive_uri: &str,
    ) -> Result<SourceTenantInfo, RestoreError> {
        let roots = self.roots.clone();
        let (data_uri, archive_uri) = (data_uri.to_string(), archive_uri.to_string());
        tokio::task::spawn_blocking(move || {
            let data = obrestore_backup::DataStore::open_uri(&data_uri, &roots)?;
            let archive = obrestore_backup::ArchiveStore::open_uri(&archive_uri, &roots)?;
            let windows = obrestore_backup::restore_windows(&data, &archive)?;
            Ok(SourceTenantInfo {
                tenant_name: data.format().tenant_name.clone(),
                cluster_name: data.format().cluster_name.clone(),
                windows,
            })
        })
        .await
        .map_err(|e| RestoreError::Internal(e.to_string()))?
    }

    /// Drops a tenant through a `Drop tenant` DAG (obshell's `DropTenant`): for good,
    /// with its rows and pools, or into the recycle bin with `need_recycle`. `None`
    /// when the tenant does not exist. A restore that holds the tenant refuses it with
    /// [`RestoreError::UnderMaintenance`]; the unfinished job of a failed restore is
    /// closed as CANCELED by the drop.
    ///
    /// # Errors
    /// [`RestoreError::SysTenant`], [`RestoreError::UnderMaintenance`], engine failures.
    ///
    /// # Cancel safety
    /// If dropped, the DAG may or may not have been submitted.
    pub async fn drop_tenant(
        &self,
        name: &str,
        need_recycle: bool,
    ) -> Result<Option<DagDetailDto>, RestoreError> {
        if name == "sys" {
            return Err(RestoreError::SysTenant);
        }
        let Some(tenant) = self.cluster.tenant(name)? else {
            return Ok(None);
        };
        let spec = crate::tenant_ops::drop_tenant_dag(&tenant, need_recycle);
        let id = self.engine.submit(spec).await.map_err(submit_error)?;
        Ok(Some(self.engine.dag_detail(id, false)?))
    }

    /// Tenants in the recycle bin.
    ///
    /// # Errors
    /// The cluster cannot be read.
    pub fn recycled_tenants(&self) -> Result<Vec<Tenant>, RestoreError> {
        Ok(self
            .cluster
            .list_tenants()?
            .into_iter()
            .filter(Tenant::in_recyclebin)
            .collect())
    }

    /// Brings a tenant back from the recycle bin (by object or original name), under
    /// `new_name` or its original name.
    ///
    /// # Errors
    /// [`RestoreError::NotInRecyclebin`], `TenantExists` when the name is taken.
    pub fn flashback_tenant(
        &self,
        name: &str,
        new_name: Option<&str>,
    ) -> Result<Tenant, RestoreError> {
        if self.cluster.recycled_tenant(name)?.is_none() {
            return Err(RestoreError::NotInRecyclebin(name.to_string()));
        }
        Ok(self.cluster.flashback_tenant(name, new_name)?)
    }

    /// Purges a tenant from the recycle bin through a `Wait tenant purge finished` DAG.
    /// `None` when no such tenant is in the bin.
    ///
    /// # Errors
    /// [`RestoreError::UnderMaintenance`], engine failures.
    ///
    /// # Cancel safety
    /// If dropped, the DAG may or may not have been submitted.
    pub async fn purge_recycled_tenant(
        &self,
        name: &str,
    ) -> Result<Option<DagDetailDto>, RestoreError> {
        let Some(tenant) = self.cluster.recycled_tenant(name)? else {
            return Ok(None);
        };
        let spec = crate::tenant_ops::purge_tenant_dag(&tenant);
        let id = self.engine.submit(spec).await.map_err(submit_error)?;
        Ok(Some(self.engine.dag_detail(id, false)?))
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

/// Tenant administration through DAGs (obshell's `executor/tenant`): each request is
/// checked in full first (a refusal is an error, not a failed DAG), then its DAG is
/// submitted under the tenant's maintenance lock ([`crate::tenant_ops`]).
impl RestoreAgent {
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

    async fn submit_brief(
        &self,
        spec: obrestore_dag::DagSpec,
    ) -> Result<DagDetailDto, RestoreError> {
        let id = self.engine.submit(spec).await.map_err(submit_error)?;
        Ok(self.engine.dag_detail(id, false)?)
    }

    /// obshell's `CreateTenant`: checks `param` ([`crate::tenant_param`]) and submits
    /// `Create tenant <name>`. The root password is kept sealed in the DAG.
    ///
    /// # Errors
    /// The first rule broken, [`RestoreError::UnderMaintenance`], engine failures.
    pub async fn create_tenant(
        &self,
        param: crate::tenant_param::CreateTenantParam,
    ) -> Result<DagDetailDto, RestoreError> {
        let plan = self
            .blocking(move |cluster| Ok(param.validate(cluster)?))
            .await?;
        let root_password_sealed = plan
            .root_password()
            .map(|password| self.keystore.seal(password.expose().as_bytes()));
        let params = crate::tenant_ops::CreateTenantDagParams {
            plan,
            task_time: chrono::Utc::now().timestamp(),
            root_password_sealed,
        };
        self.submit_brief(crate::tenant_ops::create_tenant_dag(&params))
            .await
    }

    /// obshell's `ScaleOutTenantReplicas`: a replica in each of `zones`.
    ///
    /// # Errors
    /// The cluster's refusal in obshell's order ([`TenantService::add_replicas`]),
    /// [`RestoreError::UnderMaintenance`], engine failures.
    pub async fn add_tenant_replicas(
        &self,
        name: &str,
        zones: Vec<crate::cluster::ReplicaSpec>,
    ) -> Result<DagDetailDto, RestoreError> {
        let (tenant, checked) = (name.to_string(), zones.clone());
        self.blocking(move |cluster| {
            Ok(cluster.preview_add_replicas(&tenant, &checked, "preview")?)
        })
        .await?;
        let change = crate::tenant_ops::Reshape::AddReplicas(zones);
        self.submit_brief(crate::tenant_ops::reshape_dag(name, change))
            .await
    }

    /// obshell's `ScaleInTenantReplicas`: zones without a replica are left out, and
    /// `None` (204) when none is left.
    ///
    /// # Errors
    /// As [`TenantService::remove_replicas`], [`RestoreError::UnderMaintenance`].
    pub async fn remove_tenant_replicas(
        &self,
        name: &str,
        zones: Vec<String>,
    ) -> Result<Option<DagDetailDto>, RestoreError> {
        let tenant = name.to_string();
        let kept: Vec<String> = self
            .blocking(move |cluster| {
                let current = cluster
                    .tenant(&tenant)?
                    .ok_or_else(|| ClusterError::TenantNotFound(tenant.clone()))?;
                let kept: Vec<String> = zones
                    .into_iter()
                    .filter(|zone| current.zone_list.iter().any(|has| &has.zone == zone))
                    .collect();
                if !kept.is_empty() {
                    cluster.preview_remove_replicas(&tenant, &kept)?;
                }
                Ok(kept)
            })
            .await?;
        if kept.is_empty() {
            return Ok(None);
        }
        let change = crate::tenant_ops::Reshape::RemoveReplicas(kept);
        Ok(Some(
            self.submit_brief(crate::tenant_ops::reshape_dag(name, change))
                .await?,
        ))
    }

    /// obshell's `ModifyTenantReplica`; `None` (204) when every zone already is as
    /// asked.
    ///
    /// # Errors
    /// As [`TenantService::modify_replicas`], [`RestoreError::UnderMaintenance`].
    pub async fn modify_tenant_replicas(
        &self,
        name: &str,
        zones: Vec<crate::cluster::ReplicaModify>,
    ) -> Result<Option<DagDetailDto>, RestoreError> {
        let (tenant, checked) = (name.to_string(), zones.clone());
        let changes = self
            .blocking(move |cluster| {
                cluster.preview_modify_replicas(&tenant, &checked)?;
                let current = cluster
                    .tenant(&tenant)?
                    .ok_or_else(|| ClusterError::TenantNotFound(tenant.clone()))?;
                let pools = cluster.list_pools()?;
                Ok(checked.iter().any(|change| {
                    let replica = current
                        .zone_list
                        .iter()
                        .find(|zone| zone.zone == change.zone);
                    let pool = pools.iter().find(|pool| {
                        pool.tenant_id == Some(current.id) && pool.zone_list.contains(&change.zone)
                    });
                    let replica_differs = change
                        .replica_type
                        .is_some_and(|kind| !replica.is_some_and(|zone| zone.replica_type == kind));
                    let config_differs = change.unit_config_name.as_ref().is_some_and(|config| {
                        !pool.is_some_and(|pool| &pool.unit_config_name == config)
                    });
                    let unit_num_differs = change.unit_num.is_some_and(|unit_num| {
                        !pool.is_some_and(|pool| pool.unit_num == unit_num)
                    });
                    replica_differs || config_differs || unit_num_differs
                }))
            })
            .await?;
        if !changes {
            return Ok(None);
        }
        let change = crate::tenant_ops::Reshape::ModifyReplicas(zones);
        Ok(Some(
            self.submit_brief(crate::tenant_ops::reshape_dag(name, change))
                .await?,
        ))
    }

    /// obshell's `ModifyTenantPrimaryZone` (always a DAG, as obshell's).
    ///
    /// # Errors
    /// As [`TenantService::set_primary_zone`], [`RestoreError::UnderMaintenance`].
    pub async fn set_tenant_primary_zone(
        &self,
        name: &str,
        primary_zone: &str,
    ) -> Result<DagDetailDto, RestoreError> {
        let (tenant, zone) = (name.to_string(), primary_zone.to_string());
        self.blocking(move |cluster| Ok(cluster.preview_primary_zone(&tenant, &zone)?))
            .await?;
        let change = crate::tenant_ops::Reshape::PrimaryZone(primary_zone.to_string());
        self.submit_brief(crate::tenant_ops::reshape_dag(name, change))
            .await
    }
}

/// The tenant a restore DAG restores (its name is `Restore backup_<tenant>`).
fn restore_tenant_of(dag: &DagRecord) -> String {
    dag.name
        .strip_prefix("Restore backup_")
        .unwrap_or(&dag.name)
        .to_string()
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

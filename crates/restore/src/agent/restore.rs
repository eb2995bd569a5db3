//! Restores through the agent: starting one (validate, plan once, submit), cancelling
//! it with obshell's rules, watching its job, and reading a backup before a restore
//! (preview, windows, source tenant).
//!
//! Invariant: a restore's sources are confined and planned only through
//! [`crate::prepare`], on the blocking pool.

use obrestore_backup::{RestorePlan, RestoreTarget, RestoreWindow};
use obrestore_dag::record::DagRecord;
use obrestore_dag::{DagDetailDto, Maintenance, Operator, QueryError, State};

use super::{submit_error, RestoreAgent, RestoreError, CANCEL_WAIT};
use crate::cluster::{NewRestoreJob, RestoreJob, TenantService};
use crate::executors::RestoreDagParams;
use crate::param::RestoreParam;
use crate::prepare::SourceTenantInfo;

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

impl RestoreAgent {
    /// Validates `param` (obshell's rules and order, `crate::param`), plans the sources
    /// once (SPEC §5.3, [`crate::prepare`]), and submits the restore DAG (a cluster DAG)
    /// under the tenant's maintenance lock, with the plan in its parameters. Returns the
    /// DAG without details.
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
        let (params, job) = self.prepare_restore_dag(param).await?;
        let dag_id = self
            .engine
            .submit(crate::executors::restore_dag(&params))
            .await
            .map_err(submit_error)?;
        let tenant = params.restore.restore_tenant_name;
        self.open_restore_job(dag_id, tenant.clone(), job).await;
        tracing::info!(dag_id, tenant = %tenant, "restore submitted");
        Ok(self.engine.dag_detail(dag_id, false)?)
    }

    /// Validates and plans a restore on the blocking pool: the DAG's parameters (the
    /// passwords sealed) and its restore job.
    async fn prepare_restore_dag(
        &self,
        param: RestoreParam,
    ) -> Result<(RestoreDagParams, NewRestoreJob), RestoreError> {
        let roots = self.roots.clone();
        let keystore = self.keystore.clone();
        self.blocking(move |cluster| {
            let restore = param.validate(cluster)?;
            let task_time = chrono::Utc::now().timestamp();
            let prepared = crate::prepare::prepare_restore(&restore, &roots, task_time)?;
            let passwords = restore.decryption_passwords();
            let params = RestoreDagParams {
                decryption_sealed: (!passwords.is_empty())
                    .then(|| keystore.seal_passwords(&passwords)),
                restore,
                task_time,
                user_ls: prepared.user_ls,
                plan: prepared.plan,
            };
            Ok((params, prepared.job))
        })
        .await
    }

    /// Creates the restore job of a submitted restore DAG, so that the overview shows
    /// the restore from the moment it is accepted. Best effort: "Pre restore check"
    /// creates the same job (same creator) if this does not get there first. A job an
    /// older restore DAG of the tenant left unfinished is closed: that DAG released the
    /// lock when it failed, and this DAG took it, so the older one can only be PASSed
    /// (its operators are `Task.Expired`).
    async fn open_restore_job(&self, dag_id: u64, tenant: String, job: NewRestoreJob) {
        let creator = format!("dag:{dag_id}");
        let started = self
            .blocking(move |cluster| {
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
                Ok(cluster.start_restore_job(&job, &creator).map(|_| ())?)
            })
            .await;
        if let Err(err) = started {
            tracing::warn!(dag_id, error = %err, "restore job not created at submit");
        }
    }

    /// The id of the tenant's newest restore DAG that has not succeeded, if any.
    ///
    /// # Errors
    /// The store cannot be read.
    pub fn unfinished_restore_of(&self, tenant: &str) -> Result<Option<u64>, RestoreError> {
        let name = crate::executors::dag_name(tenant);
        Ok(self
            .engine
            .active_dags(None)?
            .into_iter()
            .filter(|dag| dag.name == name)
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
        self.submit_brief(crate::tenant_ops::cancel_restore_dag(&found))
            .await
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
        self.blocking(move |_| {
            Ok(crate::prepare::source_tenant_info(
                &data_uri,
                &archive_uri,
                &roots,
            )?)
        })
        .await
    }

    /// The restorable windows of a backup (`GET /api/v1/restore/windows`).
    ///
    /// # Errors
    /// As [`RestoreAgent::source_tenant_info`].
    pub async fn restore_windows(
        &self,
        data_uri: &str,
        archive_uri: &str,
    ) -> Result<Vec<RestoreWindow>, RestoreError> {
        Ok(self
            .source_tenant_info(data_uri, archive_uri)
            .await?
            .windows)
    }

    /// The sets and pieces a restore to `target` would use (OCP's restore preview),
    /// planned as a restore is ([`crate::prepare::preview`]).
    ///
    /// # Errors
    /// A URI outside the allowed roots, an unreadable backup, a bad password, not
    /// enough sets or log for the target.
    pub async fn restore_preview(
        &self,
        data_uri: &str,
        archive_uri: &str,
        target: RestoreTarget,
        passwords: Vec<String>,
    ) -> Result<RestorePlan, RestoreError> {
        let roots = self.roots.clone();
        let (data_uri, archive_uri) = (data_uri.to_string(), archive_uri.to_string());
        self.blocking(move |_| {
            Ok(crate::prepare::preview(
                &data_uri,
                &archive_uri,
                &roots,
                &target,
                &passwords,
            )?)
        })
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

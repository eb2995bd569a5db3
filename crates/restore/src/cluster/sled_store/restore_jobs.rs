//! Restore jobs: the unfinished ones (OceanBase's `CDB_OB_RESTORE_PROGRESS`) and the
//! finished ones (`CDB_OB_RESTORE_HISTORY`).
//!
//! Invariants: a job is in `cluster/restore_jobs` or in `cluster/restore_history`, never
//! both; `cluster/restore_active` maps a tenant name to its one unfinished job; a
//! finished job never changes again.

use chrono::{DateTime, Utc};

use super::{abort, SledCluster, Tree, Tx, TxResult};
use crate::cluster::error::{ClusterError, ClusterResult};
use crate::cluster::model::{
    NewRestoreJob, PartProgress, RestoreJob, RestoreJobPatch, RestoreJobStatus, RestoreOutcome,
};

impl Tx<'_> {
    /// The unfinished job `job_id`.
    ///
    /// # Errors
    /// `RestoreJobFinished` when it is in history, `RestoreJobNotFound`.
    fn running_job(&self, job_id: u64) -> TxResult<RestoreJob> {
        let key = job_id.to_be_bytes();
        if let Some(job) = self.get(Tree::RestoreJobs, &key)? {
            return Ok(job);
        }
        if self.contains(Tree::RestoreHistory, &key)? {
            return abort(ClusterError::RestoreJobFinished(job_id));
        }
        abort(ClusterError::RestoreJobNotFound(job_id))
    }

    fn put_job(&self, job: &RestoreJob) -> TxResult<()> {
        self.put(Tree::RestoreJobs, &job.job_id.to_be_bytes(), job)
    }

    /// Changes the unfinished job `job_id` with `change` and writes it back if `change`
    /// says it changed something.
    fn update_running_job(
        &self,
        job_id: u64,
        change: impl FnOnce(&mut RestoreJob) -> bool,
    ) -> TxResult<RestoreJob> {
        let mut job = self.running_job(job_id)?;
        if change(&mut job) {
            self.put_job(&job)?;
        }
        Ok(job)
    }
}

impl SledCluster {
    /// The job, running or in history.
    ///
    /// # Errors
    /// Storage failures.
    pub fn restore_job(&self, job_id: u64) -> ClusterResult<Option<RestoreJob>> {
        let key = job_id.to_be_bytes();
        match self.get(Tree::RestoreJobs, &key)? {
            Some(job) => Ok(Some(job)),
            None => self.get(Tree::RestoreHistory, &key),
        }
    }

    /// Every unfinished job, by job id.
    ///
    /// # Errors
    /// Storage failures.
    pub fn running_restore_jobs(&self) -> ClusterResult<Vec<RestoreJob>> {
        self.scan(Tree::RestoreJobs)
    }

    /// Finished jobs by job id, of one tenant or all.
    ///
    /// # Errors
    /// Storage failures.
    pub fn restore_history(&self, tenant_name: Option<&str>) -> ClusterResult<Vec<RestoreJob>> {
        let jobs: Vec<RestoreJob> = self.scan(Tree::RestoreHistory)?;
        Ok(jobs
            .into_iter()
            .filter(|job| match tenant_name {
                Some(name) => job.restore_tenant_name == name,
                None => true,
            })
            .collect())
    }

    /// What `GET /api/v1/tenant/:name/restore/overview` shows: the unfinished job, else
    /// the latest finished one.
    ///
    /// # Errors
    /// Storage failures.
    pub fn restore_overview(&self, tenant_name: &str) -> ClusterResult<Option<RestoreJob>> {
        if let Some(job) = active_restore_job(self, tenant_name)? {
            return Ok(Some(job));
        }
        Ok(self.restore_history(Some(tenant_name))?.pop())
    }
}

/// [`crate::TenantService::start_restore_job`].
pub(super) fn start_restore_job(
    cluster: &SledCluster,
    job: &NewRestoreJob,
    creator: &str,
) -> ClusterResult<RestoreJob> {
    let now = cluster.clock.now();
    cluster.transact(|tx| {
        let tenant_key = job.restore_tenant_name.as_bytes();
        if let Some(active_id) = tx.get_u64(Tree::ActiveRestoreJobs, tenant_key)? {
            if let Some(existing) =
                tx.get::<RestoreJob>(Tree::RestoreJobs, &active_id.to_be_bytes())?
            {
                if existing.creator == creator {
                    return Ok(existing);
                }
                return abort(ClusterError::RestoreJobConflict {
                    tenant: job.restore_tenant_name.clone(),
                    job_id: active_id,
                });
            }
        }
        let job_id = tx.next_id("restore_job_id", 1, 1)?;
        let record = new_job_record(job_id, job, creator, now);
        tx.put_job(&record)?;
        tx.put_u64(Tree::ActiveRestoreJobs, tenant_key, record.job_id)?;
        Ok(record)
    })
}

/// The record of a job just started: status RESTORE_PRE, nothing done yet.
fn new_job_record(
    job_id: u64,
    job: &NewRestoreJob,
    creator: &str,
    now: DateTime<Utc>,
) -> RestoreJob {
    RestoreJob {
        job_id,
        restore_tenant_name: job.restore_tenant_name.clone(),
        restore_tenant_id: None,
        creator: creator.to_string(),
        status: RestoreJobStatus::RestorePre,
        restore_scn: job.restore_scn,
        data_backup_uri: job.data_backup_uri.clone(),
        archive_log_uri: job.archive_log_uri.clone(),
        backup_tenant_name: job.backup_tenant_name.clone(),
        backup_tenant_id: job.backup_tenant_id,
        backup_cluster_version: job.backup_cluster_version.clone(),
        backup_cluster_name: job.backup_cluster_name.clone(),
        restore_option: job.restore_option.clone(),
        backup_set_list: job.backup_set_list.clone(),
        backup_piece_list: job.backup_piece_list.clone(),
        ls_count: job.ls_count,
        finish_ls_count: 0,
        finished_ls: Default::default(),
        tablet_count: job.tablet_count,
        finish_tablet_count: 0,
        total_bytes: job.total_bytes,
        finish_bytes: 0,
        parts: Default::default(),
        recover_scn: 0,
        comment: String::new(),
        start_time: now,
        finish_time: None,
    }
}

/// [`crate::TenantService::update_restore_job`].
pub(super) fn update_restore_job(
    cluster: &SledCluster,
    job_id: u64,
    patch: &RestoreJobPatch,
) -> ClusterResult<RestoreJob> {
    cluster.transact(|tx| {
        tx.update_running_job(job_id, |job| {
            apply_patch(job, patch.clone());
            true
        })
    })
}

/// Sets every field `patch` has.
fn apply_patch(job: &mut RestoreJob, patch: RestoreJobPatch) {
    if let Some(status) = patch.status {
        job.status = status;
    }
    if let Some(id) = patch.restore_tenant_id {
        job.restore_tenant_id = Some(id);
    }
    if let Some(scn) = patch.restore_scn {
        job.restore_scn = scn;
    }
    if let Some(name) = patch.backup_tenant_name {
        job.backup_tenant_name = Some(name);
    }
    if let Some(id) = patch.backup_tenant_id {
        job.backup_tenant_id = Some(id);
    }
    if let Some(version) = patch.backup_cluster_version {
        job.backup_cluster_version = Some(version);
    }
    if let Some(sets) = patch.backup_set_list {
        job.backup_set_list = sets;
    }
    if let Some(pieces) = patch.backup_piece_list {
        job.backup_piece_list = pieces;
    }
    if let Some(count) = patch.ls_count {
        job.ls_count = count;
    }
    if let Some(count) = patch.tablet_count {
        job.tablet_count = count;
    }
    if let Some(bytes) = patch.total_bytes {
        job.total_bytes = bytes;
    }
    if let Some(scn) = patch.recover_scn {
        job.recover_scn = scn;
    }
    if let Some(comment) = patch.comment {
        job.comment = comment;
    }
}

/// [`crate::TenantService::record_restore_part`].
pub(super) fn record_restore_part(
    cluster: &SledCluster,
    job_id: u64,
    part: &str,
    progress: PartProgress,
) -> ClusterResult<RestoreJob> {
    cluster.transact(|tx| {
        tx.update_running_job(job_id, |job| {
            job.parts.insert(part.to_string(), progress);
            job.finish_bytes = job.parts.values().map(|part| part.bytes).sum();
            job.finish_tablet_count = job.parts.values().map(|part| part.tablets).sum();
            true
        })
    })
}

/// [`crate::TenantService::finish_restore_ls`].
pub(super) fn finish_restore_ls(
    cluster: &SledCluster,
    job_id: u64,
    ls_id: u64,
) -> ClusterResult<RestoreJob> {
    cluster.transact(|tx| {
        tx.update_running_job(job_id, |job| {
            let added = job.finished_ls.insert(ls_id);
            if added {
                job.finish_ls_count = job.finished_ls.len() as u64;
            }
            added
        })
    })
}

/// [`crate::TenantService::finish_restore_job`].
pub(super) fn finish_restore_job(
    cluster: &SledCluster,
    job_id: u64,
    outcome: RestoreOutcome,
    comment: Option<&str>,
) -> ClusterResult<RestoreJob> {
    let now = cluster.clock.now();
    cluster.transact(|tx| {
        let key = job_id.to_be_bytes();
        let Some(mut job) = tx.get::<RestoreJob>(Tree::RestoreJobs, &key)? else {
            return match tx.get::<RestoreJob>(Tree::RestoreHistory, &key)? {
                Some(job) => Ok(job),
                None => abort(ClusterError::RestoreJobNotFound(job_id)),
            };
        };
        job.status = outcome.into();
        job.finish_time = Some(now);
        if let Some(comment) = comment {
            job.comment = comment.to_string();
        }
        tx.remove(Tree::RestoreJobs, &key)?;
        let tenant_key = job.restore_tenant_name.as_bytes();
        if tx.get_u64(Tree::ActiveRestoreJobs, tenant_key)? == Some(job_id) {
            tx.remove(Tree::ActiveRestoreJobs, tenant_key)?;
        }
        tx.put(Tree::RestoreHistory, &key, &job)?;
        Ok(job)
    })
}

/// [`crate::TenantService::active_restore_job`].
pub(super) fn active_restore_job(
    cluster: &SledCluster,
    tenant_name: &str,
) -> ClusterResult<Option<RestoreJob>> {
    match cluster.get_u64(Tree::ActiveRestoreJobs, tenant_name.as_bytes())? {
        None => Ok(None),
        Some(id) => cluster.get(Tree::RestoreJobs, &id.to_be_bytes()),
    }
}

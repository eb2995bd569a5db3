//! Restore jobs: OceanBase's `CDB_OB_RESTORE_PROGRESS` / `CDB_OB_RESTORE_HISTORY` rows
//! and the requests that start and update them.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Status of a restore job: its stage while running, `SUCCESS`/`FAIL`/`CANCELED` in history.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[non_exhaustive]
pub enum RestoreJobStatus {
    RestorePre,
    CreateTenant,
    RestoreSysTablets,
    RestoreData,
    ReplayLog,
    PostCheck,
    Activate,
    Upgrade,
    Success,
    Fail,
    Canceled,
}

display_as_serde_name! {
    RestoreJobStatus => {
        RestorePre = "RESTORE_PRE",
        CreateTenant = "CREATE_TENANT",
        RestoreSysTablets = "RESTORE_SYS_TABLETS",
        RestoreData = "RESTORE_DATA",
        ReplayLog = "REPLAY_LOG",
        PostCheck = "POST_CHECK",
        Activate = "ACTIVATE",
        Upgrade = "UPGRADE",
        Success = "SUCCESS",
        Fail = "FAIL",
        Canceled = "CANCELED",
    }
}

/// How a restore job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RestoreOutcome {
    Success,
    Fail,
    Canceled,
}

impl From<RestoreOutcome> for RestoreJobStatus {
    fn from(outcome: RestoreOutcome) -> RestoreJobStatus {
        match outcome {
            RestoreOutcome::Success => RestoreJobStatus::Success,
            RestoreOutcome::Fail => RestoreJobStatus::Fail,
            RestoreOutcome::Canceled => RestoreJobStatus::Canceled,
        }
    }
}

/// Progress of one piece of restore work (a data file / tablet group), recorded
/// idempotently under its key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartProgress {
    pub bytes: u64,
    pub tablets: u64,
}

/// A restore job: the fields of OceanBase's `CDB_OB_RESTORE_PROGRESS` (while running)
/// and `CDB_OB_RESTORE_HISTORY` (once finished).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RestoreJob {
    pub job_id: u64,
    pub restore_tenant_name: String,
    pub restore_tenant_id: Option<u64>,
    /// Who started it (the restore DAG id); a repeated start by the same creator
    /// returns this job.
    pub creator: String,
    pub status: RestoreJobStatus,
    pub restore_scn: u64,
    pub data_backup_uri: String,
    pub archive_log_uri: String,
    pub backup_tenant_name: Option<String>,
    pub backup_tenant_id: Option<u64>,
    pub backup_cluster_version: Option<String>,
    /// The backed-up cluster's name (`BACKUP_CLUSTER_NAME`).
    #[serde(default)]
    pub backup_cluster_name: Option<String>,
    /// OceanBase's `RESTORE_OPTION`: the pools, locality, primary zone and concurrency
    /// the restore was started with.
    #[serde(default)]
    pub restore_option: String,
    pub backup_set_list: Vec<String>,
    pub backup_piece_list: Vec<String>,
    pub ls_count: u64,
    pub finish_ls_count: u64,
    pub finished_ls: BTreeSet<u64>,
    pub tablet_count: u64,
    pub finish_tablet_count: u64,
    pub total_bytes: u64,
    pub finish_bytes: u64,
    pub parts: BTreeMap<String, PartProgress>,
    pub recover_scn: u64,
    pub comment: String,
    pub start_time: DateTime<Utc>,
    pub finish_time: Option<DateTime<Utc>>,
}

impl RestoreJob {
    /// Whether the job is in history (SUCCESS, FAIL or CANCELED).
    pub fn is_finished(&self) -> bool {
        self.finish_time.is_some()
    }

    /// `finish_bytes / total_bytes` in [0, 1]; 0 while `total_bytes` is unknown.
    pub fn restore_progress(&self) -> f64 {
        ratio(self.finish_bytes, self.total_bytes)
    }

    /// `finish_ls_count / ls_count` in [0, 1]; 0 while `ls_count` is unknown.
    pub fn recover_progress(&self) -> f64 {
        ratio(self.finish_ls_count, self.ls_count)
    }
}

fn ratio(done: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        (done as f64 / total as f64).min(1.0)
    }
}

/// What starting a restore job takes; the plan fields may also be filled in later
/// with [`RestoreJobPatch`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NewRestoreJob {
    pub restore_tenant_name: String,
    pub restore_scn: u64,
    pub data_backup_uri: String,
    pub archive_log_uri: String,
    pub backup_tenant_name: Option<String>,
    pub backup_tenant_id: Option<u64>,
    pub backup_cluster_version: Option<String>,
    #[serde(default)]
    pub backup_cluster_name: Option<String>,
    #[serde(default)]
    pub restore_option: String,
    pub backup_set_list: Vec<String>,
    pub backup_piece_list: Vec<String>,
    pub ls_count: u64,
    pub tablet_count: u64,
    pub total_bytes: u64,
}

/// A partial update of a running restore job; `None` leaves a field unchanged.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RestoreJobPatch {
    pub status: Option<RestoreJobStatus>,
    pub restore_tenant_id: Option<u64>,
    pub restore_scn: Option<u64>,
    pub backup_tenant_name: Option<String>,
    pub backup_tenant_id: Option<u64>,
    pub backup_cluster_version: Option<String>,
    pub backup_set_list: Option<Vec<String>>,
    pub backup_piece_list: Option<Vec<String>>,
    pub ls_count: Option<u64>,
    pub tablet_count: Option<u64>,
    pub total_bytes: Option<u64>,
    pub recover_scn: Option<u64>,
    pub comment: Option<String>,
}

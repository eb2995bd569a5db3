//! Restore DTOs: storage parameters, the restore overview and task listing, the
//! source-tenant info, the backup config, and OCP's preview request
//! (`RestoreTenantParam`).

use obrestore_backup::RestoreWindowsDto;
use obrestore_restore::agent::RestoreOverview;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::time;
use crate::envelope::AppError;

/// Body of `GET /api/v1/restore/windows` and `POST /api/v1/restore/source-tenant-info`
/// (`param.RestoreStorageParam`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
pub struct RestoreStorageParam {
    #[serde(default)]
    pub data_backup_uri: String,
    /// Defaults to `data_backup_uri`.
    #[serde(default)]
    pub archive_log_uri: Option<String>,
}

impl RestoreStorageParam {
    /// `(data, archive)` URIs, the archive defaulting to the data URI.
    ///
    /// # Errors
    /// 400 `Common.BindJsonFailed` when `data_backup_uri` is empty.
    pub fn uris(&self) -> Result<(String, String), AppError> {
        if self.data_backup_uri.trim().is_empty() {
            return Err(AppError::new(
                axum::http::StatusCode::BAD_REQUEST,
                "Common.BindJsonFailed",
                "Bind JSON failed: Key: 'data_backup_uri' Error:Field validation for 'data_backup_uri' failed on the 'required' tag",
            )
            .with_field("data_backup_uri"));
        }
        let archive = self
            .archive_log_uri
            .clone()
            .filter(|uri| !uri.trim().is_empty())
            .unwrap_or_else(|| self.data_backup_uri.clone());
        Ok((self.data_backup_uri.clone(), archive))
    }
}

/// A restore job (`param.RestoreOverview` / `bo.RestoreTask`: the fields of
/// CDB_OB_RESTORE_PROGRESS and CDB_OB_RESTORE_HISTORY).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RestoreOverviewDto {
    pub tenant_id: u64,
    pub job_id: u64,
    pub restore_tenant_name: String,
    pub restore_tenant_id: u64,
    pub backup_tenant_name: String,
    pub backup_tenant_id: u64,
    pub backup_cluster_name: String,
    pub restore_option: String,
    pub restore_scn: u64,
    pub restore_scn_display: String,
    pub status: String,
    pub start_timestamp: String,
    pub backup_set_list: String,
    pub backup_piece_list: String,
    pub backup_data_uri: String,
    pub backup_log_uri: String,
    pub tablet_count: u64,
    pub finish_tablet_count: u64,
    pub total_bytes: u64,
    pub total_bytes_display: String,
    pub finish_bytes: u64,
    pub finish_bytes_display: String,
    pub description: String,
    pub recover_scn: u64,
    pub recover_scn_display: String,
    /// Percent with two decimals, e.g. "100.00".
    pub recover_progress: String,
    /// Percent with two decimals.
    pub restore_progress: String,
    /// OceanBase's integer cluster version of the backup.
    pub backup_cluster_version: u64,
    pub ls_count: u64,
    pub finish_ls_count: u64,
    pub comment: String,
    /// "" while the job runs.
    pub finish_timestamp: String,
    /// Extension: the restore DAG's generic id.
    pub dag_id: Option<String>,
}

/// OceanBase's integer cluster version of `a.b.c.d`:
/// `a << 32 | b << 16 | c << 8 | d` (`CLUSTER_VERSION` in `ob_cluster_version.h`).
pub fn cluster_version_number(version: &str) -> u64 {
    let parts: Vec<u64> = version
        .split('.')
        .map(|part| part.trim().parse::<u64>().unwrap_or(0))
        .collect();
    let part = |index: usize| parts.get(index).copied().unwrap_or(0);
    (part(0) << 32) | (part(1) << 16) | (part(2) << 8) | part(3)
}

impl From<&RestoreOverview> for RestoreOverviewDto {
    fn from(overview: &RestoreOverview) -> RestoreOverviewDto {
        let job = &overview.job;
        let display = RestoreOverview::scn_display;
        let human = obrestore_backup::human_bytes;
        RestoreOverviewDto {
            tenant_id: job.restore_tenant_id.unwrap_or(0),
            job_id: job.job_id,
            restore_tenant_name: job.restore_tenant_name.clone(),
            restore_tenant_id: job.restore_tenant_id.unwrap_or(0),
            backup_tenant_name: job.backup_tenant_name.clone().unwrap_or_default(),
            backup_tenant_id: job.backup_tenant_id.unwrap_or(0),
            backup_cluster_name: job.backup_cluster_name.clone().unwrap_or_default(),
            restore_option: job.restore_option.clone(),
            restore_scn: job.restore_scn,
            restore_scn_display: display(job.restore_scn),
            status: job.status.to_string(),
            start_timestamp: time(job.start_time),
            backup_set_list: job.backup_set_list.join(","),
            backup_piece_list: job.backup_piece_list.join(","),
            backup_data_uri: job.data_backup_uri.clone(),
            backup_log_uri: job.archive_log_uri.clone(),
            tablet_count: job.tablet_count,
            finish_tablet_count: job.finish_tablet_count,
            total_bytes: job.total_bytes,
            total_bytes_display: human(job.total_bytes),
            finish_bytes: job.finish_bytes,
            finish_bytes_display: human(job.finish_bytes),
            description: String::new(),
            recover_scn: job.recover_scn,
            recover_scn_display: display(job.recover_scn),
            recover_progress: overview.recover_progress(),
            restore_progress: overview.restore_progress(),
            backup_cluster_version: job
                .backup_cluster_version
                .as_deref()
                .map(cluster_version_number)
                .unwrap_or(0),
            ls_count: job.ls_count,
            finish_ls_count: job.finish_ls_count,
            comment: job.comment.clone(),
            finish_timestamp: job.finish_time.map(time).unwrap_or_default(),
            dag_id: overview.dag_id.clone(),
        }
    }
}

/// Query of `GET /api/v1/restore/tasks` (`param.QueryRestoreTasksParam`).
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RestoreTasksQuery {
    /// RFC 3339: jobs started at or after.
    pub start_time: Option<String>,
    /// RFC 3339: jobs started at or before.
    pub end_time: Option<String>,
    /// Comma-separated statuses, any case.
    pub status: Option<String>,
    /// 1-based page (default 1).
    pub page: Option<u64>,
    /// Page size (default 2147483647).
    pub size: Option<u64>,
}

/// `page` of a paginated listing (`bo.CustomPage`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PageDto {
    pub total_elements: u64,
    pub total_pages: u64,
    pub size: u64,
    pub number: u64,
}

/// `GET /api/v1/restore/tasks` (`bo.PaginatedRestoreTaskResponse`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RestoreTasksDto {
    pub contents: Vec<RestoreOverviewDto>,
    pub page: PageDto,
}

/// `POST /api/v1/restore/source-tenant-info` (`system.RestoreTenantInfo`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SourceTenantInfoDto {
    pub tenant_name: String,
    pub cluster_name: String,
    #[schema(value_type = Object)]
    pub restore_windows: RestoreWindowsDto,
}

/// Body of `POST /api/v1/tenant/:name/backup/config` (the fields used here; obshell's
/// other fields are accepted and ignored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackupConfigParam {
    #[serde(default)]
    pub data_base_uri: String,
    #[serde(default)]
    pub archive_base_uri: String,
}

/// OCP's RestoreTenantParam (seed 000). Only what the preview needs is typed; the rest
/// (`restoreTenantInfoParam`, `tableRestoreObjects`, ...) is accepted and ignored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RestoreTenantParam {
    /// `ONLINE` or `OFFLINE`.
    #[serde(default)]
    pub backup_tenant_status: String,
    #[serde(default)]
    pub restore_online_tenant_required_param: Option<OnlineRestoreParam>,
    #[serde(default)]
    pub restore_offline_tenant_required_param: Option<OfflineRestoreParam>,
    /// Extension: passwords of encrypted backup sets (OCP keeps them server-side).
    #[serde(default)]
    pub decryption: Vec<String>,
}

/// `restoreOnlineTenantRequiredParam`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OnlineRestoreParam {
    #[serde(default)]
    pub backup_cluster_id: Option<i64>,
    /// The id of a tenant of this agent's cluster whose backup destinations were set
    /// with `POST /api/v1/tenant/:name/backup/config`.
    #[serde(default)]
    pub backup_tenant_id: Option<u64>,
    #[serde(default)]
    pub restore_cluster_id: Option<i64>,
    /// RFC 3339; the newest restorable point when absent.
    #[serde(default)]
    pub restore_end_time: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub restore_tenant_info_param: Option<serde_json::Value>,
}

/// `restoreOfflineTenantRequiredParam`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OfflineRestoreParam {
    #[serde(default)]
    pub backup_mode: Option<String>,
    #[serde(default)]
    pub backup_cluster_name: Option<String>,
    #[serde(default)]
    pub backup_ob_cluster_id: Option<i64>,
    #[serde(default)]
    pub backup_tenant_name: Option<String>,
    #[serde(default)]
    pub backup_ob_tenant_id: Option<i64>,
    #[serde(default)]
    pub restore_cluster_id: Option<i64>,
    #[serde(default)]
    pub ob_backup_storage_base_info: Option<BackupStorageBaseInfo>,
    /// RFC 3339; the newest restorable point when absent.
    #[serde(default)]
    pub restore_end_time: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub restore_tenant_info_param: Option<serde_json::Value>,
}

/// `obBackupStorageBaseInfo` as this agent reads it (see `docs/api.md`): the data and
/// archive destinations of the backed-up tenant.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BackupStorageBaseInfo {
    /// `FILE` (`file://` URIs); other storage types are refused.
    #[serde(default)]
    pub storage_type: Option<String>,
    /// Data backup destination (`.../data`). Also accepted as `dataBackupUri`.
    #[serde(default, alias = "dataBackupUri")]
    pub data_base_uri: String,
    /// Archive log destination (`.../clog`); defaults to the data one. Also accepted
    /// as `archiveLogUri`.
    #[serde(default, alias = "archiveLogUri")]
    pub archive_base_uri: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_version_numbers_are_oceanbases() {
        assert_eq!(
            cluster_version_number("4.2.1.0"),
            (4 << 32) | (2 << 16) | (1 << 8)
        );
        assert_eq!(cluster_version_number("4.2.4.0"), 17_180_001_280);
        assert_eq!(cluster_version_number(""), 0);
    }
}

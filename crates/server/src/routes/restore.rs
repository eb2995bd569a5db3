//! Restore (obshell's `api/restore_route.go`) and OCP's restore preview.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use obrestore_backup::{RestorePreviewItem, RestoreTarget, RestoreWindowsDto, StorageUri};
use obrestore_dag::DagDetailDto;
use obrestore_restore::agent::RestoreTaskFilter;
use obrestore_restore::{ClusterError, RestoreParam, TenantService};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{AppState, JsonBody};
use crate::dto::{
    BackupConfigParam, PageDto, RestoreOverviewDto, RestoreStorageParam, RestoreTasksDto,
    RestoreTasksQuery, RestoreTenantParam, SourceTenantInfoDto,
};
use crate::envelope::{ApiError, ApiResult, AppError, Contents, Reply};
use crate::openapi::{
    DagDetailSchema, RestoreParamSchema, RestorePreviewItemSchema, RestoreWindowsSchema,
};

/// Adds the routes of this area.
pub fn routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    router
        .routes(routes!(start_restore))
        .routes(routes!(cancel_restore))
        .routes(routes!(restore_overview))
        .routes(routes!(get_restore_windows))
        .routes(routes!(source_tenant_info))
        .routes(routes!(restore_tasks))
        .routes(routes!(restore_preview))
        .routes(routes!(set_backup_config))
}

/// Start a tenant restore: validates the parameters (obshell's rules and order, 400
/// with obshell's errCode; the field in `subErrors`), plans the sources and submits the
/// restore DAG, a cluster DAG (`"1" + id`).
#[utoipa::path(post, path = "/api/v1/tenant/restore", tag = "restore",
    request_body = RestoreParamSchema,
    responses(
        (status = 200, description = "DagDetailDTO (without details) in `data`", body = DagDetailSchema),
        (status = 400, description = "Invalid parameter or unusable backup", body = ApiError),
        (status = 409, description = "The tenant's maintenance lock is held (a restore or another tenant operation runs)", body = ApiError)))]
async fn start_restore(
    State(state): State<AppState>,
    JsonBody(param): JsonBody<RestoreParam>,
) -> ApiResult<DagDetailDto> {
    Ok(Reply::Ok(state.agent().start_restore(param).await?))
}

/// Cancel the tenant's restore, then roll it back (obshell's
/// `CancelRestoreTaskForTenant`): the rolling-back DAG with details.
#[utoipa::path(delete, path = "/api/v1/tenant/{name}/restore", tag = "restore",
    params(("name" = String, Path, description = "Restored tenant name")),
    responses(
        (status = 200, description = "The rolling-back DagDetailDTO in `data`", body = DagDetailSchema),
        (status = 204, description = "No such tenant and no restore of it"),
        (status = 400, description = "sys, a tenant not in restore, a finished restore, or the rollback is refused", body = ApiError)))]
async fn cancel_restore(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<DagDetailDto> {
    Ok(match state.agent().cancel_restore(&name).await? {
        Some(dag) => Reply::Ok(dag),
        None => Reply::NoContent,
    })
}

/// Restore progress (running job) or history (latest finished one) of a tenant.
#[utoipa::path(get, path = "/api/v1/tenant/{name}/restore/overview", tag = "restore",
    params(("name" = String, Path, description = "Restored tenant name")),
    responses(
        (status = 200, description = "Overview in `data`", body = RestoreOverviewDto),
        (status = 400, description = "sys or an unknown tenant", body = ApiError),
        (status = 404, description = "No restore of that tenant", body = ApiError)))]
async fn restore_overview(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<RestoreOverviewDto> {
    let agent = state.agent().clone();
    let overview = tokio::task::spawn_blocking(move || agent.restore_overview(&name))
        .await
        .map_err(|err| AppError::internal(format!("blocking task failed: {err}")))??;
    Ok(Reply::Ok(RestoreOverviewDto::from(&overview)))
}

/// Restorable time windows of a backup (a GET with a JSON body, as obshell).
#[utoipa::path(get, path = "/api/v1/restore/windows", tag = "restore",
    request_body = RestoreStorageParam,
    responses(
        (status = 200, description = "`{restore_windows:[{start_time,end_time}]}` in `data`", body = RestoreWindowsSchema),
        (status = 400, description = "Bad URI or unreadable backup", body = ApiError)))]
async fn get_restore_windows(
    State(state): State<AppState>,
    JsonBody(param): JsonBody<RestoreStorageParam>,
) -> ApiResult<RestoreWindowsDto> {
    let (data_uri, archive_uri) = param.uris()?;
    let windows = state
        .agent()
        .restore_windows(&data_uri, &archive_uri)
        .await?;
    Ok(Reply::Ok(RestoreWindowsDto::from_windows(&windows)))
}

/// The tenant a backup was taken of, and its windows (obshell reads them with
/// `ob_admin`; this agent reads the backup's format and infos).
#[utoipa::path(post, path = "/api/v1/restore/source-tenant-info", tag = "restore",
    request_body = RestoreStorageParam,
    responses(
        (status = 200, description = "`{tenant_name, cluster_name, restore_windows}` in `data`", body = SourceTenantInfoDto),
        (status = 400, description = "Bad URI or unreadable backup", body = ApiError)))]
async fn source_tenant_info(
    State(state): State<AppState>,
    JsonBody(param): JsonBody<RestoreStorageParam>,
) -> ApiResult<SourceTenantInfoDto> {
    let (data_uri, archive_uri) = param.uris()?;
    let info = state
        .agent()
        .source_tenant_info(&data_uri, &archive_uri)
        .await?;
    Ok(Reply::Ok(SourceTenantInfoDto {
        tenant_name: info.tenant_name,
        cluster_name: info.cluster_name,
        restore_windows: RestoreWindowsDto::from_windows(&info.windows),
    }))
}

fn query_time(
    field: &str,
    text: Option<&str>,
) -> Result<Option<chrono::DateTime<chrono::Utc>>, AppError> {
    let Some(text) = text.filter(|text| !text.trim().is_empty()) else {
        return Ok(None);
    };
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|time| Some(time.with_timezone(&chrono::Utc)))
        .map_err(|err| AppError::illegal(field, format!("'{text}' is not RFC 3339: {err}")))
}

/// Running restore jobs, then finished ones, one page of them.
#[utoipa::path(get, path = "/api/v1/restore/tasks", tag = "restore", params(RestoreTasksQuery),
    responses(
        (status = 200, description = "`{contents:[restore task], page}` in `data`", body = RestoreTasksDto),
        (status = 400, description = "A bad time", body = ApiError)))]
async fn restore_tasks(
    State(state): State<AppState>,
    query: Result<Query<RestoreTasksQuery>, QueryRejection>,
) -> ApiResult<RestoreTasksDto> {
    let Query(query) = query.map_err(|err| AppError::illegal("query", err))?;
    let filter = RestoreTaskFilter {
        start_time: query_time("start_time", query.start_time.as_deref())?,
        end_time: query_time("end_time", query.end_time.as_deref())?,
        statuses: query
            .status
            .as_deref()
            .filter(|status| !status.is_empty())
            .map(|status| {
                status
                    .split(',')
                    .map(|part| part.trim().to_ascii_uppercase())
                    .collect()
            })
            .unwrap_or_default(),
    };
    let agent = state.agent().clone();
    let tasks = tokio::task::spawn_blocking(move || agent.restore_tasks(&filter))
        .await
        .map_err(|err| AppError::internal(err.to_string()))??;
    // obshell's `CustomPageQuery.Format`: page from 1, size 2147483647 when unset.
    let number = query.page.filter(|page| *page >= 1).unwrap_or(1);
    let size = query
        .size
        .filter(|size| *size >= 1)
        .unwrap_or(2_147_483_647);
    let total = tasks.len() as u64;
    let skip = (number - 1).saturating_mul(size);
    let contents = tasks
        .iter()
        .skip(usize::try_from(skip).unwrap_or(usize::MAX))
        .take(usize::try_from(size).unwrap_or(usize::MAX))
        .map(RestoreOverviewDto::from)
        .collect();
    Ok(Reply::Ok(RestoreTasksDto {
        contents,
        page: PageDto {
            total_elements: total,
            total_pages: total.div_ceil(size),
            size,
            number,
        },
    }))
}

/// OCP: preview the backup sets and pieces a restore would use.
#[utoipa::path(post, path = "/api/v2/ob/clusters/{id}/backup/restore/preview", tag = "restore",
    params(("id" = i64, Path, description = "Id of the backed-up cluster")),
    request_body = RestoreTenantParam,
    responses(
        (status = 200, description = "`{contents:[RestorePreviewItem]}` in `data`", body = Vec<RestorePreviewItemSchema>),
        (status = 400, description = "Bad parameter or unusable backup", body = ApiError),
        (status = 404, description = "Unknown backed-up tenant (ONLINE)", body = ApiError)))]
async fn restore_preview(
    State(state): State<AppState>,
    Path(cluster_id): Path<String>,
    JsonBody(param): JsonBody<RestoreTenantParam>,
) -> ApiResult<Contents<RestorePreviewItem>> {
    if cluster_id.parse::<i64>().is_err() {
        return Err(AppError::illegal(
            "id",
            format!("cluster id '{cluster_id}' is not an integer"),
        ));
    }
    let (data_uri, archive_uri, end_time) = match param
        .backup_tenant_status
        .trim()
        .to_ascii_uppercase()
        .as_str()
    {
        "ONLINE" => online_destinations(&state, &param).await?,
        "OFFLINE" => offline_destinations(&param)?,
        other => {
            return Err(AppError::illegal(
                "backupTenantStatus",
                format!("'{other}' is not ONLINE or OFFLINE"),
            ))
        }
    };
    let target = RestoreTarget::from_params(None, end_time.as_deref())?;
    let plan = state
        .agent()
        .restore_preview(&data_uri, &archive_uri, target, param.decryption.clone())
        .await?;
    Ok(Reply::Ok(Contents {
        contents: plan.preview_items(),
    }))
}

type Destinations = (String, String, Option<String>);

async fn online_destinations(
    state: &AppState,
    param: &RestoreTenantParam,
) -> Result<Destinations, AppError> {
    let online = param
        .restore_online_tenant_required_param
        .as_ref()
        .ok_or_else(|| {
            AppError::illegal(
                "restoreOnlineTenantRequiredParam",
                "required when backupTenantStatus is ONLINE",
            )
        })?;
    let tenant_id = online.backup_tenant_id.ok_or_else(|| {
        AppError::illegal(
            "restoreOnlineTenantRequiredParam.backupTenantId",
            "required",
        )
    })?;
    let tenant = state
        .cluster(move |cluster| Ok(cluster.tenant_by_id(tenant_id)?))
        .await?
        .ok_or_else(|| {
            AppError::not_found(format!("tenant with id {tenant_id}"))
                .with_field("restoreOnlineTenantRequiredParam.backupTenantId")
        })?;
    let config = backup_config(state, &tenant.name)?.ok_or_else(|| {
        AppError::illegal(
            "restoreOnlineTenantRequiredParam.backupTenantId",
            format!(
                "tenant '{}' (id {tenant_id}) has no backup destination; set it with POST /api/v1/tenant/{}/backup/config",
                tenant.name, tenant.name
            ),
        )
    })?;
    Ok((
        config.data_base_uri,
        config.archive_base_uri,
        online.restore_end_time.clone(),
    ))
}

fn offline_destinations(param: &RestoreTenantParam) -> Result<Destinations, AppError> {
    let offline = param
        .restore_offline_tenant_required_param
        .as_ref()
        .ok_or_else(|| {
            AppError::illegal(
                "restoreOfflineTenantRequiredParam",
                "required when backupTenantStatus is OFFLINE",
            )
        })?;
    let storage = offline
        .ob_backup_storage_base_info
        .as_ref()
        .ok_or_else(|| {
            AppError::illegal(
                "restoreOfflineTenantRequiredParam.obBackupStorageBaseInfo",
                "required",
            )
        })?;
    if let Some(kind) = &storage.storage_type {
        if !kind.eq_ignore_ascii_case("FILE") && !kind.eq_ignore_ascii_case("NFS") {
            return Err(AppError::illegal(
                "obBackupStorageBaseInfo.storageType",
                format!("unsupported storage type '{kind}' (FILE or NFS)"),
            ));
        }
    }
    if storage.data_base_uri.trim().is_empty() {
        return Err(AppError::illegal(
            "obBackupStorageBaseInfo.dataBaseUri",
            "required",
        ));
    }
    let archive = storage
        .archive_base_uri
        .clone()
        .filter(|uri| !uri.trim().is_empty())
        .unwrap_or_else(|| storage.data_base_uri.clone());
    Ok((
        storage.data_base_uri.clone(),
        archive,
        offline.restore_end_time.clone(),
    ))
}

fn backup_config(state: &AppState, tenant: &str) -> Result<Option<BackupConfigParam>, AppError> {
    let Some(raw) = state.backup_configs().get(tenant.as_bytes())? else {
        return Ok(None);
    };
    serde_json::from_slice(&raw)
        .map(Some)
        .map_err(|err| AppError::internal(format!("stored backup config of '{tenant}': {err}")))
}

/// Set a tenant's backup destinations (used by the ONLINE preview; obshell's route of
/// this path configures backups through a DAG, see `docs/api.md`).
#[utoipa::path(post, path = "/api/v1/tenant/{name}/backup/config", tag = "restore",
    params(("name" = String, Path, description = "Tenant name")),
    request_body = BackupConfigParam,
    responses(
        (status = 200, description = "The stored destinations in `data`", body = BackupConfigParam),
        (status = 400, description = "Bad URI or unknown tenant", body = ApiError)))]
async fn set_backup_config(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(param): JsonBody<BackupConfigParam>,
) -> ApiResult<BackupConfigParam> {
    for (field, uri) in [
        ("data_base_uri", &param.data_base_uri),
        ("archive_base_uri", &param.archive_base_uri),
    ] {
        if uri.trim().is_empty() {
            return Err(AppError::illegal(field, "required"));
        }
        let parsed = StorageUri::parse(uri).map_err(|err| AppError::illegal(field, err))?;
        state
            .agent()
            .allowed_roots()
            .resolve(&parsed)
            .map_err(|err| AppError::illegal(field, err))?;
    }
    let tenant = name.clone();
    state
        .cluster(move |cluster| {
            cluster
                .tenant(&tenant)?
                .ok_or_else(|| AppError::from(ClusterError::TenantNotFound(tenant.clone())))
        })
        .await?;
    let raw = serde_json::to_vec(&param).map_err(AppError::internal)?;
    state.backup_configs().insert(name.as_bytes(), raw)?;
    // The tree is in the agent's database: one flush and device sync covers it.
    state
        .cluster(|cluster| cluster.sync_to_device().map_err(AppError::from))
        .await?;
    Ok(Reply::Ok(param))
}

//! Tenants (obshell's `api/tenant_handler.go`, `api/recyclebin_handler.go`) of the
//! embedded cluster. Dropping and purging go through DAGs, as obshell's do.

use axum::extract::{Path, State};
use obrestore_dag::DagDetailDto;
use obrestore_restore::TenantService;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{AppState, JsonBody};
use crate::dto::{
    DropTenantParam, FlashbackTenantParam, RecyclebinTenantDto, TenantInfoDto, TenantOverviewDto,
};
use crate::envelope::{ApiError, ApiResult, AppError, Contents, Reply};
use crate::openapi::DagDetailSchema;

/// Adds the routes of this area.
pub fn routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    router
        .routes(routes!(get_tenant, drop_tenant))
        .routes(routes!(tenants_overview))
        .routes(routes!(lock_tenant, unlock_tenant))
        .routes(routes!(recycled_tenants))
        .routes(routes!(flashback_tenant, purge_tenant))
}

fn host(state: &AppState) -> String {
    state.address().0
}

/// One tenant with its pools (obshell's `bo.TenantInfo`).
#[utoipa::path(get, path = "/api/v1/tenant/{name}", tag = "tenant",
    params(("name" = String, Path, description = "Tenant name")),
    responses(
        (status = 200, description = "The tenant in `data`", body = TenantInfoDto),
        (status = 400, description = "Unknown tenant (OB.Tenant.NotExist)", body = ApiError)))]
async fn get_tenant(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<TenantInfoDto> {
    let host = host(&state);
    let info = state
        .cluster(move |cluster| {
            let tenant = cluster.tenant(&name)?.ok_or_else(|| {
                AppError::from(obrestore_restore::ClusterError::TenantNotFound(
                    name.clone(),
                ))
            })?;
            let pools = cluster.list_pools()?;
            let configs = cluster.list_unit_configs()?;
            Ok(TenantInfoDto::of(&tenant, &pools, &configs, &host))
        })
        .await?;
    Ok(Reply::Ok(info))
}

/// Drop a tenant through a `Drop tenant` DAG (obshell's `DropTenant`); with
/// `need_recycle` the tenant goes to the recycle bin. 204 when it does not exist.
#[utoipa::path(delete, path = "/api/v1/tenant/{name}", tag = "tenant",
    params(("name" = String, Path, description = "Tenant name")),
    request_body = DropTenantParam,
    responses(
        (status = 200, description = "The `Drop tenant` DagDetailDTO in `data`", body = DagDetailSchema),
        (status = 204, description = "No such tenant"),
        (status = 400, description = "sys", body = ApiError),
        (status = 409, description = "The tenant's maintenance lock is held (e.g. its restore runs)", body = ApiError)))]
async fn drop_tenant(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(param): JsonBody<DropTenantParam>,
) -> ApiResult<DagDetailDto> {
    let need_recycle = param.need_recycle.unwrap_or(false);
    Ok(
        match state.agent().drop_tenant(&name, need_recycle).await? {
            Some(dag) => Reply::Ok(dag),
            None => Reply::NoContent,
        },
    )
}

/// Query of `GET /api/v1/tenants/overview`.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct OverviewQuery {
    /// MYSQL or ORACLE; every mode when absent.
    mode: Option<String>,
}

/// Every tenant not in the recycle bin (obshell's `oceanbase.TenantOverview`; the
/// embedded cluster has no sys tenant record).
#[utoipa::path(get, path = "/api/v1/tenants/overview", tag = "tenant", params(OverviewQuery),
    responses(
        (status = 200, description = "`{contents:[tenant]}` in `data`", body = Vec<TenantOverviewDto>),
        (status = 400, description = "Unknown mode", body = ApiError)))]
async fn tenants_overview(
    State(state): State<AppState>,
    query: Result<axum::extract::Query<OverviewQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Contents<TenantOverviewDto>> {
    let mode = query
        .ok()
        .and_then(|query| query.0.mode)
        .unwrap_or_default();
    if !["", "MYSQL", "ORACLE"].contains(&mode.as_str()) {
        return Err(AppError::new(
            axum::http::StatusCode::BAD_REQUEST,
            "OB.Tenant.Mode.NotSupported",
            format!("Tenant mode '{mode}' is not supported."),
        )
        .with_field("mode"));
    }
    let host = host(&state);
    let tenants = state.cluster(|cluster| Ok(cluster.list_tenants()?)).await?;
    Ok(Reply::Ok(Contents {
        contents: tenants
            .iter()
            .filter(|tenant| !tenant.in_recyclebin())
            .filter(|_| mode != "ORACLE")
            .map(|tenant| TenantOverviewDto::of(tenant, &host))
            .collect(),
    }))
}

async fn set_locked(state: &AppState, name: String, locked: bool) -> ApiResult<()> {
    state.agent().set_tenant_locked(&name, locked).await?;
    Ok(Reply::Done)
}

/// Lock a tenant: it refuses connections (`ALTER TENANT .. LOCK`).
#[utoipa::path(post, path = "/api/v1/tenant/{name}/lock", tag = "tenant",
    params(("name" = String, Path, description = "Tenant name")),
    responses(
        (status = 200, description = "Locked"),
        (status = 400, description = "sys or an unknown tenant", body = ApiError)))]
async fn lock_tenant(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<()> {
    set_locked(&state, name, true).await
}

/// Unlock a tenant.
#[utoipa::path(delete, path = "/api/v1/tenant/{name}/lock", tag = "tenant",
    params(("name" = String, Path, description = "Tenant name")),
    responses(
        (status = 200, description = "Unlocked"),
        (status = 400, description = "sys or an unknown tenant", body = ApiError)))]
async fn unlock_tenant(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<()> {
    set_locked(&state, name, false).await
}

/// Tenants in the recycle bin (`DBA_RECYCLEBIN`).
#[utoipa::path(get, path = "/api/v1/recyclebin/tenants", tag = "tenant",
    responses((status = 200, description = "`{contents:[recycled tenant]}` in `data`", body = Vec<RecyclebinTenantDto>)))]
async fn recycled_tenants(
    State(state): State<AppState>,
) -> ApiResult<Contents<RecyclebinTenantDto>> {
    let agent = state.agent().clone();
    let tenants = tokio::task::spawn_blocking(move || agent.recycled_tenants())
        .await
        .map_err(AppError::internal)??;
    Ok(Reply::Ok(Contents {
        contents: tenants.iter().map(RecyclebinTenantDto::of).collect(),
    }))
}

/// Bring a tenant back from the recycle bin (by object or original name), optionally
/// under `new_name`.
#[utoipa::path(post, path = "/api/v1/recyclebin/tenant/{name}", tag = "tenant",
    params(("name" = String, Path, description = "Object name or original name")),
    request_body = FlashbackTenantParam,
    responses(
        (status = 200, description = "Back"),
        (status = 400, description = "Not in the recycle bin, or the name is taken", body = ApiError)))]
async fn flashback_tenant(
    State(state): State<AppState>,
    Path(name): Path<String>,
    JsonBody(param): JsonBody<FlashbackTenantParam>,
) -> ApiResult<()> {
    let agent = state.agent().clone();
    tokio::task::spawn_blocking(move || agent.flashback_tenant(&name, param.new_name.as_deref()))
        .await
        .map_err(AppError::internal)??;
    Ok(Reply::Done)
}

/// Purge a tenant from the recycle bin through a `Wait tenant purge finished` DAG.
/// 204 when no such tenant is in the bin.
#[utoipa::path(delete, path = "/api/v1/recyclebin/tenant/{name}", tag = "tenant",
    params(("name" = String, Path, description = "Object name or original name")),
    responses(
        (status = 200, description = "The purge DagDetailDTO in `data`", body = DagDetailSchema),
        (status = 204, description = "Not in the recycle bin"),
        (status = 409, description = "The recycled tenant's lock is held", body = ApiError)))]
async fn purge_tenant(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<DagDetailDto> {
    Ok(match state.agent().purge_recycled_tenant(&name).await? {
        Some(dag) => Reply::Ok(dag),
        None => Reply::NoContent,
    })
}

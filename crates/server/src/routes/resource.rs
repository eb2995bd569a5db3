//! Unit configs and resource pools (obshell's `api/unit_handler.go`,
//! `api/pool_handler.go`) of the embedded cluster.

use axum::extract::{Path, State};
use obrestore_restore::{ClusterError, TenantService};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{AppState, JsonBody};
use crate::dto::{ResourcePoolDto, UnitConfigDto, UnitConfigParam};
use crate::envelope::{ApiError, ApiResult, AppError, Contents, Reply};

/// Adds the routes of this area.
pub fn routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    router
        .routes(routes!(create_unit_config))
        .routes(routes!(get_unit_config, drop_unit_config))
        .routes(routes!(list_unit_configs))
        .routes(routes!(list_resource_pools))
        .routes(routes!(get_resource_pool, drop_resource_pool))
}

/// Create a unit config (obshell's checks in obshell's order, then OceanBase's limits).
#[utoipa::path(post, path = "/api/v1/unit/config", tag = "resource",
    request_body = UnitConfigParam,
    responses(
        (status = 200, description = "Created; the unit config in `data` (extension: obshell sends none)", body = UnitConfigDto),
        (status = 400, description = "Invalid field or already exists", body = ApiError)))]
async fn create_unit_config(
    State(state): State<AppState>,
    JsonBody(param): JsonBody<UnitConfigParam>,
) -> ApiResult<UnitConfigDto> {
    let new = param.to_new()?;
    let config = state
        .cluster(move |cluster| {
            if cluster.unit_config(&new.name)?.is_some() {
                return Err(ClusterError::UnitConfigExists(new.name.clone()).into());
            }
            Ok(cluster.create_unit_config(&new)?)
        })
        .await?;
    Ok(Reply::Ok(UnitConfigDto::from(&config)))
}

/// One unit config.
#[utoipa::path(get, path = "/api/v1/unit/config/{name}", tag = "resource",
    params(("name" = String, Path, description = "Unit config name")),
    responses(
        (status = 200, description = "The unit config in `data`", body = UnitConfigDto),
        (status = 400, description = "Unknown unit config (OB.Resource.UnitConfig.NotExist)", body = ApiError)))]
async fn get_unit_config(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<UnitConfigDto> {
    let config = state
        .cluster(move |cluster| {
            cluster
                .unit_config(&name)?
                .ok_or_else(|| AppError::from(ClusterError::UnitConfigNotFound(name)))
        })
        .await?;
    Ok(Reply::Ok(UnitConfigDto::from(&config)))
}

/// Drop a unit config (200 also when it does not exist, as obshell).
#[utoipa::path(delete, path = "/api/v1/unit/config/{name}", tag = "resource",
    params(("name" = String, Path, description = "Unit config name")),
    responses(
        (status = 200, description = "Dropped, or there was none"),
        (status = 400, description = "Used by a resource pool (MySQL.Error)", body = ApiError)))]
async fn drop_unit_config(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<()> {
    state
        .cluster(move |cluster| Ok(cluster.drop_unit_config(&name)?))
        .await?;
    Ok(Reply::Done)
}

/// All unit configs.
#[utoipa::path(get, path = "/api/v1/units/config", tag = "resource",
    responses((status = 200, description = "`{contents:[unit config]}` in `data`", body = Vec<UnitConfigDto>)))]
async fn list_unit_configs(State(state): State<AppState>) -> ApiResult<Contents<UnitConfigDto>> {
    let configs = state
        .cluster(|cluster| Ok(cluster.list_unit_configs()?))
        .await?;
    Ok(Reply::Ok(Contents {
        contents: configs.iter().map(UnitConfigDto::from).collect(),
    }))
}

/// All resource pools (`DBA_OB_RESOURCE_POOLS`).
#[utoipa::path(get, path = "/api/v1/resource-pools", tag = "resource",
    responses((status = 200, description = "`{contents:[pool]}` in `data`", body = Vec<ResourcePoolDto>)))]
async fn list_resource_pools(
    State(state): State<AppState>,
) -> ApiResult<Contents<ResourcePoolDto>> {
    let (pools, configs) = state
        .cluster(|cluster| Ok((cluster.list_pools()?, cluster.list_unit_configs()?)))
        .await?;
    Ok(Reply::Ok(Contents {
        contents: pools
            .iter()
            .map(|pool| ResourcePoolDto::of(pool, &configs))
            .collect(),
    }))
}

/// One resource pool (an extension: obshell has no such route).
#[utoipa::path(get, path = "/api/v1/resource-pool/{name}", tag = "resource",
    params(("name" = String, Path, description = "Pool name")),
    responses(
        (status = 200, description = "The pool in `data`", body = ResourcePoolDto),
        (status = 404, description = "Unknown pool", body = ApiError)))]
async fn get_resource_pool(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<ResourcePoolDto> {
    let pool = state
        .cluster(move |cluster| {
            let pool = cluster
                .pool(&name)?
                .ok_or_else(|| AppError::from(ClusterError::PoolNotFound(name)))?;
            Ok(ResourcePoolDto::of(&pool, &cluster.list_unit_configs()?))
        })
        .await?;
    Ok(Reply::Ok(pool))
}

/// Drop a resource pool (200 also when it does not exist; 400 while granted, as
/// obshell).
#[utoipa::path(delete, path = "/api/v1/resource-pool/{name}", tag = "resource",
    params(("name" = String, Path, description = "Pool name")),
    responses(
        (status = 200, description = "Dropped, or there was none"),
        (status = 400, description = "Granted to a tenant (OB.Resource.Pool.Granted)", body = ApiError)))]
async fn drop_resource_pool(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<()> {
    state
        .cluster(move |cluster| Ok(cluster.drop_pools(std::slice::from_ref(&name))?))
        .await?;
    Ok(Reply::Done)
}

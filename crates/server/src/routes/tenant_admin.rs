//! Tenant administration (obshell's `api/tenant_handler.go`): create, rename, replicas,
//! primary zone, whitelist, root password, variables and parameters of the embedded
//! cluster's tenants. Creating and reshaping go through DAGs (the agent checks the
//! request in full first); the rest is one cluster write.
//!
//! obshell runs its tenant checks (`tenantExistHandlerWrapper`,
//! `tenantStatusHandlerWrapper`) before it binds the body, so these handlers take the
//! body as bytes and bind it after. `sys` always exists and is NORMAL, as in a real
//! cluster, though the embedded cluster keeps no record of it.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use obrestore_dag::DagDetailDto;
use obrestore_restore::cluster::{catalog, Tenant, TenantStatus};
use obrestore_restore::tenant_param::CreateTenantParam;
use obrestore_restore::{ClusterError, RestoreError, TenantService};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{AppState, JsonBody};
use crate::bind::from_json;
use crate::dto::{
    required, value_texts, FilterQuery, ModifyReplicasParam, ParameterDto, PersistPasswordParam,
    PrimaryZoneParam, RenameTenantParam, RootPasswordParam, ScaleInReplicasParam,
    ScaleOutReplicasParam, SetParametersParam, SetVariablesParam, VariableDto, WhitelistParam,
};
use crate::envelope::{ApiError, ApiResult, AppError, Contents, Reply};
use crate::openapi::{CreateTenantParamSchema, DagDetailSchema};

/// Adds the routes of this area.
pub fn routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    router
        .routes(routes!(create_tenant))
        .routes(routes!(rename_tenant))
        .routes(routes!(add_replicas, remove_replicas, modify_replicas))
        .routes(routes!(set_primary_zone))
        .routes(routes!(set_whitelist))
        .routes(routes!(set_root_password))
        .routes(routes!(persist_root_password))
        .routes(routes!(set_variables, get_variables))
        .routes(routes!(get_variable))
        .routes(routes!(set_parameters, get_parameters))
        .routes(routes!(get_parameter))
}

/// obshell's `tenantExistHandlerWrapper`: the tenant exists (`None` for `sys`).
async fn existing(state: &AppState, name: &str) -> Result<Option<Tenant>, AppError> {
    if name.is_empty() {
        return Err(ClusterError::TenantNameEmpty.into());
    }
    if name == "sys" {
        return Ok(None);
    }
    let wanted = name.to_string();
    let tenant = state
        .cluster(move |cluster| Ok(cluster.tenant(&wanted)?))
        .await?
        .ok_or_else(|| ClusterError::TenantNotFound(name.to_string()))?;
    Ok(Some(tenant))
}

/// obshell's `tenantStatusHandlerWrapper`: the tenant exists and is NORMAL.
async fn normal(state: &AppState, name: &str) -> Result<Option<Tenant>, AppError> {
    let tenant = existing(state, name).await?;
    if let Some(tenant) = &tenant {
        if tenant.status != TenantStatus::Normal {
            return Err(ClusterError::TenantState {
                name: tenant.name.clone(),
                actual: tenant.status.as_str().to_string(),
                expected: TenantStatus::Normal.as_str().to_string(),
            }
            .into());
        }
    }
    Ok(tenant)
}

/// Cluster work of the request for tenant `name` (`sys`: the embedded cluster has
/// none, so it is "not found" past obshell's wrapper).
async fn on_tenant<T: Send + 'static>(
    state: &AppState,
    name: String,
    work: impl FnOnce(&obrestore_restore::SledCluster, &str) -> Result<T, AppError> + Send + 'static,
) -> Result<T, AppError> {
    state.cluster(move |cluster| work(cluster, &name)).await
}

/// Create a tenant through a `Create tenant <name>` DAG (obshell's `CreateTenant`):
/// the request is checked in full first, in obshell's order.
#[utoipa::path(post, path = "/api/v1/tenant", tag = "tenant",
    request_body = CreateTenantParamSchema,
    responses(
        (status = 200, description = "The `Create tenant <name>` DagDetailDTO in `data`", body = DagDetailSchema),
        (status = 400, description = "A refused parameter (obshell's code, the field in subErrors)", body = ApiError),
        (status = 409, description = "The tenant's maintenance lock is held", body = ApiError)))]
async fn create_tenant(
    State(state): State<AppState>,
    JsonBody(param): JsonBody<CreateTenantParam>,
) -> ApiResult<DagDetailDto> {
    Ok(Reply::Ok(state.agent().create_tenant(param).await?))
}

/// Rename a tenant (`ALTER TENANT .. RENAME GLOBAL_NAME TO ..`).
#[utoipa::path(put, path = "/api/v1/tenant/{name}/name", tag = "tenant",
    params(("name" = String, Path, description = "Tenant name")),
    request_body = RenameTenantParam,
    responses(
        (status = 200, description = "Renamed"),
        (status = 400, description = "Unknown tenant, a bad or taken name", body = ApiError)))]
async fn rename_tenant(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<()> {
    existing(&state, &name).await?;
    let param: RenameTenantParam = from_json(&body)?;
    let new_name = param.new_name.ok_or_else(|| required(vec!["new_name"]))?;
    if name == "sys" {
        return Err(RestoreError::SysTenant.into());
    }
    on_tenant(&state, name, move |cluster, name| {
        Ok(cluster.rename_tenant(name, &new_name)?)
    })
    .await?;
    Ok(Reply::Done)
}

/// Add replicas through a `Scale out tenant replicas` DAG.
#[utoipa::path(post, path = "/api/v1/tenant/{name}/replicas", tag = "tenant",
    params(("name" = String, Path, description = "Tenant name")),
    request_body = ScaleOutReplicasParam,
    responses(
        (status = 200, description = "The DagDetailDTO in `data`", body = DagDetailSchema),
        (status = 400, description = "Refused (obshell's code)", body = ApiError),
        (status = 409, description = "The tenant's maintenance lock is held", body = ApiError)))]
async fn add_replicas(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<DagDetailDto> {
    normal(&state, &name).await?;
    let param: ScaleOutReplicasParam = from_json(&body)?;
    let specs = param.to_specs()?;
    Ok(Reply::Ok(
        state.agent().add_tenant_replicas(&name, specs).await?,
    ))
}

/// Remove replicas through a `Scale in tenant replicas` DAG; 204 when none of the
/// zones has a replica.
#[utoipa::path(delete, path = "/api/v1/tenant/{name}/replicas", tag = "tenant",
    params(("name" = String, Path, description = "Tenant name")),
    request_body = ScaleInReplicasParam,
    responses(
        (status = 200, description = "The DagDetailDTO in `data`", body = DagDetailSchema),
        (status = 204, description = "Nothing to remove"),
        (status = 400, description = "Refused (obshell's code)", body = ApiError),
        (status = 409, description = "The tenant's maintenance lock is held", body = ApiError)))]
async fn remove_replicas(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<DagDetailDto> {
    normal(&state, &name).await?;
    let param: ScaleInReplicasParam = from_json(&body)?;
    let zones = param.zones.ok_or_else(|| required(vec!["zones"]))?;
    Ok(
        match state.agent().remove_tenant_replicas(&name, zones).await? {
            Some(dag) => Reply::Ok(dag),
            None => Reply::NoContent,
        },
    )
}

/// Change replica types, unit configs or unit nums through a `Modify tenant replicas`
/// DAG; 204 when every zone already is as asked.
#[utoipa::path(patch, path = "/api/v1/tenant/{name}/replicas", tag = "tenant",
    params(("name" = String, Path, description = "Tenant name")),
    request_body = ModifyReplicasParam,
    responses(
        (status = 200, description = "The DagDetailDTO in `data`", body = DagDetailSchema),
        (status = 204, description = "Nothing to change"),
        (status = 400, description = "Refused (obshell's code)", body = ApiError),
        (status = 409, description = "The tenant's maintenance lock is held", body = ApiError)))]
async fn modify_replicas(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<DagDetailDto> {
    normal(&state, &name).await?;
    let param: ModifyReplicasParam = from_json(&body)?;
    let changes = param.to_changes()?;
    Ok(
        match state.agent().modify_tenant_replicas(&name, changes).await? {
            Some(dag) => Reply::Ok(dag),
            None => Reply::NoContent,
        },
    )
}

/// Set the primary zone through a `Modify tenant primary zone` DAG.
#[utoipa::path(put, path = "/api/v1/tenant/{name}/primary-zone", tag = "tenant",
    params(("name" = String, Path, description = "Tenant name")),
    request_body = PrimaryZoneParam,
    responses(
        (status = 200, description = "The DagDetailDTO in `data`", body = DagDetailSchema),
        (status = 400, description = "Refused (obshell's code)", body = ApiError),
        (status = 409, description = "The tenant's maintenance lock is held", body = ApiError)))]
async fn set_primary_zone(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<DagDetailDto> {
    normal(&state, &name).await?;
    let param: PrimaryZoneParam = from_json(&body)?;
    let primary_zone = param
        .primary_zone
        .ok_or_else(|| required(vec!["primary_zone"]))?;
    Ok(Reply::Ok(
        state
            .agent()
            .set_tenant_primary_zone(&name, &primary_zone)
            .await?,
    ))
}

/// Set the whitelist (`ob_tcp_invited_nodes`), merged with `127.0.0.1` as obshell's
/// `mergeWhitelist` does.
#[utoipa::path(put, path = "/api/v1/tenant/{name}/whitelist", tag = "tenant",
    params(("name" = String, Path, description = "Tenant name")),
    request_body = WhitelistParam,
    responses(
        (status = 200, description = "Set"),
        (status = 400, description = "Unknown tenant, a bad entry", body = ApiError)))]
async fn set_whitelist(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<()> {
    normal(&state, &name).await?;
    let param: WhitelistParam = from_json(&body)?;
    let whitelist = param.whitelist.ok_or_else(|| required(vec!["whitelist"]))?;
    on_tenant(&state, name, move |cluster, name| {
        let variables = BTreeMap::from([(
            catalog::VARIABLE_WHITELIST.to_string(),
            catalog::merge_whitelist(&whitelist),
        )]);
        Ok(cluster.set_variables(name, &variables)?)
    })
    .await?;
    Ok(Reply::Done)
}

/// Change the root password; `old_password` must be the current one (the embedded
/// cluster's stand-in for obshell's login with it). Never logged or echoed.
#[utoipa::path(put, path = "/api/v1/tenant/{name}/password", tag = "tenant",
    params(("name" = String, Path, description = "Tenant name")),
    request_body = RootPasswordParam,
    responses(
        (status = 200, description = "Changed"),
        (status = 400, description = "sys, unknown tenant, a wrong old password, a locked tenant", body = ApiError)))]
async fn set_root_password(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<()> {
    normal(&state, &name).await?;
    let param: RootPasswordParam = from_json(&body)?;
    let new = param
        .new_password
        .ok_or_else(|| required(vec!["new_password"]))?;
    if name == "sys" {
        return Err(RestoreError::SysTenant.into());
    }
    on_tenant(&state, name, move |cluster, name| {
        let old = param.old_password.as_ref().map(|old| old.expose());
        Ok(cluster.set_root_password(name, new.expose(), old)?)
    })
    .await?;
    Ok(Reply::Done)
}

/// Record that the agent holds the root password, after checking it.
#[utoipa::path(post, path = "/api/v1/tenant/{name}/password/persist", tag = "tenant",
    params(("name" = String, Path, description = "Tenant name")),
    request_body = PersistPasswordParam,
    responses(
        (status = 200, description = "Recorded"),
        (status = 400, description = "Unknown tenant, not its password", body = ApiError)))]
async fn persist_root_password(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<()> {
    existing(&state, &name).await?;
    let param: PersistPasswordParam = from_json(&body)?;
    on_tenant(&state, name, move |cluster, name| {
        let password = param.password.as_ref().map(|p| p.expose()).unwrap_or("");
        Ok(cluster.persist_root_password(name, password)?)
    })
    .await?;
    Ok(Reply::Done)
}

/// Set system variables (`ALTER TENANT .. SET VARIABLES`), all or none. With
/// `tenant_password`, it must be the root password (obshell connects with it).
#[utoipa::path(put, path = "/api/v1/tenant/{name}/variables", tag = "tenant",
    params(("name" = String, Path, description = "Tenant name")),
    request_body = SetVariablesParam,
    responses(
        (status = 200, description = "Set"),
        (status = 400, description = "A bad value, a wrong tenant password", body = ApiError),
        (status = 404, description = "An unknown variable (OB.Tenant.Variable.NotExist)", body = ApiError)))]
async fn set_variables(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<()> {
    normal(&state, &name).await?;
    let param: SetVariablesParam = from_json(&body)?;
    let variables = param.variables.ok_or_else(|| required(vec!["variables"]))?;
    let variables = value_texts(&variables, "variables")?;
    on_tenant(&state, name, move |cluster, name| {
        if let Some(password) = &param.tenant_password {
            if !cluster.check_root_password(name, password.expose())? {
                return Err(ClusterError::RootPasswordIncorrect {
                    tenant: name.to_string(),
                }
                .into());
            }
        }
        Ok(cluster.set_variables(name, &variables)?)
    })
    .await?;
    Ok(Reply::Done)
}

/// The `filter` of a listing (SQL `LIKE`, default `%`); a query that does not bind (a
/// repeated `filter`) is a 400 in the envelope, never axum's plain-text rejection.
fn like_filter(query: Result<Query<FilterQuery>, QueryRejection>) -> Result<String, AppError> {
    let Query(query) = query.map_err(|err| AppError::illegal("filter", err.body_text()))?;
    Ok(query.filter.unwrap_or_else(|| "%".to_string()))
}

/// System variables whose name is `LIKE` `filter` (default `%`).
#[utoipa::path(get, path = "/api/v1/tenant/{name}/variables", tag = "tenant",
    params(("name" = String, Path, description = "Tenant name"), FilterQuery),
    responses(
        (status = 200, description = "`{contents:[variable]}` in `data`", body = Vec<VariableDto>),
        (status = 400, description = "Unknown tenant", body = ApiError)))]
async fn get_variables(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: Result<Query<FilterQuery>, QueryRejection>,
) -> ApiResult<Contents<VariableDto>> {
    let filter = like_filter(query)?;
    normal(&state, &name).await?;
    let contents = on_tenant(&state, name, move |cluster, name| {
        Ok(cluster
            .variables(name)?
            .iter()
            .filter(|variable| catalog::sql_like(&filter, &variable.name))
            .map(VariableDto::from)
            .collect())
    })
    .await?;
    Ok(Reply::Ok(Contents { contents }))
}

/// One system variable.
#[utoipa::path(get, path = "/api/v1/tenant/{name}/variable/{var}", tag = "tenant",
    params(("name" = String, Path, description = "Tenant name"),
           ("var" = String, Path, description = "Variable name")),
    responses(
        (status = 200, description = "The variable in `data`", body = VariableDto),
        (status = 400, description = "Unknown tenant", body = ApiError),
        (status = 404, description = "Unknown variable", body = ApiError)))]
async fn get_variable(
    State(state): State<AppState>,
    Path((name, variable)): Path<(String, String)>,
) -> ApiResult<VariableDto> {
    normal(&state, &name).await?;
    let found = on_tenant(&state, name, move |cluster, name| {
        Ok(cluster.variable(name, &variable)?)
    })
    .await?;
    Ok(Reply::Ok(VariableDto::from(&found)))
}

/// Set tenant parameters (`ALTER SYSTEM SET .. TENANT = ..`), all or none.
#[utoipa::path(put, path = "/api/v1/tenant/{name}/parameters", tag = "tenant",
    params(("name" = String, Path, description = "Tenant name")),
    request_body = SetParametersParam,
    responses(
        (status = 200, description = "Set"),
        (status = 400, description = "An unknown parameter or a bad value", body = ApiError)))]
async fn set_parameters(
    State(state): State<AppState>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<()> {
    normal(&state, &name).await?;
    let param: SetParametersParam = from_json(&body)?;
    let parameters = param
        .parameters
        .ok_or_else(|| required(vec!["parameters"]))?;
    let parameters = value_texts(&parameters, "parameters")?;
    on_tenant(&state, name, move |cluster, name| {
        Ok(cluster.set_parameters(name, &parameters)?)
    })
    .await?;
    Ok(Reply::Done)
}

/// Tenant parameters whose name is `LIKE` `filter` (default `%`).
#[utoipa::path(get, path = "/api/v1/tenant/{name}/parameters", tag = "tenant",
    params(("name" = String, Path, description = "Tenant name"), FilterQuery),
    responses(
        (status = 200, description = "`{contents:[parameter]}` in `data`", body = Vec<ParameterDto>),
        (status = 400, description = "Unknown tenant", body = ApiError)))]
async fn get_parameters(
    State(state): State<AppState>,
    Path(name): Path<String>,
    query: Result<Query<FilterQuery>, QueryRejection>,
) -> ApiResult<Contents<ParameterDto>> {
    let filter = like_filter(query)?;
    normal(&state, &name).await?;
    let contents = on_tenant(&state, name, move |cluster, name| {
        Ok(cluster
            .parameters(name)?
            .iter()
            .filter(|parameter| catalog::sql_like(&filter, &parameter.name))
            .map(ParameterDto::from)
            .collect())
    })
    .await?;
    Ok(Reply::Ok(Contents { contents }))
}

/// One tenant parameter.
#[utoipa::path(get, path = "/api/v1/tenant/{name}/parameter/{para}", tag = "tenant",
    params(("name" = String, Path, description = "Tenant name"),
           ("para" = String, Path, description = "Parameter name")),
    responses(
        (status = 200, description = "The parameter in `data`", body = ParameterDto),
        (status = 400, description = "Unknown tenant or parameter", body = ApiError)))]
async fn get_parameter(
    State(state): State<AppState>,
    Path((name, parameter)): Path<(String, String)>,
) -> ApiResult<ParameterDto> {
    normal(&state, &name).await?;
    let found = on_tenant(&state, name, move |cluster, name| {
        Ok(cluster.parameter(name, &parameter)?)
    })
    .await?;
    Ok(Reply::Ok(ParameterDto::from(&found)))
}

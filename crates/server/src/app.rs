//! `app(state) -> Router`: every endpoint of SPEC §3, the envelope middleware and the
//! auth middleware. Handlers are thin: decode ids and bodies, call the agent (the
//! cluster's blocking methods on the blocking pool), wrap the result.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, FromRequest, Path, Query, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use chrono::{DateTime, Utc};
use obrestore_backup::{
    plan_restore, restore_windows, ArchiveStore, DataStore, RestorePreviewItem, RestoreTarget,
    RestoreWindowsDto, StorageUri,
};
use obrestore_dag::{DagDetailDto, NodeDetailDto, Operator, TaskDetailDto, TaskLogDto};
use obrestore_restore::agent::{RestoreAgent, RestoreOverview};
use obrestore_restore::{ClusterError, RestoreParam, SledCluster, TenantService};
use serde::de::DeserializeOwned;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{AuthError, Authenticator, HEADER_V1, HEADER_V2};
use crate::dto::*;
use crate::envelope::{
    new_trace_id, ApiError, ApiResult, AppError, Contents, Reply, RequestMeta, REQUEST_META,
};
use crate::openapi::*;

/// The obshell version this API is compatible with (`GET /api/v1/info`).
pub const OBSHELL_COMPAT_VERSION: &str = "4.2.4.0";
/// The obshell identity the agent reports.
pub const IDENTITY: &str = "CLUSTER AGENT";
/// Largest request body accepted (before decryption).
pub const MAX_BODY_BYTES: usize = 16 << 20;
/// Paths that never need auth.
pub const PUBLIC_PATHS: [&str; 4] = [
    "/api/v1/info",
    "/api/v1/secret",
    "/api/v1/status",
    "/api/v1/openapi.json",
];
/// The sled tree of the tenants' backup destinations.
pub const BACKUP_CONFIG_TREE: &str = "server/backup_config";

/// Why the server state could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("opening the server's sled tree: {0}")]
    Store(#[from] sled::Error),
}

/// Shared state of the handlers.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    agent: RestoreAgent,
    auth: Authenticator,
    backup_configs: sled::Tree,
    started_at: DateTime<Utc>,
}

impl AppState {
    /// State over `agent` authenticating with `auth`.
    ///
    /// # Errors
    /// The server's sled tree could not be opened.
    pub fn new(agent: RestoreAgent, auth: Authenticator) -> Result<AppState, ServerError> {
        let backup_configs = agent.db().open_tree(BACKUP_CONFIG_TREE)?;
        Ok(AppState {
            inner: Arc::new(Inner {
                agent,
                auth,
                backup_configs,
                started_at: Utc::now(),
            }),
        })
    }

    /// The agent.
    pub fn agent(&self) -> &RestoreAgent {
        &self.inner.agent
    }

    /// The authenticator.
    pub fn auth(&self) -> &Authenticator {
        &self.inner.auth
    }

    fn address(&self) -> (String, u16) {
        let agent = &self.inner.agent.config().agent;
        (agent.ip.to_string(), agent.port)
    }

    /// Runs a blocking cluster call on the blocking pool.
    async fn cluster<T, F>(&self, call: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&SledCluster) -> Result<T, AppError> + Send + 'static,
    {
        let cluster = Arc::clone(self.agent().cluster());
        tokio::task::spawn_blocking(move || call(&cluster))
            .await
            .map_err(|err| AppError::Internal(format!("blocking task failed: {err}")))?
    }

    fn backup_config(&self, tenant: &str) -> Result<Option<BackupConfigParam>, AppError> {
        let Some(raw) = self.inner.backup_configs.get(tenant.as_bytes())? else {
            return Ok(None);
        };
        serde_json::from_slice(&raw)
            .map(Some)
            .map_err(|err| AppError::Internal(format!("stored backup config of '{tenant}': {err}")))
    }
}

impl From<sled::Error> for AppError {
    fn from(err: sled::Error) -> AppError {
        AppError::Internal(format!("storage: {err}"))
    }
}

/// A JSON body, read whatever its content type (obshell clients send encrypted bodies
/// as text, and `GET /api/v1/restore/windows` carries one too). An empty body is `{}`.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|err| AppError::BindJson(format!("reading the body: {err}")))?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        serde_json::from_slice(bytes)
            .map(JsonBody)
            .map_err(|err| AppError::BindJson(format!("invalid JSON body: {err}")))
    }
}

/// The router with every endpoint and its OpenAPI document.
fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(get_info))
        .routes(routes!(get_secret))
        .routes(routes!(get_status))
        .routes(routes!(get_openapi))
        .routes(routes!(start_restore))
        .routes(routes!(cancel_restore))
        .routes(routes!(restore_overview))
        .routes(routes!(get_restore_windows))
        .routes(routes!(restore_preview))
        .routes(routes!(set_backup_config))
        .routes(routes!(get_dag, operate_dag))
        .routes(routes!(get_node, operate_node))
        .routes(routes!(get_sub_task))
        .routes(routes!(get_sub_task_logs))
        .routes(routes!(unfinished_dags))
        .routes(routes!(unfinished_ob_dags))
        .routes(routes!(unfinished_agent_dags))
        .routes(routes!(create_unit_config))
        .routes(routes!(get_unit_config, drop_unit_config))
        .routes(routes!(list_unit_configs))
        .routes(routes!(get_tenant, drop_tenant))
        .routes(routes!(tenants_overview))
        .routes(routes!(list_resource_pools))
        .routes(routes!(get_resource_pool, drop_resource_pool))
}

/// The OpenAPI document of [`app`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().split_for_parts().1
}

/// The agent's HTTP application.
pub fn app(state: AppState) -> Router {
    let (router, doc) = api_router().split_for_parts();
    let doc = Arc::new(doc);
    router
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(Extension(doc))
        .layer(middleware::from_fn(envelope_meta))
        .with_state(state)
}

/// Outermost middleware: trace id and start time for the envelope, one log line per
/// request (method, path without query, status, duration — never headers or bodies).
async fn envelope_meta(req: Request, next: Next) -> Response {
    let meta = RequestMeta {
        trace_id: new_trace_id(),
        start: Instant::now(),
    };
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let trace_id = meta.trace_id.clone();
    let start = meta.start;
    let response = REQUEST_META.scope(meta, next.run(req)).await;
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        duration_ms = start.elapsed().as_millis() as u64,
        trace_id,
        "request"
    );
    response
}

/// Auth middleware (SPEC §3): verifies `X-OCS-Header` (v2, then decrypts the body) or
/// `X-OCS-Auth` (v1). Without either, only public paths, or any path when the agent
/// has no password, pass. A failure answers 401 and nothing runs.
async fn authenticate(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match check_request(&state, req).await {
        Ok(req) => next.run(req).await,
        Err(err) => err.into_response(),
    }
}

async fn check_request(state: &AppState, req: Request) -> Result<Request, AppError> {
    let auth = state.auth();
    let v2 = req.headers().get(HEADER_V2).map(header_text);
    let v1 = req.headers().get(HEADER_V1).map(header_text);
    let public = PUBLIC_PATHS.contains(&req.uri().path());
    if public || (v2.is_none() && v1.is_none() && !auth.password_required()) {
        return Ok(req);
    }
    let peer: Option<IpAddr> = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.ip());
    let request_uri = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| req.uri().path().to_string());
    let result = match (v2, v1) {
        (Some(header), _) => {
            auth.admit(peer)?;
            match auth.verify_v2(&header, &request_uri) {
                Ok(verified) => decrypt_body(req, &verified.body).await,
                Err(err) => Err(err.into()),
            }
        }
        (None, Some(header)) => {
            auth.admit(peer)?;
            auth.verify_v1(&header)
                .map(|()| req)
                .map_err(AppError::from)
        }
        (None, None) => Err(AuthError::Missing.into()),
    };
    if let Err(AppError::Auth(err)) = &result {
        if !matches!(err, AuthError::Missing | AuthError::RateLimited { .. }) {
            auth.record_failure(peer);
        }
        tracing::warn!(err_code = err.err_code(), "authentication failed");
    }
    result
}

fn header_text(value: &HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}

async fn decrypt_body(req: Request, cipher: &crate::auth::BodyCipher) -> Result<Request, AppError> {
    let (mut parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|err| AppError::BindJson(format!("reading the body: {err}")))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Request::from_parts(parts, Body::from(bytes)));
    }
    let plain = cipher.decrypt_body(&bytes)?;
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(Request::from_parts(parts, Body::from(plain)))
}

fn show_details(query: Result<Query<ShowDetailsQuery>, QueryRejection>) -> Result<bool, AppError> {
    match query {
        Ok(Query(query)) => Ok(query.show_details.unwrap_or(true)),
        Err(err) => Err(AppError::illegal(format!(
            "show_details: must be true or false ({err})"
        ))),
    }
}

fn parse_operator(text: &str) -> Result<Operator, AppError> {
    text.parse().map_err(
        |err: obrestore_dag::model::UnknownOperator| AppError::IllegalArgument {
            err_code: "Task.Dag.Operator.NotSupport",
            message: format!("operator: {err}"),
        },
    )
}

// ---------------------------------------------------------------- agent

/// Agent identity.
#[utoipa::path(get, path = "/api/v1/info", tag = "agent", security(()),
    responses((status = 200, description = "Agent info in `data`", body = AgentInfoDto)))]
async fn get_info(State(state): State<AppState>) -> ApiResult<AgentInfoDto> {
    let (ip, port) = state.address();
    let zone = state
        .cluster(|cluster| Ok(cluster.list_zones()?))
        .await?
        .first()
        .map(|zone| zone.name.clone())
        .unwrap_or_default();
    Ok(Reply::Ok(AgentInfoDto {
        ip,
        port,
        zone,
        identity: IDENTITY.to_string(),
        version: OBSHELL_COMPAT_VERSION.to_string(),
        supported_auth: vec!["v1".to_string(), "v2".to_string()],
        security: state.auth().password_required(),
        is_obproxy_agent: false,
    }))
}

/// The agent's RSA public key for API hybrid encryption.
#[utoipa::path(get, path = "/api/v1/secret", tag = "agent", security(()),
    responses((status = 200, description = "Public key in `data`", body = SecretDto)))]
async fn get_secret(State(state): State<AppState>) -> ApiResult<SecretDto> {
    let (ip, port) = state.address();
    Ok(Reply::Ok(SecretDto {
        ip,
        port,
        public_key: state.auth().key().public_key_base64().to_string(),
    }))
}

/// Agent status.
#[utoipa::path(get, path = "/api/v1/status", tag = "agent", security(()),
    responses((status = 200, description = "Status in `data`", body = AgentStatusDto)))]
async fn get_status(State(state): State<AppState>) -> ApiResult<AgentStatusDto> {
    let unfinished = state.agent().engine().unfinished_dags()?;
    Ok(Reply::Ok(AgentStatusDto {
        pid: std::process::id(),
        state: 2,
        start_at: state.inner.started_at.timestamp_millis(),
        port: state.address().1,
        version: OBSHELL_COMPAT_VERSION.to_string(),
        under_maintenance: unfinished.iter().any(|dag| dag.state != "FAILED"),
        unfinished_dags: unfinished.len(),
    }))
}

/// This document (not wrapped in the envelope).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "agent", security(()),
    responses((status = 200, description = "OpenAPI 3 document")))]
async fn get_openapi(Extension(doc): Extension<Arc<utoipa::openapi::OpenApi>>) -> Response {
    axum::Json(doc.as_ref().clone()).into_response()
}

// ---------------------------------------------------------------- restore

/// Start a tenant restore: validates the parameters (SPEC §4.1, 400 naming the field),
/// plans the sources and submits the restore DAG (409 if one runs for the tenant).
#[utoipa::path(post, path = "/api/v1/tenant/restore", tag = "restore",
    request_body = RestoreParamSchema,
    responses(
        (status = 200, description = "DagDetailDTO (show_details=false) in `data`", body = DagDetailSchema),
        (status = 400, description = "Invalid parameter", body = ApiError),
        (status = 409, description = "A restore of the tenant is running", body = ApiError)))]
async fn start_restore(
    State(state): State<AppState>,
    JsonBody(param): JsonBody<RestoreParam>,
) -> ApiResult<DagDetailDto> {
    Ok(Reply::Ok(state.agent().start_restore(param).await?))
}

/// Cancel the tenant's restore, then roll it back (drops the restoring tenant and pools).
#[utoipa::path(delete, path = "/api/v1/tenant/{name}/restore", tag = "restore",
    params(("name" = String, Path, description = "Restored tenant name")),
    responses(
        (status = 200, description = "The rolling-back DagDetailDTO in `data`", body = DagDetailSchema),
        (status = 204, description = "No unfinished restore of that tenant")))]
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
        (status = 200, description = "Overview in `data`", body = RestoreOverviewSchema),
        (status = 404, description = "No restore of that tenant", body = ApiError)))]
async fn restore_overview(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<RestoreOverview> {
    match state.agent().restore_overview(&name)? {
        Some(overview) => Ok(Reply::Ok(overview)),
        None => Err(AppError::NotFound {
            err_code: "OB.Restore.Task.NotExist",
            message: format!("no restore of tenant '{name}' is known"),
        }),
    }
}

/// Restorable time windows of a backup (a GET with a JSON body, as obshell).
#[utoipa::path(get, path = "/api/v1/restore/windows", tag = "restore",
    request_body = RestoreWindowsParam,
    responses(
        (status = 200, description = "`{restore_windows:[{start_time,end_time}]}` in `data`", body = RestoreWindowsSchema),
        (status = 400, description = "Bad URI or unreadable backup", body = ApiError)))]
async fn get_restore_windows(
    State(state): State<AppState>,
    JsonBody(param): JsonBody<RestoreWindowsParam>,
) -> ApiResult<RestoreWindowsDto> {
    if param.data_backup_uri.trim().is_empty() {
        return Err(AppError::illegal("data_backup_uri: required"));
    }
    let archive = param
        .archive_log_uri
        .clone()
        .filter(|uri| !uri.trim().is_empty())
        .unwrap_or_else(|| param.data_backup_uri.clone());
    let roots = state.agent().allowed_roots().clone();
    let windows = tokio::task::spawn_blocking(move || {
        let data = DataStore::open_uri(&param.data_backup_uri, &roots)?;
        let archive = ArchiveStore::open_uri(&archive, &roots)?;
        restore_windows(&data, &archive)
    })
    .await
    .map_err(|err| AppError::Internal(err.to_string()))??;
    Ok(Reply::Ok(RestoreWindowsDto::from_windows(&windows)))
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
        return Err(AppError::illegal(format!(
            "id: cluster id '{cluster_id}' is not an integer"
        )));
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
            return Err(AppError::illegal(format!(
                "backupTenantStatus: '{other}' is not ONLINE or OFFLINE"
            )))
        }
    };
    let roots = state.agent().allowed_roots().clone();
    let passwords = param.decryption.clone();
    let items = tokio::task::spawn_blocking(move || {
        let target = RestoreTarget::from_params(None, end_time.as_deref())?;
        let data = DataStore::open_uri(&data_uri, &roots)?;
        let archive = ArchiveStore::open_uri(&archive_uri, &roots)?;
        Ok::<_, obrestore_backup::BackupError>(
            plan_restore(&data, &archive, &target, &passwords)?.preview_items(),
        )
    })
    .await
    .map_err(|err| AppError::Internal(err.to_string()))??;
    Ok(Reply::Ok(Contents { contents: items }))
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
                "restoreOnlineTenantRequiredParam: required when backupTenantStatus is ONLINE",
            )
        })?;
    let tenant_id = online.backup_tenant_id.ok_or_else(|| {
        AppError::illegal("restoreOnlineTenantRequiredParam.backupTenantId: required")
    })?;
    let tenant = state
        .cluster(move |cluster| Ok(cluster.tenant_by_id(tenant_id)?))
        .await?
        .ok_or(AppError::Cluster(ClusterError::TenantIdNotFound(tenant_id)))?;
    let config = state.backup_config(&tenant.name)?.ok_or_else(|| {
        AppError::illegal(format!(
            "tenant '{}' (id {tenant_id}) has no backup destination; set it with POST /api/v1/tenant/{}/backup/config",
            tenant.name, tenant.name
        ))
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
                "restoreOfflineTenantRequiredParam: required when backupTenantStatus is OFFLINE",
            )
        })?;
    let storage = offline
        .ob_backup_storage_base_info
        .as_ref()
        .ok_or_else(|| {
            AppError::illegal("restoreOfflineTenantRequiredParam.obBackupStorageBaseInfo: required")
        })?;
    if let Some(kind) = &storage.storage_type {
        if !kind.eq_ignore_ascii_case("FILE") && !kind.eq_ignore_ascii_case("NFS") {
            return Err(AppError::illegal(format!(
                "obBackupStorageBaseInfo.storageType: unsupported storage type '{kind}' (FILE or NFS)"
            )));
        }
    }
    if storage.data_base_uri.trim().is_empty() {
        return Err(AppError::illegal(
            "obBackupStorageBaseInfo.dataBaseUri: required",
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

/// Set a tenant's backup destinations (used by the ONLINE preview).
#[utoipa::path(post, path = "/api/v1/tenant/{name}/backup/config", tag = "restore",
    params(("name" = String, Path, description = "Tenant name")),
    request_body = BackupConfigParam,
    responses(
        (status = 200, description = "The stored destinations in `data`", body = BackupConfigParam),
        (status = 400, description = "Bad URI", body = ApiError),
        (status = 404, description = "Unknown tenant", body = ApiError)))]
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
            return Err(AppError::illegal(format!("{field}: required")));
        }
        let parsed =
            StorageUri::parse(uri).map_err(|err| AppError::illegal(format!("{field}: {err}")))?;
        state
            .agent()
            .allowed_roots()
            .resolve(&parsed)
            .map_err(|err| AppError::illegal(format!("{field}: {err}")))?;
    }
    let tenant = name.clone();
    state
        .cluster(move |cluster| {
            cluster
                .tenant(&tenant)?
                .ok_or(AppError::Cluster(ClusterError::TenantNotFound(
                    tenant.clone(),
                )))
        })
        .await?;
    let raw = serde_json::to_vec(&param).map_err(|err| AppError::Internal(err.to_string()))?;
    state.inner.backup_configs.insert(name.as_bytes(), raw)?;
    state.inner.backup_configs.flush_async().await?;
    Ok(Reply::Ok(param))
}

// ---------------------------------------------------------------- tasks

/// DAG detail.
#[utoipa::path(get, path = "/api/v1/task/dag/{id}", tag = "task",
    params(("id" = String, Path, description = "Generic id of the DAG"), ShowDetailsQuery),
    responses(
        (status = 200, description = "DagDetailDTO in `data`", body = DagDetailSchema),
        (status = 400, description = "Malformed generic id", body = ApiError),
        (status = 404, description = "Unknown DAG", body = ApiError)))]
async fn get_dag(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<Query<ShowDetailsQuery>, QueryRejection>,
) -> ApiResult<DagDetailDto> {
    let engine = state.agent().engine();
    let dag_id = engine.decode_id(&id)?;
    Ok(Reply::Ok(engine.dag_detail(dag_id, show_details(query)?)?))
}

/// Apply RETRY, ROLLBACK, CANCEL or PASS to a DAG.
#[utoipa::path(post, path = "/api/v1/task/dag/{id}", tag = "task",
    params(("id" = String, Path, description = "Generic id of the DAG")),
    request_body = OperatorParam,
    responses(
        (status = 200, description = "DagDetailDTO (show_details=false) after the operator", body = DagDetailSchema),
        (status = 400, description = "Malformed id or unknown operator", body = ApiError),
        (status = 404, description = "Unknown DAG", body = ApiError),
        (status = 409, description = "Operator not allowed now; the message says why", body = ApiError)))]
async fn operate_dag(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(param): JsonBody<OperatorParam>,
) -> ApiResult<DagDetailDto> {
    let engine = state.agent().engine();
    let dag_id = engine.decode_id(&id)?;
    let operator = parse_operator(&param.operator)?;
    engine.dag_record(dag_id)?;
    engine.operate(dag_id, operator).await?;
    Ok(Reply::Ok(engine.dag_detail(dag_id, false)?))
}

/// Node detail with its sub-tasks.
#[utoipa::path(get, path = "/api/v1/task/node/{id}", tag = "task",
    params(("id" = String, Path, description = "Generic id of the node")),
    responses(
        (status = 200, description = "NodeDetailDTO in `data`", body = NodeDetailSchema),
        (status = 400, description = "Malformed generic id", body = ApiError),
        (status = 404, description = "Unknown node", body = ApiError)))]
async fn get_node(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<NodeDetailDto> {
    let engine = state.agent().engine();
    let node_id = engine.decode_id(&id)?;
    Ok(Reply::Ok(engine.node_detail(node_id)?))
}

/// PASS a failed node; the DAG continues downstream.
#[utoipa::path(post, path = "/api/v1/task/node/{id}", tag = "task",
    params(("id" = String, Path, description = "Generic id of the node")),
    request_body = OperatorParam,
    responses(
        (status = 200, description = "NodeDetailDTO after the operator", body = NodeDetailSchema),
        (status = 400, description = "Malformed id or an operator other than PASS", body = ApiError),
        (status = 404, description = "Unknown node", body = ApiError),
        (status = 409, description = "PASS not allowed now", body = ApiError)))]
async fn operate_node(
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(param): JsonBody<OperatorParam>,
) -> ApiResult<NodeDetailDto> {
    let engine = state.agent().engine();
    let node_id = engine.decode_id(&id)?;
    let operator = parse_operator(&param.operator)?;
    if operator != Operator::Pass {
        return Err(AppError::IllegalArgument {
            err_code: "Task.Node.Operator.NotSupport",
            message: format!("operator: a node only supports PASS, not {operator}"),
        });
    }
    engine.node_detail(node_id)?;
    engine
        .pass_node(node_id)
        .await
        .map_err(AppError::node_operate)?;
    Ok(Reply::Ok(engine.node_detail(node_id)?))
}

/// Sub-task detail with its logs.
#[utoipa::path(get, path = "/api/v1/task/sub_task/{id}", tag = "task",
    params(("id" = String, Path, description = "Generic id of the sub-task")),
    responses(
        (status = 200, description = "TaskDetailDTO in `data`", body = TaskDetailSchema),
        (status = 400, description = "Malformed generic id", body = ApiError),
        (status = 404, description = "Unknown sub-task", body = ApiError)))]
async fn get_sub_task(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<TaskDetailDto> {
    let engine = state.agent().engine();
    let task_id = engine.decode_id(&id)?;
    Ok(Reply::Ok(engine.task_detail(task_id)?))
}

/// Log rows of a sub-task, every execution.
#[utoipa::path(get, path = "/api/v1/task/sub_task/{id}/logs", tag = "task",
    params(("id" = String, Path, description = "Generic id of the sub-task")),
    responses(
        (status = 200, description = "`{contents:[log row]}` in `data`", body = Vec<TaskLogSchema>),
        (status = 400, description = "Malformed generic id", body = ApiError),
        (status = 404, description = "Unknown sub-task", body = ApiError)))]
async fn get_sub_task_logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Contents<TaskLogDto>> {
    let engine = state.agent().engine();
    let task_id = engine.decode_id(&id)?;
    Ok(Reply::Ok(Contents {
        contents: engine.task_logs(task_id)?,
    }))
}

fn unfinished(state: &AppState) -> ApiResult<Contents<DagDetailDto>> {
    Ok(Reply::Ok(Contents {
        contents: state.agent().engine().unfinished_dags()?,
    }))
}

/// Unfinished DAGs (running, waiting, or FAILED awaiting an operator).
#[utoipa::path(get, path = "/api/v1/task/dag/unfinish", tag = "task",
    responses((status = 200, description = "`{contents:[DagDetailDTO]}` in `data`", body = Vec<DagDetailSchema>)))]
async fn unfinished_dags(State(state): State<AppState>) -> ApiResult<Contents<DagDetailDto>> {
    unfinished(&state)
}

/// Unfinished cluster DAGs: always empty, every DAG of this agent is agent-local.
#[utoipa::path(get, path = "/api/v1/task/dag/ob/unfinish", tag = "task",
    responses((status = 200, description = "`{contents:[]}` in `data`", body = Vec<DagDetailSchema>)))]
async fn unfinished_ob_dags() -> ApiResult<Contents<DagDetailDto>> {
    Ok(Reply::Ok(Contents {
        contents: Vec::new(),
    }))
}

/// Unfinished agent-local DAGs.
#[utoipa::path(get, path = "/api/v1/task/dag/agent/unfinish", tag = "task",
    responses((status = 200, description = "`{contents:[DagDetailDTO]}` in `data`", body = Vec<DagDetailSchema>)))]
async fn unfinished_agent_dags(State(state): State<AppState>) -> ApiResult<Contents<DagDetailDto>> {
    unfinished(&state)
}

// ---------------------------------------------------------------- unit configs

/// Create a unit config.
#[utoipa::path(post, path = "/api/v1/unit/config", tag = "resource",
    request_body = UnitConfigParam,
    responses(
        (status = 200, description = "The unit config in `data`", body = UnitConfigDto),
        (status = 400, description = "Invalid field", body = ApiError),
        (status = 409, description = "Already exists", body = ApiError)))]
async fn create_unit_config(
    State(state): State<AppState>,
    JsonBody(param): JsonBody<UnitConfigParam>,
) -> ApiResult<UnitConfigDto> {
    let new = param.to_new()?;
    let config = state
        .cluster(move |cluster| Ok(cluster.create_unit_config(&new)?))
        .await?;
    Ok(Reply::Ok(UnitConfigDto::from(&config)))
}

/// One unit config.
#[utoipa::path(get, path = "/api/v1/unit/config/{name}", tag = "resource",
    params(("name" = String, Path, description = "Unit config name")),
    responses(
        (status = 200, description = "The unit config in `data`", body = UnitConfigDto),
        (status = 404, description = "Unknown unit config", body = ApiError)))]
async fn get_unit_config(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<UnitConfigDto> {
    let config = state
        .cluster(move |cluster| {
            cluster
                .unit_config(&name)?
                .ok_or(AppError::Cluster(ClusterError::UnitConfigNotFound(name)))
        })
        .await?;
    Ok(Reply::Ok(UnitConfigDto::from(&config)))
}

/// Drop a unit config (204 if it does not exist; 409 while a pool uses it).
#[utoipa::path(delete, path = "/api/v1/unit/config/{name}", tag = "resource",
    params(("name" = String, Path, description = "Unit config name")),
    responses(
        (status = 200, description = "Dropped"),
        (status = 204, description = "No such unit config"),
        (status = 409, description = "Used by a resource pool", body = ApiError)))]
async fn drop_unit_config(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<()> {
    let dropped = state
        .cluster(move |cluster| Ok(cluster.drop_unit_config(&name)?))
        .await?;
    Ok(if dropped {
        Reply::Ok(())
    } else {
        Reply::NoContent
    })
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

// ---------------------------------------------------------------- tenants

/// One tenant.
#[utoipa::path(get, path = "/api/v1/tenant/{name}", tag = "tenant",
    params(("name" = String, Path, description = "Tenant name")),
    responses(
        (status = 200, description = "The tenant in `data`", body = TenantDto),
        (status = 404, description = "Unknown tenant", body = ApiError)))]
async fn get_tenant(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<TenantDto> {
    let tenant = state
        .cluster(move |cluster| {
            cluster
                .tenant(&name)?
                .ok_or(AppError::Cluster(ClusterError::TenantNotFound(name)))
        })
        .await?;
    Ok(Reply::Ok(TenantDto::from(&tenant)))
}

/// Drop a tenant, its rows and its resource pools (204 if it does not exist; 409 while
/// it is being restored — cancel the restore with DELETE /api/v1/tenant/:name/restore).
#[utoipa::path(delete, path = "/api/v1/tenant/{name}", tag = "tenant",
    params(("name" = String, Path, description = "Tenant name")),
    responses(
        (status = 200, description = "Dropped"),
        (status = 204, description = "No such tenant"),
        (status = 409, description = "The tenant is being restored", body = ApiError)))]
async fn drop_tenant(State(state): State<AppState>, Path(name): Path<String>) -> ApiResult<()> {
    let dropped = state
        .cluster(move |cluster| {
            if let Some(job) = cluster.active_restore_job(&name)? {
                return Err(AppError::Conflict {
                    err_code: "OB.Tenant.UnderMaintenance",
                    message: format!(
                        "tenant '{name}' is being restored (restore job {}); cancel it with DELETE /api/v1/tenant/{name}/restore",
                        job.job_id
                    ),
                });
            }
            let Some(tenant) = cluster.tenant(&name)? else {
                return Ok(false);
            };
            cluster.drop_tenant(&name)?;
            cluster.drop_pools(&tenant.pool_names)?;
            Ok(true)
        })
        .await?;
    Ok(if dropped {
        Reply::Ok(())
    } else {
        Reply::NoContent
    })
}

/// All tenants.
#[utoipa::path(get, path = "/api/v1/tenants/overview", tag = "tenant",
    responses((status = 200, description = "`{contents:[tenant]}` in `data`", body = Vec<TenantDto>)))]
async fn tenants_overview(State(state): State<AppState>) -> ApiResult<Contents<TenantDto>> {
    let tenants = state.cluster(|cluster| Ok(cluster.list_tenants()?)).await?;
    Ok(Reply::Ok(Contents {
        contents: tenants.iter().map(TenantDto::from).collect(),
    }))
}

// ---------------------------------------------------------------- resource pools

/// All resource pools.
#[utoipa::path(get, path = "/api/v1/resource-pools", tag = "resource",
    responses((status = 200, description = "`{contents:[pool]}` in `data`", body = Vec<ResourcePoolDto>)))]
async fn list_resource_pools(
    State(state): State<AppState>,
) -> ApiResult<Contents<ResourcePoolDto>> {
    let pools = state.cluster(|cluster| Ok(cluster.list_pools()?)).await?;
    Ok(Reply::Ok(Contents {
        contents: pools.iter().map(ResourcePoolDto::from).collect(),
    }))
}

/// One resource pool.
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
            cluster
                .pool(&name)?
                .ok_or(AppError::Cluster(ClusterError::PoolNotFound(name)))
        })
        .await?;
    Ok(Reply::Ok(ResourcePoolDto::from(&pool)))
}

/// Drop a resource pool (204 if it does not exist; 409 while granted to a tenant).
#[utoipa::path(delete, path = "/api/v1/resource-pool/{name}", tag = "resource",
    params(("name" = String, Path, description = "Pool name")),
    responses(
        (status = 200, description = "Dropped"),
        (status = 204, description = "No such pool"),
        (status = 409, description = "Granted to a tenant", body = ApiError)))]
async fn drop_resource_pool(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<()> {
    let dropped = state
        .cluster(move |cluster| Ok(cluster.drop_pools(std::slice::from_ref(&name))?))
        .await?;
    Ok(if dropped > 0 {
        Reply::Ok(())
    } else {
        Reply::NoContent
    })
}

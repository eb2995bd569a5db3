//! The agent itself: `/info`, `/status`, `/secret`, `/ob/info`, `/openapi.json`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Extension;
use obrestore_dag::Scope;
use obrestore_restore::TenantService;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::app::{AppState, IDENTITY, OBSHELL_COMPAT_VERSION};
use crate::dto::{
    AgentIdentityDto, AgentInfoDto, AgentInstanceDto, AgentStatusDto, ClusterInfoDto, ObInfoDto,
    SecretDto, ServerConfigDto, CLUSTER_ID, CLUSTER_NAME,
};
use crate::envelope::{ApiResult, Reply};

/// obshell's agent state "running".
const STATE_RUNNING: i32 = 2;
/// obshell's OceanBase state "connection available".
const OB_STATE_AVAILABLE: i32 = 3;

/// Adds the routes of this area.
pub fn routes(router: OpenApiRouter<AppState>) -> OpenApiRouter<AppState> {
    router
        .routes(routes!(get_info))
        .routes(routes!(get_secret))
        .routes(routes!(get_status, post_status))
        .routes(routes!(get_openapi))
        .routes(routes!(get_ob_info))
}

async fn first_zone(state: &AppState) -> String {
    state
        .cluster(|cluster| Ok(cluster.list_zones()?))
        .await
        .ok()
        .and_then(|zones| zones.first().map(|zone| zone.name.clone()))
        .unwrap_or_default()
}

/// Who answers `/info` and `/status`: always the agent asked, so in cluster mode a
/// follower answers these itself with its own address and zone (`crate::forward`).
#[derive(Debug, Clone)]
pub struct Identity {
    pub ip: String,
    pub port: u16,
    pub zone: String,
    pub home_path: String,
    pub password_required: bool,
    pub started_at: chrono::DateTime<chrono::Utc>,
}

impl Identity {
    fn info(&self) -> AgentInfoDto {
        AgentInfoDto {
            ip: self.ip.clone(),
            port: self.port,
            zone: self.zone.clone(),
            identity: IDENTITY.to_string(),
            version: OBSHELL_COMPAT_VERSION.to_string(),
            pid: std::process::id(),
            state: STATE_RUNNING,
            start_at: self.started_at.timestamp_nanos_opt().unwrap_or(0),
            home_path: self.home_path.clone(),
            ob_version: OBSHELL_COMPAT_VERSION.to_string(),
            architecture: std::env::consts::ARCH.to_string(),
            is_obproxy_agent: false,
            security: self.password_required,
            supported_auth: vec!["v2".to_string()],
        }
    }

    fn status(&self, under_maintenance: bool) -> AgentStatusDto {
        AgentStatusDto {
            agent: AgentIdentityDto {
                ip: self.ip.clone(),
                port: self.port,
                identity: IDENTITY.to_string(),
            },
            state: STATE_RUNNING,
            version: OBSHELL_COMPAT_VERSION.to_string(),
            pid: std::process::id(),
            start_at: self.started_at.timestamp_nanos_opt().unwrap_or(0),
            port: self.port,
            ob_state: OB_STATE_AVAILABLE,
            under_maintenance,
        }
    }

    /// A follower's own answer to `GET /api/v1/info` and `GET|POST /api/v1/status`
    /// (`None` for every other request, which goes to the maintainer). A follower runs
    /// no DAG, so it is never under maintenance.
    pub fn follower_answer(&self, method: &axum::http::Method, path: &str) -> Option<Response> {
        use axum::http::Method;
        match (method, path) {
            (&Method::GET, "/api/v1/info") => Some(Reply::Ok(self.info()).into_response()),
            (&Method::GET | &Method::POST, "/api/v1/status") => {
                Some(Reply::Ok(self.status(false)).into_response())
            }
            _ => None,
        }
    }
}

async fn identity(state: &AppState) -> Identity {
    let (ip, port) = state.address();
    let zone = match state.cluster_view() {
        Some(view) => view.zone.clone(),
        None => first_zone(state).await,
    };
    Identity {
        ip,
        port,
        zone,
        home_path: state.agent().config().data_dir.display().to_string(),
        password_required: state.auth().password_required(),
        started_at: state.started_at(),
    }
}

/// Agent identity (obshell's `meta.AgentStatus`).
#[utoipa::path(get, path = "/api/v1/info", tag = "agent", security(()),
    responses((status = 200, description = "Agent info in `data`", body = AgentInfoDto)))]
async fn get_info(State(state): State<AppState>) -> ApiResult<AgentInfoDto> {
    Ok(Reply::Ok(identity(&state).await.info()))
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

async fn status(state: &AppState) -> ApiResult<AgentStatusDto> {
    let engine = state.agent().engine();
    // obshell's `underMaintenance` is the agent's own maintenance: a lock held by an
    // agent-local DAG (cluster DAGs such as restores do not count). A DAG holding a
    // lock has not succeeded, so only those DAGs are read, not every DAG kept.
    let under_maintenance = engine
        .active_dags(Some(Scope::Agent))?
        .iter()
        .any(|dag| dag.lock_held);
    Ok(Reply::Ok(identity(state).await.status(under_maintenance)))
}

/// Agent status (obshell's `http.AgentStatus`).
#[utoipa::path(get, path = "/api/v1/status", tag = "agent", security(()),
    responses((status = 200, description = "Status in `data`", body = AgentStatusDto)))]
async fn get_status(State(state): State<AppState>) -> ApiResult<AgentStatusDto> {
    status(&state).await
}

/// Agent status (obshell serves it on POST too).
#[utoipa::path(post, path = "/api/v1/status", tag = "agent", security(()),
    responses((status = 200, description = "Status in `data`", body = AgentStatusDto)))]
async fn post_status(State(state): State<AppState>) -> ApiResult<AgentStatusDto> {
    status(&state).await
}

/// This document (not wrapped in the envelope).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "agent", security(()),
    responses((status = 200, description = "OpenAPI 3 document")))]
async fn get_openapi(Extension(doc): Extension<Arc<utoipa::openapi::OpenApi>>) -> Response {
    axum::Json(doc.as_ref().clone()).into_response()
}

/// The agents and the cluster topology (obshell's `param.ObInfoResp`).
#[utoipa::path(get, path = "/api/v1/ob/info", tag = "agent",
    responses((status = 200, description = "Agents and cluster in `data`", body = ObInfoDto)))]
async fn get_ob_info(State(state): State<AppState>) -> ApiResult<ObInfoDto> {
    let (ip, port) = state.address();
    let zones = state.cluster(|cluster| Ok(cluster.list_zones()?)).await?;
    let mut topology = BTreeMap::new();
    let mut first = true;
    for zone in &zones {
        let name = zone.name.clone();
        let servers = state
            .cluster(move |cluster| Ok(cluster.servers_in_zone(&name)?))
            .await?;
        let configs: Vec<ServerConfigDto> = servers
            .iter()
            .map(|server| {
                let dto = ServerConfigDto::of(server, port, first);
                first = false;
                dto
            })
            .collect();
        topology.insert(zone.name.clone(), configs);
    }
    let agent_info = match state.cluster_view() {
        Some(view) => {
            let view = view.clone();
            state.cluster(move |_| view.agents()).await?
        }
        None => vec![AgentInstanceDto {
            ip,
            port,
            zone: zones
                .first()
                .map(|zone| zone.name.clone())
                .unwrap_or_default(),
            identity: IDENTITY.to_string(),
            version: OBSHELL_COMPAT_VERSION.to_string(),
        }],
    };
    Ok(Reply::Ok(ObInfoDto {
        agent_info,
        obcluster_info: ClusterInfoDto {
            id: CLUSTER_ID,
            name: CLUSTER_NAME.to_string(),
            version: OBSHELL_COMPAT_VERSION.to_string(),
            topology,
            is_shared_storage: false,
        },
    }))
}

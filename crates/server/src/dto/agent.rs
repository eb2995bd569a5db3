//! The agent's own endpoints: `GET /api/v1/info`, `/status`, `/secret` and `/ob/info`
//! (obshell's `meta.AgentStatus`, `http.AgentStatus`, `param.ObInfoResp`).

use std::collections::BTreeMap;

use obrestore_restore::cluster::Server;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{yes_no, SQL_PORT};

/// `GET /api/v1/info` (obshell's `meta.AgentStatus`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentInfoDto {
    pub ip: String,
    pub port: u16,
    pub zone: String,
    /// obshell identity: `CLUSTER AGENT` (the agent manages the embedded cluster).
    pub identity: String,
    /// Four-part obshell version this API is compatible with.
    pub version: String,
    pub pid: u32,
    /// obshell's agent state: 2 = running.
    pub state: i32,
    /// Unix nanoseconds of the start.
    pub start_at: i64,
    /// The agent's data directory.
    pub home_path: String,
    /// Version of the (embedded) OceanBase cluster.
    pub ob_version: String,
    pub architecture: String,
    pub is_obproxy_agent: bool,
    /// Whether the agent has a password.
    pub security: bool,
    /// `["v2"]`.
    pub supported_auth: Vec<String>,
}

/// `agent` of `GET /api/v1/status`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentIdentityDto {
    pub ip: String,
    pub port: u16,
    pub identity: String,
}

/// `GET /api/v1/status` (obshell's `http.AgentStatus`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AgentStatusDto {
    pub agent: AgentIdentityDto,
    /// obshell's agent state: 2 = running.
    pub state: i32,
    pub version: String,
    pub pid: u32,
    /// Unix nanoseconds of the start.
    pub start_at: i64,
    pub port: u16,
    /// 3: the cluster accepts connections (the embedded one always does).
    pub ob_state: i32,
    /// Whether an agent-local DAG holds a maintenance lock.
    pub under_maintenance: bool,
}

/// `GET /api/v1/secret`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SecretDto {
    pub ip: String,
    pub port: u16,
    /// Base64 of the PKCS#1 DER RSA public key.
    pub public_key: String,
}

/// One agent of `GET /api/v1/ob/info` (`meta.AgentInstance`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgentInstanceDto {
    pub ip: String,
    pub port: u16,
    pub zone: String,
    pub identity: String,
    pub version: String,
}

/// One server of the topology (`param.ServerConfig`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ServerConfigDto {
    pub svr_ip: String,
    pub svr_port: u16,
    pub sql_port: u16,
    pub agent_port: u16,
    pub with_rootserver: String,
    pub status: String,
    pub build_version: String,
}

impl ServerConfigDto {
    /// A server of the embedded cluster; the first one carries the root service.
    pub fn of(server: &Server, agent_port: u16, rootserver: bool) -> ServerConfigDto {
        ServerConfigDto {
            svr_ip: server.ip.clone(),
            svr_port: server.port,
            sql_port: SQL_PORT,
            agent_port,
            with_rootserver: yes_no(rootserver),
            status: "ACTIVE".to_string(),
            build_version: format!("{}-embedded", crate::app::OBSHELL_COMPAT_VERSION),
        }
    }
}

/// `obcluster_info` of `GET /api/v1/ob/info` (`param.ClusterConfig`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClusterInfoDto {
    pub id: i64,
    pub name: String,
    pub version: String,
    /// Servers by zone.
    pub topology: BTreeMap<String, Vec<ServerConfigDto>>,
    pub is_shared_storage: bool,
}

/// `GET /api/v1/ob/info` (`param.ObInfoResp`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ObInfoDto {
    pub agent_info: Vec<AgentInstanceDto>,
    pub obcluster_info: ClusterInfoDto,
}

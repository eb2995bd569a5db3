//! The agents of a cluster (cluster mode): each agent registers itself in etcd under
//! `/obrestore/<cluster>/agents/<ip>:<port>` with its zone when it joins and removes
//! itself when it stops gracefully, so `GET /api/v1/ob/info` lists every agent, as
//! obshell's `all_agent` table does (an agent that died stays listed until it comes
//! back or is removed, as in obshell).

use obrestore_etcd::{retry_transient, Etcd, Op};

use crate::app::{IDENTITY, OBSHELL_COMPAT_VERSION};
use crate::dto::AgentInstanceDto;
use crate::envelope::AppError;

/// What the maintainer's API knows of its cluster.
#[derive(Debug, Clone)]
pub struct ClusterView {
    pub etcd: Etcd,
    /// The cluster's name.
    pub name: String,
    /// This agent's zone.
    pub zone: String,
}

fn prefix(cluster: &str) -> Vec<u8> {
    format!("/obrestore/{cluster}/agents/").into_bytes()
}

fn key(cluster: &str, ip: &str, port: u16) -> Vec<u8> {
    let mut key = prefix(cluster);
    key.extend_from_slice(format!("{ip}:{port}").as_bytes());
    key
}

/// Registers (or re-registers) an agent. Blocking.
///
/// # Errors
/// etcd unreachable.
pub fn register(
    etcd: &Etcd,
    cluster: &str,
    ip: &str,
    port: u16,
    zone: &str,
) -> Result<(), obrestore_etcd::EtcdError> {
    let op = Op::Put(key(cluster, ip, port), zone.as_bytes().to_vec());
    retry_transient(|| etcd.txn(Vec::new(), vec![op.clone()])).map(|_| ())
}

/// Removes an agent's registration. Blocking.
///
/// # Errors
/// etcd unreachable.
pub fn deregister(
    etcd: &Etcd,
    cluster: &str,
    ip: &str,
    port: u16,
) -> Result<(), obrestore_etcd::EtcdError> {
    let op = Op::Delete(key(cluster, ip, port));
    retry_transient(|| etcd.txn(Vec::new(), vec![op.clone()])).map(|_| ())
}

impl ClusterView {
    /// Every registered agent, in address order. Blocking.
    ///
    /// # Errors
    /// etcd unreachable (503: the cluster's store, not the request).
    pub fn agents(&self) -> Result<Vec<AgentInstanceDto>, AppError> {
        let prefix = prefix(&self.name);
        let found = retry_transient(|| self.etcd.scan_prefix(&prefix)).map_err(|err| {
            AppError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "Common.ServiceUnavailable",
                format!("reading the cluster's agents: {err}"),
            )
        })?;
        Ok(found
            .into_iter()
            .filter_map(|kv| {
                let address = String::from_utf8(kv.key.get(prefix.len()..)?.to_vec()).ok()?;
                let (ip, port) = address.rsplit_once(':')?;
                Some(AgentInstanceDto {
                    ip: ip.to_string(),
                    port: port.parse().ok()?,
                    zone: String::from_utf8_lossy(&kv.value).into_owned(),
                    identity: IDENTITY.to_string(),
                    version: OBSHELL_COMPAT_VERSION.to_string(),
                })
            })
            .collect())
    }
}

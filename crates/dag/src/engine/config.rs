//! Engine settings: the agent address and the [`EngineConfig`] handed to
//! [`crate::Engine::open`]. Plain data; nothing here runs.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::clock::{Clock, SystemClock};

/// The address of the agent running the engine (`execute_agent`, generic ids).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentInfo {
    pub ip: IpAddr,
    pub port: u16,
}

impl Default for AgentInfo {
    fn default() -> AgentInfo {
        AgentInfo {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 2886,
        }
    }
}

/// Engine settings.
#[derive(Clone)]
pub struct EngineConfig {
    /// Sub-tasks running at once across all DAGs (obshell: 8).
    pub worker_limit: usize,
    pub agent: AgentInfo,
    /// Finished (SUCCEED) DAGs older than this are pruned; `None` keeps them forever.
    pub retention: Option<Duration>,
    pub clock: Arc<dyn Clock>,
    /// Capacity of the event broadcast channel.
    pub event_capacity: usize,
}

impl Default for EngineConfig {
    fn default() -> EngineConfig {
        EngineConfig {
            worker_limit: 8,
            agent: AgentInfo::default(),
            retention: None,
            clock: Arc::new(SystemClock),
            event_capacity: 4096,
        }
    }
}

impl std::fmt::Debug for EngineConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineConfig")
            .field("worker_limit", &self.worker_limit)
            .field("agent", &self.agent)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

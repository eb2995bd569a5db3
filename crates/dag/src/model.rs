//! The vocabulary of the engine: states, operators, capability flags, maintenance locks,
//! and the specification of a DAG handed to [`crate::Engine::submit`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Execution state of a DAG, node or sub-task (obshell's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum State {
    Pending,
    Ready,
    Running,
    Failed,
    Succeed,
}

impl State {
    /// The obshell string for this state.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Pending => "PENDING",
            State::Ready => "READY",
            State::Running => "RUNNING",
            State::Failed => "FAILED",
            State::Succeed => "SUCCEED",
        }
    }

    /// SUCCEED or FAILED.
    pub fn is_finished(self) -> bool {
        matches!(self, State::Succeed | State::Failed)
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operator last applied to a DAG, node or sub-task (obshell's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Operator {
    Run,
    Retry,
    Rollback,
    Cancel,
    Pass,
}

impl Operator {
    /// The obshell string for this operator.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Run => "RUN",
            Operator::Retry => "RETRY",
            Operator::Rollback => "ROLLBACK",
            Operator::Cancel => "CANCEL",
            Operator::Pass => "PASS",
        }
    }
}

impl std::fmt::Display for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error returned when an operator name cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown operator '{0}' (expected RUN, RETRY, ROLLBACK, CANCEL or PASS)")]
pub struct UnknownOperator(pub String);

impl std::str::FromStr for Operator {
    type Err = UnknownOperator;

    /// Parses an operator name case-insensitively, as obshell's API does.
    fn from_str(text: &str) -> Result<Operator, UnknownOperator> {
        match text.trim().to_ascii_uppercase().as_str() {
            "RUN" => Ok(Operator::Run),
            "RETRY" => Ok(Operator::Retry),
            "ROLLBACK" => Ok(Operator::Rollback),
            "CANCEL" => Ok(Operator::Cancel),
            "PASS" => Ok(Operator::Pass),
            _ => Err(UnknownOperator(text.to_string())),
        }
    }
}

/// What a sub-task allows. A node's flag is the AND over its sub-tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flags {
    pub can_retry: bool,
    pub can_rollback: bool,
    pub can_cancel: bool,
    pub can_pass: bool,
    /// The sub-task may be executed again after a crash interrupted it (it is idempotent).
    pub can_continue: bool,
}

impl Default for Flags {
    /// Everything allowed except `can_pass`, which must be opted into.
    fn default() -> Flags {
        Flags {
            can_retry: true,
            can_rollback: true,
            can_cancel: true,
            can_pass: false,
            can_continue: true,
        }
    }
}

impl Flags {
    /// Every capability granted.
    pub const ALL: Flags = Flags {
        can_retry: true,
        can_rollback: true,
        can_cancel: true,
        can_pass: true,
        can_continue: true,
    };

    /// The AND of two flag sets.
    pub fn and(self, other: Flags) -> Flags {
        Flags {
            can_retry: self.can_retry && other.can_retry,
            can_rollback: self.can_rollback && other.can_rollback,
            can_cancel: self.can_cancel && other.can_cancel,
            can_pass: self.can_pass && other.can_pass,
            can_continue: self.can_continue && other.can_continue,
        }
    }
}

/// The maintenance lock a DAG takes at submit.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum Maintenance {
    /// No lock.
    #[default]
    None,
    /// Excludes every other locked DAG.
    Global,
    /// Excludes other DAGs locking the same tenant (and GLOBAL ones).
    Tenant(String),
}

impl Maintenance {
    /// obshell's numeric maintenance type (`engine/task/maintenance_type.go`):
    /// 0 NOT_BOOTSTRAP, 1 NONE, 2 GLOBAL, 3 TENANT, 4 OBPROXY.
    pub fn type_code(&self) -> i32 {
        match self {
            Maintenance::None => 1,
            Maintenance::Global => 2,
            Maintenance::Tenant(_) => 3,
        }
    }

    /// Whether the DAG takes a lock (obshell's `IsMaintenance`).
    pub fn is_maintenance(&self) -> bool {
        !matches!(self, Maintenance::None)
    }

    /// The lock key ("" for none and global).
    pub fn key(&self) -> &str {
        match self {
            Maintenance::Tenant(name) => name,
            _ => "",
        }
    }
}

/// Where a DAG lives, as obshell's generic ids tell: cluster DAGs (restore, tenant
/// operations; `"1" + id`) or agent-local ones (`"2" + ip + port + id`). The engine
/// runs both the same way; the scope decides the ids and the lists a DAG appears in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "UPPERCASE")]
pub enum Scope {
    /// Local to this agent.
    #[default]
    Agent,
    /// An OceanBase-level DAG.
    Cluster,
}

/// Automatic retry of a failed sub-task before its node fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Extra attempts after the first failure.
    pub attempts: u32,
    /// Delay before the first retry.
    pub initial_backoff_ms: u64,
    /// Multiplier applied to the delay after each retry (at least 1).
    pub multiplier: u32,
    /// Upper bound of the delay.
    pub max_backoff_ms: u64,
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1-based).
    pub fn backoff(&self, retry: u32) -> Duration {
        let mut delay = self.initial_backoff_ms;
        for _ in 1..retry {
            delay = delay.saturating_mul(u64::from(self.multiplier.max(1)));
        }
        Duration::from_millis(delay.min(self.max_backoff_ms))
    }
}

/// Where a node's sub-tasks come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FanOut {
    /// One sub-task per listed parameter value, fixed at submit. Shared (`Arc`) by the
    /// spec and every copy of the node's record: a node transition copies no list, and
    /// each value is shared by its sub-task's records (creating a sub-task copies no
    /// parameters).
    Static(#[serde(with = "crate::record::shared_values")] Arc<[Arc<Value>]>),
    /// One sub-task per element of the JSON array found under this key of the node's
    /// input (the merged output of its upstream nodes), created when the node starts.
    Dynamic(String),
}

/// Default sub-task timeout (obshell's one hour).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3600);

/// One node of a [`DagSpec`].
#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub(crate) name: String,
    pub(crate) task_type: String,
    pub(crate) fan_out: FanOut,
    pub(crate) pool: Option<String>,
    pub(crate) timeout: Duration,
    pub(crate) retry: Option<RetryPolicy>,
    pub(crate) flags: Option<Flags>,
    pub(crate) failure_exit_maintenance: bool,
}

impl NodeSpec {
    /// A node running one sub-task of `task_type` with `null` parameters.
    pub fn new(name: impl Into<String>, task_type: impl Into<String>) -> NodeSpec {
        NodeSpec {
            name: name.into(),
            task_type: task_type.into(),
            fan_out: FanOut::Static(Arc::new([Arc::new(Value::Null)])),
            pool: None,
            timeout: DEFAULT_TIMEOUT,
            retry: None,
            flags: None,
            failure_exit_maintenance: false,
        }
    }

    /// One sub-task per parameter value (a fan-out when there are several).
    ///
    /// A parameter object with a string field `"name"` names its sub-task.
    pub fn sub_tasks(mut self, params: Vec<Value>) -> NodeSpec {
        self.fan_out = FanOut::Static(params.into_iter().map(Arc::new).collect());
        self
    }

    /// One sub-task per element of the array under `key` in the node's input, decided
    /// when the node starts (dynamic task mapping).
    pub fn dynamic_sub_tasks(mut self, key: impl Into<String>) -> NodeSpec {
        self.fan_out = FanOut::Dynamic(key.into());
        self
    }

    /// Each running sub-task holds one unit of this DAG resource pool.
    pub fn pool(mut self, pool: impl Into<String>) -> NodeSpec {
        self.pool = Some(pool.into());
        self
    }

    /// Per-sub-task timeout (default one hour).
    pub fn timeout(mut self, timeout: Duration) -> NodeSpec {
        self.timeout = timeout;
        self
    }

    /// Automatic retries before the node fails.
    pub fn retry(mut self, policy: RetryPolicy) -> NodeSpec {
        self.retry = Some(policy);
        self
    }

    /// Overrides the task type's capability flags for this node's sub-tasks.
    pub fn flags(mut self, flags: Flags) -> NodeSpec {
        self.flags = Some(flags);
        self
    }

    /// When this node fails, the DAG releases its maintenance lock.
    pub fn failure_exit_maintenance(mut self) -> NodeSpec {
        self.failure_exit_maintenance = true;
        self
    }
}

/// Index of a node inside a [`DagSpec`], returned by [`DagSpec::add_node`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeIndex(pub(crate) usize);

/// A DAG to submit: nodes, edges, parameters, pools and its maintenance lock.
#[derive(Debug, Clone)]
pub struct DagSpec {
    pub(crate) name: String,
    pub(crate) scope: Scope,
    pub(crate) params: Value,
    pub(crate) maintenance: Maintenance,
    pub(crate) pools: BTreeMap<String, u32>,
    pub(crate) nodes: Vec<NodeSpec>,
    pub(crate) edges: Vec<(usize, usize)>,
}

impl DagSpec {
    /// An empty DAG named `name`.
    pub fn new(name: impl Into<String>) -> DagSpec {
        DagSpec {
            name: name.into(),
            scope: Scope::Agent,
            params: Value::Null,
            maintenance: Maintenance::None,
            pools: BTreeMap::new(),
            nodes: Vec::new(),
            edges: Vec::new(),
        }
    }

    /// Where the DAG lives (default [`Scope::Agent`]).
    pub fn scope(mut self, scope: Scope) -> DagSpec {
        self.scope = scope;
        self
    }

    /// Write-once DAG parameters visible to every sub-task.
    pub fn params(mut self, params: Value) -> DagSpec {
        self.params = params;
        self
    }

    /// The maintenance lock taken atomically with the DAG's creation.
    pub fn maintenance(mut self, maintenance: Maintenance) -> DagSpec {
        self.maintenance = maintenance;
        self
    }

    /// Declares a resource pool of this DAG with `capacity` units.
    pub fn pool(mut self, name: impl Into<String>, capacity: u32) -> DagSpec {
        self.pools.insert(name.into(), capacity);
        self
    }

    /// Adds a node and returns its index.
    pub fn add_node(&mut self, node: NodeSpec) -> NodeIndex {
        self.nodes.push(node);
        NodeIndex(self.nodes.len() - 1)
    }

    /// `to` starts only after `from` succeeded.
    pub fn add_edge(&mut self, from: NodeIndex, to: NodeIndex) {
        self.edges.push((from.0, to.0));
    }

    /// Applies `change` to every node added so far (e.g. a flag all of them share).
    pub fn map_nodes(mut self, change: impl Fn(NodeSpec) -> NodeSpec) -> DagSpec {
        self.nodes = self.nodes.into_iter().map(change).collect();
        self
    }

    /// Adds `nodes` as a chain after `after` (if any) and returns the last index.
    pub fn chain(&mut self, after: Option<NodeIndex>, nodes: Vec<NodeSpec>) -> Option<NodeIndex> {
        let mut previous = after;
        for node in nodes {
            let index = self.add_node(node);
            if let Some(previous) = previous {
                self.add_edge(previous, index);
            }
            previous = Some(index);
        }
        previous
    }
}

//! The engine: a handle ([`Engine`]) and the scheduler actor behind it.
//!
//! One actor task owns the in-memory mirror of every unfinished DAG. Requests, sub-task
//! results, logs and progress arrive as messages. The actor drains all waiting messages,
//! decides every resulting transition, commits them as one atomic batch (group commit),
//! and only then answers callers, emits events and starts sub-tasks. So every transition
//! is durable before anyone can observe it, and operators are compare-and-set by
//! construction: they are decided one at a time against the state they change.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::clock::{Clock, SystemClock};
use crate::dto::{
    merge_context, DagDetailDto, DtoBuilder, NodeDetailDto, TaskDetailDto, TaskLogDto,
};
use crate::error::{LockConflict, OpenError, OperateError, QueryError, Refusal, SubmitError};
use crate::event::{Event, Subject};
use crate::id::{GenericId, IdOrigin};
use crate::model::{DagSpec, FanOut, Flags, Maintenance, Operator, Scope, State};
use crate::record::{
    keys, Counters, DagRecord, LockRecord, LogRecord, NodeRecord, TaskRecord, RECORD_VERSION,
};
use crate::store::{decode, Batch, KvStore, Records, StoreError};
use crate::task::{TaskContext, TaskRegistry};

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

/// How a sub-task run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Succeeded,
    Failed(String),
    TimedOut,
    Cancelled,
}

/// The result of one sub-task run, as reported to the scheduler.
struct RunResult {
    task_id: u64,
    execute_times: u32,
    rollback: bool,
    outcome: Outcome,
    output: Map<String, Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Execute { rollback_first: bool },
    Rollback,
}

/// Messages to the scheduler actor.
pub(crate) enum Msg {
    Submit {
        spec: DagSpec,
        reply: oneshot::Sender<Result<u64, SubmitError>>,
    },
    Operate {
        dag_id: u64,
        operator: Operator,
        reply: oneshot::Sender<Result<(), OperateError>>,
    },
    PassNode {
        node_id: u64,
        reply: oneshot::Sender<Result<(), OperateError>>,
    },
    Finished {
        task_id: u64,
        execute_times: u32,
        rollback: bool,
        outcome: Outcome,
        output: Map<String, Value>,
    },
    Log {
        task_id: u64,
        execute_times: u32,
        content: String,
    },
    SetLocal {
        task_id: u64,
        execute_times: u32,
        key: String,
        value: Value,
    },
    SetAdditional {
        task_id: u64,
        execute_times: u32,
        key: String,
        value: Value,
    },
    Wake {
        task_id: u64,
        execute_times: u32,
    },
    Shutdown {
        reply: oneshot::Sender<()>,
    },
}

struct Shared {
    tx: mpsc::UnboundedSender<Msg>,
    records: Records,
    events: broadcast::Sender<Event>,
    dto: DtoBuilder,
    /// The scheduler actor and the committer.
    actor: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    running: Arc<Mutex<HashMap<u64, AbortHandle>>>,
}

/// A running engine. Cheap to clone; every clone drives the same scheduler.
#[derive(Clone)]
pub struct Engine {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

impl Engine {
    /// Opens the engine on `store`: loads unfinished DAGs, applies the restart rules
    /// (continuable sub-tasks run again, others fail), and starts scheduling.
    /// Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// The store could not be read, or a stored DAG uses an unregistered task type.
    pub async fn open(
        config: EngineConfig,
        store: Arc<dyn KvStore>,
        registry: TaskRegistry,
    ) -> Result<Engine, OpenError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(config.event_capacity.max(16));
        let records = Records::new(Arc::clone(&store));
        let running = Arc::new(Mutex::new(HashMap::new()));
        let mut actor = Actor::load(
            &config,
            Arc::clone(&store),
            Arc::new(registry),
            Arc::clone(&running),
        )?;
        if let Some(retention) = config.retention {
            prune(&records, config.clock.now(), retention)?;
        }
        actor.recover();
        actor.tx = Some(tx.clone());
        let committer = Committer {
            kv: Arc::clone(&store),
            registry: Arc::clone(&actor.registry),
            tx: tx.clone(),
            events: events.clone(),
            running_handles: Arc::clone(&running),
            poisoned: Arc::clone(&actor.poisoned),
            committed: Arc::clone(&actor.sched.committed),
        };
        let mut tasks = Vec::new();
        if store.commit_blocks() {
            let (commit_tx, commit_rx) = mpsc::channel(64);
            tasks.push(tokio::spawn(committer.run(commit_rx)));
            tasks.push(tokio::spawn(actor.run(rx, Some(commit_tx), None)));
        } else {
            tasks.push(tokio::spawn(actor.run(rx, None, Some(committer))));
        }
        Ok(Engine {
            shared: Arc::new(Shared {
                tx,
                records,
                events,
                dto: DtoBuilder {
                    agent: config.agent.clone(),
                },
                actor: Mutex::new(tasks),
                running,
            }),
        })
    }

    /// Creates a DAG (and takes its maintenance lock) durably, then starts it.
    /// Returns the DAG id.
    ///
    /// # Errors
    /// The spec is invalid, a task type is unknown, the lock is held, or the store failed.
    ///
    /// # Cancel safety
    /// If the future is dropped, the DAG may or may not have been created.
    pub async fn submit(&self, spec: DagSpec) -> Result<u64, SubmitError> {
        let (reply, answer) = oneshot::channel();
        self.shared
            .tx
            .send(Msg::Submit { spec, reply })
            .map_err(|_| SubmitError::ShutDown)?;
        answer.await.map_err(|_| SubmitError::ShutDown)?
    }

    /// Applies RETRY, ROLLBACK, CANCEL or PASS to a DAG (RUN is applied at submit).
    /// Returns once the resulting transition is durable.
    ///
    /// # Errors
    /// [`OperateError::NotAllowed`] with the reason when the operator does not apply.
    ///
    /// # Cancel safety
    /// If the future is dropped, the operator may or may not have been applied.
    pub async fn operate(&self, dag_id: u64, operator: Operator) -> Result<(), OperateError> {
        let (reply, answer) = oneshot::channel();
        self.shared
            .tx
            .send(Msg::Operate {
                dag_id,
                operator,
                reply,
            })
            .map_err(|_| OperateError::ShutDown)?;
        answer.await.map_err(|_| OperateError::ShutDown)?
    }

    /// PASS on one failed node: it becomes SUCCEED+PASS and the DAG continues downstream.
    ///
    /// # Errors
    /// [`OperateError::NotAllowed`] with the reason when PASS does not apply.
    ///
    /// # Cancel safety
    /// If the future is dropped, the operator may or may not have been applied.
    pub async fn pass_node(&self, node_id: u64) -> Result<(), OperateError> {
        let (reply, answer) = oneshot::channel();
        self.shared
            .tx
            .send(Msg::PassNode { node_id, reply })
            .map_err(|_| OperateError::ShutDown)?;
        answer.await.map_err(|_| OperateError::ShutDown)?
    }

    /// Durable transitions as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// Waits until the DAG is FAILED or SUCCEED and returns its record.
    ///
    /// # Errors
    /// The DAG does not exist or the store failed.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn wait_settled(&self, dag_id: u64) -> Result<DagRecord, QueryError> {
        let mut events = self.subscribe();
        loop {
            let dag = self.dag_record(dag_id)?;
            if dag.state.is_finished() {
                return Ok(dag);
            }
            loop {
                match events.recv().await {
                    Ok(event) if event.dag_id == dag_id && event.subject == Subject::Dag => break,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => {
                        return self.dag_record(dag_id);
                    }
                }
            }
        }
    }

    /// The persisted record of a DAG.
    ///
    /// # Errors
    /// [`QueryError::NotFound`] or a store failure.
    pub fn dag_record(&self, dag_id: u64) -> Result<DagRecord, QueryError> {
        self.shared
            .records
            .dag(dag_id)?
            .ok_or(QueryError::NotFound {
                kind: "dag",
                id: dag_id,
            })
    }

    /// Typed access to every persisted record.
    pub fn records(&self) -> &Records {
        &self.shared.records
    }

    /// The DTO builder (agent address for generic ids).
    pub fn dto(&self) -> &DtoBuilder {
        &self.shared.dto
    }

    /// Decodes a generic id naming an object of this agent (`"2…"`/`"3…"` with this
    /// agent's address) or of the cluster (`"1…"`), and says which scope it names.
    ///
    /// # Errors
    /// Malformed ids ([`QueryError::InvalidId`]) and ids of another agent
    /// ([`QueryError::ForeignId`]).
    pub fn decode_id(&self, generic: &str) -> Result<(u64, Scope), QueryError> {
        let decoded = GenericId::decode(generic)?;
        let ours = IdOrigin::Agent {
            ip: self.shared.dto.agent.ip,
            port: self.shared.dto.agent.port,
        };
        match decoded.origin {
            IdOrigin::Cluster => Ok((decoded.id, Scope::Cluster)),
            origin if origin == ours => Ok((decoded.id, Scope::Agent)),
            _ => Err(QueryError::ForeignId(generic.to_string())),
        }
    }

    /// The DAG a generic id names. A DAG of the other scope is not found, as in obshell
    /// ("dag id not match").
    ///
    /// # Errors
    /// A bad id, [`QueryError::NotFound`], or a store failure.
    pub fn find_dag(&self, generic: &str) -> Result<DagRecord, QueryError> {
        let (id, scope) = self.decode_id(generic)?;
        let not_found = QueryError::NotFound { kind: "dag", id };
        match self.shared.records.dag(id)? {
            Some(dag) if dag.scope == scope => Ok(dag),
            _ => Err(not_found),
        }
    }

    /// The node a generic id names (see [`Engine::find_dag`]).
    ///
    /// # Errors
    /// A bad id, [`QueryError::NotFound`], or a store failure.
    pub fn find_node(&self, generic: &str) -> Result<NodeRecord, QueryError> {
        let (id, scope) = self.decode_id(generic)?;
        let node = self.shared.records.node(id)?;
        match node {
            Some(node) if self.scope_of(node.dag_id)? == Some(scope) => Ok(node),
            _ => Err(QueryError::NotFound { kind: "node", id }),
        }
    }

    /// The sub-task a generic id names (see [`Engine::find_dag`]).
    ///
    /// # Errors
    /// A bad id, [`QueryError::NotFound`], or a store failure.
    pub fn find_task(&self, generic: &str) -> Result<TaskRecord, QueryError> {
        let (id, scope) = self.decode_id(generic)?;
        let task = self.shared.records.task(id)?;
        match task {
            Some(task) if self.scope_of(task.dag_id)? == Some(scope) => Ok(task),
            _ => Err(QueryError::NotFound {
                kind: "sub_task",
                id,
            }),
        }
    }

    fn scope_of(&self, dag_id: u64) -> Result<Option<Scope>, QueryError> {
        Ok(self.shared.records.dag(dag_id)?.map(|dag| dag.scope))
    }

    /// The generic id of a DAG.
    pub fn generic_id(&self, dag: &DagRecord) -> String {
        self.shared.dto.generic_id(dag.id, dag.scope)
    }

    /// `DagDetailDTO` of a DAG; with `show_details`, its nodes and sub-tasks too.
    ///
    /// # Errors
    /// [`QueryError::NotFound`] or a store failure.
    pub fn dag_detail(&self, dag_id: u64, show_details: bool) -> Result<DagDetailDto, QueryError> {
        let dag = self.dag_record(dag_id)?;
        self.dag_dto(&dag, show_details)
    }

    fn dag_dto(&self, dag: &DagRecord, show_details: bool) -> Result<DagDetailDto, QueryError> {
        if !show_details {
            return Ok(self.shared.dto.dag(dag, None));
        }
        let records = &self.shared.records;
        let mut nodes = Vec::new();
        for node in records.nodes_of(dag)? {
            let tasks = self.tasks_with_logs(&node)?;
            nodes.push((node, tasks));
        }
        Ok(self.shared.dto.dag(dag, Some(&nodes)))
    }

    fn tasks_with_logs(
        &self,
        node: &NodeRecord,
    ) -> Result<Vec<(TaskRecord, Vec<LogRecord>)>, QueryError> {
        let records = &self.shared.records;
        let mut tasks = Vec::new();
        for task in records.tasks_of(node)? {
            let logs = records.logs(task.id)?;
            tasks.push((task, logs));
        }
        Ok(tasks)
    }

    /// `NodeDetailDTO` of a node; with `show_details`, its sub-tasks too.
    ///
    /// # Errors
    /// [`QueryError::NotFound`] or a store failure.
    pub fn node_detail(&self, node_id: u64, show_details: bool) -> Result<NodeDetailDto, QueryError> {
        let node = self
            .shared
            .records
            .node(node_id)?
            .ok_or(QueryError::NotFound {
                kind: "node",
                id: node_id,
            })?;
        let scope = self.scope_of(node.dag_id)?.unwrap_or_default();
        let tasks = if show_details {
            Some(self.tasks_with_logs(&node)?)
        } else {
            None
        };
        Ok(self.shared.dto.node(&node, tasks.as_deref(), scope))
    }

    /// `TaskDetailDTO` of a sub-task, with its logs and additional data.
    ///
    /// # Errors
    /// [`QueryError::NotFound`] or a store failure.
    pub fn task_detail(&self, task_id: u64) -> Result<TaskDetailDto, QueryError> {
        let task = self
            .shared
            .records
            .task(task_id)?
            .ok_or(QueryError::NotFound {
                kind: "sub_task",
                id: task_id,
            })?;
        let scope = self.scope_of(task.dag_id)?.unwrap_or_default();
        let logs = self.shared.records.logs(task_id)?;
        Ok(self.shared.dto.task(&task, &logs, scope))
    }

    /// Log rows of a sub-task, all execute_times, in order.
    ///
    /// # Errors
    /// [`QueryError::NotFound`] or a store failure.
    pub fn task_logs(&self, task_id: u64) -> Result<Vec<TaskLogDto>, QueryError> {
        if self.shared.records.task(task_id)?.is_none() {
            return Err(QueryError::NotFound {
                kind: "sub_task",
                id: task_id,
            });
        }
        Ok(self.shared.dto.logs(&self.shared.records.logs(task_id)?))
    }

    /// Every DAG of `scope` (all scopes for `None`), oldest first.
    ///
    /// # Errors
    /// A store failure.
    pub fn dags(&self, scope: Option<Scope>) -> Result<Vec<DagRecord>, QueryError> {
        Ok(self
            .shared
            .records
            .all_dags()?
            .into_iter()
            .filter(|dag| scope.is_none_or(|scope| dag.scope == scope))
            .collect())
    }

    /// DTOs of every DAG of `scope`.
    ///
    /// # Errors
    /// A store failure.
    pub fn dag_details(
        &self,
        scope: Option<Scope>,
        show_details: bool,
    ) -> Result<Vec<DagDetailDto>, QueryError> {
        self.dags(scope)?
            .iter()
            .map(|dag| self.dag_dto(dag, show_details))
            .collect()
    }

    /// DAGs of `scope` that are unfinished in obshell's sense (`is_finished = false`,
    /// `service/task/dag.go`): not SUCCEED, and not FAILED without a maintenance lock.
    /// A FAILED maintenance DAG still waits for an operator, so it is listed.
    ///
    /// # Errors
    /// A store failure.
    pub fn unfinished_dags(
        &self,
        scope: Option<Scope>,
        show_details: bool,
    ) -> Result<Vec<DagDetailDto>, QueryError> {
        self.dags(scope)?
            .iter()
            .filter(|dag| dag.is_unfinished())
            .map(|dag| self.dag_dto(dag, show_details))
            .collect()
    }

    /// The newest maintenance DAG of `scope` (obshell's `GetLastMaintenanceDag`),
    /// finished or not.
    ///
    /// # Errors
    /// A store failure.
    pub fn last_maintenance_dag(&self, scope: Scope) -> Result<Option<DagRecord>, QueryError> {
        Ok(self
            .dags(Some(scope))?
            .into_iter()
            .rev()
            .find(|dag| dag.maintenance.is_maintenance()))
    }

    /// The DAG that took the maintenance lock `lock` last, if its record still exists
    /// (obshell's lock row `dag_id`), and whether it still holds the lock.
    ///
    /// # Errors
    /// A store failure.
    pub fn lock_taker(&self, lock: &Maintenance) -> Result<Option<(DagRecord, bool)>, QueryError> {
        let Some(key) = keys::lock(lock) else {
            return Ok(None);
        };
        let Some(bytes) = self.shared.records.kv.get(&key)? else {
            return Ok(None);
        };
        let record: LockRecord = decode(&key, &bytes)?;
        Ok(self
            .shared
            .records
            .dag(record.dag_id)?
            .map(|dag| (dag, record.held)))
    }

    /// Deletes SUCCEED DAGs that ended before `now - retention`. Returns how many.
    ///
    /// # Errors
    /// A store failure.
    pub fn prune_finished(
        &self,
        now: DateTime<Utc>,
        retention: Duration,
    ) -> Result<usize, StoreError> {
        prune(&self.shared.records, now, retention)
    }

    /// Stops starting sub-tasks and waits up to `grace` for running ones to finish; then
    /// aborts what is left (it is recovered at the next open, as after a crash).
    ///
    /// # Cancel safety
    /// Not cancel safe: dropping it leaves the engine stopping.
    pub async fn shutdown(&self, grace: Duration) {
        let (reply, answer) = oneshot::channel();
        if self.shared.tx.send(Msg::Shutdown { reply }).is_ok() {
            let _ = tokio::time::timeout(grace, answer).await;
        }
        self.abort();
    }

    /// Stops at once, like a crash: nothing more is committed, running sub-tasks are
    /// dropped. Whatever was committed is recovered by the next [`Engine::open`].
    pub fn abort(&self) {
        if let Ok(mut tasks) = self.shared.actor.lock() {
            for handle in tasks.drain(..) {
                handle.abort();
            }
        }
        if let Ok(mut running) = self.shared.running.lock() {
            for (_, handle) in running.drain() {
                handle.abort();
            }
        }
    }
}

fn prune(records: &Records, now: DateTime<Utc>, retention: Duration) -> Result<usize, StoreError> {
    let cutoff = now - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let mut batch = Batch::default();
    let mut pruned = 0;
    for dag in records.all_dags()? {
        if dag.state != State::Succeed || dag.end_time.is_none_or(|end| end >= cutoff) {
            continue;
        }
        for node in records.nodes_of(&dag)? {
            for task_id in &node.task_ids {
                for (key, _) in records.kv.scan_prefix(&keys::task_logs(*task_id))? {
                    batch.delete(key);
                }
                batch.delete(keys::task(*task_id));
            }
            batch.delete(keys::node(node.id));
        }
        batch.delete(keys::dag(dag.id));
        pruned += 1;
    }
    if !batch.is_empty() {
        records.kv.commit(batch)?;
    }
    Ok(pruned)
}

/// Everything a sub-task run needs, captured when it is dispatched.
struct Job {
    dag_id: u64,
    node_id: u64,
    task_id: u64,
    index: u32,
    name: String,
    task_type: String,
    execute_times: u32,
    phase: Phase,
    params: Value,
    dag_params: Arc<Value>,
    input: Arc<Map<String, Value>>,
    local: Map<String, Value>,
    timeout: Duration,
    cancel: CancellationToken,
}

enum Reply {
    Submit(
        oneshot::Sender<Result<u64, SubmitError>>,
        Result<u64, SubmitError>,
    ),
    Operate(
        oneshot::Sender<Result<(), OperateError>>,
        Result<(), OperateError>,
    ),
}

/// What one batch of decisions produces.
#[derive(Default)]
struct Txn {
    batch: Batch,
    dirty_dags: BTreeSet<u64>,
    dirty_nodes: BTreeSet<(u64, u64)>,
    dirty_tasks: BTreeSet<(u64, u64)>,
    counters_dirty: bool,
    /// DAGs whose stage may have changed.
    stage_dirty: BTreeSet<u64>,
    events: Vec<Event>,
    spawns: Vec<Job>,
    /// Sub-tasks that may run before their RUNNING transition is durable: they can
    /// continue after a crash and their node's start is already durable.
    early: Vec<Job>,
    replies: Vec<Reply>,
}

/// A held maintenance lock, by lock key.
#[derive(Debug, Clone)]
struct Holder {
    dag_id: u64,
    dag_name: String,
}

/// The DAG that took a lock last (whether or not it still holds it).
#[derive(Debug, Clone, Copy)]
struct Taker {
    dag_id: u64,
    scope: Scope,
}

/// Resources shared by all DAGs.
struct Sched {
    now: DateTime<Utc>,
    running_total: usize,
    worker_limit: usize,
    /// Locks held now.
    locks: HashMap<Vec<u8>, Holder>,
    /// The last taker of every lock ever taken.
    takers: HashMap<Vec<u8>, Taker>,
    /// Generic ids (for messages that name DAGs).
    ids: DtoBuilder,
    wakes: Vec<(u64, u32, Duration)>,
    /// Sequence number of the batch being decided.
    batch_seq: u64,
    /// Highest batch sequence number known durable.
    committed: Arc<std::sync::atomic::AtomicU64>,
}

impl Sched {
    fn is_durable(&self, seq: u64) -> bool {
        self.committed.load(std::sync::atomic::Ordering::Acquire) >= seq
    }
}

struct ActiveDag {
    rec: DagRecord,
    nodes: BTreeMap<u64, NodeRecord>,
    tasks: HashMap<u64, TaskRecord>,
    inputs: HashMap<u64, Arc<Map<String, Value>>>,
    dag_params: Arc<Value>,
    running: HashMap<u64, CancellationToken>,
    pool_running: HashMap<String, u32>,
    ready: BTreeMap<String, VecDeque<u64>>,
    failing: bool,
    /// Per node, how many of its sub-tasks are not SUCCEED.
    unfinished_tasks: HashMap<u64, usize>,
    /// Per layer (index = layer), how many nodes are not SUCCEED.
    unfinished_per_layer: Vec<u32>,
    succeeded_nodes: usize,
    /// Nodes that may have become startable.
    candidates: BTreeSet<u64>,
    /// Whether any sub-task produced output (otherwise every input is empty).
    has_outputs: bool,
    /// Batch in which each node last started (absent: started before this process).
    node_start_seq: HashMap<u64, u64>,
}

/// Which held lock, if any, keeps `maintenance` from being taken by `dag_id`.
fn lock_conflict(
    locks: &HashMap<Vec<u8>, Holder>,
    maintenance: &Maintenance,
    dag_id: Option<u64>,
) -> Option<LockConflict> {
    let others = |holder: &&Holder| Some(holder.dag_id) != dag_id;
    let conflict = |lock: Maintenance, holder: &Holder| LockConflict {
        lock,
        holder: holder.dag_id,
        holder_name: holder.dag_name.clone(),
    };
    let global = keys::lock(&Maintenance::Global).unwrap_or_default();
    match maintenance {
        Maintenance::None => None,
        Maintenance::Global => locks
            .iter()
            .filter(|(_, holder)| others(holder))
            .min_by_key(|(_, holder)| holder.dag_id)
            .map(|(key, holder)| conflict(keys::lock_of(key), holder)),
        Maintenance::Tenant(_) => {
            if let Some(holder) = locks.get(&global).filter(others) {
                return Some(conflict(Maintenance::Global, holder));
            }
            let key = keys::lock(maintenance).unwrap_or_default();
            locks
                .get(&key)
                .filter(others)
                .map(|holder| conflict(maintenance.clone(), holder))
        }
    }
}

/// Records that `dag` holds the lock at `key` (in memory and in the batch).
fn take_lock(txn: &mut Txn, sched: &mut Sched, key: Vec<u8>, dag: &DagRecord) {
    sched.locks.insert(
        key.clone(),
        Holder {
            dag_id: dag.id,
            dag_name: dag.name.clone(),
        },
    );
    sched.takers.insert(
        key.clone(),
        Taker {
            dag_id: dag.id,
            scope: dag.scope,
        },
    );
    txn.batch.put_json(
        key,
        &LockRecord {
            v: RECORD_VERSION,
            dag_id: dag.id,
            held: true,
        },
    );
}

impl ActiveDag {
    fn from_records(rec: DagRecord, nodes: Vec<NodeRecord>, tasks: Vec<TaskRecord>) -> ActiveDag {
        let dag_params = Arc::new(rec.params.clone());
        let mut dag = ActiveDag {
            rec,
            nodes: nodes.into_iter().map(|n| (n.id, n)).collect(),
            tasks: tasks.into_iter().map(|t| (t.id, t)).collect(),
            inputs: HashMap::new(),
            dag_params,
            running: HashMap::new(),
            pool_running: HashMap::new(),
            ready: BTreeMap::new(),
            failing: false,
            unfinished_tasks: HashMap::new(),
            unfinished_per_layer: Vec::new(),
            succeeded_nodes: 0,
            candidates: BTreeSet::new(),
            has_outputs: false,
            node_start_seq: HashMap::new(),
        };
        dag.reindex();
        dag
    }

    /// Recomputes the derived counters from the records.
    fn reindex(&mut self) {
        self.unfinished_tasks.clear();
        self.has_outputs = false;
        for task in self.tasks.values() {
            self.has_outputs |= !task.output.is_empty();
            if task.state != State::Succeed {
                *self.unfinished_tasks.entry(task.node_id).or_default() += 1;
            }
        }
        self.unfinished_per_layer = vec![0u32; self.rec.max_stage as usize + 2];
        self.succeeded_nodes = 0;
        for node in self.nodes.values() {
            if node.state == State::Succeed {
                self.succeeded_nodes += 1;
            } else if let Some(count) = self.unfinished_per_layer.get_mut(node.layer as usize) {
                *count += 1;
            }
        }
        self.rescan();
    }

    /// Every node becomes a start candidate (after submit, RETRY, PASS, recovery).
    fn rescan(&mut self) {
        self.candidates.extend(self.nodes.keys().copied());
    }

    fn id(&self) -> u64 {
        self.rec.id
    }

    fn event(&self, txn: &mut Txn, subject: Subject, state: State, operator: Operator) {
        txn.events.push(Event {
            dag_id: self.rec.id,
            subject,
            state,
            operator,
            stage: self.rec.stage,
            max_stage: self.rec.max_stage,
        });
    }

    fn set_dag(&mut self, txn: &mut Txn, sched: &Sched, state: State, operator: Operator) {
        self.rec.state = state;
        self.rec.operator = operator;
        if state == State::Running && self.rec.start_time.is_none() {
            self.rec.start_time = Some(sched.now);
        }
        if state.is_finished() {
            self.rec.end_time = Some(sched.now);
        } else {
            self.rec.end_time = None;
        }
        self.recompute_stage();
        txn.dirty_dags.insert(self.id());
        self.event(txn, Subject::Dag, state, operator);
    }

    fn set_node(
        &mut self,
        txn: &mut Txn,
        sched: &Sched,
        node_id: u64,
        state: State,
        operator: Operator,
    ) {
        let Some(node) = self.nodes.get_mut(&node_id) else {
            return;
        };
        let was_succeed = node.state == State::Succeed;
        let is_succeed = state == State::Succeed;
        if was_succeed != is_succeed {
            let layer = node.layer as usize;
            if let Some(count) = self.unfinished_per_layer.get_mut(layer) {
                if is_succeed {
                    *count = count.saturating_sub(1);
                } else {
                    *count += 1;
                }
            }
            if is_succeed {
                self.succeeded_nodes += 1;
                self.candidates.extend(node.downstream.iter().copied());
            } else {
                self.succeeded_nodes = self.succeeded_nodes.saturating_sub(1);
            }
        }
        node.state = state;
        node.operator = operator;
        if state == State::Running {
            self.node_start_seq.insert(node_id, sched.batch_seq);
            node.start_time = Some(sched.now);
            node.end_time = None;
        }
        if state.is_finished() {
            node.end_time = Some(sched.now);
        }
        txn.dirty_nodes.insert((self.rec.id, node_id));
        txn.stage_dirty.insert(self.rec.id);
        self.event(txn, Subject::Node { node_id }, state, operator);
    }

    fn set_task(
        &mut self,
        txn: &mut Txn,
        sched: &Sched,
        task_id: u64,
        state: State,
        operator: Operator,
    ) {
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        let was_succeed = task.state == State::Succeed;
        if was_succeed != (state == State::Succeed) {
            let count = self.unfinished_tasks.entry(task.node_id).or_default();
            if was_succeed {
                *count += 1;
            } else {
                *count = count.saturating_sub(1);
            }
        }
        task.state = state;
        task.operator = operator;
        if state.is_finished() {
            task.end_time = Some(sched.now);
        }
        let node_id = task.node_id;
        txn.dirty_tasks.insert((self.rec.id, task_id));
        self.event(txn, Subject::SubTask { node_id, task_id }, state, operator);
    }

    fn log(&mut self, txn: &mut Txn, sched: &Sched, task_id: u64, content: String) {
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        let record = LogRecord {
            v: RECORD_VERSION,
            task_id,
            execute_times: task.execute_times,
            time: sched.now,
            content,
        };
        txn.batch
            .put_json(keys::log(task_id, task.log_count), &record);
        task.log_count += 1;
        txn.dirty_tasks.insert((self.rec.id, task_id));
    }

    fn node_flags(&self, node: &NodeRecord) -> Flags {
        node.task_ids
            .iter()
            .filter_map(|id| self.tasks.get(id))
            .fold(Flags::ALL, |acc, task| acc.and(task.flags))
    }

    fn recompute_stage(&mut self) {
        let rolling_back = self.rec.operator == Operator::Rollback;
        let stage = if rolling_back {
            self.nodes
                .values()
                .filter(|n| {
                    n.state != State::Pending
                        && !(n.state == State::Succeed && n.operator == Operator::Rollback)
                })
                .map(|n| n.layer)
                .max()
                .unwrap_or(1)
        } else {
            self.unfinished_per_layer
                .iter()
                .position(|count| *count > 0)
                .and_then(|layer| u32::try_from(layer).ok())
                .unwrap_or(self.rec.max_stage)
        };
        self.rec.stage = stage;
    }

    fn input_of(&mut self, node_id: u64) -> Arc<Map<String, Value>> {
        if let Some(input) = self.inputs.get(&node_id) {
            return Arc::clone(input);
        }
        if !self.has_outputs {
            // Not cached: a later upstream output must still be seen.
            return Arc::new(Map::new());
        }
        let mut ancestors = BTreeSet::new();
        let mut stack: Vec<u64> = self
            .nodes
            .get(&node_id)
            .map(|n| n.upstream.clone())
            .unwrap_or_default();
        while let Some(id) = stack.pop() {
            if let Some(node) = self.nodes.get(&id) {
                if ancestors.insert((node.layer, id)) {
                    stack.extend(node.upstream.iter().copied());
                }
            }
        }
        let mut input = Map::new();
        for (_, id) in ancestors {
            if let Some(node) = self.nodes.get(&id) {
                for task_id in &node.task_ids {
                    if let Some(task) = self.tasks.get(task_id) {
                        merge_context(&mut input, &task.output);
                    }
                }
            }
        }
        let input = Arc::new(input);
        self.inputs.insert(node_id, Arc::clone(&input));
        input
    }

    fn enqueue(&mut self, task_id: u64) {
        let pool = self
            .tasks
            .get(&task_id)
            .and_then(|t| self.nodes.get(&t.node_id))
            .and_then(|n| n.pool.clone())
            .unwrap_or_default();
        self.ready.entry(pool).or_default().push_back(task_id);
    }

    /// Forward progress: start nodes whose upstream succeeded, resume interrupted ones,
    /// finish the DAG when every node succeeded.
    fn advance(
        &mut self,
        txn: &mut Txn,
        sched: &mut Sched,
        counters: &mut Counters,
        finished: &mut Vec<u64>,
    ) {
        if self.rec.state.is_finished()
            || self.failing
            || self.rec.operator == Operator::Cancel
            || self.rec.operator == Operator::Rollback
        {
            return;
        }
        // Starting a node may finish it at once (no sub-tasks), which adds its downstream
        // nodes to the candidates, so this runs until the worklist is empty.
        while let Some(node_id) = self.candidates.pop_first() {
            if self.failing {
                break;
            }
            let Some(node) = self.nodes.get(&node_id) else {
                continue;
            };
            let startable = match node.state {
                State::Pending => node.upstream.iter().all(|up| {
                    self.nodes
                        .get(up)
                        .is_some_and(|u| u.state == State::Succeed)
                }),
                State::Ready => true,
                _ => false,
            };
            if startable {
                self.start_node(txn, sched, counters, node_id);
            }
        }
        if !self.failing && self.succeeded_nodes == self.nodes.len() {
            let operator = self.rec.operator;
            self.set_dag(txn, sched, State::Succeed, operator);
            self.release_lock(txn, sched);
            finished.push(self.id());
        }
    }

    fn start_node(
        &mut self,
        txn: &mut Txn,
        sched: &mut Sched,
        counters: &mut Counters,
        node_id: u64,
    ) {
        let Some(node) = self.nodes.get(&node_id).cloned() else {
            return;
        };
        if !node.expanded {
            let FanOut::Dynamic(key) = &node.fan_out else {
                return;
            };
            let input = self.input_of(node_id);
            match input.get(key) {
                Some(Value::Array(items)) => {
                    let flags = node.flags;
                    let ids = self.create_tasks(txn, sched, counters, &node, items.clone(), flags);
                    if let Some(n) = self.nodes.get_mut(&node_id) {
                        n.task_ids = ids;
                        n.expanded = true;
                    }
                    txn.dirty_nodes.insert((self.rec.id, node_id));
                }
                other => {
                    let found = match other {
                        None => "nothing".to_string(),
                        Some(value) => format!("{value}"),
                    };
                    let ids = self.create_tasks(
                        txn,
                        sched,
                        counters,
                        &node,
                        vec![Value::Null],
                        node.flags,
                    );
                    if let Some(n) = self.nodes.get_mut(&node_id) {
                        n.task_ids = ids.clone();
                    }
                    for id in ids {
                        self.set_task(txn, sched, id, State::Failed, node.operator);
                        self.log(txn, sched, id, format!("ERROR: dynamic sub-tasks: input key '{key}' must be an array, found {found}"));
                    }
                    self.set_node(txn, sched, node_id, State::Failed, node.operator);
                    self.failing = true;
                    return;
                }
            }
        }
        let operator = self
            .nodes
            .get(&node_id)
            .map(|n| n.operator)
            .unwrap_or(Operator::Run);
        if self.rec.state == State::Ready {
            let dag_operator = self.rec.operator;
            self.set_dag(txn, sched, State::Running, dag_operator);
        }
        self.set_node(txn, sched, node_id, State::Running, operator);
        self.input_of(node_id);
        let task_ids = self
            .nodes
            .get(&node_id)
            .map(|n| n.task_ids.clone())
            .unwrap_or_default();
        let mut pending = false;
        for task_id in task_ids {
            let Some(task) = self.tasks.get(&task_id) else {
                continue;
            };
            if task.state == State::Pending {
                let op = task.operator;
                self.set_task(txn, sched, task_id, State::Ready, op);
                self.enqueue(task_id);
                pending = true;
            } else if task.state != State::Succeed {
                pending = true;
            }
        }
        if !pending {
            self.set_node(txn, sched, node_id, State::Succeed, operator);
        }
    }

    fn create_tasks(
        &mut self,
        txn: &mut Txn,
        sched: &Sched,
        counters: &mut Counters,
        node: &NodeRecord,
        params: Vec<Value>,
        flags: Option<Flags>,
    ) -> Vec<u64> {
        let base_flags = flags.unwrap_or_default();
        let many = params.len() > 1;
        let mut ids = Vec::with_capacity(params.len());
        for (index, params) in params.into_iter().enumerate() {
            counters.next_task += 1;
            let id = counters.next_task;
            let name = params
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| {
                    if many {
                        format!("{} #{}", node.name, index + 1)
                    } else {
                        node.name.clone()
                    }
                });
            let task = TaskRecord {
                v: RECORD_VERSION,
                id,
                dag_id: node.dag_id,
                node_id: node.id,
                index: u32::try_from(index).unwrap_or(u32::MAX),
                name,
                task_type: node.task_type.clone(),
                params,
                flags: base_flags,
                state: State::Pending,
                operator: node.operator,
                execute_times: 0,
                auto_retries: 0,
                rollback_before_retry: false,
                ran: false,
                local: Map::new(),
                output: Map::new(),
                additional_data: Map::new(),
                log_count: 0,
                create_time: sched.now,
                start_time: None,
                end_time: None,
            };
            *self.unfinished_tasks.entry(node.id).or_default() += 1;
            self.tasks.insert(id, task);
            txn.dirty_tasks.insert((self.rec.id, id));
            ids.push(id);
        }
        txn.counters_dirty = true;
        ids
    }

    /// Takes the next task that fits the pools, if any.
    fn pop_dispatchable(&mut self) -> Option<u64> {
        for (pool, queue) in self.ready.iter_mut() {
            if queue.is_empty() {
                continue;
            }
            if !pool.is_empty() {
                let capacity = self.rec.pools.get(pool).copied().unwrap_or(0);
                let used = self.pool_running.get(pool).copied().unwrap_or(0);
                if used >= capacity {
                    continue;
                }
            }
            return queue.pop_front();
        }
        None
    }

    fn dispatch(&mut self, txn: &mut Txn, sched: &mut Sched, task_id: u64) {
        let Some(task) = self.tasks.get(&task_id) else {
            return;
        };
        if task.state != State::Ready {
            return;
        }
        let Some(node) = self.nodes.get(&task.node_id) else {
            return;
        };
        let pool = node.pool.clone();
        let timeout = Duration::from_millis(node.timeout_ms);
        let node_id = node.id;
        let rolling_back = task.operator == Operator::Rollback;
        let phase = if rolling_back {
            Phase::Rollback
        } else {
            Phase::Execute {
                rollback_first: task.rollback_before_retry,
            }
        };
        let input = self.input_of(node_id);
        let Some(task) = self.tasks.get_mut(&task_id) else {
            return;
        };
        task.execute_times += 1;
        if !rolling_back {
            task.ran = true;
        }
        task.start_time = Some(sched.now);
        task.end_time = None;
        let operator = task.operator;
        let cancel = CancellationToken::new();
        let job = Job {
            dag_id: task.dag_id,
            node_id,
            task_id,
            index: task.index,
            name: task.name.clone(),
            task_type: task.task_type.clone(),
            execute_times: task.execute_times,
            phase,
            params: task.params.clone(),
            dag_params: Arc::clone(&self.dag_params),
            input,
            local: task.local.clone(),
            timeout,
            cancel: cancel.clone(),
        };
        self.set_task(txn, sched, task_id, State::Running, operator);
        self.running.insert(task_id, cancel);
        if let Some(pool) = pool {
            *self.pool_running.entry(pool).or_default() += 1;
        }
        sched.running_total += 1;
        let node_durable = self
            .node_start_seq
            .get(&node_id)
            .is_none_or(|seq| sched.is_durable(*seq));
        let continuable = self
            .tasks
            .get(&task_id)
            .is_some_and(|t| t.flags.can_continue);
        if continuable && !rolling_back && node_durable {
            txn.early.push(job);
        } else {
            txn.spawns.push(job);
        }
    }

    fn release_slot(&mut self, sched: &mut Sched, task_id: u64) {
        if self.running.remove(&task_id).is_none() {
            return;
        }
        sched.running_total = sched.running_total.saturating_sub(1);
        let pool = self
            .tasks
            .get(&task_id)
            .and_then(|t| self.nodes.get(&t.node_id))
            .and_then(|n| n.pool.clone());
        if let Some(pool) = pool {
            if let Some(used) = self.pool_running.get_mut(&pool) {
                *used = used.saturating_sub(1);
            }
        }
    }

    fn release_lock(&mut self, txn: &mut Txn, sched: &mut Sched) {
        if !self.rec.lock_held {
            return;
        }
        if let Some(key) = keys::lock(&self.rec.maintenance) {
            if sched.locks.get(&key).map(|holder| holder.dag_id) == Some(self.rec.id) {
                sched.locks.remove(&key);
                // The record stays: it remembers who took the lock last.
                txn.batch.put_json(
                    key,
                    &LockRecord {
                        v: RECORD_VERSION,
                        dag_id: self.rec.id,
                        held: false,
                    },
                );
            }
        }
        self.rec.lock_held = false;
        txn.dirty_dags.insert(self.id());
    }

    /// Takes the lock again (after a failure released it), as obshell's
    /// `StartMaintenance` + `UpdateMaintenanceTask` do: refused while another DAG holds
    /// it, and `Expired` when a newer DAG has taken a tenant lock in between.
    fn reacquire_lock(&mut self, txn: &mut Txn, sched: &mut Sched) -> Result<(), OperateError> {
        if self.rec.lock_held {
            return Ok(());
        }
        let Some(key) = keys::lock(&self.rec.maintenance) else {
            return Ok(());
        };
        if let Some(conflict) =
            lock_conflict(&sched.locks, &self.rec.maintenance, Some(self.rec.id))
        {
            return Err(OperateError::LockConflict(conflict));
        }
        if let Maintenance::Tenant(lock_key) = &self.rec.maintenance {
            if let Some(taker) = sched.takers.get(&key).filter(|t| t.dag_id != self.rec.id) {
                return Err(OperateError::Expired {
                    lock_key: lock_key.clone(),
                    holder: sched.ids.generic_id(taker.dag_id, taker.scope),
                    dag: sched.ids.generic_id(self.rec.id, self.rec.scope),
                    dag_name: self.rec.name.clone(),
                });
            }
        }
        take_lock(txn, sched, key, &self.rec);
        self.rec.lock_held = true;
        txn.dirty_dags.insert(self.id());
        Ok(())
    }

    fn handle_finished(&mut self, txn: &mut Txn, sched: &mut Sched, result: RunResult) {
        let RunResult {
            task_id,
            execute_times,
            rollback,
            outcome,
            output,
        } = result;
        let Some(task) = self.tasks.get(&task_id) else {
            return;
        };
        let current = task.state == State::Running
            && task.execute_times == execute_times
            && (task.operator == Operator::Rollback) == rollback;
        if !current {
            tracing::debug!(
                task_id,
                execute_times,
                "discarding result of a stale attempt"
            );
            return;
        }
        let node_id = task.node_id;
        let operator = task.operator;
        self.release_slot(sched, task_id);
        if rollback {
            match outcome {
                Outcome::Succeeded => {
                    self.set_task(txn, sched, task_id, State::Succeed, Operator::Rollback)
                }
                other => {
                    let message = outcome_message(&other);
                    self.log(txn, sched, task_id, message);
                    self.set_task(txn, sched, task_id, State::Failed, Operator::Rollback);
                }
            }
            self.settle_rollback_node(txn, sched, node_id);
            return;
        }
        // A sub-task that gives up with an error once its DAG is being cancelled was
        // cancelled, whatever it says.
        let outcome = if self.rec.operator == Operator::Cancel && outcome != Outcome::Succeeded {
            Outcome::Cancelled
        } else {
            outcome
        };
        match outcome {
            Outcome::Succeeded => {
                self.has_outputs |= !output.is_empty();
                if let Some(task) = self.tasks.get_mut(&task_id) {
                    task.output = output;
                    task.rollback_before_retry = false;
                }
                self.set_task(txn, sched, task_id, State::Succeed, operator);
                let all_done = self.unfinished_tasks.get(&node_id).copied().unwrap_or(0) == 0;
                if all_done {
                    let node_operator = self
                        .nodes
                        .get(&node_id)
                        .map(|n| n.operator)
                        .unwrap_or(operator);
                    self.set_node(txn, sched, node_id, State::Succeed, node_operator);
                }
            }
            Outcome::Cancelled => {
                self.log(txn, sched, task_id, "sub task cancelled".to_string());
                if let Some(task) = self.tasks.get_mut(&task_id) {
                    task.rollback_before_retry = true;
                }
                self.set_task(txn, sched, task_id, State::Failed, Operator::Cancel);
                self.set_node(txn, sched, node_id, State::Failed, Operator::Cancel);
            }
            failure => {
                let message = outcome_message(&failure);
                self.log(txn, sched, task_id, message);
                let policy = self.nodes.get(&node_id).and_then(|n| n.retry);
                let used = self
                    .tasks
                    .get(&task_id)
                    .map(|t| t.auto_retries)
                    .unwrap_or(0);
                let cancelling = self.rec.operator == Operator::Cancel;
                if let (Some(policy), false, false) = (policy, self.failing, cancelling) {
                    if used < policy.attempts {
                        let attempt = used + 1;
                        let delay = policy.backoff(attempt);
                        self.log(
                            txn,
                            sched,
                            task_id,
                            format!(
                                "WARN: automatic retry {attempt}/{} in {} ms",
                                policy.attempts,
                                delay.as_millis()
                            ),
                        );
                        if let Some(task) = self.tasks.get_mut(&task_id) {
                            task.auto_retries = attempt;
                            task.rollback_before_retry = true;
                        }
                        self.set_task(txn, sched, task_id, State::Ready, operator);
                        sched.wakes.push((task_id, execute_times, delay));
                        return;
                    }
                }
                if let Some(task) = self.tasks.get_mut(&task_id) {
                    task.rollback_before_retry = true;
                }
                self.set_task(txn, sched, task_id, State::Failed, operator);
                let node_operator = self
                    .nodes
                    .get(&node_id)
                    .map(|n| n.operator)
                    .unwrap_or(operator);
                self.set_node(txn, sched, node_id, State::Failed, node_operator);
                self.failing = true;
            }
        }
    }

    fn handle_wake(&mut self, task_id: u64, execute_times: u32) {
        let eligible = self
            .tasks
            .get(&task_id)
            .is_some_and(|t| t.state == State::Ready && t.execute_times == execute_times)
            && !self.failing
            && self.rec.operator != Operator::Cancel;
        if eligible {
            self.enqueue(task_id);
        }
    }

    /// Settles a DAG that is failing, cancelling or failing its rollback once nothing runs.
    fn settle(&mut self, txn: &mut Txn, sched: &mut Sched) {
        if self.rec.state.is_finished() || !self.running.is_empty() {
            return;
        }
        let rolling_back = self.rec.operator == Operator::Rollback;
        if !(self.failing || self.rec.operator == Operator::Cancel) {
            return;
        }
        // Nothing queued survives a settle: queued forward sub-tasks go back to PENDING
        // (whatever their node's state) and interrupted nodes to READY, so the next
        // operator restarts them explicitly.
        self.ready.clear();
        let node_ids: Vec<u64> = self.nodes.keys().copied().collect();
        for node_id in node_ids {
            let Some(node) = self.nodes.get(&node_id) else {
                continue;
            };
            let operator = node.operator;
            let interrupted = node.state == State::Running;
            let tasks = node.task_ids.clone();
            if !rolling_back {
                for task_id in tasks {
                    if let Some(task) = self.tasks.get(&task_id) {
                        if task.state == State::Ready {
                            let op = task.operator;
                            self.set_task(txn, sched, task_id, State::Pending, op);
                        }
                    }
                }
            }
            if interrupted {
                self.set_node(txn, sched, node_id, State::Ready, operator);
            }
        }
        let operator = self.rec.operator;
        self.failing = false;
        self.set_dag(txn, sched, State::Failed, operator);
        let exit = self
            .nodes
            .values()
            .any(|n| n.state == State::Failed && n.failure_exit_maintenance);
        if exit {
            self.release_lock(txn, sched);
        }
    }

    // ---- rollback ----

    fn node_ran(node: &NodeRecord) -> bool {
        node.state != State::Pending
    }

    fn rolled_back(node: &NodeRecord) -> bool {
        !ActiveDag::node_ran(node)
            || (node.state == State::Succeed && node.operator == Operator::Rollback)
    }

    fn advance_rollback(&mut self, txn: &mut Txn, sched: &mut Sched, finished: &mut Vec<u64>) {
        if self.rec.operator != Operator::Rollback || self.rec.state.is_finished() || self.failing {
            return;
        }
        let node_ids: Vec<u64> = self.nodes.keys().copied().collect();
        for node_id in node_ids {
            let Some(node) = self.nodes.get(&node_id) else {
                continue;
            };
            if ActiveDag::rolled_back(node)
                || (node.state == State::Running && node.operator == Operator::Rollback)
            {
                continue;
            }
            let downstream_done = node
                .downstream
                .iter()
                .all(|d| self.nodes.get(d).is_none_or(ActiveDag::rolled_back));
            if !downstream_done {
                continue;
            }
            self.set_node(txn, sched, node_id, State::Running, Operator::Rollback);
            let tasks = self
                .nodes
                .get(&node_id)
                .map(|n| n.task_ids.clone())
                .unwrap_or_default();
            for task_id in tasks {
                let Some(task) = self.tasks.get(&task_id) else {
                    continue;
                };
                if task.state == State::Succeed && task.operator == Operator::Rollback {
                    continue;
                }
                if task.ran {
                    self.set_task(txn, sched, task_id, State::Ready, Operator::Rollback);
                    self.enqueue(task_id);
                } else {
                    self.set_task(txn, sched, task_id, State::Succeed, Operator::Rollback);
                }
            }
            self.settle_rollback_node(txn, sched, node_id);
        }
        if self.nodes.values().all(ActiveDag::rolled_back) {
            self.set_dag(txn, sched, State::Succeed, Operator::Rollback);
            self.release_lock(txn, sched);
            finished.push(self.id());
        }
    }

    fn settle_rollback_node(&mut self, txn: &mut Txn, sched: &mut Sched, node_id: u64) {
        let Some(node) = self.nodes.get(&node_id) else {
            return;
        };
        let mut in_progress = false;
        let mut failed = false;
        for id in &node.task_ids {
            if let Some(task) = self.tasks.get(id) {
                match (task.state, task.operator) {
                    (State::Ready | State::Running, Operator::Rollback) => in_progress = true,
                    (State::Failed, Operator::Rollback) => failed = true,
                    _ => {}
                }
            }
        }
        if in_progress {
            return;
        }
        if failed {
            self.set_node(txn, sched, node_id, State::Failed, Operator::Rollback);
            self.failing = true;
        } else {
            self.set_node(txn, sched, node_id, State::Succeed, Operator::Rollback);
        }
    }

    // ---- operators ----
    //
    // obshell's rules (`ob/agent/service/task/dag.go`, `node.go`): every operator but
    // CANCEL needs a FAILED DAG, whatever its operator (a failed rollback and a cancelled
    // DAG included); CANCEL needs an unfinished one. One method per operator; each
    // checks everything before it changes anything, so a refusal changes nothing.

    fn operate(
        &mut self,
        txn: &mut Txn,
        sched: &mut Sched,
        operator: Operator,
    ) -> Result<(), OperateError> {
        match operator {
            Operator::Run => Err(refuse(Operator::Run, Refusal::NotSupported(Operator::Run))),
            Operator::Cancel => self.cancel(txn, sched),
            Operator::Retry => self.retry(txn, sched),
            Operator::Rollback => self.rollback(txn, sched),
            Operator::Pass => self.pass(txn, sched),
        }
    }

    /// Nodes in stage order: by layer, then id.
    fn nodes_in_stage_order(&self) -> Vec<&NodeRecord> {
        let mut nodes: Vec<&NodeRecord> = self.nodes.values().collect();
        nodes.sort_by_key(|node| (node.layer, node.id));
        nodes
    }

    /// Whether any node carries ROLLBACK: the DAG was (partly) rolled back.
    fn rolled_back_any(&self) -> bool {
        self.nodes
            .values()
            .any(|node| node.operator == Operator::Rollback)
    }

    fn cancel(&mut self, txn: &mut Txn, sched: &mut Sched) -> Result<(), OperateError> {
        let state = self.rec.state;
        if state.is_finished() {
            return Err(refuse(Operator::Cancel, Refusal::CancelFinishedDag));
        }
        if self.rec.operator == Operator::Cancel {
            // Already being cancelled: obshell's compare-and-set on the current state
            // succeeds again; nothing more to do.
            return Ok(());
        }
        // obshell checks the nodes in stage order up to the first unfinished one; with
        // parallel branches every node that is running is checked as well.
        for node in self.nodes_in_stage_order() {
            if !self.node_flags(node).can_cancel {
                return Err(refuse(
                    Operator::Cancel,
                    Refusal::CancelNotAllowed {
                        node: node.name.clone(),
                    },
                ));
            }
            if !node.state.is_finished() {
                break;
            }
        }
        for node in self.nodes.values() {
            let runs = node.task_ids.iter().any(|id| self.running.contains_key(id));
            if runs && !self.node_flags(node).can_cancel {
                return Err(refuse(
                    Operator::Cancel,
                    Refusal::CancelNotAllowed {
                        node: node.name.clone(),
                    },
                ));
            }
        }
        // A rollback in progress is cancelled too: its running sub-tasks stop and the
        // DAG ends FAILED+CANCEL; RETRY or ROLLBACK continue it later.
        self.rec.operator = Operator::Cancel;
        txn.dirty_dags.insert(self.id());
        self.event(txn, Subject::Dag, state, Operator::Cancel);
        for token in self.running.values() {
            token.cancel();
        }
        self.ready.clear();
        self.settle(txn, sched);
        Ok(())
    }

    fn retry(&mut self, txn: &mut Txn, sched: &mut Sched) -> Result<(), OperateError> {
        if self.rec.state != State::Failed {
            return Err(refuse(Operator::Retry, Refusal::RetryNotFailedDag));
        }
        let failed: Vec<u64> = self
            .nodes
            .values()
            .filter(|n| n.state == State::Failed)
            .map(|n| n.id)
            .collect();
        for id in &failed {
            if let Some(node) = self.nodes.get(id) {
                if !self.node_flags(node).can_retry {
                    return Err(refuse(
                        Operator::Retry,
                        Refusal::RetryNotAllowed {
                            node: node.name.clone(),
                        },
                    ));
                }
            }
        }
        self.reacquire_lock(txn, sched)?;
        for node_id in failed {
            self.reset_failed_node(txn, sched, node_id);
        }
        // After a (failed or cancelled) rollback, the nodes it undid run again.
        self.reset_rolled_back(txn, sched);
        // As obshell: the DAG runs again (RUN), the retried nodes carry RETRY, so a
        // retried DAG ends SUCCEED+RUN.
        self.set_dag(txn, sched, State::Ready, Operator::Run);
        self.rescan();
        Ok(())
    }

    /// A FAILED node goes back to READY+RETRY with its failed sub-tasks PENDING (a node
    /// that failed before its dynamic sub-tasks existed goes back to PENDING).
    fn reset_failed_node(&mut self, txn: &mut Txn, sched: &mut Sched, node_id: u64) {
        let Some(node) = self.nodes.get(&node_id).cloned() else {
            return;
        };
        if !node.expanded {
            for task_id in &node.task_ids {
                self.tasks.remove(task_id);
                txn.batch.delete(keys::task(*task_id));
            }
            if let Some(n) = self.nodes.get_mut(&node_id) {
                n.task_ids.clear();
            }
            self.unfinished_tasks.insert(node_id, 0);
            self.inputs.remove(&node_id);
            self.set_node(txn, sched, node_id, State::Pending, Operator::Retry);
            return;
        }
        for task_id in &node.task_ids {
            let Some(task) = self.tasks.get_mut(task_id) else {
                continue;
            };
            let undone = task.operator == Operator::Rollback;
            if task.state == State::Failed || undone {
                task.auto_retries = 0;
                if undone {
                    // Its rollback ran (or failed): execute it afresh.
                    task.rollback_before_retry = false;
                }
                self.set_task(txn, sched, *task_id, State::Pending, Operator::Retry);
            }
        }
        self.set_node(txn, sched, node_id, State::Ready, Operator::Retry);
    }

    /// Every node a rollback undid (or was undoing) goes back to PENDING+RUN with its
    /// sub-tasks PENDING, so that the DAG executes it again going forward.
    fn reset_rolled_back(&mut self, txn: &mut Txn, sched: &mut Sched) {
        if !self.rolled_back_any() {
            return;
        }
        let undone: Vec<u64> = self
            .nodes
            .values()
            .filter(|n| n.operator == Operator::Rollback)
            .map(|n| n.id)
            .collect();
        for node_id in undone {
            let tasks = self
                .nodes
                .get(&node_id)
                .map(|n| n.task_ids.clone())
                .unwrap_or_default();
            for task_id in tasks {
                if let Some(task) = self.tasks.get_mut(&task_id) {
                    task.auto_retries = 0;
                    task.rollback_before_retry = false;
                }
                self.set_task(txn, sched, task_id, State::Pending, Operator::Run);
            }
            self.set_node(txn, sched, node_id, State::Pending, Operator::Run);
        }
        // Upstream outputs will be produced again.
        self.inputs.clear();
    }

    fn rollback(&mut self, txn: &mut Txn, sched: &mut Sched) -> Result<(), OperateError> {
        if self.rec.state != State::Failed {
            return Err(refuse(Operator::Rollback, Refusal::RollbackNotFailedDag));
        }
        for node in self.nodes_in_stage_order() {
            if ActiveDag::node_ran(node)
                && !ActiveDag::rolled_back(node)
                && !self.node_flags(node).can_rollback
            {
                return Err(refuse(
                    Operator::Rollback,
                    Refusal::RollbackNotAllowed {
                        node: node.name.clone(),
                    },
                ));
            }
        }
        self.reacquire_lock(txn, sched)?;
        self.set_dag(txn, sched, State::Running, Operator::Rollback);
        Ok(())
    }

    fn pass(&mut self, txn: &mut Txn, sched: &mut Sched) -> Result<(), OperateError> {
        if self.rec.state != State::Failed {
            return Err(refuse(Operator::Pass, Refusal::PassNotFailedDag));
        }
        for node in self.nodes_in_stage_order() {
            if node.state != State::Succeed && !self.node_flags(node).can_pass {
                return Err(refuse(
                    Operator::Pass,
                    Refusal::PassNotAllowed {
                        node: node.name.clone(),
                    },
                ));
            }
        }
        let node_ids: Vec<u64> = self
            .nodes
            .values()
            .filter(|n| n.state != State::Succeed)
            .map(|n| n.id)
            .collect();
        for node_id in node_ids {
            self.pass_node_tasks(txn, sched, node_id);
        }
        self.set_dag(txn, sched, State::Succeed, Operator::Pass);
        self.release_lock(txn, sched);
        Ok(())
    }

    fn pass_node_tasks(&mut self, txn: &mut Txn, sched: &mut Sched, node_id: u64) {
        let tasks = self
            .nodes
            .get(&node_id)
            .map(|n| n.task_ids.clone())
            .unwrap_or_default();
        for task_id in tasks {
            if self
                .tasks
                .get(&task_id)
                .is_some_and(|t| t.state != State::Succeed)
            {
                self.set_task(txn, sched, task_id, State::Succeed, Operator::Pass);
            }
        }
        self.set_node(txn, sched, node_id, State::Succeed, Operator::Pass);
    }

    fn pass_node(
        &mut self,
        txn: &mut Txn,
        sched: &mut Sched,
        node_id: u64,
    ) -> Result<(), OperateError> {
        if self.rec.state != State::Failed {
            return Err(refuse(Operator::Pass, Refusal::PassNodeNotFailedDag));
        }
        let Some(node) = self.nodes.get(&node_id) else {
            return Err(OperateError::NodeNotFound(node_id));
        };
        if node.state != State::Failed {
            return Err(refuse(
                Operator::Pass,
                Refusal::PassNodeNotFailedNode {
                    node: node.name.clone(),
                },
            ));
        }
        if !self.node_flags(node).can_pass {
            return Err(refuse(
                Operator::Pass,
                Refusal::PassNodeNotAllowed {
                    node: node.name.clone(),
                },
            ));
        }
        let others_failed = self
            .nodes
            .values()
            .any(|n| n.id != node_id && n.state == State::Failed);
        if !others_failed {
            self.reacquire_lock(txn, sched)?;
        }
        self.pass_node_tasks(txn, sched, node_id);
        if !others_failed {
            // As obshell: the DAG runs again from the passed node (after a rollback, the
            // nodes it undid run again too).
            self.reset_rolled_back(txn, sched);
            self.set_dag(txn, sched, State::Ready, Operator::Run);
            self.rescan();
        }
        Ok(())
    }

    /// Restart rules for a DAG found unfinished at open.
    fn recover(&mut self, txn: &mut Txn, sched: &mut Sched) {
        if self.rec.state.is_finished() {
            return;
        }
        let rolling_back = self.rec.operator == Operator::Rollback;
        let cancelling = self.rec.operator == Operator::Cancel;
        let node_ids: Vec<u64> = self.nodes.keys().copied().collect();
        for node_id in node_ids {
            let Some(node) = self.nodes.get(&node_id).cloned() else {
                continue;
            };
            if node.state != State::Running {
                continue;
            }
            for task_id in &node.task_ids {
                let Some(task) = self.tasks.get(task_id).cloned() else {
                    continue;
                };
                match task.state {
                    State::Running if cancelling => {
                        self.log(txn, sched, *task_id, "sub task cancelled".to_string());
                        if let Some(t) = self.tasks.get_mut(task_id) {
                            t.rollback_before_retry = true;
                        }
                        self.set_task(txn, sched, *task_id, State::Failed, Operator::Cancel);
                        self.set_node(txn, sched, node_id, State::Failed, Operator::Cancel);
                    }
                    State::Running if !task.flags.can_continue => {
                        self.log(
                            txn,
                            sched,
                            *task_id,
                            "ERROR: task unexpectedly interrupted and cannot continue".to_string(),
                        );
                        if let Some(t) = self.tasks.get_mut(task_id) {
                            t.rollback_before_retry = true;
                        }
                        self.set_task(txn, sched, *task_id, State::Failed, task.operator);
                        if rolling_back {
                            self.settle_rollback_node(txn, sched, node_id);
                        } else {
                            self.set_node(txn, sched, node_id, State::Failed, node.operator);
                            self.failing = true;
                        }
                    }
                    State::Running | State::Ready if rolling_back => {
                        self.set_task(txn, sched, *task_id, State::Ready, Operator::Rollback);
                        self.enqueue(*task_id);
                    }
                    State::Running | State::Ready => {
                        self.set_task(txn, sched, *task_id, State::Pending, task.operator);
                    }
                    _ => {}
                }
            }
            if !rolling_back
                && self
                    .nodes
                    .get(&node_id)
                    .is_some_and(|n| n.state == State::Running)
            {
                self.set_node(txn, sched, node_id, State::Ready, node.operator);
            }
        }
        self.settle(txn, sched);
    }
}

fn refuse(operator: Operator, reason: Refusal) -> OperateError {
    OperateError::NotAllowed { operator, reason }
}

/// The refusal of `operator` on a DAG that is not FAILED (nor running, for CANCEL).
fn not_failed(operator: Operator) -> Refusal {
    match operator {
        Operator::Run => Refusal::NotSupported(Operator::Run),
        Operator::Cancel => Refusal::CancelFinishedDag,
        Operator::Retry => Refusal::RetryNotFailedDag,
        Operator::Rollback => Refusal::RollbackNotFailedDag,
        Operator::Pass => Refusal::PassNotFailedDag,
    }
}

fn outcome_message(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Succeeded => "sub task succeeded".to_string(),
        Outcome::Failed(message) => format!("ERROR: {message}"),
        Outcome::TimedOut => "sub task timeout".to_string(),
        Outcome::Cancelled => "sub task cancelled".to_string(),
    }
}

struct Actor {
    kv: Arc<dyn KvStore>,
    registry: Arc<TaskRegistry>,
    running_handles: Arc<Mutex<HashMap<u64, AbortHandle>>>,
    counters: Counters,
    dags: BTreeMap<u64, ActiveDag>,
    task_dag: HashMap<u64, u64>,
    node_dag: HashMap<u64, u64>,
    sched: Sched,
    clock: Arc<dyn Clock>,
    retention: Option<Duration>,
    last_prune: Option<DateTime<Utc>>,
    shutdown: Vec<oneshot::Sender<()>>,
    pending: Txn,
    poisoned: Arc<std::sync::atomic::AtomicBool>,
    tx: Option<mpsc::UnboundedSender<Msg>>,
}

impl Actor {
    fn load(
        config: &EngineConfig,
        kv: Arc<dyn KvStore>,
        registry: Arc<TaskRegistry>,
        running_handles: Arc<Mutex<HashMap<u64, AbortHandle>>>,
    ) -> Result<Actor, OpenError> {
        let records = Records::new(Arc::clone(&kv));
        let counters = match kv.get(keys::COUNTERS)? {
            Some(bytes) => decode(keys::COUNTERS, &bytes)?,
            None => Counters {
                v: RECORD_VERSION,
                ..Counters::default()
            },
        };
        let mut dags = BTreeMap::new();
        let mut task_dag = HashMap::new();
        let mut node_dag = HashMap::new();
        for dag in records.all_dags()? {
            if dag.state == State::Succeed {
                continue;
            }
            let nodes = records.nodes_of(&dag)?;
            let mut tasks = Vec::new();
            for node in &nodes {
                if registry.get(&node.task_type).is_none() {
                    return Err(OpenError::UnknownTaskType {
                        dag: dag.id,
                        task_type: node.task_type.clone(),
                    });
                }
                node_dag.insert(node.id, dag.id);
                for task in records.tasks_of(node)? {
                    task_dag.insert(task.id, dag.id);
                    tasks.push(task);
                }
            }
            dags.insert(dag.id, ActiveDag::from_records(dag, nodes, tasks));
        }
        let mut locks = HashMap::new();
        let mut takers = HashMap::new();
        for (key, value) in kv.scan_prefix(keys::LOCK)? {
            let lock: LockRecord = decode(&key, &value)?;
            let taker = match records.dag(lock.dag_id)? {
                Some(dag) => dag,
                // The taker was pruned: nobody can be expired by it any more.
                None => continue,
            };
            if lock.held {
                locks.insert(
                    key.clone(),
                    Holder {
                        dag_id: taker.id,
                        dag_name: taker.name.clone(),
                    },
                );
            }
            takers.insert(
                key,
                Taker {
                    dag_id: taker.id,
                    scope: taker.scope,
                },
            );
        }
        Ok(Actor {
            kv,
            registry,
            running_handles,
            counters,
            dags,
            task_dag,
            node_dag,
            sched: Sched {
                now: config.clock.now(),
                running_total: 0,
                worker_limit: config.worker_limit.max(1),
                locks,
                takers,
                ids: DtoBuilder {
                    agent: config.agent.clone(),
                },
                wakes: Vec::new(),
                batch_seq: 1,
                committed: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            },
            clock: Arc::clone(&config.clock),
            retention: config.retention,
            last_prune: None,
            shutdown: Vec::new(),
            pending: Txn::default(),
            poisoned: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            tx: None,
        })
    }

    fn recover(&mut self) {
        self.sched.now = self.clock.now();
        let mut txn = std::mem::take(&mut self.pending);
        for dag in self.dags.values_mut() {
            dag.recover(&mut txn, &mut self.sched);
        }
        self.pending = txn;
    }

    /// `committer` commits in a task of its own, pipelined with the decisions (blocking
    /// stores); `inline` commits in the actor (stores whose commit does not block, where
    /// a hand-off would only add a wake-up).
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Msg>,
        committer: Option<mpsc::Sender<Pending>>,
        inline: Option<Committer>,
    ) {
        // The first batch carries the recovery transitions.
        let mut first = true;
        loop {
            if self.poisoned.load(std::sync::atomic::Ordering::SeqCst) {
                return;
            }
            let mut txn = std::mem::take(&mut self.pending);
            if !first {
                let Some(msg) = rx.recv().await else { return };
                self.sched.now = self.clock.now();
                self.handle(&mut txn, msg);
                let mut drained = 1;
                while drained < 8192 {
                    match rx.try_recv() {
                        Ok(msg) => self.handle(&mut txn, msg),
                        Err(_) => break,
                    }
                    drained += 1;
                }
            }
            first = false;
            let finished = self.schedule(&mut txn);
            let batch = self.seal(&mut txn);
            let stop = !self.shutdown.is_empty() && self.sched.running_total == 0;
            // Continuable sub-tasks whose node start is durable run now; their RUNNING
            // becomes durable with this batch (a crash before that re-runs them anyway).
            for job in std::mem::take(&mut txn.early) {
                self.spawn(job);
            }
            let seq = self.sched.batch_seq;
            self.sched.batch_seq += 1;
            let pending = Pending {
                seq,
                batch,
                replies: txn.replies,
                events: txn.events,
                spawns: txn.spawns,
                wakes: std::mem::take(&mut self.sched.wakes),
                done: if stop {
                    std::mem::take(&mut self.shutdown)
                } else {
                    Vec::new()
                },
            };
            // Hand the batch to the committer and go on deciding: its effects (replies,
            // events, sub-task starts) happen only once it is durable.
            if !pending.is_empty() {
                if let Some(committer) = &committer {
                    if committer.send(pending).await.is_err() {
                        return;
                    }
                } else if let Some(inline) = &inline {
                    if !inline.process(vec![pending]).await {
                        return;
                    }
                }
            }
            self.evict(finished);
            if stop {
                return;
            }
        }
    }

    fn spawn(&self, job: Job) {
        if let Some(tx) = &self.tx {
            spawn_job(job, &self.registry, tx, &self.running_handles);
        }
    }

    fn handle(&mut self, txn: &mut Txn, msg: Msg) {
        match msg {
            Msg::Submit { spec, reply } => {
                let result = self.submit(txn, spec);
                txn.replies.push(Reply::Submit(reply, result));
            }
            Msg::Operate {
                dag_id,
                operator,
                reply,
            } => {
                let result = match self.dags.get_mut(&dag_id) {
                    Some(dag) => dag.operate(txn, &mut self.sched, operator),
                    None => self.refuse_inactive(dag_id, operator),
                };
                txn.replies.push(Reply::Operate(reply, result));
            }
            Msg::PassNode { node_id, reply } => {
                let result = match self
                    .node_dag
                    .get(&node_id)
                    .and_then(|d| self.dags.get_mut(d))
                {
                    Some(dag) => dag.pass_node(txn, &mut self.sched, node_id),
                    None => self.refuse_inactive_node(node_id),
                };
                txn.replies.push(Reply::Operate(reply, result));
            }
            Msg::Finished {
                task_id,
                execute_times,
                rollback,
                outcome,
                output,
            } => {
                if let Ok(mut handles) = self.running_handles.lock() {
                    handles.remove(&task_id);
                }
                if let Some(dag) = self
                    .task_dag
                    .get(&task_id)
                    .and_then(|d| self.dags.get_mut(d))
                {
                    let result = RunResult {
                        task_id,
                        execute_times,
                        rollback,
                        outcome,
                        output,
                    };
                    dag.handle_finished(txn, &mut self.sched, result);
                    dag.settle(txn, &mut self.sched);
                }
            }
            Msg::Log {
                task_id,
                execute_times,
                content,
            } => {
                if let Some(dag) = self
                    .task_dag
                    .get(&task_id)
                    .and_then(|d| self.dags.get_mut(d))
                {
                    let current = dag.tasks.get(&task_id).map(|t| t.execute_times);
                    if current == Some(execute_times) {
                        dag.log(txn, &self.sched, task_id, content);
                    }
                }
            }
            Msg::SetLocal {
                task_id,
                execute_times,
                key,
                value,
            } => {
                self.update_task_data(txn, task_id, execute_times, |task| {
                    task.local.insert(key, value);
                });
            }
            Msg::SetAdditional {
                task_id,
                execute_times,
                key,
                value,
            } => {
                self.update_task_data(txn, task_id, execute_times, |task| {
                    task.additional_data.insert(key, value);
                });
            }
            Msg::Wake {
                task_id,
                execute_times,
            } => {
                if let Some(dag) = self
                    .task_dag
                    .get(&task_id)
                    .and_then(|d| self.dags.get_mut(d))
                {
                    dag.handle_wake(task_id, execute_times);
                }
            }
            Msg::Shutdown { reply } => self.shutdown.push(reply),
        }
    }

    fn update_task_data(
        &mut self,
        txn: &mut Txn,
        task_id: u64,
        execute_times: u32,
        update: impl FnOnce(&mut TaskRecord),
    ) {
        let Some(dag_id) = self.task_dag.get(&task_id).copied() else {
            return;
        };
        let Some(dag) = self.dags.get_mut(&dag_id) else {
            return;
        };
        let Some(task) = dag.tasks.get_mut(&task_id) else {
            return;
        };
        if task.execute_times != execute_times || task.state != State::Running {
            return;
        }
        update(task);
        txn.dirty_tasks.insert((dag_id, task_id));
    }

    fn refuse_inactive(&self, dag_id: u64, operator: Operator) -> Result<(), OperateError> {
        let records = Records::new(Arc::clone(&self.kv));
        match records.dag(dag_id)? {
            None => Err(OperateError::DagNotFound(dag_id)),
            // Only SUCCEED DAGs leave the actor: every operator finds a finished DAG.
            Some(_) => Err(OperateError::NotAllowed {
                operator,
                reason: not_failed(operator),
            }),
        }
    }

    fn refuse_inactive_node(&self, node_id: u64) -> Result<(), OperateError> {
        let records = Records::new(Arc::clone(&self.kv));
        match records.node(node_id)? {
            None => Err(OperateError::NodeNotFound(node_id)),
            Some(_) => Err(OperateError::NotAllowed {
                operator: Operator::Pass,
                reason: Refusal::PassNodeNotFailedDag,
            }),
        }
    }

    fn submit(&mut self, txn: &mut Txn, spec: DagSpec) -> Result<u64, SubmitError> {
        let layers = validate(&spec, &self.registry)?;
        if let Some(conflict) = lock_conflict(&self.sched.locks, &spec.maintenance, None) {
            return Err(SubmitError::LockConflict(conflict));
        }
        let now = self.sched.now;
        self.counters.next_dag += 1;
        let dag_id = self.counters.next_dag;
        let node_ids: Vec<u64> = spec
            .nodes
            .iter()
            .map(|_| {
                self.counters.next_node += 1;
                self.counters.next_node
            })
            .collect();
        txn.counters_dirty = true;
        let max_stage = layers.iter().copied().max().unwrap_or(1);
        let rec = DagRecord {
            v: RECORD_VERSION,
            id: dag_id,
            name: spec.name.clone(),
            scope: spec.scope,
            state: State::Ready,
            operator: Operator::Run,
            stage: 1,
            max_stage,
            maintenance: spec.maintenance.clone(),
            lock_held: false,
            params: spec.params.clone(),
            pools: spec.pools.clone(),
            node_ids: node_ids.clone(),
            create_time: now,
            start_time: None,
            end_time: None,
        };
        let mut dag = ActiveDag::from_records(rec, Vec::new(), Vec::new());
        for (index, node_spec) in spec.nodes.iter().enumerate() {
            let upstream = spec
                .edges
                .iter()
                .filter(|(_, to)| *to == index)
                .map(|(from, _)| node_ids[*from])
                .collect::<BTreeSet<_>>();
            let downstream = spec
                .edges
                .iter()
                .filter(|(from, _)| *from == index)
                .map(|(_, to)| node_ids[*to])
                .collect::<BTreeSet<_>>();
            let type_flags = self
                .registry
                .get(&node_spec.task_type)
                .map(|t| t.flags)
                .unwrap_or_default();
            let node = NodeRecord {
                v: RECORD_VERSION,
                id: node_ids[index],
                dag_id,
                name: node_spec.name.clone(),
                task_type: node_spec.task_type.clone(),
                layer: layers[index],
                upstream: upstream.into_iter().collect(),
                downstream: downstream.into_iter().collect(),
                state: State::Pending,
                operator: Operator::Run,
                fan_out: node_spec.fan_out.clone(),
                expanded: matches!(node_spec.fan_out, FanOut::Static(_)),
                task_ids: Vec::new(),
                pool: node_spec.pool.clone(),
                timeout_ms: u64::try_from(node_spec.timeout.as_millis()).unwrap_or(u64::MAX),
                retry: node_spec.retry,
                flags: Some(node_spec.flags.unwrap_or(type_flags)),
                failure_exit_maintenance: node_spec.failure_exit_maintenance,
                create_time: now,
                start_time: None,
                end_time: None,
            };
            let id = node.id;
            dag.nodes.insert(id, node.clone());
            self.node_dag.insert(id, dag_id);
            txn.dirty_nodes.insert((dag_id, id));
            if let FanOut::Static(params) = &node_spec.fan_out {
                let ids = dag.create_tasks(
                    txn,
                    &self.sched,
                    &mut self.counters,
                    &node,
                    params.clone(),
                    node.flags,
                );
                if let Some(n) = dag.nodes.get_mut(&id) {
                    n.task_ids = ids;
                }
            }
        }
        for task_id in dag.tasks.keys() {
            self.task_dag.insert(*task_id, dag_id);
        }
        if let Some(key) = keys::lock(&spec.maintenance) {
            take_lock(txn, &mut self.sched, key, &dag.rec);
            dag.rec.lock_held = true;
        }
        txn.dirty_dags.insert(dag_id);
        dag.event(txn, Subject::Dag, State::Ready, Operator::Run);
        tracing::info!(dag_id, name = %spec.name, nodes = spec.nodes.len(), "dag submitted");
        dag.reindex();
        self.dags.insert(dag_id, dag);
        Ok(dag_id)
    }

    /// Advances every DAG and dispatches ready sub-tasks within the limits. Returns the
    /// DAGs that finished in this batch.
    fn schedule(&mut self, txn: &mut Txn) -> Vec<u64> {
        let mut finished = Vec::new();
        let dirty: Vec<u64> = self.dags.keys().copied().collect();
        for dag_id in dirty {
            let Some(dag) = self.dags.get_mut(&dag_id) else {
                continue;
            };
            dag.advance(txn, &mut self.sched, &mut self.counters, &mut finished);
            dag.advance_rollback(txn, &mut self.sched, &mut finished);
            dag.settle(txn, &mut self.sched);
        }
        // New task ids from dynamic fan-out.
        for (dag_id, task_id) in &txn.dirty_tasks {
            self.task_dag.entry(*task_id).or_insert(*dag_id);
        }
        if self.shutdown.is_empty() {
            loop {
                let mut progressed = false;
                for dag in self.dags.values_mut() {
                    if self.sched.running_total >= self.sched.worker_limit {
                        break;
                    }
                    if dag.failing
                        || dag.rec.operator == Operator::Cancel
                        || dag.rec.state.is_finished()
                    {
                        continue;
                    }
                    if let Some(task_id) = dag.pop_dispatchable() {
                        dag.dispatch(txn, &mut self.sched, task_id);
                        progressed = true;
                    }
                }
                if !progressed || self.sched.running_total >= self.sched.worker_limit {
                    break;
                }
            }
        }
        finished
    }

    /// Serializes every record the batch touched.
    fn seal(&mut self, txn: &mut Txn) -> Batch {
        for dag_id in std::mem::take(&mut txn.stage_dirty) {
            if let Some(dag) = self.dags.get_mut(&dag_id) {
                let before = dag.rec.stage;
                dag.recompute_stage();
                if dag.rec.stage != before {
                    txn.dirty_dags.insert(dag_id);
                }
            }
        }
        for dag_id in &txn.dirty_dags {
            if let Some(dag) = self.dags.get_mut(dag_id) {
                dag.recompute_stage();
                txn.batch.put_json(keys::dag(*dag_id), &dag.rec);
            }
        }
        // Events carry the stage after the whole batch.
        for event in &mut txn.events {
            if let Some(dag) = self.dags.get(&event.dag_id) {
                event.stage = dag.rec.stage;
            }
        }
        for (dag_id, node_id) in &txn.dirty_nodes {
            if let Some(node) = self.dags.get(dag_id).and_then(|d| d.nodes.get(node_id)) {
                txn.batch.put_json(keys::node(*node_id), node);
            }
        }
        for (dag_id, task_id) in &txn.dirty_tasks {
            if let Some(task) = self.dags.get(dag_id).and_then(|d| d.tasks.get(task_id)) {
                txn.batch.put_json(keys::task(*task_id), task);
            }
        }
        if txn.counters_dirty {
            txn.batch.put_json(keys::COUNTERS.to_vec(), &self.counters);
        }
        std::mem::take(&mut txn.batch)
    }

    /// Forgets DAGs that finished in the last batch (their records are in the batch).
    fn evict(&mut self, finished: Vec<u64>) {
        let any_finished = !finished.is_empty();
        for dag_id in finished {
            if let Some(dag) = self.dags.remove(&dag_id) {
                for task_id in dag.tasks.keys() {
                    self.task_dag.remove(task_id);
                }
                for node_id in dag.nodes.keys() {
                    self.node_dag.remove(node_id);
                }
                tracing::info!(dag_id, state = %dag.rec.state, operator = %dag.rec.operator, "dag finished");
            }
        }
        if any_finished {
            self.maybe_prune();
        }
    }

    fn maybe_prune(&mut self) {
        let Some(retention) = self.retention else {
            return;
        };
        let now = self.clock.now();
        if self
            .last_prune
            .is_some_and(|last| now - last < chrono::Duration::seconds(60))
        {
            return;
        }
        self.last_prune = Some(now);
        let records = Records::new(Arc::clone(&self.kv));
        tokio::task::spawn_blocking(move || {
            if let Err(err) = prune(&records, now, retention) {
                tracing::warn!(error = %err, "pruning finished dags failed");
            }
        });
    }
}

/// A decided batch on its way to disk, with what may happen once it is durable.
struct Pending {
    seq: u64,
    batch: Batch,
    replies: Vec<Reply>,
    events: Vec<Event>,
    spawns: Vec<Job>,
    wakes: Vec<(u64, u32, Duration)>,
    done: Vec<oneshot::Sender<()>>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.batch.is_empty()
            && self.replies.is_empty()
            && self.events.is_empty()
            && self.spawns.is_empty()
            && self.wakes.is_empty()
            && self.done.is_empty()
    }
}

/// Commits batches in order. Batches that queued up during a flush are merged into one
/// commit (group commit); each batch's effects run only after it is durable.
struct Committer {
    kv: Arc<dyn KvStore>,
    registry: Arc<TaskRegistry>,
    tx: mpsc::UnboundedSender<Msg>,
    events: broadcast::Sender<Event>,
    running_handles: Arc<Mutex<HashMap<u64, AbortHandle>>>,
    poisoned: Arc<std::sync::atomic::AtomicBool>,
    committed: Arc<std::sync::atomic::AtomicU64>,
}

impl Committer {
    async fn run(self, mut rx: mpsc::Receiver<Pending>) {
        while let Some(first) = rx.recv().await {
            let mut items = vec![first];
            while items.len() < 256 {
                match rx.try_recv() {
                    Ok(item) => items.push(item),
                    Err(_) => break,
                }
            }
            if !self.process(items).await {
                return;
            }
        }
    }

    /// Commits `items` as one batch, then runs their effects in order. Returns false
    /// (and poisons the engine) when the commit failed.
    async fn process(&self, mut items: Vec<Pending>) -> bool {
        let mut batch = Batch::default();
        let mut seq = 0;
        for item in &mut items {
            // Later batches overwrite earlier writes of the same key.
            batch.writes.append(&mut item.batch.writes);
            seq = seq.max(item.seq);
        }
        if let Err(err) = self.commit(batch).await {
            tracing::error!(error = %err, "engine store commit failed; the engine stops");
            self.poisoned
                .store(true, std::sync::atomic::Ordering::SeqCst);
            for item in items {
                for reply in item.replies {
                    reply.fail(&err);
                }
            }
            return false;
        }
        self.committed
            .fetch_max(seq, std::sync::atomic::Ordering::AcqRel);
        for item in items {
            self.effects(item);
        }
        true
    }

    async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        if self.kv.commit_blocks() {
            let kv = Arc::clone(&self.kv);
            tokio::task::spawn_blocking(move || kv.commit(batch))
                .await
                .map_err(|e| StoreError::Poisoned(e.to_string()))?
        } else {
            self.kv.commit(batch)
        }
    }

    fn effects(&self, item: Pending) {
        for reply in item.replies {
            reply.send();
        }
        for event in item.events {
            let _ = self.events.send(event);
        }
        for (task_id, execute_times, delay) in item.wakes {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                let _ = tx.send(Msg::Wake {
                    task_id,
                    execute_times,
                });
            });
        }
        for job in item.spawns {
            spawn_job(job, &self.registry, &self.tx, &self.running_handles);
        }
        for done in item.done {
            let _ = done.send(());
        }
    }
}

impl Reply {
    fn send(self) {
        match self {
            Reply::Submit(tx, result) => {
                let _ = tx.send(result);
            }
            Reply::Operate(tx, result) => {
                let _ = tx.send(result);
            }
        }
    }

    fn fail(self, err: &StoreError) {
        match self {
            Reply::Submit(tx, _) => {
                let _ = tx.send(Err(SubmitError::Store(StoreError::Poisoned(
                    err.to_string(),
                ))));
            }
            Reply::Operate(tx, _) => {
                let _ = tx.send(Err(OperateError::Store(StoreError::Poisoned(
                    err.to_string(),
                ))));
            }
        }
    }
}

/// Checks a spec and returns each node's layer (longest path from a root, 1-based).
fn validate(spec: &DagSpec, registry: &TaskRegistry) -> Result<Vec<u32>, SubmitError> {
    if spec.nodes.is_empty() {
        return Err(SubmitError::Invalid(
            "a dag needs at least one node".to_string(),
        ));
    }
    let count = spec.nodes.len();
    for (from, to) in &spec.edges {
        if *from >= count || *to >= count {
            return Err(SubmitError::Invalid(format!(
                "edge {from}->{to} names a node that does not exist"
            )));
        }
        if from == to {
            return Err(SubmitError::Invalid(format!(
                "node '{}' depends on itself",
                spec.nodes[*from].name
            )));
        }
    }
    for (name, capacity) in &spec.pools {
        if *capacity == 0 {
            return Err(SubmitError::Invalid(format!(
                "pool '{name}' has capacity 0"
            )));
        }
    }
    for node in &spec.nodes {
        if registry.get(&node.task_type).is_none() {
            return Err(SubmitError::UnknownTaskType(node.task_type.clone()));
        }
        if let Some(pool) = &node.pool {
            if !spec.pools.contains_key(pool) {
                return Err(SubmitError::Invalid(format!(
                    "node '{}' uses undeclared pool '{pool}'",
                    node.name
                )));
            }
        }
        if let FanOut::Static(params) = &node.fan_out {
            if params.is_empty() {
                return Err(SubmitError::Invalid(format!(
                    "node '{}' has no sub-tasks",
                    node.name
                )));
            }
        }
        if node.timeout.is_zero() {
            return Err(SubmitError::Invalid(format!(
                "node '{}' has a zero timeout",
                node.name
            )));
        }
    }
    let mut graph = petgraph::graph::DiGraph::<usize, ()>::new();
    let indices: Vec<_> = (0..count).map(|i| graph.add_node(i)).collect();
    let mut seen = HashSet::new();
    for (from, to) in &spec.edges {
        if seen.insert((*from, *to)) {
            graph.add_edge(indices[*from], indices[*to], ());
        }
    }
    let order = petgraph::algo::toposort(&graph, None).map_err(|cycle| {
        let name = &spec.nodes[graph[cycle.node_id()]].name;
        SubmitError::Invalid(format!("the graph has a cycle through node '{name}'"))
    })?;
    let mut layers = vec![1u32; count];
    for index in order {
        let node = graph[index];
        let layer = graph
            .neighbors_directed(index, petgraph::Direction::Incoming)
            .map(|up| layers[graph[up]] + 1)
            .max()
            .unwrap_or(1);
        layers[node] = layer;
    }
    Ok(layers)
}

fn spawn_job(
    job: Job,
    registry: &Arc<TaskRegistry>,
    tx: &mpsc::UnboundedSender<Msg>,
    running_handles: &Mutex<HashMap<u64, AbortHandle>>,
) {
    let task_id = job.task_id;
    let handle = tokio::spawn(run_job(job, Arc::clone(registry), tx.clone()));
    if let Ok(mut handles) = running_handles.lock() {
        handles.insert(task_id, handle.abort_handle());
    }
}

async fn run_job(job: Job, registry: Arc<TaskRegistry>, tx: mpsc::UnboundedSender<Msg>) {
    let span = tracing::info_span!(
        "sub_task",
        dag_id = job.dag_id,
        node_id = job.node_id,
        task_id = job.task_id,
        name = %job.name,
        execute_times = job.execute_times,
        rollback = job.phase == Phase::Rollback,
    );
    let ctx = TaskContext {
        dag_id: job.dag_id,
        node_id: job.node_id,
        task_id: job.task_id,
        index: job.index,
        execute_times: job.execute_times,
        dag_params: job.dag_params,
        input: job.input,
        params: job.params.clone(),
        local: Mutex::new(job.local),
        output: Mutex::new(Map::new()),
        cancel: job.cancel.clone(),
        tx: tx.clone(),
    };
    let outcome = async {
        let Some(task_type) = registry.get(&job.task_type) else {
            return Outcome::Failed(format!("unknown task type '{}'", job.task_type));
        };
        let task = match (task_type.factory)(&job.params) {
            Ok(task) => task,
            Err(err) => return Outcome::Failed(err.message),
        };
        let work = async {
            match job.phase {
                Phase::Execute { rollback_first } => {
                    if rollback_first {
                        task.rollback(&ctx).await?;
                    }
                    task.execute(&ctx).await
                }
                Phase::Rollback => task.rollback(&ctx).await,
            }
        };
        let guarded = AssertUnwindSafe(work).catch_unwind();
        tokio::select! {
            biased;
            result = tokio::time::timeout(job.timeout, guarded) => match result {
                Err(_) => Outcome::TimedOut,
                Ok(Err(panic)) => Outcome::Failed(format!("sub task panicked: {}", panic_message(panic.as_ref()))),
                Ok(Ok(Err(err))) => Outcome::Failed(err.message),
                Ok(Ok(Ok(()))) => Outcome::Succeeded,
            },
            () = job.cancel.cancelled() => Outcome::Cancelled,
        }
    }
    .instrument(span)
    .await;
    let output = ctx.take_output();
    let _ = tx.send(Msg::Finished {
        task_id: job.task_id,
        execute_times: job.execute_times,
        rollback: job.phase == Phase::Rollback,
        outcome,
        output,
    });
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic".to_string()
    }
}

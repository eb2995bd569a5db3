//! The engine's handle ([`Engine`]): how callers submit DAGs, apply operators, wait and
//! query. Everything else of the engine lives in the submodules, one job each:
//!
//! - `config.rs`: [`EngineConfig`] and [`AgentInfo`];
//! - `msg.rs`: the messages to the scheduler actor and the replies it holds back;
//! - `actor.rs`: the scheduler actor and the commit protocol, step by step;
//! - `committer.rs`: group commit, effects released only after durability, and what a
//!   failed commit does;
//! - `txn.rs`: what one batch of decisions reads and produces;
//! - `dag_state.rs`: one unfinished DAG in memory and its mode;
//! - `progress.rs`: how a DAG moves on its own (start, dispatch, results, settle,
//!   rollback);
//! - `operators.rs`: CANCEL, RETRY, ROLLBACK, PASS, and PASS of a node;
//! - `recovery.rs`: what open reads, and the restart rules;
//! - `locks.rs`: the maintenance lock table;
//! - `runner.rs`: running one sub-task attempt;
//! - `validate.rs`: checking a spec before anything of it is created.
//!
//! Invariant: the handle never changes the store itself (except retention); it sends
//! requests to the actor and reads what is durable.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use crate::dto::{DagDetailDto, DtoBuilder, NodeDetailDto, TaskDetailDto, TaskLogDto};
use crate::error::{OpenError, OperateError, QueryError, SubmitError};
use crate::event::Event;
use crate::id::{GenericId, IdOrigin};
use crate::model::{DagSpec, Maintenance, Operator, Scope};
use crate::record::{DagRecord, NodeRecord, TaskRecord};
use crate::store::{retention, KvStore, Records, StoreError};
use crate::task::TaskRegistry;

mod actor;
mod committer;
mod config;
mod dag_state;
mod links;
mod locks;
mod msg;
mod node_map;
mod operators;
mod progress;
mod ready;
mod recovery;
mod runner;
mod txn;
mod validate;

pub use config::{AgentInfo, EngineConfig};

use actor::{Actor, Commit};
use committer::{Committer, Health, Pipeline, StopGuard};
use msg::Msg;
use runner::{Runner, RunningJobs};

struct Shared {
    tx: mpsc::UnboundedSender<Msg>,
    records: Records,
    events: broadcast::Sender<Event>,
    /// Bumped once per durable batch with a DAG-level transition (`wait_settled`).
    dag_changes: watch::Receiver<u64>,
    dto: DtoBuilder,
    /// The scheduler actor and the committer.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The committer's own thread (a store whose commit blocks): joined by
    /// [`Engine::shutdown`], so the store is released (sled's lock too) when it returns.
    committer: Mutex<Option<std::thread::JoinHandle<()>>>,
    running: RunningJobs,
    health: Arc<Health>,
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
        let registry = Arc::new(registry);
        let loaded = recovery::load(&store, &registry)?;
        if let Some(retention) = config.retention {
            retention::prune(&records, config.clock.now(), retention)?;
        }
        let running = RunningJobs::default();
        let health = Arc::new(Health::default());
        let alive = StopGuard::new(Arc::clone(&health));
        let runner = Runner::new(registry, tx.clone(), Arc::clone(&running));
        let mut actor = Actor::new(
            &config,
            Arc::clone(&store),
            runner.clone(),
            loaded,
            Arc::clone(&health),
            Arc::clone(&alive),
        );
        actor.recover();
        let (dag_changes_tx, dag_changes) = watch::channel(0);
        let committer = Committer {
            kv: Arc::clone(&store),
            runner,
            events: events.clone(),
            dag_changes: dag_changes_tx,
            health: Arc::clone(&health),
            committed: actor.committed(),
            released: AtomicU64::new(0),
            _alive: alive,
        };
        let mut tasks = Vec::new();
        let mut committer_thread = None;
        if store.commit_blocks() {
            let runtime = tokio::runtime::Handle::current();
            let (pipeline, thread) = Pipeline::start(committer, runtime)
                .map_err(|e| OpenError::Store(StoreError::Poisoned(e.to_string())))?;
            committer_thread = Some(thread);
            tasks.push(tokio::spawn(actor.run(rx, Commit::Pipelined(pipeline))));
        } else {
            tasks.push(tokio::spawn(actor.run(rx, Commit::Inline(committer))));
        }
        Ok(Engine {
            shared: Arc::new(Shared {
                tx,
                records,
                events,
                dag_changes,
                dto: DtoBuilder {
                    agent: config.agent.clone(),
                },
                tasks: Mutex::new(tasks),
                committer: Mutex::new(committer_thread),
                running,
                health,
            }),
        })
    }

    /// A reader of the DAGs in `store` that never decides (an agent of a cluster that is
    /// not its maintainer): every query reads what is durable in the store at the time
    /// of the call; [`Engine::submit`] and the operators answer `ShutDown`, and
    /// [`Engine::wait_settled`] of an unfinished DAG too. It loads, recovers, starts
    /// and writes nothing.
    pub fn reader(agent: AgentInfo, store: Arc<dyn KvStore>) -> Engine {
        let (tx, _) = mpsc::unbounded_channel();
        let (events, _) = broadcast::channel(16);
        let (_, dag_changes) = watch::channel(0);
        let health = Arc::new(Health::default());
        health.abort();
        health.stopped().cancel();
        Engine {
            shared: Arc::new(Shared {
                tx,
                records: Records::new(store),
                events,
                dag_changes,
                dto: DtoBuilder { agent },
                tasks: Mutex::new(Vec::new()),
                committer: Mutex::new(None),
                running: RunningJobs::default(),
                health,
            }),
        }
    }

    /// The error for a request the engine will never answer: the commit failure that
    /// stopped it ([`StoreError::Poisoned`]), or `shut_down`.
    fn stopped<E: From<StoreError>>(&self, shut_down: E) -> E {
        match self.shared.health.poisoned() {
            Some(reason) => E::from(StoreError::Poisoned(reason.to_string())),
            None => shut_down,
        }
    }

    /// Creates a DAG (and takes its maintenance lock) durably, then starts it.
    /// Returns the DAG id.
    ///
    /// # Errors
    /// The spec is invalid, a task type is unknown, the lock is held, or the store
    /// failed ([`SubmitError::Store`]; the engine then stops and nothing was created).
    /// [`SubmitError::ShutDown`] once the engine is stopped.
    ///
    /// # Cancel safety
    /// If the future is dropped, the DAG may or may not have been created.
    pub async fn submit(&self, spec: DagSpec) -> Result<u64, SubmitError> {
        let (reply, answer) = oneshot::channel();
        if self.shared.tx.send(Msg::Submit { spec, reply }).is_err() {
            return Err(self.stopped(SubmitError::ShutDown));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(self.stopped(SubmitError::ShutDown)))
    }

    /// Applies RETRY, ROLLBACK, CANCEL or PASS to a DAG (RUN is applied at submit).
    /// Returns once the resulting transition is durable.
    ///
    /// # Errors
    /// [`OperateError::NotAllowed`] with the reason when the operator does not apply;
    /// [`OperateError::Store`] when the store failed (the engine then stops and the
    /// operator was not applied); [`OperateError::ShutDown`] once the engine is stopped.
    ///
    /// # Cancel safety
    /// If the future is dropped, the operator may or may not have been applied.
    pub async fn operate(&self, dag_id: u64, operator: Operator) -> Result<(), OperateError> {
        let (reply, answer) = oneshot::channel();
        let msg = Msg::Operate {
            dag_id,
            operator,
            reply,
        };
        self.request(msg, answer).await
    }

    /// PASS on one failed node: it becomes SUCCEED+PASS and the DAG continues downstream.
    ///
    /// # Errors
    /// [`OperateError::NotAllowed`] with the reason when PASS does not apply; store
    /// failures and a stopped engine as [`Engine::operate`].
    ///
    /// # Cancel safety
    /// If the future is dropped, the operator may or may not have been applied.
    pub async fn pass_node(&self, node_id: u64) -> Result<(), OperateError> {
        let (reply, answer) = oneshot::channel();
        self.request(Msg::PassNode { node_id, reply }, answer).await
    }

    async fn request(
        &self,
        msg: Msg,
        answer: oneshot::Receiver<Result<(), OperateError>>,
    ) -> Result<(), OperateError> {
        if self.shared.tx.send(msg).is_err() {
            return Err(self.stopped(OperateError::ShutDown));
        }
        answer
            .await
            .unwrap_or_else(|_| Err(self.stopped(OperateError::ShutDown)))
    }

    /// Durable transitions as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.shared.events.subscribe()
    }

    /// Waits until the DAG is FAILED or SUCCEED and returns its record.
    ///
    /// # Errors
    /// The DAG does not exist or the store failed. When the engine stops before the
    /// DAG settles: [`QueryError::Store`] with [`StoreError::Poisoned`] if a failed
    /// commit stopped it, [`QueryError::ShutDown`] otherwise.
    ///
    /// # Cancel safety
    /// Cancel safe.
    pub async fn wait_settled(&self, dag_id: u64) -> Result<DagRecord, QueryError> {
        // Woken by DAG-level transitions only, not by every sub-task's.
        let mut changes = self.shared.dag_changes.clone();
        changes.mark_unchanged();
        let stopped = self.shared.health.stopped().clone();
        loop {
            // Read after checking: once stopped, nothing more becomes durable, so the
            // record read then is final.
            let was_stopped = stopped.is_cancelled();
            let dag = self.dag_record(dag_id)?;
            if dag.state.is_finished() {
                return Ok(dag);
            }
            if was_stopped {
                return Err(self.stopped(QueryError::ShutDown));
            }
            tokio::select! {
                () = stopped.cancelled() => {}
                changed = changes.changed() => {
                    if changed.is_err() {
                        // The committer is gone: the engine is stopping.
                        stopped.cancelled().await;
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
        Ok(self
            .shared
            .dto
            .dag_view(&self.shared.records, &dag, show_details)?)
    }

    /// `NodeDetailDTO` of a node; with `show_details`, its sub-tasks too.
    ///
    /// # Errors
    /// [`QueryError::NotFound`] or a store failure.
    pub fn node_detail(
        &self,
        node_id: u64,
        show_details: bool,
    ) -> Result<NodeDetailDto, QueryError> {
        let node = self
            .shared
            .records
            .node(node_id)?
            .ok_or(QueryError::NotFound {
                kind: "node",
                id: node_id,
            })?;
        let scope = self.scope_of(node.dag_id)?.unwrap_or_default();
        Ok(self
            .shared
            .dto
            .node_view(&self.shared.records, &node, scope, show_details)?)
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
        Ok(self
            .shared
            .dto
            .task_view(&self.shared.records, &task, scope)?)
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
        self.views(&self.dags(scope)?, show_details)
    }

    /// Every DAG of `scope` that has not succeeded (running, or FAILED and waiting for
    /// an operator), oldest first. Reads only those DAGs, not the finished ones
    /// ([`Records::active_dags`]).
    ///
    /// # Errors
    /// A store failure.
    pub fn active_dags(&self, scope: Option<Scope>) -> Result<Vec<DagRecord>, QueryError> {
        let mut dags = self.shared.records.active_dags()?;
        dags.retain(|dag| scope.is_none_or(|scope| dag.scope == scope));
        Ok(dags)
    }

    /// Records of the DAGs of `scope` that are unfinished in obshell's sense
    /// (`is_finished = false`, `service/task/dag.go`): not SUCCEED, and not FAILED
    /// without a maintenance lock. A FAILED maintenance DAG still waits for an
    /// operator, so it is listed. Reads only DAGs that have not succeeded.
    ///
    /// # Errors
    /// A store failure.
    pub fn unfinished_dag_records(
        &self,
        scope: Option<Scope>,
    ) -> Result<Vec<DagRecord>, QueryError> {
        let mut dags = self.active_dags(scope)?;
        dags.retain(DagRecord::is_unfinished);
        Ok(dags)
    }

    /// DTOs of [`Engine::unfinished_dag_records`].
    ///
    /// # Errors
    /// A store failure.
    pub fn unfinished_dags(
        &self,
        scope: Option<Scope>,
        show_details: bool,
    ) -> Result<Vec<DagDetailDto>, QueryError> {
        self.views(&self.unfinished_dag_records(scope)?, show_details)
    }

    fn views(
        &self,
        dags: &[DagRecord],
        show_details: bool,
    ) -> Result<Vec<DagDetailDto>, QueryError> {
        let records = &self.shared.records;
        let mut views = Vec::with_capacity(dags.len());
        for dag in dags {
            views.push(self.shared.dto.dag_view(records, dag, show_details)?);
        }
        Ok(views)
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
        Ok(self.shared.records.lock_taker(lock)?)
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
        retention::prune(&self.shared.records, now, retention)
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
        // The actor's end closes the committer's queue; its thread then returns and
        // drops its handle on the store.
        let thread = self.shared.committer.lock().ok().and_then(|mut t| t.take());
        if let Some(thread) = thread {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }

    /// Stops at once, like a crash: nothing more is committed, running sub-tasks are
    /// dropped. Whatever was committed is recovered by the next [`Engine::open`].
    pub fn abort(&self) {
        self.shared.health.abort();
        if let Ok(mut tasks) = self.shared.tasks.lock() {
            for handle in tasks.drain(..) {
                handle.abort();
            }
        }
        runner::abort_all(&self.shared.running);
    }
}

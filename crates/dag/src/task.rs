//! Task types: what a sub-task does, registered by name so it can be re-created from
//! `(name, params)` after a restart, and the [`TaskContext`] a running sub-task sees.
//!
//! A running sub-task reports logs and data through a `ReportSink`; the engine
//! implements it (this module knows nothing of the engine's messages).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::model::Flags;

/// Why a sub-task failed. The message goes to the sub-task's log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TaskError {
    pub message: String,
}

impl TaskError {
    pub fn new(message: impl Into<String>) -> TaskError {
        TaskError {
            message: message.into(),
        }
    }
}

impl From<String> for TaskError {
    fn from(message: String) -> TaskError {
        TaskError { message }
    }
}

impl From<&str> for TaskError {
    fn from(message: &str) -> TaskError {
        TaskError::new(message)
    }
}

/// The work of one sub-task.
#[async_trait]
pub trait Task: Send + Sync {
    /// Does the work. Must watch [`TaskContext::cancelled`] at its await points when the
    /// task type allows cancellation; the engine also drops the future on cancellation.
    ///
    /// # Errors
    /// A [`TaskError`] fails the sub-task; its message is logged with "ERROR: ".
    async fn execute(&self, ctx: &TaskContext) -> Result<(), TaskError>;

    /// Undoes the work (default: nothing to undo).
    ///
    /// # Errors
    /// A [`TaskError`] fails the rollback.
    async fn rollback(&self, _ctx: &TaskContext) -> Result<(), TaskError> {
        Ok(())
    }
}

/// The work of one sub-task that never waits: obshell's own tasks are of this kind
/// (`Execute() error`). The engine calls it where it starts the attempt (the scheduler's
/// task, or the committer's thread), with no future, no spawn and no timer
/// ([`TaskRegistry::register_sync`]).
///
/// Results, logs, output, local and additional data, panics, fencing, retries and
/// rollback are those of a [`Task`]. What differs: an attempt runs to its end once
/// called, so a timeout cannot stop it (an attempt of a light [`Task`] that finishes on
/// its first poll is not timed out either), and cancellation is checked once, before
/// the attempt starts (an attempt whose token is already cancelled ends CANCELLED
/// without running).
pub trait SyncTask: Send + Sync {
    /// Does the work; it holds up the scheduler while it runs, so it must be short.
    ///
    /// # Errors
    /// A [`TaskError`] fails the sub-task; its message is logged with "ERROR: ".
    fn execute(&self, ctx: &TaskContext) -> Result<(), TaskError>;

    /// Undoes the work (default: nothing to undo).
    ///
    /// # Errors
    /// A [`TaskError`] fails the rollback.
    fn rollback(&self, _ctx: &TaskContext) -> Result<(), TaskError> {
        Ok(())
    }
}

pub(crate) type Factory = dyn Fn(&Value) -> Result<Box<dyn Task>, TaskError> + Send + Sync;

pub(crate) type SyncFactory = dyn Fn(&Value) -> Result<Box<dyn SyncTask>, TaskError> + Send + Sync;

/// How a task type's attempts are made.
#[derive(Clone)]
pub(crate) enum Work {
    /// A [`Task`] built per attempt: a future, spawned (or first polled where it starts
    /// if the type is light).
    Async(Arc<Factory>),
    /// A [`SyncTask`], called where the attempt starts.
    Sync(SyncWork),
}

/// Where a synchronous attempt's task comes from.
#[derive(Clone)]
pub(crate) enum SyncWork {
    /// Built per attempt from the sub-task's parameters.
    Build(Arc<SyncFactory>),
    /// One task every attempt calls ([`TaskRegistry::register_shared_sync`]): nothing
    /// built per attempt.
    Shared(Arc<dyn SyncTask>),
}

/// A registered task type.
#[derive(Clone)]
pub struct TaskType {
    pub(crate) flags: Flags,
    pub(crate) work: Work,
    /// Attempts are polled once where they start before being spawned
    /// ([`TaskRegistry::set_light`]); a synchronous type always runs where it starts.
    pub(crate) light: bool,
}

/// Task types by name.
#[derive(Clone, Default)]
pub struct TaskRegistry {
    types: HashMap<String, TaskType, BuildHasherDefault<NameHasher>>,
}

/// The hasher of the registry's names: FNV-1a (every attempt looks its type up by
/// name; names are registered by the program, not chosen by a client).
pub(crate) struct NameHasher(u64);

impl Default for NameHasher {
    fn default() -> NameHasher {
        NameHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl Hasher for NameHasher {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl std::fmt::Debug for TaskRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<_> = self.types.keys().collect();
        names.sort();
        f.debug_struct("TaskRegistry")
            .field("types", &names)
            .finish()
    }
}

impl TaskRegistry {
    pub fn new() -> TaskRegistry {
        TaskRegistry::default()
    }

    /// Registers `name`; `factory` builds the task from a sub-task's parameters.
    pub fn register<F>(&mut self, name: impl Into<String>, flags: Flags, factory: F)
    where
        F: Fn(&Value) -> Result<Box<dyn Task>, TaskError> + Send + Sync + 'static,
    {
        self.insert(name.into(), flags, Work::Async(Arc::new(factory)));
    }

    /// Registers `name` as a synchronous task type ([`SyncTask`]): `factory` builds the
    /// task from a sub-task's parameters, and each attempt is called where the engine
    /// starts it, without a future, a spawn or a timer. Only for work that never waits
    /// and is short: it holds up the scheduler while it runs.
    pub fn register_sync<F>(&mut self, name: impl Into<String>, flags: Flags, factory: F)
    where
        F: Fn(&Value) -> Result<Box<dyn SyncTask>, TaskError> + Send + Sync + 'static,
    {
        self.insert(
            name.into(),
            flags,
            Work::Sync(SyncWork::Build(Arc::new(factory))),
        );
    }

    /// Registers a synchronous task type whose every sub-task is `task` itself
    /// (nothing is built per attempt); see [`TaskRegistry::register_sync`].
    pub fn register_shared_sync<T>(&mut self, name: impl Into<String>, flags: Flags, task: Arc<T>)
    where
        T: SyncTask + 'static,
    {
        self.insert(name.into(), flags, Work::Sync(SyncWork::Shared(task)));
    }

    fn insert(&mut self, name: String, flags: Flags, work: Work) {
        let light = !matches!(work, Work::Async(_));
        self.types.insert(name, TaskType { flags, work, light });
    }

    /// Marks the registered type `name` as light: each attempt of its sub-tasks is
    /// polled once on the engine's own task that starts it, and spawned as a tokio task
    /// only if it did not finish then. An attempt that finishes without waiting costs no
    /// spawn and no wake-up of another thread, and its result joins the scheduler's next
    /// batch. Timeouts, cancellation, panics and fencing apply as to any attempt.
    ///
    /// Only for task types whose `execute` and `rollback` do little work before their
    /// first `.await` that waits: until then they hold up the scheduler. Returns false
    /// when `name` is not registered. A synchronous type ([`TaskRegistry::register_sync`])
    /// always runs where it starts; marking it changes nothing.
    pub fn set_light(&mut self, name: &str) -> bool {
        match self.types.get_mut(name) {
            Some(task_type) => {
                task_type.light = true;
                true
            }
            None => false,
        }
    }

    /// Registers a task type whose every sub-task is a clone of `task`.
    pub fn register_shared<T>(&mut self, name: impl Into<String>, flags: Flags, task: Arc<T>)
    where
        T: Task + 'static,
    {
        self.register(name, flags, move |_params| {
            Ok(Box::new(SharedTask(Arc::clone(&task))) as Box<dyn Task>)
        });
    }

    pub(crate) fn get(&self, name: &str) -> Option<&TaskType> {
        self.types.get(name)
    }
}

struct SharedTask<T>(Arc<T>);

#[async_trait]
impl<T: Task> Task for SharedTask<T> {
    async fn execute(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        self.0.execute(ctx).await
    }

    async fn rollback(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        self.0.rollback(ctx).await
    }
}

/// What a running sub-task tells the engine while it runs; persisted with the next
/// commit.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Report {
    /// A log line.
    Log(String),
    /// A value of the sub-task's persisted local data.
    SetLocal { key: String, value: Value },
    /// A value of the sub-task's additional data.
    SetAdditional { key: String, value: Value },
}

/// Where a running sub-task's reports go (the engine's actor).
pub(crate) trait ReportSink: Send + Sync {
    /// Delivers `report` of attempt `execute_times` of sub-task `task_id`; never blocks.
    fn report(&self, task_id: u64, execute_times: u32, report: Report);
}

/// What a running sub-task sees and how it reports back.
///
/// Logs, local data and additional data are sent to the engine as they happen and are
/// persisted with the next commit; output is persisted when the sub-task finishes.
pub struct TaskContext {
    pub(crate) dag_id: u64,
    pub(crate) node_id: u64,
    pub(crate) task_id: u64,
    pub(crate) index: u32,
    pub(crate) execute_times: u32,
    pub(crate) dag_params: Arc<Value>,
    pub(crate) input: Arc<Map<String, Value>>,
    pub(crate) params: Arc<Value>,
    pub(crate) local: Mutex<Map<String, Value>>,
    pub(crate) output: Mutex<Map<String, Value>>,
    pub(crate) cancel: CancellationToken,
    pub(crate) reports: Arc<dyn ReportSink>,
}

impl TaskContext {
    pub fn dag_id(&self) -> u64 {
        self.dag_id
    }

    pub fn node_id(&self) -> u64 {
        self.node_id
    }

    pub fn task_id(&self) -> u64 {
        self.task_id
    }

    /// Position of this sub-task within its node.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// How many times this sub-task has been started, this time included.
    pub fn execute_times(&self) -> u32 {
        self.execute_times
    }

    /// The DAG's write-once parameters.
    pub fn dag_params(&self) -> &Value {
        &self.dag_params
    }

    /// The merged output of every upstream sub-task (later value wins, maps merge).
    pub fn input(&self) -> &Map<String, Value> {
        &self.input
    }

    /// This sub-task's own parameters.
    pub fn params(&self) -> &Value {
        &self.params
    }

    /// The cancellation token: cancelled when the DAG is cancelled.
    pub fn cancelled(&self) -> &CancellationToken {
        &self.cancel
    }

    /// A value of this sub-task's persisted local data (survives restarts and retries).
    pub fn local(&self, key: &str) -> Option<Value> {
        self.local.lock().ok().and_then(|map| map.get(key).cloned())
    }

    /// Sets persisted local data, for example a resume checkpoint.
    pub fn set_local(&self, key: impl Into<String>, value: Value) {
        let key = key.into();
        if let Ok(mut map) = self.local.lock() {
            map.insert(key.clone(), value.clone());
        }
        self.send(Report::SetLocal { key, value });
    }

    /// Sets a value passed to every downstream node's input.
    pub fn set_output(&self, key: impl Into<String>, value: Value) {
        if let Ok(mut map) = self.output.lock() {
            map.insert(key.into(), value);
        }
    }

    /// Sets a value of this sub-task's additional data (merged into the node's and DAG's).
    pub fn set_additional_data(&self, key: impl Into<String>, value: Value) {
        self.send(Report::SetAdditional {
            key: key.into(),
            value,
        });
    }

    /// Appends a log line.
    pub fn info(&self, message: impl Into<String>) {
        self.log(message.into());
    }

    /// Appends a log line prefixed "WARN: ".
    pub fn warn(&self, message: impl std::fmt::Display) {
        self.log(format!("WARN: {message}"));
    }

    /// Appends a log line prefixed "ERROR: ".
    pub fn error(&self, message: impl std::fmt::Display) {
        self.log(format!("ERROR: {message}"));
    }

    fn log(&self, content: String) {
        self.send(Report::Log(content));
    }

    fn send(&self, report: Report) {
        self.reports
            .report(self.task_id, self.execute_times, report);
    }

    pub(crate) fn take_output(&self) -> Map<String, Value> {
        self.output
            .lock()
            .map(|mut map| std::mem::take(&mut *map))
            .unwrap_or_default()
    }
}

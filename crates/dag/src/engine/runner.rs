//! Runs sub-tasks: one future per attempt, under its timeout, watching its
//! cancellation token, catching panics, and reporting the [`Outcome`] to the actor.
//! The future runs as its own tokio task, except that an attempt of a light task type
//! ([`crate::TaskRegistry::set_light`]) is first polled once where it is started (the
//! actor or the committer): if it finished, it never becomes a task, and its result is
//! handed to the caller ([`Runner::start`]: the actor decides it in its next turn) or
//! put in the actor's channel ([`Runner::spawn`]); otherwise the same future is
//! spawned and goes on from where it stopped. An attempt's deadline is taken before its
//! first poll; its timer is built only if that poll did not finish it. An attempt of a
//! synchronous task type ([`crate::SyncTask`]) has no future: it is called where it is
//! started, inside `catch_unwind`, after a check of its cancellation token, and its
//! result goes where a light attempt's that finished at once goes.
//!
//! Invariant: a job reports exactly one result (returned by `start`, or one `Finished`
//! message), whatever happens to its work (success, error, timeout, panic,
//! cancellation); only an abort (engine stop) ends it silently. Every spawned job's
//! abort handle is in the shared table, so that stopping the engine can abort them.
//!
//! Tried and not kept (issue 12): running the light attempts of a batch on another
//! thread, as one bundle per batch that sends back one message with all their results
//! (so that a fan-out uses both cores, as dagrs does). Handing the bundle over costs
//! more than running it here: +1.6 µs of CPU per sub-task through the blocking pool,
//! +0.8 µs as a tokio task, wall time 1.3-1.5x longer on a fan-out of 10,000
//! (docs/performance.md, helper `fan4`).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt;
use serde_json::{Map, Value};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::msg::{Attempt, Msg, Outcome, RunResult};
use super::txn::IdMap;
use crate::task::{
    Factory, ReportSink, SyncTask, SyncWork, Task, TaskContext, TaskError, TaskRegistry, TaskType,
    Work,
};

/// Which half of a sub-task an attempt runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// `execute`, after `rollback` when the previous attempt failed.
    Execute { rollback_first: bool },
    /// `rollback` (ROLLBACK of the DAG).
    Rollback,
}

/// Everything a sub-task run needs, captured when it is dispatched.
pub(crate) struct Job {
    pub(crate) dag_id: u64,
    pub(crate) node_id: u64,
    pub(crate) task_id: u64,
    pub(crate) index: u32,
    pub(crate) name: Arc<str>,
    pub(crate) task_type: Arc<str>,
    pub(crate) execute_times: u32,
    pub(crate) phase: Phase,
    pub(crate) params: Arc<Value>,
    pub(crate) dag_params: Arc<Value>,
    pub(crate) input: Arc<Map<String, Value>>,
    pub(crate) local: Map<String, Value>,
    pub(crate) timeout: Duration,
    pub(crate) cancel: CancellationToken,
}

/// Abort handles of the running jobs, by sub-task id.
pub(crate) type RunningJobs = Arc<Mutex<IdMap<AbortHandle>>>;

/// Starts jobs; cheap to clone (the actor starts early jobs, the committer the rest).
#[derive(Clone)]
pub(crate) struct Runner {
    registry: Arc<TaskRegistry>,
    tx: mpsc::UnboundedSender<Msg>,
    reports: Arc<dyn ReportSink>,
    running: RunningJobs,
}

impl Runner {
    pub(crate) fn new(
        registry: Arc<TaskRegistry>,
        tx: mpsc::UnboundedSender<Msg>,
        running: RunningJobs,
    ) -> Runner {
        Runner {
            registry,
            reports: Arc::new(tx.clone()),
            tx,
            running,
        }
    }

    pub(crate) fn registry(&self) -> Arc<TaskRegistry> {
        Arc::clone(&self.registry)
    }

    /// The channel to the actor (for retry timers).
    pub(crate) fn actor(&self) -> &mpsc::UnboundedSender<Msg> {
        &self.tx
    }

    /// Starts `job`; its result goes to the actor's channel.
    pub(crate) fn spawn(&self, job: Job) {
        if let Some(result) = self.start(job) {
            let _ = self.tx.send(Msg::Finished(result));
        }
    }

    /// Starts `job`: polled once here first if its type is light (module docs), run
    /// to its end here if it is synchronous. Returns the result of an attempt that
    /// finished here, for the caller to hand to the actor; every other attempt reports
    /// to the actor's channel.
    pub(crate) fn start(&self, job: Job) -> Option<RunResult> {
        let task_id = job.task_id;
        let reports = Arc::clone(&self.reports);
        // Looked up once here: the job gets its type's factory, not the registry.
        let (factory, light) = match self.registry.get(&job.task_type) {
            Some(TaskType {
                work: Work::Sync(work),
                ..
            }) => return Some(run_sync(job, work, reports)),
            Some(TaskType {
                work: Work::Async(factory),
                light,
                ..
            }) => (Some(Arc::clone(factory)), *light),
            None => (None, false),
        };
        let handle = if light {
            let mut run = Box::pin(run_job(job, factory, reports));
            // Whatever the future waits on registers this no-op waker now, and the
            // tokio task's waker when the spawned task polls it again.
            let mut cx = Context::from_waker(futures::task::noop_waker_ref());
            if let Poll::Ready(result) = run.as_mut().poll(&mut cx) {
                return Some(result);
            }
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(Msg::Finished(run.await));
            })
        } else {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                let _ = tx.send(Msg::Finished(run_job(job, factory, reports).await));
            })
        };
        if let Ok(mut handles) = self.running.lock() {
            handles.insert(task_id, handle.abort_handle());
        }
        None
    }

    /// A job reported its result: it no longer needs aborting.
    pub(crate) fn forget(&self, task_id: u64) {
        if let Ok(mut handles) = self.running.lock() {
            handles.remove(&task_id);
        }
    }

    /// Aborts every running job (the engine stops).
    pub(crate) fn abort_all(&self) {
        abort_all(&self.running);
    }
}

/// Aborts every job in `running`.
pub(crate) fn abort_all(running: &Mutex<IdMap<AbortHandle>>) {
    if let Ok(mut running) = running.lock() {
        for (_, handle) in running.drain() {
            handle.abort();
        }
    }
}

/// What a job's attempt keeps beside its context.
struct Rest {
    phase: Phase,
    timeout: Duration,
    task_type: Arc<str>,
    span: tracing::Span,
}

impl Job {
    /// The context its attempt sees, and the rest. The token and the parameters are
    /// moved, not cloned: a token's clone and drop each lock its tree node.
    fn into_parts(self, reports: Arc<dyn ReportSink>) -> (TaskContext, Rest) {
        let span = tracing::info_span!(
            "sub_task",
            dag_id = self.dag_id,
            node_id = self.node_id,
            task_id = self.task_id,
            name = %self.name,
            execute_times = self.execute_times,
            rollback = self.phase == Phase::Rollback,
        );
        let ctx = TaskContext {
            dag_id: self.dag_id,
            node_id: self.node_id,
            task_id: self.task_id,
            index: self.index,
            execute_times: self.execute_times,
            dag_params: self.dag_params,
            input: self.input,
            params: self.params,
            local: Mutex::new(self.local),
            output: Mutex::new(Map::new()),
            cancel: self.cancel,
            reports,
        };
        let rest = Rest {
            phase: self.phase,
            timeout: self.timeout,
            task_type: self.task_type,
            span,
        };
        (ctx, rest)
    }
}

/// The result of an attempt that ended with `outcome`.
fn finish(ctx: TaskContext, phase: Phase, outcome: Outcome) -> RunResult {
    RunResult {
        attempt: Attempt {
            task_id: ctx.task_id,
            execute_times: ctx.execute_times,
        },
        rollback: phase == Phase::Rollback,
        outcome,
        output: ctx.take_output(),
    }
}

/// Runs one attempt of `job` to its result.
async fn run_job(
    job: Job,
    factory: Option<Arc<Factory>>,
    reports: Arc<dyn ReportSink>,
) -> RunResult {
    let (ctx, rest) = job.into_parts(reports);
    let Rest {
        phase,
        timeout,
        task_type,
        span,
    } = rest;
    let outcome = async {
        let Some(factory) = factory else {
            return Outcome::Failed(format!("unknown task type '{task_type}'"));
        };
        match factory(&ctx.params) {
            Ok(task) => run_attempt(task.as_ref(), &ctx, phase, timeout).await,
            Err(err) => Outcome::Failed(err.message),
        }
    };
    // A panicking factory fails the attempt too (and, polled on the actor's task, never
    // unwinds into it).
    let outcome = AssertUnwindSafe(outcome)
        .catch_unwind()
        .instrument(span)
        .await
        .unwrap_or_else(|panic| Outcome::Failed(panicked(panic.as_ref())));
    finish(ctx, phase, outcome)
}

/// Runs one attempt of a synchronous task type to its result, here: no future, no
/// timer (it cannot be stopped once called); an attempt cancelled before it starts
/// ends CANCELLED without running. Panics of the task and of its factory fail the
/// attempt, as for any task.
fn run_sync(job: Job, work: &SyncWork, reports: Arc<dyn ReportSink>) -> RunResult {
    let (ctx, rest) = job.into_parts(reports);
    let outcome = if ctx.cancel.is_cancelled() {
        Outcome::Cancelled
    } else {
        let _entered = rest.span.enter();
        match std::panic::catch_unwind(AssertUnwindSafe(|| call_sync(work, &ctx, rest.phase))) {
            Ok(Ok(())) => Outcome::Succeeded,
            Ok(Err(TaskError { message })) => Outcome::Failed(message),
            Err(panic) => Outcome::Failed(panicked(panic.as_ref())),
        }
    };
    finish(ctx, rest.phase, outcome)
}

/// Calls the synchronous task of `work` for `phase`.
fn call_sync(work: &SyncWork, ctx: &TaskContext, phase: Phase) -> Result<(), TaskError> {
    let built;
    let task: &dyn SyncTask = match work {
        SyncWork::Shared(task) => task.as_ref(),
        SyncWork::Build(factory) => {
            built = factory(&ctx.params)?;
            built.as_ref()
        }
    };
    match phase {
        Phase::Execute { rollback_first } => {
            if rollback_first {
                task.rollback(ctx)?;
            }
            task.execute(ctx)
        }
        Phase::Rollback => task.rollback(ctx),
    }
}

/// Runs one attempt under its timeout and cancellation token, catching panics. The
/// deadline is taken before the attempt is first polled; the timer is only built if
/// that poll did not finish it (an attempt that never waits costs no timer).
async fn run_attempt(
    task: &dyn Task,
    ctx: &TaskContext,
    phase: Phase,
    timeout: Duration,
) -> Outcome {
    let cancel = &ctx.cancel;
    let deadline = tokio::time::Instant::now().checked_add(timeout);
    let work = async {
        match phase {
            Phase::Execute { rollback_first } => {
                if rollback_first {
                    task.rollback(ctx).await?;
                }
                task.execute(ctx).await
            }
            Phase::Rollback => task.rollback(ctx).await,
        }
    };
    let mut guarded = std::pin::pin!(AssertUnwindSafe(work).catch_unwind());
    let first = std::future::poll_fn(|cx| Poll::Ready(guarded.as_mut().poll(cx))).await;
    let result = match (first, deadline) {
        (Poll::Ready(result), _) => Ok(result),
        // A timeout too far to represent never expires.
        (Poll::Pending, None) => tokio::select! {
            biased;
            result = guarded => Ok(result),
            () = cancel.cancelled() => return Outcome::Cancelled,
        },
        (Poll::Pending, Some(deadline)) => tokio::select! {
            biased;
            result = tokio::time::timeout_at(deadline, guarded) => result,
            () = cancel.cancelled() => return Outcome::Cancelled,
        },
    };
    match result {
        Err(_) => Outcome::TimedOut,
        Ok(Err(panic)) => Outcome::Failed(panicked(panic.as_ref())),
        Ok(Ok(Err(TaskError { message }))) => Outcome::Failed(message),
        Ok(Ok(Ok(()))) => Outcome::Succeeded,
    }
}

/// The failure message of a panicked attempt.
fn panicked(panic: &(dyn std::any::Any + Send)) -> String {
    let message = if let Some(text) = panic.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = panic.downcast_ref::<String>() {
        text.clone()
    } else {
        "unknown panic".to_string()
    };
    format!("sub task panicked: {message}")
}

//! apalis 0.7 on SQLite (`apalis-sql`), a file database in a fresh directory per run,
//! every connection in WAL mode with `synchronous = FULL` (a job is on the device when
//! its insert or its ack returns, as obrestore's transitions are; apalis's own `setup`
//! would set `NORMAL` on one connection of the pool, which syncs only at checkpoints).
//!
//! apalis is a job queue, not a DAG engine: the dependencies live in this runner's memory
//! (a crash loses them) and a job's handler pushes the jobs it makes ready before it
//! returns, so a successor is stored before its predecessor is acknowledged. A chain's
//! job pushes the next; a fan-out pushes every job up front; a layer's job is pushed by
//! the last of its parents to finish. Timed: from the first push until the store counts
//! every job done (polled every `POLL`, as the duroxide runner polls its status).
//!
//! Two settings differ from apalis's defaults, both in its favour: the worker polls the
//! table every millisecond instead of every 100 ms, and fetches up to 64 jobs a poll
//! instead of 10. And every job is pushed with a `run_at` one second in the past:
//! `push` stores `run_at` in whole seconds and the poll fetches `run_at < now`, so a job
//! pushed normally waits for the next second to begin (a chain of 200 would take
//! 200 seconds). The worker is registered before it starts (see `run`).

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use apalis::prelude::*;
use apalis_sql::sqlite::SqliteStorage;
use apalis_sql::sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use apalis_sql::Config;
use serde::{Deserialize, Serialize};

use crate::shape::Shape;
use crate::Run;

const POLL: Duration = Duration::from_millis(2);
const TIMEOUT: Duration = Duration::from_secs(600);

/// One task of the shape: its layer (a chain's position) and its column.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Step {
    layer: usize,
    column: usize,
}

/// The run's state shared with the handler: the storage to push successors into, the
/// count of executions, and per task of the layers how many parents are still to finish.
struct Plan {
    shape: Shape,
    storage: SqliteStorage<Step>,
    executed: AtomicUsize,
    waiting: Vec<AtomicUsize>,
}

impl Plan {
    fn new(shape: Shape, storage: SqliteStorage<Step>) -> Plan {
        let waiting = match shape {
            Shape::Layers { layers, width } => (0..layers * width)
                .map(|index| {
                    let parents = Shape::layer_parents(width, index % width).len();
                    AtomicUsize::new(if index < width { 0 } else { parents })
                })
                .collect(),
            _ => Vec::new(),
        };
        Plan {
            shape,
            storage,
            executed: AtomicUsize::new(0),
            waiting,
        }
    }

    /// The jobs pushed before the worker starts.
    fn first(&self) -> Vec<Step> {
        let width = match self.shape {
            Shape::Chain(_) => 1,
            Shape::FanOut(width) | Shape::Layers { width, .. } => width,
        };
        (0..width).map(|column| Step { layer: 0, column }).collect()
    }

    /// The jobs that `done` makes ready.
    fn ready_after(&self, done: Step) -> Vec<Step> {
        match self.shape {
            Shape::Chain(length) if done.layer + 1 < length => vec![Step {
                layer: done.layer + 1,
                column: 0,
            }],
            Shape::Layers { layers, width } if done.layer + 1 < layers => {
                // The children of column c: column c and column c - 1 of the next layer.
                let mut children = vec![done.column, (done.column + width - 1) % width];
                children.dedup();
                children
                    .into_iter()
                    .filter(|column| {
                        let index = (done.layer + 1) * width + column;
                        self.waiting[index].fetch_sub(1, Ordering::AcqRel) == 1
                    })
                    .map(|column| Step {
                        layer: done.layer + 1,
                        column,
                    })
                    .collect()
            }
            _ => Vec::new(),
        }
    }
}

fn unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// Pushes `step` to run at once (see the module's note on `run_at`).
async fn push(storage: &mut SqliteStorage<Step>, step: Step) -> Result<(), Error> {
    storage
        .schedule(step, unix_seconds() - 1)
        .await
        .map(|_| ())
        .map_err(|error| Error::Failed(Arc::new(Box::new(error))))
}

/// The no-op job: counts itself, then pushes what it made ready.
async fn noop(step: Step, plan: Data<Arc<Plan>>) -> Result<(), Error> {
    plan.executed.fetch_add(1, Ordering::Relaxed);
    let mut storage = plan.storage.clone();
    for next in plan.ready_after(step) {
        push(&mut storage, next).await?;
    }
    Ok(())
}

/// Runs `shape` once with its database in a fresh directory under `parent`.
pub async fn run(shape: Shape, parent: &Path) -> anyhow::Result<Run> {
    let directory = tempfile::tempdir_in(parent).context("apalis directory")?;
    let options = SqliteConnectOptions::new()
        .filename(directory.path().join("apalis.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    let pool = SqlitePoolOptions::new()
        .connect_with(options)
        .await
        .context("sqlite opens")?;
    SqliteStorage::migrations()
        .run(&pool)
        .await
        .context("apalis migrations")?;
    let config = Config::new("bench")
        .set_poll_interval(Duration::from_millis(1))
        .set_buffer_size(64);
    let mut storage = SqliteStorage::<Step>::new_with_config(pool, config);
    let plan = Arc::new(Plan::new(shape, storage.clone()));
    let started = Instant::now();
    for step in plan.first() {
        push(&mut storage, step)
            .await
            .map_err(|error| anyhow::anyhow!("push: {error}"))?;
    }
    let worker = WorkerBuilder::new("bench")
        .data(Arc::clone(&plan))
        .backend(storage.clone())
        .build_fn(noop)
        .run();
    let handle = worker.get_handle();
    // The worker row first: a job's lock references it, and the worker's own heartbeat
    // registers it only after its first poll may already have tried to lock a job (the
    // lock then fails its foreign key and the worker's job stream ends for good).
    storage
        .keep_alive_at(&handle, unix_seconds())
        .await
        .context("worker registered")?;
    let running = tokio::spawn(worker);
    let outcome = loop {
        match storage.stats().await {
            Ok(stat) if stat.success >= shape.tasks() => break Ok(started.elapsed()),
            Ok(stat) if stat.failed > 0 || stat.dead > 0 => {
                break Err(anyhow::anyhow!("{} jobs failed", stat.failed + stat.dead))
            }
            Ok(stat) if started.elapsed() > TIMEOUT => {
                break Err(anyhow::anyhow!("timed out: {stat:?}"))
            }
            Ok(_) => tokio::time::sleep(POLL).await,
            Err(error) => break Err(anyhow::anyhow!("stats: {error}")),
        }
    };
    handle.stop();
    let _ = running.await;
    let elapsed = match outcome {
        Ok(elapsed) => elapsed,
        Err(error) => bail!("apalis {shape}: {error}"),
    };
    Ok(Run {
        elapsed,
        executed: plan.executed.load(Ordering::Relaxed),
    })
}

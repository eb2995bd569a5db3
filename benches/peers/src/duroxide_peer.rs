//! duroxide on its bundled SQLite provider, a file database (WAL) in a fresh directory
//! per run. One orchestration per run; every task is an activity scheduled by it: a chain
//! awaits them one by one, a fan-out joins them all, the layers join one layer at a
//! time (a barrier per layer: duroxide has no per-task dependencies). Timed: from
//! `start_orchestration` until a status poll (every `POLL`) sees it completed.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use duroxide::providers::sqlite::SqliteProvider;
use duroxide::runtime::registry::ActivityRegistry;
use duroxide::runtime::{self, OrchestrationStatus};
use duroxide::{ActivityContext, Client, OrchestrationContext, OrchestrationRegistry};

use crate::shape::Shape;
use crate::Run;

/// How often the bench polls the orchestration's status (the client's own
/// `wait_for_orchestration` backs off to 100 ms, too coarse for runs of a second).
const POLL: Duration = Duration::from_millis(2);
/// A run that has not completed by then fails.
const TIMEOUT: Duration = Duration::from_secs(600);
const INSTANCE: &str = "bench";

/// `count` no-op activities scheduled at once and joined.
async fn join_all(ctx: &OrchestrationContext, count: usize) -> Result<(), String> {
    let futures = (0..count)
        .map(|_| ctx.schedule_activity("noop", ""))
        .collect();
    for result in ctx.join(futures).await {
        result?;
    }
    Ok(())
}

async fn orchestrate(ctx: OrchestrationContext, shape: Shape) -> Result<String, String> {
    match shape {
        Shape::Chain(length) => {
            for _ in 0..length {
                ctx.schedule_activity("noop", "").await?;
            }
        }
        Shape::FanOut(width) => join_all(&ctx, width).await?,
        Shape::Layers { layers, width } => {
            for _ in 0..layers {
                join_all(&ctx, width).await?;
            }
        }
    }
    Ok(String::new())
}

/// Runs `shape` once with its database in a fresh directory under `parent`.
pub async fn run(shape: Shape, parent: &Path) -> anyhow::Result<Run> {
    let directory = tempfile::tempdir_in(parent).context("duroxide directory")?;
    let path = directory.path().join("duroxide.db");
    std::fs::File::create(&path).context("database file")?;
    let url = format!("sqlite:{}", path.display());
    let store = Arc::new(
        SqliteProvider::new(&url, None)
            .await
            .context("sqlite opens")?,
    );
    let executed = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&executed);
    let activities = ActivityRegistry::builder()
        .register("noop", move |_ctx: ActivityContext, input: String| {
            counter.fetch_add(1, Ordering::Relaxed);
            async move { Ok(input) }
        })
        .build();
    let orchestrations = OrchestrationRegistry::builder()
        .register("shape", move |ctx: OrchestrationContext, _input: String| {
            orchestrate(ctx, shape)
        })
        .build();
    let runtime =
        runtime::Runtime::start_with_store(store.clone(), activities, orchestrations).await;
    let client = Client::new(store);
    let started = Instant::now();
    client
        .start_orchestration(INSTANCE, "shape", "")
        .await
        .context("start_orchestration")?;
    let outcome = loop {
        match client.get_orchestration_status(INSTANCE).await {
            Ok(OrchestrationStatus::Completed { .. }) => break Ok(started.elapsed()),
            Ok(OrchestrationStatus::Failed { details, .. }) => {
                break Err(anyhow::anyhow!("{}", details.display_message()))
            }
            Ok(_) if started.elapsed() > TIMEOUT => break Err(anyhow::anyhow!("timed out")),
            Ok(_) => tokio::time::sleep(POLL).await,
            Err(error) => break Err(anyhow::anyhow!("status: {error}")),
        }
    };
    runtime.shutdown(None).await;
    let elapsed = match outcome {
        Ok(elapsed) => elapsed,
        Err(error) => bail!("duroxide {shape}: {error}"),
    };
    Ok(Run {
        elapsed,
        executed: executed.load(Ordering::Relaxed),
    })
}

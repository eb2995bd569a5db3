//! dagx: tasks are `task_fn` closures run by `DagRunner::run` on tokio (`tokio::spawn`
//! as its spawner, as its docs do). Timed: building the DAG and running it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use dagx::{task_fn, DagRunner, Task, TaskHandle};

use crate::shape::Shape;
use crate::Run;

/// A source task: counts its execution, outputs 0.
fn source(executed: &Arc<AtomicUsize>) -> impl Task<Input = (), Output = u64> {
    let executed = Arc::clone(executed);
    task_fn(move |_: ()| {
        executed.fetch_add(1, Ordering::Relaxed);
        async { 0u64 }
    })
}

/// A task with one input: counts its execution, passes its input on.
fn step(executed: &Arc<AtomicUsize>) -> impl Task<Input = u64, Output = u64> {
    let executed = Arc::clone(executed);
    task_fn(move |input: u64| {
        executed.fetch_add(1, Ordering::Relaxed);
        async move { input }
    })
}

/// A task with two inputs: counts its execution, outputs their sum.
fn join(executed: &Arc<AtomicUsize>) -> impl Task<Input = (u64, u64), Output = u64> {
    let executed = Arc::clone(executed);
    task_fn(move |(a, b): (u64, u64)| {
        executed.fetch_add(1, Ordering::Relaxed);
        async move { a.wrapping_add(b) }
    })
}

fn build(dag: &DagRunner, shape: Shape, executed: &Arc<AtomicUsize>) {
    match shape {
        Shape::Chain(length) => {
            if length == 0 {
                return;
            }
            let first = dag.add_task(source(executed));
            let mut previous: TaskHandle<u64> = (&first).into();
            for _ in 1..length {
                previous = dag.add_task(step(executed)).depends_on(previous);
            }
        }
        Shape::FanOut(width) => {
            for _ in 0..width {
                dag.add_task(source(executed));
            }
        }
        Shape::Layers { layers, width } => {
            let mut previous: Vec<TaskHandle<u64>> = (0..width)
                .map(|_| (&dag.add_task(source(executed))).into())
                .collect();
            for _ in 1..layers {
                previous = (0..width)
                    .map(|column| match Shape::layer_parents(width, column)[..] {
                        [a, b] => dag
                            .add_task(join(executed))
                            .depends_on((&previous[a], &previous[b])),
                        _ => dag.add_task(step(executed)).depends_on(previous[column]),
                    })
                    .collect();
            }
        }
    }
}

/// Runs `shape` once.
pub async fn run(shape: Shape) -> anyhow::Result<Run> {
    let executed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let dag = DagRunner::new();
    build(&dag, shape, &executed);
    dag.run(|future| {
        tokio::spawn(future);
    })
    .await
    .map_err(|error| anyhow::anyhow!("dagx: {error:?}"))?;
    Ok(Run {
        elapsed: started.elapsed(),
        executed: executed.load(Ordering::Relaxed),
    })
}

//! Throughput and stage-to-stage latency of the DAG engine with no-op sub-tasks.
//!
//! Shapes: a chain of 1,000 nodes, one node with 10,000 sub-tasks, and 20 layers of 100
//! nodes where every node depends on two nodes of the previous layer. Stores: the
//! in-memory `MemStore` and a durable `SledStore` in a temporary directory (every commit
//! is flushed). Criterion reports sub-tasks/s (`Throughput::Elements`); every iteration
//! opens a fresh store and engine, and only `submit` to `wait_settled` is timed.
//!
//! Every case runs with the no-op spawned as a tokio task per attempt ("noop") and as
//! a light task type ("noop_light", `TaskRegistry::set_light`: polled once where the
//! engine starts it).
//!
//! Criterion measures whole iterations, so the stage-to-stage latency of the chain is
//! measured in a separate pass before the criterion groups and printed to stdout as
//! p50/p99, with the device syncs per stage of the sled store and the ratio of stages/s
//! to one `write + fdatasync` per second measured in the same run. Results and the
//! command line are recorded in `docs/performance.md`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use criterion::{
    criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode, Throughput,
};
use obrestore::dag::store::{Batch, DeviceSync};
use obrestore::dag::{
    DagSpec, Engine, EngineConfig, Event, Flags, KvStore, MemStore, NodeSpec, SledStore, State,
    Subject, Task, TaskContext, TaskError, TaskRegistry,
};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::runtime::Runtime;
use tokio::sync::broadcast::error::RecvError;

const CHAIN_LENGTH: usize = 1_000;
const FAN_OUT_WIDTH: usize = 10_000;
const LAYER_COUNT: usize = 20;
const LAYER_WIDTH: usize = 100;
/// The engine's default worker limit (obshell's 8).
const DEFAULT_WORKERS: usize = 8;
/// A wider worker limit: no-op sub-tasks are not CPU bound.
const WIDE_WORKERS: usize = 64;
/// Chain runs per store in the latency pass (the first one is a warm-up).
const LATENCY_RUNS: usize = 3;

/// The no-op task type of the throughput benchmarks.
struct Noop;

#[async_trait]
impl Task for Noop {
    async fn execute(&self, _ctx: &TaskContext) -> Result<(), TaskError> {
        Ok(())
    }
}

/// One `(position, execute start, execute end)` per sub-task of a latency run.
type Stamps = Arc<Mutex<Vec<(u64, Instant, Instant)>>>;

/// A no-op that records when its `execute` started and ended, for the latency pass.
struct Stamp {
    position: u64,
    stamps: Stamps,
}

#[async_trait]
impl Task for Stamp {
    async fn execute(&self, _ctx: &TaskContext) -> Result<(), TaskError> {
        let started = Instant::now();
        if let Ok(mut stamps) = self.stamps.lock() {
            stamps.push((self.position, started, Instant::now()));
        }
        Ok(())
    }
}

/// "noop" and "stamp", spawned as a tokio task per attempt, and the same as light types
/// ("noop_light", "stamp_light": polled once where the engine starts them).
fn registry(stamps: &Stamps) -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    for (noop, stamp) in [("noop", "stamp"), ("noop_light", "stamp_light")] {
        registry.register_shared(noop, Flags::ALL, Arc::new(Noop));
        let stamps = Arc::clone(stamps);
        registry.register(stamp, Flags::ALL, move |params: &Value| {
            let position = params.get("position").and_then(Value::as_u64).unwrap_or(0);
            Ok(Box::new(Stamp {
                position,
                stamps: Arc::clone(&stamps),
            }) as Box<dyn Task>)
        });
    }
    registry.set_light("noop_light");
    registry.set_light("stamp_light");
    registry
}

/// A DAG shape; every node runs one sub-task unless it is the fan-out node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A chain of this many nodes.
    Chain(usize),
    /// One node with this many sub-tasks.
    FanOut(usize),
    /// `layers` layers of `width` nodes; node i depends on nodes i and i+1 (mod width)
    /// of the previous layer.
    Layers { layers: usize, width: usize },
}

impl Shape {
    const CHAIN: Shape = Shape::Chain(CHAIN_LENGTH);
    const FAN_OUT: Shape = Shape::FanOut(FAN_OUT_WIDTH);
    const LAYERS: Shape = Shape::Layers {
        layers: LAYER_COUNT,
        width: LAYER_WIDTH,
    };

    fn label(self) -> String {
        match self {
            Shape::Chain(length) => format!("chain_{length}"),
            Shape::FanOut(width) => format!("fan_out_{width}"),
            Shape::Layers { layers, width } => format!("layers_{layers}x{width}"),
        }
    }

    fn sub_tasks(self) -> usize {
        match self {
            Shape::Chain(length) => length,
            Shape::FanOut(width) => width,
            Shape::Layers { layers, width } => layers * width,
        }
    }

    fn spec(self, task_type: &str) -> DagSpec {
        let mut spec = DagSpec::new(self.label());
        match self {
            Shape::Chain(length) => {
                let nodes = (0..length)
                    .map(|position| {
                        NodeSpec::new(format!("step {position}"), task_type)
                            .sub_tasks(vec![json!({ "position": position })])
                    })
                    .collect();
                spec.chain(None, nodes);
            }
            Shape::FanOut(width) => {
                let params = (0..width)
                    .map(|position| json!({ "position": position }))
                    .collect();
                spec.add_node(NodeSpec::new("fan out", task_type).sub_tasks(params));
            }
            Shape::Layers { layers, width } => {
                let mut previous = Vec::new();
                for layer in 0..layers {
                    let mut current = Vec::with_capacity(width);
                    for column in 0..width {
                        let node = spec.add_node(NodeSpec::new(
                            format!("layer {layer} node {column}"),
                            task_type,
                        ));
                        if layer > 0 {
                            spec.add_edge(previous[column], node);
                            spec.add_edge(previous[(column + 1) % width], node);
                        }
                        current.push(node);
                    }
                    previous = current;
                }
            }
        }
        spec
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StoreKind {
    Memory,
    Sled,
}

impl StoreKind {
    fn label(self) -> &'static str {
        match self {
            StoreKind::Memory => "memory",
            StoreKind::Sled => "sled_durable",
        }
    }
}

/// An open engine and the temporary directory its sled store lives in.
struct Fixture {
    engine: Engine,
    /// The sled store's device sync (its `syncs` counter).
    device: Option<Arc<DeviceSync>>,
    _directory: Option<TempDir>,
}

async fn open_fixture(store_kind: StoreKind, worker_limit: usize, stamps: &Stamps) -> Fixture {
    let (store, device, directory): (Arc<dyn KvStore>, _, _) = match store_kind {
        StoreKind::Memory => (Arc::new(MemStore::new()), None, None),
        StoreKind::Sled => {
            let directory = tempfile::tempdir().expect("temporary directory");
            let store = SledStore::open(directory.path()).expect("sled store opens");
            let device = DeviceSync::of(store.db()).expect("device sync");
            (Arc::new(store), Some(device), Some(directory))
        }
    };
    let config = EngineConfig {
        worker_limit,
        // Large enough that the latency pass never lags behind the 10,000-sub-task node.
        event_capacity: 1 << 17,
        ..EngineConfig::default()
    };
    let engine = Engine::open(config, store, registry(stamps))
        .await
        .expect("engine opens");
    Fixture {
        engine,
        device,
        _directory: directory,
    }
}

/// Runs `shape` once on a fresh engine and returns the time from submit to settled.
async fn timed_run(
    shape: Shape,
    store_kind: StoreKind,
    worker_limit: usize,
    task_type: &str,
) -> Duration {
    let stamps = Stamps::default();
    let fixture = open_fixture(store_kind, worker_limit, &stamps).await;
    let spec = shape.spec(task_type);
    let started = Instant::now();
    let dag_id = fixture.engine.submit(spec).await.expect("dag submitted");
    let dag = fixture
        .engine
        .wait_settled(dag_id)
        .await
        .expect("dag settles");
    let elapsed = started.elapsed();
    assert_eq!(
        dag.state,
        State::Succeed,
        "{} did not succeed",
        shape.label()
    );
    fixture.engine.shutdown(Duration::from_secs(5)).await;
    elapsed
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn throughput(c: &mut Criterion) {
    let rt = runtime();
    let cases = [
        (Shape::CHAIN, DEFAULT_WORKERS),
        (Shape::FAN_OUT, DEFAULT_WORKERS),
        (Shape::FAN_OUT, WIDE_WORKERS),
        (Shape::LAYERS, DEFAULT_WORKERS),
    ];
    // Every case with the spawned no-op, then with the light one.
    let cases = cases
        .iter()
        .map(|&(shape, workers)| (shape, workers, "noop"))
        .chain(
            cases
                .iter()
                .map(|&(shape, workers)| (shape, workers, "noop_light")),
        );
    for store_kind in [StoreKind::Memory, StoreKind::Sled] {
        let mut group = c.benchmark_group(format!("stage_throughput/{}", store_kind.label()));
        group
            .sample_size(10)
            .sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3));
        for (shape, worker_limit, task_type) in cases.clone() {
            let elements = u64::try_from(shape.sub_tasks()).unwrap_or(u64::MAX);
            group.throughput(Throughput::Elements(elements));
            let id = BenchmarkId::new(shape.label(), format!("workers_{worker_limit}/{task_type}"));
            group.bench_function(id, |b| {
                b.to_async(&rt).iter_custom(|iterations| async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iterations {
                        total += timed_run(shape, store_kind, worker_limit, task_type).await;
                    }
                    total
                });
            });
        }
        group.finish();
    }
}

/// The `q`-quantile (0..=1) of sorted durations, nearest rank.
fn quantile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn micros(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e6
}

fn print_latencies(label: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "  {label:<58} n={:<5} p50={:>9.1} us  p99={:>9.1} us  max={:>9.1} us",
        samples.len(),
        micros(quantile(&samples, 0.50)),
        micros(quantile(&samples, 0.99)),
        micros(samples.last().copied().unwrap_or_default()),
    );
}

/// What one latency run of the chain saw.
struct LatencyRun {
    node_ids: Vec<u64>,
    received: Vec<(Instant, Event)>,
    stamps: Stamps,
    /// Device syncs from submit to settled (sled only).
    syncs: Option<u64>,
}

/// One chain run with a subscriber: the event receive times and task stamps.
async fn latency_run(store_kind: StoreKind, task_type: &str) -> LatencyRun {
    let stamps = Stamps::default();
    let fixture = open_fixture(store_kind, DEFAULT_WORKERS, &stamps).await;
    let syncs_before = fixture.device.as_ref().map(|device| device.syncs());
    let mut events = fixture.engine.subscribe();
    let collector = tokio::spawn(async move {
        let mut received = Vec::new();
        loop {
            match events.recv().await {
                Ok(event) => {
                    let done = event.subject == Subject::Dag && event.state.is_finished();
                    received.push((Instant::now(), event));
                    if done {
                        return received;
                    }
                }
                Err(RecvError::Lagged(missed)) => panic!("event receiver lagged by {missed}"),
                Err(RecvError::Closed) => return received,
            }
        }
    });
    let dag_id = fixture
        .engine
        .submit(Shape::CHAIN.spec(task_type))
        .await
        .expect("dag submitted");
    let dag = fixture
        .engine
        .wait_settled(dag_id)
        .await
        .expect("dag settles");
    assert_eq!(dag.state, State::Succeed, "latency chain did not succeed");
    let syncs = fixture
        .device
        .as_ref()
        .zip(syncs_before)
        .map(|(device, before)| device.syncs() - before);
    let received = collector.await.expect("collector finished");
    fixture.engine.shutdown(Duration::from_secs(5)).await;
    LatencyRun {
        node_ids: dag.node_ids.to_vec(),
        received,
        stamps,
        syncs,
    }
}

/// Median time of one 4 KiB `write` + `fdatasync` to a file in a temporary directory
/// (where the sled stores live): the device's pace, measured in the same run.
fn device_sync_time() -> Duration {
    use std::io::Write;
    let directory = tempfile::tempdir().expect("temporary directory");
    let mut file = std::fs::File::create(directory.path().join("sync")).expect("file");
    let block = vec![b's'; 4096];
    let mut times: Vec<Duration> = (0..300)
        .map(|_| {
            let started = Instant::now();
            file.write_all(&block).expect("write");
            file.sync_data().expect("fdatasync");
            started.elapsed()
        })
        .collect();
    times.sort();
    quantile(&times, 0.5)
}

/// Stage gaps of the chain runs of one store and task type (the first run is a
/// warm-up).
#[derive(Default)]
struct StageGaps {
    /// Node k's SUCCEED event received -> node k+1's sub-task RUNNING event received.
    event: Vec<Duration>,
    /// Sub-task k's execute returned -> sub-task k+1's execute began. This includes the
    /// durable commit of k's SUCCEED and k+1's RUNNING.
    task: Vec<Duration>,
    /// First execute start -> last execute end, per run.
    runs: Vec<Duration>,
    /// Device syncs per run (sled).
    syncs: Vec<u64>,
}

impl StageGaps {
    fn add(&mut self, run: LatencyRun) {
        let LatencyRun {
            node_ids,
            received,
            stamps,
            syncs,
        } = run;
        let position_of = |node_id: u64| node_ids.iter().position(|id| *id == node_id);
        let mut succeeded = vec![None; node_ids.len()];
        let mut running = vec![None; node_ids.len()];
        for (at, event) in &received {
            match (event.subject, event.state) {
                (Subject::Node { node_id }, State::Succeed) => {
                    if let Some(position) = position_of(node_id) {
                        succeeded[position] = Some(*at);
                    }
                }
                (Subject::SubTask { node_id, .. }, State::Running) => {
                    if let Some(position) = position_of(node_id) {
                        running[position].get_or_insert(*at);
                    }
                }
                _ => {}
            }
        }
        for position in 1..node_ids.len() {
            if let (Some(done), Some(next)) = (succeeded[position - 1], running[position]) {
                self.event.push(next.saturating_duration_since(done));
            }
        }
        let mut stamps = stamps.lock().map(|s| s.clone()).unwrap_or_default();
        stamps.sort_by_key(|(position, _, _)| *position);
        for pair in stamps.windows(2) {
            self.task
                .push(pair[1].1.saturating_duration_since(pair[0].2));
        }
        if let (Some(first), Some(last)) = (stamps.first(), stamps.last()) {
            self.runs.push(last.2.saturating_duration_since(first.1));
        }
        self.syncs.extend(syncs);
    }
}

/// The stage-to-stage latency pass over the chain, printed to stdout, with the
/// device's pace (one write + fdatasync) measured in the same run for the sled store.
fn stage_latency(_c: &mut Criterion) {
    let rt = runtime();
    println!("\nstage-to-stage latency, chain of {CHAIN_LENGTH} no-op nodes, workers {DEFAULT_WORKERS} (last {} of {LATENCY_RUNS} runs pooled)", LATENCY_RUNS - 1);
    let sync_time = device_sync_time();
    println!(
        "device: one 4 KiB write + fdatasync p50 {:.1} us => {:.0} syncs/s",
        micros(sync_time),
        1.0 / sync_time.as_secs_f64()
    );
    for store_kind in [StoreKind::Memory, StoreKind::Sled] {
        for task_type in ["stamp", "stamp_light"] {
            let mut gaps = StageGaps::default();
            for run in 0..LATENCY_RUNS {
                let observed = rt.block_on(latency_run(store_kind, task_type));
                if run > 0 {
                    gaps.add(observed);
                }
            }
            println!("{} ({task_type}):", store_kind.label());
            print_latencies(
                "task view: execute end -> next node's execute start",
                gaps.task,
            );
            print_latencies(
                "event view: node SUCCEED event -> next sub-task RUNNING event",
                gaps.event,
            );
            for (index, run_time) in gaps.runs.iter().enumerate() {
                let per_stage = run_time.as_secs_f64() / CHAIN_LENGTH as f64;
                let mut line = format!(
                    "  chain run: {:.1} ms for {CHAIN_LENGTH} stages ({:.1} us per stage",
                    run_time.as_secs_f64() * 1e3,
                    per_stage * 1e6
                );
                if let Some(syncs) = gaps.syncs.get(index) {
                    line += &format!(
                        ", {:.2} device syncs per stage, stages/s = {:.2} x device syncs/s",
                        *syncs as f64 / CHAIN_LENGTH as f64,
                        sync_time.as_secs_f64() / per_stage
                    );
                }
                println!("{line})");
            }
        }
    }
    println!();
}

/// The median of `runs` timed runs of `shape` on the in-memory store.
fn median_run(rt: &Runtime, shape: Shape, runs: usize, task_type: &str) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            rt.block_on(timed_run(
                shape,
                StoreKind::Memory,
                DEFAULT_WORKERS,
                task_type,
            ))
        })
        .collect();
    times.sort();
    quantile(&times, 0.5)
}

/// Evidence for `docs/performance.md`: how the cost per sub-task grows with the size of
/// a DAG (constant means linear scheduling work), and the floor a durable sled commit
/// puts under every group commit.
fn diagnostics(_c: &mut Criterion) {
    let rt = runtime();
    println!("scaling on the in-memory store, workers {DEFAULT_WORKERS} (median of 3 runs):");
    let sizes = [
        Shape::Chain(CHAIN_LENGTH / 4),
        Shape::Chain(CHAIN_LENGTH / 2),
        Shape::CHAIN,
        Shape::FanOut(FAN_OUT_WIDTH / 4),
        Shape::FanOut(FAN_OUT_WIDTH / 2),
        Shape::FAN_OUT,
    ];
    rt.block_on(timed_run(
        Shape::CHAIN,
        StoreKind::Memory,
        DEFAULT_WORKERS,
        "noop",
    ));
    for shape in sizes {
        for task_type in ["noop", "noop_light"] {
            let elapsed = median_run(&rt, shape, 3, task_type);
            println!(
                "  {:<16} {task_type:<10} {:>9.1} ms  {:>7.1} us per sub-task",
                shape.label(),
                elapsed.as_secs_f64() * 1e3,
                micros(elapsed) / shape.sub_tasks() as f64
            );
        }
    }

    println!("durable sled commit (apply_batch + flush) of N records of 600 bytes:");
    let directory = tempfile::tempdir().expect("temporary directory");
    let store = SledStore::open(directory.path()).expect("sled store opens");
    let value = vec![b'x'; 600];
    let mut key_number = 0u64;
    for (records, commits) in [(1usize, 300usize), (8, 300), (64, 200), (512, 50)] {
        let mut latencies = Vec::with_capacity(commits);
        for _ in 0..commits {
            let mut batch = Batch::default();
            for _ in 0..records {
                key_number = (key_number + 1) % 20_000;
                batch.put(format!("bench/{key_number:08}").into_bytes(), value.clone());
            }
            let started = Instant::now();
            store.commit(batch).expect("sled commit");
            latencies.push(started.elapsed());
        }
        latencies.sort();
        let median = quantile(&latencies, 0.5);
        println!(
            "  N={records:<4} p50={:>8.1} us  p99={:>8.1} us  => at most {:>9.0} records/s",
            micros(median),
            micros(quantile(&latencies, 0.99)),
            records as f64 / median.as_secs_f64()
        );
    }
    println!();
}

criterion_group!(benches, stage_latency, diagnostics, throughput);
criterion_main!(benches);

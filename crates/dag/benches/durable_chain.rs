//! The durable chain against the device's sync rate, in one run, alternating: each round
//! runs the sync probes (128-byte records `pwrite`n into a preallocated file, each
//! followed by `fdatasync`: in place, one after the other as `benches/peers` does, and
//! one per 4 KiB page as the engine's commit log writes them), then a chain of
//! one-sub-task nodes on a fresh `SledStore` (the no-op spawned per attempt, and as a
//! light task type). Prints medians: stages/s, syncs per stage of the commit log, and
//! the ratio of stages/s to the in-place probe's syncs/s; per-stage latency against the
//! probe's sync latency; and the engine's own time per stage (the chain's time less the
//! commit log's `pwrite` + `fdatasync` time, [`obrestore_dag::store::CommitLog::sync_time`]),
//! with the ratio a stage would reach at the probe's median sync:
//! `sync / (sync + engine)`. The device's latency on a shared machine swings several
//! times between runs; the engine's time per stage does not depend on it.
//!
//! `cargo bench -p obrestore-dag --bench durable_chain`
//! (`OBRESTORE_CHAIN_ROUNDS`, default 7; `OBRESTORE_CHAIN_LENGTH`, default 200;
//! `OBRESTORE_CHAIN_DIR`, default the temp dir).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use obrestore_dag::{
    DagSpec, Engine, EngineConfig, Flags, KvStore, NodeSpec, SledStore, State, Task, TaskContext,
    TaskError, TaskRegistry,
};
use serde_json::json;

const PROBE_SPAN: Duration = Duration::from_millis(300);
const PROBE_FILE: u64 = 8 << 20;
const RECORD: usize = 128;
const PAGE: u64 = 4096;

/// The no-op: notes when it ran (the chain runs one at a time, in order).
struct Noop(Arc<Mutex<Vec<Instant>>>);

#[async_trait]
impl Task for Noop {
    async fn execute(&self, _ctx: &TaskContext) -> Result<(), TaskError> {
        if let Ok(mut stamps) = self.0.lock() {
            stamps.push(Instant::now());
        }
        Ok(())
    }
}

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// Syncs per second of 128-byte records into a preallocated, synced file, the next
/// record `step` bytes after the previous one (`RECORD`: in place, one after the other;
/// `PAGE`: one page each, as the commit log), and the median µs of one write + sync.
fn sync_rate(parent: &Path, step: u64) -> (f64, f64) {
    let directory = tempfile::tempdir_in(parent).expect("probe directory");
    let file = File::create(directory.path().join("log")).expect("probe file");
    file.write_all_at(&vec![0; PROBE_FILE as usize], 0)
        .expect("preallocate");
    file.sync_all().expect("fsync");
    let record = [b'r'; RECORD];
    let (started, mut offset) = (Instant::now(), 0u64);
    let mut latencies = Vec::new();
    while started.elapsed() < PROBE_SPAN {
        if offset + step > PROBE_FILE {
            offset = 0;
        }
        let write = Instant::now();
        file.write_all_at(&record, offset).expect("write");
        file.sync_data().expect("fdatasync");
        latencies.push(write.elapsed().as_secs_f64() * 1e6);
        offset += step;
    }
    let rate = latencies.len() as f64 / started.elapsed().as_secs_f64();
    (rate, median(&mut latencies))
}

/// One chain run: stages/s, commit-log syncs per stage, the median µs from one stage's
/// no-op to the next one's, and the mean µs per stage outside the log's write + sync.
async fn chain(parent: &Path, length: usize, light: bool) -> [f64; 4] {
    let directory = tempfile::tempdir_in(parent).expect("store directory");
    let store = Arc::new(SledStore::open(directory.path()).expect("sled opens"));
    let mut registry = TaskRegistry::new();
    let stamps = Arc::new(Mutex::new(Vec::with_capacity(length)));
    registry.register_shared("noop", Flags::ALL, Arc::new(Noop(Arc::clone(&stamps))));
    if light {
        assert!(registry.set_light("noop"));
    }
    let kv: Arc<dyn KvStore> = store.clone();
    let engine = Engine::open(EngineConfig::default(), kv, registry)
        .await
        .expect("engine opens");
    let mut spec = DagSpec::new("chain");
    let nodes = (0..length)
        .map(|position| {
            NodeSpec::new(format!("step {position}"), "noop")
                .sub_tasks(vec![json!({ "position": position })])
        })
        .collect();
    spec.chain(None, nodes);
    let syncs = store.commit_log().syncs();
    let sync_time = store.commit_log().sync_time();
    let started = Instant::now();
    let dag_id = engine.submit(spec).await.expect("submit");
    let dag = engine.wait_settled(dag_id).await.expect("settles");
    let elapsed = started.elapsed().as_secs_f64();
    let syncs = store.commit_log().syncs() - syncs;
    let sync_time = (store.commit_log().sync_time() - sync_time).as_secs_f64();
    engine.shutdown(Duration::from_secs(5)).await;
    assert_eq!(dag.state, State::Succeed);
    let stamps = stamps.lock().expect("stamps").clone();
    let mut stages: Vec<f64> = stamps
        .windows(2)
        .map(|pair| (pair[1] - pair[0]).as_secs_f64() * 1e6)
        .collect();
    let stage = median(&mut stages);
    let engine = (elapsed - sync_time) * 1e6 / length as f64;
    [
        length as f64 / elapsed,
        syncs as f64 / length as f64,
        stage,
        engine,
    ]
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn main() {
    let rounds = env_or("OBRESTORE_CHAIN_ROUNDS", 7).max(1);
    let length = env_or("OBRESTORE_CHAIN_LENGTH", 200).max(1);
    let parent =
        std::env::var_os("OBRESTORE_CHAIN_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(chain(&parent, 20, false));
    // Per row: rate, syncs per stage, median µs, engine µs per stage.
    let mut rows: [[Vec<f64>; 4]; 4] = Default::default();
    for _ in 0..rounds {
        for (row, step) in [(0, RECORD as u64), (1, PAGE)] {
            let (rate, latency) = sync_rate(&parent, step);
            rows[row][0].push(rate);
            rows[row][2].push(latency);
        }
        for (row, light) in [(2, false), (3, true)] {
            let figures = runtime.block_on(chain(&parent, length, light));
            for (column, figure) in figures.into_iter().enumerate() {
                rows[row][column].push(figure);
            }
        }
    }
    let [in_place, paged, spawned, light] = rows.map(|row| row.map(|mut v| median(&mut v)));
    println!(
        "durable chain of {length}, {rounds} rounds alternating, medians ({})",
        parent.display()
    );
    println!("| what | per second | syncs/stage | ratio to in-place sync/s | median µs | ratio of medians | engine µs/stage | ratio at probe's sync |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, [rate, syncs, micros, engine]) in [
        ("write+fdatasync in place (128 B apart)", in_place),
        ("write+fdatasync, one 4 KiB page each", paged),
        ("chain, no-op spawned (stages)", spawned),
        ("chain, no-op light (stages)", light),
    ] {
        let (syncs, engine, projected) = if syncs.is_nan() {
            (String::new(), String::new(), String::new())
        } else {
            (
                format!("{syncs:.2}"),
                format!("{engine:.0}"),
                format!("{:.2}", in_place[2] / (in_place[2] + engine)),
            )
        };
        println!(
            "| {name} | {rate:.0} | {syncs} | {:.2} | {micros:.0} | {:.2} | {engine} | {projected} |",
            rate / in_place[0],
            in_place[2] / micros
        );
    }
}

//! Scale of the durable store: 10,000 finished DAGs (and a few unfinished ones) in a
//! `SledStore`, then what grows with them.
//!
//! Each DAG is a chain of 3 nodes with 4 sub-tasks each; every sub-task writes one log
//! line. Three more DAGs take a tenant lock and fail, so they stay unfinished (obshell's
//! `is_finished = false`). Measured, medians:
//! - reopen: `SledStore::open`, then `Engine::open` (recovery), with and without a
//!   retention (which still scans every DAG record, to prune);
//! - the unfinished list (`Engine::unfinished_dags`, what `GET /api/v1/task/dag/unfinish`
//!   and, without details, `GET /api/v1/status` read), against the full scan it replaced
//!   (every DAG record read, then filtered), in the same run, alternating;
//! - one DAG with its nodes and sub-tasks (`Engine::dag_detail`);
//! - size on disk against the logical size (keys + values), and what the same records
//!   take as JSON (format 1), written the same way (a bulk copy into a fresh store).
//!
//! `cargo bench -p obrestore-dag --bench scale` (`OBRESTORE_SCALE_DAGS=1000` for a
//! quick run). Prints one table.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use obrestore_dag::record::{
    keys, Counters, DagRecord, LockRecord, LogRecord, NodeRecord, TaskRecord, Typed,
};
use obrestore_dag::store::{decode, Batch};
use obrestore_dag::{
    DagSpec, Engine, EngineConfig, Flags, KvStore, Maintenance, NodeSpec, Scope, SledStore, Task,
    TaskContext, TaskError, TaskRegistry,
};
use serde_json::json;

const NODES: usize = 3;
const SUB_TASKS: usize = 4;
const UNFINISHED: usize = 3;
const REPEATS: usize = 25;

struct Logs;

#[async_trait]
impl Task for Logs {
    async fn execute(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        ctx.info(format!("restored file {}", ctx.task_id()));
        Ok(())
    }
}

struct Fails;

#[async_trait]
impl Task for Fails {
    async fn execute(&self, _ctx: &TaskContext) -> Result<(), TaskError> {
        Err(TaskError::new("fails on purpose"))
    }
}

fn registry() -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    registry.register("logs", Flags::ALL, |_| Ok(Box::new(Logs) as Box<dyn Task>));
    registry.register(
        "fails",
        Flags::ALL,
        |_| Ok(Box::new(Fails) as Box<dyn Task>),
    );
    registry
}

fn config(retention: Option<Duration>) -> EngineConfig {
    EngineConfig {
        worker_limit: 64,
        retention,
        ..EngineConfig::default()
    }
}

fn finished_dag(serial: usize) -> DagSpec {
    let scope = if serial.is_multiple_of(2) {
        Scope::Agent
    } else {
        Scope::Cluster
    };
    let mut spec = DagSpec::new(format!("scale {serial}")).scope(scope);
    let nodes = (0..NODES)
        .map(|node| {
            let params = (0..SUB_TASKS)
                .map(|file| json!({"file": format!("data/{serial}/{node}/{file}")}))
                .collect();
            NodeSpec::new(format!("step {node}"), "logs").sub_tasks(params)
        })
        .collect();
    spec.chain(None, nodes);
    spec
}

fn unfinished_dag(serial: usize) -> DagSpec {
    let mut spec = DagSpec::new(format!("failing {serial}"))
        .maintenance(Maintenance::Tenant(format!("tenant{serial}")));
    spec.add_node(NodeSpec::new("fails", "fails").sub_tasks(vec![json!({})]));
    spec
}

/// Runs `count` finished DAGs and the unfinished ones through an engine on `path`.
async fn populate(path: &Path, count: usize) -> Duration {
    let store = Arc::new(SledStore::open(path).expect("sled opens"));
    let engine = Engine::open(config(None), store.clone(), registry())
        .await
        .expect("engine opens");
    let started = Instant::now();
    for wave in (0..count).collect::<Vec<_>>().chunks(500) {
        let ids = futures::future::join_all(wave.iter().map(|serial| {
            let engine = engine.clone();
            async move { engine.submit(finished_dag(*serial)).await.expect("submit") }
        }))
        .await;
        for id in ids {
            engine.wait_settled(id).await.expect("settles");
        }
    }
    for serial in 0..UNFINISHED {
        let id = engine.submit(unfinished_dag(serial)).await.expect("submit");
        engine.wait_settled(id).await.expect("settles");
    }
    let took = started.elapsed();
    close(engine, store).await;
    took
}

/// Shuts `engine` down and waits until its tasks let go of `store` (sled's lock goes
/// with the last handle).
async fn close(engine: Engine, store: Arc<SledStore>) {
    engine.shutdown(Duration::from_secs(10)).await;
    drop(engine);
    while Arc::strong_count(&store) > 1 {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

fn ms(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1e3)
}

/// Reopens the store `REPEATS` times: (sled open, engine open) medians.
async fn reopen(path: &Path, retention: Option<Duration>) -> (Duration, Duration) {
    let (mut sled, mut engine) = (Vec::new(), Vec::new());
    for _ in 0..REPEATS.min(7) {
        let started = Instant::now();
        let store = Arc::new(SledStore::open(path).expect("sled opens"));
        sled.push(started.elapsed());
        let started = Instant::now();
        let opened = Engine::open(config(retention), store.clone(), registry())
            .await
            .expect("engine opens");
        engine.push(started.elapsed());
        close(opened, store).await;
    }
    (median(sled), median(engine))
}

/// The unfinished list as it was read before the index: every DAG record, filtered.
fn unfinished_by_scan(engine: &Engine) -> usize {
    let mut count = 0;
    for dag in engine.dags(None).expect("dags") {
        if DagRecord::is_unfinished(&dag) {
            engine.dag_detail(dag.id, false).expect("dag view");
            count += 1;
        }
    }
    count
}

fn time<T>(work: impl FnOnce() -> T) -> (Duration, T) {
    let started = Instant::now();
    let out = work();
    (started.elapsed(), out)
}

/// (logical bytes, logical bytes as JSON), and a bulk copy of the store into
/// `binary_copy` and, records as JSON and without the index, into `json_copy`.
fn sizes(store: &SledStore, binary_copy: &Path, json_copy: &Path) -> (u64, u64) {
    let (mut logical, mut logical_json) = (0u64, 0u64);
    let (mut binary, mut json) = (Batch::default(), Batch::default());
    for (key, value) in store.scan_prefix(b"").expect("scan") {
        let json_value = as_json(&key, &value).unwrap_or_else(|| value.clone());
        logical += (key.len() + value.len()) as u64;
        logical_json += (key.len() + json_value.len()) as u64;
        binary.put(key.clone(), value);
        // The JSON copy is a store as format 1 wrote it: no index.
        if !key.starts_with(keys::ACTIVE) && key != keys::ACTIVE_INDEX_BUILT {
            json.put(key, json_value);
        }
    }
    for (path, batch) in [(binary_copy, binary), (json_copy, json)] {
        let copy = SledStore::open(path).expect("sled opens");
        copy.commit(batch).expect("copy commits");
    }
    (logical, logical_json)
}

/// The record `value` under `key` in the JSON format, if it is a record.
fn as_json(key: &[u8], value: &[u8]) -> Option<Vec<u8>> {
    fn json<T: Typed>(key: &[u8], value: &[u8]) -> Option<Vec<u8>> {
        Some(decode::<T>(key, value).ok()?.into_record().to_json())
    }
    match key.get(..2)? {
        prefix if prefix == keys::DAG => json::<DagRecord>(key, value),
        prefix if prefix == keys::NODE => json::<NodeRecord>(key, value),
        prefix if prefix == keys::TASK => json::<TaskRecord>(key, value),
        prefix if prefix == keys::LOG => json::<LogRecord>(key, value),
        prefix if prefix == keys::LOCK => json::<LockRecord>(key, value),
        _ if key == keys::COUNTERS => json::<Counters>(key, value),
        _ => None,
    }
}

/// On the JSON copy (a store as format 1 wrote it, without the index): the median time
/// to read every DAG record, then the time of the first `Engine::open`.
async fn json_store_reads(path: &Path) -> (Duration, Duration) {
    let store = Arc::new(SledStore::open(path).expect("sled opens"));
    let records = obrestore_dag::store::Records::new(store.clone());
    let mut scans = Vec::new();
    for _ in 0..5 {
        let (took, dags) = time(|| records.all_dags().expect("dags"));
        assert!(dags.len() > UNFINISHED);
        scans.push(took);
    }
    let started = Instant::now();
    let engine = Engine::open(config(None), store, registry())
        .await
        .expect("engine opens");
    let first_open = started.elapsed();
    engine.shutdown(Duration::from_secs(10)).await;
    (median(scans), first_open)
}

fn disk_bytes(path: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(path).expect("store dir").flatten() {
        let meta = entry.metadata().expect("metadata");
        total += if meta.is_dir() {
            disk_bytes(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

// long: one table, measured in order; splitting it would scatter the report.
fn main() {
    let count: usize = std::env::var("OBRESTORE_SCALE_DAGS")
        .ok()
        .and_then(|count| count.parse().ok())
        .unwrap_or(10_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("db");
    let populated = rt.block_on(populate(&db, count));
    println!("populated {count} finished + {UNFINISHED} unfinished DAGs in {populated:.1?}");

    let (sled_open, engine_open) = rt.block_on(reopen(&db, None));
    let (_, engine_open_retention) = rt.block_on(reopen(&db, Some(Duration::from_secs(86_400))));

    let store = Arc::new(SledStore::open(&db).expect("sled opens"));
    let engine = rt
        .block_on(Engine::open(config(None), store.clone(), registry()))
        .expect("engine opens");
    let (mut indexed, mut scanned, mut status, mut detail) = (vec![], vec![], vec![], vec![]);
    let mut listed = (0, 0);
    for repeat in 0..REPEATS {
        let (took, list) = time(|| engine.unfinished_dags(None, false).expect("list"));
        indexed.push(took);
        let (took, count) = time(|| unfinished_by_scan(&engine));
        scanned.push(took);
        listed = (list.len(), count);
        let (took, _) = time(|| {
            engine
                .active_dags(Some(Scope::Agent))
                .expect("active")
                .iter()
                .any(|dag| dag.lock_held)
        });
        status.push(took);
        let id = 1 + (repeat as u64 * 7919) % count as u64;
        let (took, _) = time(|| engine.dag_detail(id, true).expect("detail"));
        detail.push(took);
    }
    assert_eq!(
        listed,
        (UNFINISHED, UNFINISHED),
        "both lists find the same DAGs"
    );
    rt.block_on(engine.shutdown(Duration::from_secs(10)));
    drop(engine);

    let (logical, logical_json) = sizes(&store, &dir.path().join("bin"), &dir.path().join("json"));
    let (json_scan, json_first_open) = rt.block_on(json_store_reads(&dir.path().join("json")));
    let on_disk = disk_bytes(&db);
    let copy_binary = disk_bytes(&dir.path().join("bin"));
    let copy_json = disk_bytes(&dir.path().join("json"));

    println!("| measure ({count} finished DAGs, {UNFINISHED} unfinished) | median |");
    println!("|---|---|");
    println!("| SledStore::open | {} |", ms(sled_open));
    println!(
        "| Engine::open (recovery), no retention | {} |",
        ms(engine_open)
    );
    println!(
        "| Engine::open, retention 1 day (prune scans every DAG) | {} |",
        ms(engine_open_retention)
    );
    println!(
        "| every DAG record read from the JSON copy (what open did before the index) | {} |",
        ms(json_scan)
    );
    println!(
        "| first Engine::open of the JSON copy (builds the index, once) | {} |",
        ms(json_first_open)
    );
    println!(
        "| unfinished list via index (`unfinished_dags`) | {} |",
        ms(median(indexed))
    );
    println!(
        "| unfinished list via full scan (before) | {} |",
        ms(median(scanned))
    );
    println!(
        "| status: agent DAG holding a lock, via index | {} |",
        ms(median(status))
    );
    println!(
        "| one DAG with nodes and sub-tasks (`dag_detail`) | {} |",
        ms(median(detail))
    );
    println!(
        "| logical size (keys + values), binary records | {} |",
        mib(logical)
    );
    println!(
        "| logical size, same records as JSON | {} |",
        mib(logical_json)
    );
    println!(
        "| on disk, written by the engine | {} ({:.1}x logical) |",
        mib(on_disk),
        on_disk as f64 / logical as f64
    );
    println!(
        "| on disk, bulk copy, binary | {} ({:.1}x logical) |",
        mib(copy_binary),
        copy_binary as f64 / logical as f64
    );
    println!(
        "| on disk, bulk copy, JSON | {} ({:.1}x logical JSON) |",
        mib(copy_json),
        copy_json as f64 / logical_json as f64
    );
}

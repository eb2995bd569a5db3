//! Stage throughput and commit latency of the engine on etcd (1 and 3 members, started
//! by the test harness on loopback) next to sled, in one run, one table.
//!
//! Shapes (as `benches/stage_throughput.rs`, smaller: every stage of a chain is at
//! least one etcd round trip): a chain of `CHAIN` one-sub-task nodes and one node
//! fanning out to `FAN_OUT` no-op sub-tasks; plus `COMMITS` single-record fenced
//! commits straight to the store. The stores alternate within each round, `ROUNDS`
//! rounds; the table shows medians over rounds (latency percentiles over every commit).
//!
//! `cargo bench -p obrestore-etcd --bench etcd_stages` (needs `etcd` installed).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use obrestore_dag::store::{Batch, KvStore};
use obrestore_dag::{
    DagSpec, Engine, EngineConfig, Flags, NodeSpec, SledStore, State, Task, TaskContext, TaskError,
    TaskRegistry,
};
use obrestore_etcd::testing::EtcdCluster;
use obrestore_etcd::{Election, EtcdStore, Leadership};
use serde_json::json;

const CHAIN: usize = 200;
const FAN_OUT: usize = 2_000;
const COMMITS: usize = 200;
const ROUNDS: usize = 5;
const WORKERS: usize = 64;

struct Noop;

#[async_trait]
impl Task for Noop {
    async fn execute(&self, _ctx: &TaskContext) -> Result<(), TaskError> {
        Ok(())
    }
}

fn registry() -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    registry.register("noop", Flags::ALL, |_| Ok(Box::new(Noop) as Box<dyn Task>));
    registry
}

fn chain() -> DagSpec {
    let mut spec = DagSpec::new("chain");
    let nodes = (0..CHAIN)
        .map(|i| NodeSpec::new(format!("n{i}"), "noop").sub_tasks(vec![json!({})]))
        .collect();
    spec.chain(None, nodes);
    spec
}

fn fan_out() -> DagSpec {
    let mut spec = DagSpec::new("fan");
    spec.add_node(NodeSpec::new("fan", "noop").sub_tasks(vec![json!({}); FAN_OUT]));
    spec
}

/// One store under test; `fresh` gives an empty one (a new etcd prefix, a new sled dir).
enum Backend {
    Sled(tempfile::TempDir),
    Etcd {
        cluster: EtcdCluster,
        rounds: usize,
        held: Vec<Leadership>,
    },
}

impl Backend {
    fn fresh(&mut self) -> Arc<dyn KvStore> {
        match self {
            Backend::Sled(dir) => {
                let path = dir.path().join(format!("db{}", uuid_like()));
                Arc::new(SledStore::open(path).expect("sled opens"))
            }
            Backend::Etcd {
                cluster,
                rounds,
                held,
            } => {
                *rounds += 1;
                let name = format!("bench{rounds}");
                let etcd = cluster.client();
                let leadership = Election::new(etcd.clone(), &name, "bench")
                    .unwrap()
                    .campaign()
                    .unwrap()
                    .expect("no other candidate");
                let store = EtcdStore::new(etcd, &name, leadership.fence()).unwrap();
                held.push(leadership);
                Arc::new(store)
            }
        }
    }
}

fn uuid_like() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// Seconds from submit to settled.
fn run(runtime: &tokio::runtime::Runtime, store: Arc<dyn KvStore>, spec: DagSpec) -> f64 {
    runtime.block_on(async {
        let config = EngineConfig {
            worker_limit: WORKERS,
            ..EngineConfig::default()
        };
        let engine = Engine::open(config, store, registry()).await.unwrap();
        let started = Instant::now();
        let id = engine.submit(spec).await.unwrap();
        let dag = engine.wait_settled(id).await.unwrap();
        let took = started.elapsed().as_secs_f64();
        assert_eq!(dag.state, State::Succeed);
        engine.shutdown(Duration::from_secs(5)).await;
        took
    })
}

/// Latency of each of `COMMITS` one-record commits, in milliseconds.
fn commits(store: &Arc<dyn KvStore>) -> Vec<f64> {
    (0..COMMITS)
        .map(|i| {
            let mut batch = Batch::default();
            batch.put(format!("bench/{i}").into_bytes(), vec![7; 200]);
            let started = Instant::now();
            store.commit(batch).unwrap();
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect()
}

fn median(values: &mut [f64]) -> f64 {
    percentile(values, 0.5)
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let index = ((values.len() as f64 - 1.0) * q).round() as usize;
    values[index]
}

#[derive(Default)]
struct Figures {
    chain_stages_per_s: Vec<f64>,
    fan_tasks_per_s: Vec<f64>,
    commit_ms: Vec<f64>,
}

fn main() {
    if std::env::args().any(|arg| arg == "--list") {
        return;
    }
    let (Some(one), Some(three)) = (EtcdCluster::start(1), EtcdCluster::start(3)) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut backends = [
        ("sled", Backend::Sled(tempfile::tempdir().unwrap())),
        (
            "etcd, 1 member",
            Backend::Etcd {
                cluster: one,
                rounds: 0,
                held: Vec::new(),
            },
        ),
        (
            "etcd, 3 members",
            Backend::Etcd {
                cluster: three,
                rounds: 0,
                held: Vec::new(),
            },
        ),
    ];
    let mut figures: Vec<Figures> = backends.iter().map(|_| Figures::default()).collect();
    for round in 0..ROUNDS {
        for (i, (name, backend)) in backends.iter_mut().enumerate() {
            let chain_s = run(&runtime, backend.fresh(), chain());
            let fan_s = run(&runtime, backend.fresh(), fan_out());
            let store = backend.fresh();
            let latencies = commits(&store);
            eprintln!("round {round} {name}: chain {chain_s:.2} s, fan-out {fan_s:.2} s");
            figures[i].chain_stages_per_s.push(CHAIN as f64 / chain_s);
            figures[i].fan_tasks_per_s.push(FAN_OUT as f64 / fan_s);
            figures[i].commit_ms.extend(latencies);
        }
    }
    println!("\nEngine on etcd vs sled: medians of {ROUNDS} alternating rounds");
    println!("(chain of {CHAIN} nodes, fan-out of {FAN_OUT} no-op sub-tasks, {WORKERS} workers; {COMMITS} one-record commits per round)\n");
    println!("| store | chain stages/s | fan-out sub-tasks/s | commit p50 ms | commit p99 ms |");
    println!("|---|---:|---:|---:|---:|");
    for ((name, _), f) in backends.iter().zip(figures.iter_mut()) {
        println!(
            "| {name} | {:.0} | {:.0} | {:.2} | {:.2} |",
            median(&mut f.chain_stages_per_s),
            median(&mut f.fan_tasks_per_s),
            percentile(&mut f.commit_ms, 0.5),
            percentile(&mut f.commit_ms, 0.99),
        );
    }
}

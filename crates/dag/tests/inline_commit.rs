//! Where a blocking store's batches are committed (`committer.rs`, step 1): by the
//! actor itself when nothing could arrive while the batch flushes (a chain between two
//! stages), by the committer's thread when a sub-task runs meanwhile. Either way every
//! commit is durable before its effects: the DAG's records are read back from the store.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use obrestore_dag::store::{Batch, Pairs};
use obrestore_dag::{
    DagSpec, Engine, EngineConfig, Flags, KvStore, NodeSpec, SledStore, State, StoreError, Task,
    TaskContext, TaskError, TaskRegistry,
};
use serde_json::json;
use tokio::sync::Notify;

/// A sled store that notes the name of the thread of every commit.
struct Recording {
    inner: SledStore,
    threads: Mutex<Vec<String>>,
}

impl Recording {
    fn committer_commits(&self) -> usize {
        let threads = self.threads.lock().unwrap();
        threads
            .iter()
            .filter(|name| *name == "obrestore-committer")
            .count()
    }

    fn commits(&self) -> usize {
        self.threads.lock().unwrap().len()
    }
}

impl KvStore for Recording {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.inner.get(key)
    }

    fn scan_prefix(&self, prefix: &[u8]) -> Result<Pairs, StoreError> {
        self.inner.scan_prefix(prefix)
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let name = std::thread::current().name().unwrap_or("").to_string();
        self.threads.lock().unwrap().push(name);
        self.inner.commit(batch)
    }

    fn commit_blocks(&self) -> bool {
        self.inner.commit_blocks()
    }
}

struct Noop;

#[async_trait]
impl Task for Noop {
    async fn execute(&self, _ctx: &TaskContext) -> Result<(), TaskError> {
        Ok(())
    }
}

/// Runs until the test opens the gate.
struct Gate(Arc<Notify>);

#[async_trait]
impl Task for Gate {
    async fn execute(&self, _ctx: &TaskContext) -> Result<(), TaskError> {
        self.0.notified().await;
        Ok(())
    }
}

async fn engine(dir: &std::path::Path, gate: &Arc<Notify>) -> (Engine, Arc<Recording>) {
    let store = Arc::new(Recording {
        inner: SledStore::open(dir).unwrap(),
        threads: Mutex::new(Vec::new()),
    });
    let mut registry = TaskRegistry::new();
    registry.register_shared("noop", Flags::ALL, Arc::new(Noop));
    registry.register_shared("gate", Flags::ALL, Arc::new(Gate(Arc::clone(gate))));
    let kv: Arc<dyn KvStore> = store.clone();
    let engine = Engine::open(EngineConfig::default(), kv, registry)
        .await
        .unwrap();
    (engine, store)
}

fn node(name: &str, task_type: &str) -> NodeSpec {
    NodeSpec::new(name, task_type).sub_tasks(vec![json!({ "name": name })])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_is_committed_by_the_actor_between_its_stages() {
    let dir = tempfile::tempdir().unwrap();
    let (engine, store) = engine(dir.path(), &Arc::new(Notify::new())).await;
    let mut spec = DagSpec::new("chain");
    spec.chain(
        None,
        (0..5).map(|n| node(&format!("step {n}"), "noop")).collect(),
    );
    let id = engine.submit(spec).await.unwrap();
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(dag.state, State::Succeed);
    assert!(store.commits() >= 5, "{} commits", store.commits());
    assert_eq!(
        store.committer_commits(),
        0,
        "nothing ran while a stage's batch flushed"
    );
    let detail = engine.dag_detail(id, true).unwrap();
    let nodes = detail.nodes.unwrap();
    assert_eq!(nodes.len(), 5);
    assert!(nodes.iter().all(|n| n.state == "SUCCEED"), "{nodes:?}");
    engine.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_decided_while_a_sub_task_runs_goes_through_the_committer_thread() {
    let dir = tempfile::tempdir().unwrap();
    let gate = Arc::new(Notify::new());
    let (engine, store) = engine(dir.path(), &gate).await;
    let mut spec = DagSpec::new("two branches");
    spec.add_node(node("fast", "noop"));
    spec.add_node(node("slow", "gate"));
    let id = engine.submit(spec).await.unwrap();
    // The fast branch settles while the gate still runs: its batch is pipelined.
    let mut fast_done = false;
    for _ in 0..5000 {
        let detail = engine.dag_detail(id, true).unwrap();
        fast_done = detail
            .nodes
            .unwrap()
            .iter()
            .any(|n| n.name == "fast" && n.state == "SUCCEED");
        if fast_done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(fast_done, "the fast node never succeeded");
    assert!(store.committer_commits() >= 1, "{:?}", store.threads);
    gate.notify_one();
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(dag.state, State::Succeed);
    engine.shutdown(Duration::from_secs(5)).await;
}

//! Persistence and restart rules: what survives an abrupt stop, what runs again, and
//! what becomes FAILED. (The SIGKILL crash test is `crash.rs`.)

mod support;

use std::sync::Arc;
use std::time::Duration;

use obrestore_dag::{
    DagSpec, Engine, EngineConfig, KvStore, MemStore, NodeSpec, Operator, SledStore, State, Subject,
};
use serde_json::json;
use support::*;

/// Waits until sub-task `name` is running.
async fn until_running(engine: &Engine, id: u64, name: &str) {
    let what = format!("{name} running");
    wait_until(engine, id, &what, |detail| {
        detail
            .nodes
            .iter()
            .flatten()
            .flat_map(|n| n.sub_tasks.iter().flatten())
            .any(|t| t.name == name && t.state == "RUNNING")
    })
    .await;
}

#[tokio::test]
async fn a_continuable_sub_task_runs_again_after_a_crash() {
    let world = Arc::new(World::default());
    let store: Arc<dyn KvStore> = Arc::new(MemStore::new());
    let engine = open(store.clone(), &world).await;
    let mut spec = DagSpec::new("resume");
    spec.chain(
        None,
        vec![
            script("A"),
            script_with("B", json!({"sleep_ms": 400})),
            script("C"),
        ],
    );
    let id = engine.submit(spec).await.unwrap();
    until_running(&engine, id, "B").await;
    engine.abort();

    let world2 = Arc::new(World::default());
    let engine = open(store, &world2).await;
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(dag.state.to_string(), "SUCCEED");
    assert_eq!(
        world2.executions_of("A"),
        0,
        "A had finished and must not run again"
    );
    assert_eq!(world2.executions_of("B"), 1);
    let b = engine.dag_detail(id, true).unwrap().nodes.unwrap()[1]
        .sub_tasks
        .clone()
        .unwrap()[0]
        .clone();
    assert_eq!(b.execute_times, 2);
}

#[tokio::test]
async fn a_non_continuable_sub_task_fails_after_a_crash_and_can_be_retried() {
    let world = Arc::new(World::default());
    let store: Arc<dyn KvStore> = Arc::new(MemStore::new());
    let engine = open(store.clone(), &world).await;
    let mut spec = DagSpec::new("fragile");
    spec.add_node(
        NodeSpec::new("F", "script_fragile")
            .sub_tasks(vec![json!({"name": "F", "sleep_ms": 10_000})]),
    );
    let id = engine.submit(spec).await.unwrap();
    until_running(&engine, id, "F").await;
    engine.abort();

    let world2 = Arc::new(World::default());
    let engine = open(store, &world2).await;
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(
        (dag.state.to_string(), dag.operator.to_string()),
        ("FAILED".to_string(), "RUN".to_string())
    );
    assert_eq!(world2.executions_of("F"), 0);
    let task = engine.dag_detail(id, true).unwrap().nodes.unwrap()[0]
        .sub_tasks
        .clone()
        .unwrap()[0]
        .clone();
    assert_eq!(
        task.task_logs.last().unwrap(),
        "ERROR: task unexpectedly interrupted and cannot continue"
    );
    engine.operate(id, Operator::Retry).await.unwrap();
    // The retried run rolls back first, then executes (10 s sleep: wait only for RUNNING).
    until_running(&engine, id, "F").await;
    assert_eq!(world2.rollbacks_of("F"), 1);
}

/// A DAG whose node failed while another branch still ran, and whose engine stopped
/// before it settled, settles FAILED after reopen instead of running on.
#[tokio::test]
async fn a_dag_that_was_failing_when_the_engine_stopped_settles_failed_after_reopen() {
    let world = Arc::new(World::default());
    let store: Arc<dyn KvStore> = Arc::new(MemStore::new());
    let engine = open(store.clone(), &world).await;
    world.fail("A", 1);
    let mut spec = DagSpec::new("failing");
    spec.add_node(script("A"));
    spec.add_node(script_with("B", json!({"sleep_ms": 400})));
    let mut events = engine.subscribe();
    let id = engine.submit(spec).await.unwrap();
    // Stop once A's failure is durable, while B still runs.
    loop {
        let event = events.recv().await.unwrap();
        if matches!(event.subject, Subject::Node { .. }) && event.state == State::Failed {
            break;
        }
    }
    engine.abort();
    assert_eq!(dag_status(&engine, id), status("RUNNING", "RUN"));

    let world2 = Arc::new(World::default());
    let engine = open(store, &world2).await;
    let dag = tokio::time::timeout(Duration::from_secs(5), engine.wait_settled(id))
        .await
        .expect("the DAG settles after reopen")
        .unwrap();
    assert_eq!(
        (dag.state.to_string(), dag.operator.to_string()),
        status("FAILED", "RUN")
    );
    // B was interrupted: it waits for an operator, READY, and did not run again.
    assert_eq!(
        node_status(&engine, id),
        vec![
            node_row("A", "FAILED", "RUN"),
            node_row("B", "READY", "RUN")
        ]
    );
    assert_eq!(world2.executions_of("B"), 0);
    engine.operate(id, Operator::Retry).await.unwrap();
    assert_eq!(
        engine.wait_settled(id).await.unwrap().state.to_string(),
        "SUCCEED"
    );
    assert_eq!(
        (world2.executions_of("A"), world2.executions_of("B")),
        (1, 1)
    );
}

#[tokio::test]
async fn a_failed_dag_keeps_its_state_and_lock_across_a_crash() {
    let world = Arc::new(World::default());
    let store: Arc<dyn KvStore> = Arc::new(MemStore::new());
    let engine = open(store.clone(), &world).await;
    world.fail("A", 1);
    let tenant = || chain(&["A"]).maintenance(obrestore_dag::Maintenance::Tenant("t1".to_string()));
    let id = engine.submit(tenant()).await.unwrap();
    engine.wait_settled(id).await.unwrap();
    engine.abort();

    let engine = open(store, &world).await;
    assert_eq!(
        dag_status(&engine, id),
        ("FAILED".to_string(), "RUN".to_string())
    );
    match engine.submit(tenant()).await {
        Err(obrestore_dag::SubmitError::LockConflict(conflict)) => {
            assert_eq!(conflict.holder, id)
        }
        other => panic!("the lock must survive the crash: {other:?}"),
    }
    // A FAILED maintenance DAG waits for an operator: it is unfinished (obshell).
    assert_eq!(engine.unfinished_dags(None, false).unwrap().len(), 1);
    engine.operate(id, Operator::Retry).await.unwrap();
    assert_eq!(
        engine.wait_settled(id).await.unwrap().state.to_string(),
        "SUCCEED"
    );
    assert!(engine.submit(tenant()).await.is_ok());
}

#[tokio::test]
async fn logs_are_kept_per_execute_times() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    world.fail("T", 1);
    let id = engine.submit(chain(&["T"])).await.unwrap();
    engine.wait_settled(id).await.unwrap();
    engine.operate(id, Operator::Retry).await.unwrap();
    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(dag.state.to_string(), "SUCCEED");
    let logs = engine
        .task_logs(
            engine.dag_detail(id, true).unwrap().nodes.unwrap()[0]
                .sub_tasks
                .clone()
                .unwrap()[0]
                .task_id,
        )
        .unwrap();
    let times: Vec<u32> = logs.iter().map(|l| l.execute_times).collect();
    assert_eq!(times, vec![1, 1, 2, 2], "{logs:?}");
}

#[tokio::test]
async fn sled_store_keeps_everything_across_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let world = Arc::new(World::default());
    world.fail("B", 1);
    let id = {
        let store: Arc<dyn KvStore> = Arc::new(SledStore::open(dir.path()).unwrap());
        let engine = open(store, &world).await;
        let id = engine.submit(chain(&["A", "B"])).await.unwrap();
        engine.wait_settled(id).await.unwrap();
        engine.shutdown(Duration::from_secs(5)).await;
        id
    };
    let store: Arc<dyn KvStore> = Arc::new(SledStore::open(dir.path()).unwrap());
    let engine = open(store, &world).await;
    let before = engine.dag_detail(id, true).unwrap();
    assert_eq!(
        (before.state.as_str(), before.operator.as_str()),
        ("FAILED", "RUN")
    );
    engine.operate(id, Operator::Retry).await.unwrap();
    assert_eq!(
        engine.wait_settled(id).await.unwrap().state.to_string(),
        "SUCCEED"
    );
    assert_eq!(world.executions_of("A"), 1);
    let second = engine.submit(chain(&["C"])).await.unwrap();
    assert_eq!(second, id + 1, "id counters survive a reopen");
}

#[tokio::test]
async fn dynamic_fan_out_creates_sub_tasks_from_upstream_output() {
    let world = Arc::new(World::default());
    let (engine, store) = mem_engine(&world).await;
    let mut spec = DagSpec::new("dynamic");
    let plan = spec.add_node(script_with(
        "plan",
        json!({"output": {"files": [{"name": "f1"}, {"name": "f2"}, {"name": "f3"}]}}),
    ));
    let copy = spec.add_node(NodeSpec::new("copy", "script").dynamic_sub_tasks("files"));
    spec.add_edge(plan, copy);
    let id = engine.submit(spec).await.unwrap();
    assert_eq!(
        engine.wait_settled(id).await.unwrap().state.to_string(),
        "SUCCEED"
    );
    let copy = engine.dag_detail(id, true).unwrap().nodes.unwrap()[1].clone();
    let names: Vec<String> = copy
        .sub_tasks
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, vec!["f1", "f2", "f3"]);
    // The expansion is persisted: a fresh engine on the same store sees it.
    engine.abort();
    let engine = open(store, &world).await;
    assert_eq!(
        engine.dag_detail(id, true).unwrap().nodes.unwrap()[1]
            .sub_tasks
            .as_ref()
            .unwrap()
            .len(),
        3
    );

    // A missing key fails the node with a log saying why.
    let mut bad = DagSpec::new("dynamic-bad");
    let plan = bad.add_node(script("plan"));
    let copy = bad.add_node(NodeSpec::new("copy", "script").dynamic_sub_tasks("files"));
    bad.add_edge(plan, copy);
    let id = engine.submit(bad).await.unwrap();
    assert_eq!(
        engine.wait_settled(id).await.unwrap().state.to_string(),
        "FAILED"
    );
    let copy = engine.dag_detail(id, true).unwrap().nodes.unwrap()[1].clone();
    assert_eq!(
        copy.sub_tasks.unwrap()[0].task_logs,
        vec![
            "ERROR: dynamic sub-tasks: input key 'files' must be an array, found nothing"
                .to_string()
        ]
    );
}

#[tokio::test]
async fn events_follow_durable_transitions() {
    let world = Arc::new(World::default());
    let (engine, store) = mem_engine(&world).await;
    let mut events = engine.subscribe();
    let id = engine.submit(chain(&["A", "B"])).await.unwrap();
    engine.wait_settled(id).await.unwrap();
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        if event.subject == Subject::Dag {
            seen.push(format!("{}+{}", event.state, event.operator));
        }
        // Every event is already in the store when it is received.
        let dag = obrestore_dag::store::Records::new(store.clone())
            .dag(event.dag_id)
            .unwrap();
        assert!(dag.is_some());
    }
    assert_eq!(seen, vec!["READY+RUN", "RUNNING+RUN", "SUCCEED+RUN"]);
}

#[tokio::test]
async fn retention_prunes_old_finished_dags_only() {
    let world = Arc::new(World::default());
    let (engine, _) = mem_engine(&world).await;
    world.fail("X", 1);
    let ok = engine.submit(chain(&["A"])).await.unwrap();
    let failed = engine.submit(chain(&["X"])).await.unwrap();
    engine.wait_settled(ok).await.unwrap();
    engine.wait_settled(failed).await.unwrap();
    let later = chrono::Utc::now() + chrono::Duration::hours(2);
    assert_eq!(
        engine
            .prune_finished(later, Duration::from_secs(3600))
            .unwrap(),
        1
    );
    assert!(engine.dag_detail(ok, true).is_err());
    assert!(engine.dag_detail(failed, true).is_ok());
    // A FAILED DAG without a maintenance lock counts as finished, as obshell's
    // `is_finished` has it (`service/task/dag.go`, `updateDagState`); it stays queryable.
    assert_eq!(engine.unfinished_dags(None, false).unwrap().len(), 0);
    let _ = EngineConfig::default();
}

/// A store whose commits are slow (like a busy disk), to widen the window between
/// deciding a transition and it being durable.
#[derive(Clone)]
struct SlowStore(MemStore);

impl KvStore for SlowStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, obrestore_dag::StoreError> {
        self.0.get(key)
    }

    fn scan_prefix(
        &self,
        prefix: &[u8],
    ) -> Result<obrestore_dag::store::Pairs, obrestore_dag::StoreError> {
        self.0.scan_prefix(prefix)
    }

    fn commit(&self, batch: obrestore_dag::store::Batch) -> Result<(), obrestore_dag::StoreError> {
        std::thread::sleep(Duration::from_millis(15));
        self.0.commit(batch)
    }

    fn commit_blocks(&self) -> bool {
        true
    }
}

/// Records the state its own sub-task has in the store when it starts executing.
struct Observer {
    store: Arc<dyn KvStore>,
    seen: Arc<std::sync::Mutex<Vec<(bool, obrestore_dag::State)>>>,
    continuable: bool,
}

#[async_trait::async_trait]
impl obrestore_dag::Task for Observer {
    async fn execute(
        &self,
        ctx: &obrestore_dag::TaskContext,
    ) -> Result<(), obrestore_dag::TaskError> {
        let records = obrestore_dag::store::Records::new(self.store.clone());
        let state = records.task(ctx.task_id()).unwrap().unwrap().state;
        self.seen.lock().unwrap().push((self.continuable, state));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_continuable_sub_task_starts_only_after_its_running_is_durable() {
    let store: Arc<dyn KvStore> = Arc::new(SlowStore(MemStore::new()));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut registry = obrestore_dag::TaskRegistry::new();
    for (name, continuable) in [("fragile", false), ("idempotent", true)] {
        let (store, seen) = (store.clone(), seen.clone());
        let flags = obrestore_dag::Flags {
            can_continue: continuable,
            ..obrestore_dag::Flags::default()
        };
        registry.register(name, flags, move |_| {
            Ok(Box::new(Observer {
                store: store.clone(),
                seen: seen.clone(),
                continuable,
            }) as Box<dyn obrestore_dag::Task>)
        });
    }
    let engine = Engine::open(EngineConfig::default(), store, registry)
        .await
        .unwrap();
    let mut spec = DagSpec::new("durable-start");
    let params: Vec<_> = (0..24).map(|i| json!({"i": i})).collect();
    let a = spec.add_node(NodeSpec::new("idempotent", "idempotent").sub_tasks(params.clone()));
    let b = spec.add_node(NodeSpec::new("fragile", "fragile").sub_tasks(params));
    spec.add_edge(a, b);
    let id = engine.submit(spec).await.unwrap();
    assert_eq!(
        engine.wait_settled(id).await.unwrap().state.to_string(),
        "SUCCEED"
    );
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 48);
    for (continuable, state) in &seen {
        if !continuable {
            assert_eq!(
                *state,
                obrestore_dag::State::Running,
                "a non-continuable sub-task ran before its RUNNING was durable"
            );
        }
    }
    // Continuable sub-tasks may start before their RUNNING is durable (a crash re-runs
    // them anyway), so some see their own state still READY.
    println!(
        "continuable sub-tasks that started before their RUNNING was durable: {}",
        seen.iter()
            .filter(|(c, s)| *c && *s != obrestore_dag::State::Running)
            .count()
    );
}

#[tokio::test]
async fn a_reader_sees_what_the_engine_made_durable_and_decides_nothing() {
    let world = Arc::new(World::default());
    let store: Arc<dyn KvStore> = Arc::new(MemStore::new());
    let engine = open(store.clone(), &world).await;
    let reader = Engine::reader(EngineConfig::default().agent, store.clone());
    let mut spec = DagSpec::new("read me");
    spec.chain(
        None,
        vec![script("A"), script_with("B", json!({"sleep_ms": 300}))],
    );
    let id = engine.submit(spec).await.unwrap();
    until_running(&engine, id, "B").await;
    // While it runs: the reader reads the store at the time of the call.
    let running = reader.dag_detail(id, true).unwrap();
    assert_eq!(running.state, "RUNNING");
    assert_eq!(running.nodes.as_ref().unwrap()[0].state, "SUCCEED");
    assert!(matches!(
        reader.wait_settled(id).await,
        Err(obrestore_dag::QueryError::ShutDown)
    ));
    engine.wait_settled(id).await.unwrap();
    assert_eq!(
        reader.dag_detail(id, true).unwrap(),
        engine.dag_detail(id, true).unwrap()
    );
    assert_eq!(reader.wait_settled(id).await.unwrap().state, State::Succeed);
    // It decides nothing: a submit or an operator is refused, and the store is unchanged.
    let before = store.scan_prefix(b"").unwrap();
    assert!(matches!(
        reader.submit(chain(&["X"])).await,
        Err(obrestore_dag::SubmitError::ShutDown)
    ));
    assert!(matches!(
        reader.operate(id, Operator::Retry).await,
        Err(obrestore_dag::OperateError::ShutDown)
    ));
    assert_eq!(store.scan_prefix(b"").unwrap(), before);
    assert_eq!(world.executions_of("X"), 0);
    engine.shutdown(Duration::from_secs(1)).await;
}

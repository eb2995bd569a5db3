//! What the engine does, and tells its callers, when its store fails a commit
//! (`store::FailingStore`, the `failpoints` feature) or when it stops: the engine stops
//! like a crash, every caller gets an error (never a success for something not
//! durable), nothing of the failed batch is observable, and reopening the store
//! underneath resumes from the last durable batch. Every test on `FailingStore` runs
//! both commit paths: inline (a store whose commit does not block) and the pipelined
//! committer task. The last test fails the sled store's own commit log
//! (`store::LogFault`) under a running engine.

mod support;

use std::sync::Arc;
use std::time::Duration;

use obrestore_dag::store::{FailingStore, LogFault};
use obrestore_dag::{
    DagSpec, Engine, KvStore, MemStore, OperateError, Operator, QueryError, SledStore, State,
    StoreError, SubmitError,
};
use serde_json::json;
use support::*;

/// The two ways the engine commits: inline, and from its own committer task.
const COMMIT_PATHS: [bool; 2] = [false, true];

/// An engine on a [`FailingStore`] over a fresh in-memory store.
async fn failing_engine(blocking: bool, world: &Arc<World>) -> (Engine, Arc<FailingStore>) {
    let inner: Arc<dyn KvStore> = Arc::new(MemStore::new());
    let store = Arc::new(if blocking {
        FailingStore::blocking(inner)
    } else {
        FailingStore::new(inner)
    });
    (open(store.clone(), world).await, store)
}

/// Fails the test instead of hanging when `future` does not complete.
async fn soon<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("the engine answers instead of hanging")
}

fn is_poisoned(err: &StoreError) -> bool {
    matches!(err, StoreError::Poisoned(reason) if reason.contains("failpoint: commit"))
}

#[tokio::test]
async fn a_submit_whose_commit_fails_returns_the_error_and_creates_nothing() {
    for blocking in COMMIT_PATHS {
        let world = Arc::new(World::default());
        let (engine, store) = failing_engine(blocking, &world).await;
        store.fail_commit(1);
        match soon(engine.submit(chain(&["A"]))).await {
            Err(SubmitError::Store(err)) => assert!(is_poisoned(&err), "{err}"),
            other => panic!("blocking {blocking}: {other:?}"),
        }
        // The engine stopped: later requests get the same failure instead of hanging.
        match soon(engine.submit(chain(&["B"]))).await {
            Err(SubmitError::Store(err)) => assert!(is_poisoned(&err), "{err}"),
            other => panic!("blocking {blocking}: {other:?}"),
        }
        match soon(engine.operate(1, Operator::Retry)).await {
            Err(OperateError::Store(err)) => assert!(is_poisoned(&err), "{err}"),
            other => panic!("blocking {blocking}: {other:?}"),
        }
        assert!(engine.dags(None).unwrap().is_empty());
        assert_eq!(world.executions_of("A"), 0, "nothing of the batch ran");
        engine.abort();

        // Reopened on what is durable: no DAG, no id used.
        let engine = open(store.inner(), &world).await;
        assert!(engine.dags(None).unwrap().is_empty());
        let id = engine.submit(chain(&["A"])).await.unwrap();
        assert_eq!(id, 1);
        assert_eq!(engine.wait_settled(id).await.unwrap().state, State::Succeed);
        assert_eq!(world.executions_of("A"), 1);
    }
}

#[tokio::test]
async fn a_failed_commit_during_a_run_stops_the_engine_and_reopen_resumes_it() {
    for blocking in COMMIT_PATHS {
        let world = Arc::new(World::default());
        let (engine, store) = failing_engine(blocking, &world).await;
        let mut events = engine.subscribe();
        // The submit's batch (commit 1) is durable; nothing after it is.
        store.fail_commits_from(2);
        let id = engine.submit(chain(&["A", "B"])).await.unwrap();
        match soon(engine.wait_settled(id)).await {
            Err(QueryError::Store(err)) => assert!(is_poisoned(&err), "{err}"),
            other => panic!("blocking {blocking}: {other:?}"),
        }
        match soon(engine.operate(id, Operator::Cancel)).await {
            Err(OperateError::Store(err)) => assert!(is_poisoned(&err), "{err}"),
            other => panic!("blocking {blocking}: {other:?}"),
        }
        assert!(store.failures() >= 1);
        // Only the submit's transitions were reported: A's success was not durable.
        while let Ok(event) = events.try_recv() {
            assert_ne!(event.state, State::Succeed, "{event:?}");
        }
        assert_eq!(dag_status(&engine, id), status("RUNNING", "RUN"));
        assert_eq!(
            node_status(&engine, id),
            vec![
                node_row("A", "RUNNING", "RUN"),
                node_row("B", "PENDING", "RUN")
            ]
        );
        engine.abort();

        // Reopened on what is durable, the DAG resumes: A runs again (it can continue).
        let engine = open(store.inner(), &world).await;
        let dag = soon(engine.wait_settled(id)).await.unwrap();
        assert_eq!(
            (dag.state.to_string(), dag.operator.to_string()),
            status("SUCCEED", "RUN")
        );
        assert_eq!((world.executions_of("A"), world.executions_of("B")), (2, 1));
    }
}

#[tokio::test]
async fn an_operator_whose_commit_fails_is_not_applied() {
    for blocking in COMMIT_PATHS {
        let world = Arc::new(World::default());
        let (engine, store) = failing_engine(blocking, &world).await;
        world.fail("A", 1);
        let id = engine.submit(chain(&["A"])).await.unwrap();
        assert_eq!(engine.wait_settled(id).await.unwrap().state, State::Failed);
        store.fail_commit(1);
        match soon(engine.operate(id, Operator::Retry)).await {
            Err(OperateError::Store(err)) => assert!(is_poisoned(&err), "{err}"),
            other => panic!("blocking {blocking}: {other:?}"),
        }
        assert_eq!(dag_status(&engine, id), status("FAILED", "RUN"));
        assert_eq!(world.executions_of("A"), 1, "the retry did not run");
        engine.abort();

        let engine = open(store.inner(), &world).await;
        assert_eq!(dag_status(&engine, id), status("FAILED", "RUN"));
        engine.operate(id, Operator::Retry).await.unwrap();
        assert_eq!(engine.wait_settled(id).await.unwrap().state, State::Succeed);
        assert_eq!(world.executions_of("A"), 2);
    }
}

#[tokio::test]
async fn waiting_on_a_stopped_engine_returns_shut_down() {
    for blocking in COMMIT_PATHS {
        let world = Arc::new(World::default());
        let (engine, _store) = failing_engine(blocking, &world).await;
        let mut spec = DagSpec::new("forever");
        spec.add_node(script_with("W", json!({"wait_cancel": true})));
        let id = engine.submit(spec).await.unwrap();
        let waiter = tokio::spawn({
            let engine = engine.clone();
            async move { engine.wait_settled(id).await }
        });
        engine.shutdown(Duration::from_millis(50)).await;
        assert!(matches!(
            soon(waiter).await.unwrap(),
            Err(QueryError::ShutDown)
        ));
        assert!(matches!(
            soon(engine.operate(id, Operator::Cancel)).await,
            Err(OperateError::ShutDown)
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_log_write_stops_the_engine_and_reopen_resumes_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let world = Arc::new(World::default());
    let id = {
        let store = Arc::new(SledStore::open(dir.path()).unwrap());
        let engine = open(store.clone(), &world).await;
        // The submit's record is durable; A's success is the next one, and fails.
        store.commit_log().inject(LogFault::Write, 2);
        let id = engine.submit(chain(&["A", "B"])).await.unwrap();
        match soon(engine.wait_settled(id)).await {
            Err(QueryError::Store(err)) => {
                assert!(err.to_string().contains("failpoint: record"), "{err}");
            }
            other => panic!("{other:?}"),
        }
        match soon(engine.submit(chain(&["C"]))).await {
            Err(SubmitError::Store(_)) => {}
            other => panic!("{other:?}"),
        }
        // Nothing of the failed record is observable.
        assert_eq!(dag_status(&engine, id), status("RUNNING", "RUN"));
        assert_eq!(world.executions_of("B"), 0);
        engine.shutdown(Duration::from_secs(5)).await;
        drop(engine);
        // The engine's threads let go of the store as they end; sled's lock goes with
        // the last handle.
        soon(async {
            while Arc::strong_count(&store) > 1 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        id
    };
    // Every handle is gone: a real reopen of what is on the files.
    let store = Arc::new(SledStore::open(dir.path()).unwrap());
    let engine = open(store, &world).await;
    assert_eq!(engine.dags(None).unwrap().len(), 1, "C was never created");
    let dag = soon(engine.wait_settled(id)).await.unwrap();
    assert_eq!(dag.state, State::Succeed);
    assert_eq!((world.executions_of("A"), world.executions_of("B")), (2, 1));
    engine.shutdown(Duration::from_secs(5)).await;
}

//! Crash test in the style of sled's: this test binary re-runs itself as a child process
//! that drives DAGs on a sled store and prints every acknowledged transition; the parent
//! kills it with SIGKILL at random moments, over and over, then reopens the store and
//! checks that
//! - no acknowledged transition is lost (every printed SUCCEED is still SUCCEED, every
//!   acknowledged submit exists),
//! - no non-continuable sub-task ever ran twice,
//! - every DAG finishes, FAILED only where a non-continuable sub-task was interrupted.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use obrestore_dag::{
    DagSpec, Engine, EngineConfig, Flags, KvStore, NodeSpec, SledStore, State, Subject, Task,
    TaskContext, TaskError, TaskRegistry,
};
use rand::{Rng, SeedableRng};
use serde_json::json;

const CHILD_ENV: &str = "OBRESTORE_CRASH_CHILD_DIR";
const MODE_ENV: &str = "OBRESTORE_CRASH_CHILD_MODE";
const KILLS: usize = 24;

/// Appends one line to the execution journal and syncs it, before doing any work.
struct Journaled {
    journal: PathBuf,
    fragile: bool,
}

#[async_trait]
impl Task for Journaled {
    async fn execute(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        {
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.journal)
                .map_err(|e| e.to_string())?;
            // One write(2) per line: a SIGKILL cannot leave half a line for the next
            // child's line to glue onto.
            let line = format!(
                "{} {} {}\n",
                ctx.task_id(),
                ctx.execute_times(),
                self.fragile
            );
            file.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
            file.sync_all().map_err(|e| e.to_string())?;
        }
        let sleep = ctx
            .params()
            .get("sleep_ms")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(sleep)).await;
        ctx.set_output(format!("done_{}", ctx.task_id()), json!(true));
        Ok(())
    }
}

fn registry(dir: &Path) -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    for (name, fragile) in [("work", false), ("fragile", true)] {
        let journal = dir.join("journal");
        let flags = Flags {
            can_continue: !fragile,
            ..Flags::default()
        };
        registry.register(name, flags, move |_| {
            Ok(Box::new(Journaled {
                journal: journal.clone(),
                fragile,
            }) as Box<dyn Task>)
        });
    }
    registry
}

fn random_dag(rng: &mut rand::rngs::StdRng, serial: u64) -> DagSpec {
    let mut spec = DagSpec::new(format!("crash-{serial}")).pool("p", 2);
    let layers = rng.gen_range(2..5);
    let mut previous: Vec<obrestore_dag::NodeIndex> = Vec::new();
    for layer in 0..layers {
        let width = rng.gen_range(1..3);
        let mut current = Vec::new();
        for w in 0..width {
            let fragile = rng.gen_bool(0.15);
            let count = rng.gen_range(1..8);
            let params: Vec<_> = (0..count)
                .map(|_| json!({"sleep_ms": rng.gen_range(0..6)}))
                .collect();
            let mut node = NodeSpec::new(
                format!("L{layer}N{w}"),
                if fragile { "fragile" } else { "work" },
            )
            .sub_tasks(params);
            if rng.gen_bool(0.3) {
                node = node.pool("p");
            }
            let index = spec.add_node(node);
            for up in &previous {
                if rng.gen_bool(0.7) || current.is_empty() {
                    spec.add_edge(*up, index);
                }
            }
            current.push(index);
        }
        previous = current;
    }
    spec
}

/// The child: opens the store (recovering), submits a few DAGs, prints acknowledgements.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = PathBuf::from(dir);
    match std::env::var(MODE_ENV).as_deref() {
        Ok("commits") => commit_forever(&dir),
        Ok("held") => commit_held(&dir),
        _ => {}
    }
    let finish_only = std::env::var(MODE_ENV).as_deref() == Ok("finish");
    let store: Arc<dyn KvStore> = Arc::new(SledStore::open(dir.join("db")).unwrap());
    let engine = Engine::open(EngineConfig::default(), store, registry(&dir))
        .await
        .unwrap();
    let mut events = engine.subscribe();
    let printer = tokio::spawn(async move {
        let stdout = std::io::stdout();
        while let Ok(event) = events.recv().await {
            let subject = match event.subject {
                Subject::Dag => format!("dag {}", event.dag_id),
                Subject::Node { node_id } => format!("node {node_id}"),
                Subject::SubTask { task_id, .. } => format!("task {task_id}"),
            };
            let mut out = stdout.lock();
            let _ = writeln!(out, "ACK {subject} {}", event.state);
            let _ = out.flush();
        }
    });
    if !finish_only {
        let seed: u64 = std::process::id().into();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        for serial in 0..3 {
            let id = engine.submit(random_dag(&mut rng, serial)).await.unwrap();
            println!("ACK submitted {id}");
        }
    }
    // Wait for every DAG to settle (the parent usually kills us first).
    for dag in engine.records().all_dags().unwrap() {
        engine.wait_settled(dag.id).await.unwrap();
    }
    engine.shutdown(Duration::from_secs(5)).await;
    printer.abort();
    println!("ACK child-done");
}

fn run_child(dir: &Path, mode: &str, kill_after: Option<Duration>, acks: &mut Vec<String>) -> bool {
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "crash_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, dir)
        .env(MODE_ENV, mode)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join(format!("stderr-{mode}"))).unwrap())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (first_ack, first_ack_seen) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        // The test harness may print "test crash_child ... " before the first line.
        let lines: Vec<String> = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|line| line.find("ACK ").map(|at| line[at..].to_string()))
            .inspect(|_| {
                let _ = first_ack.send(());
            })
            .collect();
        lines
    });
    if let Some(delay) = kill_after {
        // The delay counts from the child's first acknowledgement, not from its start, so
        // a loaded machine (slow process start) does not kill every child before it did
        // anything. A child that never acknowledges is killed after a minute.
        let _ = first_ack_seen.recv_timeout(Duration::from_secs(60));
        std::thread::sleep(delay);
        // SIGKILL: no destructor, no flush, nothing graceful.
        let _ = child.kill();
    }
    let status = child.wait().unwrap();
    let lines = reader.join().unwrap();
    let done = lines.iter().any(|l| l == "ACK child-done");
    acks.extend(lines);
    if kill_after.is_none() {
        let stderr =
            std::fs::read_to_string(dir.join(format!("stderr-{mode}"))).unwrap_or_default();
        assert!(
            status.success(),
            "the finishing child failed: {status:?}\n{stderr}"
        );
    }
    done
}

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let acks = kill_children_then_finish(dir.path());
    // Reopen the store in this process and check the invariants.
    let store = SledStore::open(dir.path().join("db")).unwrap();
    let records = obrestore_dag::store::Records::new(Arc::new(store) as Arc<dyn KvStore>);
    let stored = Stored::read(&records);
    let (submitted, succeeded) = check_acknowledged(&acks, &stored);
    check_fragile_ran_once(dir.path(), &stored);
    check_every_dag_finished(&stored);
    println!(
        "crash test: {KILLS} kills, {} dags ({} succeeded), {submitted} submits and {succeeded} sub-task successes acknowledged, {} interrupted",
        stored.dags.len(),
        stored.dags.iter().filter(|d| d.state == State::Succeed).count(),
        stored.interrupted.len()
    );
}

/// The commit log's child: commits `c/<n>` (and `last` = n) one batch at a time on a
/// store with a small log (a checkpoint every few commits), printing each commit once it
/// returned, until it is killed. Starts after the last commit a previous child made.
fn commit_forever(dir: &Path) -> ! {
    let store = SledStore::open_with_log(dir.join("commits"), 32 << 10).unwrap();
    println!("ACK replayed {}", store.commit_log().replayed());
    let mut n = store.scan_prefix(b"c/").unwrap().len() as u64;
    loop {
        let mut batch = obrestore_dag::store::Batch::default();
        let value = n.to_string().repeat(1 + (n as usize * 7) % 300);
        batch.put(format!("c/{n:08}").into_bytes(), value.into_bytes());
        batch.put(b"last".to_vec(), n.to_string().into_bytes());
        store.commit(batch).unwrap();
        println!("ACK commit {n}");
        n += 1;
    }
}

/// Commits after which a [`commit_held`] child stops committing: fewer than the
/// one-page records a new log holds (`CommitLog::INITIAL_CAPACITY`, 256 pages), so no
/// checkpoint applies them (each acknowledgement says how many checkpoints ran).
const HELD_COMMITS: u64 = 200;

/// The child for synced-but-not-applied records: as [`commit_forever`] on a store
/// whose applier is held, so every acknowledged commit is in the log (and the
/// overlay) but not in sled's tree when the parent kills it. After [`HELD_COMMITS`]
/// commits it waits to be killed.
fn commit_held(dir: &Path) -> ! {
    let store = SledStore::open(dir.join("held")).unwrap();
    println!("ACK replayed {}", store.commit_log().replayed());
    store.commit_log().hold_applies(true);
    let first = store.scan_prefix(b"c/").unwrap().len() as u64;
    for n in first..first + HELD_COMMITS {
        let mut batch = obrestore_dag::store::Batch::default();
        batch.put(format!("c/{n:08}").into_bytes(), n.to_string().into_bytes());
        batch.put(b"last".to_vec(), n.to_string().into_bytes());
        store.commit(batch).unwrap();
        // Read back through the overlay before it is acknowledged.
        assert_eq!(
            store.get(b"last").unwrap(),
            Some(n.to_string().into_bytes())
        );
        println!(
            "ACK commit {n} unapplied {} checkpoints {}",
            store.commit_log().unapplied(),
            store.commit_log().checkpoints()
        );
    }
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

#[test]
fn sigkill_with_acknowledged_commits_not_yet_applied_loses_nothing() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::thread_rng();
    let mut acked_before = 0;
    let mut max_acked = 0;
    for round in 0..4 {
        let mut acks = Vec::new();
        let delay = Duration::from_millis(rng.gen_range(10..200));
        run_child(dir.path(), "held", Some(delay), &mut acks);
        let replayed: u64 = acks
            .iter()
            .find_map(|ack| ack.strip_prefix("ACK replayed ")?.parse().ok())
            .expect("the child opened the store");
        // Every commit the previous child acknowledged was never applied to the tree:
        // the reopen found it in the log only.
        assert!(
            replayed >= acked_before,
            "round {round}: {acked_before} acknowledged, {replayed} replayed"
        );
        acked_before = acks
            .iter()
            .filter(|ack| ack.starts_with("ACK commit "))
            .count() as u64;
        for ack in acks.iter().filter(|ack| ack.starts_with("ACK commit ")) {
            let words: Vec<&str> = ack.split(' ').collect();
            assert_ne!(words[4], "0", "{ack}: applied although held");
            // Only the checkpoint at open: none applied the held records.
            assert_eq!(words[6], "1", "{ack}: a checkpoint applied held records");
            max_acked = max_acked.max(words[2].parse::<usize>().unwrap() + 1);
        }
    }
    let store = SledStore::open(dir.path().join("held")).unwrap();
    assert!(store.commit_log().replayed() >= acked_before);
    let stored = store.scan_prefix(b"c/").unwrap();
    assert!(stored.len() >= max_acked, "{max_acked} acknowledged");
    for (n, (key, value)) in stored.iter().enumerate() {
        assert_eq!(key, format!("c/{n:08}").as_bytes());
        assert_eq!(value, n.to_string().as_bytes());
    }
    let last = store.get(b"last").unwrap().unwrap();
    assert_eq!(last, (stored.len() - 1).to_string().into_bytes());
}

#[test]
fn sigkill_during_a_chain_of_log_commits_loses_nothing_acknowledged() {
    if std::env::var(CHILD_ENV).is_ok() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::thread_rng();
    let mut acks = Vec::new();
    for _ in 0..8 {
        let delay = Duration::from_millis(rng.gen_range(20..300));
        run_child(dir.path(), "commits", Some(delay), &mut acks);
    }
    let acked: Vec<u64> = acks
        .iter()
        .filter_map(|ack| ack.strip_prefix("ACK commit ")?.parse().ok())
        .collect();
    let replayed: u64 = acks
        .iter()
        .filter_map(|ack| ack.strip_prefix("ACK replayed ")?.parse::<u64>().ok())
        .sum();
    let store = SledStore::open(dir.path().join("commits")).unwrap();
    let stored = store.scan_prefix(b"c/").unwrap();
    // Every batch is there whole, in order, with no hole: the keys are 0..len.
    for (n, (key, value)) in stored.iter().enumerate() {
        assert_eq!(key, format!("c/{n:08}").as_bytes());
        assert!(value.starts_with(n.to_string().as_bytes()));
    }
    let max = acked
        .iter()
        .max()
        .copied()
        .expect("a child acknowledged commits");
    assert!(
        stored.len() as u64 > max,
        "commit {max} was acknowledged, the store holds {}",
        stored.len()
    );
    let last = store.get(b"last").unwrap().unwrap();
    assert_eq!(last, (stored.len() - 1).to_string().into_bytes());
    // The children were killed with records sled had not flushed: replay happened.
    assert!(replayed > 0, "no reopen replayed a record");
    println!(
        "log crash test: 8 kills, {} commits acknowledged, {} stored, {replayed} replayed",
        acked.len(),
        stored.len()
    );
}

/// Runs [`KILLS`] children killed at random moments, then one that finishes every DAG.
/// Returns every acknowledgement they printed.
fn kill_children_then_finish(dir: &Path) -> Vec<String> {
    // OBRESTORE_CRASH_SEED replays a run's kill delays (timing still varies).
    let seed: u64 = std::env::var("OBRESTORE_CRASH_SEED")
        .ok()
        .and_then(|seed| seed.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().gen());
    println!("crash test seed {seed}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut acks = Vec::new();
    for _ in 0..KILLS {
        let delay = Duration::from_millis(rng.gen_range(5..400));
        run_child(dir, "work", Some(delay), &mut acks);
    }
    let finished = run_child(dir, "finish", None, &mut acks);
    let stderr = std::fs::read_to_string(dir.join("stderr-finish")).unwrap_or_default();
    assert!(finished, "the last child did not finish: {stderr}");
    acks
}

/// What the store holds after the last child.
struct Stored {
    dags: Vec<obrestore_dag::record::DagRecord>,
    dag_state: BTreeMap<u64, State>,
    task_state: BTreeMap<u64, State>,
    task_flags: BTreeMap<u64, Flags>,
    /// DAGs with a sub-task that was interrupted and could not continue.
    interrupted: BTreeSet<u64>,
}

impl Stored {
    fn read(records: &obrestore_dag::store::Records) -> Stored {
        let dags = records.all_dags().unwrap();
        let mut stored = Stored {
            dag_state: dags.iter().map(|d| (d.id, d.state)).collect(),
            dags: Vec::new(),
            task_state: BTreeMap::new(),
            task_flags: BTreeMap::new(),
            interrupted: BTreeSet::new(),
        };
        for dag in &dags {
            for node in records.nodes_of(dag).unwrap() {
                for task in records.tasks_of(&node).unwrap() {
                    let logs = records.logs(task.id).unwrap();
                    if logs.iter().any(|l| {
                        l.content == "ERROR: task unexpectedly interrupted and cannot continue"
                    }) {
                        stored.interrupted.insert(dag.id);
                    }
                    stored.task_state.insert(task.id, task.state);
                    stored.task_flags.insert(task.id, task.flags);
                }
            }
        }
        stored.dags = dags;
        stored
    }
}

/// No acknowledged transition is lost. Returns how many submits and sub-task successes
/// were acknowledged.
fn check_acknowledged(acks: &[String], stored: &Stored) -> (usize, usize) {
    let mut submitted = 0;
    let mut succeeded = 0;
    for ack in acks {
        let parts: Vec<&str> = ack.split_whitespace().collect();
        match parts.as_slice() {
            ["ACK", "submitted", id] => {
                submitted += 1;
                assert!(
                    stored.dag_state.contains_key(&id.parse::<u64>().unwrap()),
                    "acknowledged dag {id} lost"
                );
            }
            ["ACK", "task", id, "SUCCEED"] => {
                succeeded += 1;
                let id: u64 = id.parse().unwrap();
                assert_eq!(
                    stored.task_state.get(&id),
                    Some(&State::Succeed),
                    "acknowledged SUCCEED of task {id} lost"
                );
            }
            ["ACK", "dag", id, "SUCCEED"] => {
                let id: u64 = id.parse().unwrap();
                assert_eq!(
                    stored.dag_state.get(&id),
                    Some(&State::Succeed),
                    "acknowledged SUCCEED of dag {id} lost"
                );
            }
            _ => {}
        }
    }
    assert!(
        submitted >= 3,
        "the children submitted too little: {submitted}"
    );
    assert!(succeeded > 0);
    (submitted, succeeded)
}

/// No non-continuable sub-task ran twice; each (task, execute_times) ran at most once
/// for fragile tasks.
fn check_fragile_ran_once(dir: &Path, stored: &Stored) {
    let journal = std::fs::read_to_string(dir.join("journal")).unwrap_or_default();
    let mut fragile_runs: BTreeMap<u64, usize> = BTreeMap::new();
    for line in journal.lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        if let [task, _times, "true"] = parts.as_slice() {
            *fragile_runs.entry(task.parse().unwrap()).or_default() += 1;
        }
    }
    for (task, runs) in &fragile_runs {
        assert_eq!(*runs, 1, "non-continuable task {task} ran {runs} times");
        let flags = stored
            .task_flags
            .get(task)
            .unwrap_or_else(|| panic!("journal names unknown task {task}"));
        assert!(!flags.can_continue);
    }
}

/// Every DAG finished; FAILED only through an interrupted non-continuable sub-task.
fn check_every_dag_finished(stored: &Stored) {
    for dag in &stored.dags {
        assert!(
            dag.state.is_finished(),
            "dag {} did not finish: {}",
            dag.id,
            dag.state
        );
        if dag.state == State::Failed {
            assert!(
                stored.interrupted.contains(&dag.id),
                "dag {} failed for another reason",
                dag.id
            );
        }
    }
}

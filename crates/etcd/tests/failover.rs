//! Failover with real processes: a maintainer (a child process running an Engine on
//! the etcd store) is SIGKILLed or paused past its lease; another candidate takes over,
//! recovers the DAG with the restart rules and finishes it; the paused one, resumed,
//! writes nothing. And with three etcd members, losing the raft leader changes nothing.
//!
//! The child is this test binary run again on the ignored test `maintainer_child`.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use obrestore_dag::store::{KvStore, Records};
use obrestore_dag::{Engine, EngineConfig, State};
use obrestore_etcd::testing::EtcdCluster;
use obrestore_etcd::{Election, Etcd, EtcdStore};

const TTL: Duration = Duration::from_secs(2);
/// Generous bound for a step that takes about a TTL plus a sub-task: a failure, not a
/// measurement.
const PATIENCE: Duration = Duration::from_secs(40);

/// A maintainer process: its stdout lines as they come, with when they came.
struct Agent {
    child: Child,
    lines: mpsc::Receiver<(Instant, String)>,
}

impl Agent {
    fn spawn(endpoints: &[String], cluster: &str, role: &str, sleep_ms: u64) -> Agent {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "maintainer_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("CHILD_ENDPOINTS", endpoints.join(","))
            .env("CHILD_CLUSTER", cluster)
            .env("CHILD_ROLE", role)
            .env("CHILD_SLEEP_MS", sleep_ms.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // libtest may print "test maintainer_child ... " before the first line.
                if let Some(at) = line.find("CHILD ") {
                    let _ = tx.send((Instant::now(), line[at + 6..].to_string()));
                }
            }
        });
        Agent { child, lines }
    }

    /// Waits for a line starting with `prefix`; returns when it came and the line.
    fn expect(&mut self, prefix: &str) -> (Instant, String) {
        self.expect_one_of(&[prefix])
    }

    /// Waits for a line starting with one of `prefixes`.
    fn expect_one_of(&mut self, prefixes: &[&str]) -> (Instant, String) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((at, line)) if prefixes.iter().any(|p| line.starts_with(p)) => {
                    return (at, line)
                }
                Ok(_) => {}
                Err(_) => panic!(
                    "the agent never said one of {prefixes:?} (exit: {:?})",
                    self.child.try_wait()
                ),
            }
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal}");
    }

    fn wait_exit(&mut self) {
        let deadline = Instant::now() + PATIENCE;
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the agent did not exit");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn say(line: impl std::fmt::Display) {
    println!("CHILD {line}");
}

/// The child: campaigns, then as maintainer opens the engine on the etcd store and
/// either submits a DAG ("submit") or recovers the one left unfinished ("recover"),
/// and reports until it settles or the lease is lost.
#[test]
#[ignore = "run as a child process by the failover tests"]
fn maintainer_child() {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    let endpoints: Vec<String> = var("CHILD_ENDPOINTS")
        .split(',')
        .map(str::to_string)
        .collect();
    let (cluster, role) = (var("CHILD_CLUSTER"), var("CHILD_ROLE"));
    let sleep_ms: u64 = var("CHILD_SLEEP_MS").parse().unwrap_or(0);
    let etcd = Etcd::connect(&endpoints).unwrap();
    let election = Election::new(
        etcd.clone(),
        &cluster,
        format!("pid-{}", std::process::id()),
    )
    .unwrap()
    .with_ttl(TTL);
    let held = election
        .campaign_until(Duration::from_millis(50), Duration::from_secs(120))
        .unwrap()
        .expect("maintainer in time");
    say("MAINTAINER");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let executions = Arc::new(AtomicUsize::new(0));
    runtime.block_on(async {
        let store = EtcdStore::new(etcd, &cluster, held.fence()).unwrap();
        let engine = Engine::open(EngineConfig::default(), Arc::new(store), support::registry(&executions))
            .await
            .unwrap();
        let id = if role == "submit" {
            engine.submit(support::dag("failover", 0, 4, sleep_ms)).await.unwrap()
        } else {
            let unfinished = engine.unfinished_dag_records(None).unwrap();
            assert_eq!(unfinished.len(), 1, "one DAG left unfinished");
            unfinished[0].id
        };
        say(format!("DAG {id}"));
        let mut lost = held.lost();
        tokio::select! {
            settled = engine.wait_settled(id) => match settled {
                Ok(dag) => say(format!("SETTLED {id} {} {}", dag.state, executions.load(Ordering::SeqCst))),
                Err(err) => say(format!("ERROR {err}")),
            },
            _ = lost.wait_for(|lost| *lost) => {
                engine.abort();
                say("LOST");
            }
        }
    });
    if role == "recover" && held.is_held() {
        held.resign().unwrap();
    }
    say("EXIT");
}

fn dag_state(etcd: &Etcd, cluster: &str, id: u64) -> State {
    let store: Arc<dyn KvStore> = Arc::new(EtcdStore::read_only(etcd.clone(), cluster).unwrap());
    Records::new(store)
        .dag(id)
        .unwrap()
        .expect("DAG is durable")
        .state
}

fn dag_id(line: &str) -> u64 {
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn sigkill_of_the_maintainer_another_takes_over_and_the_dag_succeeds() {
    let Some(cluster) = EtcdCluster::start(1) else {
        return;
    };
    let endpoints = cluster.endpoints();
    let mut first = Agent::spawn(&endpoints, "kill", "submit", 3000);
    first.expect("MAINTAINER");
    let id = dag_id(&first.expect("DAG").1);
    let mut second = Agent::spawn(&endpoints, "kill", "recover", 3000);
    // The fan-out's four sub-tasks are running (each sleeps 3 s).
    std::thread::sleep(Duration::from_millis(500));
    let killed_at = Instant::now();
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let (took_over_at, _) = second.expect("MAINTAINER");
    assert_eq!(dag_id(&second.expect("DAG").1), id);
    let (settled_at, settled) = second.expect("SETTLED");
    println!(
        "takeover after SIGKILL: {} ms (lease TTL {} ms); DAG settled {} ms after the kill",
        (took_over_at - killed_at).as_millis(),
        TTL.as_millis(),
        (settled_at - killed_at).as_millis()
    );
    // SUCCEED, and the four continuable sub-tasks ran again on the new maintainer.
    assert_eq!(settled, format!("SETTLED {id} SUCCEED 4"));
    assert_eq!(dag_state(&cluster.client(), "kill", id), State::Succeed);
}

#[test]
fn a_maintainer_paused_past_its_lease_writes_nothing_once_resumed() {
    let Some(cluster) = EtcdCluster::start(1) else {
        return;
    };
    let endpoints = cluster.endpoints();
    let etcd = cluster.client();
    let mut paused = Agent::spawn(&endpoints, "pause", "submit", 3000);
    paused.expect("MAINTAINER");
    let id = dag_id(&paused.expect("DAG").1);
    let mut second = Agent::spawn(&endpoints, "pause", "recover", 3000);
    std::thread::sleep(Duration::from_millis(500));
    paused.signal("-STOP");

    second.expect("MAINTAINER");
    assert_eq!(
        second.expect("SETTLED").1,
        format!("SETTLED {id} SUCCEED 4")
    );
    second.expect("EXIT");
    second.wait_exit();
    let revision = etcd.revision().unwrap();

    // Resumed: its sub-tasks finish and its lease is found gone; it must write nothing.
    paused.signal("-CONT");
    let (_, outcome) = paused.expect_one_of(&["LOST", "ERROR", "SETTLED"]);
    assert!(
        outcome == "LOST" || outcome.contains("fenced"),
        "the deposed maintainer went on: {outcome}"
    );
    paused.expect("EXIT");
    paused.wait_exit();
    assert_eq!(
        etcd.revision().unwrap(),
        revision,
        "the deposed maintainer wrote"
    );
    assert_eq!(dag_state(&etcd, "pause", id), State::Succeed);
}

/// The endpoint of the raft leader, from `etcdctl endpoint status`.
fn leader(endpoints: &[String]) -> usize {
    let out = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args([
            "--endpoints",
            &endpoints.join(","),
            "endpoint",
            "status",
            "-w",
            "json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let statuses: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let statuses = statuses.as_array().unwrap();
    statuses
        .iter()
        .position(|s| s["Status"]["header"]["member_id"] == s["Status"]["leader"])
        .expect("one member is leader")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_three_members_losing_the_leader_changes_nothing() {
    let Some(mut cluster) = EtcdCluster::start(3) else {
        return;
    };
    let endpoints = cluster.endpoints();
    let etcd = cluster.client();
    // The default TTL: a raft leader election must fit in it.
    let held = Election::new(etcd.clone(), "three", "a")
        .unwrap()
        .campaign()
        .unwrap()
        .unwrap();
    let store = EtcdStore::new(etcd.clone(), "three", held.fence()).unwrap();
    let executions = Arc::new(AtomicUsize::new(0));
    let engine = Engine::open(
        EngineConfig::default(),
        Arc::new(store),
        support::registry(&executions),
    )
    .await
    .unwrap();
    let id = engine
        .submit(support::dag("three", 3, 8, 400))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let leader = leader(&endpoints);
    cluster.kill(leader);

    let dag = engine.wait_settled(id).await.unwrap();
    assert_eq!(dag.state, State::Succeed);
    assert!(held.is_held(), "the maintainer lost its lease");
    assert_eq!(
        executions.load(Ordering::SeqCst),
        3 + 8,
        "a sub-task ran twice or not at all"
    );
    let survivors: Vec<String> = (0..3)
        .filter(|&m| m != leader)
        .map(|m| cluster.endpoint(m))
        .collect();
    let from_survivors = Etcd::connect(&survivors).unwrap();
    let state = tokio::task::spawn_blocking(move || dag_state(&from_survivors, "three", id))
        .await
        .unwrap();
    assert_eq!(state, State::Succeed);
}

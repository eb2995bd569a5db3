//! Crash at every step, deterministically: a whole restore (and a whole rollback) is
//! run with each of its crash points (`obrestore_dag::crash_point`, the `failpoints`
//! feature) armed in turn, in a child process that dies by `abort` right after that
//! side effect, as a `SIGKILL` would leave it; a fresh agent then reopens the same data
//! dir, lets recovery run, and the DAG must end as it would have without the crash.
//!
//! 1. **Discovery.** A child runs the scenario with no point armed and lists every point
//!    hit and how often, twice: the counts must be the same, or "the n-th hit" would not
//!    name one moment. Every step must have a point, and every cluster write of a step
//!    must be followed by a step point (`cluster:write`, hit by every write, counts them).
//! 2. **Sweep.** For each `(point, nth)` a child runs the scenario with
//!    `OBRESTORE_CRASH_POINT=<point>#<nth>` and must die by `SIGABRT` saying so; this
//!    process then opens the data dir with a new `RestoreAgent`, waits for the DAG to
//!    settle and checks the end state ([`Scenario`]). Every restore step can continue
//!    (it re-runs on restart, as obshell's restore tasks), so no point may leave a FAILED
//!    DAG: recovery alone must finish it, no RETRY or ROLLBACK is sent.
//!
//! Every hit of every point is swept (2 cases at a time, or `OBRESTORE_CRASH_SWEEP_JOBS`);
//! `OBRESTORE_CRASH_SWEEP_ONLY=<text>` keeps the cases whose `<point>#<nth>` contains the
//! text, to reproduce one.
#![cfg(unix)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::fixtures::{open_agent, restore_body, small_backup};
use obrestore_backup::GenerateSummary;
use obrestore_dag::crash_point::{CRASH_POINT_ENV, ENGINE_COMMIT};
use obrestore_dag::{Operator, State};
use obrestore_restore::cluster::RestoreJobStatus;
use obrestore_restore::executors::APPLY_BATCH_ROWS_FAILPOINT;
use obrestore_restore::{RestoreAgent, RestoreParam, TenantService};
use serde_json::json;

const CHILD_DIR_ENV: &str = "OBRESTORE_CRASH_POINTS_DIR";
const CHILD_ROOT_ENV: &str = "OBRESTORE_CRASH_POINTS_ROOT";
const CHILD_SCENARIO_ENV: &str = "OBRESTORE_CRASH_POINTS_SCENARIO";
const CHILD_PARAM_ENV: &str = "OBRESTORE_CRASH_POINTS_PARAM";
/// Sweeps only the cases whose `<point>#<nth>` contains this text (to reproduce one).
const ONLY_ENV: &str = "OBRESTORE_CRASH_SWEEP_ONLY";
/// How many cases run at once (default 2).
const JOBS_ENV: &str = "OBRESTORE_CRASH_SWEEP_JOBS";
const CLUSTER_WRITE: &str = "cluster:write";
const TENANT: &str = "crashed";
const SIGABRT: i32 = 6;

/// Hits per crash point.
type Hits = BTreeMap<String, u64>;

/// What the child does, and what a recovered agent must find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// A restore that succeeds; swept from the agent's open. Recovered: SUCCEED, a
    /// SUCCESS restore job (the tenant's only one), rows equal to the truth at
    /// restore_scn, a NORMAL PRIMARY tenant at restore_scn, no pool but the tenant's.
    Restore,
    /// A restore whose Post check fails (once, after its side effects: every other
    /// node has succeeded, so what the rollback undoes is the same in every run), then
    /// ROLLBACK; swept from the failure. Recovered: SUCCEED+ROLLBACK, no tenant, no pool, the
    /// tenant's only restore job ended FAIL.
    Rollback,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Restore => "restore",
            Scenario::Rollback => "rollback",
        }
    }

    /// The points the scenario must hit, besides the engine's.
    fn required_points(self) -> Vec<String> {
        let steps: &[&str] = match self {
            Scenario::Restore => &[
                "Pre restore check:",
                "Create resource pools:",
                "Create restoring tenant:",
                "Restore sys tablets:",
                "Restore tablets meta:",
                "Restore data:",
                "Replay log:",
                "Post check:",
                "Activate tenant:",
                "Upgrade tenant:",
            ],
            Scenario::Rollback => &[
                "Pre restore check:after-close-job",
                "Create resource pools:after-drop-pools",
                "Create restoring tenant:after-drop-tenant",
            ],
        };
        steps.iter().map(|step| format!("step:{step}")).collect()
    }

    /// Cluster writes in the swept part that are no step's: the restore job the agent
    /// opens when it accepts a restore.
    fn writes_outside_steps(self) -> u64 {
        match self {
            Scenario::Restore => 1,
            Scenario::Rollback => 0,
        }
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn say_hits(tag: &str) {
    let hits: Hits = obrestore_dag::crash_point::hits().into_iter().collect();
    say(&format!("{tag} {}", json!(hits)));
}

/// The child: runs the scenario into the data dir, saying the hits where the swept part
/// starts and at the end. It dies on the way if a point is armed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let root = PathBuf::from(std::env::var(CHILD_ROOT_ENV).unwrap());
    let rollback = std::env::var(CHILD_SCENARIO_ENV).unwrap() == Scenario::Rollback.name();
    let param: RestoreParam =
        serde_json::from_str(&std::env::var(CHILD_PARAM_ENV).unwrap()).unwrap();
    let agent = open_agent(Path::new(&dir), &root).await;
    if rollback {
        obrestore_restore::executors::fail_after_step_once("restore.post_check", TENANT);
    } else {
        say_hits("HITS-START");
    }
    let dag = agent.start_restore(param).await.unwrap();
    let dag_id = agent.engine().find_dag(&dag.id).unwrap().id;
    let mut settled = agent.engine().wait_settled(dag_id).await.unwrap();
    if rollback {
        assert_eq!(settled.state, State::Failed);
        say_hits("HITS-START");
        agent
            .engine()
            .operate(dag_id, Operator::Rollback)
            .await
            .unwrap();
        settled = agent.engine().wait_settled(dag_id).await.unwrap();
        assert_eq!(settled.operator, Operator::Rollback);
    }
    assert_eq!(settled.state, State::Succeed);
    agent.shutdown(Duration::from_secs(5)).await;
    say_hits("HITS-DONE");
}

/// One scenario over its backup.
struct Sweep {
    scenario: Scenario,
    root: PathBuf,
    summary: GenerateSummary,
    /// Rows per applied batch in the child (`APPLY_BATCH_ROWS_FAILPOINT`), if capped.
    batch_rows: Option<usize>,
}

/// What a child run did: how it ended, its stderr, and the hits it said.
struct ChildRun {
    status: std::process::ExitStatus,
    stderr: String,
    start: Option<Hits>,
    done: Option<Hits>,
}

/// What discovery found: the hits when the swept part starts, and the hits of the swept
/// part (a crash case arms `<point>#<start + k>`).
struct Discovered {
    start: Hits,
    swept: Hits,
}

impl Sweep {
    fn new(scenario: Scenario, root: &Path) -> Sweep {
        Sweep {
            scenario,
            root: root.to_path_buf(),
            summary: small_backup(root, None),
            batch_rows: None,
        }
    }

    /// Runs the child into `dir`, with `point` (`<name>#<nth>`) armed if given.
    fn run_child(&self, dir: &Path, point: Option<&str>) -> ChildRun {
        std::fs::create_dir_all(dir).unwrap();
        let stderr_path = dir.with_extension("stderr");
        let mut command = Command::new(std::env::current_exe().unwrap());
        command
            .args(["--exact", "crash_child", "--nocapture"])
            .env(CHILD_DIR_ENV, dir)
            .env(CHILD_ROOT_ENV, &self.root)
            .env(CHILD_SCENARIO_ENV, self.scenario.name())
            .env(
                CHILD_PARAM_ENV,
                restore_body(&self.summary, TENANT).to_string(),
            )
            .env_remove(CRASH_POINT_ENV)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        if let Some(point) = point {
            command.env(CRASH_POINT_ENV, point);
        }
        command.env_remove(APPLY_BATCH_ROWS_FAILPOINT);
        if let Some(rows) = self.batch_rows {
            command.env(APPLY_BATCH_ROWS_FAILPOINT, rows.to_string());
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let lines: Vec<String> = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect();
        let status = child.wait().unwrap();
        // The test harness may print "test crash_child ... " before a line.
        let hits = |tag: &str| {
            lines.iter().find_map(|line| {
                let at = line.find(tag)?;
                serde_json::from_str::<Hits>(line[at + tag.len()..].trim()).ok()
            })
        };
        ChildRun {
            status,
            stderr: std::fs::read_to_string(&stderr_path).unwrap_or_default(),
            start: hits("HITS-START "),
            done: hits("HITS-DONE "),
        }
    }

    /// The points the scenario hits with none armed, and how often.
    fn discover(&self, dir: &Path) -> Discovered {
        let run = self.run_child(dir, None);
        assert!(run.status.success(), "{:?}\n{}", run.status, run.stderr);
        let (start, done) = (run.start.unwrap(), run.done.unwrap());
        let swept = done
            .into_iter()
            .map(|(name, count)| {
                let before = start.get(&name).copied().unwrap_or(0);
                (name, count - before)
            })
            .filter(|(_, count)| *count > 0)
            .collect();
        Discovered { start, swept }
    }

    /// The same points twice; every required point; no step write without a point.
    fn check_discovery(&self, first: &Discovered, second: &Discovered) {
        let hits = &first.swept;
        assert_eq!(hits, &second.swept, "the points of two runs differ");
        assert_eq!(first.start, second.start, "the points of two runs differ");
        for required in self.scenario.required_points() {
            assert!(
                hits.keys().any(|name| name.starts_with(&required)),
                "no crash point {required}: {hits:?}"
            );
        }
        assert!(hits.get(ENGINE_COMMIT).is_some_and(|n| *n > 0), "{hits:?}");
        // Every point but these two follows one cluster write.
        let points_after_writes: u64 = hits
            .iter()
            .filter(|(name, _)| *name != CLUSTER_WRITE && *name != ENGINE_COMMIT)
            .map(|(_, count)| count)
            .sum();
        assert_eq!(
            hits.get(CLUSTER_WRITE).copied().unwrap_or(0),
            points_after_writes + self.scenario.writes_outside_steps(),
            "a cluster write of a step has no crash point after it: {hits:?}"
        );
    }

    /// Every hit of every point but the write counter, as `<point>#<nth>`, those
    /// containing `only` if given.
    fn cases(&self, discovered: &Discovered, only: Option<&str>) -> Vec<String> {
        let mut cases = Vec::new();
        for (name, count) in &discovered.swept {
            if name == CLUSTER_WRITE {
                continue;
            }
            let before = discovered.start.get(name).copied().unwrap_or(0);
            for nth in before + 1..=before + count {
                let point = format!("{name}#{nth}");
                if only.map_or(true, |only| point.contains(only)) {
                    cases.push(point);
                }
            }
        }
        cases
    }

    /// One case: the child dies at `point`, then a new agent recovers and is checked.
    fn crash_and_recover(
        &self,
        runtime: &tokio::runtime::Runtime,
        dir: &Path,
        point: &str,
    ) -> Result<(), String> {
        let run = self.run_child(dir, Some(point));
        let said = format!("crash point {point}: aborting");
        if run.status.signal() != Some(SIGABRT) || !run.stderr.contains(&said) {
            return Err(format!(
                "the child did not die at the point: {:?}\n{}",
                run.status, run.stderr
            ));
        }
        // The dead child holds no lock: the kernel released sled's file lock with it.
        runtime.block_on(async {
            let agent = open_agent(dir, &self.root).await;
            let result = self.check_recovered(&agent).await;
            agent.shutdown(Duration::from_secs(5)).await;
            result
        })
    }
}

/// The checks of a recovered agent; `Err` says what is wrong.
impl Sweep {
    async fn check_recovered(&self, agent: &RestoreAgent) -> Result<(), String> {
        let name = obrestore_restore::executors::dag_name(TENANT);
        let dags: Vec<u64> = agent
            .engine()
            .dags(None)
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|dag| dag.name == name)
            .map(|dag| dag.id)
            .collect();
        let [dag_id] = dags[..] else {
            return Err(format!("expected one restore DAG, found {dags:?}"));
        };
        let settled = agent
            .engine()
            .wait_settled(dag_id)
            .await
            .map_err(|e| e.to_string())?;
        let expected = match self.scenario {
            Scenario::Restore => (State::Succeed, Operator::Run),
            Scenario::Rollback => (State::Succeed, Operator::Rollback),
        };
        if (settled.state, settled.operator) != expected {
            let detail = agent.engine().dag_detail(dag_id, true).ok();
            return Err(format!(
                "DAG ended {:?}+{:?}: {}",
                settled.state,
                settled.operator,
                serde_json::to_string(&detail).unwrap_or_default()
            ));
        }
        let jobs = agent
            .cluster()
            .restore_history(Some(TENANT))
            .map_err(|e| e.to_string())?;
        let [job] = &jobs[..] else {
            return Err(format!("expected one restore job, found {jobs:?}"));
        };
        match self.scenario {
            Scenario::Restore => self.check_restored(agent, job),
            Scenario::Rollback => check_rolled_back(agent, job),
        }
    }

    fn check_restored(
        &self,
        agent: &RestoreAgent,
        job: &obrestore_restore::cluster::RestoreJob,
    ) -> Result<(), String> {
        if job.status != RestoreJobStatus::Success || job.finish_ls_count != job.ls_count {
            return Err(format!("restore job ended as {job:?}"));
        }
        let cluster = agent.cluster();
        let verification = obrestore_restore::verify::verify_tenant(
            cluster,
            TENANT,
            &self.summary.truth_dir,
            job.restore_scn,
        )
        .map_err(|e| e.to_string())?;
        if !verification.matches() || verification.actual.rows == 0 {
            return Err(format!("rows differ: {verification:?}"));
        }
        let tenant = cluster
            .tenant(TENANT)
            .map_err(|e| e.to_string())?
            .ok_or("the tenant is gone")?;
        let state = (tenant.status.to_string(), tenant.role.to_string());
        if state != ("NORMAL".into(), "PRIMARY".into()) || tenant.sync_scn != job.restore_scn {
            return Err(format!("tenant ended {state:?} at {}", tenant.sync_scn));
        }
        let mut expected = tenant.pool_names.clone();
        expected.sort();
        if pool_names(agent)? != expected {
            return Err(format!(
                "pools {:?}, the tenant's are {expected:?}",
                pool_names(agent)?
            ));
        }
        Ok(())
    }
}

fn check_rolled_back(
    agent: &RestoreAgent,
    job: &obrestore_restore::cluster::RestoreJob,
) -> Result<(), String> {
    if job.status != RestoreJobStatus::Fail {
        return Err(format!("restore job ended as {job:?}"));
    }
    if agent
        .cluster()
        .tenant(TENANT)
        .map_err(|e| e.to_string())?
        .is_some()
    {
        return Err("the tenant is still there after the rollback".into());
    }
    let pools = pool_names(agent)?;
    if !pools.is_empty() {
        return Err(format!("pools {pools:?} left after the rollback"));
    }
    Ok(())
}

fn pool_names(agent: &RestoreAgent) -> Result<Vec<String>, String> {
    let mut names: Vec<String> = agent
        .cluster()
        .list_pools()
        .map_err(|e| e.to_string())?
        .into_iter()
        .map(|pool| pool.name)
        .collect();
    names.sort();
    Ok(names)
}

/// Discovers the scenario's points, then crashes at each and checks the recovery.
fn sweep(scenario: Scenario) {
    sweep_cases(scenario, None, |sweep, discovered, only| {
        sweep.cases(discovered, only)
    });
}

/// [`sweep`] with `batch_rows` rows per applied batch, crashing at the cases `pick`
/// chooses among the discovered ones.
fn sweep_cases(
    scenario: Scenario,
    batch_rows: Option<usize>,
    pick: impl Fn(&Sweep, &Discovered, Option<&str>) -> Vec<String>,
) {
    if std::env::var(CHILD_DIR_ENV).is_ok() {
        return;
    }
    let started = Instant::now();
    let backup = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let mut sweep = Sweep::new(scenario, backup.path());
    sweep.batch_rows = batch_rows;
    let discovered = sweep.discover(&work.path().join("discover-1"));
    sweep.check_discovery(
        &discovered,
        &sweep.discover(&work.path().join("discover-2")),
    );
    println!(
        "crash points of a {}, discovered in {:.1?}:",
        scenario.name(),
        started.elapsed()
    );
    for (name, count) in &discovered.swept {
        println!("  {name}: {count}");
    }
    let only = std::env::var(ONLY_ENV).ok();
    let cases = Mutex::new(pick(&sweep, &discovered, only.as_deref()));
    let total = cases.lock().unwrap().len();
    let jobs: usize = std::env::var(JOBS_ENV)
        .ok()
        .and_then(|jobs| jobs.parse().ok())
        .unwrap_or(2);
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                loop {
                    let (case, point) = {
                        let mut cases = cases.lock().unwrap();
                        let Some(point) = cases.pop() else {
                            return;
                        };
                        (cases.len(), point)
                    };
                    let dir = work.path().join(format!("case-{case}"));
                    if let Err(why) = sweep.crash_and_recover(&runtime, &dir, &point) {
                        failures.lock().unwrap().push(format!("{point}: {why}"));
                    }
                    let _ = std::fs::remove_dir_all(&dir);
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    println!(
        "crash points of a {}: {} points, {total} cases swept, {} failed, in {:.1?}",
        scenario.name(),
        discovered.swept.len() - 1,
        failures.len(),
        started.elapsed()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn every_crash_point_of_a_restore_converges_after_a_restart() {
    sweep(Scenario::Restore);
}

#[test]
fn every_crash_point_of_a_rollback_converges_after_a_restart() {
    sweep(Scenario::Rollback);
}

/// With 16 rows a batch (`OBRESTORE_FAILPOINT_APPLY_BATCH_ROWS`) the small backup's
/// `Restore sys tablets` and `Replay log` apply many batches; the child dies right after
/// the first, a middle and the last-but-one batch applied by each (a replay then resumes
/// from the SCN its last durable batch reported, the sys tablets from the start), and a
/// fresh agent must finish as without the crash.
#[test]
fn a_crash_between_batches_converges_after_a_restart() {
    sweep_cases(Scenario::Restore, Some(16), |_, discovered, only| {
        let mut cases = Vec::new();
        for step in ["Restore sys tablets", "Replay log"] {
            let point = format!("step:{step}:after-apply-rows");
            let count = discovered.swept.get(&point).copied().unwrap_or(0);
            assert!(count >= 4, "{point}: {count} batches, want several");
            let before = discovered.start.get(&point).copied().unwrap_or(0);
            for nth in [1, count / 2, count - 1] {
                let case = format!("{point}#{}", before + nth);
                if only.map_or(true, |only| case.contains(only)) {
                    cases.push(case);
                }
            }
        }
        cases
    });
}

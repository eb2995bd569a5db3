//! SIGKILL of a maintainer writing to a cluster on etcd, then a takeover: this binary
//! re-runs itself as a child that claims the maintainer key, opens the cluster with
//! that fence and the shared rows directory, and for k = start, start + 1, ... creates
//! pool `p<k>`, tenant `t<k>` and writes its rows, printing `ACK k` after each. The
//! parent kills it a random 0-3 ms after a random number of acks (the next tenant's
//! writes are under way), ends its claim (as its lease would end), and opens the
//! cluster as the next maintainer does. Then every acknowledged tenant is
//! there with exactly its rows, the one in flight is absent or whole at each step, no
//! later one exists, the servers' unit counts match the pools, and no `.tmp` file is
//! left. The next child starts again at the first unacknowledged k (every step is
//! idempotent), so the one in flight converges.
#![cfg(unix)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use obrestore_etcd::Etcd;
use obrestore_restore::cluster::{RowOp, GIB};
use obrestore_restore::{ManualClock, SledCluster, TenantService};
use rand::Rng;

use crate::common::fixtures::{pool_spec, put, restoring_tenant, start, unit_config};
use crate::support::{claim_maintainer, etcd, lose_maintainer, open_agent};

const ENDPOINTS_ENV: &str = "OBRESTORE_CLUSTER_CRASH_ETCD";
const DIR_ENV: &str = "OBRESTORE_CLUSTER_CRASH_DIR";
const START_ENV: &str = "OBRESTORE_CLUSTER_CRASH_START";
const KILLS: usize = 4;
const ROWS: u64 = 40;
/// Tenants one child may write: `KILLS × PER_CHILD` units of `tiny` (0.25 CPU, 1 GiB)
/// fit on the three 16-CPU, 64 GiB servers.
const PER_CHILD: u64 = 45;

fn rows_of(k: u64) -> Vec<RowOp> {
    (0..ROWS)
        .map(|i| put(k % 4 + 1, format!("k{k}-{i}"), format!("value {k} {i}")))
        .collect()
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn open(etcd: Etcd, dir: &Path, agent: &str, fenced: bool) -> SledCluster {
    let fence = fenced.then(|| claim_maintainer(&etcd));
    let clock = Arc::new(ManualClock::new(start()));
    let db = dir.join(format!("{agent}.sled"));
    open_agent(etcd, &db, &dir.join("shared"), fence, clock).unwrap()
}

/// The child maintainer: writes tenants `start..` until it is killed.
#[test]
fn cluster_crash_child() {
    let (Ok(endpoints), Ok(dir)) = (std::env::var(ENDPOINTS_ENV), std::env::var(DIR_ENV)) else {
        return;
    };
    let first: u64 = std::env::var(START_ENV).unwrap().parse().unwrap();
    let etcd = Etcd::connect(&[endpoints]).unwrap();
    let cluster = open(etcd, Path::new(&dir), &format!("child{first}"), true);
    if cluster.unit_config("tiny").unwrap().is_none() {
        cluster
            .create_unit_config(&unit_config("tiny", 0.25, GIB))
            .unwrap();
    }
    say("READY");
    for k in first..first + PER_CHILD {
        let (pool, creator) = (format!("p{k}"), format!("dag-{k}"));
        let zone = format!("z{}", k % 3 + 1);
        cluster
            .create_pools(&[pool_spec(&pool, "tiny", &[&zone])], &creator)
            .unwrap();
        let tenant = cluster
            .create_tenant(
                &restoring_tenant(&format!("t{k}"), &[&pool], &[&zone]),
                &creator,
            )
            .unwrap();
        cluster.apply_rows(tenant.id, &rows_of(k)).unwrap();
        say(&format!("ACK {k}"));
    }
    say("DONE");
}

/// Every path under `dir` whose name ends in `.tmp`.
fn tmp_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(tmp_files(&path));
        } else if path.extension().is_some_and(|ext| ext == "tmp") {
            found.push(path);
        }
    }
    found
}

/// Runs the child from `first` and kills it `jitter` after its `acks`-th
/// acknowledgement (counting by acknowledgements, not time, keeps the kill in the middle
/// of its writes however fast the build and the device are); returns the acks.
fn run_child(endpoint: &str, dir: &Path, first: u64, acks: usize, jitter: Duration) -> Vec<u64> {
    let stderr_path = dir.join(format!("child{first}.stderr"));
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash::cluster_crash_child", "--nocapture"])
        .env(ENDPOINTS_ENV, endpoint)
        .env(DIR_ENV, dir)
        .env(START_ENV, first.to_string())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (sender, receiver) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut lines = Vec::new();
    let mut seen = 0;
    while let Ok(line) = receiver.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        seen += usize::from(line.contains("ACK "));
        lines.push(line);
        if seen == acks {
            break;
        }
    }
    assert_eq!(seen, acks, "the child stopped acknowledging: {lines:?}");
    std::thread::sleep(jitter);
    child.kill().unwrap(); // SIGKILL: no destructor, nothing graceful
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "the child ended by itself: {lines:?}\n{}",
        std::fs::read_to_string(&stderr_path).unwrap_or_default()
    );
    reader.join().unwrap();
    lines.extend(receiver.try_iter());
    assert!(
        !lines.iter().any(|l| l.contains("DONE")),
        "ran out of tenants"
    );
    lines
        .iter()
        .filter_map(|line| Some(line[line.find("ACK ")? + 4..].trim().parse().unwrap()))
        .collect()
}

/// What the next maintainer finds after tenants `..first` were acknowledged and `first`
/// may have been in flight.
fn check_takeover(cluster: &SledCluster, first: u64) {
    for k in 1..first {
        let tenant = cluster.tenant(&format!("t{k}")).unwrap().unwrap();
        assert_eq!(cluster.row_count(tenant.id).unwrap(), ROWS, "t{k}");
    }
    if let Some(tenant) = cluster.tenant(&format!("t{first}")).unwrap() {
        let rows = cluster.row_count(tenant.id).unwrap();
        assert!(rows == 0 || rows == ROWS, "t{first} has {rows} rows");
    }
    assert_eq!(cluster.tenant(&format!("t{}", first + 1)).unwrap(), None);
    let pools = cluster.list_pools().unwrap().len() as u64;
    assert!(pools == first - 1 || pools == first, "{pools} pools");
    let units: u64 = cluster
        .list_servers()
        .unwrap()
        .iter()
        .map(|server| server.unit_count)
        .sum();
    assert_eq!(units, pools);
}

#[test]
fn a_killed_maintainer_leaves_acknowledged_whole_writes_for_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let etcd = etcd();
    let endpoint = etcd.endpoints().split(',').next().unwrap().to_string();
    let mut first = 1;
    let mut rng = rand::thread_rng();
    for _ in 0..KILLS {
        let acks = run_child(
            &endpoint,
            dir.path(),
            first,
            rng.gen_range(1..PER_CHILD as usize / 2),
            Duration::from_micros(rng.gen_range(0..3000)),
        );
        eprintln!("child from t{first}: {} acknowledged", acks.len());
        assert!(acks.iter().copied().eq(first..first + acks.len() as u64));
        first += acks.len() as u64;
        // The killed maintainer's lease ends; the next one opens the shared directory.
        lose_maintainer(&etcd);
        let next = open(etcd.clone(), dir.path(), "next", true);
        assert!(tmp_files(&dir.path().join("shared")).is_empty());
        check_takeover(&next, first);
        drop(next);
        lose_maintainer(&etcd);
    }
    assert!(first > 1, "no child acknowledged anything");
}

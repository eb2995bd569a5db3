//! Crash test of the tenant row store, in the style of `crates/dag/tests/crash.rs`: this
//! test binary re-runs itself as a child process that applies deterministic row batches
//! (numbered k = 1, 2, ...) to a `SledCluster`, compacts now and then, drops the rows of
//! a second tenant now and then, and prints `ACK k` after each batch; the parent kills it
//! with SIGKILL at random moments, over and over. After every kill the parent reopens the
//! cluster and checks that
//! - the main tenant's rows are exactly those of batches `1..=m` with `m` the last
//!   acknowledged batch or the one after it (in flight: it may have landed, but never
//!   partially), compared row by row, by digest and by row count,
//! - the second tenant holds only whole batches applied after its last acknowledged drop,
//! - no `.tmp` file and no `dropped-*` directory survives the reopen,
//!
//! then restarts the child from batch `m + 1`.
#![cfg(unix)]

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::fixtures::{open_default_cluster, pool_spec, restoring_tenant};
use common::{apply_model, Model};
use obrestore_backup::truth::digest_map;
use obrestore_restore::cluster::RowOp;
use obrestore_restore::{SledCluster, TenantService};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

const CHILD_DIR_ENV: &str = "OBRESTORE_ROWSTORE_CRASH_DIR";
const CHILD_START_ENV: &str = "OBRESTORE_ROWSTORE_CRASH_START";
const KILLS: usize = 20;
/// Distinct keys of the main tenant (batches overlap heavily).
const KEYS: u64 = 1000;
const SCRATCH_ROWS: u32 = 50;
const SIGKILL: i32 = 9;

/// Batch `k` of the main tenant: 200 puts of random keys (values of 1 to 4 KiB that
/// encode `k`) and 20 deletes, shuffled, so that some keys are put and deleted within
/// the batch.
fn main_batch(k: u64) -> Vec<RowOp> {
    let mut rng = StdRng::seed_from_u64(k.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    let mut ops = Vec::with_capacity(220);
    for _ in 0..200 {
        let key = rng.gen_range(0..KEYS);
        let mut value = format!("batch {k} key {key} ").into_bytes();
        value.resize(rng.gen_range(1024..4096), (k % 251) as u8);
        ops.push(RowOp::Put {
            tablet_id: key % 3 + 1,
            key: format!("key{key:05}").into_bytes(),
            value,
        });
    }
    for _ in 0..20 {
        let key = rng.gen_range(0..KEYS);
        ops.push(RowOp::Delete {
            tablet_id: key % 3 + 1,
            key: format!("key{key:05}").into_bytes(),
        });
    }
    ops.shuffle(&mut rng);
    ops
}

/// Row `i` of batch `k` of the scratch tenant (tablet 7; keys are unique per batch).
fn scratch_row(k: u64, i: u32) -> (Vec<u8>, Vec<u8>) {
    (
        format!("s{k:06}-{i:02}").into_bytes(),
        format!("scratch {k} {i} ").repeat(8).into_bytes(),
    )
}

fn scratch_batch(k: u64) -> Vec<RowOp> {
    (0..SCRATCH_ROWS)
        .map(|i| {
            let (key, value) = scratch_row(k, i);
            RowOp::Put {
                tablet_id: 7,
                key,
                value,
            }
        })
        .collect()
}

/// Creates (idempotently, by creator token) the pools and the tenants `main` and
/// `scratch`; returns their ids.
fn ensure_tenants(cluster: &SledCluster) -> (u64, u64) {
    cluster
        .create_pools(
            &[
                pool_spec("p_main", "s1", &["z1"]),
                pool_spec("p_scratch", "s1", &["z2"]),
            ],
            "crash",
        )
        .unwrap();
    let main = cluster
        .create_tenant(&restoring_tenant("main", &["p_main"], &["z1"]), "crash")
        .unwrap();
    let scratch = cluster
        .create_tenant(
            &restoring_tenant("scratch", &["p_scratch"], &["z2"]),
            "crash",
        )
        .unwrap();
    (main.id, scratch.id)
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The child: applies batches `start..` until it is killed.
#[test]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        return;
    };
    let start: u64 = std::env::var(CHILD_START_ENV).unwrap().parse().unwrap();
    let cluster = open_default_cluster(&Path::new(&dir).join("db")).unwrap();
    let (main, scratch) = ensure_tenants(&cluster);
    // Finish the drop of the last batch, which the previous child may not have reached.
    let last = start - 1;
    if last > 0 && last % 3 == 0 {
        cluster.drop_rows(scratch).unwrap();
    }
    say("READY");
    for k in start..start + 1_000_000 {
        cluster.apply_rows(main, &main_batch(k)).unwrap();
        cluster.apply_rows(scratch, &scratch_batch(k)).unwrap();
        if k % 3 == 0 {
            cluster.drop_rows(scratch).unwrap();
        }
        // Compaction does not change the rows, so its timing need not be deterministic:
        // after this child's second batch and every third one, so that some compactions
        // finish and some are killed.
        if (k - start) % 3 == 1 {
            let merged = cluster.compact_rows(main).unwrap();
            say(&format!("COMPACTED {merged}"));
        }
        say(&format!("ACK {k}"));
    }
    say("DONE");
}

/// Every path under `dir` (recursively) whose name ends in `.tmp` or starts with
/// `dropped-`.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        if name.ends_with(".tmp") || name.starts_with("dropped-") {
            found.push(path.clone());
        }
        if path.is_dir() {
            found.extend(leftovers(&path));
        }
    }
    found
}

struct ChildRun {
    ready: bool,
    acks: Vec<u64>,
    /// Compactions that finished and merged runs.
    compactions: usize,
}

/// Runs the child from batch `start` and kills it: `early` after `delay` from the spawn
/// (possibly while it opens and recovers the store), else `delay` after it said READY.
fn run_child(dir: &Path, start: u64, delay: Duration, early: bool) -> ChildRun {
    let stderr_path = dir.join("child-stderr");
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "crash_child",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_START_ENV, start.to_string())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
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
    let mut lines = Vec::new();
    if !early {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(left) {
                Ok(line) => {
                    let ready = line.contains("READY");
                    lines.push(line);
                    if ready {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    panic!("the child did not get ready in 30 s");
                }
                // The child died; the status check below says how.
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
    }
    std::thread::sleep(delay);
    // SIGKILL: no destructor, no flush, nothing graceful.
    let _ = child.kill();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    lines.extend(receiver.try_iter());
    if status.signal() != Some(SIGKILL) {
        let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
        panic!("the child ended by itself ({status:?}): {lines:?}\n{stderr}");
    }
    let mut run = ChildRun {
        ready: false,
        acks: Vec::new(),
        compactions: 0,
    };
    for line in &lines {
        // The test harness may print "test crash_child ... " before the first line.
        if line.contains("READY") {
            run.ready = true;
        }
        if let Some(at) = line.find("COMPACTED ") {
            if line[at + 10..].trim() != "0" {
                run.compactions += 1;
            }
        }
        if let Some(at) = line.find("ACK ") {
            run.acks.push(line[at + 4..].trim().parse().unwrap());
        }
        assert!(!line.contains("DONE"), "the child ran out of batches");
    }
    run
}

/// The scratch tenant holds whole batches `j` with `dropped_through < j <= landed` only.
fn check_scratch(cluster: &SledCluster, scratch: u64, dropped_through: u64, landed: u64) {
    let mut batches: BTreeMap<u64, u32> = BTreeMap::new();
    cluster
        .for_each_row(scratch, &mut |tablet_id, key, value| {
            assert_eq!(tablet_id, 7, "scratch row in tablet {tablet_id}");
            let text = String::from_utf8_lossy(key).into_owned();
            let (k, i) = text
                .strip_prefix('s')
                .and_then(|rest| rest.split_once('-'))
                .unwrap_or_else(|| panic!("unexpected scratch key {text}"));
            let (k, i): (u64, u32) = (k.parse().unwrap(), i.parse().unwrap());
            assert_eq!(
                (key, value),
                (&scratch_row(k, i).0[..], &scratch_row(k, i).1[..]),
                "scratch row {text}"
            );
            *batches.entry(k).or_default() += 1;
        })
        .unwrap();
    for (k, rows) in &batches {
        assert_eq!(*rows, SCRATCH_ROWS, "scratch batch {k} landed partially");
        assert!(
            dropped_through < *k && *k <= landed,
            "scratch batch {k} present; dropped through {dropped_through}, landed {landed}"
        );
    }
}

/// The tenant's rows, read back.
fn scan(cluster: &SledCluster, tenant_id: u64) -> Model {
    let mut rows = Model::new();
    cluster
        .for_each_row(tenant_id, &mut |tablet_id, key, value| {
            rows.insert((tablet_id, key.to_vec()), value.to_vec());
        })
        .unwrap();
    rows
}

/// How `actual` differs from `expected` (a few rows each way), for failure messages.
fn difference(actual: &Model, expected: &Model) -> String {
    let show = |((tablet, key), value): (&(u64, Vec<u8>), &Vec<u8>)| {
        format!(
            "{tablet}/{}: {:?}.. ({} bytes)",
            String::from_utf8_lossy(key),
            String::from_utf8_lossy(&value[..value.len().min(18)]),
            value.len()
        )
    };
    let extra: Vec<String> = actual
        .iter()
        .filter(|(key, value)| expected.get(*key) != Some(*value))
        .take(5)
        .map(show)
        .collect();
    let missing: Vec<String> = expected
        .iter()
        .filter(|(key, value)| actual.get(*key) != Some(*value))
        .take(5)
        .map(show)
        .collect();
    format!("the store has {extra:?} and lacks {missing:?}")
}

/// Every file under `dir`, with its size.
fn listing(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                found.extend(listing(&path));
            } else {
                let len = std::fs::metadata(&path).map_or(0, |m| m.len());
                found.push(format!("{} ({len} bytes)", path.display()));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn sigkill_at_random_moments_keeps_batches_atomic_and_durable() {
    if std::env::var(CHILD_DIR_ENV).is_ok() {
        return;
    }
    let began = Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let rows_dir = dir.path().join("db.rows");
    let seed: u64 = match std::env::var("OBRESTORE_ROWSTORE_CRASH_SEED") {
        Ok(seed) => seed.parse().unwrap(),
        Err(_) => rand::thread_rng().gen(),
    };
    println!("rowstore crash test seed {seed}");
    let mut rng = StdRng::seed_from_u64(seed);

    let mut known = Known::default();
    let mut leftovers_seen = 0;
    let mut compactions = 0;
    for round in 0..KILLS {
        let start = known.landed + 1;
        let early = rng.gen_bool(0.25);
        let delay = if early {
            Duration::from_millis(rng.gen_range(0..80))
        } else {
            Duration::from_millis(rng.gen_range(10..150))
        };
        let run = run_child(dir.path(), start, delay, early);
        let expected_acks: Vec<u64> = (start..start + run.acks.len() as u64).collect();
        assert_eq!(run.acks, expected_acks, "round {round}: acknowledgements");
        let acked = run.acks.last().copied().unwrap_or(known.landed);
        compactions += run.compactions;
        known.note_drops(&run, start);
        if !leftovers(&rows_dir).is_empty() {
            leftovers_seen += 1;
        }
        known.check_reopened(round, &db, &rows_dir, acked);
    }

    // A last reopen: nothing left over, the rows still equal the model.
    let cluster = open_default_cluster(&db).unwrap();
    assert_eq!(leftovers(&rows_dir), Vec::<PathBuf>::new());
    let main = cluster.tenant("main").unwrap().expect("tenant main").id;
    assert_eq!(
        cluster.tenant_digest(main).unwrap(),
        digest_map(&known.model)
    );
    assert!(
        known.landed >= 3,
        "the children applied too little to test anything: {} batches",
        known.landed
    );
    println!(
        "rowstore crash test: {KILLS} kills, {} batches landed ({} unacknowledged), \
         {compactions} compactions finished, {} rows, {} runs at the end, leftovers before a reopen \
         in {leftovers_seen} rounds, {:.1} s",
        known.landed,
        known.unacked_landed,
        known.model.len(),
        cluster.row_stats(main).runs,
        began.elapsed().as_secs_f64()
    );
}

/// What the parent knows the store holds, from the acknowledgements and the reopens.
#[derive(Default)]
struct Known {
    /// Batches 1..=landed are in the store (the model holds them).
    landed: u64,
    model: Model,
    /// The scratch tenant's drops through this batch are known to be done.
    dropped_through: u64,
    /// Batches found landed without their acknowledgement.
    unacked_landed: usize,
}

impl Known {
    /// The drops of the scratch tenant a child that started at `start` finished: the
    /// one it redoes at start, and those of every third batch it acknowledged.
    fn note_drops(&mut self, run: &ChildRun, start: u64) {
        if run.ready && start > 1 && (start - 1) % 3 == 0 {
            self.dropped_through = self.dropped_through.max(start - 1);
        }
        if let Some(last) = run.acks.last() {
            self.dropped_through = self.dropped_through.max(last - last % 3);
        }
    }

    /// Reopens the store after a kill and compares it with batches 1..=acked or
    /// 1..=acked + 1 (the one in flight landed whole or not at all).
    fn check_reopened(&mut self, round: usize, db: &Path, rows_dir: &Path, acked: u64) {
        for k in self.landed + 1..=acked {
            apply_model(&mut self.model, &main_batch(k));
        }
        let files = listing(rows_dir);
        let cluster = open_default_cluster(db)
            .unwrap_or_else(|e| panic!("round {round}: reopen after the kill: {e}\n{files:#?}"));
        assert_eq!(
            leftovers(rows_dir),
            Vec::<PathBuf>::new(),
            "round {round}: leftovers after reopen"
        );
        let main = cluster.tenant("main").unwrap().map(|tenant| tenant.id);
        let actual = main.map(|id| scan(&cluster, id)).unwrap_or_default();
        if main.is_none() {
            assert_eq!(
                acked, 0,
                "round {round}: acknowledged batches without a tenant"
            );
        }
        if actual == self.model {
            self.landed = acked;
        } else {
            let mut next = self.model.clone();
            apply_model(&mut next, &main_batch(acked + 1));
            assert!(
                actual == next,
                "round {round}: the rows are neither batches 1..={acked} ({} rows: {}) nor 1..={} ({} rows: {}); files before the reopen: {files:#?}",
                self.model.len(),
                difference(&actual, &self.model),
                acked + 1,
                next.len(),
                difference(&actual, &next),
            );
            self.model = next;
            self.landed = acked + 1;
            self.unacked_landed += 1;
        }
        if let Some(id) = main {
            assert_eq!(
                cluster.tenant_digest(id).unwrap(),
                digest_map(&self.model),
                "round {round}"
            );
            assert_eq!(cluster.row_count(id).unwrap(), self.model.len() as u64);
        }
        if let Some(scratch) = cluster.tenant("scratch").unwrap() {
            check_scratch(&cluster, scratch.id, self.dropped_through, self.landed);
        }
    }
}

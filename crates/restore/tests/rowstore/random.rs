//! Random batches against the model, with compactions, drops and reopens among them;
//! automatic compaction past `COMPACT_AT_RUNS` (size tiers: old big runs are left alone).

use obrestore_restore::cluster::{RowOp, RunStats, COMPACT_AT_RUNS};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::common::fixtures::{del, put};
use crate::common::Model;
use crate::support::{check, distinct_keys, run_files, Fixture};

fn random_key(rng: &mut StdRng) -> (u64, Vec<u8>) {
    const TABLETS: [u64; 4] = [0, 1, 200_001, u64::MAX];
    const BYTES: [u8; 3] = [0x00, b'a', 0xff];
    let tablet = TABLETS[rng.gen_range(0..TABLETS.len())];
    let len = rng.gen_range(0..4);
    let key = (0..len)
        .map(|_| BYTES[rng.gen_range(0..BYTES.len())])
        .collect();
    (tablet, key)
}

fn random_batch(rng: &mut StdRng) -> Vec<RowOp> {
    let len = if rng.gen_bool(0.1) {
        0
    } else {
        rng.gen_range(1..40)
    };
    let mut batch = random_ops(rng, len);
    // Some batches come in (tablet, key) order, as a data round's do: with repeated
    // keys, or strictly ascending (the last change of each key kept).
    if rng.gen_bool(0.3) {
        let key = |op: &RowOp| match op {
            RowOp::Put { tablet_id, key, .. } | RowOp::Delete { tablet_id, key } => {
                (*tablet_id, key.clone())
            }
        };
        batch.sort_by_key(key);
        if rng.gen_bool(0.5) {
            batch.reverse();
            batch.dedup_by(|a, b| key(a) == key(b));
            batch.reverse();
        }
    }
    batch
}

fn random_ops(rng: &mut StdRng, len: usize) -> Vec<RowOp> {
    (0..len)
        .map(|_| {
            let (tablet_id, key) = random_key(rng);
            if rng.gen_bool(0.35) {
                RowOp::Delete { tablet_id, key }
            } else {
                let value_len = rng.gen_range(0..48);
                RowOp::Put {
                    tablet_id,
                    key,
                    value: (0..value_len).map(|_| rng.gen()).collect(),
                }
            }
        })
        .collect()
}

/// What the run statistics of a tenant must be.
#[derive(Clone, Copy, Debug, Default)]
struct StatsModel {
    runs: usize,
    versions: u64,
}

#[test]
fn random_batches_with_compaction_and_reopen_match_the_model() {
    let base: u64 = match std::env::var("OBRESTORE_ROWSTORE_SEED") {
        Ok(seed) => seed.parse().unwrap(),
        Err(_) => rand::thread_rng().gen(),
    };
    println!("rowstore random test seed {base} (set OBRESTORE_ROWSTORE_SEED to repeat)");
    let mut compactions_checked = 0;
    for case in 0..40u64 {
        let seed = base.wrapping_add(case);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut walk = RandomWalk::new();
        let steps = rng.gen_range(10..30);
        for step in 0..steps {
            let context = format!("seed {seed} (base {base} case {case}) step {step}");
            if walk.step(&mut rng, &context) {
                compactions_checked += 1;
            }
            walk.check_every_tenant(&context);
        }
        walk.compact_reopen_and_check(seed);
    }
    assert!(
        compactions_checked >= 20,
        "only {compactions_checked} compactions"
    );
}

/// Two tenants, each with its model of rows and of run statistics.
struct RandomWalk {
    fx: Fixture,
    tenants: [u64; 2],
    models: [Model; 2],
    stats: [StatsModel; 2],
}

impl RandomWalk {
    fn new() -> RandomWalk {
        let mut fx = Fixture::new();
        let tenants = [fx.tenant("a"), fx.tenant("b")];
        RandomWalk {
            fx,
            tenants,
            models: [Model::new(), Model::new()],
            stats: [StatsModel::default(); 2],
        }
    }

    /// One random action on a random tenant: a batch (65%), a compaction (17%), a
    /// reopen (13%) or a drop of its rows (5%). Returns whether a compaction of two
    /// runs or more was checked.
    fn step(&mut self, rng: &mut StdRng, context: &str) -> bool {
        let which = rng.gen_range(0..2);
        let t = self.tenants[which];
        let action = rng.gen_range(0..100);
        let fx = &mut self.fx;
        if action < 65 {
            let batch = random_batch(rng);
            fx.apply(t, &mut self.models[which], &batch);
            if !batch.is_empty() {
                self.stats[which].runs += 1;
                self.stats[which].versions += distinct_keys(&batch);
            }
        } else if action < 82 {
            let before = fx.cluster().row_stats(t);
            let merged = fx.cluster().compact_rows(t).unwrap();
            if before.runs >= 2 {
                assert_eq!(merged, before.runs, "{context}: runs merged");
                self.stats[which] = StatsModel {
                    runs: 1,
                    versions: self.models[which].len() as u64,
                };
                return true;
            }
            assert_eq!(merged, 0, "{context}: nothing to merge");
        } else if action < 95 {
            fx.reopen();
        } else {
            let count = fx.cluster().drop_rows(t).unwrap();
            assert_eq!(
                count,
                self.models[which].len() as u64,
                "{context}: drop_rows count"
            );
            self.models[which].clear();
            self.stats[which] = StatsModel::default();
            assert!(!fx.tenant_dir(t).exists(), "{context}: dir after drop_rows");
        }
        false
    }

    /// Every tenant's rows, run statistics and run files match the models.
    fn check_every_tenant(&self, context: &str) {
        let fx = &self.fx;
        for (i, tenant) in self.tenants.iter().enumerate() {
            let context = format!("{context} tenant {tenant}");
            check(fx.cluster(), *tenant, &self.models[i], &context);
            let actual = fx.cluster().row_stats(*tenant);
            assert_eq!(
                (actual.runs, actual.versions),
                (self.stats[i].runs, self.stats[i].versions),
                "{context}: row_stats"
            );
            assert!(actual.versions >= self.models[i].len() as u64);
            assert_eq!(
                run_files(&fx.tenant_dir(*tenant)).len(),
                actual.runs,
                "{context}"
            );
        }
    }

    /// A last full compaction and reopen.
    fn compact_reopen_and_check(mut self, seed: u64) {
        for (i, tenant) in self.tenants.iter().enumerate() {
            let runs = self.fx.cluster().row_stats(*tenant).runs;
            let merged = self.fx.cluster().compact_rows(*tenant).unwrap();
            assert_eq!(merged, if runs >= 2 { runs } else { 0 }, "seed {seed}");
            if runs >= 2 {
                assert_eq!(
                    self.fx.cluster().row_stats(*tenant),
                    RunStats {
                        runs: 1,
                        versions: self.models[i].len() as u64
                    },
                    "seed {seed}: a full compaction keeps only live rows"
                );
            }
        }
        self.fx.reopen();
        for (i, tenant) in self.tenants.iter().enumerate() {
            check(
                self.fx.cluster(),
                *tenant,
                &self.models[i],
                &format!("seed {seed} final"),
            );
        }
    }
}

#[test]
fn past_compact_at_runs_runs_are_merged_automatically() {
    let mut fx = Fixture::new();
    let t = fx.tenant("t");
    let mut model = Model::new();
    let batches = 2 * COMPACT_AT_RUNS + 5;
    for i in 1..=batches {
        let n = i as u64;
        // Overwrite a sliding window of keys, delete one, add one.
        let mut batch: Vec<RowOp> = (0..5)
            .map(|j| {
                let key = format!("k{:03}", (n + j) % 60);
                put(n % 3, key.as_bytes(), format!("v{n}").as_bytes())
            })
            .collect();
        batch.push(del((n + 1) % 3, format!("k{:03}", (n * 7) % 60).as_bytes()));
        batch.push(put(9, format!("unique{n:04}").as_bytes(), b"u"));
        fx.apply(t, &mut model, &batch);
        let stats = fx.cluster().row_stats(t);
        // A batch that takes the tenant past COMPACT_AT_RUNS runs merges them into one.
        assert_eq!(
            stats.runs,
            (i - 1) % COMPACT_AT_RUNS + 1,
            "runs after batch {i}"
        );
        assert!(stats.runs <= COMPACT_AT_RUNS);
        assert_eq!(run_files(&fx.tenant_dir(t)).len(), stats.runs);
        if stats.runs == 1 && i > 1 {
            // The merge of all runs dropped every tombstone and overridden version.
            assert_eq!(stats.versions, model.len() as u64, "after batch {i}");
        }
        if i % 16 == 0 || stats.runs == 1 {
            check(fx.cluster(), t, &model, &format!("after batch {i}"));
        }
    }
    check(fx.cluster(), t, &model, "at the end");
    fx.reopen();
    check(fx.cluster(), t, &model, "after reopen");
    assert_eq!(
        fx.cluster().row_stats(t).runs,
        (batches - 1) % COMPACT_AT_RUNS + 1
    );
}

#[test]
fn a_tiered_merge_without_the_oldest_run_keeps_its_tombstones() {
    let mut fx = Fixture::new();
    let t = fx.tenant("t");
    let mut model = Model::new();
    // The oldest run is in tier 1 (16 MiB of records or more): 17 values of 1 MiB.
    let big: Vec<RowOp> = (0..17u8)
        .map(|k| put(1, [b'b', k], vec![k; 1 << 20]))
        .collect();
    fx.apply(t, &mut model, &big);
    // COMPACT_AT_RUNS small batches take the tenant past the bound: the first deletes
    // two rows of the big run, the others overwrite one key again and again.
    for i in 0..COMPACT_AT_RUNS {
        let batch = if i == 0 {
            vec![del(1, [b'b', 3]), del(1, [b'b', 9]), put(2, b"x", b"0")]
        } else {
            vec![put(2, b"x", format!("{i}").as_bytes())]
        };
        fx.apply(t, &mut model, &batch);
        let expected_runs = if i + 1 < COMPACT_AT_RUNS { i + 2 } else { 2 };
        assert_eq!(fx.cluster().row_stats(t).runs, expected_runs, "batch {i}");
    }
    // The small runs (tier 0, COMPACT_AT_RUNS ≥ TIER_FAN_IN of them) were merged into one
    // and the big run was left alone, so the two tombstones must still hide its rows.
    assert_eq!(
        fx.cluster().row_stats(t),
        RunStats {
            runs: 2,
            versions: 17 + 3
        }
    );
    check(fx.cluster(), t, &model, "after the tiered merge");
    fx.reopen();
    check(fx.cluster(), t, &model, "after reopen");
    assert_eq!(fx.cluster().compact_rows(t).unwrap(), 2);
    assert_eq!(
        fx.cluster().row_stats(t),
        RunStats {
            runs: 1,
            versions: model.len() as u64
        }
    );
    check(fx.cluster(), t, &model, "after the full merge");
}

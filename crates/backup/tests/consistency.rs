//! The backup API is self-consistent: applying a plan with the readers (full + incs +
//! logs) gives the same rows as the independent truth file.

mod common;

use common::fixture;
use obrestore_backup::generate::sets_from_pattern;
use obrestore_backup::{generate, truth, RestoreTarget, Scn};

#[test]
fn readers_match_the_truth_at_several_targets() {
    let f = fixture(|config| config.sets[3].password = Some("secret".to_string()));
    let targets = [
        RestoreTarget::Latest,
        RestoreTarget::Scn(f.at_hours(20.0)),
        RestoreTarget::Scn(f.at_hours(25.0)),
        RestoreTarget::Scn(f.at_hours(41.0)),
        RestoreTarget::Scn(f.summary.set(1).unwrap().min_restore_scn),
    ];
    let mut digests = Vec::new();
    for target in targets {
        let plan = f.plan(target, &["secret"]).unwrap();
        let expected = truth::rows_at(&f.summary.truth_dir, plan.restore_scn)
            .unwrap()
            .digest();
        assert!(
            expected.rows > 10,
            "too few rows to mean anything: {expected}"
        );
        assert_eq!(f.restore_digest(&plan), expected, "at {}", plan.restore_scn);
        digests.push(expected);
    }
    digests.dedup();
    assert_eq!(digests.len(), 5, "targets should give different states");
    // The readers crossed several data files per LS and several log files per piece.
    let set = f.summary.set(4).unwrap();
    assert!(f.data.data_files(set, 1001).unwrap().len() > 1);
    let piece = f.summary.piece(3).unwrap();
    assert!(f.archive.log_files(piece, 1001).unwrap().len() > 1);
}

#[test]
fn gap_restart_chain_is_consistent() {
    let f = fixture(|config| {
        config.sets = sets_from_pattern("FIF").unwrap();
        config.gaps = vec![common::gap(0.55, 2 * common::HOUR)];
    });
    let plan = f.plan(RestoreTarget::Latest, &[]).unwrap();
    let expected = truth::rows_at(&f.summary.truth_dir, plan.restore_scn)
        .unwrap()
        .digest();
    assert_eq!(f.restore_digest(&plan), expected);
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let third = tempfile::tempdir().unwrap();
    let make = |dir: &std::path::Path, seed: u64| {
        let mut config = common::small_config(dir);
        config.seed = seed;
        config.sets[2].password = Some("pw".to_string());
        config.gaps = vec![common::gap(0.5, common::HOUR)];
        generate(&config).unwrap()
    };
    let a = make(first.path(), 7);
    let b = make(second.path(), 7);
    let c = make(third.path(), 8);
    let tree_a = common::tree(&a.tenant_dir);
    assert!(tree_a.len() > 50, "{} files", tree_a.len());
    assert_eq!(tree_a, common::tree(&b.tenant_dir));
    assert_ne!(tree_a, common::tree(&c.tenant_dir));
    assert_eq!(
        (a.sets.clone(), a.pieces.clone()),
        (b.sets.clone(), b.pieces.clone())
    );
    assert!(a.data_bytes > 0 && a.archive_bytes > 0);
}

#[test]
fn generator_refuses_bad_configs_and_existing_output() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = common::small_config(dir.path());
    config.sets = sets_from_pattern("IF").unwrap();
    assert!(generate(&config)
        .unwrap_err()
        .to_string()
        .contains("needs an earlier successful FULL"));
    let config = common::small_config(dir.path());
    generate(&config).unwrap();
    assert!(generate(&config)
        .unwrap_err()
        .to_string()
        .contains("already exists"));
    let mut config = config;
    config.overwrite = true;
    generate(&config).unwrap();
}

#[test]
fn truth_is_empty_before_the_workload() {
    let f = fixture(|_| {});
    let before = truth::rows_at(&f.summary.truth_dir, Scn(f.base())).unwrap();
    assert_eq!(before.rows.len(), 0);
    let all = truth::rows_at(&f.summary.truth_dir, Scn::MAX).unwrap();
    assert_eq!(all.ops_applied, f.summary.ops);
    assert_eq!(all.rows.len() as u64, f.summary.live_rows);
}

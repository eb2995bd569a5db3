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

/// The macro range index's block entries describe the blocks the reader reads (place,
/// size, rows, first and last row), and a reader moved to a block's offset reads that
/// block, encrypted sets included.
#[test]
fn index_block_entries_match_the_blocks_and_seek_to_them() {
    let f = fixture(|config| config.sets[3].password = Some("secret".to_string()));
    let plan = f.plan(RestoreTarget::Latest, &["secret"]).unwrap();
    let mut blocks_seen = 0;
    for planned in &plan.sets {
        let key = plan.key(planned.info.backup_set_id);
        for &ls_id in &f.summary.log_stream_ids {
            for file in f.data.data_files(&planned.info, ls_id).unwrap() {
                assert_eq!(file.blocks.len() as u64, file.block_count, "{file:?}");
                let read: Vec<_> = f
                    .data
                    .read_data_file(&file, key)
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                assert_eq!(read.len(), file.blocks.len());
                for (entry, block) in file.blocks.iter().zip(&read) {
                    assert_eq!(
                        (entry.offset, entry.stored_bytes, entry.row_count),
                        (block.offset, block.stored_bytes, block.rows.len() as u64)
                    );
                    let (first, last) = (&block.rows[0], &block.rows[block.rows.len() - 1]);
                    assert_eq!(
                        (first.tablet_id, &first.key),
                        (entry.first.tablet_id, &entry.first.key)
                    );
                    assert_eq!(
                        (last.tablet_id, &last.key),
                        (entry.last.tablet_id, &entry.last.key)
                    );
                    let mut moved = f.data.read_data_file(&file, key).unwrap();
                    moved.seek_to_block(entry.offset).unwrap();
                    assert_eq!(moved.next().unwrap().unwrap(), *block);
                    blocks_seen += 1;
                }
            }
        }
    }
    assert!(blocks_seen > 10, "too few blocks to mean anything");
    // An offset inside the file header is refused, not read.
    let set = &plan.sets[0].info;
    let file = &f.data.data_files(set, 1001).unwrap()[0];
    let mut reader = f
        .data
        .read_data_file(file, plan.key(set.backup_set_id))
        .unwrap();
    assert!(reader.seek_to_block(5).is_err());
}

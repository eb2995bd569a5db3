//! Batches: the last op of a key wins within one, later ones win across runs,
//! deletes hide rows, a reused batch applies like its ops, tenants never mix.

use obrestore_restore::cluster::{RowBatch, RowOp, RunStats};
use obrestore_restore::TenantService;

use crate::common::fixtures::{del, put};
use crate::common::{apply_model, Model};
use crate::support::{check, distinct_keys, names_in, Fixture};

#[test]
fn within_a_batch_the_last_op_of_a_key_wins() {
    let mut fx = Fixture::new();
    let t = fx.tenant("t");
    let mut model = Model::new();

    // Rows the next batch deletes and re-puts.
    fx.apply(
        t,
        &mut model,
        &[
            put(5, b"old-deleted", b"x"),
            put(5, b"old-reput", b"x"),
            put(5, b"old-kept", b"kept"),
        ],
    );
    assert_eq!(model.len(), 3);

    // Unsorted by key and by tablet, with repeats of keys.
    let batch = [
        put(9, b"m", b"m1"),
        put(2, b"put-then-delete", b"gone"),
        put(5, b"old-reput", b"y1"),
        del(9, b"delete-then-put"),
        put(2, b"put-twice", b"first"),
        put(1, b"z", b"z"),
        del(2, b"put-then-delete"),
        del(5, b"old-reput"),
        put(9, b"delete-then-put", b"back"),
        put(2, b"put-twice", b"second"),
        del(5, b"old-deleted"),
        put(5, b"old-reput", b"y2"),
        put(1, b"a", b"a"),
        put(9, b"m", b"m2"),
        put(2, b"put-twice", b"third"),
        del(7, b"never-existed"),
    ];
    fx.apply(t, &mut model, &batch);
    let cluster = fx.cluster();
    check(cluster, t, &model, "after the batch");

    let value = |tablet: u64, key: &[u8]| model.get(&(tablet, key.to_vec())).cloned();
    assert_eq!(value(2, b"put-then-delete"), None);
    assert_eq!(value(9, b"delete-then-put").as_deref(), Some(&b"back"[..]));
    assert_eq!(value(2, b"put-twice").as_deref(), Some(&b"third"[..]));
    assert_eq!(value(5, b"old-reput").as_deref(), Some(&b"y2"[..]));
    assert_eq!(value(5, b"old-deleted"), None);
    assert_eq!(value(9, b"m").as_deref(), Some(&b"m2"[..]));
    assert_eq!(model.len(), 7);

    // One version per distinct key of each batch: repeats within a batch are not stored.
    assert_eq!(
        cluster.row_stats(t),
        RunStats {
            runs: 2,
            versions: 3 + distinct_keys(&batch)
        }
    );
    assert_eq!(distinct_keys(&batch), 9);

    fx.reopen();
    check(fx.cluster(), t, &model, "after reopen");
    assert_eq!(fx.cluster().compact_rows(t).unwrap(), 2);
    check(fx.cluster(), t, &model, "after compaction");
    assert_eq!(
        fx.cluster().row_stats(t),
        RunStats {
            runs: 1,
            versions: 7
        }
    );
}

#[test]
fn a_reused_row_batch_applies_like_its_ops() {
    let mut fx = Fixture::new();
    let t = fx.tenant("t");
    let mut model = Model::new();
    let mut batch = RowBatch::new();
    let rounds: Vec<Vec<RowOp>> = vec![
        vec![
            put(3, b"b", b"1"),
            put(1, b"a", b"1"),
            del(3, b"b"),
            put(2, b"", b""),
        ],
        vec![
            put(1, b"a", b"2"),
            put(3, b"b", b"2"),
            put(3, b"b", b"22"),
            del(2, b""),
        ],
        vec![del(1, b"a"), put(1, b"a", b"3"), del(9, b"missing")],
    ];
    for (n, ops) in rounds.iter().enumerate() {
        // Refilled after `clear`, with every way of adding a change.
        batch.clear();
        assert!(batch.is_empty());
        for (i, op) in ops.iter().enumerate() {
            match (op, i % 2) {
                (
                    RowOp::Put {
                        tablet_id,
                        key,
                        value,
                    },
                    0,
                ) => batch.put(*tablet_id, key, value),
                (
                    RowOp::Put {
                        tablet_id,
                        key,
                        value,
                    },
                    _,
                ) => batch.push(*tablet_id, key, Some(value)),
                (RowOp::Delete { tablet_id, key }, 0) => batch.delete(*tablet_id, key),
                (RowOp::Delete { tablet_id, key }, _) => batch.push(*tablet_id, key, None),
            }
        }
        assert_eq!(batch, RowBatch::from_ops(ops));
        assert_eq!(batch.len(), ops.len());
        fx.cluster().apply_batch(t, &batch).unwrap();
        apply_model(&mut model, ops);
        check(fx.cluster(), t, &model, &format!("round {n}"));
    }
    let expected: Model = [
        ((1, b"a".to_vec()), b"3".to_vec()),
        ((3, b"b".to_vec()), b"22".to_vec()),
    ]
    .into_iter()
    .collect();
    assert_eq!(model, expected);
    batch.clear();
    fx.cluster().apply_batch(t, &batch).unwrap();
    assert_eq!(
        fx.cluster().row_stats(t).runs,
        3,
        "an empty batch writes no run"
    );
    fx.reopen();
    check(fx.cluster(), t, &model, "after reopen");
}

#[test]
fn later_batches_win_and_deletes_hide_rows_across_runs() {
    let mut fx = Fixture::new();
    let t = fx.tenant("t");
    let mut model = Model::new();
    let big = vec![0xabu8; 70_000];

    let batches: Vec<Vec<RowOp>> = vec![
        vec![
            put(1, b"a", b"1"),
            put(1, b"b", b"1"),
            put(2, b"a", b"1"),
            put(u64::MAX, b"\xff\xff", b"max tablet"),
            put(0, b"", b""),
            put(0, b"\x00", b"nul key"),
            put(3, b"big", &big),
        ],
        vec![
            put(1, b"a", b"2"),
            del(2, b"a"),
            put(1, b"ab", b"2"),
            put(1, b"a\x00", b"2"),
        ],
        // Empty value versus deleted: an empty value is a row.
        vec![
            put(1, b"b", b""),
            del(0, b"\x00"),
            put(3, b"big", b"small now"),
        ],
        vec![
            put(2, b"a", b"4"),
            del(1, b"ab"),
            del(u64::MAX, b"\xff\xff"),
        ],
        vec![
            del(2, b"a"),
            put(u64::MAX, b"\xff\xff", b"again"),
            put(0, b"", b"5"),
        ],
    ];
    for (n, batch) in batches.iter().enumerate() {
        fx.apply(t, &mut model, batch);
        check(fx.cluster(), t, &model, &format!("after batch {}", n + 1));
        assert_eq!(fx.cluster().row_stats(t).runs, n + 1);
    }
    type Entry<'a> = ((u64, &'a [u8]), &'a [u8]);
    let expected: Vec<Entry<'_>> = vec![
        ((0, b""), b"5"),
        ((1, b"a"), b"2"),
        ((1, b"a\x00"), b"2"),
        ((1, b"b"), b""),
        ((3, b"big"), b"small now"),
        ((u64::MAX, b"\xff\xff"), b"again"),
    ];
    let actual: Vec<Entry<'_>> = model
        .iter()
        .map(|((tablet, key), value)| ((*tablet, key.as_slice()), value.as_slice()))
        .collect();
    assert_eq!(actual, expected);

    // An empty batch writes nothing and changes nothing.
    let before = fx.cluster().row_stats(t);
    let files = names_in(&fx.tenant_dir(t));
    fx.apply(t, &mut model, &[]);
    assert_eq!(fx.cluster().row_stats(t), before);
    assert_eq!(names_in(&fx.tenant_dir(t)), files);
    check(fx.cluster(), t, &model, "after an empty batch");

    fx.reopen();
    check(fx.cluster(), t, &model, "after reopen");
    assert_eq!(fx.cluster().row_stats(t), before);

    // A tenant that never got rows reads as empty.
    let empty = fx.tenant("empty");
    fx.apply(empty, &mut Model::new(), &[]);
    check(fx.cluster(), empty, &Model::new(), "empty tenant");
    assert_eq!(fx.cluster().row_stats(empty), RunStats::default());
    assert_eq!(fx.cluster().compact_rows(empty).unwrap(), 0);
    assert!(!fx.tenant_dir(empty).exists());
}

#[test]
fn rows_of_two_tenants_never_mix() {
    let mut fx = Fixture::new();
    let a = fx.tenant("a");
    let b = fx.tenant("b");
    let mut model_a = Model::new();
    let mut model_b = Model::new();
    // The same tablets and keys, different values; interleaved batches.
    for round in 0..6u32 {
        let ops_a: Vec<RowOp> = (0..8u32)
            .map(|i| {
                let key = format!("k{}", (round + i) % 10);
                if (round + i) % 5 == 0 {
                    del(1, key.as_bytes())
                } else {
                    put(1, key.as_bytes(), format!("a{round}").as_bytes())
                }
            })
            .collect();
        let ops_b: Vec<RowOp> = (0..8u32)
            .map(|i| {
                let key = format!("k{}", (round * 3 + i) % 10);
                put(1, key.as_bytes(), format!("b{round}").as_bytes())
            })
            .collect();
        fx.apply(a, &mut model_a, &ops_a);
        fx.apply(b, &mut model_b, &ops_b);
        if round == 3 {
            assert_eq!(fx.cluster().compact_rows(a).unwrap(), 4);
            assert_eq!(fx.cluster().row_stats(b).runs, 4);
        }
        check(fx.cluster(), a, &model_a, &format!("a round {round}"));
        check(fx.cluster(), b, &model_b, &format!("b round {round}"));
    }
    assert_ne!(model_a, model_b);
    assert!(model_a.values().all(|v| v.starts_with(b"a")));
    assert!(model_b.values().all(|v| v.starts_with(b"b")));
    fx.reopen();
    check(fx.cluster(), a, &model_a, "a after reopen");
    check(fx.cluster(), b, &model_b, "b after reopen");
    assert_eq!(fx.cluster().drop_rows(b).unwrap(), model_b.len() as u64);
    model_b.clear();
    check(fx.cluster(), a, &model_a, "a after b's drop");
    check(fx.cluster(), b, &model_b, "b dropped");
    assert_eq!(fx.cluster().compact_rows(a).unwrap(), 3);
    fx.reopen();
    check(fx.cluster(), a, &model_a, "a at the end");
    check(fx.cluster(), b, &model_b, "b at the end");
}

use std::path::PathBuf;

use super::*;

/// A data file's header and footer bytes.
const FRAME: u64 = (FILE_HEADER_LEN + FOOTER_LEN) as u64;

fn row(tablet_id: u64, key: u64) -> RowBound {
    RowBound {
        tablet_id,
        key: key.to_be_bytes().to_vec(),
    }
}

/// A data file whose blocks hold the given `(first, last)` rows, each block `size` bytes.
fn file(file_index: u64, blocks: &[(RowBound, RowBound)], size: u64) -> DataFileRef {
    let mut offset = FILE_HEADER_LEN as u64;
    let mut entries = Vec::new();
    let mut tablets = BTreeSet::new();
    for (first, last) in blocks {
        tablets.insert(first.tablet_id);
        tablets.insert(last.tablet_id);
        entries.push(MacroBlockEntry {
            offset,
            stored_bytes: size,
            row_count: 10,
            first: first.clone(),
            last: last.clone(),
        });
        offset += size;
    }
    DataFileRef {
        set_id: 0,
        ls_id: 1001,
        file_index,
        path: PathBuf::from(format!("macro_block_data.{file_index}.obbak")),
        size_bytes: offset + FOOTER_LEN as u64,
        block_count: blocks.len() as u64,
        row_count: 10 * blocks.len() as u64,
        tablet_ids: tablets.into_iter().collect(),
        encrypted: false,
        blocks: entries,
    }
}

/// One tablet's keys `0..blocks*100` in blocks of 100 keys.
fn one_tablet_file(blocks: u64) -> DataFileRef {
    let rows: Vec<_> = (0..blocks)
        .map(|block| (row(7, block * 100), row(7, block * 100 + 99)))
        .collect();
    file(1, &rows, 1000)
}

#[test]
fn one_tablet_splits_into_as_many_ranges_as_parts() {
    let files = vec![(4, one_tablet_file(8))];
    assert!(indexed(&files));
    let groups = range_groups(&files, 1001, 4).unwrap();
    assert_eq!(groups.len(), 4);
    // Equal shares: 2 blocks each, cut at the first row of every other block.
    let cuts: Vec<_> = groups
        .iter()
        .map(|g| g.range.clone().unwrap().from)
        .collect();
    assert_eq!(
        cuts,
        vec![
            None,
            Some(row(7, 200)),
            Some(row(7, 400)),
            Some(row(7, 600))
        ]
    );
    for (index, group) in groups.iter().enumerate() {
        // The file's header and footer count with its first block.
        let overhead = if index == 0 { FRAME } else { 0 };
        assert_eq!(group.bytes, 2000 + overhead, "{group:?}");
        assert_eq!(group.spans.len(), 1);
        let span = &group.spans[0];
        assert_eq!(span.from, FILE_HEADER_LEN as u64 + 2000 * index as u64);
        assert_eq!(span.to - span.from, 2000);
    }
    // The one tablet is counted once, in the first range.
    let tablets: Vec<_> = groups.iter().map(|g| g.tablets.clone()).collect();
    assert_eq!(tablets, vec![vec![7], vec![], vec![], vec![]]);
}

#[test]
fn one_part_is_one_open_range_over_every_block() {
    let files = vec![(4, one_tablet_file(3))];
    let groups = range_groups(&files, 1001, 1).unwrap();
    assert_eq!(groups.len(), 1);
    assert_eq!(groups[0].range, Some(RowRange::default()));
    assert_eq!(groups[0].bytes, 3000 + FRAME);
    assert_eq!(
        groups[0].spans,
        vec![BlockSpan {
            set_id: 4,
            file_index: 1,
            from: FILE_HEADER_LEN as u64,
            to: FILE_HEADER_LEN as u64 + 3000,
        }]
    );
}

#[test]
fn an_incremental_block_across_a_cut_is_read_by_both_ranges_after_the_full_set() {
    let full = one_tablet_file(4);
    // One incremental block with keys on both sides of the cut at key 200.
    let inc = file(1, &[(row(7, 150), row(7, 250))], 100);
    let files = vec![(4, full), (5, inc)];
    let groups = range_groups(&files, 1001, 2).unwrap();
    assert_eq!(groups.len(), 2);
    for group in &groups {
        let sets: Vec<u64> = group.spans.iter().map(|span| span.set_id).collect();
        assert_eq!(sets, vec![4, 5], "full set first: {group:?}");
    }
    // The incremental block's bytes count once: in the range holding its first row.
    assert_eq!(groups[0].bytes, 2000 + 100 + 2 * FRAME);
    assert_eq!(groups[1].bytes, 2000);
    let range = groups[1].range.clone().unwrap();
    assert!(!range.contains(7, &150u64.to_be_bytes()));
    assert!(range.contains(7, &200u64.to_be_bytes()));
    assert!(range.contains(9, &[]));
}

#[test]
fn tablets_and_bytes_add_up_over_several_tablets_and_sets() {
    let full = file(
        1,
        &[
            (row(1, 0), row(1, 99)),
            (row(1, 100), row(2, 50)),
            (row(2, 51), row(3, 10)),
            (row(3, 11), row(4, 99)),
            (row(5, 0), row(5, 99)),
        ],
        500,
    );
    let inc = file(1, &[(row(2, 3), row(5, 7))], 300);
    let files = vec![(4, full), (5, inc)];
    for parts in 1..=8 {
        let groups = range_groups(&files, 1001, parts).unwrap();
        assert!(!groups.is_empty() && groups.len() <= parts);
        let bytes: u64 = groups.iter().map(|g| g.bytes).sum();
        let sizes: u64 = files.iter().map(|(_, file)| file.size_bytes).sum();
        assert_eq!(bytes, sizes, "parts {parts}");
        assert_eq!(sizes, 5 * 500 + 300 + 2 * FRAME);
        let mut tablets: Vec<u64> = groups.iter().flat_map(|g| g.tablets.clone()).collect();
        tablets.sort_unstable();
        assert_eq!(tablets, vec![1, 2, 3, 4, 5], "parts {parts}");
        // Chain order within each range; the incremental block is read by every range
        // it overlaps, at least one.
        for group in &groups {
            let sets: Vec<u64> = group.spans.iter().map(|span| span.set_id).collect();
            assert!(sets.windows(2).all(|pair| pair[0] <= pair[1]), "{group:?}");
        }
        assert!(groups
            .iter()
            .any(|g| g.spans.iter().any(|span| span.set_id == 5)));
    }
}

#[test]
fn blocks_starting_at_one_row_cannot_be_cut_apart() {
    let files = vec![(
        4,
        file(1, &[(row(1, 0), row(1, 9)), (row(1, 0), row(1, 9))], 10),
    )];
    let groups = range_groups(&files, 1001, 4).unwrap();
    assert_eq!(groups.len(), 1);
}

#[test]
fn block_entries_that_do_not_describe_the_file_are_bad_metadata() {
    let mut gap = one_tablet_file(3);
    gap.blocks[1].offset += 1;
    let mut short = one_tablet_file(3);
    short.size_bytes += 1;
    let mut missing = one_tablet_file(3);
    missing.blocks.pop();
    let mut reversed = one_tablet_file(3);
    reversed.blocks[0].first = row(8, 0);
    let mut huge = one_tablet_file(3);
    huge.blocks[2].stored_bytes = u64::MAX;
    for bad in [gap, short, missing, reversed, huge] {
        let error = range_groups(&[(4, bad)], 1001, 2).unwrap_err();
        assert!(
            matches!(error, BackupError::BadMetadata { .. }),
            "{error:?}"
        );
    }
}

#[test]
fn a_file_without_block_entries_is_not_indexed() {
    let mut bare = one_tablet_file(2);
    bare.blocks.clear();
    assert!(!indexed(&[(4, one_tablet_file(2)), (5, bare)]));
}

#[test]
fn a_file_without_blocks_is_counted_in_the_first_range() {
    let files = vec![(4, one_tablet_file(4)), (5, file(1, &[], 0))];
    assert!(indexed(&files));
    let groups = range_groups(&files, 1001, 2).unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0].bytes, 2000 + 2 * FRAME);
    assert_eq!(groups[1].bytes, 2000);
    assert!(groups
        .iter()
        .all(|g| g.spans.iter().all(|span| span.set_id == 4)));
}

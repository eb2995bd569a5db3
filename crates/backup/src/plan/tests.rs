//! Unit tests of the planner: set chains, piece choice, targets and windows.
use super::*;
use crate::meta::PieceStatus;

fn set(
    id: u64,
    backup_type: BackupType,
    prev_full: u64,
    prev_inc: u64,
    start: u64,
    min: u64,
) -> BackupSetInfo {
    BackupSetInfo {
        backup_set_id: id,
        backup_type,
        prev_full_backup_set_id: prev_full,
        prev_inc_backup_set_id: prev_inc,
        start_replay_scn: Scn(start),
        min_restore_scn: Scn(min),
        status: SetStatus::Success,
        file_status: FileStatus::Available,
        encryption: None,
        output_bytes: 0,
        tenant_id: 1002,
        tenant_name: "t".to_string(),
        cluster_version: "4.2.1.0".to_string(),
    }
}

fn piece(round: u64, id: u64, start: u64, checkpoint: u64, end: u64) -> PieceInfo {
    PieceInfo {
        dest_id: 1,
        round_id: round,
        piece_id: id,
        start_scn: Scn(start),
        checkpoint_scn: Scn(checkpoint),
        end_scn: Scn(end),
        status: PieceStatus::Frozen,
        file_status: FileStatus::Available,
        output_bytes: 0,
    }
}

fn ids(
    choice: &SourceChoice,
    sets: &[BackupSetInfo],
    pieces: &[PieceInfo],
) -> (Vec<u64>, Vec<u64>) {
    (
        choice
            .set_indices
            .iter()
            .map(|&i| sets[i].backup_set_id)
            .collect(),
        choice
            .piece_indices
            .iter()
            .map(|&i| pieces[i].piece_id)
            .collect(),
    )
}

#[test]
fn table_of_choices() {
    use BackupType::{Full, Incremental as Inc};
    let sets = vec![
        set(1, Full, 0, 0, 100, 110),
        set(2, Inc, 1, 1, 200, 210),
        set(3, Inc, 1, 2, 300, 310),
        set(4, Full, 0, 0, 400, 410),
    ];
    let pieces = vec![
        piece(1, 1, 0, 250, 250),
        piece(1, 2, 250, 500, 500),
        piece(1, 3, 500, 550, 600),
    ];
    type Expected = std::result::Result<(Vec<u64>, Vec<u64>), &'static str>;
    let cases: Vec<(u64, Expected)> = vec![
        (109, Err("no full backup set can be used")),
        (110, Ok((vec![1], vec![1]))),
        (250, Ok((vec![1, 2], vec![1]))),
        (251, Ok((vec![1, 2], vec![1, 2]))),
        (320, Ok((vec![1, 2, 3], vec![2]))),
        (550, Ok((vec![4], vec![2, 3]))),
        (551, Err("no enough log, maximum restorable time is")),
    ];
    for (target, expected) in cases {
        let result = choose_sources(&sets, &pieces, Scn(target));
        match (result, expected) {
            (Ok(choice), Ok(want)) => {
                assert_eq!(ids(&choice, &sets, &pieces), want, "target {target}")
            }
            (Err(err), Err(want)) => {
                assert!(err.to_string().starts_with(want), "target {target}: {err}")
            }
            (got, want) => panic!("target {target}: got {got:?}, want {want:?}"),
        }
    }
    assert_eq!(
        compute_windows(&sets, &pieces),
        vec![RestoreWindow {
            start: Scn(110),
            end: Scn(550)
        }]
    );
}

#[test]
fn no_full_set_exists_versus_none_usable_for_the_target() {
    use BackupType::{Full, Incremental as Inc};
    let pieces = vec![piece(1, 1, 0, 1000, 1000)];
    let no_full = |sets: &[BackupSetInfo]| {
        let err = choose_sources(sets, &pieces, Scn(900)).unwrap_err();
        assert!(matches!(err, BackupError::NoFullBackupSetExists), "{err}");
        assert_eq!(err.to_string(), "no full backup set exists");
        assert!(compute_windows(sets, &pieces).is_empty());
    };
    // No set at all.
    no_full(&[]);
    // The only FULL set is DELETED: its INCREMENTAL is usable but cannot chain.
    let mut deleted_full = vec![set(1, Full, 0, 0, 100, 110), set(2, Inc, 1, 1, 200, 210)];
    deleted_full[0].file_status = FileStatus::Deleted;
    no_full(&deleted_full);
    // The only FULL set FAILED.
    let mut failed_full = vec![set(1, Full, 0, 0, 100, 110)];
    failed_full[0].status = SetStatus::Failed;
    no_full(&failed_full);
    // Usable FULL sets exist, but all after the target: the minimum is the earliest
    // usable FULL, not the deleted one before it.
    let mut late = vec![
        set(1, Full, 0, 0, 100, 110),
        set(2, Full, 0, 0, 300, 310),
        set(3, Full, 0, 0, 500, 510),
    ];
    late[0].file_status = FileStatus::Deleted;
    let err = choose_sources(&late, &pieces, Scn(200)).unwrap_err();
    assert!(
        matches!(
            err,
            BackupError::NoFullBackupSet {
                min_restorable: Scn(310)
            }
        ),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "no full backup set can be used to restore to given time, minimum restorable time is {}",
            Scn(310)
        )
    );
}

#[test]
fn visited_sets_include_the_stopping_set_and_skip_unlisted_ones() {
    use BackupType::{Full, Incremental as Inc};
    let mut sets = vec![
        set(1, Full, 0, 0, 100, 110),
        set(2, Inc, 1, 1, 200, 210),
        set(3, Inc, 1, 1, 300, 310),
        set(4, Full, 0, 0, 400, 410),
        set(5, Full, 0, 0, 500, 510),
        set(6, Inc, 5, 5, 600, 610),
    ];
    sets[1].status = SetStatus::Failed;
    sets[3].file_status = FileStatus::Deleted;
    // Given out of order: the scan goes by id.
    sets.reverse();
    let visited = |target: u64| -> Vec<u64> {
        visited_sets(&sets, Scn(target))
            .into_iter()
            .map(|index| sets[index].backup_set_id)
            .collect()
    };
    // Set 1 stops the scan and is visited; nothing after it is.
    assert_eq!(visited(100), vec![1]);
    // The FAILED set 2 is never visited; the DELETED set 4 is; set 5 stops the scan.
    assert_eq!(visited(450), vec![1, 3, 4, 5]);
    assert_eq!(visited(10_000), vec![1, 3, 4, 5, 6]);
    // The kept chain is always among the visited sets.
    let pieces = vec![piece(1, 1, 0, 10_000, 10_000)];
    for target in [110, 310, 450, 510, 610, 10_000] {
        let choice = choose_sources(&sets, &pieces, Scn(target)).unwrap();
        let seen = visited_sets(&sets, Scn(target));
        assert!(
            choice.set_indices.iter().all(|index| seen.contains(index)),
            "target {target}"
        );
    }
    let choice = choose_sources(&sets, &pieces, Scn(450)).unwrap();
    assert_eq!(ids(&choice, &sets, &pieces).0, vec![1, 3]);
}

#[test]
fn zone_less_target_uses_the_given_zone() {
    let pieces = vec![piece(1, 1, 0, 10, 10)];
    let target = RestoreTarget::Timestamp("2024-04-06 14:16:02".to_string());
    let plus_eight = target
        .resolve_in_zone(&pieces, UtcOffset::OCEANBASE_DEFAULT)
        .unwrap();
    let utc = target.resolve_in_zone(&pieces, UtcOffset::UTC).unwrap();
    assert_eq!(plus_eight, Scn(1_712_384_162_000_000_000));
    assert_eq!(utc.as_u64() - plus_eight.as_u64(), 8 * 3600 * 1_000_000_000);
    let exact = RestoreTarget::Timestamp("2024-04-06T14:16:02+08:00".to_string());
    assert_eq!(
        exact.resolve_in_zone(&pieces, UtcOffset::UTC).unwrap(),
        plus_eight
    );
    assert_eq!(
        RestoreTarget::Latest
            .resolve_in_zone(&pieces, UtcOffset::UTC)
            .unwrap(),
        Scn(10)
    );
}

#[test]
fn restart_after_overlap_and_gap_windows() {
    use BackupType::Full;
    // Round 1 stopped at 300 with the piece's planned end 400 kept; round 2 starts at 350.
    let pieces = vec![piece(1, 1, 0, 300, 400), piece(2, 2, 350, 600, 600)];
    let sets = vec![set(1, Full, 0, 0, 100, 110), set(2, Full, 0, 0, 360, 370)];
    // Chain of set 2 starts at 360: piece 1 is dropped by the restart at piece 2.
    let choice = choose_sources(&sets, &pieces, Scn(500)).unwrap();
    assert_eq!(ids(&choice, &sets, &pieces), (vec![2], vec![2]));
    // Set 1 alone reaches 300 only: before round 2 starts, the scan ends at piece 1.
    let err = choose_sources(&sets, &pieces, Scn(340)).unwrap_err();
    assert!(
        matches!(
            err,
            BackupError::NoEnoughLogUntil {
                max_restorable: Scn(300)
            }
        ),
        "{err}"
    );
    // After round 2 starts, piece 2 restarts the scan and cannot cover set 1's start.
    let err = choose_sources(&sets, &pieces, Scn(355)).unwrap_err();
    assert!(matches!(err, BackupError::NoEnoughLog { .. }), "{err}");
    assert_eq!(
        compute_windows(&sets, &pieces),
        vec![
            RestoreWindow {
                start: Scn(110),
                end: Scn(300)
            },
            RestoreWindow {
                start: Scn(370),
                end: Scn(600)
            },
        ]
    );
}

#[test]
fn preview_item_json_is_ocp_shaped() {
    let item = RestorePreviewItem {
        backup_dest: "file:///b/data/backup_set_24_full".to_string(),
        backup_id: 24,
        backup_type: PreviewBackupType::BackupSet,
        copy_id: 0,
    };
    let json = serde_json::to_string(&item).unwrap();
    assert_eq!(
        json,
        r#"{"backupDest":"file:///b/data/backup_set_24_full","backupId":"24","backupType":"BACKUP_SET","copyId":"0"}"#
    );
    let numeric = r#"{"backupDest":"x","backupId":38,"backupType":"BACKUP_PIECE","copyId":0}"#;
    assert_eq!(
        serde_json::from_str::<RestorePreviewItem>(numeric)
            .unwrap()
            .backup_id,
        38
    );
}

#[test]
fn target_from_params() {
    assert_eq!(
        RestoreTarget::from_params(Some(0), Some("")).unwrap(),
        RestoreTarget::Latest
    );
    assert_eq!(
        RestoreTarget::from_params(Some(5), None).unwrap(),
        RestoreTarget::Scn(Scn(5))
    );
    assert!(RestoreTarget::from_params(Some(5), Some("2024-01-01T00:00:00Z")).is_err());
}

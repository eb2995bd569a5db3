//! Table-driven planner scenarios over generated backups: each case asserts the exact
//! chosen sets and pieces, or the exact error.

mod common;

use common::{fixture, gap, Fixture, HOUR};
use obrestore_backup::generate::sets_from_pattern;
use obrestore_backup::meta::{read_meta, write_meta};
use obrestore_backup::{
    plan_restore, BackupError, DataStore, FormatInfo, PreviewBackupType, RestoreTarget,
    RestoreWindow, Scn, UtcOffset,
};

enum Want {
    Chosen(Vec<u64>, Vec<u64>),
    Error(String),
}

fn check(fixture: &Fixture, name: &str, target: RestoreTarget, passwords: &[&str], want: Want) {
    let result = fixture.plan(target, passwords);
    match (result, want) {
        (Ok(plan), Want::Chosen(sets, pieces)) => {
            let got_sets: Vec<u64> = plan.sets.iter().map(|set| set.info.backup_set_id).collect();
            let got_pieces: Vec<u64> = plan
                .pieces
                .iter()
                .map(|piece| piece.info.piece_id)
                .collect();
            assert_eq!((got_sets, got_pieces), (sets, pieces), "case '{name}'");
        }
        (Err(err), Want::Error(message)) => assert_eq!(err.to_string(), message, "case '{name}'"),
        (Ok(plan), Want::Error(message)) => {
            panic!("case '{name}': expected '{message}', got plan {plan:?}")
        }
        (Err(err), Want::Chosen(..)) => panic!("case '{name}': expected a plan, got '{err}'"),
    }
}

fn chosen(sets: &[u64], pieces: &[u64]) -> Want {
    Want::Chosen(sets.to_vec(), pieces.to_vec())
}

#[test]
fn default_layout_scenarios() {
    let f = fixture(|_| {});
    let set1 = f.summary.set(1).unwrap().clone();
    let last_checkpoint = f.summary.end_scn;
    assert_eq!(last_checkpoint, f.at_hours(48.0));
    assert_eq!(f.summary.pieces.len(), 8);
    let cases = vec![
        ("latest", RestoreTarget::Latest, chosen(&[4, 5], &[7, 8])),
        ("inside piece 4, chain 1+2", RestoreTarget::Scn(f.at_hours(20.0)), chosen(&[1, 2], &[3, 4])),
        ("two full sets: the second resets the chain", RestoreTarget::Scn(f.at_hours(35.0)), chosen(&[4], &[6])),
        ("full chain of three", RestoreTarget::Scn(f.at_hours(25.0)), chosen(&[1, 2, 3], &[5])),
        (
            "exactly the first min_restore_scn",
            RestoreTarget::Scn(set1.min_restore_scn),
            chosen(&[1], &[2]),
        ),
        (
            "before the first full set",
            RestoreTarget::Scn(f.at_hours(8.0)),
            Want::Error(format!(
                "no full backup set can be used to restore to given time, minimum restorable time is {}",
                set1.min_restore_scn
            )),
        ),
        (
            "after the last checkpoint",
            RestoreTarget::Scn(Scn(last_checkpoint.as_u64() + 1)),
            Want::Error(format!("no enough log, maximum restorable time is {last_checkpoint}")),
        ),
        (
            "timestamp converts exactly",
            RestoreTarget::Timestamp(f.at_hours(20.0).to_rfc3339()),
            chosen(&[1, 2], &[3, 4]),
        ),
    ];
    for (name, target, want) in cases {
        check(&f, name, target, &[], want);
    }
}

#[test]
fn default_layout_latest_plan_preview_and_window() {
    let f = fixture(|_| {});
    let set1 = f.summary.set(1).unwrap().clone();
    let last_checkpoint = f.summary.end_scn;
    let plan = f.plan(RestoreTarget::Latest, &[]).unwrap();
    assert_eq!(plan.restore_scn, last_checkpoint);
    assert_eq!(
        plan.restore_start_scn,
        f.summary.set(5).unwrap().start_replay_scn
    );
    let items = plan.preview_items();
    let dests: Vec<(String, u64, PreviewBackupType)> = items
        .iter()
        .map(|item| (item.backup_dest.clone(), item.backup_id, item.backup_type))
        .collect();
    let data = f.data.uri();
    let archive = f.archive.uri();
    assert_eq!(
        dests,
        vec![
            (
                format!("{data}/backup_set_4_full"),
                4,
                PreviewBackupType::BackupSet
            ),
            (
                format!("{data}/backup_set_5_inc"),
                5,
                PreviewBackupType::BackupSet
            ),
            (
                format!("{archive}/piece_d1r1p7"),
                7,
                PreviewBackupType::BackupPiece
            ),
            (
                format!("{archive}/piece_d1r1p8"),
                8,
                PreviewBackupType::BackupPiece
            ),
        ]
    );
    assert_eq!(
        obrestore_backup::restore_windows(&f.data, &f.archive).unwrap(),
        vec![RestoreWindow {
            start: set1.min_restore_scn,
            end: last_checkpoint
        }]
    );
}

#[test]
fn failed_set_is_skipped_and_the_next_inc_chains_to_the_last_success() {
    let f = fixture(|config| config.sets[3].fail = true);
    let set5 = f.summary.set(5).unwrap();
    assert_eq!(
        (set5.prev_full_backup_set_id, set5.prev_inc_backup_set_id),
        (1, 3)
    );
    check(
        &f,
        "failed full",
        RestoreTarget::Latest,
        &[],
        chosen(&[1, 2, 3, 5], &[7, 8]),
    );
    let listing: Vec<String> = std::fs::read_dir(f.summary.data_dir.join("backup_sets"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.starts_with("backup_set_4_"))
        .collect();
    assert_eq!(listing.len(), 2);
    assert!(
        listing
            .iter()
            .any(|name| name.starts_with("backup_set_4_full_end_failed_")),
        "{listing:?}"
    );
}

#[test]
fn deleted_full_set_breaks_the_following_incremental() {
    let f = fixture(|config| config.sets[3].delete = true);
    check(
        &f,
        "deleted full 4: inc 5 cannot join",
        RestoreTarget::Latest,
        &[],
        chosen(&[1, 2, 3], &[5, 6, 7, 8]),
    );
    assert!(!f
        .summary
        .data_dir
        .join("backup_set_4_full/logstream_1001")
        .exists());
}

#[test]
fn deleted_incremental_breaks_the_chain_after_it() {
    let f = fixture(|config| config.sets[1].delete = true);
    check(
        &f,
        "inc 3 needs deleted inc 2",
        RestoreTarget::Scn(f.at_hours(30.0)),
        &[],
        chosen(&[1], &[2, 3, 4, 5]),
    );
    check(
        &f,
        "later full repairs it",
        RestoreTarget::Latest,
        &[],
        chosen(&[4, 5], &[7, 8]),
    );
}

#[test]
fn archive_gap_restarts_the_piece_scan() {
    // Round 1 stops at 26.4 h (piece 5 keeps its planned end 30 h), round 2 starts at
    // 27.4 h; a full set at 28.8 h starts inside the overlap.
    let f = fixture(|config| {
        config.sets = sets_from_pattern("FF").unwrap();
        config.sets[0].at = 1.0 / 6.0;
        config.sets[1].at = 0.6;
        config.gaps = vec![gap(0.55, HOUR)];
    });
    let piece5 = f.summary.piece(5).unwrap().clone();
    let piece6 = f.summary.piece(6).unwrap().clone();
    assert_eq!((piece5.round_id, piece6.round_id), (1, 2));
    assert_eq!(piece5.end_scn, f.at_hours(30.0));
    assert!(piece5.checkpoint_scn < piece6.start_scn && piece6.start_scn < piece5.end_scn);
    let cases = vec![
        (
            "restart drops piece 5",
            RestoreTarget::Latest,
            chosen(&[2], &[6, 7, 8, 9]),
        ),
        (
            "target in the gap, chain of set 1",
            RestoreTarget::Scn(Scn(piece5.checkpoint_scn.as_u64() + 1)),
            Want::Error(format!(
                "no enough log, maximum restorable time is {}",
                piece5.checkpoint_scn
            )),
        ),
        (
            "after round 2 started, set 1's logs are not contiguous",
            RestoreTarget::Scn(Scn(piece6.start_scn.as_u64() + 1)),
            no_log(&f, 1, 6, Some((5, 6))),
        ),
        (
            "before the gap",
            RestoreTarget::Scn(f.at_hours(20.0)),
            chosen(&[1], &[2, 3, 4]),
        ),
    ];
    for (name, target, want) in cases {
        check(&f, name, target, &[], want);
    }
    let set1 = f.summary.set(1).unwrap();
    let set2 = f.summary.set(2).unwrap();
    assert_eq!(
        obrestore_backup::restore_windows(&f.data, &f.archive).unwrap(),
        vec![
            RestoreWindow {
                start: set1.min_restore_scn,
                end: piece5.checkpoint_scn
            },
            RestoreWindow {
                start: set2.min_restore_scn,
                end: f.summary.end_scn
            },
        ]
    );
}

#[test]
fn long_gap_leaves_no_log_for_the_old_chain() {
    let f = fixture(|config| {
        config.sets = sets_from_pattern("F").unwrap();
        config.gaps = vec![gap(0.7, 8 * HOUR)];
    });
    check(
        &f,
        "latest",
        RestoreTarget::Latest,
        &[],
        no_log(&f, 1, 7, Some((6, 7))),
    );
}

#[test]
fn deleted_piece_is_not_used() {
    let f = fixture(|config| config.delete_pieces = vec![7]);
    check(
        &f,
        "piece 7 deleted",
        RestoreTarget::Latest,
        &[],
        no_log(&f, 5, 8, None),
    );
    check(
        &f,
        "before piece 7",
        RestoreTarget::Scn(f.at_hours(35.0)),
        &[],
        chosen(&[4], &[6]),
    );
}

/// The default layout with sets 1 and 4 encrypted (`pw-one`, `pw-four`).
fn encrypted_fixture() -> Fixture {
    fixture(|config| {
        config.sets[3].password = Some("pw-four".to_string());
        config.sets[0].password = Some("pw-one".to_string());
    })
}

#[test]
fn encrypted_sets_need_the_right_password() {
    let f = encrypted_fixture();
    let invalid = || Want::Error("backup set password is invalid".to_string());
    let cases: Vec<(&str, RestoreTarget, Vec<&str>, Want)> = vec![
        (
            // The scan visits set 1 on its way to set 4, and OceanBase checks every
            // visited set: the kept chain's password alone is not enough.
            "right password for the kept chain only",
            RestoreTarget::Latest,
            vec!["pw-four"],
            invalid(),
        ),
        (
            "one of several, still missing set 1's",
            RestoreTarget::Latest,
            vec!["x", "pw-four"],
            invalid(),
        ),
        (
            "right passwords of every visited set",
            RestoreTarget::Latest,
            vec!["pw-one", "pw-four"],
            chosen(&[4, 5], &[7, 8]),
        ),
        (
            "among others, in any order",
            RestoreTarget::Latest,
            vec!["pw-four", "x", "pw-one"],
            chosen(&[4, 5], &[7, 8]),
        ),
        (
            "wrong password",
            RestoreTarget::Latest,
            vec!["pw-one"],
            invalid(),
        ),
        ("missing password", RestoreTarget::Latest, vec![], invalid()),
        (
            "older chain needs set 1's",
            RestoreTarget::Scn(f.at_hours(20.0)),
            vec!["pw-four"],
            invalid(),
        ),
        (
            // The scan stops at set 3 (after 20 h): set 4 is never visited.
            "older chain",
            RestoreTarget::Scn(f.at_hours(20.0)),
            vec!["pw-one"],
            chosen(&[1, 2], &[3, 4]),
        ),
        (
            // Set 1 stops the scan, but OceanBase checks its password before the stop
            // test, so the password error comes before the missing full set.
            "before set 1 without its password",
            RestoreTarget::Scn(f.at_hours(8.0)),
            vec![],
            invalid(),
        ),
        (
            "before set 1 with its password",
            RestoreTarget::Scn(f.at_hours(8.0)),
            vec!["pw-one"],
            Want::Error(format!(
                "no full backup set can be used to restore to given time, minimum restorable time is {}",
                f.summary.set(1).unwrap().min_restore_scn
            )),
        ),
    ];
    for (name, target, passwords, want) in cases {
        check(&f, name, target, &passwords, want);
    }
}

#[test]
fn an_encrypted_set_stores_no_password_and_its_files_need_the_key() {
    let f = encrypted_fixture();
    let info = f.summary.set(4).unwrap();
    let encryption = info.encryption.as_ref().unwrap();
    let info_text = std::fs::read_to_string(
        f.summary
            .data_dir
            .join("backup_set_4_full/single_backup_set_info.obbak"),
    )
    .unwrap();
    assert!(!info_text.contains("pw-four"));
    assert_eq!(encryption.algorithm, "AES-256-GCM");
    let file = f.data.data_files(info, 1001).unwrap().remove(0);
    assert!(file.encrypted);
    let err = f.data.read_data_file(&file, None).err().unwrap();
    assert!(
        matches!(err, BackupError::KeyRequired { set_id: 4 }),
        "{err}"
    );
}

#[test]
fn every_visited_set_needs_its_password_not_only_the_kept_ones() {
    // Set 3 (INC at 24 h) is encrypted; the chains around it are not.
    let f = fixture(|config| config.sets[2].password = Some("pw-three".to_string()));
    let invalid = || Want::Error("backup set password is invalid".to_string());
    let cases: Vec<(&str, RestoreTarget, Vec<&str>, Want)> = vec![
        (
            "set 3 stops the scan at 20 h and is visited first",
            RestoreTarget::Scn(f.at_hours(20.0)),
            vec![],
            invalid(),
        ),
        (
            "with set 3's password",
            RestoreTarget::Scn(f.at_hours(20.0)),
            vec!["pw-three"],
            chosen(&[1, 2], &[3, 4]),
        ),
        (
            "set 3 is visited on the way to set 4 but not kept",
            RestoreTarget::Scn(f.at_hours(35.0)),
            vec![],
            invalid(),
        ),
        (
            "wrong password for the visited set 3",
            RestoreTarget::Latest,
            vec!["pw-one"],
            invalid(),
        ),
        (
            "latest with set 3's password",
            RestoreTarget::Latest,
            vec!["pw-three"],
            chosen(&[4, 5], &[7, 8]),
        ),
        (
            "the scan stops at set 1 before set 3",
            RestoreTarget::Scn(f.at_hours(9.0)),
            vec![],
            chosen(&[1], &[2]),
        ),
    ];
    for (name, target, passwords, want) in cases {
        check(&f, name, target, &passwords, want);
    }
    // The plan holds keys of kept encrypted sets only.
    let plan = f.plan(RestoreTarget::Latest, &["pw-three"]).unwrap();
    assert!(plan.key(3).is_none());
    let plan = f
        .plan(RestoreTarget::Scn(f.at_hours(25.0)), &["pw-three"])
        .unwrap();
    assert!(plan.key(3).is_some());
}

#[test]
fn failed_encrypted_set_is_not_visited_but_a_deleted_one_is() {
    // OceanBase lists only sets with an end_success placeholder: a FAILED set is never read.
    let failed = fixture(|config| {
        config.sets[3].fail = true;
        config.sets[3].password = Some("pw-four".to_string());
    });
    check(
        &failed,
        "failed encrypted set 4 needs no password",
        RestoreTarget::Latest,
        &[],
        chosen(&[1, 2, 3, 5], &[7, 8]),
    );
    // A DELETED set is listed and read, so its password is checked although it is skipped.
    let deleted = fixture(|config| {
        config.sets[3].delete = true;
        config.sets[3].password = Some("pw-four".to_string());
    });
    check(
        &deleted,
        "deleted encrypted set 4 without its password",
        RestoreTarget::Latest,
        &[],
        Want::Error("backup set password is invalid".to_string()),
    );
    check(
        &deleted,
        "deleted encrypted set 4 with its password",
        RestoreTarget::Latest,
        &["pw-four"],
        chosen(&[1, 2, 3], &[5, 6, 7, 8]),
    );
}

#[test]
fn no_full_backup_set_exists_versus_none_usable_for_the_time() {
    let exists = || Want::Error("no full backup set exists".to_string());
    // The only FULL set is deleted; its INCREMENTAL is still there.
    let deleted = fixture(|config| {
        config.sets = sets_from_pattern("FI").unwrap();
        config.sets[0].delete = true;
    });
    // The only set failed.
    let failed = fixture(|config| {
        config.sets = sets_from_pattern("F").unwrap();
        config.sets[0].fail = true;
    });
    // No backup set at all.
    let empty = fixture(|config| config.sets = Vec::new());
    for (name, f) in [
        ("deleted", &deleted),
        ("failed", &failed),
        ("empty", &empty),
    ] {
        for target in [RestoreTarget::Latest, RestoreTarget::Scn(f.at_hours(1.0))] {
            check(f, name, target, &[], exists());
        }
        assert_eq!(
            obrestore_backup::restore_windows(&f.data, &f.archive).unwrap(),
            Vec::new(),
            "{name}"
        );
    }
    // Usable FULL sets exist, but the target is before all of them.
    let f = fixture(|_| {});
    check(
        &f,
        "full sets exist",
        RestoreTarget::Scn(f.at_hours(1.0)),
        &[],
        Want::Error(format!(
            "no full backup set can be used to restore to given time, minimum restorable time is {}",
            f.summary.set(1).unwrap().min_restore_scn
        )),
    );
}

/// `text` without an offset, as the wall clock in `zone` shows `scn`.
fn wall_clock(scn: Scn, zone: &str) -> String {
    let offset = zone.parse::<UtcOffset>().unwrap().to_fixed_offset();
    scn.to_utc()
        .with_timezone(&offset)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

#[test]
fn zone_less_timestamps_are_read_in_the_backups_time_zone() {
    let east = fixture(|_| {});
    let west = fixture(|config| config.time_zone = "-05:00".parse().unwrap());
    assert_eq!(east.data.time_zone().to_string(), "+08:00");
    assert_eq!(west.data.time_zone().to_string(), "-05:00");
    for (f, zone) in [(&east, "+08:00"), (&west, "-05:00")] {
        for dir in [&f.summary.data_dir, &f.summary.archive_dir] {
            let text = std::fs::read_to_string(dir.join("format.obbak")).unwrap();
            assert!(
                text.contains(&format!("\"time_zone\": \"{zone}\"")),
                "{text}"
            );
        }
    }
    // 20 h after the start is 04:00 the next day on a +08:00 wall clock.
    let text = wall_clock(east.at_hours(20.0), "+08:00");
    assert_eq!(text, "2024-04-02 04:00:00");
    let east_plan = east
        .plan(RestoreTarget::Timestamp(text.clone()), &[])
        .unwrap();
    let west_plan = west
        .plan(RestoreTarget::Timestamp(text.clone()), &[])
        .unwrap();
    // The same wall-clock text is 13 h later in the -05:00 backup.
    assert_eq!(east_plan.restore_scn, east.at_hours(20.0));
    assert_eq!(west_plan.restore_scn, west.at_hours(33.0));
    check(
        &east,
        "+08:00 backup",
        RestoreTarget::Timestamp(text.clone()),
        &[],
        chosen(&[1, 2], &[3, 4]),
    );
    check(
        &west,
        "-05:00 backup",
        RestoreTarget::Timestamp(text),
        &[],
        chosen(&[4], &[6]),
    );
    // An RFC 3339 timestamp carries its offset: both backups give the same SCN.
    let exact = east.at_hours(20.0).to_rfc3339();
    for f in [&east, &west] {
        let plan = f
            .plan(RestoreTarget::Timestamp(exact.clone()), &[])
            .unwrap();
        assert_eq!(plan.restore_scn, f.at_hours(20.0));
    }
    // In the -05:00 backup, the -05:00 wall clock of 20 h gives 20 h.
    let west_text = wall_clock(west.at_hours(20.0), "-05:00");
    let plan = west.plan(RestoreTarget::Timestamp(west_text), &[]).unwrap();
    assert_eq!(plan.restore_scn, west.at_hours(20.0));
}

#[test]
fn format_without_time_zone_reads_as_plus_eight() {
    // A backup written before `time_zone` existed: rewrite format.obbak without the field.
    let f = fixture(|config| config.time_zone = "-05:00".parse().unwrap());
    let path = f.summary.data_dir.join("format.obbak");
    let mut format: FormatInfo = read_meta(&path).unwrap();
    format.time_zone = None;
    write_meta(&path, &format).unwrap();
    assert!(!std::fs::read_to_string(&path)
        .unwrap()
        .contains("time_zone"));
    let data = DataStore::open(&f.summary.data_dir).unwrap();
    assert_eq!(data.format().time_zone, None);
    assert_eq!(data.time_zone(), UtcOffset::OCEANBASE_DEFAULT);
    let text = wall_clock(f.at_hours(20.0), "+08:00");
    let plan = plan_restore(
        &data,
        &f.archive,
        &RestoreTarget::Timestamp(text.clone()),
        &[],
    )
    .unwrap();
    assert_eq!(plan.restore_scn, f.at_hours(20.0));
    // The recorded zone was -05:00: with the field, the same text meant 33 h.
    let plan = f.plan(RestoreTarget::Timestamp(text), &[]).unwrap();
    assert_eq!(plan.restore_scn, f.at_hours(33.0));
}

#[test]
fn corrupted_block_names_file_and_offset() {
    let f = fixture(|_| {});
    let set = f.summary.set(4).unwrap();
    let files: Vec<_> = f
        .summary
        .log_stream_ids
        .iter()
        .flat_map(|&ls_id| f.data.data_files(set, ls_id).unwrap())
        .collect();
    let file = files
        .iter()
        .find(|file| file.block_count >= 2)
        .expect("a file with several blocks");
    // Flip one payload byte of the second block.
    let mut bytes = std::fs::read(&file.path).unwrap();
    let first_len = u32::from_le_bytes(bytes[36..40].try_into().unwrap()) as usize;
    let second_block = 32 + 48 + first_len;
    bytes[second_block + 48 + 5] ^= 0x01;
    std::fs::write(&file.path, &bytes).unwrap();
    let mut blocks = f.data.read_data_file(file, None).unwrap();
    assert!(blocks.next().unwrap().is_ok());
    let err = blocks.next().unwrap().unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&format!(
            "checksum mismatch in '{}' at offset {second_block}: block payload",
            file.path.display()
        )),
        "{message}"
    );
    assert!(blocks.next().is_none());
}

#[test]
fn corrupted_log_block_fails_the_log_iterator() {
    let f = fixture(|_| {});
    let plan = f.plan(RestoreTarget::Latest, &[]).unwrap();
    let files = f.archive.log_files(&plan.pieces[0].info, 1001).unwrap();
    let mut bytes = std::fs::read(&files[0].path).unwrap();
    bytes[32 + 48 + 1] ^= 0x80;
    std::fs::write(&files[0].path, &bytes).unwrap();
    let results: Vec<_> = f
        .archive
        .log_entries(
            &plan.piece_infos(),
            1001,
            plan.restore_start_scn,
            plan.restore_scn,
        )
        .unwrap()
        .collect();
    let err = results.last().unwrap().as_ref().unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "checksum mismatch in '{}' at offset 32: block payload expected {:08x}, computed {:08x}",
            files[0].path.display(),
            match err {
                BackupError::ChecksumMismatch { expected, .. } => *expected,
                _ => 0,
            },
            match err {
                BackupError::ChecksumMismatch { actual, .. } => *actual,
                _ => 0,
            }
        )
    );
}

#[test]
fn truncated_info_file_is_a_typed_error() {
    let f = fixture(|_| {});
    let path = f
        .summary
        .data_dir
        .join("backup_set_3_inc/single_backup_set_info.obbak");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = f.plan(RestoreTarget::Latest, &[]).unwrap_err();
    assert!(matches!(err, BackupError::BadMetadata { .. }), "{err}");
    assert!(
        err.to_string().starts_with(&format!(
            "bad metadata in '{}': invalid JSON",
            f.data
                .root()
                .join("backup_set_3_inc/single_backup_set_info.obbak")
                .display()
        )),
        "{err}"
    );
}

#[test]
fn truncated_data_file_is_a_typed_error() {
    let f = fixture(|_| {});
    let set = f.summary.set(4).unwrap();
    let file = f.data.data_files(set, 1002).unwrap().remove(0);
    let bytes = std::fs::read(&file.path).unwrap();
    std::fs::write(&file.path, &bytes[..bytes.len() - 40]).unwrap();
    let results: Vec<_> = f.data.read_data_file(&file, None).unwrap().collect();
    let err = results.last().unwrap().as_ref().unwrap_err();
    assert!(matches!(err, BackupError::Truncated { .. }), "{err}");
    assert!(
        err.to_string().contains(&file.path.display().to_string()),
        "{err}"
    );
}

#[test]
fn wrong_destination_kinds_are_refused() {
    let f = fixture(|_| {});
    let err = obrestore_backup::ArchiveStore::open(&f.summary.data_dir).unwrap_err();
    assert!(
        err.to_string()
            .contains("dest_type Data, expected ArchiveLog"),
        "{err}"
    );
    let err = obrestore_backup::DataStore::open(&f.summary.tenant_dir).unwrap_err();
    assert!(matches!(err, BackupError::NotFound { .. }), "{err}");
}

#[test]
fn set_in_progress_without_info_is_skipped_but_a_finished_one_is_an_error() {
    let f = fixture(|_| {});
    let sets_dir = f.summary.data_dir.join("backup_sets");
    std::fs::write(sets_dir.join("backup_set_6_inc_start.obbak"), b"{}").unwrap();
    let ids: Vec<u64> = f
        .data
        .list_sets()
        .unwrap()
        .iter()
        .map(|set| set.backup_set_id)
        .collect();
    assert_eq!(ids, vec![1, 2, 3, 4, 5]);
    std::fs::write(
        sets_dir.join("backup_set_6_inc_end_success_20240403T000000.obbak"),
        b"{}",
    )
    .unwrap();
    let err = f.data.list_sets().unwrap_err();
    assert!(matches!(err, BackupError::NotFound { .. }), "{err}");
    assert!(
        err.to_string()
            .ends_with("backup_set_6_inc/single_backup_set_info.obbak'"),
        "{err}"
    );
}

/// OceanBase's "no enough log for restore" with the detail naming the SCNs and pieces:
/// the replay from set `set`'s start cannot begin with piece `first`; `broken` is where
/// the earlier chain of pieces broke.
fn no_log(f: &common::Fixture, set: u64, first: u64, broken: Option<(u64, u64)>) -> Want {
    let piece = |id: u64| f.summary.piece(id).unwrap();
    let start = f.summary.set(set).unwrap().start_replay_scn.as_u64();
    let mut message = format!(
        "no enough log for restore: the replay starts at scn {start}, but piece {first} (round {}) starts at scn {}",
        piece(first).round_id,
        piece(first).start_scn.as_u64()
    );
    if let Some((earlier, later)) = broken {
        message.push_str(&format!(
            "; piece {earlier} (round {}) ends at scn {} where piece {later} (round {}) starts at scn {}",
            piece(earlier).round_id,
            piece(earlier).end_scn.as_u64(),
            piece(later).round_id,
            piece(later).start_scn.as_u64()
        ));
    }
    Want::Error(message)
}

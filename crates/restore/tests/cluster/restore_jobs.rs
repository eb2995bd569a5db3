//! Restore jobs: progress recorded idempotently, then history.

use chrono::Duration;
use obrestore_restore::cluster::{
    ClusterError, NewRestoreJob, PartProgress, RestoreJobPatch, RestoreJobStatus, RestoreOutcome,
};
use obrestore_restore::TenantService;

use crate::common::fixtures::start;
use crate::support::open;

// long: walks one restore job from its start through idempotent progress to history,
// then a second job of the same tenant; each step checks the state the last one left.
#[test]
fn restore_job_progress_and_history() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, clock) = open(&dir);
    let new_job = NewRestoreJob {
        restore_tenant_name: "t1".into(),
        restore_scn: 1_704_762_703_000_000_000,
        data_backup_uri: "file:///b/data".into(),
        archive_log_uri: "file:///b/clog".into(),
        ls_count: 2,
        tablet_count: 10,
        total_bytes: 1000,
        ..NewRestoreJob::default()
    };
    let job = cluster.start_restore_job(&new_job, "dag-1").unwrap();
    assert_eq!(
        (job.job_id, job.status, job.start_time, job.finish_time),
        (1, RestoreJobStatus::RestorePre, start(), None)
    );
    assert_eq!(cluster.start_restore_job(&new_job, "dag-1").unwrap(), job);
    let conflict = cluster.start_restore_job(&new_job, "dag-2").unwrap_err();
    assert_eq!(
        conflict.to_string(),
        "tenant 't1' already has an unfinished restore job 1"
    );
    assert!(
        matches!(conflict, ClusterError::RestoreJobConflict { .. }),
        "{conflict:?}"
    );

    let patch = RestoreJobPatch {
        status: Some(RestoreJobStatus::RestoreData),
        restore_tenant_id: Some(1002),
        backup_set_list: Some(vec!["file:///b/data/backup_set_1_full".into()]),
        backup_piece_list: Some(vec!["file:///b/clog/piece_d1r1p1".into()]),
        ..RestoreJobPatch::default()
    };
    cluster.update_restore_job(1, &patch).unwrap();
    cluster
        .record_restore_part(
            1,
            "ls1001/file0",
            PartProgress {
                bytes: 300,
                tablets: 3,
            },
        )
        .unwrap();
    cluster
        .record_restore_part(
            1,
            "ls1001/file1",
            PartProgress {
                bytes: 200,
                tablets: 2,
            },
        )
        .unwrap();
    // A re-executed sub-task records the same part again: no double counting.
    let job = cluster
        .record_restore_part(
            1,
            "ls1001/file0",
            PartProgress {
                bytes: 300,
                tablets: 3,
            },
        )
        .unwrap();
    assert_eq!((job.finish_bytes, job.finish_tablet_count), (500, 5));
    assert_eq!(job.restore_progress(), 0.5);
    cluster.finish_restore_ls(1, 1001).unwrap();
    let job = cluster.finish_restore_ls(1, 1001).unwrap();
    assert_eq!(job.finish_ls_count, 1);
    assert_eq!(job.recover_progress(), 0.5);
    let job = cluster
        .update_restore_job(
            1,
            &RestoreJobPatch {
                recover_scn: Some(42),
                ..RestoreJobPatch::default()
            },
        )
        .unwrap();
    assert_eq!(
        (job.recover_scn, job.status, job.restore_tenant_id),
        (42, RestoreJobStatus::RestoreData, Some(1002))
    );
    assert_eq!(cluster.active_restore_job("t1").unwrap(), Some(job.clone()));
    assert_eq!(cluster.restore_overview("t1").unwrap(), Some(job.clone()));

    clock.advance(Duration::seconds(90));
    let done = cluster
        .finish_restore_job(1, RestoreOutcome::Success, Some("restored"))
        .unwrap();
    assert_eq!(done.status, RestoreJobStatus::Success);
    assert_eq!(done.finish_time, Some(start() + Duration::seconds(90)));
    assert_eq!(done.comment, "restored");
    assert_eq!(
        cluster
            .finish_restore_job(1, RestoreOutcome::Fail, None)
            .unwrap(),
        done
    );
    assert_eq!(cluster.active_restore_job("t1").unwrap(), None);
    assert_eq!(
        cluster.restore_history(Some("t1")).unwrap(),
        std::slice::from_ref(&done)
    );
    assert_eq!(cluster.restore_overview("t1").unwrap(), Some(done.clone()));
    assert_eq!(cluster.restore_job(1).unwrap(), Some(done.clone()));
    assert_eq!(
        cluster
            .record_restore_part(1, "x", PartProgress::default())
            .unwrap_err()
            .to_string(),
        "restore job 1 is already finished"
    );
    assert_eq!(
        cluster.finish_restore_ls(9, 1).unwrap_err().to_string(),
        "restore job 9 does not exist"
    );

    // A new restore of the same tenant gets the next id; history keeps both.
    let second = cluster.start_restore_job(&new_job, "dag-2").unwrap();
    assert_eq!(second.job_id, 2);
    let failed = cluster
        .finish_restore_job(
            2,
            RestoreOutcome::Fail,
            Some("backup set password is invalid"),
        )
        .unwrap();
    assert_eq!(
        cluster
            .restore_history(None)
            .unwrap()
            .iter()
            .map(|j| (j.job_id, j.status))
            .collect::<Vec<_>>(),
        [(1, RestoreJobStatus::Success), (2, RestoreJobStatus::Fail)]
    );
    assert_eq!(cluster.restore_overview("t1").unwrap(), Some(failed));
    assert_eq!(cluster.restore_overview("other").unwrap(), None);
}

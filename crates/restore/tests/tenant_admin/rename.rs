//! Rename: the name moves, everything else stays; every refusal.

use chrono::Duration;
use obrestore_restore::cluster::{
    NewRestoreJob, RestoreJob, RestoreOutcome, Tenant, TenantOptions, TenantStatus,
};
use obrestore_restore::TenantService;

use crate::fixture::*;

#[test]
fn rename_moves_the_name_and_keeps_everything_else() {
    let fx = fixture();
    let before = fx.tenant("t1", &[("z1", F)]);
    fx.clock.advance(Duration::seconds(5));
    let renamed = fx.cluster.rename_tenant("t1", "orders#2").unwrap();
    assert_eq!(
        renamed,
        Tenant {
            name: "orders#2".into(),
            updated_at: start() + Duration::seconds(5),
            ..before.clone()
        }
    );
    assert_eq!(fx.cluster.tenant("t1").unwrap(), None);
    assert_eq!(fx.get("orders#2"), renamed);
    assert_eq!(
        fx.cluster.tenant_by_id(before.id).unwrap(),
        Some(renamed.clone())
    );
    // Renaming to its own name changes nothing; the old name is free again.
    assert_eq!(
        fx.cluster.rename_tenant("orders#2", "orders#2").unwrap(),
        renamed
    );
    fx.tenant("t1", &[("z2", F)]);
    assert_eq!(fx.cluster.list_tenants().unwrap().len(), 2);
}

/// Tenants t1, t2, `restoring` (RESTORE), `gone` (in the recycle bin, returned),
/// `dropping` (DROPPING) and `activated` with an unfinished restore job (returned).
fn rename_refusal_fixture() -> (Fixture, Tenant, RestoreJob) {
    let fx = fixture();
    fx.tenant("t1", &[("z1", F)]);
    fx.tenant("t2", &[("z2", F)]);
    fx.tenant_with(
        "restoring",
        &[("z3", F)],
        "RANDOM",
        TenantStatus::Restore,
        &TenantOptions::default(),
    );
    let gone = fx.tenant("gone", &[("z4", F)]);
    let recycled = fx.cluster.recycle_tenant(gone.id).unwrap();
    let dropping = fx.tenant("dropping", &[("z5", F)]);
    let fx = fx.with_tenant_record_edited(dropping.id, |record| {
        record.insert("status".into(), "DROPPING".into());
    });
    // Activated but its restore job not finished yet (the Upgrade step is left).
    fx.tenant("activated", &[("z1", F)]);
    let job = NewRestoreJob {
        restore_tenant_name: "activated".into(),
        ..NewRestoreJob::default()
    };
    let job = fx.cluster.start_restore_job(&job, "dag-1").unwrap();
    (fx, recycled, job)
}

#[test]
fn rename_refusals() {
    let (fx, recycled, job) = rename_refusal_fixture();
    let before = snapshot(&fx.cluster);
    let rename = |from: &str, to: &str| fx.cluster.rename_tenant(from, to);
    check_refusals(vec![
        ("empty", rename("t1", ""), ("TenantNameEmpty", "Tenant name is empty")),
        (
            "dollar",
            rename("t1", "a$b"),
            (
                "TenantNameInvalid",
                "Tenant name 'a$b' is invalid: a tenant name containing '$' is not supported",
            ),
        ),
        (
            "reserved",
            rename("t1", "SYS"),
            ("TenantNameInvalid", "Tenant name 'SYS' is invalid: the name is reserved"),
        ),
        (
            "characters",
            rename("t1", "a b"),
            (
                "TenantNameInvalid",
                "Tenant name 'a b' is invalid: tenant names may only contain letters, numbers, and special characters (- _ # ~ +)",
            ),
        ),
        ("missing", rename("nope", "t9"), ("TenantNotFound", "tenant 'nope' does not exist")),
        ("taken", rename("t1", "t2"), ("TenantExists", "tenant 't2' already exists")),
        (
            "restore job unfinished",
            rename("activated", "t9"),
            (
                "RestoreJobConflict",
                format!("tenant 'activated' already has an unfinished restore job {}", job.job_id).as_str(),
            ),
        ),
        (
            "restoring",
            rename("restoring", "t9"),
            ("TenantState", "tenant 'restoring' is RESTORE, the operation needs NORMAL"),
        ),
        (
            "dropping",
            rename("dropping", "t9"),
            ("TenantState", "tenant 'dropping' is DROPPING, the operation needs NORMAL"),
        ),
        (
            "recycled, by object name",
            rename(&recycled.name, "t9"),
            (
                "TenantState",
                format!("tenant '{}' is in the recycle bin, the operation needs NORMAL", recycled.name).as_str(),
            ),
        ),
        ("recycled, by original name", rename("gone", "t9"), ("TenantNotFound", "tenant 'gone' does not exist")),
    ]);
    assert_eq!(snapshot(&fx.cluster), before);
    // Once the job is in history the name is free to change.
    fx.cluster
        .finish_restore_job(job.job_id, RestoreOutcome::Success, None)
        .unwrap();
    assert_eq!(
        fx.cluster.rename_tenant("activated", "t9").unwrap().name,
        "t9"
    );
}

//! The root password: its lifecycle, refusals by tenant state, verifier iterations,
//! and that no password reaches the store.

use std::sync::Arc;

use obrestore_restore::cluster::{TenantOptions, TenantStatus, ROOT_PASSWORD_KDF_ITERATIONS};
use obrestore_restore::{ManualClock, Secret, SledCluster, TenantService};

use crate::fixture::*;

#[test]
fn root_password_lifecycle() {
    let fx = fixture();
    let options = TenantOptions {
        root_password: Some(Secret::new("first-Pw1")),
        ..TenantOptions::default()
    };
    let created = fx.tenant_with("t1", &[("z1", F)], "RANDOM", TenantStatus::Normal, &options);
    let verifier = created.root_password.clone().unwrap();
    assert_eq!(
        (verifier.kdf.as_str(), verifier.iterations),
        ("PBKDF2-HMAC-SHA256", TEST_KDF_ITERATIONS)
    );
    assert!(created.root_password_persisted);
    assert!(fx.cluster.check_root_password("t1", "first-Pw1").unwrap());
    assert!(!fx.cluster.check_root_password("t1", "first-pw1").unwrap());
    assert!(!fx.cluster.check_root_password("t1", "").unwrap());

    check_refusals(vec![
        (
            "wrong old password",
            fx.cluster.set_root_password("t1", "second", Some("guess")),
            (
                "RootPasswordIncorrect",
                "The provided password is unable to connect to the tenant",
            ),
        ),
        (
            "no old password while one is set",
            fx.cluster.set_root_password("t1", "second", None),
            (
                "RootPasswordIncorrect",
                "The provided password is unable to connect to the tenant",
            ),
        ),
    ]);
    assert_eq!(fx.get("t1"), created);

    let changed = fx
        .cluster
        .set_root_password("t1", "second", Some("first-Pw1"))
        .unwrap();
    assert_ne!(changed.root_password, created.root_password);
    assert!(!changed.root_password_persisted);
    assert!(fx.cluster.check_root_password("t1", "second").unwrap());
    assert!(!fx.cluster.check_root_password("t1", "first-Pw1").unwrap());
    // A re-executed step (its old password is stale now) converges without a change.
    assert_eq!(
        fx.cluster
            .set_root_password("t1", "second", Some("first-Pw1"))
            .unwrap(),
        changed
    );

    check_refusals(vec![(
        "persist a wrong password",
        fx.cluster.persist_root_password("t1", "first-Pw1"),
        (
            "RootPasswordIncorrect",
            "The provided password is unable to connect to the tenant",
        ),
    )]);
    let persisted = fx.cluster.persist_root_password("t1", "second").unwrap();
    assert!(persisted.root_password_persisted);
    assert_eq!(persisted.root_password, changed.root_password);
    assert_eq!(
        fx.cluster.persist_root_password("t1", "second").unwrap(),
        persisted
    );
}

#[test]
fn root_password_cleared_and_set_again() {
    let fx = fixture();
    let options = TenantOptions {
        root_password: Some(Secret::new("second")),
        ..TenantOptions::default()
    };
    fx.tenant_with("t1", &[("z1", F)], "RANDOM", TenantStatus::Normal, &options);
    // Clearing the password: no verifier, the empty password logs in, and a password
    // given as the old one is wrong now.
    let cleared = fx
        .cluster
        .set_root_password("t1", "", Some("second"))
        .unwrap();
    assert_eq!(cleared.root_password, None);
    assert!(fx.cluster.check_root_password("t1", "").unwrap());
    check_refusals(vec![(
        "old password given while none is set",
        fx.cluster.set_root_password("t1", "third", Some("second")),
        (
            "RootPasswordIncorrect",
            "The provided password is unable to connect to the tenant",
        ),
    )]);
    let third = fx.cluster.set_root_password("t1", "third", None).unwrap();
    assert!(third.root_password.is_some());
    assert!(fx.cluster.check_root_password("t1", "third").unwrap());
    let fourth = fx
        .cluster
        .set_root_password("t1", "fourth", Some("third"))
        .unwrap();
    assert!(fx.cluster.check_root_password("t1", "fourth").unwrap());
    assert_ne!(fourth.root_password, third.root_password);
}

#[test]
fn root_password_refusals_by_tenant_state() {
    let fx = fixture();
    let options = TenantOptions {
        root_password: Some(Secret::new("pw")),
        ..TenantOptions::default()
    };
    fx.tenant_with(
        "locked",
        &[("z1", F)],
        "RANDOM",
        TenantStatus::Normal,
        &options,
    );
    fx.cluster.set_tenant_locked("locked", true).unwrap();
    fx.tenant_with(
        "restoring",
        &[("z2", F)],
        "RANDOM",
        TenantStatus::Restore,
        &options,
    );
    let before = snapshot(&fx.cluster);
    check_refusals(vec![
        (
            "set on a locked tenant",
            fx.cluster.set_root_password("locked", "new", Some("pw")),
            ("TenantLocked", "Tenant locked is locked"),
        ),
        (
            "persist on a locked tenant",
            fx.cluster.persist_root_password("locked", "pw"),
            ("TenantLocked", "Tenant locked is locked"),
        ),
        (
            "set on a restoring tenant",
            fx.cluster.set_root_password("restoring", "new", Some("pw")),
            (
                "TenantState",
                "tenant 'restoring' is RESTORE, the operation needs NORMAL",
            ),
        ),
        (
            "set on a missing tenant",
            fx.cluster.set_root_password("nope", "new", None),
            ("TenantNotFound", "tenant 'nope' does not exist"),
        ),
        (
            "persist on a missing tenant",
            fx.cluster.persist_root_password("nope", "pw"),
            ("TenantNotFound", "tenant 'nope' does not exist"),
        ),
    ]);
    check_refusals(vec![(
        "check on a missing tenant",
        fx.cluster.check_root_password("nope", "pw"),
        ("TenantNotFound", "tenant 'nope' does not exist"),
    )]);
    assert_eq!(snapshot(&fx.cluster), before);
    // Checking is a read: the lock does not matter.
    assert!(fx.cluster.check_root_password("locked", "pw").unwrap());
    // Unlocking is always possible, and then the password can change.
    fx.cluster.set_tenant_locked("locked", false).unwrap();
    fx.cluster
        .set_root_password("locked", "new", Some("pw"))
        .unwrap();
}

#[test]
fn root_password_verifiers_use_the_default_iterations_unless_told() {
    let dir = tempfile::tempdir().unwrap();
    let db = sled::open(db_path(&dir)).unwrap();
    let cluster = SledCluster::new(
        &db,
        db_path(&dir).with_extension("rows"),
        &config(),
        Arc::new(ManualClock::new(start())),
    )
    .unwrap();
    cluster
        .create_pools(&[pool_spec("p", "s1", &["z1"])], "setup")
        .unwrap();
    let tenant = cluster
        .create_tenant_with(
            &new_tenant(
                "t1",
                &[("z1", F)],
                "RANDOM",
                TenantStatus::Normal,
                vec!["p".into()],
            ),
            &TenantOptions {
                root_password: Some(Secret::new("pw")),
                ..TenantOptions::default()
            },
            "setup",
        )
        .unwrap();
    assert_eq!(ROOT_PASSWORD_KDF_ITERATIONS, 100_000);
    assert_eq!(
        tenant.root_password.unwrap().iterations,
        ROOT_PASSWORD_KDF_ITERATIONS
    );
    // A verifier keeps its own count: a cluster with another default still checks it.
    let cluster = cluster.with_password_kdf_iterations(TEST_KDF_ITERATIONS);
    assert!(cluster.check_root_password("t1", "pw").unwrap());
}

#[test]
fn root_passwords_never_reach_the_store() {
    let fx = fixture();
    let passwords = ["Pa55-first-7f3a", "Pa55-second-9c1e", "Pa55-third-2b8d"];
    // The comment is a control: stored in plain text, the scans must find it.
    let marker = "marker-4e7d1c-comment";
    let options = TenantOptions {
        comment: marker.into(),
        root_password: Some(Secret::new(passwords[0])),
        ..TenantOptions::default()
    };
    let tenant = fx.tenant_with("t1", &[("z1", F)], "RANDOM", TenantStatus::Normal, &options);
    fx.cluster
        .set_root_password("t1", passwords[1], Some(passwords[0]))
        .unwrap();
    fx.cluster
        .persist_root_password("t1", passwords[1])
        .unwrap();
    fx.cluster
        .set_root_password("t1", passwords[2], Some(passwords[1]))
        .unwrap();
    assert!(!format!("{tenant:?}").contains(&tenant.root_password.as_ref().unwrap().verifier_hex));
    let contains = |haystack: &[u8], needle: &str| {
        haystack
            .windows(needle.len())
            .any(|window| window == needle.as_bytes())
    };

    // Every key and value of every tree of the database.
    let db = fx.cluster.db();
    db.flush().unwrap();
    let mut stored = Vec::new();
    for name in db.tree_names() {
        for entry in db.open_tree(&name).unwrap().iter() {
            let (key, value) = entry.unwrap();
            stored.extend_from_slice(&key);
            stored.push(0);
            stored.extend_from_slice(&value);
            stored.push(0);
        }
    }
    assert!(contains(&stored, marker));
    for password in passwords {
        assert!(!contains(&stored, password), "{password} in a sled tree");
    }

    // And every byte the cluster wrote to disk (log, snapshots, row files).
    let fx = fx.reopened();
    let mut files = Vec::new();
    let mut pending = vec![fx.dir.path().to_path_buf()];
    while let Some(path) = pending.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                files.extend(std::fs::read(entry.path()).unwrap());
            }
        }
    }
    assert!(contains(&files, marker));
    for password in passwords {
        assert!(!contains(&files, password), "{password} in a file");
    }
    assert!(fx.cluster.check_root_password("t1", passwords[2]).unwrap());
}

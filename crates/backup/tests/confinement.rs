//! URI confinement: `..`, symlinks out of a root and paths outside are refused.

mod common;

use obrestore_backup::{AllowedRoots, BackupError, DataStore, StorageUri, UriError};

#[test]
fn resolve_inside_outside_and_traversal() {
    let root = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root_path = root.path().canonicalize().unwrap();
    std::fs::create_dir(root_path.join("data")).unwrap();
    std::os::unix::fs::symlink(outside.path(), root_path.join("escape")).unwrap();
    std::os::unix::fs::symlink(root_path.join("data"), root_path.join("alias")).unwrap();
    let roots = AllowedRoots::new([&root_path]).unwrap();
    let resolve = |text: String| roots.resolve(&StorageUri::parse(&text).unwrap());

    assert_eq!(
        resolve(format!("file://{}/data", root_path.display())).unwrap(),
        root_path.join("data")
    );
    assert_eq!(
        resolve(format!("file://{}/alias", root_path.display())).unwrap(),
        root_path.join("data")
    );
    assert_eq!(
        resolve(format!("file://{}/data/not/yet", root_path.display())).unwrap(),
        root_path.join("data/not/yet")
    );
    let cases = [
        format!("file://{}/data/../../etc", root_path.display()),
        format!("file://{}/./data", root_path.display()),
    ];
    for uri in cases {
        assert!(
            matches!(resolve(uri.clone()), Err(UriError::Traversal { .. })),
            "{uri}"
        );
    }
    let err = resolve(format!("file://{}/escape/x", root_path.display())).unwrap_err();
    assert!(matches!(err, UriError::OutsideRoots { .. }), "{err}");
    assert!(
        err.to_string().contains("outside the allowed backup roots"),
        "{err}"
    );
    let err = resolve(format!("file://{}", outside.path().display())).unwrap_err();
    assert!(matches!(err, UriError::OutsideRoots { .. }), "{err}");
    let err = AllowedRoots::default()
        .resolve(&StorageUri::parse("file:///tmp").unwrap())
        .unwrap_err();
    assert!(matches!(err, UriError::NoRoots { .. }), "{err}");
    assert!(matches!(
        AllowedRoots::new(["relative"]),
        Err(UriError::BadRoot { .. })
    ));
}

#[test]
fn stores_open_through_roots_and_refuse_symlinked_files_out_of_the_destination() {
    let root = tempfile::tempdir().unwrap();
    let mut config = common::small_config(root.path());
    config.sets = obrestore_backup::generate::sets_from_pattern("F").unwrap();
    let summary = obrestore_backup::generate(&config).unwrap();
    let roots = AllowedRoots::new([root.path()]).unwrap();
    let data = DataStore::open_uri(&summary.data_uri, &roots).unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let other_roots = AllowedRoots::new([elsewhere.path()]).unwrap();
    let err = DataStore::open_uri(&summary.data_uri, &other_roots).unwrap_err();
    assert!(
        matches!(err, BackupError::Uri(UriError::OutsideRoots { .. })),
        "{err}"
    );
    let err = DataStore::open_uri("s3://bucket/data", &roots).unwrap_err();
    assert!(
        err.to_string().contains("unsupported storage type"),
        "{err}"
    );

    // A data file replaced by a symlink to a file outside the destination.
    let set = data.set_info(1).unwrap();
    let file = data.data_files(&set, 1001).unwrap().remove(0);
    let secret = elsewhere.path().join("secret");
    std::fs::copy(&file.path, &secret).unwrap();
    std::fs::remove_file(&file.path).unwrap();
    std::os::unix::fs::symlink(&secret, &file.path).unwrap();
    let err = data.read_data_file(&file, None).err().unwrap();
    assert!(
        matches!(err, BackupError::Uri(UriError::OutsideRoots { .. })),
        "{err}"
    );
}

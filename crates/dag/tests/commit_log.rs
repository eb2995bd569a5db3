//! The sled store's commit log (`store/commit_log.rs`) on real files: replay into a
//! store that never saw the batches, replay over batches already applied, a torn or
//! corrupt tail, a damaged record in the middle, a database written before the log, a
//! log recycled through checkpoints and a batch larger than the log, a new log grown at
//! its first wrap, and injected write
//! and sync failures. A store is reopened in the same process only once every handle
//! of the previous one is dropped (sled's own lock).

use std::path::Path;

use obrestore_dag::store::{Batch, LogFault, Pairs};
use obrestore_dag::{KvStore, SledStore, StoreError};

const LOG: &str = "commit-log";
const SMALL: u64 = 64 << 10;

/// Commit `n`: puts `c/<n>` (a value of 100–2,100 bytes), overwrites `last`, deletes
/// `c/<n - 3>`.
fn batch(n: u64) -> Batch {
    let mut batch = Batch::default();
    batch.put(
        format!("c/{n:06}").into_bytes(),
        vec![n as u8; 100 + (n as usize * 37) % 2000],
    );
    batch.put(b"last".to_vec(), n.to_string().into_bytes());
    if n >= 3 {
        batch.delete(format!("c/{:06}", n - 3).into_bytes());
    }
    batch
}

fn everything(store: &SledStore) -> Pairs {
    store.scan_prefix(b"").unwrap()
}

/// Commits 1..=`count` to a new store in `dir`; returns its contents.
fn written(dir: &Path, capacity: u64, count: u64) -> Pairs {
    let store = SledStore::open_with_log(dir, capacity).unwrap();
    for n in 1..=count {
        store.commit(batch(n)).unwrap();
    }
    everything(&store)
}

/// A fresh database directory holding only a copy of `from`'s log.
fn with_log_of(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    std::fs::copy(from.join(LOG), to.join(LOG)).unwrap();
}

#[test]
fn a_store_that_never_saw_the_batches_gets_them_all_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let expected = written(&a, SMALL, 10);
    assert_eq!(expected.len(), 4, "c/8, c/9, c/10 and last");
    with_log_of(&a, &b);
    let store = SledStore::open(&b).unwrap();
    assert_eq!(store.commit_log().replayed(), 10);
    assert_eq!(everything(&store), expected);
    // The log keeps its size, and the store goes on from record 11.
    assert_eq!(store.commit_log().capacity(), SMALL);
    store.commit(batch(11)).unwrap();
    drop(store);
    let store = SledStore::open(&b).unwrap();
    assert_eq!(store.get(b"last").unwrap(), Some(b"11".to_vec()));
}

#[test]
fn replaying_records_the_store_already_holds_gives_the_same_store() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let expected = written(&a, SMALL, 10);
    with_log_of(&a, &b);
    drop(SledStore::open(&b).unwrap());
    // As if sled had made only records 1..=3 durable: 4..=10 are applied again over
    // their own effects (the key is the log's mark in the engine's tree).
    {
        let db = sled::open(&b).unwrap();
        let tree = db.open_tree(obrestore_dag::store::SLED_TREE).unwrap();
        tree.insert("m/commit-log-applied", &3u64.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    for replayed in [7, 0] {
        let store = SledStore::open(&b).unwrap();
        assert_eq!(store.commit_log().replayed(), replayed);
        assert_eq!(everything(&store), expected);
    }
    // As if sled had recovered record 9 and part of record 10 (a record is applied one
    // key at a time): `last` written, `c/000007` not yet deleted, `c/000010` missing.
    {
        let db = sled::open(&b).unwrap();
        let tree = db.open_tree(obrestore_dag::store::SLED_TREE).unwrap();
        tree.insert("m/commit-log-applied", &9u64.to_be_bytes())
            .unwrap();
        tree.insert("c/000007", "stale").unwrap();
        tree.remove("c/000010").unwrap();
        db.flush().unwrap();
    }
    let store = SledStore::open(&b).unwrap();
    assert_eq!(store.commit_log().replayed(), 1);
    assert_eq!(everything(&store), expected);
}

/// The offset of record `seq` (from 1) in a log of [`batch`]es: one page each.
fn record_offset(seq: u64) -> u64 {
    (seq - 1) * 4096
}

fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(bytes, offset).unwrap();
}

#[test]
fn a_torn_or_corrupt_last_record_is_dropped_and_the_rest_replayed() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a");
    written(&a, SMALL, 10);
    let expected_9 = written(&dir.path().join("nine"), SMALL, 9);
    // Torn: the end of record 10 is zeros. Corrupt: one byte of it changed.
    for (name, offset, bytes) in [
        ("torn", record_offset(10) + 200, vec![0; 3000]),
        ("corrupt", record_offset(10) + 40, vec![0xff]),
    ] {
        let b = dir.path().join(name);
        with_log_of(&a, &b);
        patch(&b.join(LOG), offset, &bytes);
        let store = SledStore::open(&b).unwrap();
        assert_eq!(store.commit_log().replayed(), 9, "{name}");
        assert_eq!(everything(&store), expected_9, "{name}");
    }
}

#[test]
fn a_damaged_record_before_newer_ones_is_reported_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    written(&a, SMALL, 10);
    with_log_of(&a, &b);
    patch(&b.join(LOG), record_offset(4) + 40, &[0xff]);
    match SledStore::open(&b) {
        Err(StoreError::Corrupt { key, reason }) => {
            assert!(key.ends_with(LOG), "{key}");
            assert!(reason.contains("record 5 at offset 16384"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_database_written_before_the_log_opens_and_gets_one() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        let tree = db.open_tree(obrestore_dag::store::SLED_TREE).unwrap();
        tree.insert("old", "value").unwrap();
        db.flush().unwrap();
    }
    assert!(!dir.path().join(LOG).exists());
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.commit_log().replayed(), 0);
    assert_eq!(store.get(b"old").unwrap(), Some(b"value".to_vec()));
    store.commit(batch(1)).unwrap();
    drop(store);
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.get(b"old").unwrap(), Some(b"value".to_vec()));
    assert_eq!(store.get(b"last").unwrap(), Some(b"1".to_vec()));
}

#[test]
fn a_small_log_recycles_through_checkpoints_and_a_batch_larger_than_it_goes_through_sled() {
    let dir = tempfile::tempdir().unwrap();
    let expected = {
        let store = SledStore::open_with_log(dir.path(), 16 << 10).unwrap();
        let log = store.commit_log();
        for n in 1..=40 {
            store.commit(batch(n)).unwrap();
        }
        // Four one-page records a round: a checkpoint every four commits, one at open.
        assert_eq!((log.syncs(), log.checkpoints()), (40, 10));
        let mut big = Batch::default();
        big.put(b"big".to_vec(), vec![b'b'; 40 << 10]);
        store.commit(big).unwrap();
        assert_eq!((log.syncs(), log.checkpoints()), (40, 11));
        store.commit(batch(41)).unwrap();
        assert_eq!(log.syncs(), 41);
        everything(&store)
    };
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(everything(&store), expected);
    assert_eq!(store.get(b"big").unwrap().map(|v| v.len()), Some(40 << 10));
    assert_eq!(store.get(b"last").unwrap(), Some(b"41".to_vec()));
}

#[test]
fn a_new_log_starts_small_and_grows_to_its_capacity_at_its_first_wrap() {
    const INITIAL_CAPACITY: u64 = obrestore_dag::store::CommitLog::INITIAL_CAPACITY;
    let dir = tempfile::tempdir().unwrap();
    let capacity = 4 * INITIAL_CAPACITY;
    let file_len = || std::fs::metadata(dir.path().join(LOG)).unwrap().len();
    // One-page records (batch 1..=n stays under 4 KiB): the small log holds this many.
    let per_round = INITIAL_CAPACITY / 4096;
    let expected = {
        let store = SledStore::open_with_log(dir.path(), capacity).unwrap();
        let log = store.commit_log();
        assert_eq!(
            (log.capacity(), file_len()),
            (INITIAL_CAPACITY, INITIAL_CAPACITY)
        );
        for n in 1..=per_round {
            store.commit(batch(n)).unwrap();
        }
        assert_eq!((log.capacity(), log.checkpoints()), (INITIAL_CAPACITY, 1));
        // The next record wraps: a checkpoint, then the growth, then the record.
        store.commit(batch(per_round + 1)).unwrap();
        assert_eq!(
            (log.capacity(), file_len(), log.checkpoints()),
            (capacity, capacity, 2)
        );
        // Records go past the small log's end now, without another checkpoint.
        for n in per_round + 2..=3 * per_round {
            store.commit(batch(n)).unwrap();
        }
        assert_eq!((log.checkpoints(), log.syncs()), (2, 3 * per_round));
        everything(&store)
    };
    // As if sled had made only the records up to the wrap durable: the rest, most of
    // them past the small log's end, are replayed from the grown log, which keeps its
    // size. (Opened as the stores open it: the store just dropped may still hold
    // sled's file lock for a moment.)
    {
        let db = obrestore_dag::store::open_sled(&sled::Config::new().path(dir.path())).unwrap();
        let tree = db.open_tree(obrestore_dag::store::SLED_TREE).unwrap();
        tree.insert("m/commit-log-applied", &(per_round + 1).to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    for replayed in [2 * per_round - 1, 0] {
        let store = SledStore::open(dir.path()).unwrap();
        assert_eq!(store.commit_log().replayed(), replayed);
        assert_eq!(store.commit_log().capacity(), capacity);
        assert_eq!(everything(&store), expected);
    }
}

#[test]
fn a_failing_log_write_applies_nothing_and_fails_every_later_commit() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.commit(batch(1)).unwrap();
        store.commit_log().inject(LogFault::Write, 1);
        let err = store.commit(batch(2)).unwrap_err();
        assert!(
            err.to_string().contains("failpoint: record 2 fails"),
            "{err}"
        );
        assert_eq!(store.get(b"last").unwrap(), Some(b"1".to_vec()));
        let err = store.commit(batch(3)).unwrap_err();
        assert!(
            err.to_string().contains("an earlier commit failed"),
            "{err}"
        );
        assert!(store.get(b"c/000003").unwrap().is_none());
    }
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.get(b"last").unwrap(), Some(b"1".to_vec()));
    assert!(store.get(b"c/000002").unwrap().is_none());
    store.commit(batch(2)).unwrap();
}

#[test]
fn after_a_failing_log_sync_the_batch_is_whole_or_absent() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = SledStore::open(dir.path()).unwrap();
        store.commit(batch(1)).unwrap();
        store.commit_log().inject(LogFault::Sync, 1);
        let err = store.commit(batch(2)).unwrap_err();
        assert!(err.to_string().contains("fdatasync"), "{err}");
        // Not observable: the batch was never applied to the tree.
        assert_eq!(store.get(b"last").unwrap(), Some(b"1".to_vec()));
        assert!(store.commit(batch(3)).is_err());
    }
    // The record reached the page cache: a reopen may find it (here it does, with no
    // crash in between). Either way, all of the batch or none of it.
    let store = SledStore::open(dir.path()).unwrap();
    let last = store.get(b"last").unwrap();
    let c2 = store.get(b"c/000002").unwrap();
    assert!(
        (last == Some(b"2".to_vec()) && c2.is_some())
            || (last == Some(b"1".to_vec()) && c2.is_none()),
        "{last:?} {c2:?}"
    );
}

/// Waits until the log's applier has applied every synced record (a liveness bound,
/// not a timing claim).
fn wait_applied(store: &SledStore) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while store.commit_log().unapplied() > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the applier never caught up"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

#[test]
fn synced_records_not_yet_applied_are_read_whole_and_replayed_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let reference = obrestore_dag::MemStore::new();
    for n in 1..=8 {
        reference.commit(batch(n)).unwrap();
    }
    let expected = reference.scan_prefix(b"").unwrap();
    let store = SledStore::open(&a).unwrap();
    for n in 1..=3 {
        store.commit(batch(n)).unwrap();
    }
    wait_applied(&store);
    store.commit_log().hold_applies(true);
    for n in 4..=8 {
        store.commit(batch(n)).unwrap();
    }
    // Acknowledged, not in the tree: records 4..=8 are in the log and the overlay only.
    assert_eq!(store.commit_log().unapplied(), 5);
    let tree = store
        .db()
        .open_tree(obrestore_dag::store::SLED_TREE)
        .unwrap();
    assert_eq!(tree.get("last").unwrap().as_deref(), Some(&b"3"[..]));
    assert!(tree.get("c/000001").unwrap().is_some());
    // Reads see every acknowledged write: puts over the tree's keys, new keys between
    // them, deletes of tree keys (c/1..c/3) and of keys only the overlay held (c/4, c/5).
    assert_eq!(everything(&store), expected);
    assert_eq!(
        store.scan_prefix(b"c/").unwrap(),
        reference.scan_prefix(b"c/").unwrap()
    );
    assert!(store.get(b"c/000002").unwrap().is_none());
    assert!(store.get(b"c/000005").unwrap().is_none());
    assert_eq!(store.get(b"last").unwrap(), Some(b"8".to_vec()));
    assert!(store.get(b"m/commit-log-applied").unwrap().is_none());
    // As a crash right now would leave it: sled holds up to record 3, the log all 8.
    store.db().flush().unwrap();
    std::fs::create_dir_all(&b).unwrap();
    for entry in std::fs::read_dir(&a).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), b.join(entry.file_name())).unwrap();
        }
    }
    if a.join("blobs").exists() {
        std::fs::create_dir_all(b.join("blobs")).unwrap();
    }
    let copy = SledStore::open(&b).unwrap();
    assert_eq!(copy.commit_log().replayed(), 5);
    assert_eq!(everything(&copy), expected);
    drop(copy);
    // Released, the applier catches up and the tree holds everything.
    store.commit_log().hold_applies(false);
    wait_applied(&store);
    assert_eq!(tree.get("last").unwrap().as_deref(), Some(&b"8"[..]));
    assert!(tree.get("c/000002").unwrap().is_none());
    assert_eq!(everything(&store), expected);
}

#[test]
fn a_checkpoint_applies_what_the_applier_has_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open_with_log(dir.path(), SMALL).unwrap();
    store.commit_log().hold_applies(true);
    // SMALL holds 16 one-page records: the 17th commit checkpoints first.
    for n in 1..=16 {
        store.commit(batch(n)).unwrap();
    }
    assert_eq!(store.commit_log().unapplied(), 16);
    let checkpoints = store.commit_log().checkpoints();
    store.commit(batch(17)).unwrap();
    assert_eq!(store.commit_log().checkpoints(), checkpoints + 1);
    assert_eq!(store.commit_log().unapplied(), 1);
    let tree = store
        .db()
        .open_tree(obrestore_dag::store::SLED_TREE)
        .unwrap();
    assert_eq!(tree.get("last").unwrap().as_deref(), Some(&b"16"[..]));
    drop(tree);
    drop(store);
    // The drop applied record 17 (the log holds it too: a reopen replays it if sled
    // did not flush it); either way it is there.
    let store = SledStore::open(dir.path()).unwrap();
    assert_eq!(store.get(b"last").unwrap(), Some(b"17".to_vec()));
    assert!(store.get(b"c/000014").unwrap().is_none());
    assert!(store.get(b"c/000015").unwrap().is_some());
}

/// Records written directly (`O_DIRECT | O_DSYNC`, where the filesystem takes it) and
/// through the page cache and `fdatasync` are the same records: a copy of either log
/// (large enough not to wrap) replays to the same store, records of several pages
/// included, and a log goes on after switching.
#[test]
fn records_written_directly_or_through_the_page_cache_replay_alike() {
    let dir = tempfile::tempdir().unwrap();
    let mut contents = Vec::new();
    for buffered in [false, true] {
        let (a, b) = (
            dir.path().join(format!("a{buffered}")),
            dir.path().join(format!("b{buffered}")),
        );
        let store = SledStore::open_with_log(&a, 4 * SMALL).unwrap();
        if buffered {
            store.commit_log().write_buffered();
            assert!(!store.commit_log().direct_writes());
        }
        for n in 1..=12 {
            let mut batch = batch(n);
            if n % 4 == 0 {
                // Three pages and a bit: padded to four in a direct write.
                batch.put(
                    format!("big/{n}").into_bytes(),
                    vec![n as u8; 3 * 4096 + 100],
                );
            }
            store.commit(batch).unwrap();
        }
        let expected = everything(&store);
        drop(store);
        with_log_of(&a, &b);
        let store = SledStore::open(&b).unwrap();
        assert_eq!(store.commit_log().replayed(), 12, "buffered: {buffered}");
        assert_eq!(everything(&store), expected, "buffered: {buffered}");
        contents.push(expected);
    }
    assert_eq!(contents[0], contents[1]);
    // A log written directly goes on through the page cache and back: a reopen sees it all.
    let c = dir.path().join("c");
    let store = SledStore::open_with_log(&c, SMALL).unwrap();
    store.commit(batch(1)).unwrap();
    store.commit_log().write_buffered();
    store.commit(batch(2)).unwrap();
    drop(store);
    let store = SledStore::open(&c).unwrap();
    store.commit(batch(3)).unwrap();
    let expected = written(&dir.path().join("d"), SMALL, 3);
    assert_eq!(everything(&store), expected);
}

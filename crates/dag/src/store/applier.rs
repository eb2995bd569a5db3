//! The commit log's applier: applies synced records to the sled tree off the commit's
//! path, while readers see every synced record through an overlay.
//!
//! # Why
//!
//! A commit is durable once its record is `fdatasync`ed in the log; applying it to the
//! tree (one sled write per key and the [`APPLIED`](super::commit_log::APPLIED)
//! sequence, ~25-30 µs) only serves the store's readers and shortens replay. Done
//! inside the commit it delays every acknowledgement; here it runs on a thread of its
//! own, while the engine releases the batch's effects (a chain's next sub-task runs).
//!
//! # How readers stay exact
//!
//! [`Applier::publish`] puts a synced record's writes into the overlay (key → the newest
//! synced value or delete, with its record's sequence; the record is shared, not
//! copied), then queues the record. The
//! applier thread takes the queued records as one group, writes each key's newest value
//! in the group to the tree once, then the group's last sequence, and then drops from
//! the overlay the keys whose newest write is in the group: their tree value is now the
//! newest one. A read holds the overlay's read lock for its whole
//! duration and looks at the overlay before the tree, so
//! - every synced record is visible as soon as [`Applier::publish`] returns (the commit
//!   returns after it: an acknowledged write is always read back);
//! - a record is seen whole: the overlay takes a record's keys under one write lock,
//!   and the tree's keys of a group being applied are all shadowed by the overlay
//!   until they are dropped from it, again under one write lock.
//!
//! # Wake-ups
//!
//! Waking a sleeping thread costs the committing thread a `futex` call, and on a busy
//! machine the woken thread may take the committer's core: ~15-20 µs of a chain's stage
//! (profiled). So a commit wakes the thread only when it sleeps. After applying, the
//! thread stays awake: it looks for records every [`POLL`] (a timed wait, no wake-up
//! needed), and only after [`POLLS`] empty looks (~100 ms without a commit) does it
//! sleep until the next commit wakes it. Under a steady stream of commits the records
//! wait up to [`POLL`] in the overlay (readers see them there); [`WAKE_AT`] queued
//! records wake it at once.
//!
//! # Order and durability
//!
//! Records are applied in sequence order, a group at a time, by the thread or by
//! [`Applier::drain`] (under one apply lock, so the two never interleave). Before the log starts again at offset 0
//! (a checkpoint) or commits a batch through sled, it drains: every record the log is
//! about to overwrite is in the tree, and the checkpoint's flush makes it durable. A
//! crash before a record is applied loses nothing: it is in the log, and the next open
//! replays every record above the tree's applied sequence (`commit_log.rs`, Recovery).
//! A failed apply is sticky ([`Applier::failed`]): later commits fail, the overlay keeps
//! the records that were not applied (they stay readable), and a reopen replays them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock, RwLockWriteGuard};
use std::time::Duration;

use super::commit_log::{apply_writes, Writes};
use super::device::lock;
use super::{Pairs, StoreError};

/// Key → the newest synced record writing it: its sequence, the record, and the
/// write's index in it (the value is not copied).
type Overlay = BTreeMap<Vec<u8>, (u64, Arc<Writes>, usize)>;

/// A key's newest synced value in the overlay (`None`: deleted).
fn newest((_, writes, index): &(u64, Arc<Writes>, usize)) -> Option<&[u8]> {
    writes.get(*index).and_then(|(_, value)| value.as_deref())
}

/// See the module docs.
pub(super) struct Applier {
    tree: sled::Tree,
    overlay: RwLock<Overlay>,
    queue: Mutex<Queue>,
    /// Signalled when a record is queued, or the applier must stop.
    wake: Condvar,
    /// Held while records are applied: the thread and [`Applier::drain`] never
    /// interleave.
    applying: Mutex<()>,
}

/// How long the thread waits for records before it looks again, once awake.
const POLL: Duration = Duration::from_millis(1);
/// Empty looks after which the thread sleeps until a commit wakes it.
const POLLS: u32 = 100;
/// Queued records at which a commit wakes the thread although it is awake.
const WAKE_AT: usize = 64;

#[derive(Default)]
struct Queue {
    records: VecDeque<(u64, Arc<Writes>)>,
    stop: bool,
    /// The thread waits without a timeout: the next commit wakes it.
    asleep: bool,
    /// Records taken off `records` and not yet applied (being applied now, or left
    /// by a failed apply): they count as unapplied until they are in the tree.
    taken: usize,
    /// The first failed apply.
    failed: Option<String>,
    /// The thread applies nothing while set (failpoints: a crash with records synced
    /// but not applied).
    #[cfg(any(test, feature = "failpoints"))]
    held: bool,
}

impl Applier {
    /// An applier for `tree`, and its thread.
    ///
    /// # Errors
    /// The thread could not be started.
    pub(super) fn start(
        tree: sled::Tree,
    ) -> std::io::Result<(Arc<Applier>, std::thread::JoinHandle<()>)> {
        let applier = Arc::new(Applier {
            tree,
            overlay: RwLock::new(Overlay::new()),
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            applying: Mutex::new(()),
        });
        let thread = Arc::clone(&applier);
        let handle = std::thread::Builder::new()
            .name("obrestore-apply".to_string())
            .spawn(move || thread.run())?;
        Ok((applier, handle))
    }

    /// Makes the synced record `seq` visible to readers and queues it for the tree.
    pub(super) fn publish(&self, seq: u64, writes: Writes) {
        let writes = Arc::new(writes);
        {
            let mut overlay = self.write_overlay();
            for (index, (key, _)) in writes.iter().enumerate() {
                overlay.insert(key.clone(), (seq, Arc::clone(&writes), index));
            }
        }
        let wake = {
            let mut queue = lock(&self.queue);
            queue.records.push_back((seq, writes));
            queue.asleep || queue.records.len() >= WAKE_AT
        };
        if wake {
            self.wake.notify_one();
        }
    }

    /// The first failed apply, if any.
    pub(super) fn failed(&self) -> Option<String> {
        lock(&self.queue).failed.clone()
    }

    /// Applies every queued record on the caller's thread (after any the thread is
    /// applying): the tree then holds every published record.
    ///
    /// # Errors
    /// An apply failed, now or earlier (sticky).
    pub(super) fn drain(&self) -> Result<(), StoreError> {
        let _applying = lock(&self.applying);
        let records = self.take();
        self.apply_all(records)?;
        match self.failed() {
            Some(reason) => Err(StoreError::Sled(sled::Error::Io(std::io::Error::other(
                format!("an earlier apply failed: {reason}"),
            )))),
            None => Ok(()),
        }
    }

    /// Takes the queued records to apply; they stay counted as unapplied
    /// ([`Applier::unapplied`]) until [`Applier::apply_all`] has put each in the tree.
    /// Called under the apply lock.
    fn take(&self) -> VecDeque<(u64, Arc<Writes>)> {
        let mut queue = lock(&self.queue);
        let records = std::mem::take(&mut queue.records);
        queue.taken += records.len();
        records
    }

    /// Applies `records` (consecutive, in order) as one group: each key's newest value
    /// in them once, then the last one's sequence; then drops the group's keys from the
    /// overlay where no newer record wrote them. A chain's records rewrite the same
    /// keys (its DAG record every stage, each node and sub-task twice), so a group of
    /// them costs a fraction of the sled writes one at a time would. On a failure,
    /// records it and keeps the whole group unapplied (still in the overlay and in the
    /// log; the tree may hold part of it, which a replay writes again).
    fn apply_all(&self, records: VecDeque<(u64, Arc<Writes>)>) -> Result<(), StoreError> {
        if lock(&self.queue).failed.is_some() {
            return Ok(());
        }
        let Some(&(last, _)) = records.back() else {
            return Ok(());
        };
        let mut newest: BTreeMap<&[u8], Option<&[u8]>> = BTreeMap::new();
        for (_, writes) in &records {
            for (key, value) in writes.iter() {
                newest.insert(key, value.as_deref());
            }
        }
        if let Err(err) = apply_writes(&self.tree, newest.iter().map(|(k, v)| (*k, *v)), last) {
            tracing::error!(error = %err, last, "applying synced records failed");
            lock(&self.queue).failed = Some(err.to_string());
            return Err(err);
        }
        {
            let mut overlay = self.write_overlay();
            for key in newest.keys() {
                if overlay.get(*key).is_some_and(|(seq, ..)| *seq <= last) {
                    overlay.remove(*key);
                }
            }
        }
        lock(&self.queue).taken -= records.len();
        Ok(())
    }

    /// The thread: applies queued records until told to stop (module docs, Wake-ups).
    fn run(&self) {
        let mut idle = 0;
        loop {
            {
                let mut queue = lock(&self.queue);
                while !queue.stop && !self.may_apply(&queue) {
                    if idle < POLLS {
                        // Awake: a commit does not wake this thread, it looks again.
                        idle += 1;
                        queue = self
                            .wake
                            .wait_timeout(queue, POLL)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    } else {
                        queue.asleep = true;
                        queue = self
                            .wake
                            .wait(queue)
                            .unwrap_or_else(PoisonError::into_inner);
                        queue.asleep = false;
                    }
                }
                if queue.stop {
                    return;
                }
            }
            idle = 0;
            let _applying = lock(&self.applying);
            let records = self.take();
            // A failure is recorded for the log's next commit to report.
            let _ = self.apply_all(records);
        }
    }

    fn may_apply(&self, queue: &Queue) -> bool {
        #[cfg(any(test, feature = "failpoints"))]
        if queue.held {
            return false;
        }
        !queue.records.is_empty() && queue.failed.is_none()
    }

    /// Stops the thread (after the record it is applying, if any).
    pub(super) fn stop(&self) {
        lock(&self.queue).stop = true;
        self.wake.notify_one();
    }

    /// While `held`, the thread applies nothing: records stay in the overlay and the
    /// log only ([`Applier::drain`] still applies them).
    #[cfg(any(test, feature = "failpoints"))]
    pub(super) fn hold(&self, held: bool) {
        lock(&self.queue).held = held;
        self.wake.notify_one();
    }

    /// Records synced and not yet applied to the tree: queued, or taken by an apply
    /// that has not put them in the tree yet.
    pub(super) fn unapplied(&self) -> usize {
        let queue = lock(&self.queue);
        queue.records.len() + queue.taken
    }

    fn write_overlay(&self) -> RwLockWriteGuard<'_, Overlay> {
        self.overlay.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Holds readers out (the overlay's write lock) while `f` changes the tree.
    pub(super) fn exclusive<T>(&self, f: impl FnOnce(&sled::Tree) -> T) -> T {
        let _overlay = self.write_overlay();
        f(&self.tree)
    }

    /// One key, synced records included; `hidden` is never shown.
    pub(super) fn get(&self, key: &[u8], hidden: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if key == hidden {
            return Ok(None);
        }
        let overlay = self.overlay.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = overlay.get(key) {
            return Ok(newest(entry).map(<[u8]>::to_vec));
        }
        Ok(self.tree.get(key)?.map(|value| value.to_vec()))
    }

    /// Every pair under `prefix` in key order, synced records included; `hidden` is
    /// never shown.
    pub(super) fn scan_prefix(&self, prefix: &[u8], hidden: &[u8]) -> Result<Pairs, StoreError> {
        let overlay = self.overlay.read().unwrap_or_else(PoisonError::into_inner);
        let mut newer = overlay
            .range(prefix.to_vec()..)
            .take_while(|(key, _)| key.starts_with(prefix))
            .peekable();
        let mut pairs = Vec::new();
        let keep = |pairs: &mut Pairs, key: &[u8], value: &[u8]| {
            if key != hidden {
                pairs.push((key.to_vec(), value.to_vec()));
            }
        };
        for item in self.tree.scan_prefix(prefix) {
            let (key, value) = item?;
            // Synced keys before this one are not in the tree: puts add them.
            while let Some((new, entry)) = newer.next_if(|(new, _)| new.as_slice() < &*key) {
                if let Some(put) = newest(entry) {
                    keep(&mut pairs, new, put);
                }
            }
            // A synced write of this key replaces the tree's value (or deletes it).
            match newer.next_if(|(new, _)| new.as_slice() == &*key) {
                Some((_, entry)) => {
                    if let Some(put) = newest(entry) {
                        keep(&mut pairs, &key, put);
                    }
                }
                None => keep(&mut pairs, &key, &value),
            }
        }
        for (new, entry) in newer {
            if let Some(put) = newest(entry) {
                keep(&mut pairs, new, put);
            }
        }
        Ok(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tree of a temporary sled database.
    fn temporary_tree() -> sled::Tree {
        let db = sled::Config::new().temporary(true).open().unwrap();
        db.open_tree("t").unwrap()
    }

    fn record(n: u8) -> Writes {
        vec![(b"last".to_vec(), Some(vec![n]))]
    }

    /// `unapplied` is what a caller waits on before reading the tree directly: records
    /// the thread has taken but not yet written must still count (CI once saw the tree
    /// two records behind after `unapplied` read 0).
    #[test]
    fn records_being_applied_still_count_as_unapplied() {
        let tree = temporary_tree();
        let (applier, thread) = Applier::start(tree.clone()).unwrap();
        applier.hold(true);
        for n in 1..=3 {
            applier.publish(u64::from(n), record(n));
        }
        let records = {
            let _applying = lock(&applier.applying);
            applier.take()
        };
        assert_eq!(
            applier.unapplied(),
            3,
            "taken records are not in the tree yet"
        );
        assert!(tree.get("last").unwrap().is_none());
        applier.apply_all(records).unwrap();
        assert_eq!(applier.unapplied(), 0);
        assert_eq!(tree.get("last").unwrap().as_deref(), Some(&[3][..]));
        applier.stop();
        thread.join().unwrap();
    }

    /// A group of records rewriting the same keys leaves each key's newest write in the
    /// tree (a put over a delete, a delete over a put, a key only an early record
    /// wrote), the group's last sequence, and readers see the same before and after.
    #[test]
    fn a_group_of_records_applies_each_keys_newest_write() {
        let tree = temporary_tree();
        tree.insert("gone", "old").unwrap();
        let (applier, thread) = Applier::start(tree.clone()).unwrap();
        applier.hold(true);
        let put =
            |key: &str, value: &str| (key.as_bytes().to_vec(), Some(value.as_bytes().to_vec()));
        let delete = |key: &str| (key.as_bytes().to_vec(), None);
        let records: [Writes; 4] = [
            vec![put("a", "1"), put("b", "1"), put("early", "1")],
            vec![put("a", "2"), delete("b"), delete("gone")],
            vec![put("b", "3"), put("gone", "back")],
            vec![put("a", "4"), delete("gone")],
        ];
        for (seq, writes) in (1..).zip(records) {
            applier.publish(seq, writes);
        }
        let hidden = super::super::commit_log::APPLIED;
        let before = applier.scan_prefix(b"", hidden).unwrap();
        applier.drain().unwrap();
        assert_eq!(applier.unapplied(), 0);
        let value = |key: &str| tree.get(key).unwrap().map(|v| v.to_vec());
        assert_eq!(value("a"), Some(b"4".to_vec()));
        assert_eq!(value("b"), Some(b"3".to_vec()));
        assert_eq!(value("early"), Some(b"1".to_vec()));
        assert_eq!(value("gone"), None);
        assert_eq!(
            value("m/commit-log-applied"),
            Some(4u64.to_be_bytes().to_vec())
        );
        assert_eq!(applier.scan_prefix(b"", hidden).unwrap(), before);
        applier.stop();
        thread.join().unwrap();
    }
}

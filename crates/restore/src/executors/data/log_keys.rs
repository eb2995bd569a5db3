//! The rows a log stream's archived log writes: a data round does not write them.
//!
//! `Replay log L` applies every entry of L's log in `(restore_start_scn, restore_scn]`
//! after every data round of L (SPEC §4.3 order: `Restore data L` → `Replay log L`; LS 1's
//! data and log in that order inside `Restore sys tablets`). Entries are upserts with full
//! values and deletes, so a row whose `(tablet, key)` the log touches in that interval ends
//! in the state of the log's last entry for it, whatever the data round wrote before: the
//! data round's version is overwritten (or deleted: the replay's delete of a row never
//! written leaves the row absent all the same, which is what the digest and the truth
//! count). Skipping those rows saves writing, hashing and syncing them (about a quarter of
//! the demo backup's data rows, docs/performance.md).
//!
//! Invariants:
//! - **Exact.** [`LogKeys`] holds exactly the keys of the entries the replay applies: they
//!   come from the same [`obrestore_backup::ArchiveStore::log_entries`] call the replay
//!   makes from `restore_start_scn` (a resumed replay starts later, but what it skips was
//!   applied durably before it stopped). No approximate set: a false positive would lose
//!   a row.
//! - **Bounded.** Keys are counted at their length plus [`KEY_OVERHEAD`] bytes; once a
//!   stream's keys exceed [`LOG_KEYS_BUDGET`] (32 MiB, about 400 k keys of 40 bytes) the
//!   pass stops and that stream's data rounds write every row, as without this module.
//!   The same fallback follows any error reading the log (the replay meets and reports
//!   it) or a cancelled pass.
//! - **Once per stream, recomputed on resume.** The key set lives only in memory
//!   ([`LogKeysCache`]): the first data round of L to start reads L's log once (mostly from
//!   the page cache: `read_ahead.rs` reads the user streams' logs in order), concurrent
//!   rounds of L wait for it and share it, and it is freed when the last round of L holding
//!   it ends. After a restart (or if L's rounds do not overlap), the next round reads the
//!   log again and finds the same set, since the files are the same: nothing is
//!   persisted, so a crash anywhere in `Restore data L` or `Replay log L` finds the
//!   executors as idempotent as before (a re-run round writes the same rows in the same
//!   order; the replay re-applies entries over them).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use obrestore_backup::LogEntries;

/// Key bytes a stream's [`LogKeys`] may hold; above it the stream's rows are all written.
pub(crate) const LOG_KEYS_BUDGET: usize = 32 << 20;

/// Bytes counted per key beyond its own: the `Box<[u8]>` (16), the hash table's slot
/// and control byte, and the allocator's header.
pub(crate) const KEY_OVERHEAD: usize = 40;

/// Entries read between two checks of the cancellation flag.
const CANCEL_CHECK_ENTRIES: usize = 4096;

/// The `(tablet, key)`s a log stream's log touches in the replayed interval.
#[derive(Debug, Default)]
pub(crate) struct LogKeys {
    by_tablet: HashMap<u64, HashSet<Box<[u8]>>>,
    /// Keys held, and their bytes as counted against the budget.
    len: usize,
    bytes: usize,
}

impl LogKeys {
    /// Whether the log writes or deletes row `(tablet_id, key)` (no allocation).
    pub(crate) fn contains(&self, tablet_id: u64, key: &[u8]) -> bool {
        self.by_tablet
            .get(&tablet_id)
            .is_some_and(|keys| keys.contains(key))
    }

    /// Distinct keys held.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    /// Adds a key; `false` once the keys would exceed `budget` bytes.
    fn insert(&mut self, tablet_id: u64, key: &[u8], budget: usize) -> bool {
        let keys = self.by_tablet.entry(tablet_id).or_default();
        if keys.contains(key) {
            return true;
        }
        self.bytes = self.bytes.saturating_add(key.len() + KEY_OVERHEAD);
        if self.bytes > budget {
            return false;
        }
        keys.insert(key.into());
        self.len += 1;
        true
    }

    /// The keys of every entry `entries` yields, or `None` (write every row) if they
    /// exceed `budget` bytes, the log cannot be read, or `stop` turns true (checked every
    /// [`CANCEL_CHECK_ENTRIES`] entries).
    pub(crate) fn collect(
        mut entries: LogEntries,
        budget: usize,
        stop: impl Fn() -> bool,
    ) -> Option<LogKeys> {
        let mut keys = LogKeys::default();
        let mut read = 0usize;
        while let Some(entry) = entries.next_entry() {
            let entry = entry.ok()?;
            if !keys.insert(entry.tablet_id, entry.key, budget) {
                return None;
            }
            read += 1;
            if read % CANCEL_CHECK_ENTRIES == 0 && stop() {
                return None;
            }
        }
        Some(keys)
    }
}

/// A stream's key set, computed once by whoever asks first (`None`: write every row).
type Slot = OnceLock<Option<LogKeys>>;

/// The key sets of the streams whose data rounds run, by `(restore DAG id, log stream)`.
/// Holds them weakly: a set lives while a data round of its stream holds it.
#[derive(Default)]
pub(crate) struct LogKeysCache(Mutex<HashMap<(u64, u64), Weak<Slot>>>);

/// A data round's hold on its stream's key set.
pub(crate) struct HeldLogKeys(Arc<Slot>);

impl HeldLogKeys {
    /// The keys the round skips, `None` if it writes every row.
    pub(crate) fn keys(&self) -> Option<&LogKeys> {
        self.0.get().and_then(Option::as_ref)
    }
}

impl LogKeysCache {
    /// DAG `dag_id`'s key set of stream `ls`: the one a running round holds, or computed
    /// now by `compute` (once: concurrent callers wait for it).
    pub(crate) fn get(
        &self,
        dag_id: u64,
        ls: u64,
        compute: impl FnOnce() -> Option<LogKeys>,
    ) -> HeldLogKeys {
        let slot = {
            let mut held = self.0.lock().unwrap_or_else(|p| p.into_inner());
            held.retain(|_, slot| slot.strong_count() > 0);
            match held.get(&(dag_id, ls)).and_then(Weak::upgrade) {
                Some(slot) => slot,
                None => {
                    let slot = Arc::new(Slot::new());
                    held.insert((dag_id, ls), Arc::downgrade(&slot));
                    slot
                }
            }
        };
        slot.get_or_init(compute);
        HeldLogKeys(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::{LogKeys, LogKeysCache, KEY_OVERHEAD};

    /// Keys count once however often the log repeats them; above the budget the set
    /// gives up instead of growing.
    #[test]
    fn keys_are_exact_and_bounded() {
        let mut keys = LogKeys::default();
        let budget = 3 * (2 + KEY_OVERHEAD);
        assert!(keys.insert(7, b"ab", budget));
        assert!(keys.insert(7, b"ab", budget));
        assert!(keys.insert(8, b"ab", budget));
        assert!(keys.insert(7, b"cd", budget));
        assert_eq!(keys.len(), 3);
        assert!(keys.contains(7, b"ab") && keys.contains(8, b"ab") && keys.contains(7, b"cd"));
        assert!(!keys.contains(8, b"cd") && !keys.contains(9, b"ab") && !keys.contains(7, b"a"));
        assert!(!keys.insert(9, b"ef", budget));
        assert!(!keys.contains(9, b"ef"));
    }

    /// Rounds holding a stream's set share one computation; once none holds it, the
    /// next computes it again. Another stream or DAG has its own.
    #[test]
    fn a_set_is_computed_once_while_held() {
        let cache = LogKeysCache::default();
        let computed = std::cell::Cell::new(0);
        let compute = || {
            computed.set(computed.get() + 1);
            Some(LogKeys::default())
        };
        let first = cache.get(1, 2, compute);
        let second = cache.get(1, 2, compute);
        assert_eq!(computed.get(), 1);
        assert!(first.keys().is_some() && second.keys().is_some());
        let _other_ls = cache.get(1, 3, compute);
        let _other_dag = cache.get(2, 2, || None);
        assert_eq!(computed.get(), 2);
        assert!(_other_dag.keys().is_none());
        drop((first, second));
        let _again = cache.get(1, 2, compute);
        assert_eq!(computed.get(), 3);
        assert_eq!(cache.0.lock().unwrap().len(), 3);
    }
}

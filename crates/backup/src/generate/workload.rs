//! The tenant's rows while the workload changes them: per tablet the live keys and the
//! version of each row, the keys changed since the last successful set, and one
//! random insert, update or delete at a time.
//!
//! Only keys and versions are kept (a few tens of bytes per live row): a value is a
//! pure function of `(seed, tablet, key, version)` ([`ValueGen`]) and is regenerated
//! whenever the log or a set needs it.

use std::collections::{BTreeSet, HashMap};

use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use sha2::{Digest, Sha256};

use super::config::GenerateConfig;
use crate::block::LogOp;
use crate::meta::{LsId, TabletId};
use crate::scn::Scn;

/// Tablets of the sys log stream 1 (tablet ids 1, 2, 3).
const SYS_TABLETS: usize = 3;

fn mix(mut value: u64) -> u64 {
    // splitmix64 finaliser.
    value = value.wrapping_add(0x9E37_79B9_7F4A_7C15);
    value = (value ^ (value >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    value ^ (value >> 31)
}

/// Value bytes of a row version, a pure function of its coordinates.
pub(super) struct ValueGen {
    seed: u64,
    avg_len: u64,
}

impl ValueGen {
    pub(super) fn fill(&self, tablet_id: TabletId, key: u64, version: u32, buffer: &mut Vec<u8>) {
        let value_seed = mix(self.seed ^ mix(tablet_id ^ mix(key ^ mix(u64::from(version)))));
        let len = self.avg_len / 2 + value_seed % self.avg_len.max(1);
        buffer.clear();
        buffer.resize(len as usize, 0);
        ChaCha8Rng::seed_from_u64(value_seed).fill_bytes(buffer);
    }
}

pub(super) struct TabletState {
    pub(super) ls_id: LsId,
    pub(super) tablet_id: TabletId,
    next_key: u64,
    pub(super) live_keys: Vec<u64>,
    /// key -> (position in `live_keys`, version)
    pub(super) rows: HashMap<u64, (usize, u32)>,
}

/// One change the workload made.
pub(super) struct Change {
    /// Index of the tablet in [`Workload::tablets`].
    pub(super) tablet_index: usize,
    pub(super) ls_id: LsId,
    pub(super) tablet_id: TabletId,
    pub(super) op: LogOp,
    pub(super) key: u64,
}

impl Change {
    /// The truth file's letter of the change: `I`, `U` or `D`.
    pub(super) fn op_char(&self) -> char {
        match self.op {
            LogOp::Insert => 'I',
            LogOp::Update => 'U',
            LogOp::Delete => 'D',
        }
    }
}

/// The tenant's rows and the workload that changes them.
pub(super) struct Workload {
    pub(super) tablets: Vec<TabletState>,
    /// `(tablet index, key)` changed since the last successful set.
    pub(super) dirty: BTreeSet<(usize, u64)>,
    pub(super) values: ValueGen,
    pub(super) live_rows: u64,
    /// The value of the last change (empty for a delete).
    pub(super) value: Vec<u8>,
    /// Live rows the workload grows to, then hovers around.
    target_rows: u64,
    total_ops: u64,
    /// SCN distance between ops.
    step: u64,
    base: u64,
}

impl Workload {
    /// The tablets of `ls_ids` (3 in the sys LS, `tablets_per_ls` in each user LS), all
    /// empty, sized so that the log (every op, 2 per target row) and the sets (about 2.5
    /// copies of the live rows) hold about `target_bytes`: ~4.5 values per target row.
    pub(super) fn new(config: &GenerateConfig, ls_ids: &[LsId]) -> Workload {
        let target_rows = (config.target_bytes / 4096).clamp(64, 2_000_000);
        let avg_len = (config.target_bytes / (target_rows * 9 / 2)).clamp(16, 8 << 20);
        let total_ops = target_rows * 2;
        let mut tablets = Vec::new();
        for &ls_id in ls_ids {
            let count = if ls_id == 1 {
                SYS_TABLETS as u64
            } else {
                u64::from(config.tablets_per_ls)
            };
            for index in 0..count {
                let tablet_id = if ls_id == 1 {
                    index + 1
                } else {
                    200_001 + (ls_id - 1001) * 1000 + index
                };
                tablets.push(TabletState {
                    ls_id,
                    tablet_id,
                    next_key: 1,
                    live_keys: Vec::new(),
                    rows: HashMap::new(),
                });
            }
        }
        Workload {
            tablets,
            dirty: BTreeSet::new(),
            values: ValueGen {
                seed: mix(config.seed ^ 0x5EED),
                avg_len,
            },
            live_rows: 0,
            value: Vec::new(),
            target_rows,
            total_ops,
            step: (config.duration_ns / (total_ops + 1)).max(2),
            base: config.base_scn.as_u64(),
        }
    }

    /// How many ops the workload makes.
    pub(super) fn total_ops(&self) -> u64 {
        self.total_ops
    }

    /// The SCN of op `op_index`: evenly spread, each a little early.
    pub(super) fn op_scn(&self, op_index: u64, rng: &mut ChaCha8Rng) -> Scn {
        let step = self.step;
        Scn(self.base + (op_index + 1) * step - rng.gen_range(0..step / 2))
    }

    /// Makes one random change: 5% in the sys tablets; inserts mostly while the tenant
    /// grows to its target rows, then a mix that keeps it there.
    pub(super) fn next_change(&mut self, rng: &mut ChaCha8Rng) -> Change {
        let tablet_index = if rng.gen_range(0..100) < 5 {
            rng.gen_range(0..SYS_TABLETS)
        } else {
            rng.gen_range(SYS_TABLETS..self.tablets.len())
        };
        let roll = rng.gen_range(0..100u32);
        let tablet = &mut self.tablets[tablet_index];
        let (insert, update) = if self.live_rows < self.target_rows {
            (70, 90)
        } else {
            (20, 80)
        };
        let op = if tablet.live_keys.is_empty() || roll < insert {
            LogOp::Insert
        } else if roll < update {
            LogOp::Update
        } else {
            LogOp::Delete
        };
        let key = match op {
            LogOp::Insert => tablet.insert(),
            LogOp::Update => tablet.update(rng),
            LogOp::Delete => tablet.delete(rng),
        };
        match op {
            LogOp::Insert => self.live_rows += 1,
            LogOp::Delete => self.live_rows -= 1,
            LogOp::Update => {}
        }
        Change {
            tablet_index,
            ls_id: tablet.ls_id,
            tablet_id: tablet.tablet_id,
            op,
            key,
        }
    }

    /// Puts the value of `change`'s row version in [`Workload::value`] (clears it for a
    /// delete) and returns its SHA-256 (`None` for a delete).
    pub(super) fn fill_value(&mut self, change: &Change) -> Option<[u8; 32]> {
        if change.op == LogOp::Delete {
            self.value.clear();
            return None;
        }
        let version = self.tablets[change.tablet_index]
            .rows
            .get(&change.key)
            .map_or(0, |row| row.1);
        self.values
            .fill(change.tablet_id, change.key, version, &mut self.value);
        Some(Sha256::digest(&self.value).into())
    }
}

impl TabletState {
    /// A new row with the next key, version 0.
    fn insert(&mut self) -> u64 {
        let key = self.next_key;
        self.next_key += 1;
        self.rows.insert(key, (self.live_keys.len(), 0));
        self.live_keys.push(key);
        key
    }

    /// A random live row gets its next version.
    fn update(&mut self, rng: &mut ChaCha8Rng) -> u64 {
        let key = self.live_keys[rng.gen_range(0..self.live_keys.len())];
        if let Some(row) = self.rows.get_mut(&key) {
            row.1 += 1;
        }
        key
    }

    /// A random live row goes.
    fn delete(&mut self, rng: &mut ChaCha8Rng) -> u64 {
        let position = rng.gen_range(0..self.live_keys.len());
        let key = self.live_keys.swap_remove(position);
        self.rows.remove(&key);
        if let Some(&moved) = self.live_keys.get(position) {
            if let Some(row) = self.rows.get_mut(&moved) {
                row.0 = position;
            }
        }
        key
    }
}

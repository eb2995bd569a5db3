//! Tenant rows and the changes a restore applies to them.

use serde::{Deserialize, Serialize};

/// One change to a tenant's rows. `Put` is an upsert, `Delete` of a missing row is a no-op.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RowOp {
    Put {
        tablet_id: u64,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        tablet_id: u64,
        key: Vec<u8>,
    },
}

/// One change of a [`RowBatch`], borrowed from it: `value: None` is a delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RowChange<'a> {
    pub tablet_id: u64,
    pub key: &'a [u8],
    pub value: Option<&'a [u8]>,
}

impl RowChange<'_> {
    /// `(tablet_id, key)`, the order rows are stored in.
    pub fn sort_key(&self) -> (u64, &[u8]) {
        (self.tablet_id, self.key)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PackedChange {
    tablet_id: u64,
    start: usize,
    key_end: usize,
    value_end: usize,
    delete: bool,
}

/// Row changes packed into one buffer, applied in order as one atomic batch
/// ([`crate::TenantService::apply_batch`]). Filling one costs no allocation per row once
/// its buffers have grown, so the restore executors reuse one per worker.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowBatch {
    bytes: Vec<u8>,
    changes: Vec<PackedChange>,
}

impl RowBatch {
    /// An empty batch.
    pub fn new() -> RowBatch {
        RowBatch::default()
    }

    /// Appends an upsert.
    pub fn put(&mut self, tablet_id: u64, key: &[u8], value: &[u8]) {
        self.push(tablet_id, key, Some(value));
    }

    /// Appends a delete (a no-op for a missing row).
    pub fn delete(&mut self, tablet_id: u64, key: &[u8]) {
        self.push(tablet_id, key, None);
    }

    /// Appends a change: `value: None` is a delete.
    pub fn push(&mut self, tablet_id: u64, key: &[u8], value: Option<&[u8]>) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(key);
        let key_end = self.bytes.len();
        if let Some(value) = value {
            self.bytes.extend_from_slice(value);
        }
        self.changes.push(PackedChange {
            tablet_id,
            start,
            key_end,
            value_end: self.bytes.len(),
            delete: value.is_none(),
        });
    }

    /// Number of changes.
    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// No changes.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Bytes of keys and values held.
    pub fn byte_len(&self) -> usize {
        self.bytes.len()
    }

    /// Removes every change, keeping the buffers.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.changes.clear();
    }

    /// The `index`-th change.
    ///
    /// # Panics
    /// If `index >= self.len()`.
    pub fn get(&self, index: usize) -> RowChange<'_> {
        let change = self.changes[index];
        RowChange {
            tablet_id: change.tablet_id,
            key: &self.bytes[change.start..change.key_end],
            value: (!change.delete).then(|| &self.bytes[change.key_end..change.value_end]),
        }
    }

    /// The changes in order.
    pub fn iter(&self) -> impl Iterator<Item = RowChange<'_>> + '_ {
        (0..self.len()).map(|index| self.get(index))
    }

    /// A batch holding `ops`.
    pub fn from_ops(ops: &[RowOp]) -> RowBatch {
        let mut batch = RowBatch::new();
        for op in ops {
            match op {
                RowOp::Put {
                    tablet_id,
                    key,
                    value,
                } => batch.put(*tablet_id, key, value),
                RowOp::Delete { tablet_id, key } => batch.delete(*tablet_id, key),
            }
        }
        batch
    }
}

/// One row of a tenant.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Row {
    pub tablet_id: u64,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
}

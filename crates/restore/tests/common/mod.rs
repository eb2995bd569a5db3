//! Helpers shared by the cluster and row-store tests.
#![allow(dead_code)] // each test binary uses a subset

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use obrestore_restore::cluster::{Row, RowOp};

pub mod fixtures;

/// `(tablet_id, key) -> value`: what a tenant's rows must be.
pub type Model = BTreeMap<(u64, Vec<u8>), Vec<u8>>;

/// Applies `ops` to the model in order, as `apply_rows` applies them to a tenant.
pub fn apply_model(model: &mut Model, ops: &[RowOp]) {
    for op in ops {
        match op {
            RowOp::Put {
                tablet_id,
                key,
                value,
            } => {
                model.insert((*tablet_id, key.clone()), value.clone());
            }
            RowOp::Delete { tablet_id, key } => {
                model.remove(&(*tablet_id, key.clone()));
            }
        }
    }
}

/// The model's rows in `(tablet_id, key)` order.
pub fn model_rows(model: &Model) -> Vec<Row> {
    model
        .iter()
        .map(|((tablet_id, key), value)| Row {
            tablet_id: *tablet_id,
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

/// Runs `open` again while it fails with sled's "could not acquire lock" (for up to
/// 10 s): sled releases its file lock from a background thread shortly after the last
/// handle of a database is dropped, so a reopen right after a close, or a child started
/// right after the parent closed, can find it still taken for a moment.
pub fn retry_while_locked<T, E: std::fmt::Display>(
    mut open: impl FnMut() -> Result<T, E>,
) -> Result<T, E> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match open() {
            Err(error)
                if error.to_string().contains("could not acquire lock")
                    && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            result => return result,
        }
    }
}

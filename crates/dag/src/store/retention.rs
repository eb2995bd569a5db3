//! Retention: deleting finished DAGs once they are old enough.
//!
//! Invariant: only SUCCEED DAGs are pruned (a FAILED DAG may still get an operator),
//! and a DAG goes with all its records (nodes, sub-tasks, logs) in one atomic batch.
//! Lock records stay; the engine forgets the ones whose taker is gone when it opens.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Batch, Records, StoreError};
use crate::model::State;
use crate::record::{keys, DagRecord};

/// Deletes SUCCEED DAGs that ended before `now - retention`. Returns how many.
///
/// # Errors
/// A store failure; then nothing was deleted.
pub(crate) fn prune(
    records: &Records,
    now: DateTime<Utc>,
    retention: Duration,
) -> Result<usize, StoreError> {
    let cutoff = now - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let mut batch = Batch::default();
    let mut pruned = 0;
    for dag in records.all_dags()? {
        if dag.state != State::Succeed || dag.end_time.is_none_or(|end| end >= cutoff) {
            continue;
        }
        delete_dag(records, &dag, &mut batch)?;
        pruned += 1;
    }
    if !batch.is_empty() {
        records.kv.commit(batch)?;
    }
    Ok(pruned)
}

/// Adds the deletion of `dag` and everything of it to `batch`.
fn delete_dag(records: &Records, dag: &DagRecord, batch: &mut Batch) -> Result<(), StoreError> {
    for node in records.nodes_of(dag)? {
        for task_id in &node.task_ids {
            for (key, _) in records.kv.scan_prefix(&keys::task_logs(*task_id))? {
                batch.delete(key);
            }
            batch.delete(keys::task(*task_id));
        }
        batch.delete(keys::node(node.id));
    }
    batch.delete(keys::dag(dag.id));
    Ok(())
}

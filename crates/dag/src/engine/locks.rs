//! The maintenance lock table: which DAG holds each lock now, and which DAG took each
//! lock last.
//!
//! Invariant: the table mirrors the lock records in the store once the batch being
//! decided is durable: every change here writes the lock's record into the same batch.
//! A released lock keeps its record (`held: false`), so that an operator on an older
//! DAG can tell that a newer one took the lock in between (obshell's `Task.Expired`).

use std::collections::HashMap;

use super::txn::Txn;
use crate::dto::DtoBuilder;
use crate::error::{LockConflict, OperateError};
use crate::model::{Maintenance, Scope};
use crate::record::{keys, DagRecord, LockRecord, RECORD_VERSION};
use crate::store::{Records, StoreError};

/// A held maintenance lock, by lock key.
#[derive(Debug, Clone)]
struct Holder {
    dag_id: u64,
    dag_name: String,
}

/// The DAG that took a lock last (whether or not it still holds it).
#[derive(Debug, Clone, Copy)]
struct Taker {
    dag_id: u64,
    scope: Scope,
}

/// Locks held now and the last taker of every lock, by lock key.
#[derive(Default)]
pub(crate) struct LockTable {
    held: HashMap<Vec<u8>, Holder>,
    takers: HashMap<Vec<u8>, Taker>,
}

impl LockTable {
    /// Reads every lock record. A lock whose taker was pruned is forgotten: nobody can
    /// be expired by it any more.
    pub(crate) fn load(records: &Records) -> Result<LockTable, StoreError> {
        let mut table = LockTable::default();
        for (key, lock) in records.locks()? {
            let Some(taker) = records.dag(lock.dag_id)? else {
                continue;
            };
            if lock.held {
                table.held.insert(
                    key.clone(),
                    Holder {
                        dag_id: taker.id,
                        dag_name: taker.name.clone(),
                    },
                );
            }
            table.takers.insert(
                key,
                Taker {
                    dag_id: taker.id,
                    scope: taker.scope,
                },
            );
        }
        Ok(table)
    }

    /// Which held lock, if any, keeps `maintenance` from being taken by `dag_id`
    /// (`None`: a DAG being submitted).
    pub(crate) fn conflict(
        &self,
        maintenance: &Maintenance,
        dag_id: Option<u64>,
    ) -> Option<LockConflict> {
        let others = |holder: &&Holder| Some(holder.dag_id) != dag_id;
        let conflict = |lock: Maintenance, holder: &Holder| LockConflict {
            lock,
            holder: holder.dag_id,
            holder_name: holder.dag_name.clone(),
        };
        let global = keys::lock(&Maintenance::Global).unwrap_or_default();
        match maintenance {
            Maintenance::None => None,
            Maintenance::Global => self
                .held
                .iter()
                .filter(|(_, holder)| others(holder))
                .min_by_key(|(_, holder)| holder.dag_id)
                .map(|(key, holder)| conflict(keys::lock_of(key), holder)),
            Maintenance::Tenant(_) => {
                if let Some(holder) = self.held.get(&global).filter(others) {
                    return Some(conflict(Maintenance::Global, holder));
                }
                let key = keys::lock(maintenance).unwrap_or_default();
                self.held
                    .get(&key)
                    .filter(others)
                    .map(|holder| conflict(maintenance.clone(), holder))
            }
        }
    }

    /// Records that `dag` holds the lock at `key` (in memory and in the batch).
    pub(crate) fn take(&mut self, txn: &mut Txn, key: Vec<u8>, dag: &DagRecord) {
        self.held.insert(
            key.clone(),
            Holder {
                dag_id: dag.id,
                dag_name: dag.name.clone(),
            },
        );
        self.takers.insert(
            key.clone(),
            Taker {
                dag_id: dag.id,
                scope: dag.scope,
            },
        );
        txn.batch.put_record(
            key,
            LockRecord {
                v: RECORD_VERSION,
                dag_id: dag.id,
                held: true,
            },
        );
    }

    /// Releases the lock at `key` if `dag_id` holds it. The record stays: it remembers
    /// who took the lock last.
    pub(crate) fn release(&mut self, txn: &mut Txn, key: Vec<u8>, dag_id: u64) {
        if self.held.get(&key).map(|holder| holder.dag_id) != Some(dag_id) {
            return;
        }
        self.held.remove(&key);
        txn.batch.put_record(
            key,
            LockRecord {
                v: RECORD_VERSION,
                dag_id,
                held: false,
            },
        );
    }

    /// Takes `dag`'s lock (at `key`) back after a failure released it, as obshell's
    /// `StartMaintenance` + `UpdateMaintenanceTask` do: refused while another DAG holds
    /// it, and `Expired` when a newer DAG has taken a tenant lock in between.
    pub(crate) fn retake(
        &mut self,
        txn: &mut Txn,
        ids: &DtoBuilder,
        key: Vec<u8>,
        dag: &DagRecord,
    ) -> Result<(), OperateError> {
        if let Some(conflict) = self.conflict(&dag.maintenance, Some(dag.id)) {
            return Err(OperateError::LockConflict(conflict));
        }
        if let Maintenance::Tenant(lock_key) = &dag.maintenance {
            if let Some(taker) = self.takers.get(&key).filter(|t| t.dag_id != dag.id) {
                return Err(OperateError::Expired {
                    lock_key: lock_key.clone(),
                    holder: ids.generic_id(taker.dag_id, taker.scope),
                    dag: ids.generic_id(dag.id, dag.scope),
                    dag_name: dag.name.clone(),
                });
            }
        }
        self.take(txn, key, dag);
        Ok(())
    }
}

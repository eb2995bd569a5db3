//! Tenant rows: the [`SledCluster`] side of [`crate::cluster::rowstore`]. A batch is
//! applied only to a tenant that exists and is not DROPPING; rows of a dropped tenant
//! are removed with it ([`super::tenants`]). On etcd with a fence, every row write
//! (batch, drop, compaction) first checks that the fence holds
//! ([`SledCluster::check_row_writer`]).

use obrestore_backup::truth::TenantDigest;
use tracing::instrument;

use super::SledCluster;
use crate::cluster::digest::digest_scan;
use crate::cluster::error::{ClusterError, ClusterResult};
use crate::cluster::model::{RowBatch, RowOp, TenantStatus};
use crate::cluster::rowstore::RunStats;
use crate::cluster::service::RowVisitor;

impl SledCluster {
    /// [`crate::TenantService::apply_batch`] of `ops`.
    ///
    /// # Errors
    /// As [`crate::TenantService::apply_batch`].
    pub fn apply_rows(&self, tenant_id: u64, ops: &[RowOp]) -> ClusterResult<()> {
        apply_batch(self, tenant_id, &RowBatch::from_ops(ops))
    }

    /// Number of rows of the tenant (a scan).
    ///
    /// # Errors
    /// Storage failures.
    pub fn row_count(&self, tenant_id: u64) -> ClusterResult<u64> {
        let mut count = 0;
        // Values are not needed: the hashed scan checks them without copying them out.
        self.rows.for_each_hashed(tenant_id, &mut |_, _, _| {
            count += 1;
            Ok(())
        })?;
        Ok(count)
    }

    /// The tenant digest of `docs/backup-format.md` §5 (row count and SHA-256) of the
    /// tenant's rows: what the restore's Post check records and `verify` compares with
    /// the source. It reads every run back (CRC checked) but takes each value's SHA-256
    /// from the run, where the batch's writer stored it (`cluster/digest.rs`).
    ///
    /// # Errors
    /// Storage failures; a row file that cannot be read or is not a valid run
    /// (`RowFile`).
    pub fn tenant_digest(&self, tenant_id: u64) -> ClusterResult<TenantDigest> {
        digest_scan(tenant_id, |visit| {
            self.rows.for_each_hashed(tenant_id, visit)
        })
    }

    /// Removes all rows of the tenant; returns how many there were.
    ///
    /// # Errors
    /// Storage failures.
    #[instrument(skip(self))]
    pub fn drop_rows(&self, tenant_id: u64) -> ClusterResult<u64> {
        // A run that cannot be read is dropped all the same; then the count is the
        // number of stored versions (an upper bound).
        let count = self
            .row_count(tenant_id)
            .unwrap_or_else(|_| self.rows.stats(tenant_id).versions);
        self.check_row_writer()?;
        self.rows.drop_tenant(tenant_id)?;
        obrestore_dag::crash_point::hit(super::CLUSTER_WRITE);
        Ok(count)
    }

    /// Merges the tenant's row runs into one (what [`SledCluster::apply_rows`] does by
    /// itself past [`crate::cluster::COMPACT_AT_RUNS`] runs). Returns how many runs were
    /// merged.
    ///
    /// # Errors
    /// I/O failures, a corrupt run.
    pub fn compact_rows(&self, tenant_id: u64) -> ClusterResult<usize> {
        self.check_row_writer()?;
        self.rows.compact(tenant_id)
    }

    /// Runs and row versions stored for the tenant.
    pub fn row_stats(&self, tenant_id: u64) -> RunStats {
        self.rows.stats(tenant_id)
    }
}

/// [`crate::TenantService::apply_batch`].
pub(super) fn apply_batch(
    cluster: &SledCluster,
    tenant_id: u64,
    batch: &RowBatch,
) -> ClusterResult<()> {
    match super::tenants::tenant_by_id(cluster, tenant_id)? {
        None => return Err(ClusterError::TenantIdNotFound(tenant_id)),
        Some(tenant) if tenant.status == TenantStatus::Dropping => {
            return Err(ClusterError::TenantState {
                name: tenant.name,
                actual: TenantStatus::Dropping.to_string(),
                expected: "NORMAL or RESTORE".to_string(),
            })
        }
        Some(_) => {}
    }
    cluster.check_row_writer()?;
    cluster.rows.apply(tenant_id, batch)?;
    obrestore_dag::crash_point::hit(super::CLUSTER_WRITE);
    Ok(())
}

/// [`crate::TenantService::for_each_row`].
pub(super) fn for_each_row(
    cluster: &SledCluster,
    tenant_id: u64,
    visit: &mut RowVisitor<'_>,
) -> ClusterResult<()> {
    cluster.rows.for_each(tenant_id, visit)
}

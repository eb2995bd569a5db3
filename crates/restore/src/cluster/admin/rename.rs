//! Renaming a tenant (`ALTER TENANT .. RENAME GLOBAL_NAME TO ..`).

use tracing::instrument;

use super::{check, check_state, tx_tenant, Accept};
use crate::cluster::error::{ClusterError, ClusterResult};
use crate::cluster::model::Tenant;
use crate::cluster::sled_store::{abort, SledCluster, Tree};
use crate::param::{check_tenant_name, RestoreParamError};

impl SledCluster {
    /// Renames a tenant (`ALTER TENANT .. RENAME GLOBAL_NAME TO ..`). Renaming to its
    /// own name returns it unchanged. A tenant with an unfinished restore job is
    /// refused, since the job is found by the tenant's name (a RESTORE tenant already
    /// is, by its status).
    ///
    /// # Errors
    /// `TenantNameEmpty`, `TenantNameInvalid` (obshell's rules for `new_name`),
    /// `TenantNotFound`, `TenantState`, `RestoreJobConflict`, `TenantExists` when
    /// `new_name` is taken, storage failures.
    #[instrument(skip(self))]
    pub fn rename_tenant(&self, name: &str, new_name: &str) -> ClusterResult<Tenant> {
        if new_name.is_empty() {
            return Err(ClusterError::TenantNameEmpty);
        }
        check_tenant_name(new_name).map_err(|err| match err {
            RestoreParamError::TenantNameInvalid { name, reason } => {
                ClusterError::TenantNameInvalid { name, reason }
            }
            _ => ClusterError::TenantNameEmpty,
        })?;
        let now = self.clock.now();
        self.transact(|tx| {
            let mut tenant = tx_tenant(tx, name)?;
            check(check_state(&tenant, Accept::Normal))?;
            if tenant.name == new_name {
                return Ok(tenant);
            }
            // The unfinished restore job is found by the tenant's name.
            if let Some(job_id) = tx.get_u64(Tree::ActiveRestoreJobs, tenant.name.as_bytes())? {
                return abort(ClusterError::RestoreJobConflict {
                    tenant: tenant.name.clone(),
                    job_id,
                });
            }
            if tx.tenant_id_by_name(new_name)?.is_some() {
                return abort(ClusterError::TenantExists(new_name.to_string()));
            }
            tx.remove(Tree::TenantNames, tenant.name.as_bytes())?;
            tx.put_u64(Tree::TenantNames, new_name.as_bytes(), tenant.id)?;
            tenant.name = new_name.to_string();
            tenant.updated_at = now;
            tx.put_tenant(&tenant)?;
            Ok(tenant)
        })
    }
}

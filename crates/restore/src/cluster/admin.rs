//! Tenant administration on the embedded cluster: what obshell's tenant API
//! (`agent/executor/tenant`) does to a tenant, at the domain level. One file per
//! operation family:
//!
//! | file | what |
//! |---|---|
//! | [`options`] | create-tenant options: charset, variables, parameters, whitelist, password |
//! | [`rename`] | `ALTER TENANT .. RENAME GLOBAL_NAME` |
//! | [`primary_zone`] | the primary zone |
//! | [`replicas`] | scale out, scale in, modify replicas |
//! | [`locality`] | the locality and primary-zone rules `primary_zone` and `replicas` share |
//! | [`tenant_pools`] | a tenant's pools while a transaction splits, resizes and drops them |
//! | [`variables`] | system variables and tenant parameters, set and read |
//! | [`root_password`] | set, persist and check the root password |
//!
//! [`crate::TenantService`] documents the operations the tenant DAGs call; the others
//! are documented where they are defined, as inherent methods of [`SledCluster`].
//!
//! Each write is one sled transaction (all checks, then all changes), flushed before it
//! returns. Checks run in obshell's order so the first error is the one obshell gives.
//! Root-password work (PBKDF2) runs outside the transaction: the tenant is read, the
//! password checked, and the transaction then writes only if the stored verifier is
//! still the one checked (else it starts over).

mod locality;
mod options;
mod primary_zone;
mod rename;
mod replicas;
mod root_password;
mod tenant_pools;
mod variables;

use sled::transaction::ConflictableTransactionError;

use super::error::{ClusterError, ClusterResult};
use super::model::{Tenant, TenantStatus};
use super::service::TenantService;
use super::sled_store::{abort, SledCluster, Tx, TxResult};

pub use options::check_tenant_options;
pub(in crate::cluster) use options::TenantSettings;
pub(in crate::cluster) use primary_zone::set_primary_zone;
pub(in crate::cluster) use replicas::{add_replicas, modify_replicas, remove_replicas};
pub(in crate::cluster) use root_password::set_root_password;
pub(in crate::cluster) use variables::{set_parameters, set_variables};

/// Which statuses a write accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Accept {
    Normal,
    NormalOrRestore,
}

/// Refuses a tenant in the recycle bin, DROPPING, or of a status `accept` excludes.
fn check_state(tenant: &Tenant, accept: Accept) -> ClusterResult<()> {
    let expected = match accept {
        Accept::Normal => "NORMAL",
        Accept::NormalOrRestore => "NORMAL or RESTORE",
    };
    let refuse = |actual: &str| {
        Err(ClusterError::TenantState {
            name: tenant.name.clone(),
            actual: actual.to_string(),
            expected: expected.to_string(),
        })
    };
    if tenant.in_recyclebin() {
        return refuse("in the recycle bin");
    }
    match (tenant.status, accept) {
        (TenantStatus::Normal, _) | (TenantStatus::Restore, Accept::NormalOrRestore) => Ok(()),
        (status, _) => refuse(status.as_str()),
    }
}

/// A [`ClusterResult`] inside a transaction: its error aborts it.
fn check<R>(result: ClusterResult<R>) -> TxResult<R> {
    result.map_err(ConflictableTransactionError::Abort)
}

/// The tenant named `name` (its current name, or its recycle-bin object name).
fn tx_tenant(tx: &Tx<'_>, name: &str) -> TxResult<Tenant> {
    let not_found = || ClusterError::TenantNotFound(name.to_string());
    let Some(id) = tx.tenant_id_by_name(name)? else {
        return abort(not_found());
    };
    match tx.tenant_by_id(id)? {
        Some(tenant) => Ok(tenant),
        None => abort(not_found()),
    }
}

/// The tenant `name`, or `TenantNotFound` (outside a transaction).
fn tenant_named(cluster: &SledCluster, name: &str) -> ClusterResult<Tenant> {
    cluster
        .tenant(name)?
        .ok_or_else(|| ClusterError::TenantNotFound(name.to_string()))
}

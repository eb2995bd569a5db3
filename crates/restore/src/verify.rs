//! Checking a restored tenant against the source.
//!
//! The expected rows come from [`obrestore_backup::truth`], which reads the generator's
//! workload file and shares no code with the restore path. The restored side is the
//! cluster's [`SledCluster::tenant_digest`], the same digest definition
//! (`docs/backup-format.md` §5) over the cluster's rows.

use std::path::Path;

use obrestore_backup::truth::{self, TenantDigest};
use obrestore_backup::Scn;

use crate::cluster::{ClusterError, SledCluster, TenantService};

/// Why a digest could not be computed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("tenant '{0}' does not exist")]
    NoTenant(String),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    #[error(transparent)]
    Backup(#[from] obrestore_backup::BackupError),
}

/// The [`TenantDigest`] of a tenant's rows in the cluster:
/// [`SledCluster::tenant_digest`] of the tenant named `tenant_name`.
///
/// # Errors
/// The tenant is missing or the cluster cannot be read.
pub fn restored_digest(
    cluster: &SledCluster,
    tenant_name: &str,
) -> Result<TenantDigest, VerifyError> {
    let tenant = cluster
        .tenant(tenant_name)?
        .ok_or_else(|| VerifyError::NoTenant(tenant_name.to_string()))?;
    Ok(cluster.tenant_digest(tenant.id)?)
}

/// The outcome of comparing a restored tenant with the source at `scn`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub expected: TenantDigest,
    pub actual: TenantDigest,
}

impl Verification {
    pub fn matches(&self) -> bool {
        self.expected == self.actual
    }
}

/// Compares the tenant's rows with the source's rows as of `scn` (from `truth_dir`).
///
/// # Errors
/// The truth files or the cluster cannot be read.
pub fn verify_tenant(
    cluster: &SledCluster,
    tenant_name: &str,
    truth_dir: &Path,
    scn: u64,
) -> Result<Verification, VerifyError> {
    let expected = truth::rows_at(truth_dir, Scn(scn))?.digest();
    let actual = restored_digest(cluster, tenant_name)?;
    Ok(Verification { expected, actual })
}

//! The tenant's root password: set (checking the old one), persist (the agent holds
//! it), check. Only a salted verifier is stored ([`crate::cluster::password`]). The
//! PBKDF2 work runs outside the transaction; the transaction writes only if the stored
//! verifier is still the one checked, else the work starts over.

use tracing::instrument;

use super::{check, check_state, tenant_named, tx_tenant, Accept};
use crate::cluster::error::{ClusterError, ClusterResult};
use crate::cluster::model::{PasswordVerifier, Tenant};
use crate::cluster::password;
use crate::cluster::sled_store::SledCluster;

/// How many times a root-password change starts over when the password changed under it.
const PASSWORD_ATTEMPTS: usize = 3;

impl SledCluster {
    /// Whether `password` is the tenant's root password (the empty one when it has
    /// none). Locks and status do not matter.
    ///
    /// # Errors
    /// `TenantNotFound`, storage failures.
    pub fn check_root_password(&self, name: &str, password: &str) -> ClusterResult<bool> {
        let tenant = tenant_named(self, name)?;
        Ok(password::is_current(
            tenant.root_password.as_ref(),
            password,
        ))
    }

    /// Records that the agent holds the root password (obshell's
    /// `persist_tenant_root_password`, which first logs in with it). Idempotent.
    ///
    /// # Errors
    /// `TenantNotFound`, `TenantState`, `TenantLocked` (no login possible),
    /// `RootPasswordIncorrect`.
    #[instrument(skip(self, password))]
    pub fn persist_root_password(&self, name: &str, password: &str) -> ClusterResult<Tenant> {
        for _ in 0..PASSWORD_ATTEMPTS {
            let tenant = tenant_named(self, name)?;
            check_password_writable(&tenant)?;
            if !password::is_current(tenant.root_password.as_ref(), password) {
                return Err(ClusterError::RootPasswordIncorrect {
                    tenant: tenant.name,
                });
            }
            let written = write_if_password_unchanged(self, &tenant, |tenant| {
                tenant.root_password_persisted = true;
            })?;
            if let Some(tenant) = written {
                return Ok(tenant);
            }
        }
        Err(ClusterError::RootPasswordIncorrect {
            tenant: name.to_string(),
        })
    }
}

/// The checks every root-password write makes: NORMAL and not locked (obshell logs in
/// to the tenant to change or verify it).
fn check_password_writable(tenant: &Tenant) -> ClusterResult<()> {
    check_state(tenant, Accept::Normal)?;
    if tenant.locked {
        return Err(ClusterError::TenantLocked(tenant.name.clone()));
    }
    Ok(())
}

/// Writes `update` of the tenant if its id and stored verifier are still those of
/// `read` (the PBKDF2 work happened outside the transaction); `None` if they changed.
fn write_if_password_unchanged(
    cluster: &SledCluster,
    read: &Tenant,
    update: impl Fn(&mut Tenant),
) -> ClusterResult<Option<Tenant>> {
    let now = cluster.clock.now();
    cluster.transact(|tx| {
        let mut tenant = tx_tenant(tx, &read.name)?;
        check(check_password_writable(&tenant))?;
        if tenant.id != read.id || tenant.root_password != read.root_password {
            return Ok(None);
        }
        let before = tenant.clone();
        update(&mut tenant);
        if tenant != before {
            tenant.updated_at = now;
            tx.put_tenant(&tenant)?;
        }
        Ok(Some(tenant))
    })
}

/// [`crate::TenantService::set_root_password`].
pub(in crate::cluster) fn set_root_password(
    cluster: &SledCluster,
    name: &str,
    new: &str,
    old: Option<&str>,
) -> ClusterResult<Tenant> {
    let mut new_verifier: Option<Option<PasswordVerifier>> = None;
    for _ in 0..PASSWORD_ATTEMPTS {
        let tenant = tenant_named(cluster, name)?;
        check_password_writable(&tenant)?;
        let current = tenant.root_password.as_ref();
        if password::is_current(current, new) {
            return Ok(tenant);
        }
        if !password::is_current(current, old.unwrap_or_default()) {
            return Err(ClusterError::RootPasswordIncorrect {
                tenant: tenant.name,
            });
        }
        let verifier = new_verifier
            .get_or_insert_with(|| {
                (!new.is_empty())
                    .then(|| password::new_verifier(new, cluster.password_kdf_iterations))
            })
            .clone();
        let written = write_if_password_unchanged(cluster, &tenant, |tenant| {
            tenant.root_password = verifier.clone();
            tenant.root_password_persisted = false;
        })?;
        if let Some(tenant) = written {
            return Ok(tenant);
        }
    }
    // The password kept changing under us: the old one is no longer current.
    Err(ClusterError::RootPasswordIncorrect {
        tenant: name.to_string(),
    })
}

//! System variables (`ALTER TENANT .. SET VARIABLES`) and tenant parameters
//! (`ALTER SYSTEM SET .. TENANT = ..`): set all or none, after the catalogue
//! ([`crate::cluster::catalog`]) checked and normalized them; read with the catalogue's
//! defaults for what the tenant does not set.

use std::collections::BTreeMap;

use super::{check, check_state, tenant_named, tx_tenant, Accept};
use crate::cluster::catalog::{self, SetAt, VARIABLE_READ_ONLY};
use crate::cluster::error::{ClusterError, ClusterResult};
use crate::cluster::model::{Tenant, TenantParameter, TenantVariable};
use crate::cluster::sled_store::{abort, SledCluster};

impl SledCluster {
    /// All system variables of the catalogue with the tenant's values, by name.
    ///
    /// # Errors
    /// `TenantNotFound`, storage failures.
    pub fn variables(&self, name: &str) -> ClusterResult<Vec<TenantVariable>> {
        Ok(tenant_named(self, name)?.system_variables())
    }

    /// One system variable of the tenant.
    ///
    /// # Errors
    /// `VariableNameEmpty`, `TenantNotFound`, `VariableNotExist`.
    pub fn variable(&self, name: &str, variable: &str) -> ClusterResult<TenantVariable> {
        if variable.trim().is_empty() {
            return Err(ClusterError::VariableNameEmpty);
        }
        tenant_named(self, name)?.system_variable(variable)
    }

    /// All tenant parameters of the catalogue with the tenant's values, by name.
    ///
    /// # Errors
    /// `TenantNotFound`, storage failures.
    pub fn parameters(&self, name: &str) -> ClusterResult<Vec<TenantParameter>> {
        Ok(tenant_named(self, name)?.tenant_parameters())
    }

    /// One tenant parameter.
    ///
    /// # Errors
    /// `ParameterNameEmpty`, `TenantNotFound`, `ParameterNotExist`.
    pub fn parameter(&self, name: &str, parameter: &str) -> ClusterResult<TenantParameter> {
        if parameter.trim().is_empty() {
            return Err(ClusterError::ParameterNameEmpty);
        }
        tenant_named(self, name)?.tenant_parameter(parameter)
    }
}

/// [`crate::TenantService::set_variables`].
pub(in crate::cluster) fn set_variables(
    cluster: &SledCluster,
    name: &str,
    values: &BTreeMap<String, String>,
) -> ClusterResult<Tenant> {
    let checked = catalog::check_variables(values, SetAt::Alter)?;
    let now = cluster.clock.now();
    cluster.transact(|tx| {
        let mut tenant = tx_tenant(tx, name)?;
        check(check_state(&tenant, Accept::Normal))?;
        if tenant.locked && checked.iter().any(|(def, _)| def.needs_tenant_connection) {
            return abort(ClusterError::TenantLocked(tenant.name.clone()));
        }
        let mut changed = false;
        for (def, value) in &checked {
            if tenant.variables.get(def.name) != Some(value) {
                tenant.variables.insert(def.name.to_string(), value.clone());
                changed = true;
            }
        }
        if changed {
            tenant.read_only = tenant
                .variables
                .get(VARIABLE_READ_ONLY)
                .is_some_and(|value| value == "1");
            tenant.updated_at = now;
            tx.put_tenant(&tenant)?;
        }
        Ok(tenant)
    })
}

/// [`crate::TenantService::set_parameters`].
pub(in crate::cluster) fn set_parameters(
    cluster: &SledCluster,
    name: &str,
    values: &BTreeMap<String, String>,
) -> ClusterResult<Tenant> {
    let checked = catalog::check_parameters(values)?;
    let now = cluster.clock.now();
    cluster.transact(|tx| {
        let mut tenant = tx_tenant(tx, name)?;
        check(check_state(&tenant, Accept::NormalOrRestore))?;
        let mut changed = false;
        for (def, value) in &checked {
            if tenant.parameters.get(def.name) != Some(value) {
                tenant
                    .parameters
                    .insert(def.name.to_string(), value.clone());
                changed = true;
            }
        }
        if changed {
            tenant.updated_at = now;
            tx.put_tenant(&tenant)?;
        }
        Ok(tenant)
    })
}

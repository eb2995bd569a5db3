//! The tenant's primary zone (`ALTER TENANT .. PRIMARY_ZONE = ..`).

use super::locality::{
    check_first_priority, check_primary_zone, check_primary_zone_and_locality, first_priority_zones,
};
use super::{check, check_state, tx_tenant, Accept};
use crate::cluster::error::ClusterResult;
use crate::cluster::model::Tenant;
use crate::cluster::sled_store::{SledCluster, Write};
use crate::param::normalize_primary_zone;

impl SledCluster {
    /// [`crate::TenantService::set_primary_zone`], checked only (obshell's pre-check,
    /// so that a refusal is a 400 and not a failed DAG); returns the tenant as the
    /// change would leave it and writes nothing.
    ///
    /// # Errors
    /// As [`crate::TenantService::set_primary_zone`].
    pub fn preview_primary_zone(&self, name: &str, primary_zone: &str) -> ClusterResult<Tenant> {
        set_primary_zone(self, name, primary_zone, Write::Preview)
    }
}

/// [`crate::TenantService::set_primary_zone`], made or only checked.
pub(in crate::cluster) fn set_primary_zone(
    cluster: &SledCluster,
    name: &str,
    primary_zone: &str,
    write: Write,
) -> ClusterResult<Tenant> {
    let primary_zone = normalize_primary_zone(Some(primary_zone));
    let now = cluster.clock.now();
    cluster.write(write, |tx| {
        let mut tenant = tx_tenant(tx, name)?;
        check(check_state(&tenant, Accept::Normal))?;
        check(check_primary_zone(&primary_zone, &tenant.zone_list))?;
        if tenant.primary_zone == primary_zone {
            return Ok(tenant);
        }
        check(check_first_priority(
            &tenant,
            first_priority_zones(&tenant.zone_list, &tenant.primary_zone),
            first_priority_zones(&tenant.zone_list, &primary_zone),
            "Change first priority zone of primary zone",
        ))?;
        check_primary_zone_and_locality(tx, &primary_zone, &tenant.zone_list)?;
        tenant.primary_zone = primary_zone.clone();
        tenant.updated_at = now;
        tx.put_tenant(&tenant)?;
        Ok(tenant)
    })
}

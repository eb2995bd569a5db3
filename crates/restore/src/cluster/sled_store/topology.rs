//! Zones and servers: seeded at first open or added later, never removed. A zone lists
//! the addresses of its servers; every address it lists has a server record.

use chrono::{DateTime, Utc};

use super::{abort, corrupt, ServerSeed, SledCluster, Tree, Tx, TxResult};
use crate::cluster::error::{ClusterError, ClusterResult};
use crate::cluster::model::{server_address, Server, Zone};

impl SledCluster {
    /// Adds a zone.
    ///
    /// # Errors
    /// `ZoneExists`, storage failures.
    pub fn add_zone(&self, name: &str, region: &str) -> ClusterResult<Zone> {
        let now = self.clock.now();
        self.transact(|tx| insert_zone(tx, name, region, now))
    }

    /// Adds a server to an existing zone.
    ///
    /// # Errors
    /// `ZoneNotFound`, `ServerExists`, `InvalidServer`, storage failures.
    pub fn add_server(&self, zone: &str, server: &ServerSeed) -> ClusterResult<Server> {
        let now = self.clock.now();
        self.transact(|tx| insert_server(tx, zone, server, now))
    }

    /// All zones, by name.
    ///
    /// # Errors
    /// Storage failures.
    pub fn list_zones(&self) -> ClusterResult<Vec<Zone>> {
        self.scan(Tree::Zones)
    }

    /// All servers, by address.
    ///
    /// # Errors
    /// Storage failures.
    pub fn list_servers(&self) -> ClusterResult<Vec<Server>> {
        self.scan(Tree::Servers)
    }
}

/// [`crate::TenantService::zone`].
pub(super) fn zone(cluster: &SledCluster, name: &str) -> ClusterResult<Option<Zone>> {
    cluster.get(Tree::Zones, name.as_bytes())
}

/// [`crate::TenantService::servers_in_zone`].
pub(super) fn servers_in_zone(cluster: &SledCluster, zone: &str) -> ClusterResult<Vec<Server>> {
    let Some(zone) = self::zone(cluster, zone)? else {
        return Ok(Vec::new());
    };
    let mut servers = Vec::with_capacity(zone.servers.len());
    for address in &zone.servers {
        match cluster.get(Tree::Servers, address.as_bytes())? {
            Some(server) => servers.push(server),
            None => {
                return Err(corrupt(
                    Tree::Zones,
                    format!("zone '{}' lists missing server '{address}'", zone.name),
                ))
            }
        }
    }
    Ok(servers)
}

pub(super) fn insert_zone(
    tx: &Tx<'_>,
    name: &str,
    region: &str,
    now: DateTime<Utc>,
) -> TxResult<Zone> {
    if name.trim().is_empty() {
        return abort(ClusterError::InvalidZone {
            name: name.to_string(),
            reason: "name is empty".to_string(),
        });
    }
    if tx.contains(Tree::Zones, name.as_bytes())? {
        return abort(ClusterError::ZoneExists(name.to_string()));
    }
    let zone = Zone {
        name: name.to_string(),
        region: region.to_string(),
        servers: Vec::new(),
        created_at: now,
    };
    tx.put(Tree::Zones, name.as_bytes(), &zone)?;
    Ok(zone)
}

pub(super) fn insert_server(
    tx: &Tx<'_>,
    zone_name: &str,
    seed: &ServerSeed,
    now: DateTime<Utc>,
) -> TxResult<Server> {
    let address = server_address(&seed.ip, seed.port);
    if seed.ip.trim().is_empty() || !seed.cpu_capacity.is_finite() || seed.cpu_capacity <= 0.0 {
        return abort(ClusterError::InvalidServer {
            server: address,
            reason: "ip must be non-empty and cpu_capacity greater than 0".to_string(),
        });
    }
    let Some(mut zone) = tx.get::<Zone>(Tree::Zones, zone_name.as_bytes())? else {
        return abort(ClusterError::ZoneNotFound(zone_name.to_string()));
    };
    if tx.contains(Tree::Servers, address.as_bytes())? {
        return abort(ClusterError::ServerExists(address));
    }
    let server = Server {
        zone: zone_name.to_string(),
        ip: seed.ip.clone(),
        port: seed.port,
        cpu_capacity: seed.cpu_capacity,
        memory_capacity: seed.memory_capacity,
        cpu_assigned: 0.0,
        memory_assigned: 0,
        unit_count: 0,
        created_at: now,
    };
    tx.put(Tree::Servers, address.as_bytes(), &server)?;
    zone.servers.push(address);
    tx.put(Tree::Zones, zone_name.as_bytes(), &zone)?;
    Ok(server)
}

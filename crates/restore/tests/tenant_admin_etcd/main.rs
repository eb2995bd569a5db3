//! The tenant-administration tests of `tests/tenant_admin` (create options, rename,
//! primary zone, replicas, variables, durability across reopen) run again with the
//! cluster's records in a real etcd (`backend`), as a cluster of agents keeps them.
//! `root_password` stays sled-only: it reads the sled trees byte by byte.

mod backend;
#[path = "../common/mod.rs"]
mod common;
#[path = "../tenant_admin/fixture.rs"]
mod fixture;
#[path = "../cluster_etcd/support.rs"]
#[allow(dead_code)] // the shared-cluster helpers
mod support;

#[path = "../tenant_admin/create.rs"]
mod create;
#[path = "../tenant_admin/durability.rs"]
mod durability;
#[path = "../tenant_admin/primary_zone.rs"]
mod primary_zone;
#[path = "../tenant_admin/rename.rs"]
mod rename;
#[path = "../tenant_admin/replicas_add.rs"]
mod replicas_add;
#[path = "../tenant_admin/replicas_modify.rs"]
mod replicas_modify;
#[path = "../tenant_admin/replicas_remove.rs"]
mod replicas_remove;
#[path = "../tenant_admin/variables.rs"]
mod variables;

//! Tenant administration on the embedded cluster (obshell's tenant API at the domain
//! level): create options, rename, primary zone, add/remove/modify replicas with their
//! capacity accounting, variables, parameters and the root password; every refusal with
//! its error variant and obshell text; idempotency; durability across reopen; and that
//! no root password reaches the store.

mod backend;
#[path = "../common/mod.rs"]
mod common;
mod fixture;

mod create;
mod durability;
mod primary_zone;
mod rename;
mod replicas_add;
mod replicas_modify;
mod replicas_remove;
mod root_password;
mod variables;

//! `obagent unit-config|tenant|pool ...` (owned by the embedded-cluster work).

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum UnitConfigCommand {
    /// List unit configs.
    List,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// List tenants.
    List,
}

#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// List resource pools.
    List,
}

pub fn run_unit_config(_cmd: UnitConfigCommand) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}

pub fn run_tenant(_cmd: TenantCommand) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}

pub fn run_pool(_cmd: PoolCommand) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}

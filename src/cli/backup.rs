//! `obagent backup ...` and `obagent restore preview|windows` (owned by the backup work).

use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Generate a synthetic backup.
    Generate,
}

#[derive(Debug, Subcommand)]
pub enum RestoreCommand {
    /// Preview the backup sets and pieces a restore would use.
    Preview,
}

pub fn run_backup(_cmd: BackupCommand) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}

pub fn run_restore(_cmd: RestoreCommand) -> anyhow::Result<()> {
    anyhow::bail!("not implemented yet")
}

//! `obagent restore ...`: every restore subcommand.
//!
//! - [`plan`]: `preview` and `windows`, read from the backup destinations.
//! - [`start`]: `start`, into the embedded cluster or on a running agent (`--server`).
//! - [`progress`]: the embedded agent, the live progress and the summary of a restore
//!   (shared with `obagent demo`).
//! - `overview` (here): a tenant's restore from a running agent.

pub mod plan;
pub mod progress;
pub mod start;

use anyhow::bail;
use clap::{Args, Subcommand};

use crate::cli::client::{remote_restore_overview, ClientConn};
use crate::cli::output::print_json;

#[derive(Debug, Subcommand)]
pub enum RestoreCommand {
    /// Preview the backup sets and pieces a restore would use.
    Preview(Box<plan::PreviewArgs>),
    /// Show the time ranges a restore can reach.
    Windows(Box<plan::WindowsArgs>),
    /// Restore a tenant into the embedded cluster, with live progress.
    Start(Box<start::StartArgs>),
    /// Restore progress and history of a tenant, from a running agent.
    Overview(Box<OverviewArgs>),
}

/// Options of `obagent restore overview`.
#[derive(Debug, Args)]
pub struct OverviewArgs {
    /// Tenant name.
    pub tenant: String,
    #[command(flatten)]
    pub conn: ClientConn,
}

/// Runs `obagent restore ...`.
///
/// # Errors
/// Bad options, an unreadable backup, a refused or failed restore, or an unreachable
/// agent; the error says which.
pub async fn run(command: RestoreCommand) -> anyhow::Result<()> {
    match command {
        RestoreCommand::Preview(args) => plan::run_preview(&args),
        RestoreCommand::Windows(args) => plan::run_windows(&args),
        RestoreCommand::Start(args) => start::run_start(*args).await,
        RestoreCommand::Overview(args) => run_overview(&args).await,
    }
}

/// `obagent restore overview TENANT`: the restore progress/history from a running
/// agent, as JSON.
async fn run_overview(args: &OverviewArgs) -> anyhow::Result<()> {
    match remote_restore_overview(&args.conn, &args.tenant).await? {
        Some(overview) => print_json(&overview),
        None => bail!("tenant '{}' has no restore", args.tenant),
    }
}

//! Subcommands of `obagent`, one module per area:
//!
//! - [`demo`]: `obagent demo`, generate + restore + verify in one go.
//! - [`backup`]: `obagent backup generate`, and opening backup destinations for
//!   inspection (`--data-uri`, `--archive-uri`, `--allow-root`).
//! - [`restore`]: every `obagent restore ...` subcommand (preview, windows, start,
//!   overview) and the live restore progress shared with `demo`.
//! - [`cluster`]: `obagent unit-config|tenant|pool ...` on the embedded cluster.
//! - [`serve`]: `obagent serve`, the daemon.
//! - [`client`]: `obagent dag ...` and the calls behind `restore start --server` /
//!   `restore overview`, against a running agent.
//! - [`output`]: how results and errors reach the terminal.
//! - [`secrets`]: passwords read from files instead of the command line.
//!
//! Invariants: the process has one tokio runtime, built by [`run`]; an option has one
//! spelling in every command (`--allow-root`, `--data-dir`, `--json`); with `--json`,
//! stdout carries exactly one JSON document and human text goes to stderr; an error is
//! returned, never printed, and `main` prints it once.

pub mod backup;
pub mod client;
pub mod cluster;
pub mod demo;
pub mod output;
pub mod restore;
pub mod secrets;
pub mod serve;

use anyhow::Context as _;
use clap::Subcommand;

/// The commands of `obagent`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the end-to-end demo.
    Demo(demo::DemoArgs),
    /// Backup storage tools.
    #[command(subcommand)]
    Backup(backup::BackupCommand),
    /// Restore planning and execution.
    #[command(subcommand)]
    Restore(restore::RestoreCommand),
    /// Unit configs of the embedded cluster.
    #[command(subcommand, name = "unit-config")]
    UnitConfig(cluster::UnitConfigCommand),
    /// Tenants of the embedded cluster.
    #[command(subcommand)]
    Tenant(cluster::TenantCommand),
    /// Resource pools of the embedded cluster.
    #[command(subcommand)]
    Pool(cluster::PoolCommand),
    /// Run the agent daemon: engine, embedded cluster and the obshell-compatible API.
    Serve(serve::ServeArgs),
    /// DAGs of a running agent (--server URL).
    #[command(subcommand)]
    Dag(client::DagCommand),
}

/// Runs `command` on the process's one tokio runtime.
///
/// # Errors
/// The runtime cannot start, or the command failed (the error says why).
pub fn run(command: Command) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .on_thread_stop(crate::logging::thread_ends)
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(dispatch(command))
}

/// The commands that only touch files (generate, the embedded cluster's tables) run on
/// the calling thread; the others are async.
async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Demo(args) => demo::run(args).await,
        Command::Backup(command) => backup::run(command),
        Command::Restore(command) => restore::run(command).await,
        Command::UnitConfig(command) => cluster::run_unit_config(command),
        Command::Tenant(command) => cluster::run_tenant(command),
        Command::Pool(command) => cluster::run_pool(command),
        Command::Serve(args) => serve::run(args).await,
        Command::Dag(command) => client::run_dag(command).await,
    }
}

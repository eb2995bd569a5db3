//! `obagent`: the obrestore agent binary (CLI + daemon).

mod cli;

use clap::{Parser, Subcommand};

/// obrestore agent: restore orchestration on a persistent DAG engine.
#[derive(Debug, Parser)]
#[command(name = "obagent", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the end-to-end demo.
    Demo(cli::demo::DemoArgs),
    /// Backup storage tools.
    #[command(subcommand)]
    Backup(cli::backup::BackupCommand),
    /// Restore planning and execution.
    #[command(subcommand)]
    Restore(cli::backup::RestoreCommand),
    /// Unit configs of the embedded cluster.
    #[command(subcommand, name = "unit-config")]
    UnitConfig(cli::cluster::UnitConfigCommand),
    /// Tenants of the embedded cluster.
    #[command(subcommand)]
    Tenant(cli::cluster::TenantCommand),
    /// Resource pools of the embedded cluster.
    #[command(subcommand)]
    Pool(cli::cluster::PoolCommand),
    /// Run the agent daemon: engine, embedded cluster and the obshell-compatible API.
    Serve(cli::serve::ServeArgs),
    /// DAGs of a running agent (--server URL).
    #[command(subcommand)]
    Dag(cli::client::DagCommand),
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OBAGENT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => cli::demo::run(args),
        Command::Backup(cmd) => cli::backup::run_backup(cmd),
        Command::Restore(cmd) => cli::backup::run_restore(cmd),
        Command::UnitConfig(cmd) => cli::cluster::run_unit_config(cmd),
        Command::Tenant(cmd) => cli::cluster::run_tenant(cmd),
        Command::Pool(cmd) => cli::cluster::run_pool(cmd),
        Command::Serve(args) => cli::serve::run(args),
        Command::Dag(cmd) => cli::client::run_dag(cmd),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

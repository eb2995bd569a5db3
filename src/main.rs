//! `obagent`: the obrestore agent binary (CLI + daemon).

mod cli;

use clap::Parser;

/// obrestore agent: restore orchestration on a persistent DAG engine.
#[derive(Debug, Parser)]
#[command(name = "obagent", version, about)]
struct Cli {
    #[command(subcommand)]
    command: cli::Command,
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
    match cli::run(cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // The one place an error is printed.
            eprintln!("error: {}", cli::output::error_text(&err));
            std::process::ExitCode::FAILURE
        }
    }
}

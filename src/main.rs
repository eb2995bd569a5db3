//! `obagent`: the obrestore agent binary (CLI + daemon).

mod cli;
mod logging;

use clap::Parser;

/// obrestore agent: restore orchestration on a persistent DAG engine.
#[derive(Debug, Parser)]
#[command(name = "obagent", version, about)]
struct Cli {
    #[command(subcommand)]
    command: cli::Command,
}

fn main() -> std::process::ExitCode {
    logging::init();
    let cli = Cli::parse();
    let code = match cli::run(cli.command) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // The one place an error is printed.
            eprintln!("error: {}", cli::output::error_text(&err));
            std::process::ExitCode::FAILURE
        }
    };
    logging::thread_ends();
    code
}

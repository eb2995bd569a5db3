//! `obrestore-peers-bench [--quick] [--runs N] [--duroxide-runs N] [--dir PATH] [--memory-only]`
//!
//! Runs every shape on every peer `runs` times (peers alternate within each round, their
//! order rotating, so load on the machine falls on all of them alike), probes the device
//! once per round, and prints one table. `scripts/peers.sh` builds and runs it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, ensure, Context};
use obrestore_peers_bench::device::{self, SyncProbe};
use obrestore_peers_bench::report::{self, Device, Group, Row};
use obrestore_peers_bench::shape::{Shape, Suite};
use obrestore_peers_bench::Peer;

const USAGE: &str = "usage: obrestore-peers-bench [--quick] [--runs N] [--duroxide-runs N] [--dir PATH] [--memory-only]
  --quick        3 runs and a 64 MiB sequential probe (CI-sized)
  --runs N       runs per shape and peer (default 5)
  --duroxide-runs N  runs of duroxide and apalis, in the first N rounds (default 1: their runs take seconds)
  --dir PATH     where the durable stores and the device probes write (default: temp dir)
  --memory-only  skip the durable peers and the device probes";

struct Options {
    runs: usize,
    duroxide_runs: usize,
    directory: PathBuf,
    memory_only: bool,
    sequential_mib: usize,
}

fn options() -> anyhow::Result<Options> {
    let mut options = Options {
        runs: 5,
        duroxide_runs: 1,
        directory: std::env::temp_dir(),
        memory_only: false,
        sequential_mib: 256,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => {
                options.runs = 3;
                options.sequential_mib = 64;
            }
            "--runs" => {
                let value = args.next().context("--runs needs a number")?;
                options.runs = value.parse().context("--runs needs a number")?;
                ensure!(options.runs > 0, "--runs must be at least 1");
            }
            "--duroxide-runs" => {
                let value = args.next().context("--duroxide-runs needs a number")?;
                options.duroxide_runs = value.parse().context("--duroxide-runs needs a number")?;
            }
            "--dir" => options.directory = args.next().context("--dir needs a path")?.into(),
            "--memory-only" => options.memory_only = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    Ok(options)
}

/// The peers of a group in round `round`'s order: rotated, so none always runs first;
/// the slow durable peers only in the first `duroxide_runs` rounds.
fn rotated(peers: &[Peer], round: usize, duroxide_runs: usize) -> Vec<Peer> {
    let mut order = peers.to_vec();
    order.rotate_left(round % peers.len());
    order.retain(|peer| !peer.is_slow() || round < duroxide_runs);
    order
}

/// One round of the device probes: both sync probes, and the sequential write in the
/// first and the last round.
fn probe_device(options: &Options, round: usize, device: &mut Device) -> anyhow::Result<()> {
    let directory = options.directory.as_path();
    let span = Duration::from_millis(300);
    device
        .syncs_per_second
        .push(device::sync_rate(directory, SyncProbe::InPlace, span)?);
    device
        .append_syncs_per_second
        .push(device::sync_rate(directory, SyncProbe::Append, span)?);
    device
        .direct_syncs_per_second
        .extend(device::direct_sync_rate(directory, span)?);
    if round == 0 || round + 1 == options.runs {
        device
            .sequential_mb_per_second
            .push(device::sequential_write(
                directory,
                options.sequential_mib << 20,
            )?);
    }
    Ok(())
}

/// The rows of one group: every shape on every peer, still without times.
fn group(name: &'static str, peers: &[Peer], shapes: &[Shape]) -> Group {
    let rows = shapes
        .iter()
        .flat_map(|shape| {
            peers.iter().map(|peer| Row {
                shape: *shape,
                peer: *peer,
                times: Vec::new(),
            })
        })
        .collect();
    Group { name, rows }
}

/// One round: every shape of every group on each of its peers, the peers rotated.
fn run_round(
    runtime: &tokio::runtime::Runtime,
    options: &Options,
    round: usize,
    groups: &mut [Group],
) -> anyhow::Result<()> {
    for group in groups {
        let first = group.rows[0].shape;
        let peers: Vec<Peer> = group
            .rows
            .iter()
            .filter(|row| row.shape == first)
            .map(|row| row.peer)
            .collect();
        let shapes: Vec<Shape> = group
            .rows
            .iter()
            .step_by(peers.len())
            .map(|row| row.shape)
            .collect();
        for shape in shapes {
            for peer in rotated(&peers, round, options.duroxide_runs) {
                let run = runtime
                    .block_on(peer.run(shape, &options.directory))
                    .with_context(|| format!("{} on {shape}", peer.label()))?;
                ensure!(
                    run.executed == shape.tasks(),
                    "{} on {shape} executed {} of {} tasks",
                    peer.label(),
                    run.executed,
                    shape.tasks()
                );
                if let Some(row) = group
                    .rows
                    .iter_mut()
                    .find(|row| row.shape == shape && row.peer == peer)
                {
                    row.times.push(run.elapsed);
                }
            }
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let options = options()?;
    // duroxide installs a log subscriber at "warn" unless RUST_LOG says otherwise; under
    // load its SQLite provider warns at every "database is locked" retry. Set before any
    // thread starts.
    if std::env::var_os("RUST_LOG").is_none() {
        std::env::set_var("RUST_LOG", "error");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let suite = Suite::full();
    let mut groups = vec![group("in memory", &Peer::MEMORY, &suite.memory)];
    if !options.memory_only {
        groups.push(group("durable", &Peer::DURABLE, &suite.durable));
    }
    // Warm-up, not recorded: thread pools, allocator, page cache of the binary.
    for peer in groups
        .iter()
        .flat_map(|group| group.rows.iter().map(|row| row.peer))
    {
        runtime.block_on(peer.run(Shape::Chain(20), &options.directory))?;
    }
    let mut device = Device {
        directory: options.directory.display().to_string(),
        sequential_mib: options.sequential_mib,
        ..Device::default()
    };
    for round in 0..options.runs {
        if !options.memory_only {
            probe_device(&options, round, &mut device)?;
        }
        run_round(&runtime, &options, round, &mut groups)?;
        eprintln!("round {} of {} done", round + 1, options.runs);
    }
    println!(
        "\npeers bench: no-op tasks, median of the runs per shape and peer \
         (peers alternate within each round)\n"
    );
    report::print(&groups, &device);
    Ok(())
}

//! `obagent demo`: generate a backup, restore it point-in-time into the embedded cluster
//! with live progress, verify the rows against the independent truth, and print a
//! summary and the final DagDetailDTO.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use obrestore_backup::{generate, GenerateConfig, GenerateSummary, Scn};
use obrestore_dag::State;
use obrestore_restore::{RestoreAgent, RestoreParam};
use serde_json::json;

use crate::cli::restore::progress::{follow, open_agent, summary_text};

const MARKER: &str = ".obrestore-demo";

/// Options of `obagent demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Working directory for the backup and the agent state; recreated on every run.
    #[arg(long, default_value = "obrestore-demo")]
    pub dir: PathBuf,
    /// Approximate size of the generated backup.
    #[arg(long, default_value = "256MiB")]
    pub size: String,
    /// Generator seed.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Data restore concurrency.
    #[arg(long, default_value_t = 2)]
    pub concurrency: u32,
}

/// Runs the demo; succeeds only if the restored rows match the source.
///
/// # Errors
/// Any step fails, the restore does not succeed, or the rows differ.
pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let dir = fresh_demo_dir(&args.dir)?;
    let backup_dir = dir.join("backup");
    let summary = generate_backup(&args, &backup_dir)?;
    let target = restore_target(&summary)?;
    let agent = open_agent(&dir.join("agent"), vec![backup_dir.clone()], 8).await?;
    let dag_id = restore(&agent, &summary, target, args.concurrency).await?;
    println!(
        "== 4/4 verifying the restored rows against the source at scn {}",
        target.as_u64()
    );
    let cluster = std::sync::Arc::clone(agent.cluster());
    let truth_dir = summary.truth_dir.clone();
    let verification = tokio::task::spawn_blocking(move || {
        obrestore_restore::verify::verify_tenant(&cluster, "demo", &truth_dir, target.as_u64())
    })
    .await??;
    println!("   expected (independent truth)  {}", verification.expected);
    println!("   restored tenant               {}", verification.actual);
    let detail = agent.engine().dag_detail(dag_id, true)?;
    println!("final DagDetailDTO:");
    println!("{}", serde_json::to_string_pretty(&detail)?);
    agent.shutdown(Duration::from_secs(5)).await;
    if !verification.matches() {
        bail!("VERIFICATION FAILED: the restored rows differ from the source");
    }
    println!(
        "VERIFIED: {} rows identical to the source at scn {}",
        verification.actual.rows,
        target.as_u64()
    );
    Ok(())
}

/// `dir` made absolute and emptied: recreated when a previous demo made it, refused
/// when something else did.
fn fresh_demo_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    let dir = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir()?.join(dir)
    };
    if dir.exists() {
        if !dir.join(MARKER).exists() {
            bail!(
                "{} exists and was not made by `obagent demo`; choose another --dir",
                dir.display()
            );
        }
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("removing the previous demo in {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(MARKER), b"made by obagent demo\n")?;
    Ok(dir)
}

/// Step 1: the backup, with its URIs and write speed printed.
fn generate_backup(args: &DemoArgs, backup_dir: &Path) -> anyhow::Result<GenerateSummary> {
    println!(
        "== 1/4 generating a backup of about {} in {}",
        args.size,
        backup_dir.display()
    );
    let mut config = GenerateConfig::new(backup_dir);
    config.target_bytes = obrestore_backup::generate::parse_size(&args.size)?;
    config.seed = args.seed;
    let summary = generate(&config)?;
    println!("   data backup uri   {}", summary.data_uri);
    println!("   archive log uri   {}", summary.archive_uri);
    println!(
        "   {} sets, {} pieces, {} log streams; wrote {:.1} MiB in {:.2} s ({:.0} MB/s)",
        summary.sets.len(),
        summary.pieces.len(),
        summary.log_stream_ids.len(),
        summary.total_bytes() as f64 / (1 << 20) as f64,
        summary.elapsed.as_secs_f64(),
        summary.mb_per_sec()
    );
    Ok(summary)
}

/// A point in time after the last (incremental) set, so the chain is FULL + INC, and
/// inside a piece, off any round number.
fn restore_target(summary: &GenerateSummary) -> anyhow::Result<Scn> {
    let after = summary
        .sets
        .last()
        .map_or(summary.first_scn, |set| set.min_restore_scn)
        .as_u64();
    let target = Scn(after + summary.end_scn.as_u64().saturating_sub(after) * 2 / 5 + 123_457);
    let piece = summary
        .pieces
        .iter()
        .find(|piece| piece.start_scn < target && target <= piece.checkpoint_scn)
        .context("the generated backup has no piece holding the target")?;
    println!(
        "== 2/4 restoring tenant 'demo' to scn {} ({}), inside piece {}",
        target.as_u64(),
        target,
        piece.piece_id
    );
    Ok(target)
}

/// Steps 2 and 3: restores tenant `demo` on three zones with live progress and prints
/// the summary; returns the DAG's id. A restore that did not succeed is an error, after
/// its DagDetailDTO is printed.
async fn restore(
    agent: &RestoreAgent,
    summary: &GenerateSummary,
    target: Scn,
    concurrency: u32,
) -> anyhow::Result<u64> {
    let param: RestoreParam = serde_json::from_value(json!({
        "data_backup_uri": summary.data_uri,
        "archive_log_uri": summary.archive_uri,
        "restore_tenant_name": "demo",
        "scn": target.as_u64(),
        "zone_list": [
            {"name": "z1", "unit_config_name": "s1", "unit_num": 1},
            {"name": "z2", "unit_config_name": "s1", "unit_num": 1},
            {"name": "z3", "unit_config_name": "s1", "unit_num": 1, "replica_type": "READONLY"},
        ],
        "primary_zone": "z1;z2",
        "concurrency": concurrency,
    }))?;
    let started = Instant::now();
    let events = agent.engine().subscribe();
    let dag = agent.start_restore(param).await?;
    let dag_id = agent.engine().find_dag(&dag.id)?.id;
    let report = follow(agent, dag_id, "demo", events).await?;
    let elapsed = started.elapsed();
    println!("== 3/4 summary");
    print!("{}", summary_text(agent, "demo", &report, elapsed)?);
    if report.dag.state != State::Succeed {
        let detail = agent.engine().dag_detail(dag_id, true)?;
        println!("{}", serde_json::to_string_pretty(&detail)?);
        bail!(
            "the restore ended {}+{}",
            report.dag.state,
            report.dag.operator
        );
    }
    Ok(dag_id)
}

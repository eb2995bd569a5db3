//! `obagent restore preview|windows`: what a restore would use and can reach, read
//! from the backup destinations alone (no agent state is opened).

use clap::Args;
use obrestore_backup::{RestorePlan, RestoreTarget, RestoreWindowsDto};

use crate::cli::backup::{open_sources, SourceArgs};
use crate::cli::output::print_json;
use crate::cli::secrets::DecryptionArgs;

/// Options of `obagent restore preview`.
#[derive(Debug, Args)]
pub struct PreviewArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Target SCN (ns since the Unix epoch).
    #[arg(long, conflicts_with = "timestamp")]
    scn: Option<u64>,
    /// Target time: RFC 3339 (2024-04-02T12:00:00+08:00), or `2024-04-02 12:00:00`
    /// without an offset, read in the backup's time zone as OceanBase does.
    #[arg(long)]
    timestamp: Option<String>,
    #[command(flatten)]
    decryption: DecryptionArgs,
}

/// Options of `obagent restore windows`.
#[derive(Debug, Args)]
pub struct WindowsArgs {
    #[command(flatten)]
    source: SourceArgs,
}

/// `obagent restore preview`: the sets and pieces, or OCP's preview items as JSON.
///
/// # Errors
/// The destinations cannot be opened or no plan reaches the target.
pub fn run_preview(args: &PreviewArgs) -> anyhow::Result<()> {
    let sources = open_sources(&args.source)?;
    let target = RestoreTarget::from_params(args.scn, args.timestamp.as_deref())?;
    let plan = sources.plan(&target, &args.decryption.passwords()?)?;
    if args.source.json {
        return print_json(&plan.preview_items());
    }
    print_plan(&plan);
    Ok(())
}

fn print_plan(plan: &RestorePlan) {
    println!(
        "restore to:        {} (scn {})",
        plan.restore_scn,
        plan.restore_scn.as_u64()
    );
    println!(
        "replay logs from:  {} (scn {})",
        plan.restore_start_scn,
        plan.restore_start_scn.as_u64()
    );
    println!("backup sets ({}):", plan.sets.len());
    for set in &plan.sets {
        println!(
            "  BACKUP_SET    id {:<4} {:<11} min_restore {}{}  {}",
            set.info.backup_set_id,
            format!("{:?}", set.info.backup_type).to_uppercase(),
            set.info.min_restore_scn,
            if set.info.encryption.is_some() {
                "  encrypted"
            } else {
                ""
            },
            set.backup_dest
        );
    }
    println!("backup pieces ({}):", plan.pieces.len());
    for piece in &plan.pieces {
        println!(
            "  BACKUP_PIECE  id {:<4} round {:<3} ({} .. {}]  checkpoint {}  {}",
            piece.info.piece_id,
            piece.info.round_id,
            piece.info.start_scn,
            piece.info.end_scn,
            piece.info.checkpoint_scn,
            piece.backup_dest
        );
    }
}

/// `obagent restore windows`: the restorable time ranges.
///
/// # Errors
/// The destinations cannot be opened or read.
pub fn run_windows(args: &WindowsArgs) -> anyhow::Result<()> {
    let windows = open_sources(&args.source)?.windows()?;
    if args.source.json {
        return print_json(&RestoreWindowsDto::from_windows(&windows));
    }
    if windows.is_empty() {
        println!("no restore window: no usable backup set with contiguous archive logs");
        return Ok(());
    }
    println!("restore windows ({}):", windows.len());
    for window in &windows {
        println!(
            "  {}  ..  {}   (scn {} .. {})",
            window.start,
            window.end,
            window.start.as_u64(),
            window.end.as_u64()
        );
    }
    Ok(())
}

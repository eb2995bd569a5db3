//! `obagent backup generate`, and the backup destinations the inspection commands
//! (`obagent restore preview|windows`) open: [`SourceArgs`] and [`open_sources`].
//!
//! Invariant: a destination is only opened under an allowed root (`--allow-root`, or
//! else the destinations themselves).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use obrestore_backup::generate::{self, GapPlan, GenerateConfig};
use obrestore_backup::{
    human_bytes, AllowedRoots, Destination, GenerateSummary, Scn, Sources, SourcesError,
};

#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Generate a deterministic synthetic backup (data + archive log + truth file).
    Generate(Box<GenerateArgs>),
}

/// Options of `obagent backup generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Output root; writes DIR/<cluster>/<cluster_id>/incarnation_1/<tenant_id>/{data,clog,truth}.
    #[arg(long)]
    dir: PathBuf,
    /// Approximate total size, e.g. 16MiB, 256MiB, 10GiB.
    #[arg(long, default_value = "256MiB")]
    size: String,
    /// Seed of the workload; same seed, same bytes.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// User log streams (1001, 1002, ...) besides the sys log stream 1.
    #[arg(long, default_value_t = 3)]
    log_streams: u32,
    /// Tablets per user log stream.
    #[arg(long, default_value_t = 4)]
    tablets_per_ls: u32,
    /// Timeline of the workload, e.g. 48h, 7d.
    #[arg(long, default_value = "48h")]
    duration: String,
    /// Archive piece length, e.g. 6h, 1d.
    #[arg(long, default_value = "6h")]
    piece_len: String,
    /// Backup sets evenly spread over the timeline: F = FULL, I = INCREMENTAL.
    #[arg(long, default_value = "FIIFI")]
    sets: String,
    /// Encrypt every set with this password. Prefer `--password-file` or the
    /// environment variable: a command line is visible to every user of the machine.
    #[arg(long, env = "OBAGENT_BACKUP_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Encrypt every set with the password in this file (one trailing line break is
    /// ignored); it wins over `--password` and OBAGENT_BACKUP_PASSWORD.
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// PBKDF2 iterations of the encryption keys (lower only to make tests fast).
    #[arg(long, default_value_t = obrestore_backup::crypto::DEFAULT_KDF_ITERATIONS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(obrestore_backup::crypto::MAX_KDF_ITERATIONS)))]
    kdf_iterations: u32,
    /// Encrypt one set: ID=PASSWORD (repeatable).
    #[arg(long = "set-password", value_name = "ID=PASSWORD")]
    set_passwords: Vec<String>,
    /// Record this set as FAILED (repeatable).
    #[arg(long = "fail-set", value_name = "ID")]
    fail_sets: Vec<u64>,
    /// Mark this set DELETED and remove its data (repeatable).
    #[arg(long = "delete-set", value_name = "ID")]
    delete_sets: Vec<u64>,
    /// Mark this archive piece DELETED and remove its logs (repeatable).
    #[arg(long = "delete-piece", value_name = "ID")]
    delete_pieces: Vec<u64>,
    /// Stop archiving at a fraction of the timeline for a while, e.g. 0.55:1h (repeatable).
    #[arg(long = "gap", value_name = "AT:LENGTH")]
    gaps: Vec<String>,
    /// Tenant creation time (RFC 3339); default 2024-04-01T00:00:00Z.
    #[arg(long)]
    start: Option<String>,
    /// The tenant's system time zone recorded in the backup, a UTC offset such as +08:00
    /// or -05:00; a restore timestamp without an offset is read in it.
    #[arg(long, default_value = "+08:00", allow_hyphen_values = true)]
    time_zone: String,
    #[arg(long, default_value = "obcluster")]
    cluster_name: String,
    #[arg(long, default_value_t = 1_704_259_760)]
    cluster_id: u64,
    #[arg(long, default_value_t = 1002)]
    tenant_id: u64,
    #[arg(long, default_value = "mysql_tenant")]
    tenant_name: String,
    /// Replace existing data/clog/truth directories of this tenant.
    #[arg(long)]
    force: bool,
}

/// Where the backups are.
#[derive(Debug, Args)]
pub struct SourceArgs {
    /// Data backup destination, file:///.../data.
    #[arg(long)]
    pub data_uri: String,
    /// Archive log destination, file:///.../clog (default: the data uri, as in obshell).
    #[arg(long)]
    pub archive_uri: Option<String>,
    /// Only allow backups under these directories (default: the given destinations).
    // `--allowed-root`: the old spelling, still accepted (hidden).
    #[arg(long = "allow-root", alias = "allowed-root", value_name = "DIR")]
    allow_roots: Vec<PathBuf>,
    /// Print one JSON document for scripts (and nothing else on stdout).
    #[arg(long)]
    pub json: bool,
}

/// Runs `obagent backup ...`.
///
/// # Errors
/// Bad options, or the backup cannot be written.
pub fn run(command: BackupCommand) -> anyhow::Result<()> {
    match command {
        BackupCommand::Generate(args) => {
            let config = generate_config(&args)?;
            let summary =
                obrestore_backup::generate(&config).context("generating the backup failed")?;
            print_generated(&summary, &config);
            Ok(())
        }
    }
}

/// The generator's configuration from the options.
fn generate_config(args: &GenerateArgs) -> anyhow::Result<GenerateConfig> {
    let dir = if args.dir.is_absolute() {
        args.dir.clone()
    } else {
        std::env::current_dir()
            .context("cannot read the current directory")?
            .join(&args.dir)
    };
    let mut config = GenerateConfig::new(dir);
    config.target_bytes = generate::parse_size(&args.size)?;
    config.seed = args.seed;
    config.user_log_streams = args.log_streams;
    config.tablets_per_ls = args.tablets_per_ls;
    config.duration_ns = generate::parse_duration_ns(&args.duration)?;
    config.piece_len_ns = generate::parse_duration_ns(&args.piece_len)?;
    config.sets = generate::sets_from_pattern(&args.sets)?;
    config.cluster_name = args.cluster_name.clone();
    config.cluster_id = args.cluster_id;
    config.tenant_id = args.tenant_id;
    config.tenant_name = args.tenant_name.clone();
    config.overwrite = args.force;
    config.kdf_iterations = args.kdf_iterations;
    config.delete_pieces = args.delete_pieces.clone();
    config.time_zone = args.time_zone.parse().context("--time-zone")?;
    if let Some(start) = &args.start {
        config.base_scn = Scn::from_timestamp(start)?;
    }
    apply_set_options(&mut config, args)?;
    for gap in &args.gaps {
        let (at, length) = gap
            .split_once(':')
            .with_context(|| format!("--gap '{gap}' must be AT:LENGTH, e.g. 0.55:1h"))?;
        config.gaps.push(GapPlan {
            at: at
                .trim()
                .parse()
                .with_context(|| format!("--gap '{gap}': AT must be a fraction like 0.55"))?,
            length_ns: generate::parse_duration_ns(length)?,
        });
    }
    Ok(config)
}

/// `--password[-file]`, `--set-password`, `--fail-set` and `--delete-set` on the planned
/// sets.
fn apply_set_options(config: &mut GenerateConfig, args: &GenerateArgs) -> anyhow::Result<()> {
    let set_count = config.sets.len() as u64;
    let set_index = |id: u64, flag: &str| -> anyhow::Result<usize> {
        if id == 0 || id > set_count {
            anyhow::bail!("{flag} {id}: sets are numbered 1..={set_count} (from --sets)");
        }
        Ok((id - 1) as usize)
    };
    let password = match &args.password_file {
        Some(path) => Some(crate::cli::secrets::read_secret_file(path)?),
        None => args.password.clone(),
    };
    if let Some(password) = password {
        for plan in &mut config.sets {
            plan.password = Some(password.clone());
        }
    }
    for entry in &args.set_passwords {
        let (id, password) = entry
            .split_once('=')
            .with_context(|| format!("--set-password '{entry}' must be ID=PASSWORD"))?;
        let id: u64 = id
            .trim()
            .parse()
            .with_context(|| format!("--set-password '{entry}': bad set id"))?;
        let index = set_index(id, "--set-password")?;
        config.sets[index].password = Some(password.to_string());
    }
    for &id in &args.fail_sets {
        let index = set_index(id, "--fail-set")?;
        config.sets[index].fail = true;
    }
    for &id in &args.delete_sets {
        let index = set_index(id, "--delete-set")?;
        config.sets[index].delete = true;
    }
    Ok(())
}

/// The URIs, the tenant, every set and piece, and the write speed.
fn print_generated(summary: &GenerateSummary, config: &GenerateConfig) {
    println!("data backup uri:  {}", summary.data_uri);
    println!("archive log uri:  {}", summary.archive_uri);
    println!("time zone:        {}", config.time_zone);
    println!(
        "truth workload:   {}",
        summary
            .truth_dir
            .join(obrestore_backup::truth::WORKLOAD_FILE)
            .display()
    );
    println!(
        "tenant:           {} (id {}), log streams {:?}, {} ops, {} live rows",
        summary.tenant_name,
        summary.tenant_id,
        summary.log_stream_ids,
        summary.ops,
        summary.live_rows
    );
    println!("backup sets:");
    for set in &summary.sets {
        println!(
            "  {:>3} {:<11} {:<7} {:<9} start_replay {}  min_restore {}  {}{}",
            set.backup_set_id,
            format!("{:?}", set.backup_type).to_uppercase(),
            format!("{:?}", set.status).to_uppercase(),
            format!("{:?}", set.file_status).to_uppercase(),
            set.start_replay_scn,
            set.min_restore_scn,
            human_bytes(set.output_bytes),
            if set.encryption.is_some() {
                "  encrypted"
            } else {
                ""
            }
        );
    }
    println!("archive pieces:");
    for piece in &summary.pieces {
        println!(
            "  r{} p{:<3} {:<6} {:<9} ({} .. {}]  checkpoint {}  {}",
            piece.round_id,
            piece.piece_id,
            format!("{:?}", piece.status).to_uppercase(),
            format!("{:?}", piece.file_status).to_uppercase(),
            piece.start_scn,
            piece.end_scn,
            piece.checkpoint_scn,
            human_bytes(piece.output_bytes)
        );
    }
    println!(
        "wrote {} (data {}, archive {}, truth {}) in {:.2}s: {:.0} MB/s",
        human_bytes(summary.total_bytes()),
        human_bytes(summary.data_bytes),
        human_bytes(summary.archive_bytes),
        human_bytes(summary.truth_bytes),
        summary.elapsed.as_secs_f64(),
        summary.mb_per_sec()
    );
}

/// Opens both destinations through [`Sources`], confined to `--allow-root`s or else to
/// themselves, with an error that names the option to fix.
pub fn open_sources(source: &SourceArgs) -> anyhow::Result<Sources> {
    let archive_uri = source
        .archive_uri
        .clone()
        .unwrap_or_else(|| source.data_uri.clone());
    let opened = if source.allow_roots.is_empty() {
        Sources::open_self_confined(&source.data_uri, &archive_uri)
    } else {
        Sources::open(
            &source.data_uri,
            &archive_uri,
            &AllowedRoots::new(&source.allow_roots)?,
        )
    };
    opened.map_err(|err| {
        let uri = err.uri().to_string();
        let context = match (&err, err.destination()) {
            (SourcesError::NotADirectory { .. }, _) => return anyhow::Error::new(err),
            (_, Destination::Data) => format!("cannot open data backup destination {uri}"),
            (_, Destination::Archive) if source.archive_uri.is_none() => format!(
                "cannot open archive log destination {uri} (it defaults to --data-uri; pass --archive-uri)"
            ),
            (_, Destination::Archive) => format!("cannot open archive log destination {uri}"),
        };
        anyhow::Error::new(err).context(context)
    })
}

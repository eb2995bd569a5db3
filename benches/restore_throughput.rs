//! Restore throughput of a generated backup, next to a plain copy of the same bytes.
//!
//! One backup is generated once (`obrestore_backup::generate`, demo layout, no password)
//! in a temporary directory. Criterion then measures, in the same run and on the same
//! disk:
//!
//! - `restore/concurrency_{1,2,4}`: a whole restore DAG to the latest point, from
//!   `start_restore` to `wait_settled`, in a fresh agent data directory per iteration
//!   (opening the agent is not timed). The DAG must end SUCCEED with
//!   `finish_bytes == total_bytes`. Throughput is the data bytes restored (the restore
//!   job's `total_bytes`: every data file of the chosen backup sets).
//! - `copy/read_write_1MiB`: the same data files copied into a temporary directory by
//!   `read` + `write` with a 1 MiB buffer, each file `fsync`ed. This is the baseline.
//! - `copy/fs_copy`: the same with `std::fs::copy` (`copy_file_range`, in the kernel) +
//!   `fsync`, for reference.
//! - `copy/all_inputs_read_write_1MiB`: the read + write copy of everything a restore
//!   reads: the data files and every log file of the chosen pieces (replay reads them
//!   all), the baseline for the whole DAG measured over all bytes read.
//!
//! Criterion's MB/s for `restore/*` is over the whole DAG. The `Restore data` stage alone
//! (user log streams' data bytes over the span from the first `Restore data L` node's
//! start to the last one's end) and the wall time of every stage are collected from the
//! DAG's node times during the criterion iterations and printed as medians after the
//! criterion groups, with the restore/copy ratios.
//!
//! Peak RSS is measured before the criterion groups: the bench re-runs its own binary as
//! a child process (`OBRESTORE_BENCH_RSS_CHILD`) that performs one restore at
//! concurrency 2 of a freshly generated backup and reports its `VmHWM` from
//! `/proc/self/status`; this is done at several backup sizes.
//!
//! Environment: `OBRESTORE_BENCH_MIB` (size of the criterion backup, default 256),
//! `OBRESTORE_BENCH_RSS_MIB` (comma-separated sizes for the RSS pass, default `64,512,2048`;
//! empty skips it). Results and the command line are recorded in `docs/performance.md`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use criterion::{BenchmarkId, Criterion, SamplingMode, Throughput};
use obrestore::backup::{
    generate, AllowedRoots, GenerateConfig, GenerateSummary, RestoreTarget, Sources,
};
use obrestore::dag::{AgentInfo, State};
use obrestore::restore::{AgentConfig, ClusterConfig, RestoreAgent, RestoreParam};
use serde_json::json;
use tempfile::TempDir;
use tokio::runtime::Runtime;

/// Concurrencies of `Restore data` (the `restore_data` pool's capacity) that are measured.
const CONCURRENCIES: [usize; 3] = [1, 2, 4];
/// The concurrency the target is stated for.
const TARGET_CONCURRENCY: usize = 2;
/// The engine's global worker limit (obshell's default).
const WORKER_LIMIT: usize = 8;
/// Buffer of the read + write copy baseline.
const COPY_BUFFER: usize = 1 << 20;
/// The sys log stream, restored by `Restore sys tablets` rather than `Restore data L`.
const SYS_LS: u64 = 1;
/// Environment variable that turns the process into the RSS child.
const RSS_CHILD_ENV: &str = "OBRESTORE_BENCH_RSS_CHILD";
const MIB: u64 = 1 << 20;

/// The generated backup and the data files a restore to the latest point reads.
struct Fixture {
    directory: TempDir,
    summary: GenerateSummary,
    /// Every data file of the chosen sets, with its log stream and size.
    files: Vec<(u64, PathBuf, u64)>,
    /// Sum of all data files (the restore job's `total_bytes`).
    total_bytes: u64,
    /// Sum of the user log streams' data files (what `Restore data L` restores).
    user_bytes: u64,
    /// Every archive log file of the chosen pieces (what `Replay log L` reads), with size.
    log_files: Vec<(PathBuf, u64)>,
    /// Sum of `log_files`.
    log_bytes: u64,
}

fn generate_backup(mebibytes: u64) -> Fixture {
    let directory = tempfile::tempdir().expect("temporary directory");
    let mut config = GenerateConfig::new(directory.path());
    config.target_bytes = mebibytes * MIB;
    let summary = generate(&config).expect("backup generates");
    let roots = AllowedRoots::new([directory.path()]).expect("allowed roots");
    let sources =
        Sources::open(&summary.data_uri, &summary.archive_uri, &roots).expect("backup sources");
    let plan = sources
        .plan(&RestoreTarget::Latest, &[])
        .expect("restore plan");
    let Sources { data, archive } = sources;
    let mut files = Vec::new();
    for planned in &plan.sets {
        for attr in data.ls_attrs(&planned.info).expect("ls attributes") {
            for file in data
                .data_files(&planned.info, attr.ls_id)
                .expect("data files")
            {
                files.push((attr.ls_id, file.path, file.size_bytes));
            }
        }
    }
    let mut log_files = Vec::new();
    for piece in &plan.pieces {
        for ls_id in archive.ls_ids(&piece.info).expect("piece log streams") {
            for file in archive
                .log_files(&piece.info, ls_id)
                .expect("piece log files")
            {
                log_files.push((file.path, file.size_bytes));
            }
        }
    }
    let log_bytes = log_files.iter().map(|(_, size)| size).sum();
    let total_bytes = files.iter().map(|(_, _, size)| size).sum();
    let user_bytes = files
        .iter()
        .filter(|(ls, _, _)| *ls != SYS_LS)
        .map(|(_, _, size)| size)
        .sum();
    Fixture {
        directory,
        summary,
        files,
        total_bytes,
        user_bytes,
        log_files,
        log_bytes,
    }
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn open_agent(data_dir: &Path, root: &Path) -> RestoreAgent {
    RestoreAgent::open(AgentConfig {
        data_dir: data_dir.to_path_buf(),
        agent: AgentInfo::default(),
        allowed_roots: vec![root.to_path_buf()],
        worker_limit: WORKER_LIMIT,
        cluster: ClusterConfig::default(),
    })
    .await
    .expect("agent opens")
}

fn restore_param(summary: &GenerateSummary, concurrency: usize) -> RestoreParam {
    serde_json::from_value(json!({
        "data_backup_uri": summary.data_uri,
        "archive_log_uri": summary.archive_uri,
        "restore_tenant_name": "bench",
        "zone_list": [{"name": "z1", "unit_config_name": "s1", "unit_num": 1}],
        "concurrency": concurrency,
    }))
    .expect("restore parameters")
}

/// What one restore took.
#[derive(Debug, Clone, Default)]
struct RestoreTiming {
    /// From `start_restore` to `wait_settled`.
    whole: Duration,
    /// From the first `Restore data L` start to the last one's end.
    restore_data: Duration,
    /// Wall span of every stage (node name without its log stream), by stage name.
    stages: BTreeMap<String, Duration>,
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

/// `Restore data 1001` → `Restore data`; other names unchanged.
fn stage_name(node_name: &str) -> String {
    match node_name.rsplit_once(' ') {
        Some((stem, suffix)) if suffix.chars().all(|c| c.is_ascii_digit()) => stem.to_string(),
        _ => node_name.to_string(),
    }
}

/// Runs one restore in a fresh data directory under `root` and checks it succeeded with
/// every data byte restored.
async fn restore_once(fixture: &Fixture, backup_root: &Path, concurrency: usize) -> RestoreTiming {
    let state = tempfile::tempdir().expect("temporary directory");
    let agent = open_agent(state.path(), backup_root).await;
    let started = Instant::now();
    let dag = agent
        .start_restore(restore_param(&fixture.summary, concurrency))
        .await
        .expect("restore starts");
    let dag_id = agent.engine().decode_id(&dag.id).expect("dag id").0;
    let settled = agent.engine().wait_settled(dag_id).await.expect("settles");
    let whole = started.elapsed();
    assert_eq!(settled.state, State::Succeed, "restore did not succeed");
    let overview = agent.restore_overview("bench").expect("overview").job;
    assert_eq!(overview.status.to_string(), "SUCCESS");
    assert_eq!(overview.total_bytes, fixture.total_bytes);
    assert_eq!(overview.finish_bytes, overview.total_bytes);

    let detail = agent.engine().dag_detail(dag_id, true).expect("detail");
    let mut spans: BTreeMap<String, (DateTime<Utc>, DateTime<Utc>)> = BTreeMap::new();
    for node in detail.nodes.unwrap_or_default() {
        let (Some(start), Some(end)) = (parse_time(&node.start_time), parse_time(&node.end_time))
        else {
            continue;
        };
        let span = spans.entry(stage_name(&node.name)).or_insert((start, end));
        span.0 = span.0.min(start);
        span.1 = span.1.max(end);
    }
    let stages: BTreeMap<String, Duration> = spans
        .into_iter()
        .map(|(name, (start, end))| (name, (end - start).to_std().unwrap_or_default()))
        .collect();
    let restore_data = stages.get("Restore data").copied().unwrap_or_default();
    agent.shutdown(Duration::from_secs(5)).await;
    drop(agent);
    RestoreTiming {
        whole,
        restore_data,
        stages,
    }
}

/// Copies `paths` into a fresh directory under `scratch` with `read` + `write` (1 MiB
/// buffer), `fsync`ing each file.
fn copy_files_read_write<'a>(paths: impl Iterator<Item = &'a PathBuf>, scratch: &Path) {
    let target = tempfile::tempdir_in(scratch).expect("copy directory");
    let mut buffer = vec![0u8; COPY_BUFFER];
    for (index, path) in paths.enumerate() {
        let mut source = std::fs::File::open(path).expect("open source file");
        let mut sink =
            std::fs::File::create(target.path().join(index.to_string())).expect("create");
        loop {
            let read = source.read(&mut buffer).expect("read");
            if read == 0 {
                break;
            }
            sink.write_all(&buffer[..read]).expect("write");
        }
        sink.sync_all().expect("fsync");
    }
}

/// Copies every data file into a fresh directory next to the backup with `read` +
/// `write` (1 MiB buffer), `fsync`ing each file.
fn copy_read_write(fixture: &Fixture, scratch: &Path) {
    copy_files_read_write(fixture.files.iter().map(|(_, path, _)| path), scratch);
}

/// The same for every file a restore reads: the data files and the chosen pieces' log
/// files.
fn copy_all_inputs(fixture: &Fixture, scratch: &Path) {
    copy_files_read_write(
        fixture
            .files
            .iter()
            .map(|(_, path, _)| path)
            .chain(fixture.log_files.iter().map(|(path, _)| path)),
        scratch,
    );
}

/// Copies every data file with `std::fs::copy`, `fsync`ing each file.
fn copy_fs(fixture: &Fixture, scratch: &Path) {
    let target = tempfile::tempdir_in(scratch).expect("copy directory");
    for (index, (_, path, _)) in fixture.files.iter().enumerate() {
        let destination = target.path().join(index.to_string());
        std::fs::copy(path, &destination).expect("copy");
        std::fs::File::options()
            .write(true)
            .open(&destination)
            .and_then(|file| file.sync_all())
            .expect("fsync");
    }
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

fn megabytes_per_second(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9)
}

/// Per-iteration measurements collected during the criterion groups.
#[derive(Default)]
struct Collected {
    restores: BTreeMap<usize, Vec<RestoreTiming>>,
    copies: BTreeMap<&'static str, Vec<Duration>>,
}

fn throughput(c: &mut Criterion, fixture: &Fixture, collected: &Mutex<Collected>) {
    let rt = runtime();
    let backup_root = fixture.directory.path().to_path_buf();
    // The copies are written next to the backup: same disk, same file system.
    let scratch = backup_root.clone();

    let mut copy = c.benchmark_group("copy");
    copy.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    type CopyFn = fn(&Fixture, &Path);
    let copies: [(&'static str, CopyFn, u64); 3] = [
        ("read_write_1MiB", copy_read_write, fixture.total_bytes),
        ("fs_copy", copy_fs, fixture.total_bytes),
        (
            "all_inputs_read_write_1MiB",
            copy_all_inputs,
            fixture.total_bytes + fixture.log_bytes,
        ),
    ];
    for (name, run, bytes) in copies {
        copy.throughput(Throughput::Bytes(bytes));
        copy.bench_function(name, |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let started = Instant::now();
                    run(fixture, &scratch);
                    let elapsed = started.elapsed();
                    total += elapsed;
                    if let Ok(mut collected) = collected.lock() {
                        collected.copies.entry(name).or_default().push(elapsed);
                    }
                }
                total
            })
        });
    }
    copy.finish();

    let mut restore = c.benchmark_group("restore");
    restore
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(20))
        .throughput(Throughput::Bytes(fixture.total_bytes));
    for concurrency in CONCURRENCIES {
        restore.bench_with_input(
            BenchmarkId::new("concurrency", concurrency),
            &concurrency,
            |b, &concurrency| {
                b.iter_custom(|iterations| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iterations {
                        let timing = rt.block_on(restore_once(fixture, &backup_root, concurrency));
                        total += timing.whole;
                        if let Ok(mut collected) = collected.lock() {
                            collected
                                .restores
                                .entry(concurrency)
                                .or_default()
                                .push(timing);
                        }
                    }
                    total
                })
            },
        );
    }
    restore.finish();
}

/// Prints medians over every iteration criterion ran (warm-up included).
fn print_summary(fixture: &Fixture, collected: &Collected) {
    println!();
    println!(
        "backup: {:.1} MiB data + {:.1} MiB archive generated; restore to the latest point reads \
         {} data files, {:.1} MB ({:.1} MB of user log streams), and replays {} log files, {:.1} MB",
        fixture.summary.data_bytes as f64 / MIB as f64,
        fixture.summary.archive_bytes as f64 / MIB as f64,
        fixture.files.len(),
        fixture.total_bytes as f64 / 1e6,
        fixture.user_bytes as f64 / 1e6,
        fixture.log_files.len(),
        fixture.log_bytes as f64 / 1e6,
    );
    let copy_rates = print_copy_rates(fixture, collected);
    let baseline = copy_rates
        .get("read_write_1MiB")
        .copied()
        .unwrap_or(f64::NAN);
    if baseline.is_nan() {
        println!("copy/read_write_1MiB was not run: the ratios below are NaN");
    }
    let all_inputs_baseline = copy_rates
        .get("all_inputs_read_write_1MiB")
        .copied()
        .unwrap_or(f64::NAN);
    for (concurrency, timings) in &collected.restores {
        print_restore_rates(
            fixture,
            *concurrency,
            timings,
            baseline,
            all_inputs_baseline,
        );
    }
    if let Some(timings) = collected.restores.get(&TARGET_CONCURRENCY) {
        let mut rates: Vec<f64> = timings
            .iter()
            .map(|t| megabytes_per_second(fixture.total_bytes, t.whole))
            .collect();
        let ratio = median(&mut rates) / baseline;
        let mut data_rates: Vec<f64> = timings
            .iter()
            .map(|t| megabytes_per_second(fixture.user_bytes, t.restore_data))
            .collect();
        let data_ratio = median(&mut data_rates) / baseline;
        let verdict = |ratio: f64| if ratio >= 0.8 { "met" } else { "missed" };
        println!(
            "target: restore at concurrency {TARGET_CONCURRENCY} >= 80% of copy: Restore data stage \
             {:.0}% → {}; whole DAG (data bytes over the whole DAG, replay and post check \
             included) {:.0}% → {}",
            100.0 * data_ratio,
            verdict(data_ratio),
            100.0 * ratio,
            verdict(ratio)
        );
    }
}

/// Prints the median rate of each copy baseline and returns them by name.
fn print_copy_rates(fixture: &Fixture, collected: &Collected) -> BTreeMap<&'static str, f64> {
    let mut copy_rates = BTreeMap::new();
    for (name, times) in &collected.copies {
        let bytes = if name.starts_with("all_inputs") {
            fixture.total_bytes + fixture.log_bytes
        } else {
            fixture.total_bytes
        };
        let mut rates: Vec<f64> = times
            .iter()
            .map(|time| megabytes_per_second(bytes, *time))
            .collect();
        let rate = median(&mut rates);
        copy_rates.insert(*name, rate);
        println!(
            "copy {name:<26} median {rate:>7.1} MB/s over {} runs",
            times.len()
        );
    }
    copy_rates
}

/// Prints the median rates and stage spans of the restores at one concurrency.
fn print_restore_rates(
    fixture: &Fixture,
    concurrency: usize,
    timings: &[RestoreTiming],
    baseline: f64,
    all_inputs_baseline: f64,
) {
    let mut whole: Vec<f64> = timings
        .iter()
        .map(|t| megabytes_per_second(fixture.total_bytes, t.whole))
        .collect();
    let mut data: Vec<f64> = timings
        .iter()
        .map(|t| megabytes_per_second(fixture.user_bytes, t.restore_data))
        .collect();
    let mut inputs: Vec<f64> = timings
        .iter()
        .map(|t| megabytes_per_second(fixture.total_bytes + fixture.log_bytes, t.whole))
        .collect();
    let whole = median(&mut whole);
    let data = median(&mut data);
    let inputs = median(&mut inputs);
    println!(
        "restore concurrency {concurrency}: whole DAG median {whole:>6.1} MB/s of data ({:.0}% of copy), \
         Restore data stage median {data:>6.1} MB/s ({:.0}% of copy), {} runs",
        100.0 * whole / baseline,
        100.0 * data / baseline,
        timings.len()
    );
    println!(
        "  whole DAG over everything read (data + log files): {inputs:>6.1} MB/s ({:.0}% of \
         copying those files)",
        100.0 * inputs / all_inputs_baseline,
    );
    let names: std::collections::BTreeSet<&String> =
        timings.iter().flat_map(|t| t.stages.keys()).collect();
    let mut wholes: Vec<f64> = timings.iter().map(|t| t.whole.as_secs_f64()).collect();
    println!("  whole DAG              {:>8.3} s", median(&mut wholes));
    for name in names {
        let mut seconds: Vec<f64> = timings
            .iter()
            .filter_map(|t| t.stages.get(name))
            .map(Duration::as_secs_f64)
            .collect();
        println!("  {name:<22} {:>8.3} s (wall span)", median(&mut seconds));
    }
}

/// `VmHWM` (peak resident set) of this process in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The child side of the RSS pass: one restore at the target concurrency of the backup
/// whose data and archive URIs are in the environment, then `VmHWM`.
fn rss_child(backup_root: &str) {
    let data_uri = std::env::var("OBRESTORE_BENCH_DATA_URI").expect("data URI");
    let archive_uri = std::env::var("OBRESTORE_BENCH_ARCHIVE_URI").expect("archive URI");
    let rt = runtime();
    let before = peak_rss_kib().unwrap_or(0);
    rt.block_on(async {
        let state = tempfile::tempdir().expect("temporary directory");
        let agent = open_agent(state.path(), Path::new(backup_root)).await;
        let param: RestoreParam = serde_json::from_value(json!({
            "data_backup_uri": data_uri,
            "archive_log_uri": archive_uri,
            "restore_tenant_name": "rss",
            "zone_list": [{"name": "z1", "unit_config_name": "s1", "unit_num": 1}],
            "concurrency": TARGET_CONCURRENCY,
        }))
        .expect("restore parameters");
        let dag = agent.start_restore(param).await.expect("restore starts");
        let dag_id = agent.engine().decode_id(&dag.id).expect("dag id").0;
        let settled = agent.engine().wait_settled(dag_id).await.expect("settles");
        assert_eq!(settled.state, State::Succeed, "restore did not succeed");
        let overview = agent.restore_overview("rss").expect("overview").job;
        println!("RSS_CHILD finish_bytes={}", overview.finish_bytes);
        agent.shutdown(Duration::from_secs(5)).await;
    });
    println!(
        "RSS_CHILD before_kib={before} peak_kib={}",
        peak_rss_kib().unwrap_or(0)
    );
}

/// The parent side: for each size, generate a backup (in this process) and restore it in
/// a child process, reporting the child's peak RSS.
fn rss_pass() {
    let sizes =
        std::env::var("OBRESTORE_BENCH_RSS_MIB").unwrap_or_else(|_| "64,512,2048".to_string());
    let sizes: Vec<u64> = sizes
        .split(',')
        .filter_map(|size| size.trim().parse().ok())
        .collect();
    if sizes.is_empty() {
        return;
    }
    let executable = std::env::current_exe().expect("bench executable");
    println!("peak RSS of one restore (child process, concurrency {TARGET_CONCURRENCY}):");
    for size in sizes {
        let fixture = generate_backup(size);
        let root = fixture.directory.path();
        let started = Instant::now();
        let output = std::process::Command::new(&executable)
            .env(RSS_CHILD_ENV, root)
            .env("OBRESTORE_BENCH_DATA_URI", &fixture.summary.data_uri)
            .env("OBRESTORE_BENCH_ARCHIVE_URI", &fixture.summary.archive_uri)
            .output()
            .expect("child runs");
        let elapsed = started.elapsed();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "RSS child failed: {stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let field = |name: &str| -> u64 {
            stdout
                .split_whitespace()
                .find_map(|word| word.strip_prefix(name))
                .and_then(|value| value.parse().ok())
                .unwrap_or(0)
        };
        println!(
            "  backup {size:>4} MiB (restored data {:>6.1} MB): peak RSS {:>6.1} MiB \
             (before the agent opened {:>5.1} MiB), restore {:.1} s",
            field("finish_bytes=") as f64 / 1e6,
            field("peak_kib=") as f64 / 1024.0,
            field("before_kib=") as f64 / 1024.0,
            elapsed.as_secs_f64(),
        );
    }
    println!();
}

fn main() {
    if let Ok(root) = std::env::var(RSS_CHILD_ENV) {
        rss_child(&root);
        return;
    }
    let mut criterion = Criterion::default().configure_from_args();
    rss_pass();
    let mebibytes = std::env::var("OBRESTORE_BENCH_MIB")
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(256);
    let fixture = generate_backup(mebibytes);
    let collected = Mutex::new(Collected::default());
    throughput(&mut criterion, &fixture, &collected);
    criterion.final_summary();
    match collected.into_inner() {
        Ok(collected) => print_summary(&fixture, &collected),
        Err(_) => eprintln!("a benchmark iteration panicked; no summary"),
    }
}

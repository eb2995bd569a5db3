//! Restore MB/s by `concurrency`: one generated backup (demo layout, no password)
//! restored to the latest point at concurrency 1, 2, 4 and 8, the concurrencies taking
//! turns round after round (so a noisy machine slows them alike), each restore in a
//! fresh agent data directory. `Restore data L` splits each log stream into up to
//! `concurrency` row ranges by macro block, so the `Restore data` stage is what
//! concurrency speeds up.
//!
//! Printed per concurrency (medians over the rounds): the whole DAG (from `start_restore`
//! to `wait_settled`) as MB/s of the data bytes restored (the restore job's
//! `total_bytes`), the `Restore data` stage (user log streams' data bytes over the span
//! from the first `Restore data L` start to the last one's end), the speed-up of that
//! stage over concurrency 1, and the sub-tasks of the `Restore data` nodes. Every restore
//! must end SUCCEED with `finish_bytes == total_bytes`.
//!
//! The row "8, whole files" is the same backup at concurrency 8 with the block entries
//! removed from its macro range indexes (put back after the run): `Restore data L` then
//! makes one sub-task per connected group of tablets, as before the split by ranges
//! (the demo backup has one group per log stream).
//!
//! `cargo bench --bench restore_concurrency` ; environment: `OBRESTORE_BENCH_MIB`
//! (backup size, default 256), `OBRESTORE_BENCH_ROUNDS` (default 3),
//! `OBRESTORE_BENCH_PASSWORD` (encrypt every set with it: AES-GCM makes reading CPU-bound).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use obrestore::backup::{generate, GenerateConfig, GenerateSummary};
use obrestore::dag::{AgentInfo, State};
use obrestore::restore::{AgentConfig, ClusterConfig, RestoreAgent, RestoreParam};
use serde_json::json;

/// `(concurrency, split by ranges)` in the order they take turns.
const CASES: [(u32, bool); 5] = [(1, true), (2, true), (4, true), (8, true), (8, false)];
/// The engine's global worker limit (obshell's default).
const WORKER_LIMIT: usize = 8;
const MIB: u64 = 1 << 20;

/// One restore's figures.
struct Run {
    whole: Duration,
    /// CPU seconds (user + system) of this process during the restore: less sensitive to
    /// other load than wall time.
    cpu: f64,
    restore_data: Duration,
    /// From the first `Restore data L` start to the last `Replay log L` end (a batch that
    /// crosses the row store's compaction threshold pays for the compaction, in whichever
    /// stage that falls).
    through_replay: Duration,
    total_bytes: u64,
    /// Bytes of the user log streams' data groups (what `Restore data L` restores).
    user_bytes: u64,
    sub_tasks: usize,
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|text| text.parse().ok())
        .unwrap_or(default)
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

fn param(summary: &GenerateSummary, concurrency: u32) -> RestoreParam {
    let passwords: Vec<String> = password().into_iter().collect();
    serde_json::from_value(json!({
        "data_backup_uri": summary.data_uri,
        "archive_log_uri": summary.archive_uri,
        "restore_tenant_name": "bench",
        "zone_list": [{"name": "z1", "unit_config_name": "s1", "unit_num": 1}],
        "concurrency": concurrency,
        "decryption": passwords,
    }))
    .expect("restore parameters")
}

/// `OBRESTORE_BENCH_PASSWORD`, if set and not empty.
fn password() -> Option<String> {
    std::env::var("OBRESTORE_BENCH_PASSWORD")
        .ok()
        .filter(|password| !password.is_empty())
}

async fn restore_once(summary: &GenerateSummary, root: &Path, concurrency: u32) -> Run {
    let state = tempfile::tempdir().expect("temporary directory");
    let agent = RestoreAgent::open(AgentConfig {
        data_dir: state.path().to_path_buf(),
        agent: AgentInfo::default(),
        allowed_roots: vec![root.to_path_buf()],
        worker_limit: WORKER_LIMIT,
        cluster: ClusterConfig::default(),
    })
    .await
    .expect("agent opens");
    let started = Instant::now();
    let cpu_before = process_cpu_seconds();
    let dag = agent
        .start_restore(param(summary, concurrency))
        .await
        .expect("restore starts");
    let dag_id = agent.engine().decode_id(&dag.id).expect("dag id").0;
    let settled = agent.engine().wait_settled(dag_id).await.expect("settles");
    let whole = started.elapsed();
    let cpu = process_cpu_seconds() - cpu_before;
    assert_eq!(settled.state, State::Succeed, "restore did not succeed");
    let job = agent.restore_overview("bench").expect("overview").job;
    assert_eq!(job.finish_bytes, job.total_bytes);
    let user_bytes = job
        .parts
        .iter()
        .filter(|(part, _)| !part.starts_with("data/1/"))
        .map(|(_, progress)| progress.bytes)
        .sum();
    let detail = agent.engine().dag_detail(dag_id, true).expect("detail");
    // Wall spans of the `Restore data` and `Replay log` stages.
    let mut spans: [Option<(DateTime<Utc>, DateTime<Utc>)>; 2] = [None, None];
    let mut sub_tasks = 0;
    for node in detail.nodes.unwrap_or_default() {
        let stage = if node.name.starts_with("Restore data") {
            sub_tasks += node.sub_tasks.as_ref().map_or(0, Vec::len);
            0
        } else if node.name.starts_with("Replay log") {
            1
        } else {
            continue;
        };
        if let (Some(start), Some(end)) = (parse_time(&node.start_time), parse_time(&node.end_time))
        {
            let (first, last) = spans[stage].get_or_insert((start, end));
            *first = (*first).min(start);
            *last = (*last).max(end);
        }
    }
    let seconds = |span: Option<(DateTime<Utc>, DateTime<Utc>)>| {
        span.map_or(Duration::ZERO, |(start, end)| {
            (end - start).to_std().unwrap_or_default()
        })
    };
    let through_replay = match spans {
        [Some((start, _)), Some((_, end))] => seconds(Some((start, end))),
        _ => Duration::ZERO,
    };
    agent.shutdown(Duration::from_secs(5)).await;
    Run {
        whole,
        cpu,
        restore_data: seconds(spans[0]),
        through_replay,
        total_bytes: job.total_bytes,
        user_bytes,
        sub_tasks,
    }
}

/// User + system CPU seconds of this process (`/proc/self/stat`, in USER_HZ = 100 ticks).
fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15, the 12th and 13th after the name.
    let ticks = |index: usize| -> f64 {
        fields
            .get(index)
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn megabytes_per_second(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing here takes arguments.
    let mebibytes = env_number("OBRESTORE_BENCH_MIB", 256);
    let rounds = env_number("OBRESTORE_BENCH_ROUNDS", 3).max(1);
    let directory = tempfile::tempdir().expect("temporary directory");
    let mut config = GenerateConfig::new(directory.path());
    config.target_bytes = mebibytes * MIB;
    for set in &mut config.sets {
        set.password = password();
    }
    let summary = generate(&config).expect("backup generates");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let indexes = index_files(&summary.data_dir);
    let mut runs: BTreeMap<(bool, u32), Vec<Run>> = BTreeMap::new();
    for round in 0..rounds {
        for (concurrency, ranges) in CASES {
            let saved = (!ranges).then(|| strip_block_entries(&indexes));
            let run = runtime.block_on(restore_once(&summary, directory.path(), concurrency));
            for (path, text) in saved.into_iter().flatten() {
                std::fs::write(path, text).expect("index restored");
            }
            eprintln!(
                "round {round} concurrency {concurrency} ranges {ranges}: whole {:.2} s, \
                 Restore data {:.2} s",
                run.whole.as_secs_f64(),
                run.restore_data.as_secs_f64()
            );
            runs.entry((!ranges, concurrency)).or_default().push(run);
        }
    }
    print_table(&summary, rounds, &runs);
}

/// Every `macro_range_index.obbak` under `dir`.
fn index_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .file_name()
                .is_some_and(|name| name == "macro_range_index.obbak")
            {
                found.push(path);
            }
        }
    }
    found
}

/// Removes the block entries of every index (the format without them); returns the
/// original texts to put back.
fn strip_block_entries(indexes: &[PathBuf]) -> Vec<(PathBuf, String)> {
    indexes
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path).expect("index reads");
            let mut envelope: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            if let Some(files) = envelope["body"]["files"].as_array_mut() {
                for file in files {
                    if let Some(file) = file.as_object_mut() {
                        file.remove("blocks");
                    }
                }
            }
            std::fs::write(path, envelope.to_string()).expect("index written");
            (path.clone(), text)
        })
        .collect()
}

fn print_table(summary: &GenerateSummary, rounds: u64, runs: &BTreeMap<(bool, u32), Vec<Run>>) {
    let first = runs.values().next().and_then(|runs| runs.first());
    let (total, user) = first.map_or((0, 0), |run| (run.total_bytes, run.user_bytes));
    println!(
        "backup: {:.1} MiB data + {:.1} MiB archive{}; a restore to the latest point restores \
         {:.1} MB of data ({:.1} MB in user log streams); {rounds} rounds, {} cores",
        summary.data_bytes as f64 / MIB as f64,
        summary.archive_bytes as f64 / MIB as f64,
        if password().is_some() {
            ", sets encrypted"
        } else {
            ""
        },
        total as f64 / 1e6,
        user as f64 / 1e6,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!(
        "| concurrency | Restore data sub-tasks | Restore data stage MB/s | speed-up | data + replay s | whole DAG s | whole DAG MB/s | CPU s per restore |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let stage = |runs: &[Run]| {
        median(
            runs.iter()
                .map(|run| megabytes_per_second(run.user_bytes, run.restore_data))
                .collect(),
        )
    };
    let base = runs.get(&(false, 1)).map_or(f64::NAN, |runs| stage(runs));
    for ((whole_files, concurrency), runs) in runs {
        let label = if *whole_files {
            format!("{concurrency}, whole files")
        } else {
            concurrency.to_string()
        };
        let data = stage(runs);
        let whole = median(runs.iter().map(|run| run.whole.as_secs_f64()).collect());
        let whole_rate = median(
            runs.iter()
                .map(|run| megabytes_per_second(run.total_bytes, run.whole))
                .collect(),
        );
        let sub_tasks = runs.first().map_or(0, |run| run.sub_tasks);
        let cpu = median(runs.iter().map(|run| run.cpu).collect());
        let through_replay = median(
            runs.iter()
                .map(|run| run.through_replay.as_secs_f64())
                .collect(),
        );
        println!(
            "| {label} | {sub_tasks} | {data:.1} | {:.2}× | {through_replay:.2} | {whole:.2} | {whole_rate:.1} | {cpu:.2} |",
            data / base
        );
    }
}

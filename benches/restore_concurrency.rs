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
//! `cargo bench --bench restore_concurrency` ; environment: `OBRESTORE_BENCH_MIB`
//! (backup size, default 256), `OBRESTORE_BENCH_ROUNDS` (default 3).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use obrestore::backup::{generate, GenerateConfig, GenerateSummary};
use obrestore::dag::{AgentInfo, State};
use obrestore::restore::{AgentConfig, ClusterConfig, RestoreAgent, RestoreParam};
use serde_json::json;

const CONCURRENCIES: [u32; 4] = [1, 2, 4, 8];
/// The engine's global worker limit (obshell's default).
const WORKER_LIMIT: usize = 8;
const MIB: u64 = 1 << 20;

/// One restore's figures.
struct Run {
    whole: Duration,
    restore_data: Duration,
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
    serde_json::from_value(json!({
        "data_backup_uri": summary.data_uri,
        "archive_log_uri": summary.archive_uri,
        "restore_tenant_name": "bench",
        "zone_list": [{"name": "z1", "unit_config_name": "s1", "unit_num": 1}],
        "concurrency": concurrency,
    }))
    .expect("restore parameters")
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
    let dag = agent
        .start_restore(param(summary, concurrency))
        .await
        .expect("restore starts");
    let dag_id = agent.engine().decode_id(&dag.id).expect("dag id").0;
    let settled = agent.engine().wait_settled(dag_id).await.expect("settles");
    let whole = started.elapsed();
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
    let mut span: Option<(DateTime<Utc>, DateTime<Utc>)> = None;
    let mut sub_tasks = 0;
    for node in detail.nodes.unwrap_or_default() {
        if !node.name.starts_with("Restore data") {
            continue;
        }
        sub_tasks += node.sub_tasks.map_or(0, |tasks| tasks.len());
        if let (Some(start), Some(end)) = (parse_time(&node.start_time), parse_time(&node.end_time))
        {
            let (first, last) = span.get_or_insert((start, end));
            *first = (*first).min(start);
            *last = (*last).max(end);
        }
    }
    agent.shutdown(Duration::from_secs(5)).await;
    Run {
        whole,
        restore_data: span.map_or(Duration::ZERO, |(start, end)| {
            (end - start).to_std().unwrap_or_default()
        }),
        total_bytes: job.total_bytes,
        user_bytes,
        sub_tasks,
    }
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
    let summary = generate(&config).expect("backup generates");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut runs: BTreeMap<u32, Vec<Run>> = BTreeMap::new();
    for round in 0..rounds {
        for concurrency in CONCURRENCIES {
            let run = runtime.block_on(restore_once(&summary, directory.path(), concurrency));
            eprintln!(
                "round {round} concurrency {concurrency}: whole {:.2} s, Restore data {:.2} s",
                run.whole.as_secs_f64(),
                run.restore_data.as_secs_f64()
            );
            runs.entry(concurrency).or_default().push(run);
        }
    }
    print_table(&summary, rounds, &runs);
}

fn print_table(summary: &GenerateSummary, rounds: u64, runs: &BTreeMap<u32, Vec<Run>>) {
    let first = runs.values().next().and_then(|runs| runs.first());
    let (total, user) = first.map_or((0, 0), |run| (run.total_bytes, run.user_bytes));
    println!(
        "backup: {:.1} MiB data + {:.1} MiB archive; a restore to the latest point restores \
         {:.1} MB of data ({:.1} MB in user log streams); {rounds} rounds, {} cores",
        summary.data_bytes as f64 / MIB as f64,
        summary.archive_bytes as f64 / MIB as f64,
        total as f64 / 1e6,
        user as f64 / 1e6,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    println!(
        "| concurrency | Restore data sub-tasks | Restore data stage MB/s | speed-up | whole DAG s | whole DAG MB/s |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let stage = |runs: &[Run]| {
        median(
            runs.iter()
                .map(|run| megabytes_per_second(run.user_bytes, run.restore_data))
                .collect(),
        )
    };
    let base = runs.get(&1).map_or(f64::NAN, |runs| stage(runs));
    for (concurrency, runs) in runs {
        let data = stage(runs);
        let whole = median(runs.iter().map(|run| run.whole.as_secs_f64()).collect());
        let whole_rate = median(
            runs.iter()
                .map(|run| megabytes_per_second(run.total_bytes, run.whole))
                .collect(),
        );
        let sub_tasks = runs.first().map_or(0, |run| run.sub_tasks);
        println!(
            "| {concurrency} | {sub_tasks} | {data:.1} | {:.2}× | {whole:.2} | {whole_rate:.1} |",
            data / base
        );
    }
}

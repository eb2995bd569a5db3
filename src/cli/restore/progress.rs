//! A restore followed in the embedded agent: opening the agent, the live progress on
//! stderr (a stage bar, a data bar, one line per node transition) and the summary.
//! Shared by `obagent restore start` and `obagent demo`.
//!
//! Invariant: progress goes to stderr only; the summary is returned as text, so the
//! caller decides where it goes (stderr under `--json`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use obrestore_dag::record::{DagRecord, NodeRecord};
use obrestore_dag::{AgentInfo, Engine, Event, State, Subject};
use obrestore_restore::{AgentConfig, ClusterConfig, RestoreAgent};
use tokio::sync::broadcast::Receiver;

/// Opens the embedded agent in `data_dir`.
///
/// # Errors
/// The state cannot be opened.
pub async fn open_agent(
    data_dir: &Path,
    allowed_roots: Vec<PathBuf>,
    workers: usize,
) -> anyhow::Result<RestoreAgent> {
    RestoreAgent::open(AgentConfig {
        data_dir: data_dir.to_path_buf(),
        agent: AgentInfo::default(),
        allowed_roots,
        worker_limit: workers,
        cluster: ClusterConfig::default(),
    })
    .await
    .with_context(|| format!("opening the agent state in {}", data_dir.display()))
}

/// What a followed restore did.
#[derive(Debug)]
pub struct Report {
    pub dag: DagRecord,
    /// Node name → seconds, in the order nodes finished.
    pub stage_seconds: Vec<(String, f64)>,
}

/// Shows live progress (stage bar, bytes bar, one line per node transition) until the
/// DAG settles.
///
/// `events` must be subscribed before the DAG was submitted, so no transition is missed.
///
/// # Errors
/// The engine or the cluster cannot be read.
///
/// # Cancel safety
/// Cancel safe (it only reads); the bars stay unfinished.
pub async fn follow(
    agent: &RestoreAgent,
    dag_id: u64,
    tenant: &str,
    mut events: Receiver<Event>,
) -> anyhow::Result<Report> {
    let engine = agent.engine();
    let bars = Bars::new()?;
    let mut transitions = Transitions::new(engine, dag_id);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            event = events.recv() => {
                if let Ok(event) = event {
                    transitions.on_event(event, &bars.multi)?;
                }
            }
            _ = tick.tick() => {}
        }
        let dag = engine.dag_record(dag_id)?;
        let nodes = engine.records().nodes_of(&dag)?;
        bars.show_nodes(&nodes);
        if let Some(overview) = agent.restore_progress(tenant)? {
            bars.show_bytes(&overview.job);
        }
        if dag.state.is_finished() {
            transitions
                .drain_to_the_end(&mut events, &bars.multi)
                .await?;
            bars.finish(&nodes);
            return Ok(Report {
                dag,
                stage_seconds: transitions.stage_seconds,
            });
        }
    }
}

/// The stage bar and the data bar, drawn on stderr.
struct Bars {
    multi: MultiProgress,
    stages: ProgressBar,
    bytes: ProgressBar,
}

impl Bars {
    fn new() -> anyhow::Result<Bars> {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
        let stages = multi.add(ProgressBar::new(1));
        stages.set_style(
            ProgressStyle::with_template("{spinner} stages [{bar:30}] {pos}/{len} {msg}")?
                .progress_chars("=> "),
        );
        let bytes = multi.add(ProgressBar::new(1));
        bytes.set_style(
            ProgressStyle::with_template(
                "  data   [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}",
            )?
            .progress_chars("=> "),
        );
        Ok(Bars {
            multi,
            stages,
            bytes,
        })
    }

    /// Nodes done out of all, and the running ones by name.
    fn show_nodes(&self, nodes: &[NodeRecord]) {
        self.stages.set_length(nodes.len() as u64);
        self.stages.set_position(succeeded(nodes));
        let running: Vec<&str> = nodes
            .iter()
            .filter(|n| n.state == State::Running)
            .map(|n| &*n.name)
            .collect();
        self.stages.set_message(running.join(", "));
    }

    fn show_bytes(&self, job: &obrestore_restore::cluster::RestoreJob) {
        self.bytes.set_length(job.total_bytes.max(1));
        self.bytes.set_position(job.finish_bytes);
        self.bytes
            .set_message(format!("ls {}/{}", job.finish_ls_count, job.ls_count));
    }

    fn finish(&self, nodes: &[NodeRecord]) {
        self.stages.set_position(succeeded(nodes));
        self.stages.finish();
        self.bytes.finish();
    }
}

fn succeeded(nodes: &[NodeRecord]) -> u64 {
    nodes.iter().filter(|n| n.state == State::Succeed).count() as u64
}

/// The node transitions of one DAG: one line each, and how long each node ran.
struct Transitions<'a> {
    engine: &'a Engine,
    dag_id: u64,
    started: BTreeMap<u64, Instant>,
    stage_seconds: Vec<(String, f64)>,
}

impl<'a> Transitions<'a> {
    fn new(engine: &'a Engine, dag_id: u64) -> Transitions<'a> {
        Transitions {
            engine,
            dag_id,
            started: BTreeMap::new(),
            stage_seconds: Vec::new(),
        }
    }

    fn on_event(&mut self, event: Event, bars: &MultiProgress) -> anyhow::Result<()> {
        if event.dag_id != self.dag_id {
            return Ok(());
        }
        let Subject::Node { node_id } = event.subject else {
            return Ok(());
        };
        let name = self
            .engine
            .records()
            .node(node_id)?
            .map(|n| n.name.to_string())
            .unwrap_or_default();
        match event.state {
            State::Running => {
                self.started.insert(node_id, Instant::now());
            }
            State::Succeed | State::Failed => {
                let seconds = self
                    .started
                    .remove(&node_id)
                    .map_or(0.0, |t| t.elapsed().as_secs_f64());
                if event.state == State::Succeed {
                    self.stage_seconds.push((name.clone(), seconds));
                }
            }
            _ => {}
        }
        bars.suspend(|| {
            eprintln!(
                "[stage {}/{}] {name}: {}+{}",
                event.stage, event.max_stage, event.state, event.operator
            )
        });
        Ok(())
    }

    /// Events are broadcast just after their batch is durable, so the store can show
    /// the end first: takes events up to the DAG's own final one (2 s at most).
    async fn drain_to_the_end(
        &mut self,
        events: &mut Receiver<Event>,
        bars: &MultiProgress,
    ) -> anyhow::Result<()> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while let Ok(Ok(event)) = tokio::time::timeout_at(deadline, events.recv()).await {
            let last = event.dag_id == self.dag_id
                && event.subject == Subject::Dag
                && event.state.is_finished();
            self.on_event(event, bars)?;
            if last {
                break;
            }
        }
        Ok(())
    }
}

/// Sets, pieces, bytes, MB/s and time per stage, as lines of text.
///
/// # Errors
/// The cluster cannot be read.
pub fn summary_text(
    agent: &RestoreAgent,
    tenant: &str,
    report: &Report,
    elapsed: Duration,
) -> anyhow::Result<String> {
    let mut text = String::new();
    writeln!(
        text,
        "restore of tenant '{tenant}': {}+{} in {:.2} s",
        report.dag.state,
        report.dag.operator,
        elapsed.as_secs_f64()
    )?;
    if let Some(overview) = agent.restore_progress(tenant)? {
        let overview = &overview.job;
        writeln!(
            text,
            "  restore_scn      {} ({})",
            overview.restore_scn,
            obrestore::restore::RestoreOverview::scn_display(overview.restore_scn)
        )?;
        writeln!(
            text,
            "  backup sets      {}",
            overview.backup_set_list.join("\n                   ")
        )?;
        writeln!(
            text,
            "  backup pieces    {}",
            overview.backup_piece_list.join("\n                   ")
        )?;
        writeln!(
            text,
            "  log streams      {}/{}, tablets {}/{}",
            overview.finish_ls_count,
            overview.ls_count,
            overview.finish_tablet_count,
            overview.tablet_count
        )?;
        let mb = overview.finish_bytes as f64 / 1e6;
        writeln!(
            text,
            "  data restored    {} ({:.1} MB/s over the whole restore)",
            obrestore_backup::human_bytes(overview.finish_bytes),
            mb / elapsed.as_secs_f64().max(1e-9)
        )?;
    }
    writeln!(text, "  time per stage:")?;
    for (name, seconds) in &report.stage_seconds {
        writeln!(text, "    {name:<32} {seconds:>8.3} s")?;
    }
    Ok(text)
}

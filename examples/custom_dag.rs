//! The DAG engine used for something other than a restore: publishing a website.
//!
//! ```text
//! fetch config ──► build pages (one sub-task per page, fanned out) ──► deploy
//! ```
//!
//! Run 1 publishes release 1. Building `blog.html` fails the first time, so the DAG
//! stops FAILED; the example applies RETRY, only the failed page is undone and built
//! again, and the DAG ends SUCCEED+RUN (as in obshell, a retried DAG runs again as RUN;
//! the retried node carries RETRY). Run 2 publishes release 2, but the CDN rejects the
//! upload, so the example applies ROLLBACK: every step that ran is undone in reverse
//! topological order (deploy, then the pages, then the config) and the DAG ends
//! SUCCEED+ROLLBACK.
//!
//! Progress is printed from the engine's event stream; the final `DagDetailDTO` of each
//! run is printed as JSON. The store is sled, in a temporary directory or in the
//! directory given as the first argument.
//!
//! ```text
//! cargo run --example custom_dag [-- <store-dir>]
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};
use async_trait::async_trait;
use obrestore::dag::{
    DagSpec, Engine, EngineConfig, Event, Flags, NodeSpec, Operator, SledStore, State, Subject,
    Task, TaskContext, TaskError, TaskRegistry,
};
use serde_json::{json, Value};
use tokio::sync::broadcast;

/// What the website tasks share: planned failures and what actually happened.
#[derive(Default)]
struct Site {
    /// Sub-task name → how many more executions of it fail.
    planned_failures: Mutex<HashMap<String, u32>>,
    /// Names of executed sub-tasks, in order.
    executions: Mutex<Vec<String>>,
    /// Names of rolled-back sub-tasks, in order.
    rollbacks: Mutex<Vec<String>>,
}

impl Site {
    fn plan_failures(&self, name: &str, times: u32) {
        if let Ok(mut planned) = self.planned_failures.lock() {
            planned.insert(name.to_string(), times);
        }
    }

    /// Records an execution of `name` and says whether it should fail.
    fn execute(&self, name: &str) -> bool {
        if let Ok(mut executions) = self.executions.lock() {
            executions.push(name.to_string());
        }
        let Ok(mut planned) = self.planned_failures.lock() else {
            return false;
        };
        match planned.get_mut(name) {
            Some(left) if *left > 0 => {
                *left -= 1;
                true
            }
            _ => false,
        }
    }

    fn executions_of(&self, name: &str) -> usize {
        self.executions
            .lock()
            .map(|executions| executions.iter().filter(|n| *n == name).count())
            .unwrap_or(0)
    }

    fn record_rollback(&self, name: &str) {
        if let Ok(mut rollbacks) = self.rollbacks.lock() {
            rollbacks.push(name.to_string());
        }
    }

    fn take_rollbacks(&self) -> Vec<String> {
        self.rollbacks
            .lock()
            .map(|mut rollbacks| std::mem::take(&mut *rollbacks))
            .unwrap_or_default()
    }
}

/// Reads the site configuration and hands the list of pages to the next node.
struct FetchConfig {
    site: Arc<Site>,
}

#[async_trait]
impl Task for FetchConfig {
    async fn execute(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        self.site.execute("fetch config");
        let host = ctx
            .dag_params()
            .get("host")
            .and_then(Value::as_str)
            .unwrap_or("localhost");
        ctx.info(format!("fetched the configuration of {host}"));
        ctx.set_output("theme", json!("solarized"));
        ctx.set_output(
            "pages",
            json!([
                {"name": "index.html", "title": "Home"},
                {"name": "about.html", "title": "About us"},
                {"name": "blog.html", "title": "Blog"},
                {"name": "contact.html", "title": "Contact"},
            ]),
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
        Ok(())
    }

    async fn rollback(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        self.site.record_rollback("fetch config");
        ctx.info("released the configuration snapshot");
        Ok(())
    }
}

/// Renders one page; its parameters are one element of the `pages` array.
struct BuildPage {
    site: Arc<Site>,
    page: String,
    title: String,
}

#[async_trait]
impl Task for BuildPage {
    async fn execute(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        let theme = ctx
            .input()
            .get("theme")
            .and_then(Value::as_str)
            .unwrap_or("plain");
        tokio::time::sleep(Duration::from_millis(30)).await;
        if self.site.execute(&self.page) {
            return Err(TaskError::new(format!(
                "template error while rendering {}: unknown filter 'date'",
                self.page
            )));
        }
        ctx.info(format!(
            "rendered {} ('{}') with theme {theme}",
            self.page, self.title
        ));
        ctx.set_additional_data("bytes", json!(1024 + 100 * self.title.len()));
        Ok(())
    }

    async fn rollback(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        self.site.record_rollback(&self.page);
        ctx.info(format!("deleted the rendered {}", self.page));
        Ok(())
    }
}

/// Uploads the rendered pages to the CDN.
struct Deploy {
    site: Arc<Site>,
}

#[async_trait]
impl Task for Deploy {
    async fn execute(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        let release = ctx
            .dag_params()
            .get("release")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(20)).await;
        if self.site.execute("deploy") {
            return Err(TaskError::new(format!(
                "CDN rejected release {release}: quota exceeded"
            )));
        }
        ctx.info(format!("release {release} is live"));
        Ok(())
    }

    async fn rollback(&self, ctx: &TaskContext) -> Result<(), TaskError> {
        self.site.record_rollback("deploy");
        ctx.info("restored the previous release on the CDN");
        Ok(())
    }
}

fn registry(site: &Arc<Site>) -> TaskRegistry {
    let mut registry = TaskRegistry::new();
    let fetch_site = Arc::clone(site);
    registry.register("fetch_config", Flags::default(), move |_params| {
        Ok(Box::new(FetchConfig {
            site: Arc::clone(&fetch_site),
        }) as Box<dyn Task>)
    });
    let build_site = Arc::clone(site);
    registry.register("build_page", Flags::default(), move |params| {
        let field = |key: &str| params.get(key).and_then(Value::as_str).map(str::to_string);
        let page = field("name").ok_or_else(|| TaskError::new("a page needs a name"))?;
        let title = field("title").unwrap_or_else(|| page.clone());
        Ok(Box::new(BuildPage {
            site: Arc::clone(&build_site),
            page,
            title,
        }) as Box<dyn Task>)
    });
    let deploy_site = Arc::clone(site);
    registry.register("deploy", Flags::default(), move |_params| {
        Ok(Box::new(Deploy {
            site: Arc::clone(&deploy_site),
        }) as Box<dyn Task>)
    });
    registry
}

fn publish_spec(host: &str, release: u64) -> DagSpec {
    let mut spec =
        DagSpec::new(format!("publish {host}")).params(json!({"host": host, "release": release}));
    spec.chain(
        None,
        vec![
            NodeSpec::new("fetch config", "fetch_config"),
            // One sub-task per element of the `pages` output of "fetch config".
            NodeSpec::new("build pages", "build_page").dynamic_sub_tasks("pages"),
            NodeSpec::new("deploy", "deploy"),
        ],
    );
    spec
}

/// Prints events until the DAG reaches FAILED or SUCCEED and returns that state.
async fn watch_until_settled(
    engine: &Engine,
    events: &mut broadcast::Receiver<Event>,
    dag_id: u64,
    started: Instant,
) -> anyhow::Result<(State, Operator)> {
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                println!("  (missed {missed} events)");
                let dag = engine.dag_record(dag_id)?;
                if dag.state.is_finished() {
                    return Ok((dag.state, dag.operator));
                }
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => {
                anyhow::bail!("the engine stopped before dag {dag_id} settled")
            }
        };
        if event.dag_id != dag_id {
            continue;
        }
        let what = match event.subject {
            Subject::Dag => "dag".to_string(),
            Subject::Node { node_id } => {
                let name = engine
                    .records()
                    .node(node_id)?
                    .map_or_else(|| format!("#{node_id}"), |node| node.name.to_string());
                format!("node '{name}'")
            }
            Subject::SubTask { task_id, .. } => {
                let name = engine
                    .records()
                    .task(task_id)?
                    .map_or_else(|| format!("#{task_id}"), |task| task.name.to_string());
                format!("  sub-task '{name}'")
            }
        };
        println!(
            "  {:>7.1} ms  stage {}/{}  {what:<28} {:<8} {}",
            started.elapsed().as_secs_f64() * 1e3,
            event.stage,
            event.max_stage,
            event.state,
            event.operator,
        );
        if event.subject == Subject::Dag && event.state.is_finished() {
            return Ok((event.state, event.operator));
        }
    }
}

fn print_detail(engine: &Engine, dag_id: u64) -> anyhow::Result<()> {
    let detail = engine
        .dag_detail(dag_id, true)
        .with_context(|| format!("reading the detail of dag {dag_id}"))?;
    println!("{}", serde_json::to_string_pretty(&detail)?);
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();

    let (directory, _temporary) = store_directory()?;
    println!("store: sled at {}", directory.display());
    let store = SledStore::open(&directory)
        .with_context(|| format!("opening the sled store at {}", directory.display()))?;
    let site = Arc::new(Site::default());
    let engine = Engine::open(EngineConfig::default(), Arc::new(store), registry(&site))
        .await
        .context("opening the engine")?;
    let mut run = Run {
        engine: &engine,
        site: &site,
        events: engine.subscribe(),
        started: Instant::now(),
    };
    run.publish_with_retry().await?;
    run.publish_with_rollback().await?;
    engine.shutdown(Duration::from_secs(5)).await;
    println!("\ncustom_dag: all expectations met");
    Ok(())
}

/// The directory named by the first argument, or a temporary one (kept alive by the
/// second value until the example ends).
fn store_directory() -> anyhow::Result<(std::path::PathBuf, Option<tempfile::TempDir>)> {
    match std::env::args_os().nth(1) {
        Some(path) => Ok((std::path::PathBuf::from(path), None)),
        None => {
            let temporary = tempfile::tempdir().context("creating a temporary directory")?;
            Ok((temporary.path().to_path_buf(), Some(temporary)))
        }
    }
}

/// What both runs of the example use.
struct Run<'a> {
    engine: &'a Engine,
    site: &'a Site,
    events: broadcast::Receiver<Event>,
    started: Instant,
}

impl Run<'_> {
    async fn settle(&mut self, dag_id: u64) -> anyhow::Result<(State, Operator)> {
        watch_until_settled(self.engine, &mut self.events, dag_id, self.started).await
    }

    /// Run 1: a page fails once; RETRY builds it again and the release goes live.
    async fn publish_with_retry(&mut self) -> anyhow::Result<()> {
        println!("\n== run 1: publish release 1 (blog.html fails once) ==");
        self.site.plan_failures("blog.html", 1);
        let first = self
            .engine
            .submit(publish_spec("www.example.org", 1))
            .await
            .context("submitting run 1")?;
        let settled = self.settle(first).await?;
        ensure!(
            settled == (State::Failed, Operator::Run),
            "run 1 should fail at blog.html first, but settled as {settled:?}"
        );
        println!("-- run 1 FAILED; applying RETRY");
        self.engine
            .operate(first, Operator::Retry)
            .await
            .context("RETRY of run 1")?;
        let settled = self.settle(first).await?;
        ensure!(
            settled == (State::Succeed, Operator::Run),
            "run 1 should succeed after RETRY, but settled as {settled:?}"
        );
        self.check_retry_ran_only_the_failed_page()?;
        println!("\n-- DagDetailDTO of run 1:");
        print_detail(self.engine, first)
    }

    fn check_retry_ran_only_the_failed_page(&self) -> anyhow::Result<()> {
        for (page, expected) in [
            ("index.html", 1),
            ("about.html", 1),
            ("blog.html", 2),
            ("contact.html", 1),
            ("deploy", 1),
        ] {
            let executed = self.site.executions_of(page);
            ensure!(
                executed == expected,
                "{page} ran {executed} times in run 1, expected {expected}"
            );
        }
        // A failed sub-task is undone before RETRY executes it again.
        let undone = self.site.take_rollbacks();
        ensure!(
            undone == ["blog.html"],
            "RETRY should first roll back only the failed blog.html, got {undone:?}"
        );
        println!(
            "-- RETRY rolled back the failed {} before building it again",
            undone.join(", ")
        );
        Ok(())
    }

    /// Run 2: the CDN rejects the release; ROLLBACK undoes every step in reverse order.
    async fn publish_with_rollback(&mut self) -> anyhow::Result<()> {
        println!("\n== run 2: publish release 2 (the CDN rejects it) ==");
        self.site.plan_failures("deploy", u32::MAX);
        let second = self
            .engine
            .submit(publish_spec("www.example.org", 2))
            .await
            .context("submitting run 2")?;
        let settled = self.settle(second).await?;
        ensure!(
            settled == (State::Failed, Operator::Run),
            "run 2 should fail at deploy, but settled as {settled:?}"
        );
        println!("-- run 2 FAILED; applying ROLLBACK");
        self.engine
            .operate(second, Operator::Rollback)
            .await
            .context("ROLLBACK of run 2")?;
        let settled = self.settle(second).await?;
        ensure!(
            settled == (State::Succeed, Operator::Rollback),
            "run 2 should be rolled back, but settled as {settled:?}"
        );
        self.check_rollback_order()?;
        println!("\n-- DagDetailDTO of run 2:");
        print_detail(self.engine, second)
    }

    fn check_rollback_order(&self) -> anyhow::Result<()> {
        let order = self.site.take_rollbacks();
        println!("-- rollback order: {}", order.join(" -> "));
        ensure!(
            order.len() == 6,
            "expected 6 rollbacks (deploy, 4 pages, config), got {order:?}"
        );
        ensure!(
            order.first().map(String::as_str) == Some("deploy")
                && order.last().map(String::as_str) == Some("fetch config"),
            "rollback must undo deploy first and the config last, got {order:?}"
        );
        let mut pages: Vec<&str> = order[1..5].iter().map(String::as_str).collect();
        pages.sort_unstable();
        ensure!(
            pages == ["about.html", "blog.html", "contact.html", "index.html"],
            "the four pages must be rolled back between deploy and the config, got {order:?}"
        );
        Ok(())
    }
}

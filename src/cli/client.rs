//! Client-side commands against a running agent (`--server URL`), authenticated with
//! API hybrid encryption v2: `obagent dag show|watch|list|retry|rollback|cancel|pass`,
//! and the functions behind `obagent restore start --server` / `restore overview`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use obrestore_dag::{DagDetailDto, NodeDetailDto};
use obrestore_server::client::ApiReply;
use obrestore_server::client::Method;
use obrestore_server::{AgentClient, ClientError};
use serde_json::{json, Value};

use crate::cli::output::print_json;

/// How to reach and authenticate to an agent.
#[derive(Debug, Clone, Args)]
pub struct ClientConn {
    /// URL of the agent.
    #[arg(
        long = "server",
        env = "OBAGENT_SERVER",
        default_value = "http://127.0.0.1:2886"
    )]
    pub server: String,
    /// File holding the agent's API password (one trailing newline is ignored). Without
    /// it the password comes from OBAGENT_PASSWORD; with neither, no auth header is sent.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
}

impl ClientConn {
    /// The HTTP client.
    ///
    /// # Errors
    /// The password file cannot be read or the URL is not `http://host:port`.
    pub fn client(&self) -> anyhow::Result<AgentClient> {
        let password = crate::cli::serve::read_password(self.password_file.as_ref())?;
        Ok(AgentClient::new(&self.server, password)?)
    }
}

#[derive(Debug, Subcommand)]
pub enum DagCommand {
    /// Show a DAG (DagDetailDTO as JSON).
    Show {
        /// Generic id of the DAG.
        id: String,
        /// Without nodes and sub-tasks (show_details=false).
        #[arg(long)]
        brief: bool,
        #[command(flatten)]
        conn: ClientConn,
    },
    /// Follow a DAG with live progress until it finishes.
    Watch {
        /// Generic id of the DAG.
        id: String,
        #[command(flatten)]
        conn: ClientConn,
    },
    /// List unfinished DAGs.
    List {
        #[command(flatten)]
        conn: ClientConn,
    },
    /// RETRY a failed DAG.
    Retry {
        id: String,
        #[command(flatten)]
        conn: ClientConn,
    },
    /// ROLLBACK a failed DAG.
    Rollback {
        id: String,
        #[command(flatten)]
        conn: ClientConn,
    },
    /// CANCEL a running DAG.
    Cancel {
        id: String,
        #[command(flatten)]
        conn: ClientConn,
    },
    /// PASS a failed DAG, or a failed node (its DAG then continues downstream).
    Pass {
        /// Generic id of a DAG or of a node.
        id: String,
        /// The id names a node.
        #[arg(long, conflicts_with = "dag")]
        node: bool,
        /// The id names a DAG.
        #[arg(long)]
        dag: bool,
        #[command(flatten)]
        conn: ClientConn,
    },
}

/// Runs `obagent dag ...`.
///
/// # Errors
/// The agent is unreachable, refuses the request (the message says why), or the DAG
/// ends FAILED under `watch`.
pub async fn run_dag(command: DagCommand) -> anyhow::Result<()> {
    match command {
        DagCommand::Show { id, brief, conn } => {
            let path = format!("/api/v1/task/dag/{id}?show_details={}", !brief);
            let dag: Value = conn
                .client()?
                .data(Method::GET, &path, None)
                .await?
                .context("no data")?;
            print_json(&dag)
        }
        DagCommand::Watch { id, conn } => {
            let dag = watch_dag(&conn, &id).await?;
            println!(
                "dag {} '{}' finished {}+{}",
                dag.id, dag.name, dag.state, dag.operator
            );
            ensure_succeeded(&dag)
        }
        DagCommand::List { conn } => list_unfinished(&conn).await,
        DagCommand::Retry { id, conn } => operate(&conn, &id, "RETRY").await,
        DagCommand::Rollback { id, conn } => operate(&conn, &id, "ROLLBACK").await,
        DagCommand::Cancel { id, conn } => operate(&conn, &id, "CANCEL").await,
        DagCommand::Pass {
            id,
            node,
            dag,
            conn,
        } => {
            let on_node = if node {
                true
            } else if dag {
                false
            } else {
                resolve_pass_target(&conn, &id).await?
            };
            if on_node {
                pass_node(&conn, &id).await
            } else {
                operate(&conn, &id, "PASS").await
            }
        }
    }
}

/// `obagent dag list`: one line per unfinished DAG.
async fn list_unfinished(conn: &ClientConn) -> anyhow::Result<()> {
    let list: Value = conn
        .client()?
        .data(Method::GET, "/api/v1/task/dag/unfinish", None)
        .await?
        .context("no data")?;
    let dags: Vec<DagDetailDto> = serde_json::from_value(list["contents"].clone())?;
    if dags.is_empty() {
        println!("no unfinished dags");
    }
    for dag in dags {
        println!(
            "{}  {:<32}  {}+{}  stage {}/{}  since {}",
            dag.id, dag.name, dag.state, dag.operator, dag.stage, dag.max_stage, dag.start_time
        );
    }
    Ok(())
}

/// PASS on a failed node; its DAG then continues downstream.
async fn pass_node(conn: &ClientConn, id: &str) -> anyhow::Result<()> {
    let client = conn.client()?;
    // Like obshell's, the operator answers without data; read the node.
    client
        .data::<Value>(
            Method::POST,
            &format!("/api/v1/task/node/{id}"),
            Some(&json!({"operator": "PASS"})),
        )
        .await?;
    let node: NodeDetailDto = client
        .data(
            Method::GET,
            &format!("/api/v1/task/node/{id}?show_details=false"),
            None,
        )
        .await?
        .context("no data")?;
    println!("node '{}' is {}+{}", node.name, node.state, node.operator);
    Ok(())
}

/// DAG and node ids are counted separately, so an id may name both; PASS then needs
/// `--dag` or `--node`. Returns whether the id names (only) a node.
async fn resolve_pass_target(conn: &ClientConn, id: &str) -> anyhow::Result<bool> {
    let client = conn.client()?;
    let exists = |reply: ApiReply| match reply.status {
        200 => Ok(true),
        404 => Ok(false),
        _ => reply.data::<Value>().map(|_| false),
    };
    let is_dag = exists(
        client
            .call(
                Method::GET,
                &format!("/api/v1/task/dag/{id}?show_details=false"),
                None,
            )
            .await?,
    )?;
    let is_node = exists(
        client
            .call(Method::GET, &format!("/api/v1/task/node/{id}"), None)
            .await?,
    )?;
    match (is_dag, is_node) {
        (true, true) => bail!("id {id} names both a dag and a node; add --dag or --node"),
        (false, false) => bail!("no dag or node {id} on this agent"),
        (_, node) => Ok(node),
    }
}

async fn operate(conn: &ClientConn, id: &str, operator: &str) -> anyhow::Result<()> {
    let client = conn.client()?;
    // Like obshell's, the operator answers without data; read the DAG.
    client
        .data::<Value>(
            Method::POST,
            &format!("/api/v1/task/dag/{id}"),
            Some(&json!({"operator": operator})),
        )
        .await?;
    let dag: DagDetailDto = client
        .data(
            Method::GET,
            &format!("/api/v1/task/dag/{id}?show_details=false"),
            None,
        )
        .await?
        .context("no data")?;
    println!(
        "{operator}: dag {} '{}' is {}+{}",
        dag.id, dag.name, dag.state, dag.operator
    );
    Ok(())
}

/// Starts a restore on the agent (`POST /api/v1/tenant/restore`).
///
/// # Errors
/// Refused parameters (the message names the field), a running restore of the tenant
/// (409), or the agent is unreachable.
// Called by `obagent restore start --server` / `restore overview` (src/cli/restore/).
pub async fn remote_start_restore(
    conn: &ClientConn,
    param: &obrestore_restore::RestoreParam,
) -> anyhow::Result<DagDetailDto> {
    let body = serde_json::to_value(param)?;
    conn.client()?
        .data(Method::POST, "/api/v1/tenant/restore", Some(&body))
        .await?
        .context("the agent answered without a DAG")
}

/// The tenant's restore overview, `None` when the agent knows no restore of it.
///
/// # Errors
/// The agent is unreachable or answers another error.
// Called by `obagent restore start --server` / `restore overview` (src/cli/restore/).
pub async fn remote_restore_overview(
    conn: &ClientConn,
    tenant: &str,
) -> anyhow::Result<Option<Value>> {
    let client = conn.client()?;
    match client
        .data(
            Method::GET,
            &format!("/api/v1/tenant/{tenant}/restore/overview"),
            None,
        )
        .await
    {
        Ok(overview) => Ok(overview),
        // 404: no restore of the tenant; 400 OB.Tenant.NotExist: no such tenant (yet,
        // or any more), as obshell answers.
        Err(ClientError::Api { status: 404, .. }) => Ok(None),
        Err(ClientError::Api { err_code, .. }) if err_code == "OB.Tenant.NotExist" => Ok(None),
        Err(err) => Err(err.into()),
    }
}

fn node_line(node: &NodeDetailDto) -> String {
    let tasks = node.sub_tasks.as_deref().unwrap_or_default();
    let done = tasks.iter().filter(|task| task.state == "SUCCEED").count();
    let mut line = format!("{}+{}", node.state, node.operator);
    if tasks.len() > 1 {
        line.push_str(&format!("  {done}/{} sub-tasks", tasks.len()));
    }
    if let Some(last) = tasks.iter().flat_map(|task| task.task_logs.last()).last() {
        line.push_str(&format!("  {last}"));
    }
    line
}

/// Polls the DAG every 200 ms and draws (on stderr) one bar for the stages and one line
/// per node (state+operator, sub-tasks done, last log) until the DAG is SUCCEED or
/// FAILED; returns it then, with its nodes. Prints nothing on stdout.
///
/// # Errors
/// The agent is unreachable or answers an error.
///
/// # Cancel safety
/// Cancel safe (it only reads).
pub async fn watch_dag(conn: &ClientConn, generic_id: &str) -> anyhow::Result<DagDetailDto> {
    let client = conn.client()?;
    let path = format!("/api/v1/task/dag/{generic_id}?show_details=true");
    let bars = MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(10));
    let dag_bar = bars.add(ProgressBar::new(1));
    dag_bar.set_style(
        ProgressStyle::with_template("{spinner} {prefix} [{bar:30}] stage {pos}/{len} {msg}")?
            .progress_chars("=> "),
    );
    let mut node_bars: BTreeMap<u64, ProgressBar> = BTreeMap::new();
    let style = ProgressStyle::with_template("    {prefix:<32} {msg}")?;
    let mut transient_errors = 0;
    loop {
        let dag: DagDetailDto = match client.data(Method::GET, &path, None).await {
            Ok(Some(dag)) => dag,
            Ok(None) => bail!("the agent answered without a DAG"),
            // The agent may be restarting; keep polling for a while.
            Err(ClientError::Http(err)) if transient_errors < 150 => {
                transient_errors += 1;
                dag_bar.set_message(format!("agent unreachable ({err}), retrying"));
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            Err(err) => return Err(err.into()),
        };
        transient_errors = 0;
        dag_bar.set_prefix(dag.name.clone());
        dag_bar.set_length(u64::from(dag.max_stage.max(1)));
        let finished = dag.state == "SUCCEED" || dag.state == "FAILED";
        dag_bar.set_position(if finished && dag.state == "SUCCEED" {
            u64::from(dag.max_stage)
        } else {
            u64::from(dag.stage.saturating_sub(1))
        });
        dag_bar.set_message(format!("{}+{}", dag.state, dag.operator));
        dag_bar.tick();
        for node in dag.nodes.as_deref().unwrap_or_default() {
            let bar = node_bars.entry(node.node_id).or_insert_with(|| {
                let bar = bars.add(ProgressBar::new_spinner());
                bar.set_style(style.clone());
                bar.set_prefix(node.name.clone());
                bar
            });
            bar.set_message(node_line(node));
        }
        if finished {
            for bar in node_bars.values() {
                bar.finish();
            }
            dag_bar.finish();
            return Ok(dag);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Fails when the DAG ended FAILED, naming its failed nodes.
///
/// # Errors
/// The DAG is FAILED.
pub fn ensure_succeeded(dag: &DagDetailDto) -> anyhow::Result<()> {
    if dag.state != "FAILED" {
        return Ok(());
    }
    let failed: Vec<&str> = dag
        .nodes
        .as_deref()
        .unwrap_or_default()
        .iter()
        .filter(|node| node.state == "FAILED")
        .map(|node| node.name.as_str())
        .collect();
    bail!("dag {} failed (nodes: {})", dag.id, failed.join(", "))
}

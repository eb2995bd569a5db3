//! `obagent unit-config|tenant|pool ...`: the embedded cluster from the command line.
//!
//! Every command opens the agent's sled database `<data dir>/obrestore.sled` (creating
//! and seeding it on first use) and prints a table, or one JSON document with `--json`. sled allows
//! one process per database, so these commands fail while an agent daemon holds it.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use obrestore_restore::agent::OfflineAgent;
use obrestore_restore::cluster::{
    agent_db_path, format_capacity, parse_capacity, NewUnitConfig, ResourcePool, Tenant, UnitConfig,
};
use obrestore_restore::{ClusterConfig, SledCluster, TenantService};
use serde::Serialize;

use crate::cli::output::print_json;

/// Where the agent keeps its state, and how to print.
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Agent data directory: the database is `<DATA_DIR>/obrestore.sled`, the rows `<DATA_DIR>/obrestore.rows`.
    #[arg(long, env = "OBAGENT_DATA_DIR", default_value = "obagent-data")]
    pub data_dir: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum UnitConfigCommand {
    /// Create a unit config.
    Create {
        /// Unit config name.
        #[arg(long)]
        name: String,
        /// Memory, e.g. 8G (at least 1G).
        #[arg(long)]
        memory_size: String,
        /// CPU cores, e.g. 4 or 0.5.
        #[arg(long)]
        max_cpu: f64,
        /// Defaults to max_cpu.
        #[arg(long)]
        min_cpu: Option<f64>,
        /// Defaults to 3 × memory_size (at least 2G).
        #[arg(long)]
        log_disk_size: Option<String>,
        /// Defaults to 10000 (at least 1024).
        #[arg(long)]
        max_iops: Option<u64>,
        /// Defaults to max_iops.
        #[arg(long)]
        min_iops: Option<u64>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List unit configs.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Drop a unit config (refused while a pool uses it; a missing one is not an error).
    Drop {
        /// Unit config name.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// List tenants.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Show one tenant: record, pools, row count and restore overview.
    Show {
        /// Tenant name.
        name: String,
        /// Also compute the tenant digest (reads every row): the one the restore's
        /// Post check records as `tenant_digest` (docs/backup-format.md §5).
        #[arg(long)]
        digest: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Drop a tenant and its rows (a missing one is not an error).
    Drop {
        /// Tenant name.
        name: String,
        /// Also drop the tenant's resource pools.
        #[arg(long)]
        drop_pools: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum PoolCommand {
    /// List resource pools with their units.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

/// The agent's state in `--data-dir`, opened without the engine ([`OfflineAgent`]): the
/// agent's policies apply, and no interrupted DAG resumes inside a short command.
fn open(store: &StoreArgs) -> anyhow::Result<OfflineAgent> {
    std::fs::create_dir_all(&store.data_dir)
        .with_context(|| format!("creating data dir {}", store.data_dir.display()))?;
    OfflineAgent::open(&store.data_dir, &ClusterConfig::default()).with_context(|| {
        format!(
            "opening the agent database {}",
            agent_db_path(&store.data_dir).display()
        )
    })
}

/// Prints rows as left-aligned columns under `header`.
fn print_table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|title| title.len()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        println!("{}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

fn cpu(value: f64) -> String {
    // Up to 6 decimals, without trailing zeros: 2, 0.5.
    let text = format!("{value:.6}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn unit_config_row(config: &UnitConfig) -> Vec<String> {
    vec![
        config.name.clone(),
        cpu(config.max_cpu),
        cpu(config.min_cpu),
        format_capacity(config.memory_size),
        format_capacity(config.log_disk_size),
        config.max_iops.to_string(),
        config.min_iops.to_string(),
    ]
}

const UNIT_CONFIG_HEADER: [&str; 7] = [
    "NAME",
    "MAX_CPU",
    "MIN_CPU",
    "MEMORY_SIZE",
    "LOG_DISK_SIZE",
    "MAX_IOPS",
    "MIN_IOPS",
];

#[derive(Serialize)]
struct Dropped<'a> {
    kind: &'a str,
    name: &'a str,
    dropped: bool,
}

fn print_dropped(json: bool, kind: &str, name: &str, dropped: bool) -> anyhow::Result<()> {
    if json {
        return print_json(&Dropped {
            kind,
            name,
            dropped,
        });
    }
    if dropped {
        println!("dropped {kind} '{name}'");
    } else {
        println!("{kind} '{name}' does not exist, nothing to drop");
    }
    Ok(())
}

/// Runs `obagent unit-config ...`.
///
/// # Errors
/// Bad sizes, a refusal of the cluster, or the database cannot be opened.
pub fn run_unit_config(cmd: UnitConfigCommand) -> anyhow::Result<()> {
    match cmd {
        UnitConfigCommand::Create {
            name,
            memory_size,
            max_cpu,
            min_cpu,
            log_disk_size,
            max_iops,
            min_iops,
            store,
        } => {
            let memory_size = parse_capacity(&memory_size)
                .map_err(|err| anyhow::anyhow!("--memory-size: {err}"))?;
            let log_disk_size = log_disk_size
                .map(|text| parse_capacity(&text))
                .transpose()
                .map_err(|err| anyhow::anyhow!("--log-disk-size: {err}"))?;
            let agent = open(&store)?;
            let cluster = agent.cluster();
            let config = cluster.create_unit_config(&NewUnitConfig {
                name,
                memory_size,
                max_cpu,
                min_cpu,
                log_disk_size,
                max_iops,
                min_iops,
            })?;
            if store.json {
                return print_json(&config);
            }
            print_table(&UNIT_CONFIG_HEADER, &[unit_config_row(&config)]);
            Ok(())
        }
        UnitConfigCommand::List { store } => {
            let configs = open(&store)?.cluster().list_unit_configs()?;
            if store.json {
                return print_json(&configs);
            }
            let rows: Vec<Vec<String>> = configs.iter().map(unit_config_row).collect();
            print_table(&UNIT_CONFIG_HEADER, &rows);
            Ok(())
        }
        UnitConfigCommand::Drop { name, store } => {
            let dropped = open(&store)?.cluster().drop_unit_config(&name)?;
            print_dropped(store.json, "unit config", &name, dropped)
        }
    }
}

fn tenant_row(tenant: &Tenant) -> Vec<String> {
    vec![
        tenant.id.to_string(),
        tenant.name.clone(),
        tenant.status.to_string(),
        tenant.role.to_string(),
        tenant.data_version.clone(),
        tenant.sync_scn.to_string(),
        tenant.primary_zone.clone(),
        tenant.locality(),
    ]
}

#[derive(Serialize)]
struct TenantDetail {
    tenant: Tenant,
    pools: Vec<ResourcePool>,
    row_count: u64,
    /// SHA-256 hex of the tenant digest.
    #[serde(skip_serializing_if = "Option::is_none")]
    digest: Option<String>,
    restore: Option<obrestore_restore::cluster::RestoreJob>,
}

/// Runs `obagent tenant ...`.
///
/// # Errors
/// The database cannot be opened or read, or the tenant does not exist (`show`).
pub fn run_tenant(cmd: TenantCommand) -> anyhow::Result<()> {
    match cmd {
        TenantCommand::List { store } => list_tenants(&store),
        TenantCommand::Show {
            name,
            digest,
            store,
        } => show_tenant(&name, digest, &store),
        TenantCommand::Drop {
            name,
            drop_pools,
            store,
        } => drop_tenant(&name, drop_pools, &store),
    }
}

fn list_tenants(store: &StoreArgs) -> anyhow::Result<()> {
    let tenants = open(store)?.cluster().list_tenants()?;
    if store.json {
        return print_json(&tenants);
    }
    let rows: Vec<Vec<String>> = tenants.iter().map(tenant_row).collect();
    print_table(
        &[
            "ID",
            "NAME",
            "STATUS",
            "ROLE",
            "DATA_VERSION",
            "SYNC_SCN",
            "PRIMARY_ZONE",
            "LOCALITY",
        ],
        &rows,
    );
    Ok(())
}

fn show_tenant(name: &str, digest: bool, store: &StoreArgs) -> anyhow::Result<()> {
    let agent = open(store)?;
    let cluster = agent.cluster();
    let tenant = cluster
        .tenant(name)?
        .ok_or_else(|| anyhow::anyhow!("tenant '{name}' does not exist"))?;
    let mut pools = Vec::new();
    for pool_name in &tenant.pool_names {
        pools.extend(cluster.pool(pool_name)?);
    }
    let detail = TenantDetail {
        row_count: cluster.row_count(tenant.id)?,
        digest: if digest {
            Some(tenant_digest(cluster, name)?)
        } else {
            None
        },
        restore: cluster.restore_overview(name)?,
        pools,
        tenant,
    };
    if store.json {
        return print_json(&detail);
    }
    print_tenant_detail(&detail);
    Ok(())
}

/// The tenant digest a restore's Post check records (`tenant_digest` of its DAG) and
/// docs/backup-format.md §5 defines, so the two can be compared.
fn tenant_digest(cluster: &SledCluster, name: &str) -> anyhow::Result<String> {
    let digest = obrestore_restore::verify::restored_digest(cluster, name)
        .with_context(|| format!("computing the digest of tenant '{name}'"))?;
    Ok(digest.sha256_hex)
}

fn print_tenant_detail(detail: &TenantDetail) {
    let tenant = &detail.tenant;
    println!("id:           {}", tenant.id);
    println!("name:         {}", tenant.name);
    println!("status:       {}", tenant.status);
    println!("role:         {}", tenant.role);
    println!("data_version: {}", tenant.data_version);
    println!("sync_scn:     {}", tenant.sync_scn);
    for (ls_id, scn) in &tenant.ls_sync_scn {
        println!("  ls {ls_id}: sync_scn {scn}");
    }
    println!("primary_zone: {}", tenant.primary_zone);
    println!("locality:     {}", tenant.locality());
    println!("pools:        {}", tenant.pool_names.join(", "));
    println!("created_at:   {}", tenant.created_at.to_rfc3339());
    println!("rows:         {}", detail.row_count);
    if let Some(digest) = &detail.digest {
        println!("digest:       {digest}");
    }
    if let Some(job) = &detail.restore {
        println!(
            "restore:      job {} {} restore_scn {} ({}/{} bytes, {}/{} log streams)",
            job.job_id,
            job.status,
            job.restore_scn,
            job.finish_bytes,
            job.total_bytes,
            job.finish_ls_count,
            job.ls_count
        );
    }
}

/// `tenant drop` under the agent's drop policy ([`OfflineAgent::drop_tenant`]).
fn drop_tenant(name: &str, drop_pools: bool, store: &StoreArgs) -> anyhow::Result<()> {
    let dropped = open(store)?.drop_tenant(name, drop_pools)?;
    if let Some(dropped) = &dropped {
        if dropped.pools_dropped > 0 && !store.json {
            println!(
                "dropped {} resource pool(s): {}",
                dropped.pools_dropped,
                dropped.tenant.pool_names.join(", ")
            );
        }
    }
    print_dropped(store.json, "tenant", name, dropped.is_some())
}

/// Runs `obagent pool ...`.
///
/// # Errors
/// The database cannot be opened or read.
pub fn run_pool(cmd: PoolCommand) -> anyhow::Result<()> {
    match cmd {
        PoolCommand::List { store } => {
            let agent = open(&store)?;
            let cluster = agent.cluster();
            let pools = cluster.list_pools()?;
            if store.json {
                return print_json(&pools);
            }
            let mut rows = Vec::with_capacity(pools.len());
            for pool in &pools {
                let tenant = match pool.tenant_id {
                    Some(id) => cluster
                        .tenant_by_id(id)?
                        .map_or_else(|| id.to_string(), |tenant| tenant.name),
                    None => "-".to_string(),
                };
                let units: Vec<String> = pool
                    .units
                    .iter()
                    .map(|unit| format!("{}@{}", unit.id, unit.server))
                    .collect();
                rows.push(vec![
                    pool.id.to_string(),
                    pool.name.clone(),
                    pool.unit_config_name.clone(),
                    pool.unit_num.to_string(),
                    pool.zone_list.join(","),
                    tenant,
                    units.join(","),
                ]);
            }
            print_table(
                &[
                    "ID",
                    "NAME",
                    "UNIT_CONFIG",
                    "UNIT_NUM",
                    "ZONES",
                    "TENANT",
                    "UNITS",
                ],
                &rows,
            );
            Ok(())
        }
    }
}

//! Embeds the obrestore agent and its obshell-compatible API in a program.
//!
//! ```text
//! cargo run --example obshell_daemon -- [DATA_DIR] [LISTEN]
//! curl -s http://127.0.0.1:<port>/api/v1/info
//! ```
//! Without a password (none is set here) the API needs no auth header. Ctrl-C stops it;
//! unfinished DAGs resume at the next start on the same data dir.

use std::time::Duration;

use obrestore_server::{Daemon, DaemonConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let data_dir = args
        .next()
        .unwrap_or_else(|| "obshell-daemon-data".to_string());
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:0".to_string());

    let mut config = DaemonConfig::new(&data_dir);
    config.listen = listen.parse()?;
    // `file://` backups under the data dir may be restored.
    config.allowed_roots = vec![std::path::PathBuf::from(&data_dir).join("backups")];
    std::fs::create_dir_all(&config.allowed_roots[0])?;

    let daemon = Daemon::bind(config).await?;
    println!("obshell-compatible agent on http://{}", daemon.local_addr());
    println!("try: curl -s http://{}/api/v1/info", daemon.local_addr());
    daemon
        .run(
            async {
                let _ = tokio::signal::ctrl_c().await;
            },
            Duration::from_secs(5),
        )
        .await?;
    Ok(())
}

//! A test harness: real `etcd` processes on free loopback ports in a temporary
//! directory, for this crate's tests and other crates' (`obrestore_etcd::testing`).
//!
//! ```no_run
//! use obrestore_etcd::testing::EtcdCluster;
//! let Some(cluster) = EtcdCluster::start(1) else { return }; // etcd not installed
//! let etcd = cluster.client();
//! ```
//!
//! Without an `etcd` binary (`$OBRESTORE_ETCD_BIN`, else `etcd` on the `PATH`)
//! [`EtcdCluster::start`] prints why and returns `None`, except when `CI` is set: CI
//! installs `etcd-server`, so there a missing binary fails the test.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::Etcd;
use crate::store::{SETUP_MAX_REQUEST_BYTES, SETUP_MAX_TXN_OPS};

/// How long the members may take to answer after they start.
const READY_WITHIN: Duration = Duration::from_secs(30);

struct Member {
    name: String,
    client_port: u16,
    child: Option<Child>,
    log: PathBuf,
}

/// Real etcd members on loopback; every member is killed when this is dropped.
pub struct EtcdCluster {
    members: Vec<Member>,
    dir: tempfile::TempDir,
}

/// The etcd binary, if installed.
pub fn etcd_binary() -> Option<PathBuf> {
    let bin = std::env::var_os("OBRESTORE_ETCD_BIN").map_or_else(|| "etcd".into(), PathBuf::from);
    let found = Command::new(&bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    found.then_some(bin)
}

fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..count)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a loopback port"))
        .collect();
    listeners
        .iter()
        .map(|listener| listener.local_addr().expect("local address").port())
        .collect()
}

/// Whether a member's log says it serves client requests, which etcd (3.4 and 3.5
/// alike) logs only once its client listeners are bound.
fn serves_clients(log: &Path) -> bool {
    std::fs::read_to_string(log).is_ok_and(|text| text.contains("ready to serve client requests"))
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

impl EtcdCluster {
    /// Starts `members` etcd processes forming one cluster, with the limits of the
    /// documented setup (`--max-txn-ops`, `--max-request-bytes`), and waits until
    /// every member answers. `None` (with a message) when etcd is not installed and
    /// `CI` is not set.
    ///
    /// # Panics
    /// etcd missing under CI, or the members do not come up (their log tail is shown).
    pub fn start(members: usize) -> Option<EtcdCluster> {
        assert!(members > 0, "an etcd cluster has at least one member");
        let Some(bin) = etcd_binary() else {
            let why =
                "etcd is not installed (Debian package etcd-server, or set OBRESTORE_ETCD_BIN)";
            if std::env::var_os("CI").is_some() {
                panic!("{why}; CI must install it");
            }
            eprintln!("skipping: {why}");
            return None;
        };
        let mut last_failure = String::new();
        // A port taken between choosing it and etcd binding it: try again elsewhere.
        for _ in 0..3 {
            let mut cluster = EtcdCluster::spawn(&bin, &free_ports(members * 2));
            match cluster.wait_ready() {
                Ok(()) => return Some(cluster),
                Err(failure) => last_failure = failure,
            }
        }
        panic!("etcd did not start: {last_failure}");
    }

    /// Members on `ports`: member i's client port is `ports[2i]`, its peer port
    /// `ports[2i + 1]`.
    fn spawn(bin: &Path, ports: &[u16]) -> EtcdCluster {
        let dir = tempfile::tempdir().expect("temporary directory for etcd");
        let count = ports.len() / 2;
        let peer_url = |i: usize| format!("http://127.0.0.1:{}", ports[2 * i + 1]);
        let initial: Vec<String> = (0..count)
            .map(|i| format!("m{i}={}", peer_url(i)))
            .collect();
        let token = format!(
            "obrestore-test-{}",
            dir.path().file_name().unwrap_or_default().to_string_lossy()
        );
        let mut members = Vec::with_capacity(count);
        for i in 0..count {
            let name = format!("m{i}");
            let client_url = format!("http://127.0.0.1:{}", ports[2 * i]);
            let log = dir.path().join(format!("{name}.log"));
            let out = File::create(&log).expect("etcd log file");
            let err = out.try_clone().expect("etcd log file");
            let child = Command::new(bin)
                .arg("--name")
                .arg(&name)
                .arg("--data-dir")
                .arg(dir.path().join(&name))
                .args(["--listen-client-urls", &client_url])
                .args(["--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_url(i)])
                .args(["--initial-advertise-peer-urls", &peer_url(i)])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-state", "new"])
                .args(["--initial-cluster-token", &token])
                .args(["--max-txn-ops", &SETUP_MAX_TXN_OPS.to_string()])
                .args(["--max-request-bytes", &SETUP_MAX_REQUEST_BYTES.to_string()])
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .expect("spawn etcd");
            members.push(Member {
                name,
                client_port: ports[2 * i],
                child: Some(child),
                log,
            });
        }
        EtcdCluster { members, dir }
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + READY_WITHIN;
        for i in 0..self.members.len() {
            let etcd = Etcd::connect(&[self.endpoint(i)]).map_err(|err| err.to_string())?;
            loop {
                let member = &mut self.members[i];
                if let Some(status) = member
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten())
                {
                    return Err(format!(
                        "member {} exited ({status}):\n{}",
                        member.name,
                        log_tail(&member.log)
                    ));
                }
                match etcd.get(b"/obrestore-test-ready") {
                    // Another process's etcd may hold the port we chose (taken between
                    // choosing and binding it: ours then fails to bind and exits). Only
                    // our member's own log says that it serves clients.
                    Ok(_) if serves_clients(&member.log) => break,
                    Ok(_) if Instant::now() > deadline => {
                        return Err(format!(
                            "port {} answers, but member {} never logged that it serves \
                             clients:\n{}",
                            member.client_port,
                            member.name,
                            log_tail(&member.log)
                        ))
                    }
                    Ok(_) => std::thread::sleep(Duration::from_millis(20)),
                    Err(err) if Instant::now() > deadline => {
                        return Err(format!(
                            "member {} not ready within {READY_WITHIN:?}: {err}\n{}",
                            member.name,
                            log_tail(&member.log)
                        ))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            }
        }
        Ok(())
    }

    /// The client endpoint of one member, "http://127.0.0.1:PORT".
    pub fn endpoint(&self, member: usize) -> String {
        format!("http://127.0.0.1:{}", self.members[member].client_port)
    }

    /// Every member's client endpoint.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len()).map(|i| self.endpoint(i)).collect()
    }

    /// A client of every member.
    ///
    /// # Panics
    /// Never for the harness's own endpoints.
    pub fn client(&self) -> Etcd {
        Etcd::connect(&self.endpoints()).expect("client of the test cluster")
    }

    /// The directory holding the members' data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// SIGKILLs one member (no-op if already killed).
    pub fn kill(&mut self, member: usize) {
        if let Some(mut child) = self.members[member].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The log of one member so far (its last lines), for failure messages.
    pub fn log(&self, member: usize) -> String {
        log_tail(&self.members[member].log)
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for member in 0..self.members.len() {
            self.kill(member);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CI once saw a test's child talk to another test's etcd: the port chosen for a
    /// member was taken before the member bound it, and the other etcd answered on it.
    #[test]
    fn a_member_whose_client_port_another_etcd_holds_is_not_ready() {
        let Some(other) = EtcdCluster::start(1) else {
            return;
        };
        let bin = etcd_binary().unwrap();
        let taken = other.members[0].client_port;
        let mut cluster = EtcdCluster::spawn(&bin, &[taken, free_ports(1)[0]]);
        let failure = cluster.wait_ready().unwrap_err();
        assert!(failure.contains("member m0"), "{failure}");
        // The other etcd is untouched and still answers.
        other.client().get(b"k").unwrap();
    }
}

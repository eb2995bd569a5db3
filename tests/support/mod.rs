//! `obagent serve` as a child process, for the root package's end-to-end tests.

pub mod restore;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running `obagent serve`; killed when dropped.
pub struct Server {
    pub child: Child,
    pub url: String,
    /// Where its stderr (the log) goes, if not inherited.
    pub log: Option<PathBuf>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How to start `obagent serve`.
pub struct Serve<'a> {
    pub data_dir: &'a Path,
    pub password_file: &'a Path,
    pub root: &'a Path,
    pub listen: &'a str,
    /// Extra environment (the `OBAGENT_*` variables of the test's own environment are
    /// removed first).
    pub env: Vec<(&'static str, String)>,
    /// Where stderr (the log) goes; inherited when `None`.
    pub log: Option<PathBuf>,
    /// More arguments of `serve` (cluster mode's, say).
    pub args: Vec<String>,
}

impl<'a> Serve<'a> {
    /// A server with a password file, allowed to read `root`, with the `Restore data`
    /// block delay of 3 ms (the `failpoints` feature, which the root package's
    /// dev-dependency turns on in the `obagent` built for tests) so that a test can act
    /// inside that stage however fast the restore has become.
    pub fn new(
        data_dir: &'a Path,
        password_file: &'a Path,
        root: &'a Path,
        listen: &'a str,
    ) -> Self {
        Serve {
            data_dir,
            password_file,
            root,
            listen,
            env: vec![("OBRESTORE_FAILPOINT_BLOCK_DELAY_MS", "3".to_string())],
            log: None,
            args: Vec::new(),
        }
    }

    /// Starts it and waits for its "listening on" line; `None` if it exited instead
    /// (e.g. the port is not free yet).
    fn try_start(&self) -> Option<Server> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_obagent"));
        command
            .args(["serve", "--data-dir"])
            .arg(self.data_dir)
            .args(["--listen", self.listen, "--password-file"])
            .arg(self.password_file)
            .arg("--allow-root")
            .arg(self.root)
            .args(&self.args)
            .env_remove("OBAGENT_PASSWORD")
            .env_remove("OBAGENT_LOG")
            .envs(self.env.iter().map(|(name, value)| (*name, value.as_str())))
            .stdout(Stdio::piped());
        match &self.log {
            Some(log) => command.stderr(std::fs::File::create(log).expect("create the log file")),
            None => command.stderr(Stdio::inherit()),
        };
        let mut child = command.spawn().expect("spawn obagent serve");
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://"))
            .map(str::to_string);
        let server = Server {
            child,
            url: url.unwrap_or_default(),
            log: self.log.clone(),
        };
        (!server.url.is_empty()).then_some(server)
    }

    /// Starts it, retrying for a few seconds.
    pub fn start(&self) -> Server {
        for _ in 0..50 {
            if let Some(server) = self.try_start() {
                return server;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("obagent serve did not start on {}", self.listen);
    }
}

/// SIGTERM: a graceful stop that releases the database.
pub fn stop_gracefully(mut server: Server) {
    let status = Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = server.child.wait().unwrap();
    if !exit.success() {
        let log = server.log.as_ref().map(|path| {
            let text = std::fs::read_to_string(path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(120)..].join("\n")
        });
        panic!(
            "serve exited with {exit}; the end of its log:\n{}",
            log.unwrap_or_else(|| "(inherited)".to_string())
        );
    }
}

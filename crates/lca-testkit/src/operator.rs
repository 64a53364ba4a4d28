//! The operator under test as a real process, started from the workspace's own binary with
//! a kubeconfig and a simulated node root, and stopped (or killed, to simulate a crash or a
//! reboot) by the test.

use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;

use crate::process::Guarded;
use crate::{Result, assets};

/// A running `lca-operator`.
pub struct OperatorProcess {
    process: Guarded,
}

impl OperatorProcess {
    /// Start the operator against `kubeconfig`, with `host_root` as the node's `/`.
    /// Its log goes to `log`.
    pub fn start(kubeconfig: &Path, host_root: &Path, log: &Path) -> Result<Self> {
        Self::start_with_args(kubeconfig, host_root, log, &[])
    }

    /// As [`OperatorProcess::start`], with extra command-line arguments.
    pub fn start_with_args(kubeconfig: &Path, host_root: &Path, log: &Path, extra: &[&str]) -> Result<Self> {
        // Benchmarks point this at a release build.
        let bin = match std::env::var_os("LCA_OPERATOR_BIN") {
            Some(path) => PathBuf::from(path),
            None => assets::workspace_binary("lca-operator")?,
        };
        let mut argv = vec![
            bin.display().to_string(),
            format!("--host-root={}", host_root.display()),
            "--health-addr=127.0.0.1:0".to_string(),
        ];
        argv.extend(extra.iter().map(|s| s.to_string()));
        // The testkit's nodes are always directories standing in for a node.
        if !extra.iter().any(|a| a.starts_with("--node")) {
            argv.push("--node=simulated".to_string());
        }
        let envs = vec![
            ("KUBECONFIG".to_string(), kubeconfig.display().to_string()),
            (
                "RUST_LOG".to_string(),
                std::env::var("LCA_TEST_LOG").unwrap_or_else(|_| "info".into()),
            ),
        ];
        Ok(Self {
            process: Guarded::spawn("lca-operator", &argv, &envs, log, None)?,
        })
    }

    /// Graceful stop request (what the kubelet sends).
    pub fn terminate(&self) {
        self.process.signal(Signal::SIGTERM);
    }

    /// True while the operator process runs.
    pub fn alive(&self) -> bool {
        self.process.child_alive()
    }

    /// Kill the operator at once, as a crash or a reboot would.
    pub fn kill(mut self) {
        self.process.stop();
    }

    /// The operator's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.process.log()).unwrap_or_default()
    }

    /// Process id of the operator.
    pub fn pid(&self) -> i32 {
        self.process.pid()
    }

    /// Path of the operator's log.
    pub fn log_path(&self) -> PathBuf {
        self.process.log().to_path_buf()
    }
}

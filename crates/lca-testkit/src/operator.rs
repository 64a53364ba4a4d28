//! The operator under test as a real process, started from the workspace's own binary with
//! a kubeconfig and a simulated node root, and stopped (or killed, to simulate a crash or a
//! reboot) by the test. Started supervised, it is restarted whenever it exits or is killed,
//! as the kubelet restarts the operator's pod on a node (`make dev-up` runs it so).

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::process::{Guarded, Supervised};
use crate::{Result, assets};

/// A running `lca-operator`.
pub struct OperatorProcess {
    process: Runner,
    log: PathBuf,
}

enum Runner {
    Once(Guarded),
    Supervised(Supervised),
}

impl OperatorProcess {
    /// Start the operator against `kubeconfig`, with `host_root` as the node's `/`.
    /// Its log goes to `log`.
    pub fn start(kubeconfig: &Path, host_root: &Path, log: &Path) -> Result<Self> {
        Self::start_with_args(kubeconfig, host_root, log, &[])
    }

    /// As [`OperatorProcess::start`], with extra command-line arguments.
    pub fn start_with_args(kubeconfig: &Path, host_root: &Path, log: &Path, extra: &[&str]) -> Result<Self> {
        let (argv, envs) = command(kubeconfig, host_root, extra)?;
        Ok(Self {
            process: Runner::Once(Guarded::spawn("lca-operator", &argv, &envs, log, None)?),
            log: log.to_path_buf(),
        })
    }

    /// As [`OperatorProcess::start_with_args`], with extra environment variables (the
    /// operator Deployment's env, such as `PRECACHE_BEST_EFFORT=TRUE`).
    pub fn start_with_env(
        kubeconfig: &Path,
        host_root: &Path,
        log: &Path,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Self> {
        let (argv, mut envs) = command(kubeconfig, host_root, extra)?;
        envs.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Ok(Self {
            process: Runner::Once(Guarded::spawn("lca-operator", &argv, &envs, log, None)?),
            log: log.to_path_buf(),
        })
    }

    /// As [`OperatorProcess::start_with_args`], restarted after a back-off whenever it exits
    /// or is killed, until [`OperatorProcess::kill`] or drop; the pid of the operator running
    /// now is kept in `pid_file`.
    pub fn start_supervised(
        kubeconfig: &Path,
        host_root: &Path,
        log: &Path,
        pid_file: &Path,
        extra: &[&str],
    ) -> Result<Self> {
        let (argv, envs) = command(kubeconfig, host_root, extra)?;
        Ok(Self {
            process: Runner::Supervised(Supervised::spawn("lca-operator", &argv, &envs, log, pid_file)?),
            log: log.to_path_buf(),
        })
    }

    /// Graceful stop request (what the kubelet sends). A supervised operator is restarted.
    pub fn terminate(&self) {
        match &self.process {
            Runner::Once(p) => p.signal(Signal::SIGTERM),
            Runner::Supervised(p) => p.signal(Signal::SIGTERM),
        }
    }

    /// True while the operator process runs.
    pub fn alive(&self) -> bool {
        match &self.process {
            Runner::Once(p) => p.child_alive(),
            Runner::Supervised(p) => p.pid().is_some_and(crate::process::running),
        }
    }

    /// Kill the operator at once, as a crash or a reboot would; a supervised one is not
    /// restarted. To crash a supervised operator and see it restarted, `kill -9` its pid.
    pub fn kill(mut self) {
        match &mut self.process {
            Runner::Once(p) => p.stop(),
            Runner::Supervised(p) => p.stop(),
        }
    }

    /// The operator's log so far (a supervised one's: of all its runs).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Process id of the operator (supervised: of the latest run, running or not).
    pub fn pid(&self) -> i32 {
        match &self.process {
            Runner::Once(p) => p.pid(),
            Runner::Supervised(p) => p.last_pid(),
        }
    }

    /// Supervised only: wait until an operator other than the one with pid `old` runs, at
    /// most `timeout`, and return its pid.
    pub fn wait_restarted(&self, old: i32, timeout: Duration) -> Option<i32> {
        match &self.process {
            Runner::Once(_) => None,
            Runner::Supervised(p) => p.wait_for_other(Some(old), timeout),
        }
    }

    /// Path of the operator's log.
    pub fn log_path(&self) -> PathBuf {
        self.log.clone()
    }
}

/// An argv and the environment to run it with.
type CommandLine = (Vec<String>, Vec<(String, String)>);

/// The operator's argv and environment.
fn command(kubeconfig: &Path, host_root: &Path, extra: &[&str]) -> Result<CommandLine> {
    let bin = assets::binary("LCA_OPERATOR_BIN", "lca-operator")?;
    let mut argv = vec![
        bin.display().to_string(),
        format!("--host-root={}", host_root.display()),
        "--health-addr=127.0.0.1:0".to_string(),
        "--metrics-bind-address=127.0.0.1:0".to_string(),
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
    Ok((argv, envs))
}

//! The `Executor` trait and its backends: how a `Cmd` reaches the node.
//!
//! - `ChrootExecutor`: production; `chroot <root> /usr/bin/env -- cmd…` (the operator pod and
//!   the stateroot job, with the node's `/` at `/host`). Commands marked
//!   `in_host_namespaces` go through nsenter instead, as upstream does for `podman image mount`.
//! - `NsenterExecutor`: `nsenter --target 1 --cgroup --mount --ipc --net --pid -- cmd…`.
//! - `LocalExecutor`: a *simulated* node: the real tools of this machine, run directly, with
//!   node paths pointed at a host-root directory (`--sysroot=<root>/sysroot` etc.).
//! - `DryRunExecutor`: logs every argv, runs read-only commands through an inner executor and
//!   refuses mutating ones.
//!
//! Every backend ends in `command::spawn_and_wait`.

use std::ffi::OsString;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use crate::command::{Cmd, Output, spawn_and_wait};
use crate::error::{Error, Result};
use crate::paths::HostPaths;

/// A boxed future, so `Executor` is usable as `dyn Executor`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Whether the node is a real ostree-booted host or a directory standing in for one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A real node: `rpm-ostree`, `systemctl`, `crictl` exist; reboots are real.
    Real,
    /// A simulated node (tests, the local environment): the booted deployment and reboot
    /// requests live in the state files of `crate::sim`.
    Simulated,
}

/// The node an executor acts on, seen from two sides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    /// Real or simulated.
    pub kind: NodeKind,
    /// Node paths as *this process* sees them (`/host/...` in the pod), for direct file access.
    pub paths: HostPaths,
    /// Node paths as the *commands* see them (`/...` after chroot; the host-root dir locally).
    pub cmd_paths: HostPaths,
}

/// Runs commands on one node.
pub trait Executor: Send + Sync + fmt::Debug {
    /// Run one command; failure, timeout and a missing tool are errors.
    fn run<'a>(&'a self, cmd: &'a Cmd) -> BoxFuture<'a, Result<Output>>;

    /// The node this executor acts on.
    fn node(&self) -> &Node;

    /// False for dry-run: in-process mutations (libostree) must check this too.
    fn allows_mutation(&self) -> bool {
        true
    }
}

/// PID whose namespaces nsenter joins: the host's init in production.
pub const HOST_PID: u32 = 1;

fn nsenter_prefix(target: u32) -> Vec<OsString> {
    let mut v = vec![
        OsString::from("nsenter"),
        OsString::from("--target"),
        OsString::from(target.to_string()),
    ];
    v.extend(
        ["--cgroup", "--mount", "--ipc", "--net", "--pid", "--"]
            .into_iter()
            .map(OsString::from),
    );
    v
}

/// Production backend: chroot into the node's root (`/host`).
#[derive(Debug, Clone)]
pub struct ChrootExecutor {
    node: Node,
    ns_target: u32,
}

impl ChrootExecutor {
    /// Chroot into `host_root` (normally `/host`).
    pub fn new(host_root: impl Into<PathBuf>) -> Self {
        let root = host_root.into();
        Self {
            node: Node {
                kind: NodeKind::Real,
                paths: HostPaths::new(root),
                cmd_paths: HostPaths::new("/"),
            },
            ns_target: HOST_PID,
        }
    }

    /// Join the namespaces of `pid` instead of PID 1 for `in_host_namespaces` commands
    /// (tests: PID 1's namespaces are not enterable in every sandbox).
    pub fn nsenter_target(mut self, pid: u32) -> Self {
        self.ns_target = pid;
        self
    }
}

impl Executor for ChrootExecutor {
    fn run<'a>(&'a self, cmd: &'a Cmd) -> BoxFuture<'a, Result<Output>> {
        Box::pin(async move {
            let prefix = if cmd.wants_host_namespaces() {
                nsenter_prefix(self.ns_target)
            } else {
                vec![
                    OsString::from("chroot"),
                    self.node.paths.root().as_os_str().to_os_string(),
                    OsString::from("/usr/bin/env"),
                    OsString::from("--"),
                ]
            };
            spawn_and_wait(cmd, &prefix, &[]).await
        })
    }

    fn node(&self) -> &Node {
        &self.node
    }
}

/// Production backend: run in PID 1's namespaces (lca-cli on the host, IPC).
#[derive(Debug, Clone)]
pub struct NsenterExecutor {
    node: Node,
    target: u32,
}

impl NsenterExecutor {
    /// `host_root` is where this process sees the node's `/` (`/` on the host, `/host` in a pod).
    pub fn new(host_root: impl Into<PathBuf>) -> Self {
        Self {
            node: Node {
                kind: NodeKind::Real,
                paths: HostPaths::new(host_root),
                cmd_paths: HostPaths::new("/"),
            },
            target: HOST_PID,
        }
    }

    /// Join the namespaces of `pid` instead of PID 1 (tests).
    pub fn target(mut self, pid: u32) -> Self {
        self.target = pid;
        self
    }
}

impl Executor for NsenterExecutor {
    fn run<'a>(&'a self, cmd: &'a Cmd) -> BoxFuture<'a, Result<Output>> {
        Box::pin(async move { spawn_and_wait(cmd, &nsenter_prefix(self.target), &[]).await })
    }

    fn node(&self) -> &Node {
        &self.node
    }
}

/// Simulated-node backend: this machine's tools, node paths under a host-root directory.
#[derive(Debug, Clone)]
pub struct LocalExecutor {
    node: Node,
    env: Vec<(String, OsString)>,
}

impl LocalExecutor {
    /// A simulated node rooted at `root` (it holds `sysroot/`, `var/`, …).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let paths = HostPaths::new(root);
        Self {
            node: Node {
                kind: NodeKind::Simulated,
                cmd_paths: paths.clone(),
                paths,
            },
            env: Vec::new(),
        }
    }

    /// Add an environment variable for every command (e.g. `CONTAINERS_STORAGE_CONF` for a
    /// private podman storage, or `PATH` to put test peers first).
    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
}

impl Executor for LocalExecutor {
    fn run<'a>(&'a self, cmd: &'a Cmd) -> BoxFuture<'a, Result<Output>> {
        Box::pin(async move { spawn_and_wait(cmd, &[], &self.env).await })
    }

    fn node(&self) -> &Node {
        &self.node
    }
}

/// Logs every command; runs read-only ones through `inner`, refuses mutating ones.
#[derive(Debug, Clone)]
pub struct DryRunExecutor {
    inner: Arc<dyn Executor>,
}

impl DryRunExecutor {
    /// Wrap `inner`.
    pub fn new(inner: Arc<dyn Executor>) -> Self {
        Self { inner }
    }
}

impl Executor for DryRunExecutor {
    fn run<'a>(&'a self, cmd: &'a Cmd) -> BoxFuture<'a, Result<Output>> {
        Box::pin(async move {
            tracing::info!(command = %cmd.display(), mutating = cmd.is_mutating(), "dry run");
            if cmd.is_mutating() {
                return Err(Error::DryRunRefused {
                    command: cmd.display(),
                });
            }
            self.inner.run(cmd).await
        })
    }

    fn node(&self) -> &Node {
        self.inner.node()
    }

    fn allows_mutation(&self) -> bool {
        false
    }
}

/// Refuse an in-process mutation (libostree, file removal) under dry-run.
pub(crate) fn ensure_mutation_allowed(exec: &dyn Executor, what: &str) -> Result<()> {
    if exec.allows_mutation() {
        Ok(())
    } else {
        Err(Error::DryRunRefused {
            command: what.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chroot_into_slash_runs_through_env() {
        let exec = ChrootExecutor::new("/");
        let out = exec
            .run(&Cmd::new("echo").arg("hello").read_only())
            .await
            .unwrap();
        assert_eq!(out.stdout, "hello\n");
        let err = exec.run(&Cmd::new("lca-no-such-tool")).await.unwrap_err();
        assert_eq!(err.to_string(), "lca-no-such-tool not found on the node");
    }

    /// A process in its own mount namespace with a tmpfs only it can see; PID 1 of this
    /// sandbox cannot be entered (`/proc/1/ns/cgroup: Permission denied`), so tests target it.
    struct PrivateMountNs {
        child: std::process::Child,
        mark: std::path::PathBuf,
        _dir: tempfile::TempDir,
    }

    impl PrivateMountNs {
        fn start() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let mark = dir.path().join("mnt");
            std::fs::create_dir(&mark).unwrap();
            let script = format!(
                "mount -t tmpfs lca-test {m} && touch {m}/inside && echo ready && exec sleep 60",
                m = mark.display()
            );
            let mut child = std::process::Command::new("unshare")
                .args(["-m", "--propagation", "private", "sh", "-c", &script])
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut line = String::new();
            use std::io::BufRead;
            std::io::BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert_eq!(line.trim(), "ready");
            Self {
                child,
                mark,
                _dir: dir,
            }
        }
    }

    impl Drop for PrivateMountNs {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    #[tokio::test]
    async fn nsenter_joins_the_target_mount_namespace() {
        let ns = PrivateMountNs::start();
        assert!(
            !ns.mark.join("inside").exists(),
            "the tmpfs must be invisible here"
        );
        let exec = NsenterExecutor::new("/").target(ns.child.id());
        let probe = Cmd::new("ls").arg(&ns.mark).read_only();
        assert_eq!(exec.run(&probe).await.unwrap().stdout, "inside\n");
        // A chroot executor sends host-namespace commands through nsenter, plain ones through chroot.
        let chroot = ChrootExecutor::new("/").nsenter_target(ns.child.id());
        assert_eq!(
            chroot
                .run(&probe.clone().in_host_namespaces())
                .await
                .unwrap()
                .stdout,
            "inside\n"
        );
        assert_eq!(chroot.run(&probe).await.unwrap().stdout, "");
    }

    #[tokio::test]
    async fn dry_run_refuses_mutations_and_runs_reads() {
        let exec = DryRunExecutor::new(Arc::new(LocalExecutor::new("/tmp")));
        assert!(exec.run(&Cmd::new("true").read_only()).await.is_ok());
        let err = exec
            .run(&Cmd::new("rm").arg("-rf").arg("/tmp/x"))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "dry run: refused to run mutating command `rm -rf /tmp/x`"
        );
        assert!(!exec.allows_mutation());
    }

    #[tokio::test]
    async fn local_env_reaches_the_command() {
        let exec = LocalExecutor::new("/tmp").with_env("LCA_PROBE", "42");
        let out = exec
            .run(&Cmd::new("sh").args(["-c", "echo $LCA_PROBE"]).read_only())
            .await
            .unwrap();
        assert_eq!(out.stdout.trim(), "42");
    }
}

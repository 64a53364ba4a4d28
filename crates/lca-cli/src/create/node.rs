//! What `lca-cli create` needs from the node that cannot be plain file access: ostree,
//! the container image list, stopping kubelet/CRI-O, recert, rpm-ostree. [`RealNode`] runs
//! the real commands (argv vectors) as the reference does; [`SimulatedNode`] is the test
//! and demo stand-in for a node directory with a real ostree sysroot, where only ostree is
//! real and the rest is recorded in `<root>/sim/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use lca_hostops::{Cmd, Executor, LocalExecutor, NsenterExecutor, recert};

use crate::error::{Error, Result};

/// Node operations of seed creation.
pub trait NodeOps {
    /// The executor of this node's commands; its node root also confines the file access.
    fn executor(&self) -> &dyn Executor;
    /// `ostree admin <args>` on the node's sysroot; stdout.
    fn ostree_admin(&self, args: &[&str]) -> Result<String>;
    /// Images in the node's container storage (`crictl images`).
    fn list_images(&self) -> Result<Vec<String>>;
    /// Stop kubelet and CRI-O (spec §8.5 step 6).
    fn stop_cluster_services(&self) -> Result<()>;
    /// Re-enable and start kubelet (step 12).
    fn start_cluster_services(&self) -> Result<()>;
    /// `systemctl enable <unit>` (its unit file is in `/etc/systemd/system`).
    fn enable_unit(&self, unit: &str) -> Result<()>;
    /// `systemctl disable --now <unit>`.
    fn disable_unit(&self, unit: &str) -> Result<()>;
    /// recert force-expire with the config at `config` (step 7).
    /// recert with `config` (a node path under `/var/tmp`) next to a bare etcd on the node's
    /// etcd data (§9.5).
    fn recert(&self, config: &str, recert_image: &str, authfile: Option<&str>) -> Result<()>;
    /// `rpm-ostree status -v --json`.
    fn rpm_ostree_status(&self) -> Result<String>;
}

/// Limit of one node command of `create` (`crictl`, `systemctl`, `ostree admin status`).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);
/// Limit of the recert force-expire container (it walks every certificate of the node).
pub const RECERT_TIMEOUT: Duration = Duration::from_secs(3600);

/// Run `argv` through `exec` with lca-hostops' command wrapper (killed after `timeout`),
/// returning stdout; the error names the command and the tail of stderr.
fn run_for(exec: &dyn Executor, argv: &[&str], timeout: Duration) -> Result<String> {
    let (prog, args) = argv
        .split_first()
        .ok_or_else(|| Error::Invalid("empty command".into()))?;
    let cmd = Cmd::new(*prog).args(args).timeout(timeout);
    Ok(lca_hostops::command::run_blocking(exec, &cmd)?.stdout)
}

/// The bare etcd answers on the node's loopback (the imager shares the host network).
fn wait_for_etcd() -> Result<()> {
    for _ in 0..60 {
        if std::net::TcpStream::connect("127.0.0.1:2379").is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    Err(Error::NodeState(
        "etcd did not come up for recert within 1m".into(),
    ))
}

/// A real node. The imager container is `--privileged --pid=host`, so PID 1 is the host's
/// init: every node command enters its namespaces (`nsenter --target 1`), as upstream's
/// imager does, and runs the host's own crictl, ostree, rpm-ostree, systemctl and podman
/// rather than whatever the container image carries.
pub struct RealNode {
    exec: Box<dyn Executor>,
}

impl RealNode {
    /// The node whose `/` this process sees at `host_root` (`/` in the imager container).
    pub fn new(host_root: &Path) -> Self {
        Self::with_executor(Box::new(NsenterExecutor::new(host_root)))
    }

    /// A real node whose commands run through `exec` (tests record them).
    pub fn with_executor(exec: Box<dyn Executor>) -> Self {
        Self { exec }
    }

    fn run_argv(&self, argv: &[String], timeout: Duration) -> Result<String> {
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        run_for(self.exec.as_ref(), &argv, timeout)
    }

    fn run(&self, argv: &[&str]) -> Result<String> {
        run_for(self.exec.as_ref(), argv, COMMAND_TIMEOUT)
    }
}

impl NodeOps for RealNode {
    fn executor(&self) -> &dyn Executor {
        self.exec.as_ref()
    }

    fn ostree_admin(&self, args: &[&str]) -> Result<String> {
        self.run(&[&["ostree", "admin"], args].concat())
    }

    fn list_images(&self) -> Result<Vec<String>> {
        // Dangling images are not worth precaching (§8.5 step 3); a failed prune only
        // leaves them in the list.
        if let Err(e) = self.run(&["podman", "image", "prune", "-f"]) {
            tracing::warn!("podman image prune: {e}");
        }
        let json = self.run(&["crictl", "images", "-o", "json"])?;
        let v: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| Error::Invalid(format!("crictl images output: {e}")))?;
        let mut out = Vec::new();
        for img in v["images"].as_array().into_iter().flatten() {
            let tags = img["repoTags"]
                .as_array()
                .filter(|t| !t.is_empty())
                .or(img["repoDigests"].as_array());
            out.extend(
                tags.into_iter()
                    .flatten()
                    .filter_map(|t| t.as_str().map(String::from)),
            );
        }
        Ok(out)
    }

    fn stop_cluster_services(&self) -> Result<()> {
        self.run(&["systemctl", "stop", "kubelet.service"])?;
        self.run(&["systemctl", "disable", "kubelet.service"])?;
        // `is-active` exits 3 when inactive: then there is nothing to stop.
        if self.run(&["systemctl", "is-active", "crio"]).is_ok() {
            let ids = self.run(&["crictl", "ps", "-q"])?;
            for id in ids.split_whitespace() {
                self.run(&["crictl", "stop", "--timeout", "5", id])?;
            }
            let pods = self.run(&["crictl", "pods", "-q"]).unwrap_or_default();
            for pod in pods.split_whitespace() {
                if let Err(e) = self.run(&["crictl", "rmp", "-f", pod]) {
                    tracing::warn!(error = %e, "removing pod (non-fatal)");
                }
            }
            self.run(&["systemctl", "stop", "crio.service"])?;
        }
        Ok(())
    }

    fn start_cluster_services(&self) -> Result<()> {
        self.run(&["systemctl", "enable", "kubelet.service", "--now"])
            .map(|_| ())
    }

    fn enable_unit(&self, unit: &str) -> Result<()> {
        self.run(&["systemctl", "enable", unit]).map(|_| ())
    }

    fn disable_unit(&self, unit: &str) -> Result<()> {
        self.run(&["systemctl", "disable", "--now", unit]).map(|_| ())
    }

    fn recert(&self, config: &str, recert_image: &str, authfile: Option<&str>) -> Result<()> {
        let fs = lca_hostops::NodeFs::new(self.exec.as_ref());
        let pod = self.exec.node().paths.host(recert::ETCD_POD);
        let etcd_image = recert::etcd_image(&fs, &pod)?;
        self.run_argv(&recert::etcd_argv(&etcd_image, authfile), COMMAND_TIMEOUT)?;
        let result = wait_for_etcd().and_then(|()| {
            self.run_argv(
                &recert::recert_argv(recert_image, config, authfile, &[]),
                RECERT_TIMEOUT,
            )
        });
        if let Err(e) = self.run_argv(&recert::stop_etcd_argv(), COMMAND_TIMEOUT) {
            tracing::warn!("stopping recert_etcd: {e}");
        }
        result.map(|_| ())
    }

    fn rpm_ostree_status(&self) -> Result<String> {
        self.run(&["rpm-ostree", "status", "-v", "--json"])
    }
}

/// SIMULATED node for tests and the demo: a directory with a real ostree sysroot at
/// `<root>/sysroot`. Services, recert and crictl are not run; what would have happened is
/// appended to `<root>/sim/events.log`, and images come from `<root>/sim/images.list`.
pub struct SimulatedNode {
    root: PathBuf,
    exec: LocalExecutor,
}

impl SimulatedNode {
    pub fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            exec: LocalExecutor::new(root),
        }
    }

    fn event(&self, what: &str) -> Result<()> {
        use std::io::Write;
        let path = self.root.join("sim/events.log");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(Error::io("recording a simulated event", &path))?;
        writeln!(f, "{what}").map_err(Error::io("recording a simulated event", &path))
    }
}

impl NodeOps for SimulatedNode {
    fn executor(&self) -> &dyn Executor {
        &self.exec
    }

    fn ostree_admin(&self, args: &[&str]) -> Result<String> {
        let sysroot = format!("--sysroot={}", self.root.join("sysroot").display());
        let (cmd, rest) = args
            .split_first()
            .ok_or_else(|| Error::Invalid("empty ostree admin command".into()))?;
        run_for(
            &self.exec,
            &[&["ostree", "admin", cmd, &sysroot], rest].concat(),
            COMMAND_TIMEOUT,
        )
    }

    fn list_images(&self) -> Result<Vec<String>> {
        let path = self.root.join("sim/images.list");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        Ok(text
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect())
    }

    fn stop_cluster_services(&self) -> Result<()> {
        self.event("stop kubelet crio")
    }

    fn start_cluster_services(&self) -> Result<()> {
        self.event("start kubelet")
    }

    /// What `systemctl enable` does for a `WantedBy=multi-user.target` unit.
    fn enable_unit(&self, unit: &str) -> Result<()> {
        let fs = lca_hostops::NodeFs::new(&self.exec);
        let wants = self.root.join("etc/systemd/system/multi-user.target.wants");
        fs.create_private_dir(&wants)?;
        fs.symlink(&Path::new("/etc/systemd/system").join(unit), &wants.join(unit))?;
        self.event(&format!("enable {unit}"))
    }

    fn disable_unit(&self, unit: &str) -> Result<()> {
        let link = self
            .root
            .join("etc/systemd/system/multi-user.target.wants")
            .join(unit);
        lca_hostops::NodeFs::new(&self.exec).remove_file(&link)?;
        self.event(&format!("disable {unit}"))
    }

    /// The containers are not run; the config is kept as `sim/recert/<n>.json` for tests.
    fn recert(&self, config: &str, recert_image: &str, _authfile: Option<&str>) -> Result<()> {
        let kept = self.root.join("sim/recert");
        std::fs::create_dir_all(&kept).map_err(Error::io("keeping a recert config", &kept))?;
        let n = std::fs::read_dir(&kept).map(|d| d.count()).unwrap_or(0) + 1;
        let src = self.root.join(config.trim_start_matches('/'));
        std::fs::copy(&src, kept.join(format!("{n}.json")))
            .map_err(Error::io("keeping a recert config", &src))?;
        self.event(&format!("recert {config} {recert_image}"))
    }

    fn rpm_ostree_status(&self) -> Result<String> {
        let status = self.ostree_admin(&["status"])?;
        let deployments: Vec<serde_json::Value> = super::ostree::deployments(&status)
            .into_iter()
            .map(|(os, id)| serde_json::json!({ "osname": os, "id": format!("{os}-{id}"), "checksum": id.split('.').next() }))
            .collect();
        Ok(serde_json::json!({ "deployments": deployments, "simulated": true }).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Test peer of the node: records each command and answers as an idle node would.
    #[derive(Debug)]
    struct Recorder {
        node: lca_hostops::Node,
        seen: Arc<Mutex<Vec<String>>>,
    }

    impl Executor for Recorder {
        fn run<'a>(
            &'a self,
            cmd: &'a Cmd,
        ) -> lca_hostops::executor::BoxFuture<'a, lca_hostops::Result<lca_hostops::Output>> {
            self.seen.lock().unwrap().push(cmd.display());
            // `systemctl is-active crio` fails: CRI-O is not running, nothing to stop.
            let code = if cmd.display().contains("is-active") { 3 } else { 0 };
            let out = lca_hostops::Output {
                code: Some(code),
                stdout: String::new(),
                stderr: String::new(),
            };
            Box::pin(async move {
                if code == 0 {
                    Ok(out)
                } else {
                    Err(lca_hostops::Error::Invalid("inactive".into()))
                }
            })
        }

        fn node(&self) -> &lca_hostops::Node {
            &self.node
        }
    }

    #[test]
    fn a_real_node_enters_the_host_namespaces_of_pid_1() {
        let shown = format!("{:?}", RealNode::new(Path::new("/")).exec);
        assert!(
            shown.starts_with("NsenterExecutor") && shown.contains("target: 1"),
            "{shown}"
        );
    }

    #[test]
    fn real_node_commands_go_through_its_executor() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let node = NsenterExecutor::new("/").node().clone();
        let node = RealNode::with_executor(Box::new(Recorder {
            node,
            seen: seen.clone(),
        }));
        node.stop_cluster_services().unwrap();
        node.rpm_ostree_status().unwrap();
        let seen = seen.lock().unwrap().clone();
        assert_eq!(
            seen,
            [
                "systemctl stop kubelet.service",
                "systemctl disable kubelet.service",
                "systemctl is-active crio",
                "rpm-ostree status -v --json",
            ]
        );
    }
}

//! What `lca-cli create` needs from the node that is not plain file access: ostree, the
//! container image list, stopping kubelet/CRI-O, recert, rpm-ostree. The commands are the
//! real node's (argv vectors, as the reference runs them) on every node; only the executor
//! differs. On a real node it enters PID 1's namespaces; on a simulated node it runs
//! locally, where ostree is real and the host services (systemctl, crictl, the node's
//! podman storage, the recert containers) are the host-services test peer's, first in PATH.
//! The one node fact a simulated node keeps in a file, its booted deployment, comes from
//! `lca_hostops::ostree::status`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lca_hostops::{Cmd, Executor, NodeKind, NsenterExecutor, recert};

use crate::error::{Error, Result};

/// Limit of one node command of `create` (`crictl`, `systemctl`, `ostree admin status`).
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(600);
/// Limit of the recert force-expire container (it walks every certificate of the node).
pub const RECERT_TIMEOUT: Duration = Duration::from_secs(3600);

/// The node seed creation works on.
pub struct Node {
    exec: Arc<dyn Executor>,
    /// How long kubelet and CRI-O get to stop (step 6) before create gives up.
    stop_timeout: Duration,
}

impl Node {
    /// The real node whose `/` this process sees at `host_root` (`/` in the imager
    /// container). The imager is `--privileged --pid=host`, so PID 1 is the host's init:
    /// every command enters its namespaces (`nsenter --target 1`), as upstream's imager
    /// does, and runs the host's own tools rather than the container image's.
    pub fn real(host_root: &Path) -> Self {
        Self::with_executor(Arc::new(NsenterExecutor::new(host_root)))
    }

    /// A node whose commands run through `exec`.
    pub fn with_executor(exec: Arc<dyn Executor>) -> Self {
        Self {
            exec,
            stop_timeout: COMMAND_TIMEOUT,
        }
    }

    /// Give kubelet and CRI-O `timeout` to stop.
    pub fn stop_timeout(mut self, timeout: Duration) -> Self {
        self.stop_timeout = timeout;
        self
    }

    /// The executor of this node's commands; its node root also confines the file access.
    pub fn executor(&self) -> &dyn Executor {
        self.exec.as_ref()
    }

    fn run_cmd(&self, cmd: Cmd) -> Result<String> {
        Ok(lca_hostops::command::run_blocking(self.exec.as_ref(), &cmd)?.stdout)
    }

    fn run_for(&self, argv: &[impl AsRef<str>], timeout: Duration) -> Result<String> {
        let (prog, args) = argv
            .split_first()
            .ok_or_else(|| Error::Invalid("empty command".into()))?;
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        self.run_cmd(Cmd::new(prog.as_ref()).args(args).timeout(timeout))
    }

    fn run(&self, argv: &[&str]) -> Result<String> {
        self.run_for(argv, COMMAND_TIMEOUT)
    }

    /// `ostree admin <sub> <rest…>` on the node's sysroot; stdout.
    pub fn ostree_admin(&self, sub: &str, rest: &[&str]) -> Result<String> {
        let cmd = lca_hostops::ostree::admin_cmd(self.exec.as_ref(), sub);
        self.run_cmd(cmd.args(rest).timeout(COMMAND_TIMEOUT))
    }

    /// Images in the node's container storage (`crictl images`), after dropping the
    /// dangling ones, which are not worth precaching (§8.5 step 3); a failed prune only
    /// leaves them in the list.
    pub fn list_images(&self) -> Result<Vec<String>> {
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

    /// Stop kubelet and CRI-O (§8.5 step 6).
    pub fn stop_cluster_services(&self) -> Result<()> {
        self.run_for(&["systemctl", "stop", "kubelet.service"], self.stop_timeout)
            .map_err(|e| Error::NodeState(format!("stopping kubelet: {e}")))?;
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
            self.run_for(&["systemctl", "stop", "crio.service"], self.stop_timeout)
                .map_err(|e| Error::NodeState(format!("stopping CRI-O: {e}")))?;
        }
        Ok(())
    }

    /// Re-enable and start kubelet (step 12).
    pub fn start_cluster_services(&self) -> Result<()> {
        self.run(&["systemctl", "enable", "kubelet.service", "--now"])
            .map(|_| ())
    }

    /// `systemctl enable <unit>` (its unit file is in `/etc/systemd/system`).
    pub fn enable_unit(&self, unit: &str) -> Result<()> {
        self.run(&["systemctl", "enable", unit]).map(|_| ())
    }

    /// `systemctl disable --now <unit>`.
    pub fn disable_unit(&self, unit: &str) -> Result<()> {
        self.run(&["systemctl", "disable", "--now", unit]).map(|_| ())
    }

    /// recert with `config` (a node path under `/var/tmp`) next to a bare etcd on the
    /// node's etcd data (§9.5); the sidecar is stopped whatever recert did.
    pub fn recert(&self, config: &str, recert_image: &str, authfile: Option<&str>) -> Result<()> {
        let fs = lca_hostops::NodeFs::new(self.exec.as_ref());
        let pod = self.exec.node().paths.host(recert::ETCD_POD);
        let etcd_image = recert::etcd_image(&fs, &pod)?;
        self.run_for(&recert::etcd_argv(&etcd_image, authfile), COMMAND_TIMEOUT)?;
        let result = lca_hostops::command::block_on(
            "waiting for recert_etcd",
            recert::wait_for_etcd(self.exec.as_ref()),
        )
        .map_err(Error::from)
        .and_then(|()| {
            self.run_for(
                &recert::recert_argv(recert_image, config, authfile, &[]),
                RECERT_TIMEOUT,
            )
        });
        if let Err(e) = self.run_for(&recert::stop_etcd_argv(), COMMAND_TIMEOUT) {
            tracing::warn!("stopping recert_etcd: {e}");
        }
        result.map(|_| ())
    }

    /// `rpm-ostree status -v --json`. A simulated node has no rpm-ostree: its deployments
    /// (and the one it booted) are rendered with the keys a seed's reader uses.
    pub fn rpm_ostree_status(&self) -> Result<String> {
        if self.exec.node().kind == NodeKind::Real {
            return self.run(&["rpm-ostree", "status", "-v", "--json"]);
        }
        let status = lca_hostops::command::block_on(
            "ostree admin status",
            lca_hostops::ostree::status(self.exec.as_ref()),
        )?;
        let booted = status.deployments.iter().any(|d| d.booted);
        let deployments: Vec<serde_json::Value> = status
            .deployments
            .iter()
            .map(|d| {
                serde_json::json!({
                    "osname": d.stateroot, "id": d.id(), "checksum": d.checksum,
                    "serial": d.serial, "booted": d.booted,
                })
            })
            .collect();
        // Nothing booted (a seed node built without a boot): deployment 0 is the one packed.
        Ok(serde_json::json!({ "deployments": deployments, "simulated": !booted }).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

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
        let shown = format!("{:?}", Node::real(Path::new("/")).exec);
        assert!(
            shown.starts_with("NsenterExecutor") && shown.contains("target: 1"),
            "{shown}"
        );
    }

    #[test]
    fn real_node_commands_go_through_its_executor() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let node = NsenterExecutor::new("/").node().clone();
        let node = Node::with_executor(Arc::new(Recorder {
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

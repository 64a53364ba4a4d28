//! How recert runs on a node (spec §9.5), for both of its callers: `lca-cli post-pivot`
//! (the first boot of the new stateroot) and `lca-cli create` (seed generation: expire the
//! seed's certificates, then give the seed cluster its own back). recert edits etcd's data
//! directly, so a bare etcd runs next to it on the node's `/var/lib/etcd` (the kubelet, and
//! with it the etcd static pod, is stopped) and is stopped afterwards. Here are the argv
//! vectors; the callers run them through their executors.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::executor::{Executor, NodeKind};
use crate::{Error, NodeFs, Result};

/// The static pod whose etcd image the sidecar runs (node path).
pub const ETCD_POD: &str = "etc/kubernetes/manifests/etcd-pod.yaml";
/// The sidecar's container name; `podman stop` it afterwards.
pub const ETCD_CONTAINER: &str = "recert_etcd";

/// Both containers: privileged, on the host network, replacing a leftover of an earlier run.
const PODMAN_RUN: [&str; 6] = [
    "podman",
    "run",
    "--rm",
    "--network=host",
    "--privileged",
    "--replace",
];

/// `podman run … recert_etcd`: an unauthenticated etcd on the node's etcd data.
pub fn etcd_argv(etcd_image: &str, authfile: Option<&str>) -> Vec<String> {
    let mut argv: Vec<String> = PODMAN_RUN.map(String::from).to_vec();
    if let Some(a) = authfile {
        argv.extend(["--authfile".into(), a.into()]);
    }
    argv.extend(
        [
            "--detach",
            "--name",
            ETCD_CONTAINER,
            "--entrypoint",
            "etcd",
            "-v",
            "/var/lib/etcd:/store",
            etcd_image,
            "--name",
            "editor",
            "--data-dir",
            "/store",
        ]
        .map(String::from),
    );
    argv
}

/// `podman run … recert` with its configuration at `config` (a node path under `/var/tmp`
/// or one of `extra_volumes`, which the container sees at the same path).
pub fn recert_argv(image: &str, config: &str, authfile: Option<&str>, extra_volumes: &[&str]) -> Vec<String> {
    let mut argv: Vec<String> = PODMAN_RUN.map(String::from).to_vec();
    argv.extend(
        [
            "--name",
            "recert",
            "-v",
            "/etc:/host-etc",
            "-v",
            "/etc/ssh:/ssh",
            "-v",
            "/etc/kubernetes:/kubernetes",
            "-v",
            "/var/lib/kubelet:/kubelet",
            "-v",
            "/var/tmp:/var/tmp",
            "-v",
            "/etc/machine-config-daemon:/machine-config-daemon",
            "-v",
            "/etc/pki:/pki",
            "-e",
        ]
        .map(String::from),
    );
    argv.push(format!("RECERT_CONFIG={config}"));
    if let Some(a) = authfile {
        argv.extend(["--authfile".into(), a.into()]);
    }
    for v in extra_volumes {
        argv.extend(["-v".into(), format!("{v}:{v}")]);
    }
    argv.push(image.into());
    argv
}

/// `podman stop recert_etcd`.
pub fn stop_etcd_argv() -> Vec<String> {
    ["podman", "stop", ETCD_CONTAINER].map(String::from).to_vec()
}

/// Wait for the sidecar's etcd on the node's loopback (it runs on the host network), up to
/// a minute. On a simulated node the host-services peer stands in for both containers and
/// nothing listens, so there is nothing to wait for.
pub async fn wait_for_etcd(exec: &dyn Executor) -> Result<()> {
    if exec.node().kind == NodeKind::Simulated {
        return Ok(());
    }
    for _ in 0..60 {
        if tokio::net::TcpStream::connect("127.0.0.1:2379").await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(Error::NodeState(
        "the recert_etcd sidecar did not come up on 127.0.0.1:2379 within 1m".into(),
    ))
}

/// The etcd image of the node's static pod (container `etcd`).
pub fn etcd_image(fs: &NodeFs<'_>, host_path: &Path) -> Result<String> {
    let text = fs.read_string(host_path)?;
    let pod: Value =
        serde_norway::from_str(&text).map_err(|e| Error::Invalid(format!("{}: {e}", host_path.display())))?;
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| c["name"] == "etcd")
        .and_then(|c| c["image"].as_str())
        .map(str::to_string)
        .ok_or_else(|| Error::Invalid(format!("{}: no container named etcd", host_path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sidecar_and_recert_see_the_nodes_etcd_and_config() {
        let etcd = etcd_argv("quay.io/etcd:1", Some("/var/lib/kubelet/config.json")).join(" ");
        assert!(
            etcd.ends_with("--detach --name recert_etcd --entrypoint etcd -v /var/lib/etcd:/store quay.io/etcd:1 --name editor --data-dir /store"),
            "{etcd}"
        );
        assert!(etcd.contains("--authfile /var/lib/kubelet/config.json"));
        let recert = recert_argv(
            "quay.io/recert:v0",
            "/var/tmp/backup/recert_config.json",
            None,
            &["/opt/openshift"],
        );
        let shown = recert.join(" ");
        assert!(
            shown.contains("-e RECERT_CONFIG=/var/tmp/backup/recert_config.json"),
            "{shown}"
        );
        assert!(shown.contains("-v /var/tmp:/var/tmp"), "{shown}");
        assert!(
            shown.ends_with("-v /opt/openshift:/opt/openshift quay.io/recert:v0"),
            "{shown}"
        );
        assert!(!shown.contains("--authfile"));
    }
}

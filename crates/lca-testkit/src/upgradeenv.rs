//! A node and cluster an upgrade can run on, shared by the e2e tests and the local
//! environment: the cluster lives in the node (the loopback etcd's data is the booted
//! stateroot's `var/lib/etcd`), the node has what pre-pivot exports (kubelet certificates,
//! NetworkManager connections, SSH keys, LVM devices) and the host-services peer, and
//! [`boot`] is the node side of a simulated reboot: the default deployment boots, the
//! control plane follows it, the booted deployment's units run.

use std::path::Path;

use kube::Client;

use crate::{ControlPlane, Result, hostpeer, io, openshift, prepenv, simnode, units};

/// The original cluster's identity as pre-pivot exports it.
pub const NODE_IP: &str = "192.168.1.20";
pub const CLUSTER_NAME: &str = "target";
pub const BASE_DOMAIN: &str = "example.org";
pub const MACHINE_NETWORK: &str = "192.168.1.0/24";
pub const SSH_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2e2e core@target";
/// The kubelet client certificate's expiry (the server's is later): a rollback stays
/// possible until 30 minutes before it.
pub const KUBELET_CLIENT_NOT_AFTER: (i32, u8, u8) = (2027, 1, 1);

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    }
    std::fs::write(path, text).map_err(io(format!("writing {}", path.display())))
}

/// The node files of the cluster being upgraded, its podman storage and the peer.
pub fn prepare_node(root: &Path) -> Result<()> {
    simnode::configure(root)?;
    hostpeer::install(root)?;
    prepenv::kubelet_certs(&root.join("var"), KUBELET_CLIENT_NOT_AFTER, (2027, 3, 1))?;
    write(
        &root.join("etc/NetworkManager/system-connections/br-ex.nmconnection"),
        "[connection]\nid=br-ex\n",
    )?;
    write(&root.join("home/core/.ssh/authorized_keys.d/ignition"), SSH_KEY)?;
    write(&root.join("etc/ssh/ssh_host_ed25519_key"), "PRIVATE host key\n")?;
    write(
        &root.join("etc/ssh/ssh_host_ed25519_key.pub"),
        "ssh-ed25519 HOSTKEY\n",
    )?;
    // The running cluster's kubelet is enabled: booting this deployment again (a rollback)
    // brings the operator back.
    let wants = root.join("etc/systemd/system/multi-user.target.wants");
    std::fs::create_dir_all(&wants).map_err(io("creating the wants dir"))?;
    let link = wants.join("kubelet.service");
    if !link.is_symlink() {
        std::os::unix::fs::symlink("/etc/systemd/system/kubelet.service", &link)
            .map_err(io("enabling the kubelet"))?;
    }
    write(
        &root.join("etc/lvm/devices/system.devices"),
        "VERSION=1.1.1\nIDTYPE=devname IDNAME=/dev/sdb\n",
    )
}

/// A healthy SNO at `openshift::OCP_VERSION` with the objects Prep and pre-pivot read, and
/// the node's admin kubeconfig.
pub async fn prepare_cluster(cp: &ControlPlane, client: &Client, root: &Path) -> Result<()> {
    openshift::install(cp).await?;
    openshift::healthy_sno(client).await?;
    openshift::set_node_ip(client, NODE_IP).await?;
    prepenv::crypto_fixtures(client).await?;
    prepenv::install_config(client, CLUSTER_NAME, BASE_DOMAIN, MACHINE_NETWORK).await?;
    prepenv::admin_kubeconfig(cp, root)
}

/// How the node came up.
pub struct Booted {
    pub units: units::Boot,
    /// Post-pivot enabled the kubelet: the operator's pod would run now.
    pub kubelet: bool,
}

/// Boot the simulated node at `root` into its default deployment (see the module header).
/// The caller stops the operator before and starts it after, when `kubelet` says so.
pub async fn boot(root: &Path, cp: &mut ControlPlane) -> Result<Booted> {
    boot_into(root, cp, None).await
}

/// As [`boot`], booting the first deployment of stateroot `chosen` when given (see
/// `reboot::complete_into`).
pub async fn boot_into(root: &Path, cp: &mut ControlPlane, chosen: Option<&str>) -> Result<Booted> {
    crate::reboot::complete_into(root, cp, chosen).await?;
    // recert made the seed's admin kubeconfig valid for this cluster.
    prepenv::admin_kubeconfig(cp, root)?;
    let conf = root.join("lca-sim/containers-storage.conf");
    let env = vec![("CONTAINERS_STORAGE_CONF".to_string(), conf.display().to_string())];
    let r = root.to_path_buf();
    let max_runs = unit_max_runs(root);
    let units = tokio::task::spawn_blocking(move || units::boot(&r, &env, max_runs))
        .await
        .map_err(|e| crate::Error::Setup(format!("the boot task failed: {e}")))??;
    // A wants link names its unit by the node's path: test the link itself.
    let kubelet = root
        .join("etc/systemd/system/multi-user.target.wants/kubelet.service")
        .is_symlink();
    Ok(Booted { units, kubelet })
}

/// How many times a boot starts a failing `Restart=on-failure` oneshot: 3, or the number in
/// the node's `lca-sim/unit-max-runs`. systemd restarts such a unit for as long as it fails
/// (`RestartSec` keeps it under the start limit); a test that kills the unit at each of its
/// steps raises the bound.
fn unit_max_runs(root: &Path) -> u32 {
    std::fs::read_to_string(root.join(UNIT_MAX_RUNS))
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(3)
}

/// The node file that overrides [`unit_max_runs`].
pub const UNIT_MAX_RUNS: &str = "lca-sim/unit-max-runs";

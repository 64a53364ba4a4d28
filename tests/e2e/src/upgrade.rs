//! The Upgrade environment: the Prep environment with the cluster living in the node — the
//! loopback etcd's data is the booted stateroot's `var/lib/etcd` — and a seed that carries a
//! seed cluster, plus what a real node has that the upgrade reads (kubelet certificates,
//! NetworkManager connections, SSH keys, the host-services peer). [`reboot`] is the
//! simulated reboot: the operator is killed, the node boots its default deployment, the
//! booted deployment's units run, and once post-pivot started the kubelet the operator comes
//! back with a fresh ServiceAccount token of the cluster it now sees.

use std::path::Path;
use std::time::{Duration, Instant};

use lca_testkit::controlplane::Options;
use lca_testkit::{Registry, hostpeer, images, openshift, prepenv, seednode::TargetNode, simnode, units};

use crate::prep::Env;
use crate::{Cluster, has};

/// The original cluster's hostname, node IP and SSH key, as pre-pivot exports them.
pub const NODE_IP: &str = "192.168.1.20";
pub const CLUSTER_NAME: &str = "target";
pub const BASE_DOMAIN: &str = "example.org";
pub const MACHINE_NETWORK: &str = "192.168.1.0/24";
pub const SSH_KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE2e2e core@target";

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// A node and cluster ready for Prep then Upgrade to `version`; the operator runs with
/// `operator_args`.
pub async fn env(version: &str, operator_args: &[&str]) -> Env {
    let target = TargetNode::build().expect("simulated SNO node");
    let root = target.root().to_path_buf();
    simnode::configure(&root).expect("node storage");
    hostpeer::install(&root).expect("host-services peer");
    prepenv::kubelet_certs(&root.join("var"), (2027, 1, 1), (2027, 3, 1)).expect("kubelet certs");
    write(
        &root.join("etc/NetworkManager/system-connections/br-ex.nmconnection"),
        "[connection]\nid=br-ex\n",
    );
    write(&root.join("home/core/.ssh/authorized_keys.d/ignition"), SSH_KEY);
    write(&root.join("etc/ssh/ssh_host_ed25519_key"), "PRIVATE host key\n");
    write(
        &root.join("etc/ssh/ssh_host_ed25519_key.pub"),
        "ssh-ed25519 HOSTKEY\n",
    );
    write(
        &root.join("etc/lvm/devices/system.devices"),
        "VERSION=1.1.1\nIDTYPE=devname IDNAME=/dev/sdb\n",
    );
    let options = Options {
        etcd_data_dir: Some(root.join("var/lib/etcd")),
        ..Default::default()
    };
    let mut c = Cluster::start_with(options).await;
    openshift::install(&c.cp).await.expect("OpenShift CRDs");
    openshift::healthy_sno(&c.client).await.expect("healthy SNO");
    openshift::set_node_ip(&c.client, NODE_IP).await.expect("node IP");
    prepenv::crypto_fixtures(&c.client)
        .await
        .expect("crypto fixtures");
    prepenv::install_config(&c.client, CLUSTER_NAME, BASE_DOMAIN, MACHINE_NETWORK)
        .await
        .expect("install-config");
    prepenv::admin_kubeconfig(&c.cp, &root).expect("node admin kubeconfig");
    c.target = Some(target);
    let registry = Registry::start().expect("registry");
    let imgs: Vec<String> = (0..2)
        .map(|i| {
            images::push_test_image(&registry, &format!("ocp/app{i}:v1"), &format!("app {i}")).expect("image")
        })
        .collect();
    let seed = images::push_seed_with_cluster(&registry, version, &imgs, false)
        .await
        .expect("seed with a seed cluster");
    c.start_operator_with(operator_args);
    c.wait_ibu("Idle", Duration::from_secs(30), |i| has(i, "Idle", "True"))
        .await;
    Env {
        c,
        seed,
        images: imgs,
        registry,
    }
}

/// The path of the simulated node's pending reboot request.
pub fn reboot_request(root: &Path) -> std::path::PathBuf {
    root.join("lca-sim/reboot-request.json")
}

/// Wait (at most `limit`) until the operator asked the node to reboot.
pub async fn wait_reboot_request(c: &Cluster, limit: Duration) {
    let start = Instant::now();
    while !reboot_request(c.node_root()).exists() {
        if start.elapsed() > limit {
            panic!("no reboot request within {limit:?}\n{}", c.operator_log_tail(60));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reboot the simulated node (see the module header); returns how its units ran.
pub async fn reboot(c: &mut Cluster) -> units::Boot {
    let root = c.node_root().to_path_buf();
    if let Some(op) = c.operator.take() {
        op.kill();
    }
    lca_testkit::reboot::complete(&root, &mut c.cp)
        .await
        .expect("the node reboots");
    // recert made the seed's admin kubeconfig valid for this cluster.
    prepenv::admin_kubeconfig(&c.cp, &root).expect("node admin kubeconfig");
    let conf = root.join("lca-sim/containers-storage.conf").display().to_string();
    let env = vec![
        ("CONTAINERS_STORAGE_CONF".to_string(), conf),
        ("RUST_LOG".to_string(), "info".to_string()),
    ];
    let r = root.clone();
    let boot = tokio::task::spawn_blocking(move || units::boot(&r, &env, 3))
        .await
        .expect("boot task")
        .expect("units run");
    // A wants link names its unit by the node's path: test the link itself.
    if root
        .join("etc/systemd/system/multi-user.target.wants/kubelet.service")
        .is_symlink()
    {
        c.start_operator();
    }
    boot
}

//! The Upgrade environment of the e2e tests: the Prep environment on a node and cluster of
//! `lca_testkit::upgradeenv` (the cluster lives in the node), with a seed that carries a seed
//! cluster, and [`reboot`]: the operator is killed, the node boots its default deployment,
//! and once post-pivot started the kubelet the operator comes back with a fresh
//! ServiceAccount token of the cluster it now sees.

use std::time::{Duration, Instant};

use lca_testkit::controlplane::Options;
use lca_testkit::{Registry, images, seednode::TargetNode, upgradeenv};

pub use lca_testkit::upgradeenv::{BASE_DOMAIN, CLUSTER_NAME, MACHINE_NETWORK, NODE_IP, SSH_KEY};

use crate::Cluster;
use crate::prep::Env;

/// A node and cluster ready for Prep then Upgrade to `version`; the operator runs with
/// `operator_args`.
pub async fn env(version: &str, operator_args: &[&str]) -> Env {
    let target = TargetNode::build().expect("simulated SNO node");
    let root = target.root().to_path_buf();
    upgradeenv::prepare_node(&root).expect("node files");
    let options = Options {
        etcd_data_dir: Some(root.join("var/lib/etcd")),
        ..Default::default()
    };
    let mut c = Cluster::start_with(options).await;
    upgradeenv::prepare_cluster(&c.cp, &c.client, &root)
        .await
        .expect("cluster objects");
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
    Env::started(c, seed, imgs, registry, operator_args).await
}

/// Wait (at most `limit`) until the operator asked the node to reboot.
pub async fn wait_reboot_request(c: &Cluster, limit: Duration) {
    let start = Instant::now();
    while !lca_testkit::reboot::requested(c.node_root()) {
        if start.elapsed() > limit {
            panic!("no reboot request within {limit:?}\n{}", c.operator_log_tail(60));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reboot the simulated node into its default deployment (see the module header); returns
/// how its oneshot units ran: (unit, runs, succeeded in the end).
pub async fn reboot(c: &mut Cluster) -> Vec<(String, u32, bool)> {
    reboot_into(c, None, true).await
}

/// Reboot into the first deployment of stateroot `chosen` (the bootloader's choice) or the
/// default; the operator comes back when the kubelet is enabled and `operator` says so (a
/// test of the init monitor keeps it away).
pub async fn reboot_into(c: &mut Cluster, chosen: Option<&str>, operator: bool) -> Vec<(String, u32, bool)> {
    let root = c.node_root().to_path_buf();
    if let Some(op) = c.operator.take() {
        op.kill();
    }
    c.units = None;
    let booted = upgradeenv::boot_into(&root, &mut c.cp, chosen)
        .await
        .unwrap_or_else(|e| panic!("the node boots: {e}"));
    if booted.kubelet && operator {
        c.start_operator();
    }
    let oneshots = booted.units.oneshots.clone();
    c.units = Some(booted.units);
    oneshots
}

/// Why the node was last asked to reboot (`upgrade`, `rollback`), if it was.
pub fn reboot_rationale(c: &Cluster) -> Option<String> {
    let paths = lca_hostops::HostPaths::new(c.node_root());
    lca_hostops::sim::read_reboot_request(&paths)
        .ok()
        .flatten()
        .map(|r| r.rationale)
}

/// Wait (at most `limit`) until the node was asked to reboot for a rollback.
pub async fn wait_rollback_request(c: &Cluster, limit: Duration) {
    let start = Instant::now();
    while reboot_rationale(c).as_deref() != Some("rollback") {
        if start.elapsed() > limit {
            panic!(
                "no rollback requested within {limit:?}\n{}\n--- units ---\n{}",
                c.operator_log_tail(60),
                unit_logs(c)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The logs of the units the node ran, for failure messages.
pub fn unit_logs(c: &Cluster) -> String {
    let dir = c.node_root().join("lca-sim/units");
    let mut out = String::new();
    for name in ["installation-configuration.service", "lca-init-monitor.service"] {
        let text = std::fs::read_to_string(dir.join(format!("{name}.log"))).unwrap_or_default();
        out.push_str(&format!("--- {name} ---\n{text}\n"));
    }
    out
}

/// The stateroots of the node's deployments, the default first.
pub fn stateroots(c: &Cluster) -> Vec<String> {
    lca_testkit::reboot::deployments(c.node_root())
        .expect("ostree admin status")
        .into_iter()
        .map(|d| d.stateroot)
        .collect()
}

/// Annotate the IBU (`key=value`).
pub fn annotate(c: &Cluster, key: &str, value: &str) {
    let (ok, _, err) = c.kubectl(&[
        "annotate",
        "--overwrite",
        "ibu",
        "upgrade",
        &format!("{key}={value}"),
    ]);
    assert!(ok, "{err}");
}

/// Make the node's host service `tool` fail (or work again) from now on.
pub fn fail_tool(c: &Cluster, tool: &str, fail: bool) {
    let flag = c.node_root().join("lca-sim/fail").join(tool);
    if fail {
        std::fs::create_dir_all(flag.parent().expect("dir")).expect("fail dir");
        std::fs::write(&flag, "").expect("fail flag");
    } else {
        let _ = std::fs::remove_file(&flag);
    }
}

/// The stateroot the simulated node booted.
pub fn booted(c: &Cluster) -> String {
    let paths = lca_hostops::HostPaths::new(c.node_root());
    lca_hostops::sim::read_state(&paths)
        .expect("node state")
        .booted
        .expect("a booted deployment")
        .stateroot
}

/// Wait (at most `limit`) until the node's unit logs contain `needle`.
pub async fn wait_unit_log(c: &Cluster, needle: &str, limit: Duration) {
    let start = Instant::now();
    while !unit_logs(c).contains(needle) {
        if start.elapsed() > limit {
            panic!(
                "no {needle:?} in the unit logs within {limit:?}\n{}",
                unit_logs(c)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Wait (2 min) for UpgradeCompleted and require it True with upstream's message; otherwise
/// show the UpgradeInProgress condition and the operator's log.
pub async fn wait_upgrade_completed(c: &Cluster) -> lca_api::ImageBasedUpgrade {
    let ibu = c
        .wait_ibu("UpgradeCompleted", Duration::from_secs(120), |i| {
            crate::condition(i, "UpgradeCompleted").is_some()
        })
        .await;
    assert_eq!(
        crate::condition(&ibu, "UpgradeCompleted"),
        Some(("True".into(), "Completed".into(), "Upgrade completed".into())),
        "{:?}\n{}",
        crate::condition(&ibu, "UpgradeInProgress"),
        c.operator_log_tail(60)
    );
    ibu
}

/// Wait (2 min) for RollbackCompleted and require it True with upstream's message; otherwise
/// show the RollbackInProgress condition.
pub async fn wait_rollback_completed(c: &Cluster) -> lca_api::ImageBasedUpgrade {
    let ibu = c
        .wait_ibu("RollbackCompleted", Duration::from_secs(120), |i| {
            crate::condition(i, "RollbackCompleted").is_some()
        })
        .await;
    assert_eq!(
        crate::condition(&ibu, "RollbackCompleted"),
        Some(("True".into(), "Completed".into(), "Rollback completed".into())),
        "{:?}",
        crate::condition(&ibu, "RollbackInProgress")
    );
    ibu
}

/// Wait (2 min) until the Rollback failed for good (RollbackCompleted False/Failed, no next
/// stage); the IBU and the message.
pub async fn wait_rollback_failed(c: &Cluster) -> (lca_api::ImageBasedUpgrade, String) {
    let ibu = c
        .wait_ibu("RollbackCompleted", Duration::from_secs(120), |i| {
            crate::condition(i, "RollbackCompleted").is_some()
        })
        .await;
    let (status, reason, message) = crate::condition(&ibu, "RollbackCompleted").expect("the condition");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "Failed"));
    assert!(ibu.status.as_ref().expect("status").valid_next_stages.is_empty());
    (ibu, message)
}

/// Wait (2 min) until the Upgrade failed; its message (UpgradeInProgress).
pub async fn wait_upgrade_failed(c: &Cluster) -> (lca_api::ImageBasedUpgrade, String) {
    let ibu = c
        .wait_ibu("Upgrade failed", Duration::from_secs(120), |i| {
            crate::condition(i, "UpgradeInProgress").is_some_and(|c| c.1 == "Failed")
        })
        .await;
    let message = crate::condition(&ibu, "UpgradeInProgress")
        .map(|c| c.2)
        .unwrap_or_default();
    (ibu, message)
}

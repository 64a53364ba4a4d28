//! `lca-cli init-monitor` on a simulated node that booted the new stateroot (a real ostree
//! sysroot with the original `rhcos` and the new `rhcos_4.18.0`): the monitor rolls back
//! when its time runs out, with upstream's message; a second monitor is refused and a
//! restarted one keeps the first one's deadline; a garbled configuration keeps the watchdog;
//! `--exec-stop-post` rolls back on a failed unit; a missing saved CR on the original
//! stateroot is rebuilt so the failure still shows there.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{lca_cli, lca_cli_bin, sh};
use lca_testkit::seednode::TargetNode;
use serde_json::Value;

const NEW: &str = "rhcos_4.18.0";

/// The node after the pivot, with `config` as the frozen auto-rollback configuration and
/// (when `saved`) the original stateroot's copy of the CR as pre-pivot leaves it.
fn pivoted(config: &str, saved: bool) -> TargetNode {
    let node = TargetNode::build().unwrap();
    let root = node.root();
    let sys = format!("--sysroot={}", root.join("sysroot").display());
    sh(&["ostree", "admin", "os-init", &sys, NEW]);
    sh(&[
        "ostree",
        "admin",
        "deploy",
        &sys,
        &format!("--os={NEW}"),
        "rhcos/4.16",
    ]);
    lca_testkit::reboot::switch(root, None).unwrap();
    // The seed's unit; the operator removes it when the upgrade completed.
    let units = root.join("etc/systemd/system");
    std::fs::create_dir_all(&units).unwrap();
    std::fs::write(units.join("lca-init-monitor.service"), "[Service]\n").unwrap();
    std::fs::create_dir_all(root.join("var/lib/lca")).unwrap();
    std::fs::write(root.join("var/lib/lca/autorollback_config.json"), config).unwrap();
    if saved {
        let old = root.join("sysroot/ostree/deploy/rhcos/var/lib/lca");
        std::fs::create_dir_all(&old).unwrap();
        let ibu = serde_json::json!({
            "apiVersion": "lca.openshift.io/v1", "kind": "ImageBasedUpgrade",
            "metadata": {"name": "upgrade", "generation": 3},
            "spec": {"stage": "Upgrade", "seedImageRef": {"version": "4.18.0", "image": "r/s:1"}},
            "status": {"conditions": [{"type": "UpgradeInProgress", "status": "False", "reason": "Failed",
                "message": "Uncontrolled rollback", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
        });
        std::fs::write(old.join("ibu.json"), ibu.to_string()).unwrap();
    }
    node
}

fn monitor(root: &Path) -> std::process::Child {
    Command::new(lca_cli_bin())
        .args(["--host-root"])
        .arg(root)
        .args(["init-monitor", "--monitor", "--simulated"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The original stateroot's saved CR: its UpgradeInProgress message and validNextStages.
fn saved_failure(root: &Path) -> (String, Value) {
    let text = std::fs::read(root.join("sysroot/ostree/deploy/rhcos/var/lib/lca/ibu.json")).unwrap();
    let ibu: Value = serde_json::from_slice(&text).unwrap();
    let c = ibu["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "UpgradeInProgress")
        .unwrap()
        .clone();
    assert_eq!(c["reason"], "Failed");
    (
        c["message"].as_str().unwrap().to_string(),
        ibu["status"]["validNextStages"].clone(),
    )
}

fn rolled_back(root: &Path) -> bool {
    let request = lca_hostops::sim::read_reboot_request(&lca_hostops::HostPaths::new(root)).unwrap();
    let default = lca_testkit::reboot::default_deployment(root).unwrap();
    request.is_some_and(|r| r.rationale == "rollback") && default.stateroot == "rhcos"
}

#[test]
fn a_monitor_out_of_time_rolls_back_a_second_is_refused_and_a_restart_keeps_the_deadline() {
    let node = pivoted(r#"{"monitor_enabled":true,"monitor_timeout":6}"#, true);
    let root = node.root();
    lca_cli_bin();
    let start = Instant::now();
    let mut first = monitor(root);
    std::thread::sleep(Duration::from_millis(500));
    let second = monitor(root).wait_with_output().unwrap();
    assert!(!second.status.success());
    assert!(
        String::from_utf8_lossy(&second.stderr).contains("another init monitor is already running"),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    std::thread::sleep(Duration::from_secs(2));
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(!rolled_back(root), "nothing before the deadline");
    // Restarted (as after a crash): the deadline stays 6 s after the first start.
    let restarted = monitor(root).wait_with_output().unwrap();
    let took = start.elapsed();
    assert!(
        restarted.status.success(),
        "{}",
        String::from_utf8_lossy(&restarted.stderr)
    );
    // Whole seconds on disk: at 5 s or later; a clock restarted at 2.5 s would end past 8.5 s.
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(8),
        "{took:?}"
    );
    assert!(
        rolled_back(root),
        "{}",
        String::from_utf8_lossy(&restarted.stderr)
    );
    let (message, next) = saved_failure(root);
    assert_eq!(message, "Rollback due to LCA Init Monitor timeout, after 6s");
    assert_eq!(next, serde_json::json!(["Idle"]));
    assert_eq!(
        std::fs::read_to_string(root.join("var/lib/lca/workspace/auto-rollback")).unwrap(),
        message
    );
}

#[test]
fn a_garbled_config_keeps_the_watchdog_and_a_failed_unit_rolls_back_without_a_saved_cr() {
    let node = pivoted("{\"monitor_enabled\": tru", false);
    let root = node.root();
    let mut m = monitor(root);
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        m.try_wait().unwrap().is_none(),
        "the monitor runs on the defaults"
    );
    m.kill().unwrap();
    let out = m.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("unreadable auto-rollback configuration"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stop_post = |result: &str| {
        lca_cli(
            root,
            &["init-monitor", "--exec-stop-post", "config", "--simulated"],
            &[("SERVICE_RESULT", result)],
        )
    };
    assert!(stop_post("success").status.success());
    assert!(!rolled_back(root), "a unit that succeeded changes nothing");
    let out = stop_post("exit-code");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(rolled_back(root));
    let (message, next) = saved_failure(root);
    assert_eq!(message, "Rollback due to service-unit failure: component config");
    assert_eq!(next, serde_json::json!(["Idle"]));
}

#[test]
fn disabled_parts_do_nothing() {
    let node = pivoted(r#"{"monitor_timeout":1}"#, true);
    let root = node.root();
    let out = lca_cli(root, &["init-monitor", "--monitor", "--simulated"], &[]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("the init monitor is disabled"));
    let out = lca_cli(
        root,
        &["init-monitor", "--exec-stop-post", "postpivot", "--simulated"],
        &[("SERVICE_RESULT", "exit-code")],
    );
    assert!(out.status.success());
    assert!(!rolled_back(root));
    let (message, _) = saved_failure(root);
    assert_eq!(message, "Uncontrolled rollback", "the saved CR is untouched");
}

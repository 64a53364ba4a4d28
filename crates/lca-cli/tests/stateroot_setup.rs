//! `lca-cli stateroot-setup --simulated` against real tools: a seed packed by `lca-cli
//! create --simulated` and pushed to a loopback Distribution registry, installed on a
//! simulated target node whose sysroot is real ostree (Debian 2022.7, no `set-default`, so
//! the libostree reorder path runs). Checked with the real `ostree admin status`. Also what
//! every exit path leaves behind: success and failure release the work dir and the seed
//! pull secret (inside the workspace only); a crash leaves them for the abort cleanup
//! (`lca_hostops::stateroot_work::release_seed_work`), after which a re-run still works;
//! a frozen registry fails the pull step within its timeout; SIGTERM's grace (`grace`).

#![allow(clippy::unwrap_used)]

mod common;
#[path = "stateroot_setup/grace.rs"]
mod grace;

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{lca_cli, lca_cli_within, push_seed, signal, stderr};
use lca_testkit::Registry;
use lca_testkit::seednode::TargetNode;

const NEW: &str = "rhcos_4.17.0";
const ROLLBACK: &str =
    r#"{"monitor_enabled":true,"monitor_timeout":600,"enabled_components":{"config":true}}"#;

fn setup_args<'a>(image: &'a str, version: &'a str, status: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "stateroot-setup",
        "--simulated",
        "--image",
        image,
        "--version",
        version,
        "--status-file",
        status.to_str().unwrap(),
        "--autorollback-config-json",
        ROLLBACK,
    ];
    args.extend_from_slice(extra);
    args
}

fn setup(
    node: &TargetNode,
    image: &str,
    version: &str,
    status: &Path,
    env: &[(&str, &str)],
) -> std::process::Output {
    lca_cli(node.root(), &setup_args(image, version, status, &[]), env)
}

/// The operator's copy of the seed pull secret, in the node's LCA workspace.
fn workspace_secret(node: &TargetNode) -> PathBuf {
    let path = node.root().join("var/lib/lca/workspace/seed-pull-secret");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, r#"{"auths":{}}"#).unwrap();
    path
}

fn work_dir(node: &TargetNode) -> PathBuf {
    node.root().join("var/tmp/lca-stateroot-setup")
}

/// `(stateroot, <csum>.<serial>)` in `ostree admin status` order (index 0 = default).
fn deployments(node: &TargetNode) -> Vec<(String, String)> {
    node.ostree_status()
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("    "))
        .filter_map(|l| {
            let mut it = l.trim_start_matches(['*', ' ']).split_whitespace();
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect()
}

fn status_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(path).unwrap()).unwrap()
}

fn assert_installed(node: &TargetNode, seed_origin: &Path) {
    let deps = deployments(node);
    assert_eq!(deps.len(), 2, "{deps:?}");
    assert_eq!(
        deps[0],
        ("rhcos".to_string(), node.deployment.clone()),
        "booted stays the default: {deps:?}"
    );
    assert_eq!(deps[1].0, NEW, "{deps:?}");
    let root = node.root();
    let dep = root.join(format!("sysroot/ostree/deploy/{NEW}/deploy/{}", deps[1].1));

    // Kernel arguments: the seed's MachineConfig plus ibu=<version>, in the new BLS entry.
    let entries = root.join("sysroot/boot/loader/entries");
    let entry = fs::read_dir(&entries)
        .unwrap()
        .map(|e| fs::read_to_string(e.unwrap().path()).unwrap())
        .find(|t| t.contains(NEW))
        .unwrap();
    let options = entry.lines().find(|l| l.starts_with("options ")).unwrap();
    for k in ["ibu=4.17.0", "ip=dhcp", "console=ttyS0,115200n8"] {
        assert!(
            options.split_whitespace().any(|o| o == k),
            "{k} missing: {options}"
        );
    }

    // /etc: the seed's changes on top of the seed commit's defaults, deletions applied.
    assert_eq!(
        fs::read_to_string(dep.join("etc/foo.conf")).unwrap(),
        "setting=LOCAL\n"
    );
    assert_eq!(
        fs::read_to_string(dep.join("etc/local.conf")).unwrap(),
        "added=1\n"
    );
    assert!(!dep.join("etc/removed.conf").exists(), "etc.deletions applied");
    assert!(
        dep.join("usr/bin/hello").exists(),
        "the seed's commit is deployed"
    );

    // var unpacked into the stateroot, origin copied, auto-rollback config written.
    let var = root.join(format!("sysroot/ostree/deploy/{NEW}/var"));
    assert_eq!(
        fs::read_to_string(var.join("lib/kubelet/config.json")).unwrap(),
        "{\"auths\":{}}"
    );
    assert!(!var.join("lib/kubelet/pods/p1").exists(), "excluded by the seed");
    let origin = root.join(format!("sysroot/ostree/deploy/{NEW}/deploy/{}.origin", deps[1].1));
    let origin = fs::read_to_string(origin).unwrap();
    assert_eq!(
        origin,
        fs::read_to_string(seed_origin).unwrap(),
        "the seed's origin file"
    );
    assert!(origin.contains("refspec=rhcos/4.17"), "{origin}");
    assert_eq!(
        fs::read_to_string(var.join("lib/lca/autorollback_config.json")).unwrap(),
        ROLLBACK
    );

    // Hand-off files for precache; the work dir is gone.
    let list = fs::read_to_string(root.join("var/tmp/containers.list")).unwrap();
    assert!(list.contains("quay.io/openshift/a@sha256:1"), "{list}");
    assert!(
        fs::read_to_string(root.join("var/tmp/manifest.json"))
            .unwrap()
            .contains("4.17.0")
    );
    assert!(
        !root.join("var/tmp/lca-stateroot-setup").exists(),
        "work dir removed"
    );
}

#[test]
fn install_rerun_mismatch_and_crash_resume() {
    let registry = Registry::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (seed, image) = push_seed(registry.addr(), work.path());
    let status = work.path().join("status.json");
    let seed_origin = std::path::PathBuf::from(format!("{}.origin", seed.deployment_dir().display()));

    // Fresh install.
    let node = TargetNode::build().unwrap();
    common::lca_cli_bin();
    let started = std::time::Instant::now();
    let out = setup(&node, &image, "4.17.0", &status, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    eprintln!("stateroot-setup took {:?}", started.elapsed());
    assert_eq!(
        status_json(&status),
        serde_json::json!({"phase":"succeeded","step":"complete","message":"stateroot setup completed"})
    );
    assert_installed(&node, &seed_origin);
    let markers = node.root().join("var/lib/lca/workspace/stateroot-setup");
    assert!(markers.join("deploy.done").exists() && markers.join("complete.done").exists());

    // A re-run is a no-op: same deployments, same BLS entries.
    let before = (
        node.ostree_status().unwrap(),
        fs::read_dir(node.root().join("sysroot/boot/loader/entries"))
            .unwrap()
            .count(),
    );
    let out = setup(&node, &image, "4.17.0", &status, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("already completed"), "{}", stderr(&out));
    let after = (
        node.ostree_status().unwrap(),
        fs::read_dir(node.root().join("sysroot/boot/loader/entries"))
            .unwrap()
            .count(),
    );
    assert_eq!(before, after);
    assert_installed(&node, &seed_origin);

    // Version mismatch: exact message, status failed, nothing deployed.
    let other = TargetNode::build().unwrap();
    let out = setup(&other, &image, "4.18.0", &status, &[]);
    assert_eq!(out.status.code(), Some(1));
    let msg = "version specified in seed image (4.17.0) differs from version in spec (4.18.0)";
    assert!(stderr(&out).contains(msg), "{}", stderr(&out));
    assert_eq!(
        status_json(&status),
        serde_json::json!({"phase":"failed","step":"check-version","message":msg})
    );
    assert_eq!(deployments(&other).len(), 1);
    assert!(!other.root().join("sysroot/ostree/deploy/rhcos_4.18.0").exists());

    // Crashes right after the work of a step, before its marker, resume to the same result.
    // After `deploy` the new stateroot is (on this ostree) briefly the default: the re-run
    // must reuse that deployment and put the booted one back in front.
    let node = TargetNode::build().unwrap();
    for step in ["extract-ostree", "deploy", "etc"] {
        let out = setup(
            &node,
            &image,
            "4.17.0",
            &status,
            &[(
                "FAILPOINTS",
                format!("stateroot-setup/{step}=return(kill)").as_str(),
            )],
        );
        assert_eq!(out.status.signal(), Some(9), "{step}: {}", stderr(&out));
        let s = status_json(&status);
        assert_eq!(
            (s["phase"].as_str(), s["step"].as_str()),
            (Some("running"), Some(step))
        );
        assert!(!markers_of(&node).contains(&format!("{step}.done")), "{step}");
        if step == "deploy" {
            assert_eq!(deployments(&node)[0].0, NEW, "crashed before restore-default");
        }
    }
    let out = setup(&node, &image, "4.17.0", &status, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(status_json(&status)["phase"], "succeeded");
    assert_installed(&node, &seed_origin);
}

fn markers_of(node: &TargetNode) -> Vec<String> {
    fs::read_dir(node.root().join("var/lib/lca/workspace/stateroot-setup"))
        .map(|d| d.map(|e| e.unwrap().file_name().into_string().unwrap()).collect())
        .unwrap_or_default()
}

#[test]
fn every_exit_path_but_a_crash_releases_the_seed_and_the_pull_secret() {
    let registry = Registry::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (_seed, image) = push_seed(registry.addr(), work.path());
    let status = work.path().join("status.json");

    // Failure after the pull (version check): the unpacked seed and the secret are gone.
    let node = TargetNode::build().unwrap();
    let secret = workspace_secret(&node);
    let auth = ["--authfile", secret.to_str().unwrap()];
    let out = lca_cli(node.root(), &setup_args(&image, "4.18.0", &status, &auth), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(status_json(&status)["step"], "check-version");
    assert!(
        !work_dir(&node).exists(),
        "the unpacked seed stayed after a failure"
    );
    assert!(!secret.exists(), "the pull secret stayed after a failure");

    // Success: the same.
    let secret = workspace_secret(&node);
    let auth = ["--authfile", secret.to_str().unwrap()];
    let out = lca_cli(node.root(), &setup_args(&image, "4.17.0", &status, &auth), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!work_dir(&node).exists());
    assert!(!secret.exists(), "the pull secret stayed after success");

    // An auth file outside the workspace (the kubelet's) is never removed.
    let other = TargetNode::build().unwrap();
    let kubelet = other.root().join("var/lib/kubelet/config.json");
    fs::create_dir_all(kubelet.parent().unwrap()).unwrap();
    fs::write(&kubelet, r#"{"auths":{}}"#).unwrap();
    let auth = ["--authfile", kubelet.to_str().unwrap()];
    let out = lca_cli(other.root(), &setup_args(&image, "4.18.0", &status, &auth), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let out = lca_cli(other.root(), &setup_args(&image, "4.17.0", &status, &auth), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(kubelet.exists(), "the kubelet's pull secret was removed");

    // A crash leaves the work for the abort cleanup; after it, a re-run still succeeds
    // (the markers of the removed work went with it).
    let node = TargetNode::build().unwrap();
    let secret = workspace_secret(&node);
    let auth = ["--authfile", secret.to_str().unwrap()];
    let crash = [("FAILPOINTS", "stateroot-setup/pull-local=return(kill)")];
    let out = lca_cli(node.root(), &setup_args(&image, "4.17.0", &status, &auth), &crash);
    assert_eq!(out.status.signal(), Some(9), "{}", stderr(&out));
    assert!(work_dir(&node).join("ostree").is_dir() && secret.exists());
    let exec = lca_hostops::LocalExecutor::new(node.root());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(lca_hostops::stateroot_work::release_seed_work(
        &exec,
        Some(&image),
    ))
    .unwrap();
    assert!(!work_dir(&node).exists());
    let out = lca_cli(node.root(), &setup_args(&image, "4.17.0", &status, &auth), &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(status_json(&status)["phase"], "succeeded");
    assert!(!work_dir(&node).exists() && !secret.exists());
}

#[test]
fn a_frozen_registry_fails_the_pull_step_within_the_read_timeout() {
    let registry = Registry::start().unwrap();
    let work = tempfile::tempdir().unwrap();
    let (_seed, image) = push_seed(registry.addr(), work.path());
    let status = work.path().join("status.json");
    let node = TargetNode::build().unwrap();
    let secret = workspace_secret(&node);
    signal(registry.pid(), "STOP");

    let extra = [
        "--authfile",
        secret.to_str().unwrap(),
        "--registry-read-timeout",
        "2s",
    ];
    common::lca_cli_bin();
    let started = Instant::now();
    let out = lca_cli_within(
        node.root(),
        &setup_args(&image, "4.17.0", &status, &extra),
        &[],
        Duration::from_secs(120),
    );
    let took = started.elapsed();
    signal(registry.pid(), "CONT");
    eprintln!("frozen registry: stateroot-setup failed after {took:?}");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let message = format!(
        "registry {} is unreachable while reading the manifest: no response within 2 s (read timeout)",
        registry.addr()
    );
    assert_eq!(
        status_json(&status),
        serde_json::json!({"phase":"failed","step":"pull","message":message})
    );
    assert!(took < Duration::from_secs(2 * 2 + 10), "{took:?}");
    assert!(!work_dir(&node).exists() && !secret.exists());
    assert_eq!(deployments(&node).len(), 1, "nothing deployed");
}

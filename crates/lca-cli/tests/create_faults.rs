//! `lca-cli create` failing after it stopped the seed cluster (spec §8.5 step 12): whatever
//! breaks, the seed's units are removed, the work dirs go, the certificates are given back
//! when an expiry started, kubelet is enabled and started again last, and the message says
//! what broke. The host services are the host-services test peer's; the registry is real.

#![allow(clippy::unwrap_used)]

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::seed::assert_cluster_given_back;
use lca_seed::Credentials;
use lca_testkit::seednode::SeedNode;
use lca_testkit::{Registry, hostpeer};

fn create(node: &SeedNode, image: &str, authfile: &Path, extra: &[&str]) -> Command {
    let mut cmd =
        Command::new(lca_testkit::assets::workspace_binary("lca-cli").expect("the lca-cli test build"));
    cmd.arg("--host-root")
        .arg(node.root())
        .args(["create", "--simulated", "--image", image, "--authfile"])
        .arg(authfile)
        .args(extra);
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn setup(registry: &Registry) -> (SeedNode, tempfile::TempDir, std::path::PathBuf, String) {
    let node = SeedNode::build(64).unwrap();
    let work = tempfile::tempdir().unwrap();
    let authfile = work.path().join("auth.json");
    fs::write(&authfile, registry.auth_json()).unwrap();
    let image = format!("{}/seed/sno:4.17.0", registry.addr());
    (node, work, authfile, image)
}

/// kubelet that does not stop within the timeout: create gives up before touching etcd
/// (no recert, nothing to restore) and starts kubelet again.
#[test]
fn kubelet_that_does_not_stop_in_time() {
    let registry = Registry::start().unwrap();
    let (node, _work, authfile, image) = setup(&registry);
    fs::create_dir_all(node.root().join("lca-sim/hang")).unwrap();
    fs::write(node.root().join("lca-sim/hang/kubelet.service"), "").unwrap();
    let started = std::time::Instant::now();
    let out = create(&node, &image, &authfile, &["--stop-timeout", "2"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("stopping kubelet: command `systemctl stop kubelet.service` timed out after 2 s"),
        "{err}"
    );
    // Far below the 600 s default the flag replaced, with room for a loaded machine.
    assert!(started.elapsed().as_secs() < 300, "{:?}", started.elapsed());
    assert_eq!(hostpeer::recert_configs(node.root()), Vec::<String>::new());
    assert_cluster_given_back(node.root());
    assert!(!node.root().join("var/tmp/checks").exists());
}

/// A recert image that cannot be pulled: the expiry fails, and since it had started, the
/// restoration is tried too; it fails the same way, so the keys and the step markers stay
/// (a second run resumes and restores with them) and the message names the pull.
#[test]
fn recert_image_that_cannot_be_pulled() {
    let registry = Registry::start().unwrap();
    let (node, _work, authfile, image) = setup(&registry);
    fs::create_dir_all(node.root().join("lca-sim/fail")).unwrap();
    fs::write(node.root().join("lca-sim/fail/recert"), "").unwrap();
    let out = create(&node, &image, &authfile, &[]).output().unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("RECERT_CONFIG=/var/tmp/backup/recert_config.json"),
        "{err}"
    );
    assert!(err.contains("reading manifest: unauthorized"), "{err}");
    assert!(
        err.contains("the seed cluster's certificates could not be restored after the expiry"),
        "{err}"
    );
    assert_eq!(
        hostpeer::recert_configs(node.root()),
        [
            "/var/tmp/backup/recert_config.json",
            "/var/tmp/backupCertsDir/recert_restore_config.json"
        ]
    );
    assert_cluster_given_back(node.root());
    let root = node.root();
    assert!(
        root.join("var/tmp/backupCertsDir/kubeadmin-password-hash.txt")
            .exists()
    );
    assert!(root.join("var/tmp/checks/recert.started").exists());
    assert!(!root.join("var/tmp/checks/recert.done").exists());
    // The seed files went with the backup dir: no marker may say a step's file is there.
    assert!(!root.join("var/tmp/checks/containers-list.done").exists());
    assert!(!root.join("var/tmp/checks/manifest.done").exists());

    // The image is reachable again: the second run expires, packs, pushes and restores,
    // and the seed it pushes is complete.
    fs::remove_file(root.join("lca-sim/fail/recert")).unwrap();
    let out = create(&node, &image, &authfile, &[]).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(hostpeer::recert_configs(node.root()).len(), 4);
    assert!(!root.join("var/tmp/backupCertsDir").exists());
    assert!(!root.join("var/tmp/checks").exists());
    let reference = lca_seed::parse_reference(&image).unwrap();
    let reg = lca_seed::SeedRegistry::new(&reference, &Credentials::Anonymous, true);
    let work = tempfile::tempdir().unwrap();
    let pulled = common::seed::pull_valid_seed(&reg, &reference, &node.deployment, work.path());
    tokio::runtime::Runtime::new().unwrap().block_on(pulled);
}

/// Credentials revoked between the push-access check and the push: everything is packed,
/// the push fails with 401 after packing, the certificates are restored, kubelet restarts
/// and the message says the registry refused the credentials; the tag never appears.
#[test]
fn push_refused_after_packing() {
    let mut registry = Registry::start_with_auth("lca", "s3cret").unwrap();
    let (node, _work, authfile, image) = setup(&registry);
    // The peer holds the expiry's recert run: the credentials change while it waits.
    let recert = "RECERT_CONFIG=/var/tmp/backup/recert_config.json";
    let hold = node.root().join("lca-sim/hold");
    fs::create_dir_all(&hold).unwrap();
    fs::write(hold.join("podman"), recert).unwrap();
    let child = create(&node, &image, &authfile, &[])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !hostpeer::calls(node.root()).iter().any(|c| c.contains(recert)) {
        assert!(std::time::Instant::now() < deadline, "create never ran recert");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    registry.change_password("n3w-s3cret").unwrap();
    fs::remove_file(hold.join("podman")).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("401"), "{err}");
    assert!(!err.contains("s3cret"), "password leaked: {err}");
    assert_eq!(
        hostpeer::recert_configs(node.root()).len(),
        2,
        "expired, then restored"
    );
    assert_cluster_given_back(node.root());
    assert!(!node.root().join("var/tmp/backupCertsDir").exists());
    assert!(!node.root().join("var/tmp/checks").exists());
}

/// A seedAuth without an entry for the seed's registry: refused before the node is touched,
/// saying that no credentials were there (not that they were rejected).
#[test]
fn seed_auth_without_the_registry() {
    let registry = Registry::start_with_auth("lca", "s3cret").unwrap();
    let (node, work, _authfile, image) = setup(&registry);
    let other = work.path().join("other.json");
    fs::write(&other, Credentials::auth_json("quay.io", "u", "p")).unwrap();
    let out = create(&node, &image, &other, &[]).output().unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    let r = registry.addr();
    assert!(
        err.contains(&format!(
            "registry {r} requires credentials and the auth file (the seedgen Secret's seedAuth) \
             has none for it: add an entry for {r}"
        )),
        "{err}"
    );
    assert_eq!(
        hostpeer::calls(node.root()),
        Vec::<String>::new(),
        "the node untouched"
    );
}

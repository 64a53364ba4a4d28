//! Checks shared by the `create` tests: the seed cluster given back after a create ended,
//! and a pushed seed that Prep would accept.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use lca_hostops::archive;
use lca_seed::SeedRegistry;
use lca_seed::checks::{ClusterFacts, check_seed_labels};
use lca_seed::registry::{Reference, SeedImageInfo};
use lca_testkit::hostpeer;

/// The seed cluster is back: kubelet enabled and started as the last host command, the
/// seed's units disabled and deleted, no backup, blobs or seed data left.
pub fn assert_cluster_given_back(root: &Path) {
    let calls = hostpeer::calls(root);
    assert_eq!(
        calls.last().map(String::as_str),
        Some("systemctl enable kubelet.service --now"),
        "{calls:#?}"
    );
    for unit in ["installation-configuration.service", "lca-init-monitor.service"] {
        assert!(
            calls.contains(&format!("systemctl disable --now {unit}")),
            "{calls:#?}"
        );
        assert!(!root.join("etc/systemd/system").join(unit).exists(), "{unit}");
        assert!(
            !root
                .join("etc/systemd/system/multi-user.target.wants")
                .join(unit)
                .is_symlink()
        );
    }
    for dir in ["var/tmp/backup", "var/tmp/seed-blobs", "var/seed_data"] {
        assert!(!root.join(dir).exists(), "{dir} left behind");
    }
}

/// Prep's side of a seed made from a `SeedNode` whose deployment is `deployment`: the labels
/// pass the §5.2 checks as a 4.17.0 seed, one layer, pulled by digest into `work/seed` with
/// exactly the files of seed format v4, and its `ostree.tgz` (unpacked into `work/repo`) a
/// repo that `ostree fsck` accepts, holding the node's commit. Returns the inspection and
/// the unpacked seed dir.
pub async fn pull_valid_seed(
    reg: &SeedRegistry,
    image: &Reference,
    deployment: &str,
    work: &Path,
) -> (SeedImageInfo, PathBuf) {
    let info = reg.inspect(image).await.unwrap();
    let seed = check_seed_labels(&info.labels, &ClusterFacts::default()).unwrap();
    assert_eq!(seed.seed_cluster_ocp_version, "4.17.0");
    assert_eq!(info.layers.len(), 1);

    let target = work.join("seed");
    lca_seed::pull_and_unpack(reg, image, &target).await.unwrap();
    let mut names: Vec<String> = fs::read_dir(&target)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let origin = format!("ostree-{deployment}.origin");
    let mut expected = vec![
        "containers.list",
        "etc.deletions",
        "etc.tgz",
        "lca-cli",
        "manifest.json",
        "mco-currentconfig.json",
        &origin,
        "ostree.tgz",
        "recert_config.json",
        "rpm-ostree.json",
        "var.tgz",
    ];
    expected.sort();
    assert_eq!(names, expected);

    let repo = work.join("repo");
    fs::create_dir(&repo).unwrap();
    let file = fs::File::open(target.join("ostree.tgz")).unwrap();
    archive::extract_tar_gz(file, &repo, &archive::Options::default()).unwrap();
    let log = Command::new("ostree")
        .arg(format!("--repo={}", repo.display()))
        .args(["log", "rhcos/4.17"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&log.stdout).contains("417.94.sim"),
        "ostree repo usable after round trip"
    );
    assert!(
        Command::new("ostree")
            .arg(format!("--repo={}", repo.display()))
            .args(["fsck", "-q"])
            .status()
            .unwrap()
            .success()
    );
    (info, target)
}

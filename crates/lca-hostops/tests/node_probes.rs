//! Start-up probes and the reboot flow on a simulated node: the container storage mount target
//! through `systemctl` (this machine has systemctl but no systemd, so the "active" answer comes
//! from a peer script that prints the captured fixture), and a simulated reboot round trip.
#![allow(clippy::unwrap_used)]

mod common;

use common::{SimNode, make_tree, sh};
use lca_hostops::ostree::{self, DeployOptions};
use lca_hostops::reboot::{self, Rationale};
use lca_hostops::{Executor, LocalExecutor, sim, systemd};

#[tokio::test]
async fn container_storage_target_from_an_active_mount_unit() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/fixtures/systemctl-cat-var-lib-containers.mount.txt"
    );
    let script = format!(
        "#!/bin/sh\ncase \"$1 $2\" in\n  'is-active var-lib-containers.mount') echo active ;;\n  'cat var-lib-containers.mount') cat {fixture} ;;\n  *) echo \"unexpected: $*\" >&2; exit 1 ;;\nesac\n"
    );
    std::fs::write(bin.join("systemctl"), script).unwrap();
    sh(&["chmod", "+x", bin.join("systemctl").to_str().unwrap()]);
    let exec = LocalExecutor::new(dir.path()).with_env("PATH", format!("{}:/usr/bin:/bin", bin.display()));
    assert_eq!(
        systemd::container_storage_mount_target(&exec).await.unwrap(),
        "/dev/disk/by-partlabel/varlibcontainers"
    );

    // The real systemctl of this machine (no systemd as PID 1): not active, so "".
    assert_eq!(
        systemd::container_storage_mount_target(&LocalExecutor::new(dir.path()))
            .await
            .unwrap(),
        ""
    );
}

#[tokio::test]
async fn simulated_reboot_round_trip() {
    let node = SimNode::new();
    let work = tempfile::tempdir().unwrap();
    for (branch, marker) in [("rhcos/a", "a"), ("rhcos/b", "b")] {
        let tree = work.path().join(marker);
        make_tree(&tree, marker);
        node.commit(branch, &tree, marker);
    }
    let exec = node.exec();
    ostree::os_init(exec, "rhcos").await.unwrap();
    ostree::os_init(exec, "rhcos_b").await.unwrap();
    let opts = |s: &str, r: &str| DeployOptions {
        stateroot: s.into(),
        refspec: r.into(),
        ..Default::default()
    };
    ostree::deploy(exec, &opts("rhcos", "rhcos/a")).await.unwrap();
    assert!(
        ostree::status(exec).await.unwrap().booted().is_none(),
        "nothing booted before the first reboot"
    );
    sim::complete_reboot(exec).await.unwrap();
    ostree::deploy(exec, &opts("rhcos_b", "rhcos/b")).await.unwrap();

    reboot::reboot_for(exec, Rationale::Upgrade).await.unwrap();
    let paths = &node.exec.node().paths;
    assert_eq!(
        sim::read_reboot_request(paths).unwrap().unwrap().rationale,
        "upgrade"
    );
    // Until the harness completes the reboot, the old deployment stays booted.
    assert_eq!(
        ostree::status(exec).await.unwrap().booted_stateroot().unwrap(),
        "rhcos"
    );
    let booted = sim::complete_reboot(exec).await.unwrap();
    assert_eq!(booted.stateroot, "rhcos_b");
    assert_eq!(sim::read_reboot_request(paths).unwrap(), None);
    let st = ostree::status(exec).await.unwrap();
    assert_eq!(st.booted_stateroot().unwrap(), "rhcos_b");
    assert_eq!(st.first_unbooted_stateroot().unwrap().stateroot, "rhcos");
}

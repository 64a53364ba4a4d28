//! ostree operations against a real sysroot in a temp dir, with the Debian `ostree` CLI and
//! libostree: two stateroots, deploy with kernel args, both set-default paths, undeploy,
//! stateroot removal and the §7.3 cleanup, with the booted deployment faked by the
//! simulated-node state file.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use common::{SimNode, make_tree, seed_repo, sh};
use lca_hostops::ostree::{self, DeployOptions, SetDefaultPath};
use lca_hostops::{DryRunExecutor, Error, Executor, LocalExecutor, sim};

/// `rhcos` deployed from the sysroot repo and booted; `rhcos_4.17.0` pulled from a seed repo
/// and deployed with kernel args. Returns the node.
async fn two_stateroots(not_as_default: bool) -> SimNode {
    let node = SimNode::new();
    let work = tempfile::tempdir().unwrap();
    make_tree(&work.path().join("t416"), "4.16.3");
    node.commit("rhcos/4.16", &work.path().join("t416"), "416.94.fake");
    let exec = node.exec();
    ostree::os_init(exec, "rhcos").await.unwrap();
    let first = ostree::deploy(
        exec,
        &DeployOptions {
            stateroot: "rhcos".into(),
            refspec: "rhcos/4.16".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(first.index, 0);
    let booted = sim::complete_reboot(exec).await.unwrap();
    assert_eq!(booted.stateroot, "rhcos");

    let seed = seed_repo(work.path(), "rhcos/4.17", "417.94.fake");
    ostree::remount_sysroot_rw(exec).await.unwrap();
    ostree::pull_local(exec, &seed, &["rhcos/4.17"]).await.unwrap();
    let new = ostree::stateroot_name("4.17.0");
    ostree::os_init(exec, &new).await.unwrap();
    let opts = DeployOptions {
        stateroot: new.clone(),
        refspec: "rhcos/4.17".into(),
        karg_append: vec!["ip=dhcp".into(), "console=ttyS0,115200n8".into()],
        karg: vec!["ibu=4.17.0".into()],
        not_as_default,
    };
    let d = ostree::deploy(exec, &opts).await.unwrap();
    assert_eq!(d.stateroot, new);
    assert!(d.dir(&node.exec.node().paths).join("etc/os-release").exists());
    ostree::cleanup_base(exec).await.unwrap();
    node
}

#[tokio::test]
async fn deploy_into_a_new_stateroot_with_kernel_args() {
    let node = two_stateroots(true).await;
    let st = ostree::status(node.exec()).await.unwrap();
    let roots: Vec<_> = st
        .deployments
        .iter()
        .map(|d| (d.stateroot.as_str(), d.booted))
        .collect();
    assert_eq!(
        roots,
        [("rhcos", true), ("rhcos_4.17.0", false)],
        "--not-as-default appends"
    );
    assert_eq!(st.deployments[1].version.as_deref(), Some("417.94.fake"));
    let entry = node
        .bls_entries()
        .into_iter()
        .find(|(n, _)| n.ends_with("rhcos_4.17.0.conf"))
        .unwrap()
        .1;
    let options = entry.lines().find(|l| l.starts_with("options ")).unwrap();
    // ostree puts `--karg` values first, then the `--karg-append` ones, in order.
    assert!(
        options.starts_with("options ibu=4.17.0 ip=dhcp console=ttyS0,115200n8 "),
        "{options}"
    );
    assert!(options.contains(" ostree=/ostree/boot."), "{options}");
    // The CLI parser agrees with libostree.
    let lib = ostree::libostree::deployments(&node.sysroot()).unwrap();
    let cli: Vec<_> = st
        .deployments
        .iter()
        .map(|d| (d.stateroot.clone(), d.checksum.clone(), d.serial as i32))
        .collect();
    assert_eq!(lib, cli);
}

#[tokio::test]
async fn set_default_through_libostree_when_the_cli_lacks_it() {
    let node = two_stateroots(true).await;
    let exec = node.exec();
    assert!(
        !ostree::supports_set_default(exec).await.unwrap(),
        "Debian 12 ostree has no set-default"
    );
    assert_eq!(node.default_entry_title(), "rhcos 416.94.fake (ostree:rhcos:0)");
    assert_eq!(
        ostree::set_default(exec, 1).await.unwrap(),
        SetDefaultPath::Libostree
    );
    let st = ostree::status(exec).await.unwrap();
    assert_eq!(st.deployments[0].stateroot, "rhcos_4.17.0");
    assert!(
        st.deployments[1].booted,
        "rhcos stays the booted one until the reboot"
    );
    assert_eq!(
        node.default_entry_title(),
        "rhcos 417.94.fake (ostree:rhcos_4.17.0:0)"
    );
    assert_eq!(
        ostree::set_default(exec, 0).await.unwrap(),
        SetDefaultPath::AlreadyDefault
    );
    // The simulated reboot boots the new default.
    let booted = sim::complete_reboot(exec).await.unwrap();
    assert_eq!(booted.stateroot, "rhcos_4.17.0");
    assert_eq!(
        ostree::status(exec).await.unwrap().booted_stateroot().unwrap(),
        "rhcos_4.17.0"
    );
}

/// The CLI path: an `ostree` wrapper first in PATH gives the Debian CLI a `set-default` that the
/// test peer binary implements with libostree; everything else goes to the real ostree.
#[tokio::test]
async fn set_default_through_the_cli_when_it_has_it() {
    let node = two_stateroots(true).await;
    let bin = node.root().join("peer-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let peer = env!("CARGO_BIN_EXE_lca-ostree-set-default-peer");
    let wrapper = format!(
        "#!/bin/sh\nif [ \"$1\" = admin ] && [ \"$2\" = set-default ]; then echo \"$@\" >> {log}; exec {peer} \"$@\"; fi\n\
         if [ \"$1\" = admin ] && [ \"$2\" = --help ]; then /usr/bin/ostree \"$@\"; echo '  set-default        Change the default bootloader entry'; exit 0; fi\n\
         exec /usr/bin/ostree \"$@\"\n",
        log = node.root().join("set-default.log").display()
    );
    std::fs::write(bin.join("ostree"), wrapper).unwrap();
    sh(&["chmod", "+x", bin.join("ostree").to_str().unwrap()]);
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let exec = LocalExecutor::new(node.root()).with_env("PATH", path);

    assert!(ostree::supports_set_default(&exec).await.unwrap());
    assert_eq!(ostree::set_default(&exec, 1).await.unwrap(), SetDefaultPath::Cli);
    let log = std::fs::read_to_string(node.root().join("set-default.log")).unwrap();
    assert_eq!(
        log.trim(),
        format!("admin set-default --sysroot={} 1", node.sysroot().display())
    );
    assert_eq!(
        ostree::status(&exec).await.unwrap().deployments[0].stateroot,
        "rhcos_4.17.0"
    );
    assert_eq!(
        node.default_entry_title(),
        "rhcos 417.94.fake (ostree:rhcos_4.17.0:0)"
    );
}

#[tokio::test]
async fn deploy_without_not_as_default_prepends() {
    let node = two_stateroots(false).await;
    let st = ostree::status(node.exec()).await.unwrap();
    assert_eq!(st.deployments[0].stateroot, "rhcos_4.17.0");
    assert!(st.deployments[1].booted);
}

#[tokio::test]
async fn undeploy_and_stateroot_removal_refuse_the_booted_one() {
    let node = two_stateroots(true).await;
    let exec = node.exec();
    let err = ostree::remove_stateroot(exec, "rhcos").await.unwrap_err();
    assert_eq!(
        err.to_string(),
        "refusing to remove stateroot rhcos: it is booted"
    );
    ostree::remove_stateroot(exec, "rhcos_4.17.0").await.unwrap();
    assert!(!node.exec.node().paths.stateroot("rhcos_4.17.0").exists());
    let st = ostree::status(exec).await.unwrap();
    assert_eq!(st.deployments.len(), 1);
    // Idempotent, and plain undeploy works on what is left.
    ostree::remove_stateroot(exec, "rhcos_4.17.0").await.unwrap();
    ostree::undeploy(exec, 0).await.unwrap();
    assert!(ostree::status(exec).await.unwrap().deployments.is_empty());
}

#[tokio::test]
async fn cleanup_removes_every_unbooted_stateroot_including_half_created_ones() {
    let node = two_stateroots(true).await;
    let exec = node.exec();
    // A half-created stateroot: a directory with an immutable "deployment" and no BLS entry.
    let paths = &node.exec.node().paths;
    let junk = paths.stateroot_deployments("rhcos_4.18.0").join("0000.0");
    std::fs::create_dir_all(junk.join("etc")).unwrap();
    sh(&["chattr", "+i", junk.to_str().unwrap()]);
    assert!(
        std::fs::remove_dir_all(paths.stateroot("rhcos_4.18.0")).is_err(),
        "+i must block rm"
    );

    ostree::cleanup_unbooted_stateroots(exec).await.unwrap();
    let st = ostree::status(exec).await.unwrap();
    assert_eq!(st.deployments.len(), 1);
    assert_eq!(st.booted_stateroot().unwrap(), "rhcos");
    let left: Vec<_> = std::fs::read_dir(paths.deploy_root())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(left, ["rhcos"]);
}

#[tokio::test]
async fn cleanup_needs_a_booted_deployment() {
    let node = SimNode::new();
    let err = ostree::cleanup_unbooted_stateroots(node.exec())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoBootedDeployment), "{err}");
}

#[tokio::test]
async fn missing_ostree_and_dry_run() {
    let node = SimNode::new();
    let no_tools = LocalExecutor::new(node.root()).with_env("PATH", "/nonexistent");
    let err = ostree::status(&no_tools).await.unwrap_err();
    assert_eq!(err.to_string(), "ostree not found on the node");

    let dry = DryRunExecutor::new(Arc::new(LocalExecutor::new(node.root())));
    assert!(
        ostree::status(&dry).await.unwrap().deployments.is_empty(),
        "reads run under dry-run"
    );
    let err = ostree::os_init(&dry, "rhcos").await.unwrap_err();
    assert!(
        err.to_string()
            .starts_with("dry run: refused to run mutating command `ostree admin os-init"),
        "{err}"
    );
    let err = ostree::set_default_libostree(&dry, 1).await.unwrap_err();
    assert!(matches!(err, Error::DryRunRefused { .. }));
    assert!(!node.exec.node().paths.stateroot("rhcos").exists());
}

#[tokio::test]
async fn failed_deploy_carries_ostree_stderr() {
    let node = SimNode::new();
    ostree::os_init(node.exec(), "rhcos").await.unwrap();
    let opts = DeployOptions {
        stateroot: "rhcos".into(),
        refspec: "no/such-ref".into(),
        ..Default::default()
    };
    let err = ostree::deploy(node.exec(), &opts).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("command `ostree admin deploy --sysroot="),
        "{text}"
    );
    assert!(text.contains("no/such-ref"), "{text}");
    assert_eq!(err.category(), lca_hostops::Category::NodeState);
}

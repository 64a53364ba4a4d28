//! The control plane's side of a simulated reboot: after `reboot_onto`, the API server serves
//! the etcd of the booted stateroot (on the same address, certificates and token), and
//! booting back onto the original data gives the original cluster back untouched.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, ObjectMeta, PostParams};
use lca_testkit::ControlPlane;
use lca_testkit::controlplane::Options;

fn config_map(name: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some([("stateroot".to_string(), name.to_string())].into()),
        ..Default::default()
    }
}

async fn names(cp: &ControlPlane) -> Vec<String> {
    let api: Api<ConfigMap> = Api::namespaced(cp.client().await.unwrap(), "default");
    let mut names: Vec<String> = api
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|c| c.metadata.name)
        .filter(|n| n != "kube-root-ca.crt")
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reboot_serves_the_booted_stateroots_etcd_and_a_rollback_the_original() {
    let node = tempfile::tempdir().unwrap();
    let original = node.path().join("ostree/deploy/rhcos/var/lib/etcd");
    let seed = node.path().join("ostree/deploy/rhcos_4.18.0/var/lib/etcd");
    let options = Options {
        etcd_data_dir: Some(original.clone()),
        skip_crds: true,
        ..Default::default()
    };
    let mut cp = ControlPlane::start_with(options).await.unwrap();
    let server = cp.server().to_string();
    let api: Api<ConfigMap> = Api::namespaced(cp.client().await.unwrap(), "default");
    let before = api
        .create(&PostParams::default(), &config_map("original"))
        .await
        .unwrap();
    assert_eq!(names(&cp).await, ["original"]);

    // Pivot: the new stateroot's etcd (empty here; a seed's in the upgrade tests).
    cp.reboot_onto(&seed).await.unwrap();
    assert_eq!(cp.server(), server, "same address after the reboot");
    assert!(
        names(&cp).await.is_empty(),
        "the original cluster's objects are not in the new stateroot"
    );
    let api: Api<ConfigMap> = Api::namespaced(cp.client().await.unwrap(), "default");
    api.create(&PostParams::default(), &config_map("new-stateroot-only"))
        .await
        .unwrap();

    // Rollback: the original stateroot's etcd, as it was.
    cp.reboot_onto(&original).await.unwrap();
    assert_eq!(names(&cp).await, ["original"]);
    let api: Api<ConfigMap> = Api::namespaced(cp.client().await.unwrap(), "default");
    let after = api.get("original").await.unwrap();
    assert_eq!(
        after.metadata.uid, before.metadata.uid,
        "the very object, not a copy"
    );
    assert!(seed.join("member").is_dir(), "the other stateroot's etcd is kept");

    let dir = cp.dir().to_path_buf();
    drop(cp);
    assert!(!dir.exists(), "the control plane's own files go with it");
    assert!(
        original.join("member").is_dir() && seed.join("member").is_dir(),
        "node data stays"
    );
}

/// The node side: a target node whose cluster lives in its booted stateroot, a second
/// stateroot holding a seed cluster and made the default, a reboot into it and back.
#[tokio::test(flavor = "multi_thread")]
async fn a_node_reboots_into_its_default_deployment_and_back() {
    use lca_testkit::reboot::{complete, default_deployment};
    use lca_testkit::seednode::TargetNode;
    let node = TargetNode::build().unwrap();
    let root = node.root();
    let options = Options {
        etcd_data_dir: Some(root.join("var/lib/etcd")),
        skip_crds: true,
        ..Default::default()
    };
    let mut cp = ControlPlane::start_with(options).await.unwrap();
    let api: Api<ConfigMap> = Api::namespaced(cp.client().await.unwrap(), "default");
    api.create(&PostParams::default(), &config_map("original"))
        .await
        .unwrap();
    let original = default_deployment(root).unwrap();

    // What Prep and pre-pivot leave: a new stateroot (here the same commit) holding a seed
    // cluster, deployed as the default.
    let sysroot = format!("--sysroot={}", root.join("sysroot").display());
    lca_testkit::run(&["ostree", "admin", "os-init", "rhcos_4.18.0", &sysroot]).unwrap();
    lca_testkit::run(&[
        "ostree",
        "admin",
        "deploy",
        "--os",
        "rhcos_4.18.0",
        "--no-prune",
        "rhcos/4.16",
        &sysroot,
    ])
    .unwrap();
    let new_var = root.join("sysroot/ostree/deploy/rhcos_4.18.0/var");
    lca_testkit::seedcluster::install_at(&new_var.join("lib/etcd"), "4.18.0")
        .await
        .unwrap();

    let booted = complete(root, &mut cp).await.unwrap();
    assert_eq!(booted.stateroot, "rhcos_4.18.0");
    assert_eq!(
        std::fs::canonicalize(root.join("var")).unwrap(),
        std::fs::canonicalize(&new_var).unwrap()
    );
    let etc = format!(
        "sysroot/ostree/deploy/rhcos_4.18.0/deploy/{}.{}/etc",
        booted.checksum, booted.serial
    );
    assert_eq!(std::fs::read_link(root.join("etc")).unwrap(), Path::new(&etc));
    let client = cp.client().await.unwrap();
    let version = lca_testkit::openshift::desired_version(&client).await.unwrap();
    assert_eq!(version, "4.18.0", "the seed's cluster after the pivot");
    assert!(!names(&cp).await.contains(&"original".to_string()));
    let state = std::fs::read_to_string(root.join("lca-sim/node.json")).unwrap();
    assert!(state.contains("\"rhcos_4.18.0\""), "{state}");

    // Back: the new deployment removed (the original is the default again), then a reboot.
    lca_testkit::run(&["ostree", "admin", "undeploy", "0", &sysroot]).unwrap();
    let back = complete(root, &mut cp).await.unwrap();
    assert_eq!(back, original);
    assert_eq!(names(&cp).await, ["original"], "the original cluster, untouched");
}

//! The control plane's side of a simulated reboot: after `reboot_onto`, the API server serves
//! the etcd of the booted stateroot (on the same address, certificates and token), and
//! booting back onto the original data gives the original cluster back untouched.

#![allow(clippy::unwrap_used)]

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

//! OADP across the pivot on the real control plane (spec §6.2, §6.3, §2.6 step 4), with the
//! seed document's Backup/Restore ConfigMap (§15.2.4.1): an application and the hub's
//! klusterlet objects (with the `ibu-role` ClusterRole, TALM contract §3.5 item 9) are gone
//! right after the pivot into the seed's cluster and restored wave by wave before
//! `UpgradeCompleted`; a failed Backup fails the Upgrade before the node is touched; a failed
//! Restore rolls back; abort and finalize leave no Backup and no backup label behind. Velero
//! is the test peer `lca_testkit::velero` (object storage outside the stateroots).

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::ResourceExt;
use kube::api::{Api, DynamicObject};
use lca_api::Stage;
use lca_e2e::prep::{Env, SEED_VERSION, abort, start_prep, wait_prep_completed};
use lca_e2e::upgrade::{self, reboot_rationale, stateroots};
use lca_e2e::{Cluster, condition, has};
use lca_testkit::oadpenv::{self, APP_NS, IBU_ROLE, KLUSTERLET_NS};
use lca_testkit::velero::VeleroPeer;
use serde_json::Value;

const T: Duration = Duration::from_secs(120);
const BACKUP_LABEL: &str = "lca.openshift.io/backup";

/// An upgrade environment with OADP configured, the applications installed and Velero (the
/// peer) serving an object store that outlives the pivot.
async fn oadp_env() -> (Env, VeleroPeer, tempfile::TempDir) {
    let e = upgrade::env(SEED_VERSION, &[]).await;
    let store = tempfile::tempdir().unwrap();
    let peer = VeleroPeer::start(e.c.client.clone(), store.path().to_path_buf());
    oadpenv::install(&e.c.client).await.unwrap();
    (e, peer, store)
}

fn backups(c: &Cluster) -> Api<DynamicObject> {
    lca_testkit::openshift::BACKUP.api(&c.client, oadpenv::OADP_NS)
}

async fn backup_names(c: &Cluster) -> Vec<String> {
    let mut names: Vec<String> = backups(c)
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|b| b.metadata.name)
        .collect();
    names.sort();
    names
}

async fn ibu_role_labels(c: &Cluster) -> Option<std::collections::BTreeMap<String, String>> {
    let roles: Api<ClusterRole> = Api::all(c.client.clone());
    roles
        .get_opt(IBU_ROLE)
        .await
        .unwrap()
        .map(|r| r.metadata.labels.unwrap_or_default())
}

async fn app_objects_present(c: &Cluster) -> [bool; 5] {
    let ns = |c: &Cluster| c.client.clone();
    [
        Api::<Deployment>::namespaced(ns(c), APP_NS)
            .get_opt("web")
            .await
            .unwrap()
            .is_some(),
        Api::<ConfigMap>::namespaced(ns(c), APP_NS)
            .get_opt("web-config")
            .await
            .unwrap()
            .is_some(),
        Api::<Secret>::namespaced(ns(c), APP_NS)
            .get_opt("web-secret")
            .await
            .unwrap()
            .is_some(),
        Api::<PersistentVolumeClaim>::namespaced(ns(c), APP_NS)
            .get_opt("web-data")
            .await
            .unwrap()
            .is_some(),
        Api::<Deployment>::namespaced(ns(c), KLUSTERLET_NS)
            .get_opt("klusterlet")
            .await
            .unwrap()
            .is_some(),
    ]
}

/// The LVMS volume's reclaim policy and whether LCA marked it.
async fn volume(c: &Cluster) -> Option<(String, bool)> {
    let pvs: Api<k8s_openapi::api::core::v1::PersistentVolume> = Api::all(c.client.clone());
    pvs.get_opt("web-data-pv").await.unwrap().map(|pv| {
        let marked = pv
            .metadata
            .annotations
            .unwrap_or_default()
            .get("lca.openshift.io/updated-reclaim-policy")
            .is_some_and(|v| v == "true");
        (
            pv.spec
                .unwrap()
                .persistent_volume_reclaim_policy
                .unwrap_or_default(),
            marked,
        )
    })
}

async fn to_pivot(e: &Env) {
    start_prep(e, SEED_VERSION, &oadpenv::spec_lines());
    wait_prep_completed(e).await;
    assert!(e.c.patch_stage("Upgrade").0);
    upgrade::wait_reboot_request(&e.c, T).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn applications_and_the_hubs_access_survive_the_upgrade_and_finalize_leaves_no_backup() {
    let (mut e, peer, store) = oadp_env().await;
    let root = e.c.node_root().to_path_buf();
    to_pivot(&e).await;

    // Before the pivot: both Backups made by this cluster, the listed objects labelled and
    // selected, the unlisted one not.
    let acm = backups(&e.c).get("acm-klusterlet").await.unwrap();
    let id = lca_testkit::openshift::cluster_id(&e.c.client).await.unwrap();
    assert_eq!(acm.labels().get("config.openshift.io/clusterID"), Some(&id));
    assert_eq!(
        acm.data["spec"]["labelSelector"]["matchLabels"][BACKUP_LABEL],
        "acm-klusterlet"
    );
    assert_eq!(acm.data["status"]["phase"], "Completed");
    let app = backups(&e.c).get("backup-app").await.unwrap();
    assert!(
        app.data["spec"].get("labelSelector").is_none(),
        "no apply-label, no selector"
    );
    assert_eq!(
        ibu_role_labels(&e.c)
            .await
            .unwrap()
            .get(BACKUP_LABEL)
            .map(String::as_str),
        Some("acm-klusterlet")
    );
    let unlisted = Api::<Secret>::namespaced(e.c.client.clone(), KLUSTERLET_NS)
        .get("not-listed")
        .await
        .unwrap();
    assert!(
        !unlisted
            .metadata
            .labels
            .unwrap_or_default()
            .contains_key(BACKUP_LABEL)
    );
    assert_eq!(
        volume(&e.c).await,
        Some(("Retain".into(), true)),
        "kept across the pivot"
    );
    // The export, in upstream's layout.
    let oadp = root.join(format!("sysroot/ostree/deploy/rhcos_{SEED_VERSION}/var/opt/OADP"));
    for f in [
        "dpa/dataprotectionapplication.yaml",
        "secret/cloud-credentials.yaml",
        "veleroRestore/restore1/1_acm-klusterlet_openshift-adp.yaml",
        "veleroRestore/restore2/1_test-app_openshift-adp.yaml",
    ] {
        assert!(oadp.join(f).is_file(), "{f}");
    }
    let dpa: Value = serde_norway::from_str(
        &std::fs::read_to_string(oadp.join("dpa/dataprotectionapplication.yaml")).unwrap(),
    )
    .unwrap();
    assert!(dpa["metadata"].get("uid").is_none() && dpa["metadata"].get("resourceVersion").is_none());
    assert_eq!(dpa["kind"], "DataProtectionApplication");

    // Right after the pivot the seed's cluster has none of it.
    upgrade::reboot_into(&mut e.c, None, false).await;
    assert_eq!(app_objects_present(&e.c).await, [false; 5]);
    assert_eq!(ibu_role_labels(&e.c).await, None);
    e.c.start_operator();
    upgrade::wait_upgrade_completed(&e.c).await;
    assert_eq!(app_objects_present(&e.c).await, [true; 5]);
    assert!(ibu_role_labels(&e.c).await.is_some(), "the hub keeps its access");
    assert_eq!(
        volume(&e.c).await,
        Some(("Delete".into(), false)),
        "restored, then reverted"
    );
    let cm = Api::<ConfigMap>::namespaced(e.c.client.clone(), APP_NS)
        .get("web-config")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["greeting"], "survives the upgrade");
    // Wave order: the application's Restore was created only after the platform's completed.
    let events = peer.events();
    let seen = |name: &str| {
        events
            .iter()
            .find(|ev| ev.kind == "Restore" && ev.name == name)
            .unwrap()
            .clone()
    };
    let (platform, application) = (seen("acm-klusterlet"), seen("test-app"));
    assert!(platform.done_at.unwrap() <= application.seen_at, "{events:#?}");
    assert!(
        !root.join("var/opt/OADP").exists(),
        "/opt/OADP removed after the restores"
    );

    assert!(e.c.patch_stage("Idle").0);
    e.c.wait_ibu("Idle after finalize", T, |i| has(i, "Idle", "True"))
        .await;
    assert_eq!(backup_names(&e.c).await, Vec::<String>::new());
    assert!(
        lca_testkit::velero::store_backups(store.path()).is_empty(),
        "object storage emptied"
    );
    assert_eq!(ibu_role_labels(&e.c).await.unwrap().get(BACKUP_LABEL), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stuck_then_failed_backup_fails_the_upgrade_before_the_pivot_and_abort_cleans_up() {
    let (e, _peer, store) = oadp_env().await;
    let root = e.c.node_root().to_path_buf();
    VeleroPeer::hold(store.path(), "backup-app").unwrap();
    start_prep(&e, SEED_VERSION, &oadpenv::spec_lines());
    wait_prep_completed(&e).await;
    assert!(e.c.patch_stage("Upgrade").0);
    e.c.wait_ibu("backup in progress", T, |i| {
        condition(i, "UpgradeInProgress").is_some_and(|c| c.2 == "Backup of Application Data is in progress")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        reboot_rationale(&e.c).is_none(),
        "no reboot while a Backup is pending"
    );
    VeleroPeer::fail_backup(store.path(), "backup-app").unwrap();
    VeleroPeer::release(store.path(), "backup-app").unwrap();
    let (ibu, message) = upgrade::wait_upgrade_failed(&e.c).await;
    assert_eq!(message, "Failed backup CRs: backup-app");
    assert_eq!(ibu.status.unwrap().valid_next_stages, vec![Stage::Idle]);
    assert!(reboot_rationale(&e.c).is_none());
    assert_eq!(
        stateroots(&e.c)[0],
        "rhcos",
        "the original deployment is still the default"
    );
    assert!(
        !root
            .join(format!("sysroot/ostree/deploy/rhcos_{SEED_VERSION}/var/opt/OADP"))
            .exists(),
        "nothing exported"
    );
    assert_eq!(volume(&e.c).await, Some(("Retain".into(), true)));
    abort(&e).await;
    assert_eq!(backup_names(&e.c).await, Vec::<String>::new());
    assert!(lca_testkit::velero::store_backups(store.path()).is_empty());
    assert_eq!(ibu_role_labels(&e.c).await.unwrap().get(BACKUP_LABEL), None);
    assert_eq!(
        volume(&e.c).await,
        Some(("Delete".into(), false)),
        "reverted by the abort"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_restore_rolls_back_to_the_original_cluster() {
    let (mut e, _peer, store) = oadp_env().await;
    VeleroPeer::fail_restore(store.path(), "test-app").unwrap();
    to_pivot(&e).await;
    upgrade::reboot(&mut e.c).await;
    upgrade::wait_rollback_request(&e.c, T).await;
    upgrade::reboot(&mut e.c).await;
    assert_eq!(upgrade::booted(&e.c), "rhcos");
    let (_, message) = upgrade::wait_upgrade_failed(&e.c).await;
    assert_eq!(
        message,
        "Rollback due to restore failure: Failed restore CRs: test-app"
    );
    // The original cluster's data was never touched.
    assert_eq!(app_objects_present(&e.c).await, [true; 5]);
    abort(&e).await;
    assert_eq!(backup_names(&e.c).await, Vec::<String>::new());
    assert_eq!(ibu_role_labels(&e.c).await.unwrap().get(BACKUP_LABEL), None);
}

/// Replace the data of the OADP ConfigMap.
async fn set_content(c: &Cluster, data: &[(&str, String)]) {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(k, v)| (k.to_string(), Value::from(v.clone())))
        .collect();
    let cm = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": oadpenv::CONFIG_MAP, "namespace": oadpenv::OADP_NS}, "data": data});
    let api: Api<ConfigMap> = Api::namespaced(c.client.clone(), oadpenv::OADP_NS);
    let _ = api.delete(oadpenv::CONFIG_MAP, &Default::default()).await;
    api.create(&Default::default(), &serde_json::from_value(cm).unwrap())
        .await
        .unwrap();
}

/// Hostile OADP content fails Prep with a message naming what is wrong, labels nothing and
/// creates no Backup; a stale Backup of another cluster under a listed name is deleted
/// through Velero at Prep.
#[tokio::test(flavor = "multi_thread")]
async fn hostile_oadp_content_fails_prep_and_touches_nothing() {
    let e = lca_e2e::prep::env_with_seed(SEED_VERSION, false).await;
    let store = tempfile::tempdir().unwrap();
    let _peer = VeleroPeer::start(e.c.client.clone(), store.path().to_path_buf());
    oadpenv::install(&e.c.client).await.unwrap();
    let prefix = "failed to validate IBU spec: failed to validate oadp configMap: ";
    let platform = oadpenv::PLATFORM_BACKUP_RESTORE.to_string();
    let app = oadpenv::APP_BACKUP_RESTORE.to_string();
    let sneaky =
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sneaky, namespace: default}\ndata: {a: b}\n"
            .to_string();
    let missing_object = platform.replace(
        "rbac.authorization.k8s.io/v1/clusterroles/klusterlet,",
        "rbac.authorization.k8s.io/v1/clusterroles/klusterlet,v1/secrets/open-cluster-management-agent/missing,",
    );
    let cases: Vec<(Vec<(&str, String)>, String)> = vec![
        (
            vec![
                ("a.yaml", platform.clone()),
                ("b.yaml", app.clone()),
                ("c.yaml", sneaky),
            ],
            format!(
                "{prefix}ConfigMap[sneaky] (v1) in c.yaml of the configMap openshift-adp/oadp-cm is not allowed in OADP configmaps: only velero.io/v1 Backup and Restore CRs are"
            ),
        ),
        (
            vec![
                ("a.yaml", platform.clone()),
                (
                    "b.yaml",
                    app.replace("backupName:\n    backup-app", "backupName:\n    nosuch"),
                ),
            ],
            format!(
                "{prefix}The backup CR nosuch defined in restore CR test-app not found in OADP configmaps"
            ),
        ),
        (
            vec![("a.yaml", missing_object), ("b.yaml", app.clone())],
            format!(
                "{prefix}Invalid backup acm-klusterlet detected in configmap, error: the apply-label object v1/secrets/open-cluster-management-agent/missing cannot be labelled: secrets \"missing\" not found. Please update the invalid Backup in configmap."
            ),
        ),
        (
            vec![
                (
                    "a.yaml",
                    platform.replace(
                        "lca.openshift.io/apply-label: \"",
                        "lca.openshift.io/apply-label: \"v1/secrets,",
                    ),
                ),
                ("b.yaml", app.clone()),
            ],
            format!(
                "{prefix}Invalid backup acm-klusterlet detected in configmap, error: invalid apply-label obj in annotation value: v1/secrets. Please update the invalid Backup in configmap."
            ),
        ),
        (
            vec![
                ("a.yaml", platform.clone()),
                ("b.yaml", app.split("---").next().unwrap().to_string()),
            ],
            format!(
                "{prefix}Both backup and restore CRs should be specified in OADP configmaps and each backup CR should be paired with a corresponding restore CR."
            ),
        ),
    ];
    for (data, want) in cases {
        set_content(&e.c, &data).await;
        lca_e2e::prep::prep_fails_with(&e, &oadpenv::spec_lines(), |m| m == want, &want).await;
        assert_eq!(backup_names(&e.c).await, Vec::<String>::new(), "{want}");
        assert_eq!(
            ibu_role_labels(&e.c).await.unwrap().get(BACKUP_LABEL),
            None,
            "{want}"
        );
    }
    // A second DPA.
    oadpenv::apply(
        &e.c.client,
        &oadpenv::DPA_YAML.replace("name: dataprotectionapplication,", "name: second,"),
    )
    .await
    .unwrap();
    set_content(&e.c, &[("a.yaml", platform.clone()), ("b.yaml", app.clone())]).await;
    let want = "failed to validate IBU spec: failed to check oadp operator availability: Only one DataProtectionApplication CR is allowed in the openshift-adp,";
    lca_e2e::prep::prep_fails_with(&e, &oadpenv::spec_lines(), |m| m == want, want).await;
    lca_testkit::openshift::DPA
        .api(&e.c.client, oadpenv::OADP_NS)
        .delete("second", &Default::default())
        .await
        .unwrap();

    // A Backup named like ours, made by another cluster: deleted through Velero at Prep.
    let stale = serde_json::json!({"apiVersion": "velero.io/v1", "kind": "Backup",
        "metadata": {"name": "backup-app", "namespace": oadpenv::OADP_NS, "labels": {"config.openshift.io/clusterID": "another-cluster"}},
        "spec": {"includedNamespaces": ["nothing"]}});
    oadpenv::apply(&e.c.client, &stale.to_string()).await.unwrap();
    let start = std::time::Instant::now();
    while lca_testkit::velero::store_backups(store.path()).is_empty() {
        assert!(start.elapsed() < T, "the peer stored the stale backup");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    start_prep(&e, SEED_VERSION, &oadpenv::spec_lines());
    wait_prep_completed(&e).await;
    let start = std::time::Instant::now();
    while !backup_names(&e.c).await.is_empty() {
        assert!(start.elapsed() < T, "the stale Backup is deleted");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(lca_testkit::velero::store_backups(store.path()).is_empty());
    abort(&e).await;
}

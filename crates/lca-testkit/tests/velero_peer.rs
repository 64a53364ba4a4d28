//! The Velero test peer against a real control plane: a DPA is reconciled and its location
//! made Available; a Backup takes what its spec selects into the store; a Backup object
//! deleted from the cluster comes back from the store; a Restore re-creates the objects; a
//! DeleteBackupRequest removes a backup for good; failures and holds injected through files
//! are honoured; and the peer carries on across a reboot onto a new cluster, which finds the
//! backups of the old one in the shared store (and cannot overwrite them).

#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::api::{Api, DeleteParams, PostParams};
use kube::{Client, Resource};
use lca_testkit::ControlPlane;
use lca_testkit::controlplane::Options;
use lca_testkit::openshift::{
    self, BACKUP, BACKUP_STORAGE_LOCATION, DELETE_BACKUP_REQUEST, DPA, Kind, RESTORE,
};
use lca_testkit::velero::{NAMESPACE, VeleroPeer, store_backups};
use serde_json::{Value, json};

const LABEL: &str = "lca.openshift.io/backup";

async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn get(client: &Client, kind: Kind, name: &str) -> Option<Value> {
    let obj = kind.api(client, NAMESPACE).get_opt(name).await.unwrap()?;
    Some(serde_json::to_value(obj).unwrap())
}

/// The object once its `status.phase` is `phase`.
async fn phase_of(client: &Client, kind: Kind, name: &str, phase: &str) -> Value {
    eventually(&format!("{} {name} to be {phase}", kind.kind), || async {
        get(client, kind, name)
            .await
            .filter(|o| o["status"]["phase"] == phase)
    })
    .await
}

async fn create<K>(api: &Api<K>, body: Value)
where
    K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + serde::Serialize,
{
    api.create(&PostParams::default(), &serde_json::from_value(body).unwrap())
        .await
        .unwrap();
}

async fn namespace(client: &Client, name: &str) {
    create(
        &Api::<Namespace>::all(client.clone()),
        json!({"metadata": {"name": name}}),
    )
    .await;
}

/// A control plane with the OpenShift fixture CRDs, `openshift-adp`, and a peer on `store`.
async fn cluster(options: Options, store: &Path) -> (ControlPlane, Client, VeleroPeer) {
    let cp = ControlPlane::start_with(Options {
        skip_crds: true,
        ..options
    })
    .await
    .unwrap();
    openshift::install(&cp).await.unwrap();
    let client = cp.client().await.unwrap();
    namespace(&client, NAMESPACE).await;
    let peer = VeleroPeer::start(client.clone(), store.to_path_buf());
    (cp, client, peer)
}

async fn dpa(client: &Client) {
    let location = json!({"velero": {"provider": "aws", "default": true,
        "credential": {"name": "cloud-credentials", "key": "cloud"},
        "objectStorage": {"bucket": "lca", "prefix": "velero"}}});
    let body = json!({"spec": {"backupLocations": [location], "configuration": {"velero": {}}}});
    openshift::create(client, DPA, NAMESPACE, "dpa", body, Value::Null)
        .await
        .unwrap();
}

async fn object(client: &Client, kind: Kind, name: &str, spec: Value) {
    openshift::create(client, kind, NAMESPACE, name, json!({"spec": spec}), Value::Null)
        .await
        .unwrap();
}

/// (kind, namespace/name) of the stored objects of a backup, sorted.
fn stored(store: &Path, backup: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(store.join("backups").join(backup).join("resources.json")).unwrap();
    let items: Vec<Value> = serde_json::from_str(&text).unwrap();
    let mut out: Vec<(String, String)> = items
        .iter()
        .map(|o| {
            let meta = &o["metadata"];
            assert!(meta["uid"].is_null() && meta["resourceVersion"].is_null(), "{o}");
            assert!(o["status"].is_null(), "{o}");
            let ns = meta["namespace"].as_str().unwrap_or_default();
            (
                o["kind"].as_str().unwrap().into(),
                format!("{ns}/{}", meta["name"].as_str().unwrap()),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_backup_goes_to_the_store_comes_back_by_sync_restores_and_is_deleted() {
    let store = tempfile::tempdir().unwrap();
    let (_cp, client, peer) = cluster(Options::default(), store.path()).await;
    dpa(&client).await;
    let bsl = phase_of(&client, BACKUP_STORAGE_LOCATION, "default", "Available").await;
    assert_eq!(bsl["spec"]["credential"]["name"], "cloud-credentials");
    assert_eq!(
        bsl["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "oadp-operator"
    );
    let dpa = get(&client, DPA, "dpa").await.unwrap();
    assert_eq!(dpa["status"]["conditions"][0]["type"], "Reconciled");
    assert_eq!(dpa["status"]["conditions"][0]["status"], "True");

    for ns in ["app", "other"] {
        namespace(&client, ns).await;
        let cms = Api::<ConfigMap>::namespaced(client.clone(), ns);
        create(
            &cms,
            json!({"metadata": {"name": "cm", "labels": {LABEL: "b1"}}, "data": {"k": ns}}),
        )
        .await;
    }
    let secrets = Api::<Secret>::namespaced(client.clone(), "app");
    create(
        &secrets,
        json!({"metadata": {"name": "s"}, "stringData": {"k": "v"}}),
    )
    .await;
    let roles = Api::<ClusterRole>::all(client.clone());
    create(
        &roles,
        json!({"metadata": {"name": "cr-b1", "labels": {LABEL: "b1"}}}),
    )
    .await;
    create(&roles, json!({"metadata": {"name": "cr-other"}})).await;

    let spec = json!({"includedNamespaces": ["app"],
        "includedNamespaceScopedResources": ["configmaps", "secrets"],
        "includedClusterScopedResources": ["clusterroles.rbac.authorization.k8s.io"],
        "labelSelector": {"matchLabels": {LABEL: "b1"}}});
    let body = json!({"metadata": {"labels": {"lca.openshift.io/group": "g"}}, "spec": spec});
    openshift::create(&client, BACKUP, NAMESPACE, "b1", body, Value::Null)
        .await
        .unwrap();
    let backup = phase_of(&client, BACKUP, "b1", "Completed").await;
    assert_eq!(backup["status"]["progress"]["itemsBackedUp"], 2);
    assert!(backup["status"]["completionTimestamp"].is_string());
    assert_eq!(store_backups(store.path()), ["b1"]);
    let expected = [("ClusterRole", "/cr-b1"), ("ConfigMap", "app/cm")];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(k, n)| (k.to_string(), n.to_string()))
        .collect();
    assert_eq!(
        stored(store.path(), "b1"),
        expected,
        "no Namespace: the selector applies to it too"
    );

    // The cluster loses the objects and the Backup object; the store still has them.
    let dp = DeleteParams::default();
    Api::<ConfigMap>::namespaced(client.clone(), "app")
        .delete("cm", &dp)
        .await
        .unwrap();
    secrets.delete("s", &dp).await.unwrap();
    roles.delete("cr-b1", &dp).await.unwrap();
    roles.delete("cr-other", &dp).await.unwrap();
    BACKUP.api(&client, NAMESPACE).delete("b1", &dp).await.unwrap();
    let synced = phase_of(&client, BACKUP, "b1", "Completed").await;
    assert_eq!(synced["metadata"]["labels"]["lca.openshift.io/group"], "g");
    assert_eq!(synced["spec"], backup["spec"]);

    object(&client, RESTORE, "r1", json!({"backupName": "b1"})).await;
    let restore = phase_of(&client, RESTORE, "r1", "Completed").await;
    assert_eq!(
        (
            restore["status"]["warnings"].clone(),
            restore["status"]["errors"].clone()
        ),
        (json!(0), json!(0))
    );
    let cm = Api::<ConfigMap>::namespaced(client.clone(), "app")
        .get("cm")
        .await
        .unwrap();
    assert_eq!(cm.data.unwrap()["k"], "app");
    assert_eq!(cm.metadata.labels.unwrap()["velero.io/restore-name"], "r1");
    assert!(roles.get_opt("cr-b1").await.unwrap().is_some());
    assert!(roles.get_opt("cr-other").await.unwrap().is_none(), "not selected");
    assert!(secrets.get_opt("s").await.unwrap().is_none(), "not selected");

    object(&client, RESTORE, "r2", json!({"backupName": "b1"})).await;
    let again = phase_of(&client, RESTORE, "r2", "Completed").await;
    assert_eq!(again["status"]["warnings"], 2, "both objects exist already");
    object(&client, RESTORE, "r3", json!({"backupName": "nope"})).await;
    let invalid = phase_of(&client, RESTORE, "r3", "FailedValidation").await;
    assert_eq!(
        invalid["status"]["validationErrors"],
        json!(["backup nope not found"])
    );

    object(&client, DELETE_BACKUP_REQUEST, "d1", json!({"backupName": "b1"})).await;
    eventually("the DeleteBackupRequest to be processed", || async {
        let gone = get(&client, DELETE_BACKUP_REQUEST, "d1").await.is_none();
        (gone && get(&client, BACKUP, "b1").await.is_none()).then_some(())
    })
    .await;
    assert!(store_backups(store.path()).is_empty());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(get(&client, BACKUP, "b1").await.is_none(), "not synced back");

    let events = peer.events();
    let done = |kind: &str, name: &str| {
        events
            .iter()
            .filter(|e| e.kind == kind && e.name == name)
            .map(|e| (e.phase.clone(), e.done_at.is_some_and(|d| d >= e.seen_at)))
            .collect::<Vec<_>>()
    };
    assert_eq!(done("Backup", "b1"), [("Completed".to_string(), true)]);
    assert_eq!(done("Sync", "b1"), [("Completed".to_string(), true)]);
    assert_eq!(done("Restore", "r3"), [("FailedValidation".to_string(), true)]);
    assert_eq!(
        done("DeleteBackupRequest", "d1"),
        [("Processed".to_string(), true)]
    );
    assert!(peer.busy() > Duration::ZERO);
}

#[tokio::test(flavor = "multi_thread")]
async fn nothing_runs_without_a_location_and_injected_failures_and_holds_are_honoured() {
    let store = tempfile::tempdir().unwrap();
    let (_cp, client, peer) = cluster(Options::default(), store.path()).await;
    object(&client, BACKUP, "early", json!({"includedNamespaces": ["app"]})).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        get(&client, BACKUP, "early").await.unwrap()["status"].is_null(),
        "no location yet"
    );
    assert!(
        get(&client, BACKUP_STORAGE_LOCATION, "default").await.is_none(),
        "no DPA, no BSL"
    );

    openshift::create(&client, DPA, NAMESPACE, "dpa", json!({"spec": {}}), Value::Null)
        .await
        .unwrap();
    phase_of(&client, BACKUP, "early", "Completed").await;

    VeleroPeer::fail_backup(store.path(), "bad").unwrap();
    object(&client, BACKUP, "bad", json!({})).await;
    let failed = phase_of(&client, BACKUP, "bad", "Failed").await;
    assert!(failed["status"]["failureReason"].is_string());
    assert!(!store_backups(store.path()).contains(&"bad".to_string()));
    VeleroPeer::fail_restore(store.path(), "bad-restore").unwrap();
    object(&client, RESTORE, "bad-restore", json!({"backupName": "early"})).await;
    phase_of(&client, RESTORE, "bad-restore", "Failed").await;

    VeleroPeer::hold(store.path(), "held").unwrap();
    object(&client, BACKUP, "held", json!({})).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        get(&client, BACKUP, "held").await.unwrap()["status"].is_null(),
        "held"
    );
    let open = peer.events().into_iter().find(|e| e.name == "held").unwrap();
    assert_eq!(
        (open.kind, open.done_at, open.phase.as_str()),
        ("Backup", None, "New")
    );
    VeleroPeer::release(store.path(), "held").unwrap();
    phase_of(&client, BACKUP, "held", "Completed").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn after_a_reboot_onto_a_new_cluster_the_peer_syncs_and_restores_the_old_backups() {
    let (store, node) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let options = Options {
        etcd_data_dir: Some(node.path().join("original/etcd")),
        ..Default::default()
    };
    let (mut cp, client, _peer) = cluster(options, store.path()).await;
    dpa(&client).await;
    namespace(&client, "app").await;
    let cms = Api::<ConfigMap>::namespaced(client.clone(), "app");
    create(&cms, json!({"metadata": {"name": "cm"}, "data": {"k": "v"}})).await;
    for name in ["up", "twice"] {
        object(&client, BACKUP, name, json!({"includedNamespaces": ["app"]})).await;
        phase_of(&client, BACKUP, name, "Completed").await;
    }

    cp.reboot_onto(&node.path().join("new/etcd")).await.unwrap();
    // The new cluster: the same client, none of the old objects, the old store.
    openshift::install(&cp).await.unwrap();
    namespace(&client, NAMESPACE).await;
    assert!(cms.get_opt("cm").await.unwrap().is_none());
    // Made before the location is there, so before the sync could bring the stored one.
    object(&client, BACKUP, "twice", json!({"includedNamespaces": ["app"]})).await;
    dpa(&client).await;
    phase_of(&client, BACKUP, "up", "Completed").await;
    let twice = phase_of(&client, BACKUP, "twice", "Failed").await;
    assert_eq!(
        twice["status"]["failureReason"],
        "backup already exists in object storage"
    );
    object(&client, RESTORE, "up", json!({"backupName": "up"})).await;
    phase_of(&client, RESTORE, "up", "Completed").await;
    assert_eq!(cms.get("cm").await.unwrap().data.unwrap()["k"], "v");
    let ns = Api::<Namespace>::all(client.clone()).get("app").await.unwrap();
    assert_eq!(
        ns.metadata.labels.unwrap()["velero.io/backup-name"],
        "up",
        "restored, not made up"
    );
}

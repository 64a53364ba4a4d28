//! Upgrade end to end on the real control plane: Prep, then the pre-pivot exports, the
//! reboot into the seed's cluster (the loopback etcd follows the booted stateroot), the
//! seed's own `lca-cli post-pivot` run by the booted deployment's unit, the operator's
//! post-pivot and the finalize that removes the old stateroot.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, PostParams};
use lca_api::Stage;
use lca_e2e::has;
use lca_e2e::prep::{SEED_VERSION, start_prep, wait_prep_completed};
use lca_e2e::upgrade::{self, NODE_IP};
use lca_testkit::{hostpeer, openshift};
use serde_json::Value;

const T: Duration = Duration::from_secs(120);
const WEB_CN: &str = "web.apps.target.example.org";

/// Two waves: `x` is created then merged, `y` created then replaced.
const EXTRA: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: x
  namespace: default
  annotations: {lca.openshift.io/apply-wave: "1"}
data: {a: "1", b: "1"}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: y
  namespace: default
  annotations: {lca.openshift.io/apply-wave: "1"}
data: {a: "1", b: "1"}
"#;
const EXTRA_WAVE2: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata:
  name: x
  namespace: default
  annotations: {lca.openshift.io/apply-wave: "2", lca.openshift.io/apply-type: merge}
data: {b: "2"}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: y
  namespace: default
  annotations: {lca.openshift.io/apply-wave: "2"}
data: {b: "2"}
"#;

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        .unwrap()
}

async fn cm_data(c: &lca_e2e::Cluster, name: &str) -> std::collections::BTreeMap<String, String> {
    let api: Api<ConfigMap> = Api::namespaced(c.client.clone(), "default");
    api.get(name).await.unwrap().data.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn upgrade_pivots_into_the_seed_cluster_and_finalize_removes_the_old_stateroot() {
    let mut e = upgrade::env(SEED_VERSION, &[]).await;
    let root = e.c.node_root().to_path_buf();
    let cms: Api<ConfigMap> = Api::namespaced(e.c.client.clone(), "default");
    let cm: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "extra"}, "data": {"1.yaml": EXTRA, "2.yaml": EXTRA_WAVE2}}))
    .unwrap();
    cms.create(&PostParams::default(), &cm).await.unwrap();
    let original_id = openshift::cluster_id(&e.c.client).await.unwrap();
    // cert-manager with one issued certificate: its secret and key survive the pivot.
    openshift::install_kinds(&e.c.cp, &[openshift::CERTIFICATE])
        .await
        .unwrap();
    let (crt, key) = lca_testkit::prepenv::certificate(WEB_CN, (2030, 1, 1)).unwrap();
    let (ok, _, err) = e.c.kubectl_apply(&format!(
        "apiVersion: v1\nkind: Namespace\nmetadata: {{name: apps}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: web-tls, namespace: apps}}\ntype: kubernetes.io/tls\nstringData:\n  tls.crt: {crt:?}\n  tls.key: {key:?}\n---\napiVersion: cert-manager.io/v1\nkind: Certificate\nmetadata: {{name: web, namespace: apps}}\nspec: {{secretName: web-tls}}\n"
    ));
    assert!(ok, "{err}");
    start_prep(
        &e,
        SEED_VERSION,
        "  extraManifests:\n  - name: extra\n    namespace: default\n",
    );
    wait_prep_completed(&e).await;

    assert!(e.c.patch_stage("Upgrade").0);
    upgrade::wait_reboot_request(&e.c, T).await;
    let new_var = root.join(format!("sysroot/ostree/deploy/rhcos_{SEED_VERSION}/var"));
    // The exports, with upstream's paths and keys.
    let config = json(&new_var.join("opt/openshift/cluster-configuration/manifest.json"));
    // Key by key against the reference's list (§1.7): nothing upstream would not know, and
    // the keys that are always written are there.
    const KEYS: [&str; 27] = [
        "api_version",
        "base_domain",
        "cluster_name",
        "cluster_id",
        "infra_id",
        "node_ip",
        "node_ips",
        "release_registry",
        "hostname",
        "KubeconfigCryptoRetention",
        "ssh_key",
        "server_ssh_keys",
        "kubeadmin_password_hash",
        "raw_nm_state_config",
        "pull_secret",
        "machine_network",
        "machine_networks",
        "proxy",
        "status_proxy",
        "install_config",
        "chrony_config",
        "additionalTrustBundle",
        "node_labels",
        "KubeAPICrypto",
        "IngresssCrypto",
        "ServingCrypto",
        "ClientAuthCrypto",
    ];
    for key in config.as_object().unwrap().keys() {
        assert!(KEYS.contains(&key.as_str()), "unknown key {key}");
    }
    let crypto = &config["KubeconfigCryptoRetention"];
    let mut crypto_keys: Vec<&String> = crypto.as_object().unwrap().keys().collect();
    crypto_keys.extend(crypto["KubeAPICrypto"].as_object().unwrap().keys());
    crypto_keys.sort();
    assert_eq!(
        crypto_keys,
        [
            "ClientAuthCrypto",
            "IngresssCrypto",
            "KubeAPICrypto",
            "ServingCrypto"
        ]
    );
    assert_eq!(
        config["additionalTrustBundle"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        ["proxyConfigmapBundle", "proxyConfigmapName", "userCaBundle"]
    );
    assert_eq!(config["api_version"], 1);
    assert_eq!(config["cluster_id"], original_id.as_str());
    assert_eq!(config["cluster_name"], upgrade::CLUSTER_NAME);
    assert_eq!(config["base_domain"], upgrade::BASE_DOMAIN);
    assert_eq!(config["infra_id"], "seed-x7k2p");
    assert_eq!(config["hostname"], openshift::NODE);
    assert_eq!(config["node_ips"], serde_json::json!([NODE_IP]));
    assert_eq!(
        config["machine_networks"],
        serde_json::json!([upgrade::MACHINE_NETWORK])
    );
    assert_eq!(config["ssh_key"], upgrade::SSH_KEY);
    assert_eq!(
        config["KubeconfigCryptoRetention"]["IngresssCrypto"]["ingress_certificate_cn"],
        lca_testkit::prepenv::INGRESS_CN
    );
    assert_eq!(
        config["KubeconfigCryptoRetention"]["KubeAPICrypto"]["ServingCrypto"]["localhost_signer_private_key"],
        "KEY localhost-serving-signer"
    );
    assert!(config["additionalTrustBundle"].is_object());
    assert_eq!(config["server_ssh_keys"].as_array().unwrap().len(), 2);
    let cluster_conf = new_var.join("opt/openshift/cluster-configuration");
    for f in [
        "manifests/01_certmanager_Namespace_apps.json".to_string(),
        "manifests/03_certmanager_Secret_web-tls_apps.json".to_string(),
        format!("certmanager-crypto/CN={WEB_CN}__apps_web-tls.key"),
    ] {
        assert!(cluster_conf.join(&f).exists(), "{f}");
    }
    assert!(
        new_var
            .join("opt/openshift/network-configuration/system-connections/br-ex.nmconnection")
            .exists()
    );
    assert!(
        new_var
            .join("opt/openshift/lvm-configuration/system.devices")
            .exists()
    );
    for f in [
        "group1/1_ConfigMap_x_default.yaml",
        "group1/2_ConfigMap_y_default.yaml",
        "group2/1_ConfigMap_x_default.yaml",
        "group2/2_ConfigMap_y_default.yaml",
    ] {
        assert!(new_var.join("opt/extra-manifests").join(f).exists(), "{f}");
    }
    let saved_new = json(&new_var.join("lib/lca/ibu.json"));
    assert_eq!(saved_new["spec"]["stage"], "Upgrade");
    let saved_old = json(&root.join("var/lib/lca/ibu.json"));
    let failed: Vec<&Value> = saved_old["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["type"] == "UpgradeInProgress")
        .collect();
    assert_eq!(failed[0]["message"], "Uncontrolled rollback");
    assert_eq!(failed[0]["reason"], "Failed");
    let default = lca_testkit::reboot::default_deployment(&root).unwrap();
    assert_eq!(default.stateroot, format!("rhcos_{SEED_VERSION}"));
    let (ok, events, _) = e.c.kubectl(&["get", "events.events.k8s.io", "-A", "-o", "json"]);
    assert!(ok);
    let events: Value = serde_json::from_str(&events).unwrap();
    assert!(
        events["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|ev| ev["reason"] == "Reboot"
                && ev["action"] == "Reboot"
                && ev["note"] == "System will now reboot for upgrade"),
        "{events}"
    );

    let oneshots = upgrade::reboot(&mut e.c).await;
    assert!(
        e.c.operator.is_some(),
        "post-pivot started the kubelet, so the operator runs: {:#?}\n{}",
        hostpeer::calls(&root),
        std::fs::read_to_string(root.join("lca-sim/units/installation-configuration.service.log"))
            .unwrap_or_default()
    );
    assert_eq!(
        oneshots,
        [("installation-configuration.service".to_string(), 1, true)],
        "{}",
        std::fs::read_to_string(root.join("lca-sim/units/installation-configuration.service.log"))
            .unwrap_or_default()
    );
    let ibu = upgrade::wait_upgrade_completed(&e.c).await;
    let status = ibu.status.clone().unwrap();
    assert_eq!(status.valid_next_stages, vec![Stage::Idle, Stage::Rollback]);
    let upgrade = status
        .history
        .iter()
        .find(|h| h.stage == Some(Stage::Upgrade))
        .unwrap();
    let phases: Vec<&str> = upgrade.phases.iter().map(|p| p.phase.as_str()).collect();
    assert_eq!(phases, ["PrePivot", "PostPivot"]);
    assert!(upgrade.completion_time.is_some());
    assert_eq!(
        status.rollback_availability_expiration.map(|t| t.0.to_string()),
        Some("2026-12-31T23:30:00Z".to_string())
    );
    // The seed's cluster, made this cluster's by post-pivot.
    assert_eq!(
        openshift::desired_version(&e.c.client).await.unwrap(),
        SEED_VERSION
    );
    assert_eq!(openshift::cluster_id(&e.c.client).await.unwrap(), original_id);
    let x = cm_data(&e.c, "x").await;
    assert_eq!(
        (x.get("a").map(String::as_str), x.get("b").map(String::as_str)),
        (Some("1"), Some("2"))
    );
    let y = cm_data(&e.c, "y").await;
    assert_eq!((y.get("a"), y.get("b").map(String::as_str)), (None, Some("2")));
    let calls = hostpeer::calls(&root);
    for expected in [
        "systemctl restart NetworkManager.service".to_string(),
        format!("hostnamectl set-hostname {}", openshift::NODE),
        "systemctl enable kubelet --now".to_string(),
        "systemctl disable installation-configuration.service".to_string(),
    ] {
        assert!(calls.contains(&expected), "{expected} in {calls:#?}");
    }
    assert!(
        calls
            .iter()
            .any(|c| c.starts_with("podman run") && c.contains("--name recert ")),
        "{calls:#?}"
    );
    let recert = json(&root.join("lca-sim/recert_config.json"));
    assert_eq!(recert["cluster_rename"], "target:example.org:seed-x7k2p");
    assert_eq!(recert["summary_file_clean"], "/var/tmp/recert-summary.yaml");
    assert_eq!(
        std::fs::read_to_string(root.join("etc/hostname")).unwrap().trim(),
        openshift::NODE
    );
    assert!(
        root.join("etc/NetworkManager/system-connections/br-ex.nmconnection")
            .exists()
    );
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(e.c.client.clone(), "apps");
    assert!(
        secrets.get_opt("web-tls").await.unwrap().is_some(),
        "cert-manager's secret applied"
    );
    let rule = format!(
        "{WEB_CN} /var/opt/openshift/cluster-configuration/certmanager-crypto/CN={WEB_CN}__apps_web-tls.key"
    );
    assert!(
        recert["use_key_rules"]
            .as_array()
            .unwrap()
            .contains(&Value::from(rule)),
        "{recert}"
    );
    assert!(
        !root.join("var/opt/openshift").exists(),
        "post-pivot removed its inputs"
    );
    assert!(
        !root.join("var/opt/extra-manifests").exists(),
        "applied manifests removed"
    );
    assert!(
        !root
            .join("etc/systemd/system/multi-user.target.wants/installation-configuration.service")
            .is_symlink()
    );
    assert!(
        !root.join("etc/systemd/system/lca-init-monitor.service").exists(),
        "init monitor removed"
    );

    assert!(e.c.patch_stage("Idle").0);
    let ibu =
        e.c.wait_ibu("Idle after finalize", T, |i| has(i, "Idle", "True"))
            .await;
    assert_eq!(ibu.status.as_ref().unwrap().valid_next_stages, vec![Stage::Prep]);
    assert!(ibu.status.as_ref().unwrap().history.is_empty());
    let status = e.c.target.as_ref().unwrap().ostree_status().unwrap();
    assert!(
        !status.contains("rhcos "),
        "only the new stateroot is left:\n{status}"
    );
    assert!(
        !root.join("sysroot/ostree/deploy/rhcos").exists(),
        "old stateroot removed"
    );
}

/// The operator dies after the work of every pre-pivot step, before its marker; restarted
/// each time (supervised, as the kubelet restarts its pod), it converges: one new
/// deployment, the default, complete exports, and the upgrade then completes.
#[tokio::test(flavor = "multi_thread")]
async fn an_operator_killed_at_each_pre_pivot_step_converges() {
    let mut e = upgrade::env(SEED_VERSION, &[]).await;
    let root = e.c.node_root().to_path_buf();
    if let Some(op) = e.c.operator.take() {
        op.kill();
    }
    e.c.start_operator_supervised();
    start_prep(&e, SEED_VERSION, "");
    wait_prep_completed(&e).await;
    let steps: Vec<String> = lca_e2e::campaign::steps::<lca_core::upgrade_plan::PrePivot>()
        .iter()
        .map(|s| format!("prepivot/{s}"))
        .collect();
    let armed: String = steps.iter().map(|s| format!("{s}=return(kill)\n")).collect();
    std::fs::write(root.join("lca-sim/failpoints"), armed).unwrap();
    assert!(e.c.patch_stage("Upgrade").0);
    upgrade::wait_reboot_request(&e.c, T).await;
    assert_eq!(
        std::fs::read_to_string(root.join("lca-sim/failpoints.fired")).unwrap(),
        steps.iter().map(|s| format!("{s}\n")).collect::<String>(),
        "the operator crashed after every step"
    );
    let log = e.c.operator.as_ref().unwrap().log();
    assert_eq!(log.matches("failpoint fired").count(), 6);
    let status = e.c.target.as_ref().unwrap().ostree_status().unwrap();
    assert_eq!(
        status.matches(&format!("rhcos_{SEED_VERSION} ")).count(),
        1,
        "{status}"
    );
    assert_eq!(
        lca_testkit::reboot::default_deployment(&root).unwrap().stateroot,
        format!("rhcos_{SEED_VERSION}")
    );
    let new_var = root.join(format!("sysroot/ostree/deploy/rhcos_{SEED_VERSION}/var"));
    assert!(
        new_var
            .join("opt/openshift/cluster-configuration/manifest.json")
            .exists()
    );
    assert!(
        !new_var
            .join("opt/openshift/cluster-configuration.partial")
            .exists()
    );
    upgrade::reboot(&mut e.c).await;
    upgrade::wait_upgrade_completed(&e.c).await;
}

/// A reboot that is asked for but never comes fails the upgrade with upstream's message;
/// the node is still on its original stateroot, so abort is the way out.
#[tokio::test(flavor = "multi_thread")]
async fn a_reboot_that_never_comes_fails_the_upgrade() {
    let e = upgrade::env(SEED_VERSION, &[]).await;
    let root = e.c.node_root().to_path_buf();
    std::fs::write(root.join("lca-sim/reboot-wait-secs"), "1").unwrap();
    start_prep(&e, SEED_VERSION, "");
    wait_prep_completed(&e).await;
    assert!(e.c.patch_stage("Upgrade").0);
    let (ibu, message) = upgrade::wait_upgrade_failed(&e.c).await;
    assert_eq!(
        message,
        "failed to reboot. This should never happen! Please check the system"
    );
    assert_eq!(ibu.status.unwrap().valid_next_stages, vec![Stage::Idle]);
}

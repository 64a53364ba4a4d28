//! `lca-cli post-pivot` on a simulated node whose files were written as upstream's pre-pivot
//! writes them: the seed reconfiguration below is built from the key list of the reference
//! (§1.7, Go field names in the crypto block), not by our own writer, so a node pivoted by
//! upstream's LCA into a seed that carries ours converges. Bad input stops it with a clear
//! error before any cluster step; a run killed between a step and its marker converges.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::Output;

use lca_testkit::{ControlPlane, hostpeer, openshift, prepenv};
use serde_json::{Value, json};

/// A seed reconfiguration with every key upstream writes.
fn upstream_config() -> Value {
    json!({
        "api_version": 1,
        "base_domain": "example.org",
        "cluster_name": "target",
        "cluster_id": "11111111-2222-3333-4444-555555555555",
        "infra_id": "target-abc12",
        "node_ip": "192.168.1.20",
        "node_ips": ["192.168.1.20"],
        "release_registry": "quay.io",
        "hostname": "sno",
        "KubeconfigCryptoRetention": {
            "KubeAPICrypto": {
                "ServingCrypto": {
                    "localhost_signer_private_key": "LOCALHOST KEY",
                    "service_network_signer_private_key": "SERVICE KEY",
                    "loadbalancer_external_signer_private_key": "LB KEY"
                },
                "ClientAuthCrypto": {"admin_ca_certificate": "ADMIN CA"}
            },
            "IngresssCrypto": {"ingress_ca": "INGRESS KEY", "ingress_certificate_cn": "ingress-operator@1"}
        },
        "ssh_key": "ssh-ed25519 AAAA core@upstream",
        "server_ssh_keys": [
            {"file_name": "ssh_host_ed25519_key", "file_content": "PRIVATE"},
            {"file_name": "ssh_host_ed25519_key.pub", "file_content": "PUBLIC"}
        ],
        "kubeadmin_password_hash": "$2a$10$hash",
        "raw_nm_state_config": "",
        "pull_secret": "{\"auths\":{}}",
        "machine_network": "192.168.1.0/24",
        "machine_networks": ["192.168.1.0/24"],
        "proxy": null,
        "status_proxy": null,
        "install_config": "apiVersion: v1\nbaseDomain: example.org\n",
        "chrony_config": "server 192.168.1.1 iburst\n",
        "additionalTrustBundle": {"userCaBundle": "USER CA", "proxyConfigmapName": "", "proxyConfigmapBundle": ""},
        "node_labels": {"node-role.kubernetes.io/master": "", "site": "edge-1"}
    })
}

fn seed_info(recert_image: &str) -> Value {
    json!({
        "seed_cluster_ocp_version": "4.18.0", "base_domain": "example.com", "cluster_name": "seed",
        "node_ip": "192.168.1.10", "node_ips": ["192.168.1.10"], "release_registry": "quay.io",
        "mirror_registry_configured": false, "sno_hostname": "seed",
        "recert_image_pull_spec": recert_image, "has_proxy": false,
        "cluster_network_cidr": ["10.128.0.0/14"], "service_network_cidr": ["172.30.0.0/16"],
        "has_fips": false, "additionalTrustBundle": {"hasUserCaBundle": false, "proxyConfigmapName": ""},
        "container_storage_mountpoint_target": "/dev/sdb", "ingress_certificate_cn": "ingress-operator@0",
        "machine_networks": ["192.168.1.0/24"]
    })
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A node just booted into the new stateroot, before post-pivot ran.
fn node(cp: &ControlPlane, config: &Value, recert_image: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    hostpeer::install(root).unwrap();
    lca_testkit::simnode::configure(root).unwrap();
    write(
        &root.join("var/seed_data/manifest.json"),
        seed_info(recert_image).to_string().as_bytes(),
    );
    let conf = root.join("var/opt/openshift/cluster-configuration");
    write(&conf.join("manifest.json"), config.to_string().as_bytes());
    let sc = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": "local-sc"}, "provisioner": "kubernetes.io/no-provisioner"});
    write(
        &conf.join("manifests/StorageClass_local-sc_.json"),
        sc.to_string().as_bytes(),
    );
    write(
        &root.join("var/opt/openshift/network-configuration/system-connections/br-ex.nmconnection"),
        b"[connection]\n",
    );
    write(
        &root.join("etc/kubernetes/manifests/etcd-pod.yaml"),
        b"spec:\n  containers:\n  - name: etcd\n    image: etcd:sim\n",
    );
    write(&root.join("etc/ssh/ssh_host_rsa_key"), b"SEED KEY");
    // The OADP export as upstream's pre-pivot writes it (sigs.k8s.io/yaml of the objects:
    // keys sorted, no uid or resourceVersion).
    write(
        &root.join("var/opt/OADP/secret/cloud-credentials.yaml"),
        b"apiVersion: v1\ndata:\n  cloud: W2RlZmF1bHRd\nkind: Secret\nmetadata:\n  name: cloud-credentials\n  namespace: openshift-adp\ntype: Opaque\n",
    );
    write(
        &root.join("var/opt/OADP/dpa/dataprotectionapplication.yaml"),
        b"apiVersion: oadp.openshift.io/v1alpha1\nkind: DataProtectionApplication\nmetadata:\n  name: dataprotectionapplication\n  namespace: openshift-adp\nspec:\n  backupLocations:\n  - velero:\n      credential:\n        key: cloud\n        name: cloud-credentials\n      provider: aws\n",
    );
    write(
        &root.join("var/opt/OADP/veleroRestore/restore1/1_acm-klusterlet_openshift-adp.yaml"),
        b"apiVersion: velero.io/v1\nkind: Restore\nmetadata:\n  name: acm-klusterlet\n  namespace: openshift-adp\nspec:\n  backupName: acm-klusterlet\n",
    );
    prepenv::admin_kubeconfig(cp, root).unwrap();
    dir
}

fn post_pivot(root: &Path, env: &[(&str, &str)]) -> Output {
    let path = format!(
        "{}:{}",
        root.join("lca-sim/bin").display(),
        std::env::var("PATH").unwrap()
    );
    let conf = root.join("lca-sim/containers-storage.conf").display().to_string();
    let mut all = vec![
        ("PATH", path.as_str()),
        ("LCA_SIMULATED", "true"),
        ("CONTAINERS_STORAGE_CONF", conf.as_str()),
    ];
    all.extend_from_slice(env);
    common::lca_cli(root, &["post-pivot", "--wait-secs", "5"], &all)
}

async fn seed_cluster() -> ControlPlane {
    let cp = ControlPlane::start().await.unwrap();
    openshift::install(&cp).await.unwrap();
    openshift::healthy_sno(&cp.client().await.unwrap()).await.unwrap();
    cp
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_written_files_are_applied_and_a_killed_run_converges() {
    let cp = seed_cluster().await;
    // The recert image, precached at Prep into the node's container storage.
    let registry = lca_testkit::Registry::start().unwrap();
    let recert = lca_testkit::images::push_test_image(&registry, "edge/recert:v0", "recert").unwrap();
    let dir = node(&cp, &upstream_config(), &recert);
    let root = dir.path();
    let conf = root.join("lca-sim/containers-storage.conf");
    let pulled = std::process::Command::new("podman")
        .env("CONTAINERS_STORAGE_CONF", &conf)
        .args(["pull", "--quiet", "--tls-verify=false", &recert])
        .output()
        .unwrap();
    assert!(
        pulled.status.success(),
        "{}",
        String::from_utf8_lossy(&pulled.stderr)
    );
    // Killed after the network step's work, before its marker: the next run (the unit's
    // restart) repeats that step and goes on from there.
    let out = post_pivot(root, &[("FAILPOINTS", "post-pivot/network=return(kill)")]);
    assert_eq!(out.status.signal(), Some(9), "{}", common::stderr(&out));
    assert!(!root.join("var/opt/openshift/network.done").exists());
    assert!(root.join("var/opt/openshift/pull-secret.done").exists());
    // The API server is not reachable yet (no admin kubeconfig): post-pivot waits for it.
    let kubeconfig = root.join(lca_api::consts::paths::ADMIN_KUBECONFIG);
    std::fs::remove_file(&kubeconfig).unwrap();
    let late = std::thread::spawn({
        let (cp_kubeconfig, kubeconfig) = (cp.kubeconfig().to_path_buf(), kubeconfig.clone());
        move || {
            std::thread::sleep(std::time::Duration::from_secs(2));
            std::fs::copy(cp_kubeconfig, kubeconfig).unwrap();
        }
    });
    let out = post_pivot(root, &[]);
    late.join().unwrap();
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(
        common::stderr(&out).contains("waiting for the API server"),
        "{}",
        common::stderr(&out)
    );

    let calls = hostpeer::calls(root);
    let restarts = calls
        .iter()
        .filter(|c| *c == "systemctl restart NetworkManager.service")
        .count();
    assert_eq!(restarts, 2, "the interrupted step ran again: {calls:#?}");
    assert_eq!(
        calls.iter().filter(|c| c.contains("--name recert ")).count(),
        1,
        "{calls:#?}"
    );
    assert!(calls.contains(&"systemctl enable kubelet --now".to_string()));
    assert!(calls.contains(&"systemctl disable installation-configuration.service".to_string()));
    let client = cp.client().await.unwrap();
    assert_eq!(
        openshift::cluster_id(&client).await.unwrap(),
        "11111111-2222-3333-4444-555555555555"
    );
    let node: k8s_openapi::api::core::v1::Node =
        kube::Api::all(client.clone()).get(openshift::NODE).await.unwrap();
    assert_eq!(
        node.metadata.labels.unwrap().get("site").map(String::as_str),
        Some("edge-1")
    );
    let sc: kube::Api<k8s_openapi::api::storage::v1::StorageClass> = kube::Api::all(client.clone());
    assert!(sc.get_opt("local-sc").await.unwrap().is_some());
    for mc in ["99-master-ssh", "99-worker-ssh"] {
        assert!(
            openshift::names(&client, openshift::MACHINE_CONFIG)
                .await
                .unwrap()
                .contains(&mc.to_string())
        );
    }
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    assert_eq!(read("etc/hostname").trim(), "sno");
    assert_eq!(
        read("etc/default/nodeip-configuration"),
        "KUBELET_NODEIP_HINT=192.168.1.20\n"
    );
    assert_eq!(
        read("etc/default/sno_dnsmasq_configuration_overrides"),
        "SNO_CLUSTER_NAME_OVERRIDE=target\nSNO_BASE_DOMAIN_OVERRIDE=example.org\nSNO_DNSMASQ_IP_OVERRIDE=192.168.1.20\n"
    );
    assert_eq!(
        read("home/core/.ssh/authorized_keys.d/ib-early-access").trim(),
        "ssh-ed25519 AAAA core@upstream"
    );
    assert_eq!(read("var/lib/kubelet/config.json"), "{\"auths\":{}}");
    assert_eq!(
        read("etc/pki/ca-trust/source/anchors/openshift-config-user-ca-bundle.crt"),
        "USER CA"
    );
    assert_eq!(read("etc/chrony.conf"), "server 192.168.1.1 iburst\n");
    assert_eq!(read("etc/ssh/ssh_host_ed25519_key"), "PRIVATE");
    assert!(
        !root.join("etc/ssh/ssh_host_rsa_key").exists(),
        "the seed's host keys are gone"
    );
    assert!(
        root.join("etc/NetworkManager/system-connections/br-ex.nmconnection")
            .exists()
    );
    let recert: Value = serde_json::from_str(&read("lca-sim/recert_config.json")).unwrap();
    assert_eq!(recert["cluster_rename"], "target:example.org:target-abc12");
    assert_eq!(recert["hostname"], "sno");
    assert_eq!(recert["ip"], "192.168.1.20");
    assert_eq!(recert["kubeadmin_password_hash"], "$2a$10$hash");
    assert_eq!(recert["user_ca_bundle"], "USER CA");
    assert!(
        recert["cn_san_replace_rules"]
            .as_array()
            .unwrap()
            .contains(&json!("192.168.1.10,192.168.1.20"))
    );
    assert!(!root.join("var/opt/openshift").exists() && !root.join("var/seed_data").exists());
    // OADP's Secret and DPA are back; the Restores stay for the operator.
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(client.clone(), "openshift-adp");
    let secret = secrets.get("cloud-credentials").await.unwrap();
    assert_eq!(secret.data.unwrap()["cloud"].0, b"[default]");
    let dpas = openshift::names(&client, openshift::DPA).await.unwrap();
    assert_eq!(dpas, ["dataprotectionapplication"]);
    assert!(
        root.join("var/opt/OADP/veleroRestore/restore1/1_acm-klusterlet_openshift-adp.yaml")
            .exists()
    );
}

/// The recert image of the bad-input cases (they stop before recert).
const RECERT: &str = "quay.io/edge-infrastructure/recert:v0";

/// How a case changes the seed reconfiguration.
type Change = Box<dyn Fn(&mut Value)>;

/// Each bad input fails before any cluster step, with its message, and changes nothing the
/// next attempt needs.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_stops_post_pivot_with_a_clear_error() {
    let cp = seed_cluster().await;
    let cases: Vec<(&str, Change, &str)> = vec![
        (
            "api version",
            Box::new(|c| c["api_version"] = json!(2)),
            "unsupported seed reconfiguration version 2",
        ),
        (
            "localhost",
            Box::new(|c| c["hostname"] = json!("localhost")),
            "invalid hostname \"localhost\"",
        ),
        (
            "family",
            Box::new(|c| {
                c["node_ips"] = json!(["fd00::20"]);
                c["machine_networks"] = json!(["fd00::/64"]);
            }),
            "IP family mismatch: the seed's node IP 192.168.1.10 is IPv4 and the node's fd00::20 is IPv6",
        ),
        (
            "dual stack",
            Box::new(|c| c["node_ips"] = json!(["192.168.1.20", "fd00::20"])),
            "seed and target must be both single-stack or both dual-stack",
        ),
        (
            "proxy",
            Box::new(|c| c["proxy"] = json!({"httpProxy": "http://p:3128"})),
            "proxy mismatch: the seed has no proxy and the cluster has one",
        ),
    ];
    for (what, change, message) in cases {
        let mut config = upstream_config();
        change(&mut config);
        let dir = node(&cp, &config, RECERT);
        let out = post_pivot(dir.path(), &[]);
        assert!(!out.status.success(), "{what}");
        assert!(
            common::stderr(&out).contains(message),
            "{what}: {}",
            common::stderr(&out)
        );
        assert!(
            !hostpeer::calls(dir.path()).iter().any(|c| c.contains("kubelet")),
            "{what}: the kubelet stays off"
        );
        assert!(
            dir.path()
                .join("var/opt/openshift/cluster-configuration/manifest.json")
                .exists()
        );
    }
    let dir = node(&cp, &upstream_config(), RECERT);
    write(
        &dir.path()
            .join("var/opt/openshift/cluster-configuration/manifest.json"),
        b"{garbled",
    );
    let out = post_pivot(dir.path(), &[]);
    assert!(
        common::stderr(&out).contains("invalid seed reconfiguration"),
        "{}",
        common::stderr(&out)
    );
    let dir = node(&cp, &upstream_config(), RECERT);
    std::fs::remove_dir_all(dir.path().join("var/opt/openshift/cluster-configuration")).unwrap();
    let out = post_pivot(dir.path(), &[]);
    assert!(
        common::stderr(&out).contains("did not appear within 5s"),
        "{}",
        common::stderr(&out)
    );
}

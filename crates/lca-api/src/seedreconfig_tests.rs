//! The expected key lists below are copied from the spec (§1.7), not derived from the types:
//! they are what upstream's reader and writer use.

use super::*;
use serde_json::{Value, json};

/// Top-level keys of `SeedReconfiguration` (spec §1.7).
const TOP: [&str; 23] = [
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
];

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
    k.sort();
    k
}

fn sorted(list: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

fn full() -> SeedReconfiguration {
    let s = |x: &str| x.to_string();
    let proxy = Proxy {
        http_proxy: s("http://p:3128"),
        https_proxy: s("http://p:3129"),
        no_proxy: s(".lab"),
    };
    SeedReconfiguration {
        api_version: 1,
        base_domain: s("example.com"),
        cluster_name: s("sno"),
        cluster_id: s("5e1f"),
        infra_id: s("sno-x7k2p"),
        node_ip: s("192.0.2.10"),
        node_ips: vec![s("192.0.2.10"), s("2001:db8::10")],
        release_registry: s("quay.io"),
        hostname: s("sno1"),
        kubeconfig_crypto_retention: KubeconfigCryptoRetention {
            kube_api_crypto: KubeApiCrypto {
                serving_crypto: ServingCrypto {
                    localhost_signer_private_key: s("PEM1"),
                    service_network_signer_private_key: s("PEM2"),
                    loadbalancer_external_signer_private_key: s("PEM3"),
                },
                client_auth_crypto: ClientAuthCrypto {
                    admin_ca_certificate: s("PEM4"),
                },
            },
            ingress_crypto: IngressCrypto {
                ingress_ca: s("PEM5"),
                ingress_certificate_cn: s("ingress-operator@1"),
            },
        },
        ssh_key: s("ssh-ed25519 AAAA"),
        server_ssh_keys: vec![ServerSshKey {
            file_name: s("ssh_host_ed25519_key"),
            file_content: s("KEY"),
        }],
        kubeadmin_password_hash: s("$2a$10$x"),
        raw_nm_state_config: s("interfaces: []"),
        pull_secret: s("{\"auths\":{}}"),
        machine_network: s("192.0.2.0/24"),
        machine_networks: vec![s("192.0.2.0/24"), s("2001:db8::/64")],
        proxy: Some(proxy.clone()),
        status_proxy: Some(proxy),
        install_config: s("apiVersion: v1"),
        chrony_config: s("pool 2.rhel.pool.ntp.org"),
        additional_trust_bundle: AdditionalTrustBundle {
            user_ca_bundle: s("CA"),
            proxy_configmap_name: s("user-ca-bundle"),
            proxy_configmap_bundle: s("CA"),
        },
        node_labels: [(s("node-role.kubernetes.io/master"), s(""))].into(),
    }
}

#[test]
fn a_full_value_writes_exactly_the_keys_of_the_spec() {
    let v = serde_json::to_value(full()).unwrap();
    assert_eq!(keys(&v), sorted(&TOP));
    let crypto = &v["KubeconfigCryptoRetention"];
    assert_eq!(keys(crypto), sorted(&["KubeAPICrypto", "IngresssCrypto"]));
    assert_eq!(
        keys(&crypto["KubeAPICrypto"]),
        sorted(&["ServingCrypto", "ClientAuthCrypto"])
    );
    assert_eq!(
        keys(&crypto["KubeAPICrypto"]["ServingCrypto"]),
        sorted(&[
            "localhost_signer_private_key",
            "service_network_signer_private_key",
            "loadbalancer_external_signer_private_key"
        ])
    );
    assert_eq!(
        keys(&crypto["KubeAPICrypto"]["ClientAuthCrypto"]),
        sorted(&["admin_ca_certificate"])
    );
    assert_eq!(
        keys(&crypto["IngresssCrypto"]),
        sorted(&["ingress_ca", "ingress_certificate_cn"])
    );
    assert_eq!(
        keys(&v["server_ssh_keys"][0]),
        sorted(&["file_name", "file_content"])
    );
    assert_eq!(keys(&v["proxy"]), sorted(&["httpProxy", "httpsProxy", "noProxy"]));
    assert_eq!(
        keys(&v["status_proxy"]),
        sorted(&["httpProxy", "httpsProxy", "noProxy"])
    );
    assert_eq!(
        keys(&v["additionalTrustBundle"]),
        sorted(&["userCaBundle", "proxyConfigmapName", "proxyConfigmapBundle"])
    );
}

#[test]
fn an_empty_value_keeps_the_version_and_the_two_struct_blocks() {
    let v = serde_json::to_value(SeedReconfiguration {
        api_version: 1,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(
        v,
        json!({
            "api_version": 1,
            "KubeconfigCryptoRetention": {
                "KubeAPICrypto": {"ServingCrypto": {}, "ClientAuthCrypto": {}},
                "IngresssCrypto": {}
            },
            "additionalTrustBundle": {"userCaBundle": "", "proxyConfigmapName": "", "proxyConfigmapBundle": ""}
        })
    );
}

/// A file as upstream's pre-pivot writes it, typed from the spec's key lists (not produced
/// by our writer), with a key from a newer version that a reader must skip.
const UPSTREAM: &str = r#"{
  "api_version": 1,
  "base_domain": "example.com",
  "cluster_name": "sno",
  "cluster_id": "5e1f",
  "infra_id": "sno-x7k2p",
  "node_ip": "192.0.2.10",
  "node_ips": ["192.0.2.10"],
  "release_registry": "quay.io",
  "hostname": "sno1",
  "KubeconfigCryptoRetention": {
    "KubeAPICrypto": {
      "ServingCrypto": {"localhost_signer_private_key": "L", "service_network_signer_private_key": "S",
                        "loadbalancer_external_signer_private_key": "B"},
      "ClientAuthCrypto": {"admin_ca_certificate": "A"}
    },
    "IngresssCrypto": {"ingress_ca": "I", "ingress_certificate_cn": "ingress-operator@1"}
  },
  "ssh_key": "ssh-ed25519 AAAA",
  "server_ssh_keys": [{"file_name": "ssh_host_rsa_key", "file_content": "K"}],
  "pull_secret": "{}",
  "machine_networks": ["192.0.2.0/24"],
  "proxy": {"httpProxy": "http://p:3128", "noProxy": ".lab"},
  "status_proxy": {"httpProxy": "http://p:3128", "noProxy": ".lab,127.0.0.1"},
  "install_config": "apiVersion: v1",
  "additionalTrustBundle": {"userCaBundle": "", "proxyConfigmapName": "", "proxyConfigmapBundle": ""},
  "node_labels": {"env": "edge"},
  "a_key_of_a_later_version": {"x": 1}
}"#;

#[test]
fn an_upstream_written_file_is_read_field_by_field() {
    let r = SeedReconfiguration::parse(UPSTREAM.as_bytes()).unwrap();
    assert_eq!(
        (r.cluster_name.as_str(), r.infra_id.as_str(), r.hostname.as_str()),
        ("sno", "sno-x7k2p", "sno1")
    );
    let crypto = &r.kubeconfig_crypto_retention;
    assert_eq!(
        crypto
            .kube_api_crypto
            .serving_crypto
            .loadbalancer_external_signer_private_key,
        "B"
    );
    assert_eq!(
        crypto.kube_api_crypto.client_auth_crypto.admin_ca_certificate,
        "A"
    );
    assert_eq!(crypto.ingress_crypto.ingress_certificate_cn, "ingress-operator@1");
    assert_eq!(r.server_ssh_keys[0].file_name, "ssh_host_rsa_key");
    assert_eq!(r.proxy.as_ref().map(|p| p.https_proxy.as_str()), Some(""));
    assert_eq!(r.status_proxy.unwrap().no_proxy, ".lab,127.0.0.1");
    assert_eq!(r.node_labels.get("env").map(String::as_str), Some("edge"));
    assert_eq!(r.machine_networks, ["192.0.2.0/24"]);
}

#[test]
fn our_file_round_trips() {
    let bytes = serde_json::to_vec(&full()).unwrap();
    assert_eq!(SeedReconfiguration::parse(&bytes).unwrap(), full());
}

#[test]
fn other_versions_and_garbled_files_are_refused_with_a_reason() {
    let v2 = UPSTREAM.replace("\"api_version\": 1", "\"api_version\": 2");
    let err = SeedReconfiguration::parse(v2.as_bytes()).unwrap_err();
    assert_eq!(err, ReadError::Version(2));
    assert_eq!(err.to_string(), "unsupported seed reconfiguration version 2");
    assert_eq!(
        SeedReconfiguration::parse(b"{}").unwrap_err(),
        ReadError::Version(0),
        "a file without api_version is not version 1"
    );
    let garbled =
        SeedReconfiguration::parse(b"{\"api_version\": 1, \"node_ips\": \"192.0.2.10\"").unwrap_err();
    assert!(
        garbled
            .to_string()
            .starts_with("failed to decode the seed reconfiguration: "),
        "{garbled}"
    );
}

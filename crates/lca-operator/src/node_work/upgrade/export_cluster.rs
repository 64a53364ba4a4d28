//! Pre-pivot export of the cluster's identity (spec §6.1 step 7) into the new stateroot's
//! `opt/openshift/`: the `SeedReconfiguration` (`cluster-configuration/manifest.json`, read
//! by post-pivot and recert to turn the seed's cluster into this one), the mirror
//! configuration and local volumes to re-create (`cluster-configuration/manifests/`), the
//! NetworkManager connections and the LVM devices file. Each directory is written whole
//! or not at all (`stage_dir`).

use std::path::Path;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Client;
use kube::api::{Api, DynamicObject};
use lca_api::seedreconfig::{
    AdditionalTrustBundle, ClientAuthCrypto, IngressCrypto, KubeApiCrypto, KubeconfigCryptoRetention, Proxy,
    SEED_RECONFIGURATION_VERSION, SeedReconfiguration, ServerSshKey, ServingCrypto,
};
use serde_json::{Value, json};

use super::Ran;
use super::prepivot::stage_dir;
use crate::cluster_health::{crd_exists, kinds};
use crate::error::{Error, Result};
use crate::kubeapi;
use crate::node_work::NodeStageWork;
use crate::seedgen::cluster_info::{registry_of, split_api_url};
use lca_core::manifest_decode::{field, strip_instance_fields};

/// Relative to the new stateroot's `var`.
pub const CLUSTER_CONFIGURATION: &str = "opt/openshift/cluster-configuration";
pub const NETWORK_CONFIGURATION: &str = "opt/openshift/network-configuration";
pub const LVM_CONFIGURATION: &str = "opt/openshift/lvm-configuration";
/// Node files read (relative to the node's root).
const SSH_KEY: &str = "home/core/.ssh/authorized_keys.d/ignition";
const CHRONY: &str = "etc/chrony.conf";
const NM_CONNECTIONS: &str = "etc/NetworkManager/system-connections";
const LVM_DEVICES: &str = "etc/lvm/devices/system.devices";

pub async fn export(w: &NodeStageWork, new_var: &Path) -> Result<Ran> {
    let config = gather(w).await?;
    let json = serde_json::to_vec_pretty(&config)
        .map_err(|e| Error::invalid(format!("cannot serialize the seed reconfiguration: {e}")))?;
    let mut manifests = mirror_and_storage_manifests(&w.client).await?;
    let certmanager = super::export_certmanager::gather(&w.client).await?;
    manifests.extend(certmanager.manifests);
    let fs = w.fs();
    stage_dir(&fs, &new_var.join(CLUSTER_CONFIGURATION), |dir| {
        fs.write_private(&dir.join("manifest.json"), &json)?;
        let manifests_dir = dir.join("manifests");
        fs.create_private_dir(&manifests_dir)?;
        for (name, body) in &manifests {
            fs.write_private(&manifests_dir.join(name), body.to_string().as_bytes())?;
        }
        if !certmanager.keys.is_empty() {
            let keys_dir = dir.join(super::export_certmanager::CRYPTO_DIR);
            fs.create_private_dir(&keys_dir)?;
            for (name, pem) in &certmanager.keys {
                fs.write_private(&keys_dir.join(name), pem.as_bytes())?;
            }
        }
        Ok(())
    })?;
    let root = &w.exec.node().paths;
    let connections = root.host(NM_CONNECTIONS);
    stage_dir(&fs, &new_var.join(NETWORK_CONFIGURATION), |dir| {
        let dir = dir.join("system-connections");
        fs.create_private_dir(&dir)?;
        for name in fs.list_dir(&connections)? {
            let src = connections.join(&name);
            if fs.symlink_metadata(&src)?.is_some_and(|m| m.is_file()) {
                fs.write_private(&dir.join(&name), &fs.read(&src)?)?;
            }
        }
        Ok(())
    })?;
    let lvm = fs.read_optional(&root.host(LVM_DEVICES))?;
    let lvm_dir = new_var.join(LVM_CONFIGURATION);
    match lvm {
        Some(bytes) => stage_dir(&fs, &lvm_dir, |dir| {
            Ok(fs.write_atomic(&dir.join("system.devices"), &bytes)?)
        })?,
        None => drop(fs.remove_dir_all(&lvm_dir)?),
    }
    tracing::info!(
        manifests = manifests.len(),
        "exported the cluster, network and LVM configuration"
    );
    Ok(Ran::Done)
}

/// The `SeedReconfiguration` of this cluster and node.
async fn gather(w: &NodeStageWork) -> Result<SeedReconfiguration> {
    let c = &w.client;
    let cv = get_dynamic(c, &kinds::cluster_version(), "version").await?;
    let infra = get_dynamic(c, &kinds::infrastructure(), "cluster").await?;
    let proxy = get_dynamic(c, &kinds::proxy(), "cluster").await?;
    let install_config = config_map_key(c, "kube-system", "cluster-config-v1", "install-config").await?;
    let ic: Value = install_config
        .as_deref()
        .and_then(|t| serde_norway::from_str(t).ok())
        .unwrap_or(Value::Null);
    let (cluster_name, base_domain) = match (field(&ic, "/metadata/name"), field(&ic, "/baseDomain")) {
        (n, d) if !n.is_empty() && !d.is_empty() => (n, d),
        _ => {
            let url = field(&infra, "/status/apiServerURL");
            split_api_url(&url).ok_or_else(|| {
                Error::state(format!(
                    "cannot tell the cluster name and base domain: no install-config and API URL {url:?}"
                ))
            })?
        }
    };
    let machine_networks: Vec<String> = ic
        .pointer("/networking/machineNetwork")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|n| field(n, "/cidr"))
        .filter(|c| !c.is_empty())
        .collect();
    let node = crate::kubeapi::single_node(c)
        .await
        .map_err(Error::api("failed to list nodes"))?
        .ok_or_else(|| Error::state("no node in the cluster"))?;
    let node_ips = crate::kubeapi::internal_ips(&node);
    let fs = w.fs();
    let paths = &w.exec.node().paths;
    let trusted_ca = field(&proxy, "/spec/trustedCA/name");
    let proxy_bundle = if trusted_ca.is_empty() {
        String::new()
    } else {
        config_map_key(c, "openshift-config", &trusted_ca, "ca-bundle.crt")
            .await?
            .unwrap_or_default()
    };
    Ok(SeedReconfiguration {
        api_version: SEED_RECONFIGURATION_VERSION,
        base_domain,
        cluster_name,
        cluster_id: field(&cv, "/spec/clusterID"),
        infra_id: field(&infra, "/status/infrastructureName"),
        node_ip: node_ips.first().cloned().unwrap_or_default(),
        node_ips,
        release_registry: registry_of(&field(&cv, "/status/desired/image")),
        hostname: node.metadata.name.clone().unwrap_or_default(),
        kubeconfig_crypto_retention: crypto(c).await?,
        ssh_key: fs.read_string_optional(&paths.host(SSH_KEY))?.unwrap_or_default(),
        server_ssh_keys: server_ssh_keys(w)?,
        kubeadmin_password_hash: secret_key(c, "kube-system", "kubeadmin", "kubeadmin")
            .await?
            .unwrap_or_default(),
        raw_nm_state_config: String::new(),
        pull_secret: secret_key(c, "openshift-config", "pull-secret", ".dockerconfigjson")
            .await?
            .ok_or_else(|| Error::state("openshift-config/pull-secret has no .dockerconfigjson"))?,
        machine_network: machine_networks.first().cloned().unwrap_or_default(),
        machine_networks,
        proxy: proxy_of(&proxy, "/spec"),
        status_proxy: proxy_of(&proxy, "/status"),
        install_config: install_config.unwrap_or_default(),
        chrony_config: fs.read_string_optional(&paths.host(CHRONY))?.unwrap_or_default(),
        additional_trust_bundle: AdditionalTrustBundle {
            user_ca_bundle: config_map_key(c, "openshift-config", "user-ca-bundle", "ca-bundle.crt")
                .await?
                .unwrap_or_default(),
            proxy_configmap_name: trusted_ca,
            proxy_configmap_bundle: proxy_bundle,
        },
        node_labels: node.metadata.labels.clone().unwrap_or_default(),
    })
}

/// The signer keys and CAs that recert keeps, so kubeconfigs made for this cluster keep
/// working after the pivot (the same Secrets Prep backs up, §5.4).
async fn crypto(c: &Client) -> Result<KubeconfigCryptoRetention> {
    let ns = "openshift-kube-apiserver-operator";
    let key = |name: &'static str| async move {
        secret_key(c, ns, name, "tls.key")
            .await?
            .ok_or_else(|| Error::state(format!("secret {ns}/{name} has no tls.key")))
    };
    let router_ca = |k: &'static str| secret_key(c, "openshift-ingress-operator", "router-ca", k);
    let ingress_cert = router_ca("tls.crt").await?.unwrap_or_default();
    Ok(KubeconfigCryptoRetention {
        kube_api_crypto: KubeApiCrypto {
            serving_crypto: ServingCrypto {
                localhost_signer_private_key: key("localhost-serving-signer").await?,
                service_network_signer_private_key: key("service-network-serving-signer").await?,
                loadbalancer_external_signer_private_key: key("loadbalancer-serving-signer").await?,
            },
            client_auth_crypto: ClientAuthCrypto {
                admin_ca_certificate: config_map_key(
                    c,
                    "openshift-config",
                    "admin-kubeconfig-client-ca",
                    "ca-bundle.crt",
                )
                .await?
                .unwrap_or_default(),
            },
        },
        ingress_crypto: IngressCrypto {
            ingress_ca: router_ca("tls.key").await?.unwrap_or_default(),
            ingress_certificate_cn: crate::node_work::certs::subject_cn(&ingress_cert).map_err(|e| {
                Error::state(format!(
                    "failed to get the ingress CN from openshift-ingress-operator/router-ca: {e}"
                ))
            })?,
        },
    })
}

/// The node's SSH host keys (`/etc/ssh/ssh_host_*`), kept so the node's identity survives.
fn server_ssh_keys(w: &NodeStageWork) -> Result<Vec<ServerSshKey>> {
    let fs = w.fs();
    let dir = w.exec.node().paths.host("etc/ssh");
    let mut keys = Vec::new();
    for name in fs.list_dir(&dir)? {
        let path = dir.join(&name);
        if name.starts_with("ssh_host_") && fs.symlink_metadata(&path)?.is_some_and(|m| m.is_file()) {
            keys.push(ServerSshKey {
                file_content: fs.read_string(&path)?,
                file_name: name,
            });
        }
    }
    Ok(keys)
}

/// The mirror configuration (IDMS and ICSP lists) and local volumes of the cluster.
async fn mirror_and_storage_manifests(c: &Client) -> Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    let lists = [
        (
            "imagedigestmirrorsets.config.openshift.io",
            (
                "config.openshift.io",
                "v1",
                "ImageDigestMirrorSet",
                "imagedigestmirrorsets",
            ),
            "image-digest-mirror-set.json",
        ),
        (
            "imagecontentsourcepolicies.operator.openshift.io",
            (
                "operator.openshift.io",
                "v1alpha1",
                "ImageContentSourcePolicy",
                "imagecontentsourcepolicies",
            ),
            "image-content-source-policy-list.json",
        ),
    ];
    for (crd, (group, version, kind, plural), file) in lists {
        if !crd_exists(c, crd)
            .await
            .map_err(Error::api(format!("failed to check {crd}")))?
        {
            continue;
        }
        let items = list_clean(c, group, version, kind, plural).await?;
        if !items.is_empty() {
            let list = json!({"apiVersion": format!("{group}/{version}"), "kind": format!("{kind}List"), "items": items});
            out.push((file.to_string(), list));
        }
    }
    if crd_exists(c, "localvolumes.local.storage.openshift.io")
        .await
        .map_err(Error::api("failed to check the LocalVolume CRD"))?
    {
        for lv in list_clean(
            c,
            "local.storage.openshift.io",
            "v1",
            "LocalVolume",
            "localvolumes",
        )
        .await?
        {
            let name = format!(
                "LocalVolume_{}_{}.json",
                field(&lv, "/metadata/name"),
                field(&lv, "/metadata/namespace")
            );
            let classes: Vec<String> = lv
                .pointer("/spec/storageClassDevices")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|d| field(d, "/storageClassName"))
                .filter(|n| !n.is_empty())
                .collect();
            out.push((name, lv));
            // The storage classes the local volumes provide go with them.
            for class in classes {
                let api: Api<k8s_openapi::api::storage::v1::StorageClass> = Api::all(c.clone());
                let found = kubeapi::get_optional(&api, &class)
                    .await
                    .map_err(Error::api(format!("failed to get storageclass {class}")))?;
                if let Some(sc) = found {
                    let mut sc = serde_json::to_value(sc).map_err(|e| Error::invalid(e.to_string()))?;
                    strip_instance_fields(&mut sc);
                    sc["apiVersion"] = json!("storage.k8s.io/v1");
                    sc["kind"] = json!("StorageClass");
                    out.push((format!("StorageClass_{class}_.json"), sc));
                }
            }
        }
    }
    Ok(out)
}

/// All objects of a kind, without what belongs to this cluster's copy of them.
async fn list_clean(c: &Client, group: &str, version: &str, kind: &str, plural: &str) -> Result<Vec<Value>> {
    let mut items = crate::node_work::validate::list_dynamic(c, group, version, kind, plural).await?;
    for item in &mut items {
        if let Some(map) = item.as_object_mut() {
            map.remove("status");
        }
        strip_instance_fields(item);
        item["apiVersion"] = json!(format!("{group}/{version}"));
        item["kind"] = json!(kind);
    }
    Ok(items)
}

async fn get_dynamic(c: &Client, ar: &kube::api::ApiResource, name: &str) -> Result<Value> {
    let api: Api<DynamicObject> = Api::all_with(c.clone(), ar);
    let obj = api
        .get(name)
        .await
        .map_err(Error::api(format!("failed to get {} {name}", ar.kind)))?;
    serde_json::to_value(obj).map_err(|e| Error::invalid(e.to_string()))
}

async fn config_map_key(c: &Client, ns: &str, name: &str, key: &str) -> Result<Option<String>> {
    let api: Api<ConfigMap> = Api::namespaced(c.clone(), ns);
    let cm = kubeapi::get_optional(&api, name)
        .await
        .map_err(Error::api(format!("failed to get configmap {ns}/{name}")))?;
    Ok(cm.and_then(|cm| cm.data?.remove(key)))
}

async fn secret_key(c: &Client, ns: &str, name: &str, key: &str) -> Result<Option<String>> {
    let api: Api<Secret> = Api::namespaced(c.clone(), ns);
    let secret = kubeapi::get_optional(&api, name)
        .await
        .map_err(Error::api(format!("failed to get secret {ns}/{name}")))?;
    Ok(secret
        .and_then(|s| s.data?.remove(key))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned()))
}

fn proxy_of(proxy: &Value, at: &str) -> Option<Proxy> {
    let p = Proxy {
        http_proxy: field(proxy, &format!("{at}/httpProxy")),
        https_proxy: field(proxy, &format!("{at}/httpsProxy")),
        no_proxy: field(proxy, &format!("{at}/noProxy")),
    };
    (p != Proxy::default()).then_some(p)
}

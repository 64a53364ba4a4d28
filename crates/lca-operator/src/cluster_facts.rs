//! Facts about the cluster that both sides of a seed compare: Prep checks a seed's labels
//! against them (spec §5.2) and seed generation writes them into the seed it makes (§1.7),
//! so a seed made of a cluster passes Prep on a cluster set up like it. Read from the API
//! with whatever client the caller has.

use k8s_openapi::api::core::v1::{ConfigMap, Node};
use kube::Client;
use kube::api::Api;
use lca_seed::checks::ClusterFacts;

use crate::error::{Error, Result, api_message};
use crate::node_work::validate::{get_dynamic, list_dynamic, str_at};

/// What the seed checks of Prep compare with a seed's labels, and what a seed made of this
/// cluster says about it.
pub async fn gather(c: &Client, storage_target: &str) -> Result<ClusterFacts> {
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "openshift-config");
    let bundle = |name: String| {
        let cms = cms.clone();
        async move {
            cms.get_opt(&name)
                .await
                .map_err(|e| Error::state(api_message(&e)))
                .map(|cm| {
                    cm.and_then(|cm| cm.data)
                        .and_then(|d| d.get("ca-bundle.crt").cloned())
                        .is_some_and(|s| !s.is_empty())
                })
        }
    };
    // Independent reads at once: each is a round trip to the API server.
    let (proxy, has_user_ca_bundle, has_fips, networks) = futures::join!(
        get_dynamic(
            c,
            "config.openshift.io",
            "v1",
            "Proxy",
            "proxies",
            None,
            "cluster"
        ),
        bundle("user-ca-bundle".into()),
        node_fips(c),
        node_networks(c),
    );
    let (proxy, has_user_ca_bundle, has_fips) = (proxy?, has_user_ca_bundle?, has_fips?);
    let proxy_field = |f: &str| {
        proxy
            .as_ref()
            .and_then(|p| str_at(p, &["spec", f]))
            .unwrap_or_default()
    };
    let has_proxy = ["httpProxy", "httpsProxy", "noProxy"]
        .iter()
        .any(|f| !proxy_field(f).is_empty());
    let trusted_ca = proxy
        .as_ref()
        .and_then(|p| str_at(p, &["spec", "trustedCA", "name"]))
        .unwrap_or_default();
    let proxy_trusted_ca_has_content = if trusted_ca.is_empty() {
        false
    } else {
        bundle(trusted_ca.clone()).await?
    };
    Ok(ClusterFacts {
        has_proxy,
        has_fips,
        has_user_ca_bundle,
        proxy_trusted_ca_name: trusted_ca,
        proxy_trusted_ca_has_content,
        container_storage_mountpoint_target: storage_target.to_string(),
        networks: networks?,
    })
}

/// The node's InternalIPs and the install-config's machine networks (`None` when the node
/// reports no IP: nothing to compare).
async fn node_networks(c: &Client) -> Result<Option<lca_core::network_check::Networks>> {
    let node = crate::kubeapi::single_node(c)
        .await
        .map_err(|e| Error::state(api_message(&e)))?;
    let node_ips = node
        .as_ref()
        .map(crate::kubeapi::internal_ips)
        .unwrap_or_default();
    if node_ips.is_empty() {
        return Ok(None);
    }
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "kube-system");
    let install_config = cms
        .get_opt("cluster-config-v1")
        .await
        .map_err(|e| Error::state(api_message(&e)))?
        .and_then(|cm| cm.data?.remove("install-config"))
        .unwrap_or_default();
    let ic: serde_json::Value = serde_norway::from_str(&install_config).unwrap_or_default();
    let machine_networks = ic
        .pointer("/networking/machineNetwork")
        .and_then(|v| v.as_array())
        .into_iter()
        .flatten()
        .filter_map(|n| n.get("cidr")?.as_str().map(str::to_string))
        .collect();
    Ok(Some(lca_core::network_check::Networks {
        node_ips,
        machine_networks,
    }))
}

/// `spec.fips` of the MachineConfig the single node currently runs.
async fn node_fips(c: &Client) -> Result<bool> {
    let nodes: Api<Node> = Api::all(c.clone());
    let list = nodes
        .list(&Default::default())
        .await
        .map_err(Error::api("failed to list nodes"))?;
    if list.items.len() != 1 {
        return Err(Error::state(format!(
            "expected exactly one node, found {}",
            list.items.len()
        )));
    }
    let node = &list.items[0];
    let Some(mc) = node
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(lca_api::consts::annotations::MCO_CURRENT_CONFIG))
    else {
        return Ok(false);
    };
    let obj = get_dynamic(
        c,
        "machineconfiguration.openshift.io",
        "v1",
        "MachineConfig",
        "machineconfigs",
        None,
        mc,
    )
    .await?;
    Ok(obj
        .and_then(|o| o.pointer("/spec/fips").and_then(|v| v.as_bool()))
        .unwrap_or(false))
}

/// The mirrored sources of the cluster's ICSPs and IDMSs (registry hosts).
pub async fn mirror_sources(c: &Client) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let kinds = [
        (
            "operator.openshift.io",
            "v1alpha1",
            "ImageContentSourcePolicy",
            "imagecontentsourcepolicies",
            "/spec/repositoryDigestMirrors",
        ),
        (
            "config.openshift.io",
            "v1",
            "ImageDigestMirrorSet",
            "imagedigestmirrorsets",
            "/spec/imageDigestMirrors",
        ),
    ];
    for (group, version, kind, plural, pointer) in kinds {
        for obj in list_dynamic(c, group, version, kind, plural).await? {
            let mirrors = obj
                .pointer(pointer)
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten();
            for src in mirrors.filter_map(|m| m.get("source").and_then(|s| s.as_str())) {
                out.push(src.split('/').next().unwrap_or(src).to_string());
            }
        }
    }
    Ok(out)
}

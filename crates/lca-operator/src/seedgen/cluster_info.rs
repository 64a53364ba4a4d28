//! The seed cluster info (`SeedClusterInfo`, spec §1.7) gathered from the API before the
//! imager runs, because `lca-cli create` has no kube client (the reference's imager reads it
//! with the node kubeconfig while kubelet is still up). Written to the workspace as
//! `seed-cluster-info.json`, which `lca-cli create` turns into `manifest.json` and the OCI label.
//!
//! Sources: ClusterVersion (version, release registry), Infrastructure (cluster name and base
//! domain from the API URL), the node (IPs, hostname), the facts Prep compares
//! (`crate::cluster_facts`: proxy, FIPS, trust bundle, machine networks), the mirror
//! configuration (IDMS / ICSP) and the ingress CA's CN (`router-ca`). Also the images the
//! seed's `containers.list` drops and adds (`seed_images`).

use kube::api::{Api, DynamicObject};
use kube::{Client, ResourceExt};
use lca_api::files::SeedClusterInfo;
use serde_json::Value;

use crate::cluster_health::kinds;
use crate::error::{Error, Result};

async fn get(client: &Client, ar: &kube::core::ApiResource, name: &str) -> Result<DynamicObject> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), ar);
    api.get(name)
        .await
        .map_err(Error::api(format!("failed to get {} {name}", ar.kind)))
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// `api.<cluster>.<domain>` of `https://api.<cluster>.<domain>:6443` as (cluster, domain).
pub fn split_api_url(url: &str) -> Option<(String, String)> {
    let host = url.split("://").nth(1)?.split([':', '/']).next()?;
    let rest = host.strip_prefix("api.")?;
    let (cluster, domain) = rest.split_once('.')?;
    Some((cluster.to_string(), domain.to_string()))
}

/// Registry host of an image reference (`quay.io/x/y:z` → `quay.io`).
pub fn registry_of(image: &str) -> String {
    image
        .split('/')
        .next()
        .filter(|_| image.contains('/'))
        .unwrap_or_default()
        .to_string()
}

/// Gather the seed cluster info.
pub async fn gather(client: &Client, recert_image: &str, storage_target: &str) -> Result<SeedClusterInfo> {
    let cv = get(client, &kinds::cluster_version(), "version").await?;
    let version = s(&cv.data["status"]["desired"]["version"]);
    if version.is_empty() {
        return Err(Error::state(
            "ClusterVersion version has no status.desired.version",
        ));
    }
    let infra = get(client, &kinds::infrastructure(), "cluster").await?;
    let (cluster_name, base_domain) =
        split_api_url(&s(&infra.data["status"]["apiServerURL"])).unwrap_or_default();
    let (facts, mirrors, ingress_cn) = futures::join!(
        crate::cluster_facts::gather(client, storage_target),
        crate::cluster_facts::mirror_sources(client),
        ingress_cn(client),
    );
    let node = crate::kubeapi::single_node(client)
        .await
        .map_err(Error::api("failed to get node list"))?
        .ok_or_else(|| Error::state("no node in the cluster"))?;
    let node_ips = crate::kubeapi::internal_ips(&node);
    let addresses = node
        .status
        .as_ref()
        .and_then(|st| st.addresses.clone())
        .unwrap_or_default();
    let hostname = addresses
        .iter()
        .find(|a| a.type_ == "Hostname")
        .map(|a| a.address.clone())
        .unwrap_or_else(|| node.name_any());
    let mut info = SeedClusterInfo {
        seed_cluster_ocp_version: version,
        base_domain,
        cluster_name,
        node_ip: node_ips.first().cloned().unwrap_or_default(),
        node_ips,
        release_registry: registry_of(&s(&cv.data["status"]["desired"]["image"])),
        mirror_registry_configured: !mirrors?.is_empty(),
        sno_hostname: hostname,
        recert_image_pull_spec: recert_image.to_string(),
        ingress_certificate_cn: ingress_cn?,
        ..Default::default()
    };
    facts?.describe_seed(&mut info);
    Ok(info)
}

/// The CatalogSources' images and the CSVs' related images (`lca-cli create` turns them
/// into `containers.list`, §8.5 step 3).
pub async fn seed_images(client: &Client) -> Result<lca_api::files::SeedImages> {
    use crate::node_work::validate::list_dynamic;
    let (catalogs, csvs) = futures::join!(
        list_dynamic(
            client,
            "operators.coreos.com",
            "v1alpha1",
            "CatalogSource",
            "catalogsources"
        ),
        list_dynamic(
            client,
            "operators.coreos.com",
            "v1alpha1",
            "ClusterServiceVersion",
            "clusterserviceversions"
        ),
    );
    let catalog_source_images = catalogs?
        .iter()
        .map(|c| s(&c["spec"]["image"]))
        .filter(|i| !i.is_empty())
        .collect();
    let related_images = csvs?
        .iter()
        .flat_map(|c| c["spec"]["relatedImages"].as_array().cloned().unwrap_or_default())
        .map(|r| s(&r["image"]))
        .filter(|i| !i.is_empty())
        .collect();
    Ok(lca_api::files::SeedImages {
        catalog_source_images,
        related_images,
    })
}

/// The CN of the ingress CA (`openshift-ingress-operator/router-ca`), "" without one.
async fn ingress_cn(client: &Client) -> Result<String> {
    let api: Api<k8s_openapi::api::core::v1::Secret> =
        Api::namespaced(client.clone(), "openshift-ingress-operator");
    let secret = crate::kubeapi::get_optional(&api, "router-ca")
        .await
        .map_err(Error::api(
            "failed to get secret openshift-ingress-operator/router-ca",
        ))?;
    let Some(cert) = secret.and_then(|s| s.data?.remove("tls.crt")) else {
        return Ok(String::new());
    };
    crate::node_work::certs::subject_cn(&String::from_utf8_lossy(&cert.0)).map_err(|e| {
        Error::state(format!(
            "failed to get the ingress CN from openshift-ingress-operator/router-ca: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_the_api_url() {
        assert_eq!(
            split_api_url("https://api.seed.example.com:6443"),
            Some(("seed".into(), "example.com".into()))
        );
        assert_eq!(split_api_url("https://10.0.0.1:6443"), None);
        assert_eq!(
            registry_of("quay.io/openshift-release-dev/ocp-release:4.17.0"),
            "quay.io"
        );
        assert_eq!(registry_of("ubuntu"), "");
    }
}

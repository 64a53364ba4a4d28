//! On-disk and in-image file formats shared with the reference implementation. Field names
//! and `omitempty` behaviour are part of the contract: seeds and node files written by either
//! implementation must be readable by the other.

use serde::{Deserialize, Serialize};

/// `manifest.json` of a seed image and the `seed_cluster_info` OCI label.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SeedClusterInfo {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub seed_cluster_ocp_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub base_domain: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub cluster_name: String,
    /// Deprecated single-stack field, kept for older readers.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub node_ip: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub node_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub release_registry: String,
    #[serde(default)]
    pub mirror_registry_configured: bool,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sno_hostname: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub recert_image_pull_spec: String,
    /// Never omitted: a seed without a proxy says so explicitly.
    #[serde(default)]
    pub has_proxy: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cluster_network_cidr: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub service_network_cidr: Vec<String>,
    /// Never omitted.
    #[serde(default)]
    pub has_fips: bool,
    #[serde(
        rename = "additionalTrustBundle",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub additional_trust_bundle: Option<AdditionalTrustBundle>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub container_storage_mountpoint_target: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ingress_certificate_cn: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub machine_networks: Vec<String>,
}

impl SeedClusterInfo {
    /// The seed node's IPs: `node_ips`, or the deprecated single `node_ip` of older seeds.
    pub fn ips(&self) -> Vec<String> {
        if self.node_ips.is_empty() && !self.node_ip.is_empty() {
            vec![self.node_ip.clone()]
        } else {
            self.node_ips.clone()
        }
    }
}

/// Trust-bundle facts of the seed cluster.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AdditionalTrustBundle {
    #[serde(default)]
    pub has_user_ca_bundle: bool,
    #[serde(default)]
    pub proxy_configmap_name: String,
}

/// What the operator reads from the seed cluster for `lca-cli create`'s `containers.list`
/// (spec §8.5 step 3), which runs without a kube client: images of the CatalogSources (not
/// worth precaching: catalogs change with the release) and the CSVs' related images (needed
/// by the operators after the pivot). lca-rs only: upstream's imager reads them itself.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SeedImages {
    #[serde(default)]
    pub catalog_source_images: Vec<String>,
    #[serde(default)]
    pub related_images: Vec<String>,
}

/// `var/lib/lca/autorollback_config.json` inside the new stateroot.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct AutoRollbackConfig {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub monitor_enabled: bool,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub monitor_timeout: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled_components: Option<AutoRollbackComponents>,
}

/// Which post-pivot failures trigger an automatic rollback.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct AutoRollbackComponents {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub config: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub postpivot: bool,
}

/// Default init-monitor timeout when the CR leaves it at 0.
pub const DEFAULT_INIT_MONITOR_TIMEOUT_SECONDS: i64 = 1800;

/// `var/lib/lca/workspace/precache_status.json`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct PrecacheStatus {
    pub total: u64,
    pub pulled: u64,
    pub failed: u64,
    /// The reference writes `null` when nothing failed (a nil Go slice).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub failed_pulls: Vec<String>,
}

/// A list that may be `null` on disk reads as empty; any other non-list is still an error.
fn null_as_empty<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<Vec<T>>::deserialize(d).map(Option::unwrap_or_default)
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

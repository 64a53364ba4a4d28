//! The seed reconfiguration (`/opt/openshift/cluster-configuration/manifest.json` in the new
//! stateroot, spec §1.7): what pre-pivot exports from the cluster being upgraded and what
//! post-pivot reads at the first boot of the new stateroot. Either side may be upstream's LCA,
//! so every key is upstream's, with its quirks: the crypto block's Go structs carry no JSON
//! tags, so its keys are Go field names (`IngresssCrypto` with three `s`), that block and
//! `additionalTrustBundle` are always written, and every other key but `api_version` is
//! left out when empty.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The only format version this project writes and reads (`SeedReconfigurationVersion`).
pub const SEED_RECONFIGURATION_VERSION: i64 = 1;

/// Where pre-pivot writes it, relative to the new stateroot's `var` (`/var/opt/openshift` is
/// `/opt/openshift` on the booted node).
pub const STATEROOT_VAR_PATH: &str = "opt/openshift/cluster-configuration/manifest.json";

/// Where post-pivot reads it on the booted node, relative to `/`.
pub const NODE_PATH: &str = "var/opt/openshift/cluster-configuration/manifest.json";

fn empty<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// `SeedReconfiguration`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct SeedReconfiguration {
    /// Never omitted; must be [`SEED_RECONFIGURATION_VERSION`].
    #[serde(default)]
    pub api_version: i64,
    #[serde(default, skip_serializing_if = "empty")]
    pub base_domain: String,
    #[serde(default, skip_serializing_if = "empty")]
    pub cluster_name: String,
    #[serde(default, skip_serializing_if = "empty")]
    pub cluster_id: String,
    #[serde(default, skip_serializing_if = "empty")]
    pub infra_id: String,
    /// Deprecated single-stack field, kept for older readers.
    #[serde(default, skip_serializing_if = "empty")]
    pub node_ip: String,
    #[serde(default, skip_serializing_if = "empty")]
    pub node_ips: Vec<String>,
    #[serde(default, skip_serializing_if = "empty")]
    pub release_registry: String,
    #[serde(default, skip_serializing_if = "empty")]
    pub hostname: String,
    /// Always written (a Go struct field without a tag).
    #[serde(rename = "KubeconfigCryptoRetention", default)]
    pub kubeconfig_crypto_retention: KubeconfigCryptoRetention,
    #[serde(default, skip_serializing_if = "empty")]
    pub ssh_key: String,
    #[serde(default, skip_serializing_if = "empty")]
    pub server_ssh_keys: Vec<ServerSshKey>,
    #[serde(default, skip_serializing_if = "empty")]
    pub kubeadmin_password_hash: String,
    #[serde(default, skip_serializing_if = "empty")]
    pub raw_nm_state_config: String,
    #[serde(default, skip_serializing_if = "empty")]
    pub pull_secret: String,
    /// Deprecated single-network field, kept for older readers.
    #[serde(default, skip_serializing_if = "empty")]
    pub machine_network: String,
    #[serde(default, skip_serializing_if = "empty")]
    pub machine_networks: Vec<String>,
    /// The Proxy CR's spec.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<Proxy>,
    /// The Proxy CR's status (what the cluster's operators actually use).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_proxy: Option<Proxy>,
    #[serde(default, skip_serializing_if = "empty")]
    pub install_config: String,
    #[serde(default, skip_serializing_if = "empty")]
    pub chrony_config: String,
    /// Always written: a struct, which Go's `omitempty` never leaves out.
    #[serde(rename = "additionalTrustBundle", default)]
    pub additional_trust_bundle: AdditionalTrustBundle,
    #[serde(default, skip_serializing_if = "empty")]
    pub node_labels: BTreeMap<String, String>,
}

/// The crypto material recert needs so that existing kubeconfigs keep working.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeconfigCryptoRetention {
    #[serde(rename = "KubeAPICrypto", default)]
    pub kube_api_crypto: KubeApiCrypto,
    #[serde(rename = "IngresssCrypto", default)]
    pub ingress_crypto: IngressCrypto,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct KubeApiCrypto {
    #[serde(rename = "ServingCrypto", default)]
    pub serving_crypto: ServingCrypto,
    #[serde(rename = "ClientAuthCrypto", default)]
    pub client_auth_crypto: ClientAuthCrypto,
}

/// The API server's serving signer keys (PEM).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ServingCrypto {
    #[serde(default, skip_serializing_if = "empty")]
    pub localhost_signer_private_key: String,
    #[serde(default, skip_serializing_if = "empty")]
    pub service_network_signer_private_key: String,
    #[serde(default, skip_serializing_if = "empty")]
    pub loadbalancer_external_signer_private_key: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientAuthCrypto {
    #[serde(default, skip_serializing_if = "empty")]
    pub admin_ca_certificate: String,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct IngressCrypto {
    #[serde(default, skip_serializing_if = "empty")]
    pub ingress_ca: String,
    /// The common name of the ingress certificate (`router-ca`'s subject).
    #[serde(default, skip_serializing_if = "empty")]
    pub ingress_certificate_cn: String,
}

/// One SSH host key file of the node (`/etc/ssh/ssh_host_*`).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerSshKey {
    #[serde(default)]
    pub file_name: String,
    #[serde(default)]
    pub file_content: String,
}

/// Proxy settings, as install-config's.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Proxy {
    #[serde(default, skip_serializing_if = "empty")]
    pub http_proxy: String,
    #[serde(default, skip_serializing_if = "empty")]
    pub https_proxy: String,
    #[serde(default, skip_serializing_if = "empty")]
    pub no_proxy: String,
}

/// The cluster's additional trust bundle; its three keys are always written.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct AdditionalTrustBundle {
    #[serde(default)]
    pub user_ca_bundle: String,
    #[serde(default)]
    pub proxy_configmap_name: String,
    #[serde(default)]
    pub proxy_configmap_bundle: String,
}

/// Why a seed reconfiguration file cannot be used.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Not JSON of this shape (the decoder's message).
    Garbled(String),
    /// A format version this project does not know.
    Version(i64),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Garbled(e) => write!(f, "failed to decode the seed reconfiguration: {e}"),
            // Upstream post-pivot's words.
            ReadError::Version(v) => write!(f, "unsupported seed reconfiguration version {v}"),
        }
    }
}

impl std::error::Error for ReadError {}

impl SeedReconfiguration {
    /// Parse the file; a version other than [`SEED_RECONFIGURATION_VERSION`] is refused.
    /// Keys this version does not know are ignored, as upstream's decoder does.
    pub fn parse(json: &[u8]) -> Result<Self, ReadError> {
        let parsed: Self = serde_json::from_slice(json).map_err(|e| ReadError::Garbled(e.to_string()))?;
        if parsed.api_version != SEED_RECONFIGURATION_VERSION {
            return Err(ReadError::Version(parsed.api_version));
        }
        Ok(parsed)
    }
}

#[cfg(test)]
#[path = "seedreconfig_tests.rs"]
mod tests;

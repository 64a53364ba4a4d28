//! Prep's seed compatibility checks on the seed's OCI labels (spec §5.2), as a pure
//! function: the operator gathers [`ClusterFacts`] from the API and calls
//! [`check_seed_labels`] before pulling. Messages are the reference's, byte for byte.

use std::collections::BTreeMap;

use lca_api::consts::labels;
use lca_api::files::SeedClusterInfo;

use crate::error::{Error, Result};

/// What the cluster being upgraded looks like, for the checks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClusterFacts {
    /// Proxy `cluster` has any of httpProxy / httpsProxy / noProxy.
    pub has_proxy: bool,
    /// `spec.fips` of the node's current MachineConfig.
    pub has_fips: bool,
    /// `openshift-config/user-ca-bundle` has a non-empty `ca-bundle.crt`.
    pub has_user_ca_bundle: bool,
    /// Proxy `spec.trustedCA.name` ("" when unset).
    pub proxy_trusted_ca_name: String,
    /// That ConfigMap has non-empty `ca-bundle.crt` (ignored for `user-ca-bundle`).
    pub proxy_trusted_ca_has_content: bool,
    pub container_storage_mountpoint_target: String,
    /// The node's IPs and machine networks, when known: checked against the seed's as
    /// post-pivot checks them (§6.4 step 5), so a mismatched seed fails at Prep.
    pub networks: Option<lca_core::network_check::Networks>,
}

impl ClusterFacts {
    /// Record in `info` what a seed made of this cluster says about it (§1.7): exactly the
    /// facts Prep compares, so the seed passes Prep on a cluster set up like this one.
    pub fn describe_seed(&self, info: &mut SeedClusterInfo) {
        info.has_proxy = self.has_proxy;
        info.has_fips = self.has_fips;
        info.additional_trust_bundle = Some(lca_api::files::AdditionalTrustBundle {
            has_user_ca_bundle: self.has_user_ca_bundle,
            proxy_configmap_name: self.proxy_trusted_ca_name.clone(),
        });
        info.container_storage_mountpoint_target = self.container_storage_mountpoint_target.clone();
        if let Some(n) = &self.networks {
            info.node_ip = n.node_ips.first().cloned().unwrap_or_default();
            info.node_ips = n.node_ips.clone();
            info.machine_networks = n.machine_networks.clone();
        }
    }
}

/// Run every label check in the reference's order; the first failure's message is the
/// error. On success returns the seed cluster info (default when the label is absent).
pub fn check_seed_labels(
    labels_: &BTreeMap<String, String>,
    cluster: &ClusterFacts,
) -> Result<SeedClusterInfo> {
    let version = labels_.get(labels::SEED_FORMAT_VERSION).ok_or_else(|| {
        invalid(format!(
            "seed image is missing the {} label, please build a new image using the latest version of the lca-cli",
            labels::SEED_FORMAT_VERSION
        ))
    })?;
    if version.trim() != labels::SEED_FORMAT.to_string() {
        return Err(invalid(format!(
            "seed image format version mismatch: expected {}, got {version}",
            labels::SEED_FORMAT
        )));
    }
    let info: SeedClusterInfo = match labels_.get(labels::SEED_CLUSTER_INFO) {
        Some(json) => serde_json::from_str(json).map_err(|e| {
            invalid(format!(
                "failed to parse seed cluster info from the {} label: {e}",
                labels::SEED_CLUSTER_INFO
            ))
        })?,
        None => SeedClusterInfo::default(),
    };
    match (info.has_proxy, cluster.has_proxy) {
        (true, false) => {
            return Err(invalid(
                "seed image has a proxy but the cluster being upgraded does not, this combination is not supported",
            ));
        }
        (false, true) => {
            return Err(invalid(
                "seed image does not have a proxy but the cluster being upgraded does, this combination is not supported",
            ));
        }
        _ => {}
    }
    match (info.has_fips, cluster.has_fips) {
        (true, false) => {
            return Err(invalid(
                "seed image has FIPS enabled but the cluster being upgraded does not, this combination is not supported",
            ));
        }
        (false, true) => {
            return Err(invalid(
                "seed image does not have FIPS enabled but the cluster being upgraded does, this combination is not supported",
            ));
        }
        _ => {}
    }
    if let Some(bundle) = &info.additional_trust_bundle {
        check_trust_bundle(bundle, cluster)?;
    }
    let seed_storage = &info.container_storage_mountpoint_target;
    if !seed_storage.is_empty() && *seed_storage != cluster.container_storage_mountpoint_target {
        return Err(invalid(format!(
            "container storage mountpoint target mismatch: seed={seed_storage}, cluster={}",
            cluster.container_storage_mountpoint_target
        )));
    }
    let seed_ips = info.ips();
    if let Some(target) = &cluster.networks
        && !seed_ips.is_empty()
    {
        let seed = lca_core::network_check::Networks {
            node_ips: seed_ips,
            machine_networks: info.machine_networks.clone(),
        };
        lca_core::network_check::check(&seed, target).map_err(invalid)?;
    }
    Ok(info)
}

fn invalid(message: impl Into<String>) -> Error {
    Error::Invalid(message.into())
}

fn check_trust_bundle(bundle: &lca_api::files::AdditionalTrustBundle, cluster: &ClusterFacts) -> Result<()> {
    match (bundle.has_user_ca_bundle, cluster.has_user_ca_bundle) {
        (true, false) => {
            return Err(invalid(
                "seed image has an openshift-config/user-ca-bundle configmap but the cluster being upgraded does not, this combination is not supported",
            ));
        }
        (false, true) => {
            return Err(invalid(
                "seed image does not have an openshift-config/user-ca-bundle configmap but the cluster being upgraded does, this combination is not supported",
            ));
        }
        _ => {}
    }
    let name = cluster.proxy_trusted_ca_name.as_str();
    // user-ca-bundle's content was checked above; any other CM must have content.
    if !name.is_empty() && name != "user-ca-bundle" && !cluster.proxy_trusted_ca_has_content {
        return Err(invalid(format!(
            "proxy trustedCA configmap openshift-config/{name} exists but is empty"
        )));
    }
    if bundle.proxy_configmap_name != name {
        return Err(invalid(format!(
            "seed image's Proxy trustedCA configmap name {:?} (oc get proxy -oyaml) mismatches cluster's name {:?}, this combination is not supported",
            bundle.proxy_configmap_name, name
        )));
    }
    Ok(())
}

#[cfg(test)]
mod seed_of_cluster {
    use super::*;

    /// Every combination of the facts Prep compares: a seed described from a cluster passes
    /// Prep on that cluster, unless the cluster's own trustedCA ConfigMap is empty (which
    /// fails Prep whatever the seed says).
    #[test]
    fn a_seed_made_of_a_cluster_passes_prep_on_it() {
        let names = ["", "user-ca-bundle", "custom-ca"];
        let networks = [
            None,
            Some(lca_core::network_check::Networks {
                node_ips: vec!["192.168.1.20".into()],
                machine_networks: vec!["192.168.1.0/24".into()],
            }),
            Some(lca_core::network_check::Networks {
                node_ips: vec!["192.168.1.20".into(), "fd00::20".into()],
                machine_networks: vec!["192.168.1.0/24".into(), "fd00::/64".into()],
            }),
        ];
        let mut checked = 0;
        for bits in 0..16u8 {
            for name in names {
                for net in &networks {
                    let facts = ClusterFacts {
                        has_proxy: bits & 1 != 0,
                        has_fips: bits & 2 != 0,
                        has_user_ca_bundle: bits & 4 != 0,
                        proxy_trusted_ca_has_content: bits & 8 != 0,
                        proxy_trusted_ca_name: name.into(),
                        container_storage_mountpoint_target: "/var/lib/containers".into(),
                        networks: net.clone(),
                    };
                    let mut info = SeedClusterInfo::default();
                    facts.describe_seed(&mut info);
                    let labels = BTreeMap::from([
                        (
                            labels::SEED_FORMAT_VERSION.to_string(),
                            labels::SEED_FORMAT.to_string(),
                        ),
                        (
                            labels::SEED_CLUSTER_INFO.to_string(),
                            serde_json::to_string(&info).unwrap(),
                        ),
                    ]);
                    let broken = name == "custom-ca" && !facts.proxy_trusted_ca_has_content;
                    assert_eq!(check_seed_labels(&labels, &facts).is_ok(), !broken, "{facts:?}");
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 144);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn labels(version: Option<&str>, info: Option<&str>) -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        if let Some(v) = version {
            l.insert(labels::SEED_FORMAT_VERSION.to_string(), v.to_string());
        }
        if let Some(i) = info {
            l.insert(labels::SEED_CLUSTER_INFO.to_string(), i.to_string());
        }
        l
    }

    fn err(l: &BTreeMap<String, String>, c: &ClusterFacts) -> String {
        check_seed_labels(l, c).unwrap_err().to_string()
    }

    #[test]
    fn format_version_messages_are_exact() {
        let c = ClusterFacts::default();
        assert_eq!(
            err(&labels(None, None), &c),
            "seed image is missing the com.openshift.lifecycle-agent.seed_format_version label, please build a new image using the latest version of the lca-cli"
        );
        assert_eq!(
            err(&labels(Some("3"), None), &c),
            "seed image format version mismatch: expected 4, got 3"
        );
        assert!(check_seed_labels(&labels(Some("4"), None), &c).is_ok());
    }

    #[test]
    fn proxy_fips_bundle_and_storage_checks() {
        let proxy = labels(Some("4"), Some(r#"{"has_proxy":true,"has_fips":false}"#));
        assert_eq!(
            err(&proxy, &ClusterFacts::default()),
            "seed image has a proxy but the cluster being upgraded does not, this combination is not supported"
        );
        let plain = labels(Some("4"), Some(r#"{"has_proxy":false,"has_fips":false}"#));
        let c = ClusterFacts {
            has_proxy: true,
            ..Default::default()
        };
        assert_eq!(
            err(&plain, &c),
            "seed image does not have a proxy but the cluster being upgraded does, this combination is not supported"
        );
        let c = ClusterFacts {
            has_fips: true,
            ..Default::default()
        };
        assert!(err(&plain, &c).starts_with("seed image does not have FIPS enabled but"));
        let bundle = labels(
            Some("4"),
            Some(
                r#"{"has_proxy":false,"has_fips":false,"additionalTrustBundle":{"hasUserCaBundle":true,"proxyConfigmapName":"user-ca-bundle"}}"#,
            ),
        );
        assert!(
            err(&bundle, &ClusterFacts::default())
                .starts_with("seed image has an openshift-config/user-ca-bundle configmap but the cluster")
        );
        let c = ClusterFacts {
            has_user_ca_bundle: true,
            proxy_trusted_ca_name: "user-ca-bundle".into(),
            ..Default::default()
        };
        assert!(check_seed_labels(&bundle, &c).is_ok());
        let c = ClusterFacts {
            has_user_ca_bundle: true,
            proxy_trusted_ca_name: "other".into(),
            ..Default::default()
        };
        assert_eq!(
            err(&bundle, &c),
            "proxy trustedCA configmap openshift-config/other exists but is empty"
        );
        let c = ClusterFacts {
            proxy_trusted_ca_has_content: true,
            ..c
        };
        assert_eq!(
            err(&bundle, &c),
            "seed image's Proxy trustedCA configmap name \"user-ca-bundle\" (oc get proxy -oyaml) mismatches cluster's name \"other\", this combination is not supported"
        );
        let storage = labels(
            Some("4"),
            Some(r#"{"container_storage_mountpoint_target":"/var/lib/containers"}"#),
        );
        let c = ClusterFacts {
            container_storage_mountpoint_target: "/sysroot/containers".into(),
            ..Default::default()
        };
        assert_eq!(
            err(&storage, &c),
            "container storage mountpoint target mismatch: seed=/var/lib/containers, cluster=/sysroot/containers"
        );
        let v4 = labels(Some("4"), Some(r#"{"node_ips":["192.168.1.10"]}"#));
        let v6 = |ip: &str| ClusterFacts {
            networks: Some(lca_core::network_check::Networks {
                node_ips: vec![ip.into()],
                machine_networks: vec![],
            }),
            ..Default::default()
        };
        assert_eq!(
            err(&v4, &v6("fd00::20")),
            "IP family mismatch: the seed's node IP 192.168.1.10 is IPv4 and the node's fd00::20 is IPv6"
        );
        assert!(check_seed_labels(&v4, &v6("10.0.0.5")).is_ok());
    }
}

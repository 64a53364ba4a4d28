//! The invariants of the `seed_labels` fuzz target: Prep's compatibility checks on a seed
//! image's OCI labels (`lca_seed::checks::check_seed_labels`) and the seed's `manifest.json`
//! (`SeedClusterInfo`, read with serde_json as `lca-cli stateroot-setup` reads it), against
//! cluster facts that come from the input too.
//!
//! Shared by the fuzz target (`lca_fuzz::seed_checks`) and the stable replay test
//! `crates/lca-cli/tests/fuzz_corpus.rs`, which includes this file with `#[path]`.

use std::collections::BTreeMap;

use lca_api::consts::labels;
use lca_api::files::SeedClusterInfo;
use lca_core::network_check::{self, Networks};
use lca_seed::checks::{ClusterFacts, check_seed_labels};
use serde_json::Value;

/// Byte that separates the three parts of a `seed_labels` input.
pub const PART_SEPARATOR: u8 = 0xFF;

/// Every message `check_seed_labels` fails with starts with one of these (the reference's
/// wording, `lca_seed::checks` and `lca_core::network_check`).
pub const ERROR_PREFIXES: &[&str] = &[
    "seed image is missing the com.openshift.lifecycle-agent.seed_format_version label, please build a new image using the latest version of the lca-cli",
    "seed image format version mismatch: expected 4, got ",
    "failed to parse seed cluster info from the com.openshift.lifecycle-agent.seed_cluster_info label: ",
    "seed image has a proxy but the cluster being upgraded does not, this combination is not supported",
    "seed image does not have a proxy but the cluster being upgraded does, this combination is not supported",
    "seed image has FIPS enabled but the cluster being upgraded does not, this combination is not supported",
    "seed image does not have FIPS enabled but the cluster being upgraded does, this combination is not supported",
    "seed image has an openshift-config/user-ca-bundle configmap but the cluster being upgraded does not, this combination is not supported",
    "seed image does not have an openshift-config/user-ca-bundle configmap but the cluster being upgraded does, this combination is not supported",
    "proxy trustedCA configmap openshift-config/",
    "seed image's Proxy trustedCA configmap name ",
    "container storage mountpoint target mismatch: seed=",
    "invalid seed node IP ",
    "invalid node IP ",
    "the seed has ",
    "IP family mismatch: the seed's node IP ",
    "invalid machine network ",
    "the node's machine networks (",
    "invalid seed machine network ",
    "the seed's machine networks (",
];

/// The labels of a `seed_labels` input's first part: a JSON object (non-string values as
/// their JSON text), else `key=value` lines.
pub fn parse_labels(part: &[u8]) -> BTreeMap<String, String> {
    if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(part) {
        return map
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(s) => (k, s),
                other => (k, other.to_string()),
            })
            .collect();
    }
    String::from_utf8_lossy(part)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .collect()
}

/// The cluster of a `seed_labels` input's third part, `key[=value]` lines: `proxy`, `fips`,
/// `user_ca_bundle`, `trusted_ca=<name>`, `trusted_ca_content`, `storage=<path>`,
/// `node_ips=<a,b>`, `machine_networks=<a,b>` (either of the last two: networks known).
pub fn parse_facts(part: &[u8]) -> ClusterFacts {
    let mut facts = ClusterFacts::default();
    let list = |v: &str| -> Vec<String> {
        v.split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    };
    for line in String::from_utf8_lossy(part).lines() {
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        match key.trim() {
            "proxy" => facts.has_proxy = true,
            "fips" => facts.has_fips = true,
            "user_ca_bundle" => facts.has_user_ca_bundle = true,
            "trusted_ca" => facts.proxy_trusted_ca_name = value.to_string(),
            "trusted_ca_content" => facts.proxy_trusted_ca_has_content = true,
            "storage" => facts.container_storage_mountpoint_target = value.to_string(),
            "node_ips" => facts.networks.get_or_insert_with(Networks::default).node_ips = list(value),
            "machine_networks" => {
                facts
                    .networks
                    .get_or_insert_with(Networks::default)
                    .machine_networks = list(value)
            }
            _ => {}
        }
    }
    facts
}

/// `seed_labels`: the input split at [`PART_SEPARATOR`] into labels, `manifest.json` and
/// cluster facts. `manifest.json` stands in for the `seed_cluster_info` label when the
/// labels lack it (a seed carries the same JSON in both).
pub fn seed_labels(data: &[u8]) {
    let mut parts = data.splitn(3, |b| *b == PART_SEPARATOR);
    let mut labels_ = parse_labels(parts.next().unwrap_or_default());
    let manifest = parts.next();
    let facts = parse_facts(parts.next().unwrap_or_default());
    if let Some(manifest) = manifest {
        check_manifest(manifest);
        if let Ok(text) = std::str::from_utf8(manifest) {
            labels_
                .entry(labels::SEED_CLUSTER_INFO.to_string())
                .or_insert_with(|| text.to_string());
        }
    }
    check_labels(&labels_, &facts);
    check_seed_of_cluster(&facts);
}

/// `manifest.json` that parses survives being written and read back.
fn check_manifest(bytes: &[u8]) {
    let Ok(info) = serde_json::from_slice::<SeedClusterInfo>(bytes) else {
        return;
    };
    let json = serde_json::to_vec(&info).expect("serialize a SeedClusterInfo");
    let back: SeedClusterInfo = serde_json::from_slice(&json).expect("re-read a written SeedClusterInfo");
    assert_eq!(back, info, "manifest.json written and read back");
    let ips = info.ips();
    assert!(
        ips == info.node_ips || (info.node_ips.is_empty() && ips == [info.node_ip.clone()]),
        "ips() of {info:?}"
    );
}

/// `check_seed_labels` fails with one of the fixed messages, for the reason the labels give;
/// on success the format label is the expected one and the info agrees with the cluster.
pub fn check_labels(labels_: &BTreeMap<String, String>, facts: &ClusterFacts) {
    let version = labels_.get(labels::SEED_FORMAT_VERSION);
    let format_ok = version.is_some_and(|v| v.trim() == labels::SEED_FORMAT.to_string());
    let label_info = labels_
        .get(labels::SEED_CLUSTER_INFO)
        .map(|json| serde_json::from_str::<SeedClusterInfo>(json));
    match check_seed_labels(labels_, facts) {
        Ok(info) => {
            assert!(format_ok, "accepted the format version {version:?}");
            match label_info {
                Some(parsed) => assert_eq!(Some(&info), parsed.as_ref().ok(), "info is not the label's"),
                None => assert_eq!(info, SeedClusterInfo::default(), "info without a label"),
            }
            assert_eq!((info.has_proxy, info.has_fips), (facts.has_proxy, facts.has_fips));
            let storage = &info.container_storage_mountpoint_target;
            assert!(storage.is_empty() || *storage == facts.container_storage_mountpoint_target);
            if let Some(bundle) = &info.additional_trust_bundle {
                assert_eq!(bundle.has_user_ca_bundle, facts.has_user_ca_bundle);
                assert_eq!(bundle.proxy_configmap_name, facts.proxy_trusted_ca_name);
            }
        }
        Err(lca_seed::Error::Invalid(message)) => {
            let Some(prefix) = ERROR_PREFIXES.iter().position(|p| message.starts_with(p)) else {
                panic!("error {message:?} has none of the reference's prefixes");
            };
            // The first three checks are on the labels alone: their message says which.
            let expected = match (version, format_ok, &label_info) {
                (None, ..) => Some(0),
                (Some(_), false, _) => Some(1),
                (Some(_), true, Some(Err(_))) => Some(2),
                _ => None,
            };
            match expected {
                Some(i) => assert_eq!(prefix, i, "{message:?}"),
                None => assert!(prefix > 2, "{message:?} for readable labels"),
            }
        }
        Err(other) => panic!("not an Invalid error: {other:?}"),
    }
}

/// A seed described from a cluster (`ClusterFacts::describe_seed`) passes Prep on that
/// cluster, unless the cluster itself is inconsistent: an empty custom trustedCA ConfigMap,
/// or networks that do not pass the network check against themselves.
fn check_seed_of_cluster(facts: &ClusterFacts) {
    let mut info = SeedClusterInfo::default();
    facts.describe_seed(&mut info);
    let labels_ = BTreeMap::from([
        (
            labels::SEED_FORMAT_VERSION.to_string(),
            labels::SEED_FORMAT.to_string(),
        ),
        (
            labels::SEED_CLUSTER_INFO.to_string(),
            serde_json::to_string(&info).expect("serialize a SeedClusterInfo"),
        ),
    ]);
    let name = facts.proxy_trusted_ca_name.as_str();
    let empty_ca = !name.is_empty() && name != "user-ca-bundle" && !facts.proxy_trusted_ca_has_content;
    let networks_ok = facts
        .networks
        .as_ref()
        .is_none_or(|n| n.node_ips.is_empty() || network_check::check(n, n).is_ok());
    let result = check_seed_labels(&labels_, facts);
    assert_eq!(
        result.is_ok(),
        !empty_ca && networks_ok,
        "a seed made of {facts:?}: {result:?}"
    );
    check_labels(&labels_, facts);
}

/// A check by the name of its target (`seed_labels`).
pub fn by_target(target: &str) -> Option<fn(&[u8])> {
    match target {
        "seed_labels" => Some(seed_labels),
        _ => None,
    }
}

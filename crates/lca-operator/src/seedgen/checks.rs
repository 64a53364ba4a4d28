//! Prerequisites of seed generation (spec §8.2), in the reference's order; the first failure
//! is the rejection message written to the CR. Optional kinds (LocalVolume, LVMCluster, OADP)
//! whose CRD is not installed count as "none configured".

use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt};
use lca_api::consts::{messages as m, names, paths};
use lca_hostops::{NodeFs, ostree, systemd};

use crate::cluster_health::{crd_exists, kinds, list_all};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::kubeapi::is_not_found;
use k8s_openapi::api::core::v1::{Namespace, PersistentVolume};

/// `None` when seed generation may start, else the rejection message.
pub async fn validate(ctx: &Context) -> Option<String> {
    // Generating would remove the running imager's container and its workspace.
    if let lca_core::seedgen_plan::ImagerState::Container { status, .. } = super::imager::observe(ctx).await
        && status == "running"
    {
        return Some(m::SEEDGEN_REJECT_IMAGER_RUNNING.into());
    }
    let host = ctx.host_namespace_executor();
    let exec = host.as_ref();
    // A failed probe is a missing feature: the reference's probe cannot fail either.
    if !ostree::supports_set_default(exec).await.unwrap_or(false) {
        return Some(m::SEEDGEN_REJECT_SET_DEFAULT.into());
    }
    if systemd::container_storage_mount_target(exec)
        .await
        .unwrap_or_default()
        .is_empty()
    {
        return Some(m::SEEDGEN_REJECT_SHARED_STORAGE.into());
    }
    match crd_exists(&ctx.client, names::KLUSTERLETS_CRD).await {
        Ok(false) => {}
        Ok(true) => return Some(m::SEEDGEN_REJECT_KLUSTERLET.into()),
        Err(_) => return Some(m::SEEDGEN_KLUSTERLET_CHECK_FAILED.into()),
    }
    let addons = acm_addon_namespaces(&ctx.client).await;
    if !addons.is_empty() {
        return Some(format!("{}{}", m::SEEDGEN_REJECT_ACM_ADDONS, addons.join(", ")));
    }
    let fs = NodeFs::new(ctx.exec.as_ref());
    // Unreadable counts as missing, as a failed stat does upstream.
    if !fs
        .exists(&ctx.paths.host(paths::DNSMASQ_CONFIG_SCRIPT))
        .unwrap_or(false)
    {
        return Some(m::SEEDGEN_REJECT_DNSMASQ.into());
    }
    // An unreadable kubelet config is not the sanitized one (upstream ignores the error too).
    let kubelet = fs
        .read_string_optional(&ctx.paths.host(paths::KUBELET_CONFIG))
        .ok()
        .flatten()
        .unwrap_or_default();
    if kubelet.trim() == names::SANITIZED_PULL_SECRET.trim() {
        return Some(m::SEEDGEN_REJECT_SANITIZED_PULL_SECRET.into());
    }
    storage_and_oadp(&ctx.client).await
}

async fn acm_addon_namespaces(client: &Client) -> Vec<String> {
    let api: Api<Namespace> = Api::all(client.clone());
    match api.list(&ListParams::default()).await {
        Ok(list) => list
            .items
            .iter()
            .map(|n| n.name_any())
            .filter(|n| n.starts_with("open-cluster-management-addon-"))
            .collect(),
        Err(e) => {
            // As the reference: an unreadable namespace list does not block seed generation.
            tracing::info!("error when checking namespaces: {e}");
            vec![]
        }
    }
}

/// Count objects of an optional kind: a missing CRD (404) is zero.
async fn count_optional(client: &Client, ar: &kube::core::ApiResource) -> Result<usize, kube::Error> {
    match list_all(client, ar).await {
        Ok(items) => Ok(items.len()),
        Err(e) if is_not_found(&e) => Ok(0),
        Err(e) => Err(e),
    }
}

async fn storage_and_oadp(client: &Client) -> Option<String> {
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    match pvs.list(&ListParams::default()).await {
        Ok(l) if !l.items.is_empty() => return Some(m::SEEDGEN_REJECT_PVS.into()),
        Ok(_) => {}
        Err(_) => {
            return Some("Failure occurred during check for configured PVs in system validation".into());
        }
    }
    match count_optional(client, &kinds::local_volume()).await {
        Ok(0) => {}
        Ok(_) => return Some(m::SEEDGEN_REJECT_LOCAL_VOLUMES.into()),
        Err(_) => {
            return Some(
                "Failure occurred during check for configured LocalVolumes in system validation".into(),
            );
        }
    }
    match count_optional(client, &kinds::lvm_cluster()).await {
        Ok(0) => {}
        Ok(_) => return Some(m::SEEDGEN_REJECT_LVM_CLUSTERS.into()),
        Err(_) => {
            return Some(
                "Failure occurred during check for configured LVMClusters in system validation".into(),
            );
        }
    }
    // OADP counts as installed when its DPA CRD is.
    if !crd_exists(client, names::DPA_CRD).await.unwrap_or(false) {
        return None;
    }
    match count_optional(client, &kinds::dpa()).await {
        Ok(0) => {}
        Ok(_) => return Some(m::SEEDGEN_REJECT_DPA.into()),
        Err(_) => {
            return Some(
                "Failure occurred during check for configured DataProtectionApplications in system validation".into(),
            );
        }
    }
    match oadp_version_supported(client).await {
        Ok(true) => None,
        Ok(false) => Some(format!(
            "{}{}",
            m::SEEDGEN_REJECT_OADP_VERSION,
            names::OADP_MIN_VERSION
        )),
        Err(e) => Some(format!(
            "Failure occurred when checking OADP version in system validation: {e}"
        )),
    }
}

/// The OADP operator's CSV (`oadp-operator.*`) has `spec.version` ≥ the minimum.
async fn oadp_version_supported(client: &Client) -> Result<bool> {
    let csvs = list_all(client, &kinds::csv())
        .await
        .map_err(Error::api("failed to list ClusterServiceVersions"))?;
    let csv = csvs
        .iter()
        .find(|c| c.name_any().starts_with("oadp-operator"))
        .ok_or_else(|| Error::state("no OADP operator ClusterServiceVersion found"))?;
    let version = csv.data["spec"]["version"].as_str().unwrap_or_default();
    Ok(version_at_least(version, names::OADP_MIN_VERSION))
}

/// Numeric comparison of the `major.minor.patch` prefix (pre-release suffixes ignored).
fn version_at_least(version: &str, min: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> {
        v.trim_start_matches('v')
            .split(['.', '-', '+'])
            .take(3)
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    parse(version) >= parse(min)
}

#[cfg(test)]
mod tests {
    use super::version_at_least;

    #[test]
    fn oadp_versions() {
        assert!(version_at_least("1.3.1", "1.3.1"));
        assert!(version_at_least("1.4.0", "1.3.1"));
        assert!(version_at_least("v1.10.0", "1.3.1"));
        assert!(!version_at_least("1.3.0", "1.3.1"));
        assert!(!version_at_least("1.2.9", "1.3.1"));
    }
}

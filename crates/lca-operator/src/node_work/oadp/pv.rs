//! LVMS volumes across the pivot (spec §6.2): a TopoLVM volume reclaimed with `Delete` would
//! lose its data when the seed's cluster does not find its claim yet, so before the Backups
//! it is set to `Retain` and marked; once the Restores succeeded (or the upgrade is undone)
//! the marked volumes go back to `Delete`.

use k8s_openapi::api::core::v1::PersistentVolume;
use kube::Client;
use kube::api::Api;
use lca_api::consts::annotations::UPDATED_RECLAIM_POLICY;
use serde_json::json;

use crate::error::{Error, Result};
use crate::kubeapi;

async fn volumes(client: &Client) -> Result<Vec<(String, serde_json::Value)>> {
    let api: Api<PersistentVolume> = Api::all(client.clone());
    let list = api
        .list(&Default::default())
        .await
        .map_err(Error::api("failed to list persistent volumes"))?;
    Ok(list
        .items
        .into_iter()
        .filter_map(|pv| {
            let name = pv.metadata.name.clone()?;
            serde_json::to_value(pv).ok().map(|v| (name, v))
        })
        .collect())
}

/// Set every LVMS volume reclaimed with `Delete` to `Retain`, marked; the count changed.
pub async fn retain(client: &Client) -> Result<usize> {
    let patch = json!({"metadata": {"annotations": {UPDATED_RECLAIM_POLICY: "true"}},
                       "spec": {"persistentVolumeReclaimPolicy": "Retain"}});
    patch_each(client, lca_core::oadp::pv_needs_retain, &patch, "update").await
}

/// Set every marked volume back to `Delete` and drop the mark; the count changed.
pub async fn revert(client: &Client) -> Result<usize> {
    let patch = json!({"metadata": {"annotations": {UPDATED_RECLAIM_POLICY: null}},
                       "spec": {"persistentVolumeReclaimPolicy": "Delete"}});
    patch_each(client, lca_core::oadp::pv_was_retained, &patch, "revert").await
}

/// Merge-patch every volume `pick` selects with `patch`; the count patched.
async fn patch_each(
    client: &Client,
    pick: fn(&serde_json::Value) -> bool,
    patch: &serde_json::Value,
    verb: &str,
) -> Result<usize> {
    let api: Api<PersistentVolume> = Api::all(client.clone());
    let mut changed = 0;
    for (name, pv) in volumes(client).await? {
        if pick(&pv) {
            kubeapi::merge_patch(&api, &name, patch)
                .await
                .map_err(Error::api(format!(
                    "failed to {verb} the reclaim policy of {name}"
                )))?;
            changed += 1;
        }
    }
    Ok(changed)
}

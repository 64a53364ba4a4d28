//! Abort and finalize, OADP part (spec §2.6 cleanup step 4): this cluster's Backups are
//! deleted through Velero (a `DeleteBackupRequest` each, so the object storage is emptied
//! too, not only the API object), the backup label comes off the objects their apply-label
//! annotations named, and the LVMS volumes get their reclaim policy back. Runs only where
//! OADP is installed; every part runs even when one fails.

use std::time::{Duration, Instant};

use lca_api::consts::labels;
use serde_json::{Value, json};
use tracing::info;

use super::{Velero, apply_label_targets, patch_target, selector};
use crate::error::{Error, Result};
use crate::node_work::NodeStageWork;

/// How long Velero may take to delete the Backups (§2.6).
const DELETE_LIMIT: Duration = Duration::from_secs(300);
const DELETE_POLL: Duration = Duration::from_secs(1);

/// The errors of the OADP cleanup, each worded for the AbortFailed/FinalizeFailed message.
pub async fn cleanup(w: &NodeStageWork) -> Vec<String> {
    match super::oadp_installed(w).await {
        Ok(true) => {}
        Ok(false) => return Vec::new(),
        Err(e) => return vec![format!("failed to check oadp operator availability: {e}")],
    }
    let mut errors = Vec::new();
    if let Err(e) = delete_backups(w).await {
        errors.push(format!("failed to delete the OADP Backups: {e}"));
    }
    if let Err(e) = super::pv::revert(&w.client).await {
        errors.push(format!("failed to revert the LVMS reclaim policies: {e}"));
    }
    errors
}

async fn delete_backups(w: &NodeStageWork) -> Result<()> {
    let id = super::cluster_id(&w.client).await?;
    let ours = selector(labels::CLUSTER_ID, &id);
    // Requests left by an earlier attempt would keep their Backups' names taken.
    for dbr in Velero::DeleteBackupRequest.list(&w.client, Some(&ours)).await? {
        let name = lca_core::manifest_decode::field(&dbr, "/metadata/name");
        crate::kubeapi::delete_ignoring_absent(
            &Velero::DeleteBackupRequest.api(&w.client),
            &name,
            &Default::default(),
        )
        .await
        .map_err(Error::api(format!("failed to delete DeleteBackupRequest {name}")))?;
    }
    let backups = Velero::Backup.list(&w.client, Some(&ours)).await?;
    for backup in &backups {
        let name = lca_core::manifest_decode::field(backup, "/metadata/name");
        let dbr = json!({"apiVersion": "velero.io/v1", "kind": "DeleteBackupRequest",
            "metadata": {"name": name, "labels": {labels::CLUSTER_ID: id}},
            "spec": {"backupName": name}});
        Velero::DeleteBackupRequest.create(&w.client, &dbr).await?;
        unlabel(w, backup).await?;
    }
    if backups.is_empty() {
        return Ok(());
    }
    let start = Instant::now();
    loop {
        let left = Velero::Backup.list(&w.client, Some(&ours)).await?.len();
        let pending = Velero::DeleteBackupRequest
            .list(&w.client, Some(&ours))
            .await?
            .iter()
            .filter(|d| lca_core::manifest_decode::field(d, "/status/phase") != "Processed")
            .count();
        if left == 0 && pending == 0 {
            info!(deleted = backups.len(), "OADP Backups deleted");
            return Ok(());
        }
        if start.elapsed() > DELETE_LIMIT {
            return Err(Error::state(format!(
                "timed out waiting for {left} Backups to be deleted"
            )));
        }
        tokio::time::sleep(DELETE_POLL).await;
    }
}

/// Take the backup label off the objects `backup` named for labelling; an object or label
/// already gone is fine.
async fn unlabel(w: &NodeStageWork, backup: &Value) -> Result<()> {
    let remove = json!({"metadata": {"labels": {labels::BACKUP: null}}});
    let targets = apply_label_targets(backup)?;
    if targets.is_empty() {
        return Ok(());
    }
    let admin = w.admin_client().await?;
    for t in targets {
        match patch_target(&admin, &t, &remove, false).await {
            Ok(()) => {}
            Err(e) if crate::kubeapi::is_not_found(&e) => {}
            Err(e) => {
                return Err(Error::api(format!(
                    "failed to remove the backup label from {}/{}",
                    t.resource, t.name
                ))(e));
            }
        }
    }
    Ok(())
}

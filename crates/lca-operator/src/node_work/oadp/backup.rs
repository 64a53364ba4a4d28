//! `HandleBackup` (spec §6.2), the pre-pivot Backup step: wave by wave, a Backup left by
//! another cluster under the same name is deleted through a `DeleteBackupRequest`, then each
//! Backup is read back if this cluster made it, or created (labelled with this cluster's
//! ID, the objects of its apply-label annotation labelled and selected). A wave must
//! complete before the next one starts; one failed Backup fails the Upgrade before the node
//! is touched. The step re-enters on every reconcile: nothing is created twice.

use std::time::Duration;

use kube::Client;
use lca_api::ImageBasedUpgrade;
use lca_api::consts::labels;
use lca_core::oadp::{self, Progress, WaveVerdict, Work};
use serde_json::{Value, json};
use tracing::info;

use super::{Content, Velero, apply_label_targets, cluster_label, patch_target};
use crate::error::{Error, Result};
use crate::node_work::NodeStageWork;
use crate::node_work::upgrade::Ran;

/// How long a stale Backup may take to go after its `DeleteBackupRequest` (§6.2).
const STALE_DELETE_LIMIT: Duration = Duration::from_secs(300);
/// Poll while a stale Backup is being deleted.
const STALE_POLL: Duration = Duration::from_secs(5);

pub async fn handle_backup(w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> Result<Ran> {
    let content = match super::content(w, ibu).await {
        Ok(c) => c,
        Err(e) if e.category() == lca_core::Category::Invalid => return Ok(Ran::Failed(e.to_string())),
        Err(e) => return Err(e),
    };
    let Content { backups, .. } = content;
    if backups.is_empty() {
        return Ok(Ran::Done);
    }
    let retained = super::pv::retain(&w.client).await?;
    if retained > 0 {
        info!(retained, "LVMS volumes set to Retain for the pivot");
    }
    let cluster_id = super::cluster_id(&w.client).await?;
    let mut keyed = Vec::with_capacity(backups.len());
    for b in &backups {
        keyed.push((
            b.field("/metadata/name"),
            b.wave().map_err(|e| Error::invalid(e.to_string()))?,
        ));
    }
    for wave in oadp::waves(&keyed) {
        let names: Vec<String> = wave.iter().map(|&i| keyed[i].0.clone()).collect();
        match remove_stale(&w.client, &names, &cluster_id).await {
            Ok(true) => {}
            Ok(false) => return Ok(in_progress(STALE_POLL)),
            Err(e) => return Ok(Ran::Failed(format!("Failed to cleanup stale Backups: {e}"))),
        }
        let mut progress = Vec::with_capacity(wave.len());
        for &i in &wave {
            let p = match start_or_read(w, &backups[i].object, &cluster_id).await {
                Ok(p) => p,
                Err(e) if e.category() == lca_core::Category::Invalid => {
                    return Ok(Ran::Failed(e.to_string()));
                }
                Err(e) => return Err(e),
            };
            progress.push((keyed[i].0.clone(), Some(p)));
        }
        match oadp::judge(Work::Backup, &progress) {
            WaveVerdict::Done => continue,
            WaveVerdict::Failed(message) => return Ok(Ran::Failed(message)),
            WaveVerdict::Wait(after) => return Ok(in_progress(after)),
        }
    }
    Ok(Ran::Done)
}

fn in_progress(requeue: Duration) -> Ran {
    Ran::Wait {
        message: Work::Backup.in_progress().into(),
        requeue,
    }
}

/// The progress of this cluster's Backup of `user`'s name; created (after labelling its
/// objects) when absent.
async fn start_or_read(w: &NodeStageWork, user: &Value, cluster_id: &str) -> Result<Progress> {
    let name = lca_core::manifest_decode::field(user, "/metadata/name");
    if let Some(existing) = Velero::Backup.get(&w.client, &name).await? {
        // A stale one was removed before this wave; what is left is ours.
        return Ok(oadp::classify(&lca_core::manifest_decode::field(
            &existing,
            "/status/phase",
        )));
    }
    let targets = apply_label_targets(user)?;
    let label = json!({"metadata": {"labels": {labels::BACKUP: name}}});
    // The user's objects are labelled as the node's admin, as they were dry-run at Prep:
    // the operator's own role does not reach every kind a Backup may name.
    if !targets.is_empty() {
        let admin = w.admin_client().await?;
        for t in &targets {
            patch_target(&admin, t, &label, false).await.map_err(|e| {
                Error::invalid(format!(
                    "failed to label {}/{}/{} {} for backup {name}: {}",
                    t.api_version(),
                    t.resource,
                    t.namespace,
                    t.name,
                    crate::error::api_message(&e)
                ))
            })?;
        }
    }
    let mut backup = user.clone();
    lca_core::manifest_decode::strip_instance_fields(&mut backup);
    if let Some(obj) = backup.as_object_mut() {
        obj.remove("status");
    }
    oadp::prepare_backup(&mut backup, cluster_id, !targets.is_empty());
    Velero::Backup.create(&w.client, &backup).await?;
    info!(backup = name, labelled = targets.len(), "created the Backup");
    Ok(Progress::Pending)
}

/// Ask Velero to delete the Backups of `names` that another cluster made (their clusterID
/// label differs). `true` once none is left; an error when one outlives the bound.
pub async fn remove_stale(client: &Client, names: &[String], cluster_id: &str) -> Result<bool> {
    let mut gone = true;
    for name in names {
        let Some(existing) = Velero::Backup.get(client, name).await? else {
            continue;
        };
        if cluster_label(&existing) == cluster_id {
            continue;
        }
        gone = false;
        match Velero::DeleteBackupRequest.get(client, name).await? {
            None => {
                let dbr = json!({"apiVersion": "velero.io/v1", "kind": "DeleteBackupRequest",
                    "metadata": {"name": name, "labels": {labels::CLUSTER_ID: cluster_id}},
                    "spec": {"backupName": name}});
                Velero::DeleteBackupRequest.create(client, &dbr).await?;
                info!(backup = %name, "stale Backup of another cluster: deletion requested");
            }
            Some(dbr) => {
                if age(&dbr) > Some(STALE_DELETE_LIMIT) {
                    return Err(Error::state(format!(
                        "timed out waiting for the stale Backup {name} to be deleted"
                    )));
                }
            }
        }
    }
    Ok(gone)
}

/// How long ago `obj` was created.
fn age(obj: &Value) -> Option<Duration> {
    let created = lca_core::manifest_decode::field(obj, "/metadata/creationTimestamp");
    let t: lca_api::jiff::Timestamp = created.parse().ok()?;
    let secs = lca_api::jiff::Timestamp::now().as_second() - t.as_second();
    u64::try_from(secs).ok().map(Duration::from_secs)
}

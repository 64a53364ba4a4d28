//! After the pivot (spec §6.3, §6.5 steps 3 and 5): the DPA that pre-pivot exported must be
//! back in the cluster (`lca-cli post-pivot` re-created it), then the exported Restores run
//! wave by wave. A Restore is created only once Velero has synced its Backup from object
//! storage with this cluster's ID (a Backup of that name made by another cluster would
//! restore the wrong data). When every wave completed, the LVMS volumes get their reclaim
//! policy back and the exported files go.

use std::path::{Path, PathBuf};

use lca_core::manifest_decode::field;
use lca_core::manifest_layout::file_order;
use lca_core::oadp::{self, Progress, WaveVerdict, Work};
use serde_json::Value;
use tracing::info;

use super::{Velero, cluster_label};
use crate::error::{Error, Result};
use crate::node_work::NodeStageWork;
use crate::node_work::upgrade::Ran;

/// `/opt/OADP` of the booted stateroot.
const OADP_DIR: &str = "var/opt/OADP";

fn dir(w: &NodeStageWork, sub: &str) -> PathBuf {
    w.exec.node().paths.host(OADP_DIR).join(sub)
}

/// `EnsureOadpConfiguration`: every exported DPA exists in the cluster.
pub async fn ensure_configuration(w: &NodeStageWork) -> Result<Ran> {
    let fs = w.fs();
    for file in fs.list_dir(&dir(w, oadp::DPA_DIR))? {
        let Some(name) = file.strip_suffix(".yaml") else {
            continue;
        };
        if Velero::DataProtectionApplication
            .get(&w.client, name)
            .await?
            .is_none()
        {
            return Ok(Ran::Failed(format!(
                "DataProtectionApplication {name} is not found"
            )));
        }
    }
    Ok(Ran::Done)
}

/// `HandleRestore`: the next wave's Restores created or read back; the stage waits, fails,
/// or (all done) the volumes are reverted and `/opt/OADP` removed.
pub async fn handle_restore(w: &NodeStageWork) -> Result<Ran> {
    let fs = w.fs();
    let root = dir(w, oadp::RESTORE_DIR);
    if !fs.exists(&root)? {
        return finish(w).await;
    }
    let cluster_id = super::cluster_id(&w.client).await?;
    for group in oadp::restore_group_order(&fs.list_dir(&root)?) {
        let mut progress = Vec::new();
        for file in file_order(&fs.list_dir(&root.join(&group))?) {
            let restore = read(w, &root.join(&group).join(&file))?;
            let name = field(&restore, "/metadata/name");
            progress.push((name, start_or_read(w, &restore, &cluster_id).await?));
        }
        match oadp::judge(Work::Restore, &progress) {
            WaveVerdict::Done => continue,
            WaveVerdict::Failed(message) => return Ok(Ran::Failed(message)),
            WaveVerdict::Wait(requeue) => {
                return Ok(Ran::Wait {
                    message: Work::Restore.in_progress().into(),
                    requeue,
                });
            }
        }
    }
    finish(w).await
}

async fn finish(w: &NodeStageWork) -> Result<Ran> {
    let reverted = super::pv::revert(&w.client).await?;
    w.fs().remove_dir_all(&w.exec.node().paths.host(OADP_DIR))?;
    info!(
        reverted,
        "restores done; LVMS volumes reverted, /opt/OADP removed"
    );
    Ok(Ran::Done)
}

fn read(w: &NodeStageWork, path: &Path) -> Result<Value> {
    let text = w.fs().read_string(path)?;
    serde_norway::from_str(&text).map_err(|e| {
        Error::invalid(format!(
            "cannot read the exported Restore {}: {e}",
            path.display()
        ))
    })
}

/// The progress of `restore`, created when absent and its Backup is synced (`None` until
/// then).
async fn start_or_read(w: &NodeStageWork, restore: &Value, cluster_id: &str) -> Result<Option<Progress>> {
    let name = field(restore, "/metadata/name");
    if let Some(existing) = Velero::Restore.get(&w.client, &name).await? {
        return Ok(Some(oadp::classify(&field(&existing, "/status/phase"))));
    }
    let backup_name = field(restore, "/spec/backupName");
    let synced = Velero::Backup
        .get(&w.client, &backup_name)
        .await?
        .is_some_and(|b| cluster_label(&b) == cluster_id);
    if !synced {
        info!(
            restore = name,
            backup = backup_name,
            "waiting for the Backup to be synced"
        );
        return Ok(None);
    }
    let mut restore = restore.clone();
    lca_core::manifest_decode::strip_instance_fields(&mut restore);
    Velero::Restore.create(&w.client, &restore).await?;
    info!(restore = name, "created the Restore");
    Ok(Some(Progress::Pending))
}

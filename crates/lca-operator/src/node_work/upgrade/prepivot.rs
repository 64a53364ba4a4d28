//! The pre-pivot steps (spec §6.1 steps 3–12), run on the original stateroot: everything the
//! new stateroot needs at its first boot is written into its `/var` (each export complete or
//! absent, see `stage_dir`), then the CR is saved on both sides, the new deployment becomes
//! the default and the node reboots. The order is `lca_core::upgrade_plan::PrePivot::ORDER`.

use std::path::{Path, PathBuf};

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use lca_api::consts::messages as m;
use lca_api::consts::paths;
use lca_api::{ImageBasedUpgrade, Time};
use lca_core::upgrade_plan::PrePivot;
use lca_hostops::reboot::{self, REBOOT_FAILED, REBOOT_WAIT, Rationale};
use lca_hostops::rollback::{self, write_cr};
use lca_hostops::{NodeFs, ostree};
use tracing::info;

use super::{Ran, UpgradeSteps, new_stateroot};
use crate::context::CONTROLLER_NAME;
use crate::error::{Error, Result};
use crate::node_work::NodeStageWork;

impl UpgradeSteps for PrePivot {
    const MARKERS: &'static str = "upgrade";
    const FAILPOINTS: &'static str = lca_hostops::failpoint::names::PREPIVOT;
    const PHASE: Option<(&'static str, Self)> =
        Some((super::PHASE_PRE_PIVOT, PrePivot::ExportClusterConfiguration));

    async fn health(w: &NodeStageWork) -> Result<()> {
        crate::cluster_health::check_all(&w.client).await
    }

    async fn ready(w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> Result<bool> {
        let status = ostree::status(w.exec.as_ref()).await?;
        let new = new_stateroot(ibu);
        let deployed = status.of_stateroot(&new).next().is_some();
        Ok(deployed && w.fs().exists(&w.exec.node().paths.stateroot_var(&new))?)
    }

    async fn run(self, w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> Result<Ran> {
        let new_var = w.exec.node().paths.stateroot_var(&new_stateroot(ibu));
        match self {
            PrePivot::Backup => {
                if !ibu.spec.oadp_content.is_empty() {
                    let ran = crate::node_work::oadp::handle_backup(w, ibu).await?;
                    if !matches!(ran, Ran::Done) {
                        return Ok(ran);
                    }
                }
                // Writes into the new stateroot need a writable /sysroot on a real node.
                ostree::remount_sysroot_rw(w.exec.as_ref()).await?;
                Ok(Ran::Done)
            }
            PrePivot::ExportApplicationConfiguration => super::export_oadp::export(w, ibu, &new_var).await,
            PrePivot::ExportManifests => super::export_manifests::export(w, ibu, &new_var).await,
            PrePivot::ExportClusterConfiguration => super::export_cluster::export(w, &new_var).await,
            PrePivot::SaveCr => save_cr(w, ibu, &new_var).map(|()| Ran::Done),
            PrePivot::SetDefault => set_default(w, ibu).await.map(|()| Ran::Done),
            PrePivot::Reboot => await_reboot(w, ibu, Rationale::Upgrade).await,
        }
    }
}

/// Write the CR as it stands into the new stateroot (the operator there resumes from it),
/// and a copy marked `Uncontrolled rollback` into this one (what the node shows if it ever
/// boots back here without the LCA deciding it).
fn save_cr(w: &NodeStageWork, ibu: &ImageBasedUpgrade, new_var: &Path) -> Result<()> {
    let fs = w.fs();
    write_cr(&fs, &new_var.join(rollback::saved_in_var()), ibu)?;
    let now = Time(lca_api::jiff::Timestamp::now());
    let failed = lca_core::autorollback::upgrade_failed_copy(ibu, m::UNCONTROLLED_ROLLBACK, &now);
    // The copy is for a boot of this stateroot that the LCA did not choose; until this boot
    // ends it must not be taken for one (`ibu::init` reads this file at every start).
    let boot = lca_hostops::sim::boot_id(w.exec.as_ref())?;
    fs.write_atomic(&w.workspace().join(SAVED_IN_BOOT), boot.as_bytes())?;
    write_cr(&fs, &w.exec.node().paths.host(paths::SAVED_IBU), &failed)?;
    Ok(())
}

/// In the workspace: the boot during which pre-pivot saved the `Uncontrolled rollback` copy.
pub const SAVED_IN_BOOT: &str = "upgrade/saved-in-boot";

/// Make the new stateroot's deployment the default for the next boot.
async fn set_default(w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> Result<()> {
    let status = ostree::status(w.exec.as_ref()).await?;
    let new = new_stateroot(ibu);
    let index = status
        .deployments
        .iter()
        .position(|d| d.stateroot == new)
        .ok_or_else(|| Error::state(format!("no deployment of the new stateroot {new}")))?;
    let how = ostree::set_default(w.exec.as_ref(), index).await?;
    info!(index, ?how, "the new stateroot is the default deployment");
    Ok(())
}

/// Publish the `Reboot` event and reboot for `why`. A real reboot ends this process; if it
/// is still alive an hour later, the reboot did not happen.
pub(super) async fn await_reboot(w: &NodeStageWork, ibu: &ImageBasedUpgrade, why: Rationale) -> Result<Ran> {
    let recorder = Recorder::new(
        w.client.clone(),
        Reporter {
            controller: CONTROLLER_NAME.into(),
            instance: None,
        },
    );
    let event = Event {
        type_: EventType::Normal,
        reason: "Reboot".into(),
        note: Some(format!("System will now reboot for {}", why.as_str())),
        action: "Reboot".into(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &ibu.object_ref(&())).await {
        tracing::warn!("cannot publish the Reboot event: {e}");
    }
    if let Err(e) = reboot::reboot_for(w.exec.as_ref(), why).await {
        return Ok(Ran::Failed(e.to_string()));
    }
    // Test builds on a simulated node may shorten the wait (`lca-sim/reboot-wait-secs`) to
    // see what follows a reboot that never comes.
    #[cfg(feature = "test-hooks")]
    let wait = match std::fs::read_to_string(w.exec.node().paths.sim_dir().join("reboot-wait-secs")) {
        Ok(s) if w.exec.node().kind == lca_hostops::NodeKind::Simulated => s
            .trim()
            .parse()
            .map(std::time::Duration::from_secs)
            .unwrap_or(REBOOT_WAIT),
        _ => REBOOT_WAIT,
    };
    #[cfg(not(feature = "test-hooks"))]
    let wait = REBOOT_WAIT;
    tokio::time::sleep(wait).await;
    Ok(Ran::Failed(REBOOT_FAILED.into()))
}

/// Replace the directory `dir` with what `fill` writes, never leaving half of it: `fill`
/// writes into `<dir>.partial` (cleared first), which then replaces `dir`.
pub(super) fn stage_dir(fs: &NodeFs<'_>, dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let mut partial = dir.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    fs.remove_dir_all(&partial)?;
    fs.create_private_dir(&partial)?;
    fill(&partial)?;
    fs.remove_dir_all(dir)?;
    fs.rename(&partial, dir)?;
    Ok(())
}

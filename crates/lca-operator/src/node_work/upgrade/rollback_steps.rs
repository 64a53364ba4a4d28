//! The Rollback steps while the new stateroot is booted (spec §7.1): the original
//! stateroot's deployment becomes the default (or the user is asked to choose it where
//! this node cannot), the CR as it stands is saved into the original stateroot for the
//! operator there to complete the rollback, and the node reboots. Any failure is final
//! (RollbackCompleted False); no health gate, no history phase.

use std::time::Duration;

use lca_api::ImageBasedUpgrade;
use lca_core::upgrade_plan::Rollback;
use lca_hostops::ostree;
use lca_hostops::reboot::Rationale;
use lca_hostops::rollback::{self, saved_in_var, write_cr};
use tracing::info;

use super::{Ran, UpgradeSteps};
use crate::error::Result;
use crate::node_work::NodeStageWork;

/// Where this node cannot change the default deployment, the user must (§7.1).
pub const SET_DEFAULT_MANUALLY: &str = "default deployment must be manually set for next boot";
const MANUAL_RETRY: Duration = Duration::from_secs(30);

impl UpgradeSteps for Rollback {
    const MARKERS: &'static str = "rollback";
    const FAILPOINTS: &'static str = lca_hostops::failpoint::names::ROLLBACK;
    const PHASE: Option<(&'static str, Self)> = None;
    const ERRORS_ARE_FINAL: bool = true;

    async fn health(_: &NodeStageWork) -> Result<()> {
        Ok(())
    }

    async fn ready(_: &NodeStageWork, _: &ImageBasedUpgrade) -> Result<bool> {
        Ok(true)
    }

    async fn run(self, w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> Result<Ran> {
        let exec = w.exec.as_ref();
        match self {
            Rollback::SetDefault => {
                let (index, target) = rollback::target(&ostree::status(exec).await?)?;
                ostree::remount_sysroot_rw(exec).await?;
                if index == 0 {
                    return Ok(Ran::Done);
                }
                if !rollback::set_default_available(exec).await {
                    return Ok(Ran::Wait {
                        message: SET_DEFAULT_MANUALLY.into(),
                        requeue: MANUAL_RETRY,
                    });
                }
                let how = ostree::set_default(exec, index).await?;
                info!(stateroot = %target, index, ?how, "the original stateroot is the default deployment");
                Ok(Ran::Done)
            }
            // The reconcile clears the field whenever a rollback runs.
            Rollback::ClearExpiration => Ok(Ran::Done),
            Rollback::SaveCr => {
                let (_, target) = rollback::target(&ostree::status(exec).await?)?;
                let file = exec.node().paths.stateroot_var(&target).join(saved_in_var());
                write_cr(&w.fs(), &file, ibu)?;
                Ok(Ran::Done)
            }
            Rollback::Reboot => super::prepivot::await_reboot(w, ibu, Rationale::Rollback).await,
        }
    }
}

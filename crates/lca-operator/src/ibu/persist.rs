//! Saving the IBU on the node when it is deleted (spec §2.8, §2.10): an in-flight upgrade
//! must not be lost to a `kubectl delete`, so the deleted object (with status) is written to
//! `var/lib/lca/ibu.json` and the reconcile that follows re-creates it. Deleting an Idle IBU
//! or one whose rollback failed is a real delete: the saved copy is removed.

use kube::ResourceExt;
use lca_api::consts::{names, paths};
use lca_api::{ImageBasedUpgrade, Stage};
use lca_core::stage::{is_completed, is_failed};
use lca_hostops::NodeFs;
use tracing::{error, info};

use crate::context::Context;

/// Save or forget the deleted `ibu`; called under `ctx.lock` (see `ibu::handle_deletes`).
/// Failures are logged: the deletion has happened either way, and the re-create that follows
/// goes ahead with what is on disk.
pub fn on_delete(ctx: &Context, ibu: &ImageBasedUpgrade) {
    if ibu.name_any() != names::IBU {
        return;
    }
    let fs = NodeFs::new(ctx.exec.as_ref());
    let file = ctx.paths.host(paths::SAVED_IBU);
    let conds = ibu
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    if is_completed(conds, Stage::Idle) || is_failed(conds, Stage::Rollback) {
        match fs.remove_file(&file) {
            Ok(true) => info!("ImageBasedUpgrade deleted while idle; removed {}", file.display()),
            Ok(false) => {}
            Err(e) => error!("cannot remove the saved ImageBasedUpgrade: {e}"),
        }
        // After a failed rollback the user starts over: the fresh CR must not take the
        // failed cycle's markers for a forgotten cycle to clean up, which would remove the
        // original stateroot a manual rollback still needs.
        if is_failed(conds, Stage::Rollback)
            && let Err(e) = fs.remove_dir_all(&ctx.paths.host(paths::WORKSPACE))
        {
            error!("cannot remove the failed rollback's workspace: {e}");
        }
        return;
    }
    if let Err(e) = lca_hostops::rollback::write_cr(&fs, &file, ibu) {
        error!("cannot save the deleted ImageBasedUpgrade: {e}");
    } else {
        info!(
            "ImageBasedUpgrade deleted while in progress; saved to {} to re-create it",
            file.display()
        );
    }
}

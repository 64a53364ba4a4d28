//! Saving the IBU on the node when it is deleted (spec §2.8, §2.10): an in-flight upgrade
//! must not be lost to a `kubectl delete`, so the deleted object (with status) is written to
//! `var/lib/lca/ibu.json` and the reconcile that follows re-creates it. Deleting an Idle IBU
//! or one whose rollback failed is a real delete: the saved copy is removed.

use kube::ResourceExt;
use lca_api::consts::{names, paths};
use lca_api::{ImageBasedUpgrade, Stage};
use lca_core::stage::{is_completed, is_failed};
use tracing::{error, info};

use crate::context::Context;

pub fn on_delete(ctx: &Context, ibu: &ImageBasedUpgrade) {
    if ibu.name_any() != names::IBU {
        return;
    }
    let file = ctx.paths.host(paths::SAVED_IBU);
    let conds = ibu
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    if is_completed(conds, Stage::Idle) || is_failed(conds, Stage::Rollback) {
        match std::fs::remove_file(&file) {
            Ok(()) => info!("ImageBasedUpgrade deleted while idle; removed {}", file.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => error!("cannot remove {}: {e}", file.display()),
        }
        return;
    }
    if let Err(e) = save(&file, ibu) {
        error!(
            "cannot save the deleted ImageBasedUpgrade to {}: {e}",
            file.display()
        );
    } else {
        info!(
            "ImageBasedUpgrade deleted while in progress; saved to {} to re-create it",
            file.display()
        );
    }
}

/// Write `ibu` to `file` atomically (temp file + rename), creating the directory (0700).
pub fn save(file: &std::path::Path, ibu: &ImageBasedUpgrade) -> std::io::Result<()> {
    let dir = file.parent().unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(".ibu.json.tmp");
    let json = serde_json::to_vec(ibu).map_err(std::io::Error::other)?;
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, file)
}

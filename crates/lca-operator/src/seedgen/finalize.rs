//! The finalizing phase (spec §8.4), once the plan has judged the imager's exit status a
//! success: wipe the workspace and record the completion. A failed imager is the plan's
//! `Fail` action, written by the reconcile.

use kube::runtime::controller::Action;
use lca_api::consts::{messages as m, paths};
use lca_core::seedgen_plan::failed_after_imager;
use lca_hostops::NodeFs;
use tracing::{info, warn};

use super::state::Writer;
use crate::context::Context;
use crate::error::Result;

/// Complete the seed generation; never requeues (completed and failed are final).
pub async fn complete(ctx: &Context, w: &mut Writer) -> Result<Action> {
    w.progress(m::SEEDGEN_FINALIZING).await?;
    let ws = ctx.paths.host(paths::SEEDGEN_WORKSPACE);
    match NodeFs::new(ctx.exec.as_ref()).remove_dir_all(&ws) {
        Ok(_) => {
            info!(seed_image = %w.cr.spec.seed_image, "seed generation completed");
            w.completed();
        }
        Err(e) => {
            warn!(error = %e, "seed generation failed");
            w.failed(&failed_after_imager(&format!("failed to wipe workspace: {e}")));
        }
    }
    w.save().await?;
    Ok(Action::await_change())
}

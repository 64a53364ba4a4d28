//! The finalizing phase (spec §8.4): the restored CR says the imager was launched; check the
//! imager's exit status, wipe the workspace and record the result.

use kube::runtime::controller::Action;
use lca_api::consts::{messages as m, paths};
use tracing::{info, warn};

use super::imager;
use super::state::Writer;
use crate::context::Context;
use crate::error::Result;

async fn finish(ctx: &Context) -> Result<(), String> {
    imager::check_status(ctx)
        .await
        .map_err(|e| format!("{}: {e}", m::SEEDGEN_IMAGER_STATUS_CHECK_FAILED))?;
    let ws = ctx.paths.host(paths::SEEDGEN_WORKSPACE);
    match std::fs::remove_dir_all(&ws) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(format!(
            "failed to wipe workspace: failed to delete {}: {e}",
            ws.display()
        )),
    }
}

/// One reconcile of the finalizing phase; never requeues (completed and failed are final).
pub async fn run(ctx: &Context, w: &mut Writer) -> Result<Action> {
    w.progress(m::SEEDGEN_FINALIZING).await?;
    match finish(ctx).await {
        Ok(()) => {
            info!(seed_image = %w.cr.spec.seed_image, "seed generation completed");
            w.completed();
        }
        Err(e) => {
            warn!(error = %e, "seed generation failed");
            // The reference prefixes here and again in the Failed helper.
            w.failed(&format!("{}: {e}", m::SEEDGEN_FAILED));
        }
    }
    w.save().await?;
    Ok(Action::await_change())
}

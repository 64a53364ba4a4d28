//! Abort and finalize (spec §2.6 `cleanup()`): every step runs even when an earlier one
//! fails, and the errors are collected for the `AbortFailed`/`FinalizeFailed` message.
//! Finalize first waits for a healthy cluster.

use kube::api::{Api, Patch, PatchParams};
use lca_api::ImageBasedUpgrade;
use lca_api::consts::{annotations, names, paths};
use lca_core::IdleOutcome;
use tracing::info;

use super::NodeStageWork;

pub async fn idle(w: &NodeStageWork, ibu: &ImageBasedUpgrade, finalize: bool) -> IdleOutcome {
    if finalize && let Err(error) = crate::cluster_health::check_all(&w.client).await {
        return IdleOutcome::Waiting { error };
    }
    let mut errors = Vec::new();
    let workspace = w.workspace();

    // 1. Stateroot: stop its setup, then remove every stateroot that is not booted.
    if let Err(e) = w.task(names::STATEROOT_SETUP_JOB).remove().await {
        errors.push(e);
    }
    if let Err(e) = lca_hostops::ostree::cleanup_unbooted_stateroots(w.exec.as_ref()).await {
        errors.push(format!("failed to cleanup stateroots: {e}"));
    }
    // 2. Precache: stop it and drop its progress file.
    if let Err(e) = w.task(names::PRECACHE_JOB).remove().await {
        errors.push(e);
    }
    match std::fs::remove_file(w.exec.node().paths.host(paths::PRECACHE_STATUS)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => errors.push(format!("failed to remove the precache status file: {e}")),
    }
    // 3. The extra-manifest warning belongs to the Prep being undone.
    if ibu
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(annotations::EXTRA_MANIFEST_VALIDATION_WARNING))
    {
        let patch = serde_json::json!({"metadata": {"annotations": {annotations::EXTRA_MANIFEST_VALIDATION_WARNING: null}}});
        let api: Api<ImageBasedUpgrade> = Api::all(w.client.clone());
        if let Err(e) = api
            .patch(names::IBU, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            errors.push(format!("failed to remove the validation warning annotation: {e}"));
        }
    }
    // 5. The workspace (task state, pull secret, image list).
    match std::fs::remove_dir_all(&workspace) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => errors.push(format!(
            "failed to remove the workspace {}: {e}",
            workspace.display()
        )),
    }
    if errors.is_empty() {
        info!(finalize, "cleanup completed");
        IdleOutcome::Done
    } else {
        IdleOutcome::Failed { errors }
    }
}

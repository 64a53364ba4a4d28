//! Abort and finalize (spec §2.6 `cleanup()`): every step runs even when an earlier one
//! fails, and the errors are collected for the `AbortFailed`/`FinalizeFailed` message.
//! Finalize first waits for a healthy cluster. The node part alone (`remove_node_work`) also
//! clears what a forgotten cycle left before a default IBU is created, and what an earlier
//! Prep of another seed left before a new Prep starts.

use kube::api::Api;
use lca_api::ImageBasedUpgrade;
use lca_api::consts::{annotations, names};
use lca_core::IdleOutcome;
use lca_hostops::failpoint;
use tracing::info;

use super::NodeStageWork;
use crate::error::api_message;
use crate::kubeapi;

pub async fn idle(w: &NodeStageWork, ibu: &ImageBasedUpgrade, finalize: bool) -> IdleOutcome {
    if finalize && let Err(error) = crate::cluster_health::check_all(&w.client).await {
        return IdleOutcome::Waiting {
            error: error.to_string(),
        };
    }
    let flow = if finalize {
        failpoint::names::FINALIZE
    } else {
        failpoint::names::ABORT
    };
    let mut errors = remove_node_work(w, flow).await;
    errors.extend(super::oadp::cleanup(w).await);
    // The extra-manifest warning belongs to the Prep being undone.
    if ibu
        .metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key(annotations::EXTRA_MANIFEST_VALIDATION_WARNING))
    {
        let patch = serde_json::json!({"metadata": {"annotations": {annotations::EXTRA_MANIFEST_VALIDATION_WARNING: null}}});
        let api: Api<ImageBasedUpgrade> = Api::all(w.client.clone());
        if let Err(e) = kubeapi::merge_patch(&api, names::IBU, &patch).await {
            errors.push(format!(
                "failed to remove the validation warning annotation: {}",
                api_message(&e)
            ));
        }
    }
    if errors.is_empty() {
        info!(finalize, "cleanup completed");
        IdleOutcome::Done
    } else {
        IdleOutcome::Failed { errors }
    }
}

/// Stop and remove every piece of Prep's node work: the stateroot task and every stateroot
/// that is not booted, what the stateroot task had pulled and unpacked, the precache task, and
/// the workspace (task state, precache progress, pull secret, image list, run key).
/// Returns the errors; every step runs regardless. Failpoint `<flow>/<step>` follows each
/// step (`flow`: abort, finalize, or the clean-up before a Prep or a default IBU).
pub async fn remove_node_work(w: &NodeStageWork, flow: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let step = |name: &str, result: Result<(), String>, errors: &mut Vec<String>| {
        errors.extend(result.err());
        errors.extend(w.failpoint(flow, name).err().map(|e| e.to_string()));
    };
    let removed = w.task(lca_core::TaskKind::StaterootSetup).remove().await;
    step("StaterootTask", removed.map_err(|e| e.to_string()), &mut errors);
    let cleaned = lca_hostops::ostree::cleanup_unbooted_stateroots(w.exec.as_ref()).await;
    let cleaned = cleaned.map_err(|e| format!("failed to cleanup stateroots: {e}"));
    step("Stateroots", cleaned, &mut errors);
    let removed = w.task(lca_core::TaskKind::Precache).remove().await;
    step("PrecacheTask", removed.map_err(|e| e.to_string()), &mut errors);
    // What the stateroot task pulled and unpacked, if it was killed before releasing it.
    let seed = super::prep::RunKey::load(w).ok().flatten().map(|k| k.image);
    let released = lca_hostops::stateroot_work::release_seed_work(w.exec.as_ref(), seed.as_deref()).await;
    let released = released.map_err(|e| format!("failed to release the seed image: {e}"));
    step("SeedWork", released, &mut errors);
    // The stateroot task's hand-off files for precache (spec §5.4 step 3).
    let fs = w.fs();
    for file in ["var/tmp/containers.list", "var/tmp/manifest.json"] {
        if let Err(e) = fs.remove_file(&w.exec.node().paths.host(file)) {
            errors.push(format!("failed to remove /{file}: {e}"));
        }
    }
    step("HandOff", Ok(()), &mut errors);
    let removed = fs.remove_dir_all(&w.workspace());
    step(
        "Workspace",
        removed
            .map(drop)
            .map_err(|e| format!("failed to remove the workspace: {e}")),
        &mut errors,
    );
    errors
}

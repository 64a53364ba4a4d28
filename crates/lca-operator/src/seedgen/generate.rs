//! The generating phase (spec §8.3): wait for a healthy cluster, prepare the workspace,
//! secrets and the cluster, save the CR and the `seedgen` Secret on the node, delete them
//! (and the IBU) from the cluster so they are not in the seed, then launch the imager.
//!
//! Anything that fails after the cluster was changed is undone before the failure is
//! recorded: the Secret and the CR (with its failed status) are re-created and the original
//! pull secret is put back, as the reference's deferred functions do.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams};
use kube::runtime::controller::Action;
use lca_api::consts::{messages as m, names, paths};
use lca_api::{ImageBasedUpgrade, SeedGenerator};
use lca_hostops::podman::{self, PullOptions};
use lca_hostops::{Cmd, NodeKind, systemd};
use tracing::{info, warn};

use super::state::Writer;
use super::{REQUEUE_HEALTH_CHECK, cleanup, cluster_info, imager, restore};
use crate::cluster_health;
use crate::context::Context;
use crate::error::Result;

/// What has been changed in the cluster so far, to undo on failure.
#[derive(Default)]
struct Undo {
    secret: Option<Secret>,
    cr_deleted: bool,
    pull_secret: Option<Vec<u8>>,
}

/// One reconcile of the generating phase.
pub async fn run(ctx: &Arc<Context>, w: &mut Writer) -> Result<Action> {
    if let Err(e) = cluster_health::check_all(&ctx.client).await {
        w.in_progress(&format!("{}: {e}", m::SEEDGEN_WAITING_FOR_STABLE));
        w.save().await?;
        return Ok(Action::requeue(REQUEUE_HEALTH_CHECK));
    }
    w.progress(m::SEEDGEN_STARTING).await?;
    let mut undo = Undo::default();
    let Err(failure) = steps(ctx, w, &mut undo).await? else {
        info!("imager launched");
        return Ok(Action::await_change());
    };
    warn!(%failure, "seed generation failed");
    w.failed(&failure);
    if let Some(original) = &undo.pull_secret
        && let Err(e) = cleanup::override_pull_secret(ctx, original).await
    {
        warn!("restoring the cluster pull-secret: {e}");
    }
    if let Some(secret) = &undo.secret
        && let Err(e) = restore::create_secret(&ctx.client, secret.clone()).await
    {
        warn!("restoring the seedgen secret: {e}");
    }
    if undo.cr_deleted {
        restore::create_cr(&ctx.client, w.cr.clone()).await?;
    } else {
        w.save().await?;
    }
    let _ = std::fs::remove_dir_all(ctx.paths.host(paths::SEEDGEN_WORKSPACE));
    Ok(Action::await_change())
}

/// Secrets, the pull secret and the saved CR: 0600 from the first byte (`fsutil`).
fn write_private(ctx: &Context, rel: &str, data: &[u8]) -> Result<(), String> {
    let path = ctx.paths.host(rel);
    lca_hostops::fsutil::write_private(&path, data)
        .map_err(|e| format!("failed to write {}: {e}", path.display()))
}

/// The steps; `Ok(Err(msg))` is a seed generation failure, `Err` an API error of a status
/// write (retried by the controller).
async fn steps(ctx: &Arc<Context>, w: &mut Writer, undo: &mut Undo) -> Result<Result<(), String>> {
    macro_rules! step {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(msg) => return Ok(Err(msg)),
            }
        };
    }
    let simulated = ctx.exec.node().kind == NodeKind::Simulated;
    step!(setup_workspace(ctx).await);

    w.progress(m::SEEDGEN_PULLING_RECERT).await?;
    let recert = imager::recert_image(&w.cr);
    if simulated {
        info!(image = %recert, "simulated node: the recert image is not pulled");
    } else {
        let opts = PullOptions {
            authfile: Some(std::path::PathBuf::from("/").join(paths::KUBELET_CONFIG)),
            ..Default::default()
        };
        step!(
            podman::pull(ctx.exec.as_ref(), &recert, &opts)
                .await
                .map_err(|e| format!(
                    "failed to pull recert image: failed to pull recertImage ({recert}): {e}"
                ))
        );
    }

    w.progress(m::SEEDGEN_PREPARING).await?;
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let secret = step!(secrets.get(names::SEEDGEN_SECRET).await.map_err(|e| format!(
        "could not access secret {} in {}: {e}",
        names::SEEDGEN_SECRET,
        ctx.namespace
    )));
    let json = step!(serde_json::to_vec(&secret).map_err(|e| e.to_string()));
    step!(write_private(ctx, paths::SEEDGEN_STORED_SECRET, &json));
    let auth = secret
        .data
        .as_ref()
        .and_then(|d| d.get(names::SEEDGEN_SECRET_AUTH_KEY))
        .map(|b| b.0.clone());
    let Some(auth) = auth else {
        return Ok(Err(m::SEEDGEN_MISSING_SEED_AUTH.into()));
    };
    step!(write_private(ctx, paths::SEEDGEN_AUTH, &auth));
    let original_pull_secret = step!(cleanup::read_pull_secret(&ctx.client).await);
    step!(write_private(
        ctx,
        paths::SEEDGEN_STORED_PULL_SECRET,
        &original_pull_secret
    ));

    w.progress(m::SEEDGEN_CLEANING).await?;
    step!(
        cleanup::cluster_resources(&ctx.client)
            .await
            .map_err(|e| format!("failed to cleanup resources: {e}"))
    );
    step!(cleanup::finished_pods(&ctx.client, "Succeeded").await);
    step!(cleanup::finished_pods(&ctx.client, "Failed").await);
    info!("sanitizing the cluster's pull-secret");
    undo.pull_secret = Some(original_pull_secret);
    step!(
        cleanup::override_pull_secret(ctx, names::SANITIZED_PULL_SECRET.as_bytes())
            .await
            .map_err(|e| format!("failed sanitizing cluster's pull-secret: {e}"))
    );
    step!(
        cleanup::old_rendered_machine_configs(&ctx.client)
            .await
            .map_err(|e| format!("failed to cleanup old machine configs, err: {e}"))
    );
    let storage = systemd::container_storage_mount_target(ctx.exec.as_ref())
        .await
        .unwrap_or_default();
    let info = step!(
        cluster_info::gather(&ctx.client, &recert, &storage)
            .await
            .map_err(|e| format!("failed to gather seed cluster info: {e}"))
    );
    let info = step!(serde_json::to_vec(&info).map_err(|e| e.to_string()));
    step!(write_private(ctx, paths::SEED_CLUSTER_INFO, &info));

    w.progress(m::SEEDGEN_LAUNCHING_IMAGER).await?;
    let cr_json = step!(serde_json::to_vec(&w.cr).map_err(|e| e.to_string()));
    step!(write_private(ctx, paths::SEEDGEN_STORED_CR, &cr_json));
    info!("deleting the seedgen secret");
    step!(
        secrets
            .delete(names::SEEDGEN_SECRET, &DeleteParams::default())
            .await
            .map_err(|e| format!("unable to delete seedgen secret CR: {e}"))
    );
    undo.secret = Some(secret);
    info!("deleting the SeedGenerator");
    let crs: Api<SeedGenerator> = Api::all(ctx.client.clone());
    step!(
        crs.delete(names::SEEDGEN, &DeleteParams::default())
            .await
            .map_err(|e| format!("unable to delete seedgen CR: {e}"))
    );
    undo.cr_deleted = true;
    // The IBU must not be in the seed; InitIBU re-creates a fresh one afterwards.
    let ibus: Api<ImageBasedUpgrade> = Api::all(ctx.client.clone());
    match ibus.delete(names::IBU, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 404 => {}
        Err(e) => return Ok(Err(format!("failed to delete IBU CR: {e}"))),
    }
    step!(imager::launch(ctx, &w.cr).await);
    Ok(Ok(()))
}

async fn setup_workspace(ctx: &Context) -> Result<(), String> {
    let ws = ctx.paths.host(paths::SEEDGEN_WORKSPACE);
    match std::fs::remove_dir_all(&ws) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(format!(
                "failed to wipe previous workspace: failed to delete {}: {e}",
                ws.display()
            ));
        }
    }
    if ctx.exec.node().kind == NodeKind::Real {
        let rm = Cmd::new("podman").args(["rm", "-i", "-f", names::IMAGER_CONTAINER]);
        ctx.exec.run(&rm).await.map_err(|e| {
            format!("failed to delete previous imager container: failed to run podman rm command: {e}")
        })?;
    }
    std::fs::create_dir_all(&ws)
        .and_then(|()| std::fs::set_permissions(&ws, std::fs::Permissions::from_mode(0o700)))
        .map_err(|e| format!("failed to create workdir: {e}"))
}

//! The generating phase (spec §8.3), run once the plan found the cluster healthy: the steps of
//! `GenStep::ORDER` — prepare the workspace, pull recert, save the secrets, clean the
//! cluster, save the CR and the `seedgen` Secret on the node, delete them (and the IBU) from
//! the cluster so they are not in the seed — then launch the imager.
//!
//! Anything that fails after the cluster was changed is undone before the failure is
//! recorded: the Secret and the CR (with its failed status) are re-created and the original
//! pull secret is put back, as the reference's deferred functions do.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams};
use kube::runtime::controller::Action;
use lca_api::consts::{names, paths};
use lca_api::{ImageBasedUpgrade, SeedGenerator};
use lca_core::seedgen_plan::GenStep;
use lca_hostops::podman::{self, PullOptions};
use lca_hostops::{NodeFs, NodeKind, systemd};
use tracing::{info, warn};

use super::state::Writer;
use super::{cleanup, cluster_info, imager, restore};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::kubeapi;

/// What has been changed in the cluster so far, to undo on failure.
#[derive(Default)]
struct Undo {
    secret: Option<Secret>,
    cr_deleted: bool,
    pull_secret: Option<Vec<u8>>,
}

/// Why the steps stopped: the seed generation failed (recorded on the CR), or a status write
/// failed (returned to the controller, which retries).
enum Stop {
    Failed(Error),
    Status(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

/// One reconcile of the generating phase.
pub async fn run(ctx: &Arc<Context>, w: &mut Writer) -> Result<Action> {
    let mut undo = Undo::default();
    let failure = match steps(ctx, w, &mut undo).await {
        Ok(()) => {
            info!("imager launched");
            return Ok(Action::await_change());
        }
        Err(Stop::Status(e)) => return Err(e),
        Err(Stop::Failed(e)) => e.to_string(),
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
    // The failure is recorded; a leftover workspace is wiped by the next attempt's first step.
    for dir in [paths::SEEDGEN_WORKSPACE, paths::BACKUP_CERTS_DIR] {
        if let Err(e) = NodeFs::new(ctx.exec.as_ref()).remove_dir_all(&ctx.paths.host(dir)) {
            warn!("removing {dir}: {e}");
        }
    }
    Ok(Action::await_change())
}

/// Announce `step` (SeedGenInProgress message).
async fn announce(w: &mut Writer, step: GenStep) -> Result<(), Stop> {
    w.progress(step.message()).await.map_err(Stop::Status)
}

/// Secrets, the pull secret and the saved CR: 0600 from the first byte.
fn write_private(ctx: &Context, rel: &str, data: &[u8]) -> Result<()> {
    Ok(NodeFs::new(ctx.exec.as_ref()).write_private(&ctx.paths.host(rel), data)?)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::invalid(e.to_string()))
}

/// The steps, in `GenStep::ORDER`.
async fn steps(ctx: &Arc<Context>, w: &mut Writer, undo: &mut Undo) -> Result<(), Stop> {
    announce(w, GenStep::Starting).await?;
    setup_workspace(ctx).await?;
    announce(w, GenStep::PullingRecert).await?;
    let recert = imager::recert_image(&w.cr);
    pull_recert(ctx, &recert).await?;
    announce(w, GenStep::Preparing).await?;
    let (secret, pull_secret) = save_secrets(ctx).await?;
    announce(w, GenStep::Cleaning).await?;
    clean_cluster(ctx, &recert, pull_secret, undo).await?;
    announce(w, GenStep::LaunchingImager).await?;
    remove_from_cluster(ctx, &w.cr, secret, undo).await?;
    imager::launch(ctx, &w.cr).await?;
    Ok(())
}

async fn setup_workspace(ctx: &Context) -> Result<()> {
    let fs = NodeFs::new(ctx.exec.as_ref());
    let ws = ctx.paths.host(paths::SEEDGEN_WORKSPACE);
    fs.remove_dir_all(&ws)
        .map_err(|e| Error::from(e).context("failed to wipe previous workspace"))?;
    imager::remove_previous(ctx).await?;
    fs.create_private_dir(&ws)
        .map_err(|e| Error::from(e).context("failed to create workdir"))
}

async fn pull_recert(ctx: &Context, recert: &str) -> Result<()> {
    if ctx.exec.node().kind == NodeKind::Simulated {
        info!(image = %recert, "simulated node: the recert image is not pulled");
        return Ok(());
    }
    let opts = PullOptions {
        authfile: Some(std::path::PathBuf::from("/").join(paths::KUBELET_CONFIG)),
        ..Default::default()
    };
    podman::pull(ctx.host_namespace_executor().as_ref(), recert, &opts)
        .await
        .map_err(|e| {
            Error::from(e).context(format!(
                "failed to pull recert image: failed to pull recertImage ({recert})"
            ))
        })
}

/// Save the `seedgen` Secret, the seed auth and the cluster pull secret on the node; the
/// Secret and the pull secret.
async fn save_secrets(ctx: &Context) -> Result<(Secret, Vec<u8>)> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let secret = secrets
        .get(names::SEEDGEN_SECRET)
        .await
        .map_err(Error::api(format!(
            "could not access secret {} in {}",
            names::SEEDGEN_SECRET,
            ctx.namespace
        )))?;
    write_private(ctx, paths::SEEDGEN_STORED_SECRET, &to_json(&secret)?)?;
    let auth = secret
        .data
        .as_ref()
        .and_then(|d| d.get(names::SEEDGEN_SECRET_AUTH_KEY))
        .ok_or_else(|| Error::invalid(lca_api::consts::messages::SEEDGEN_MISSING_SEED_AUTH))?;
    write_private(ctx, paths::SEEDGEN_AUTH, &auth.0)?;
    let pull_secret = cleanup::read_pull_secret(&ctx.client).await?;
    write_private(ctx, paths::SEEDGEN_STORED_PULL_SECRET, &pull_secret)?;
    Ok((secret, pull_secret))
}

/// ACM leftovers, finished pods, the sanitized pull secret, stale rendered MachineConfigs,
/// then the seed cluster info.
async fn clean_cluster(ctx: &Context, recert: &str, pull_secret: Vec<u8>, undo: &mut Undo) -> Result<()> {
    cleanup::cluster_resources(&ctx.client)
        .await
        .map_err(|e| e.context("failed to cleanup resources"))?;
    cleanup::finished_pods(&ctx.client, "Succeeded").await?;
    cleanup::finished_pods(&ctx.client, "Failed").await?;
    info!("sanitizing the cluster's pull-secret");
    undo.pull_secret = Some(pull_secret);
    cleanup::override_pull_secret(ctx, names::SANITIZED_PULL_SECRET.as_bytes())
        .await
        .map_err(|e| e.context("failed sanitizing cluster's pull-secret"))?;
    cleanup::old_rendered_machine_configs(&ctx.client)
        .await
        .map_err(|e| e.context("failed to cleanup old machine configs, err"))?;
    // An unknown mount target is recorded as empty, as upstream does.
    let storage = systemd::container_storage_mount_target(ctx.host_namespace_executor().as_ref())
        .await
        .unwrap_or_default();
    let info = cluster_info::gather(&ctx.client, recert, &storage)
        .await
        .map_err(|e| e.context("failed to gather seed cluster info"))?;
    write_private(ctx, paths::SEED_CLUSTER_INFO, &to_json(&info)?)?;
    let images = cluster_info::seed_images(&ctx.client)
        .await
        .map_err(|e| e.context("failed to gather the seed's images"))?;
    write_private(ctx, paths::SEED_IMAGES, &to_json(&images)?)?;
    if !imager::skip_recert() {
        backup_certs(ctx).await?;
    }
    Ok(())
}

/// §8.5 step 5, done here because `lca-cli create` has no kube client: what recert needs to
/// give the seed cluster its identity back after expiring it for the seed.
async fn backup_certs(ctx: &Context) -> Result<()> {
    let fs = NodeFs::new(ctx.exec.as_ref());
    let dir = ctx.paths.host(paths::BACKUP_CERTS_DIR);
    fs.remove_dir_all(&dir)?;
    crate::node_work::seed::write_kubeconfig_crypto(&ctx.client, &fs, &dir)
        .await
        .map_err(|e| e.context("failed to back up the cluster's certificates"))?;
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), "kube-system");
    let hash = kubeapi::get_optional(&api, "kubeadmin")
        .await
        .map_err(Error::api("failed to get secret kube-system/kubeadmin"))?
        .and_then(|s| s.data?.remove("kubeadmin"));
    if let Some(hash) = hash {
        fs.write_private(&dir.join(paths::KUBEADMIN_HASH_FILE), &hash.0)?;
    }
    Ok(())
}

/// Save the CR on the node, then delete the Secret, the CR and the IBU from the cluster.
async fn remove_from_cluster(
    ctx: &Context,
    cr: &SeedGenerator,
    secret: Secret,
    undo: &mut Undo,
) -> Result<()> {
    write_private(ctx, paths::SEEDGEN_STORED_CR, &to_json(cr)?)?;
    info!("deleting the seedgen secret");
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    secrets
        .delete(names::SEEDGEN_SECRET, &DeleteParams::default())
        .await
        .map_err(Error::api("unable to delete seedgen secret CR"))?;
    undo.secret = Some(secret);
    info!("deleting the SeedGenerator");
    let crs: Api<SeedGenerator> = Api::all(ctx.client.clone());
    crs.delete(names::SEEDGEN, &DeleteParams::default())
        .await
        .map_err(Error::api("unable to delete seedgen CR"))?;
    undo.cr_deleted = true;
    // The IBU must not be in the seed; InitIBU re-creates a fresh one afterwards.
    let ibus: Api<ImageBasedUpgrade> = Api::all(ctx.client.clone());
    kubeapi::delete_ignoring_absent(&ibus, names::IBU, &DeleteParams::default())
        .await
        .map_err(Error::api("failed to delete IBU CR"))?;
    Ok(())
}

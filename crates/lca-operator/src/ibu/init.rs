//! Making sure the singleton IBU exists (spec §2.10 `InitIBU`): at start-up and whenever the
//! IBU is not found, restore it from the node's `var/lib/lca/ibu.json` if a saved copy is
//! there (an upgrade survives a reboot or a deletion that way), otherwise create the default
//! `{name: upgrade, spec.stage: Idle}`.

use std::time::Duration;

use kube::api::{Api, DeleteParams};
use kube::runtime::conditions;
use kube::runtime::wait::await_condition;
use lca_api::consts::{names, paths};
use lca_api::{ImageBasedUpgrade, ImageBasedUpgradeSpec, Stage};
use lca_hostops::NodeFs;
use tracing::info;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::kubeapi::{self, Created};

/// Ensure the IBU exists: restore a saved one (replacing what the cluster has), keep one
/// that exists, or create the default after forgetting an earlier cycle's node work.
pub async fn init_ibu(ctx: &Context) -> Result<()> {
    let api: Api<ImageBasedUpgrade> = Api::all(ctx.client.clone());
    let fs = NodeFs::new(ctx.exec.as_ref());
    let saved = ctx.paths.host(paths::SAVED_IBU);
    if let Some(text) = fs.read_string_optional(&saved)?
        && !saved_in_this_boot(ctx, &fs)?
    {
        return restore(&api, &fs, &saved, &text).await;
    }
    // A running cycle (an operator restarted mid-stage) is left as it is.
    if kubeapi::get_optional(&api, names::IBU)
        .await
        .map_err(Error::kube("reading the ImageBasedUpgrade"))?
        .is_some()
    {
        return Ok(());
    }
    // No IBU and no saved copy: an earlier cycle was forgotten (deleted while the operator
    // was down). Its work on the node must not be taken for this cycle's.
    ctx.work
        .fresh_start()
        .await
        .map_err(|e| e.context("removing the node work of a forgotten upgrade cycle"))?;
    let ibu = ImageBasedUpgrade::new(
        names::IBU,
        ImageBasedUpgradeSpec {
            stage: Some(Stage::Idle),
            ..Default::default()
        },
    );
    let created = kubeapi::create_if_missing(&api, &ibu)
        .await
        .map_err(Error::kube("creating the default ImageBasedUpgrade"))?;
    if let Created::New(_) = created {
        info!("created the default ImageBasedUpgrade {}", names::IBU);
    }
    Ok(())
}

/// Whether pre-pivot saved the `Uncontrolled rollback` copy during this very boot: the
/// operator restarted before the reboot, and the copy waits for a boot that needs it.
fn saved_in_this_boot(ctx: &Context, fs: &NodeFs<'_>) -> Result<bool> {
    let marker = ctx
        .paths
        .host(paths::WORKSPACE)
        .join(crate::node_work::SAVED_IN_BOOT);
    let Some(saved_in) = fs.read_string_optional(&marker)? else {
        return Ok(false);
    };
    Ok(saved_in.trim() == lca_hostops::sim::boot_id(ctx.exec.as_ref())?)
}

/// Re-create the IBU with its saved spec and status (`text`, read from `saved`), then
/// remove the file.
async fn restore(
    api: &Api<ImageBasedUpgrade>,
    fs: &NodeFs<'_>,
    saved: &std::path::Path,
    text: &str,
) -> Result<()> {
    let mut ibu: ImageBasedUpgrade = serde_json::from_str(text).map_err(|e| Error::Invalid {
        what: "saved ImageBasedUpgrade",
        message: format!("{}: {e}", saved.display()),
    })?;
    let status = ibu.status.take();
    ibu.metadata.resource_version = None;
    ibu.metadata.uid = None;
    ibu.metadata.creation_timestamp = None;
    ibu.metadata.managed_fields = None;
    ibu.metadata.generation = None;
    ibu.metadata.deletion_timestamp = None;
    if let Some(old) = kubeapi::get_optional(api, names::IBU)
        .await
        .map_err(Error::kube("reading the ImageBasedUpgrade"))?
    {
        delete_and_wait(api, &old).await?;
    }
    let created = api
        .create(&kubeapi::post_params(), &ibu)
        .await
        .map_err(Error::kube("restoring the ImageBasedUpgrade"))?;
    if let Some(mut status) = status {
        status.observed_generation = created.metadata.generation.unwrap_or_default();
        kubeapi::patch_status(api, names::IBU, &status)
            .await
            .map_err(Error::kube("restoring the ImageBasedUpgrade status"))?;
    }
    fs.remove_file(saved)?;
    info!(
        "restored the ImageBasedUpgrade {} from {}",
        names::IBU,
        saved.display()
    );
    Ok(())
}

/// Delete the IBU that is in the way of a restore and wait (30 s) until it is gone.
async fn delete_and_wait(api: &Api<ImageBasedUpgrade>, old: &ImageBasedUpgrade) -> Result<()> {
    kubeapi::delete_ignoring_absent(api, names::IBU, &DeleteParams::default())
        .await
        .map_err(Error::kube("deleting the ImageBasedUpgrade before restoring it"))?;
    let uid = old.metadata.uid.clone().unwrap_or_default();
    let gone = await_condition(api.clone(), names::IBU, conditions::is_deleted(&uid));
    tokio::time::timeout(Duration::from_secs(30), gone)
        .await
        .map_err(|_| Error::Node {
            what: "restoring the ImageBasedUpgrade",
            message: "the old object was not deleted within 30s".into(),
        })?
        .map_err(|e| Error::Node {
            what: "restoring the ImageBasedUpgrade",
            message: e.to_string(),
        })?;
    Ok(())
}

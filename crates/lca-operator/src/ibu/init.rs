//! Making sure the singleton IBU exists (spec §2.10 `InitIBU`): at start-up and whenever the
//! IBU is not found, restore it from the node's `var/lib/lca/ibu.json` if a saved copy is
//! there (an upgrade survives a reboot or a deletion that way), otherwise create the default
//! `{name: upgrade, spec.stage: Idle}`.

use std::time::Duration;

use kube::api::{Api, DeleteParams, PostParams};
use kube::runtime::conditions;
use kube::runtime::wait::await_condition;
use lca_api::consts::{names, paths};
use lca_api::{ImageBasedUpgrade, ImageBasedUpgradeSpec, Stage};
use tracing::info;

use crate::context::{CONTROLLER_NAME, Context};
use crate::error::{Error, Result};

/// Ensure the IBU exists.
pub async fn init_ibu(ctx: &Context) -> Result<()> {
    let api: Api<ImageBasedUpgrade> = Api::all(ctx.client.clone());
    let saved = ctx.paths.host(paths::SAVED_IBU);
    if saved.exists() {
        return restore(&api, &saved).await;
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
    match api.create(&post_params(), &ibu).await {
        Ok(_) => info!("created the default ImageBasedUpgrade {}", names::IBU),
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(Error::kube("creating the default ImageBasedUpgrade")(e)),
    }
    Ok(())
}

/// Re-create the IBU with its saved spec and status, then remove the file.
async fn restore(api: &Api<ImageBasedUpgrade>, saved: &std::path::Path) -> Result<()> {
    let text = std::fs::read_to_string(saved).map_err(|e| Error::Node {
        what: "reading the saved ImageBasedUpgrade",
        message: e.to_string(),
    })?;
    let mut ibu: ImageBasedUpgrade = serde_json::from_str(&text).map_err(|e| Error::Invalid {
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
    if let Some(old) = api
        .get_opt(names::IBU)
        .await
        .map_err(Error::kube("reading the ImageBasedUpgrade"))?
    {
        api.delete(names::IBU, &DeleteParams::default())
            .await
            .map_err(Error::kube("deleting the ImageBasedUpgrade before restoring it"))?;
        let uid = old.metadata.uid.unwrap_or_default();
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
    }
    let mut created = api
        .create(&post_params(), &ibu)
        .await
        .map_err(Error::kube("restoring the ImageBasedUpgrade"))?;
    if let Some(mut status) = status {
        status.observed_generation = created.metadata.generation.unwrap_or_default();
        created.status = Some(status);
        api.replace_status(names::IBU, &post_params(), &created)
            .await
            .map_err(Error::kube("restoring the ImageBasedUpgrade status"))?;
    }
    std::fs::remove_file(saved).map_err(|e| Error::Node {
        what: "removing the saved ImageBasedUpgrade",
        message: e.to_string(),
    })?;
    info!(
        "restored the ImageBasedUpgrade {} from {}",
        names::IBU,
        saved.display()
    );
    Ok(())
}

/// Write parameters with our field manager.
pub fn post_params() -> PostParams {
    PostParams {
        field_manager: Some(CONTROLLER_NAME.into()),
        ..Default::default()
    }
}

//! Re-creating the SeedGenerator and its Secret from the node (spec §8.4, `initSeedGen`).
//! Before launching the imager the controller saved both (with the CR's status) in the
//! workspace and deleted them, so they are not in the seed. Afterwards — at operator start on
//! a real node, when the local imager exits on a simulated one — they are created again, the
//! saved files become `*.bak`, and the original pull secret is put back. The CR's Create
//! event then drives the finalizing phase.

use std::path::Path;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::{Api, ObjectMeta};
use lca_api::SeedGenerator;
use lca_api::consts::{messages as m, names, paths};
use lca_hostops::NodeFs;
use tracing::{error, info, warn};

use super::cleanup;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::kubeapi::{self, Created};

/// Keep what identifies the object to a user; drop what the API server owns.
fn fresh_meta(meta: &ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        name: meta.name.clone(),
        namespace: meta.namespace.clone(),
        labels: meta.labels.clone(),
        annotations: meta.annotations.clone(),
        ..Default::default()
    }
}

/// Create `secret` again (already present is fine).
pub async fn create_secret(client: &Client, mut secret: Secret) -> Result<()> {
    secret.metadata = fresh_meta(&secret.metadata);
    let ns = secret.metadata.namespace.clone().unwrap_or_default();
    let api: Api<Secret> = Api::namespaced(client.clone(), &ns);
    kubeapi::create_if_missing(&api, &secret)
        .await
        .map_err(Error::api("failed to create seedgen secret"))?;
    Ok(())
}

/// Create the SeedGenerator again, then put its saved status back. One found in its place
/// (created while the imager ran, and rejected for that; or ours, re-created by a restart
/// that stopped before renaming the saved files) is replaced: only a Create event drives
/// the finalizing phase.
pub async fn create_cr(client: &Client, mut cr: SeedGenerator) -> Result<()> {
    let status = cr.status.take();
    cr.metadata = fresh_meta(&cr.metadata);
    let api: Api<SeedGenerator> = Api::all(client.clone());
    let created = match kubeapi::create_if_missing(&api, &cr)
        .await
        .map_err(Error::kube("re-creating the SeedGenerator"))?
    {
        Created::New(c) => c,
        Created::Existed => {
            warn!("a SeedGenerator took the saved one's place while the imager ran; replacing it");
            kubeapi::delete_ignoring_absent(&api, names::SEEDGEN, &Default::default())
                .await
                .map_err(Error::kube("deleting the SeedGenerator in the saved one's place"))?;
            api.create(&kubeapi::post_params(), &cr)
                .await
                .map_err(Error::kube("re-creating the SeedGenerator"))?
        }
    };
    if let Some(mut status) = status {
        status.observed_generation = created.metadata.generation.unwrap_or_default();
        kubeapi::patch_status(&api, names::SEEDGEN, &status)
            .await
            .map_err(Error::kube("restoring the SeedGenerator status"))?;
    }
    Ok(())
}

fn read_json<T: serde::de::DeserializeOwned>(fs: &NodeFs<'_>, path: &Path) -> Result<T> {
    let text = fs.read_string(path)?;
    serde_json::from_str(&text).map_err(|e| Error::invalid(format!("parsing {}: {e}", path.display())))
}

/// Rename `path` to `path.bak` (rewritten, as NodeFs writes files whole).
fn to_bak(fs: &NodeFs<'_>, path: &Path) -> Result<()> {
    let mut bak = path.as_os_str().to_owned();
    bak.push(".bak");
    let bytes = fs.read_optional(path)?.unwrap_or_default();
    fs.write_private(Path::new(&bak), &bytes)?;
    fs.remove_file(path)?;
    Ok(())
}

/// `initSeedGen`: restore the Secret, the CR and the pull secret if the files are there.
/// Nothing saved is not an error; half of it is.
pub async fn init_seedgen(ctx: &Context) -> Result<()> {
    let fs = NodeFs::new(ctx.exec.as_ref());
    let cr_file = ctx.paths.host(paths::SEEDGEN_STORED_CR);
    let secret_file = ctx.paths.host(paths::SEEDGEN_STORED_SECRET);
    match (fs.exists(&cr_file)?, fs.exists(&secret_file)?) {
        (false, false) => return Ok(()),
        (true, true) => {}
        (cr, _) => {
            let missing = if cr { &secret_file } else { &cr_file };
            return Err(Error::state(format!(
                "{} {}",
                m::SEEDGEN_MISSING_STORED_FILE,
                missing.display()
            )));
        }
    }
    let secret: Secret = read_json(&fs, &secret_file)?;
    let cr: SeedGenerator = read_json(&fs, &cr_file)?;
    create_secret(&ctx.client, secret).await?;
    create_cr(&ctx.client, cr).await?;
    to_bak(&fs, &secret_file)?;
    to_bak(&fs, &cr_file)?;
    let pull_secret = ctx.paths.host(paths::SEEDGEN_STORED_PULL_SECRET);
    match fs.read_optional(&pull_secret)? {
        Some(data) => cleanup::set_pull_secret(ctx, &data).await?,
        None => warn!("no saved pull secret to restore at {}", pull_secret.display()),
    }
    info!(
        "restored the SeedGenerator and its secret from {}",
        cr_file.display()
    );
    Ok(())
}

/// At operator start: restore if the imager left saved objects, once it no longer runs
/// (errors are logged; the operator must still come up to manage the IBU).
pub async fn at_startup(ctx: &Arc<Context>) {
    if super::imager::restore_after_running_imager(ctx).await {
        info!("the imager still runs: the SeedGenerator is restored when it exits");
        return;
    }
    restore_logged(ctx).await;
}

async fn restore_logged(ctx: &Context) {
    if let Err(e) = init_seedgen(ctx).await {
        error!("cannot restore the SeedGenerator: {e}");
    }
}

/// After the imager exited while this operator lives, serialized with the reconciles.
pub async fn after_imager(ctx: &Arc<Context>) {
    let _serial = ctx.lock.lock().await;
    restore_logged(ctx).await;
}

//! Prep's pull of a seed: inspect (labels only), then every layer by digest into a temp
//! dir next to the target, verified, unpacked through `lca_hostops::archive`, and renamed
//! into place. A wrong digest, a truncated gzip or an escaping entry leaves the target as
//! it was. The result is the seed's files (`var.tgz`, `etc.tgz`, ...) in one directory,
//! as `podman image mount` shows them.

use std::path::{Path, PathBuf};

use lca_hostops::archive::{self, Staging};

use crate::progress::Progress;
use crate::registry::{SeedImageInfo, SeedRegistry};
use crate::{Error, Result, layout};
use oci_client::Reference;

/// Pull `image` (resolved to its manifest digest first) and unpack its layers into `target`.
pub async fn pull_and_unpack(reg: &SeedRegistry, image: &Reference, target: &Path) -> Result<SeedImageInfo> {
    let info = reg.inspect(image).await?;
    let by_digest = Reference::with_digest(
        image.resolve_registry().to_string(),
        image.repository().to_string(),
        info.manifest_digest.clone(),
    );
    let staging = Staging::new(target).map_err(Error::io("creating the staging dir", target))?;
    for (i, layer) in info.layers.iter().enumerate() {
        if ![layout::LAYER_GZIP, layout::DOCKER_LAYER_GZIP, layout::LAYER_TAR]
            .contains(&layer.media_type.as_str())
        {
            return Err(Error::Invalid(format!(
                "unsupported seed layer media type {}",
                layer.media_type
            )));
        }
        let blob = blob_path(target, i)?;
        let progress = Progress::new(format!("pull layer {i}"), Some(layer.size));
        reg.download_blob(&by_digest, layer, &blob, &progress).await?;
        let dest = staging.path().to_path_buf();
        let blob2 = blob.clone();
        let res = tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&blob2).map_err(Error::io("opening", &blob2))?;
            let opts = archive::Options::default();
            let stats = if layer_is_gzip(&blob2)? {
                archive::extract_tar_gz(file, &dest, &opts)
            } else {
                archive::extract_tar(file, &dest, &opts)
            };
            stats.map_err(Error::from)
        })
        .await
        .map_err(|e| Error::Invalid(format!("unpack task failed: {e}")));
        // The blob is a scratch copy in a temp dir removed with it; the unpack result counts.
        let _ = std::fs::remove_file(&blob);
        let stats = res??;
        tracing::info!(layer = %layer.digest, entries = stats.entries, bytes = stats.bytes, "seed layer unpacked");
    }
    staging
        .commit()
        .map_err(Error::io("moving the unpacked seed into place", target))?;
    Ok(info)
}

fn layer_is_gzip(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut magic = [0u8; 2];
    let mut f = std::fs::File::open(path).map_err(Error::io("opening", path))?;
    Ok(f.read(&mut magic).map_err(Error::io("reading", path))? == 2 && magic == [0x1f, 0x8b])
}

fn blob_path(target: &Path, i: usize) -> Result<PathBuf> {
    let name = target
        .file_name()
        .ok_or_else(|| Error::Invalid(format!("{} has no file name", target.display())))?
        .to_string_lossy()
        .into_owned();
    Ok(target.with_file_name(format!(".{name}.layer{i}-{}.blob", std::process::id())))
}

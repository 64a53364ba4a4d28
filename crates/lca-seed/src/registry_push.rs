//! The push side of [`SeedRegistry`] (`lca-cli create`): the access check before packing,
//! then the layer streamed from its file, the config, and the manifest last so a failed
//! push never moves the tag. The layer upload runs on the client without a read timeout,
//! under the upload watchdog of `timeouts`, so a slow push is never cut and a stalled one
//! fails.

use std::collections::BTreeMap;

use futures::StreamExt;
use oci_client::errors::OciDistributionError;
use oci_client::{Reference, RegistryOperation};
use tokio::io::AsyncReadExt;

use crate::layout::{self, Descriptor};
use crate::pack::LayerBlob;
use crate::progress::Progress;
use crate::registry::{SeedRegistry, http_value};
use crate::timeouts::UploadFeed;
use crate::{Error, Result};

impl SeedRegistry {
    /// Prove before packing that the credentials may push to `image`'s repository, so a
    /// wrong password fails in seconds rather than after minutes of packing. `auth` alone
    /// proves nothing against a basic-auth registry (the header is only sent later), so
    /// this uploads the 2-byte empty JSON blob `{}`: the same upload path as the layer,
    /// through whatever token flow the registry uses, and harmless (registries hold such
    /// unreferenced blobs until garbage collection; the OCI spec names it the "empty"
    /// descriptor).
    pub async fn check_push_access(&self, image: &Reference) -> Result<()> {
        let what = "checking push access before packing";
        self.metadata(what, async {
            self.client
                .auth(image, &self.auth, RegistryOperation::Push)
                .await
                .map_err(self.map(what))?;
            let empty = b"{}".to_vec();
            let digest = layout::sha256(&empty);
            self.client
                .push_blob(image, empty, &digest)
                .await
                .map_err(self.map(what))?;
            Ok(())
        })
        .await
    }

    /// Push a seed: layer blob (skipped when the registry has it), config, manifest.
    /// Returns the manifest digest. The layer upload is never cut while the registry takes
    /// data; it fails once nothing moved for `read`, or the answer is late by `upload_commit`.
    pub async fn push_seed(
        &self,
        image: &Reference,
        layer: &LayerBlob,
        labels: &BTreeMap<String, String>,
        created: &str,
        progress: &Progress,
    ) -> Result<String> {
        let exists = self
            .metadata("checking the layer blob", async {
                self.client
                    .auth(image, &self.auth, RegistryOperation::Push)
                    .await
                    .map_err(self.map("authenticating"))?;
                self.client
                    .blob_exists(image, &layer.digest)
                    .await
                    .map_err(self.map("checking the layer blob"))
            })
            .await?;
        if !exists {
            self.push_layer(image, layer, progress).await?;
        }
        progress.finish();
        let config = layout::image_config(labels, &layer.diff_id, created)
            .map_err(|e| Error::Invalid(format!("serializing the image config: {e}")))?;
        let config_desc = Descriptor {
            media_type: layout::OCI_CONFIG.into(),
            digest: layout::sha256(&config),
            size: config.len() as u64,
            annotations: BTreeMap::new(),
        };
        let layer_desc = Descriptor {
            media_type: layout::LAYER_GZIP.into(),
            digest: layer.digest.clone(),
            size: layer.size,
            annotations: BTreeMap::new(),
        };
        let manifest = layout::manifest_json(config_desc.clone(), vec![layer_desc])
            .map_err(|e| Error::Invalid(format!("serializing the manifest: {e}")))?;
        let digest = layout::sha256(&manifest);
        let content_type = http_value(layout::OCI_MANIFEST)?;
        self.metadata("pushing the config and manifest", async {
            self.client
                .push_blob(image, config, &config_desc.digest)
                .await
                .map_err(self.map("pushing the config"))?;
            self.client
                .push_manifest_raw(image, manifest, content_type)
                .await
                .map_err(self.map("pushing the manifest"))
        })
        .await?;
        Ok(digest)
    }

    /// Stream the layer file to the registry on the upload client, under the watchdog.
    async fn push_layer(&self, image: &Reference, layer: &LayerBlob, progress: &Progress) -> Result<()> {
        let what = "pushing the layer blob";
        let file = tokio::fs::File::open(&layer.path)
            .await
            .map_err(Error::io("opening the layer", &layer.path))?;
        let (feed, watch) = UploadFeed::new();
        let state = (file, feed.clone(), layer.size);
        let stream = futures::stream::unfold(state, |(mut f, feed, left)| async move {
            let mut buf = vec![0u8; 1 << 20];
            match f.read(&mut buf).await {
                Ok(0) => {
                    feed.sent();
                    None
                }
                Ok(n) => {
                    buf.truncate(n);
                    let left = left.saturating_sub(n as u64);
                    // hyper may stop polling once Content-Length bytes went out, so the
                    // last chunk itself starts the wait for the answer.
                    if left == 0 {
                        feed.sent()
                    } else {
                        feed.chunk()
                    }
                    Some((Ok(bytes::Bytes::from(buf)), (f, feed, left)))
                }
                Err(e) => Some((Err(OciDistributionError::IoError(e)), (f, feed, left))),
            }
        })
        .inspect({
            let progress = progress.clone();
            move |chunk| {
                if let Ok(c) = chunk {
                    progress.inc(c.len() as u64);
                }
            }
        });
        let push = async {
            self.uploads
                .auth(image, &self.auth, RegistryOperation::Push)
                .await?;
            self.uploads
                .push_blob_stream(image, stream, &layer.digest, Some(layer.size))
                .await
        };
        let result = tokio::select! {
            r = push => r.map(drop).map_err(self.map(what)),
            message = watch.stalled(&self.timeouts) => Err(self.unreachable(what, message)),
        };
        // Holding a sender to here keeps the watchdog from mistaking the stream's end for the push's.
        drop(feed);
        result
    }
}

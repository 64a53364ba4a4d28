//! Talking to an OCI registry through `oci-client`: push a seed (layer streamed from its
//! file, config, then the manifest last so a failed push never moves the tag), read a
//! seed's labels from manifest + config without touching layers, and download a blob by
//! digest with sha256 verification. Errors are mapped to what the user must do: fix the
//! credentials (401), reach the registry, or rebuild a corrupt seed.

use std::collections::BTreeMap;
use std::path::Path;

use futures::StreamExt;
pub use oci_client::Reference;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::{Client, RegistryOperation};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::auth::Credentials;
use crate::layout::{self, Descriptor, ImageConfig, Manifest};
use crate::pack::LayerBlob;
use crate::progress::Progress;
use crate::{Error, Result};

/// A registry client bound to one image reference's registry and its credentials.
pub struct SeedRegistry {
    client: Client,
    auth: oci_client::secrets::RegistryAuth,
    registry: String,
}

/// What [`SeedRegistry::inspect`] learns without pulling layers.
#[derive(Clone, Debug)]
pub struct SeedImageInfo {
    /// `sha256:` of the manifest; pull by it so the tag cannot move under Prep.
    pub manifest_digest: String,
    pub labels: BTreeMap<String, String>,
    pub layers: Vec<Descriptor>,
}

/// Parse an image reference (`host[:port]/repo[:tag|@digest]`).
pub fn parse_reference(image: &str) -> Result<Reference> {
    image
        .parse()
        .map_err(|e| Error::Invalid(format!("invalid image reference {image:?}: {e}")))
}

/// Whether to talk plain HTTP: loopback registries (tests, the demo) have no TLS.
pub fn is_loopback(registry: &str) -> bool {
    let host = registry.rsplit_once(':').map(|(h, _)| h).unwrap_or(registry);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

impl SeedRegistry {
    /// A client for `image`'s registry; `plain_http` for registries without TLS.
    pub fn new(image: &Reference, credentials: &Credentials, plain_http: bool) -> Self {
        // reqwest's rustls needs a process-wide provider; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let registry = image.resolve_registry().to_string();
        let protocol = if plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        };
        let config = ClientConfig {
            protocol,
            use_monolithic_push: true,
            ..Default::default()
        };
        Self {
            client: Client::new(config),
            auth: credentials.to_oci(),
            registry,
        }
    }

    fn map(&self, what: &str) -> impl Fn(OciDistributionError) -> Error + '_ {
        let what = what.to_string();
        move |e| map_error(&self.registry, &what, e)
    }

    /// Prove before packing that the credentials may push to `image`'s repository, so a
    /// wrong password fails in seconds rather than after minutes of packing. `auth` alone
    /// proves nothing against a basic-auth registry (the header is only sent later), so
    /// this uploads the 2-byte empty JSON blob `{}`: the same upload path as the layer,
    /// through whatever token flow the registry uses, and harmless (registries hold such
    /// unreferenced blobs until garbage collection; the OCI spec names it the "empty"
    /// descriptor).
    pub async fn check_push_access(&self, image: &Reference) -> Result<()> {
        let what = "checking push access before packing";
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
    }

    /// Push a seed: layer blob (skipped when the registry has it), config, manifest.
    /// Returns the manifest digest.
    pub async fn push_seed(
        &self,
        image: &Reference,
        layer: &LayerBlob,
        labels: &BTreeMap<String, String>,
        created: &str,
        progress: &Progress,
    ) -> Result<String> {
        self.client
            .auth(image, &self.auth, RegistryOperation::Push)
            .await
            .map_err(self.map("authenticating"))?;
        if !self
            .client
            .blob_exists(image, &layer.digest)
            .await
            .map_err(self.map("checking the layer blob"))?
        {
            let file = tokio::fs::File::open(&layer.path)
                .await
                .map_err(Error::io("opening the layer", &layer.path))?;
            let stream = futures::stream::unfold(file, |mut f| async move {
                let mut buf = vec![0u8; 1 << 20];
                match f.read(&mut buf).await {
                    Ok(0) => None,
                    Ok(n) => {
                        buf.truncate(n);
                        Some((Ok(bytes::Bytes::from(buf)), f))
                    }
                    Err(e) => Some((Err(OciDistributionError::IoError(e)), f)),
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
            self.client
                .push_blob_stream(image, stream, &layer.digest, Some(layer.size))
                .await
                .map_err(self.map("pushing the layer blob"))?;
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
        self.client
            .push_blob(image, config, &config_desc.digest)
            .await
            .map_err(self.map("pushing the config"))?;
        let layer_desc = Descriptor {
            media_type: layout::LAYER_GZIP.into(),
            digest: layer.digest.clone(),
            size: layer.size,
            annotations: BTreeMap::new(),
        };
        let manifest = layout::manifest_json(config_desc, vec![layer_desc])
            .map_err(|e| Error::Invalid(format!("serializing the manifest: {e}")))?;
        let digest = layout::sha256(&manifest);
        let content_type = http_value(layout::OCI_MANIFEST)?;
        self.client
            .push_manifest_raw(image, manifest, content_type)
            .await
            .map_err(self.map("pushing the manifest"))?;
        Ok(digest)
    }

    /// Manifest digest, labels and layers of `image`, reading only manifest and config.
    pub async fn inspect(&self, image: &Reference) -> Result<SeedImageInfo> {
        let (raw, digest) = self
            .client
            .pull_manifest_raw(
                image,
                &self.auth,
                &[layout::OCI_MANIFEST, layout::DOCKER_MANIFEST],
            )
            .await
            .map_err(self.map("reading the manifest"))?;
        if layout::sha256(&raw) != digest {
            return Err(Error::Digest {
                what: format!("manifest of {image}"),
                expected: digest,
                actual: layout::sha256(&raw),
            });
        }
        let manifest: Manifest = serde_json::from_slice(&raw)
            .map_err(|e| Error::Invalid(format!("{image} is not a single image manifest: {e}")))?;
        let mut config = Vec::new();
        let by_digest = Reference::with_digest(
            self.registry.clone(),
            image.repository().to_string(),
            digest.clone(),
        );
        self.client
            .pull_blob(&by_digest, &oci_desc(&manifest.config), &mut config)
            .await
            .map_err(self.map("reading the config"))?;
        let parsed: ImageConfig = serde_json::from_slice(&config)
            .map_err(|e| Error::Invalid(format!("invalid image config of {image}: {e}")))?;
        Ok(SeedImageInfo {
            manifest_digest: digest,
            labels: parsed.config.labels.unwrap_or_default(),
            layers: manifest.layers,
        })
    }

    /// Download `blob` of `image` to `dest` (a new file), verifying its sha256; on any
    /// failure `dest` is removed.
    pub async fn download_blob(
        &self,
        image: &Reference,
        blob: &Descriptor,
        dest: &Path,
        progress: &Progress,
    ) -> Result<()> {
        let result = self.download_inner(image, blob, dest, progress).await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(dest).await;
        }
        progress.finish();
        result
    }

    async fn download_inner(
        &self,
        image: &Reference,
        blob: &Descriptor,
        dest: &Path,
        progress: &Progress,
    ) -> Result<()> {
        use sha2::Digest;
        let mut stream = self
            .client
            .pull_blob_stream(image, &oci_desc(blob))
            .await
            .map_err(self.map("pulling the layer"))?;
        let file = tokio::fs::File::create(dest)
            .await
            .map_err(Error::io("creating", dest))?;
        let mut out = tokio::io::BufWriter::with_capacity(1 << 20, file);
        let mut hasher = sha2::Sha256::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                // oci-client checks the digest at the end of the stream too; report ours.
                Err(_) if size == blob.size => break,
                Err(e) => {
                    let (registry, what) = (self.registry.clone(), "pulling the layer".to_string());
                    return Err(Error::Registry {
                        registry,
                        what,
                        message: source_chain(&e),
                    });
                }
            };
            hasher.update(&chunk);
            size += chunk.len() as u64;
            progress.inc(chunk.len() as u64);
            out.write_all(&chunk).await.map_err(Error::io("writing", dest))?;
        }
        out.flush().await.map_err(Error::io("writing", dest))?;
        out.into_inner()
            .sync_all()
            .await
            .map_err(Error::io("syncing", dest))?;
        let actual = format!("sha256:{:x}", hasher.finalize());
        if actual != blob.digest || size != blob.size {
            return Err(Error::Digest {
                what: format!("layer of {image} ({size} bytes)"),
                expected: blob.digest.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// The registry part of the reference (`host:port`).
    pub fn registry(&self) -> &str {
        &self.registry
    }
}

fn oci_desc(d: &Descriptor) -> oci_client::manifest::OciDescriptor {
    oci_client::manifest::OciDescriptor {
        media_type: d.media_type.clone(),
        digest: d.digest.clone(),
        size: d.size as i64,
        ..Default::default()
    }
}

fn http_value(v: &str) -> Result<http::HeaderValue> {
    v.parse()
        .map_err(|_| Error::Invalid(format!("bad header value {v}")))
}

fn map_error(registry: &str, what: &str, e: OciDistributionError) -> Error {
    let (registry, what) = (registry.to_string(), what.to_string());
    match e {
        OciDistributionError::UnauthorizedError { .. } | OciDistributionError::AuthenticationFailure(_) => {
            Error::Unauthorized { registry, what }
        }
        OciDistributionError::ServerError { code: 401, .. } => Error::Unauthorized { registry, what },
        OciDistributionError::RequestError(r) if r.status().map(|s| s.as_u16()) == Some(401) => {
            Error::Unauthorized { registry, what }
        }
        OciDistributionError::DigestError(d) => Error::Digest {
            what,
            expected: String::new(),
            actual: d.to_string(),
        },
        OciDistributionError::RequestError(r) if r.is_connect() || r.is_timeout() => Error::Unreachable {
            registry,
            what,
            message: source_chain(&r),
        },
        OciDistributionError::ImageManifestNotFoundError(m) => {
            Error::Invalid(format!("image not found in {registry} while {what}: {m}"))
        }
        other => Error::Registry {
            registry,
            what,
            message: source_chain(&other),
        },
    }
}

fn source_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

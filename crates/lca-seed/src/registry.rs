//! Talking to an OCI registry through `oci-client`: read a seed's labels from manifest +
//! config without touching layers, and download a blob by digest with sha256 verification
//! (the push side is `registry_push`). Errors are mapped (`registry_error`) to what the
//! user must do: fix the credentials (401), reach the registry, or rebuild a corrupt seed.
//!
//! Every call is bounded by [`RegistryTimeouts`] (see `timeouts`): a registry that accepts
//! connections and never answers yields [`Error::Unreachable`] after the read timeout
//! instead of hanging Prep or a seed push.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;

use futures::StreamExt;
pub use oci_client::Reference;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::{Client, RegistryOperation};
use tokio::io::AsyncWriteExt;

use crate::auth::Credentials;
use crate::layout::{self, Descriptor, ImageConfig, Manifest};
use crate::progress::Progress;
use crate::registry_error::{body_error, map_error};
pub use crate::timeouts::RegistryTimeouts;
use crate::timeouts::human;
use crate::{Error, Result};

/// A registry client bound to one image reference's registry and its credentials.
pub struct SeedRegistry {
    /// Metadata and downloads: connect and read timeouts.
    pub(crate) client: Client,
    /// Blob uploads: connect timeout only (a read timeout would cap the whole upload, see
    /// `timeouts`); stalls are caught by the upload watchdog.
    pub(crate) uploads: Client,
    pub(crate) auth: oci_client::secrets::RegistryAuth,
    registry: String,
    pub(crate) timeouts: RegistryTimeouts,
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
    /// A client for `image`'s registry with the default [`RegistryTimeouts`]; `plain_http`
    /// for registries without TLS.
    pub fn new(image: &Reference, credentials: &Credentials, plain_http: bool) -> Self {
        Self::with_timeouts(image, credentials, plain_http, RegistryTimeouts::default())
    }

    /// As [`SeedRegistry::new`], with explicit timeouts.
    pub fn with_timeouts(
        image: &Reference,
        credentials: &Credentials,
        plain_http: bool,
        timeouts: RegistryTimeouts,
    ) -> Self {
        // reqwest's rustls needs a process-wide provider; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let registry = image.resolve_registry().to_string();
        let config = |read_timeout| ClientConfig {
            protocol: if plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            use_monolithic_push: true,
            connect_timeout: Some(timeouts.connect),
            read_timeout,
            ..Default::default()
        };
        Self {
            client: Client::new(config(Some(timeouts.read))),
            uploads: Client::new(config(None)),
            auth: credentials.to_oci(),
            registry,
            timeouts,
        }
    }

    /// The timeouts of this client.
    pub fn timeouts(&self) -> &RegistryTimeouts {
        &self.timeouts
    }

    pub(crate) fn map(&self, what: &str) -> impl Fn(OciDistributionError) -> Error + '_ {
        let what = what.to_string();
        move |e| map_error(&self.registry, &what, &self.timeouts, e)
    }

    pub(crate) fn unreachable(&self, what: &str, message: String) -> Error {
        Error::Unreachable {
            registry: self.registry.clone(),
            what: what.to_string(),
            message,
        }
    }

    /// `op` as one metadata operation: capped by `timeouts.metadata` as a whole.
    pub(crate) async fn metadata<T>(&self, what: &str, op: impl Future<Output = Result<T>>) -> Result<T> {
        let cap = self.timeouts.metadata;
        tokio::time::timeout(cap, op).await.unwrap_or_else(|_| {
            Err(self.unreachable(
                what,
                format!("no complete answer within {} (metadata timeout)", human(cap)),
            ))
        })
    }

    /// Manifest digest, labels and layers of `image`, reading only manifest and config.
    ///
    /// One bounded attempt, no retries: a registry that does not answer fails it after
    /// `timeouts.read` (an explicit auth request comes first, so a silent registry costs one
    /// read timeout, not one per request), and the whole call is capped by
    /// `timeouts.metadata`. The error is then [`Error::Unreachable`] (transient): the caller
    /// retries with backoff (the operator's Prep, across reconciles).
    pub async fn inspect(&self, image: &Reference) -> Result<SeedImageInfo> {
        self.metadata("reading the manifest", self.inspect_inner(image))
            .await
    }

    async fn inspect_inner(&self, image: &Reference) -> Result<SeedImageInfo> {
        self.client
            .auth(image, &self.auth, RegistryOperation::Pull)
            .await
            .map_err(self.map("reading the manifest"))?;
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
            // Best effort: the download's error is reported; a partial file is never used.
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
                    return Err(body_error(
                        &self.registry,
                        "pulling the layer",
                        &self.timeouts,
                        &e,
                    ));
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

pub(crate) fn http_value(v: &str) -> Result<http::HeaderValue> {
    v.parse()
        .map_err(|_| Error::Invalid(format!("bad header value {v}")))
}

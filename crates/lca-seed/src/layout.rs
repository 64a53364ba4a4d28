//! The seed image format v4: the files of the single layer, the OCI config with its two
//! labels, and the manifest. Byte-compatible with what the reference's
//! `podman build FROM scratch / COPY . /` + `podman push` produces, so podman, skopeo and
//! the reference Lifecycle Agent read our seeds and we read theirs.

use std::collections::BTreeMap;

use lca_api::consts::labels;
use lca_api::files::SeedClusterInfo;
use serde::{Deserialize, Serialize};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";

/// Files at the root of the seed layer (spec §8.5), besides `ostree-<deployment>.origin`.
pub mod files {
    pub const LCA_CLI: &str = "lca-cli";
    pub const CONTAINERS_LIST: &str = "containers.list";
    pub const MANIFEST: &str = "manifest.json";
    pub const RECERT_CONFIG: &str = "recert_config.json";
    pub const VAR: &str = "var.tgz";
    pub const ETC: &str = "etc.tgz";
    pub const ETC_DELETIONS: &str = "etc.deletions";
    pub const OSTREE: &str = "ostree.tgz";
    pub const RPM_OSTREE: &str = "rpm-ostree.json";
    pub const MCO_CURRENT_CONFIG: &str = "mco-currentconfig.json";
    /// `ostree-<deployment>.origin`.
    pub fn origin(deployment: &str) -> String {
        format!("ostree-{deployment}.origin")
    }
}

/// A content descriptor.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// An image manifest (OCI or Docker v2 schema 2; same shape).
#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// The parts of an image config lca-rs reads.
#[derive(Deserialize, Default, Debug)]
pub struct ImageConfig {
    #[serde(default)]
    pub config: ContainerConfig,
}

#[derive(Deserialize, Default, Debug)]
pub struct ContainerConfig {
    #[serde(rename = "Labels", default)]
    pub labels: Option<BTreeMap<String, String>>,
}

/// The two labels of a v4 seed.
pub fn seed_labels(info: &SeedClusterInfo) -> serde_json::Result<BTreeMap<String, String>> {
    Ok(BTreeMap::from([
        (
            labels::SEED_FORMAT_VERSION.to_string(),
            labels::SEED_FORMAT.to_string(),
        ),
        (
            labels::SEED_CLUSTER_INFO.to_string(),
            serde_json::to_string(info)?,
        ),
    ]))
}

/// The OCI image config of a seed whose single layer has the uncompressed digest `diff_id`.
pub fn image_config(
    labels: &BTreeMap<String, String>,
    diff_id: &str,
    created: &str,
) -> serde_json::Result<Vec<u8>> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    serde_json::to_vec(&serde_json::json!({
        "created": created,
        "architecture": arch,
        "os": "linux",
        "config": { "Labels": labels },
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
        "history": [{ "created": created, "created_by": "lca-cli create" }],
    }))
}

/// The manifest bytes for `config` + `layers`, OCI media type.
pub fn manifest_json(config: Descriptor, layers: Vec<Descriptor>) -> serde_json::Result<Vec<u8>> {
    serde_json::to_vec(&Manifest {
        schema_version: 2,
        media_type: Some(OCI_MANIFEST.into()),
        config,
        layers,
    })
}

/// `sha256:<hex>` of `data`.
pub fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{:x}", sha2::Sha256::digest(data))
}

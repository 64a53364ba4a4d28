//! Test images and seeds in a loopback registry, made from nothing upstream: tiny OCI images
//! written by hand (one uncompressed layer) and copied with the real `skopeo`, and seed
//! images packed by our own `lca-cli create` from a simulated seed node.

use std::path::Path;
use std::process::Command;

use sha2::{Digest, Sha256};

use crate::seednode::SeedNode;
use crate::{Error, Registry, Result, assets, io};

fn sha(data: &[u8]) -> String {
    format!("{:x}", Sha256::digest(data))
}

fn write_blob(layout: &Path, data: &[u8]) -> Result<String> {
    let digest = sha(data);
    std::fs::write(layout.join("blobs/sha256").join(&digest), data).map_err(io("writing a blob"))?;
    Ok(digest)
}

fn skopeo_dest_args(registry: &Registry) -> Vec<String> {
    let mut args = vec!["--dest-tls-verify=false".to_string()];
    if let Some((user, password)) = registry.credentials() {
        args.push(format!("--dest-creds={user}:{password}"));
    }
    args
}

/// Push a tiny image (one file `/hello` containing `content`) as `<registry>/<repo_tag>`;
/// returns the full reference.
pub fn push_test_image(registry: &Registry, repo_tag: &str, content: &str) -> Result<String> {
    push_layer_image(registry, repo_tag, &[("hello", content.as_bytes())])
}

/// Build a simulated seed node at `version` whose `containers.list` is `images`, pack it
/// with `lca-cli create` and push it as `<registry>/seed/sno:<version>`; returns the reference.
pub fn push_seed(registry: &Registry, version: &str, images: &[String]) -> Result<String> {
    push_seed_with(registry, version, images, false)
}

/// As [`push_seed`], for a seed cluster with (`has_proxy`) or without a proxy.
pub fn push_seed_with(
    registry: &Registry,
    version: &str,
    images: &[String],
    has_proxy: bool,
) -> Result<String> {
    push_seed_node(registry, version, images, has_proxy, 64)
}

/// Write an OCI image layout at `layout` with one uncompressed layer holding `files` (name,
/// bytes; fixed mtime, so the same files give the same digests), the label `lca.test=<tag>`,
/// and the tag `tag` (`org.opencontainers.image.ref.name`).
pub fn oci_layout(layout: &Path, tag: &str, files: &[(&str, &[u8])]) -> Result<()> {
    std::fs::create_dir_all(layout.join("blobs/sha256")).map_err(io("creating a layout"))?;
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder
            .append_data(&mut header, name, *data)
            .map_err(io("building a layer"))?;
    }
    let layer = builder.into_inner().map_err(io("building a layer"))?;
    let layer_digest = write_blob(layout, &layer)?;
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2026-11-25T00:00:00Z",
        "config": {"Labels": {"lca.test": tag}},
        "rootfs": {"type": "layers", "diff_ids": [format!("sha256:{layer_digest}")]},
    })
    .to_string();
    let config_digest = write_blob(layout, config.as_bytes())?;
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": format!("sha256:{config_digest}"), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": format!("sha256:{layer_digest}"), "size": layer.len()}]
    })
    .to_string();
    let manifest_digest = write_blob(layout, manifest.as_bytes())?;
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": format!("sha256:{manifest_digest}"), "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }]
    });
    std::fs::write(layout.join("index.json"), index.to_string()).map_err(io("writing index.json"))?;
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#)
        .map_err(io("writing oci-layout"))
}

/// Push an image of one uncompressed layer holding `files` (name, bytes) as
/// `<registry>/<repo_tag>`, through an OCI layout and `skopeo copy`; returns the reference.
fn push_layer_image(registry: &Registry, repo_tag: &str, files: &[(&str, &[u8])]) -> Result<String> {
    let dir = tempfile::tempdir().map_err(io("creating a layout dir"))?;
    let layout = dir.path();
    oci_layout(layout, "latest", files)?;
    let reference = format!("{}/{repo_tag}", registry.addr());
    let out = Command::new("skopeo")
        .arg("copy")
        .args(skopeo_dest_args(registry))
        .arg(format!("oci:{}:latest", layout.display()))
        .arg(format!("docker://{reference}"))
        .output()
        .map_err(io("running skopeo"))?;
    if !out.status.success() {
        return Err(Error::Setup(format!(
            "skopeo copy to {reference}: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(reference)
}

/// As [`push_test_image`], with a second file `/data` of `layer_kib` KiB of
/// [`crate::seednode::payload`] in the layer (precache benchmarks). `content` differs per
/// image, so no two images share a layer and every pull moves the whole layer.
pub fn push_sized_image(
    registry: &Registry,
    repo_tag: &str,
    content: &str,
    layer_kib: usize,
) -> Result<String> {
    let data = crate::seednode::payload(layer_kib * 1024);
    push_layer_image(
        registry,
        repo_tag,
        &[("hello", content.as_bytes()), ("data", &data)],
    )
}

/// As [`push_seed`], with `payload_kib` KiB of mixed data in the seed node's
/// `/var/lib/etcd` (benchmarks). The seed is packed by the `lca-cli` named by `LCA_CLI_BIN`
/// when set (benchmarks point it at a release build, whose packing is what a seed cluster
/// runs), else by the workspace's debug build.
pub fn push_seed_sized(
    registry: &Registry,
    version: &str,
    images: &[String],
    payload_kib: usize,
) -> Result<String> {
    push_seed_node(registry, version, images, false, payload_kib)
}

/// Build a simulated seed node whose `/var/lib/etcd` holds a stopped seed cluster at
/// `version` (`seedcluster`), pack it with `lca-cli create` and push it as
/// `<registry>/seed/sno:<version>`: a new stateroot made from it boots into that cluster.
pub async fn push_seed_with_cluster(
    registry: &Registry,
    version: &str,
    images: &[String],
    has_proxy: bool,
) -> Result<String> {
    let node = SeedNode::build(0)?;
    crate::seedcluster::install(node.root(), version).await?;
    pack_and_push(&node, registry, version, images, has_proxy)
}

fn push_seed_node(
    registry: &Registry,
    version: &str,
    images: &[String],
    has_proxy: bool,
    payload_kib: usize,
) -> Result<String> {
    let node = SeedNode::build(payload_kib)?;
    pack_and_push(&node, registry, version, images, has_proxy)
}

fn pack_and_push(
    node: &SeedNode,
    registry: &Registry,
    version: &str,
    images: &[String],
    has_proxy: bool,
) -> Result<String> {
    let root = node.root();
    std::fs::write(root.join("lca-sim/images.list"), images.join("\n") + "\n")
        .map_err(io("writing images.list"))?;
    let info = serde_json::json!({
        "seed_cluster_ocp_version": version, "base_domain": "example.com", "cluster_name": "seed",
        "has_proxy": has_proxy, "has_fips": false, "node_ips": ["192.168.1.10"],
        "release_registry": registry.addr(), "container_storage_mountpoint_target": "",
        "sno_hostname": crate::openshift::NODE,
        "recert_image_pull_spec": images.first().cloned().unwrap_or_default(),
    });
    std::fs::write(
        root.join("var/lib/lca/ibu-seedgen-orch/seed-cluster-info.json"),
        info.to_string(),
    )
    .map_err(io("writing the seed cluster info"))?;
    let auth = root.join("auth.json");
    std::fs::write(&auth, registry.auth_json()).map_err(io("writing auth.json"))?;
    let image = format!("{}/seed/sno:{version}", registry.addr());
    let lca_cli = assets::binary("LCA_CLI_BIN", "lca-cli")?;
    let mut cmd = Command::new(&lca_cli);
    cmd.arg("--host-root")
        .arg(root)
        .args(["create", "--simulated", "--image", &image, "--authfile"])
        .arg(&auth);
    // The recert image joins containers.list; keep it in the loopback registry too.
    if let Some(first) = images.first() {
        cmd.args(["--recert-image", first]);
    }
    let out = cmd
        .output()
        .map_err(io(format!("running {} create", lca_cli.display())))?;
    if !out.status.success() {
        return Err(Error::Setup(format!(
            "lca-cli create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(image)
}

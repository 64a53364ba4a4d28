//! Shared fixtures of the `stateroot-setup` and `precache` tests: running the built
//! `lca-cli`, a seed made by `lca-cli create --simulated` and pushed to a loopback
//! registry, and tiny hand-written OCI images pushed with skopeo.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use lca_testkit::seednode::SeedNode;
use sha2::{Digest, Sha256};

/// Run a setup command, panicking with its stderr on failure.
pub fn sh(argv: &[&str]) -> String {
    let out = Command::new(argv[0])
        .args(&argv[1..])
        .output()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert!(
        out.status.success(),
        "{argv:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `lca-cli --host-root <root> <args…>` with extra environment.
pub fn lca_cli(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lca-cli"))
        .arg("--host-root")
        .arg(root)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Build a simulated seed node whose MachineConfig has kernel arguments, pack it with
/// `lca-cli create --simulated` and push it to `<registry>/seed/sno:4.17.0`.
pub fn push_seed(registry: &str, work: &Path) -> (SeedNode, String) {
    let node = SeedNode::build(64).unwrap();
    let mc = r#"{"spec":{"kernelArguments":["ip=dhcp","console=ttyS0,115200n8"],"fips":false}}"#;
    std::fs::write(node.root().join("etc/machine-config-daemon/currentconfig"), mc).unwrap();
    let authfile = work.join("seed-auth.json");
    std::fs::write(&authfile, r#"{"auths":{}}"#).unwrap();
    let image = format!("{registry}/seed/sno:4.17.0");
    let out = lca_cli(
        node.root(),
        &[
            "create",
            "--simulated",
            "--image",
            &image,
            "--authfile",
            authfile.to_str().unwrap(),
        ],
        &[],
    );
    assert!(out.status.success(), "create: {}", stderr(&out));
    (node, image)
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn write_blob(layout: &Path, bytes: &[u8]) -> (String, usize) {
    let hex = sha256_hex(bytes);
    std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
    (format!("sha256:{hex}"), bytes.len())
}

/// An OCI image layout with one uncompressed layer holding `files`, tagged `tag`.
pub fn oci_layout(layout: &Path, tag: &str, files: &[(&str, &[u8])]) {
    std::fs::create_dir_all(layout.join("blobs/sha256")).unwrap();
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        builder.append_data(&mut header, name, *data).unwrap();
    }
    let layer = builder.into_inner().unwrap();
    let (layer_digest, layer_size) = write_blob(layout, &layer);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux", "created": "2026-11-25T00:00:00Z",
        "config": {"Labels": {"lca.test": tag}},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    let (config_digest, config_size) = write_blob(layout, config.to_string().as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer_size}],
    });
    let (manifest_digest, manifest_size) = write_blob(layout, manifest.to_string().as_bytes());
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest, "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
    std::fs::write(layout.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// Push a hand-written image with `files` to `<registry>/<name>:<tag>`.
pub fn push_image(work: &Path, registry: &str, name: &str, tag: &str, files: &[(&str, &[u8])]) -> String {
    let layout = work.join(format!("oci-{}-{tag}", name.replace('/', "_")));
    oci_layout(&layout, tag, files);
    let dest = format!("{registry}/{name}:{tag}");
    sh(&[
        "skopeo",
        "copy",
        "--quiet",
        "--dest-tls-verify=false",
        &format!("oci:{}:{tag}", layout.display()),
        &format!("docker://{dest}"),
    ]);
    dest
}

/// `podman images` names in a simulated node's private storage (the file `precache` writes).
pub fn podman_names(root: &Path) -> Vec<String> {
    let conf: PathBuf = root.join("var/lib/lca-sim/containers-storage.conf");
    let out = Command::new("podman")
        .args(["images", "--format", "{{range .Names}}{{.}}\n{{end}}"])
        .env("CONTAINERS_STORAGE_CONF", conf)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    v.sort();
    v
}

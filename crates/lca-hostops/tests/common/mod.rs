//! Shared fixtures of the integration tests: a simulated node with a real ostree sysroot
//! (Debian `ostree` 2022.7, no mounts needed), trees that `ostree admin deploy` accepts, a
//! hand-written OCI image layout pushed with skopeo, and a private podman vfs storage.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use lca_hostops::{Executor, LocalExecutor};
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

/// A simulated node: `<root>/sysroot` is an ostree sysroot with bootloader `none`.
pub struct SimNode {
    pub dir: tempfile::TempDir,
    pub exec: LocalExecutor,
}

impl Drop for SimNode {
    fn drop(&mut self) {
        // Deployment roots are `chattr +i`; without this the temp dir would silently stay.
        let _ = Command::new("chattr")
            .arg("-R")
            .arg("-i")
            .arg(self.dir.path())
            .output();
    }
}

impl SimNode {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("lca-sim-node-")
            .tempdir()
            .unwrap();
        let sysroot = dir.path().join("sysroot");
        std::fs::create_dir_all(&sysroot).unwrap();
        sh(&["ostree", "admin", "init-fs", sysroot.to_str().unwrap()]);
        let repo = format!("--repo={}", sysroot.join("ostree/repo").display());
        sh(&["ostree", "config", &repo, "set", "sysroot.bootloader", "none"]);
        let exec = LocalExecutor::new(dir.path());
        Self { dir, exec }
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn sysroot(&self) -> PathBuf {
        self.root().join("sysroot")
    }

    /// Commit `tree` into the sysroot repo on `branch`.
    pub fn commit(&self, branch: &str, tree: &Path, version: &str) {
        let repo = format!("--repo={}", self.sysroot().join("ostree/repo").display());
        commit(&repo, branch, tree, version);
    }

    /// BLS entry files, sorted.
    pub fn bls_entries(&self) -> Vec<(String, String)> {
        let dir = self.sysroot().join("boot/loader/entries");
        let mut v: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(e.path()).unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    }

    /// The title of the default BLS entry (highest `version`).
    pub fn default_entry_title(&self) -> String {
        let entries = self.bls_entries();
        let field = |text: &str, key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
                .unwrap_or_default()
        };
        entries
            .iter()
            .max_by_key(|(_, t)| field(t, "version ").parse::<u32>().unwrap_or(0))
            .map(|(_, t)| field(t, "title "))
            .unwrap()
    }

    pub fn exec(&self) -> &dyn Executor {
        &self.exec
    }
}

pub fn commit(repo_arg: &str, branch: &str, tree: &Path, version: &str) {
    let branch = format!("--branch={branch}");
    let tree = format!("--tree=dir={}", tree.display());
    let meta = format!("--add-metadata-string=version={version}");
    sh(&[
        "ostree",
        repo_arg,
        "commit",
        &branch,
        &tree,
        &meta,
        "--fsync=false",
    ]);
}

/// The smallest tree `ostree admin deploy` accepts (host-tooling notes §1), plus a marker.
pub fn make_tree(dir: &Path, marker: &str) {
    std::fs::create_dir_all(dir.join("usr/lib/modules/6.1.0")).unwrap();
    std::fs::create_dir_all(dir.join("usr/etc")).unwrap();
    std::fs::write(
        dir.join("usr/lib/modules/6.1.0/vmlinuz"),
        format!("kernel {marker}"),
    )
    .unwrap();
    std::fs::write(
        dir.join("usr/etc/os-release"),
        format!("ID=rhcos\nVERSION={marker}\n"),
    )
    .unwrap();
}

/// A separate archive-mode repo holding `branch`, as a seed's `ostree.tgz` unpacks to.
pub fn seed_repo(parent: &Path, branch: &str, marker: &str) -> PathBuf {
    let repo = parent.join("seed-repo");
    let tree = parent.join("seed-tree");
    make_tree(&tree, marker);
    sh(&[
        "ostree",
        "init",
        &format!("--repo={}", repo.display()),
        "--mode=archive",
    ]);
    commit(&format!("--repo={}", repo.display()), branch, &tree, marker);
    repo
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn write_blob(layout: &Path, bytes: &[u8]) -> (String, usize) {
    let hex = sha256_hex(bytes);
    std::fs::write(layout.join("blobs/sha256").join(&hex), bytes).unwrap();
    (format!("sha256:{hex}"), bytes.len())
}

/// Write an OCI image layout by hand with one uncompressed layer holding `files`, tagged `tag`.
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

/// A simulated node whose podman uses a private vfs storage under its root.
pub fn podman_node(root: &Path) -> LocalExecutor {
    let conf = root.join("storage.conf");
    std::fs::write(
        &conf,
        format!(
            "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
            root.join("var/lib/containers/storage").display(),
            root.join("run/containers/storage").display()
        ),
    )
    .unwrap();
    LocalExecutor::new(root).with_env("CONTAINERS_STORAGE_CONF", conf)
}

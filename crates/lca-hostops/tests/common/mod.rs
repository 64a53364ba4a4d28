//! Shared fixtures of the integration tests: a simulated node with a real ostree sysroot
//! (Debian `ostree` 2022.7, no mounts needed), trees that `ostree admin deploy` accepts, a
//! hand-written OCI image layout pushed with skopeo, and a private podman vfs storage.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use lca_hostops::{Executor, LocalExecutor};

/// Run a setup command, panicking with its stderr on failure.
pub fn sh(argv: &[&str]) -> String {
    lca_testkit::run(argv).unwrap_or_else(|e| panic!("{e}"))
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

/// An OCI image layout with one uncompressed layer holding `files`, tagged `tag`.
pub fn oci_layout(layout: &Path, tag: &str, files: &[(&str, &[u8])]) {
    lca_testkit::images::oci_layout(layout, tag, files).unwrap();
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

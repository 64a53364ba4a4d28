//! `HostPaths`: the one place that knows where the node's root is, so the same code runs in
//! the operator pod (`/host/...`) and against a simulated node directory in tests.

use std::path::{Path, PathBuf};

/// Paths on one node, all derived from its root directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostPaths {
    root: PathBuf,
}

impl HostPaths {
    /// Paths under `root` (`/host` in the operator pod, a temp dir for a simulated node).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The node's `/`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A node path given relative to its root, e.g. `var/lib/lca/ibu.json`.
    pub fn host(&self, rel: impl AsRef<Path>) -> PathBuf {
        let rel = rel.as_ref();
        self.root.join(rel.strip_prefix("/").unwrap_or(rel))
    }

    /// The ostree sysroot (`/sysroot` on a node; its `ostree` dir is what `/ostree` links to).
    pub fn sysroot(&self) -> PathBuf {
        self.host("sysroot")
    }

    /// `/ostree/deploy/<stateroot>`.
    pub fn stateroot(&self, name: &str) -> PathBuf {
        self.sysroot().join("ostree/deploy").join(name)
    }

    /// The `/var` shared by every deployment of a stateroot.
    pub fn stateroot_var(&self, name: &str) -> PathBuf {
        self.stateroot(name).join("var")
    }

    /// `/var/lib/lca` of the running stateroot.
    pub fn lca_dir(&self) -> PathBuf {
        self.host(lca_api::consts::paths::LCA_DIR)
    }

    /// `/var/lib/lca/workspace`.
    pub fn workspace(&self) -> PathBuf {
        self.host(lca_api::consts::paths::WORKSPACE)
    }

    /// `/var/tmp`, where the stateroot job leaves `containers.list` and `manifest.json`.
    pub fn var_tmp(&self) -> PathBuf {
        self.host("var/tmp")
    }

    /// `/sysroot/ostree`.
    pub fn ostree_dir(&self) -> PathBuf {
        self.sysroot().join("ostree")
    }

    /// The sysroot's ostree repository (`/ostree/repo`).
    pub fn ostree_repo(&self) -> PathBuf {
        self.ostree_dir().join("repo")
    }

    /// `/ostree/deploy`, one directory per stateroot.
    pub fn deploy_root(&self) -> PathBuf {
        self.ostree_dir().join("deploy")
    }

    /// `/ostree/deploy/<stateroot>/deploy`, one directory per deployment.
    pub fn stateroot_deployments(&self, stateroot: &str) -> PathBuf {
        self.stateroot(stateroot).join("deploy")
    }

    /// The root of deployment `<checksum>.<serial>` of `stateroot`.
    pub fn deployment_dir(&self, stateroot: &str, checksum: &str, serial: u32) -> PathBuf {
        self.stateroot_deployments(stateroot)
            .join(format!("{checksum}.{serial}"))
    }

    /// The `/etc` of a deployment (where the seed's `etc.tgz` goes).
    pub fn deployment_etc(&self, stateroot: &str, checksum: &str, serial: u32) -> PathBuf {
        self.deployment_dir(stateroot, checksum, serial).join("etc")
    }

    /// The origin file next to a deployment (`<checksum>.<serial>.origin`).
    pub fn deployment_origin(&self, stateroot: &str, checksum: &str, serial: u32) -> PathBuf {
        self.stateroot_deployments(stateroot)
            .join(format!("{checksum}.{serial}.origin"))
    }

    /// `/var/lib/containers`, the container storage whose disk usage drives image cleanup.
    pub fn container_storage(&self) -> PathBuf {
        self.host("var/lib/containers")
    }

    /// State of a *simulated* node (booted deployment, reboot request); see `crate::sim`.
    pub fn sim_dir(&self) -> PathBuf {
        self.host("lca-sim")
    }

    /// A simulated node's podman graphroot: its separate container-storage partition, which
    /// belongs to no stateroot (what Prep precached is there after the pivot).
    pub fn sim_container_storage(&self) -> PathBuf {
        self.sim_dir().join("varlibcontainers/storage")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_never_escape_to_the_real_root() {
        let p = HostPaths::new("/tmp/node");
        assert_eq!(
            p.host("/var/lib/lca/ibu.json"),
            PathBuf::from("/tmp/node/var/lib/lca/ibu.json")
        );
        assert_eq!(
            p.host("etc/os-release"),
            PathBuf::from("/tmp/node/etc/os-release")
        );
        assert_eq!(
            p.stateroot_var("rhcos_4.17.0"),
            PathBuf::from("/tmp/node/sysroot/ostree/deploy/rhcos_4.17.0/var")
        );
        assert_eq!(
            p.deployment_etc("rhcos", "abc", 1),
            PathBuf::from("/tmp/node/sysroot/ostree/deploy/rhcos/deploy/abc.1/etc")
        );
        assert_eq!(
            p.deployment_origin("rhcos", "abc", 0),
            PathBuf::from("/tmp/node/sysroot/ostree/deploy/rhcos/deploy/abc.0.origin")
        );
        assert_eq!(p.ostree_repo(), PathBuf::from("/tmp/node/sysroot/ostree/repo"));
        assert_eq!(p.sim_dir(), PathBuf::from("/tmp/node/lca-sim"));
    }
}

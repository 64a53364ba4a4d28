//! What the stateroot-setup task (`lca-cli stateroot-setup`, spec §5.4) holds on the node
//! while it runs, and letting go of it: the work dir `/var/tmp/lca-stateroot-setup` (the
//! unpacked seed on a simulated node, the extracted ostree repo) and, on a real node, the
//! seed image pulled into podman's storage and mounted with `podman image mount`.
//!
//! The task releases these itself on success and on failure. A task that was killed
//! cannot, so the operator's abort cleanup calls [`release_seed_work`] for what it left.
//! The step markers whose products live in the work dir go with it, so a later run does
//! not skip work whose result is gone.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::executor::{Executor, NodeKind};
use crate::paths::HostPaths;
use crate::podman;

/// Name of the work dir under `/var/tmp`.
pub const WORK_DIR: &str = "lca-stateroot-setup";
/// Name of the step-marker dir under the LCA workspace.
pub const MARKER_DIR: &str = "stateroot-setup";
/// Steps whose products are inside the work dir (the unpacked or mounted seed, the
/// extracted ostree repo): removing the work dir un-does them.
pub const WORK_DIR_STEPS: &[&str] = &["pull", "extract-ostree"];

/// `<root>/var/tmp/lca-stateroot-setup`.
pub fn work_dir(paths: &HostPaths) -> PathBuf {
    paths.var_tmp().join(WORK_DIR)
}

/// `<root>/var/lib/lca/workspace/stateroot-setup`.
pub fn marker_dir(paths: &HostPaths) -> PathBuf {
    paths.workspace().join(MARKER_DIR)
}

/// Remove the work dir and the markers of [`WORK_DIR_STEPS`]; absent ones are fine.
pub fn remove_work_dir(paths: &HostPaths) -> Result<()> {
    let markers = marker_dir(paths);
    for step in WORK_DIR_STEPS {
        let marker = markers.join(format!("{step}.done"));
        remove(std::fs::remove_file(&marker)).map_err(Error::io("removing a step marker", &marker))?;
    }
    let work = work_dir(paths);
    remove(std::fs::remove_dir_all(&work)).map_err(Error::io("removing the stateroot work dir", &work))
}

fn remove(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

/// Release everything a stateroot-setup task of `seed_image` holds or left behind: the
/// work dir (and its step markers), and on a real node the seed image's mount and the
/// image itself (`podman image umount`, `podman rmi`; precached images are not touched).
/// Safe to call when nothing is left, and repeatedly.
///
/// Every part is attempted; the first error is returned. An unmount failure is only
/// logged: the image may simply not be mounted, and the `rmi` that follows is what
/// matters (it fails while the image is still in use).
pub async fn release_seed_work(exec: &dyn Executor, seed_image: Option<&str>) -> Result<()> {
    let mut first_error = remove_work_dir(&exec.node().paths).err();
    let image = seed_image.filter(|_| exec.node().kind == NodeKind::Real);
    if let Some(image) = image {
        match podman::image_exists(exec, image).await {
            Ok(false) => {}
            Ok(true) => {
                if let Err(e) = podman::image_umount(exec, image).await {
                    tracing::info!(image, error = %e, "seed image not unmounted (maybe not mounted)");
                }
                if let Err(e) = podman::rmi(exec, &[image.to_string()]).await {
                    first_error.get_or_insert(e);
                }
            }
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::LocalExecutor;

    #[tokio::test]
    async fn release_removes_the_work_dir_and_its_markers_only() {
        let root = tempfile::tempdir().unwrap();
        let paths = HostPaths::new(root.path());
        let work = work_dir(&paths);
        std::fs::create_dir_all(work.join("seed")).unwrap();
        std::fs::write(work.join("seed/manifest.json"), "{}").unwrap();
        let markers = marker_dir(&paths);
        std::fs::create_dir_all(&markers).unwrap();
        for step in ["pull", "extract-ostree", "pull-local", "os-init"] {
            std::fs::write(markers.join(format!("{step}.done")), "").unwrap();
        }
        let precache_list = paths.var_tmp().join("containers.list");
        std::fs::write(&precache_list, "a\n").unwrap();

        let exec = LocalExecutor::new(root.path());
        // A simulated node has no podman image of the seed: the image is not looked at.
        release_seed_work(&exec, Some("registry.invalid/seed:1"))
            .await
            .unwrap();
        assert!(!work.exists());
        let mut left: Vec<_> = std::fs::read_dir(&markers)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["os-init.done", "pull-local.done"],
            "sysroot steps stay done"
        );
        assert!(
            precache_list.exists(),
            "hand-off files are not the task's to remove"
        );

        // Nothing left: still fine.
        release_seed_work(&exec, None).await.unwrap();
    }
}

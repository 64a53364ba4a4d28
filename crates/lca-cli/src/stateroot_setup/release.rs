//! What `stateroot-setup` lets go of when it ends, on success and on failure alike (a
//! failure is final: the operator fails Prep): the work dir with the unpacked seed and the
//! extracted ostree repo, the seed image's mount and the image on a real node
//! (`lca_hostops::stateroot_work`), and the seed pull secret the operator wrote for this
//! task into the LCA workspace.
//!
//! A crash (kill -9) runs none of this, on purpose: the step markers and the work dir are
//! what a re-run resumes from, and the operator's abort cleanup removes what a killed task
//! left (`lca_hostops::stateroot_work::release_seed_work`).

use std::path::Path;

use lca_hostops::stateroot_work;
use lca_hostops::{Executor, HostPaths, NodeFs};

/// After a failure: release everything of the seed. Errors are logged only; the failure
/// being reported matters more than leftover disk usage.
pub async fn after_failure(exec: &dyn Executor, image: &str) {
    if let Err(e) = stateroot_work::release_seed_work(exec, Some(image)).await {
        tracing::warn!(error = %e, "could not release the seed after the failure");
    }
}

/// Remove `authfile` if it is a regular file inside the node's LCA workspace (the copy of
/// the `pullSecretRef` secret made for this task). Anything else — the kubelet's
/// `/var/lib/kubelet/config.json`, a symlink, a path that only looks like it is inside
/// through `..` — belongs to someone else and stays.
pub fn remove_pull_secret(fs: &NodeFs, paths: &HostPaths, authfile: Option<&Path>) {
    let Some(file) = authfile else { return };
    if !in_workspace(fs, paths, file) {
        tracing::debug!(file = %file.display(), "auth file is not the task's copy; kept");
        return;
    }
    match fs.remove_file(file) {
        Ok(true) => tracing::info!(file = %file.display(), "seed pull secret removed"),
        Ok(false) => {}
        Err(e) => tracing::warn!(error = %e, "could not remove the seed pull secret"),
    }
}

fn in_workspace(fs: &NodeFs, paths: &HostPaths, file: &Path) -> bool {
    let is_file = fs
        .symlink_metadata(file)
        .ok()
        .flatten()
        .is_some_and(|m| m.file_type().is_file());
    let (Some(parent), Some(name)) = (file.parent(), file.file_name()) else {
        return false;
    };
    let (Ok(dir), Ok(workspace)) = (parent.canonicalize(), paths.workspace().canonicalize()) else {
        return false;
    };
    is_file && dir.join(name).starts_with(&workspace) && dir.join(name) != workspace
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_inside_the_workspace_are_removed() {
        let root = tempfile::tempdir().unwrap();
        let paths = HostPaths::new(root.path());
        let exec = lca_hostops::LocalExecutor::new(root.path());
        let nodefs = NodeFs::new(&exec);
        let ws = paths.workspace();
        std::fs::create_dir_all(ws.join("sub")).unwrap();
        let kubelet = paths.host("var/lib/kubelet/config.json");
        std::fs::create_dir_all(kubelet.parent().unwrap()).unwrap();
        std::fs::write(&kubelet, "{}").unwrap();

        let secret = ws.join("seed-pull-secret");
        std::fs::write(&secret, "{}").unwrap();
        remove_pull_secret(&nodefs, &paths, Some(&secret));
        assert!(!secret.exists());

        // Through `..` out of the workspace, and a link into the workspace pointing out.
        let sneaky = ws.join("sub/../../../kubelet/config.json");
        remove_pull_secret(&nodefs, &paths, Some(&sneaky));
        let link = ws.join("link");
        std::os::unix::fs::symlink(&kubelet, &link).unwrap();
        remove_pull_secret(&nodefs, &paths, Some(&link));
        remove_pull_secret(&nodefs, &paths, Some(&kubelet));
        remove_pull_secret(&nodefs, &paths, Some(&ws));
        remove_pull_secret(&nodefs, &paths, None);
        assert!(kubelet.exists() && link.exists() && ws.is_dir());
    }
}

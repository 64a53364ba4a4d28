//! The ostree parts of a seed: `ostree.tgz` (the whole repo), the origin file of
//! deployment 0, `etc.deletions` and `etc.tgz` from `ostree admin config-diff`.

use std::path::Path;

use crate::error::{Error, Result};
use lca_seed::layout::files;
use lca_seed::treetar::write_tgz;

use super::Ctx;

/// `(stateroot, deployment)` pairs of `ostree admin status`, deployment 0 first.
pub fn deployments(status: &str) -> Vec<(String, String)> {
    status
        .lines()
        .filter(|l| l.starts_with("* ") || (l.starts_with("  ") && !l.starts_with("   ")))
        .filter_map(|l| {
            let mut t = l.trim_start_matches('*').split_whitespace();
            let (os, id) = (t.next()?, t.next()?);
            id.contains('.').then(|| (os.to_string(), id.to_string()))
        })
        .collect()
}

/// Stateroot and deployment id (`<csum>.<serial>`) of deployment 0.
pub fn deployment0(ctx: &Ctx) -> Result<(String, String)> {
    let status = ctx.node.ostree_admin("status", &[])?;
    deployments(&status)
        .into_iter()
        .next()
        .ok_or_else(|| Error::Invalid("ostree admin status lists no deployment".into()))
}

/// Spec §8.5 step 10: copy `<deployment>.origin` as `ostree-<deployment>.origin`.
pub fn origin(ctx: &Ctx) -> Result<()> {
    let (os, id) = deployment0(ctx)?;
    let src = ctx.paths.host(format!("ostree/deploy/{os}/deploy/{id}.origin"));
    let dst = ctx.backup.join(files::origin(&id));
    ctx.fs
        .copy_atomic(&src, &dst)
        .map_err(Error::host("copying the deployment origin"))
}

/// `ostree.tgz`: the repo, as `tar -C /ostree/repo .`.
pub fn ostree_tgz(ctx: &Ctx) -> Result<()> {
    let repo = ctx.paths.host("ostree/repo");
    let out = ctx.backup.join(files::OSTREE);
    let (raw, packed) = write_tgz(&out, ctx.level, |t| t.add_tree(&repo, Path::new("."), &|_| false))
        .map_err(Error::io("writing ostree.tgz", &out))?;
    tracing::info!(raw, packed, "ostree.tgz written");
    Ok(())
}

/// Paths under /etc never carried to the new stateroot (node identity, secrets of the
/// seed's network, MCD's original kubelet state).
fn etc_excluded(p: &str) -> bool {
    p.contains("cni/multus")
        || p.starts_with("NetworkManager/system-connections")
        || p.starts_with("machine-config-daemon/orig/var/lib/kubelet")
        || p == "openvswitch/conf.db"
        || p == "openvswitch/.conf.db.~lock~"
        || p == "hostname"
}

/// `etc.deletions` (lines `/etc/<path>` of `D` entries) and `etc.tgz` (the other entries,
/// each without recursion, as the reference's `tar --no-recursion`).
pub fn etc(ctx: &Ctx) -> Result<()> {
    let (os, _) = deployment0(ctx)?;
    let os_arg = format!("--os={os}");
    let diff = ctx.node.ostree_admin("config-diff", &[&os_arg])?;
    let mut deletions = String::new();
    let mut changed = Vec::new();
    for line in diff.lines() {
        let mut t = line.split_whitespace();
        let (Some(kind), Some(path)) = (t.next(), t.next()) else {
            continue;
        };
        match kind {
            "D" => deletions.push_str(&format!("/etc/{path}\n")),
            _ if !etc_excluded(path) => changed.push(path.to_string()),
            _ => {}
        }
    }
    let del = ctx.backup.join(files::ETC_DELETIONS);
    ctx.fs
        .write_atomic(&del, deletions.as_bytes())
        .map_err(Error::host("writing etc.deletions"))?;
    let etc = ctx.paths.host("etc");
    let out = ctx.backup.join(files::ETC);
    write_tgz(&out, ctx.level, |t| {
        for p in &changed {
            let abs = etc.join(p);
            // Listed by config-diff but gone (or unreadable) now: nothing to carry.
            if ctx.fs.symlink_metadata(&abs).ok().flatten().is_some() {
                t.add_path(&abs, &Path::new("etc").join(p))?;
            }
        }
        Ok(())
    })
    .map_err(Error::io("writing etc.tgz", &out))?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    #[test]
    fn parses_status_deployment_zero_first() {
        let s = "  rhcos f73.0\n    Version: 417\n    origin refspec: rhcos/4.17\n* rhcos_4.16 abc.1\n";
        assert_eq!(
            super::deployments(s),
            vec![
                ("rhcos".into(), "f73.0".into()),
                ("rhcos_4.16".into(), "abc.1".into())
            ]
        );
    }
}

//! `var.tgz`: the node's `/var` without caches, logs, container storage and LCA's own
//! state (spec §8.5 step 9), but with the MCD-managed files under those paths that the
//! current MachineConfig lays down, so the new stateroot keeps them.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use lca_seed::layout::files;
use lca_seed::treetar::write_tgz;

use super::Ctx;

/// Directories whose contents (not themselves) stay out, relative to /var.
const CONTENTS_EXCLUDED: &[&str] = &[
    "tmp",
    "log",
    "lib/log",
    "lib/cni/bin",
    "lib/containers",
    "lib/kubelet/pods",
    "lib/ovn-ic/etc",
];

/// True when `rel` (relative to /var) is left out of `var.tgz`.
pub fn excluded(rel: &Path) -> bool {
    if rel.file_name().is_some_and(|n| n == ".bash_history") || rel.starts_with("lib/lca") {
        return true;
    }
    CONTENTS_EXCLUDED
        .iter()
        .any(|d| rel.starts_with(d) && rel != Path::new(d))
}

/// `/var/...` files of the current MachineConfig (`storage.files[].path`), relative to /var.
pub fn mcd_managed(currentconfig: &[u8]) -> Vec<PathBuf> {
    let v: serde_json::Value = serde_json::from_slice(currentconfig).unwrap_or_default();
    v["spec"]["config"]["storage"]["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|f| f["path"].as_str())
        .filter_map(|p| p.strip_prefix("/var/").map(PathBuf::from))
        .collect()
}

pub fn var_tgz(ctx: &Ctx) -> Result<()> {
    let var = ctx.paths.host("var");
    // No readable MCD config: no MCD-managed paths to force into the seed.
    let config = (ctx.fs)
        .read_optional(&ctx.paths.host("etc/machine-config-daemon/currentconfig"))
        .ok()
        .flatten()
        .unwrap_or_default();
    let forced: Vec<PathBuf> = mcd_managed(&config)
        .into_iter()
        .filter(|p| var.join(p).exists())
        .collect();
    let out = ctx.backup.join(files::VAR);
    let (raw, packed) = write_tgz(&out, ctx.level, |t| {
        t.add_tree(&var, Path::new("var"), &excluded)?;
        for f in forced.iter().filter(|f| excluded_or_under(f)) {
            // Excluded parents first, so the extracted tree has them with their modes.
            let mut prefix = PathBuf::new();
            for c in f.parent().into_iter().flat_map(|p| p.components()) {
                prefix.push(c);
                if excluded(&prefix) {
                    t.add_path(&var.join(&prefix), &Path::new("var").join(&prefix))?;
                }
            }
            t.add_path(&var.join(f), &Path::new("var").join(f))?;
        }
        Ok(())
    })
    .map_err(Error::io("writing var.tgz", &out))?;
    tracing::info!(
        raw,
        packed,
        ratio = packed as f64 / raw.max(1) as f64,
        forced = forced.len(),
        "var.tgz written"
    );
    Ok(())
}

fn excluded_or_under(f: &Path) -> bool {
    f.ancestors().any(|a| !a.as_os_str().is_empty() && excluded(a))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn exclusion_rules_match_the_reference() {
        assert!(!excluded(Path::new("tmp")));
        assert!(excluded(Path::new("tmp/backup")));
        assert!(excluded(Path::new("lib/lca")));
        assert!(excluded(Path::new("lib/lca/ibu.json")));
        assert!(excluded(Path::new("home/core/.bash_history")));
        assert!(excluded(Path::new("lib/containers/storage")));
        assert!(!excluded(Path::new("lib/containers")));
        assert!(!excluded(Path::new("lib/kubelet/config.json")));
        assert!(excluded(Path::new("lib/kubelet/pods/x")));
    }

    #[test]
    fn mcd_files_under_var_are_found() {
        let cfg = br#"{"spec":{"config":{"storage":{"files":[{"path":"/var/lib/containers/x.conf"},{"path":"/etc/y"}]}}}}"#;
        assert_eq!(mcd_managed(cfg), vec![PathBuf::from("lib/containers/x.conf")]);
    }
}

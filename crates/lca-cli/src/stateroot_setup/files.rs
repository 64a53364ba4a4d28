//! The file steps of `stateroot-setup` after the deploy (spec §5.4 step 3 second half and
//! step 4): origin file, `var.tgz` into the stateroot, `etc.tgz` into the deployment,
//! `etc.deletions`, the hand-off files in `/var/tmp`, and the auto-rollback config.
//!
//! Every step is safe to repeat: extraction overwrites what a killed run left, deletions of
//! missing paths are fine, and copies go through a temp file and a rename. The archives
//! come from a seed image, i.e. untrusted bytes: they go through `lca_hostops::archive`,
//! and deletion paths are checked so that neither `..` nor a symlink planted by `etc.tgz`
//! can make us delete outside the deployment.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};
use lca_api::files::{AutoRollbackComponents, AutoRollbackConfig, DEFAULT_INIT_MONITOR_TIMEOUT_SECONDS};
use lca_hostops::{NodeFs, archive};
use lca_seed::layout::files;

use super::seed::Seed;

/// `ostree-<deployment>.origin` of the seed → `<new deployment dir>.origin` (through a temp
/// file and a rename: a killed copy leaves no torn file).
pub fn origin(fs: &NodeFs, seed: &Seed, seed_deployment: &str, dst: &Path) -> Result<()> {
    Ok(fs.copy_atomic(&seed.file(&files::origin(seed_deployment)), dst)?)
}

/// Extract the seed's tar.gz `name` into the existing directory `target`, off the runtime.
pub async fn extract(fs: &NodeFs<'_>, seed: &Seed, name: &str, target: PathBuf) -> Result<()> {
    let archive_path = seed.file(name);
    let file = fs.open(&archive_path)?;
    tokio::task::spawn_blocking(move || {
        let stats = archive::extract_tar_gz(file, &target, &archive::Options::default())?;
        tracing::info!(archive = %archive_path.display(), entries = stats.entries, bytes = stats.bytes, "extracted");
        Ok(())
    })
    .await
    .map_err(|e| Error::Invalid(format!("extraction task failed: {e}")))?
}

/// Remove every path listed in `etc.deletions` (lines like `/etc/foo.conf`) from the
/// deployment dir. Returns how many existed.
pub fn apply_deletions(fs: &NodeFs, seed: &Seed, deployment_dir: &Path) -> Result<usize> {
    let Some(list) = fs.read_string_optional(&seed.file(files::ETC_DELETIONS))? else {
        return Ok(0);
    };
    let mut removed = 0;
    for line in list.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Some(path) = safe_join(fs, deployment_dir, line)? else {
            tracing::warn!(path = line, "not deleting: a parent is a symlink");
            continue;
        };
        let Some(meta) = fs.symlink_metadata(&path)? else {
            continue;
        };
        if meta.is_dir() {
            fs.remove_dir_all(&path)?;
        } else {
            fs.remove_file(&path)?;
        }
        removed += 1;
    }
    Ok(removed)
}

/// `base` + the relative form of `line`, refusing `..` and absolute escapes; `None` when an
/// existing parent is a symlink (deleting through it could reach outside `base`).
fn safe_join(fs: &NodeFs, base: &Path, line: &str) -> Result<Option<PathBuf>> {
    let rel = Path::new(line.trim_start_matches('/'));
    let mut out = base.to_path_buf();
    let mut comps = rel.components().peekable();
    if comps.peek().is_none() {
        return Err(Error::Invalid(format!(
            "seed {}: empty path",
            files::ETC_DELETIONS
        )));
    }
    while let Some(c) = comps.next() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => continue,
            _ => {
                return Err(Error::Invalid(format!(
                    "seed {}: path {line:?} escapes the deployment",
                    files::ETC_DELETIONS
                )));
            }
        }
        let is_parent = comps.peek().is_some();
        let is_link = || {
            fs.symlink_metadata(&out)
                .ok()
                .flatten()
                .is_some_and(|m| m.file_type().is_symlink())
        };
        if is_parent && is_link() {
            return Ok(None);
        }
    }
    Ok(Some(out))
}

/// `containers.list` and `manifest.json` → `<var_tmp>/` for the precache launch.
pub fn hand_off(fs: &NodeFs, seed: &Seed, var_tmp: &Path) -> Result<()> {
    for name in [files::CONTAINERS_LIST, files::MANIFEST] {
        fs.copy_atomic(&seed.file(name), &var_tmp.join(name))?;
    }
    Ok(())
}

/// The auto-rollback config the operator computed (§6.7), validated and normalised; the
/// spec's defaults (no annotations, timeout 0) when none was given.
pub fn autorollback_config(json: Option<&str>) -> Result<AutoRollbackConfig> {
    match json {
        Some(j) => serde_json::from_str(j)
            .map_err(|e| Error::Invalid(format!("invalid --autorollback-config-json: {e}"))),
        None => Ok(AutoRollbackConfig {
            monitor_enabled: true,
            monitor_timeout: DEFAULT_INIT_MONITOR_TIMEOUT_SECONDS,
            enabled_components: Some(AutoRollbackComponents {
                config: true,
                postpivot: true,
            }),
        }),
    }
}

pub fn write_autorollback(fs: &NodeFs, stateroot_var: &Path, config: &AutoRollbackConfig) -> Result<()> {
    let path = stateroot_var.join("lib/lca/autorollback_config.json");
    let bytes = serde_json::to_vec(config).map_err(|e| Error::Invalid(e.to_string()))?;
    if let Some(dir) = path.parent() {
        fs.create_private_dir(dir)?;
    }
    fs.write_atomic(&path, &bytes)
        .map_err(Error::host("writing the auto-rollback config"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::fs;

    #[test]
    fn deletions_stay_inside_the_deployment() {
        let dir = tempfile::tempdir().unwrap();
        let exec = lca_hostops::LocalExecutor::new(dir.path());
        let nodefs = NodeFs::new(&exec);
        let seed_dir = dir.path().join("seed");
        let dep = dir.path().join("dep");
        let outside = dir.path().join("outside");
        fs::create_dir_all(dep.join("etc/sub")).unwrap();
        fs::create_dir_all(&seed_dir).unwrap();
        fs::create_dir_all(&outside).unwrap();
        fs::write(outside.join("victim"), "x").unwrap();
        fs::write(dep.join("etc/a.conf"), "a").unwrap();
        fs::write(dep.join("etc/sub/b"), "b").unwrap();
        std::os::unix::fs::symlink(&outside, dep.join("etc/link")).unwrap();
        let seed = Seed::Unpacked {
            dir: seed_dir.clone(),
        };
        assert_eq!(
            apply_deletions(&nodefs, &seed, &dep).unwrap(),
            0,
            "no list, nothing to do"
        );
        fs::write(
            seed_dir.join(files::ETC_DELETIONS),
            "/etc/a.conf\n/etc/sub\n/etc/missing\n/etc/link/victim\n",
        )
        .unwrap();
        assert_eq!(apply_deletions(&nodefs, &seed, &dep).unwrap(), 2);
        assert!(!dep.join("etc/a.conf").exists() && !dep.join("etc/sub").exists());
        assert!(outside.join("victim").exists(), "never through a symlink");
        fs::write(seed_dir.join(files::ETC_DELETIONS), "/etc/../../outside/victim\n").unwrap();
        assert!(
            apply_deletions(&nodefs, &seed, &dep)
                .unwrap_err()
                .to_string()
                .contains("escapes")
        );
        assert!(outside.join("victim").exists());
    }

    #[test]
    fn autorollback_defaults_and_validation() {
        let d = serde_json::to_string(&autorollback_config(None).unwrap()).unwrap();
        assert_eq!(
            d,
            r#"{"monitor_enabled":true,"monitor_timeout":1800,"enabled_components":{"config":true,"postpivot":true}}"#
        );
        let c = autorollback_config(Some(r#"{"monitor_timeout":60}"#)).unwrap();
        assert!(!c.monitor_enabled);
        assert!(autorollback_config(Some("{")).is_err());
    }
}

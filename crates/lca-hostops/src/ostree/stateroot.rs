//! Stateroot removal and the cleanup of every non-booted stateroot (spec §7.3).
//!
//! Order matters: deployments are undeployed first (BLS entries pointing into a deleted
//! stateroot make every later ostree command fail), then the directory goes. Deployment
//! roots carry `chattr +i`, so any leftover one (a half-created stateroot) is cleared with
//! `chattr -i` before `rm -rf`. On a real node `/sysroot` is read-only, so the removal runs
//! in a private mount namespace where it is remounted rw (upstream's `unshare -m`).

use super::{status, undeploy};
use crate::command::Cmd;
use crate::error::{Error, Result};
use crate::executor::{Executor, NodeKind, ensure_mutation_allowed};

/// Remove stateroot `name`: refuse if booted, undeploy its deployments (highest index first, so
/// indices stay valid), then delete `/ostree/deploy/<name>`. Idempotent.
pub async fn remove_stateroot(exec: &dyn Executor, name: &str) -> Result<()> {
    let st = status(exec).await?;
    if st.booted().is_some_and(|b| b.stateroot == name) {
        return Err(Error::BootedStateroot {
            stateroot: name.to_string(),
        });
    }
    undeploy_all(exec, name).await?;
    remove_stateroot_dir(exec, name).await
}

/// Undeploy every deployment of `name` (spec §7.3 step 2), re-reading the status first.
async fn undeploy_all(exec: &dyn Executor, name: &str) -> Result<()> {
    let st = status(exec).await?;
    let mut mine: Vec<_> = st.of_stateroot(name).collect();
    mine.reverse();
    if let Some(b) = mine.iter().find(|d| d.booted) {
        return Err(Error::BootedDeployment {
            index: b.index,
            stateroot: name.to_string(),
        });
    }
    for d in mine {
        undeploy(exec, d.index).await?;
    }
    Ok(())
}

/// Delete `/ostree/deploy/<name>` if it exists, clearing immutable bits of leftover deployments.
async fn remove_stateroot_dir(exec: &dyn Executor, name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." {
        return Err(Error::Invalid(format!("bad stateroot name {name:?}")));
    }
    let seen = exec.node().paths.stateroot(name);
    if !seen.exists() {
        return Ok(());
    }
    ensure_mutation_allowed(exec, &format!("remove stateroot {name}"))?;
    let deployments = exec.node().paths.stateroot_deployments(name);
    let cmd_path = exec.node().cmd_paths.stateroot(name);
    let mut leftovers = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&deployments) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                leftovers.push(
                    exec.node()
                        .cmd_paths
                        .stateroot_deployments(name)
                        .join(entry.file_name()),
                );
            }
        }
    }
    match exec.node().kind {
        NodeKind::Simulated => {
            if !leftovers.is_empty() {
                exec.run(&Cmd::new("chattr").arg("-i").arg("--").args(&leftovers))
                    .await?;
            }
            exec.run(&Cmd::new("rm").arg("-rf").arg("--").arg(&cmd_path))
                .await?;
        }
        NodeKind::Real => {
            // The script is constant; the paths are positional parameters, never spliced in.
            let script = r#"mount -o remount,rw /sysroot && { [ "$#" -gt 1 ] && chattr -i -- "${@:2}"; rm -rf -- "$1"; }"#;
            let cmd = Cmd::new("unshare")
                .args(["-m", "--", "bash", "-c", script, "lca-rm-stateroot"])
                .arg(&cmd_path)
                .args(&leftovers);
            exec.run(&cmd).await?;
        }
    }
    Ok(())
}

/// Remove every stateroot except the booted one (spec §7.3, `CleanupUnbootedStateroots`):
/// undeploy and delete each stateroot that has unbooted deployments (iterating from the end),
/// run the base cleanup, then delete any other directory in `/ostree/deploy/` (half-created
/// stateroots). Keeps going after a failure and reports `failed to remove <n> stateroots`.
pub async fn cleanup_unbooted_stateroots(exec: &dyn Executor) -> Result<()> {
    let st = status(exec).await?;
    let booted = st.booted_stateroot()?.to_string();
    let mut candidates: Vec<String> = Vec::new();
    for d in st.deployments.iter().rev() {
        if !d.booted && d.stateroot != booted && !candidates.contains(&d.stateroot) {
            candidates.push(d.stateroot.clone());
        }
    }
    let mut failures = 0usize;
    for name in &candidates {
        let res = async {
            undeploy_all(exec, name).await?;
            remove_stateroot_dir(exec, name).await
        }
        .await;
        if let Err(e) = res {
            tracing::error!(stateroot = %name, error = %e, "failed to remove stateroot");
            failures += 1;
        }
    }
    if let Err(e) = super::cleanup_base(exec).await {
        tracing::error!(error = %e, "ostree base cleanup failed");
        failures += 1;
    }
    let deploy_root = exec.node().paths.deploy_root();
    let entries = std::fs::read_dir(&deploy_root).map_err(Error::io("listing", &deploy_root))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == booted || !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if let Err(e) = remove_stateroot_dir(exec, &name).await {
            tracing::error!(stateroot = %name, error = %e, "failed to remove stateroot directory");
            failures += 1;
        }
    }
    if failures > 0 {
        Err(Error::StaterootCleanup(failures))
    } else {
        Ok(())
    }
}

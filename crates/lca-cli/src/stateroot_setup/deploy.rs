//! The ostree steps of `stateroot-setup` (spec §5.4 step 3, §9.2): `pull-local`, `os-init`,
//! `admin deploy` of the seed's commit into the new stateroot, keeping the booted deployment
//! as the default boot entry, and `cleanup -b`.
//!
//! Not-as-default: with an ostree that has `admin set-default`, deploy gets
//! `--not-as-default` (upstream). Without it (Debian's 2022.7), ostree can only prepend, so
//! the deploy is followed by moving the booted deployment back to index 0 through libostree
//! (`ostree::set_default`): a half-prepared stateroot must never be what the node boots
//! after an unplanned reboot. The two are separate marked steps, so a crash in between is
//! repaired by the re-run.
//!
//! Idempotency of the deploy itself: a deployment of the seed's commit already in the new
//! stateroot (a run killed after the deploy, before its marker) is reused, not deployed twice.

use std::path::Path;

use crate::error::{Error, Result};
use lca_hostops::Executor;
use lca_hostops::ostree::{self, DeployOptions, Deployment};
use lca_hostops::sim::BootedRef;

/// The booted deployment, which must stay the default; refuses a setup into the booted
/// stateroot (it would deploy over the running system's stateroot).
pub async fn booted(exec: &dyn Executor, new_stateroot: &str) -> Result<BootedRef> {
    let status = ostree::status(exec).await.map_err(Error::from)?;
    let booted = status
        .booted()
        .ok_or_else(|| Error::from(lca_hostops::Error::NoBootedDeployment))?;
    if booted.stateroot == new_stateroot {
        return Err(Error::Invalid(format!(
            "stateroot {new_stateroot} is the booted stateroot; cannot set it up again"
        )));
    }
    Ok(BootedRef::from(booted))
}

/// `ostree pull-local <repo> <commit>`: only the seed's commit, so the seed's internal
/// deployment refs (`ostree/0/0/0`) never overwrite the node's.
pub async fn pull_local(exec: &dyn Executor, repo_cmd_path: &Path, commit: &str) -> Result<()> {
    ostree::pull_local(exec, repo_cmd_path, &[commit])
        .await
        .map_err(Error::from)
}

pub async fn os_init(exec: &dyn Executor, stateroot: &str) -> Result<()> {
    ostree::os_init(exec, stateroot).await.map_err(Error::from)
}

/// The deployment of `commit` in `stateroot`, if there is one.
pub async fn find(exec: &dyn Executor, stateroot: &str, commit: &str) -> Result<Option<Deployment>> {
    let status = ostree::status(exec).await.map_err(Error::from)?;
    Ok(status
        .of_stateroot(stateroot)
        .find(|d| d.checksum == commit)
        .cloned())
}

/// Deploy `commit` into `stateroot` unless it already is; `--not-as-default` when the CLI
/// can switch later (otherwise `restore_default` repairs the order).
pub async fn deploy(
    exec: &dyn Executor,
    stateroot: &str,
    commit: &str,
    karg_append: Vec<String>,
    version: &str,
) -> Result<()> {
    if let Some(d) = find(exec, stateroot, commit).await? {
        tracing::info!(deployment = %d.id(), "seed commit already deployed; reusing it");
        return Ok(());
    }
    let not_as_default = ostree::supports_set_default(exec).await.map_err(Error::from)?;
    let opts = DeployOptions {
        stateroot: stateroot.into(),
        refspec: commit.into(),
        karg_append,
        karg: vec![format!("ibu={version}")],
        not_as_default,
    };
    let d = ostree::deploy(exec, &opts).await.map_err(Error::from)?;
    tracing::info!(deployment = %d.id(), index = d.index, not_as_default, "seed deployed");
    Ok(())
}

/// Make `booted` the default boot entry again if the deploy displaced it.
pub async fn restore_default(exec: &dyn Executor, booted: &BootedRef) -> Result<()> {
    let status = ostree::status(exec).await.map_err(Error::from)?;
    let index = status
        .deployments
        .iter()
        .position(|d| booted.matches(d))
        .ok_or_else(|| Error::NodeState(format!("the booted deployment {booted:?} disappeared")))?;
    let path = ostree::set_default(exec, index).await.map_err(Error::from)?;
    tracing::info!(index, ?path, "booted deployment is the default boot entry");
    Ok(())
}

pub async fn cleanup_base(exec: &dyn Executor) -> Result<()> {
    ostree::cleanup_base(exec).await.map_err(Error::from)
}

//! Going back to the original stateroot (spec §6.7 `InitiateRollback`, §7.1): shared by the
//! init monitor and `lca-cli post-pivot` on the host, and by the operator's post-pivot
//! triggers. The original stateroot's saved CR gets the reason, its deployment becomes the
//! default, and the node reboots into it, where the cluster state it had is still there.
//!
//! The decision comes first and is kept on disk (`auto-rollback` in the booted stateroot's
//! workspace, holding the message): a process killed at any later step finds it at its next
//! start and goes on with the same rollback instead of resuming the upgrade. The first
//! decision's message wins; every step after it is safe to repeat.

use std::path::{Path, PathBuf};

use lca_api::consts::{names, paths};
use lca_api::{ImageBasedUpgrade, ImageBasedUpgradeSpec, Stage, Time};
use tracing::{info, warn};

use crate::error::{Error, Result};
use crate::executor::Executor;
use crate::failpoint;
use crate::nodefs::NodeFs;
use crate::ostree::{self, Status};
use crate::reboot;

/// Upstream's refusal where the default deployment cannot be changed.
pub const NOT_SUPPORTED: &str = "automatic rollback not supported in this release";

/// The decision file, in the booted stateroot's workspace.
pub const DECISION: &str = "var/lib/lca/workspace/auto-rollback";

/// The rollback decided earlier on this stateroot (its message), if any.
pub fn decided(exec: &dyn Executor) -> Result<Option<String>> {
    let fs = NodeFs::new(exec);
    Ok(fs
        .read_string_optional(&exec.node().paths.host(DECISION))?
        .map(|m| m.trim_end().to_string())
        .filter(|m| !m.is_empty()))
}

/// Record the decision to roll back because of `message`, unless one was recorded before;
/// returns the message that stands.
pub fn decide(exec: &dyn Executor, message: &str) -> Result<String> {
    if let Some(earlier) = decided(exec)? {
        info!(message = %earlier, "going on with the rollback decided earlier");
        return Ok(earlier);
    }
    let fs = NodeFs::new(exec);
    let file = exec.node().paths.host(DECISION);
    if let Some(dir) = file.parent() {
        fs.create_private_dir(dir)?;
    }
    fs.write_atomic(&file, message.as_bytes())?;
    warn!(message, "rolling back to the original stateroot");
    Ok(message.to_string())
}

/// Whether this node can make another deployment the default: the CLI's `set-default` or,
/// without it, libostree on the sysroot.
pub async fn set_default_available(exec: &dyn Executor) -> bool {
    if ostree::supports_set_default(exec).await.unwrap_or(false) {
        return true;
    }
    let sysroot = exec.node().paths.sysroot();
    tokio::task::spawn_blocking(move || ostree::libostree::deployments(&sysroot).is_ok())
        .await
        .unwrap_or(false)
}

/// Roll back to the unbooted stateroot because of `message`, or go on with the rollback
/// decided before. `current` is the CR as the caller knows it (the operator's live one),
/// used when the original stateroot has no saved copy. Returns the message acted on; on a
/// simulated node the reboot is a request, so this returns after it.
/// Failpoints `auto-rollback/SaveCr` and `auto-rollback/SetDefault` follow those steps.
pub async fn initiate(
    exec: &dyn Executor,
    message: &str,
    current: Option<&ImageBasedUpgrade>,
) -> Result<String> {
    let after = |step| {
        failpoint::hit_on(exec.node(), failpoint::names::AUTO_ROLLBACK, step).map_err(Error::NodeState)
    };
    if !set_default_available(exec).await {
        return Err(Error::NodeState(NOT_SUPPORTED.into()));
    }
    let message = decide(exec, message)?;
    let fs = NodeFs::new(exec);
    let paths = &exec.node().paths;
    let status = ostree::status(exec).await?;
    let (index, target) = target(&status)?;
    ostree::remount_sysroot_rw(exec).await?;
    let saved = paths.stateroot_var(&target).join(saved_in_var());
    let ibu = saved_cr(&fs, &saved, paths.host(paths::SAVED_IBU), current)?;
    let now = Time(lca_api::jiff::Timestamp::now());
    let failed = lca_core::autorollback::upgrade_failed_copy(&ibu, &message, &now);
    write_cr(&fs, &saved, &failed)?;
    after("SaveCr")?;
    let how = ostree::set_default(exec, index).await?;
    info!(stateroot = %target, index, ?how, "the original stateroot is the default deployment");
    after("SetDefault")?;
    reboot::reboot_for(exec, reboot::Rationale::Rollback).await?;
    Ok(message)
}

/// The rollback target (`Status::first_unbooted_stateroot`): its deployment index and
/// stateroot.
pub fn target(status: &Status) -> Result<(usize, String)> {
    let booted = status.booted_stateroot()?;
    status
        .first_unbooted_stateroot()
        .map(|d| (d.index, d.stateroot.clone()))
        .ok_or_else(|| {
            Error::NodeState(format!(
                "no other stateroot than the booted {booted} to roll back to"
            ))
        })
}

/// `lib/lca/ibu.json`: the saved CR's path inside a stateroot's `var`.
pub fn saved_in_var() -> PathBuf {
    PathBuf::from(paths::SAVED_IBU.strip_prefix("var/").unwrap_or(paths::SAVED_IBU))
}

/// Write `ibu` to `file` atomically, creating its directory.
pub fn write_cr(fs: &NodeFs<'_>, file: &Path, ibu: &ImageBasedUpgrade) -> Result<()> {
    if let Some(dir) = file.parent() {
        fs.create_private_dir(dir)?;
    }
    let json = serde_json::to_vec(ibu)
        .map_err(|e| Error::Invalid(format!("serializing the ImageBasedUpgrade: {e}")))?;
    fs.write_atomic(file, &json)
}

/// The CR to mark failed: the original stateroot's saved copy; without a readable one, the
/// caller's, then the copy pre-pivot left for this stateroot, then a bare Upgrade CR — the
/// original cluster must show why it is back whatever was lost.
fn saved_cr(
    fs: &NodeFs<'_>,
    saved: &Path,
    booted_copy: PathBuf,
    current: Option<&ImageBasedUpgrade>,
) -> Result<ImageBasedUpgrade> {
    let read = |file: &Path| -> Result<Option<ImageBasedUpgrade>> {
        let Some(bytes) = fs.read_optional(file)? else {
            return Ok(None);
        };
        match serde_json::from_slice(&bytes) {
            Ok(ibu) => Ok(Some(ibu)),
            Err(e) => {
                warn!(file = %file.display(), "unreadable saved ImageBasedUpgrade: {e}");
                Ok(None)
            }
        }
    };
    if let Some(ibu) = read(saved)? {
        return Ok(ibu);
    }
    warn!(file = %saved.display(), "the original stateroot has no saved ImageBasedUpgrade");
    if let Some(ibu) = current {
        return Ok(ibu.clone());
    }
    if let Some(ibu) = read(&booted_copy)? {
        return Ok(ibu);
    }
    Ok(ImageBasedUpgrade::new(
        names::IBU,
        ImageBasedUpgradeSpec {
            stage: Some(Stage::Upgrade),
            ..Default::default()
        },
    ))
}

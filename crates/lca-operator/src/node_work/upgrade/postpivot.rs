//! The operator's post-pivot steps (spec §6.5), on the new stateroot after the reboot: the
//! DPA back, the policy and config manifests that pre-pivot exported, the Restores, the deferred health checks, and the
//! init monitor removed once the upgrade holds. Before them the rollback window is read from
//! the old stateroot's kubelet certificates (§3.4).

use std::path::{Path, PathBuf};
use std::time::Duration;

use lca_api::{ImageBasedUpgrade, Time};
use lca_core::autorollback::Trigger;
use lca_core::upgrade_plan::PostPivot;
use lca_hostops::ostree;
use tracing::{info, warn};

use super::{Ran, UpgradeSteps};
use crate::error::Result;
use crate::node_work::NodeStageWork;
use lca_kube::ApplyError;

/// On the booted node (`/opt` is `/var/opt`).
const POLICY_MANIFESTS: &str = "var/opt/policy-manifests";
const EXTRA_MANIFESTS: &str = "var/opt/extra-manifests";
const INIT_MONITOR_UNIT: &str = "lca-init-monitor.service";
const HEALTH_RETRY: Duration = Duration::from_secs(20);
/// How long before the kubelet certificates expire a rollback should be done.
const EXPIRATION_MARGIN_SECS: i64 = 30 * 60;

impl UpgradeSteps for PostPivot {
    const MARKERS: &'static str = "upgrade";
    const FAILPOINTS: &'static str = lca_hostops::failpoint::names::POSTPIVOT;
    const PHASE: Option<(&'static str, Self)> =
        Some((super::PHASE_POST_PIVOT, PostPivot::DisableInitMonitor));
    const FOLLOWS_ROLLBACK: bool = true;

    fn trigger(self, message: &str) -> Option<Trigger> {
        let m = message.to_string();
        match self {
            PostPivot::EnsureOadpConfiguration => Some(Trigger::MissingDataProtectionApplication(m)),
            PostPivot::ApplyPolicyManifests => Some(Trigger::PolicyManifests(m)),
            PostPivot::ApplyConfigManifests => Some(Trigger::ConfigManifests(m)),
            PostPivot::Restore => Some(Trigger::Restore(m)),
            PostPivot::DeferredHealth | PostPivot::DisableInitMonitor => None,
        }
    }

    async fn health(w: &NodeStageWork) -> Result<()> {
        crate::cluster_health::check_mandatory(&w.client).await
    }

    async fn ready(_: &NodeStageWork, _: &ImageBasedUpgrade) -> Result<bool> {
        Ok(true)
    }

    async fn run(self, w: &NodeStageWork, _ibu: &ImageBasedUpgrade) -> Result<Ran> {
        let paths = &w.exec.node().paths;
        match self {
            PostPivot::EnsureOadpConfiguration => crate::node_work::oadp::ensure_configuration(w).await,
            PostPivot::Restore => crate::node_work::oadp::handle_restore(w).await,
            PostPivot::ApplyPolicyManifests => {
                apply(w, &paths.host(POLICY_MANIFESTS), "Applying Policy Manifests").await
            }
            PostPivot::ApplyConfigManifests => {
                apply(w, &paths.host(EXTRA_MANIFESTS), "Applying Config Manifests").await
            }
            PostPivot::DeferredHealth => Ok(match crate::cluster_health::check_deferred(&w.client).await {
                Ok(()) => Ran::Done,
                Err(e) => Ran::Wait {
                    message: format!("Waiting for system to fully stabilize: {e}"),
                    requeue: HEALTH_RETRY,
                },
            }),
            PostPivot::DisableInitMonitor => {
                // The upgrade holds whether or not the monitor goes quietly.
                for e in lca_hostops::systemd::remove_unit(w.exec.as_ref(), INIT_MONITOR_UNIT).await {
                    warn!("disabling the init monitor: {e}");
                }
                Ok(Ran::Done)
            }
        }
    }
}

/// Apply one manifests directory, then remove it (its absence is what "applied" means to
/// upstream's post-pivot as well).
async fn apply(w: &NodeStageWork, dir: &Path, what: &str) -> Result<Ran> {
    let fs = w.fs();
    let applied = if fs.list_dir(dir)?.is_empty() {
        Ok(0)
    } else {
        let admin = w.admin_client().await?;
        lca_kube::apply_dir(&fs, &admin, dir).await
    };
    match applied {
        Ok(count) => {
            w.fs().remove_dir_all(dir)?;
            info!(count, dir = %dir.display(), "{what}: done");
            Ok(Ran::Done)
        }
        Err(ApplyError::Refused(message)) => Ok(Ran::Failed(message)),
        Err(ApplyError::Retry(e)) => Ok(Ran::Wait {
            message: format!("{what}: Failure occurred: {e}"),
            requeue: super::RETRY,
        }),
    }
}

/// The earliest expiry of the unbooted stateroot's kubelet certificates, minus 30 minutes.
pub async fn rollback_expiration(w: &NodeStageWork, _ibu: &ImageBasedUpgrade) -> Option<Time> {
    match expiration(w).await {
        Ok(t) => t,
        Err(e) => {
            warn!("cannot tell when a rollback stops being possible: {e}");
            None
        }
    }
}

async fn expiration(w: &NodeStageWork) -> Result<Option<Time>> {
    let status = ostree::status(w.exec.as_ref()).await?;
    let Some(old) = status.first_unbooted_stateroot() else {
        return Ok(None);
    };
    let var = w.exec.node().paths.stateroot_var(&old.stateroot);
    let mut earliest: Option<i64> = None;
    for name in ["kubelet-client-current.pem", "kubelet-server-current.pem"] {
        let path = resolve_in(w, &var, &var.join("lib/kubelet/pki").join(name))?;
        let pem = w.fs().read_string(&path)?;
        let t = crate::node_work::certs::earliest_not_after(&pem)
            .map_err(|e| crate::error::Error::state(format!("{}: {e}", path.display())))?;
        earliest = Some(earliest.map_or(t, |x| x.min(t)));
    }
    let Some(t) = earliest else { return Ok(None) };
    let ts = lca_api::jiff::Timestamp::from_second(t - EXPIRATION_MARGIN_SECS)
        .map_err(|e| crate::error::Error::state(e.to_string()))?;
    Ok(Some(Time(ts)))
}

/// `path` with its symlink (if any) followed inside the stateroot: the kubelet links
/// `…-current.pem` to an absolute `/var/lib/kubelet/pki/…`, which is the stateroot's `var`.
fn resolve_in(w: &NodeStageWork, var: &Path, path: &Path) -> Result<PathBuf> {
    let Some(target) = w.fs().read_link(path)? else {
        return Ok(path.to_path_buf());
    };
    Ok(match target.strip_prefix("/var") {
        Ok(rel) => var.join(rel),
        Err(_) if target.is_absolute() => var.join(target.strip_prefix("/").unwrap_or(&target)),
        Err(_) => path.parent().unwrap_or(var).join(target),
    })
}

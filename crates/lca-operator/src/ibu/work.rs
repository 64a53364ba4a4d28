//! The boundary between the stage machine and the work each stage does on the node and in
//! the cluster. The controller only calls this trait, so the whole machine runs (and is
//! tested end to end) independently of how Prep, Upgrade and Rollback are carried out.

use futures::future::BoxFuture;
use lca_api::ImageBasedUpgrade;
use lca_core::{IdleOutcome, StepReport};

/// Work of the stages. Each call does one bounded step and reports where the stage stands;
/// long-running work is started once and then polled by later calls.
pub trait StageWork: Send + Sync {
    fn prep<'a>(&'a self, ibu: &'a ImageBasedUpgrade) -> BoxFuture<'a, StepReport>;
    /// One Upgrade step; `after_pivot` says which side of the reboot the node is on.
    fn upgrade<'a>(&'a self, ibu: &'a ImageBasedUpgrade, after_pivot: bool) -> BoxFuture<'a, StepReport>;
    /// One Rollback step: before the reboot (`after_pivot`) the way back, after it the
    /// completion.
    fn rollback<'a>(&'a self, ibu: &'a ImageBasedUpgrade, after_pivot: bool) -> BoxFuture<'a, StepReport>;
    /// Abort (`finalize == false`) or finalize: health gate (finalize only) then cleanup.
    fn idle<'a>(&'a self, ibu: &'a ImageBasedUpgrade, finalize: bool) -> BoxFuture<'a, IdleOutcome>;
    /// True when the node runs the stateroot of `spec.seedImageRef.version`.
    fn after_pivot<'a>(&'a self, ibu: &'a ImageBasedUpgrade) -> BoxFuture<'a, bool>;
    /// After the pivot: when a rollback may stop being possible (the old stateroot's kubelet
    /// certificates expire), `None` when it cannot be told (§3.4).
    fn rollback_expiration<'a>(
        &'a self,
        _ibu: &'a ImageBasedUpgrade,
    ) -> BoxFuture<'a, Option<lca_api::Time>> {
        Box::pin(async { None })
    }
    /// Before a default IBU is created (none exists and none was saved): remove whatever node
    /// work an earlier, forgotten cycle left, so a new cycle never inherits it.
    fn fresh_start(&self) -> BoxFuture<'_, crate::error::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// True when a simulated node's booted stateroot is the target of `spec.seedImageRef.version`.
/// Only the test peer asks this, so it is compiled with it.
#[cfg(feature = "test-hooks")]
pub fn booted_into_target(paths: &lca_hostops::HostPaths, ibu: &ImageBasedUpgrade) -> bool {
    let version = &ibu.spec.seed_image_ref.version;
    if version.is_empty() {
        return false;
    }
    let target = lca_hostops::ostree::stateroot_name(version);
    lca_hostops::sim::read_state(paths)
        .ok()
        .and_then(|s| s.booted)
        .is_some_and(|b| b.stateroot == target)
}

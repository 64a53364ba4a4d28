//! The real stage work: what Prep, Upgrade, Rollback and abort/finalize cleanup do on the
//! node and in the cluster. Long-running node work runs as `lca-cli` subcommands in detached local tasks
//! (`crate::tasks`), the simulated-node counterpart of the reference's Jobs; everything on the
//! node goes through the `lca-hostops` executor.

pub(crate) mod certs;
mod cleanup;
mod extra_manifests;
mod launch;
mod oadp;
mod policies;
mod prep;
pub(crate) mod seed;
mod upgrade;
pub(crate) mod validate;

use std::path::PathBuf;
use std::sync::Arc;

use futures::future::BoxFuture;
use kube::Client;
use lca_api::ImageBasedUpgrade;
use lca_core::{IdleOutcome, StepReport, TaskKind};
use lca_hostops::Executor;

use crate::ibu::work::StageWork;

pub use upgrade::SAVED_IN_BOOT;

/// Settings and handles the node work needs.
pub struct NodeStageWork {
    pub client: Client,
    pub exec: Arc<dyn Executor>,
    pub namespace: String,
    /// The `lca-cli` binary run by the long-running tasks.
    pub lca_cli: PathBuf,
    /// Environment for the tasks (e.g. the simulated node's container storage config).
    pub task_env: Vec<(String, String)>,
    /// Asks the IBU controller for a reconcile (sent when a local task ends).
    pub wake: tokio::sync::mpsc::UnboundedSender<()>,
    /// Run long-running work as Jobs with this image (in a cluster); local processes when
    /// `None` (simulated nodes).
    pub job_image: Option<String>,
    /// Bounds on every request to the seed's registry.
    pub registry_timeouts: lca_seed::RegistryTimeouts,
}

impl NodeStageWork {
    /// A callback for a task's end that wakes the controller.
    fn waker(&self) -> impl FnOnce() + Send + 'static {
        let wake = self.wake.clone();
        move || {
            // Fails only when the controller has stopped: nobody is left to wake.
            let _ = wake.send(());
        }
    }

    /// The task `kind` on this node's backend.
    fn task(&self, kind: TaskKind) -> crate::tasks::Task {
        match &self.job_image {
            Some(image) => {
                let job = crate::jobs::JobTask::new(self.client.clone(), &self.namespace, kind, image);
                crate::tasks::Task::Job(Box::new(job))
            }
            None => crate::tasks::Task::Local(lca_hostops::local_task::LocalTask::new(
                &self.workspace(),
                kind.job_name(),
            )),
        }
    }

    /// The node's files, through this work's executor (dry run honoured).
    fn fs(&self) -> lca_hostops::NodeFs<'_> {
        lca_hostops::NodeFs::new(self.exec.as_ref())
    }

    /// A client acting as the node's admin (its `lb-ext.kubeconfig`), for the dry runs and
    /// the applies of the user's manifests.
    async fn admin_client(&self) -> crate::error::Result<Client> {
        lca_kube::admin_client(&self.fs(), &self.exec.node().paths)
            .await
            .map_err(|e| crate::error::Error::state(e.to_string()))
    }

    /// Failpoint `flow/step` (`lca_hostops::failpoint`): armed in test builds on a
    /// simulated node only.
    fn failpoint(&self, flow: &str, step: &str) -> crate::error::Result<()> {
        lca_hostops::failpoint::hit_on(self.exec.node(), flow, step).map_err(crate::error::Error::state)
    }

    fn workspace(&self) -> PathBuf {
        self.exec.node().paths.host(lca_api::consts::paths::WORKSPACE)
    }
}

impl StageWork for NodeStageWork {
    fn prep<'a>(&'a self, ibu: &'a ImageBasedUpgrade) -> BoxFuture<'a, StepReport> {
        Box::pin(prep::step(self, ibu))
    }
    fn upgrade<'a>(&'a self, ibu: &'a ImageBasedUpgrade, after_pivot: bool) -> BoxFuture<'a, StepReport> {
        Box::pin(upgrade::step(self, ibu, after_pivot))
    }
    fn rollback_expiration<'a>(&'a self, ibu: &'a ImageBasedUpgrade) -> BoxFuture<'a, Option<lca_api::Time>> {
        Box::pin(upgrade::rollback_expiration(self, ibu))
    }
    fn rollback<'a>(&'a self, ibu: &'a ImageBasedUpgrade, after_pivot: bool) -> BoxFuture<'a, StepReport> {
        Box::pin(upgrade::rollback_step(self, ibu, after_pivot))
    }
    fn idle<'a>(&'a self, ibu: &'a ImageBasedUpgrade, finalize: bool) -> BoxFuture<'a, IdleOutcome> {
        Box::pin(cleanup::idle(self, ibu, finalize))
    }
    fn fresh_start(&self) -> BoxFuture<'_, crate::error::Result<()>> {
        Box::pin(async {
            // Every Prep creates the workspace before any node work, and every cleanup
            // removes it last: without it, no cycle left anything.
            if !self.fs().exists(&self.workspace())? {
                return Ok(());
            }
            let errors = cleanup::remove_node_work(self, lca_hostops::failpoint::names::FRESH_START).await;
            if errors.is_empty() {
                Ok(())
            } else {
                Err(crate::error::Error::state(errors.join("; ")))
            }
        })
    }
    fn after_pivot<'a>(&'a self, ibu: &'a ImageBasedUpgrade) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let version = &ibu.spec.seed_image_ref.version;
            if version.is_empty() {
                return false;
            }
            match lca_hostops::ostree::status(self.exec.as_ref()).await {
                Ok(status) => status
                    .booted_stateroot()
                    .is_ok_and(|s| s == lca_core::version::stateroot_name(version)),
                Err(e) => {
                    tracing::warn!("cannot read the booted stateroot: {e}");
                    false
                }
            }
        })
    }
}

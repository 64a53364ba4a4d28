//! The task runner of the operator: one named long-running task (`TaskKind`) on the node's
//! backend — a Job in a cluster (`crate::jobs`), a detached local process on a simulated node
//! (`lca_hostops::local_task`). Callers see one `state`/`start`/`remove`.

use lca_hostops::local_task::LocalTask;

use crate::error::{Category, Error, Result};

pub use lca_core::TaskState;

/// A task on either backend: a local process (simulated nodes) or a Job (in a cluster).
pub enum Task {
    Local(LocalTask),
    Job(Box<crate::jobs::JobTask>),
}

impl Task {
    pub async fn state(&self) -> Result<TaskState> {
        match self {
            Task::Local(t) => Ok(t.state()),
            Task::Job(t) => t.state().await,
        }
    }

    pub async fn start(
        &self,
        argv: &[String],
        envs: &[(String, String)],
        owner: &lca_api::ImageBasedUpgrade,
        on_exit: impl FnOnce() + Send + 'static,
    ) -> Result<()> {
        match self {
            Task::Local(t) => t.start(argv, envs, on_exit).map_err(|e| Error::Message {
                message: format!("cannot start the task: {e}"),
                category: Category::Transient,
            }),
            Task::Job(t) => t.start(argv, envs, owner).await,
        }
    }

    pub async fn remove(&self) -> Result<()> {
        match self {
            Task::Local(t) => {
                t.remove();
                Ok(())
            }
            Task::Job(t) => t.remove().await,
        }
    }

    /// The end of the task's output, where this backend keeps it.
    pub fn log_tail(&self, n: usize) -> String {
        match self {
            Task::Local(t) => t.log_tail(n),
            Task::Job(_) => String::from("(see the job's pod logs)"),
        }
    }
}

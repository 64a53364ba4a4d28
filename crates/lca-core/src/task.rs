//! The long-running node work of a stage as plain data: which task (`TaskKind`), where it
//! stands (`TaskState`) and what its status file last said (`TaskDetail`). The operator's
//! task runner observes these on either backend (Job or local process); the step plans
//! decide from them alone.

use lca_api::consts::names;

/// A long-running task of Prep. Names, subcommands and history phases come from here, so
/// no caller compares strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TaskKind {
    StaterootSetup,
    Precache,
}

impl TaskKind {
    pub const ALL: [TaskKind; 2] = [TaskKind::StaterootSetup, TaskKind::Precache];

    /// The Job name (and the local task's directory name) of the reference.
    pub fn job_name(self) -> &'static str {
        match self {
            TaskKind::StaterootSetup => names::STATEROOT_SETUP_JOB,
            TaskKind::Precache => names::PRECACHE_JOB,
        }
    }

    /// The `lca-cli` subcommand the task runs.
    pub fn subcommand(self) -> &'static str {
        match self {
            TaskKind::StaterootSetup => "stateroot-setup",
            TaskKind::Precache => "precache",
        }
    }

    /// The phase of `status.history` the task's run is recorded as.
    pub fn phase(self) -> &'static str {
        match self {
            TaskKind::StaterootSetup => "Stateroot",
            TaskKind::Precache => "Precache",
        }
    }
}

/// Where a task stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TaskState {
    NotStarted,
    Running,
    Succeeded,
    Failed {
        code: i32,
    },
    /// Started but gone without an exit code (killed, or the node rebooted).
    Interrupted,
    /// The Job is being deleted by someone else (the Job backend only).
    Deleting,
}

/// What the task's status file says: the step it is in (or failed in) and its message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TaskDetail {
    pub step: String,
    pub message: String,
    pub failed: bool,
}

/// One task as the plan sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskFacts {
    pub state: TaskState,
    /// How often an interrupted run was started again.
    pub resumes: u32,
    pub detail: Option<TaskDetail>,
}

impl TaskFacts {
    pub fn new(state: TaskState) -> Self {
        Self {
            state,
            resumes: 0,
            detail: None,
        }
    }
}

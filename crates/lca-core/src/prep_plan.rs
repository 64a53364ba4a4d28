//! The Prep plan (spec §5.1): from the facts one reconcile gathered, the one next action.
//! The operator performs it and reports back through `started`, `blocked`, `resumed` and
//! `forgot`, which turn the result into the step report — so every message, requeue delay
//! and history phase of Prep is decided here, without I/O.

use std::time::Duration;

use lca_api::consts::messages;

use crate::outcome::{PhaseEvent, StepOutcome, StepReport};
use crate::task::{TaskFacts, TaskKind, TaskState};

/// Requeue while a task runs (local tasks also wake the controller when they end).
pub const POLL: Duration = Duration::from_secs(2);
/// Requeue while the cluster is not healthy (§2.7).
pub const HEALTH_RETRY: Duration = Duration::from_secs(20);
/// Requeue after a transient problem reading the work's state.
pub const READ_RETRY: Duration = Duration::from_secs(10);
/// Resumes of an interrupted task before Prep gives up.
pub const MAX_RESUMES: u32 = 3;
/// Attempts at inspecting the seed before a silent or failing registry fails Prep.
pub const MAX_INSPECT_ATTEMPTS: u32 = 5;

/// What one Prep reconcile observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrepFacts {
    /// The health check's error, `None` when the cluster is healthy.
    pub unhealthy: Option<String>,
    /// The work of another Prep found on the node (its seed and version), if any.
    pub other_run: Option<String>,
    pub stateroot: TaskFacts,
    pub precache: TaskFacts,
    /// The precache status file, as the message shows it.
    pub precache_progress: String,
    /// The `extra-manifest-validation-warning` annotation is set.
    pub validation_warning: bool,
    /// The operator namespace (the Jobs' namespace in the messages).
    pub namespace: String,
}

/// The next thing the operator does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PrepAction {
    /// Nothing to do on the node: write this report.
    Report(StepReport),
    /// Remove the node work of the other run, then report `forgot`.
    ForgetOtherRun { what: String },
    /// Validate the spec and the seed, clean up images, launch stateroot setup.
    StartStateroot,
    /// Back up the kubeconfig crypto and launch precache.
    StartPrecache,
    /// Start an interrupted task again (`attempt` counts from 1).
    Resume { task: TaskKind, attempt: u32 },
}

/// Why a start did not happen, with the underlying error text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Blocker<'a> {
    NoStorageTarget(Option<&'a str>),
    InvalidSpec(&'a str),
    Workspace(&'a str),
    InvalidSeed(&'a str),
    /// The registry did not answer; `failed_attempts` counts this one.
    SeedUnreachable {
        error: &'a str,
        failed_attempts: u32,
    },
    CryptoBackup(&'a str),
    LaunchStateroot(&'a str),
    /// Precache could not be prepared or launched (the text is the whole message).
    LaunchPrecache(&'a str),
}

fn job(kind: TaskKind, ns: &str) -> String {
    format!("job-name: {}, job-namespace: {ns}", kind.job_name())
}

fn in_progress(message: String, requeue: Duration, phases: Vec<PhaseEvent>) -> StepReport {
    StepReport {
        outcome: StepOutcome::InProgress {
            message: Some(message),
            requeue,
        },
        phases,
    }
}

fn fail(message: String) -> StepReport {
    StepOutcome::Failed { message }.into()
}

/// The one next action.
pub fn next(f: &PrepFacts) -> PrepAction {
    if let Some(e) = &f.unhealthy {
        return PrepAction::Report(in_progress(
            format!("Waiting for system to stabilize before Prep stage can continue: {e}"),
            HEALTH_RETRY,
            vec![],
        ));
    }
    if let Some(what) = &f.other_run {
        return PrepAction::ForgetOtherRun { what: what.clone() };
    }
    let ns = &f.namespace;
    match task_step(TaskKind::StaterootSetup, &f.stateroot, ns, "") {
        Some(action) => return action,
        None if f.stateroot.state == TaskState::NotStarted => return PrepAction::StartStateroot,
        None => {}
    }
    // Setup succeeded.
    if f.precache.state == TaskState::NotStarted {
        return PrepAction::StartPrecache;
    }
    let progress = format!(". {}", f.precache_progress);
    if let Some(action) = task_step(TaskKind::Precache, &f.precache, ns, &progress) {
        return action;
    }
    let message = f
        .validation_warning
        .then(|| messages::PREP_STAGE_COMPLETED_WITH_WARNING.to_string());
    PrepAction::Report(StepReport {
        outcome: StepOutcome::Completed { message },
        phases: vec![PhaseEvent::Complete(TaskKind::Precache.phase())],
    })
}

/// The action for a task that neither succeeded nor awaits its first start; `None` then.
fn task_step(kind: TaskKind, t: &TaskFacts, ns: &str, progress: &str) -> Option<PrepAction> {
    let job = job(kind, ns);
    let (running, deleting, failed) = match kind {
        TaskKind::StaterootSetup => (
            "Stateroot setup job in progress",
            "stateroot job is marked to be deleted, this is not allowed",
            "stateroot setup job failed to complete",
        ),
        // "this not allowed" is upstream's wording.
        TaskKind::Precache => (
            "Precache job in progress",
            "precache job is marked to be deleted, this not allowed",
            "precache job failed to complete",
        ),
    };
    let step = |what: &str| match &t.detail {
        Some(d) if !d.step.is_empty() && d.failed && !d.message.is_empty() => {
            format!(". {what} step {}: {}", d.step, d.message)
        }
        Some(d) if !d.step.is_empty() && !d.failed => format!(". Current step: {}", d.step),
        _ => String::new(),
    };
    Some(match t.state {
        TaskState::NotStarted | TaskState::Succeeded => return None,
        TaskState::Running => PrepAction::Report(in_progress(
            format!("{running}. {job}{progress}{}", step("")),
            POLL,
            vec![],
        )),
        TaskState::Interrupted if t.resumes < MAX_RESUMES => PrepAction::Resume {
            task: kind,
            attempt: t.resumes + 1,
        },
        TaskState::Interrupted => PrepAction::Report(fail(format!(
            "{failed}. {job}. It was interrupted {} times",
            t.resumes + 1
        ))),
        TaskState::Deleting => PrepAction::Report(fail(format!("{deleting}. {job}"))),
        TaskState::Failed { .. } => {
            PrepAction::Report(fail(format!("{failed}. {job}{progress}{}", step("Failed in"))))
        }
    })
}

/// The report after `kind` was launched for the first time.
pub fn started(kind: TaskKind, ns: &str) -> StepReport {
    match kind {
        TaskKind::StaterootSetup => in_progress(
            format!(
                "Successfully launched a new job for stateroot setup. {}",
                job(kind, ns)
            ),
            POLL,
            vec![PhaseEvent::Start(kind.phase())],
        ),
        TaskKind::Precache => in_progress(
            format!("Successfully launched a new job precache. {}", job(kind, ns)),
            POLL,
            vec![
                PhaseEvent::Complete(TaskKind::StaterootSetup.phase()),
                PhaseEvent::Start(kind.phase()),
            ],
        ),
    }
}

/// The report after an interrupted task was started again.
pub fn resumed(kind: TaskKind, ns: &str) -> StepReport {
    in_progress(
        format!("Resumed interrupted work. {}", job(kind, ns)),
        POLL,
        vec![],
    )
}

/// The report after the node work of another run was removed.
pub fn forgot(what: &str) -> StepReport {
    in_progress(
        format!("Removed the node work of an earlier Prep ({what}); starting over"),
        POLL,
        vec![],
    )
}

/// A transient problem reading the work's state: try again soon, message unchanged.
pub fn retry_later() -> StepReport {
    StepOutcome::InProgress {
        message: None,
        requeue: READ_RETRY,
    }
    .into()
}

/// The report when a start was blocked.
pub fn blocked(b: Blocker<'_>) -> StepReport {
    fail(match b {
        Blocker::NoStorageTarget(None) => "container storage mountpoint target not found".into(),
        Blocker::NoStorageTarget(Some(e)) => format!("container storage mountpoint target not found: {e}"),
        Blocker::InvalidSpec(e) => format!("failed to validate IBU spec: {e}"),
        Blocker::Workspace(e) => format!("failed to initialize IBU workspace: {e}"),
        Blocker::InvalidSeed(e) => format!("failed to validate seed image info: {e}"),
        Blocker::SeedUnreachable {
            error,
            failed_attempts,
        } if failed_attempts >= MAX_INSPECT_ATTEMPTS => {
            format!("failed to validate seed image info: {error} (after {failed_attempts} attempts)")
        }
        Blocker::SeedUnreachable {
            error,
            failed_attempts,
        } => {
            return in_progress(
                format!(
                    "Retrying the seed image inspection (attempt {failed_attempts} of {MAX_INSPECT_ATTEMPTS} failed): {error}"
                ),
                inspect_backoff(failed_attempts),
                vec![],
            );
        }
        Blocker::CryptoBackup(e) => format!("failed to back up kubeconfig crypto: {e}"),
        Blocker::LaunchStateroot(e) => format!("failed to launch stateroot setup: {e}"),
        Blocker::LaunchPrecache(e) => e.to_string(),
    })
}

/// Delay before the next inspection: 2 s doubling, at most 32 s.
pub fn inspect_backoff(failed_attempts: u32) -> Duration {
    Duration::from_secs(1u64 << failed_attempts.min(5))
}

#[cfg(test)]
#[path = "prep_plan_tests.rs"]
mod tests;

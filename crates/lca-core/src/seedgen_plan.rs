//! The SeedGenerator plan (spec §8): the phase read off the conditions (§8.1), the facts one
//! reconcile gathered, and the one next action with its condition message and requeue. The
//! operator gathers the facts, performs the action (the generating steps in
//! [`GenStep::ORDER`], the imager launch, the completion) and writes the status.

use std::time::Duration;

use lca_api::Condition;
use lca_api::consts::{condition_types as ct, messages as m, reasons};

use crate::conditions::{self, TRUE};

/// After the prerequisite checks pass (`requeueImmediately` upstream, a short pause here).
pub const REQUEUE_AFTER_CHECKS: Duration = Duration::from_secs(2);
/// While the cluster is not healthy yet.
pub const REQUEUE_HEALTH_CHECK: Duration = Duration::from_secs(20);

/// Where a SeedGenerator stands (`getPhase`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Prerequisite checks not run yet.
    Initial,
    /// Checks passed: health, the generating steps, then the imager launch.
    Generating,
    /// The imager was launched and the CR restored: judge the imager's result.
    Finalizing,
    Completed,
    /// Terminal: the CR must be deleted and re-created.
    Failed,
}

/// The phase of a SeedGenerator with `conds` (§8.1).
pub fn phase(conds: &[Condition]) -> Phase {
    let in_progress = conditions::find(conds, ct::SEEDGEN_IN_PROGRESS);
    let completed = conditions::find(conds, ct::SEEDGEN_COMPLETED);
    if in_progress.is_none() && completed.is_none() {
        return Phase::Initial;
    }
    if [in_progress, completed]
        .into_iter()
        .flatten()
        .any(|c| c.reason == reasons::FAILED)
    {
        return Phase::Failed;
    }
    if completed.is_some_and(|c| c.status == TRUE) {
        return Phase::Completed;
    }
    match in_progress {
        Some(c) if c.status == TRUE && c.message == m::SEEDGEN_LAUNCHING_IMAGER => Phase::Finalizing,
        Some(c) if c.status == TRUE && c.message.is_empty() => Phase::Initial,
        _ => Phase::Generating,
    }
}

/// What the imager container looks like to `podman inspect` (or the simulated node's record).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImagerState {
    /// Exactly one container, in `status` with `exit_code`.
    Container { status: String, exit_code: i64 },
    /// Not observable as one container: why, worded as upstream's check words it.
    Unknown { reason: String },
}

/// The facts of one reconcile; each is gathered only in the phase that needs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedGenFacts {
    /// The CR is the singleton `seedimage`.
    pub singleton: bool,
    pub phase: Phase,
    /// Initial: the first failed prerequisite's rejection message, `None` when all pass.
    pub rejection: Option<String>,
    /// Generating: why the cluster is not healthy yet, `None` when it is.
    pub unhealthy: Option<String>,
    /// Finalizing: the imager's container.
    pub imager: Option<ImagerState>,
    /// Finalizing: the imager's own last word on a failure (its `lca-cli: …` line), so the
    /// CR says why and not only that it exited non-zero.
    pub imager_error: Option<String>,
}

impl SeedGenFacts {
    /// Facts of a singleton in `phase` with nothing observed yet.
    pub fn new(phase: Phase) -> Self {
        Self {
            singleton: true,
            phase,
            rejection: None,
            unhealthy: None,
            imager: None,
            imager_error: None,
        }
    }
}

/// The steps of the generating phase, in order (§8.3); each is announced with its message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GenStep {
    /// Wipe and re-create the workspace, remove an old imager container.
    Starting,
    PullingRecert,
    /// Save the `seedgen` Secret, write the seed auth, save the cluster pull secret.
    Preparing,
    /// ACM leftovers, finished pods, the sanitized pull secret, stale rendered MachineConfigs,
    /// the seed cluster info.
    Cleaning,
    /// Save the CR, delete the Secret, the CR and the IBU, launch the imager.
    LaunchingImager,
}

impl GenStep {
    pub const ORDER: [GenStep; 5] = [
        GenStep::Starting,
        GenStep::PullingRecert,
        GenStep::Preparing,
        GenStep::Cleaning,
        GenStep::LaunchingImager,
    ];

    /// The SeedGenInProgress message while the step runs.
    pub fn message(self) -> &'static str {
        match self {
            GenStep::Starting => m::SEEDGEN_STARTING,
            GenStep::PullingRecert => m::SEEDGEN_PULLING_RECERT,
            GenStep::Preparing => m::SEEDGEN_PREPARING,
            GenStep::Cleaning => m::SEEDGEN_CLEANING,
            GenStep::LaunchingImager => m::SEEDGEN_LAUNCHING_IMAGER,
        }
    }
}

/// The one next action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeedGenAction {
    /// Nothing to do until the CR is re-created; `note` says why (logged).
    Ignore { note: &'static str },
    /// SeedGenInProgress True `InProgress` `message`, reconcile again after `requeue`.
    Wait { message: String, requeue: Duration },
    /// Run the generating steps ([`GenStep::ORDER`]) and launch the imager.
    Generate,
    /// The imager succeeded: wipe the workspace and mark both conditions `Completed`.
    Complete,
    /// SeedGenCompleted False `Failed` `Seed generation failed: message`, SeedGenInProgress
    /// False `Failed` `message`; terminal.
    Fail { message: String },
}

/// The next action for `facts`.
pub fn next(facts: &SeedGenFacts) -> SeedGenAction {
    if !facts.singleton {
        return SeedGenAction::Ignore {
            note: "not the singleton seedimage",
        };
    }
    match facts.phase {
        Phase::Failed => SeedGenAction::Ignore {
            note: "seed generation has failed; delete and re-create the SeedGenerator to try again",
        },
        Phase::Completed => SeedGenAction::Ignore {
            note: "seed generation has completed",
        },
        Phase::Initial => match &facts.rejection {
            Some(rejection) => SeedGenAction::Fail {
                message: rejection.clone(),
            },
            None => SeedGenAction::Wait {
                message: m::SEEDGEN_WAITING_FOR_STABLE.into(),
                requeue: REQUEUE_AFTER_CHECKS,
            },
        },
        Phase::Generating => match &facts.unhealthy {
            Some(error) => SeedGenAction::Wait {
                message: format!("{}: {error}", m::SEEDGEN_WAITING_FOR_STABLE),
                requeue: REQUEUE_HEALTH_CHECK,
            },
            None => SeedGenAction::Generate,
        },
        Phase::Finalizing => match imager_problem(facts.imager.as_ref()) {
            None => SeedGenAction::Complete,
            Some(problem) => SeedGenAction::Fail {
                message: failed_after_imager(&format!(
                    "{}: {problem}{}",
                    m::SEEDGEN_IMAGER_STATUS_CHECK_FAILED,
                    facts
                        .imager_error
                        .as_deref()
                        .map(|e| format!("; {e}"))
                        .unwrap_or_default()
                )),
            },
        },
    }
}

/// The last `lca-cli: <error>` line of the imager's output (what `lca-cli` prints when it
/// fails), cut to 512 bytes so a runaway message cannot bloat the CR.
pub fn imager_error_line(log: &str) -> Option<String> {
    let line = log.lines().rev().find(|l| l.starts_with("lca-cli: "))?;
    let mut end = line.len().min(512);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    Some(line[..end].to_string())
}

/// What is wrong with the imager's result (`checkImagerStatus`), `None` when it exited 0.
fn imager_problem(imager: Option<&ImagerState>) -> Option<String> {
    match imager {
        None => Some("the imager container was not inspected".into()),
        Some(ImagerState::Unknown { reason }) => Some(reason.clone()),
        Some(ImagerState::Container { status, .. }) if status != "exited" => {
            Some(format!("expected container status exited, found: {status}"))
        }
        Some(ImagerState::Container { exit_code, .. }) if *exit_code != 0 => {
            Some(format!("expected container status 0, found: {exit_code}"))
        }
        Some(ImagerState::Container { .. }) => None,
    }
}

/// The failure message of the finalizing phase: upstream prefixes it here and again in its
/// Failed helper, so the SeedGenCompleted message carries the prefix twice.
pub fn failed_after_imager(detail: &str) -> String {
    format!("{}: {detail}", m::SEEDGEN_FAILED)
}

#[cfg(test)]
#[path = "seedgen_plan_tests.rs"]
mod tests;

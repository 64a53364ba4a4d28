//! The Upgrade and Rollback plans (spec §6.1, §6.5, §7.1) in the shape of `prep_plan`: the
//! facts one reconcile gathered, and the one next step. The node work of each step is
//! written by the Upgrade and Rollback issues; what may happen in which order — above all,
//! that the new stateroot is never made the default before it was fully set up and every
//! export landed in it — is fixed and property-tested here first.

use std::time::Duration;

use crate::outcome::{StepOutcome, StepReport};
use crate::prep_plan::HEALTH_RETRY;

/// Progress through one ordered list of steps, as markers on disk report it.
pub trait Steps: Copy + Eq + 'static {
    const ORDER: &'static [Self];
    /// The in-progress message of the step (spec §3.1).
    fn message(self) -> &'static str;
}

/// The first step of `S::ORDER` that is not done, `None` when all are.
pub fn first_pending<S: Steps>(done: &[S]) -> Option<S> {
    S::ORDER.iter().copied().find(|s| !done.contains(s))
}

/// Pre-pivot steps, in order (§6.1 steps 3–12).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrePivot {
    Backup,
    ExportApplicationConfiguration,
    ExportManifests,
    ExportClusterConfiguration,
    SaveCr,
    SetDefault,
    Reboot,
}

impl Steps for PrePivot {
    const ORDER: &'static [Self] = &[
        PrePivot::Backup,
        PrePivot::ExportApplicationConfiguration,
        PrePivot::ExportManifests,
        PrePivot::ExportClusterConfiguration,
        PrePivot::SaveCr,
        PrePivot::SetDefault,
        PrePivot::Reboot,
    ];
    fn message(self) -> &'static str {
        match self {
            PrePivot::Backup => "Backing up Application Data",
            PrePivot::ExportApplicationConfiguration => "Exporting Application Configuration",
            PrePivot::ExportManifests => "Exporting Policy and Config Manifests",
            PrePivot::ExportClusterConfiguration => "Exporting Cluster, LVM, and cert-manager configuration",
            PrePivot::SaveCr | PrePivot::SetDefault | PrePivot::Reboot => "In progress",
        }
    }
}

/// Post-pivot steps, in order (§6.5 steps 3–7).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PostPivot {
    EnsureOadpConfiguration,
    ApplyPolicyManifests,
    ApplyConfigManifests,
    Restore,
    DeferredHealth,
    DisableInitMonitor,
}

impl Steps for PostPivot {
    const ORDER: &'static [Self] = &[
        PostPivot::EnsureOadpConfiguration,
        PostPivot::ApplyPolicyManifests,
        PostPivot::ApplyConfigManifests,
        PostPivot::Restore,
        PostPivot::DeferredHealth,
        PostPivot::DisableInitMonitor,
    ];
    fn message(self) -> &'static str {
        match self {
            PostPivot::EnsureOadpConfiguration | PostPivot::DisableInitMonitor => "In progress",
            PostPivot::ApplyPolicyManifests => "Applying Policy Manifests",
            PostPivot::ApplyConfigManifests => "Applying Config Manifests",
            PostPivot::Restore => "Restoring Application Data",
            PostPivot::DeferredHealth => "Waiting for system to fully stabilize",
        }
    }
}

/// Rollback steps while still on the new stateroot, in order (§7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rollback {
    SetDefault,
    ClearExpiration,
    SaveCr,
    Reboot,
}

impl Steps for Rollback {
    const ORDER: &'static [Self] = &[
        Rollback::SetDefault,
        Rollback::ClearExpiration,
        Rollback::SaveCr,
        Rollback::Reboot,
    ];
    fn message(self) -> &'static str {
        match self {
            Rollback::SetDefault => "Initiating rollback",
            Rollback::ClearExpiration | Rollback::SaveCr | Rollback::Reboot => "Completing rollback",
        }
    }
}

/// What an Upgrade or Rollback reconcile observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StageFacts<S> {
    /// The (mandatory) health check's error, `None` when healthy.
    pub unhealthy: Option<String>,
    /// The new stateroot was set up completely (Prep completed, the stateroot is on disk).
    pub stateroot_ready: bool,
    /// Steps marked done on disk.
    pub done: Vec<S>,
    /// The step that failed for good, with its message.
    pub failed: Option<(S, String)>,
    /// A rollback decided on this stateroot (its message): nothing of the stage runs again.
    pub rolling_back: Option<String>,
}

/// The next thing the operator does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StageAction<S> {
    Report(StepReport),
    /// Run `step` and mark it done; `message` goes into the in-progress condition first.
    Run {
        step: S,
        message: &'static str,
    },
    /// Go on with the automatic rollback decided earlier (spec §6.7).
    RollBack {
        message: String,
    },
}

/// The pre-pivot plan: health first, nothing without a ready stateroot, then the steps in
/// order. `waiting` is the health message prefix of the stage.
pub fn next<S: Steps>(f: &StageFacts<S>, waiting: &str) -> StageAction<S> {
    if let Some(message) = &f.rolling_back {
        return StageAction::RollBack {
            message: message.clone(),
        };
    }
    if let Some((_, message)) = &f.failed {
        return StageAction::Report(
            StepOutcome::Failed {
                message: message.clone(),
            }
            .into(),
        );
    }
    if let Some(e) = &f.unhealthy {
        return StageAction::Report(StepReport {
            outcome: StepOutcome::InProgress {
                message: Some(format!("{waiting}: {e}")),
                requeue: HEALTH_RETRY,
            },
            phases: vec![],
        });
    }
    if !f.stateroot_ready {
        return StageAction::Report(
            StepOutcome::Failed {
                message: "the new stateroot is not set up: run Prep first".into(),
            }
            .into(),
        );
    }
    match first_pending(&f.done) {
        Some(step) => StageAction::Run {
            step,
            message: step.message(),
        },
        None => StageAction::Report(StepOutcome::Completed { message: None }.into()),
    }
}

/// The health message prefixes of §3.1.
pub const PRE_PIVOT_WAITING: &str =
    "Waiting for system to stabilize before Upgrade (pre-pivot) stage can continue";
pub const POST_PIVOT_WAITING: &str = "Waiting for system to stabilize";

/// Requeue while a step that runs elsewhere (an OADP backup) is still going.
pub const STEP_POLL: Duration = Duration::from_secs(10);

#[cfg(test)]
#[path = "upgrade_plan_tests.rs"]
mod tests;

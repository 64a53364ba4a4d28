//! One Upgrade step (spec §6): before the pivot (`prepivot`) the exports into the new
//! stateroot, the saved CR, `set-default` and the reboot; after it (`postpivot`) the
//! manifests, the deferred health and the completion. Each reconcile gathers
//! `StageFacts` (health only before the first step, the `<step>.done` markers of the booted
//! stateroot's workspace), lets `lca_core::upgrade_plan` pick the next step and runs it, so
//! an operator killed at any step resumes at that step. The Rollback stage's steps
//! (`rollback_steps`) run through the same plan; a post-pivot failure that rolls back by
//! itself (§6.7) records the decision and the next reconcile carries it out.

mod export_certmanager;
mod export_cluster;
mod export_manifests;
mod export_oadp;
mod postpivot;
mod prepivot;
mod rollback_steps;

use std::path::PathBuf;
use std::time::Duration;

use lca_api::ImageBasedUpgrade;
use lca_core::autorollback::Trigger;
use lca_core::upgrade_plan::{self, StageAction, StageFacts, Steps};
use lca_core::{Category, PhaseEvent, StepOutcome, StepReport};
use lca_hostops::reboot::Rationale;
use lca_hostops::rollback;
use tracing::{info, warn};

use super::NodeStageWork;
use crate::error::Result;

/// History phases of the Upgrade stage (§3.5).
pub const PHASE_PRE_PIVOT: &str = "PrePivot";
pub const PHASE_POST_PIVOT: &str = "PostPivot";

/// What a step did.
pub(super) enum Ran {
    /// Done: mark it and go on with the next step at once.
    Done,
    /// Not yet (a wait on the cluster): show `message`, come back after `requeue`.
    Wait { message: String, requeue: Duration },
    /// Failed for good: the stage fails with `message`.
    Failed(String),
}

/// Requeue after a step error that a retry may cure (API or node trouble).
const RETRY: Duration = Duration::from_secs(10);

pub async fn step(w: &NodeStageWork, ibu: &ImageBasedUpgrade, after_pivot: bool) -> StepReport {
    if after_pivot {
        run_plan::<upgrade_plan::PostPivot>(w, ibu, upgrade_plan::POST_PIVOT_WAITING).await
    } else {
        run_plan::<upgrade_plan::PrePivot>(w, ibu, upgrade_plan::PRE_PIVOT_WAITING).await
    }
}

/// One Rollback step (§7.1): on the new stateroot the way back; once the node booted the
/// original stateroot again, the rollback is complete.
pub async fn rollback_step(w: &NodeStageWork, ibu: &ImageBasedUpgrade, after_pivot: bool) -> StepReport {
    if after_pivot {
        run_plan::<upgrade_plan::Rollback>(w, ibu, "").await
    } else {
        StepOutcome::Completed { message: None }.into()
    }
}

/// A step list the upgrade runs: its health gate and the work of each step.
pub(super) trait UpgradeSteps: Steps + std::fmt::Debug + Send + Sync {
    /// The workspace directory of the step markers.
    const MARKERS: &'static str;
    /// The failpoint flow (`<flow>/<step>` after each step's work, before its marker).
    const FAILPOINTS: &'static str;
    /// The history phase (§3.5) and the step after which it is over.
    const PHASE: Option<(&'static str, Self)>;
    /// Whether a rollback decided on this stateroot replaces the steps (§6.7).
    const FOLLOWS_ROLLBACK: bool = false;
    /// Whether every error fails the stage for good (a rollback's, §7.1) rather than being
    /// retried.
    const ERRORS_ARE_FINAL: bool = false;
    fn health(w: &NodeStageWork) -> impl std::future::Future<Output = Result<()>> + Send;
    fn ready(
        w: &NodeStageWork,
        ibu: &ImageBasedUpgrade,
    ) -> impl std::future::Future<Output = Result<bool>> + Send;
    fn run(
        self,
        w: &NodeStageWork,
        ibu: &ImageBasedUpgrade,
    ) -> impl std::future::Future<Output = Result<Ran>> + Send;
    /// The automatic rollback a failure of this step triggers, if any.
    fn trigger(self, _message: &str) -> Option<Trigger> {
        None
    }
}

async fn run_plan<S: UpgradeSteps>(w: &NodeStageWork, ibu: &ImageBasedUpgrade, waiting: &str) -> StepReport {
    let facts = match gather::<S>(w, ibu).await {
        Ok(f) => f,
        Err(e) => return retry(e, "reading the state of the upgrade"),
    };
    // Started at each entry: the history keeps the first start (§3.5).
    let mut phases: Vec<PhaseEvent> = S::PHASE.map(|(p, _)| PhaseEvent::Start(p)).into_iter().collect();
    let (step, message) = match upgrade_plan::next(&facts, waiting) {
        StageAction::Report(mut report) => {
            phases.append(&mut report.phases);
            return StepReport { phases, ..report };
        }
        StageAction::RollBack { message } => return auto_rollback(w, ibu, &message).await.into(),
        StageAction::Run { step, message } => (step, message),
    };
    info!(?step, message, "{} step", S::MARKERS);
    let ran = match step.run(w, ibu).await {
        Ok(Ran::Done) => w
            .failpoint(S::FAILPOINTS, &format!("{step:?}"))
            .map(|()| Ran::Done),
        other => other,
    };
    let outcome = match ran {
        Ok(Ran::Done) => match markers::<S>(w).and_then(|m| mark(w, &m, step)) {
            Ok(()) => {
                if let Some((phase, end)) = S::PHASE
                    && step == end
                {
                    phases.push(PhaseEvent::Complete(phase));
                }
                let done: Vec<S> = facts.done.iter().copied().chain([step]).collect();
                match upgrade_plan::first_pending(&done) {
                    Some(next) => StepOutcome::InProgress {
                        message: Some(next.message().to_string()),
                        requeue: Duration::ZERO,
                    },
                    None => StepOutcome::Completed { message: None },
                }
            }
            Err(e) => return retry(e, "marking an upgrade step done"),
        },
        Ok(Ran::Wait { message, requeue }) => StepOutcome::InProgress {
            message: Some(message),
            requeue,
        },
        Ok(Ran::Failed(message)) => failed(w, ibu, step, message),
        Err(e) if S::ERRORS_ARE_FINAL || e.category() == Category::Invalid => {
            failed(w, ibu, step, e.to_string())
        }
        Err(e) => return retry(e, &format!("{step:?}")),
    };
    StepReport { outcome, phases }
}

/// A step failed for good: the stage fails, unless the failure rolls back by itself (§6.7);
/// then the decision is recorded and shown, and the next reconcile carries it out.
fn failed<S: UpgradeSteps>(
    w: &NodeStageWork,
    ibu: &ImageBasedUpgrade,
    step: S,
    message: String,
) -> StepOutcome {
    let Some(trigger) = step.trigger(&message) else {
        return StepOutcome::Failed { message };
    };
    if !trigger.enabled(&Default::default(), ibu.metadata.annotations.as_ref()) {
        info!(
            ?step,
            "automatic rollback disabled by the upgrade-completion annotation"
        );
        return StepOutcome::Failed { message };
    }
    match rollback::decide(w.exec.as_ref(), &trigger.message()) {
        Ok(decided) => StepOutcome::InProgress {
            message: Some(decided),
            requeue: Duration::ZERO,
        },
        Err(e) => StepOutcome::Failed {
            message: format!("{}; the automatic rollback failed: {e}", trigger.message()),
        },
    }
}

/// Carry out the decided rollback: the original stateroot gets the saved CR marked failed
/// and becomes the default, and the node reboots.
async fn auto_rollback(w: &NodeStageWork, ibu: &ImageBasedUpgrade, message: &str) -> StepOutcome {
    match rollback::initiate(w.exec.as_ref(), message, Some(ibu)).await {
        Ok(_) => match prepivot::await_reboot(w, ibu, Rationale::Rollback).await {
            Ok(Ran::Failed(e)) => StepOutcome::Failed { message: e },
            _ => StepOutcome::Failed {
                message: lca_hostops::reboot::REBOOT_FAILED.into(),
            },
        },
        Err(e) => StepOutcome::Failed {
            message: format!("{message}; the automatic rollback failed: {e}"),
        },
    }
}

fn retry(e: crate::error::Error, what: &str) -> StepReport {
    warn!(error = %e, "upgrade: {what} failed; retrying");
    StepOutcome::InProgress {
        message: None,
        requeue: RETRY,
    }
    .into()
}

async fn gather<S: UpgradeSteps>(w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> Result<StageFacts<S>> {
    let rolling_back = if S::FOLLOWS_ROLLBACK {
        rollback::decided(w.exec.as_ref())?
    } else {
        None
    };
    let dir = markers::<S>(w)?;
    let mut done = Vec::new();
    for &s in S::ORDER {
        if w.fs().exists(&dir.join(marker_name(s)))? {
            done.push(s);
        }
    }
    // The health gate is the stage's entry; steps already done were past it.
    let unhealthy = if done.is_empty() && rolling_back.is_none() {
        S::health(w).await.err().map(|e| e.to_string())
    } else {
        None
    };
    let stateroot_ready = unhealthy.is_some() || S::ready(w, ibu).await?;
    Ok(StageFacts {
        unhealthy,
        stateroot_ready,
        done,
        failed: None,
        rolling_back,
    })
}

/// The markers of the booted stateroot's steps of `S`.
fn markers<S: UpgradeSteps>(w: &NodeStageWork) -> Result<PathBuf> {
    let dir = w.workspace().join(S::MARKERS);
    w.fs().create_private_dir(&dir)?;
    Ok(dir)
}

fn marker_name<S: std::fmt::Debug>(s: S) -> String {
    format!("{s:?}.done")
}

fn mark<S: std::fmt::Debug>(w: &NodeStageWork, dir: &std::path::Path, s: S) -> Result<()> {
    Ok(w.fs().write_atomic(&dir.join(marker_name(s)), b"")?)
}

/// The new stateroot of `ibu` (`rhcos_<version>`).
pub(super) fn new_stateroot(ibu: &ImageBasedUpgrade) -> String {
    lca_core::version::stateroot_name(&ibu.spec.seed_image_ref.version)
}

pub use postpivot::rollback_expiration;
pub use prepivot::SAVED_IN_BOOT;

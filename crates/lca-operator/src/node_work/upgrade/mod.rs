//! One Upgrade step (spec §6): before the pivot (`prepivot`) the exports into the new
//! stateroot, the saved CR, `set-default` and the reboot; after it (`postpivot`) the
//! manifests, the deferred health and the completion. Each reconcile gathers
//! `StageFacts` (health only before the first step, the `<step>.done` markers of the booted
//! stateroot's workspace), lets `lca_core::upgrade_plan` pick the next step and runs it, so
//! an operator killed at any step resumes at that step.

mod export_certmanager;
mod export_cluster;
mod export_manifests;
mod postpivot;
mod prepivot;

use std::path::PathBuf;
use std::time::Duration;

use lca_api::ImageBasedUpgrade;
use lca_core::upgrade_plan::{self, StageAction, StageFacts, Steps};
use lca_core::{Category, PhaseEvent, StepOutcome, StepReport};
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
        run_plan::<upgrade_plan::PostPivot>(w, ibu, PHASE_POST_PIVOT, upgrade_plan::POST_PIVOT_WAITING).await
    } else {
        run_plan::<upgrade_plan::PrePivot>(w, ibu, PHASE_PRE_PIVOT, upgrade_plan::PRE_PIVOT_WAITING).await
    }
}

/// A step list the upgrade runs: its health gate and the work of each step.
pub(super) trait UpgradeSteps: Steps + std::fmt::Debug + Send + Sync {
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
    /// The step after which the phase is over (its history entry gets a completion time).
    const PHASE_END: Self;
}

async fn run_plan<S: UpgradeSteps>(
    w: &NodeStageWork,
    ibu: &ImageBasedUpgrade,
    phase: &'static str,
    waiting: &str,
) -> StepReport {
    let facts = match gather::<S>(w, ibu).await {
        Ok(f) => f,
        Err(e) => return retry(e, "reading the state of the upgrade"),
    };
    // Started at each entry: the history keeps the first start (§3.5).
    let mut phases = vec![PhaseEvent::Start(phase)];
    let (step, message) = match upgrade_plan::next(&facts, waiting) {
        StageAction::Report(mut report) => {
            phases.append(&mut report.phases);
            return StepReport { phases, ..report };
        }
        StageAction::Run { step, message } => (step, message),
    };
    info!(?step, message, "upgrade step");
    let outcome = match step.run(w, ibu).await {
        Ok(Ran::Done) => match markers(w).and_then(|m| {
            #[cfg(feature = "test-hooks")]
            crash_hook(w, step);
            mark(w, &m, step)
        }) {
            Ok(()) => {
                if step == S::PHASE_END {
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
        Ok(Ran::Failed(message)) => StepOutcome::Failed { message },
        Err(e) if e.category() == Category::Invalid => StepOutcome::Failed {
            message: e.to_string(),
        },
        Err(e) => return retry(e, &format!("{step:?}")),
    };
    StepReport { outcome, phases }
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
    let dir = markers(w)?;
    let mut done = Vec::new();
    for &s in S::ORDER {
        if w.fs().exists(&dir.join(marker_name(s)))? {
            done.push(s);
        }
    }
    // The health gate is the stage's entry; steps already done were past it.
    let unhealthy = if done.is_empty() {
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
    })
}

/// The markers of the booted stateroot's upgrade steps.
fn markers(w: &NodeStageWork) -> Result<PathBuf> {
    let dir = w.workspace().join("upgrade");
    w.fs().create_private_dir(&dir)?;
    Ok(dir)
}

fn marker_name<S: std::fmt::Debug>(s: S) -> String {
    format!("{s:?}.done")
}

fn mark<S: std::fmt::Debug>(w: &NodeStageWork, dir: &std::path::Path, s: S) -> Result<()> {
    Ok(w.fs().write_atomic(&dir.join(marker_name(s)), b"")?)
}

/// Test hook (test builds, simulated nodes): `lca-sim/crash-after-step` lists steps (one
/// per line, as logged); after such a step's work, before its marker — the harshest place
/// for a crash — the line is removed and the process exits with 137.
#[cfg(feature = "test-hooks")]
fn crash_hook<S: std::fmt::Debug>(w: &NodeStageWork, step: S) {
    if w.exec.node().kind != lca_hostops::NodeKind::Simulated {
        return;
    }
    let file = w.exec.node().paths.sim_dir().join("crash-after-step");
    let Ok(text) = std::fs::read_to_string(&file) else {
        return;
    };
    let name = format!("{step:?}");
    if text.lines().any(|l| l.trim() == name) {
        let rest: String = text
            .lines()
            .filter(|l| l.trim() != name)
            .map(|l| format!("{l}\n"))
            .collect();
        let _ = std::fs::write(&file, rest);
        warn!(step = %name, "crash-after-step: exiting before the marker");
        std::process::exit(137);
    }
}

/// The new stateroot of `ibu` (`rhcos_<version>`).
pub(super) fn new_stateroot(ibu: &ImageBasedUpgrade) -> String {
    lca_core::version::stateroot_name(&ibu.spec.seed_image_ref.version)
}

pub use postpivot::rollback_expiration;
pub use prepivot::SAVED_IN_BOOT;

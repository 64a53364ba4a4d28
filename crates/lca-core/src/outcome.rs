//! What a stage's work reports on each reconcile, and the conditions that follow from it
//! (spec §3.1). The operator runs the work; this module alone decides the status strings.

use std::time::Duration;

use lca_api::consts::{condition_types as ct, messages as m, reasons as r};
use lca_api::{Condition, Stage, Time};

use crate::conditions::{self, FALSE, TRUE, Write};
use crate::transition::reset_to_idle;

/// Progress of Prep, Upgrade or Rollback after one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// Still running; `message` replaces the in-progress message when given.
    InProgress {
        message: Option<String>,
        requeue: Duration,
    },
    /// Done; `message` overrides the completed-condition message (Prep's warning variant).
    Completed { message: Option<String> },
    /// Failed with a user-facing reason.
    Failed { message: String },
}

/// A stage phase starting or finishing during a step (recorded in `status.history`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhaseEvent {
    Start(&'static str),
    Complete(&'static str),
}

/// What one step of a stage's work reports: its outcome and the phase changes it made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepReport {
    pub outcome: StepOutcome,
    pub phases: Vec<PhaseEvent>,
}

impl From<StepOutcome> for StepReport {
    fn from(outcome: StepOutcome) -> Self {
        Self {
            outcome,
            phases: Vec::new(),
        }
    }
}

/// Result of abort or finalize work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdleOutcome {
    /// Health not ready yet (finalize only): wait and retry.
    Waiting { error: String },
    /// Cleanup finished: start a new cycle.
    Done,
    /// Cleanup failed with these errors; needs manual cleanup.
    Failed { errors: Vec<String> },
}

/// Conditions for a step outcome of `stage` (not Idle).
pub fn apply_step(
    conds: &mut Vec<Condition>,
    stage: Stage,
    outcome: &StepOutcome,
    generation: i64,
    now: &Time,
) {
    let (ip, done, ok_ip_msg, ok_done_msg, failed_done_msg) = match stage {
        Stage::Prep => (
            ct::PREP_IN_PROGRESS,
            ct::PREP_COMPLETED,
            m::PREP_COMPLETED,
            m::PREP_STAGE_COMPLETED,
            m::PREP_FAILED,
        ),
        Stage::Upgrade => (
            ct::UPGRADE_IN_PROGRESS,
            ct::UPGRADE_COMPLETED,
            m::UPGRADE_COMPLETED,
            m::UPGRADE_COMPLETED,
            m::UPGRADE_FAILED,
        ),
        Stage::Rollback => (
            ct::ROLLBACK_IN_PROGRESS,
            ct::ROLLBACK_COMPLETED,
            m::ROLLBACK_COMPLETED,
            m::ROLLBACK_COMPLETED,
            m::ROLLBACK_FAILED,
        ),
        Stage::Idle => return,
    };
    let mut set = |w: Write<'_>| conditions::set(conds, w, generation, now);
    match outcome {
        StepOutcome::InProgress { message, .. } => {
            if let Some(msg) = message {
                set(Write::new(ip, TRUE, r::IN_PROGRESS, msg));
            }
        }
        StepOutcome::Completed { message } => {
            set(Write::new(ip, FALSE, r::COMPLETED, ok_ip_msg));
            set(Write::new(
                done,
                TRUE,
                r::COMPLETED,
                message.as_deref().unwrap_or(ok_done_msg),
            ));
        }
        StepOutcome::Failed { message } => {
            set(Write::new(ip, FALSE, r::FAILED, message));
            // The hub reads only the *Completed message (talm-contract §3.4): it carries the
            // reason after upstream's text, so a match on upstream's start still holds.
            let done_msg = format!("{failed_done_msg}: {message}");
            set(Write::new(done, FALSE, r::FAILED, &done_msg));
        }
    }
}

/// Conditions for an abort (`finalize == false`) or finalize outcome.
pub fn apply_idle(
    conds: &mut Vec<Condition>,
    finalize: bool,
    outcome: &IdleOutcome,
    generation: i64,
    now: &Time,
) {
    match outcome {
        IdleOutcome::Waiting { error } => {
            let msg =
                format!("Waiting for system to stabilize before finalize (idle) stage can continue: {error}");
            conditions::set(
                conds,
                Write::new(ct::IDLE, FALSE, r::FINALIZING, &msg),
                generation,
                now,
            );
        }
        IdleOutcome::Done => reset_to_idle(conds, generation, now),
        IdleOutcome::Failed { errors } => {
            let reason = if finalize {
                r::FINALIZE_FAILED
            } else {
                r::ABORT_FAILED
            };
            let mut msg: String = errors.iter().map(|e| format!("{e} ")).collect();
            msg.push_str(m::MANUAL_CLEANUP_SUFFIX);
            conditions::set(conds, Write::new(ct::IDLE, FALSE, reason, &msg), generation, now);
        }
    }
}

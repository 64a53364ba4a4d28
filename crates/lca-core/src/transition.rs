//! Accepting or rejecting a requested stage (spec §2.4, §2.5). The API server's CEL gate is
//! the first line of defence; this is the second, for requests that got past a stale
//! `validNextStages`. Either outcome is written as conditions, never half-applied.

use lca_api::consts::{condition_types as ct, messages as m, reasons as r};
use lca_api::{Condition, Stage, Time};

use crate::conditions::{self, FALSE, TRUE, Write, find};
use crate::stage::{in_progress_type, is_failed, is_in_progress, valid_next_stages};

/// What an accepted Idle request turned into.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdleKind {
    /// Clean up after a completed upgrade or rollback.
    Finalize,
    /// Undo a Prep (or an Upgrade before the pivot).
    Abort,
    /// First reconcile of a fresh CR.
    Initial,
}

/// The outcome of [`apply_transition`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Accepted { stage: Stage, idle: Option<IdleKind> },
    Rejected { stage: Stage, message: &'static str },
}

/// The message of a rejected request for `stage` (§2.5).
pub fn rejection_message(conds: &[Condition], stage: Stage, after_pivot: bool) -> &'static str {
    match stage {
        Stage::Prep | Stage::Upgrade => m::PREVIOUS_STAGE_NOT_SUCCEEDED,
        Stage::Rollback => m::UPGRADE_NOT_STARTED_OR_FINALIZED,
        Stage::Idle if is_failed(conds, Stage::Rollback) => m::IDLE_NOT_ALLOWED_ROLLBACK_FAILED,
        Stage::Idle if after_pivot && is_in_progress(conds, Stage::Rollback) => {
            m::IDLE_NOT_ALLOWED_ROLLBACK_IN_PROGRESS
        }
        Stage::Idle if after_pivot => m::IDLE_NOT_ALLOWED_ROLLBACK_FIRST,
        Stage::Idle => m::ABORT_OR_FINALIZE_NOT_ALLOWED,
    }
}

/// Accept or reject a request for `stage` and write the resulting conditions.
pub fn apply_transition(
    conds: &mut Vec<Condition>,
    stage: Stage,
    after_pivot: bool,
    generation: i64,
    now: &Time,
) -> Outcome {
    let allowed = valid_next_stages(conds, Some(stage), after_pivot).contains(&stage);
    if !allowed {
        let message = rejection_message(conds, stage, after_pivot);
        let w = Write::new(in_progress_type(stage), FALSE, r::INVALID_TRANSITION, message);
        conditions::set(conds, w, generation, now);
        return Outcome::Rejected { stage, message };
    }
    clear_invalid_transitions(conds, generation, now);
    let mut set = |w: Write<'_>| conditions::set(conds, w, generation, now);
    let idle = match stage {
        Stage::Prep => {
            set(Write::new(ct::IDLE, FALSE, r::IN_PROGRESS, m::IN_PROGRESS));
            set(Write::new(
                ct::PREP_IN_PROGRESS,
                TRUE,
                r::IN_PROGRESS,
                m::IN_PROGRESS,
            ));
            None
        }
        Stage::Upgrade => {
            set(Write::new(
                ct::UPGRADE_IN_PROGRESS,
                TRUE,
                r::IN_PROGRESS,
                m::IN_PROGRESS,
            ));
            None
        }
        Stage::Rollback => {
            set(Write::new(
                ct::UPGRADE_COMPLETED,
                FALSE,
                r::FAILED,
                m::ROLLBACK_REQUESTED,
            ));
            set(Write::new(
                ct::UPGRADE_IN_PROGRESS,
                FALSE,
                r::FAILED,
                m::ROLLBACK_REQUESTED,
            ));
            set(Write::new(
                ct::ROLLBACK_IN_PROGRESS,
                TRUE,
                r::IN_PROGRESS,
                m::IN_PROGRESS,
            ));
            None
        }
        Stage::Idle => Some(idle_kind(conds, after_pivot).map_or(IdleKind::Initial, |kind| {
            match kind {
                IdleKind::Finalize => conditions::set(
                    conds,
                    Write::new(ct::IDLE, FALSE, r::FINALIZING, m::FINALIZING),
                    generation,
                    now,
                ),
                IdleKind::Abort => conditions::set(
                    conds,
                    Write::new(ct::IDLE, FALSE, r::ABORTING, m::ABORTING),
                    generation,
                    now,
                ),
                IdleKind::Initial => reset_to_idle(conds, generation, now),
            }
            kind
        })),
    };
    Outcome::Accepted { stage, idle }
}

/// Which kind of Idle request this is; `None` when none applies (nothing is written).
fn idle_kind(conds: &[Condition], after_pivot: bool) -> Option<IdleKind> {
    let completed = |t| conditions::has_status(conds, t, TRUE);
    if completed(ct::UPGRADE_COMPLETED) || completed(ct::ROLLBACK_COMPLETED) {
        return Some(IdleKind::Finalize);
    }
    let rollback_untouched =
        find(conds, ct::ROLLBACK_IN_PROGRESS).is_none_or(|c| c.reason == r::INVALID_TRANSITION);
    if conditions::has_status(conds, ct::IDLE, FALSE) && !after_pivot && rollback_untouched {
        return Some(IdleKind::Abort);
    }
    find(conds, ct::IDLE).is_none().then_some(IdleKind::Initial)
}

/// Drop every condition left by an earlier rejected request.
fn clear_invalid_transitions(conds: &mut Vec<Condition>, generation: i64, now: &Time) {
    let invalid: Vec<String> = conds
        .iter()
        .filter(|c| c.reason == r::INVALID_TRANSITION)
        .map(|c| c.type_.clone())
        .collect();
    for t in invalid {
        if t == ct::IDLE {
            conditions::set(
                conds,
                Write::new(ct::IDLE, FALSE, r::IN_PROGRESS, m::IN_PROGRESS),
                generation,
                now,
            );
        } else {
            conditions::remove(conds, &t);
        }
    }
}

/// Start a new cycle: every condition goes, `Idle` True is the only one left.
pub fn reset_to_idle(conds: &mut Vec<Condition>, generation: i64, now: &Time) {
    conds.clear();
    conditions::set(
        conds,
        Write::new(ct::IDLE, TRUE, r::IDLE, m::IDLE),
        generation,
        now,
    );
}

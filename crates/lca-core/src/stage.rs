//! The stage predicates and `validNextStages` (spec §2.1, §2.3). The stage is derived from the
//! conditions alone; there is no separate phase field, so what users and the hub read is
//! exactly what the operator decides from.

use lca_api::Condition;
use lca_api::Stage;
use lca_api::consts::{condition_types as ct, reasons as r};

use crate::conditions::{FALSE, TRUE, find, has_status};

/// The "in progress" condition type of a stage (`Idle` for Idle).
pub fn in_progress_type(stage: Stage) -> &'static str {
    match stage {
        Stage::Idle => ct::IDLE,
        Stage::Prep => ct::PREP_IN_PROGRESS,
        Stage::Upgrade => ct::UPGRADE_IN_PROGRESS,
        Stage::Rollback => ct::ROLLBACK_IN_PROGRESS,
    }
}

/// The "completed" condition type of a stage (`Idle` for Idle).
pub fn completed_type(stage: Stage) -> &'static str {
    match stage {
        Stage::Idle => ct::IDLE,
        Stage::Prep => ct::PREP_COMPLETED,
        Stage::Upgrade => ct::UPGRADE_COMPLETED,
        Stage::Rollback => ct::ROLLBACK_COMPLETED,
    }
}

/// The stage finished successfully.
pub fn is_completed(conds: &[Condition], stage: Stage) -> bool {
    has_status(conds, completed_type(stage), TRUE)
}

/// The stage finished and failed.
pub fn is_failed(conds: &[Condition], stage: Stage) -> bool {
    has_status(conds, completed_type(stage), FALSE)
}

/// The stage finished, either way.
pub fn is_completed_or_failed(conds: &[Condition], stage: Stage) -> bool {
    find(conds, completed_type(stage)).is_some()
}

/// Idle's reasons that mean abort or finalize work is under way.
pub const IDLE_IN_PROGRESS_REASONS: [&str; 4] =
    [r::ABORTING, r::ABORT_FAILED, r::FINALIZING, r::FINALIZE_FAILED];

/// The stage's work is under way. For Idle that means abort or finalize (including their
/// failed states, which wait for manual cleanup); `InProgress`, `InvalidTransition` and
/// `Blocked` on Idle do not count.
pub fn is_in_progress(conds: &[Condition], stage: Stage) -> bool {
    match stage {
        Stage::Idle => find(conds, ct::IDLE)
            .is_some_and(|c| c.status == FALSE && IDLE_IN_PROGRESS_REASONS.contains(&c.reason.as_str())),
        other => has_status(conds, in_progress_type(other), TRUE),
    }
}

/// The first stage (Idle, Prep, Upgrade, Rollback) whose work is under way.
pub fn in_progress_stage(conds: &[Condition]) -> Option<Stage> {
    Stage::ALL.into_iter().find(|s| is_in_progress(conds, *s))
}

/// The stages `spec.stage` may move to next; the first matching rule of §2.3 wins.
pub fn valid_next_stages(conds: &[Condition], spec_stage: Option<Stage>, after_pivot: bool) -> Vec<Stage> {
    let ips = in_progress_stage(conds);
    if ips == Some(Stage::Idle) || is_in_progress(conds, Stage::Rollback) || is_failed(conds, Stage::Rollback)
    {
        return vec![];
    }
    if ips == Some(Stage::Prep) || is_failed(conds, Stage::Prep) {
        return vec![Stage::Idle];
    }
    if ips == Some(Stage::Upgrade) || is_failed(conds, Stage::Upgrade) {
        return if after_pivot {
            vec![Stage::Rollback]
        } else {
            vec![Stage::Idle]
        };
    }
    if is_completed(conds, Stage::Rollback) {
        return vec![Stage::Idle];
    }
    if is_completed(conds, Stage::Upgrade) {
        return vec![Stage::Idle, Stage::Rollback];
    }
    if is_completed(conds, Stage::Prep) {
        return vec![Stage::Idle, Stage::Upgrade];
    }
    match find(conds, ct::IDLE) {
        Some(c) if c.status == TRUE => vec![Stage::Prep],
        None => vec![Stage::Idle],
        Some(c) if c.reason == r::BLOCKED => spec_stage.into_iter().collect(),
        Some(_) => vec![],
    }
}

/// `spec.stage` asks for work that has not started (§2.2): for Idle, neither done nor under
/// way; for other stages, no completed-type condition yet and not under way. A failed Prep
/// is therefore not retried by leaving `spec.stage` at Prep.
pub fn is_transition_requested(conds: &[Condition], stage: Stage) -> bool {
    match stage {
        Stage::Idle => !is_completed(conds, Stage::Idle) && !is_in_progress(conds, Stage::Idle),
        other => find(conds, completed_type(other)).is_none() && !is_in_progress(conds, other),
    }
}

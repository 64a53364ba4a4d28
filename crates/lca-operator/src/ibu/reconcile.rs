//! One reconcile of the ImageBasedUpgrade (spec §2.2): observe the CR (uncached) and the
//! node, let `lca-core` decide the transition and the conditions, run at most one step of
//! the in-progress stage's work, then write the status once.

use std::sync::Arc;
use std::time::Duration;

use kube::api::Api;
use kube::runtime::controller::Action;
use kube::runtime::events::EventType;
use kube::{Resource, ResourceExt};
use lca_api::consts::{annotations, condition_types as ct, names, reasons as r};
use lca_api::{ImageBasedUpgrade, ImageBasedUpgradeStatus, Stage, Time};
use lca_core::stage::{completed_type, in_progress_type};
use lca_core::{IdleOutcome, Outcome, PhaseEvent, StepOutcome, conditions, history, outcome};
use tracing::{error, info};

use super::init::init_ibu;
use crate::context::Context;
use crate::error::{Error, Result};

/// Requeue intervals of the reference (§2.7).
pub const REQUEUE_HEALTH_CHECK: Duration = Duration::from_secs(20);
pub const REQUEUE_LONG: Duration = Duration::from_secs(300);

/// An event to publish after the status write.
struct Note {
    type_: EventType,
    reason: &'static str,
    note: String,
}

pub async fn reconcile(obj: Arc<ImageBasedUpgrade>, ctx: Arc<Context>) -> Result<Action> {
    let _serial = ctx.lock.lock().await;
    if obj.name_any() != names::IBU {
        error!(name = %obj.name_any(), "ignoring an ImageBasedUpgrade not named {}", names::IBU);
        return Ok(Action::await_change());
    }
    let api: Api<ImageBasedUpgrade> = Api::all(ctx.client.clone());
    let Some(mut ibu) = api
        .get_opt(names::IBU)
        .await
        .map_err(Error::kube("reading the ImageBasedUpgrade"))?
    else {
        init_ibu(&ctx).await?;
        return Ok(Action::await_change());
    };
    let after_pivot = ctx.work.after_pivot(&ibu).await;
    let generation = ibu.metadata.generation.unwrap_or_default();
    let now = Time(lca_api::jiff::Timestamp::now());
    let mut status = ibu.status.clone().unwrap_or_default();
    let mut notes = Vec::new();
    let mut accepted = false;

    if let Some(stage) = ibu.spec.stage
        && lca_core::is_transition_requested(&status.conditions, stage)
    {
        match lca_core::apply_transition(&mut status.conditions, stage, after_pivot, generation, &now) {
            Outcome::Accepted { stage, idle } => {
                accepted = true;
                crate::metrics::METRICS.stage_transition();
                let what = idle.map(|k| format!(" ({k:?})")).unwrap_or_default();
                info!(%stage, "stage transition accepted{what}");
                notes.push(Note {
                    type_: EventType::Normal,
                    reason: "StageTransition",
                    note: format!("{stage}{what} accepted"),
                });
            }
            Outcome::Rejected { stage, message } => {
                info!(%stage, message, "stage transition rejected");
                notes.push(Note {
                    type_: EventType::Warning,
                    reason: r::INVALID_TRANSITION,
                    note: format!("{stage}: {message}"),
                });
            }
        }
    }

    if accepted {
        // The user (and the CEL rule, which reads validNextStages) sees the accepted stage
        // at once, before any slow work of the step: an abort is possible from here on.
        status.valid_next_stages =
            lca_core::valid_next_stages(&status.conditions, ibu.spec.stage, after_pivot);
        ibu.status = Some(write_status(&api, &ibu, status.clone(), generation).await?);
    }

    let mut requeue = None;
    if let Some(stage) = lca_core::in_progress_stage(&status.conditions) {
        requeue = handle_stage(
            &ctx,
            &api,
            &mut ibu,
            stage,
            after_pivot,
            &mut status,
            generation,
            &now,
            &mut notes,
        )
        .await?;
    }

    status.valid_next_stages = lca_core::valid_next_stages(&status.conditions, ibu.spec.stage, after_pivot);
    write_status(&api, &ibu, status, generation).await?;
    publish(&ctx, &ibu, notes).await;
    Ok(requeue.map_or_else(Action::await_change, Action::requeue))
}

/// Run one step of the in-progress stage and record its outcome (`handleStage`).
#[allow(clippy::too_many_arguments)]
async fn handle_stage(
    ctx: &Context,
    api: &Api<ImageBasedUpgrade>,
    ibu: &mut ImageBasedUpgrade,
    stage: Stage,
    after_pivot: bool,
    status: &mut ImageBasedUpgradeStatus,
    generation: i64,
    now: &Time,
    notes: &mut Vec<Note>,
) -> Result<Option<Duration>> {
    if ibu.spec.stage == Some(Stage::Idle) {
        status.history.clear();
    } else if stage != Stage::Idle {
        history::start_stage(&mut status.history, stage, now);
    }
    if stage == Stage::Idle {
        return handle_idle(ctx, api, ibu, status, generation, now, notes).await;
    }
    let ibu = &*ibu;
    let report = match stage {
        Stage::Prep => ctx.work.prep(ibu).await,
        Stage::Upgrade => {
            if after_pivot && status.rollback_availability_expiration.is_none() {
                status.rollback_availability_expiration = ctx.work.rollback_expiration(ibu).await;
            }
            ctx.work.upgrade(ibu, after_pivot).await
        }
        _ => {
            // Cleared when the rollback starts (§3.4): past this point it means nothing.
            status.rollback_availability_expiration = None;
            ctx.work.rollback(ibu, after_pivot).await
        }
    };
    for event in &report.phases {
        match event {
            PhaseEvent::Start(p) => history::start_phase(&mut status.history, stage, p, now),
            PhaseEvent::Complete(p) => history::complete_phase(&mut status.history, stage, p, now),
        }
    }
    let step = report.outcome;
    outcome::apply_step(&mut status.conditions, stage, &step, generation, now);
    Ok(match step {
        StepOutcome::InProgress { requeue, .. } => Some(requeue),
        StepOutcome::Completed { .. } => {
            history::complete_stage(&mut status.history, stage, now);
            notes.push(Note {
                type_: EventType::Normal,
                reason: "StageCompleted",
                note: format!("{stage} completed"),
            });
            None
        }
        StepOutcome::Failed { message } => {
            tracing::warn!(%stage, %message, "stage failed");
            notes.push(Note {
                type_: EventType::Warning,
                reason: "StageFailed",
                note: format!("{stage} failed: {message}"),
            });
            // Prep and Upgrade failures wait for the user; a failed rollback is terminal.
            None
        }
    })
}

/// Abort or finalize, including the retry after manual cleanup (spec §2.6).
#[allow(clippy::too_many_arguments)]
async fn handle_idle(
    ctx: &Context,
    api: &Api<ImageBasedUpgrade>,
    ibu: &mut ImageBasedUpgrade,
    status: &mut ImageBasedUpgradeStatus,
    generation: i64,
    now: &Time,
    notes: &mut Vec<Note>,
) -> Result<Option<Duration>> {
    let reason = conditions::find(&status.conditions, ct::IDLE)
        .map(|c| c.reason.clone())
        .unwrap_or_default();
    let finalize = matches!(reason.as_str(), r::FINALIZING | r::FINALIZE_FAILED);
    if reason == r::ABORT_FAILED || reason == r::FINALIZE_FAILED {
        if !ibu.annotations().contains_key(annotations::MANUAL_CLEANUP_DONE) {
            return Ok(Some(REQUEUE_LONG));
        }
        let patch =
            serde_json::json!({"metadata": {"annotations": {annotations::MANUAL_CLEANUP_DONE: null}}});
        // The status write below must go against the object this patch produced.
        *ibu = crate::kubeapi::merge_patch(api, names::IBU, &patch)
            .await
            .map_err(Error::kube("removing the manual-cleanup-done annotation"))?;
        info!(
            "manual cleanup reported; retrying {}",
            if finalize { "finalize" } else { "abort" }
        );
    }
    let result = ctx.work.idle(ibu, finalize).await;
    outcome::apply_idle(&mut status.conditions, finalize, &result, generation, now);
    let kind = if finalize { "Finalize" } else { "Abort" };
    Ok(match result {
        IdleOutcome::Waiting { .. } => Some(REQUEUE_HEALTH_CHECK),
        IdleOutcome::Done => {
            status.rollback_availability_expiration = None;
            status.history.clear();
            notes.push(Note {
                type_: EventType::Normal,
                reason: "Idle",
                note: format!("{kind} completed"),
            });
            None
        }
        IdleOutcome::Failed { errors } => {
            notes.push(Note {
                type_: EventType::Warning,
                reason: "CleanupFailed",
                note: format!("{kind} failed: {}", errors.join("; ")),
            });
            Some(REQUEUE_LONG)
        }
    })
}

/// Write the status through the status subresource when it changed (`UpdateIBUStatus`).
async fn write_status(
    api: &Api<ImageBasedUpgrade>,
    ibu: &ImageBasedUpgrade,
    mut status: ImageBasedUpgradeStatus,
    generation: i64,
) -> Result<ImageBasedUpgradeStatus> {
    status.observed_generation = generation;
    if let Some(stage) = ibu.spec.stage {
        for t in [in_progress_type(stage), completed_type(stage)] {
            if let Some(c) = status.conditions.iter_mut().find(|c| c.type_ == t) {
                c.observed_generation = Some(generation);
            }
        }
    }
    if ibu.status.as_ref() == Some(&status) {
        return Ok(status);
    }
    // A merge patch of the whole status, with explicit nulls for fields now unset: it
    // replaces our status without a resourceVersion precondition, so metadata changes made
    // during this reconcile (annotations) cannot make the write conflict.
    let mut value = serde_json::to_value(&status).map_err(|e| Error::Invalid {
        what: "status",
        message: e.to_string(),
    })?;
    if let Some(map) = value.as_object_mut() {
        for key in STATUS_FIELDS {
            map.entry(key).or_insert(serde_json::Value::Null);
        }
    }
    crate::kubeapi::patch_status(api, names::IBU, &value)
        .await
        .map_err(Error::kube("writing the ImageBasedUpgrade status"))?;
    crate::metrics::METRICS.observe_history(&status.history);
    Ok(status)
}

/// Every field of `ImageBasedUpgradeStatus`, as serialized.
const STATUS_FIELDS: [&str; 7] = [
    "observedGeneration",
    "startedAt",
    "completedAt",
    "conditions",
    "validNextStages",
    "rollbackAvailabilityExpiration",
    "history",
];

async fn publish(ctx: &Context, ibu: &ImageBasedUpgrade, notes: Vec<Note>) {
    let reference = ibu.object_ref(&());
    for n in notes {
        ctx.publish(&reference, n.type_, n.reason, n.note).await;
    }
}

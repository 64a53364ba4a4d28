//! SeedGenerator status: the reconciler phase derived from the conditions (spec §8.1) and
//! the three condition writes of the reference (in progress, failed, completed), applied with
//! `lca-core`'s ordering rules and written through the status subresource.

use kube::api::Api;
use lca_api::consts::{condition_types as ct, messages, names, reasons};
use lca_api::{Condition, SeedGenerator, Time};
use lca_core::conditions::{self, FALSE, TRUE, Write};

use crate::error::{Error, Result};
use crate::ibu::init::post_params;

/// Where a SeedGenerator stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Prerequisite checks not run yet.
    Initial,
    /// Checks passed: health, cleanup, then the imager launch.
    Generating,
    /// The imager ran; check its result.
    Finalizing,
    Completed,
    /// Terminal: the CR must be deleted and re-created.
    Failed,
}

/// The phase of a SeedGenerator with `conds` (`getPhase`).
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
        Some(c) if c.status == TRUE && c.message == messages::SEEDGEN_LAUNCHING_IMAGER => Phase::Finalizing,
        Some(c) if c.status == TRUE && c.message.is_empty() => Phase::Initial,
        _ => Phase::Generating,
    }
}

/// The CR being reconciled and its status writer.
pub struct Writer {
    api: Api<SeedGenerator>,
    pub cr: SeedGenerator,
}

impl Writer {
    pub fn new(api: Api<SeedGenerator>, cr: SeedGenerator) -> Self {
        Self { api, cr }
    }

    pub fn conditions(&self) -> &[Condition] {
        self.cr
            .status
            .as_ref()
            .map(|s| s.conditions.as_slice())
            .unwrap_or_default()
    }

    fn set(&mut self, type_: &str, status: &str, reason: &str, message: &str) {
        let generation = self.cr.metadata.generation.unwrap_or_default();
        let now = Time(lca_api::jiff::Timestamp::now());
        let st = self.cr.status.get_or_insert_with(Default::default);
        conditions::set(
            &mut st.conditions,
            Write::new(type_, status, reason, message),
            generation,
            &now,
        );
        st.observed_generation = generation;
    }

    /// SeedGenInProgress True `InProgress` `msg`.
    pub fn in_progress(&mut self, msg: &str) {
        self.set(ct::SEEDGEN_IN_PROGRESS, TRUE, reasons::IN_PROGRESS, msg);
    }

    /// SeedGenCompleted False `Failed` `Seed generation failed: msg`, then SeedGenInProgress
    /// False `Failed` `msg`.
    pub fn failed(&mut self, msg: &str) {
        let completed = format!("{}: {msg}", messages::SEEDGEN_FAILED);
        self.set(ct::SEEDGEN_COMPLETED, FALSE, reasons::FAILED, &completed);
        self.set(ct::SEEDGEN_IN_PROGRESS, FALSE, reasons::FAILED, msg);
    }

    /// Both conditions `Completed` with `Seed Generation completed`.
    pub fn completed(&mut self) {
        let msg = messages::SEEDGEN_COMPLETED;
        self.set(ct::SEEDGEN_IN_PROGRESS, FALSE, reasons::COMPLETED, msg);
        self.set(ct::SEEDGEN_COMPLETED, TRUE, reasons::COMPLETED, msg);
    }

    /// Write the status; the object keeps the new resourceVersion for the next write.
    pub async fn save(&mut self) -> Result<()> {
        self.cr = self
            .api
            .replace_status(names::SEEDGEN, &post_params(), &self.cr)
            .await
            .map_err(Error::kube("writing the SeedGenerator status"))?;
        Ok(())
    }

    /// `in_progress(msg)` and write it, so a user sees each step as it starts.
    pub async fn progress(&mut self, msg: &str) -> Result<()> {
        tracing::info!(step = msg, "seed generation");
        self.in_progress(msg);
        self.save().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(type_: &str, status: &str, reason: &str, message: &str) -> Condition {
        Condition {
            type_: type_.into(),
            status: status.into(),
            reason: reason.into(),
            message: message.into(),
            observed_generation: None,
            last_transition_time: Time(lca_api::jiff::Timestamp::UNIX_EPOCH),
        }
    }

    #[test]
    fn phases_follow_the_reference() {
        let ip = |s: &str, r: &str, m: &str| cond(ct::SEEDGEN_IN_PROGRESS, s, r, m);
        let done = |s: &str, r: &str| cond(ct::SEEDGEN_COMPLETED, s, r, "");
        let rows: Vec<(Vec<Condition>, Phase)> = vec![
            (vec![], Phase::Initial),
            (vec![ip("True", "InProgress", "")], Phase::Initial),
            (
                vec![ip("True", "InProgress", "Waiting for system to stabilize")],
                Phase::Generating,
            ),
            (
                vec![ip("True", "InProgress", "Launching imager container")],
                Phase::Finalizing,
            ),
            (
                vec![ip("True", "InProgress", "Finalizing seed generation")],
                Phase::Generating,
            ),
            (
                vec![done("False", "Failed"), ip("False", "Failed", "x")],
                Phase::Failed,
            ),
            (
                vec![ip("False", "Completed", "x"), done("True", "Completed")],
                Phase::Completed,
            ),
        ];
        for (conds, want) in rows {
            assert_eq!(phase(&conds), want, "{conds:?}");
        }
    }
}

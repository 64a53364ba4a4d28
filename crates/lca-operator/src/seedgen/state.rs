//! SeedGenerator status: the three condition writes of the reference (in progress, failed,
//! completed), applied with `lca-core`'s ordering rules and written as a merge patch of the
//! status subresource (`kubeapi::patch_status`). The phase is `lca_core::seedgen_plan::phase`.

use kube::api::Api;
use lca_api::consts::{condition_types as ct, messages, names, reasons};
use lca_api::{Condition, SeedGenerator, Time};
use lca_core::conditions::{self, FALSE, TRUE, Write};

use crate::error::{Error, Result};
use crate::kubeapi;

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
        let status = self.cr.status.clone().unwrap_or_default();
        self.cr = kubeapi::patch_status(&self.api, names::SEEDGEN, &status)
            .await
            .map_err(Error::kube("writing the SeedGenerator status"))?;
        let phase = lca_core::seedgen_plan::phase(self.conditions());
        crate::metrics::METRICS.set_seedgen_phase(&format!("{phase:?}"));
        Ok(())
    }

    /// `in_progress(msg)` and write it, so a user sees each step as it starts.
    pub async fn progress(&mut self, msg: &str) -> Result<()> {
        tracing::info!(step = msg, "seed generation");
        self.in_progress(msg);
        self.save().await
    }
}

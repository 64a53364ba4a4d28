//! One Prep step (spec §5.1), re-entrant: gather what the node and the cluster say into
//! `PrepFacts`, let `lca_core::prep_plan` pick the one next action, perform it. A restarted
//! operator picks up where the tasks are; an interrupted task (killed, node rebooted) is
//! resumed, since every step of `lca-cli` is marked done on disk.

use lca_api::ImageBasedUpgrade;
use lca_api::consts::annotations;
use lca_api::files::PrecacheStatus;
use lca_core::prep_plan::{self, Blocker, PrepAction, PrepFacts};
use lca_core::{StepOutcome, StepReport, TaskDetail, TaskFacts, TaskKind, TaskState};
use lca_hostops::failpoint;
use tracing::{info, warn};

use super::NodeStageWork;
use super::seed::SeedCheckError;
use crate::error::Result;

const INSPECT_ATTEMPTS_FILE: &str = "seed-inspect.attempts";
/// Where `lca-cli stateroot-setup` reports its phase and step (`--status-file`).
pub(super) const STATEROOT_STATUS_FILE: &str = "stateroot-setup-status.json";

pub async fn step(w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> StepReport {
    let facts = match gather(w, ibu).await {
        Ok(f) => f,
        Err(e) => {
            warn!(error = %e, "cannot read the state of the node work");
            return prep_plan::retry_later();
        }
    };
    match prep_plan::next(&facts) {
        PrepAction::Report(report) => {
            if matches!(report.outcome, StepOutcome::Failed { .. }) {
                keep_booted_default(w).await;
            }
            log_report(w, &facts, &report);
            report
        }
        PrepAction::ForgetOtherRun { what } => {
            warn!(earlier = %what, "the workspace holds the node work of another Prep; removing it");
            let errors = super::cleanup::remove_node_work(w, lca_hostops::failpoint::names::PREP).await;
            if errors.is_empty() {
                prep_plan::forgot(&what)
            } else {
                warn!(errors = %errors.join("; "), "cannot remove the earlier Prep's node work");
                prep_plan::retry_later()
            }
        }
        PrepAction::StartStateroot => start_stateroot(w, ibu).await,
        PrepAction::StartPrecache => start_precache(w, ibu).await,
        PrepAction::Resume { task, attempt } => resume(w, ibu, task, attempt).await,
    }
}

/// A stateroot task killed between its deploy and `restore-default` (an ostree without
/// `--not-as-default` can only prepend) leaves the half-prepared stateroot as the default
/// boot entry; a failed Prep must not leave the node to boot it at its next reboot. Found by
/// the fault campaign. Idempotent: nothing happens while the booted deployment is first.
async fn keep_booted_default(w: &NodeStageWork) {
    let exec = w.exec.as_ref();
    let index = match lca_hostops::ostree::status(exec).await {
        Ok(status) => status.booted().map(|b| b.index),
        Err(e) => {
            warn!("cannot read the deployments after a failed Prep: {e}");
            return;
        }
    };
    if let Some(index) = index.filter(|i| *i != 0) {
        match lca_hostops::ostree::set_default(exec, index).await {
            Ok(how) => warn!(
                index,
                ?how,
                "the booted deployment is the default boot entry again"
            ),
            Err(e) => warn!("cannot make the booted deployment the default again: {e}"),
        }
    }
}

/// Everything the plan decides from. Nothing but the health check is read while unhealthy.
async fn gather(w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> Result<PrepFacts> {
    let mut facts = PrepFacts {
        unhealthy: None,
        other_run: None,
        stateroot: TaskFacts::new(TaskState::NotStarted),
        precache: TaskFacts::new(TaskState::NotStarted),
        precache_progress: String::new(),
        validation_warning: ibu
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(annotations::EXTRA_MANIFEST_VALIDATION_WARNING)),
        namespace: w.namespace.clone(),
    };
    if let Err(e) = crate::cluster_health::check_all(&w.client).await {
        facts.unhealthy = Some(e.to_string());
        return Ok(facts);
    }
    facts.stateroot = task_facts(w, TaskKind::StaterootSetup).await?;
    facts.precache = task_facts(w, TaskKind::Precache).await?;
    let have = RunKey::load(w)?;
    if have.as_ref() != Some(&RunKey::of(ibu)) {
        let started = [&facts.stateroot, &facts.precache]
            .iter()
            .any(|t| t.state != TaskState::NotStarted);
        if have.is_some() || started {
            facts.other_run = Some(have.map_or_else(
                || "an unknown seed".to_string(),
                |k| format!("{} {}", k.image, k.version),
            ));
        }
    }
    facts.precache_progress = precache_progress(w);
    Ok(facts)
}

async fn task_facts(w: &NodeStageWork, kind: TaskKind) -> Result<TaskFacts> {
    let state = w.task(kind).state().await?;
    let resumes = read_count(w, &format!("{}.resumes", kind.job_name()));
    let detail = match kind {
        TaskKind::StaterootSetup => stateroot_detail(w),
        // The precache status file holds counts, shown through `precache_progress`.
        TaskKind::Precache => None,
    };
    Ok(TaskFacts {
        state,
        resumes,
        detail,
    })
}

/// The phase and step `lca-cli stateroot-setup` last reported; an unreadable file only
/// means less detail in the message.
fn stateroot_detail(w: &NodeStageWork) -> Option<TaskDetail> {
    #[derive(serde::Deserialize)]
    struct Status {
        phase: String,
        step: String,
        message: String,
    }
    let path = w.workspace().join(STATEROOT_STATUS_FILE);
    let text = w.fs().read_string_optional(&path).ok()??;
    let s: Status = serde_json::from_str(&text).ok()?;
    Some(TaskDetail {
        failed: s.phase == "failed",
        step: s.step,
        message: s.message,
    })
}

fn log_report(w: &NodeStageWork, facts: &PrepFacts, report: &StepReport) {
    match &report.outcome {
        StepOutcome::Failed { message } => {
            for kind in TaskKind::ALL {
                if matches!(facts_of(facts, kind).state, TaskState::Failed { .. }) {
                    warn!(task = kind.job_name(), log = %w.task(kind).log_tail(20), "{message}");
                }
            }
        }
        StepOutcome::Completed { .. } => info!(progress = %facts.precache_progress, "Prep completed"),
        StepOutcome::InProgress { .. } => {}
    }
}

fn facts_of(facts: &PrepFacts, kind: TaskKind) -> &TaskFacts {
    match kind {
        TaskKind::StaterootSetup => &facts.stateroot,
        TaskKind::Precache => &facts.precache,
    }
}

/// Validate everything, clean up images, start stateroot setup.
async fn start_stateroot(w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> StepReport {
    // Independent checks at once; their failures are still reported in the spec's order.
    let mut warnings = Vec::new();
    let (target, spec) = futures::join!(
        super::validate::container_storage_target(w),
        super::validate::validate_spec(w, ibu, &mut warnings)
    );
    if !warnings.is_empty() {
        let recorded = super::extra_manifests::record_warnings(&w.client, &warnings).await;
        if let Err(e) = recorded.map_err(|e| e.context("failed to validate extramanifest cms")) {
            return prep_plan::blocked(Blocker::InvalidSpec(&e.to_string()));
        }
    }
    let target = match target {
        Ok(t) if !t.is_empty() => t,
        Ok(_) => return prep_plan::blocked(Blocker::NoStorageTarget(None)),
        Err(e) => return prep_plan::blocked(Blocker::NoStorageTarget(Some(&e.to_string()))),
    };
    if let Err(e) = spec {
        return prep_plan::blocked(Blocker::InvalidSpec(&e.to_string()));
    }
    let workspace = w.workspace();
    if let Err(e) = w
        .fs()
        .create_private_dir(&workspace)
        .and_then(|()| RunKey::of(ibu).save(w))
    {
        return prep_plan::blocked(Blocker::Workspace(&e.to_string()));
    }
    let attempts = workspace.join(INSPECT_ATTEMPTS_FILE);
    match super::seed::validate_seed(w, ibu, &target).await {
        Ok(_) => forget(w, &attempts),
        Err(SeedCheckError::Invalid(e)) => return prep_plan::blocked(Blocker::InvalidSeed(&e)),
        Err(SeedCheckError::Transient(error)) => {
            let failed_attempts = read_count(w, INSPECT_ATTEMPTS_FILE) + 1;
            if failed_attempts >= prep_plan::MAX_INSPECT_ATTEMPTS {
                forget(w, &attempts);
            } else if let Err(e) = w
                .fs()
                .write_atomic(&attempts, failed_attempts.to_string().as_bytes())
            {
                warn!("cannot record the seed inspection attempt: {e}");
            }
            warn!(attempt = failed_attempts, %error, "seed image inspection failed");
            return prep_plan::blocked(Blocker::SeedUnreachable {
                error: &error,
                failed_attempts,
            });
        }
    }
    let empty = Default::default();
    let ann = ibu.metadata.annotations.as_ref().unwrap_or(&empty);
    match lca_hostops::image_cleanup::run(w.exec.as_ref(), ann).await {
        Ok(report) => info!(?report, "image cleanup"),
        // The reference never fails Prep over cleanup.
        Err(e) => warn!("image cleanup failed: {e}"),
    }
    if let Err(e) = w.failpoint(failpoint::names::PREP, "Validated") {
        return prep_plan::blocked(Blocker::LaunchStateroot(&e.to_string()));
    }
    match w.launch(ibu, TaskKind::StaterootSetup).await {
        Ok(()) => prep_plan::started(TaskKind::StaterootSetup, &w.namespace),
        Err(e) => prep_plan::blocked(Blocker::LaunchStateroot(&e.to_string())),
    }
}

/// Back up the kubeconfig crypto, then start precache.
async fn start_precache(w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> StepReport {
    if let Err(e) = super::seed::backup_kubeconfig_crypto(w, ibu).await {
        return prep_plan::blocked(Blocker::CryptoBackup(&e.to_string()));
    }
    if let Err(e) = w.failpoint(failpoint::names::PREP, "CryptoBackup") {
        return prep_plan::blocked(Blocker::CryptoBackup(&e.to_string()));
    }
    // The registry credentials of the seed pull are not needed any more.
    forget(w, &super::seed::auth_file(w));
    match w.launch(ibu, TaskKind::Precache).await {
        Ok(()) => prep_plan::started(TaskKind::Precache, &w.namespace),
        Err(e) => prep_plan::blocked(Blocker::LaunchPrecache(&e.to_string())),
    }
}

/// Re-launch an interrupted task; its steps resume from their markers.
async fn resume(w: &NodeStageWork, ibu: &ImageBasedUpgrade, kind: TaskKind, attempt: u32) -> StepReport {
    let counter = w.workspace().join(format!("{}.resumes", kind.job_name()));
    if let Err(e) = w.fs().write_atomic(&counter, attempt.to_string().as_bytes()) {
        // Without the count the budget cannot be kept: try again rather than loop.
        warn!("cannot record the resume of {}: {e}", kind.job_name());
        return prep_plan::retry_later();
    }
    warn!(task = kind.job_name(), attempt, "task was interrupted; resuming");
    match w.launch(ibu, kind).await {
        Ok(()) => prep_plan::resumed(kind, &w.namespace),
        Err(e) => {
            let message = e.to_string();
            prep_plan::blocked(match kind {
                TaskKind::StaterootSetup => Blocker::LaunchStateroot(&message),
                TaskKind::Precache => Blocker::LaunchPrecache(&message),
            })
        }
    }
}

/// A counter file in the workspace; absent or unreadable counts as 0.
fn read_count(w: &NodeStageWork, name: &str) -> u32 {
    w.fs()
        .read_string_optional(&w.workspace().join(name))
        .ok()
        .flatten()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn forget(w: &NodeStageWork, path: &std::path::Path) {
    if let Err(e) = w.fs().remove_file(path) {
        warn!("cannot remove {}: {e}", path.display());
    }
}

fn precache_progress(w: &NodeStageWork) -> String {
    let path = w.exec.node().paths.host(lca_api::consts::paths::PRECACHE_STATUS);
    let Ok(Some(text)) = w.fs().read_string_optional(&path) else {
        return "No precache status file to read yet.".into();
    };
    match serde_json::from_str::<PrecacheStatus>(&text) {
        Ok(s) => {
            crate::metrics::METRICS.set_precache(s.total, s.pulled, s.failed);
            format!("total: {} (pulled: {}, failed: {})", s.total, s.pulled, s.failed)
        }
        Err(_) => "could not unmarshal precache status file".into(),
    }
}

/// What a Prep's node work was started for. Work in the workspace counts only for the same
/// seed and version: a leftover of another cycle (the operator was down while the IBU was
/// deleted and re-applied) must never read as this Prep's success.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(super) struct RunKey {
    pub image: String,
    pub version: String,
}

const RUN_KEY_FILE: &str = "prep-run.json";

impl RunKey {
    fn of(ibu: &ImageBasedUpgrade) -> Self {
        Self {
            image: ibu.spec.seed_image_ref.image.clone(),
            version: ibu.spec.seed_image_ref.version.clone(),
        }
    }

    /// The key in the workspace; a file that does not parse names no run.
    pub(super) fn load(w: &NodeStageWork) -> Result<Option<Self>> {
        let bytes = w.fs().read_optional(&w.workspace().join(RUN_KEY_FILE))?;
        Ok(bytes.and_then(|b| serde_json::from_slice(&b).ok()))
    }

    fn save(&self, w: &NodeStageWork) -> lca_hostops::Result<()> {
        let bytes = serde_json::to_vec(self).expect("two strings serialize");
        w.fs().write_atomic(&w.workspace().join(RUN_KEY_FILE), &bytes)
    }
}

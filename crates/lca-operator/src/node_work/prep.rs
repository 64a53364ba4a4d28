//! One Prep step (spec §5.1), re-entrant: each reconcile looks at where the node work stands
//! and moves it one step — validate and launch stateroot setup, wait for it, back up the
//! kubeconfig crypto, launch precache, wait for it, complete. A restarted operator picks up
//! where the tasks are; an interrupted task (killed, node rebooted) is resumed, since every
//! step of `lca-cli` is marked done on disk.

use std::time::Duration;

use lca_api::ImageBasedUpgrade;
use lca_api::consts::{annotations, messages, names};
use lca_api::files::PrecacheStatus;
use lca_core::{PhaseEvent, StepOutcome, StepReport};
use tracing::{info, warn};

use super::NodeStageWork;
use super::seed::SeedCheckError;
use crate::tasks::{Task, TaskState};

const POLL: Duration = Duration::from_secs(2);
const HEALTH_RETRY: Duration = Duration::from_secs(20);
/// Resumes of an interrupted task before Prep gives up.
const MAX_RESUMES: u32 = 3;
/// Attempts at inspecting the seed before a silent or failing registry fails Prep.
const MAX_INSPECT_ATTEMPTS: u32 = 5;
const INSPECT_ATTEMPTS_FILE: &str = "seed-inspect.attempts";
pub const STATEROOT: &str = "Stateroot";
pub const PRECACHE: &str = "Precache";

fn running(message: String, phases: Vec<PhaseEvent>) -> StepReport {
    StepReport {
        outcome: StepOutcome::InProgress {
            message: Some(message),
            requeue: POLL,
        },
        phases,
    }
}

/// A transient problem reading the work's state (API error): try again soon.
fn retry_later(error: String) -> StepReport {
    warn!(%error, "cannot read the state of the node work");
    StepReport {
        outcome: StepOutcome::InProgress {
            message: None,
            requeue: Duration::from_secs(10),
        },
        phases: vec![],
    }
}

fn failed(message: String) -> StepReport {
    StepOutcome::Failed { message }.into()
}

pub async fn step(w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> StepReport {
    if let Err(e) = crate::cluster_health::check_all(&w.client).await {
        return StepReport {
            outcome: StepOutcome::InProgress {
                message: Some(format!(
                    "Waiting for system to stabilize before Prep stage can continue: {e}"
                )),
                requeue: HEALTH_RETRY,
            },
            phases: vec![],
        };
    }
    match forget_other_runs(w, ibu).await {
        Ok(None) => {}
        Ok(Some(report)) => return report,
        Err(e) => return retry_later(e),
    }
    let ns = &w.namespace;
    let stateroot_task = w.task(names::STATEROOT_SETUP_JOB);
    let job = |name: &str| format!("job-name: {name}, job-namespace: {ns}");
    let state = match stateroot_task.state().await {
        Ok(s) => s,
        Err(e) => return retry_later(e),
    };
    match state {
        TaskState::NotStarted => return launch_stateroot(w, ibu, &stateroot_task).await,
        TaskState::Running => {
            return running(
                format!(
                    "Stateroot setup job in progress. {}",
                    job(names::STATEROOT_SETUP_JOB)
                ),
                vec![],
            );
        }
        TaskState::Interrupted => return resume(w, ibu, &stateroot_task, names::STATEROOT_SETUP_JOB).await,
        TaskState::Deleting => {
            return failed(format!(
                "stateroot job is marked to be deleted, this is not allowed. {}",
                job(names::STATEROOT_SETUP_JOB)
            ));
        }
        TaskState::Failed { code } => {
            warn!(code, log = %stateroot_task.log_tail(20), "stateroot setup failed");
            return failed(format!(
                "stateroot setup job failed to complete. {}",
                job(names::STATEROOT_SETUP_JOB)
            ));
        }
        TaskState::Succeeded => {}
    }
    let mut phases = Vec::new();
    let precache_task = w.task(names::PRECACHE_JOB);
    let precache_state = match precache_task.state().await {
        Ok(s) => s,
        Err(e) => return retry_later(e),
    };
    if precache_state == TaskState::NotStarted {
        phases.push(PhaseEvent::Complete(STATEROOT));
        if let Err(e) = super::seed::backup_kubeconfig_crypto(w, ibu).await {
            return failed(format!("failed to back up kubeconfig crypto: {e}"));
        }
        let _ = std::fs::remove_file(super::seed::auth_file(w));
        if let Err(e) = super::seed::launch_precache(w, ibu, &precache_task).await {
            return failed(e);
        }
        phases.push(PhaseEvent::Start(PRECACHE));
        return running(
            format!(
                "Successfully launched a new job precache. {}",
                job(names::PRECACHE_JOB)
            ),
            phases,
        );
    }
    match precache_state {
        TaskState::Running | TaskState::NotStarted => running(
            format!(
                "Precache job in progress. {}. {}",
                job(names::PRECACHE_JOB),
                progress(w)
            ),
            phases,
        ),
        TaskState::Interrupted => resume(w, ibu, &precache_task, names::PRECACHE_JOB).await,
        TaskState::Deleting => failed(format!(
            "precache job is marked to be deleted, this not allowed. {}",
            job(names::PRECACHE_JOB)
        )),
        TaskState::Failed { code } => {
            warn!(code, log = %precache_task.log_tail(20), "precache failed");
            failed(format!(
                "precache job failed to complete. {}",
                job(names::PRECACHE_JOB)
            ))
        }
        TaskState::Succeeded => {
            let progress = progress(w);
            info!(%progress, "Prep completed");
            let warned = ibu
                .metadata
                .annotations
                .as_ref()
                .is_some_and(|a| a.contains_key(annotations::EXTRA_MANIFEST_VALIDATION_WARNING));
            let message = warned.then(|| messages::PREP_STAGE_COMPLETED_WITH_WARNING.to_string());
            StepReport {
                outcome: StepOutcome::Completed { message },
                phases: vec![PhaseEvent::Complete(PRECACHE)],
            }
        }
    }
}

/// First pass: validate everything, clean up images, start stateroot setup.
async fn launch_stateroot(w: &NodeStageWork, ibu: &ImageBasedUpgrade, task: &Task) -> StepReport {
    let target = match super::validate::container_storage_target(w).await {
        Ok(t) if !t.is_empty() => t,
        Ok(_) => return failed("container storage mountpoint target not found".into()),
        Err(e) => return failed(format!("container storage mountpoint target not found: {e}")),
    };
    if let Err(e) = super::validate::validate_spec(w, ibu).await {
        return failed(format!("failed to validate IBU spec: {e}"));
    }
    let workspace = w.workspace();
    if let Err(e) = create_private_dir(&workspace) {
        return failed(format!("failed to initialize IBU workspace: {e}"));
    }
    if let Err(e) = RunKey::of(ibu).save(&workspace) {
        return failed(format!("failed to initialize IBU workspace: {e}"));
    }
    match super::seed::validate_seed(w, ibu, &target).await {
        Ok(_) => clear_attempts(&workspace),
        Err(SeedCheckError::Invalid(e)) => return failed(format!("failed to validate seed image info: {e}")),
        Err(SeedCheckError::Transient(e)) => return retry_inspect(&workspace, e),
    }
    let empty = Default::default();
    let ann = ibu.metadata.annotations.as_ref().unwrap_or(&empty);
    match lca_hostops::image_cleanup::run(w.exec.as_ref(), ann).await {
        Ok(report) => info!(?report, "image cleanup"),
        // The reference never fails Prep over cleanup.
        Err(e) => warn!("image cleanup failed: {e}"),
    }
    if let Err(e) = super::seed::launch_stateroot_setup(w, ibu, task).await {
        return failed(format!("failed to launch stateroot setup: {e}"));
    }
    running(
        format!(
            "Successfully launched a new job for stateroot setup. job-name: {}, job-namespace: {}",
            names::STATEROOT_SETUP_JOB,
            w.namespace
        ),
        vec![PhaseEvent::Start(STATEROOT)],
    )
}

/// A registry that does not answer is retried across reconciles (upstream retries `skopeo
/// inspect` ten times), so the lock is never held for long and an abort is served between
/// attempts; the count lives in the workspace, which an abort removes.
fn retry_inspect(workspace: &std::path::Path, error: String) -> StepReport {
    let file = workspace.join(INSPECT_ATTEMPTS_FILE);
    let done: u32 = std::fs::read_to_string(&file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
        + 1;
    if done >= MAX_INSPECT_ATTEMPTS {
        clear_attempts(workspace);
        return failed(format!(
            "failed to validate seed image info: {error} (after {done} attempts)"
        ));
    }
    if let Err(e) = std::fs::write(&file, done.to_string()) {
        warn!("cannot record the seed inspection attempt: {e}");
    }
    let delay = Duration::from_secs(1u64 << done.min(5));
    warn!(attempt = done, retry_in = ?delay, %error, "seed image inspection failed; retrying");
    StepReport {
        outcome: StepOutcome::InProgress {
            message: Some(format!(
                "Retrying the seed image inspection (attempt {done} of {MAX_INSPECT_ATTEMPTS} failed): {error}"
            )),
            requeue: delay,
        },
        phases: vec![],
    }
}

fn clear_attempts(workspace: &std::path::Path) {
    if let Err(e) = std::fs::remove_file(workspace.join(INSPECT_ATTEMPTS_FILE))
        && e.kind() != std::io::ErrorKind::NotFound
    {
        warn!("cannot reset the seed inspection attempts: {e}");
    }
}

/// Re-launch an interrupted task; its steps resume from their markers.
async fn resume(w: &NodeStageWork, ibu: &ImageBasedUpgrade, task: &Task, name: &str) -> StepReport {
    let counter = w.workspace().join(format!("{name}.resumes"));
    let n: u32 = std::fs::read_to_string(&counter)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let job = format!("job-name: {name}, job-namespace: {}", w.namespace);
    if n >= MAX_RESUMES {
        return failed(if name == names::PRECACHE_JOB {
            format!("precache job failed to complete. {job}")
        } else {
            format!("stateroot setup job failed to complete. {job}")
        });
    }
    let _ = std::fs::write(&counter, (n + 1).to_string());
    warn!(task = name, attempt = n + 1, "task was interrupted; resuming");
    let started = if name == names::PRECACHE_JOB {
        super::seed::launch_precache(w, ibu, task).await
    } else {
        super::seed::launch_stateroot_setup(w, ibu, task).await
    };
    match started {
        Ok(()) => running(format!("Resumed interrupted work. {job}"), vec![]),
        Err(e) => failed(e),
    }
}

fn progress(w: &NodeStageWork) -> String {
    let path = w.exec.node().paths.host(lca_api::consts::paths::PRECACHE_STATUS);
    let Ok(text) = std::fs::read_to_string(path) else {
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

    pub(super) fn load(workspace: &std::path::Path) -> Option<Self> {
        let bytes = std::fs::read(workspace.join(RUN_KEY_FILE)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    fn save(&self, workspace: &std::path::Path) -> std::io::Result<()> {
        let tmp = workspace.join(format!(".{RUN_KEY_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec(self).map_err(std::io::Error::other)?)?;
        std::fs::rename(tmp, workspace.join(RUN_KEY_FILE))
    }
}

/// Remove node work that belongs to another run than `ibu`'s; `Some` is the step's report
/// when something was removed (the next reconcile starts over on a clean node).
async fn forget_other_runs(w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> Result<Option<StepReport>, String> {
    let workspace = w.workspace();
    let have = RunKey::load(&workspace);
    if have.as_ref() == Some(&RunKey::of(ibu)) {
        return Ok(None);
    }
    let mut leftovers = have.is_some();
    for name in [names::STATEROOT_SETUP_JOB, names::PRECACHE_JOB] {
        leftovers |= w.task(name).state().await? != TaskState::NotStarted;
    }
    if !leftovers {
        return Ok(None);
    }
    let what = have.map_or_else(
        || "an unknown seed".to_string(),
        |k| format!("{} {}", k.image, k.version),
    );
    warn!(earlier = %what, "the workspace holds the node work of another Prep; removing it");
    let errors = super::cleanup::remove_node_work(w).await;
    if !errors.is_empty() {
        return Err(errors.join("; "));
    }
    Ok(Some(running(
        format!("Removed the node work of an earlier Prep ({what}); starting over"),
        vec![],
    )))
}

pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

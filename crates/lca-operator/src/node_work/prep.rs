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
use crate::tasks::{Task, TaskState};

const POLL: Duration = Duration::from_secs(2);
const HEALTH_RETRY: Duration = Duration::from_secs(20);
/// Resumes of an interrupted task before Prep gives up.
const MAX_RESUMES: u32 = 3;
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
    if let Err(e) = super::seed::validate_seed(w, ibu, &target).await {
        return failed(format!("failed to validate seed image info: {e}"));
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

pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

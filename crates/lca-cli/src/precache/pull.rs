//! The pull loop of `precache` (spec §5.5 workload): every image through a bounded
//! `podman pull` (`bounded`) with at most `parallel` pulls in flight, counters rewritten
//! to the status file after each image, and the final forgiveness pass.
//!
//! An image already in the storage counts as pulled without touching the network, which is
//! what makes a re-run after a crash cheap. Status writes happen under the counters' lock,
//! so the file never goes backwards even though pulls finish out of order.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use lca_api::files::PrecacheStatus;
use lca_hostops::Executor;
use lca_hostops::podman;
use tokio::sync::Semaphore;

use super::bounded::BoundedPull;
use crate::stateroot_setup::status::write_json_atomic;

/// Counters plus where they are published.
struct Progress {
    status: PrecacheStatus,
    path: PathBuf,
}

impl Progress {
    fn publish(&self) {
        if let Err(e) = write_json_atomic(&self.path, &self.status) {
            tracing::warn!(path = %self.path.display(), error = %e, "could not write the precache status");
        }
    }
}

/// Pull `images`; returns the final status (after forgiveness).
pub async fn pull_all(
    exec: Arc<dyn Executor>,
    images: Vec<String>,
    policy: BoundedPull,
    parallel: usize,
    status_path: PathBuf,
) -> PrecacheStatus {
    let progress = Arc::new(Mutex::new(Progress {
        status: PrecacheStatus {
            total: images.len() as u64,
            ..Default::default()
        },
        path: status_path,
    }));
    lock(&progress).publish();
    // One listing of the storage instead of an `image exists` per image: on a node with
    // hundreds of images that halves the podman processes started next to the workloads.
    let present = match podman::list_images(exec.as_ref()).await {
        Ok(list) => Some(Arc::new(present_refs(list))),
        Err(e) => {
            tracing::warn!(error = %e, "cannot list the local images; checking each one");
            None
        }
    };
    let permits = Arc::new(Semaphore::new(parallel.max(1)));
    let policy = Arc::new(policy);
    let shown = lca_seed::Progress::items("precache", images.len() as u64);
    let mut tasks = tokio::task::JoinSet::new();
    for image in images {
        let (exec, permits, policy, progress, present, shown) = (
            exec.clone(),
            permits.clone(),
            policy.clone(),
            progress.clone(),
            present.clone(),
            shown.clone(),
        );
        tasks.spawn(async move {
            // The semaphore is never closed, so acquire only fails if it were; treat as a failure.
            let ok = match permits.acquire_owned().await {
                Ok(_permit) => pull_one(exec.as_ref(), &image, &policy, present.as_deref()).await,
                Err(_) => false,
            };
            let mut p = lock(&progress);
            if ok {
                p.status.pulled += 1;
            } else {
                p.status.failed += 1;
                p.status.failed_pulls.push(image);
            }
            p.publish();
            shown.inc(1);
        });
    }
    while let Some(res) = tasks.join_next().await {
        if let Err(e) = res {
            tracing::error!(error = %e, "a pull task died");
        }
    }
    shown.finish();
    forgive(exec.as_ref(), &progress).await;
    let p = lock(&progress);
    p.status.clone()
}

fn lock(p: &Mutex<Progress>) -> std::sync::MutexGuard<'_, Progress> {
    // A panicking task cannot leave the counters half-updated (each update is one field
    // write), so a poisoned lock is still usable.
    p.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every name an image in the storage answers to: tags, digests, names.
fn present_refs(images: Vec<lca_core::image_cleanup::Image>) -> HashSet<String> {
    images
        .into_iter()
        .flat_map(|i| i.repo_tags.into_iter().chain(i.repo_digests).chain(i.names))
        .collect()
}

/// `present` is the storage's listing; without one, podman is asked about this image.
async fn pull_one(
    exec: &dyn Executor,
    image: &str,
    policy: &BoundedPull,
    present: Option<&HashSet<String>>,
) -> bool {
    let exists = match present {
        // A reference spelled differently from podman's names is pulled: a network round
        // trip, never a wrong answer.
        Some(set) => Ok(set.contains(image)),
        None => podman::image_exists(exec, image).await,
    };
    match exists {
        Ok(true) => {
            tracing::info!(image, "already present");
            return true;
        }
        Ok(false) => {}
        Err(e) => tracing::warn!(image, error = %e, "podman image exists failed; pulling"),
    }
    match policy.pull(exec, image).await {
        Ok(()) => {
            tracing::info!(image, "pulled");
            true
        }
        Err(e) => {
            tracing::error!(image, error = %e, "pull failed");
            false
        }
    }
}

/// Failed images that exist now (another pull of the same layers, a concurrent writer) are
/// not failures.
async fn forgive(exec: &dyn Executor, progress: &Mutex<Progress>) {
    let failed = lock(progress).status.failed_pulls.clone();
    let mut still_failed = Vec::new();
    for image in failed {
        if podman::image_exists(exec, &image).await.unwrap_or(false) {
            tracing::info!(image, "failed pull forgiven: the image exists");
        } else {
            still_failed.push(image);
        }
    }
    let mut p = lock(progress);
    let forgiven = p.status.failed_pulls.len() - still_failed.len();
    p.status.failed -= forgiven as u64;
    p.status.pulled += forgiven as u64;
    p.status.failed_pulls = still_failed;
    p.publish();
}

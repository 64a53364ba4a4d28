//! The SeedGenerator controller (spec §8): turns this seed cluster into a seed image.
//! Wiring here: only *Create* events trigger a reconcile (the reference ignores updates,
//! deletes and generic events), requeues come from the reconcile itself, and the phase
//! derived from the conditions picks the step module:
//!
//! - `checks`: prerequisites (initial phase), exact rejection messages;
//! - `generate` (+ `cleanup`, `cluster_info`): health, workspace, secrets, cluster clean-up,
//!   saving the CR and Secret on the node, launching the imager (`imager`);
//! - `finalize`: after the imager, check its exit status and complete;
//! - `restore`: re-create the Secret and CR from the node (`initSeedGen`), at start-up on a
//!   real node and when the local imager process exits on a simulated one.
//!
//! Reconciles hold `ctx.lock`, shared with the IBU controller.

pub mod checks;
pub mod cleanup;
pub mod cluster_info;
pub mod finalize;
pub mod generate;
pub mod imager;
pub mod restore;
pub mod state;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, Store, store::Writer as StoreWriter};
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use lca_api::SeedGenerator;
use lca_api::consts::names;
use tracing::{info, warn};

use crate::context::Context;
use crate::error::{Error, FailureStreak, Result};
use state::Phase;

/// After the checks pass (`requeueImmediately` in the reference, a short pause here).
pub const REQUEUE_AFTER_CHECKS: Duration = Duration::from_secs(2);
/// While the cluster is not healthy yet.
pub const REQUEUE_HEALTH_CHECK: Duration = Duration::from_secs(20);

/// One reconcile: uncached GET, then the step of the current phase.
pub async fn reconcile(obj: Arc<SeedGenerator>, ctx: Arc<Context>) -> Result<Action> {
    crate::metrics::METRICS
        .seedgen_reconciles
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let _serial = ctx.lock.lock().await;
    if obj.name_any() != names::SEEDGEN {
        warn!(name = %obj.name_any(), "ignoring a SeedGenerator not named {}", names::SEEDGEN);
        return Ok(Action::await_change());
    }
    let api: Api<SeedGenerator> = Api::all(ctx.client.clone());
    let Some(cr) = api
        .get_opt(names::SEEDGEN)
        .await
        .map_err(Error::kube("reading the SeedGenerator"))?
    else {
        return Ok(Action::await_change());
    };
    let mut w = state::Writer::new(api, cr);
    let phase = state::phase(w.conditions());
    info!(?phase, seed_image = %w.cr.spec.seed_image, "reconciling the SeedGenerator");
    match phase {
        Phase::Failed => {
            info!("seed generation has failed; delete and re-create the SeedGenerator to try again");
            Ok(Action::await_change())
        }
        Phase::Completed => Ok(Action::await_change()),
        Phase::Initial => match checks::validate(&ctx).await {
            Some(rejection) => {
                info!(%rejection, "seed generation rejected");
                w.failed(&rejection);
                w.save().await?;
                Ok(Action::await_change())
            }
            None => {
                w.in_progress(lca_api::consts::messages::SEEDGEN_WAITING_FOR_STABLE);
                w.save().await?;
                Ok(Action::requeue(REQUEUE_AFTER_CHECKS))
            }
        },
        Phase::Generating => generate::run(&ctx, &mut w).await,
        Phase::Finalizing => finalize::run(&ctx, &mut w).await,
    }
}

/// Run the controller until `shutdown` resolves.
pub async fn run(ctx: Arc<Context>, shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static) {
    let api: Api<SeedGenerator> = Api::all(ctx.client.clone());
    let writer: StoreWriter<SeedGenerator> = StoreWriter::default();
    let reader: Store<SeedGenerator> = writer.as_reader();
    // A Create is an object whose uid we have not seen; the initial list counts, as in
    // controller-runtime. Re-created (restored) CRs get a new uid and so trigger again.
    let mut seen: HashSet<String> = HashSet::new();
    let triggers = reflector::reflector(
        writer,
        watcher::watcher(api, watcher::Config::default()).default_backoff(),
    )
    .filter_map(move |event| {
        let out = match event {
            Ok(Event::Apply(obj) | Event::InitApply(obj)) => {
                let uid = obj.uid().unwrap_or_default();
                seen.insert(uid).then_some(Ok(obj))
            }
            Ok(Event::Delete(_) | Event::Init | Event::InitDone) => None,
            Err(e) => Some(Err(e)),
        };
        futures::future::ready(out)
    });
    let failures = Arc::new(FailureStreak::default());
    Controller::for_stream(triggers, reader)
        .graceful_shutdown_on(shutdown)
        .run(
            {
                let failures = failures.clone();
                move |obj, ctx| {
                    let failures = failures.clone();
                    async move {
                        let res = reconcile(obj, ctx).await;
                        if res.is_ok() {
                            failures.reset();
                        }
                        res
                    }
                }
            },
            move |obj, err: &Error, ctx: Arc<Context>| {
                let (delay, new_streak) = failures.fail(err.category());
                warn!(error = %err, retry_in = ?delay, "SeedGenerator reconcile failed");
                if new_streak {
                    let (reason, note) = (err.event_reason(), err.to_string());
                    tokio::spawn(async move {
                        ctx.publish(
                            &obj.object_ref(&()),
                            kube::runtime::events::EventType::Warning,
                            reason,
                            note,
                        )
                        .await;
                    });
                }
                Action::requeue(delay)
            },
            ctx,
        )
        .for_each(|res| async move {
            if let Err(e) = res {
                warn!("seedgen controller: {e}");
            }
        })
        .await;
    info!("SeedGenerator controller stopped");
}

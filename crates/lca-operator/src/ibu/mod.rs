//! The ImageBasedUpgrade controller: watch wiring, event filtering (spec §2.8), deletion
//! handling (§2.10) and error policy. The decisions live in `reconcile` and `lca-core`.

pub mod init;
pub mod persist;
pub mod reconcile;
#[cfg(feature = "test-hooks")]
pub mod test_peer;
pub mod work;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use futures::StreamExt;
use kube::api::Api;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::{self, ObjectRef, store::Writer};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt, reflector::Store};
use kube::{Resource, ResourceExt};
use lca_api::ImageBasedUpgrade;
use lca_api::consts::annotations;
use tracing::{info, warn};

use crate::context::Context;
use crate::error::{Error, FailureStreak, backoff};

/// What makes an update worth a reconcile: a spec change, the manual-cleanup annotation
/// appearing or going, or the trigger annotation changing. Status writes are not in it, so
/// our own writes do not loop.
fn trigger_key(ibu: &ImageBasedUpgrade) -> (Option<i64>, bool, Option<String>) {
    let a = ibu.annotations();
    (
        ibu.metadata.generation,
        a.contains_key(annotations::MANUAL_CLEANUP_DONE),
        a.get(annotations::TRIGGER_RECONCILE).cloned(),
    )
}

async fn recreate_after_delete(ctx: Arc<Context>) {
    for attempt in 0..10u32 {
        let res = {
            let _serial = ctx.lock.lock().await;
            init::init_ibu(&ctx).await
        };
        match res {
            Ok(()) => return,
            Err(e) => {
                let delay = backoff(e.category(), attempt);
                warn!(error = %e, retry_in = ?delay, "cannot re-create the ImageBasedUpgrade");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Run the controller until `shutdown` resolves.
/// `wake` carries requests for a reconcile from outside the watch (a node task ended).
pub async fn run(
    ctx: Arc<Context>,
    wake: tokio::sync::mpsc::UnboundedReceiver<()>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<ImageBasedUpgrade> = Api::all(ctx.client.clone());
    let writer: Writer<ImageBasedUpgrade> = Writer::default();
    let reader: Store<ImageBasedUpgrade> = writer.as_reader();
    let mut seen: HashMap<String, (Option<i64>, bool, Option<String>)> = HashMap::new();
    let delete_ctx = ctx.clone();
    let triggers = reflector::reflector(
        writer,
        watcher::watcher(api, watcher::Config::default()).default_backoff(),
    )
    .filter_map(move |event| {
        let out = match event {
            Ok(Event::Apply(obj) | Event::InitApply(obj)) => {
                let key = trigger_key(&obj);
                let changed = seen.insert(obj.name_any(), key.clone()).as_ref() != Some(&key);
                changed.then_some(Ok(obj))
            }
            Ok(Event::Delete(obj)) => {
                seen.remove(&obj.name_any());
                persist::on_delete(&delete_ctx, &obj);
                // The controller skips objects missing from its cache, so re-create
                // (or restore) the singleton here rather than through a reconcile.
                tokio::spawn(recreate_after_delete(delete_ctx.clone()));
                None
            }
            Ok(Event::Init | Event::InitDone) => None,
            Err(e) => Some(Err(e)),
        };
        futures::future::ready(out)
    });
    let failures = Arc::new(FailureStreak::default());
    let wakes = futures::stream::unfold(wake, |mut rx| async move { rx.recv().await.map(|()| ((), rx)) })
        .map(|()| ObjectRef::new(lca_api::consts::names::IBU));
    // Jobs of the node work are owned by the IBU: their status changes wake it up.
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    Controller::for_stream(triggers, reader)
        .owns(jobs, watcher::Config::default())
        .reconcile_on(wakes)
        .graceful_shutdown_on(shutdown)
        .run(
            {
                let failures = failures.clone();
                move |obj, ctx| {
                    let failures = failures.clone();
                    async move {
                        crate::metrics::METRICS
                            .ibu_reconciles
                            .fetch_add(1, Ordering::Relaxed);
                        let res = reconcile::reconcile(obj, ctx).await;
                        if res.is_err() {
                            crate::metrics::METRICS
                                .ibu_reconcile_errors
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        if res.is_ok() {
                            failures.reset();
                        }
                        res
                    }
                }
            },
            move |obj, err: &Error, ctx: Arc<Context>| {
                let (delay, new_streak) = failures.fail(err.category());
                warn!(error = %err, retry_in = ?delay, "reconcile failed");
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
                warn!("controller: {e}");
            }
        })
        .await;
    info!("ImageBasedUpgrade controller stopped");
}

//! The ImageBasedUpgrade controller: event filtering (spec §2.8) and deletion handling
//! (§2.10); the watch and error policy are the shared `crate::controller` wiring. The
//! decisions live in `reconcile` and `lca-core`.

pub mod init;
pub mod persist;
pub mod reconcile;
#[cfg(feature = "test-hooks")]
pub mod test_peer;
mod velero_watch;
pub mod work;

use std::collections::HashMap;
use std::sync::Arc;

use futures::StreamExt;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::controller::Controller;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::{self, Event};
use lca_api::ImageBasedUpgrade;
use lca_api::consts::annotations;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tracing::warn;

use crate::context::Context;
use crate::error::backoff;

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

/// Deletions, one at a time and each under `ctx.lock` like a reconcile: save or forget the
/// deleted IBU on the node (`persist`), then re-create (or restore) the singleton. The
/// controller skips objects missing from its cache, so a reconcile cannot do this; the
/// lock serializes it with the reconciles of both controllers all the same.
async fn handle_deletes(ctx: Arc<Context>, mut deleted: UnboundedReceiver<ImageBasedUpgrade>) {
    while let Some(ibu) = deleted.recv().await {
        after_delete(&ctx, &ibu).await;
    }
}

async fn after_delete(ctx: &Context, ibu: &ImageBasedUpgrade) {
    for attempt in 0..10u32 {
        let res = {
            let _serial = ctx.lock.lock().await;
            if attempt == 0 {
                persist::on_delete(ctx, ibu);
            }
            init::init_ibu(ctx).await
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
    wake: UnboundedReceiver<()>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let api: Api<ImageBasedUpgrade> = Api::all(ctx.client.clone());
    let mut seen: HashMap<String, (Option<i64>, bool, Option<String>)> = HashMap::new();
    let (deleted_tx, deleted_rx) = unbounded_channel();
    tokio::spawn(handle_deletes(ctx.clone(), deleted_rx));
    let (triggers, reader) = crate::controller::watch(api, move |event| match event {
        Event::Apply(obj) | Event::InitApply(obj) => {
            let key = trigger_key(&obj);
            let changed = seen.insert(obj.name_any(), key.clone()).as_ref() != Some(&key);
            changed.then_some(obj)
        }
        Event::Delete(obj) => {
            seen.remove(&obj.name_any());
            // Fails only when the handler stopped, i.e. at shutdown.
            let _ = deleted_tx.send(obj);
            None
        }
        Event::Init | Event::InitDone => None,
    });
    let wakes = futures::stream::unfold(wake, |mut rx| async move { rx.recv().await.map(|()| ((), rx)) })
        .map(|()| ObjectRef::new(lca_api::consts::names::IBU));
    let wakes = futures::stream::select(wakes, velero_watch::phase_changes(&ctx.client).await);
    // Jobs of the node work are owned by the IBU: their status changes wake it up.
    let jobs: Api<k8s_openapi::api::batch::v1::Job> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let controller = Controller::for_stream(triggers, reader)
        .owns(jobs, watcher::Config::default())
        .reconcile_on(wakes)
        .graceful_shutdown_on(shutdown);
    crate::controller::run("ImageBasedUpgrade", controller, ctx, reconcile::reconcile).await;
}

//! The wiring both controllers share: a reflector-backed watch whose events a controller
//! filters into triggers, and the run loop with the one error policy — consecutive failures
//! back off by the error's category (`FailureStreak`), and a streak is reported as one
//! Warning event rather than one per retry. Every reconcile is counted and timed here.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use kube::Resource;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::EventType;
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::watcher::{self, Event};
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use crate::context::Context;
use crate::error::{Error, FailureStreak, Result};

/// What `run` needs of a watched kind.
pub trait Watched:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

impl<K> Watched for K where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + Sync + 'static
{
}

/// Watch every object of `api` into a store; `pick` turns each watch event into a trigger
/// (`Some`) or drops it (`None`). Watch errors are passed on (the controller logs them and
/// the watcher backs off).
pub fn watch<K: Watched>(
    api: Api<K>,
    mut pick: impl FnMut(Event<K>) -> Option<K> + Send + 'static,
) -> (
    impl Stream<Item = Result<K, watcher::Error>> + Send + 'static,
    Store<K>,
) {
    let writer: Writer<K> = Writer::default();
    let reader = writer.as_reader();
    let triggers = reflector::reflector(
        writer,
        watcher::watcher(api, watcher::Config::default()).default_backoff(),
    )
    .filter_map(move |event| {
        let out = match event {
            Ok(event) => pick(event).map(Ok),
            Err(e) => Some(Err(e)),
        };
        futures::future::ready(out)
    });
    (triggers, reader)
}

/// Run `controller` with `reconcile` until its shutdown signal; `name` is the kind, for logs.
pub async fn run<K, R, Fut>(name: &'static str, controller: Controller<K>, ctx: Arc<Context>, reconcile: R)
where
    K: Watched,
    R: Fn(Arc<K>, Arc<Context>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<Action>> + Send + 'static,
{
    let failures = Arc::new(FailureStreak::default());
    let reconcile = Arc::new(reconcile);
    let on_success = failures.clone();
    controller
        .run(
            move |obj, ctx| {
                let (failures, reconcile) = (on_success.clone(), reconcile.clone());
                async move {
                    let started = std::time::Instant::now();
                    let res = reconcile(obj, ctx).await;
                    let seconds = started.elapsed().as_secs_f64();
                    crate::metrics::METRICS.reconciled(name, seconds, res.is_err());
                    if res.is_ok() {
                        failures.reset();
                    }
                    res
                }
            },
            move |obj, err: &Error, ctx: Arc<Context>| error_policy(&failures, name, obj.as_ref(), err, ctx),
            ctx,
        )
        .for_each(|res| async move {
            if let Err(e) = res {
                warn!("{name} controller: {e}");
            }
        })
        .await;
    info!("{name} controller stopped");
}

/// The retry delay of a failed reconcile; the first failure of a streak becomes an event.
fn error_policy<K: Watched>(
    failures: &FailureStreak,
    name: &str,
    obj: &K,
    err: &Error,
    ctx: Arc<Context>,
) -> Action {
    let (delay, new_streak) = failures.fail(err.category());
    warn!(error = %err, retry_in = ?delay, "{name} reconcile failed");
    if new_streak {
        let (reason, note, reference) = (err.event_reason(), err.to_string(), obj.object_ref(&()));
        tokio::spawn(async move {
            ctx.publish(&reference, EventType::Warning, reason, note).await;
        });
    }
    Action::requeue(delay)
}

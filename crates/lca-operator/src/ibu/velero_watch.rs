//! The Velero watch (spec §2.8): when the kinds exist at start-up, a change of a Restore's
//! (and, beyond upstream, a Backup's) `status.phase` in `openshift-adp` wakes the IBU, so a
//! wave that completes moves on at once instead of at the next 30 s / 1 min requeue. Only
//! phase changes count: Velero updates its CRs' progress often.

use std::collections::HashMap;

use futures::{Stream, StreamExt};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::{self, Event};
use kube::{Client, ResourceExt};
use lca_api::ImageBasedUpgrade;
use lca_api::consts::names::{IBU, OADP_NAMESPACE};
use tracing::{info, warn};

/// One stream of wake-ups for every Velero kind installed now.
pub async fn phase_changes(
    client: &Client,
) -> impl Stream<Item = ObjectRef<ImageBasedUpgrade>> + Send + 'static {
    let mut streams = Vec::new();
    for (kind, plural) in [("Restore", "restores"), ("Backup", "backups")] {
        match crate::cluster_health::crd_exists(client, &format!("{plural}.velero.io")).await {
            Ok(true) => {
                info!(kind, "watching Velero phases");
                streams.push(watch(client, kind, plural).boxed());
            }
            Ok(false) => {}
            Err(e) => warn!(
                kind,
                "cannot tell whether Velero is installed, not watching it: {e}"
            ),
        }
    }
    futures::stream::select_all(streams)
}

fn watch(
    client: &Client,
    kind: &str,
    plural: &str,
) -> impl Stream<Item = ObjectRef<ImageBasedUpgrade>> + Send + 'static {
    let ar = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("velero.io", "v1", kind), plural);
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), OADP_NAMESPACE, &ar);
    let mut phases: HashMap<String, String> = HashMap::new();
    watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .filter_map(move |event| {
            let changed = match event {
                Ok(Event::InitApply(o)) => {
                    // Phases seen while (re)listing are the baseline, not a change.
                    phases.insert(o.name_any(), phase(&o));
                    false
                }
                Ok(Event::Apply(o)) => {
                    let now = phase(&o);
                    // A new object with a phase already set is a Backup synced from object
                    // storage, which a waiting Restore needs.
                    let before = phases.insert(o.name_any(), now.clone()).unwrap_or_default();
                    before != now
                }
                Ok(Event::Delete(o)) => {
                    phases.remove(&o.name_any());
                    false
                }
                Ok(Event::Init | Event::InitDone) => false,
                Err(e) => {
                    warn!("Velero watch: {e}");
                    false
                }
            };
            futures::future::ready(changed.then(|| ObjectRef::new(IBU)))
        })
}

fn phase(o: &DynamicObject) -> String {
    o.data["status"]["phase"].as_str().unwrap_or_default().to_string()
}

//! How the Velero test peer brings a stored backup's objects back: namespaces first, then
//! cluster-scoped objects, then namespaced ones (each in its namespace, created when missing),
//! as Velero orders a restore so that nothing is created before what it lives in.

use std::collections::HashSet;

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::Scope;
use serde_json::{Value, json};

use super::select;
use super::work::Peer;
use crate::{Error, Result, kube_err};

/// Counts of a restore: (restored, warnings, errors).
type Counts = (usize, usize, usize);

fn namespace_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Namespace"), "namespaces")
}

/// The object as Velero creates it: labelled with where it came from, and without the
/// cluster IP the old cluster allocated (the new one allocates its own).
fn prepared(obj: &Value, backup: &str, restore: &str) -> Result<DynamicObject> {
    let mut obj = obj.clone();
    obj["metadata"]["labels"]["velero.io/backup-name"] = backup.into();
    obj["metadata"]["labels"]["velero.io/restore-name"] = restore.into();
    if obj["kind"] == "Service"
        && obj["apiVersion"] == "v1"
        && obj["spec"]["clusterIP"] != "None"
        && let Some(spec) = obj["spec"].as_object_mut()
    {
        spec.remove("clusterIP");
        spec.remove("clusterIPs");
    }
    serde_json::from_value(obj).map_err(|e| Error::Setup(format!("a stored object of backup {backup}: {e}")))
}

impl Peer {
    pub(super) async fn create_all(&self, restore: &str, backup: &str, objects: &[Value]) -> Result<Counts> {
        let discovery = select::discover(&self.client).await?;
        let mut counts = (0, 0, 0);
        let mut ordered: [Vec<(ApiResource, &Value)>; 3] = Default::default();
        for obj in objects {
            match select::resolve(&discovery, obj) {
                None => {
                    tracing::debug!("velero peer: restore {restore}: no resource for {}", obj["kind"]);
                    counts.2 += 1;
                }
                Some((ar, scope)) => {
                    let rank = match scope {
                        _ if ar.group.is_empty() && ar.kind == "Namespace" => 0,
                        Scope::Cluster => 1,
                        Scope::Namespaced => 2,
                    };
                    ordered[rank].push((ar, obj));
                }
            }
        }
        let mut namespaces = HashSet::new();
        for (rank, objs) in ordered.iter().enumerate() {
            for (ar, obj) in objs {
                let prepared = prepared(obj, backup, restore)?;
                let api: Api<DynamicObject> = match prepared.metadata.namespace.as_deref() {
                    Some(ns) if rank == 2 => {
                        if namespaces.insert(ns.to_string()) {
                            self.ensure_namespace(ns).await?;
                        }
                        Api::namespaced_with(self.client.clone(), ns, ar)
                    }
                    _ => Api::all_with(self.client.clone(), ar),
                };
                if rank == 0 {
                    namespaces.insert(prepared.metadata.name.clone().unwrap_or_default());
                }
                match api.create(&PostParams::default(), &prepared).await {
                    Ok(_) => counts.0 += 1,
                    Err(kube::Error::Api(e)) if e.code == 409 => counts.1 += 1,
                    Err(kube::Error::Api(e)) => {
                        tracing::debug!("velero peer: restore {restore}: creating a {}: {e}", ar.kind);
                        counts.2 += 1;
                    }
                    // Not the object's fault (the server is away): the next pass retries.
                    Err(e) => return Err(kube_err(format!("restoring a {}", ar.kind))(e)),
                }
            }
        }
        Ok(counts)
    }

    async fn ensure_namespace(&self, name: &str) -> Result<()> {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &namespace_resource());
        let ns: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
        .map_err(|e| Error::Setup(e.to_string()))?;
        match api.create(&PostParams::default(), &ns).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
            Err(e) => Err(kube_err(format!("creating namespace {name}"))(e)),
        }
    }
}

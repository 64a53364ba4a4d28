//! Which objects the Velero test peer backs up for a Backup's spec, as Velero selects them:
//! every listable resource the server serves (but the ones Velero never backs up), filtered by
//! the namespace and resource include/exclude lists and the label selector.

use std::collections::HashSet;

use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::discovery::{Discovery, Scope, verbs};
use kube::{Client, ResourceExt};
use serde_json::Value;

use crate::{Error, Result, kube_err};

/// Resources Velero leaves out of every backup (runtime state a restore must not bring back).
const SKIPPED: [&str; 6] = [
    "events",
    "pods",
    "endpoints",
    "endpointslices",
    "replicasets",
    "controllerrevisions",
];
/// Groups of Velero's and OADP's own kinds.
const SKIPPED_GROUPS: [&str; 2] = ["velero.io", "oadp.openshift.io"];
/// Fields the server owns; a restore creates the objects anew.
const SERVER_FIELDS: [&str; 6] = [
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "managedFields",
    "generation",
    "selfLink",
];

/// All served resources; aggregated discovery is two requests where the classic one is one
/// per group, and the classic one is kept for servers without it.
pub(super) async fn discover(client: &Client) -> Result<Discovery> {
    match Discovery::new(client.clone()).run_aggregated().await {
        Ok(d) => Ok(d),
        Err(_) => Discovery::new(client.clone())
            .run()
            .await
            .map_err(kube_err("discovering the API resources")),
    }
}

/// The resource of an object's `apiVersion` and `kind`, with its scope.
pub(super) fn resolve(discovery: &Discovery, obj: &Value) -> Option<(ApiResource, Scope)> {
    let (group, version) = match obj["apiVersion"].as_str()?.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", obj["apiVersion"].as_str()?),
    };
    let gvk = GroupVersionKind::gvk(group, version, obj["kind"].as_str()?);
    discovery.resolve_gvk(&gvk).map(|(ar, caps)| (ar, caps.scope))
}

/// A Backup's selection criteria.
#[derive(Debug, Default)]
struct Filter {
    /// `None`: all namespaces.
    namespaces: Option<Vec<String>>,
    excluded_namespaces: Vec<String>,
    /// Empty: all namespaced resources.
    namespaced: Vec<String>,
    namespaced_excluded: Vec<String>,
    /// Empty: no cluster-scoped resources.
    cluster: Vec<String>,
    cluster_excluded: Vec<String>,
    selector: Option<String>,
}

fn strings(spec: &Value, fields: &[&str]) -> Vec<String> {
    fields
        .iter()
        .flat_map(|f| spec[*f].as_array().into_iter().flatten())
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

impl Filter {
    fn from_spec(spec: &Value) -> Self {
        let namespaces = strings(spec, &["includedNamespaces"]);
        let all = namespaces.is_empty() || namespaces.iter().any(|n| n == "*");
        Filter {
            namespaces: (!all).then_some(namespaces),
            excluded_namespaces: strings(spec, &["excludedNamespaces"]),
            namespaced: strings(spec, &["includedNamespaceScopedResources", "includedResources"]),
            namespaced_excluded: strings(spec, &["excludedNamespaceScopedResources", "excludedResources"]),
            cluster: strings(spec, &["includedClusterScopedResources", "includedResources"]),
            cluster_excluded: strings(spec, &["excludedClusterScopedResources", "excludedResources"]),
            selector: selector(&spec["labelSelector"]),
        }
    }

    fn wants(&self, ar: &ApiResource, scope: &Scope) -> bool {
        let any = |names: &[String]| names.iter().any(|n| names_resource(n, ar));
        match scope {
            Scope::Cluster => any(&self.cluster) && !any(&self.cluster_excluded),
            Scope::Namespaced => {
                (self.namespaced.is_empty() || any(&self.namespaced)) && !any(&self.namespaced_excluded)
            }
        }
    }
}

/// Whether a name from a Backup's spec names `ar`: `*`, the plural, the singular, the kind or
/// `<plural>.<group>`, in any case (seed documents write `persistentVolumes`, `Namespace`).
fn names_resource(name: &str, ar: &ApiResource) -> bool {
    let name = name.to_ascii_lowercase();
    let kind = ar.kind.to_ascii_lowercase();
    name == "*"
        || name == ar.plural
        || name == kind
        || (!ar.group.is_empty() && (name == format!("{}.{}", ar.plural, ar.group)))
}

/// A `metav1.LabelSelector` in the query syntax the API server filters lists with.
fn selector(sel: &Value) -> Option<String> {
    let mut parts: Vec<String> = sel["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    for e in sel["matchExpressions"].as_array().into_iter().flatten() {
        let key = e["key"].as_str().unwrap_or_default();
        let values = strings(e, &["values"]).join(",");
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({values})"),
            "NotIn" => format!("{key} notin ({values})"),
            "DoesNotExist" => format!("!{key}"),
            _ => key.to_string(),
        });
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

/// The objects a Backup with `spec` takes, as stored: typed, without server-owned fields and
/// status.
pub(super) async fn select(client: &Client, spec: &Value) -> Result<Vec<Value>> {
    let filter = Filter::from_spec(spec);
    let discovery = discover(client).await?;
    let params = ListParams {
        label_selector: filter.selector.clone(),
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut taken = HashSet::new();
    let mut take = |ar: &ApiResource, objs: Vec<DynamicObject>, out: &mut Vec<Value>| -> Result<()> {
        for obj in objs {
            let key = (ar.group.clone(), ar.kind.clone(), obj.namespace(), obj.name_any());
            let ns = obj.namespace().unwrap_or_default();
            if filter.excluded_namespaces.contains(&ns) || !taken.insert(key) {
                continue;
            }
            out.push(stored(ar, obj)?);
        }
        Ok(())
    };
    for group in discovery.groups_alphabetical() {
        for (ar, caps) in group.recommended_resources() {
            let skipped =
                SKIPPED.contains(&ar.plural.as_str()) || SKIPPED_GROUPS.contains(&ar.group.as_str());
            if skipped || !caps.supports_operation(verbs::LIST) || !filter.wants(&ar, &caps.scope) {
                continue;
            }
            let apis: Vec<Api<DynamicObject>> = match (&caps.scope, &filter.namespaces) {
                (Scope::Namespaced, Some(nss)) => nss
                    .iter()
                    .map(|ns| Api::namespaced_with(client.clone(), ns, &ar))
                    .collect(),
                _ => vec![Api::all_with(client.clone(), &ar)],
            };
            for api in apis {
                let list = api
                    .list(&params)
                    .await
                    .map_err(kube_err(format!("listing {}", ar.plural)))?;
                take(&ar, list.items, &mut out)?;
            }
        }
    }
    // Velero takes the Namespace objects of the namespaces it was told to back up.
    if let Some(nss) = &filter.namespaces {
        let ar =
            ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("", "v1", "Namespace"), "namespaces");
        let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let list = api.list(&params).await.map_err(kube_err("listing namespaces"))?;
        let wanted = list
            .items
            .into_iter()
            .filter(|n| nss.contains(&n.name_any()))
            .collect();
        take(&ar, wanted, &mut out)?;
    }
    Ok(out)
}

fn stored(ar: &ApiResource, obj: DynamicObject) -> Result<Value> {
    let mut value =
        serde_json::to_value(obj).map_err(|e| Error::Setup(format!("serializing a {}: {e}", ar.kind)))?;
    // List items of built-in kinds come without their type.
    value["apiVersion"] = ar.api_version.clone().into();
    value["kind"] = ar.kind.clone().into();
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = value["metadata"].as_object_mut() {
        for field in SERVER_FIELDS {
            meta.remove(field);
        }
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ar(group: &str, kind: &str, plural: &str) -> ApiResource {
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, "v1", kind), plural)
    }

    #[test]
    fn resource_names_match_plural_kind_and_group_in_any_case() {
        let role = ar("rbac.authorization.k8s.io", "ClusterRole", "clusterroles");
        for name in [
            "clusterroles",
            "ClusterRole",
            "clusterroles.rbac.authorization.k8s.io",
            "*",
        ] {
            assert!(names_resource(name, &role), "{name}");
        }
        assert!(!names_resource("roles", &role));
        assert!(names_resource(
            "persistentVolumes",
            &ar("", "PersistentVolume", "persistentvolumes")
        ));
        assert!(names_resource("Namespace", &ar("", "Namespace", "namespaces")));
    }

    #[test]
    fn cluster_scoped_resources_are_taken_only_when_named() {
        let spec = json!({"includedNamespaces": ["app"], "includedNamespaceScopedResources": ["configmaps"],
                          "includedClusterScopedResources": ["clusterroles.rbac.authorization.k8s.io"],
                          "excludedNamespaceScopedResources": ["secrets"]});
        let f = Filter::from_spec(&spec);
        assert_eq!(f.namespaces, Some(vec!["app".to_string()]));
        let role = ar("rbac.authorization.k8s.io", "ClusterRole", "clusterroles");
        assert!(f.wants(&role, &Scope::Cluster));
        assert!(!f.wants(&ar("", "PersistentVolume", "persistentvolumes"), &Scope::Cluster));
        assert!(f.wants(&ar("", "ConfigMap", "configmaps"), &Scope::Namespaced));
        assert!(!f.wants(&ar("", "Secret", "secrets"), &Scope::Namespaced));
        let all = Filter::from_spec(&json!({"includedNamespaces": ["*"], "excludedResources": ["secrets"]}));
        assert_eq!(all.namespaces, None);
        assert!(all.wants(&ar("apps", "Deployment", "deployments"), &Scope::Namespaced));
        assert!(!all.wants(&ar("", "Secret", "secrets"), &Scope::Namespaced));
        assert!(!all.wants(&role, &Scope::Cluster));
    }

    #[test]
    fn label_selectors_become_list_queries() {
        let sel = json!({"matchLabels": {"a": "1"}, "matchExpressions": [
            {"key": "b", "operator": "In", "values": ["x", "y"]}, {"key": "c", "operator": "Exists"},
            {"key": "d", "operator": "DoesNotExist"}]});
        assert_eq!(selector(&sel).as_deref(), Some("a=1,b in (x,y),c,!d"));
        assert_eq!(selector(&json!(null)), None);
    }
}

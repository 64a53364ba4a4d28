//! Prep's checks before any node work (spec §5.1 step 2): the container storage target, the
//! seed version against the cluster, OADP content, extra manifests and the policy-manifest
//! count annotation. Also the small dynamic-object helpers for OpenShift kinds that may not
//! be installed (an absent kind reads as "not there", not as an error).

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ObjectList};
use lca_api::ImageBasedUpgrade;
use lca_api::consts::annotations;
use serde_json::Value;

use super::NodeStageWork;
use crate::error::{Error, Result};

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// GET one object of a kind that may not be installed; `None` when it or its kind is absent.
pub async fn get_dynamic(
    client: &Client,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespace: Option<&str>,
    name: &str,
) -> Result<Option<Value>> {
    let ar = resource(group, version, kind, plural);
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    };
    let obj = crate::kubeapi::get_optional(&api, name)
        .await
        .map_err(Error::api(format!("failed to get {kind} {name}")))?;
    Ok(obj.and_then(|o| serde_json::to_value(o).ok()))
}

/// `ClusterVersion version`.
pub async fn cluster_version(client: &Client) -> Result<Value> {
    get_dynamic(
        client,
        "config.openshift.io",
        "v1",
        "ClusterVersion",
        "clusterversions",
        None,
        "version",
    )
    .await?
    .ok_or_else(|| Error::state("ClusterVersion version not found"))
}

/// LIST all objects of a kind that may not be installed: empty when the kind is absent (404);
/// any other failure (forbidden, unreachable, ...) is an error, never an empty list, or a
/// check would pass for want of looking.
pub async fn list_dynamic(
    client: &Client,
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
) -> Result<Vec<Value>> {
    let ar = resource(group, version, kind, plural);
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    listed(kind, api.list(&Default::default()).await)
}

fn listed(kind: &str, list: kube::Result<ObjectList<DynamicObject>>) -> Result<Vec<Value>> {
    match list {
        Ok(list) => Ok(list
            .items
            .into_iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect()),
        Err(e) if crate::kubeapi::is_not_found(&e) => Ok(Vec::new()),
        Err(e) => Err(Error::api(format!("failed to list {kind}"))(e)),
    }
}

/// A string at a path of nested keys.
pub fn str_at(v: &Value, path: &[&str]) -> Option<String> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))?
        .as_str()
        .map(str::to_string)
}

/// The container storage mount target (§9.4): from systemd on a real node; a simulated node
/// declares it in `lca-sim/container-storage-target` (default `/var/lib/containers`).
pub async fn container_storage_target(w: &NodeStageWork) -> Result<String> {
    let node = w.exec.node();
    if node.kind == lca_hostops::NodeKind::Simulated {
        let declared = w
            .fs()
            .read_string_optional(&node.paths.host("lca-sim/container-storage-target"))?;
        return Ok(declared.map_or_else(|| "/var/lib/containers".into(), |s| s.trim().to_string()));
    }
    Ok(lca_hostops::systemd::container_storage_mount_target(w.exec.as_ref()).await?)
}

/// `validateIBUSpec`: every check whose failure makes Prep fail before node work starts.
/// The extra manifests' warnings are added to `warnings` (also when a later check fails).
pub async fn validate_spec(
    w: &NodeStageWork,
    ibu: &ImageBasedUpgrade,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let cv = cluster_version(&w.client).await?;
    let current = cv
        .pointer("/status/desired/version")
        .and_then(Value::as_str)
        .unwrap_or_default();
    lca_core::version::check_seed_newer(&ibu.spec.seed_image_ref.version, current)
        .map_err(|e| Error::invalid(e.to_string()))?;
    if !ibu.spec.oadp_content.is_empty() {
        super::oadp::check_oadp_available(w)
            .await
            .map_err(|e| e.context("failed to check oadp operator availability"))?;
        super::oadp::validate_oadp(w, ibu)
            .await
            .map_err(|e| e.context("failed to validate oadp configMap"))?;
    }
    if !ibu.spec.extra_manifests.is_empty() {
        super::extra_manifests::validate_extra_manifests(w, ibu, warnings)
            .await
            .map_err(|e| e.context("failed to validate extramanifest cms"))?;
    }
    if let Some(count) = ibu
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotations::TARGET_OCP_VERSION_MANIFEST_COUNT))
    {
        check_policy_manifest_count(w, ibu, count)
            .await
            .map_err(|e| e.context("failed to validate manifests from policies"))?;
    }
    Ok(())
}

async fn check_policy_manifest_count(w: &NodeStageWork, ibu: &ImageBasedUpgrade, count: &str) -> Result<()> {
    let expected =
        lca_core::version::parse_manifest_count(count).map_err(|e| Error::invalid(e.to_string()))?;
    let found = super::policies::policy_manifest_count(w, &ibu.spec.seed_image_ref.version).await?;
    if found == expected {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "The labeled manifests count found in policies {found} does not match the expected manifests count {count}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::{ListMeta, Status, TypeMeta};

    fn api_error(code: u16, message: &str) -> kube::Error {
        kube::Error::Api(Status::failure(message, "").with_code(code).boxed())
    }

    #[test]
    fn an_absent_kind_lists_empty() {
        let got = listed(
            "Policy",
            Err(api_error(404, "the server could not find the requested resource")),
        );
        assert!(got.unwrap().is_empty());
    }

    #[test]
    fn a_forbidden_list_is_an_error_with_the_servers_message() {
        let msg = "policies.policy.open-cluster-management.io is forbidden: User \"system:serviceaccount:openshift-lifecycle-agent:lca\" cannot list resource";
        let got = listed("Policy", Err(api_error(403, msg)));
        assert_eq!(
            got.unwrap_err().to_string(),
            format!("failed to list Policy: {msg}")
        );
    }

    #[test]
    fn an_unreachable_server_is_an_error() {
        let err = kube::Error::Service("connection refused".into());
        let got = listed("ClusterServiceVersion", Err(err)).unwrap_err().to_string();
        assert!(
            got.starts_with("failed to list ClusterServiceVersion: ") && got.contains("connection refused"),
            "{got}"
        );
    }

    #[test]
    fn listed_objects_are_returned_as_json() {
        let mut obj = DynamicObject::new(
            "p1",
            &resource("policy.open-cluster-management.io", "v1", "Policy", "policies"),
        );
        obj.data = serde_json::json!({"spec": {"remediationAction": "enforce"}});
        let list = ObjectList {
            types: TypeMeta::default(),
            metadata: ListMeta::default(),
            items: vec![obj],
        };
        let got = listed("Policy", Ok(list)).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(str_at(&got[0], &["metadata", "name"]).as_deref(), Some("p1"));
        assert_eq!(
            str_at(&got[0], &["spec", "remediationAction"]).as_deref(),
            Some("enforce")
        );
    }
}

//! The policy manifests of Prep (spec §5.6): how many objects inside eligible ACM policies
//! are labelled for the target version, counted at Prep against the IBU's expected-count
//! annotation and exported into the new stateroot before the pivot.

use lca_api::consts::{annotations, labels};
use serde_json::Value;

use super::NodeStageWork;
use super::validate::list_dynamic;
use crate::error::Result;
use lca_core::manifest_decode::field;

/// Objects labelled for `version` inside eligible ACM policies (§5.6).
pub async fn policy_manifest_count(w: &NodeStageWork, version: &str) -> Result<u32> {
    let groups = policy_manifests(w, version).await?;
    Ok(groups.iter().map(Vec::len).sum::<usize>() as u32)
}

/// The objects labelled for `version` inside eligible ACM policies, one group per policy in
/// (ztp-deploy-wave, name) order, each object tagged with its `apply-type` (`musthave` →
/// `merge`, `mustonlyhave` → `replace`) and without `status` (§5.6, §4.2).
pub async fn policy_manifests(w: &NodeStageWork, version: &str) -> Result<Vec<Vec<Value>>> {
    let accepted = accepted_versions(version);
    let mut policies = list_dynamic(
        &w.client,
        "policy.open-cluster-management.io",
        "v1",
        "Policy",
        "policies",
    )
    .await?;
    let wave = |p: &Value| {
        p.pointer("/metadata/annotations")
            .and_then(|a| a.get(annotations::ZTP_DEPLOY_WAVE))
            .and_then(Value::as_str)
            .map(|w| w.trim().parse::<i64>().unwrap_or(i64::MAX))
    };
    policies.retain(|p| {
        let enforce = field(p, "/spec/remediationAction").eq_ignore_ascii_case("enforce");
        let child = field(p, "/metadata/name").contains('.');
        let disabled = p
            .pointer("/spec/disabled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        !enforce && wave(p).is_some() && child && !disabled
    });
    policies.sort_by_key(|p| (wave(p), field(p, "/metadata/name")));
    let mut groups = Vec::new();
    for p in &policies {
        let mut group = Vec::new();
        for t in p
            .pointer("/spec/policy-templates")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            for o in t
                .pointer("/objectDefinition/spec/object-templates")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let compliance = field(o, "/complianceType").to_ascii_lowercase();
                if compliance == "mustnothave" {
                    continue;
                }
                let Some(mut object) = o.get("objectDefinition").cloned() else {
                    continue;
                };
                let label = object
                    .pointer("/metadata/labels")
                    .and_then(|l| l.get(labels::TARGET_OCP_VERSION))
                    .and_then(Value::as_str);
                if !label.is_some_and(|l| accepted.iter().any(|a| a == l)) {
                    continue;
                }
                let apply_type = if compliance == "mustonlyhave" {
                    "replace"
                } else {
                    "merge"
                };
                if let Some(map) = object.as_object_mut() {
                    map.remove("status");
                    let meta = map.entry("metadata").or_insert_with(|| serde_json::json!({}));
                    if let Some(meta) = meta.as_object_mut() {
                        let ann = meta.entry("annotations").or_insert_with(|| serde_json::json!({}));
                        if let Some(ann) = ann.as_object_mut() {
                            ann.insert(annotations::APPLY_TYPE.into(), apply_type.into());
                        }
                    }
                }
                group.push(object);
            }
        }
        if !group.is_empty() {
            groups.push(group);
        }
    }
    Ok(groups)
}

/// `M.m.p`, `M.m` and the full version (spec §4.2).
pub fn accepted_versions(version: &str) -> Vec<String> {
    let core = version.split(['-', '+']).next().unwrap_or(version);
    let mut parts = core.split('.');
    let (maj, min, pat) = (
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
        parts.next().unwrap_or(""),
    );
    let mut v = vec![format!("{maj}.{min}.{pat}"), format!("{maj}.{min}")];
    if !v.iter().any(|x| x == version) {
        v.push(version.to_string());
    }
    v
}

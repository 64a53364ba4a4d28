//! The policy manifests of Prep (spec §5.6): how many objects inside eligible ACM policies
//! are labelled for the target version, checked against the IBU's expected-count annotation.

use lca_api::consts::{annotations, labels};
use serde_json::Value;

use super::NodeStageWork;
use super::manifest_decode::field;
use super::validate::list_dynamic;
use crate::error::Result;

/// Objects labelled for `version` inside eligible ACM policies (§5.6).
pub async fn policy_manifest_count(w: &NodeStageWork, version: &str) -> Result<u32> {
    let accepted = accepted_versions(version);
    let policies = list_dynamic(
        &w.client,
        "policy.open-cluster-management.io",
        "v1",
        "Policy",
        "policies",
    )
    .await?;
    let mut count = 0;
    for p in &policies {
        let enforce = field(p, "/spec/remediationAction").eq_ignore_ascii_case("enforce");
        let wave = p
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(annotations::ZTP_DEPLOY_WAVE))
            .is_some();
        let child = field(p, "/metadata/name").contains('.');
        let disabled = p
            .pointer("/spec/disabled")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if enforce || !wave || !child || disabled {
            continue;
        }
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
                if field(o, "/complianceType").eq_ignore_ascii_case("mustnothave") {
                    continue;
                }
                let label = o
                    .pointer("/objectDefinition/metadata/labels")
                    .and_then(|l| l.get(labels::TARGET_OCP_VERSION))
                    .and_then(Value::as_str);
                if label.is_some_and(|l| accepted.iter().any(|a| a == l)) {
                    count += 1;
                }
            }
        }
    }
    Ok(count)
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

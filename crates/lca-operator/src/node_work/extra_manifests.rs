//! Validation of user-supplied manifests at Prep: extra-manifest ConfigMaps by server-side
//! dry run (spec §5.6), OADP Backup/Restore ConfigMaps (§5.7), and the count of policy
//! manifests labelled for the target version. Warnings become the
//! `extra-manifest.lca.openshift.io/validation-warning` annotation; errors fail Prep.

use std::collections::{BTreeSet, HashSet};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::{Scope, pinned_kind};
use lca_api::consts::{annotations, labels, names};
use lca_api::{ConfigMapRef, ImageBasedUpgrade};
use serde_json::Value;
use tracing::warn;

use super::NodeStageWork;
use super::manifest_decode::{Decoded, Manifest, decode_all, field, join_errors};
use super::validate::list_dynamic;
use crate::context::CONTROLLER_NAME;
use crate::error::api_message;

/// Kinds that must never be applied after the pivot (they would reboot the node or fight OLM).
const DISALLOWED: [(&str, &str); 4] = [
    ("machineconfiguration.openshift.io/v1", "MachineConfig"),
    ("operators.coreos.com/v1alpha1", "ClusterServiceVersion"),
    ("operators.coreos.com/v1alpha1", "InstallPlan"),
    ("operators.coreos.com/v1alpha1", "Subscription"),
];

/// Fetch the ConfigMaps (deduplicated) and decode them (`manifest_decode`).
async fn load(
    w: &NodeStageWork,
    refs: &[ConfigMapRef],
    missing: impl Fn(String) -> String,
) -> Result<Decoded, String> {
    let mut seen = HashSet::new();
    let mut fetched = Vec::new();
    for r in refs
        .iter()
        .filter(|r| seen.insert((r.namespace.clone(), r.name.clone())))
    {
        let api: Api<ConfigMap> = Api::namespaced(w.client.clone(), &r.namespace);
        let cm = api.get(&r.name).await.map_err(|e| missing(api_message(&e)))?;
        fetched.push((format!("{}/{}", r.namespace, r.name), cm.data.unwrap_or_default()));
    }
    Ok(decode_all(
        fetched.iter().map(|(name, data)| (name.clone(), data)),
    ))
}

enum DryRun {
    Ok,
    Warn(String),
}

/// Server-side dry run of one object (create, or apply when it exists), as the node's
/// admin: the objects are applied with that identity after the pivot (spec §6.5), so the
/// operator's own least-privilege role must not decide what is valid.
async fn dry_run(admin: &Client, m: &Manifest, kind: &str, name: &str, ns: &str) -> Result<DryRun, String> {
    let api_version = m.field("/apiVersion");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version.as_str()));
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let Ok((ar, caps)) = pinned_kind(admin, &gvk).await else {
        return Ok(DryRun::Warn(format!(
            "{kind}[{name}] - CRD not deployed on cluster"
        )));
    };
    let dyn_obj: DynamicObject = serde_json::from_value(m.object.clone()).map_err(|e| {
        format!(
            "{kind}[{name}] in {} of the configMap {}: {e}",
            m.key, m.config_map
        )
    })?;
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => {
            Api::namespaced_with(admin.clone(), if ns.is_empty() { "default" } else { ns }, &ar)
        }
        Scope::Cluster => Api::all_with(admin.clone(), &ar),
    };
    let pp = PostParams {
        dry_run: true,
        field_manager: Some(CONTROLLER_NAME.into()),
    };
    let res = match api.create(&pp, &dyn_obj).await {
        Err(kube::Error::Api(e)) if e.code == 409 => {
            let params = PatchParams::apply(CONTROLLER_NAME).force().dry_run();
            api.patch(name, &params, &Patch::Apply(&dyn_obj))
                .await
                .map(|_| ())
        }
        other => other.map(|_| ()),
    };
    match res {
        Ok(()) => Ok(DryRun::Ok),
        Err(kube::Error::Api(e)) if e.code == 422 || e.code == 400 => Ok(DryRun::Warn(format!(
            "{kind}[{name}] - dryrun failed in namespace {ns}: {}",
            e.message
        ))),
        Err(e) => Err(format!(
            "failed to validate manifest with dryrun: {kind}[{name}]: {}",
            api_message(&e)
        )),
    }
}

pub async fn validate_extra_manifests(w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> Result<(), String> {
    let missing = |e: String| {
        format!("the extraManifests configMap is not found, error: {e}. Please create the configMap.")
    };
    let Decoded {
        objects,
        errors: mut errs,
    } = load(w, &ibu.spec.extra_manifests, missing).await?;
    if !errs.is_empty() {
        // Undecodable input: nothing to dry-run meaningfully.
        return Err(join_errors(&errs));
    }
    let admin = w.admin_client().await?;
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    let mut declared = BTreeSet::new();
    let mut faked = Vec::new();
    let mut warnings = Vec::new();
    let mut hard = None;
    for m in &objects {
        let (kind, name, ns) = (
            m.field("/kind"),
            m.field("/metadata/name"),
            m.field("/metadata/namespace"),
        );
        if name.is_empty() {
            errs.push(format!(
                "{kind} resource name is empty (in {} of the configMap {})",
                m.key, m.config_map
            ));
            continue;
        }
        if DISALLOWED.contains(&(m.field("/apiVersion").as_str(), kind.as_str())) {
            errs.push(format!("{kind}[{name}] in extramanifests is not allowed"));
            continue;
        }
        if kind == "Namespace" {
            declared.insert(name);
            continue;
        }
        if !ns.is_empty() && ns != "default" {
            let exists = namespaces
                .get_opt(&ns)
                .await
                .map_err(|e| format!("failed to get namespace {ns}: {}", api_message(&e)))?
                .is_some();
            if !exists {
                if !declared.contains(&ns) {
                    warnings.push(format!("{kind}[{name}] - namespace {ns} not found on cluster or not added in configmap in right order"));
                    continue;
                }
                let tmp: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": ns}}))
                    .map_err(|e| e.to_string())?;
                let pp = PostParams {
                    field_manager: Some(CONTROLLER_NAME.into()),
                    ..Default::default()
                };
                namespaces.create(&pp, &tmp).await.map_err(|e| {
                    format!("failed to create namespace {ns} for dryrun: {}", api_message(&e))
                })?;
                faked.push(ns.clone());
            }
        }
        match dry_run(&admin, m, &kind, &name, &ns).await {
            Ok(DryRun::Ok) => {}
            Ok(DryRun::Warn(msg)) => warnings.push(msg),
            Err(e) => {
                hard = Some(e);
                break;
            }
        }
    }
    for ns in faked {
        if let Err(e) = namespaces.delete(&ns, &DeleteParams::default()).await {
            // Left behind, it is an empty namespace the user declared anyway; say so.
            warn!(namespace = %ns, error = %api_message(&e), "cannot delete the namespace made for the dry run");
        }
    }
    if let Some(e) = hard {
        return Err(e);
    }
    if !warnings.is_empty() {
        let patch = serde_json::json!({"metadata": {"annotations": {annotations::EXTRA_MANIFEST_VALIDATION_WARNING: join_errors(&warnings)}}});
        let api: Api<ImageBasedUpgrade> = Api::all(w.client.clone());
        let params = PatchParams {
            field_manager: Some(CONTROLLER_NAME.into()),
            ..Default::default()
        };
        api.patch(names::IBU, &params, &Patch::Merge(&patch))
            .await
            .map_err(|e| format!("failed to update annotations: {}", api_message(&e)))?;
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(join_errors(&errs))
    }
}

/// Whether the OADP operator is there to back up and restore (§5.7).
pub async fn check_oadp_available(w: &NodeStageWork) -> Result<(), String> {
    let csvs = list_dynamic(
        &w.client,
        "operators.coreos.com",
        "v1alpha1",
        "ClusterServiceVersion",
        "clusterserviceversions",
    )
    .await?;
    let installed = csvs.iter().any(|c| {
        field(c, "/metadata/namespace") == "openshift-adp"
            && field(c, "/metadata/name").contains("oadp-operator")
    });
    if !installed {
        return Err("Please ensure OADP operator is installed in the openshift-adp".into());
    }
    let dpas = list_dynamic(
        &w.client,
        "oadp.openshift.io",
        "v1alpha1",
        "DataProtectionApplication",
        "dataprotectionapplications",
    )
    .await?;
    match dpas
        .iter()
        .filter(|d| field(d, "/metadata/namespace") == "openshift-adp")
        .count()
    {
        0 => Err("No DataProtectionApplication CR found in the openshift-adp".into()),
        1 => Ok(()),
        _ => Err("Only one DataProtectionApplication CR is allowed in the openshift-adp,".into()),
    }
}

/// The Backup/Restore pairs of the OADP ConfigMaps (§5.7).
pub async fn validate_oadp(w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> Result<(), String> {
    let missing = |e: String| format!("OADP configmap not found, error: {e}. Please create the configmap.");
    let Decoded { objects, errors } = load(w, &ibu.spec.oadp_content, missing).await?;
    if !errors.is_empty() {
        return Err(join_errors(&errors));
    }
    let backups: Vec<&Manifest> = objects.iter().filter(|o| o.field("/kind") == "Backup").collect();
    let restores: Vec<&Manifest> = objects.iter().filter(|o| o.field("/kind") == "Restore").collect();
    if !backups.is_empty() || !restores.is_empty() {
        let admin = w.admin_client().await?;
        for (list, what) in [(&backups, "backup"), (&restores, "Restore")] {
            for m in list {
                let name = m.field("/metadata/name");
                let (kind, ns) = (m.field("/kind"), m.field("/metadata/namespace"));
                if let Ok(DryRun::Warn(e)) = dry_run(&admin, m, &kind, &name, &ns).await {
                    let article = if what == "backup" { "Backup" } else { "Restore" };
                    return Err(format!(
                        "Invalid {what} {name} detected in configmap, error: {e}. Please update the invalid {article} in configmap."
                    ));
                }
            }
        }
    }
    let backup_names: HashSet<String> = backups.iter().map(|b| b.field("/metadata/name")).collect();
    for r in &restores {
        let b = r.field("/spec/backupName");
        if !backup_names.contains(&b) {
            return Err(format!(
                "The backup CR {b} defined in restore CR {} not found in OADP configmaps",
                r.field("/metadata/name")
            ));
        }
    }
    if backups.is_empty() || restores.len() != backups.len() {
        return Err("Both backup and restore CRs should be specified in OADP configmaps and each backup CR should be paired with a corresponding restore CR.".into());
    }
    Ok(())
}

/// Objects labelled for `version` inside eligible ACM policies (§5.6).
pub async fn policy_manifest_count(w: &NodeStageWork, version: &str) -> Result<u32, String> {
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

//! Validation of the extra-manifest ConfigMaps at Prep by server-side dry run (spec §5.6).
//! Validation only reports: errors fail Prep, warnings are returned, and the caller writes
//! them as the `extra-manifest.lca.openshift.io/validation-warning` annotation
//! ([`record_warnings`]). The one write a dry run needs — a namespace that the ConfigMaps
//! declare but the cluster lacks — is an explicit, undone step ([`DryRunNamespaces`]).
//! The OADP ConfigMaps are in `oadp`, the policy manifests in `policies`; both share
//! [`load`] and [`dry_run`].

use std::collections::{BTreeSet, HashSet};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::{Scope, pinned_kind};
use lca_api::consts::{annotations, names};
use lca_api::{ConfigMapRef, ImageBasedUpgrade};
use tracing::warn;

use super::NodeStageWork;
use crate::context::CONTROLLER_NAME;
use crate::error::{Error, Result};
use crate::kubeapi;
use lca_core::manifest_decode::{Decoded, Manifest, decode_all, join_errors};

/// Kinds that must never be applied after the pivot (they would reboot the node or fight OLM).
const DISALLOWED: [(&str, &str); 4] = [
    ("machineconfiguration.openshift.io/v1", "MachineConfig"),
    ("operators.coreos.com/v1alpha1", "ClusterServiceVersion"),
    ("operators.coreos.com/v1alpha1", "InstallPlan"),
    ("operators.coreos.com/v1alpha1", "Subscription"),
];

/// Fetch the ConfigMaps (deduplicated) and decode them (`manifest_decode`).
pub(super) async fn load(
    w: &NodeStageWork,
    refs: &[ConfigMapRef],
    missing: impl Fn(&str) -> String + Copy,
) -> Result<Decoded> {
    let mut seen = HashSet::new();
    let mut fetched = Vec::new();
    for r in refs
        .iter()
        .filter(|r| seen.insert((r.namespace.clone(), r.name.clone())))
    {
        let api: Api<ConfigMap> = Api::namespaced(w.client.clone(), &r.namespace);
        let cm = api.get(&r.name).await.map_err(Error::api_in(missing))?;
        fetched.push((format!("{}/{}", r.namespace, r.name), cm.data.unwrap_or_default()));
    }
    Ok(decode_all(
        fetched.iter().map(|(name, data)| (name.clone(), data)),
    ))
}

pub(super) enum DryRun {
    Ok,
    Warn(String),
}

/// Server-side dry run of one object (create, or apply when it exists), as the node's
/// admin: the objects are applied with that identity after the pivot (spec §6.5), so the
/// operator's own least-privilege role must not decide what is valid.
pub(super) async fn dry_run(
    admin: &Client,
    m: &Manifest,
    kind: &str,
    name: &str,
    ns: &str,
) -> Result<DryRun> {
    let api_version = m.field("/apiVersion");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version.as_str()));
    let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
    let Ok((ar, caps)) = pinned_kind(admin, &gvk).await else {
        return Ok(DryRun::Warn(format!(
            "{kind}[{name}] - CRD not deployed on cluster"
        )));
    };
    let dyn_obj: DynamicObject = serde_json::from_value(m.object.clone()).map_err(|e| {
        Error::invalid(format!(
            "{kind}[{name}] in {} of the configMap {}: {e}",
            m.key, m.config_map
        ))
    })?;
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => {
            Api::namespaced_with(admin.clone(), if ns.is_empty() { "default" } else { ns }, &ar)
        }
        Scope::Cluster => Api::all_with(admin.clone(), &ar),
    };
    let create = PostParams {
        dry_run: true,
        ..kubeapi::post_params()
    };
    let res = match api.create(&create, &dyn_obj).await {
        Err(e) if kubeapi::is_status(&e, 409) => {
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
        Err(e) => Err(Error::api(format!(
            "failed to validate manifest with dryrun: {kind}[{name}]"
        ))(e)),
    }
}

/// Namespaces created only so that the objects the ConfigMaps put in them can be dry-run
/// (the ConfigMaps declare them, the cluster does not have them yet). [`Self::remove`]
/// deletes them again.
pub(super) struct DryRunNamespaces {
    api: Api<Namespace>,
    created: Vec<String>,
}

impl DryRunNamespaces {
    pub(super) fn new(admin: &Client) -> Self {
        Self {
            api: Api::all(admin.clone()),
            created: Vec::new(),
        }
    }

    /// Whether `ns` exists on the cluster.
    async fn exists(&self, ns: &str) -> Result<bool> {
        let found = kubeapi::get_optional(&self.api, ns)
            .await
            .map_err(Error::api(format!("failed to get namespace {ns}")))?;
        Ok(found.is_some())
    }

    async fn create(&mut self, ns: &str) -> Result<()> {
        let tmp = Namespace {
            metadata: kube::api::ObjectMeta {
                name: Some(ns.to_string()),
                ..Default::default()
            },
            ..Default::default()
        };
        kubeapi::create_if_missing(&self.api, &tmp)
            .await
            .map_err(Error::api(format!("failed to create namespace {ns} for dryrun")))?;
        self.created.push(ns.to_string());
        Ok(())
    }

    pub(super) async fn remove(self) {
        for ns in self.created {
            if let Err(e) = kubeapi::delete_ignoring_absent(&self.api, &ns, &DeleteParams::default()).await {
                // Left behind, it is an empty namespace the user declared anyway; say so.
                warn!(namespace = %ns, error = %crate::error::api_message(&e), "cannot delete the namespace made for the dry run");
            }
        }
    }
}

/// Validate the extra-manifest ConfigMaps: the warnings (missing CRDs and namespaces, dry
/// runs the server rejected) go to `warnings`, also when the validation fails; `Err` when
/// Prep must fail.
pub async fn validate_extra_manifests(
    w: &NodeStageWork,
    ibu: &ImageBasedUpgrade,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let missing = |e: &str| {
        format!("the extraManifests configMap is not found, error: {e}. Please create the configMap.")
    };
    let Decoded { objects, errors } = load(w, &ibu.spec.extra_manifests, missing).await?;
    if !errors.is_empty() {
        // Undecodable input: nothing to dry-run meaningfully.
        return Err(Error::invalid(join_errors(&errors)));
    }
    let admin = w.admin_client().await?;
    let mut namespaces = DryRunNamespaces::new(&admin);
    let checked = check_all(&admin, &objects, &mut namespaces).await;
    namespaces.remove().await;
    let (found, errs) = checked?;
    warnings.extend(found);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(Error::invalid(join_errors(&errs)))
    }
}

/// Each object: refused kinds and nameless objects are errors, the rest is dry-run. The
/// warnings and the errors, or the first failure that stops the validation.
async fn check_all(
    admin: &Client,
    objects: &[Manifest],
    namespaces: &mut DryRunNamespaces,
) -> Result<(Vec<String>, Vec<String>)> {
    let (mut declared, mut warnings, mut errs) = (BTreeSet::new(), Vec::new(), Vec::new());
    for m in objects {
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
        if !ns.is_empty() && ns != "default" && !namespaces.exists(&ns).await? {
            if !declared.contains(&ns) {
                warnings.push(format!(
                    "{kind}[{name}] - namespace {ns} not found on cluster or not added in configmap in right order"
                ));
                continue;
            }
            namespaces.create(&ns).await?;
        }
        if let DryRun::Warn(msg) = dry_run(admin, m, &kind, &name, &ns).await? {
            warnings.push(msg);
        }
    }
    Ok((warnings, errs))
}

/// Write the validation warnings as the IBU's `validation-warning` annotation.
pub async fn record_warnings(client: &Client, warnings: &[String]) -> Result<()> {
    let patch = serde_json::json!({"metadata": {"annotations": {
        annotations::EXTRA_MANIFEST_VALIDATION_WARNING: join_errors(warnings)
    }}});
    let api: Api<ImageBasedUpgrade> = Api::all(client.clone());
    kubeapi::merge_patch(&api, names::IBU, &patch)
        .await
        .map_err(Error::api("failed to update annotations"))?;
    Ok(())
}

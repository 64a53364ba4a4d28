//! Pre-pivot export of the policy and extra manifests (spec §6.1 step 6) into the new
//! stateroot: `opt/policy-manifests/` (one group per policy) and `opt/extra-manifests/`
//! (one group per apply-wave), files named as `lca_core::manifest_layout` says, so either
//! implementation's post-pivot applies them in order.

use std::path::Path;

use lca_api::ImageBasedUpgrade;
use lca_api::consts::annotations;
use lca_core::manifest_layout::{self, ObjectId};
use serde_json::Value;

use super::Ran;
use super::prepivot::stage_dir;
use crate::cluster_health::crd_exists;
use crate::error::{Error, Result};
use crate::node_work::NodeStageWork;
use lca_core::manifest_decode::{field, join_errors, strip_instance_fields};

/// Relative to the new stateroot's `var` (`/opt/...` on the booted node).
pub const POLICY_MANIFESTS: &str = "opt/policy-manifests";
pub const EXTRA_MANIFESTS: &str = "opt/extra-manifests";

const POLICIES_CRD: &str = "policies.policy.open-cluster-management.io";

pub async fn export(w: &NodeStageWork, ibu: &ImageBasedUpgrade, new_var: &Path) -> Result<Ran> {
    let version = &ibu.spec.seed_image_ref.version;
    let policies = if crd_exists(&w.client, POLICIES_CRD)
        .await
        .map_err(Error::api("failed to check the policies CRD"))?
    {
        crate::node_work::policies::policy_manifests(w, version).await?
    } else {
        Vec::new()
    };
    if let Some(expected) = ibu
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotations::TARGET_OCP_VERSION_MANIFEST_COUNT))
    {
        let found: usize = policies.iter().map(Vec::len).sum();
        if lca_core::version::parse_manifest_count(expected).ok() != Some(found as u32) {
            return Ok(Ran::Failed(format!(
                "The labeled manifests count found in policies {found} does not match the expected manifests count {expected}"
            )));
        }
    }
    if let Some(bad) = policies
        .iter()
        .flatten()
        .map(|o| object_id(o, None))
        .find(|id| !safe(id))
    {
        return Ok(Ran::Failed(unsafe_name(&bad)));
    }
    let mut files = Vec::new();
    for (g, group) in policies.iter().enumerate() {
        for (j, object) in group.iter().enumerate() {
            let id = object_id(object, None);
            files.push((manifest_layout::file_path(g + 1, j + 1, &id), object));
        }
    }
    let fs = w.fs();
    stage_dir(&fs, &new_var.join(POLICY_MANIFESTS), |dir| {
        write_all(w, dir, &files)
    })?;

    let missing = |e: &str| {
        format!("the extraManifests configMap is not found, error: {e}. Please create the configMap.")
    };
    let decoded = crate::node_work::extra_manifests::load(w, &ibu.spec.extra_manifests, missing).await?;
    if !decoded.errors.is_empty() {
        return Ok(Ran::Failed(join_errors(&decoded.errors)));
    }
    let mut ids = Vec::with_capacity(decoded.objects.len());
    for m in &decoded.objects {
        let wave = m.wave().map_err(|e| Error::invalid(e.to_string()))?;
        ids.push(object_id(&m.object, wave));
    }
    if let Some(bad) = ids.iter().find(|id| !safe(id)) {
        return Ok(Ran::Failed(unsafe_name(bad)));
    }
    let files: Vec<_> = manifest_layout::layout(&ids)
        .into_iter()
        .map(|p| (p.path, &decoded.objects[p.index].object))
        .collect();
    stage_dir(&fs, &new_var.join(EXTRA_MANIFESTS), |dir| {
        write_all(w, dir, &files)
    })?;
    tracing::info!(
        policy = policies.iter().map(Vec::len).sum::<usize>(),
        extra = files.len(),
        "exported the manifests"
    );
    Ok(Ran::Done)
}

/// A file name part taken from the object: a path separator or `..` in it would place the
/// file outside its group (the server rejects such names anyway, but it sees them only later).
pub(super) fn safe(id: &ObjectId) -> bool {
    [&id.kind, &id.name, &id.namespace]
        .iter()
        .all(|p| !p.contains('/') && !p.contains('\0') && p.as_str() != ".." && p.as_str() != ".")
}

fn unsafe_name(id: &ObjectId) -> String {
    format!(
        "{}[{}] cannot be exported: its kind, name and namespace must not contain '/'",
        id.kind, id.name
    )
}

fn object_id(object: &Value, wave: Option<i64>) -> ObjectId {
    ObjectId {
        kind: field(object, "/kind"),
        name: field(object, "/metadata/name"),
        namespace: field(object, "/metadata/namespace"),
        wave,
    }
}

/// Write each object as YAML to its relative path under `dir`, without the fields that
/// belong to the cluster it came from.
pub(super) fn write_all(w: &NodeStageWork, dir: &Path, files: &[(String, &Value)]) -> Result<()> {
    let fs = w.fs();
    for (rel, object) in files {
        let mut object = (*object).clone();
        strip_instance_fields(&mut object);
        let yaml = serde_norway::to_string(&object)
            .map_err(|e| Error::invalid(format!("cannot write {rel} as YAML: {e}")))?;
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs.create_private_dir(parent)?;
        }
        fs.write_atomic(&path, yaml.as_bytes())?;
    }
    Ok(())
}

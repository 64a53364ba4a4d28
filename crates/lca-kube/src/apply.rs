//! Applying the manifests that pre-pivot exported (spec §6.5 step 4): the groups of a
//! manifests directory in order (`lca_core::manifest_layout`), every object created, or
//! replaced or merged per its `lca.openshift.io/apply-type`, as the node's admin. Objects
//! the server refuses fail the upgrade; an unreachable server is retried.

use std::path::Path;

use kube::Client;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams};
use kube::discovery::{Scope, pinned_kind};
use lca_api::consts::annotations;
use lca_core::manifest_layout;
use serde_json::Value;

use lca_hostops::NodeFs;

use crate::{Error, Result};

/// A string field of an object ("" when absent or not a string).
pub use lca_core::manifest_decode::field;

/// Why applying stopped.
pub enum ApplyError {
    /// The server refused an object (invalid, unknown kind): the upgrade fails.
    Refused(String),
    /// Anything a retry may cure.
    Retry(Error),
}

impl From<Error> for ApplyError {
    fn from(e: Error) -> Self {
        ApplyError::Retry(e)
    }
}

impl From<lca_hostops::Error> for ApplyError {
    fn from(e: lca_hostops::Error) -> Self {
        ApplyError::Retry(e.into())
    }
}

impl std::fmt::Display for ApplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApplyError::Refused(m) => f.write_str(m),
            ApplyError::Retry(e) => e.fmt(f),
        }
    }
}

/// Apply every object under the group directories of `dir` (absent: nothing to do) in
/// order; returns how many.
pub async fn apply_dir(fs: &NodeFs<'_>, admin: &Client, dir: &Path) -> Result<usize, ApplyError> {
    let mut count = 0;
    for group in manifest_layout::group_order(&fs.list_dir(dir)?) {
        let gdir = dir.join(&group);
        for file in manifest_layout::file_order(&fs.list_dir(&gdir)?) {
            count += apply_file(fs, admin, &gdir.join(&file), &format!("{group}/{file}")).await?;
        }
    }
    Ok(count)
}

/// Apply every file directly in `dir` (absent: nothing), in name order; returns how many
/// objects.
pub async fn apply_files(fs: &NodeFs<'_>, admin: &Client, dir: &Path) -> Result<usize, ApplyError> {
    let mut count = 0;
    for file in fs.list_dir(dir)? {
        let path = dir.join(&file);
        if fs.symlink_metadata(&path)?.is_some_and(|m| m.is_file()) {
            count += apply_file(fs, admin, &path, &file).await?;
        }
    }
    Ok(count)
}

/// Apply the objects of one file (`name` says which, in errors); returns how many.
async fn apply_file(fs: &NodeFs<'_>, admin: &Client, path: &Path, name: &str) -> Result<usize, ApplyError> {
    let text = fs.read_string(path)?;
    let objects = documents(&text).map_err(|e| ApplyError::Refused(format!("{name}: {e}")))?;
    let count = objects.len();
    for object in objects {
        apply_one(admin, object).await?;
    }
    Ok(count)
}

/// The objects of a multi-document YAML or JSON file, `items` of a list expanded.
pub fn documents(text: &str) -> std::result::Result<Vec<Value>, String> {
    let mut out = Vec::new();
    for doc in serde_norway::Deserializer::from_str(text) {
        let v: Value = serde::Deserialize::deserialize(doc).map_err(|e| e.to_string())?;
        match v.get("items").and_then(Value::as_array) {
            Some(items) if field(&v, "/kind").ends_with("List") => out.extend(items.iter().cloned()),
            _ if v.is_null() => {}
            _ => out.push(v),
        }
    }
    Ok(out)
}

/// Create the object, or replace / merge it into the one that exists.
pub async fn apply_one(admin: &Client, mut object: Value) -> Result<(), ApplyError> {
    let apply_type = object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(annotations::APPLY_TYPE))
        .and_then(Value::as_str)
        .unwrap_or("replace")
        .to_string();
    if let Some(a) = object
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        a.remove(annotations::APPLY_TYPE);
    }
    if let Some(m) = object.pointer_mut("/metadata").and_then(Value::as_object_mut) {
        m.remove("resourceVersion");
        m.remove("uid");
    }
    let (kind, name, ns) = (
        field(&object, "/kind"),
        field(&object, "/metadata/name"),
        field(&object, "/metadata/namespace"),
    );
    let refused = |e: String| ApplyError::Refused(format!("failed to apply manifest: {e}"));
    let api_version = field(&object, "/apiVersion");
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version.as_str()));
    let gvk = GroupVersionKind::gvk(group, version, &kind);
    let (ar, caps) = pinned_kind(admin, &gvk)
        .await
        .map_err(|e| refused(format!("no kind {kind} in {api_version}: {e}")))?;
    let api: Api<DynamicObject> = match caps.scope {
        Scope::Namespaced => {
            Api::namespaced_with(admin.clone(), if ns.is_empty() { "default" } else { &ns }, &ar)
        }
        Scope::Cluster => Api::all_with(admin.clone(), &ar),
    };
    let desired: DynamicObject =
        serde_json::from_value(object.clone()).map_err(|e| refused(format!("{kind}[{name}]: {e}")))?;
    let classify = |e: kube::Error| match &e {
        kube::Error::Api(s) if s.code == 400 || s.code == 422 => {
            refused(format!("{kind}[{name}]: {}", s.message))
        }
        _ => ApplyError::Retry(Error::Api {
            what: format!("failed to apply {kind}[{name}]"),
            source: e,
        }),
    };
    let existing = api.get_opt(&name).await.map_err(classify)?;
    match existing {
        None => api.create(&PostParams::default(), &desired).await.map(drop),
        Some(_) if apply_type == "merge" => api
            .patch(&name, &PatchParams::default(), &Patch::Merge(&object))
            .await
            .map(drop),
        Some(current) => {
            let mut replacement = desired;
            replacement.metadata.resource_version = current.metadata.resource_version;
            api.replace(&name, &PostParams::default(), &replacement)
                .await
                .map(drop)
        }
    }
    .map_err(classify)?;
    tracing::info!(%kind, %name, namespace = %ns, apply_type, "applied");
    Ok(())
}

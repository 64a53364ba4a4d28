//! OADP across the pivot (spec §5.7, §6.2, §6.3, §2.6 step 4): the user's Backup and Restore
//! CRs come in `oadpContent` ConfigMaps; Backups run before the pivot (`backup`), Restores
//! after it (`restore`), and abort or finalize removes what the Backups left (`cleanup`).
//! The rules (apply-label shapes, phases, waves) are `lca_core::oadp`; here are the API
//! calls around them. Velero does the work: this operator creates its CRs and reads their
//! phases.

mod backup;
mod cleanup;
mod pv;
mod restore;
mod validate;

use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PostParams};
use lca_api::ImageBasedUpgrade;
use lca_api::consts::names::OADP_NAMESPACE;
use lca_core::manifest_decode::{Decoded, Manifest, join_errors};
use lca_core::oadp::LabelTarget;
use serde_json::Value;

use super::NodeStageWork;
use crate::error::{Error, Result};
use crate::kubeapi;

pub use backup::handle_backup;
pub use cleanup::cleanup;
pub use restore::{ensure_configuration, handle_restore};
pub use validate::{check_oadp_available, oadp_installed, validate_oadp};

/// The Velero and OADP kinds this operator reads or writes, all in `openshift-adp`.
#[derive(Clone, Copy, Debug)]
pub enum Velero {
    Backup,
    Restore,
    DeleteBackupRequest,
    DataProtectionApplication,
}

impl Velero {
    pub fn resource(self) -> ApiResource {
        let (group, version, kind, plural) = match self {
            Velero::Backup => ("velero.io", "v1", "Backup", "backups"),
            Velero::Restore => ("velero.io", "v1", "Restore", "restores"),
            Velero::DeleteBackupRequest => ("velero.io", "v1", "DeleteBackupRequest", "deletebackuprequests"),
            Velero::DataProtectionApplication => (
                "oadp.openshift.io",
                "v1alpha1",
                "DataProtectionApplication",
                "dataprotectionapplications",
            ),
        };
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
    }

    pub fn api(self, client: &Client) -> Api<DynamicObject> {
        Api::namespaced_with(client.clone(), OADP_NAMESPACE, &self.resource())
    }

    pub async fn get(self, client: &Client, name: &str) -> Result<Option<Value>> {
        let obj = kubeapi::get_optional(&self.api(client), name)
            .await
            .map_err(Error::api(format!("failed to get {self:?} {name}")))?;
        Ok(obj.and_then(|o| serde_json::to_value(o).ok()))
    }

    /// The objects with `label` (`key=value`), or all when `None`.
    pub async fn list(self, client: &Client, label: Option<&str>) -> Result<Vec<Value>> {
        let params = ListParams {
            label_selector: label.map(str::to_string),
            ..Default::default()
        };
        match self.api(client).list(&params).await {
            Ok(list) => Ok(list
                .items
                .into_iter()
                .filter_map(|mut o| {
                    // List items may come without their type; files written from them need it.
                    let ar = self.resource();
                    o.types = Some(kube::core::TypeMeta {
                        api_version: ar.api_version,
                        kind: ar.kind,
                    });
                    serde_json::to_value(o).ok()
                })
                .collect()),
            Err(e) if kubeapi::is_not_found(&e) => Ok(Vec::new()),
            Err(e) => Err(Error::api(format!("failed to list {self:?}"))(e)),
        }
    }

    /// Create `object` (JSON) in `openshift-adp`; one already there is left as it is.
    pub async fn create(self, client: &Client, object: &Value) -> Result<()> {
        let mut obj: DynamicObject = serde_json::from_value(object.clone())
            .map_err(|e| Error::invalid(format!("{self:?} cannot be created: {e}")))?;
        obj.metadata.namespace = Some(OADP_NAMESPACE.into());
        match self.api(client).create(&PostParams::default(), &obj).await {
            Ok(_) => Ok(()),
            Err(e) if kubeapi::is_status(&e, 409) => Ok(()),
            Err(e) => Err(Error::api(format!(
                "failed to create {self:?} {}",
                obj.metadata.name.unwrap_or_default()
            ))(e)),
        }
    }
}

/// The user's Backups and Restores, each list in apply-wave order.
pub struct Content {
    pub backups: Vec<Manifest>,
    pub restores: Vec<Manifest>,
}

/// Fetch and decode the `oadpContent` ConfigMaps. Anything but `velero.io/v1` Backups and
/// Restores is refused: applying it would need rules that the user did not ask for.
pub async fn content(w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> Result<Content> {
    let missing = |e: &str| format!("OADP configmap not found, error: {e}. Please create the configmap.");
    let Decoded { objects, errors } =
        super::extra_manifests::load(w, &ibu.spec.oadp_content, missing).await?;
    if !errors.is_empty() {
        return Err(Error::invalid(join_errors(&errors)));
    }
    let (mut backups, mut restores) = (Vec::new(), Vec::new());
    for m in objects {
        match (m.field("/apiVersion").as_str(), m.field("/kind").as_str()) {
            ("velero.io/v1", "Backup") => backups.push(m),
            ("velero.io/v1", "Restore") => restores.push(m),
            (api_version, kind) => {
                return Err(Error::invalid(format!(
                    "{kind}[{}] ({api_version}) in {} of the configMap {} is not allowed in OADP configmaps: only velero.io/v1 Backup and Restore CRs are",
                    m.field("/metadata/name"),
                    m.key,
                    m.config_map
                )));
            }
        }
    }
    Ok(Content { backups, restores })
}

/// The objects a Backup's `lca.openshift.io/apply-label` annotation names (none without it).
pub fn apply_label_targets(backup: &Value) -> Result<Vec<LabelTarget>> {
    match backup
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(lca_api::consts::annotations::APPLY_LABEL))
        .and_then(Value::as_str)
    {
        Some(value) => lca_core::oadp::parse_apply_label(value).map_err(Error::invalid),
        None => Ok(Vec::new()),
    }
}

/// Merge-patch (or dry-run) the object `t` names with `patch`, as `client`.
pub async fn patch_target(
    client: &Client,
    t: &LabelTarget,
    patch: &Value,
    dry_run: bool,
) -> kube::Result<()> {
    // The URL needs only group, version and plural; the kind is not known from the entry.
    let gvk = GroupVersionKind::gvk(&t.group, &t.version, &t.resource);
    let ar = ApiResource::from_gvk_with_plural(&gvk, &t.resource);
    let api: Api<DynamicObject> = if t.namespace.is_empty() {
        Api::all_with(client.clone(), &ar)
    } else {
        Api::namespaced_with(client.clone(), &t.namespace, &ar)
    };
    let mut params = kubeapi::patch_params();
    params.dry_run = dry_run;
    api.patch(&t.name, &params, &Patch::Merge(patch))
        .await
        .map(|_| ())
}

/// `ClusterVersion.spec.clusterID`: the label that tells this cluster's Backups from others'.
pub async fn cluster_id(client: &Client) -> Result<String> {
    let cv = super::validate::cluster_version(client).await?;
    let id = lca_core::manifest_decode::field(&cv, "/spec/clusterID");
    if id.is_empty() {
        return Err(Error::state("ClusterVersion version has no spec.clusterID"));
    }
    Ok(id)
}

/// `label=value` for a list call.
pub fn selector(label: &str, value: &str) -> String {
    format!("{label}={value}")
}

/// The `config.openshift.io/clusterID` label of an object.
pub fn cluster_label(obj: &Value) -> String {
    obj.pointer("/metadata/labels")
        .and_then(|l| l.get(lca_api::consts::labels::CLUSTER_ID))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

//! Pre-pivot export of the application configuration (spec §6.1 step 5, §6.3): the seed's
//! cluster has no DataProtectionApplication, so the DPA, the Secrets its backup locations
//! use, and the user's Restores (by apply-wave) go to the new stateroot's `/var/opt/OADP`
//! in upstream's layout — `dpa/<name>.yaml`, `secret/<name>.yaml`,
//! `veleroRestore/restore<N>/<j>_<name>_<namespace>.yaml` — for `lca-cli post-pivot` and the
//! operator's restore to find, whichever implementation runs there. The directory is
//! written whole or not at all; Secrets stay in a private directory.

use std::path::Path;

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;
use lca_api::ImageBasedUpgrade;
use lca_api::consts::names::OADP_NAMESPACE;
use lca_core::manifest_decode::field;
use lca_core::manifest_layout::ObjectId;
use lca_core::oadp;
use serde_json::Value;

use super::Ran;
use super::export_manifests::{safe, write_all};
use super::prepivot::stage_dir;
use crate::error::{Error, Result};
use crate::node_work::NodeStageWork;
use crate::node_work::oadp::{Velero, content};

/// Relative to the new stateroot's `var`.
pub const OADP: &str = "opt/OADP";

pub async fn export(w: &NodeStageWork, ibu: &ImageBasedUpgrade, new_var: &Path) -> Result<Ran> {
    if ibu.spec.oadp_content.is_empty() {
        return Ok(Ran::Done);
    }
    let restores = match content(w, ibu).await {
        Ok(c) => c.restores,
        Err(e) if e.category() == lca_core::Category::Invalid => return Ok(Ran::Failed(e.to_string())),
        Err(e) => return Err(e),
    };
    let mut files: Vec<(String, Value)> = Vec::new();
    let dpas = Velero::DataProtectionApplication.list(&w.client, None).await?;
    if dpas.len() > 1 {
        return Ok(Ran::Failed(
            "Only one DataProtectionApplication CR is allowed in the openshift-adp".into(),
        ));
    }
    if let Some(dpa) = dpas.into_iter().next() {
        for name in credential_secrets(&dpa) {
            match secret(w, &name).await? {
                Some(s) => files.push((format!("{}/{name}.yaml", oadp::SECRET_DIR), s)),
                None => {
                    return Ok(Ran::Failed(format!(
                        "the Secret {name} that DataProtectionApplication {} uses is not found in {OADP_NAMESPACE}",
                        field(&dpa, "/metadata/name")
                    )));
                }
            }
        }
        let mut dpa = dpa;
        if let Some(obj) = dpa.as_object_mut() {
            obj.remove("status");
        }
        files.push((
            format!("{}/{}.yaml", oadp::DPA_DIR, field(&dpa, "/metadata/name")),
            dpa,
        ));
    }
    let mut keyed = Vec::with_capacity(restores.len());
    for r in &restores {
        let id = ObjectId {
            kind: "Restore".into(),
            name: r.field("/metadata/name"),
            namespace: r.field("/metadata/namespace"),
            wave: None,
        };
        if !safe(&id) {
            return Ok(Ran::Failed(format!(
                "Restore[{}] cannot be exported: its name and namespace must not contain '/'",
                id.name
            )));
        }
        keyed.push((id.name, r.wave().map_err(|e| Error::invalid(e.to_string()))?));
    }
    for (g, wave) in oadp::waves(&keyed).iter().enumerate() {
        for (j, &i) in wave.iter().enumerate() {
            let r = &restores[i];
            let path = oadp::restore_path(g + 1, j + 1, &keyed[i].0, &r.field("/metadata/namespace"));
            files.push((format!("{}/{path}", oadp::RESTORE_DIR), r.object.clone()));
        }
    }
    let refs: Vec<(String, &Value)> = files.iter().map(|(p, v)| (p.clone(), v)).collect();
    stage_dir(&w.fs(), &new_var.join(OADP), |dir| write_all(w, dir, &refs))?;
    tracing::info!(files = refs.len(), "exported the OADP configuration");
    Ok(Ran::Done)
}

/// The credential Secrets of the DPA's backup locations.
fn credential_secrets(dpa: &Value) -> Vec<String> {
    let mut names: Vec<String> = dpa
        .pointer("/spec/backupLocations")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|l| field(l, "/velero/credential/name"))
        .filter(|n| !n.is_empty())
        .collect();
    names.sort();
    names.dedup();
    names
}

async fn secret(w: &NodeStageWork, name: &str) -> Result<Option<Value>> {
    let api: Api<Secret> = Api::namespaced(w.client.clone(), OADP_NAMESPACE);
    let s = crate::kubeapi::get_optional(&api, name)
        .await
        .map_err(Error::api(format!("failed to get Secret {name}")))?;
    Ok(s.and_then(|s| {
        let mut v = serde_json::to_value(s).ok()?;
        v["apiVersion"] = "v1".into();
        v["kind"] = "Secret".into();
        Some(v)
    }))
}

#[cfg(test)]
mod tests {
    use super::credential_secrets;
    use serde_json::json;

    #[test]
    fn each_credential_secret_is_exported_once_and_a_dpa_without_any_exports_none() {
        let dpa = json!({"spec": {"backupLocations": [
            {"velero": {"credential": {"name": "cloud-credentials", "key": "cloud"}}},
            {"velero": {"credential": {"name": "cloud-credentials", "key": "other"}}},
            {"velero": {"provider": "aws"}},
            {"bucket": {"credential": {"name": "not-a-velero-location"}}},
        ]}});
        assert_eq!(credential_secrets(&dpa), ["cloud-credentials"]);
        assert!(credential_secrets(&json!({"spec": {"backupLocations": [{"velero": {}}]}})).is_empty());
        assert!(credential_secrets(&json!({"spec": {}})).is_empty());
    }
}

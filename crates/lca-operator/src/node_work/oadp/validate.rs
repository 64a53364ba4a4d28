//! The OADP checks of Prep (spec §5.7): the operator and one DataProtectionApplication are
//! there (the DPA's `Reconciled` condition and the storage locations are the health gate's),
//! and the OADP ConfigMaps hold valid Backup/Restore pairs: each dry-run as the node's admin
//! like the extra manifests, each object of an apply-label annotation able to take the
//! backup label (dry-run merge patch), stale Backups of another cluster asked to go.

use std::collections::HashSet;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use lca_api::ImageBasedUpgrade;
use lca_api::consts::labels;
use serde_json::json;

use super::{Content, apply_label_targets, patch_target};
use crate::error::{Error, Result};
use crate::node_work::NodeStageWork;
use crate::node_work::extra_manifests::{DryRun, dry_run};
use crate::node_work::validate::list_dynamic;
use lca_core::manifest_decode::{Manifest, field};

/// Whether the OADP operator is there to back up and restore (§5.7).
pub async fn check_oadp_available(w: &NodeStageWork) -> Result<()> {
    if !oadp_installed(w).await? {
        return Err(Error::invalid(
            "Please ensure OADP operator is installed in the openshift-adp",
        ));
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
        0 => Err(Error::invalid(
            "No DataProtectionApplication CR found in the openshift-adp",
        )),
        1 => Ok(()),
        _ => Err(Error::invalid(
            "Only one DataProtectionApplication CR is allowed in the openshift-adp,",
        )),
    }
}

/// Whether OADP is installed: its operator's CSV in `openshift-adp` and its CRDs (§5.7).
/// Abort and finalize look for Backups to remove only then.
pub async fn oadp_installed(w: &NodeStageWork) -> Result<bool> {
    let csvs = list_dynamic(
        &w.client,
        "operators.coreos.com",
        "v1alpha1",
        "ClusterServiceVersion",
        "clusterserviceversions",
    )
    .await?;
    let csv = csvs.iter().any(|c| {
        field(c, "/metadata/namespace") == "openshift-adp"
            && field(c, "/metadata/name").contains("oadp-operator")
    });
    let api: Api<CustomResourceDefinition> = Api::all(w.client.clone());
    let crds = api
        .list(&Default::default())
        .await
        .map_err(Error::api("failed to list CRDs"))?;
    Ok(csv
        && crds.items.iter().any(|c| {
            c.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.ends_with("oadp.openshift.io"))
        }))
}

/// The Backup/Restore pairs of the OADP ConfigMaps (§5.7).
pub async fn validate_oadp(w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> Result<()> {
    let Content { backups, restores } = super::content(w, ibu).await?;
    if !backups.is_empty() || !restores.is_empty() {
        let admin = w.admin_client().await?;
        for m in &backups {
            if let Some(e) = dry_run_error(&admin, m).await? {
                return Err(invalid_backup(m, &e));
            }
            let label = json!({"metadata": {"labels": {labels::BACKUP: m.field("/metadata/name")}}});
            let targets = apply_label_targets(&m.object).map_err(|e| invalid_backup(m, &e.to_string()))?;
            for t in &targets {
                if let Err(e) = patch_target(&admin, t, &label, true).await {
                    let what = format!(
                        "the apply-label object {}/{}/{}{} cannot be labelled: {}",
                        t.api_version(),
                        t.resource,
                        if t.namespace.is_empty() {
                            String::new()
                        } else {
                            format!("{}/", t.namespace)
                        },
                        t.name,
                        crate::error::api_message(&e)
                    );
                    return Err(invalid_backup(m, &what));
                }
            }
        }
        for m in &restores {
            if let Some(e) = dry_run_error(&admin, m).await? {
                return Err(Error::invalid(format!(
                    "Invalid Restore {} detected in configmap, error: {e}. Please update the invalid Restore in configmap.",
                    m.field("/metadata/name")
                )));
            }
        }
    }
    let backup_names: HashSet<String> = backups.iter().map(|b| b.field("/metadata/name")).collect();
    for r in &restores {
        let b = r.field("/spec/backupName");
        if !backup_names.contains(&b) {
            return Err(Error::invalid(format!(
                "The backup CR {b} defined in restore CR {} not found in OADP configmaps",
                r.field("/metadata/name")
            )));
        }
    }
    if backups.is_empty() || restores.len() != backups.len() {
        return Err(Error::invalid(
            "Both backup and restore CRs should be specified in OADP configmaps and each backup CR should be paired with a corresponding restore CR.",
        ));
    }
    // Backups of another cluster under these names would be taken for ours: ask for their
    // deletion now; the Upgrade's backup step waits for it.
    let cluster_id = super::cluster_id(&w.client).await?;
    let names: Vec<String> = backup_names.into_iter().collect();
    super::backup::remove_stale(&w.client, &names, &cluster_id)
        .await
        .map_err(|e| Error::invalid(format!("Failed to cleanup stale Backups: {e}")))?;
    Ok(())
}

fn invalid_backup(m: &Manifest, e: &str) -> Error {
    Error::invalid(format!(
        "Invalid backup {} detected in configmap, error: {e}. Please update the invalid Backup in configmap.",
        m.field("/metadata/name")
    ))
}

/// The server's objection to creating `m` (an existing object of that name is fine).
async fn dry_run_error(admin: &kube::Client, m: &Manifest) -> Result<Option<String>> {
    let name = m.field("/metadata/name");
    let (kind, ns) = (m.field("/kind"), m.field("/metadata/namespace"));
    Ok(match dry_run(admin, m, &kind, &name, &ns).await? {
        DryRun::Warn(e) => Some(e),
        DryRun::Ok => None,
    })
}

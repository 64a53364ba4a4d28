//! The OADP checks of Prep (spec §5.7): the operator and one DataProtectionApplication are
//! there, and the OADP ConfigMaps hold valid Backup/Restore pairs (dry-run as the node's
//! admin, like the extra manifests).

use std::collections::HashSet;

use lca_api::ImageBasedUpgrade;

use super::NodeStageWork;
use super::extra_manifests::{DryRun, dry_run, load};
use super::manifest_decode::{Decoded, Manifest, field, join_errors};
use super::validate::list_dynamic;
use crate::error::{Error, Result};

/// Whether the OADP operator is there to back up and restore (§5.7).
pub async fn check_oadp_available(w: &NodeStageWork) -> Result<()> {
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

/// The Backup/Restore pairs of the OADP ConfigMaps (§5.7).
pub async fn validate_oadp(w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> Result<()> {
    let missing = |e: &str| format!("OADP configmap not found, error: {e}. Please create the configmap.");
    let Decoded { objects, errors } = load(w, &ibu.spec.oadp_content, missing).await?;
    if !errors.is_empty() {
        return Err(Error::invalid(join_errors(&errors)));
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
                    return Err(Error::invalid(format!(
                        "Invalid {what} {name} detected in configmap, error: {e}. Please update the invalid {article} in configmap."
                    )));
                }
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
    Ok(())
}

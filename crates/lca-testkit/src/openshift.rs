//! OpenShift API fixtures for a plain kube-apiserver: minimal CRDs (schemaless,
//! `x-kubernetes-preserve-unknown-fields`, status subresource) for the OpenShift, OLM, ACM,
//! Velero and OADP kinds the operator reads, and helpers that make the cluster look like a
//! *healthy single-node OpenShift* (spec §6.6) and let a test break one piece of it.
//!
//! Everything goes through the admin client as dynamic objects; statuses are written through
//! the status subresource, as the real operators would.

use std::collections::BTreeMap;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::{ControlPlane, Error, Result, kube_err};

/// One fixture kind: group, version, kind, plural, cluster-scoped.
#[derive(Clone, Copy, Debug)]
pub struct Kind {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
    pub plural: &'static str,
    pub cluster_scoped: bool,
}

const fn k(
    group: &'static str,
    version: &'static str,
    kind: &'static str,
    plural: &'static str,
    cluster_scoped: bool,
) -> Kind {
    Kind {
        group,
        version,
        kind,
        plural,
        cluster_scoped,
    }
}

pub const CLUSTER_VERSION: Kind = k(
    "config.openshift.io",
    "v1",
    "ClusterVersion",
    "clusterversions",
    true,
);
pub const CLUSTER_OPERATOR: Kind = k(
    "config.openshift.io",
    "v1",
    "ClusterOperator",
    "clusteroperators",
    true,
);
pub const PROXY: Kind = k("config.openshift.io", "v1", "Proxy", "proxies", true);
pub const INFRASTRUCTURE: Kind = k(
    "config.openshift.io",
    "v1",
    "Infrastructure",
    "infrastructures",
    true,
);
pub const NETWORK: Kind = k("config.openshift.io", "v1", "Network", "networks", true);
pub const MACHINE_CONFIG_POOL: Kind = k(
    "machineconfiguration.openshift.io",
    "v1",
    "MachineConfigPool",
    "machineconfigpools",
    true,
);
pub const MACHINE_CONFIG: Kind = k(
    "machineconfiguration.openshift.io",
    "v1",
    "MachineConfig",
    "machineconfigs",
    true,
);
pub const CSV: Kind = k(
    "operators.coreos.com",
    "v1alpha1",
    "ClusterServiceVersion",
    "clusterserviceversions",
    false,
);
pub const POLICY: Kind = k(
    "policy.open-cluster-management.io",
    "v1",
    "Policy",
    "policies",
    false,
);
pub const BACKUP: Kind = k("velero.io", "v1", "Backup", "backups", false);
pub const RESTORE: Kind = k("velero.io", "v1", "Restore", "restores", false);
pub const DELETE_BACKUP_REQUEST: Kind = k(
    "velero.io",
    "v1",
    "DeleteBackupRequest",
    "deletebackuprequests",
    false,
);
pub const BACKUP_STORAGE_LOCATION: Kind = k(
    "velero.io",
    "v1",
    "BackupStorageLocation",
    "backupstoragelocations",
    false,
);
pub const DPA: Kind = k(
    "oadp.openshift.io",
    "v1alpha1",
    "DataProtectionApplication",
    "dataprotectionapplications",
    false,
);
/// Optional kinds a test installs to reproduce a seedgen rejection or a health failure.
pub const KLUSTERLET: Kind = k(
    "operator.open-cluster-management.io",
    "v1",
    "Klusterlet",
    "klusterlets",
    true,
);
pub const LOCAL_VOLUME: Kind = k(
    "local.storage.openshift.io",
    "v1",
    "LocalVolume",
    "localvolumes",
    false,
);
pub const CATALOG_SOURCE: Kind = k(
    "operators.coreos.com",
    "v1alpha1",
    "CatalogSource",
    "catalogsources",
    false,
);
pub const IMAGE_DIGEST_MIRROR_SET: Kind = k(
    "config.openshift.io",
    "v1",
    "ImageDigestMirrorSet",
    "imagedigestmirrorsets",
    true,
);
pub const CERTIFICATE: Kind = k("cert-manager.io", "v1", "Certificate", "certificates", false);
pub const LVM_CLUSTER: Kind = k("lvm.topolvm.io", "v1alpha1", "LVMCluster", "lvmclusters", false);
pub const SRIOV_NODE_STATE: Kind = k(
    "sriovnetwork.openshift.io",
    "v1",
    "SriovNetworkNodeState",
    "sriovnetworknodestates",
    false,
);

/// The kinds installed by [`install`].
pub const STANDARD: [Kind; 14] = [
    CLUSTER_VERSION,
    CLUSTER_OPERATOR,
    PROXY,
    INFRASTRUCTURE,
    NETWORK,
    MACHINE_CONFIG_POOL,
    MACHINE_CONFIG,
    CSV,
    POLICY,
    BACKUP,
    RESTORE,
    DELETE_BACKUP_REQUEST,
    BACKUP_STORAGE_LOCATION,
    DPA,
];

/// Version the healthy cluster reports in `ClusterVersion.status.desired.version`.
pub const OCP_VERSION: &str = "4.17.0";
/// Name of the single node.
pub const NODE: &str = "sno";
/// The ClusterOperators of the healthy cluster.
pub const OPERATORS: [&str; 3] = ["etcd", "kube-apiserver", "machine-config"];
/// The CSV of the healthy cluster (namespace `openshift-operators`).
pub const HEALTHY_CSV: &str = "sriov-operator.v4.17.0";
/// The OADP operator's CSV (namespace `openshift-adp`, version 1.4.0).
pub const OADP_CSV: &str = "oadp-operator.v1.4.0";
/// The rendered MachineConfig the `master` pool uses, and a stale one seedgen removes.
pub const RENDERED_CURRENT: &str = "rendered-master-current";
pub const RENDERED_STALE: &str = "rendered-master-stale";

impl Kind {
    /// The dynamic-API resource.
    pub fn resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }

    /// `<plural>.<group>`.
    pub fn crd_name(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }

    /// A minimal CRD: any fields, status subresource.
    pub fn crd(&self) -> Result<CustomResourceDefinition> {
        let schema = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
        serde_json::from_value(json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": self.crd_name()},
            "spec": {
                "group": self.group,
                "scope": if self.cluster_scoped { "Cluster" } else { "Namespaced" },
                "names": {"kind": self.kind, "plural": self.plural, "singular": self.kind.to_lowercase(), "listKind": format!("{}List", self.kind)},
                "versions": [{"name": self.version, "served": true, "storage": true,
                              "schema": {"openAPIV3Schema": schema},
                              "subresources": {"status": {}}}]
            }
        }))
        .map_err(|e| Error::Setup(format!("CRD {}: {e}", self.crd_name())))
    }

    /// A dynamic API for this kind (`ns` ignored for cluster-scoped kinds).
    pub fn api(&self, client: &Client, ns: &str) -> Api<DynamicObject> {
        if self.cluster_scoped {
            Api::all_with(client.clone(), &self.resource())
        } else {
            Api::namespaced_with(client.clone(), ns, &self.resource())
        }
    }
}

/// Install the CRDs of `kinds` and wait until they are Established.
pub async fn install_kinds(cp: &ControlPlane, kinds: &[Kind]) -> Result<()> {
    let crds = kinds.iter().map(Kind::crd).collect::<Result<Vec<_>>>()?;
    cp.install_crds(crds).await
}

/// Install the [`STANDARD`] CRDs.
pub async fn install(cp: &ControlPlane) -> Result<()> {
    install_kinds(cp, &STANDARD).await
}

fn condition(type_: &str, status: &str) -> Value {
    json!({"type": type_, "status": status, "lastTransitionTime": "2026-01-01T00:00:00Z"})
}

/// Create (or keep) an object of `kind`, then set its status when `status` is not null.
pub async fn create(
    client: &Client,
    kind: Kind,
    ns: &str,
    name: &str,
    body: Value,
    status: Value,
) -> Result<()> {
    let api = kind.api(client, ns);
    let mut obj = DynamicObject::new(name, &kind.resource());
    if !kind.cluster_scoped {
        obj.metadata.namespace = Some(ns.to_string());
    }
    if let Value::Object(map) = body {
        for (key, v) in map {
            if key == "metadata" {
                if let Some(labels) = v.get("labels") {
                    obj.metadata.labels = serde_json::from_value(labels.clone()).ok();
                }
            } else {
                obj.data[key] = v;
            }
        }
    }
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(kube_err(format!("creating {} {name}", kind.kind))(e)),
    }
    if !status.is_null() {
        set_status(client, kind, ns, name, status).await?;
    }
    Ok(())
}

/// Merge-patch the status of an object of `kind`.
pub async fn set_status(client: &Client, kind: Kind, ns: &str, name: &str, status: Value) -> Result<()> {
    kind.api(client, ns)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .map_err(kube_err(format!("setting the status of {} {name}", kind.kind)))?;
    Ok(())
}

/// Names of the objects of `kind` (all namespaces).
pub async fn names(client: &Client, kind: Kind) -> Result<Vec<String>> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &kind.resource());
    let list = api
        .list(&Default::default())
        .await
        .map_err(kube_err(format!("listing {}", kind.plural)))?;
    Ok(list.items.iter().map(|o| o.name_any()).collect())
}

async fn ensure_namespace(client: &Client, name: &str) -> Result<()> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let ns = serde_json::from_value(json!({"metadata": {"name": name}}))
        .map_err(|e| Error::Setup(e.to_string()))?;
    match api.create(&PostParams::default(), &ns).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(kube_err(format!("creating namespace {name}"))(e)),
    }
}

/// The cluster pull secret the healthy cluster starts with.
pub const PULL_SECRET: &str = r#"{"auths":{"quay.io":{"auth":"dXNlcjpwYXNz"}}}"#;

mod cluster;
pub use cluster::*;

/// Labels as a map, for fixtures that set several.
pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

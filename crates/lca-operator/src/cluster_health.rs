//! Cluster health observer (spec §6.6): reads ClusterOperators, MachineConfigPools, the
//! optional SR-IOV and OADP objects, Infrastructure, Nodes, CSVs and CSRs with uncached
//! requests, turns them into `lca_core::health::Facts` and lets `lca-core` judge. Optional
//! kinds whose CRD is absent are skipped, as the reference does; a failed read of a required
//! kind is reported as a failure (the next reconcile retries).
//!
//! Used by Prep, pre-pivot, finalize (`check_all`) and seed generation.

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use lca_api::consts::names;
use lca_core::health::{self, Cond, Facts, Named, NodeFacts, Oadp, Pool};
use serde_json::Value;

use crate::error::{Error, Result};

fn resource(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
}

/// The OpenShift kinds read here and by seed generation.
pub mod kinds {
    use super::*;

    pub fn cluster_operator() -> ApiResource {
        resource("config.openshift.io", "v1", "ClusterOperator", "clusteroperators")
    }
    pub fn cluster_version() -> ApiResource {
        resource("config.openshift.io", "v1", "ClusterVersion", "clusterversions")
    }
    pub fn infrastructure() -> ApiResource {
        resource("config.openshift.io", "v1", "Infrastructure", "infrastructures")
    }
    pub fn proxy() -> ApiResource {
        resource("config.openshift.io", "v1", "Proxy", "proxies")
    }
    pub fn machine_config_pool() -> ApiResource {
        resource(
            "machineconfiguration.openshift.io",
            "v1",
            "MachineConfigPool",
            "machineconfigpools",
        )
    }
    pub fn machine_config() -> ApiResource {
        resource(
            "machineconfiguration.openshift.io",
            "v1",
            "MachineConfig",
            "machineconfigs",
        )
    }
    pub fn csv() -> ApiResource {
        resource(
            "operators.coreos.com",
            "v1alpha1",
            "ClusterServiceVersion",
            "clusterserviceversions",
        )
    }
    pub fn sriov_node_state() -> ApiResource {
        resource(
            "sriovnetwork.openshift.io",
            "v1",
            "SriovNetworkNodeState",
            "sriovnetworknodestates",
        )
    }
    pub fn dpa() -> ApiResource {
        resource(
            "oadp.openshift.io",
            "v1alpha1",
            "DataProtectionApplication",
            "dataprotectionapplications",
        )
    }
    pub fn backup_storage_location() -> ApiResource {
        resource(
            "velero.io",
            "v1",
            "BackupStorageLocation",
            "backupstoragelocations",
        )
    }
    pub fn local_volume() -> ApiResource {
        resource("local.storage.openshift.io", "v1", "LocalVolume", "localvolumes")
    }
    pub fn lvm_cluster() -> ApiResource {
        resource("lvm.topolvm.io", "v1alpha1", "LVMCluster", "lvmclusters")
    }
}

/// `status.conditions[]` of a dynamic object as (type, status).
pub fn conditions(obj: &DynamicObject) -> Vec<Cond> {
    obj.data["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (text(&c["type"]), text(&c["status"])))
        .collect()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// List all objects of a dynamic kind (all namespaces).
pub async fn list_all(client: &Client, ar: &ApiResource) -> Result<Vec<DynamicObject>, kube::Error> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), ar);
    Ok(api.list(&ListParams::default()).await?.items)
}

/// Whether CRD `name` exists.
pub async fn crd_exists(client: &Client, name: &str) -> Result<bool, kube::Error> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    Ok(api.get_opt(name).await?.is_some())
}

async fn list_with<T>(
    client: &Client,
    ar: ApiResource,
    what: &str,
    map: impl Fn(&DynamicObject) -> T,
) -> Result<Vec<T>> {
    list_all(client, &ar)
        .await
        .map(|items| items.iter().map(map).collect())
        .map_err(Error::api(format!("failed to get {what} list")))
}

async fn sriov(client: &Client) -> Result<Option<Vec<String>>> {
    match crd_exists(client, names::SRIOV_NODE_STATES_CRD).await {
        Err(e) => Err(Error::api("failed to verify sriov CRD exists")(e)),
        Ok(false) => Ok(None),
        Ok(true) => list_with(client, kinds::sriov_node_state(), "SriovNetworkNodeStates", |o| {
            text(&o.data["status"]["syncStatus"])
        })
        .await
        .map(Some),
    }
}

async fn oadp(client: &Client) -> Result<Option<Oadp>> {
    match crd_exists(client, names::DPA_CRD).await {
        Err(e) => return Err(Error::api("failed to check DataProtectionApplication CRD")(e)),
        Ok(false) => return Ok(None),
        Ok(true) => {}
    }
    let ns = names::OADP_NAMESPACE;
    let dpas: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &kinds::dpa());
    let dpas: Vec<Named> = dpas
        .list(&ListParams::default())
        .await
        .map_err(Error::api("failed to list OADP DataProtectionApplication"))?
        .items
        .iter()
        .map(|o| Named {
            name: o.name_any(),
            conditions: conditions(o),
        })
        .collect();
    let bsls = if dpas.is_empty() {
        Ok(vec![])
    } else {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), ns, &kinds::backup_storage_location());
        api.list(&ListParams::default())
            .await
            .map(|l| {
                l.items
                    .iter()
                    .map(|o| (o.name_any(), text(&o.data["status"]["phase"])))
                    .collect()
            })
            .map_err(Error::api("failed to list BackupStorageLocations"))
    };
    Ok(Some(Oadp {
        dpas,
        bsls: bsls.map_err(health::ReadFailure::of::<Error>),
    }))
}

async fn single_replica(client: &Client) -> Result<bool> {
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &kinds::infrastructure());
    let infra = api
        .get("cluster")
        .await
        // Sic: the reference's spelling.
        .map_err(Error::api("failed to get infrastucture CR"))?;
    Ok(infra.data["status"]["infrastructureTopology"] == "SingleReplica")
}

async fn nodes(client: &Client) -> Result<Vec<NodeFacts>> {
    let api: Api<Node> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(Error::api("failed to get node list"))?;
    Ok(list
        .items
        .iter()
        .map(|n| NodeFacts {
            name: n.name_any(),
            conditions: n
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .into_iter()
                .flatten()
                .map(|c| (c.type_.clone(), c.status.clone()))
                .collect(),
            labels: n.labels().keys().cloned().collect(),
        })
        .collect())
}

async fn csrs(client: &Client) -> Result<Vec<(String, bool)>> {
    let api: Api<CertificateSigningRequest> = Api::all(client.clone());
    let list = api
        .list(&ListParams::default())
        .await
        .map_err(Error::api("failed to get csr list"))?;
    Ok(list
        .items
        .iter()
        .map(|c| {
            let approved = c
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .and_then(|cs| cs.iter().find(|x| x.type_ == "Approved"))
                .is_some_and(|x| x.status == "True");
            (c.name_any(), approved)
        })
        .collect())
}

/// Read everything the checks look at.
pub async fn observe(client: &Client) -> Facts {
    let (cluster_operators, pools, sriov, oadp, single_replica, nodes, csvs, csrs) = futures::join!(
        list_with(client, kinds::cluster_operator(), "co", |o| Named {
            name: o.name_any(),
            conditions: conditions(o),
        }),
        list_with(client, kinds::machine_config_pool(), "mcp", |o| Pool {
            name: o.name_any(),
            machine_count: o.data["status"]["machineCount"].as_i64().unwrap_or(0),
            ready_machine_count: o.data["status"]["readyMachineCount"].as_i64().unwrap_or(0),
        }),
        sriov(client),
        oadp(client),
        single_replica(client),
        nodes(client),
        list_with(client, kinds::csv(), "csv", |o| (
            o.name_any(),
            text(&o.data["status"]["phase"])
        )),
        csrs(client),
    );
    // lca-core judges the reads' messages, as the reference's text shows them.
    let text = health::ReadFailure::of::<Error>;
    Facts {
        cluster_operators: cluster_operators.map_err(text),
        pools: pools.map_err(text),
        sriov: sriov.map_err(text),
        oadp: oadp.map_err(text),
        single_replica: single_replica.map_err(text),
        nodes: nodes.map_err(text),
        csvs: csvs.map_err(text),
        csrs: csrs.map_err(text),
    }
}

/// Mandatory tier only (post-pivot, before restore).
#[allow(dead_code)]
pub async fn check_mandatory(client: &Client) -> Result<()> {
    health::render(&health::mandatory(&observe(client).await)).map_or(Ok(()), |e| Err(Error::state(e)))
}

/// Deferred tier only (post-pivot, after restore).
#[allow(dead_code)]
pub async fn check_deferred(client: &Client) -> Result<()> {
    health::render(&health::deferred(&observe(client).await)).map_or(Ok(()), |e| Err(Error::state(e)))
}

/// Both tiers (Prep, pre-pivot, finalize, seedgen): `Err` carries the reference's text.
pub async fn check_all(client: &Client) -> Result<()> {
    let result = health::all(&observe(client).await);
    if let Err(e) = &result {
        tracing::info!(failures = %e, "health checks failed");
    }
    result.map_err(|e| Error::state(e.0))
}

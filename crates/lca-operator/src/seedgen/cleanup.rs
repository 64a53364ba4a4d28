//! Cluster clean-up before the seed is taken (spec §8.3 "Cleaning cluster resources"): ACM
//! leftovers, finished pods, the cluster pull secret swapped for a dummy, and rendered
//! MachineConfigs no pool uses. Absent objects are fine: each delete ignores 404.
//!
//! The pull secret: on a real node the MCO writes `openshift-config/pull-secret` to
//! `/var/lib/kubelet/config.json` and the operator only waits for it. A simulated node has
//! no MCO, so the operator writes that file itself, which is what the seed must contain
//! either way (no real credentials in a seed image).

use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
use kube::{Client, ResourceExt};
use lca_api::consts::{names, paths};
use lca_hostops::{NodeFs, NodeKind};
use serde::de::DeserializeOwned;

use crate::cluster_health::{kinds, list_all};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::kubeapi;

/// Upstream polls every 10 s for up to 15 min; a deletion usually ends within a second or
/// two, so the same limit is polled every second (a list of a few names).
const ACM_WAIT_INTERVAL: Duration = Duration::from_secs(1);
const ACM_WAIT_TRIES: u32 = 900;

async fn delete_ignoring_absent<K>(api: &Api<K>, name: &str, what: &str) -> Result<()>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    kubeapi::delete_ignoring_absent(api, name, &DeleteParams::foreground())
        .await
        .map_err(Error::api(format!("failed to delete {what}")))?;
    Ok(())
}

async fn names_matching<K>(api: &Api<K>, pred: impl Fn(&str) -> bool) -> Vec<String>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.list(&ListParams::default()).await {
        Ok(l) => l.items.iter().map(|o| o.name_any()).filter(|n| pred(n)).collect(),
        Err(e) => {
            // As upstream: a failed list reads as nothing (left) to delete.
            tracing::info!("error when listing for clean-up: {e}");
            vec![]
        }
    }
}

/// Delete everything matching `pred`, then wait until it is gone (up to 15 min).
async fn delete_all_and_wait<K>(api: &Api<K>, pred: impl Fn(&str) -> bool + Copy, what: &str) -> Result<()>
where
    K: kube::Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let found = names_matching(api, pred).await;
    if found.is_empty() {
        return Ok(());
    }
    for name in &found {
        tracing::info!(name, "deleting {what}");
        delete_ignoring_absent(api, name, &format!("{what} {name}")).await?;
    }
    for _ in 0..ACM_WAIT_TRIES {
        if names_matching(api, pred).await.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(ACM_WAIT_INTERVAL).await;
    }
    Err(Error::state(format!("timed out waiting for ACM {what} deletion")))
}

/// ACM CRDs and namespaces, the installer's namespace, klusterlet RBAC, the observability
/// secret (`cleanupClusterResources`).
pub async fn cluster_resources(client: &Client) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    // CRDs first: deleting the namespaces first leaves their CRs' finalizers unserved.
    delete_all_and_wait(&crds, |n| n.ends_with(".open-cluster-management.io"), "CRD").await?;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    delete_all_and_wait(
        &namespaces,
        |n| n.starts_with("open-cluster-management-agent"),
        "namespace",
    )
    .await?;
    delete_ignoring_absent(&namespaces, "assisted-installer", "assisted-installer namespace").await?;
    let roles: Api<ClusterRole> = Api::all(client.clone());
    for role in [
        "klusterlet",
        "klusterlet-bootstrap-kubeconfig",
        "open-cluster-management:klusterlet-admin-aggregate-clusterrole",
    ] {
        delete_ignoring_absent(&roles, role, &format!("clusterrole {role}")).await?;
    }
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    delete_ignoring_absent(&bindings, "klusterlet", "klusterlet clusterrolebinding").await?;
    let monitoring: Api<Secret> = Api::namespaced(client.clone(), "openshift-monitoring");
    delete_ignoring_absent(
        &monitoring,
        "observability-alertmanager-accessor",
        "observability secret",
    )
    .await
}

/// Delete every pod in phase `phase` (Succeeded, Failed), in all namespaces.
pub async fn finished_pods(client: &Client, phase: &str) -> Result<()> {
    let failed = || format!("failed to cleanup {phase} pods");
    let all: Api<Pod> = Api::all(client.clone());
    let selector = ListParams::default().fields(&format!("status.phase=={phase}"));
    let pods = all.list(&selector).await.map_err(Error::api(failed()))?;
    for pod in pods.items {
        let ns = pod.namespace().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
        kubeapi::delete_ignoring_absent(&api, &pod.name_any(), &DeleteParams::default())
            .await
            .map_err(Error::api(failed()))?;
    }
    Ok(())
}

/// The cluster pull secret's `.dockerconfigjson`.
pub async fn read_pull_secret(client: &Client) -> Result<Vec<u8>> {
    let ns = names::OPENSHIFT_CONFIG_NAMESPACE;
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let secret = api.get(names::PULL_SECRET).await.map_err(Error::api(format!(
        "could not access pull-secret {} in {ns}",
        names::PULL_SECRET
    )))?;
    secret
        .data
        .and_then(|d| d.get(names::PULL_SECRET_KEY).map(|b| b.0.clone()))
        .ok_or_else(|| {
            Error::invalid(format!(
                "pull-secret {} in {ns} has no {}",
                names::PULL_SECRET,
                names::PULL_SECRET_KEY
            ))
        })
}

/// Replace the cluster pull secret with `data` (on a simulated node also the kubelet's copy).
pub async fn set_pull_secret(ctx: &Context, data: &[u8]) -> Result<()> {
    let api: Api<Secret> = Api::namespaced(ctx.client.clone(), names::OPENSHIFT_CONFIG_NAMESPACE);
    let mut secret = api
        .get(names::PULL_SECRET)
        .await
        .map_err(Error::api("could not access the cluster pull-secret"))?;
    secret
        .data
        .get_or_insert_with(Default::default)
        .insert(names::PULL_SECRET_KEY.into(), ByteString(data.to_vec()));
    api.replace(names::PULL_SECRET, &kubeapi::post_params(), &secret)
        .await
        .map_err(Error::api("failed to update the cluster pull-secret"))?;
    if ctx.exec.node().kind == NodeKind::Simulated {
        // Stand-in for the MCO on a node that has none (see the module header).
        NodeFs::new(ctx.exec.as_ref()).write_private(&ctx.paths.host(paths::KUBELET_CONFIG), data)?;
    }
    Ok(())
}

/// Replace the cluster pull secret with `data` and wait (30 s poll, 10 min) until the node's
/// kubelet config has it and the pools are ready (`waitForPullSecretOverride`).
pub async fn override_pull_secret(ctx: &Context, data: &[u8]) -> Result<()> {
    set_pull_secret(ctx, data).await?;
    let kubelet = ctx.paths.host(paths::KUBELET_CONFIG);
    let simulated = ctx.exec.node().kind == NodeKind::Simulated;
    let poll = if simulated {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(30)
    };
    let start = Instant::now();
    let want = String::from_utf8_lossy(data).trim().to_string();
    let fs = NodeFs::new(ctx.exec.as_ref());
    loop {
        let on_node = fs.read_string_optional(&kubelet)?.unwrap_or_default();
        if on_node.trim() == want && pools_ready(&ctx.client).await {
            return Ok(());
        }
        if start.elapsed() > Duration::from_secs(600) {
            return Err(Error::state(
                "timed out waiting for MCO to override pull-secret file",
            ));
        }
        tracing::info!(file = %kubelet.display(), "waiting for MCO to override the pull-secret file");
        tokio::time::sleep(poll).await;
    }
}
async fn pools_ready(client: &Client) -> bool {
    match list_all(client, &kinds::machine_config_pool()).await {
        Ok(pools) => pools
            .iter()
            .all(|p| p.data["status"]["machineCount"] == p.data["status"]["readyMachineCount"]),
        Err(e) => {
            tracing::info!("waiting for MCP: {e}");
            false
        }
    }
}

/// Delete `rendered-*` MachineConfigs that no pool's spec references.
pub async fn old_rendered_machine_configs(client: &Client) -> Result<()> {
    let pools = list_all(client, &kinds::machine_config_pool())
        .await
        .map_err(Error::api("failed to list machine config pools, err"))?;
    let current: Vec<String> = pools
        .iter()
        .filter_map(|p| p.data["spec"]["configuration"]["name"].as_str().map(String::from))
        .collect();
    let mcs = list_all(client, &kinds::machine_config())
        .await
        .map_err(Error::api("failed to list machine configs, err"))?;
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &kinds::machine_config());
    for mc in mcs {
        let name = mc.name_any();
        if !name.starts_with("rendered") || current.contains(&name) {
            continue;
        }
        tracing::info!(name, "deleting machine config");
        api.delete(&name, &DeleteParams::default())
            .await
            .map_err(Error::api(format!("failed to delete machine config {name}, err")))?;
    }
    Ok(())
}

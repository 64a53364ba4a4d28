//! A healthy single-node OpenShift, as objects: the node, ClusterVersion, ClusterOperators,
//! the `master` pool and its MachineConfigs, Infrastructure/Network/Proxy `cluster`, a
//! Succeeded CSV and the `openshift-config/pull-secret`. Plus one helper per piece a test
//! may want to break.

use k8s_openapi::api::core::v1::{Node, Secret};
use kube::Client;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::*;

/// Create every object of a healthy SNO (idempotent). The CRDs must be installed first.
pub async fn healthy_sno(client: &Client) -> Result<()> {
    create_node(client).await?;
    create(
        client,
        CLUSTER_VERSION,
        "",
        "version",
        json!({"spec": {"clusterID": "00000000-0000-0000-0000-000000000001"}}),
        json!({
            "desired": {"version": OCP_VERSION, "image": format!("quay.io/openshift-release-dev/ocp-release:{OCP_VERSION}-x86_64")},
            "conditions": [condition("Available", "True"), condition("Progressing", "False")],
        }),
    )
    .await?;
    for co in OPERATORS {
        create(
            client,
            CLUSTER_OPERATOR,
            "",
            co,
            json!({}),
            healthy_operator_status(),
        )
        .await?;
    }
    create(
        client,
        MACHINE_CONFIG_POOL,
        "",
        "master",
        json!({"spec": {"configuration": {"name": RENDERED_CURRENT}}}),
        json!({"machineCount": 1, "readyMachineCount": 1, "updatedMachineCount": 1,
               "configuration": {"name": RENDERED_CURRENT},
               "conditions": [condition("Updated", "True"), condition("Updating", "False")]}),
    )
    .await?;
    for mc in ["00-master", RENDERED_CURRENT, RENDERED_STALE] {
        create(client, MACHINE_CONFIG, "", mc, json!({"spec": {}}), json!(null)).await?;
    }
    create(
        client,
        INFRASTRUCTURE,
        "",
        "cluster",
        json!({"spec": {}}),
        json!({"infrastructureTopology": "SingleReplica", "controlPlaneTopology": "SingleReplica",
               "infrastructureName": "seed-x7k2p",
               "apiServerURL": "https://api.seed.example.com:6443",
               "apiServerInternalURI": "https://api-int.seed.example.com:6443"}),
    )
    .await?;
    create(
        client,
        NETWORK,
        "",
        "cluster",
        json!({"spec": {"clusterNetwork": [{"cidr": "10.128.0.0/14", "hostPrefix": 23}], "serviceNetwork": ["172.30.0.0/16"]}}),
        json!({"clusterNetwork": [{"cidr": "10.128.0.0/14", "hostPrefix": 23}], "serviceNetwork": ["172.30.0.0/16"]}),
    )
    .await?;
    create(client, PROXY, "", "cluster", json!({"spec": {}}), json!({})).await?;
    ensure_namespace(client, "openshift-operators").await?;
    create(
        client,
        CSV,
        "openshift-operators",
        HEALTHY_CSV,
        json!({"spec": {"version": "4.17.0", "relatedImages": []}}),
        json!({"phase": "Succeeded"}),
    )
    .await?;
    // OADP installed (its CRDs are in STANDARD), recent enough, no DPA configured.
    ensure_namespace(client, lca_api::consts::names::OADP_NAMESPACE).await?;
    create(
        client,
        CSV,
        lca_api::consts::names::OADP_NAMESPACE,
        OADP_CSV,
        json!({"spec": {"version": "1.4.0"}}),
        json!({"phase": "Succeeded"}),
    )
    .await?;
    ensure_namespace(client, lca_api::consts::names::OPENSHIFT_CONFIG_NAMESPACE).await?;
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "pull-secret"},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": PULL_SECRET},
    }))
    .map_err(|e| Error::Setup(e.to_string()))?;
    let secrets: Api<Secret> =
        Api::namespaced(client.clone(), lca_api::consts::names::OPENSHIFT_CONFIG_NAMESPACE);
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(kube_err("creating openshift-config/pull-secret")(e)),
    }
}

fn healthy_operator_status() -> serde_json::Value {
    json!({"conditions": [condition("Available", "True"), condition("Progressing", "False"), condition("Degraded", "False")]})
}

async fn create_node(client: &Client) -> Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let node: Node = serde_json::from_value(json!({
        "metadata": {"name": NODE, "labels": labels(&[
            ("node-role.kubernetes.io/control-plane", ""),
            ("node-role.kubernetes.io/master", ""),
            ("node-role.kubernetes.io/worker", ""),
            ("kubernetes.io/hostname", NODE),
        ])},
    }))
    .map_err(|e| Error::Setup(e.to_string()))?;
    match api.create(&PostParams::default(), &node).await {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(kube_err("creating the node")(e)),
    }
    set_node_ready(client, true).await
}

/// Make the node Ready (or not), with its addresses.
pub async fn set_node_ready(client: &Client, ready: bool) -> Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let status = json!({"status": {
        "conditions": [
            {"type": "Ready", "status": if ready { "True" } else { "False" }, "reason": "KubeletReady", "message": "kubelet is posting ready status",
             "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "NetworkUnavailable", "status": "False", "reason": "RouteCreated", "message": "",
             "lastHeartbeatTime": "2026-01-01T00:00:00Z", "lastTransitionTime": "2026-01-01T00:00:00Z"},
        ],
        "addresses": [{"type": "InternalIP", "address": "192.168.1.10"}, {"type": "Hostname", "address": NODE}],
    }});
    api.patch_status(NODE, &PatchParams::default(), &Patch::Merge(status))
        .await
        .map_err(kube_err("setting the node status"))?;
    Ok(())
}

/// Give the node the InternalIP `ip` (besides its hostname address).
pub async fn set_node_ip(client: &Client, ip: &str) -> Result<()> {
    let api: Api<Node> = Api::all(client.clone());
    let status = json!({"status": {"addresses": [
        {"type": "InternalIP", "address": ip}, {"type": "Hostname", "address": NODE}]}});
    api.patch_status(NODE, &PatchParams::default(), &Patch::Merge(status))
        .await
        .map_err(kube_err("setting the node address"))?;
    Ok(())
}

/// Set ClusterOperator `name` Degraded (or healthy again).
pub async fn set_operator_degraded(client: &Client, name: &str, degraded: bool) -> Result<()> {
    let status = if degraded {
        json!({"conditions": [condition("Available", "True"), condition("Progressing", "False"), condition("Degraded", "True")]})
    } else {
        healthy_operator_status()
    };
    set_status(client, CLUSTER_OPERATOR, "", name, status).await
}

/// Make the `master` pool report `ready` of its one machine ready.
pub async fn set_pool_ready_count(client: &Client, ready: i64) -> Result<()> {
    set_status(
        client,
        MACHINE_CONFIG_POOL,
        "",
        "master",
        json!({"readyMachineCount": ready}),
    )
    .await
}

/// Set `spec.version` of the OADP operator's CSV.
pub async fn set_oadp_version(client: &Client, version: &str) -> Result<()> {
    CSV.api(client, lca_api::consts::names::OADP_NAMESPACE)
        .patch(
            OADP_CSV,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"version": version}})),
        )
        .await
        .map_err(kube_err("setting the OADP version"))?;
    Ok(())
}

/// Set the phase of the healthy CSV.
pub async fn set_csv_phase(client: &Client, phase: &str) -> Result<()> {
    set_status(
        client,
        CSV,
        "openshift-operators",
        HEALTHY_CSV,
        json!({"phase": phase}),
    )
    .await
}

/// Set `ClusterVersion.status.desired.version`.
pub async fn set_cluster_version(client: &Client, version: &str) -> Result<()> {
    set_status(
        client,
        CLUSTER_VERSION,
        "",
        "version",
        json!({"desired": {"version": version}}),
    )
    .await
}

/// `ClusterVersion.status.desired.version` ("" when unset).
pub async fn desired_version(client: &Client) -> Result<String> {
    let cv = CLUSTER_VERSION
        .api(client, "")
        .get("version")
        .await
        .map_err(kube_err("reading the ClusterVersion"))?;
    Ok(cv.data["status"]["desired"]["version"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// `ClusterVersion.spec.clusterID`.
pub async fn cluster_id(client: &Client) -> Result<String> {
    let cv = CLUSTER_VERSION
        .api(client, "")
        .get("version")
        .await
        .map_err(kube_err("reading the ClusterVersion"))?;
    Ok(cv.data["spec"]["clusterID"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// Set `ClusterVersion.spec.clusterID`.
pub async fn set_cluster_id(client: &Client, id: &str) -> Result<()> {
    CLUSTER_VERSION
        .api(client, "")
        .patch(
            "version",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"clusterID": id}})),
        )
        .await
        .map_err(kube_err("setting the clusterID"))?;
    Ok(())
}

/// Give the cluster an HTTP(S) proxy.
pub async fn set_proxy(client: &Client, http_proxy: &str) -> Result<()> {
    PROXY
        .api(client, "")
        .patch(
            "cluster",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"httpProxy": http_proxy, "httpsProxy": http_proxy}})),
        )
        .await
        .map_err(kube_err("setting the proxy"))?;
    Ok(())
}

/// The current `openshift-config/pull-secret` `.dockerconfigjson`, as text.
pub async fn pull_secret(client: &Client) -> Result<String> {
    let secrets: Api<Secret> =
        Api::namespaced(client.clone(), lca_api::consts::names::OPENSHIFT_CONFIG_NAMESPACE);
    let s = secrets
        .get("pull-secret")
        .await
        .map_err(kube_err("reading openshift-config/pull-secret"))?;
    let data = s
        .data
        .and_then(|d| d.get(".dockerconfigjson").cloned())
        .ok_or_else(|| Error::Setup("pull-secret has no .dockerconfigjson".into()))?;
    String::from_utf8(data.0).map_err(|e| Error::Setup(e.to_string()))
}

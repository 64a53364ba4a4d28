//! The cluster steps of post-pivot (spec §6.4 steps 10–14): with the kubelet started and the
//! API server answering, as the node's admin (`lb-ext.kubeconfig`): the seed's mirror
//! configuration and catalog sources go, the exported cluster configuration (and OADP's
//! secrets and DPA) is applied, the release registry is restored, the cluster gets its own
//! clusterID and the node its labels back, and the LVM devices return.

use std::time::{Duration, Instant};

use kube::Client;
use kube::api::{Api, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{Scope, pinned_kind};
use serde_json::json;

use super::{CLUSTER_CONFIGURATION, Ctx, OPT_OPENSHIFT};
use crate::error::{Error, Result};

/// Start the kubelet and wait for the API server, then a client acting as the node's admin.
pub async fn connect(ctx: &Ctx) -> Result<Client> {
    ctx.run(&["systemctl", "enable", "kubelet", "--now"]).await?;
    let start = Instant::now();
    loop {
        let attempt = async {
            let client = lca_kube::admin_client(&ctx.fs(), ctx.paths()).await?;
            client
                .apiserver_version()
                .await
                .map_err(|source| lca_kube::Error::Api {
                    what: "reaching the API server".into(),
                    source,
                })?;
            Ok::<_, lca_kube::Error>(client)
        };
        match attempt.await {
            Ok(client) => return Ok(client),
            Err(e) if start.elapsed() < ctx.wait => {
                tracing::info!("waiting for the API server: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(Error::NodeState(format!("the API server did not come up: {e}"))),
        }
    }
}

pub async fn step(ctx: &Ctx, client: &Client, step: &str) -> Result<()> {
    match step {
        "kubelet" => Ok(()),
        "delete-mirror-config" => delete_mirror_config(client).await,
        "apply-cluster-configuration" => {
            let fs = ctx.fs();
            lca_kube::apply_files(
                &fs,
                client,
                &ctx.path(&format!("{CLUSTER_CONFIGURATION}/manifests")),
            )
            .await
            .map_err(apply_error)?;
            for dir in ["OADP/secret", "OADP/dpa"] {
                let dir = ctx.path(&format!("var/opt/{dir}"));
                lca_kube::apply_files(&fs, client, &dir)
                    .await
                    .map_err(apply_error)?;
            }
            Ok(())
        }
        "registry-override" => registry_override(ctx, client).await,
        "cluster-identity" => cluster_identity(ctx, client).await,
        "lvm" => lvm(ctx).await,
        other => Err(Error::Invalid(format!("unknown post-pivot step {other}"))),
    }
}

fn apply_error(e: lca_kube::ApplyError) -> Error {
    match e {
        lca_kube::ApplyError::Refused(m) => Error::Invalid(m),
        lca_kube::ApplyError::Retry(e) => Error::NodeState(e.to_string()),
    }
}

fn kube_error(what: &str) -> impl FnOnce(kube::Error) -> Error + '_ {
    move |e| Error::NodeState(format!("{what}: {e}"))
}

/// The seed's ICSPs, IDMSs and CatalogSources: the cluster's own come back with the
/// cluster configuration.
async fn delete_mirror_config(client: &Client) -> Result<()> {
    for (group, version, kind) in [
        ("operator.openshift.io", "v1alpha1", "ImageContentSourcePolicy"),
        ("config.openshift.io", "v1", "ImageDigestMirrorSet"),
        ("operators.coreos.com", "v1alpha1", "CatalogSource"),
    ] {
        let Ok((ar, caps)) = pinned_kind(client, &GroupVersionKind::gvk(group, version, kind)).await else {
            continue;
        };
        let all: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
        let list = all
            .list(&Default::default())
            .await
            .map_err(kube_error("listing the seed's mirror configuration"))?;
        for o in list.items {
            let name = o.metadata.name.clone().unwrap_or_default();
            let api: Api<DynamicObject> = match (caps.scope.clone(), o.metadata.namespace.as_deref()) {
                (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
                _ => all.clone(),
            };
            match api.delete(&name, &Default::default()).await {
                Ok(_) => tracing::info!(%kind, %name, "deleted the seed's object"),
                Err(kube::Error::Api(s)) if s.code == 404 => {}
                Err(e) => return Err(kube_error("deleting the seed's mirror configuration")(e)),
            }
        }
    }
    Ok(())
}

/// The release image's registry: when the cluster's differs from the seed's and the seed
/// has no mirror configuration, the CVO is pointed at the cluster's registry.
async fn registry_override(ctx: &Ctx, client: &Client) -> Result<()> {
    let (target, seed) = (&ctx.config.release_registry, &ctx.seed.release_registry);
    if target.is_empty() || target == seed || ctx.seed.mirror_registry_configured {
        return Ok(());
    }
    let api: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), "openshift-cluster-version");
    let Some(cvo) = api
        .get_opt("cluster-version-operator")
        .await
        .map_err(kube_error("reading the cluster-version-operator"))?
    else {
        tracing::warn!("no cluster-version-operator deployment; release registry left as the seed's");
        return Ok(());
    };
    let mut containers = cvo
        .spec
        .and_then(|s| s.template.spec)
        .map(|s| s.containers)
        .unwrap_or_default();
    for c in &mut containers {
        if let Some(image) = &mut c.image {
            *image = image.replacen(seed.as_str(), target, 1);
        }
        for a in c.args.iter_mut().flatten() {
            if a.starts_with("--release-image=") {
                *a = a.replacen(seed.as_str(), target, 1);
            }
        }
    }
    let patch = json!({"spec": {"template": {"spec": {"containers": containers}}}});
    api.patch(
        "cluster-version-operator",
        &PatchParams::default(),
        &Patch::Strategic(&patch),
    )
    .await
    .map_err(kube_error(
        "pointing the cluster-version-operator at the cluster's registry",
    ))?;
    Ok(())
}

/// The cluster's clusterID on ClusterVersion, the node's labels.
async fn cluster_identity(ctx: &Ctx, client: &Client) -> Result<()> {
    let id = &ctx.config.cluster_id;
    if id.is_empty() {
        return Err(Error::Invalid(
            "the seed reconfiguration has an empty cluster_id".into(),
        ));
    }
    let gvk = GroupVersionKind::gvk("config.openshift.io", "v1", "ClusterVersion");
    let (ar, _) = pinned_kind(client, &gvk)
        .await
        .map_err(kube_error("finding ClusterVersion"))?;
    let cv: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    cv.patch(
        "version",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"clusterID": id}})),
    )
    .await
    .map_err(kube_error("setting the clusterID"))?;
    if ctx.config.node_labels.is_empty() {
        return Ok(());
    }
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
    let start = Instant::now();
    let node = loop {
        let list = nodes
            .list(&Default::default())
            .await
            .map_err(kube_error("listing nodes"))?;
        if let Some(n) = list.items.into_iter().next() {
            break n;
        }
        if start.elapsed() > Duration::from_secs(300) {
            return Err(Error::NodeState("no node registered within 5m".into()));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    };
    let name = node.metadata.name.unwrap_or_default();
    let patch = json!({"metadata": {"labels": ctx.config.node_labels}});
    nodes
        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(kube_error("setting the node labels"))?;
    Ok(())
}

/// The LVM devices file of the cluster's disks, and their volume groups activated.
async fn lvm(ctx: &Ctx) -> Result<()> {
    let saved = ctx.path(&format!("{OPT_OPENSHIFT}/lvm-configuration/system.devices"));
    let Some(bytes) = ctx.fs().read_optional(&saved)? else {
        return Ok(());
    };
    ctx.write("etc/lvm/devices/system.devices", &bytes)?;
    ctx.run(&["pvscan", "--cache", "--activate", "ay"]).await?;
    Ok(())
}

//! Prep's seed-facing steps: credentials for the seed registry, the label checks before
//! anything is pulled (spec §5.2), and the kubeconfig crypto backup into the new stateroot
//! (§5.4 step 5). Launching the tasks is `launch.rs`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;
use lca_api::ImageBasedUpgrade;
use lca_api::files::SeedClusterInfo;
use lca_seed::checks::check_seed_labels;
use lca_seed::{Credentials, SeedRegistry, parse_reference};

use super::NodeStageWork;
use crate::error::{Error, Result};

/// Where the seed pull secret is written for the stateroot task (0600, removed after).
pub fn auth_file(w: &NodeStageWork) -> PathBuf {
    w.workspace().join("seed-pull-secret")
}

/// The docker auth JSON for the seed: `pullSecretRef`'s `.dockerconfigjson`, else the node's
/// kubelet pull secret, else none (anonymous).
async fn seed_auth(w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> Result<Option<Vec<u8>>> {
    if let Some(r) = &ibu.spec.seed_image_ref.pull_secret_ref {
        let api: Api<Secret> = Api::namespaced(w.client.clone(), &w.namespace);
        let secret = api.get(&r.name).await.map_err(Error::api(format!(
            "failed to get pull secret {}/{}",
            w.namespace, r.name
        )))?;
        let data = secret.data.unwrap_or_default();
        let json = data.get(".dockerconfigjson").ok_or_else(|| {
            Error::invalid(format!(
                "pull secret {}/{} has no .dockerconfigjson key",
                w.namespace, r.name
            ))
        })?;
        return Ok(Some(json.0.clone()));
    }
    Ok(w.fs()
        .read_optional(&w.exec.node().paths.host("var/lib/kubelet/config.json"))?)
}

fn registry_client(
    w: &NodeStageWork,
    image: &str,
    auth: Option<&[u8]>,
) -> Result<(SeedRegistry, oci_client::Reference)> {
    let reference = parse_reference(image)?;
    let registry = reference.resolve_registry().to_string();
    let creds = match auth {
        Some(json) => Credentials::from_auth_json(json, &registry)?,
        None => Credentials::Anonymous,
    };
    let plain_http = lca_seed::registry::is_loopback(&registry);
    let registry = SeedRegistry::with_timeouts(&reference, &creds, plain_http, w.registry_timeouts);
    Ok((registry, reference))
}

/// Why the seed check did not pass.
pub enum SeedCheckError {
    /// The registry did not answer in time or failed on its side: worth another attempt.
    Transient(String),
    /// The seed, its reference or its credentials are wrong: Prep fails.
    Invalid(String),
}

/// Anything but the registry's answer (the pull secret, the cluster's facts) fails Prep:
/// upstream retries only the inspection.
impl From<Error> for SeedCheckError {
    fn from(e: Error) -> Self {
        Self::Invalid(e.to_string())
    }
}

/// Inspect the seed's labels (no layer is pulled) and compare them with the cluster. One
/// bounded attempt: the caller retries transient registry errors across reconciles, so no
/// reconcile holds the lock for long.
pub async fn validate_seed(
    w: &NodeStageWork,
    ibu: &ImageBasedUpgrade,
    storage_target: &str,
) -> Result<SeedClusterInfo, SeedCheckError> {
    let auth = seed_auth(w, ibu).await?;
    if let Some(json) = &auth {
        w.fs().write_private(&auth_file(w), json).map_err(Error::from)?;
    }
    let (reg, reference) = registry_client(w, &ibu.spec.seed_image_ref.image, auth.as_deref())?;
    // The registry and the API server answer independently: ask both at once.
    let (info, facts) = futures::join!(
        reg.inspect(&reference),
        crate::cluster_facts::gather(&w.client, storage_target)
    );
    let info = info.map_err(|e| {
        if e.category().is_retryable() {
            SeedCheckError::Transient(e.to_string())
        } else {
            SeedCheckError::Invalid(e.to_string())
        }
    })?;
    let facts = facts?;
    check_seed_labels(&info.labels, &facts).map_err(|e| SeedCheckError::Invalid(e.to_string()))
}

/// Copy the signer keys and admin CA the new stateroot's recert needs (§5.4 step 5).
pub async fn backup_kubeconfig_crypto(w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> Result<()> {
    let stateroot = lca_core::version::stateroot_name(&ibu.spec.seed_image_ref.version);
    let dir = w
        .exec
        .node()
        .paths
        .stateroot_var(&stateroot)
        .join("opt/openshift/kubeconfig-crypto");
    write_kubeconfig_crypto(&w.client, &w.fs(), &dir).await
}

/// Write the admin CA (`admin-kubeconfig-client-ca.crt`) and the signer and ingress keys
/// (`loadbalancer-serving-signer.key`, `localhost-serving-signer.key`,
/// `service-network-serving-signer.key`, `ingresskey-ingress-operator.key`) into `dir`
/// (private): what recert needs to keep or give back the cluster's identity.
pub async fn write_kubeconfig_crypto(
    client: &kube::Client,
    fs: &lca_hostops::NodeFs<'_>,
    dir: &std::path::Path,
) -> Result<()> {
    fs.create_private_dir(dir)?;
    let cm: Api<ConfigMap> = Api::namespaced(client.clone(), "openshift-config");
    let ca = cm
        .get("admin-kubeconfig-client-ca")
        .await
        .map_err(Error::api(
            "failed to get configmap openshift-config/admin-kubeconfig-client-ca",
        ))?
        .data
        .and_then(|d| d.get("ca-bundle.crt").cloned())
        .ok_or_else(|| {
            Error::state("configmap openshift-config/admin-kubeconfig-client-ca has no ca-bundle.crt")
        })?;
    fs.write_private(&dir.join("admin-kubeconfig-client-ca.crt"), ca.as_bytes())?;
    let keys = [
        (
            "openshift-kube-apiserver-operator",
            "loadbalancer-serving-signer",
            "loadbalancer-serving-signer.key",
        ),
        (
            "openshift-kube-apiserver-operator",
            "localhost-serving-signer",
            "localhost-serving-signer.key",
        ),
        (
            "openshift-kube-apiserver-operator",
            "service-network-serving-signer",
            "service-network-serving-signer.key",
        ),
        (
            "openshift-ingress-operator",
            "router-ca",
            "ingresskey-ingress-operator.key",
        ),
    ];
    for (ns, name, file) in keys {
        let api: Api<Secret> = Api::namespaced(client.clone(), ns);
        let secret = api
            .get(name)
            .await
            .map_err(Error::api(format!("failed to get secret {ns}/{name}")))?;
        let data: BTreeMap<String, k8s_openapi::ByteString> = secret.data.unwrap_or_default();
        let key = data
            .get("tls.key")
            .ok_or_else(|| Error::state(format!("secret {ns}/{name} has no tls.key")))?;
        fs.write_private(&dir.join(file), &key.0)?;
    }
    Ok(())
}

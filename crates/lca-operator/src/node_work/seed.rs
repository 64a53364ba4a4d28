//! Prep's seed-facing steps: credentials for the seed registry, the label checks before
//! anything is pulled (spec §5.2), launching stateroot setup and precache as `lca-cli` tasks
//! (§5.4, §5.5), and the kubeconfig crypto backup into the new stateroot.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Node, Secret};
use kube::api::Api;
use lca_api::ImageBasedUpgrade;
use lca_api::files::SeedClusterInfo;
use lca_core::precache_plan::{RegistryFacts, image_list, registry_host};
use lca_seed::checks::{ClusterFacts, check_seed_labels};
use lca_seed::{Credentials, SeedRegistry, parse_reference};

use super::NodeStageWork;
use super::validate::{get_dynamic, list_dynamic, str_at};
use crate::error::api_message;
use crate::tasks::Task;

/// Where the seed pull secret is written for the stateroot task (0600, removed after).
pub fn auth_file(w: &NodeStageWork) -> PathBuf {
    w.workspace().join("seed-pull-secret")
}

/// The docker auth JSON for the seed: `pullSecretRef`'s `.dockerconfigjson`, else the node's
/// kubelet pull secret, else none (anonymous).
async fn seed_auth(w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> Result<Option<Vec<u8>>, String> {
    if let Some(r) = &ibu.spec.seed_image_ref.pull_secret_ref {
        let api: Api<Secret> = Api::namespaced(w.client.clone(), &w.namespace);
        let secret = api.get(&r.name).await.map_err(|e| {
            format!(
                "failed to get pull secret {}/{}: {}",
                w.namespace,
                r.name,
                api_message(&e)
            )
        })?;
        let data = secret.data.unwrap_or_default();
        let json = data.get(".dockerconfigjson").ok_or_else(|| {
            format!(
                "pull secret {}/{} has no .dockerconfigjson key",
                w.namespace, r.name
            )
        })?;
        return Ok(Some(json.0.clone()));
    }
    Ok(std::fs::read(w.exec.node().paths.host("var/lib/kubelet/config.json")).ok())
}

fn registry_client(
    w: &NodeStageWork,
    image: &str,
    auth: Option<&[u8]>,
) -> Result<(SeedRegistry, oci_client::Reference), String> {
    let reference = parse_reference(image).map_err(|e| e.to_string())?;
    let registry = reference.resolve_registry().to_string();
    let creds = match auth {
        Some(json) => Credentials::from_auth_json(json, &registry).map_err(|e| e.to_string())?,
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

impl From<String> for SeedCheckError {
    fn from(e: String) -> Self {
        Self::Invalid(e)
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
        write_private(&auth_file(w), json)?;
    }
    let (reg, reference) = registry_client(w, &ibu.spec.seed_image_ref.image, auth.as_deref())?;
    // The registry and the API server answer independently: ask both at once.
    let (info, facts) = futures::join!(reg.inspect(&reference), cluster_facts(w, storage_target));
    let info = info.map_err(|e| {
        if e.category().is_retryable() {
            SeedCheckError::Transient(e.to_string())
        } else {
            SeedCheckError::Invalid(e.to_string())
        }
    })?;
    let facts = facts?;
    Ok(check_seed_labels(&info.labels, &facts)?)
}

async fn cluster_facts(w: &NodeStageWork, storage_target: &str) -> Result<ClusterFacts, String> {
    let c = &w.client;
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), "openshift-config");
    let bundle = |name: String| {
        let cms = cms.clone();
        async move {
            cms.get_opt(&name).await.map_err(|e| api_message(&e)).map(|cm| {
                cm.and_then(|cm| cm.data)
                    .and_then(|d| d.get("ca-bundle.crt").cloned())
                    .is_some_and(|s| !s.is_empty())
            })
        }
    };
    // Independent reads at once: each is a round trip to the API server.
    let (proxy, has_user_ca_bundle, has_fips) = futures::join!(
        get_dynamic(c, "config.openshift.io", "v1", "Proxy", "proxies", None, "cluster"),
        bundle("user-ca-bundle".into()),
        node_fips(w),
    );
    let (proxy, has_user_ca_bundle, has_fips) = (proxy?, has_user_ca_bundle?, has_fips?);
    let proxy_field = |f: &str| {
        proxy
            .as_ref()
            .and_then(|p| str_at(p, &["spec", f]))
            .unwrap_or_default()
    };
    let has_proxy = ["httpProxy", "httpsProxy", "noProxy"]
        .iter()
        .any(|f| !proxy_field(f).is_empty());
    let trusted_ca = proxy
        .as_ref()
        .and_then(|p| str_at(p, &["spec", "trustedCA", "name"]))
        .unwrap_or_default();
    let proxy_trusted_ca_has_content = if trusted_ca.is_empty() {
        false
    } else {
        bundle(trusted_ca.clone()).await?
    };
    Ok(ClusterFacts {
        has_proxy,
        has_fips,
        has_user_ca_bundle,
        proxy_trusted_ca_name: trusted_ca,
        proxy_trusted_ca_has_content,
        container_storage_mountpoint_target: storage_target.to_string(),
    })
}

/// `spec.fips` of the MachineConfig the single node currently runs.
async fn node_fips(w: &NodeStageWork) -> Result<bool, String> {
    let nodes: Api<Node> = Api::all(w.client.clone());
    let list = nodes
        .list(&Default::default())
        .await
        .map_err(|e| format!("failed to list nodes: {}", api_message(&e)))?;
    if list.items.len() != 1 {
        return Err(format!("expected exactly one node, found {}", list.items.len()));
    }
    let node = &list.items[0];
    let Some(mc) = node
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(lca_api::consts::annotations::MCO_CURRENT_CONFIG))
    else {
        return Ok(false);
    };
    let obj = get_dynamic(
        &w.client,
        "machineconfiguration.openshift.io",
        "v1",
        "MachineConfig",
        "machineconfigs",
        None,
        mc,
    )
    .await?;
    Ok(obj
        .and_then(|o| o.pointer("/spec/fips").and_then(|v| v.as_bool()))
        .unwrap_or(false))
}

fn write_private(path: &std::path::Path, data: &[u8]) -> Result<(), String> {
    lca_hostops::fsutil::write_private(path, data)
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `lca-cli --host-root=<root> <subcommand> [--simulated]`.
fn subcommand_argv(w: &NodeStageWork, subcommand: &str) -> Vec<String> {
    let mut argv = base_argv(w);
    argv.push(subcommand.to_string());
    if w.exec.node().kind == lca_hostops::NodeKind::Simulated {
        argv.push("--simulated".into());
    }
    argv
}

fn base_argv(w: &NodeStageWork) -> Vec<String> {
    vec![
        w.lca_cli.display().to_string(),
        format!("--host-root={}", w.exec.node().paths.root().display()),
    ]
}

pub async fn launch_stateroot_setup(
    w: &NodeStageWork,
    ibu: &ImageBasedUpgrade,
    task: &Task,
) -> Result<(), String> {
    let cfg = serde_json::to_string(&lca_core::autorollback::config(ibu)).map_err(|e| e.to_string())?;
    let mut argv = subcommand_argv(w, "stateroot-setup");
    argv.extend([
        format!("--image={}", ibu.spec.seed_image_ref.image),
        format!("--version={}", ibu.spec.seed_image_ref.version),
        format!(
            "--status-file={}",
            w.workspace().join("stateroot-setup-status.json").display()
        ),
        format!("--autorollback-config-json={cfg}"),
    ]);
    if auth_file(w).exists() {
        argv.push(format!("--authfile={}", auth_file(w).display()));
    }
    task.start(&argv, &w.task_env, ibu, w.waker()).await.map_err(|e| e.to_string())
}

/// Compute the image list (§5.5) and start precache.
pub async fn launch_precache(w: &NodeStageWork, ibu: &ImageBasedUpgrade, task: &Task) -> Result<(), String> {
    let paths = &w.exec.node().paths;
    let stateroot = lca_core::version::stateroot_name(&ibu.spec.seed_image_ref.version);
    let seed_info: SeedClusterInfo =
        std::fs::read(paths.stateroot_var(&stateroot).join("seed_data/manifest.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .or_else(|| {
                std::fs::read(paths.host("var/tmp/manifest.json"))
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
            })
            .unwrap_or_default();
    let facts = RegistryFacts {
        cluster_release_registry: cluster_release_registry(w).await,
        mirror_sources: mirror_sources(w)
            .await
            .map_err(|e| format!("failed to launch precache: {e}"))?,
        seed_release_registry: seed_info.release_registry.clone(),
        seed_mirror_registry_configured: seed_info.mirror_registry_configured,
    };
    let list = std::fs::read_to_string(paths.host("var/tmp/containers.list")).unwrap_or_default();
    let images = image_list(&list, &facts)?;
    let images_file = w.workspace().join("precache-images.txt");
    std::fs::write(&images_file, images.join("\n") + "\n")
        .map_err(|e| format!("cannot write the image list: {e}"))?;
    let mut argv = subcommand_argv(w, "precache");
    argv.extend([
        format!("--images-file={}", images_file.display()),
        format!(
            "--status-file={}",
            paths.host(lca_api::consts::paths::PRECACHE_STATUS).display()
        ),
        "--parallel=10".to_string(),
    ]);
    if images
        .iter()
        .all(|i| lca_seed::registry::is_loopback(registry_host(i)))
    {
        argv.push("--tls-verify=false".into());
    }
    let kubelet_auth = paths.host("var/lib/kubelet/config.json");
    if kubelet_auth.exists() {
        argv.push(format!("--authfile={}", kubelet_auth.display()));
    }
    if std::env::var("PRECACHE_BEST_EFFORT").is_ok_and(|v| v == "TRUE") {
        argv.push("--best-effort".into());
    }
    task.start(&argv, &w.task_env, ibu, w.waker())
        .await
        .map_err(|e| format!("failed to launch precache: {e}"))
}

async fn cluster_release_registry(w: &NodeStageWork) -> String {
    let api: Api<Deployment> = Api::namespaced(w.client.clone(), "openshift-cluster-version");
    let image = api
        .get_opt("cluster-version-operator")
        .await
        .ok()
        .flatten()
        .and_then(|d| {
            d.spec?
                .template
                .spec?
                .containers
                .first()
                .and_then(|c| c.image.clone())
        });
    image.map(|i| registry_host(&i).to_string()).unwrap_or_default()
}

async fn mirror_sources(w: &NodeStageWork) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let kinds = [
        (
            "operator.openshift.io",
            "v1alpha1",
            "ImageContentSourcePolicy",
            "imagecontentsourcepolicies",
            "/spec/repositoryDigestMirrors",
        ),
        (
            "config.openshift.io",
            "v1",
            "ImageDigestMirrorSet",
            "imagedigestmirrorsets",
            "/spec/imageDigestMirrors",
        ),
    ];
    for (group, version, kind, plural, pointer) in kinds {
        for obj in list_dynamic(&w.client, group, version, kind, plural).await? {
            for m in obj
                .pointer(pointer)
                .and_then(|v| v.as_array())
                .into_iter()
                .flatten()
            {
                if let Some(src) = m.get("source").and_then(|s| s.as_str()) {
                    out.push(src.split('/').next().unwrap_or(src).to_string());
                }
            }
        }
    }
    Ok(out)
}

/// Copy the signer keys and admin CA the new stateroot's recert needs (§5.4 step 5).
pub async fn backup_kubeconfig_crypto(w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> Result<(), String> {
    let stateroot = lca_core::version::stateroot_name(&ibu.spec.seed_image_ref.version);
    let dir = w
        .exec
        .node()
        .paths
        .stateroot_var(&stateroot)
        .join("opt/openshift/kubeconfig-crypto");
    w.fs().create_private_dir(&dir).map_err(|e| e.to_string())?;
    let cm: Api<ConfigMap> = Api::namespaced(w.client.clone(), "openshift-config");
    let ca = cm
        .get("admin-kubeconfig-client-ca")
        .await
        .map_err(|e| {
            format!(
                "failed to get configmap openshift-config/admin-kubeconfig-client-ca: {}",
                api_message(&e)
            )
        })?
        .data
        .and_then(|d| d.get("ca-bundle.crt").cloned())
        .ok_or("configmap openshift-config/admin-kubeconfig-client-ca has no ca-bundle.crt")?;
    write_private(&dir.join("admin-kubeconfig-client-ca.crt"), ca.as_bytes())?;
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
        let api: Api<Secret> = Api::namespaced(w.client.clone(), ns);
        let secret = api
            .get(name)
            .await
            .map_err(|e| format!("failed to get secret {ns}/{name}: {}", api_message(&e)))?;
        let data: BTreeMap<String, k8s_openapi::ByteString> = secret.data.unwrap_or_default();
        let key = data
            .get("tls.key")
            .ok_or_else(|| format!("secret {ns}/{name} has no tls.key"))?;
        write_private(&dir.join(file), &key.0)?;
    }
    Ok(())
}

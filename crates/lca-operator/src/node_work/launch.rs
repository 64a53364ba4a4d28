//! Launching Prep's long-running tasks (spec §5.4, §5.5): the `lca-cli` argv, built from the
//! same argument structs `lca-cli` parses (`lca_api::cli_args`), the precache image list, and
//! the start on the node's task runner. Reached from `prep.rs` through
//! `NodeStageWork::launch`.

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::Api;
use lca_api::ImageBasedUpgrade;
use lca_api::cli_args::{PrecacheArgs, StaterootSetupArgs};
use lca_api::files::SeedClusterInfo;
use lca_core::TaskKind;
use lca_core::precache_plan::{RegistryFacts, image_list, registry_host};

use super::NodeStageWork;
use crate::error::{Error, Result};

impl NodeStageWork {
    /// Start `kind` for `ibu` on this node's task runner.
    pub(super) async fn launch(&self, ibu: &ImageBasedUpgrade, kind: TaskKind) -> Result<()> {
        let sub = match kind {
            TaskKind::StaterootSetup => stateroot_setup_args(self, ibu)?.to_argv(),
            TaskKind::Precache => precache_args(self, ibu).await?.to_argv(),
        };
        let mut argv = vec![
            self.lca_cli.display().to_string(),
            format!("--host-root={}", self.exec.node().paths.root().display()),
        ];
        argv.extend(sub);
        self.task(kind)
            .start(&argv, &self.task_env, ibu, self.waker())
            .await
    }

    fn simulated(&self) -> bool {
        self.exec.node().kind == lca_hostops::NodeKind::Simulated
    }
}

fn stateroot_setup_args(w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> Result<StaterootSetupArgs> {
    let seed = &ibu.spec.seed_image_ref;
    let status = w.workspace().join(super::prep::STATEROOT_STATUS_FILE);
    let mut args = StaterootSetupArgs::new(seed.image.clone(), seed.version.clone(), status);
    let cfg = lca_core::autorollback::config(ibu);
    args.autorollback_config_json =
        Some(serde_json::to_string(&cfg).map_err(|e| Error::invalid(format!("autorollback config: {e}")))?);
    let auth = super::seed::auth_file(w);
    if w.fs().exists(&auth)? {
        args.authfile = Some(auth);
    }
    args.simulated = w.simulated();
    Ok(args)
}

/// Compute the image list (§5.5) into the workspace and the precache arguments.
async fn precache_args(w: &NodeStageWork, ibu: &ImageBasedUpgrade) -> Result<PrecacheArgs> {
    let paths = &w.exec.node().paths;
    let stateroot = lca_core::version::stateroot_name(&ibu.spec.seed_image_ref.version);
    // The new stateroot's copy, else the one the stateroot task left in /var/tmp.
    let seed_info: SeedClusterInfo = [
        paths.stateroot_var(&stateroot).join("seed_data/manifest.json"),
        paths.host("var/tmp/manifest.json"),
    ]
    .iter()
    .find_map(|p| {
        w.fs()
            .read_optional(p)
            .ok()
            .flatten()
            .and_then(|b| serde_json::from_slice(&b).ok())
    })
    .unwrap_or_default();
    let (release_registry, mirrors) = futures::join!(
        cluster_release_registry(w),
        crate::cluster_facts::mirror_sources(&w.client)
    );
    let facts = RegistryFacts {
        cluster_release_registry: release_registry,
        mirror_sources: mirrors.map_err(|e| e.context("failed to launch precache"))?,
        seed_release_registry: seed_info.release_registry.clone(),
        seed_mirror_registry_configured: seed_info.mirror_registry_configured,
    };
    let list = w
        .fs()
        .read_string_optional(&paths.host("var/tmp/containers.list"))?
        .unwrap_or_default();
    let images = image_list(&list, &facts).map_err(|e| Error::state(e.to_string()))?;
    let images_file = w.workspace().join("precache-images.txt");
    w.fs()
        .write_atomic(&images_file, (images.join("\n") + "\n").as_bytes())
        .map_err(|e| Error::from(e).context("cannot write the image list"))?;
    let status = paths.host(lca_api::consts::paths::PRECACHE_STATUS);
    let mut args = PrecacheArgs::new(images_file, status);
    args.tls_verify = !images
        .iter()
        .all(|i| lca_seed::registry::is_loopback(registry_host(i)));
    let kubelet_auth = paths.host("var/lib/kubelet/config.json");
    if w.fs().exists(&kubelet_auth)? {
        args.authfile = Some(kubelet_auth);
    }
    args.best_effort = std::env::var("PRECACHE_BEST_EFFORT").is_ok_and(|v| v == "TRUE");
    args.simulated = w.simulated();
    Ok(args)
}

/// The registry of the cluster's release (its CVO image), empty when unknown.
async fn cluster_release_registry(w: &NodeStageWork) -> String {
    let api: Api<Deployment> = Api::namespaced(w.client.clone(), "openshift-cluster-version");
    let image = match api.get_opt("cluster-version-operator").await {
        Ok(d) => d.and_then(|d| {
            d.spec?
                .template
                .spec?
                .containers
                .first()
                .and_then(|c| c.image.clone())
        }),
        Err(e) => {
            // Only decides which images count as the release's; unknown is a valid answer.
            tracing::warn!(error = %crate::error::api_message(&e), "cannot read the CVO deployment");
            None
        }
    };
    image.map(|i| registry_host(&i).to_string()).unwrap_or_default()
}

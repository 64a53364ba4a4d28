//! `lca-cli post-pivot` (spec §6.4): the host side of the first boot of the new stateroot,
//! started by the seed's `installation-configuration.service` (oneshot, restarted on
//! failure). It turns the seed's node into the upgraded cluster's node from what pre-pivot
//! exported into `/opt/openshift` (upstream's paths and keys, so either implementation's
//! pre-pivot will do): SSH and pull secret, network and hostname, the IP-family check,
//! proxy, CA bundle, recert, chrony and SSH host keys, then — once the kubelet and the API
//! are up — the cluster objects (mirror configuration, manifests, clusterID, node labels,
//! LVM), and at last the unit disables itself and the exported files go.
//!
//! Each step is marked done in `/opt/openshift/<step>.done` after it succeeded, so a run
//! that was killed or failed resumes at the step that did not finish (and every step is
//! safe to repeat). `--simulated` (or `LCA_SIMULATED`) drives a simulated node directory
//! given by `--host-root` (or `LCA_HOST_ROOT`): the host services are then the test peer's,
//! and failpoint `post-pivot/<step>` (test builds) sits between each step and its marker.

mod cluster;
mod host;
mod recert;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lca_api::files::SeedClusterInfo;
use lca_api::seedreconfig::SeedReconfiguration;
use lca_hostops::{ChrootExecutor, Cmd, Executor, HostPaths, NodeFs, failpoint};
use tracing::info;

use crate::error::{Error, Result};
use crate::stateroot_setup::status::Markers;

/// Node paths (relative to `/`).
pub const OPT_OPENSHIFT: &str = "var/opt/openshift";
pub const CLUSTER_CONFIGURATION: &str = "var/opt/openshift/cluster-configuration";
pub const SEED_DATA: &str = "var/seed_data";
pub const SEED_INFO: &str = "var/seed_data/manifest.json";
const UNIT: &str = "installation-configuration.service";

#[derive(clap::Args, Debug, Clone, PartialEq, Eq)]
pub struct PostPivotArgs {
    /// The host root is a simulated node directory: host services are its test peer's.
    #[arg(long, env = "LCA_SIMULATED")]
    pub simulated: bool,
    /// Longest wait, in seconds, for the cluster configuration to appear and for the API
    /// server to answer.
    #[arg(long, default_value_t = 600)]
    pub wait_secs: u64,
}

/// What every step reads.
pub struct Ctx {
    pub exec: Arc<dyn Executor>,
    pub seed: SeedClusterInfo,
    pub config: SeedReconfiguration,
    pub wait: Duration,
}

impl Ctx {
    pub fn fs(&self) -> NodeFs<'_> {
        NodeFs::new(self.exec.as_ref())
    }

    pub fn paths(&self) -> &HostPaths {
        &self.exec.node().paths
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.paths().host(rel)
    }

    /// Run a host command (argv), failing with its output.
    pub async fn run(&self, argv: &[&str]) -> Result<String> {
        let (prog, args) = argv
            .split_first()
            .ok_or_else(|| Error::Invalid("empty command".into()))?;
        let out = self
            .exec
            .run(&Cmd::new(*prog).args(args).timeout(Duration::from_secs(600)))
            .await?;
        Ok(out.stdout)
    }

    /// Write `bytes` to the node file `rel`, creating its directory.
    pub fn write(&self, rel: &str, bytes: &[u8]) -> Result<()> {
        let path = self.path(rel);
        if let Some(dir) = path.parent() {
            self.fs().create_private_dir(dir)?;
        }
        Ok(self.fs().write_atomic(&path, bytes)?)
    }
}

/// The steps, in order; each name is its marker.
const STEPS: [&str; 13] = [
    "ssh-key",
    "pull-secret",
    "network",
    "validate-networks",
    "ca-bundle",
    "recert",
    "chrony-ssh-host-keys",
    "kubelet",
    "delete-mirror-config",
    "apply-cluster-configuration",
    "registry-override",
    "cluster-identity",
    "lvm",
];

/// The node as the host subcommands of the new stateroot see it: the host itself, or a
/// simulated node directory whose host services are its test peer's (first in `PATH`).
pub fn node_executor(host_root: &std::path::Path, simulated: bool) -> Arc<dyn Executor> {
    if simulated {
        Arc::new(lca_hostops::sim::executor(&HostPaths::new(host_root)))
    } else {
        Arc::new(ChrootExecutor::new(host_root))
    }
}

/// Run post-pivot; when it fails and the `postpivot` component may roll back, roll back
/// (spec §6.4 "on any error"). A rollback decided earlier on this stateroot is carried on
/// instead of resuming the steps. Either way a failure is returned, so the unit fails.
pub async fn run(host_root: &std::path::Path, args: &PostPivotArgs) -> Result<()> {
    let exec = node_executor(host_root, args.simulated);
    if let Some(message) = lca_hostops::rollback::decided(exec.as_ref())? {
        crate::init_monitor::roll_back(exec.as_ref(), &message).await?;
        return Err(Error::NodeState(format!("rolling back: {message}")));
    }
    let Err(e) = steps(exec.clone(), args).await else {
        return Ok(());
    };
    let config = crate::init_monitor::read_config(exec.as_ref())?;
    let trigger = lca_core::autorollback::Trigger::PostPivot(e.to_string());
    if trigger.enabled(&config, None) {
        if let Err(r) = crate::init_monitor::roll_back(exec.as_ref(), &trigger.message()).await {
            tracing::error!(error = %r, "the automatic rollback failed");
        }
    } else {
        info!("post-pivot failed; automatic rollback is disabled for it");
    }
    Err(e)
}

async fn steps(exec: Arc<dyn Executor>, args: &PostPivotArgs) -> Result<()> {
    let wait = Duration::from_secs(args.wait_secs);
    let fs = NodeFs::new(exec.as_ref());
    let paths = exec.node().paths.clone();
    wait_for_configuration(&fs, &paths, wait).await?;
    let seed_path = paths.host(SEED_INFO);
    let seed: SeedClusterInfo = serde_json::from_slice(&fs.read(&seed_path)?)
        .map_err(|e| Error::Invalid(format!("invalid seed cluster info {}: {e}", seed_path.display())))?;
    let config_path = paths.host(lca_api::seedreconfig::NODE_PATH);
    let config = SeedReconfiguration::parse(&fs.read(&config_path)?).map_err(|e| {
        Error::Invalid(format!(
            "invalid seed reconfiguration {}: {e}",
            config_path.display()
        ))
    })?;
    let ctx = Ctx {
        exec: exec.clone(),
        seed,
        config,
        wait,
    };
    let markers = Markers::new(paths.host(OPT_OPENSHIFT), fs);
    let mut client = None;
    for step in STEPS {
        if markers.is_done(step) {
            continue;
        }
        info!(step, "post-pivot step");
        match step {
            "ssh-key" => host::ssh_key(&ctx).await?,
            "pull-secret" => host::pull_secret(&ctx)?,
            "network" => host::network(&ctx).await?,
            "validate-networks" => host::validate_networks(&ctx)?,
            "ca-bundle" => host::ca_bundle(&ctx).await?,
            "recert" => recert::run(&ctx).await?,
            "chrony-ssh-host-keys" => host::chrony_and_ssh_host_keys(&ctx).await?,
            _ => {
                let c = match &client {
                    Some(c) => c,
                    None => client.insert(cluster::connect(&ctx).await?),
                };
                cluster::step(&ctx, c, step).await?;
            }
        }
        Error::failpoint(
            paths.root(),
            args.simulated,
            failpoint::names::CLI_POST_PIVOT,
            step,
        )?;
        markers.mark(step)?;
    }
    if client.is_none() {
        // Every step was done by an earlier run; the kubelet still has to run.
        ctx.run(&["systemctl", "enable", "kubelet", "--now"]).await?;
    }
    ctx.run(&["systemctl", "disable", UNIT]).await?;
    for dir in [OPT_OPENSHIFT, SEED_DATA] {
        fs.remove_dir_all(&paths.host(dir))?;
    }
    info!("post-pivot completed");
    Ok(())
}

/// Pre-pivot wrote the configuration before the reboot; an IBI node gets it from a config
/// drive later, which this build does not read.
async fn wait_for_configuration(fs: &NodeFs<'_>, paths: &HostPaths, wait: Duration) -> Result<()> {
    let dir = paths.host(CLUSTER_CONFIGURATION);
    let start = std::time::Instant::now();
    while !fs.exists(&dir)? {
        if start.elapsed() >= wait {
            return Err(Error::NodeState(format!(
                "{} did not appear within {}s",
                dir.display(),
                wait.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

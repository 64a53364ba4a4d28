//! `lca-cli create` (spec §8.5): turn this node (or a simulated node under `--host-root`)
//! into a v4 seed image and push it. Every step is marked done in `/var/tmp/checks`, so a
//! re-run after a crash resumes where it stopped; the image's manifest is pushed last, so
//! a failed run never moves the tag.

pub mod boot;
mod node;
pub mod ostree;
mod recert;
mod var;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use lca_api::files::SeedClusterInfo;
use lca_hostops::{HostPaths, NodeFs, failpoint};
use lca_seed::layout::files;
use lca_seed::{Progress, SeedRegistry};

pub use node::Node;

/// Arguments of `create`.
#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Docker auth JSON with credentials for the seed's registry (the `seedAuth` key).
    #[arg(long)]
    pub authfile: Option<PathBuf>,
    /// Seed image reference to push.
    #[arg(long)]
    pub image: String,
    #[arg(long, default_value = "quay.io/edge-infrastructure/recert:v0")]
    pub recert_image: String,
    #[arg(long)]
    pub skip_recert_validation: bool,
    /// Keep the backup dir and markers (and skip restarting kubelet) at the end.
    #[arg(long)]
    pub skip_cleanup: bool,
    /// Seed cluster info JSON gathered by the operator (node path or absolute).
    #[arg(long, default_value = "/var/lib/lca/ibu-seedgen-orch/seed-cluster-info.json")]
    pub cluster_info: PathBuf,
    /// The CatalogSource and CSV related images gathered by the operator (node path or
    /// absolute); without it `containers.list` only drops the Red Hat index images.
    #[arg(long, default_value = "/var/lib/lca/ibu-seedgen-orch/seed-images.json")]
    pub images_info: PathBuf,
    /// gzip level of the tarballs (1 fastest .. 9 smallest).
    #[arg(long, default_value_t = lca_seed::pgzip::DEFAULT_LEVEL)]
    pub level: u32,
    /// Seconds kubelet and CRI-O get to stop before create gives up (and restarts kubelet).
    #[arg(long, default_value_t = 600)]
    pub stop_timeout: u64,
    /// The host root is a SIMULATED node directory (tests, demo): its host services are the
    /// test peer's, first in PATH.
    #[arg(long)]
    pub simulated: bool,
    /// Plain HTTP to the registry (default: only for loopback registries).
    #[arg(long)]
    pub plain_http: bool,
}

/// Shared state of the steps.
pub struct Ctx<'a> {
    pub paths: HostPaths,
    /// Every node file the steps read or write.
    pub fs: NodeFs<'a>,
    pub node: &'a Node,
    pub backup: PathBuf,
    pub checks: PathBuf,
    pub level: u32,
    pub args: &'a CreateArgs,
}

impl Ctx<'_> {
    /// Run `step` unless its marker exists; write the marker after success (failpoint
    /// `create/<name>` in between).
    fn once(&self, name: &str, step: impl FnOnce(&Self) -> Result<()>) -> Result<()> {
        let marker = self.checks.join(format!("{name}.done"));
        if self.fs.exists(&marker)? {
            tracing::info!(step = name, "already done");
            return Ok(());
        }
        tracing::info!(step = name, "running");
        step(self)?;
        Error::failpoint(
            self.paths.root(),
            self.args.simulated,
            failpoint::names::CREATE,
            name,
        )?;
        Ok(self.fs.write_atomic(&marker, b"")?)
    }
}

pub async fn run(host_root: &Path, args: &CreateArgs) -> Result<()> {
    let node = if args.simulated {
        // The host services of a simulated node are its test peer's; without the peer they
        // would be this machine's own (a real `systemctl stop kubelet`).
        let peer = HostPaths::new(host_root).sim_dir().join("bin/systemctl");
        if !peer.exists() {
            return Err(Error::Invalid(format!(
                "simulated node without its host-services peer ({} is missing)",
                peer.display()
            )));
        }
        Node::with_executor(crate::post_pivot::node_executor(host_root, true))
    } else {
        Node::real(host_root)
    };
    let node = &node.stop_timeout(std::time::Duration::from_secs(args.stop_timeout));
    let paths = HostPaths::new(host_root);
    let image = lca_seed::parse_reference(&args.image)?;
    let credentials = crate::credentials(args.authfile.as_ref(), image.resolve_registry())?;
    let plain = args.plain_http || lca_seed::registry::is_loopback(image.resolve_registry());
    let registry = SeedRegistry::new(&image, &credentials, plain);
    // Before anything touches the node (no kubelet stop, no pack, and the step markers of
    // an interrupted run survive): a 401 fails in seconds.
    match registry.check_push_access(&image).await {
        // No credentials were sent: say that, rather than that they were rejected.
        Err(lca_seed::Error::Unauthorized { registry: r, .. })
            if credentials == lca_seed::Credentials::Anonymous && args.authfile.is_some() =>
        {
            return Err(Error::Invalid(format!(
                "registry {r} requires credentials and the auth file (the seedgen Secret's \
                 seedAuth) has none for it: add an entry for {r}"
            )));
        }
        other => other?,
    }
    tracing::info!(registry = registry.registry(), "push access verified");
    let ctx = Ctx {
        backup: paths.host("var/tmp/backup"),
        checks: paths.host("var/tmp/checks"),
        paths,
        fs: NodeFs::new(node.executor()),
        node,
        level: args.level,
        args,
    };
    for d in [&ctx.backup, &ctx.checks] {
        ctx.fs
            .create_private_dir(d)
            .map_err(Error::host("creating the work dir"))?;
    }
    let result = build_and_push(&ctx, &image, &registry).await;
    if args.skip_cleanup {
        return result;
    }
    let cleaned = cleanup(&ctx);
    match (result, cleaned) {
        (Ok(()), cleaned) => cleaned,
        (Err(e), Ok(())) => Err(e),
        // The build's failure is the cause; the cleanup's is logged as well.
        (Err(e), Err(c)) => {
            tracing::error!(error = %c, "cleanup after a failed create");
            Err(e)
        }
    }
}

async fn build_and_push(
    ctx: &Ctx<'_>,
    image: &lca_seed::registry::Reference,
    registry: &SeedRegistry,
) -> Result<()> {
    let exe = std::env::current_exe().map_err(Error::io("locating lca-cli", "/proc/self/exe"))?;
    ctx.fs
        .copy_in(&exe, &ctx.backup.join(files::LCA_CLI))
        .map_err(Error::host("copying lca-cli"))?;
    ctx.once("containers-list", containers_list)?;
    let info = ctx_cluster_info(ctx)?;
    let info_json = serde_json::to_vec(&info)
        .map_err(|e| Error::Invalid(format!("serializing the seed cluster info: {e}")))?;
    ctx.once("manifest", |c| write_file(c, files::MANIFEST, &info_json))?;
    boot::install(ctx, &exe, &info_json)?;
    ctx.node.stop_cluster_services()?;
    ctx.once("recert", recert::expire)?;
    remove_node_certs(ctx)?;
    ctx.once("var-tgz", var::var_tgz)?;
    ctx.once("etc-tgz", ostree::etc)?;
    ctx.once("ostree-tgz", ostree::ostree_tgz)?;
    ctx.once("rpm-ostree", |c| {
        let s = c.node.rpm_ostree_status()?;
        write_file(c, files::RPM_OSTREE, s.as_bytes())
    })?;
    ctx.once("mco-currentconfig", |c| {
        // Unreadable or absent: an empty config, as upstream records it.
        let cfg = (c.fs)
            .read_optional(&c.paths.host("etc/machine-config-daemon/currentconfig"))
            .ok()
            .flatten()
            .unwrap_or_else(|| b"{}".to_vec());
        write_file(c, files::MCO_CURRENT_CONFIG, &cfg)
    })?;
    ctx.once("origin", ostree::origin)?;

    let blobs = ctx.paths.host("var/tmp/seed-blobs");
    let progress = Progress::new("pack layer", None);
    let layer = lca_seed::build_layer(&ctx.backup, &blobs, ctx.level, &progress)?;
    tracing::info!(digest = %layer.digest, size = layer.size, raw = layer.uncompressed_size, "seed layer built");
    let labels = lca_seed::layout::seed_labels(&info).map_err(|e| Error::Invalid(e.to_string()))?;
    let progress = Progress::new("push layer", Some(layer.size));
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let digest = registry
        .push_seed(image, &layer, &labels, &created, &progress)
        .await?;
    // The seed is pushed; a leftover blob dir only takes space (cleanup tries again).
    if let Err(e) = ctx.fs.remove_dir_all(&blobs) {
        tracing::warn!(dir = %blobs.display(), error = %e, "could not remove the packed layer");
    }
    tracing::info!(image = %ctx.args.image, %digest, "seed image pushed");
    println!("{digest}");
    Ok(())
}

/// The node's own OVN and multus client keys must never travel inside a seed: a removal
/// that fails (other than "already gone") stops create before `var.tgz` is packed.
fn remove_node_certs(ctx: &Ctx) -> Result<()> {
    for d in ["var/lib/ovn-ic/etc/ovnkube-node-certs", "etc/cni/multus/certs"] {
        (ctx.fs)
            .remove_dir_all(&ctx.paths.host(d))
            .map_err(Error::host("removing the node's certificates before packing"))?;
    }
    Ok(())
}

fn ctx_cluster_info(ctx: &Ctx) -> Result<SeedClusterInfo> {
    let path = ctx.paths.host(&ctx.args.cluster_info);
    let json = ctx
        .fs
        .read(&path)
        .map_err(Error::host("reading the seed cluster info"))?;
    serde_json::from_slice(&json)
        .map_err(|e| Error::Invalid(format!("invalid seed cluster info {}: {e}", path.display())))
}

fn containers_list(ctx: &Ctx) -> Result<()> {
    let path = ctx.paths.host(&ctx.args.images_info);
    let seed_images: lca_api::files::SeedImages = match ctx
        .fs
        .read_optional(&path)
        .map_err(Error::host("reading the seed images"))?
    {
        Some(json) => serde_json::from_slice(&json)
            .map_err(|e| Error::Invalid(format!("invalid seed images {}: {e}", path.display())))?,
        None => Default::default(),
    };
    let images = lca_core::seed_images::containers_list(
        &ctx.node.list_images()?,
        &seed_images,
        &ctx.args.recert_image,
    );
    write_file(
        ctx,
        files::CONTAINERS_LIST,
        format!("{}\n", images.join("\n")).as_bytes(),
    )
}

fn write_json(ctx: &Ctx, name: &str, v: &impl serde::Serialize) -> Result<()> {
    let bytes = serde_json::to_vec(v).map_err(|e| Error::Invalid(format!("serializing {name}: {e}")))?;
    write_file(ctx, name, &bytes)
}

fn write_file(ctx: &Ctx, name: &str, data: &[u8]) -> Result<()> {
    let path = ctx.backup.join(name);
    ctx.fs
        .write_atomic(&path, data)
        .map_err(Error::host("writing a seed file"))
}

/// Step 12: leave the node as it was, whatever happened; in upstream's order (units, then
/// the certificates, the work dirs, kubelet). Every part is tried; what leaves the seed
/// cluster broken (its certificates not restored, kubelet not started) is returned.
fn cleanup(ctx: &Ctx) -> Result<()> {
    for e in boot::uninstall(ctx) {
        tracing::warn!(error = %e, "could not remove what the seed needed to boot");
    }
    let restored = if recert::needs_restore(ctx) {
        recert::restore(ctx).map_err(|e| {
            Error::NodeState(format!(
                "the seed cluster's certificates could not be restored after the expiry: {e}"
            ))
        })
    } else {
        Ok(())
    };
    let certs = ctx.paths.host(lca_api::consts::paths::BACKUP_CERTS_DIR);
    // The markers go before the files they vouch for: a run killed in between redoes the
    // steps rather than trusting markers whose files are gone.
    for d in [
        &ctx.checks,
        &ctx.backup,
        &ctx.paths.host("var/tmp/seed-blobs"),
        &certs,
    ] {
        // A failed restoration keeps the keys and the expiry's marker: a second run
        // restores with them. Not the steps' markers: the files they vouch for go with the
        // backup dir, and a second run trusting them would push a seed without those files.
        if d == &certs && restored.is_err() {
            continue;
        }
        if d == &ctx.checks && restored.is_err() {
            remove_step_markers(ctx);
            continue;
        }
        if let Err(e) = ctx.fs.remove_dir_all(d) {
            // Cleanup goes on: restarting kubelet matters more than a leftover dir.
            tracing::warn!(error = %e, "could not remove a work dir");
        }
    }
    let started = ctx
        .node
        .start_cluster_services()
        .map_err(|e| Error::NodeState(format!("kubelet could not be started again: {e}")));
    restored.and(started)
}

/// Every marker in `/var/tmp/checks` but the expiry's `recert.started`.
fn remove_step_markers(ctx: &Ctx) {
    let names = ctx.fs.list_dir(&ctx.checks).unwrap_or_else(|e| {
        tracing::warn!(error = %e, "could not list the step markers");
        Vec::new()
    });
    for name in names.iter().filter(|n| *n != recert::STARTED) {
        if let Err(e) = ctx.fs.remove_file(&ctx.checks.join(name)) {
            tracing::warn!(error = %e, "could not remove a step marker");
        }
    }
}

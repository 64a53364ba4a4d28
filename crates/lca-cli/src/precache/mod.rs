//! `lca-cli precache` (spec §5.5 workload): pull the images the new release needs into the
//! node's container storage before the upgrade, so the first boot of the new stateroot does
//! not wait for a registry.
//!
//! Input: `--images-file`, one reference a line (blank lines ignored, duplicates pulled once).
//! Output: `--status-file`, `lca_api::files::PrecacheStatus`
//! (`{"total","pulled","failed","failed_pulls":[...]}`), rewritten atomically after every
//! image and once more after the forgiveness pass. Exit 0 when nothing unforgiven failed
//! or with `--best-effort`; 1 otherwise.
//!
//! Time is bounded (`bounded`): each `podman pull` attempt is killed after
//! `--pull-timeout`, up to `--pull-attempts` attempts with a 2 s doubling backoff, so an
//! image that a stalled registry holds fails after at most `BoundedPull::bound` (defaults:
//! 5 × 600 s + 30 s) and the run after at most ⌈images / parallel⌉ times that.
//!
//! Storage: a real node uses podman's own storage, through the chroot into `--host-root`.
//! A simulated node (`--simulated`) uses a private vfs storage inside the node dir:
//! graphroot `HostPaths::sim_container_storage`, runroot `<root>/run/containers/storage`,
//! selected by `CONTAINERS_STORAGE_CONF=<root>/lca-sim/containers-storage.conf`,
//! which this command (re)writes. Anything else that wants to see those images (the
//! operator's `podman image exists`, tests) points podman at the same file.

pub(crate) mod bounded;
mod pull;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, Result};
use bounded::BoundedPull;
use lca_hostops::podman::PullOptions;
use lca_hostops::{ChrootExecutor, Cmd, Executor, HostPaths, LocalExecutor, NodeFs};

pub use lca_api::cli_args::PrecacheArgs;

/// The storage config of a simulated node's podman (see the module header).
pub fn sim_storage_conf(paths: &HostPaths) -> PathBuf {
    paths.sim_dir().join("containers-storage.conf")
}

fn write_sim_storage_conf(paths: &HostPaths) -> Result<PathBuf> {
    let conf = sim_storage_conf(paths);
    let text = format!(
        "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
        paths.sim_container_storage().display(),
        paths.host("run/containers/storage").display()
    );
    let exec = LocalExecutor::new(paths.root());
    let fs = NodeFs::new(&exec);
    if let Some(dir) = conf.parent() {
        fs.create_private_dir(dir)?;
    }
    fs.write_atomic(&conf, text.as_bytes())
        .map_err(Error::host("writing the simulated storage config"))?;
    Ok(conf)
}

/// Non-empty lines, trimmed, first occurrence only.
pub fn parse_images(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if !out.iter().any(|i| i == line) {
            out.push(line.to_string());
        }
    }
    out
}

pub async fn run(host_root: &Path, args: &PrecacheArgs) -> Result<()> {
    let paths = HostPaths::new(host_root);
    let exec: Arc<dyn Executor> = if args.simulated {
        let conf = write_sim_storage_conf(&paths)?;
        Arc::new(LocalExecutor::new(host_root).with_env("CONTAINERS_STORAGE_CONF", conf))
    } else {
        Arc::new(ChrootExecutor::new(host_root))
    };
    let text = std::fs::read_to_string(&args.images_file)
        .map_err(Error::io("reading the image list", &args.images_file))?;
    let images = parse_images(&text);
    if images.is_empty() {
        return Err(Error::Invalid("no images specified for precaching".into()));
    }
    exec.run(&Cmd::new("podman").arg("version").read_only())
        .await
        .map_err(Error::host("podman is not usable on the node"))?;
    let authfile = match &args.authfile {
        Some(p) => Some(crate::stateroot_setup::node_path(exec.as_ref(), p)?),
        None => {
            let kubelet = "var/lib/kubelet/config.json";
            // Unreadable counts as absent: podman then pulls without credentials.
            let present = NodeFs::new(exec.as_ref())
                .exists(&paths.host(kubelet))
                .unwrap_or(false);
            present.then(|| exec.node().cmd_paths.host(kubelet))
        }
    };
    let policy = BoundedPull {
        opts: PullOptions {
            authfile,
            insecure: !args.tls_verify,
            ..Default::default()
        },
        attempts: args.pull_attempts,
        timeout: args.pull_timeout,
        backoff: Duration::from_secs(2),
    };
    tracing::info!(
        images = images.len(),
        parallel = args.parallel,
        per_image_bound = ?policy.bound(),
        "precaching"
    );
    let status = pull::pull_all(
        exec,
        images,
        policy,
        args.parallel as usize,
        args.status_file.clone(),
    )
    .await;
    tracing::info!(
        total = status.total,
        pulled = status.pulled,
        failed = status.failed,
        "precache finished"
    );
    let sim = args.simulated;
    Error::failpoint(
        paths.root(),
        sim,
        lca_hostops::failpoint::names::PRECACHE,
        "Pulled",
    )?;
    if status.failed == 0 {
        return Ok(());
    }
    if args.best_effort {
        tracing::warn!(failed = ?status.failed_pulls, "best effort: ignoring failed pulls");
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "failed to precache {} of {} images: {}",
        status.failed,
        status.total,
        status.failed_pulls.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_list_lines() {
        assert_eq!(parse_images("a:1\n\n  b:2 \na:1\n"), ["a:1", "b:2"]);
        assert!(parse_images("\n \n").is_empty());
    }
}

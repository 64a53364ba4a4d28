//! The seed's side of `stateroot-setup` (spec §5.4 step 2 and the reads of step 3): get
//! the seed's files into a directory this process can read, and parse the three files that
//! steer the deployment: `rpm-ostree.json` (which commit), `manifest.json` (which version)
//! and `mco-currentconfig.json` (which kernel arguments).
//!
//! A simulated node has no podman image mount of a seed (the seed's custom layout is not a
//! runnable image there), so the seed is pulled by digest and unpacked with lca-seed into
//! `<root>/var/tmp/lca-stateroot-setup/seed`; that unpack is all-or-nothing, so an existing
//! directory means a finished pull and a re-run skips it. A real node does what upstream
//! does: `podman pull` and `podman image mount` in the host's namespaces. Both pulls are
//! bounded in time (lca-seed's timeouts; `precache::bounded` per podman attempt).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use lca_api::files::SeedClusterInfo;
use lca_hostops::podman::{self, PullOptions};
use lca_hostops::{Executor, NodeFs};
use lca_seed::RegistryTimeouts;
use lca_seed::layout::files;
use serde::Deserialize;

use crate::precache::bounded::BoundedPull;

/// Where the seed's files are, and how to let go of them.
pub enum Seed {
    /// Unpacked by lca-seed into a work directory (simulated node).
    Unpacked { dir: PathBuf },
    /// `podman image mount` of `image` (real node); `dir` is the mount point as this process sees it.
    Mounted { image: String, dir: PathBuf },
}

impl Seed {
    pub fn dir(&self) -> &Path {
        match self {
            Seed::Unpacked { dir } | Seed::Mounted { dir, .. } => dir,
        }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir().join(name)
    }
}

/// Simulated node: pull and unpack `image` into `target` unless a previous run did. One
/// attempt, bounded by `timeouts`: a failure is final for the run (the operator fails Prep).
pub async fn unpack(
    fs: &NodeFs<'_>,
    image: &str,
    authfile: Option<&PathBuf>,
    target: &Path,
    timeouts: RegistryTimeouts,
) -> Result<Seed> {
    if fs.symlink_metadata(target)?.is_some_and(|m| m.is_dir()) {
        tracing::info!(dir = %target.display(), "seed already unpacked");
        return Ok(Seed::Unpacked { dir: target.into() });
    }
    let reference = lca_seed::parse_reference(image)?;
    let creds = crate::credentials(authfile, reference.resolve_registry())?;
    let plain = lca_seed::registry::is_loopback(reference.resolve_registry());
    let reg = lca_seed::SeedRegistry::with_timeouts(&reference, &creds, plain, timeouts);
    if let Some(parent) = target.parent() {
        fs.create_private_dir(parent)
            .map_err(Error::host("creating the work dir"))?;
    }
    let info = lca_seed::pull_and_unpack(&reg, &reference, target).await?;
    tracing::info!(digest = %info.manifest_digest, "seed pulled and unpacked");
    Ok(Seed::Unpacked { dir: target.into() })
}

/// Real node: `podman pull --authfile <f> <image>` (skipped when present; 3 attempts of at
/// most `attempt_timeout` each) and `podman image mount` through nsenter. `authfile` is a
/// node path (as the commands see it).
pub async fn mount(
    exec: &dyn Executor,
    image: &str,
    authfile: Option<PathBuf>,
    attempt_timeout: Duration,
) -> Result<Seed> {
    if !podman::image_exists(exec, image).await.map_err(Error::from)? {
        let pull = BoundedPull {
            opts: PullOptions {
                authfile,
                ..Default::default()
            },
            attempts: 3,
            timeout: attempt_timeout,
            backoff: Duration::from_secs(5),
        };
        pull.pull(exec, image).await.map_err(Error::from)?;
    }
    let mnt = podman::image_mount(exec, image).await.map_err(Error::from)?;
    Ok(Seed::Mounted {
        image: image.into(),
        dir: exec.node().paths.host(&mnt),
    })
}

/// Let go of a mounted seed: unmount and remove the image (precached images stay).
/// Failures only cost disk space, so they are logged, not returned.
pub async fn release(exec: &dyn Executor, seed: &Seed) {
    if let Seed::Mounted { image, .. } = seed {
        if let Err(e) = podman::image_umount(exec, image).await {
            tracing::warn!(error = %e, "could not unmount the seed image");
        }
        if let Err(e) = podman::rmi(exec, std::slice::from_ref(image)).await {
            tracing::warn!(error = %e, "could not remove the seed image");
        }
    }
}

fn read_json<T: for<'de> Deserialize<'de>>(fs: &NodeFs, path: &Path) -> Result<T> {
    let bytes = fs.read(path).map_err(Error::host("reading the seed"))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Invalid(format!("invalid seed file {}: {e}", path.display())))
}

/// The seed's booted deployment, from `rpm-ostree.json`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedDeployment {
    /// `<checksum>.<serial>`: names the seed's `ostree-<deployment>.origin`.
    pub deployment: String,
    /// The commit to deploy (the deployment before its first `.`).
    pub refspec: String,
}

#[derive(Deserialize)]
struct RpmOstree {
    #[serde(default)]
    deployments: Vec<RpmOstreeDeployment>,
    /// Set by `lca-cli create --simulated`, whose node has no booted deployment.
    #[serde(default)]
    simulated: bool,
}

#[derive(Deserialize)]
struct RpmOstreeDeployment {
    id: String,
    #[serde(default)]
    booted: bool,
}

/// Parse `rpm-ostree status --json` as saved in the seed: the booted deployment's id
/// (`rhcos-<sha>.<serial>`) → deployment = text after the last `-`, ref = that before the
/// first `.`. A simulated seed marks nothing booted; its deployment 0 is the one packed.
pub fn seed_deployment(json: &[u8]) -> Result<SeedDeployment> {
    let status: RpmOstree = serde_json::from_slice(json)
        .map_err(|e| Error::Invalid(format!("invalid seed {}: {e}", files::RPM_OSTREE)))?;
    let booted = status.deployments.iter().find(|d| d.booted);
    let chosen = match booted {
        Some(d) => d,
        None if status.simulated => status.deployments.first().ok_or_else(no_booted)?,
        None => return Err(no_booted()),
    };
    let deployment = chosen.id.rsplit('-').next().unwrap_or_default().to_string();
    let refspec = deployment.split('.').next().unwrap_or_default().to_string();
    if refspec.is_empty() || refspec.starts_with('-') {
        return Err(Error::Invalid(format!(
            "seed {}: bad deployment id {:?}",
            files::RPM_OSTREE,
            chosen.id
        )));
    }
    Ok(SeedDeployment { deployment, refspec })
}

fn no_booted() -> Error {
    Error::Invalid(format!("seed {}: no booted deployment", files::RPM_OSTREE))
}

pub fn read_deployment(fs: &NodeFs, seed: &Seed) -> Result<SeedDeployment> {
    seed_deployment(
        &fs.read(&seed.file(files::RPM_OSTREE))
            .map_err(Error::host("reading the seed"))?,
    )
}

/// `manifest.json`'s version must be the one the CR asks for (upstream's exact message).
pub fn check_version(fs: &NodeFs, seed: &Seed, version: &str) -> Result<SeedClusterInfo> {
    let info: SeedClusterInfo = read_json(fs, &seed.file(files::MANIFEST))?;
    if info.seed_cluster_ocp_version != version {
        return Err(Error::Invalid(format!(
            "version specified in seed image ({}) differs from version in spec ({version})",
            info.seed_cluster_ocp_version
        )));
    }
    Ok(info)
}

#[derive(Deserialize, Default)]
struct MachineConfig {
    #[serde(default)]
    spec: McSpec,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct McSpec {
    #[serde(default)]
    kernel_arguments: Vec<String>,
    #[serde(default)]
    fips: bool,
}

/// `--karg-append` values from the seed's MachineConfig: its kernelArguments, then
/// `fips=1 boot=LABEL=boot` when FIPS is on. Passed as argv items, so no JSON quoting.
pub fn karg_append(mco_json: &[u8]) -> Result<Vec<String>> {
    let mc: MachineConfig = serde_json::from_slice(mco_json)
        .map_err(|e| Error::Invalid(format!("invalid seed {}: {e}", files::MCO_CURRENT_CONFIG)))?;
    let mut kargs = mc.spec.kernel_arguments;
    if mc.spec.fips {
        kargs.extend(["fips=1".to_string(), "boot=LABEL=boot".to_string()]);
    }
    Ok(kargs)
}

pub fn read_kargs(fs: &NodeFs, seed: &Seed) -> Result<Vec<String>> {
    karg_append(
        &fs.read(&seed.file(files::MCO_CURRENT_CONFIG))
            .map_err(Error::host("reading the seed"))?,
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn booted_deployment_and_ref() {
        let json =
            br#"{"deployments":[{"id":"rhcos-aaa.1","booted":false},{"id":"rhcos-f00d.0","booted":true}]}"#;
        let d = seed_deployment(json).unwrap();
        assert_eq!(d.deployment, "f00d.0");
        assert_eq!(d.refspec, "f00d");
        let none = br#"{"deployments":[{"id":"rhcos-aaa.1"}]}"#;
        assert_eq!(
            seed_deployment(none).unwrap_err().to_string(),
            "seed rpm-ostree.json: no booted deployment"
        );
        let sim = br#"{"deployments":[{"id":"rhcos-abc.0"}],"simulated":true}"#;
        assert_eq!(seed_deployment(sim).unwrap().refspec, "abc");
    }

    #[test]
    fn kernel_arguments_and_fips() {
        let mc = br#"{"spec":{"kernelArguments":["ip=dhcp","a b"],"fips":true}}"#;
        assert_eq!(
            karg_append(mc).unwrap(),
            ["ip=dhcp", "a b", "fips=1", "boot=LABEL=boot"]
        );
        assert!(karg_append(b"{}").unwrap().is_empty());
        assert!(karg_append(b"[").is_err());
    }
}

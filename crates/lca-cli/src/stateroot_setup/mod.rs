//! `lca-cli stateroot-setup` (spec §5.4 steps 2–4): install a seed image as the new
//! stateroot `rhcos_<version>` next to the booted one, without making it the default.
//!
//! Steps, each marked done in `<root>/var/lib/lca/workspace/stateroot-setup/<step>.done`
//! after it succeeded, so a re-run after a crash resumes (every step is also safe to repeat,
//! for a crash between the work and its marker): `pull`, `extract-ostree`, `pull-local`,
//! `os-init`, `deploy`, `restore-default`, `cleanup-base`, `origin`, `var`, `etc`,
//! `etc-deletions`, `hand-off`, `autorollback-config`, `cleanup`; `complete` marks the whole
//! run. The version check runs on every run before anything is changed. A `run.json` in the
//! marker dir records image and version: markers of another seed, or of a stateroot that has
//! since been removed (abort), are discarded.
//!
//! Every exit but a crash releases the seed (`release`): the work dir
//! `<root>/var/tmp/lca-stateroot-setup`, on a real node the seed image's mount and the image,
//! and a `--authfile` inside the LCA workspace (the operator's copy of the pull secret).
//! The seed pull is bounded: `--registry-read-timeout` on a simulated node (lca-seed), and
//! `--pull-timeout` per `podman pull` attempt on a real one.
//!
//! `--status-file` gets `{"phase":"running"|"succeeded"|"failed","step","message"}` (see
//! `status`). Between each step's work and its marker sits failpoint
//! `stateroot-setup/<step>` (`lca_hostops::failpoint`: test builds, `--simulated` only).

mod deploy;
mod files;
pub mod grace;
mod release;
mod seed;
pub mod status;

use std::cell::Cell;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use lca_hostops::failpoint;
use lca_hostops::ostree::{self, Deployment};
use lca_hostops::stateroot_work;
use lca_hostops::{ChrootExecutor, Executor, HostPaths, LocalExecutor, NodeFs, NodeKind};
use lca_seed::RegistryTimeouts;
use lca_seed::layout::files as seed_files;
use serde::{Deserialize, Serialize};

use seed::Seed;
use status::{Markers, Phase, Reporter};

pub use lca_api::cli_args::StaterootSetupArgs;

/// lca-seed's timeouts for the simulated pull; the metadata cap stays above the read one.
fn registry_timeouts(args: &StaterootSetupArgs) -> RegistryTimeouts {
    let defaults = RegistryTimeouts::default();
    RegistryTimeouts {
        read: args.registry_read_timeout,
        metadata: defaults.metadata.max(args.registry_read_timeout * 2),
        ..defaults
    }
}

#[derive(Serialize, Deserialize, PartialEq, Eq)]
struct RunKey {
    image: String,
    version: String,
}

/// The SIGTERM grace period; test builds shorten it on a simulated node with
/// `LCA_TEST_GRACE_SECS`, so the end of the grace can be seen.
fn grace_period(simulated: bool) -> std::time::Duration {
    #[cfg(feature = "test-hooks")]
    if let Some(secs) = std::env::var("LCA_TEST_GRACE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        && simulated
    {
        return std::time::Duration::from_secs(secs);
    }
    let _ = simulated;
    grace::GRACE
}

/// `p` (a path this process sees) as the node's commands see it: podman reads `--authfile`
/// inside the chroot on a real node, so the file must be under the host root there.
pub(crate) fn node_path(exec: &dyn Executor, p: &Path) -> Result<PathBuf> {
    if exec.node().kind == NodeKind::Simulated {
        return Ok(p.to_path_buf());
    }
    let rel = p
        .strip_prefix(exec.node().paths.root())
        .map_err(|_| Error::Invalid(format!("--authfile {} must be under --host-root", p.display())))?;
    Ok(Path::new("/").join(rel))
}

pub async fn run(host_root: &Path, args: &StaterootSetupArgs) -> Result<()> {
    let exec: Box<dyn Executor> = if args.simulated {
        Box::new(LocalExecutor::new(host_root))
    } else {
        Box::new(ChrootExecutor::new(host_root))
    };
    let paths = HostPaths::new(host_root);
    let pull_marker = stateroot_work::marker_dir(&paths).join("pull.done");
    grace::watch(
        pull_marker,
        args.status_file.clone(),
        grace_period(args.simulated),
    )
    .map_err(|e| Error::NodeState(format!("cannot watch for SIGTERM: {e}")))?;
    let setup = Setup {
        markers: Markers::new(stateroot_work::marker_dir(&paths), NodeFs::new(exec.as_ref())),
        stateroot: ostree::stateroot_name(&args.version),
        exec: exec.as_ref(),
        reporter: Reporter::new(args.status_file.clone()),
        step: Cell::new("start"),
        paths,
        args,
    };
    let result = setup.run().await;
    if result.is_err() {
        release::after_failure(setup.exec, &args.image).await;
    }
    release::remove_pull_secret(&setup.fs(), &setup.paths, args.authfile.as_deref());
    match result {
        Ok(()) => {
            setup
                .reporter
                .report(Phase::Succeeded, "complete", "stateroot setup completed");
            Ok(())
        }
        Err(e) => {
            setup
                .reporter
                .report(Phase::Failed, setup.step.get(), &e.to_string());
            Err(e)
        }
    }
}

struct Setup<'a> {
    exec: &'a dyn Executor,
    paths: HostPaths,
    markers: Markers<'a>,
    reporter: Reporter,
    stateroot: String,
    step: Cell<&'static str>,
    args: &'a StaterootSetupArgs,
}

impl Setup<'_> {
    /// The node's files, through this run's executor.
    fn fs(&self) -> NodeFs<'_> {
        NodeFs::new(self.exec)
    }

    /// Whether `name` must run; reports it as the current step.
    fn begin(&self, name: &'static str) -> bool {
        self.step.set(name);
        if self.markers.is_done(name) {
            tracing::info!(step = name, "already done");
            return false;
        }
        tracing::info!(step = name, "running");
        self.reporter.report(Phase::Running, name, "");
        true
    }

    fn finish(&self, name: &str) -> Result<()> {
        Error::failpoint(
            self.paths.root(),
            self.args.simulated,
            failpoint::names::STATEROOT_SETUP,
            name,
        )?;
        self.markers
            .mark(name)
            .map_err(Error::host("writing a step marker"))
    }

    /// Discard markers that do not describe this run's seed and stateroot.
    fn check_markers(&self) -> Result<()> {
        let key_path = self.markers.dir().join("run.json");
        let key = RunKey {
            image: self.args.image.clone(),
            version: self.args.version.clone(),
        };
        // Unreadable or garbled reads as no key: the run starts from scratch.
        let previous: Option<RunKey> =
            (self.fs().read_optional(&key_path).ok().flatten()).and_then(|b| serde_json::from_slice(&b).ok());
        let stateroot_gone = !self.fs().exists(&self.paths.stateroot(&self.stateroot))?;
        if previous.as_ref() != Some(&key) || (self.markers.is_done("os-init") && stateroot_gone) {
            tracing::info!("starting from scratch (no markers of this seed and stateroot)");
            self.markers
                .reset()
                .map_err(Error::host("removing old markers"))?;
            stateroot_work::remove_work_dir(&self.paths)?;
        }
        let key = serde_json::to_vec(&key).map_err(|e| Error::Invalid(e.to_string()))?;
        Ok(self.markers.write("run.json", &key)?)
    }

    async fn run(&self) -> Result<()> {
        let rollback = files::autorollback_config(self.args.autorollback_config_json.as_deref())?;
        self.check_markers()?;
        if self.markers.is_done("complete") {
            tracing::info!(stateroot = %self.stateroot, "stateroot setup already completed");
            return Ok(());
        }
        self.step.set("check-node");
        ostree::remount_sysroot_rw(self.exec).await?;
        let booted = deploy::booted(self.exec, &self.stateroot).await?;

        let pull = self.begin("pull");
        let work = stateroot_work::work_dir(&self.paths);
        let seed = if self.args.simulated {
            let target = work.join("seed");
            let timeouts = registry_timeouts(self.args);
            seed::unpack(
                &self.fs(),
                &self.args.image,
                self.args.authfile.as_ref(),
                &target,
                timeouts,
            )
            .await?
        } else {
            let authfile = self
                .args
                .authfile
                .as_deref()
                .map(|p| node_path(self.exec, p))
                .transpose()?;
            seed::mount(self.exec, &self.args.image, authfile, self.args.pull_timeout).await?
        };
        if pull {
            self.finish("pull")?;
        }
        let result = self.with_seed(&seed, &booted, &rollback).await;
        if result.is_ok() {
            self.begin("cleanup");
            seed::release(self.exec, &seed).await;
            stateroot_work::remove_work_dir(&self.paths)?;
            self.finish("cleanup")?;
            (self.markers.mark("complete")).map_err(Error::host("writing a step marker"))?;
        }
        result
    }

    async fn with_seed(
        &self,
        seed: &Seed,
        booted: &lca_hostops::sim::BootedRef,
        rollback: &lca_api::files::AutoRollbackConfig,
    ) -> Result<()> {
        self.step.set("check-version");
        let fs = self.fs();
        seed::check_version(&fs, seed, &self.args.version)?;
        let sd = seed::read_deployment(&fs, seed)?;
        let work = stateroot_work::work_dir(&self.paths);
        let repo_cmd = stateroot_work::work_dir(&self.exec.node().cmd_paths).join("ostree");

        if self.begin("extract-ostree") {
            let (src, dst) = (seed.file(seed_files::OSTREE), work.join("ostree"));
            tokio::task::spawn_blocking(move || {
                lca_hostops::archive::extract_file_atomically(&src, &dst, &Default::default())
            })
            .await
            .map_err(|e| Error::Invalid(format!("extraction task failed: {e}")))??;
            self.finish("extract-ostree")?;
        }
        if self.begin("pull-local") {
            deploy::pull_local(self.exec, &repo_cmd, &sd.refspec).await?;
            self.finish("pull-local")?;
        }
        if self.begin("os-init") {
            deploy::os_init(self.exec, &self.stateroot).await?;
            self.finish("os-init")?;
        }
        if self.begin("deploy") {
            let kargs = seed::read_kargs(&fs, seed)?;
            deploy::deploy(self.exec, &self.stateroot, &sd.refspec, kargs, &self.args.version).await?;
            self.finish("deploy")?;
        }
        if self.begin("restore-default") {
            deploy::restore_default(self.exec, booted).await?;
            self.finish("restore-default")?;
        }
        if self.begin("cleanup-base") {
            deploy::cleanup_base(self.exec).await?;
            self.finish("cleanup-base")?;
        }
        let new: Deployment = deploy::find(self.exec, &self.stateroot, &sd.refspec)
            .await?
            .ok_or_else(|| Error::NodeState(format!("no deployment of the seed in {}", self.stateroot)))?;
        let dep_dir = new.dir(&self.paths);
        if self.begin("origin") {
            let dst = self
                .paths
                .deployment_origin(&new.stateroot, &new.checksum, new.serial);
            files::origin(&fs, seed, &sd.deployment, &dst)?;
            self.finish("origin")?;
        }
        if self.begin("var") {
            files::extract(&fs, seed, seed_files::VAR, self.paths.stateroot(&self.stateroot)).await?;
            self.finish("var")?;
        }
        if self.begin("etc") {
            files::extract(&fs, seed, seed_files::ETC, dep_dir.clone()).await?;
            self.finish("etc")?;
        }
        if self.begin("etc-deletions") {
            let n = files::apply_deletions(&fs, seed, &dep_dir)?;
            tracing::info!(removed = n, "etc.deletions applied");
            self.finish("etc-deletions")?;
        }
        if self.begin("hand-off") {
            files::hand_off(&fs, seed, &self.paths.var_tmp())?;
            self.finish("hand-off")?;
        }
        if self.begin("autorollback-config") {
            files::write_autorollback(&fs, &self.paths.stateroot_var(&self.stateroot), rollback)?;
            self.finish("autorollback-config")?;
        }
        Ok(())
    }
}

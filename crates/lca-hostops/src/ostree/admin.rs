//! Mutating ostree commands of the stateroot setup and rollback (spec §5.4, §7.1, §9.2):
//! remount, `pull-local`, `admin os-init`, `admin deploy`, `admin undeploy`, set-default, and
//! the post-deploy cleanup. Arguments are argv items: the kernel arguments that upstream
//! JSON-quotes for `bash -c` are passed verbatim here.

use std::path::Path;
use std::time::Duration;

use super::{Deployment, admin_cmd, libostree, list_deployments};
use crate::command::Cmd;
use crate::error::{Error, Result};
use crate::executor::{Executor, NodeKind, ensure_mutation_allowed};

const DEPLOY_TIMEOUT: Duration = Duration::from_secs(30 * 60);
const PULL_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// Arguments of `ostree admin deploy` for a new stateroot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeployOptions {
    /// `--os`.
    pub stateroot: String,
    /// The ref or commit to deploy (from the seed's `rpm-ostree.json`).
    pub refspec: String,
    /// `--karg-append` values, in order (MachineConfig kernelArguments, fips).
    pub karg_append: Vec<String>,
    /// `--karg` values (`ibu=<version>`).
    pub karg: Vec<String>,
    /// `--not-as-default`: only when set-default exists to switch later (see `supports_set_default`).
    pub not_as_default: bool,
}

/// Names go into argv after options; one starting with `-` would be read as an option.
fn check_name(kind: &str, value: &str) -> Result<()> {
    let bad_char = value.contains(['\0', '\n']) || (kind == "stateroot" && value.contains('/'));
    if value.is_empty() || value.starts_with('-') || bad_char {
        return Err(Error::Invalid(format!("bad {kind} {value:?}")));
    }
    Ok(())
}

/// `mount /sysroot -o remount,rw` on a real node (RHCOS mounts it read-only); nothing on a
/// simulated node, whose sysroot is a plain directory.
pub async fn remount_sysroot_rw(exec: &dyn Executor) -> Result<()> {
    if exec.node().kind == NodeKind::Real {
        exec.run(&Cmd::new("mount").args(["/sysroot", "-o", "remount,rw"]))
            .await?;
    }
    Ok(())
}

/// `ostree pull-local <src_repo> [refs…]` into the sysroot repo. `src_repo` is a path as the
/// commands see it (`exec.node().cmd_paths`).
pub async fn pull_local(exec: &dyn Executor, src_repo: &Path, refs: &[&str]) -> Result<()> {
    for r in refs {
        check_name("ref", r)?;
    }
    let cmd = Cmd::new("ostree")
        .arg(format!(
            "--repo={}",
            exec.node().cmd_paths.ostree_repo().display()
        ))
        .arg("pull-local")
        .arg(src_repo)
        .args(refs)
        .timeout(PULL_TIMEOUT);
    exec.run(&cmd).await.map(drop)
}

/// `ostree admin os-init <stateroot>` (idempotent in ostree itself).
pub async fn os_init(exec: &dyn Executor, stateroot: &str) -> Result<()> {
    check_name("stateroot", stateroot)?;
    exec.run(&admin_cmd(exec, "os-init").arg(stateroot))
        .await
        .map(drop)
}

/// `ostree admin deploy --os <s> --no-prune --karg-append … --karg … <ref> [--not-as-default]`.
/// Returns the new deployment (the one that was not there before). Call `cleanup_base`
/// afterwards, as upstream does, because of `--no-prune`.
pub async fn deploy(exec: &dyn Executor, opts: &DeployOptions) -> Result<Deployment> {
    check_name("stateroot", &opts.stateroot)?;
    check_name("refspec", &opts.refspec)?;
    // The stateroot's deploy dir names (`<checksum>.<serial>`) tell old from new without
    // another `ostree admin status` run (measurable on small deploys, see hack/bench-hostops).
    let before = deployment_dir_names(exec, &opts.stateroot);
    let mut cmd = admin_cmd(exec, "deploy")
        .arg("--os")
        .arg(&opts.stateroot)
        .arg("--no-prune");
    for k in &opts.karg_append {
        cmd = cmd.arg("--karg-append").arg(k);
    }
    for k in &opts.karg {
        cmd = cmd.arg("--karg").arg(k);
    }
    cmd = cmd.arg(&opts.refspec);
    if opts.not_as_default {
        cmd = cmd.arg("--not-as-default");
    }
    exec.run(&cmd.timeout(DEPLOY_TIMEOUT)).await?;
    let after = list_deployments(exec).await?;
    after
        .deployments
        .into_iter()
        .find(|d| d.stateroot == opts.stateroot && !before.contains(&format!("{}.{}", d.checksum, d.serial)))
        .ok_or_else(|| Error::NodeState(format!("deploy into {} left no new deployment", opts.stateroot)))
}

fn deployment_dir_names(exec: &dyn Executor, stateroot: &str) -> Vec<String> {
    std::fs::read_dir(exec.node().paths.stateroot_deployments(stateroot))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// `ostree admin undeploy <index>`.
pub async fn undeploy(exec: &dyn Executor, index: usize) -> Result<()> {
    exec.run(&admin_cmd(exec, "undeploy").arg(index.to_string()))
        .await
        .map(drop)
}

/// Whether the node's ostree has `admin set-default` (upstream's probe: `ostree admin --help`
/// mentions it; ostree ≥ 2023.6 does, Debian 12's 2022.7 does not).
pub async fn supports_set_default(exec: &dyn Executor) -> Result<bool> {
    let out = exec
        .run(&Cmd::new("ostree").args(["admin", "--help"]).read_only())
        .await?;
    Ok(out.stdout.contains("set-default") || out.stderr.contains("set-default"))
}

/// How `set_default` changed the default deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetDefaultPath {
    /// The deployment was already index 0; nothing ran.
    AlreadyDefault,
    /// `ostree admin set-default <index>`.
    Cli,
    /// libostree `write_deployments` with the list reordered.
    Libostree,
}

/// Make deployment `index` the default for the next boot: the CLI when it has `set-default`,
/// otherwise libostree.
pub async fn set_default(exec: &dyn Executor, index: usize) -> Result<SetDefaultPath> {
    if index == 0 {
        return Ok(SetDefaultPath::AlreadyDefault);
    }
    if supports_set_default(exec).await? {
        set_default_cli(exec, index).await?;
        Ok(SetDefaultPath::Cli)
    } else {
        set_default_libostree(exec, index).await?;
        Ok(SetDefaultPath::Libostree)
    }
}

/// `ostree admin set-default <index>`.
pub async fn set_default_cli(exec: &dyn Executor, index: usize) -> Result<()> {
    exec.run(&admin_cmd(exec, "set-default").arg(index.to_string()))
        .await
        .map(drop)
}

/// Reorder the deployments in-process through libostree on the sysroot as this process sees
/// it (`exec.node().paths`). Runs on the blocking pool: libostree calls block and its GObjects
/// are not `Send`.
pub async fn set_default_libostree(exec: &dyn Executor, index: usize) -> Result<()> {
    ensure_mutation_allowed(exec, &format!("libostree set-default {index}"))?;
    let sysroot = exec.node().paths.sysroot();
    tokio::task::spawn_blocking(move || libostree::set_default(&sysroot, index))
        .await
        .map_err(|e| Error::NodeState(format!("libostree set-default task failed: {e}")))?
}

/// Post-deploy cleanup: `rpm-ostree cleanup -b` on a real node; `ostree admin cleanup` on a
/// simulated one (no rpm-ostree there; it prunes the same leftovers of `--no-prune`).
pub async fn cleanup_base(exec: &dyn Executor) -> Result<()> {
    let cmd = match exec.node().kind {
        NodeKind::Real => Cmd::new("rpm-ostree").args(["cleanup", "-b"]),
        NodeKind::Simulated => admin_cmd(exec, "cleanup"),
    };
    exec.run(&cmd.timeout(DEPLOY_TIMEOUT)).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_look_like_options_are_refused() {
        assert!(check_name("stateroot", "-rf").is_err());
        assert!(check_name("stateroot", "a/b").is_err());
        assert!(check_name("stateroot", "").is_err());
        assert!(check_name("stateroot", "rhcos_4.17.0").is_ok());
        assert!(check_name("refspec", "rhcos/4.17").is_ok());
    }
}

//! ostree on the node: deployment listing and the booted deployment (this file), stateroot
//! creation and deployment commands (`admin`), set-default through libostree where the CLI
//! lacks it (`libostree`), and stateroot removal and cleanup (`stateroot`).
//!
//! Which deployment is booted comes from `rpm-ostree status --json` on a real node, from
//! `ostree admin status` when rpm-ostree is missing, and from `sim::read_state` on a simulated
//! node (see `crate::sim` for the state file). On a simulated node every `ostree admin` command
//! gets `--sysroot=<root>/sysroot` and every repo command `--repo=<root>/sysroot/ostree/repo`.

mod admin;
pub mod libostree;
mod stateroot;
mod status;

pub use admin::{
    DeployOptions, SetDefaultPath, cleanup_base, deploy, os_init, pull_local, remount_sysroot_rw,
    set_default, set_default_cli, set_default_libostree, supports_set_default, undeploy,
};
pub use stateroot::{cleanup_unbooted_stateroots, remove_stateroot};
pub use status::{Deployment, Status, parse_admin_status, parse_rpm_ostree_status};

use crate::command::Cmd;
use crate::error::{Error, Result};
use crate::executor::{Executor, NodeKind};
use crate::sim;

/// The stateroot name of an OCP version: `rhcos_` + version with `-` replaced by `_`
/// (`4.17.0-rc.1` → `rhcos_4.17.0_rc.1`).
pub fn stateroot_name(version: &str) -> String {
    format!("rhcos_{}", version.replace('-', "_"))
}

/// `ostree admin <sub>`, with `--sysroot` on a simulated node. On a real node the default
/// sysroot (`/`) is kept: that is how ostree recognises the booted deployment.
pub fn admin_cmd(exec: &dyn Executor, sub: &str) -> Cmd {
    let cmd = Cmd::new("ostree").arg("admin").arg(sub);
    match exec.node().kind {
        NodeKind::Simulated => cmd.arg(format!("--sysroot={}", exec.node().cmd_paths.sysroot().display())),
        NodeKind::Real => cmd,
    }
}

/// `ostree admin status` parsed, without any booted overlay (on a simulated node nothing is
/// marked booted here; `status` adds that).
pub async fn list_deployments(exec: &dyn Executor) -> Result<Status> {
    let out = exec.run(&admin_cmd(exec, "status").read_only()).await?;
    parse_admin_status(&out.stdout)
}

/// All deployments with the booted one marked (see the module header for the sources).
pub async fn status(exec: &dyn Executor) -> Result<Status> {
    match exec.node().kind {
        NodeKind::Real => {
            let cmd = Cmd::new("rpm-ostree").args(["status", "--json"]).read_only();
            match exec.run(&cmd).await {
                Ok(out) => parse_rpm_ostree_status(&out.stdout),
                Err(Error::ToolNotFound { .. }) => {
                    tracing::debug!("rpm-ostree not on the node; falling back to `ostree admin status`");
                    list_deployments(exec).await
                }
                Err(e) => Err(e),
            }
        }
        NodeKind::Simulated => {
            let mut status = list_deployments(exec).await?;
            if let Some(booted) = sim::read_state(&exec.node().paths)?.booted {
                for d in &mut status.deployments {
                    d.booted = booted.matches(d);
                }
            }
            Ok(status)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stateroot_names_follow_upstream() {
        assert_eq!(stateroot_name("4.17.0"), "rhcos_4.17.0");
        assert_eq!(stateroot_name("4.17.0-rc.1"), "rhcos_4.17.0_rc.1");
    }
}

//! systemd on the node: the probes at operator start (spec §9.4: the container storage mount
//! target, i.e. the `What=` of `var-lib-containers.mount` when that unit is active, else ""),
//! and removing a unit for good (§6.5 step 7). On a simulated node a unit is enabled by its
//! `multi-user.target.wants` link, which is what the reboot harness starts units from.

use crate::command::Cmd;
use crate::error::{Error, Result};
use crate::executor::{Executor, NodeKind};

/// The mount unit of a separate `/var/lib/containers` partition.
pub const CONTAINER_STORAGE_UNIT: &str = "var-lib-containers.mount";

/// Value of the first `What=` in a unit file as `systemctl cat` prints it (None if absent).
pub fn parse_what(unit_text: &str) -> Option<String> {
    unit_text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#') && !l.starts_with(';'))
        .find_map(|l| l.strip_prefix("What=").map(|v| v.trim().to_string()))
}

/// `systemctl is-active <unit>` printed `active`. Any other answer (inactive, failed, no
/// systemd at all) is "not active": is-active's exit code is an answer, not an error.
pub async fn is_active(exec: &dyn Executor, unit: &str) -> Result<bool> {
    let cmd = Cmd::new("systemctl")
        .args(["is-active", unit])
        .read_only()
        .allow_exit_codes(&[1, 3, 4]);
    Ok(exec.run(&cmd).await?.stdout.trim() == "active")
}

/// The container storage mount target: `What=` of `var-lib-containers.mount` if it is active,
/// `""` otherwise (Prep then fails with `container storage mountpoint target not found`).
pub async fn container_storage_mount_target(exec: &dyn Executor) -> Result<String> {
    if !is_active(exec, CONTAINER_STORAGE_UNIT).await? {
        return Ok(String::new());
    }
    let out = exec
        .run(
            &Cmd::new("systemctl")
                .args(["cat", CONTAINER_STORAGE_UNIT])
                .read_only(),
        )
        .await?;
    parse_what(&out.stdout)
        .ok_or_else(|| Error::parse("systemctl cat var-lib-containers.mount", "no What= in the unit"))
}

/// Stop, disable and delete the unit `unit` (a file of `/etc/systemd/system`), then reload
/// systemd. Each part is tried; the errors are returned together.
pub async fn remove_unit(exec: &dyn Executor, unit: &str) -> Vec<String> {
    let mut errors = Vec::new();
    let fs = crate::NodeFs::new(exec);
    let paths = &exec.node().paths;
    if exec.node().kind == NodeKind::Real {
        for verb in ["stop", "disable"] {
            let cmd = Cmd::new("systemctl").args([verb, unit]);
            if let Err(e) = exec.run(&cmd).await {
                errors.push(e.to_string());
            }
        }
    } else {
        let link = paths
            .host("etc/systemd/system/multi-user.target.wants")
            .join(unit);
        if let Err(e) = fs.remove_file(&link) {
            errors.push(e.to_string());
        }
    }
    if let Err(e) = fs.remove_file(&paths.host("etc/systemd/system").join(unit)) {
        errors.push(e.to_string());
    }
    if exec.node().kind == NodeKind::Real
        && let Err(e) = exec.run(&Cmd::new("systemctl").arg("daemon-reload")).await
    {
        errors.push(e.to_string());
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::executor::LocalExecutor;

    #[test]
    fn what_from_fixture() {
        let text = std::fs::read_to_string(format!(
            "{}/../../tests/fixtures/systemctl-cat-var-lib-containers.mount.txt",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        assert_eq!(
            parse_what(&text).as_deref(),
            Some("/dev/disk/by-partlabel/varlibcontainers")
        );
        assert_eq!(parse_what("[Mount]\n#What=/dev/x\nWhere=/var\n"), None);
    }

    #[tokio::test]
    async fn without_systemd_the_target_is_empty() {
        // This machine has systemctl but no systemd as PID 1: is-active fails with exit 1.
        let exec = LocalExecutor::new("/");
        assert_eq!(container_storage_mount_target(&exec).await.unwrap(), "");
    }
}

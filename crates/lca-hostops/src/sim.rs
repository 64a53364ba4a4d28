//! State of a *simulated* node: the only place where it differs from a real one.
//!
//! A simulated node is a directory (the "host root") with an ostree sysroot in `sysroot/`,
//! driven by `LocalExecutor`. Two facts a real node keeps in the kernel and bootloader live in
//! files instead, under `<root>/lca-sim/` (`HostPaths::sim_dir`):
//!
//! - `node.json`: `{"booted": {"stateroot": "rhcos", "checksum": "<sha256>", "serial": 0}}`,
//!   the deployment the simulated node "booted". Absent file or `booted: null` = nothing
//!   booted (a freshly initialised sysroot).
//! - `reboot-request.json`: `{"rationale": "upgrade", "message": "Image Based Upgrade"}`,
//!   written by `reboot::request_reboot` instead of rebooting. The test harness reads it, kills
//!   the operator, calls `complete_reboot` (the default deployment, index 0, becomes the
//!   booted one, as after a real reboot) and restarts the operator.
//!
//! Files are written atomically (temp file + rename) so a harness killing the operator mid-write
//! never sees half a file.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::executor::{Executor, NodeKind};
use crate::ostree::{self, Deployment};
use crate::paths::HostPaths;

const NODE_STATE: &str = "node.json";
const REBOOT_REQUEST: &str = "reboot-request.json";

/// Identifies one deployment across re-indexing (indices shift on every deploy/undeploy).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BootedRef {
    /// Stateroot.
    pub stateroot: String,
    /// Commit checksum.
    pub checksum: String,
    /// Deploy serial.
    pub serial: u32,
}

impl BootedRef {
    /// Whether `d` is the deployment this refers to.
    pub fn matches(&self, d: &Deployment) -> bool {
        d.stateroot == self.stateroot && d.checksum == self.checksum && d.serial == self.serial
    }
}

impl From<&Deployment> for BootedRef {
    fn from(d: &Deployment) -> Self {
        Self {
            stateroot: d.stateroot.clone(),
            checksum: d.checksum.clone(),
            serial: d.serial,
        }
    }
}

/// Contents of `node.json`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimState {
    /// The booted deployment.
    #[serde(default)]
    pub booted: Option<BootedRef>,
    /// Changes at every (simulated) boot, like the kernel's `boot_id`.
    #[serde(default)]
    pub boot_id: String,
}

/// A reboot the simulated node was asked for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RebootRequest {
    /// `upgrade`, `rollback`, … (the `--description` on a real node).
    pub rationale: String,
    /// The wall message (`Image Based Upgrade`).
    pub message: String,
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::NodeState(format!("corrupt simulated-node file {}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::Io {
            context: "reading",
            path: path.to_path_buf(),
            source: e,
        }),
    }
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::Invalid(format!("{} has no parent", path.display())))?;
    std::fs::create_dir_all(dir).map_err(Error::io("creating", dir))?;
    let tmp = path.with_extension("json.tmp");
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| Error::Invalid(e.to_string()))?;
    std::fs::write(&tmp, bytes).map_err(Error::io("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(Error::io("renaming into place", path))
}

/// Read `node.json` (default when absent).
pub fn read_state(paths: &HostPaths) -> Result<SimState> {
    Ok(read_json(&paths.sim_dir().join(NODE_STATE))?.unwrap_or_default())
}

/// Mark `booted` as the booted deployment of the simulated node.
pub fn set_booted(paths: &HostPaths, booted: BootedRef) -> Result<()> {
    write_json(
        &paths.sim_dir().join(NODE_STATE),
        &SimState {
            booted: Some(booted),
            boot_id: new_boot_id(),
        },
    )
}

/// A fresh boot id (the time of the boot, in nanoseconds).
pub fn new_boot_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("sim-{nanos}")
}

/// The id of the node's current boot: the kernel's `boot_id` on a real node (the pod shares
/// the host's kernel), `node.json`'s on a simulated one.
pub fn boot_id(exec: &dyn Executor) -> Result<String> {
    match exec.node().kind {
        NodeKind::Real => {
            let path = Path::new("/proc/sys/kernel/random/boot_id");
            std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .map_err(Error::io("reading", path))
        }
        NodeKind::Simulated => Ok(read_state(&exec.node().paths)?.boot_id),
    }
}

/// Record a reboot request (what `reboot::request_reboot` does on a simulated node).
pub fn write_reboot_request(paths: &HostPaths, request: &RebootRequest) -> Result<()> {
    write_json(&paths.sim_dir().join(REBOOT_REQUEST), request)
}

/// The pending reboot request, if any.
pub fn read_reboot_request(paths: &HostPaths) -> Result<Option<RebootRequest>> {
    read_json(&paths.sim_dir().join(REBOOT_REQUEST))
}

/// Forget the pending reboot request (idempotent).
pub fn clear_reboot_request(paths: &HostPaths) -> Result<()> {
    let path = paths.sim_dir().join(REBOOT_REQUEST);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::Io {
            context: "removing",
            path,
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Finish a simulated reboot: the default deployment (index 0) becomes the booted one and the
/// reboot request is cleared. Returns the newly booted deployment. The harness calls this
/// while the operator is stopped.
pub async fn complete_reboot(exec: &dyn Executor) -> Result<Deployment> {
    if exec.node().kind != NodeKind::Simulated {
        return Err(Error::Invalid(
            "complete_reboot is only for a simulated node".into(),
        ));
    }
    let status = ostree::list_deployments(exec).await?;
    let default = status
        .deployments
        .into_iter()
        .next()
        .ok_or_else(|| Error::NodeState("simulated reboot: the sysroot has no deployments".into()))?;
    set_booted(&exec.node().paths, BootedRef::from(&default))?;
    clear_reboot_request(&exec.node().paths)?;
    Ok(Deployment {
        booted: true,
        ..default
    })
}

/// What commands on a simulated node need in their environment: its own peer tools (an
/// `ostree` with `set-default`, a `systemctl` that knows the container storage mount) from
/// `lca-sim/bin` first in PATH, and its private podman storage config. The operator's
/// long-running tasks and `lca-cli`'s host subcommands get the same.
pub fn simulated_env(paths: &HostPaths) -> Vec<(String, std::ffi::OsString)> {
    let mut env = Vec::new();
    if let Some(path) = sim_tool_path(paths) {
        env.push(("PATH".to_string(), path));
    }
    let conf = paths.sim_dir().join("containers-storage.conf");
    if conf.exists() {
        env.push(("CONTAINERS_STORAGE_CONF".to_string(), conf.into_os_string()));
    }
    env
}

/// PATH with a simulated node's `lca-sim/bin` first, if that directory exists.
pub fn sim_tool_path(paths: &HostPaths) -> Option<std::ffi::OsString> {
    let bin = paths.sim_dir().join("bin");
    if !bin.is_dir() {
        return None;
    }
    let mut path = std::ffi::OsString::from(bin);
    if let Some(inherited) = std::env::var_os("PATH") {
        path.push(":");
        path.push(inherited);
    }
    Some(path)
}

/// The executor of the simulated node at `paths`: this machine's tools with
/// [`simulated_env`].
pub fn executor(paths: &HostPaths) -> crate::executor::LocalExecutor {
    simulated_env(paths).into_iter().fold(
        crate::executor::LocalExecutor::new(paths.root()),
        |exec, (k, v)| exec.with_env(k, v),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_and_reboot_request_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let paths = HostPaths::new(dir.path());
        assert_eq!(read_state(&paths).unwrap(), SimState::default());
        let b = BootedRef {
            stateroot: "rhcos".into(),
            checksum: "ab".repeat(32),
            serial: 1,
        };
        set_booted(&paths, b.clone()).unwrap();
        assert_eq!(read_state(&paths).unwrap().booted, Some(b));
        assert_eq!(read_reboot_request(&paths).unwrap(), None);
        let req = RebootRequest {
            rationale: "upgrade".into(),
            message: "Image Based Upgrade".into(),
        };
        write_reboot_request(&paths, &req).unwrap();
        assert_eq!(read_reboot_request(&paths).unwrap(), Some(req));
        clear_reboot_request(&paths).unwrap();
        clear_reboot_request(&paths).unwrap();
        assert_eq!(read_reboot_request(&paths).unwrap(), None);
        std::fs::write(paths.sim_dir().join(NODE_STATE), b"{").unwrap();
        assert!(
            read_state(&paths)
                .unwrap_err()
                .to_string()
                .starts_with("corrupt simulated-node file")
        );
    }
}

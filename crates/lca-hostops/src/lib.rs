//! The node boundary of lca-rs: every command run on the node and every node path.
//! Never depends on the kube client, so host-side binaries can use it while the API is down.
//!
//! - `executor` / `command`: how commands reach the node (chroot, nsenter, local, dry-run) and
//!   the one subprocess wrapper.
//! - `paths`: where things are on the node (`HostPaths`).
//! - `ostree`: deployments, stateroots, set-default, cleanup.
//! - `podman` / `crictl`: container images; `image_cleanup`: the disk-pressure loop.
//! - `disk`, `systemd`, `reboot`: storage usage, the container-storage mount unit, reboots.
//! - `nodefs`: every file read and write on the node (root-confined, dry-run honoured).
//! - `sim`: the state files of a simulated node; `failpoint`: the fault campaign's failpoints.

pub mod archive;
pub mod command;
pub mod crictl;
pub mod disk;
pub mod error;
pub mod executor;
pub mod failpoint;
pub mod fsutil;
pub mod image_cleanup;
pub mod local_task;
pub mod nodefs;
pub mod ostree;
pub mod paths;
pub mod podman;
pub mod reboot;
pub mod recert;
pub mod rollback;
pub mod sim;
pub mod stateroot_work;
pub mod systemd;

pub use command::{Cmd, Output};
pub use error::{Category, Error, Result};
pub use executor::{
    ChrootExecutor, DryRunExecutor, Executor, LocalExecutor, Node, NodeKind, NsenterExecutor,
};
pub use nodefs::NodeFs;
pub use paths::HostPaths;

/// A captured command output from `tests/fixtures/` (unit tests of the parsers).
#[cfg(test)]
pub(crate) fn test_fixture(name: &str) -> String {
    let path = format!("{}/../../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

//! Shared state of the controllers: the API client, the node's paths, the process-wide lock
//! that serializes the IBU and SeedGenerator reconcilers (as the reference does), the event
//! recorder and the stage work implementation.

use std::sync::Arc;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use lca_hostops::{ChrootExecutor, Executor, HostPaths, LocalExecutor};

use crate::ibu::work::StageWork;

/// Name under which events and status writes are reported.
pub const CONTROLLER_NAME: &str = "lca-rs";

/// Everything a reconcile needs.
pub struct Context {
    pub client: Client,
    pub paths: HostPaths,
    pub namespace: String,
    /// One reconcile at a time across both controllers.
    pub lock: tokio::sync::Mutex<()>,
    pub recorder: Recorder,
    pub work: Arc<dyn StageWork>,
    /// Runs commands on the node; its `node().kind` says whether the node is simulated.
    pub exec: Arc<dyn Executor>,
}

/// The executor for the node whose `/` is `paths`: a real node (RHCOS marks an ostree boot
/// with `/run/ostree-booted`) is entered with chroot; anything else is a simulated node
/// directory, driven with this machine's tools. A simulated node may carry its own peer
/// tools (an `ostree` with `set-default`, a `systemctl` that knows the container storage
/// mount) in `var/lib/lca-sim/bin`, which then come first in PATH.
pub fn node_executor(paths: &HostPaths) -> Arc<dyn Executor> {
    if paths.host("run/ostree-booted").exists() {
        return Arc::new(ChrootExecutor::new(paths.root()));
    }
    let exec = LocalExecutor::new(paths.root());
    match sim_tool_path(paths) {
        Some(path) => Arc::new(exec.with_env("PATH", path)),
        None => Arc::new(exec),
    }
}

/// PATH with a simulated node's `var/lib/lca-sim/bin` first, if that directory exists.
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

impl Context {
    pub fn new(client: Client, paths: HostPaths, namespace: String, work: Arc<dyn StageWork>) -> Arc<Self> {
        let reporter = Reporter {
            controller: CONTROLLER_NAME.into(),
            instance: std::env::var("MY_POD_NAME")
                .ok()
                .or_else(|| Some(CONTROLLER_NAME.into())),
        };
        let recorder = Recorder::new(client.clone(), reporter);
        let exec = node_executor(&paths);
        Arc::new(Self {
            client,
            paths,
            namespace,
            lock: tokio::sync::Mutex::new(()),
            recorder,
            work,
            exec,
        })
    }
}

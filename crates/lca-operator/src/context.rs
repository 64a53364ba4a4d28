//! Shared state of the controllers: the API client, the node's paths, the process-wide lock
//! that serializes the IBU and SeedGenerator reconcilers (as the reference does), the event
//! recorder and the stage work implementation.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use lca_hostops::{ChrootExecutor, Executor, HostPaths, LocalExecutor, NodeKind, NsenterExecutor};

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

/// The executor for the node whose `/` is `paths`: a real node is entered with chroot; a
/// simulated node directory is driven with this machine's tools, plus the environment of
/// [`simulated_env`].
pub fn node_executor(paths: &HostPaths, simulated: bool) -> Arc<dyn Executor> {
    if !simulated {
        return Arc::new(ChrootExecutor::new(paths.root()));
    }
    let exec = simulated_env(paths)
        .into_iter()
        .fold(LocalExecutor::new(paths.root()), |exec, (k, v)| {
            exec.with_env(k, v)
        });
    Arc::new(exec)
}

/// See [`Context::host_namespace_executor`].
pub fn host_namespace_executor(exec: &Arc<dyn Executor>) -> Arc<dyn Executor> {
    match exec.node().kind {
        NodeKind::Real => Arc::new(NsenterExecutor::new(exec.node().paths.root())),
        NodeKind::Simulated => exec.clone(),
    }
}

/// What commands on a simulated node need in their environment: its own peer tools (an
/// `ostree` with `set-default`, a `systemctl` that knows the container storage mount) from
/// `lca-sim/bin` first in PATH, and its private podman storage config. The operator's
/// long-running tasks get the same.
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

impl Context {
    pub fn new(
        client: Client,
        paths: HostPaths,
        namespace: String,
        work: Arc<dyn StageWork>,
        exec: Arc<dyn Executor>,
    ) -> Arc<Self> {
        let reporter = Reporter {
            controller: CONTROLLER_NAME.into(),
            instance: std::env::var("MY_POD_NAME")
                .ok()
                .or_else(|| Some(CONTROLLER_NAME.into())),
        };
        let recorder = Recorder::new(client.clone(), reporter);
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

    /// The executor for commands that must run in the host's namespaces (podman,
    /// systemd-run, systemctl, ostree of the SeedGenerator): on a real node nsenter into
    /// PID 1 (as upstream's operator does), on a simulated node the node's own executor.
    pub fn host_namespace_executor(&self) -> Arc<dyn Executor> {
        host_namespace_executor(&self.exec)
    }

    /// Publish an event about `reference`; a failure to publish is only logged.
    pub async fn publish(&self, reference: &ObjectReference, type_: EventType, reason: &str, note: String) {
        let event = Event {
            type_,
            reason: reason.into(),
            note: Some(note),
            action: "Reconcile".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, reference).await {
            tracing::warn!("cannot publish event: {e}");
        }
    }
}

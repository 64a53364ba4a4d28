//! Shared state of the controllers: the API client, the node's paths, the process-wide lock
//! that serializes the IBU and SeedGenerator reconcilers (as the reference does), the event
//! recorder and the stage work implementation.

use std::sync::Arc;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use lca_hostops::{ChrootExecutor, Executor, HostPaths, NodeKind, NsenterExecutor};

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
    Arc::new(lca_hostops::sim::executor(paths))
}

/// See [`Context::host_namespace_executor`].
pub fn host_namespace_executor(exec: &Arc<dyn Executor>) -> Arc<dyn Executor> {
    match exec.node().kind {
        NodeKind::Real => Arc::new(NsenterExecutor::new(exec.node().paths.root())),
        NodeKind::Simulated => exec.clone(),
    }
}

/// The recorder folds events with the same type, reason and action into one series whose
/// note is the latest, so "Prep accepted" would vanish behind a later "Idle accepted" in
/// `kubectl describe`. An action per note keeps each message (a repeat of the same message
/// still counts up, as client-go's recorder does); 8 bytes of its hash fit the 128-character
/// limit of `action`.
fn event_action(note: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    note.hash(&mut h);
    format!("Reconcile-{:016x}", h.finish())
}

pub use lca_hostops::sim::{sim_tool_path, simulated_env};

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
            action: event_action(&note),
            note: Some(note),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&event, reference).await {
            tracing::warn!("cannot publish event: {e}");
        }
    }
}

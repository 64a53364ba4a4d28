//! Shared state of the controllers: the API client, the node's paths, the process-wide lock
//! that serializes the IBU and SeedGenerator reconcilers (as the reference does), the event
//! recorder and the stage work implementation.

use std::sync::Arc;

use kube::Client;
use kube::runtime::events::{Recorder, Reporter};
use lca_hostops::HostPaths;

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
        Arc::new(Self {
            client,
            paths,
            namespace,
            lock: tokio::sync::Mutex::new(()),
            recorder,
            work,
        })
    }
}

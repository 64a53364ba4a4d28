//! **Velero test peer**: a stand-in for Velero and the OADP operator, which cannot run
//! against the loopback control plane. It does to the API objects in `openshift-adp` what
//! they do — reconciles DataProtectionApplications and keeps the `default`
//! BackupStorageLocation Available, processes Backups, Restores and DeleteBackupRequests, and
//! syncs backups from object storage into the cluster — with a local directory as the
//! object storage (the S3 bucket).
//!
//! The store lives outside the cluster: the original cluster and the one booted after an
//! upgrade share it, as they share the bucket. Everything the peer needs across API server
//! restarts is in the store or in the API objects, so a peer keeps working when the API
//! server under it is restarted (a simulated reboot), and another peer started on the same
//! store sees the same backups.
//!
//! Layout of the store: `backups/<name>/velero-backup.json` (the Backup object, written last:
//! its presence means the backup is complete) and `backups/<name>/resources.json` (the backed
//! up objects, a JSON array); failure injection and holds are files, so that other processes
//! can use them too: `fail/backups/<name>`, `fail/restores/<name>`, `hold/<name>`.

mod restore;
mod select;
mod store;
mod work;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use kube::Client;

use crate::Result;

/// The OADP namespace, where the peer reads and writes everything.
pub const NAMESPACE: &str = "openshift-adp";
/// Name of the BackupStorageLocation the peer creates for a DPA.
pub const LOCATION: &str = "default";
/// A test peer: a short poll keeps tests fast and costs nothing on a loopback server.
const POLL: Duration = Duration::from_millis(200);

/// What the peer did with one object, for tests and benchmarks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerEvent {
    /// `Backup`, `Restore`, `DeleteBackupRequest` or `Sync` (a backup created from the store).
    pub kind: &'static str,
    /// The object's name (for `Sync`, the backup's).
    pub name: String,
    /// When the peer first saw the object unprocessed (a held object: while held).
    pub seen_at: Instant,
    /// When the peer set its final phase.
    pub done_at: Option<Instant>,
    /// `New` until done, then the final phase.
    pub phase: String,
}

/// The observation log shared by the peer's task and its handle.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<LogState>>);

#[derive(Default)]
struct LogState {
    events: Vec<PeerEvent>,
    busy: Duration,
}

impl Log {
    fn with<T>(&self, f: impl FnOnce(&mut LogState) -> T) -> T {
        // A panic elsewhere must not hide what the peer observed.
        f(&mut self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn open<'a>(events: &'a mut [PeerEvent], kind: &str, name: &str) -> Option<&'a mut PeerEvent> {
        events
            .iter_mut()
            .rev()
            .find(|e| e.kind == kind && e.name == name && e.done_at.is_none())
    }

    fn seen(&self, kind: &'static str, name: &str) {
        self.with(|log| {
            if Self::open(&mut log.events, kind, name).is_none() {
                log.events.push(PeerEvent {
                    kind,
                    name: name.to_string(),
                    seen_at: Instant::now(),
                    done_at: None,
                    phase: "New".into(),
                });
            }
        });
    }

    fn done(&self, kind: &'static str, name: &str, phase: &str) {
        self.seen(kind, name);
        self.with(|log| {
            if let Some(e) = Self::open(&mut log.events, kind, name) {
                e.done_at = Some(Instant::now());
                e.phase = phase.to_string();
            }
        });
    }

    fn add_busy(&self, spent: Duration) {
        self.with(|log| log.busy += spent);
    }
}

/// A running Velero test peer; dropping it stops it.
pub struct VeleroPeer {
    task: tokio::task::JoinHandle<()>,
    log: Log,
}

impl VeleroPeer {
    /// Serve `openshift-adp` through `client`, with `store` as the object storage (a task on
    /// the current Tokio runtime).
    pub fn start(client: Client, store: PathBuf) -> Self {
        let log = Log::default();
        let peer = work::Peer {
            client,
            store,
            log: log.clone(),
        };
        let task = tokio::spawn(async move {
            loop {
                peer.pass().await;
                tokio::time::sleep(POLL).await;
            }
        });
        Self { task, log }
    }

    /// Stop the peer (what was observed stays readable).
    pub fn stop(&self) {
        self.task.abort();
    }

    /// What the peer saw and did, in the order it first saw the objects.
    pub fn events(&self) -> Vec<PeerEvent> {
        self.log.with(|log| log.events.clone())
    }

    /// Wall time spent processing Backups, Restores, DeleteBackupRequests and syncs (not
    /// polling), so that a benchmark can tell the peer's share from the operator's.
    pub fn busy(&self) -> Duration {
        self.log.with(|log| log.busy)
    }

    /// Make the Backup `name` fail (`status.phase: Failed`).
    pub fn fail_backup(store: &Path, name: &str) -> Result<()> {
        store::set_flag(store, &["fail", "backups"], name)
    }

    /// Make the Restore `name` fail (`status.phase: Failed`).
    pub fn fail_restore(store: &Path, name: &str) -> Result<()> {
        store::set_flag(store, &["fail", "restores"], name)
    }

    /// Leave a Backup or Restore named `name` untouched (pending) until [`Self::release`].
    pub fn hold(store: &Path, name: &str) -> Result<()> {
        store::set_flag(store, &["hold"], name)
    }

    /// Undo [`Self::hold`].
    pub fn release(store: &Path, name: &str) -> Result<()> {
        store::clear_flag(store, &["hold"], name)
    }

    /// Names of the complete backups in `store`, sorted.
    pub fn store_backups(store: &Path) -> Vec<String> {
        store_backups(store)
    }
}

/// Names of the complete backups in `store`, sorted.
pub fn store_backups(store: &Path) -> Vec<String> {
    store::backups(store)
}

impl Drop for VeleroPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

//! One pass of the Velero test peer over `openshift-adp`: what the OADP operator does for
//! DPAs, and what Velero's controllers do for DeleteBackupRequests, Backups, the storage
//! location sync and Restores. A pass keeps no state of its own: whatever an API error
//! interrupts is picked up again by the next pass from the API objects and the store.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use kube::api::{DeleteParams, DynamicObject, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use super::{LOCATION, Log, NAMESPACE, select, store};
use crate::openshift::{
    BACKUP, BACKUP_STORAGE_LOCATION, DELETE_BACKUP_REQUEST, DPA, Kind, RESTORE, set_status,
};
use crate::{Result, kube_err};

pub(super) struct Peer {
    pub(super) client: Client,
    pub(super) store: PathBuf,
    pub(super) log: Log,
}

fn now() -> String {
    lca_api::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn phase(obj: &DynamicObject) -> &str {
    obj.data["status"]["phase"].as_str().unwrap_or_default()
}

fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

impl Peer {
    pub(super) async fn pass(&self) {
        // The API server may be down (a simulated reboot): the next pass tries again.
        if let Err(e) = self.reconcile_dpas().await {
            tracing::debug!("velero peer: DPAs: {e}");
        }
        if let Err(e) = self.delete_requests().await {
            tracing::debug!("velero peer: DeleteBackupRequests: {e}");
        }
        match self.location_available().await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => return tracing::debug!("velero peer: BackupStorageLocations: {e}"),
        }
        for (step, result) in [
            ("Backups", self.backups().await),
            ("sync", self.sync().await),
            ("Restores", self.restores().await),
        ] {
            if let Err(e) = result {
                tracing::debug!("velero peer: {step}: {e}");
            }
        }
    }

    async fn list(&self, kind: Kind) -> Result<Vec<DynamicObject>> {
        let list = kind.api(&self.client, NAMESPACE).list(&Default::default()).await;
        Ok(list.map_err(kube_err(format!("listing {}", kind.plural)))?.items)
    }

    async fn finish(&self, kind: Kind, name: &str, status: Value) -> Result<()> {
        let phase = status["phase"].as_str().unwrap_or_default().to_string();
        set_status(&self.client, kind, NAMESPACE, name, status).await?;
        self.log.done(kind.kind, name, &phase);
        Ok(())
    }

    /// As the OADP operator: every DPA Reconciled, and the location it configures Available.
    async fn reconcile_dpas(&self) -> Result<()> {
        let dpas = self.list(DPA).await?;
        for dpa in &dpas {
            let conditions = dpa.data["status"]["conditions"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if !conditions
                .iter()
                .any(|c| c["type"] == "Reconciled" && c["status"] == "True")
            {
                let reconciled = json!({"type": "Reconciled", "status": "True", "reason": "Complete",
                                        "message": "Reconcile complete", "lastTransitionTime": now()});
                let status = json!({"conditions": [reconciled]});
                set_status(&self.client, DPA, NAMESPACE, &dpa.name_any(), status).await?;
            }
        }
        let Some(dpa) = dpas.first() else {
            return Ok(());
        };
        let api = BACKUP_STORAGE_LOCATION.api(&self.client, NAMESPACE);
        let existing = api.get_opt(LOCATION).await.map_err(kube_err("reading the BSL"))?;
        if existing.as_ref().is_some_and(|bsl| !phase(bsl).is_empty()) {
            // A phase a test set (Unavailable) is its to keep.
            return Ok(());
        }
        let spec = dpa.data["spec"]["backupLocations"][0]["velero"].clone();
        let body = json!({"metadata": {"labels": {"app.kubernetes.io/managed-by": "oadp-operator"}},
                          "spec": if spec.is_null() { json!({}) } else { spec }});
        let status = json!({"phase": "Available", "lastValidationTime": now()});
        crate::openshift::create(
            &self.client,
            BACKUP_STORAGE_LOCATION,
            NAMESPACE,
            LOCATION,
            body,
            status,
        )
        .await
    }

    async fn location_available(&self) -> Result<bool> {
        Ok(self
            .list(BACKUP_STORAGE_LOCATION)
            .await?
            .iter()
            .any(|bsl| phase(bsl) == "Available"))
    }

    /// Time spent on one object counts as the peer's work.
    async fn timed(&self, work: impl Future<Output = Result<()>>) -> Result<()> {
        let start = Instant::now();
        let result = work.await;
        self.log.add_busy(start.elapsed());
        result
    }

    /// The unprocessed objects of `kind` that are not held, each seen in the log.
    async fn pending(&self, kind: Kind) -> Result<Vec<DynamicObject>> {
        let mut out = vec![];
        for obj in self.list(kind).await? {
            if phase(&obj).is_empty() && obj.metadata.deletion_timestamp.is_none() {
                let name = obj.name_any();
                self.log.seen(kind.kind, &name);
                if !store::flag(&self.store, &["hold"], &name) {
                    out.push(obj);
                }
            }
        }
        Ok(out)
    }

    async fn delete_requests(&self) -> Result<()> {
        for dbr in self.list(DELETE_BACKUP_REQUEST).await? {
            let name = dbr.name_any();
            self.log.seen(DELETE_BACKUP_REQUEST.kind, &name);
            self.timed(self.delete_backup(&name, &dbr.data["spec"]["backupName"]))
                .await?;
        }
        Ok(())
    }

    async fn delete_backup(&self, dbr: &str, backup: &Value) -> Result<()> {
        let backup = backup.as_str().unwrap_or_default();
        // The store first: the sync must not bring the backup back in between.
        if !backup.is_empty() {
            store::remove(&self.store, backup)?;
            let api = BACKUP.api(&self.client, NAMESPACE);
            match api.delete(backup, &DeleteParams::default()).await {
                Err(e) if !not_found(&e) => return Err(kube_err(format!("deleting backup {backup}"))(e)),
                _ => {}
            }
        }
        self.finish(DELETE_BACKUP_REQUEST, dbr, json!({"phase": "Processed"}))
            .await?;
        let api = DELETE_BACKUP_REQUEST.api(&self.client, NAMESPACE);
        match api.delete(dbr, &DeleteParams::default()).await {
            Err(e) if !not_found(&e) => Err(kube_err(format!("deleting DeleteBackupRequest {dbr}"))(e)),
            _ => Ok(()),
        }
    }

    async fn backups(&self) -> Result<()> {
        for backup in self.pending(BACKUP).await? {
            self.timed(self.backup(&backup)).await?;
        }
        Ok(())
    }

    async fn backup(&self, backup: &DynamicObject) -> Result<()> {
        let name = backup.name_any();
        if store::flag(&self.store, &["fail", "backups"], &name) {
            let status = json!({"phase": "Failed", "failureReason": "injected failure (velero test peer)",
                                "completionTimestamp": now()});
            return self.finish(BACKUP, &name, status).await;
        }
        let uid = backup.uid().unwrap_or_default();
        if store::has(&self.store, &name) {
            // The very object whose status could not be written (the API server went away
            // after the backup was stored, or after the sync created it): finish it.
            if store::uid(&self.store, &name).as_deref() == Some(uid.as_str()) {
                let status = store::backup(&self.store, &name)?["status"].clone();
                return self.finish(BACKUP, &name, status).await;
            }
            // As Velero: a new Backup never overwrites one in object storage.
            let status = json!({"phase": "Failed", "failureReason": "backup already exists in object storage",
                                "completionTimestamp": now()});
            return self.finish(BACKUP, &name, status).await;
        }
        let started = now();
        let objects = select::select(&self.client, &backup.data["spec"]).await?;
        let n = objects.len();
        let status = json!({"phase": "Completed", "startTimestamp": started, "completionTimestamp": now(),
                            "progress": {"totalItems": n, "itemsBackedUp": n}});
        let stored = json!({
            "apiVersion": "velero.io/v1", "kind": "Backup",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": backup.labels(),
                         "annotations": backup.annotations()},
            "spec": backup.data["spec"], "status": status});
        store::write(&self.store, &name, &uid, &stored, &objects)?;
        self.finish(BACKUP, &name, status).await
    }

    /// As the BSL sync: each backup of the store gets its Backup object.
    async fn sync(&self) -> Result<()> {
        let present: HashSet<String> = self.list(BACKUP).await?.iter().map(|b| b.name_any()).collect();
        for name in store::backups(&self.store) {
            if !present.contains(&name) {
                self.log.seen("Sync", &name);
                self.timed(self.sync_one(&name)).await?;
            }
        }
        Ok(())
    }

    async fn sync_one(&self, name: &str) -> Result<()> {
        let stored = store::backup(&self.store, name)?;
        let mut obj = DynamicObject::new(name, &BACKUP.resource()).within(NAMESPACE);
        obj.metadata.labels = serde_json::from_value(stored["metadata"]["labels"].clone()).ok();
        obj.metadata.annotations = serde_json::from_value(stored["metadata"]["annotations"].clone()).ok();
        obj.data["spec"] = stored["spec"].clone();
        let api = BACKUP.api(&self.client, NAMESPACE);
        let created = match api.create(&PostParams::default(), &obj).await {
            // Someone else's Backup of that name: the backup controller's to judge.
            Err(kube::Error::Api(e)) if e.code == 409 => return Ok(()),
            Err(e) => return Err(kube_err(format!("creating backup {name} from the store"))(e)),
            Ok(created) => created,
        };
        store::set_uid(&self.store, name, &created.uid().unwrap_or_default())?;
        set_status(&self.client, BACKUP, NAMESPACE, name, stored["status"].clone()).await?;
        self.log.done(
            "Sync",
            name,
            stored["status"]["phase"].as_str().unwrap_or_default(),
        );
        Ok(())
    }

    async fn restores(&self) -> Result<()> {
        for restore in self.pending(RESTORE).await? {
            self.timed(self.restore(&restore)).await?;
        }
        Ok(())
    }

    async fn restore(&self, restore: &DynamicObject) -> Result<()> {
        let name = restore.name_any();
        let backup = restore.data["spec"]["backupName"].as_str().unwrap_or_default();
        if store::flag(&self.store, &["fail", "restores"], &name) {
            let status = json!({"phase": "Failed", "failureReason": "injected failure (velero test peer)",
                                "completionTimestamp": now()});
            return self.finish(RESTORE, &name, status).await;
        }
        if !store::has(&self.store, backup) {
            let status = json!({"phase": "FailedValidation",
                                "validationErrors": [format!("backup {backup} not found")]});
            return self.finish(RESTORE, &name, status).await;
        }
        let started = now();
        let objects = store::resources(&self.store, backup)?;
        let (restored, warnings, errors) = self.create_all(&name, backup, &objects).await?;
        let status = json!({
            "phase": if errors == 0 { "Completed" } else { "PartiallyFailed" },
            "startTimestamp": started, "completionTimestamp": now(), "warnings": warnings, "errors": errors,
            "progress": {"totalItems": objects.len(), "itemsRestored": restored}});
        self.finish(RESTORE, &name, status).await
    }
}

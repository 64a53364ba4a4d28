//! **Kubelet test peer** for Jobs: no kubelet runs in the test control plane, so this peer
//! plays its part for the operator's Jobs — it runs each new Job's container command as a
//! local process (on the simulated node, whose paths the command already uses) and then
//! writes the Job's status (succeeded or failed) through the status subresource, as the Job
//! controller would. It also stands in for the garbage collector on foreground deletion
//! (there are no pods to wait for): it drops the `foregroundDeletion` finalizer of a Job
//! being deleted. It stops when dropped.

use std::time::Duration;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, ResourceExt};
use serde_json::json;

/// A running peer; dropping it stops it.
pub struct KubeletPeer {
    task: tokio::task::JoinHandle<()>,
}

impl KubeletPeer {
    /// Serve the Jobs of `namespace`.
    pub fn start(client: Client, namespace: &str) -> Self {
        let api: Api<Job> = Api::namespaced(client, namespace);
        let task = tokio::spawn(async move {
            let mut started = std::collections::HashSet::new();
            loop {
                if let Ok(list) = api.list(&Default::default()).await {
                    for job in list.items {
                        let uid = job.uid().unwrap_or_default();
                        if job.metadata.deletion_timestamp.is_some() {
                            collect_garbage(&api, &job).await;
                            continue;
                        }
                        let done = job
                            .status
                            .as_ref()
                            .is_some_and(|s| s.succeeded.is_some() || s.failed.is_some());
                        if done || !started.insert(uid) {
                            continue;
                        }
                        tokio::spawn(run_job(api.clone(), job));
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Self { task }
    }
}

impl Drop for KubeletPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn collect_garbage(api: &Api<Job>, job: &Job) {
    let finalizers: Vec<String> = job
        .finalizers()
        .iter()
        .filter(|f| f.as_str() != "foregroundDeletion")
        .cloned()
        .collect();
    if finalizers.len() != job.finalizers().len() {
        let patch = json!({"metadata": {"finalizers": finalizers}});
        let _ = api
            .patch(&job.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
            .await;
    }
}

async fn run_job(api: Api<Job>, job: Job) {
    let name = job.name_any();
    let Some(container) = job
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.first().cloned())
    else {
        return;
    };
    let argv = container.command.unwrap_or_default();
    let envs: Vec<(String, String)> = container
        .env
        .unwrap_or_default()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect();
    let now = lca_api::jiff::Timestamp::now().to_string();
    let _ = api
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"startTime": now, "active": 1}})),
        )
        .await;
    let ok = tokio::task::spawn_blocking(move || {
        let Some((cmd, args)) = argv.split_first() else {
            return false;
        };
        std::process::Command::new(cmd)
            .args(args)
            .envs(envs)
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    let end = lca_api::jiff::Timestamp::now().to_string();
    let status = if ok {
        json!({"status": {"active": 0, "succeeded": 1, "completionTime": end, "conditions": [
            {"type": "SuccessCriteriaMet", "status": "True", "lastProbeTime": end, "lastTransitionTime": end},
            {"type": "Complete", "status": "True", "lastProbeTime": end, "lastTransitionTime": end}]}})
    } else {
        json!({"status": {"active": 0, "failed": 1, "conditions": [
            {"type": "FailureTarget", "status": "True", "reason": "BackoffLimitExceeded", "lastProbeTime": end, "lastTransitionTime": end},
            {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "lastProbeTime": end, "lastTransitionTime": end}]}})
    };
    if let Err(e) = api
        .patch_status(&name, &PatchParams::default(), &Patch::Merge(status))
        .await
    {
        tracing::warn!("kubelet peer: cannot write the status of job {name}: {e}");
    }
}

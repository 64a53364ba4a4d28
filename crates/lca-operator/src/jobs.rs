//! The in-cluster backend of long-running node work (spec §5.4, §5.5): a Kubernetes Job per
//! task (`lca-prep-stateroot-setup`, `lca-prep-precache`) in the operator namespace, owned by
//! the IBU, guarded by a finalizer so a deletion is noticed, running the same `lca-cli`
//! subcommand as the local backend in a privileged pod with the node's `/` at `/host`.

use std::collections::BTreeMap;

use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, DeleteParams, PropagationPolicy};
use kube::{Client, Resource};
use lca_api::ImageBasedUpgrade;
use lca_api::consts::{annotations, labels, names};
use serde_json::json;

use lca_core::{TaskKind, TaskState};

use crate::error::{Error, Result};
use crate::kubeapi;

/// One named Job.
pub struct JobTask {
    api: Api<Job>,
    kind: TaskKind,
    name: String,
    namespace: String,
    image: String,
}

impl JobTask {
    pub fn new(client: Client, namespace: &str, kind: TaskKind, image: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            kind,
            name: kind.job_name().to_string(),
            namespace: namespace.to_string(),
            image: image.to_string(),
        }
    }

    fn finalizer(&self) -> &'static str {
        match self.kind {
            TaskKind::Precache => labels::PRECACHE_FINALIZER,
            TaskKind::StaterootSetup => labels::STATEROOT_SETUP_FINALIZER,
        }
    }

    pub async fn state(&self) -> Result<TaskState> {
        let job = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(Error::api(format!("failed to get job {}", self.name)))?;
        let Some(job) = job else {
            return Ok(TaskState::NotStarted);
        };
        if job.metadata.deletion_timestamp.is_some() {
            return Ok(TaskState::Deleting);
        }
        let status = job.status.unwrap_or_default();
        Ok(if status.succeeded.unwrap_or(0) > 0 {
            TaskState::Succeeded
        } else if status.failed.unwrap_or(0) > 0 {
            TaskState::Failed { code: 1 }
        } else {
            TaskState::Running
        })
    }

    /// The Job object for `argv` (argv[0] is the `lca-cli` path inside the pod).
    pub fn build(&self, argv: &[String], env: &[(String, String)], owner: &ImageBasedUpgrade) -> Result<Job> {
        let owner_ref = owner
            .controller_owner_ref(&())
            .ok_or_else(|| Error::state("the ImageBasedUpgrade has no uid yet"))?;
        // The pod's app annotation and the SIGTERM grace of the reference (§5.4, §5.5).
        let (app, grace) = match self.kind {
            TaskKind::Precache => ("lifecycle-agent-precache", 30),
            TaskKind::StaterootSetup => (names::STATEROOT_SETUP_JOB, 1800),
        };
        let env: Vec<_> = env.iter().map(|(k, v)| json!({"name": k, "value": v})).collect();
        serde_json::from_value(json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "annotations": BTreeMap::from([(annotations::APP_NAME, app)]),
                "finalizers": [self.finalizer()],
                "ownerReferences": [owner_ref],
            },
            "spec": {
                "backoffLimit": 0,
                "template": {
                    "metadata": {"annotations": {annotations::WORKLOAD_MANAGEMENT: "{\"effect\": \"PreferredDuringScheduling\"}"}},
                    "spec": {
                        "restartPolicy": "Never",
                        "hostPID": true,
                        "serviceAccountName": "lifecycle-agent-controller-manager",
                        "terminationGracePeriodSeconds": grace,
                        "containers": [{
                            "name": self.name,
                            "image": self.image,
                            "command": argv,
                            "env": env,
                            "securityContext": {"privileged": true, "runAsUser": 0},
                            "volumeMounts": [{"name": "host-root", "mountPath": "/host"}],
                        }],
                        "volumes": [{"name": "host-root", "hostPath": {"path": "/", "type": "Directory"}}],
                    }
                }
            }
        }))
        .map_err(|e| Error::invalid(format!("cannot build job {}: {e}", self.name)))
    }

    pub async fn start(
        &self,
        argv: &[String],
        env: &[(String, String)],
        owner: &ImageBasedUpgrade,
    ) -> Result<()> {
        let job = self.build(argv, env, owner)?;
        kubeapi::create_if_missing(&self.api, &job)
            .await
            .map_err(Error::api(format!("failed to create job {}", self.name)))?;
        Ok(())
    }

    /// Drop the finalizer and delete the Job with its pods (foreground).
    pub async fn remove(&self) -> Result<()> {
        let patch = json!({"metadata": {"finalizers": null}});
        match kubeapi::merge_patch(&self.api, &self.name, &patch).await {
            Ok(_) => {}
            Err(e) if kubeapi::is_not_found(&e) => return Ok(()),
            Err(e) => {
                return Err(Error::api(format!(
                    "failed to remove the finalizer of job {}",
                    self.name
                ))(e));
            }
        }
        let dp = DeleteParams {
            propagation_policy: Some(PropagationPolicy::Foreground),
            ..Default::default()
        };
        kubeapi::delete_ignoring_absent(&self.api, &self.name, &dp)
            .await
            .map_err(Error::api(format!("failed to delete job {}", self.name)))?;
        Ok(())
    }
}

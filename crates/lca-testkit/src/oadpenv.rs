//! OADP on the cluster being upgraded, shared by the e2e tests, the local environment's
//! demo and the benchmark: the DataProtectionApplication and its credentials (what a user
//! installs before an upgrade), an application namespace (with an LVMS volume) and the hub's
//! klusterlet objects that must survive the pivot, and the seed document's Backup/Restore ConfigMap (§15.2.4.1)
//! that brings them across. Velero itself is the test peer of [`crate::velero`].

use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::{Discovery, Scope};

use crate::{Error, Result, kube_err};

pub const OADP_NS: &str = "openshift-adp";
pub const DPA: &str = "dataprotectionapplication";
pub const CREDENTIALS: &str = "cloud-credentials";
/// The application namespace of the seed document's examples.
pub const APP_NS: &str = "test";
pub const KLUSTERLET_NS: &str = "open-cluster-management-agent";
/// The ClusterRole the hub needs after the pivot (TALM contract §3.5, requirement 9).
pub const IBU_ROLE: &str = "open-cluster-management:klusterlet-work:ibu-role";
/// The ConfigMap named in `spec.oadpContent`.
pub const CONFIG_MAP: &str = "oadp-cm";

/// The DPA with one S3 location and its credentials Secret.
pub const DPA_YAML: &str = r#"apiVersion: v1
kind: Secret
metadata: {name: cloud-credentials, namespace: openshift-adp}
stringData:
  cloud: "[default]\naws_access_key_id=AKIAEXAMPLE\naws_secret_access_key=not-logged\n"
---
apiVersion: oadp.openshift.io/v1alpha1
kind: DataProtectionApplication
metadata: {name: dataprotectionapplication, namespace: openshift-adp}
spec:
  configuration:
    restic: {enable: false}
    velero: {defaultPlugins: [aws, openshift]}
  backupLocations:
  - velero:
      config: {region: us-east-1, s3Url: "https://s3.example.org", s3ForcePathStyle: "true"}
      credential: {key: cloud, name: cloud-credentials}
      default: true
      objectStorage: {bucket: ibu, prefix: sno}
      provider: aws
"#;

/// The application and the klusterlet objects.
pub const APPS_YAML: &str = r#"apiVersion: v1
kind: Namespace
metadata: {name: test}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: test}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: "registry.example.org/web:1"}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: web-config, namespace: test}
data: {greeting: "survives the upgrade"}
---
apiVersion: v1
kind: Secret
metadata: {name: web-secret, namespace: test}
stringData: {token: app-token}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: web-data, namespace: test}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 1Gi}}
---
apiVersion: v1
kind: PersistentVolume
metadata:
  name: web-data-pv
  annotations: {pv.kubernetes.io/provisioned-by: topolvm.io}
spec:
  capacity: {storage: 1Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Delete
  csi: {driver: topolvm.io, volumeHandle: 7d1e2b3c-web-data}
  claimRef: {namespace: test, name: web-data}
---
apiVersion: v1
kind: Namespace
metadata: {name: open-cluster-management-agent}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: klusterlet, namespace: open-cluster-management-agent}
spec:
  selector: {matchLabels: {app: klusterlet}}
  template:
    metadata: {labels: {app: klusterlet}}
    spec: {serviceAccountName: klusterlet, containers: [{name: klusterlet, image: "registry.example.org/klusterlet:1"}]}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: klusterlet, namespace: open-cluster-management-agent}
---
apiVersion: v1
kind: Secret
metadata: {name: bootstrap-hub-kubeconfig, namespace: open-cluster-management-agent}
stringData: {kubeconfig: "hub kubeconfig"}
---
apiVersion: v1
kind: Secret
metadata: {name: not-listed, namespace: open-cluster-management-agent}
stringData: {k: v}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: klusterlet}
rules: [{apiGroups: [""], resources: [configmaps], verbs: [get]}]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: "open-cluster-management:klusterlet-work:ibu-role"
  labels: {open-cluster-management.io/aggregate-to-work: "true"}
rules:
- apiGroups: [lca.openshift.io]
  resources: [imagebasedupgrades]
  verbs: [get, list, watch, create, update, patch, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: klusterlet}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: klusterlet}
subjects: [{kind: ServiceAccount, name: klusterlet, namespace: open-cluster-management-agent}]
---
apiVersion: scheduling.k8s.io/v1
kind: PriorityClass
metadata: {name: klusterlet-critical}
value: 1000000
"#;

/// The seed document's platform (RHACM) and application Backup/Restore pairs (the LVM
/// Storage variant: the application's volume goes with it), as the ConfigMap's two keys. The klusterlet CRD and CR are left out of the apply-label list
/// (this cluster has no Klusterlet kind); the ibu-role ClusterRole is in it.
pub const PLATFORM_BACKUP_RESTORE: &str = r#"apiVersion: velero.io/v1
kind: Backup
metadata:
  name: acm-klusterlet
  annotations:
    lca.openshift.io/apply-label: "apps/v1/deployments/open-cluster-management-agent/klusterlet,v1/secrets/open-cluster-management-agent/bootstrap-hub-kubeconfig,rbac.authorization.k8s.io/v1/clusterroles/klusterlet,v1/serviceaccounts/open-cluster-management-agent/klusterlet,scheduling.k8s.io/v1/priorityclasses/klusterlet-critical,rbac.authorization.k8s.io/v1/clusterrolebindings/klusterlet,rbac.authorization.k8s.io/v1/clusterroles/open-cluster-management:klusterlet-work:ibu-role"
  labels:
    velero.io/storage-location: default
  namespace: openshift-adp
spec:
  includedNamespaces:
  - open-cluster-management-agent
  includedClusterScopedResources:
  - clusterroles.rbac.authorization.k8s.io
  - clusterrolebindings.rbac.authorization.k8s.io
  - priorityclasses.scheduling.k8s.io
  includedNamespaceScopedResources:
  - deployments
  - serviceaccounts
  - secrets
  excludedNamespaceScopedResources: []
---
apiVersion: velero.io/v1
kind: Restore
metadata:
  name: acm-klusterlet
  namespace: openshift-adp
  labels:
    velero.io/storage-location: default
  annotations:
    lca.openshift.io/apply-wave: "1"
spec:
  backupName:
    acm-klusterlet
"#;

pub const APP_BACKUP_RESTORE: &str = r#"apiVersion: velero.io/v1
kind: Backup
metadata:
  labels:
    velero.io/storage-location: default
  name: backup-app
  namespace: openshift-adp
spec:
  includedNamespaces:
  - test
  includedNamespaceScopedResources:
  - secrets
  - persistentvolumeclaims
  - deployments
  - configmaps
  - services
  includedClusterScopedResources:
  - persistentVolumes
---
apiVersion: velero.io/v1
kind: Restore
metadata:
  name: test-app
  namespace: openshift-adp
  labels:
    velero.io/storage-location: default
  annotations:
    lca.openshift.io/apply-wave: "4"
spec:
  backupName:
    backup-app
"#;

/// The IBU spec lines that name the ConfigMap.
pub fn spec_lines() -> String {
    format!("  oadpContent:\n  - name: {CONFIG_MAP}\n    namespace: {OADP_NS}\n")
}

/// Server-side apply every document of `yaml` (as the cluster's admin).
pub async fn apply(client: &Client, yaml: &str) -> Result<()> {
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .map_err(kube_err("discovering the API"))?;
    for doc in serde_norway::Deserializer::from_str(yaml) {
        let value: serde_json::Value =
            serde::Deserialize::deserialize(doc).map_err(|e| Error::Setup(format!("fixture YAML: {e}")))?;
        if value.is_null() {
            continue;
        }
        let obj: DynamicObject = serde_json::from_value(value.clone())
            .map_err(|e| Error::Setup(format!("fixture object: {e}")))?;
        let types = obj
            .types
            .clone()
            .ok_or_else(|| Error::Setup("fixture object without apiVersion/kind".into()))?;
        let gvk = kube::api::GroupVersionKind::try_from(&types).map_err(|e| Error::Setup(e.to_string()))?;
        let (ar, caps) = discovery
            .resolve_gvk(&gvk)
            .ok_or_else(|| Error::Setup(format!("kind {} is not served", types.kind)))?;
        let name = obj.metadata.name.clone().unwrap_or_default();
        let api: Api<DynamicObject> = match (caps.scope, obj.metadata.namespace.as_deref()) {
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(client.clone(), ns, &ar),
            _ => Api::all_with(client.clone(), &ar),
        };
        api.patch(
            &name,
            &PatchParams::apply("lca-testkit").force(),
            &Patch::Apply(&value),
        )
        .await
        .map_err(kube_err(format!("applying {} {name}", types.kind)))?;
    }
    Ok(())
}

/// The DPA, the application and klusterlet objects, and the OADP ConfigMap.
pub async fn install(client: &Client) -> Result<()> {
    apply(client, DPA_YAML).await?;
    apply(client, APPS_YAML).await?;
    let cm = serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": CONFIG_MAP, "namespace": OADP_NS},
        "data": {"PlatformBackupRestore.yaml": PLATFORM_BACKUP_RESTORE, "ApplicationBackupRestore.yaml": APP_BACKUP_RESTORE},
    });
    apply(
        client,
        &serde_json::to_string(&cm).map_err(|e| Error::Setup(e.to_string()))?,
    )
    .await
}

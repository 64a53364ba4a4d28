//! The install manifests (`config/default`, spec §10) as a cluster administrator applies
//! them: rendered with `kubectl kustomize`, applied to a real API server, the Deployment as
//! upstream's, and the ServiceAccount allowed what OpenShift's admission asks of its pod.

#![allow(clippy::unwrap_used)]

use std::process::Command;

use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use lca_testkit::{ControlPlane, assets};
use serde_json::Value;

fn kubectl(args: &[&str]) -> String {
    let out = Command::new("kubectl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn rendered() -> Vec<Value> {
    let dir = assets::repo_root().join("config/default");
    let yaml = kubectl(&["kustomize", &dir.display().to_string()]);
    yaml.split("\n---\n")
        .map(|doc| serde_norway::from_str(doc).unwrap())
        .collect()
}

#[test]
fn config_default_renders_the_operator_as_upstream_deploys_it() {
    let docs = rendered();
    let mut objects: Vec<String> = docs
        .iter()
        .map(|d| {
            format!(
                "{} {}",
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    objects.sort();
    assert_eq!(
        objects,
        [
            "ClusterRole lifecycle-agent-manager-role",
            "ClusterRoleBinding lifecycle-agent-manager-rolebinding",
            "CustomResourceDefinition imagebasedupgrades.lca.openshift.io",
            "CustomResourceDefinition seedgenerators.lca.openshift.io",
            "Deployment lifecycle-agent-controller-manager",
            "Namespace openshift-lifecycle-agent",
            "NetworkPolicy controller-manager-metrics",
            "NetworkPolicy lca-prep-precache",
            "NetworkPolicy lca-prep-stateroot-setup",
            "ServiceAccount lifecycle-agent-controller-manager",
        ]
    );
    let deployment = docs.iter().find(|d| d["kind"] == "Deployment").unwrap();
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(deployment["spec"]["replicas"], 1);
    let pod = &deployment["spec"]["template"];
    assert_eq!(pod["metadata"]["annotations"]["openshift.io/scc"], "privileged");
    assert_eq!(
        pod["metadata"]["annotations"]["target.workload.openshift.io/management"],
        r#"{"effect": "PreferredDuringScheduling"}"#
    );
    let spec = &pod["spec"];
    assert_eq!(spec["hostPID"], true);
    assert_eq!(spec["terminationGracePeriodSeconds"], 10);
    assert_eq!(spec["serviceAccountName"], "lifecycle-agent-controller-manager");
    assert_eq!(
        spec["volumes"][0]["hostPath"],
        serde_json::json!({"path": "/", "type": "Directory"})
    );
    let manager = &spec["containers"][0];
    assert_eq!(manager["name"], "manager");
    assert_eq!(manager["securityContext"]["privileged"], true);
    assert_eq!(manager["tty"], true);
    assert_eq!(
        manager["resources"],
        serde_json::json!({"requests": {"cpu": "100m", "memory": "20Mi"}})
    );
    assert_eq!(manager["volumeMounts"][0]["mountPath"], "/host");
    assert_eq!(manager["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(manager["readinessProbe"]["httpGet"]["path"], "/readyz");
    let env: Vec<&str> = manager["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(env, ["MY_POD_NAME", "MY_POD_NAMESPACE", "PRECACHE_WORKLOAD_IMG"]);
}

/// Applied to a real API server, the objects are accepted, and the ServiceAccount may use
/// the privileged SCC (what OpenShift's admission checks before it runs the pod) and nothing
/// broader.
#[tokio::test(flavor = "multi_thread")]
async fn config_default_applies_and_its_account_may_use_the_privileged_scc() {
    let cp = ControlPlane::start().await.unwrap();
    let kubeconfig = format!("--kubeconfig={}", cp.kubeconfig().display());
    let dir = assets::repo_root().join("config/default");
    kubectl(&[
        &kubeconfig,
        "apply",
        "--server-side",
        "-k",
        &dir.display().to_string(),
    ]);
    let client = cp.client().await.unwrap();
    let reviews: kube::Api<SubjectAccessReview> = kube::Api::all(client);
    let sa = "system:serviceaccount:openshift-lifecycle-agent:lifecycle-agent-controller-manager";
    let can = async |verb: &str, group: &str, resource: &str, name: &str| {
        let review: SubjectAccessReview = serde_json::from_value(serde_json::json!({
            "spec": {
                "user": sa,
                "groups": ["system:serviceaccounts", "system:serviceaccounts:openshift-lifecycle-agent"],
                "resourceAttributes": {"verb": verb, "group": group, "resource": resource, "name": name},
            }
        }))
        .unwrap();
        let done = reviews.create(&Default::default(), &review).await.unwrap();
        done.status.unwrap().allowed
    };
    let scc = ("security.openshift.io", "securitycontextconstraints");
    assert!(can("use", scc.0, scc.1, "privileged").await);
    assert!(
        !can("use", scc.0, scc.1, "anyuid").await,
        "only the privileged SCC"
    );
    assert!(can("create", "lca.openshift.io", "imagebasedupgrades", "").await);
}

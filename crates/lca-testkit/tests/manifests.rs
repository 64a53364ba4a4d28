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

fn rendered(base: &str) -> Vec<Value> {
    let dir = assets::repo_root().join(base);
    let yaml = kubectl(&["kustomize", &dir.display().to_string()]);
    yaml.split("\n---\n")
        .map(|doc| serde_norway::from_str(doc).unwrap())
        .collect()
}

#[test]
fn config_default_renders_the_operator_as_upstream_deploys_it() {
    let docs = rendered("config/default");
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
            "ClusterRole lifecycle-agent-metrics-reader",
            "ClusterRoleBinding lifecycle-agent-manager-rolebinding",
            "CustomResourceDefinition imagebasedupgrades.lca.openshift.io",
            "CustomResourceDefinition seedgenerators.lca.openshift.io",
            "Deployment lifecycle-agent-controller-manager",
            "Namespace openshift-lifecycle-agent",
            "NetworkPolicy controller-manager-metrics",
            "NetworkPolicy lca-prep-precache",
            "NetworkPolicy lca-prep-stateroot-setup",
            "Role lifecycle-agent-manager-role",
            "RoleBinding lifecycle-agent-manager-rolebinding",
            "Service lifecycle-agent-controller-manager-metrics-service",
            "ServiceAccount lifecycle-agent-controller-manager",
        ]
    );
    let service = docs.iter().find(|d| d["kind"] == "Service").unwrap();
    assert_eq!(
        service["metadata"]["annotations"]["service.beta.openshift.io/serving-cert-secret-name"],
        "lca-metrics-serving-cert"
    );
    assert_eq!(
        service["spec"]["ports"],
        serde_json::json!([{"name": "https", "port": 8443, "protocol": "TCP", "targetPort": "https"}])
    );
    let policy = docs
        .iter()
        .find(|d| d["metadata"]["name"] == "controller-manager-metrics")
        .unwrap();
    assert_eq!(policy["spec"]["ingress"][0]["ports"][0]["port"], 6443);
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
    assert_eq!(
        manager["command"],
        serde_json::json!([
            "/usr/local/bin/lca-operator",
            "--host-root=/host",
            "--health-addr=0.0.0.0:8081",
            "--metrics-bind-address=:6443",
            "--metrics-tls-cert-dir=/etc/tls/private"
        ])
    );
    assert_eq!(
        manager["ports"],
        serde_json::json!([{"name": "https", "containerPort": 6443, "protocol": "TCP"}])
    );
    assert_eq!(manager["volumeMounts"][1]["mountPath"], "/etc/tls/private");
    assert_eq!(
        spec["volumes"][1]["secret"],
        serde_json::json!({"secretName": "lca-metrics-serving-cert", "optional": true})
    );
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
    let can = async |verb: &str, group: &str, resource: &str, name: &str, namespace: &str| {
        let review: SubjectAccessReview = serde_json::from_value(serde_json::json!({
            "spec": {
                "user": sa,
                "groups": ["system:serviceaccounts", "system:serviceaccounts:openshift-lifecycle-agent"],
                "resourceAttributes": {"verb": verb, "group": group, "resource": resource, "name": name, "namespace": namespace},
            }
        }))
        .unwrap();
        let done = reviews.create(&Default::default(), &review).await.unwrap();
        done.status.unwrap().allowed
    };
    let scc = ("security.openshift.io", "securitycontextconstraints");
    assert!(can("use", scc.0, scc.1, "privileged", "").await);
    assert!(
        !can("use", scc.0, scc.1, "anyuid", "").await,
        "only the privileged SCC"
    );
    assert!(can("create", "lca.openshift.io", "imagebasedupgrades", "", "").await);
    let ns = "openshift-lifecycle-agent";
    assert!(can("create", "batch", "jobs", "", ns).await, "the Prep Jobs");
    assert!(
        !can("create", "batch", "jobs", "", "default").await,
        "Jobs in the operator's namespace only"
    );
    assert!(can("create", "authentication.k8s.io", "tokenreviews", "", "").await);
    assert!(can("create", "authorization.k8s.io", "subjectaccessreviews", "", "").await);
}

/// config/prometheus: the ServiceMonitor scrapes the metrics Service's port by name, over
/// HTTPS, with the name the service CA signs; the scraper's account may read /metrics.
#[test]
fn config_prometheus_scrapes_the_metrics_service() {
    let docs = rendered("config/prometheus");
    let monitor = docs.iter().find(|d| d["kind"] == "ServiceMonitor").unwrap();
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["port"], "https");
    assert_eq!(endpoint["scheme"], "https");
    assert_eq!(
        endpoint["tlsConfig"]["serverName"],
        "lifecycle-agent-controller-manager-metrics-service.openshift-lifecycle-agent.svc"
    );
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"]["control-plane"],
        "controller-manager"
    );
    let binding = docs.iter().find(|d| d["kind"] == "ClusterRoleBinding").unwrap();
    assert_eq!(binding["roleRef"]["name"], "lifecycle-agent-metrics-reader");
    assert_eq!(binding["subjects"][0]["name"], "prometheus-k8s");
}
